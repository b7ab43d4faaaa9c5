"""Scheduler benchmarks, each against its peers in the same run (the machine is shared and noisy:
compare the ratios, not the absolute figures).

    python scripts/bench_sched.py [--json FILE] [--rounds N] [only ...]

    fanout     20k trivial goroutines on 2 Ms collected by a WaitGroup, against
               multiprocessing.Pool.map(chunksize=1) and ProcessPoolExecutor.submit (2 workers)
    chan       channel round trip between goroutines on different Ms, against a
               multiprocessing.Pipe round trip; and on one M (per channel operation)
    cpu        200 goroutines of ~10 ms of pure Python: speedup from GOMAXPROCS=1 to 2
    stw        stop-the-world pause (ReadMemStats) while 2 Ms run tight loops: p50, p99
    boot       mprt.run of an empty main with GOMAXPROCS=2, boot plus teardown; against forking a
               worker from a forkserver with mprt preloaded

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
from concurrent.futures import ProcessPoolExecutor

# the workloads and the mprt programs that `mprt bench` runs too
from mprt.bench._child import pipe_round_trip
from mprt.bench.work import calibrate_loop, mprt_chan, mprt_spawn, trivial
from mprt.bench.work import loop as _loop

HERE = os.path.dirname(os.path.abspath(__file__))
N_FANOUT = 20000
N_RT = 5000
N_CPU = 200
CPU_WORK_S = 0.010


def child(kind, arg):
    import numpy as np

    import mprt

    res = {}

    def fanout():
        res["s"] = mprt_spawn(N_FANOUT)["s"]

    def chan_cross():
        res["rt_us"] = mprt_chan(N_RT)["cross_us"]      # main on M0, the echo goroutine on a worker M

    def chan_same():
        res["rt_us"] = mprt_chan(N_RT)["same_us"]       # both goroutines on one worker M

    def cpu():
        n = arg
        wg = mprt.sync.WaitGroup()
        wg.add(N_CPU)

        def work(n, wg):
            _loop(n)
            wg.done()
        t = time.perf_counter()
        for _ in range(N_CPU):
            mprt.go(work, n, wg)
        wg.wait()
        res["s"] = time.perf_counter() - t

    def stw():
        # the collector's case: a process that holds no P stops the world while both Ps run
        # goroutines in tight loops (no runtime call: each M is reached by a signal).  main waits
        # in a marked system call, so its P goes to the second spinner; the helper ends the spin.
        from mprt import boot
        from mprt.sched import mstate, stw
        from mprt.sched.ctl import NPAUSE, S_PAUSEIDX
        flags = mprt.make(np.int64, 3)       # [stop, spinner 1 running, spinner 2 running]

        def spin(flags, k):
            f = flags.np
            f[k] = 1
            x = 0
            while f[0] == 0:
                x += 1
        pm = mstate.current_m_or_none()
        q, ctl = pm.q, pm.ctl
        k0 = q[ctl.sched + S_PAUSEIDX]
        f = flags.np        # the same shared bytes in the helper
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.sched_setaffinity(0, set(pm.cpus))     # unpinned, as the coordinator
                sm = boot._SysmonM(ctl, pm.rtid)
                mstate.set_current_m(sm)
                deadline = time.monotonic() + 30
                while not (f[1] and f[2]) and time.monotonic() < deadline:
                    time.sleep(0.001)
                time.sleep(0.02)
                for _ in range(arg):
                    t0 = stw.stop_the_world(sm, "bench")
                    stw.start_the_world(sm, t0)
                    time.sleep(0.003)
            except BaseException:
                import traceback
                traceback.print_exc()
                code = 1
            f[0] = 1
            os._exit(code)
        mprt.go(spin, flags, 1)
        mprt.go(spin, flags, 2)
        with mprt.syscall():
            os.waitpid(pid, 0)
        k = q[ctl.sched + S_PAUSEIDX]
        res["pause_ns"] = [q[ctl.base["pause"] + 2 * (i % NPAUSE)] for i in range(max(k0, k - NPAUSE), k)]

    def empty():
        pass

    fn = {"fanout": fanout, "chan_cross": chan_cross, "chan_same": chan_same, "cpu": cpu, "stw": stw,
          "empty": empty}[kind]
    if kind == "empty":
        t = time.perf_counter()
        mprt.run(fn)
        res["s"] = time.perf_counter() - t
    else:
        mprt.run(fn)
    print(json.dumps(res))


def run_child(kind, arg=0, procs=2):
    env = dict(os.environ, GOMAXPROCS=str(procs))
    p = subprocess.run([sys.executable, __file__, "--child", kind, str(arg)], capture_output=True, text=True,
                       env=env, timeout=600)
    if p.returncode:
        raise RuntimeError(f"{kind} failed ({p.returncode}):\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# ---- peers ----

def peer_pool_map():
    with mp.get_context("fork").Pool(2) as pool:
        pool.map(trivial, range(100), chunksize=1)
        t = time.perf_counter()
        pool.map(trivial, range(N_FANOUT), chunksize=1)
        return time.perf_counter() - t


def peer_ppe_submit():
    with ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as ex:
        list(ex.map(trivial, range(100)))
        t = time.perf_counter()
        fs = [ex.submit(trivial, i) for i in range(N_FANOUT)]
        for f in fs:
            f.result()
        return time.perf_counter() - t


def _fs_noop():
    return 0


def peer_forkserver_start():
    """Start and join one worker from a forkserver that preloads mprt (what a forkserver-based M
    start would cost)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["mprt", "numpy"])
    p = ctx.Process(target=_fs_noop)
    p.start()
    p.join()
    out = []
    for _ in range(10):
        t = time.perf_counter()
        p = ctx.Process(target=_fs_noop)
        p.start()
        p.join()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def peer_fork_start():
    out = []
    for _ in range(10):
        t = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        out.append(time.perf_counter() - t)
    return statistics.median(out)


# ---- the benchmarks ----

def bench_fanout(rounds):
    rows = []
    for _ in range(rounds):
        m = run_child("fanout")["s"]
        pm = peer_pool_map()
        pe = peer_ppe_submit()
        rows.append((m, pm, pe))
    m, pm, pe = (statistics.median(c) for c in zip(*rows))
    return {"mprt_s": m, "pool_map_s": pm, "ppe_submit_s": pe, "vs_pool_map": pm / m, "vs_ppe_submit": pe / m,
            "goroutines_per_s": N_FANOUT / m, "rounds": rows}


def bench_chan(rounds):
    rows = []
    for _ in range(rounds):
        cross = run_child("chan_cross")["rt_us"]
        pipe = pipe_round_trip(N_RT)
        same = run_child("chan_same")["rt_us"]
        rows.append((cross, pipe, same))
    cross, pipe, same = (statistics.median(c) for c in zip(*rows))
    return {"cross_m_rt_us": cross, "pipe_rt_us": pipe, "cross_vs_pipe": cross / pipe,
            "same_m_rt_us": same, "same_m_us_per_op": same / 4, "same_m_us_per_send_recv": same / 2,
            "rounds": rows}


def peer_pool_cpu(n, workers):
    with mp.get_context("fork").Pool(workers) as pool:
        pool.map(_loop, [10] * 10, chunksize=1)
        t = time.perf_counter()
        pool.map(_loop, [n] * N_CPU, chunksize=1)
        return time.perf_counter() - t


def bench_cpu(rounds):
    """The same work under multiprocessing.Pool(1) and Pool(2) gives this machine's ceiling."""
    n = calibrate_loop(CPU_WORK_S)
    rows = []
    for _ in range(rounds):
        one = run_child("cpu", n, procs=1)["s"]
        two = run_child("cpu", n, procs=2)["s"]
        pool1 = peer_pool_cpu(n, 1)
        pool2 = peer_pool_cpu(n, 2)
        rows.append((one, two, one / two, pool1 / pool2))
    return {"loop_iters": n, "p1_s": statistics.median(r[0] for r in rows),
            "p2_s": statistics.median(r[1] for r in rows), "speedup": statistics.median(r[2] for r in rows),
            "pool_speedup": statistics.median(r[3] for r in rows), "rounds": rows}


def bench_stw(rounds):
    pauses = []
    for _ in range(rounds):
        pauses += run_child("stw", 100)["pause_ns"]
    pauses.sort()
    pct = lambda p: pauses[min(len(pauses) - 1, int(p * len(pauses)))] / 1e3  # noqa: E731
    return {"n": len(pauses), "p50_us": pct(0.5), "p90_us": pct(0.9), "p99_us": pct(0.99),
            "max_us": pauses[-1] / 1e3}


def bench_boot(rounds):
    times = [run_child("empty")["s"] for _ in range(max(rounds, 5))]
    return {"boot_teardown_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3,
            "fork_start_ms": peer_fork_start() * 1e3, "forkserver_start_ms": peer_forkserver_start() * 1e3}


BENCHES = {"fanout": bench_fanout, "chan": bench_chan, "cpu": bench_cpu, "stw": bench_stw, "boot": bench_boot}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("only", nargs="*", choices=[*BENCHES, []], default=[])
    a = ap.parse_args()
    out = {}
    for name in a.only or BENCHES:
        r = BENCHES[name](a.rounds)
        out[name] = r
        print(name, json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()
                                if k != "rounds"}), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
