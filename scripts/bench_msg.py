"""What issue 14's changes cost, timed the way programs are written, one JSON line per run:

    go_int_per_s       20,000 x go(worker, wg, i) + wg.wait()   (arguments inline in the G row)
    go_ptr_per_s       5,000 x go(worker, wg, p, i)             (a Ptr argument: a heap message)
    int_rtt_us         a round trip of an int to a goroutine on another M and back
    ptr_rtt_us         the same with a Ptr value (a heap message each way)
    loop_mips          million iterations per CPU second of a 2 s plain Python loop in a goroutine
                       (sysmon preempts it every 10 ms by signal; compare GODEBUG=asyncpreemptoff=1)

    GOMAXPROCS=2 [GODEBUG=asyncpreemptoff=1] python scripts/bench_msg.py
"""
import json
import time

import numpy as np

import mprt


@mprt.struct
class Node:
    v: np.int64


def worker(wg, i):
    wg.done()


def worker_ptr(wg, p, i):
    wg.done()


def echo(a, b):
    for v in a:
        b.send(v)


def loop(seconds, res):
    t, c = time.monotonic(), time.process_time()
    end = t + seconds
    x = 0
    while time.monotonic() < end:
        for _ in range(1000):
            x += 1
    res.send(x / (time.process_time() - c) / 1e6)     # per CPU second of this M: noise from others left out


def fanout(fn, n, *args):
    wg = mprt.sync.WaitGroup()
    wg.add(n)
    t = time.perf_counter()
    for i in range(n):
        fn(wg, *args, i)
    wg.wait()
    return n / (time.perf_counter() - t)


def rtt(v, k=2000):
    a, b = mprt.chan(), mprt.chan()
    mprt.go(echo, a, b)
    for _ in range(50):
        a.send(v)
        b.recv()
    t = time.perf_counter()
    for _ in range(k):
        a.send(v)
        b.recv()
    dt = (time.perf_counter() - t) / k * 1e6
    a.close()
    return dt


def main():
    p = mprt.new(Node)
    out = {
        "go_int_per_s": fanout(lambda wg, i: mprt.go(worker, wg, i), 20000),
        "go_ptr_per_s": fanout(lambda wg, p, i: mprt.go(worker_ptr, wg, p, i), 5000, p),
        "int_rtt_us": rtt(12345),
        "ptr_rtt_us": rtt(p),
    }
    res = mprt.chan(1)
    mprt.go(loop, 2.0, res)
    out["loop_mips"] = res.recv()
    print(json.dumps(out))


if __name__ == "__main__":
    mprt.run(main)
