"""The benchmark workloads, importable by every runtime measured (the peers' workers find these
functions by name, as mprt's Ms do).

Each suite has one mprt program (`mprt_<suite>`, run as main under mprt.run in a fresh process) and
the plain functions its peers run.  Both sides do the same work with the same sizes; the mprt side
keeps its data in the shared heap, the peers in process memory (pickled to their workers).
"""
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
    cross = _round_trips(n)          # main on M0, the echo goroutine on a worker M
    out = mprt.chan()
    mprt.go(_same_m, n, out)         # both goroutines on one worker M
    return {"cross_us": cross, "same_us": out.recv()}


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
    stops = [int(q[pb + 2 * (k % NPAUSE)]) for k in range(max(i0 + 1, i1 - NPAUSE), i1)]
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
            "allocs_per_s": allocs / wall, "mark_bytes": b, "mark_objs": o, "mark_cpu_ns": cpu}


def cpython_gc(seconds, nodes):
    """The peer of mprt_gc: CPython's own collector in one process, under the same churn (every
    collection's pause, by gc.callbacks) and over a tree of the same size (a full collection)."""
    import gc
    pauses, t0 = [], [0.0]

    def cb(phase, info):
        if phase == "start":
            t0[0] = time.perf_counter_ns()
        else:
            pauses.append(time.perf_counter_ns() - t0[0])
    keep = [TreeNode(None, None) for _ in range(20_000)]
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
    return {"stops_ns": pauses, "allocs_per_s": n / seconds, "full_ns": sorted(full)[1],
            "node_bytes": sys.getsizeof(TreeNode(None, None))}


def mprt_boot(reps):
    """Boot plus teardown of a runtime whose main returns at once (GOMAXPROCS from the environment)."""
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        mprt.run(trivial)
        out.append(time.perf_counter() - t)
    return {"s": sorted(out)[len(out) // 2]}
