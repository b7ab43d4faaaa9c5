"""Fan-out hello: main starts goroutines, each says hello from the M (a worker process pinned to a
CPU) it runs on, and main prints the greetings in order.

    mprt run examples/hello.py [N]        (default 8 goroutines)
"""
import sys

import mprt
from mprt import runtime, sched


def hello(i, out):
    c = sched.current()
    out.send((i, f"hello from goroutine {c.goid} (#{i}) on M{c.mid}, pid {c.pid}, CPU {c.cpu}"))


def main(n=8):
    out = mprt.chan()
    for i in range(n):
        mprt.go(hello, i, out)
    lines = dict(out.recv() for _ in range(n))
    for i in range(n):
        print(lines[i])
    print(f"{n} goroutines, GOMAXPROCS={runtime.GOMAXPROCS(0)}, main on M{sched.current().mid}")


if __name__ == "__main__":
    mprt.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 8)
