"""Collector benchmarks, with their peers in the same run where a peer exists (the machine is
shared and noisy: compare ratios, not absolute figures).

    python scripts/bench_gc.py [--json FILE] [--depths 16,18] [--seconds S] [only ...]

    pauses       2 goroutines on 2 Ms allocate short-lived objects (structs, small trees, slices)
                 for S seconds at the default GOGC: PauseNs per cycle (both stops of the world),
                 each stop alone, cycles run, GCCPUFraction
    mark         the coordinator marking a 1M-object binary tree of 24-byte nodes, the same of
                 256-byte nodes (2 pointers and 30 float64), and a 100k-object linked list, that
                 main holds, the Ms idle: MB/ms and objects/s of mark work (CPU and wall)
    binarytrees  examples/binarytrees.py at each depth with GODEBUG=gctrace=1, against the same
                 algorithm on plain CPython objects spread over a multiprocessing.Pool of the
                 same size (GOMAXPROCS), in the same run: wall time and the ratio

Each mprt figure comes from a fresh program (a subprocess), so runtimes never meet.
"""
import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time

from mprt.bench.work import (
    GCNode,
    binarytrees_output,
    binarytrees_plan,
    bottom_up,
    churn,
    complete_tree,
    item_check,
    trees,
)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# ---- the mprt programs (run as: python bench_gc.py --child KIND ARG) ----

def child(kind, arg):
    import numpy as np

    import mprt
    from mprt import runtime
    from mprt.shm import malloc
    from mprt.shm.layout import GC_MARKBYTES, GC_MARKCPUNS, GC_MARKNS, GC_MARKOBJS

    Node = GCNode

    @mprt.struct
    class Fat:                  # a node that carries data: 2 pointers and 240 bytes of numbers
        left: mprt.Ptr
        right: mprt.Ptr
        data: np.float64
        d1: np.float64
        d2: np.float64
        d3: np.float64
        d4: np.float64
        d5: np.float64
        d6: np.float64
        d7: np.float64
        d8: np.float64
        d9: np.float64
        d10: np.float64
        d11: np.float64
        d12: np.float64
        d13: np.float64
        d14: np.float64
        d15: np.float64
        d16: np.float64
        d17: np.float64
        d18: np.float64
        d19: np.float64
        d20: np.float64
        d21: np.float64
        d22: np.float64
        d23: np.float64
        d24: np.float64
        d25: np.float64
        d26: np.float64
        d27: np.float64
        d28: np.float64
        d29: np.float64

    def main():
        out = {}
        if kind == "pauses":
            from mprt.sched import mstate
            from mprt.sched.ctl import NPAUSE, S_NSTW, S_PAUSEIDX
            m = mstate.current_m_or_none()
            q, s = m.q, m.ctl.sched
            keep = [mprt.new(Node) for _ in range(20000)]       # some live heap to mark
            done = mprt.chan(2)
            ms0 = runtime.MemStats()
            runtime.ReadMemStats(ms0)
            i0 = q[s + S_PAUSEIDX]
            for _ in range(2):
                mprt.go(churn, float(arg), done)
            n = done.recv() + done.recv()
            i1 = q[s + S_PAUSEIDX]
            ms = runtime.MemStats()
            runtime.ReadMemStats(ms)
            cycles = ms.NumGC - ms0.NumGC
            pauses = [ms.PauseNs[(ms0.NumGC + k) % 256] for k in range(min(cycles, 256))]
            pb = m.ctl.base["pause"]
            stops = [q[pb + 2 * (k % NPAUSE)] for k in range(max(i0 + 1, i1 - NPAUSE), i1)]
            out.update(allocs=n, cycles=cycles, pauses=pauses, stops=stops, gccpu=ms.GCCPUFraction,
                       nstw=q[s + S_NSTW], kept=len(keep))
        elif kind == "mark":
            h = malloc.current()
            n = (1 << 20) - 1

            def tree(T):                                   # a complete binary tree, heap order
                return complete_tree(T, n)

            def measure():
                rows = []
                for _ in range(3):
                    runtime.GC()
                    g = h.gc
                    rows.append((int(g[GC_MARKBYTES]), int(g[GC_MARKOBJS]), int(g[GC_MARKNS]),
                                 int(g[GC_MARKCPUNS])))
                return rows

            root = tree(Node)
            res = {"tree": measure()}                     # root holds the tree
            root = tree(Fat)
            runtime.GC()
            res["fat"] = measure()
            del root
            runtime.GC()
            head = None
            for _ in range(100_000):                       # a linked list: the narrow path
                x = mprt.new(Node)
                x.left = head
                head = x
            del x
            res["list"] = measure()
            out.update(res)
        print(json.dumps(out), flush=True)

    mprt.run(main)


def run_child(kind, arg, env=None, timeout=1200):
    e = dict(os.environ)
    for k in ("GOMAXPROCS", "GODEBUG", "GOGC"):
        e.pop(k, None)
    e.update(env or {})
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", kind, str(arg)],
                       capture_output=True, text=True, env=e, timeout=timeout)
    if p.returncode:
        raise RuntimeError(f"{kind} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return 0
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


# ---- benchmarks ----

def bench_pauses(seconds):
    r = run_child("pauses", seconds, {"GOMAXPROCS": "2"})
    p, st = r["pauses"], r["stops"]
    res = {"cycles": r["cycles"], "allocs": r["allocs"], "gccpu": r["gccpu"],
           "pause_p50_us": pct(p, 50) / 1e3, "pause_p90_us": pct(p, 90) / 1e3, "pause_p99_us": pct(p, 99) / 1e3,
           "pause_max_us": max(p) / 1e3 if p else 0,
           "stop_p50_us": pct(st, 50) / 1e3, "stop_p99_us": pct(st, 99) / 1e3}
    print(f"pauses: {r['cycles']} cycles in {seconds} s of allocation on 2 Ms ({r['allocs'] / seconds / 1e3:.0f}k objects/s)")
    print(f"  PauseNs per cycle (two stops): p50 {res['pause_p50_us']:.0f} us, p90 {res['pause_p90_us']:.0f} us, "
          f"p99 {res['pause_p99_us']:.0f} us, max {res['pause_max_us']:.0f} us")
    print(f"  each stop of the world: p50 {res['stop_p50_us']:.0f} us, p99 {res['stop_p99_us']:.0f} us")
    print(f"  GCCPUFraction {r['gccpu']:.3f}")
    return res


def bench_mark():
    r = run_child("mark", 0, {"GOMAXPROCS": "2"})
    res = {}
    for name in ("tree", "fat", "list"):
        rows = r[name]
        b, o, wall, cpu = (statistics.median(x[i] for x in rows) for i in range(4))
        res[name] = {"bytes": b, "objects": o, "wall_ms": wall / 1e6, "cpu_ms": cpu / 1e6,
                     "mb_per_ms_cpu": b / 2**20 / (cpu / 1e6), "mb_per_ms_wall": b / 2**20 / (wall / 1e6),
                     "objs_per_s": o / (cpu / 1e9)}
        x = res[name]
        print(f"mark {name}: {o:,.0f} objects, {b / 2**20:.1f} MB in {x['cpu_ms']:.0f} ms CPU ({x['wall_ms']:.0f} ms wall):"
              f" {x['mb_per_ms_cpu']:.2f} MB/ms, {x['objs_per_s'] / 1e6:.2f} M objects/s")
    return res


# the peer: the same algorithm on plain CPython objects (mprt.bench.work), the trees of each depth
# split over a Pool

def peer_binarytrees(max_depth, procs):
    with mp.Pool(procs) as pool:
        t = time.perf_counter()
        checks = [item_check(bottom_up(max_depth + 1))]
        long_lived = bottom_up(max_depth)
        for d, _, share in binarytrees_plan(max_depth, procs):
            checks.append(sum(pool.starmap(trees, [(d, k) for k in share])))
        lines = binarytrees_output(max_depth, checks, item_check(long_lived))
        return time.perf_counter() - t, lines


def bench_binarytrees(depths, procs=2):
    res = {}
    for d in depths:
        env = dict(os.environ, GOMAXPROCS=str(procs), GODEBUG="gctrace=1")
        t = time.perf_counter()
        p = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "binarytrees.py"), str(d)],
                           capture_output=True, text=True, env=env, timeout=3600)
        wall = time.perf_counter() - t
        if p.returncode:
            raise RuntimeError(p.stderr[-2000:])
        gcs = [ln for ln in p.stderr.splitlines() if ln.startswith("gc ")]
        peer, lines = peer_binarytrees(d, procs)
        same = p.stdout.strip().splitlines() == lines
        res[d] = {"mprt_s": wall, "cpython_pool_s": peer, "ratio": wall / peer, "gc_cycles": len(gcs),
                  "output_matches": same, "last_gctrace": gcs[-1] if gcs else ""}
        print(f"binarytrees {d}: mprt {wall:.1f} s ({len(gcs)} GC cycles), CPython objects + Pool({procs}) "
              f"{peer:.1f} s: {wall / peer:.1f}x; output identical: {same}")
        if gcs:
            print(f"  {gcs[-1]}")
    return res


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json")
    ap.add_argument("--depths", default="16,18")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("only", nargs="*")
    a = ap.parse_args()
    todo = a.only or ["pauses", "mark", "binarytrees"]
    out = {}
    if "pauses" in todo:
        out["pauses"] = bench_pauses(a.seconds)
    if "mark" in todo:
        out["mark"] = bench_mark()
    if "binarytrees" in todo:
        out["binarytrees"] = bench_binarytrees([int(x) for x in a.depths.split(",")])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
