"""Benchmarks of the shared heap (issue: the ground floor).

    python scripts/bench_heap.py [--json FILE]

1. a single mprt.new of a small struct: per-call time (median and p90 over batches of 1000 calls,
   the handles kept alive, as a program keeps what it allocates), beside a plain CPython object
   with the same fields made the same way, for scale;
2. mprt.new_batch: objects per second for batches of 1M objects;
3. a 200 MB float64 slice summed by two processes through `.np`, against the same sum by two
   processes over a raw posix_ipc mapping, measured in the same run in alternating rounds; the
   ratio is the median of the paired rounds' ratios.
"""
import argparse
import json
import mmap
import multiprocessing as mp
import os
import statistics
import sys
import time

import numpy as np
import posix_ipc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import mprt  # noqa: E402
from mprt.shm import malloc  # noqa: E402
from mprt.shm.ptr import dumps, loads  # noqa: E402


@mprt.struct
class Small:
    next: mprt.Ptr
    val: np.int64


class PlainSmall:
    """The same record as a plain CPython object: process-local, not shared, not collected by us."""
    __slots__ = ("next", "val")

    def __init__(self):
        self.next = None
        self.val = 0


def _batch_us(make, per):
    keep = [None] * per
    t0 = time.perf_counter_ns()
    for i in range(per):
        keep[i] = make()
    t = (time.perf_counter_ns() - t0) / per / 1000
    del keep           # freeing the handles is not part of allocating them
    return t


def bench_new(batches=300, per=1000):
    """Batches of mprt.new and of the plain object alternate, so both see the same noise."""
    new = mprt.new
    ours, ref = [], []
    for _ in range(batches):
        ours.append(_batch_us(lambda: new(Small), per))
        ref.append(_batch_us(PlainSmall, per))
    ratios = sorted(a / b for a, b in zip(ours, ref))
    ours.sort()
    return {"median_us": statistics.median(ours), "p90_us": ours[int(len(ours) * 0.9)],
            "cpython_object_us": statistics.median(ref), "ratio_vs_cpython": statistics.median(ratios)}


def bench_batch(n=1_000_000, reps=5):
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        b = mprt.new_batch(Small, n)
        rates.append(n / (time.perf_counter() - t0))
        del b
    return {"objects": n, "median_objects_per_s": statistics.median(rates), "min": min(rates), "max": max(rates)}


# ---- two processes summing 200 MB ----

def _mprt_summer(rtid, p, conn):
    h = malloc.attach(rtid, p=p)
    try:
        s, lo, hi = loads(conn.recv_bytes())
        conn.send("ready")
        while conn.recv() == "go":
            t0 = time.perf_counter()
            v = float(s.np[lo:hi].sum())
            conn.send((v, time.perf_counter() - t0))
        del s
    finally:
        h.detach()


def _raw_summer(name, n, lo, hi, conn):
    shm = posix_ipc.SharedMemory(name)
    mm = mmap.mmap(shm.fd, n * 8)
    shm.close_fd()
    arr = np.frombuffer(mm, dtype=np.float64, count=n)
    conn.send("ready")
    while conn.recv() == "go":
        t0 = time.perf_counter()
        v = float(arr[lo:hi].sum())
        conn.send((v, time.perf_counter() - t0))
    del arr


def _round(conns):
    t0 = time.perf_counter()
    for c in conns:
        c.send("go")
    vals = [c.recv() for c in conns]
    return time.perf_counter() - t0, sum(v for v, _ in vals)


def bench_sum(mb=200, reps=15):
    n = mb * (1 << 20) // 8
    ctx = mp.get_context("fork")
    h = malloc.current()
    s = mprt.make(np.float64, n)
    s.np[:] = 1.0
    name = f"/mprt-bench-raw.{os.getpid()}"     # not a runtime name: a plain posix_ipc segment
    raw = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, size=n * 8)
    rmm = mmap.mmap(raw.fd, n * 8)
    raw.close_fd()
    np.frombuffer(rmm, dtype=np.float64)[:] = 1.0
    halves = [(0, n // 2), (n // 2, n)]
    mconns, rconns, procs = [], [], []
    try:
        for p, (lo, hi) in zip((1, 2), halves):
            a, b = ctx.Pipe()
            pr = ctx.Process(target=_mprt_summer, args=(h.rtid, p, b))
            pr.start()
            a.send_bytes(dumps((s, lo, hi)))
            mconns.append(a)
            procs.append(pr)
            a, b = ctx.Pipe()
            pr = ctx.Process(target=_raw_summer, args=(name, n, lo, hi, b))
            pr.start()
            rconns.append(a)
            procs.append(pr)
        for c in mconns + rconns:
            assert c.recv() == "ready"
        mt, rt = [], []
        for i in range(reps):            # alternate which goes first, so neither always runs warm
            order = [(mconns, mt), (rconns, rt)] if i % 2 == 0 else [(rconns, rt), (mconns, mt)]
            for conns, times in order:
                t, v = _round(conns)
                assert v == n
                times.append(t)
        for c in mconns + rconns:
            c.send("stop")
        for pr in procs:
            pr.join(30)
    finally:
        for pr in procs:
            if pr.is_alive():
                pr.kill()
        del rmm
        posix_ipc.unlink_shared_memory(name)
    m, r = statistics.median(mt), statistics.median(rt)
    ratio = statistics.median(a / b for a, b in zip(mt, rt))     # paired rounds: the noise cancels
    return {"mb": mb, "mprt_ms": m * 1e3, "raw_posix_ipc_ms": r * 1e3, "ratio": ratio,
            "mprt_GBps": mb / 1024 / m, "raw_GBps": mb / 1024 / r}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    h = malloc.create(arena_max=4 << 30, p=0)
    try:
        res = {"new": bench_new(), "new_batch": bench_batch(), "sum_200MB_2procs": bench_sum()}
    finally:
        h.destroy()
    nw, bt, sm = res["new"], res["new_batch"], res["sum_200MB_2procs"]
    print(f"{'benchmark':42s} {'result':>28s}   goal")
    print(f"{'mprt.new(small struct), per call':42s} {nw['median_us']:>12.2f} us median "
          f"({nw['p90_us']:.2f} p90)   <= 2 us")
    print(f"{'  CPython __slots__ object, per call':42s} {nw['cpython_object_us']:>12.2f} us median "
          f"(mprt.new is {nw['ratio_vs_cpython']:.1f}x)")
    print(f"{'mprt.new_batch, 1M objects':42s} {bt['median_objects_per_s'] / 1e6:>13.2f} M objects/s"
          f"          >= 2 M/s")
    print(f"{'200 MB float64 sum, 2 procs: mprt .np':42s} {sm['mprt_ms']:>15.1f} ms ({sm['mprt_GBps']:.1f} GB/s)")
    print(f"{'200 MB float64 sum, 2 procs: raw posix_ipc':42s} {sm['raw_posix_ipc_ms']:>15.1f} ms ({sm['raw_GBps']:.1f} GB/s)")
    print(f"{'  ratio mprt / raw':42s} {sm['ratio']:>18.3f} x           <= 1.3x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
