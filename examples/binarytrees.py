"""The benchmarks game's binary-trees on mprt's shared heap: every tree node is a heap object, made
by mprt.new, its children linked through pointer fields; GOMAXPROCS goroutines share the trees of
each depth, so the collector reclaims what they drop while they run.

    python examples/binarytrees.py [DEPTH]        (default 10; GODEBUG=gctrace=1 shows the cycles)

Output is the benchmark's, exactly:
    stretch tree of depth D+1	 check: N
    ITERATIONS	 trees of depth d	 check: N       (d = 4, 6, ... D)
    long lived tree of depth D	 check: N
"""
import sys

import mprt
from mprt import runtime


@mprt.struct
class Node:
    left: mprt.Ptr
    right: mprt.Ptr


def bottom_up(depth):
    n = mprt.new(Node)
    if depth > 0:
        n.left = bottom_up(depth - 1)
        n.right = bottom_up(depth - 1)
    return n


def item_check(n):
    left = n.left
    if left is None:
        return 1
    return 1 + item_check(left) + item_check(n.right)


def worker(depth, iterations, out):
    check = 0
    for _ in range(iterations):
        check += item_check(bottom_up(depth))
    out.send(check)


def main(max_depth=10):
    max_depth = max(6, max_depth)
    stretch = max_depth + 1
    print(f"stretch tree of depth {stretch}\t check: {item_check(bottom_up(stretch))}", flush=True)
    long_lived = bottom_up(max_depth)
    nprocs = runtime.GOMAXPROCS(0)
    results = []
    for depth in range(4, max_depth + 1, 2):
        iterations = 1 << (max_depth - depth + 4)
        out = mprt.chan(nprocs)
        share = [iterations // nprocs + (i < iterations % nprocs) for i in range(nprocs)]
        for k in share:
            if k:
                mprt.go(worker, depth, k, out)
        check = sum(out.recv() for k in share if k)
        results.append(f"{iterations}\t trees of depth {depth}\t check: {check}")
    print("\n".join(results))
    print(f"long lived tree of depth {max_depth}\t check: {item_check(long_lived)}", flush=True)


if __name__ == "__main__":
    mprt.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 10)
