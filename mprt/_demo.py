"""`mprt demo`: a parallel workload on the default settings, under mprt.run.

main (goroutine 1, on M0) starts one builder goroutine per P: each builds a linked list of n
Go-style structs plus a float64 slice in the shared heap and sends the list's head and the slice
back over a channel.  Then a fan-out of small goroutines sums chunks of one big shared array
zero-copy, collected by a WaitGroup.  main follows every pointer, checks every sum, and prints
which Ms (processes, pinned to CPUs) ran what, the scheduler's snapshot and runtime.MemStats.
"""
import os
import time

import numpy as np

import mprt
from mprt import runtime, sched


@mprt.struct
class Item:
    next: mprt.Ptr
    id: np.int64
    owner: np.int32
    weight: np.float64


def build(k, n, out):
    t0 = time.perf_counter()
    items = mprt.new_batch(Item, n)
    items.set("id", np.arange(n))
    items.set("owner", k)
    items.set("weight", np.linspace(0.0, 1.0, n))
    items.set("next", np.append(items.addrs[1:], 0))      # a linked list through the batch
    data = mprt.make(np.float64, n)
    data.np[:] = k + 1.0
    c = sched.current()
    out.send((k, items[0], data, c.mid, c.pid, c.cpu, time.perf_counter() - t0))


def chunk_sum(arr, lo, hi, results, i, wg, mids):
    results.np[i] = arr.np[lo:hi].sum()        # zero-copy views of shared slices
    mids.np[i] = sched.current().mid
    wg.done()


def main(n=200_000, chunks=400):
    procs = runtime.GOMAXPROCS(0)
    print(f"mprt {mprt.__version__}: GOMAXPROCS={procs} on {runtime.NumCPU()} CPUs; main is goroutine 1 on "
          f"M0 (pid {os.getpid()})")
    out = mprt.chan(procs)
    for k in range(procs):
        mprt.go(build, k, n, out)
    for _ in range(procs):
        k, head, data, mid, pid, cpu, elapsed = out.recv()
        t0 = time.perf_counter()
        count, node, idsum = 0, head, 0
        while node is not None:
            count += 1
            idsum += int(node.id)
            node = node.next
        walk = time.perf_counter() - t0
        s = float(data.np.sum())
        print(f"  builder {k} on M{mid} (pid {pid}, CPU {cpu}): {n} linked structs + a {n}-float64 slice in "
              f"{elapsed * 1e3:.1f} ms; main followed {count} pointers in {walk * 1e3:.0f} ms, slice sum {s:.0f}")
        if not (count == n and idsum == n * (n - 1) // 2 and s == n * (k + 1.0)):
            raise SystemExit(f"mprt demo: builder {k}'s data did not survive the trip: {count} nodes, "
                             f"ids sum {idsum}, slice sum {s}")
    total = chunks * 50_000
    arr = mprt.make(np.float64, total)
    arr.np[:] = np.arange(total, dtype=np.float64)
    results = mprt.make(np.float64, chunks)
    mids = mprt.make(np.int64, chunks)
    wg = mprt.sync.WaitGroup()
    wg.add(chunks)
    t0 = time.perf_counter()
    step = total // chunks
    for i in range(chunks):
        mprt.go(chunk_sum, arr, i * step, (i + 1) * step, results, i, wg, mids)
    wg.wait()
    dt = time.perf_counter() - t0
    got, want = float(results.np.sum()), float(total) * (total - 1) / 2
    per_m = np.bincount(mids.np)
    print(f"  fan-out: {chunks} goroutines summed a {total}-float64 shared array in {dt * 1e3:.0f} ms "
          f"(ran on " + ", ".join(f"M{m}: {c}" for m, c in enumerate(per_m) if c) + f"); sum ok: {got == want}")
    if got != want:
        raise SystemExit(f"mprt demo: fan-out sum {got} != {want}")
    snap = sched.snapshot()
    print(f"sched.snapshot: {snap.goroutines} goroutine(s), " + ", ".join(
        f"M{m.id} pid {m.pid} CPU{sorted(m.affinity)} {m.state}" for m in snap.ms))
    m = runtime.MemStats()
    runtime.ReadMemStats(m)
    print(f"runtime.MemStats: HeapAlloc={m.HeapAlloc} HeapObjects={m.HeapObjects} Mallocs={m.Mallocs} "
          f"HeapInuse={m.HeapInuse} HeapIdle={m.HeapIdle} HeapSys={m.HeapSys} Sys={m.Sys} NextGC={m.NextGC}")
    print(f"  collector: NumGC={m.NumGC} PauseTotalNs={m.PauseTotalNs} GCCPUFraction={m.GCCPUFraction:.3f}")
    before = m.HeapObjects
    del head, data, arr, results, mids
    runtime.GC()
    runtime.ReadMemStats(m)
    print(f"  after dropping the lists and arrays and runtime.GC(): HeapObjects {before} -> {m.HeapObjects}, "
          f"HeapAlloc={m.HeapAlloc}, NumGC={m.NumGC}")


def run(n=200_000):
    mprt.run(main, n)
    return 0
