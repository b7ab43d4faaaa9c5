"""What the preemption signal costs a goroutine that never yields, measured two ways.

A goroutine runs a plain Python loop (no call into mprt) for a few seconds while sysmon asks it to
yield every 10 ms by SIGURG.  Within that goroutine's process the SIGURG handler is wrapped with a
CPU clock, so the time the signal takes from the loop is measured directly (the handler, plus the
Gosched it does and the scheduler's round trip back): `handler_share` is that CPU time over the
loop's CPU time, and does not depend on how busy the shared machine is.  The loop's rate with the signal and
under GODEBUG=asyncpreemptoff=1 is also timed, in alternating runs, so the direct figure can be
checked against the end-to-end one (which this machine's noise blurs by several per cent).

    python scripts/bench_preempt.py [--pairs 6] [--seconds 2]

Prints one JSON line per run and a summary line.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

_CHILD = r"""
import json, signal, sys, time
import mprt

def loop(seconds, res):
    old = signal.getsignal(signal.SIGURG)
    spent = [0, 0]
    each = []

    def timed(signum, frame):
        t = time.thread_time_ns()
        try:
            old(signum, frame)
        finally:
            d = time.thread_time_ns() - t
            spent[0] += d
            spent[1] += 1
            each.append(d)

    signal.signal(signal.SIGURG, timed)
    t0, c0 = time.perf_counter_ns(), time.process_time_ns()
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        for _ in range(1000):
            x += 1
    wall, cpu = time.perf_counter_ns() - t0, time.process_time_ns() - c0
    signal.signal(signal.SIGURG, old)
    each.sort()
    res.send((x, wall, cpu, spent[0], spent[1], each[len(each) // 2] if each else 0, each[-3:]))

def main():
    res = mprt.chan(1)
    mprt.go(loop, float(sys.argv[1]), res)
    x, wall, cpu, spent, n, med, top = res.recv()
    print(json.dumps({"mips_per_cpu_s": x / cpu * 1e3, "signals": n, "handler_ns": spent,
                      "handler_share": spent / cpu, "handler_us_each": spent / n / 1e3 if n else 0,
                      "handler_us_median": med / 1e3, "handler_us_top3": [t / 1e3 for t in top]}))

mprt.run(main)
"""


def run(seconds, preempt):
    env = dict(os.environ, GOMAXPROCS="1")
    godebug = [kv for kv in env.get("GODEBUG", "").split(",") if kv and not kv.startswith("asyncpreemptoff")]
    if not preempt:
        godebug.append("asyncpreemptoff=1")
    env["GODEBUG"] = ",".join(godebug)
    out = subprocess.run([sys.executable, "-c", _CHILD, str(seconds)], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    r["preempt"] = preempt
    print(json.dumps(r), flush=True)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    on, off = [], []
    for _ in range(a.pairs):
        on.append(run(a.seconds, True))
        off.append(run(a.seconds, False))
    share = [r["handler_share"] for r in on]
    rate_on = statistics.median(r["mips_per_cpu_s"] for r in on)
    rate_off = statistics.median(r["mips_per_cpu_s"] for r in off)
    print(json.dumps({
        "summary": "plain loop under the preemption signal",
        "signals_per_s": statistics.median(r["signals"] for r in on) / a.seconds,
        "handler_us_each_median": statistics.median(r["handler_us_each"] for r in on),
        "handler_share_median": statistics.median(share),
        "handler_share_max": max(share),
        "loop_mips_on_median": rate_on,
        "loop_mips_off_median": rate_off,
        "end_to_end_slowdown": 1 - rate_on / rate_off,
    }))


if __name__ == "__main__":
    main()
