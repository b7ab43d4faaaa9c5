"""One measurement in a fresh process: `python -m mprt.bench._child SPEC` (SPEC: JSON with suite,
rt = "mprt" or a peer, procs and the suite's sizes).  Prints one JSON line of figures.

A fresh process per measurement keeps runtimes from meeting and gives every runtime the same
start: nothing imported or warmed by an earlier measurement.
"""
import json
import os
import subprocess
import sys
import time

from . import peers, work


def _mprt(fn, *args):
    import mprt
    out = {}
    mprt.run(lambda: out.update(fn(*args)))
    return out


def spawn(rt, procs, n):
    if rt == "mprt":
        return _mprt(work.mprt_spawn, n)
    p = peers.start(rt, procs)
    try:
        t = time.perf_counter()
        p.each(work.trivial, [(i,) for i in range(n)])
        return {"s": time.perf_counter() - t}
    finally:
        p.close()


def chan(rt, procs, n):
    if rt == "mprt":
        return _mprt(work.mprt_chan, n)
    if rt == "pipe":
        return {"rt_us": pipe_round_trip(n)}
    if rt == "threads":
        return {"rt_us": threads_round_trip(n)}
    if rt == "asyncio":
        return {"rt_us": asyncio_round_trip(n)}
    n = min(n, 1000)            # a task's round trip is long on every peer: enough to time it
    p = peers.start(rt, procs)
    try:
        return {"rt_us": work.round_trip_us(lambda i: p.call(work.trivial, i), n, warm=20)}
    finally:
        p.close()


def _echo(c):
    while True:
        v = c.recv()
        if v is None:
            return
        c.send(v)


def pipe_round_trip(n):
    ctx = mp_ctx()
    a, b = ctx.Pipe()
    proc = ctx.Process(target=_echo, args=(b,))
    proc.start()

    def one(i):
        a.send(i)
        a.recv()
    dt = work.round_trip_us(one, n)
    a.send(None)
    proc.join()
    return dt


def threads_round_trip(n):
    """In one process, the peer of goroutines on one M: two threads, two queue.SimpleQueues."""
    import queue
    import threading
    a, b = queue.SimpleQueue(), queue.SimpleQueue()

    def echo():
        while True:
            v = a.get()
            if v is None:
                return
            b.put(v)
    th = threading.Thread(target=echo)
    th.start()

    def one(i):
        a.put(i)
        b.get()
    dt = work.round_trip_us(one, n)
    a.put(None)
    th.join()
    return dt


def asyncio_round_trip(n):
    """In one process, on one thread: two asyncio tasks, two asyncio.Queues."""
    import asyncio

    async def run():
        a, b = asyncio.Queue(), asyncio.Queue()

        async def echo():
            while True:
                v = await a.get()
                if v is None:
                    return
                await b.put(v)
        task = asyncio.create_task(echo())
        for i in range(100):
            await a.put(i)
            await b.get()
        t = time.perf_counter()
        for i in range(n):
            await a.put(i)
            await b.get()
        dt = (time.perf_counter() - t) / n * 1e6
        await a.put(None)
        await task
        return dt
    return asyncio.run(run())


def mp_ctx():
    import multiprocessing as mp
    return mp.get_context("fork")


def cpu(rt, procs, tasks, iters):
    if rt == "mprt":
        return _mprt(work.mprt_cpu, tasks, iters)
    p = peers.start(rt, procs)
    try:
        t = time.perf_counter()
        p.map(work.loop, [(iters,)] * tasks)
        return {"s": time.perf_counter() - t}
    finally:
        p.close()


def array(rt, procs, n, rounds, chunks):
    if rt == "mprt":
        return _mprt(work.mprt_array, n, rounds, chunks)
    import numpy as np
    arr = np.arange(n, dtype=np.float64)
    want = float(arr.sum())
    p = peers.start(rt, procs)
    try:
        t = time.perf_counter()
        tasks = p.chunks(arr, work.array_chunks(n, chunks))
        for _ in range(rounds):
            got = sum(p.map(work.chunk_sum, tasks))
        return {"s": time.perf_counter() - t, "ok": abs(got - want) <= 1e-6 * abs(want)}
    finally:
        p.close()


def gc(rt, procs, seconds, nodes):
    if rt == "mprt":
        return _mprt(work.mprt_gc, seconds, nodes)
    if rt == "go":
        return work.go_gc(seconds)
    return work.cpython_gc(seconds, nodes)


def boot(rt, procs, reps):
    if rt == "mprt":
        return work.mprt_boot(reps)
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        peers.start(rt, procs).close()
        out.append(time.perf_counter() - t)
    return {"s": sorted(out)[len(out) // 2]}


def binarytrees(rt, procs, depth, example):
    if rt == "mprt":
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "mprt", "run", example, str(depth)], capture_output=True,
                           text=True, env=dict(os.environ, GODEBUG="gctrace=1"))
        s = time.perf_counter() - t
        if r.returncode:
            raise RuntimeError(f"binarytrees.py exited {r.returncode}: {r.stderr[-2000:]}")
        gcs = [ln for ln in r.stderr.splitlines() if ln.startswith("gc ")]
        return {"s": s, "lines": r.stdout.splitlines(), "gc_cycles": len(gcs), "last_gctrace": gcs[-1] if gcs else ""}
    t = time.perf_counter()
    p = peers.start(rt, procs)
    try:
        checks = [work.item_check(work.bottom_up(depth + 1))]
        long_lived = work.bottom_up(depth)
        for d, _, share in work.binarytrees_plan(depth, procs):
            checks.append(sum(p.map(work.trees, [(d, k) for k in share])))
        lines = work.binarytrees_output(depth, checks, work.item_check(long_lived))
    finally:
        p.close()
    return {"s": time.perf_counter() - t, "lines": lines}


def idioms(rt, procs, n_pool, n_pipe, n_fanin, goroutines, k):
    if rt == "mprt":
        return _mprt(work.mprt_idioms, n_pool, n_pipe, n_fanin, goroutines, k, procs)
    return work.mp_idioms(n_pool, n_pipe, n_fanin, goroutines, k, procs)


def sync(rt, procs, k, ticks):
    if rt == "mprt":
        return _mprt(work.mprt_sync, k, ticks)
    if rt == "go":
        return work.go_sync(k, ticks)
    return work.mp_sync(k, ticks)


def main():
    spec = json.loads(sys.argv[1])
    fn = globals()[spec.pop("suite")]
    res = fn(**spec)
    sys.stdout.write("\n" + json.dumps(res) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
