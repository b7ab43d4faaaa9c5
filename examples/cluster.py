"""Goroutines over the nodes of a Ray cluster: a fan-out of CPU-bound jobs and a pipeline whose
stages talk over channels, wherever the scheduler put them.

    MPRT_CLUSTER=local:2 mprt run examples/cluster.py      # 2 nodes on this machine (pip install -e '.[cluster]')
    mprt run examples/cluster.py                           # the same program on one machine
"""
import collections
import time

import mprt
from mprt import runtime, sched


def primes_in(lo, hi):
    n = 0
    for k in range(max(lo, 2), hi):
        if all(k % d for d in range(2, int(k ** 0.5) + 1)):
            n += 1
    return n


def job(lo, hi, wg, results):
    results.send((lo, primes_in(lo, hi), sched.current().node))
    wg.done()


def square(inp, out):
    for v in inp:
        out.send((v * v, sched.current().node))
    out.close()


def main():
    nodes = sched.snapshot().nodes
    print(f"{len(nodes)} node(s), GOMAXPROCS {runtime.GOMAXPROCS(0)}, NumCPU {runtime.NumCPU()}: "
          + ", ".join(f"node {n.id} on {n.host} ({n.ncpu} CPU, {len(n.ms)} Ms)" for n in nodes))
    t = time.perf_counter()
    wg = mprt.sync.WaitGroup()
    jobs, step = 24, 40_000
    results = mprt.chan(jobs)
    wg.add(jobs)
    for i in range(jobs):
        mprt.go(job, i * step, (i + 1) * step, wg, results)
    wg.wait()
    got = [results.recv() for _ in range(jobs)]
    where = collections.Counter(node for _, _, node in got)
    print(f"primes below {jobs * step}: {sum(n for _, n, _ in got)} in {time.perf_counter() - t:.2f} s; "
          f"jobs per node: {dict(sorted(where.items()))}")
    inp, out = mprt.chan(16), mprt.chan(16)
    mprt.go(square, inp, out)
    for v in range(10):
        inp.send(v)
    inp.close()
    squares = list(out)
    print("pipeline:", [v for v, _ in squares], "squared on node", squares[0][1])


if __name__ == "__main__":
    mprt.run(main)
