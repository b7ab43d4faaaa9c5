"""What the runtime API's observability costs, each figure against its peer in the same run (the
machine is shared and noisy: compare the ratios, not the absolute figures).

    python scripts/bench_api.py [--json FILE] [--rounds N] [only ...]

    callers    runtime.Callers at depth ~12 and resolving the PCs with CallersFrames, against
               traceback.extract_stack (Python's own stack capture, which also resolves lines)
    stack      runtime.Stack(buf, all=True) with goroutines parked on 2 Ms: latency of the
               stop-the-world dump of every goroutine
    memprof    allocating 200k structs with MemProfileRate 0 (off), 512 KiB (Go's default) and 1
               (every object); the peer is tracemalloc, Python's allocation profiler, on the same
               number of Python objects
    cpuprof    pure-Python CPU work on 2 Ms, without and with StartCPUProfile (100 Hz SIGPROF);
               the peer is cProfile on the same work in one process
    trace      20k goroutines fanned out over 2 Ms, without and with runtime/trace running (the
               fan-out's rate; also counting Stop, which waits for the conversion to Go's format);
               the size of the Go-format trace per 10k of its events
    labels     CPU-bound goroutines under StartCPUProfile, plain and inside pprof.Do with labels
    block      channel round trips between 2 Ms with SetBlockProfileRate(0) and (1)

Each mprt figure comes from a fresh program (a subprocess), so runtimes never meet.
"""
import argparse
import cProfile
import io
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
import tracemalloc

HERE = os.path.abspath(__file__)


# ---- the programs (run as: bench_api.py --child CASE ARG...) ----

def _deep(n, fn):
    if n == 0:
        return fn()
    return _deep(n - 1, fn)


def child_callers():
    from mprt import runtime
    pcs = [0] * 64
    reps = 20000

    def cap():
        t = time.perf_counter()
        for _ in range(reps):
            runtime.Callers(1, pcs)
        return (time.perf_counter() - t) / reps

    def res():
        n = runtime.Callers(1, pcs)
        t = time.perf_counter()
        for _ in range(reps // 10):
            list(runtime.CallersFrames(pcs[:n]))
        return (time.perf_counter() - t) / (reps // 10), n

    def peer():
        t = time.perf_counter()
        for _ in range(reps // 10):
            traceback.extract_stack()
        return (time.perf_counter() - t) / (reps // 10)

    c = _deep(10, cap)
    r, depth = _deep(10, res)
    p = _deep(10, peer)
    return {"depth": depth, "callers_us": c * 1e6, "frames_us": r * 1e6, "extract_stack_us": p * 1e6}


def _park(ch):
    ch.recv()


def child_stack():
    import mprt
    from mprt import runtime
    ch = mprt.chan()
    for _ in range(200):
        mprt.go(_park, ch)
    mprt.sleep(0.2)
    buf = bytearray(1 << 20)
    ts = []
    for _ in range(15):
        t = time.perf_counter()
        n = runtime.Stack(buf, True)
        ts.append(time.perf_counter() - t)
    count = buf[:n].decode().count("goroutine ")
    for _ in range(200):
        ch.send(None)
    return {"goroutines": count, "p50_ms": statistics.median(ts) * 1e3, "max_ms": max(ts) * 1e3}


def child_memprof(rate):
    import numpy as np

    import mprt
    from mprt import runtime

    @mprt.struct
    class T:
        a: np.int64
        b: mprt.Ptr

    runtime.MemProfileRate = int(rate)
    n = 200_000
    keep = []
    t = time.perf_counter()
    for _ in range(n):
        keep.append(mprt.new(T))
    dt = time.perf_counter() - t
    p = [None] * 64
    nrec, _ = runtime.MemProfile(p, True)
    return {"rate": int(rate), "objects_per_s": n / dt, "records": nrec}


def _spin(n, done):
    x = 0
    for i in range(n):
        x += i * i % 7
    done.send(x)


def child_cpuprof(on, n):
    import mprt
    from mprt.runtime import pprof
    f = io.BytesIO()
    if on == "1":
        pprof.StartCPUProfile(f)
    done = mprt.chan()
    t = time.perf_counter()
    for _ in range(8):
        mprt.go(_spin, int(n), done)
    for _ in range(8):
        done.recv()
    dt = time.perf_counter() - t
    if on == "1":
        pprof.StopCPUProfile()
    return {"on": on == "1", "s": dt, "profile_bytes": len(f.getvalue())}


def _nop(wg):
    wg.done()


def child_trace(on):
    import mprt
    from mprt.runtime import trace
    f = io.BytesIO()
    if on == "1":
        trace.Start(f)
    wg = mprt.sync.WaitGroup()
    n = 20000
    wg.add(n)
    t = time.perf_counter()
    for _ in range(n):
        mprt.go(_nop, wg)
    wg.wait()
    dt = time.perf_counter() - t
    if on == "1":
        trace.Stop()
    whole = time.perf_counter() - t          # with Stop: the coordinator's conversion finished
    nev = 0
    if on == "1":
        from mprt.sched import tracefmt
        nev = len(tracefmt.parse(f.getvalue()).events)
    return {"on": on == "1", "goroutines_per_s": n / dt, "whole_per_s": n / whole, "trace_bytes": len(f.getvalue()),
            "events": nev}


def child_labels(on, n):
    import mprt
    from mprt.runtime import pprof
    f = io.BytesIO()
    pprof.StartCPUProfile(f)
    done = mprt.chan()

    def labelled(i):
        if on == "1":
            pprof.Do(None, pprof.Labels("worker", str(i % 4), "stage", "spin"), lambda ctx: _spin(int(n), done))
        else:
            _spin(int(n), done)

    t = time.perf_counter()
    for i in range(8):
        mprt.go(labelled, i)
    for _ in range(8):
        done.recv()
    dt = time.perf_counter() - t
    pprof.StopCPUProfile()
    return {"on": on == "1", "s": dt, "profile_bytes": len(f.getvalue())}


def _echo(a, b, n):
    for _ in range(n):
        b.send(a.recv())


def child_block(rate):
    import mprt
    from mprt import runtime
    runtime.SetBlockProfileRate(int(rate))
    a, b = mprt.chan(), mprt.chan()
    n = 3000
    mprt.go(_echo, a, b, n)
    a.send(0)
    b.recv()
    t = time.perf_counter()
    for i in range(n - 1):
        a.send(i)
        b.recv()
    dt = time.perf_counter() - t
    p = [None] * 64
    nrec, _ = runtime.BlockProfile(p)
    return {"rate": int(rate), "round_trip_us": dt / (n - 1) * 1e6, "records": nrec}


def _child(case, args):
    import mprt
    res = {}

    def main():
        res.update(globals()["child_" + case](*args))

    mprt.run(main)
    print(json.dumps(res))


# ---- the driver ----

def sub(case, *args):
    env = dict(os.environ)
    env.setdefault("GOMAXPROCS", "2")
    p = subprocess.run([sys.executable, HERE, "--child", case, *map(str, args)], capture_output=True, text=True,
                       env=env, timeout=600)
    if p.returncode:
        raise RuntimeError(f"{case} {args}: exit {p.returncode}\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _loop(n):
    x = 0
    for i in range(n):
        x += i * i % 7
    return x


def peer_cprofile(n):
    t = time.perf_counter()
    for _ in range(8):
        _loop(n)
    plain = time.perf_counter() - t
    pr = cProfile.Profile()
    t = time.perf_counter()
    pr.enable()
    for _ in range(8):
        _loop(n)
    pr.disable()
    return plain, time.perf_counter() - t


def peer_tracemalloc(n):
    class T:
        __slots__ = ("a", "b")

    def run():
        keep = []
        t = time.perf_counter()
        for _ in range(n):
            keep.append(T())
        return time.perf_counter() - t

    plain = run()
    tracemalloc.start()
    traced = run()
    tracemalloc.stop()
    return n / plain, n / traced


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("only", nargs="*", choices=["callers", "stack", "memprof", "cpuprof", "trace", "labels", "block",
                                                       []])
    a = ap.parse_args()
    want = set(a.only) or {"callers", "stack", "memprof", "cpuprof", "trace", "labels", "block"}
    out = {}
    med = statistics.median
    if "callers" in want:
        rs = [sub("callers") for _ in range(a.rounds)]
        c, f, p = (med(r[k] for r in rs) for k in ("callers_us", "frames_us", "extract_stack_us"))
        out["callers"] = {"depth": rs[0]["depth"], "callers_us": c, "frames_us": f, "extract_stack_us": p,
                          "capture_vs_extract_stack": c / p, "capture_and_resolve_vs_extract_stack": (c + f) / p}
        print(f"callers    depth {rs[0]['depth']}: Callers {c:.1f} us, CallersFrames {f:.1f} us; "
              f"traceback.extract_stack {p:.1f} us -> capture {c / p:.2f}x, capture+resolve {(c + f) / p:.2f}x")
    if "stack" in want:
        rs = [sub("stack") for _ in range(a.rounds)]
        out["stack"] = {"goroutines": rs[0]["goroutines"], "p50_ms": med(r["p50_ms"] for r in rs),
                        "max_ms": max(r["max_ms"] for r in rs)}
        print(f"stack      Stack(all) of {rs[0]['goroutines']} goroutines on 2 Ms: p50 {out['stack']['p50_ms']:.1f} ms, "
              f"max {out['stack']['max_ms']:.1f} ms")
    if "memprof" in want:
        rows = {}
        for _ in range(a.rounds):
            for rate in (0, 512 * 1024, 1):
                rows.setdefault(rate, []).append(sub("memprof", rate)["objects_per_s"])
        tm = [peer_tracemalloc(200_000) for _ in range(a.rounds)]
        off, dflt, every = (med(rows[r]) for r in (0, 512 * 1024, 1))
        tplain, ttraced = med(x[0] for x in tm), med(x[1] for x in tm)
        out["memprof"] = {"off_per_s": off, "default_per_s": dflt, "every_per_s": every,
                          "default_slowdown": off / dflt, "every_slowdown": off / every,
                          "tracemalloc_slowdown": tplain / ttraced}
        print(f"memprof    new(T): off {off:,.0f}/s, MemProfileRate=512K {dflt:,.0f}/s ({off / dflt:.2f}x), "
              f"=1 {every:,.0f}/s ({off / every:.2f}x); tracemalloc on Python objects {tplain / ttraced:.2f}x")
    if "cpuprof" in want:
        n = 2_000_000
        offs, ons, peers = [], [], []
        for _ in range(a.rounds):
            offs.append(sub("cpuprof", 0, n)["s"])
            ons.append(sub("cpuprof", 1, n)["s"])
            peers.append(peer_cprofile(n // 4))
        off, on = med(offs), med(ons)
        cp = med(x[1] / x[0] for x in peers)
        out["cpuprof"] = {"off_s": off, "on_s": on, "slowdown": on / off, "cprofile_slowdown": cp}
        print(f"cpuprof    8 goroutines of pure Python on 2 Ms: {off:.2f} s, profiled at 100 Hz {on:.2f} s "
              f"({on / off:.3f}x); cProfile on the same loop {cp:.2f}x")
    if "trace" in want:
        offs, ons, wholes = [], [], []
        for _ in range(a.rounds):
            offs.append(sub("trace", 0)["goroutines_per_s"])
            r = sub("trace", 1)
            ons.append(r["goroutines_per_s"])
            wholes.append(r["whole_per_s"])
        off, on, whole = med(offs), med(ons), med(wholes)
        per10k = r["trace_bytes"] / r["events"] * 10_000
        out["trace"] = {"off_per_s": off, "on_per_s": on, "slowdown": off / on, "with_stop_per_s": whole,
                        "slowdown_with_stop": off / whole, "trace_bytes": r["trace_bytes"], "events": r["events"],
                        "bytes_per_10k_events": per10k}
        print(f"trace      20k goroutines on 2 Ms: {off:,.0f}/s, traced {on:,.0f}/s ({off / on:.2f}x; "
              f"{off / whole:.2f}x counting Stop), {r['trace_bytes'] / 2**20:.2f} MB of Go trace for "
              f"{r['events']:,} events ({per10k / 1024:.0f} KiB per 10k events)")
    if "labels" in want:
        n = 1_000_000
        offs, ons = [], []
        for _ in range(a.rounds):
            offs.append(sub("labels", 0, n)["s"])
            ons.append(sub("labels", 1, n)["s"])
        off, on = med(offs), med(ons)
        out["labels"] = {"off_s": off, "on_s": on, "slowdown": on / off}
        print(f"labels     8 goroutines of pure Python on 2 Ms, CPU-profiled: {off:.2f} s, inside pprof.Do "
              f"with 2 labels {on:.2f} s ({on / off:.3f}x)")
    if "block" in want:
        offs, ons = [], []
        for _ in range(a.rounds):
            offs.append(sub("block", 0)["round_trip_us"])
            ons.append(sub("block", 1)["round_trip_us"])
        off, on = med(offs), med(ons)
        out["block"] = {"off_us": off, "on_us": on, "slowdown": on / off}
        print(f"block      round trip across Ms: {off:.1f} us, SetBlockProfileRate(1) {on:.1f} us ({on / off:.2f}x)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3:])
    else:
        main()
