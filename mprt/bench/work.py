"""The benchmark workloads, importable by every runtime measured (the peers' workers find these
functions by name, as mprt's Ms do).

Each suite has one mprt program (`mprt_<suite>`, run as main under mprt.run in a fresh process) and
the plain functions its peers run.  Both sides do the same work with the same sizes; the mprt side
keeps its data in the shared heap, the peers in process memory (pickled to their workers).
"""
import os
import time

import numpy as np

import mprt

# ---- plain work, the same for every runtime ----


def trivial(x=None):
    return x


def loop(n):
    """Pure-Python work, n iterations (calibrated to a duration once, in the parent)."""
    x = 0
    for i in range(n):
        x += i * i % 7
    return x


def calibrate_loop(seconds):
    """Iterations of loop() that take about `seconds` here."""
    n = 200_000
    t = time.perf_counter()
    loop(n)
    return max(1, int(n * seconds / (time.perf_counter() - t)))


def chunk_sum(arr, lo, hi):
    return float(arr[lo:hi].sum())


def array_chunks(n, k):
    return [(i * n // k, (i + 1) * n // k) for i in range(k)]


class TreeNode:
    """binary-trees on plain CPython objects (the peers' side)."""
    __slots__ = ("left", "right")

    def __init__(self, left, right):
        self.left, self.right = left, right


def bottom_up(depth):
    return TreeNode(bottom_up(depth - 1), bottom_up(depth - 1)) if depth > 0 else TreeNode(None, None)


def item_check(n):
    return 1 if n.left is None else 1 + item_check(n.left) + item_check(n.right)


def trees(depth, k):
    c = 0
    for _ in range(k):
        c += item_check(bottom_up(depth))
    return c


def binarytrees_plan(max_depth, workers):
    """[(depth, iterations, [share per worker])] as the benchmarks game's program splits it."""
    out = []
    for d in range(4, max_depth + 1, 2):
        it = 1 << (max_depth - d + 4)
        out.append((d, it, [k for k in (it // workers + (i < it % workers) for i in range(workers)) if k]))
    return out


def binarytrees_output(max_depth, checks, long_lived):
    lines = [f"stretch tree of depth {max_depth + 1}\t check: {checks[0]}"]
    for (d, it, _), c in zip(binarytrees_plan(max_depth, 1), checks[1:]):
        lines.append(f"{it}\t trees of depth {d}\t check: {c}")
    lines.append(f"long lived tree of depth {max_depth}\t check: {long_lived}")
    return lines


# ---- the mprt programs: each runs as main under mprt.run and returns its figures ----

def _mprt_wait_all(fn, args_list):
    """go fn(*args) for each, collect the results over one buffered channel."""
    out = mprt.chan(len(args_list))
    for a in args_list:
        mprt.go(_send_result, out, fn, a)
    return [out.recv() for _ in args_list]


def _send_result(out, fn, a):
    out.send(fn(*a))


def _worker(wg, i):
    """The goroutine of Go's `go worker(&wg, i)`: the same task as the peers' (trivial(i))."""
    trivial(i)
    wg.done()


def mprt_spawn(n):
    """Seconds for n goroutines collected by a WaitGroup, written as users write them
    (`go(worker, wg, i)`, "s") and in the no-argument form (`go(wg.done)`, "s_noarg")."""
    wg = mprt.sync.WaitGroup()                    # warm, as the peers' pools are: every M started
    wg.add(200)
    for i in range(200):
        mprt.go(_worker, wg, i)
    wg.wait()
    wg = mprt.sync.WaitGroup()
    wg.add(n)
    t = time.perf_counter()
    for i in range(n):
        mprt.go(_worker, wg, i)
    wg.wait()
    s = time.perf_counter() - t
    wg = mprt.sync.WaitGroup()
    wg.add(n)
    t = time.perf_counter()
    for _ in range(n):
        mprt.go(wg.done)
    wg.wait()
    return {"s": s, "s_noarg": time.perf_counter() - t}


def round_trip_us(one, n, warm=100):
    """Microseconds per call of one(i) (a round trip), over n calls after `warm` untimed ones."""
    for i in range(warm):
        one(i)
    t = time.perf_counter()
    for i in range(n):
        one(i)
    return (time.perf_counter() - t) / n * 1e6


def _round_trips(n):
    """Microseconds per round trip between the caller and an echo goroutine it starts."""
    a, b = mprt.chan(), mprt.chan()
    mprt.go(_echo, a, b, n + 100)

    def one(i):
        a.send(i)
        b.recv()
    return round_trip_us(one, n)


def _echo(a, b, n):
    for _ in range(n):
        b.send(a.recv())


def _same_m(n, out):
    out.send(_round_trips(n))


def mprt_chan(n):
    from mprt import runtime
    cross = _round_trips(n)          # main on M0, the echo goroutine on a worker M
    # both goroutines on one worker M: with one P (with two, the M given main's P while main
    # waits takes the echo goroutine, and this was a round trip across Ms again)
    prev = runtime.GOMAXPROCS(1)
    try:
        out = mprt.chan()
        mprt.go(_same_m, n, out)
        same = out.recv()
    finally:
        runtime.GOMAXPROCS(prev)
    return {"cross_us": cross, "same_us": same}


def mprt_cpu(tasks, iters):
    t = time.perf_counter()
    _mprt_wait_all(loop, [(iters,)] * tasks)
    return {"s": time.perf_counter() - t}


def _slice_sum(arr, lo, hi):
    return float(arr.np[lo:hi].sum())            # a zero-copy view of the shared slice


def mprt_array(n, rounds, chunks):
    arr = mprt.make(np.float64, n)
    arr.np[:] = np.arange(n, dtype=np.float64)
    want = float(arr.np.sum())
    t = time.perf_counter()
    for _ in range(rounds):
        got = sum(_mprt_wait_all(_slice_sum, [(arr, lo, hi) for lo, hi in array_chunks(n, chunks)]))
    s = time.perf_counter() - t
    return {"s": s, "ok": abs(got - want) <= 1e-6 * abs(want)}


@mprt.struct
class GCNode:
    left: mprt.Ptr
    right: mprt.Ptr
    v: np.int64


def churn(seconds, done):
    t = time.monotonic()
    n = 0
    while time.monotonic() - t < seconds:
        for _ in range(100):
            a = mprt.new(GCNode)
            a.left = mprt.new(GCNode)
            a.right = mprt.new(GCNode)
            a.left.left = mprt.new(GCNode)
            a.left.left.right = a                 # a cycle: CPython's peer needs its collector for it
            s = mprt.make(np.float64, 16)
            s.np[:] = 1.0
            n += 5
        del a, s
    done.send(n)


def complete_tree(T, n):
    """A complete binary tree of n objects of struct T, heap order, made in one batch; its root."""
    b = mprt.new_batch(T, n)
    idx = np.arange(n)
    kids = np.where(2 * idx + 2 < n, 2 * idx + 1, -1)
    b.set("left", np.where(kids >= 0, b.addrs[np.maximum(kids, 0)], 0))
    b.set("right", np.where(kids >= 0, b.addrs[np.minimum(kids + 1, n - 1)], 0))
    return b[0]


def mprt_gc(seconds, nodes):
    """Stop-the-world pauses while 2 goroutines allocate on 2 Ms, the GC CPU fraction, then the
    coordinator's mark rate over a complete tree of `nodes` objects."""
    from mprt import runtime
    from mprt.sched import mstate
    from mprt.sched.ctl import NPAUSE, S_PAUSEIDX
    from mprt.shm import malloc
    from mprt.shm.layout import GC_MARKBYTES, GC_MARKCPUNS, GC_MARKOBJS
    m = mstate.current_m_or_none()
    q, s = m.q, m.ctl.sched
    keep = complete_tree(GCNode, 20_000)          # some live heap to mark
    ms0 = runtime.MemStats()
    runtime.ReadMemStats(ms0)
    i0 = q[s + S_PAUSEIDX]
    done = mprt.chan(2)
    t = time.perf_counter()
    for _ in range(2):
        mprt.go(churn, float(seconds), done)
    allocs = done.recv() + done.recv()
    wall = time.perf_counter() - t
    i1 = q[s + S_PAUSEIDX]
    ms = runtime.MemStats()
    runtime.ReadMemStats(ms)
    pb = m.ctl.base["pause"]
    stops = [int(q[pb + 2 * (k % NPAUSE)]) for k in range(max(i0, i1 - NPAUSE), i1)]
    del keep
    root = complete_tree(GCNode, nodes)
    h = malloc.current()
    rows = []
    for _ in range(3):
        runtime.GC()
        g = h.gc
        rows.append((int(g[GC_MARKBYTES]), int(g[GC_MARKOBJS]), int(g[GC_MARKCPUNS])))
    del root
    b, o, cpu = sorted(rows, key=lambda r: r[2])[1]
    return {"stops_ns": stops, "cycles": int(ms.NumGC - ms0.NumGC), "gccpu": float(ms.GCCPUFraction),
            "allocs_per_s": allocs / wall, "mark_bytes": b, "mark_objs": o, "mark_cpu_ns": cpu,
            "new_us": new_us(lambda: mprt.new(Pair))}


@mprt.struct
class Pair:
    left: mprt.Ptr
    right: mprt.Ptr


def new_us(make, n=100_000):
    """Microseconds per object of one make() (the best of 5 runs of n, the objects dropped as made)."""
    best = None
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            make()
        dt = (time.perf_counter() - t) / n * 1e6
        best = dt if best is None else min(best, dt)
    return best


def _cpython_churn(seconds):
    """One process's share of cpython_gc's churn: (allocations, pauses in ns)."""
    import gc
    pauses, t0 = [], [0.0]

    def cb(phase, info):
        if phase == "start":
            t0[0] = time.perf_counter_ns()
        else:
            pauses.append(time.perf_counter_ns() - t0[0])
    keep = [TreeNode(None, None) for _ in range(10_000)]
    gc.callbacks.append(cb)
    t = time.monotonic()
    n = 0
    while time.monotonic() - t < seconds:
        for _ in range(100):
            a = TreeNode(TreeNode(TreeNode(None, None), None), TreeNode(None, None))
            a.left.left.right = a
            s = np.ones(16)
            n += 5
        del a, s
    gc.callbacks.remove(cb)
    del keep
    return n, pauses


# Go itself on the same churn (the gc suite's third column, where a go toolchain is on PATH): the
# yardstick for the pauses, whose tail on a shared machine is the machine's (a process kept from its
# CPU for milliseconds holds up any stop of the world).  Pauses are gctrace's stop-the-world clock
# times: sweep termination and mark termination of every cycle, as mprt's pause list has them.
GO_CHURN = """package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

type Node struct {
	left, right *Node
	v           int64
}

var sinkN *Node
var sinkS []float64

func churn(d time.Duration, done chan int) {
	t := time.Now()
	n := 0
	for time.Since(t) < d {
		for i := 0; i < 100; i++ {
			a := &Node{}
			a.left = &Node{}
			a.right = &Node{}
			a.left.left = &Node{}
			a.left.left.right = a
			s := make([]float64, 16)
			for j := range s {
				s[j] = 1
			}
			sinkN, sinkS = a, s
			n += 5
		}
	}
	done <- n
}

func main() {
	secs, _ := strconv.ParseFloat(os.Args[1], 64)
	keep := make([]*Node, 20000)
	for i := range keep {
		keep[i] = &Node{}
	}
	done := make(chan int, 2)
	t := time.Now()
	d := time.Duration(secs * float64(time.Second))
	go churn(d, done)
	go churn(d, done)
	n := <-done + <-done
	fmt.Println(n, time.Since(t).Seconds(), len(keep))
}
"""


def _go_run(source, args, **env):
    """Build a Go program (the go toolchain on PATH) and run it at GOMAXPROCS=2 with env added:
    (the finished process, the toolchain's version), or {"error": ...}."""
    import shutil
    import subprocess
    import tempfile
    go = shutil.which("go")
    if go is None:
        return {"error": "no go toolchain on PATH"}
    with tempfile.TemporaryDirectory(prefix="mprt-bench-go-") as d:
        with open(os.path.join(d, "main.go"), "w") as f:
            f.write(source)
        with open(os.path.join(d, "go.mod"), "w") as f:
            f.write("module bench\n\ngo 1.13\n")
        b = subprocess.run([go, "build", "-o", "prog", "."], cwd=d, capture_output=True, text=True,
                           env=dict(os.environ, GOFLAGS="-mod=mod", GO111MODULE="on"))
        if b.returncode:
            return {"error": f"go build: {b.stderr.strip()[-200:]}"}
        r = subprocess.run([os.path.join(d, "prog"), *args], capture_output=True, text=True,
                           env=dict(os.environ, GOMAXPROCS="2", **env))
        ver = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True).stdout.strip()
    if r.returncode:
        return {"error": f"exit status {r.returncode}: {r.stderr.strip()[-200:]}"}
    return r, ver or "go"


def go_gc(seconds):
    """GO_CHURN built and run with GOMAXPROCS=2 and gctrace=1: its stop-the-world pauses and
    allocations per second, and the toolchain's version."""
    import re
    r = _go_run(GO_CHURN, [str(seconds)], GODEBUG="gctrace=1")
    if isinstance(r, dict):
        return r
    r, ver = r
    stops = []
    for ln in r.stderr.splitlines():
        m = re.search(r": ([0-9.]+)\+([0-9.]+)\+([0-9.]+) ms clock", ln)
        if m:
            stops += [int(float(m.group(1)) * 1e6), int(float(m.group(3)) * 1e6)]
    n, wall, _ = r.stdout.split()
    return {"stops_ns": stops, "allocs_per_s": int(n) / float(wall), "version": ver or "go"}


def cpython_gc(seconds, nodes):
    """The peer of mprt_gc: CPython's own collector under the same churn in as many processes as
    mprt's goroutines (2; every collection's pause, by gc.callbacks), and over a tree of the same
    size (a full collection)."""
    import gc
    import multiprocessing as mp
    with mp.get_context("fork").Pool(2) as pool:
        pool.map(trivial, range(4))                      # warm, as mprt's Ms are
        t = time.perf_counter()
        parts = pool.map(_cpython_churn, [seconds, seconds])
        wall = time.perf_counter() - t
    allocs = sum(n for n, _ in parts)
    pauses = [x for _, ps in parts for x in ps]
    nodes_list = [TreeNode(None, None) for _ in range(nodes)]
    for i in range(nodes - 1, 0, -1):        # the same complete tree, heap order
        p = nodes_list[(i - 1) // 2]
        if i % 2:
            p.left = nodes_list[i]
        else:
            p.right = nodes_list[i]
    root = nodes_list[0]
    del nodes_list
    full = []
    for _ in range(3):
        t = time.process_time_ns()
        gc.collect()
        full.append(time.process_time_ns() - t)
    del root
    import sys
    return {"stops_ns": pauses, "allocs_per_s": allocs / wall, "full_ns": sorted(full)[1],
            "node_bytes": sys.getsizeof(TreeNode(None, None)), "new_us": new_us(lambda: TreeNode(None, None))}


def _boot_main():
    """Main of the boot measurement: every M started and a goroutine run on each, as the peers
    start their workers and run warm-up tasks (peers.start: 2 tasks per worker)."""
    from mprt import runtime
    k = 2 * runtime.GOMAXPROCS(0)
    wg = mprt.sync.WaitGroup()
    wg.add(k)
    for i in range(k):
        mprt.go(_worker, wg, i)
    wg.wait()


def mprt_boot(reps):
    """Boot plus teardown of a runtime (GOMAXPROCS from the environment) whose main runs a
    goroutine per P and returns."""
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        mprt.run(_boot_main)
        out.append(time.perf_counter() - t)
    return {"s": sorted(out)[len(out) // 2]}


# ---- idioms: Go programs as Go programmers write them, and each peer's nearest equivalent ----

def _job(j):
    return 2 * j


def _pool_worker(jobs, results):
    for j in jobs:
        results.send(_job(j))


def mprt_worker_pool(n, workers):
    """Go by Example's worker pool: jobs and results channels buffered for every job, `workers`
    goroutines ranging over jobs; main sends every job, closes, and collects the results."""
    jobs, results = mprt.chan(n), mprt.chan(n)
    for _ in range(workers):
        mprt.go(_pool_worker, jobs, results)
    for j in range(n):
        jobs.send(j)
    jobs.close()
    return sum(results.recv() for _ in range(n))


def _gen(n, out):
    for i in range(n):
        out.send(i)
    out.close()


def _sq(inp, out):
    for v in inp:
        out.send(v * v)
    out.close()


def mprt_pipeline(n):
    """The Go blog's pipeline: gen -> sq -> main's sum, over channels buffered for 100."""
    a, b = mprt.chan(100), mprt.chan(100)
    mprt.go(_gen, n, a)
    mprt.go(_sq, a, b)
    return sum(b)


def mprt_fanin(n):
    """Two producers, each on its own channel; main selects over both until both are closed."""
    a, b = mprt.chan(100), mprt.chan(100)
    mprt.go(_gen, n // 2, a)
    mprt.go(_gen, n - n // 2, b)
    live, total = [a, b], 0
    while live:
        i, v = mprt.select(*[c.recv for c in live])
        if v is None:
            live.pop(i)
        else:
            total += v
    return total


@mprt.struct
class Counter:
    n: np.int64


def _count(c, mu, k, wg):
    for _ in range(k):
        with mu:
            c.n += 1
    wg.done()


def mprt_mutex(goroutines, k):
    """A heap counter behind a sync.Mutex, incremented k times by each goroutine."""
    c, mu, wg = mprt.new(Counter), mprt.sync.Mutex(), mprt.sync.WaitGroup()
    wg.add(goroutines)
    for _ in range(goroutines):
        mprt.go(_count, c, mu, k, wg)
    wg.wait()
    return int(c.n)


def _timed(fn, *args):
    t = time.perf_counter()
    r = fn(*args)
    return time.perf_counter() - t, r


def mprt_idioms(n_pool, n_pipe, n_fanin, goroutines, k, workers):
    """Each idiom once, warm (every M started first): {name: [seconds, result]}."""
    mprt_worker_pool(200, workers)
    return {"worker_pool": _timed(mprt_worker_pool, n_pool, workers), "pipeline": _timed(mprt_pipeline, n_pipe),
            "fanin": _timed(mprt_fanin, n_fanin), "mutex": _timed(mprt_mutex, goroutines, k)}


def _mp_gen(n, q):
    for i in range(n):
        q.put(i)
    q.put(None)


def _mp_sq(qin, qout):
    while True:
        v = qin.get()
        if v is None:
            qout.put(None)
            return
        qout.put(v * v)


def _mp_send(n, conn):
    for i in range(n):
        conn.send(i)
    conn.send(None)
    conn.close()


def _mp_count(v, k):
    for _ in range(k):
        with v.get_lock():
            v.value += 1


def mp_idioms(n_pool, n_pipe, n_fanin, goroutines, k, workers):
    """The peers' nearest equivalents, with multiprocessing (fork): Pool.imap_unordered(chunksize=1)
    over `workers` processes; a pipeline of processes over multiprocessing.Queues (bounded to 100);
    two processes sending over Pipes, read with multiprocessing.connection.wait (select's
    equivalent); a multiprocessing.Value with its lock, incremented by `goroutines` processes."""
    import multiprocessing as mp
    from multiprocessing.connection import wait
    ctx = mp.get_context("fork")
    out = {}
    with ctx.Pool(workers) as pool:
        pool.map(trivial, range(2 * workers))
        out["worker_pool"] = _timed(lambda: sum(pool.imap_unordered(_job, range(n_pool), chunksize=1)))

    def pipeline():
        a, b = ctx.Queue(100), ctx.Queue(100)
        ps = [ctx.Process(target=_mp_gen, args=(n_pipe, a)), ctx.Process(target=_mp_sq, args=(a, b))]
        for p in ps:
            p.start()
        total = 0
        while (v := b.get()) is not None:
            total += v
        for p in ps:
            p.join()
        return total
    out["pipeline"] = _timed(pipeline)

    def fanin():
        conns, ps = [], []
        for share in (n_fanin // 2, n_fanin - n_fanin // 2):
            r, w = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_mp_send, args=(share, w))
            p.start()
            w.close()
            conns.append(r)
            ps.append(p)
        total = 0
        while conns:
            for c in wait(conns):
                v = c.recv()
                if v is None:
                    conns.remove(c)
                else:
                    total += v
        for p in ps:
            p.join()
        return total
    out["fanin"] = _timed(fanin)

    def mutex():
        v = ctx.Value("q", 0)
        ps = [ctx.Process(target=_mp_count, args=(v, k)) for _ in range(goroutines)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
        return v.value
    out["mutex"] = _timed(mutex)
    return out


# ---- sync: atomics across Ms, a Ticker's jitter ----

@mprt.struct
class Word:
    n: np.int64


def _atomic_adder(r, k, wg):
    from mprt.sync import atomic
    for _ in range(k):
        atomic.AddInt64(r, 1)
    wg.done()


def _jitter(intervals, period):
    """(p50, p99) of |interval - period| in microseconds."""
    d = sorted(abs(x - period) * 1e6 for x in intervals)
    return d[len(d) // 2], d[min(len(d) - 1, int(len(d) * 0.99))]


def _map_ops(m, keys, mu=None):
    """Insert every key (its index as the value), then look each up: the seconds it took."""
    t = time.perf_counter()
    for i, key in enumerate(keys):
        if mu is None:
            m[key] = i
        else:
            with mu:
                m[key] = i
    for i, key in enumerate(keys):
        if mu is None:
            v = m[key]
        else:
            with mu:
                v = m[key]
        assert v == i
    return time.perf_counter() - t


def _map_half(m, mu, keys, wg, res):
    res.send(_map_ops(m, keys, mu))
    wg.done()


def mprt_sync(k, ticks):
    """atomic.AddInt64 on one heap word by 2 goroutines on 2 Ms (k each), a heap map's inserts and
    lookups (one goroutine; two on 2 Ms sharing it under a Mutex), and the intervals a goroutine
    sees between the ticks of a 1 ms Ticker."""
    from mprt import time as mtime
    from mprt.sync import WaitGroup
    w = mprt.new(Word)
    r = mprt.ref(w, "n")
    wg = WaitGroup()
    wg.add(2)
    t = time.perf_counter()
    for _ in range(2):
        mprt.go(_atomic_adder, r, k, wg)
    wg.wait()
    s = time.perf_counter() - t
    from mprt.sync import Mutex
    n = k // 10
    keys = [f"key{i}" for i in range(n)]
    map1 = _map_ops(mprt.make(mprt.map(str, np.int64)), keys)
    shared, mu, res = mprt.make(mprt.map(str, np.int64)), Mutex(), mprt.chan(2)
    wg = WaitGroup()
    wg.add(2)
    t = time.perf_counter()
    mprt.go(_map_half, shared, mu, keys[::2], wg, res)
    mprt.go(_map_half, shared, mu, keys[1::2], wg, res)
    wg.wait()
    map2 = time.perf_counter() - t
    tk = mtime.NewTicker(0.001)
    tk.C.recv()
    seen = []
    for _ in range(ticks):
        tk.C.recv()
        seen.append(time.monotonic())
    tk.Stop()
    return {"atomic_s": s, "atomic_ok": int(w.n) == 2 * k, "map_n": n, "map1_s": map1, "map2_s": map2,
            "jitter": _jitter([b - a for a, b in zip(seen, seen[1:])], 0.001)}


def _mp_adder(v, k):
    for _ in range(k):
        with v.get_lock():
            v.value += 1


def _mp_map_half(d, keys):
    _map_ops(d, keys)


def _gated(go, fn, args):
    go.wait()
    fn(*args)


def _timed_procs(ctx, fn, argss):
    """Seconds for processes running fn(*args), one per args, all started and waiting before the
    clock starts (as mprt's Ms are running before its goroutines start)."""
    go = ctx.Event()
    ps = [ctx.Process(target=_gated, args=(go, fn, args)) for args in argss]
    for p in ps:
        p.start()
    time.sleep(0.05)                     # every process at the gate
    t = time.perf_counter()
    go.set()
    for p in ps:
        p.join()
    return time.perf_counter() - t


def mp_sync(k, ticks):
    """The peer: a multiprocessing.Value and its lock, incremented by 2 processes (k each); a
    Manager().dict() (one process, then shared by two), a plain dict (one process: the ceiling);
    a thread's time.sleep(0.001) loop as the nearest thing to a ticker."""
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    v = ctx.Value("q", 0)
    s = _timed_procs(ctx, _mp_adder, [(v, k)] * 2)
    n = k // 10
    keys = [f"key{i}" for i in range(n)]
    plain = _map_ops({}, keys)
    with ctx.Manager() as man:
        map1 = _map_ops(man.dict(), keys)
        d = man.dict()
        map2 = _timed_procs(ctx, _mp_map_half, [(d, keys[j::2]) for j in range(2)])
    seen = []
    nxt = time.monotonic()
    for _ in range(ticks + 1):
        nxt += 0.001
        time.sleep(max(0.0, nxt - time.monotonic()))
        seen.append(time.monotonic())
    return {"atomic_s": s, "atomic_ok": v.value == 2 * k, "map_n": n, "map1_s": map1, "map2_s": map2,
            "plain_s": plain, "jitter": _jitter([b - a for a, b in zip(seen, seen[1:])], 0.001)}


GO_SYNC = """package main

import (
\t"fmt"
\t"os"
\t"sort"
\t"strconv"
\t"sync"
\t"sync/atomic"
\t"time"
)

func main() {
\tk, _ := strconv.Atoi(os.Args[1])
\tticks, _ := strconv.Atoi(os.Args[2])
\tvar cnt int64
\tvar wg sync.WaitGroup
\tt := time.Now()
\tfor g := 0; g < 2; g++ {
\t\twg.Add(1)
\t\tgo func() {
\t\t\tfor i := 0; i < k; i++ {
\t\t\t\tatomic.AddInt64(&cnt, 1)
\t\t\t}
\t\t\twg.Done()
\t\t}()
\t}
\twg.Wait()
\ts := time.Since(t).Seconds()
\tn := k / 10
\tkeys := make([]string, n)
\tfor i := range keys {
\t\tkeys[i] = "key" + strconv.Itoa(i)
\t}
\tops := func(m map[string]int, mu *sync.Mutex, ks []string) {
\t\tfor i, key := range ks {
\t\t\tmu.Lock()
\t\t\tm[key] = i
\t\t\tmu.Unlock()
\t\t}
\t\tfor i, key := range ks {
\t\t\tmu.Lock()
\t\t\tif m[key] != i {
\t\t\t\tpanic("lost")
\t\t\t}
\t\t\tmu.Unlock()
\t\t}
\t}
\tone := map[string]int{}
\tt = time.Now()
\tfor i, key := range keys {
\t\tone[key] = i
\t}
\tfor i, key := range keys {
\t\tif one[key] != i {
\t\t\tpanic("lost")
\t\t}
\t}
\tmap1 := time.Since(t).Seconds()
\tshared := map[string]int{}
\tvar mu sync.Mutex
\tvar halves [2][]string
\tfor i, key := range keys {
\t\thalves[i%2] = append(halves[i%2], key)
\t}
\tt = time.Now()
\tfor g := 0; g < 2; g++ {
\t\twg.Add(1)
\t\tgo func(ks []string) {
\t\t\tops(shared, &mu, ks)
\t\t\twg.Done()
\t\t}(halves[g])
\t}
\twg.Wait()
\tmap2 := time.Since(t).Seconds()
\ttk := time.NewTicker(time.Millisecond)
\t<-tk.C
\tlast := time.Now()
\td := make([]float64, 0, ticks)
\tfor i := 0; i < ticks; i++ {
\t\t<-tk.C
\t\tnow := time.Now()
\t\tx := now.Sub(last).Seconds() - 0.001
\t\tif x < 0 {
\t\t\tx = -x
\t\t}
\t\td = append(d, x*1e6)
\t\tlast = now
\t}
\tsort.Float64s(d)
\tfmt.Println(s, cnt == int64(2*k), d[len(d)/2], d[len(d)*99/100], n, map1, map2)
}
"""


def go_sync(k, ticks):
    """GO_SYNC built and run at GOMAXPROCS=2: the same atomics and a 1 ms time.Ticker's jitter."""
    r = _go_run(GO_SYNC, [str(k), str(ticks)])
    if isinstance(r, dict):
        return r
    r, _ = r
    s, ok, p50, p99, n, map1, map2 = r.stdout.split()
    return {"atomic_s": float(s), "atomic_ok": ok == "true", "jitter": [float(p50), float(p99)],
            "map_n": int(n), "map1_s": float(map1), "map2_s": float(map2)}
