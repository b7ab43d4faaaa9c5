"""`mprt demo`: the shared heap across processes.

Each worker process attaches to the heap holding its own P and builds a linked list of n Go-style
structs plus a float64 slice; it hands the list's head back through the runtime's pickler.  The
parent then follows the pointers, sums the slices through zero-copy numpy views, frees nothing
(the collector arrives later) and prints MemStats as Go's runtime reports them.
"""
import multiprocessing as mp
import os
import time

import numpy as np

import mprt
from mprt import runtime
from mprt.shm import malloc
from mprt.shm.ptr import dumps, loads


@mprt.struct
class Item:
    next: mprt.Ptr
    id: np.int64
    owner: np.int32
    weight: np.float64


def _worker(rtid, p, n, conn, parent_ends):
    for c in parent_ends:
        c.close()                         # so that the parent's death reads as EOF here
    h = malloc.attach(rtid, p=p)
    try:
        t0 = time.perf_counter()
        items = mprt.new_batch(Item, n)
        items.set("id", np.arange(n))
        items.set("owner", p)
        items.set("weight", np.linspace(0.0, 1.0, n))
        nxt = np.append(items.addrs[1:], 0)
        items.set("next", nxt)           # a linked list through the batch
        data = mprt.make(np.float64, n)
        data.np[:] = p + 1.0
        head = items[0]
        elapsed = time.perf_counter() - t0
        conn.send_bytes(dumps((head, data, os.getpid(), elapsed)))
        conn.recv()                       # parent is done reading: our handles may go
    finally:
        h.detach()


def main(nprocs=2, n=200_000):
    h = malloc.create(p=0)
    ctx = mp.get_context("fork")
    pipes, procs = [], []
    try:
        print(f"mprt {mprt.__version__}: runtime {h.rtid}, heap arena reserved {h.layout.arena_max >> 30} GiB "
              f"in /dev/shm, {nprocs} worker processes, each holding its own P")
        for p in range(1, nprocs + 1):
            a, b = ctx.Pipe()
            pipes.append(a)
            pr = ctx.Process(target=_worker, args=(h.rtid, p, n, b, pipes))
            pr.start()
            b.close()                     # so that the worker's death reads as EOF here
            procs.append(pr)
        for p, conn in enumerate(pipes, 1):
            try:
                head, data, pid, elapsed = loads(conn.recv_bytes())
            except EOFError:
                raise SystemExit(f"mprt demo: worker P{p} (pid {procs[p - 1].pid}) died: "
                                 f"exit status {procs[p - 1].join(5) or procs[p - 1].exitcode}") from None
            t0 = time.perf_counter()
            count, node, idsum = 0, head, 0
            while node is not None:
                count += 1
                idsum += int(node.id)
                node = node.next
            walk = time.perf_counter() - t0
            t0 = time.perf_counter()
            s = float(data.np.sum())      # a zero-copy view of the worker's slice
            print(f"  P{p} (pid {pid}): built {n} linked structs + a {n}-float64 slice in {elapsed * 1e3:.1f} ms; "
                  f"parent followed {count} pointers from {head!r} in {walk * 1e3:.0f} ms "
                  f"(ids sum {idsum}), slice sum {s:.0f} read zero-copy in {(time.perf_counter() - t0) * 1e3:.2f} ms")
            if not (count == n and idsum == n * (n - 1) // 2 and s == n * (p + 1.0)):
                raise SystemExit(f"mprt demo: P{p}'s data did not survive the trip: {count} nodes, "
                                 f"ids sum {idsum}, slice sum {s}")
            del head, data, node
            conn.send(True)
        for pr in procs:
            pr.join()
        procs.clear()
        m = runtime.MemStats()
        runtime.ReadMemStats(m)
        print(f"runtime.MemStats: HeapAlloc={m.HeapAlloc} HeapObjects={m.HeapObjects} Mallocs={m.Mallocs} "
              f"HeapInuse={m.HeapInuse} HeapIdle={m.HeapIdle} HeapSys={m.HeapSys} Sys={m.Sys} NextGC={m.NextGC}")
        by = [f"{e.Size}B:{e.Mallocs}" for e in m.BySize if e.Mallocs]
        print(f"  BySize (size:mallocs): {' '.join(by)}")
        h.check()
        return 0
    finally:
        for conn in pipes:
            conn.close()                  # a worker still waiting sees EOF and leaves
        for pr in procs:
            pr.join(5)
            if pr.is_alive():
                pr.kill()
                pr.join()
        h.destroy()
