"""A CPU-bound worker pool, the way it is written in Go and with multiprocessing, side by side.

mprt: 8 goroutines ranging over a jobs channel, each job ~MS ms of pure Python, results on a channel,
GOMAXPROCS=P (tests/progs/trust_cases.py pool).  Peer: multiprocessing.Pool(P).imap_unordered of the
same jobs (chunksize 1), the pool started outside the timing as a Go program's Ms are started by
then too.  Each run is a fresh process; runs alternate.  Reports every run's time and the ratio of
each mprt run to the median Pool run (the goal: every run within 1.3x).

    python scripts/bench_pool.py [--runs 20] [--jobs 100] [--ms 20] [--procs 2]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

PROG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "progs", "trust_cases.py")

PEER = r"""
import json, sys, time
from multiprocessing import Pool

def burn(ms):
    t = time.process_time() + ms / 1000
    x = 0
    while time.process_time() < t:
        x += 1
    return x

if __name__ == "__main__":
    jobs, ms, procs = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    with Pool(procs) as pool:
        pool.map(burn, [0.1] * procs)                 # workers up and warm
        t0 = time.monotonic()
        for _ in pool.imap_unordered(burn, [ms] * jobs, chunksize=1):
            pass
        print(json.dumps({"seconds": time.monotonic() - t0}))
"""


def run(cmd, env):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--ms", type=float, default=20)
    ap.add_argument("--procs", type=int, default=2)
    a = ap.parse_args()
    env = dict(os.environ, GOMAXPROCS=str(a.procs))
    env.pop("GODEBUG", None)
    mine, peer, splits = [], [], []
    for i in range(a.runs):
        d = run([sys.executable, PROG, "pool", str(a.jobs), str(a.ms)], env)
        mine.append(d["seconds"])
        splits.append(sorted(d["mids"].values(), reverse=True))
        peer.append(run([sys.executable, "-c", PEER, str(a.jobs), str(a.ms), str(a.procs)], env)["seconds"])
        print(f"\r{i + 1}/{a.runs}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    med = statistics.median(peer)
    ratios = [t / med for t in mine]
    print(f"worker pool: 8 goroutines over a jobs channel, {a.jobs} jobs of ~{a.ms:g} ms, P={a.procs} "
          f"(seconds, {a.runs} runs each, alternating)")
    print(f"  mprt       min {min(mine):.3f}  median {statistics.median(mine):.3f}  max {max(mine):.3f}")
    print(f"  Pool({a.procs})    min {min(peer):.3f}  median {med:.3f}  max {max(peer):.3f}")
    print(f"  mprt run / Pool median: worst {max(ratios):.2f}x, median {statistics.median(ratios):.2f}x; "
          f"runs within 1.3x: {sum(r <= 1.3 for r in ratios)}/{a.runs}")
    print(f"  jobs per M, each run: {splits}")
    print(json.dumps({"mprt": mine, "pool": peer, "ratios": ratios, "splits": splits}))
    return 0 if max(ratios) <= 1.3 else 1


if __name__ == "__main__":
    sys.exit(main())
