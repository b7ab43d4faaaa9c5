"""A pipeline of goroutines joined by channels, with select and timeouts: a generator, a pool of
squarers, and a collector that gives up on a stage that goes quiet (Go's `case <-time.After(d)`).

    mprt run examples/pipeline.py [N]      (default 100 numbers)
"""
import sys

import mprt


def after(seconds):
    """Go's time.After: a channel that receives once, `seconds` from now."""
    ch = mprt.chan(1)
    mprt.go(_fire, ch, seconds)
    return ch


def _fire(ch, seconds):
    mprt.sleep(seconds)
    ch.send(seconds)


def generate(n, out):
    for i in range(1, n + 1):
        out.send(i)
    out.close()


def square(inp, out, quit):
    for v in inp:
        i, _ = mprt.select((out.send, v * v), quit.recv)
        if i == 1:
            return
    out.send(None)                    # this squarer is done


def slow(out):
    mprt.sleep(10)                    # a stage that never answers in time
    out.send("too late")


def main(n=100, workers=4):
    nums, squares, quit = mprt.chan(), mprt.chan(16), mprt.chan()
    mprt.go(generate, n, nums)
    for _ in range(workers):
        mprt.go(square, nums, squares, quit)
    total, finished = 0, 0
    while finished < workers:
        i, v = mprt.select(squares.recv, after(5.0).recv)
        if i == 1:
            print("timed out waiting for the squarers")
            quit.close()
            break
        if v is None:
            finished += 1
        else:
            total += v
    print(f"sum of squares 1..{n} = {total} (expected {n * (n + 1) * (2 * n + 1) // 6})")

    late = mprt.chan(1)
    mprt.go(slow, late)
    i, v = mprt.select(late.recv, after(0.2).recv)
    print("slow stage:", "answered" if i == 0 else "timed out after 0.2 s")
    i, v = mprt.select(late.recv, mprt.default)
    print("non-blocking receive:", "a value" if i == 0 else "nothing ready (default case)")


if __name__ == "__main__":
    mprt.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 100)
