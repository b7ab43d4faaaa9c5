"""A bounded soak of the collector with GODEBUG=gccheckmark=1: programs run back to back, each with
two goroutines on 2 Ms rewiring a shared graph (new nodes, rewired edges, pointers through channels
and goroutine arguments, pointer slices, dropped subtrees) while main runs cycles back to back, every
one of them followed by the checkmark pass (a stop-the-world re-mark that dies with Go's
`fatal error: checkmark found unmarked object` if the concurrent mark missed anything).  At the end
of each program every reachable node's payload is checked, the graph is dropped and the heap must
be back to where it started.

    python scripts/soak_gc.py [--minutes M] [--iters N]      (default 3 minutes, 20000 operations)
    python scripts/soak_gc.py --chaos [--seed S] --minutes 30

With --chaos every program runs under GODEBUG=schedchaos=SEED,schedcheck=1,msgcheck=1 (a new seed
each, from S up: mprt/sched/chaos.py), and the collector's stress program takes turns with the
scheduler's worst cases at large sizes (Go's TestStopTheWorldDeadlock at 1000, goroutines started
with heap handles under back-to-back GCs, a 10,000-goroutine daisy chain).  A failure prints its seed.

Reports programs run, GC cycles, objects marked and checkmarked, nodes made and verified, and
anything lost (a bad payload, a program that failed, objects left over after the graph is dropped).
"""
import argparse
import json
import os
import subprocess
import sys
import time

PROGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "progs")
PROG = os.path.join(PROGS, "gc_cases.py")
CHAOS_PROGRAMS = [("trust_cases.py", "stw_deadlock", "1000"), ("trust_cases.py", "handles", "1000"),
                  ("trust_cases.py", "trampoline", "1000"), ("stress_cases.py", "channels", "10000"),
                  ("trust_cases.py", "yield_pool")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--iters", type=int, default=20000)
    ap.add_argument("--chaos", action="store_true", help="GODEBUG=schedchaos=SEED and the scheduler's programs too")
    ap.add_argument("--seed", type=int, default=1, help="the first chaos seed")
    a = ap.parse_args()
    tot = {"programs": 0, "failed": 0, "cycles": 0, "marked": 0, "made": 0, "verified": 0, "bad": 0, "leaked": 0}
    seed = a.seed
    t0 = time.monotonic()
    while time.monotonic() - t0 < a.minutes * 60:
        godebug = "gccheckmark=1"
        cmd = [sys.executable, PROG, "stress", str(a.iters)]
        if a.chaos:
            godebug += f",schedchaos={seed},schedcheck=1,msgcheck=1"
            k = tot["programs"] % (len(CHAOS_PROGRAMS) + 1)
            if k:
                f, *args = CHAOS_PROGRAMS[k - 1]
                cmd = [sys.executable, os.path.join(PROGS, f), *args]
            seed += 1
        env = dict(os.environ, GOMAXPROCS="2", GODEBUG=godebug)
        env.pop("GOGC", None)
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        tot["programs"] += 1
        if r.returncode:
            tot["failed"] += 1
            print(f"program {tot['programs']} ({' '.join(cmd[1:])}, GODEBUG={godebug}) failed "
                  f"(exit {r.returncode}):\n{r.stderr[-3000:]}", flush=True)
            continue
        if cmd[1] != PROG:
            continue
        d = json.loads(r.stdout.strip().splitlines()[-1])
        tot["cycles"] += d["cycles"]
        tot["marked"] += d["marked"]
        tot["made"] += d["made"]
        tot["verified"] += d["reachable"]
        tot["bad"] += d["bad"]
        tot["leaked"] += d["end_objects"] - d["base_objects"]
        print(f"\r{time.monotonic() - t0:6.0f} s: {tot['programs']} programs, {tot['cycles']} checkmarked cycles",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    secs = time.monotonic() - t0
    print(f"soak: {secs:.0f} s{', chaos seeds %d-%d' % (a.seed, seed - 1) if a.chaos else ''}, "
          f"{tot['programs']} programs ({tot['failed']} failed), {tot['cycles']} GC cycles of the stress programs, each "
          f"checkmarked ({tot['cycles'] / secs:.1f}/s), {tot['marked']:,} objects marked and re-marked, "
          f"{tot['made']:,} nodes made, {tot['verified']:,} reachable objects verified, {tot['bad']} bad payloads, "
          f"{tot['leaked']} objects left after the graphs were dropped")
    print(json.dumps(dict(tot, seconds=round(secs, 1))))
    return 1 if tot["failed"] or tot["bad"] or tot["leaked"] else 0


if __name__ == "__main__":
    sys.exit(main())
