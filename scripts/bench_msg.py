"""go() with a Ptr argument, a Ptr round trip across Ms, and a plain loop's CPU time in a goroutine (the
costs issue 14 changed: heap messages taken into handles, preemption by signal).  One JSON line.
Usage: GOMAXPROCS=2 [GODEBUG=asyncpreemptoff=1] python scripts/bench_msg.py"""
import time, json
import numpy as np
import mprt

@mprt.struct
class Node:
    v: np.int64

def worker(wg, p, i):
    wg.done()

def loop(n, res):
    t = time.process_time()
    x = 0
    for _ in range(n):
        x += 1
    res.send(time.process_time() - t)

def echo(a, b):
    for v in a:
        b.send(v)

def main():
    out = {}
    wg = mprt.sync.WaitGroup()
    p = mprt.new(Node)
    n = 5000
    wg.add(n)
    t = time.perf_counter()
    for i in range(n):
        mprt.go(worker, wg, p, i)
    wg.wait()
    out["go_ptr_arg_per_s"] = n / (time.perf_counter() - t)
    a, b = mprt.chan(), mprt.chan()
    mprt.go(echo, a, b)
    k = 2000
    t = time.perf_counter()
    for i in range(k):
        a.send(p)
        b.recv()
    out["ptr_round_trip_us"] = (time.perf_counter() - t) / k * 1e6
    a.close()
    res = mprt.chan(1)
    mprt.go(loop, 20_000_000, res)
    out["loop_cpu_s"] = res.recv()
    print(json.dumps(out))

mprt.run(main)
