"""`mprt bench`: mprt and its peers on the same work, in the same run.

The machine a benchmark runs on is shared and noisy, so no figure stands alone: every suite runs
mprt and the peers (peers.py) one after another in the same invocation and reports each figure as
a ratio against each peer.  A ratio is mprt's advantage: peer time / mprt time (or mprt rate / peer
rate), so > 1 means mprt did better.  Every measurement is a fresh process (_child.py): runtimes
never meet, and nothing warmed by one measurement helps the next.

    spawn        fan-out of trivial tasks: go(worker, wg, i) (and go(wg.done)) + WaitGroup vs one
                 submission per task
    chan         round trip: a channel between goroutines on two Ms (and on one M) vs one task's
                 round trip on each peer and a multiprocessing.Pipe
    cpu          CPU-bound fan-out (pure Python) at each GOMAXPROCS / worker count: time, speedup
    array        parallel sums over one large float64 array: a shared-heap slice read zero-copy by
                 goroutines vs each peer's way of getting the array to its workers
    gc           stop-the-world pauses under allocation on 2 Ms, GC CPU fraction, the coordinator's
                 mark rate; the peer is CPython's own collector on the same churn and the same tree
    boot         start and stop of the runtime (GOMAXPROCS Ms) vs a pool of as many workers
    binarytrees  examples/binarytrees.py vs the same algorithm on plain objects over each peer
    idioms       Go's idioms (a worker pool, a pipeline, fan-in with select, a Mutex-protected
                 counter) vs multiprocessing's nearest equivalents
    sync         sync/atomic adds across 2 Ms vs a multiprocessing.Value and its lock, a heap map
                 vs a Manager().dict(), and a 1 ms Ticker's jitter; Go itself where a go toolchain
                 is on PATH

The goals of the scheduler and the collector are checked where a suite measures them.
"""
import json
import os
import shutil
import subprocess
import sys
import time

from . import peers

SUITES = ("spawn", "chan", "cpu", "array", "gc", "boot", "binarytrees", "idioms", "sync")
QUICK = {"spawn": 2000, "chan": 500, "cpu": (40, 0.005), "array": (1 << 22, 3), "gc": (1.0, 1 << 18),
         "boot": 3, "binarytrees": 12, "idioms": (2000, 10000, 4000, 8, 200),
         "sync": (5000, 200)}
FULL = {"spawn": 20000, "chan": 5000, "cpu": (200, 0.010), "array": (1 << 25, 5), "gc": (5.0, 1 << 20),
        "boot": 5, "binarytrees": 16, "idioms": (20000, 100000, 20000, 8, 2000),
        "sync": (50000, 2000)}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "examples", "binarytrees.py")


def add_parser(sub):
    import argparse
    b = sub.add_parser("bench", help="benchmark suites: mprt and its peers in the same run, as ratios",
                       description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("suites", nargs="*", metavar="SUITE", help=f"any of {', '.join(SUITES)} (default: all)")
    b.add_argument("--procs", default=None,
                   help="GOMAXPROCS values for the scaling suite, e.g. 1,2,4 (default 1..NumCPU and 2x NumCPU;"
                        " above 16 CPUs, powers of two); the other suites run at NumCPU")
    b.add_argument("--vs", default=",".join(peers.ALL),
                   help=f"peers to compare with (default {','.join(peers.ALL)}; missing ones are skipped with a line)")
    b.add_argument("--quick", action="store_true", help="small sizes: every suite in about a minute")
    b.add_argument("--json", default=None, metavar="FILE", help="write every figure here")
    b.add_argument("--plot", default=None, metavar="FILE.png", help="speedup against GOMAXPROCS, with the ideal line")
    b.set_defaults(fn=main)


def _parse(args):
    bad = [s for s in args.suites if s not in SUITES]
    if bad:
        raise SystemExit(f"mprt bench: unknown suite {bad[0]!r} (want {', '.join(SUITES)})")
    ncpu = len(os.sched_getaffinity(0))
    if args.procs is None:      # every count up to 16 CPUs; beyond, powers of two (and NumCPU)
        upto = range(1, ncpu + 1) if ncpu <= 16 else [1 << k for k in range(ncpu.bit_length()) if 1 << k <= ncpu]
        procs = sorted(set(upto) | {ncpu, 2 * ncpu})
    else:
        try:
            procs = sorted({int(x) for x in args.procs.split(",") if x.strip()})
        except ValueError:
            procs = []
        if not procs or procs[0] < 1 or procs[-1] > 1024:
            raise SystemExit(f"mprt bench: --procs {args.procs!r}: want integers between 1 and 1024, e.g. 1,2,4")
    vs = [v.strip() for v in args.vs.split(",") if v.strip()]
    bad = [v for v in vs if v not in peers.ALL]
    if bad:
        raise SystemExit(f"mprt bench: unknown peer {bad[0]!r} (want {', '.join(peers.ALL)})")
    return args.suites or list(SUITES), procs, vs, ncpu


_quick = False


def main(args):
    global _quick
    suites, procs, vs, ncpu = _parse(args)
    _quick = args.quick
    sizes = QUICK if args.quick else FULL
    if "binarytrees" in suites and not os.path.exists(EXAMPLE):
        print(f"binarytrees: {EXAMPLE} not found (run from a checkout of mprt); suite skipped")
        suites.remove("binarytrees")
    gone = [(v, peers.missing(v)) for v in vs]
    for _, why in gone:
        if why:
            print(why)
    vs = [v for v, why in gone if not why]
    _header(ncpu, procs, vs, args.quick)
    iters = 0
    if "cpu" in suites:
        from .work import calibrate_loop
        iters = calibrate_loop(sizes["cpu"][1])
    steps = []
    for s in suites:
        steps += _plan(s, sizes[s], procs, vs, ncpu, iters)
    results = {}
    bar = _Progress(len(steps))
    for suite, rt, p, spec in steps:
        bar.show(f"{suite} {rt} P={p}")
        _settle()
        results[(suite, rt, p)] = _run(dict(spec, suite=suite, rt=rt, procs=p), p)
    bar.done()
    report = {"machine": {"ncpu": ncpu, "python": sys.version.split()[0], "quick": args.quick}, "suites": {}}
    for s in suites:
        report["suites"][s] = _REPORT[s](results, sizes[s], procs, vs, ncpu)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
        print(f"figures written to {args.json}")
    if args.plot:
        if "cpu" in suites:
            _plot(report["suites"]["cpu"], procs, ncpu, args.plot)
            print(f"speedup plot written to {args.plot}")
        else:
            print("--plot: the plot is of the cpu suite, which was not run")
    failed = [k for k, v in results.items() if "error" in v]
    return 1 if failed else 0


def _header(ncpu, procs, vs, quick):
    from .. import runtime
    print(f"mprt bench: Go {runtime.Version()[2:]}'s runtime on processes: goroutines are greenlets on worker "
          f"processes (Ms) pinned to CPUs,\nscheduled by GOMAXPROCS Ps with work stealing; their data is one "
          f"shared-memory heap, collected by a coordinating GC process.")
    print(f"{ncpu} CPUs, Python {sys.version.split()[0]}; peers: {', '.join(vs) or 'none'}; "
          f"scaling at GOMAXPROCS {','.join(map(str, procs))}; {'quick' if quick else 'full'} sizes.")
    print("Ratios are mprt's advantage (peer time / mprt time): > 1 means mprt did better.\n", flush=True)


class _Progress:
    """One line on stderr, redrawn in place on a terminal; a line per step otherwise."""

    def __init__(self, n):
        self.n, self.i, self.t0 = n, 0, time.monotonic()
        self.tty = sys.stderr.isatty()

    def show(self, what):
        self.i += 1
        w = 30
        k = w * (self.i - 1) // max(1, self.n)
        line = f"[{'#' * k}{'.' * (w - k)}] {self.i}/{self.n} {time.monotonic() - self.t0:5.0f} s  {what}"
        if self.tty:
            sys.stderr.write("\r" + line[:100].ljust(100))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self):
        if self.tty:
            sys.stderr.write("\r" + " " * 100 + "\r")
        sys.stderr.write(f"{self.n} measurements in {time.monotonic() - self.t0:.0f} s\n\n")
        sys.stderr.flush()


def _settle(quiet=0.15, most=15.0):
    """Wait (up to `most` seconds) until the CPUs are quiet: a peer's processes go on winding down
    after its measurement ends (Ray's and Dask's for seconds), and would be charged to the next."""
    import psutil
    t = time.monotonic()
    while time.monotonic() - t < most and psutil.cpu_percent(interval=0.25) > 100 * quiet:
        pass


def _run(spec, procs):
    env = dict(os.environ, GOMAXPROCS=str(procs))
    for k in ("GODEBUG", "GOGC"):
        env.pop(k, None)
    try:
        r = subprocess.run([sys.executable, "-m", "mprt.bench._child", json.dumps(spec)], capture_output=True,
                           text=True, env=env, timeout=1800, cwd=ROOT if os.path.isdir(ROOT) else None)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after 30 minutes"}
    if r.returncode:
        tail = r.stderr.strip().splitlines()[-1:] or [f"exit status {r.returncode}"]
        return {"error": f"exit status {r.returncode}: {tail[0][:200]}"}
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---- the steps of each suite ----

def _plan(suite, size, procs, vs, ncpu, iters):
    top = ncpu
    if suite == "spawn":
        return [("spawn", rt, top, {"n": size}) for rt in ["mprt", *vs]]
    if suite == "chan":
        return [("chan", rt, top, {"n": size}) for rt in ["mprt", "pipe", "threads", "asyncio", *vs]]
    if suite == "cpu":
        tasks = max(size[0], 10 * procs[-1])      # enough tasks to keep the most Ps busy
        return [("cpu", rt, p, {"tasks": tasks, "iters": iters}) for p in procs for rt in ["mprt", *vs]]
    if suite == "array":
        n, rounds = size
        return [("array", rt, top, {"n": n, "rounds": rounds, "chunks": 4 * top}) for rt in ["mprt", *vs]]
    if suite == "gc":
        rts = ("mprt", "cpython") + (("go",) if shutil.which("go") else ())    # Go itself: the pauses' yardstick
        return [("gc", rt, 2, {"seconds": size[0], "nodes": size[1]}) for rt in rts]
    if suite == "boot":
        return [("boot", rt, top, {"reps": size}) for rt in ["mprt", *vs]]
    if suite == "binarytrees":
        return [("binarytrees", rt, top, {"depth": size, "example": EXAMPLE}) for rt in ["mprt", *vs]]
    if suite == "sync":
        rts = ("mprt", "mp") + (("go",) if shutil.which("go") else ())
        return [("sync", rt, 2, {"k": size[0], "ticks": size[1]}) for rt in rts]
    if suite == "idioms":
        n_pool, n_pipe, n_fanin, g, k = size
        return [("idioms", rt, top, {"n_pool": n_pool, "n_pipe": n_pipe, "n_fanin": n_fanin, "goroutines": g, "k": k})
                for rt in ("mprt", "mp")]
    raise AssertionError(suite)


# ---- the reports: a table per suite, goals checked ----

def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.2f}M"
    if a >= 1e4:
        return f"{v / 1e3:.0f}k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def _table(title, cols, rows, goals=()):
    """rows: (metric, lower_is_better, {col: value or error string})."""
    print(title)
    width = [max(26, max((len(r[0]) for r in rows), default=0) + 2)] + [18] * len(cols)
    print("".join(h.ljust(w) for h, w in zip(["", *cols], width)).rstrip())
    out = []
    for metric, lower, vals in rows:
        m = vals.get("mprt")
        cells = [metric]
        rec = {"metric": metric, "lower_is_better": lower, "values": vals, "ratio": {}}
        for c in cols:
            v = vals.get(c)
            if isinstance(v, str) or v is None:
                cells.append((v or "-")[:16])
                continue
            cell = _fmt(v)
            if c != "mprt" and isinstance(m, (int, float)) and m and v:
                r = v / m if lower else m / v
                rec["ratio"][c] = r
                cell += f" ({r:.2f}x)"
            cells.append(cell)
        out.append(rec)
        print("".join(x.ljust(w) for x, w in zip(cells, width)).rstrip())
    gl = []
    for text, ok in goals:
        gl.append({"goal": text, "met": ok})
        verdict = "met" if ok else "MISSED" if ok is not None else "not measured"
        if _quick and not ok:
            verdict += " (at --quick sizes; the goals are set for the full sizes)"
        print(f"  goal: {text}: {verdict}")
    print(flush=True)
    return {"rows": out, "goals": gl}


def _val(results, key, f):
    r = results.get(key)
    if r is None:
        return None
    if "error" in r:
        return "failed"
    return f(r)


def _errors(results, suite):
    for (s, rt, p), r in results.items():
        if s == suite and "error" in r:
            print(f"  {rt} at P={p} failed: {r['error']}")


def _report_spawn(results, n, procs, vs, ncpu):
    cols = ["mprt", *vs]
    vals = {rt: _val(results, ("spawn", rt, ncpu), lambda r: n / r["s"]) for rt in cols}
    noarg = dict(vals, mprt=_val(results, ("spawn", "mprt", ncpu), lambda r: n / r["s_noarg"]))
    _errors(results, "spawn")
    goals = []
    m = vals.get("mprt")
    if isinstance(m, float):
        goals.append((f"go(worker, wg, i) >= 150k goroutines/s ({m / 1e3:.0f}k)", m >= 150e3))
    for peer in ("pool", "ppe"):
        if peer in vs and isinstance(vals.get(peer), float) and isinstance(m, float):
            x = m / vals[peer]
            goals.append((f"go(worker, wg, i) fan-out >= 4x {peer} ({x:.1f}x)", x >= 4))
    return _table(f"spawn: {n} trivial tasks trivial(i) on {ncpu} workers (tasks/s; goroutines collected by a "
                  f"WaitGroup; Pool.map chunksize=1; one submit per task)", cols,
                  [("go(worker, wg, i)", False, vals), ("go(wg.done), no arguments", False, noarg)], goals)


def _report_chan(results, n, procs, vs, ncpu):
    cols = ["mprt", "pipe", "threads", "asyncio", *vs]
    us = {rt: _val(results, ("chan", rt, ncpu), lambda r: r["rt_us"]) for rt in cols[1:]}
    # across Ms: against what crosses processes; on one M: against what stays in one process
    cross = {rt: us[rt] for rt in ["pipe", *vs]}
    cross["mprt"] = _val(results, ("chan", "mprt", ncpu), lambda r: r["cross_us"])
    same = {"threads": us["threads"], "asyncio": us["asyncio"]}
    same["mprt"] = _val(results, ("chan", "mprt", ncpu), lambda r: r["same_us"])
    _errors(results, "chan")
    goals = []
    if isinstance(cross["mprt"], float) and isinstance(cross.get("pipe"), float):
        x = cross["mprt"] / cross["pipe"]
        goals.append((f"round trip across Ms <= 0.5x a Pipe round trip ({x:.2f}x)", x <= 0.5))
    if isinstance(same["mprt"], float):
        goals.append((f"on one M <= 3 us per channel operation ({same['mprt'] / 4:.2f} us)", same["mprt"] / 4 <= 3))
    return _table(f"chan: {n} round trips (us, lower is better). Across Ms: a channel between processes, against "
                  f"a multiprocessing.Pipe and each peer's task round trip (timed over {min(n, 1000)}); on one M: "
                  f"against two threads over queue.SimpleQueue and two asyncio tasks over asyncio.Queue",
                  cols, [("round trip across Ms", True, cross), ("round trip on one M", True, same)], goals)


def _report_cpu(results, size, procs, vs, ncpu):
    tasks, work_s = max(size[0], 10 * procs[-1]), size[1]
    cols = ["mprt", *vs]
    rows, speed = [], {}
    for p in procs:
        rows.append((f"P={p}: seconds", True,
                     {rt: _val(results, ("cpu", rt, p), lambda r: r["s"]) for rt in cols}))
    base = procs[0]
    for rt in cols:
        t0 = _val(results, ("cpu", rt, base), lambda r: r["s"])
        speed[rt] = {p: (t0 / t if isinstance(t0, float) and isinstance(t, float) else None)
                     for p in procs for t in [_val(results, ("cpu", rt, p), lambda r: r["s"])]}
    for p in procs[1:]:
        rows.append((f"speedup P={base}->{p}", False, {rt: speed[rt][p] for rt in cols}))
    _errors(results, "cpu")
    goals = []
    if base == 1 and 2 in procs and speed["mprt"].get(2):
        goals.append((f"speedup from 1 to 2 Ms >= 1.9x ({speed['mprt'][2]:.2f}x)", speed["mprt"][2] >= 1.9))
    if 2 in procs and "pool" in vs:
        tm, tp = (_val(results, ("cpu", rt, 2), lambda r: r["s"]) for rt in ("mprt", "pool"))
        if isinstance(tm, float) and isinstance(tp, float):
            goals.append((f"P=2 at least as fast as Pool(2) ({tp / tm:.2f}x)", tp / tm >= 1.0))
    out = _table(f"cpu: {tasks} tasks of ~{work_s * 1e3:.0f} ms of pure Python (seconds, lower is better; "
                 f"speedup against P={base} of the same runtime)", cols, rows, goals)
    out["speedup"] = {rt: {str(p): v for p, v in s.items()} for rt, s in speed.items()}
    return out


def _report_array(results, size, procs, vs, ncpu):
    n, rounds = size
    cols = ["mprt", *vs]
    gb = n * 8 * rounds / 1e9
    vals = {rt: _val(results, ("array", rt, ncpu), lambda r: gb / r["s"] if r.get("ok") else "wrong sum")
            for rt in cols}
    _errors(results, "array")
    return _table(f"array: {rounds} parallel sums of one {n * 8 >> 20} MiB float64 array in {4 * ncpu} chunks "
                  f"(GB/s, higher is better)", cols, [("GB/s", False, vals)])


def _pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else None


def _report_gc(results, size, procs, vs, ncpu):
    seconds, nodes = size
    m, c = results.get(("gc", "mprt", 2), {}), results.get(("gc", "cpython", 2), {})
    g = results.get(("gc", "go", 2))
    cols = ["mprt", "cpython"] + (["go"] if g is not None else [])
    rows, goals = [], []
    if "error" in m or "error" in c or "error" in (g or {}):
        _errors(results, "gc")
    runs = {"mprt": m, "cpython": c, "go": g or {}}
    p50 = {k: _pct(r.get("stops_ns", []), 50) for k, r in runs.items()}
    p99 = {k: _pct(r.get("stops_ns", []), 99) for k, r in runs.items()}
    us = lambda d: {k: (v / 1e3 if v is not None else None) for k, v in d.items()}  # noqa: E731
    rows.append(("pause p50 (us)", True, us(p50)))
    rows.append(("pause p99 (us)", True, us(p99)))
    mark = None
    if m.get("mark_cpu_ns"):
        mark = m["mark_bytes"] / 2**20 / (m["mark_cpu_ns"] / 1e6)
        rows.append(("mark, objects/s", False, {"mprt": m["mark_objs"] / (m["mark_cpu_ns"] / 1e9),
                                                "cpython": nodes / (c["full_ns"] / 1e9) if c.get("full_ns") else None}))
        rows.append(("mark, MB/ms", False, {"mprt": mark, "cpython": nodes * c["node_bytes"] / 2**20 / (c["full_ns"] / 1e6)
                                            if c.get("full_ns") else None}))
    rows.append(("allocations/s", False, {"mprt": m.get("allocs_per_s"), "cpython": c.get("allocs_per_s")}))
    rows.append(("one new 2-pointer object (us)", True, {"mprt": m.get("new_us"), "cpython": c.get("new_us")}))
    if p50["mprt"] is not None:
        goals.append((f"stop-the-world p50 <= 100 us ({p50['mprt'] / 1e3:.0f} us)", p50["mprt"] <= 100e3))
        yard = (f"; {g['version']} on the same churn here: {p99['go'] / 1e3:.0f} us" if g and p99["go"] is not None
                else "")
        goals.append((f"stop-the-world p99 <= 500 us ({p99['mprt'] / 1e3:.0f} us{yard})", p99["mprt"] <= 500e3))
    if mark is not None:
        goals.append((f"mark >= 2 MB/ms ({mark:.2f} MB/ms)", mark >= 2))
    if m.get("new_us") is not None:
        goals.append((f"mprt.new of a 2-pointer struct <= 0.25 us ({m['new_us']:.2f} us)", m["new_us"] <= 0.25))
    out = _table(f"gc: 2 goroutines allocating for {seconds:g} s on 2 Ms ({m.get('cycles', '?')} cycles, "
                 f"GCCPUFraction {m.get('gccpu', 0):.3f}), then a complete tree of {nodes} objects marked; "
                 f"the peer is CPython's collector on the same churn in 2 processes (a Pool), and on the "
                 f"same tree" + (f"; go: {g.get('version', 'Go')} itself on the same churn at GOMAXPROCS=2 (its "
                                 f"gctrace's stop-the-world clock times)" if g is not None else ""), cols, rows, goals)
    out["gccpu"] = m.get("gccpu")
    return out


def _report_boot(results, reps, procs, vs, ncpu):
    cols = ["mprt", *vs]
    vals = {rt: _val(results, ("boot", rt, ncpu), lambda r: r["s"] * 1e3) for rt in cols}
    _errors(results, "boot")
    goals = []
    if isinstance(vals["mprt"], float):
        goals.append((f"boot plus teardown with GOMAXPROCS=2 < 100 ms ({vals['mprt']:.0f} ms)", vals["mprt"] < 100))
    return _table(f"boot: start and stop with {ncpu} workers, median of {reps} (ms, lower is better)", cols,
                  [("start + stop (ms)", True, vals)], goals)


def _report_binarytrees(results, depth, procs, vs, ncpu):
    cols = ["mprt", *vs]
    vals = {rt: _val(results, ("binarytrees", rt, ncpu), lambda r: r["s"]) for rt in cols}
    _errors(results, "binarytrees")
    m = results.get(("binarytrees", "mprt", ncpu), {})
    same = [rt for rt in vs if results.get(("binarytrees", rt, ncpu), {}).get("lines") == m.get("lines")]
    goals = []
    if "lines" in m:
        goals.append((f"output identical to the peers' ({', '.join(same) or 'none'})", len(same) == len(vs)))
    if isinstance(vals.get("mprt"), float) and isinstance(vals.get("pool"), float):
        x = vals["pool"] / vals["mprt"]
        goals.append((f"whole program >= 0.5x plain objects over Pool ({x:.2f}x)", x >= 0.5))
    out = _table(f"binarytrees: depth {depth}, {ncpu} goroutines / workers (seconds, lower is better; mprt "
                 f"includes interpreter start and boot)", cols, [("seconds", True, vals)], goals)
    if m.get("last_gctrace"):
        print(f"  {m['gc_cycles']} GC cycles; the last: {m['last_gctrace']}\n")
    out["gc_cycles"] = m.get("gc_cycles")
    return out


def _report_idioms(results, size, procs, vs, ncpu):
    n_pool, n_pipe, n_fanin, g, k = size
    cols = ["mprt", "mp"]
    want = {"worker_pool": n_pool * (n_pool - 1), "pipeline": sum(i * i for i in range(n_pipe)),
            "fanin": (n_fanin // 2) * (n_fanin // 2 - 1) // 2 + (n_fanin - n_fanin // 2) * (n_fanin - n_fanin // 2 - 1) // 2,
            "mutex": g * k}
    names = [("worker_pool", f"worker pool, {n_pool} jobs", n_pool),
             ("pipeline", f"3-stage pipeline, {n_pipe} items", n_pipe),
             ("fanin", f"fan-in with select, {n_fanin} items", n_fanin),
             ("mutex", f"Mutex counter, {g} x {k}", g * k)]
    rows = []
    for key, label, n in names:
        vals = {}
        for rt in cols:
            r = results.get(("idioms", rt, ncpu))
            if r is None:
                vals[rt] = None
            elif "error" in r:
                vals[rt] = "failed"
            else:
                s, got = r[key]
                vals[rt] = n / s if got == want[key] else "wrong result"
        rows.append((label + " (/s)", False, vals))
    _errors(results, "idioms")
    goals = []
    wp = rows[0][2]
    if isinstance(wp.get("mprt"), float) and isinstance(wp.get("mp"), float):
        goals.append((f"worker pool >= 2x Pool.imap_unordered(chunksize=1) ({wp['mprt'] / wp['mp']:.2f}x)",
                      wp["mprt"] >= 2 * wp["mp"]))
    return _table(f"idioms: Go's concurrency idioms on {ncpu} Ms (items/s, higher is better) against multiprocessing's "
                  f"nearest: Pool.imap_unordered(chunksize=1) over {ncpu} workers; processes over Queues(100); "
                  f"Pipes read with connection.wait; a Value with its lock in {g} processes",
                  cols, rows, goals)


def _report_sync(results, size, procs, vs, ncpu):
    k, ticks = size
    runs = {rt: results.get(("sync", rt, 2)) for rt in ("mprt", "mp", "go")}
    cols = [rt for rt in ("mprt", "mp", "go") if runs[rt] is not None]
    _errors(results, "sync")

    def val(rt, f):
        r = runs[rt]
        if r is None or "error" in r:
            return "failed" if r is not None else None
        return f(r)
    rows = [("atomic adds across 2 Ms (/s)", False,
             {rt: val(rt, lambda r: 2 * k / r["atomic_s"] if r["atomic_ok"] else "wrong count") for rt in cols}),
            ("map insert + lookup, 1 goroutine (/s)", False,
             {rt: val(rt, lambda r: 2 * r["map_n"] / r["map1_s"]) for rt in cols}),
            ("map insert + lookup, 2 goroutines on 2 Ms, a Mutex (/s)", False,
             {rt: val(rt, lambda r: 2 * r["map_n"] / r["map2_s"]) for rt in cols}),
            ("1 ms ticker, |interval - 1 ms| p50 (us)", True, {rt: val(rt, lambda r: r["jitter"][0]) for rt in cols}),
            ("1 ms ticker, |interval - 1 ms| p99 (us)", True, {rt: val(rt, lambda r: r["jitter"][1]) for rt in cols})]
    mp = runs.get("mp") or {}
    ceiling = (f"; a plain dict in one process: {_fmt(2 * mp['map_n'] / mp['plain_s'])}/s"
               if mp.get("plain_s") else "")
    return _table(f"sync: atomic.AddInt64 on one word by 2 goroutines on 2 Ms, {k} each (mp: a multiprocessing.Value "
                  f"and its lock in 2 processes; go: Go itself, GOMAXPROCS=2); {k // 10} str keys inserted into a "
                  f"heap map and looked up (mp: a Manager().dict(), from one process and shared by two{ceiling}); "
                  f"the intervals between {ticks} ticks of a 1 ms Ticker as a goroutine receives them (mp: a "
                  f"thread's time.sleep loop to absolute deadlines; go: time.NewTicker)", cols, rows)


_REPORT = {"spawn": _report_spawn, "chan": _report_chan, "cpu": _report_cpu, "array": _report_array,
           "gc": _report_gc, "boot": _report_boot, "binarytrees": _report_binarytrees,
           "idioms": _report_idioms, "sync": _report_sync}


def _plot(cpu, procs, ncpu, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    xs = procs
    ax.plot(xs, [min(p, ncpu) / procs[0] for p in xs], "k--", lw=1, label=f"ideal (NumCPU={ncpu})")
    for rt, s in cpu["speedup"].items():
        ys = [s.get(str(p)) for p in xs]
        pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", lw=2.5 if rt == "mprt" else 1.2,
                    label=rt, zorder=3 if rt == "mprt" else 2)
    if procs[-1] > ncpu:
        ax.axvspan(ncpu + 0.5, procs[-1] + 0.5, color="0.92", zorder=0)
        ax.text(procs[-1] + 0.4, 0.2 + procs[0] / 2, "oversubscribed", ha="right", color="0.4")
    ax.set_xticks(xs)
    ax.set_xlabel("GOMAXPROCS / workers")
    ax.set_ylabel(f"speedup over {procs[0]}")
    ax.set_title("CPU-bound fan-out: speedup against GOMAXPROCS")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

