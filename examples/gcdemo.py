"""The collector at work: goroutines on every M allocate trees in the shared heap and drop them;
the coordinating GC process collects concurrently, and GODEBUG=gctrace=1 (set here unless you set
GODEBUG yourself) prints Go's line per cycle on stderr.  main ends with runtime.MemStats.

    mprt run examples/gcdemo.py [SECONDS]      (default 2)
"""
import os
import sys
import time

import numpy as np

os.environ.setdefault("GODEBUG", "gctrace=1")      # read when mprt.run boots

import mprt  # noqa: E402
from mprt import runtime  # noqa: E402


@mprt.struct
class Node:
    left: mprt.Ptr
    right: mprt.Ptr
    value: np.float64


def tree(depth):
    n = mprt.new(Node)
    n.value = depth
    if depth:
        n.left = tree(depth - 1)
        n.right = tree(depth - 1)
    return n


def churn(seconds, done):
    t, made = time.monotonic(), 0
    while time.monotonic() - t < seconds:
        tree(8)                                     # 511 objects, garbage at once
        made += 511
    done.send(made)


def main(seconds=2.0):
    keep = tree(12)                                 # a live tree the collector marks every cycle
    done = mprt.chan()
    k = runtime.GOMAXPROCS(0)
    for _ in range(k):
        mprt.go(churn, seconds, done)
    made = sum(done.recv() for _ in range(k))
    ms = runtime.MemStats()
    runtime.ReadMemStats(ms)
    pauses = sorted(ms.PauseNs[i % 256] for i in range(max(0, ms.NumGC - 256), ms.NumGC))
    print(f"{made:,} objects allocated by {k} goroutines in {seconds:g} s; {ms.NumGC} GC cycles")
    print(f"HeapAlloc {ms.HeapAlloc >> 10} KiB, HeapSys {ms.HeapSys >> 20} MiB, Mallocs {ms.Mallocs:,}, "
          f"Frees {ms.Frees:,}, GCCPUFraction {ms.GCCPUFraction:.3f}")
    if pauses:
        print(f"pause per cycle: median {pauses[len(pauses) // 2] / 1e3:.0f} us, max {pauses[-1] / 1e3:.0f} us")
    print("the live tree is intact:", keep.left is not None and keep.value == 12)


if __name__ == "__main__":
    mprt.run(main, float(sys.argv[1]) if len(sys.argv) > 1 else 2.0)
