"""Every fault of tests/test_faults.py, run and reported as a table: the message the program
printed, its exit status, the time from the fault to the program's end, and what it left behind
(entries of its runtime in /dev/shm, processes).

    python scripts/faults.py [--rounds N]        (times: the median and the largest of N rounds)
"""
import argparse
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from faults import FAULTS, private_shm_works, run_fault  # noqa: E402


def first_line(err):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    if not lines:
        return "(nothing)"
    for ln in lines:
        if ln.startswith(("fatal error:", "panic:", "runtime:")):
            return ln
    return lines[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    shm_ok = private_shm_works()
    print("| fault | message | exit status | to exit / to all gone (median, max) | left behind |")
    print("| --- | --- | --- | --- | --- |")
    for name in FAULTS:
        if FAULTS[name][3] and not shm_ok:
            print(f"| {name} | (no mount namespace on this machine: not run) | | | |")
            continue
        runs = [run_fault(name) for _ in range(a.rounds)]
        r = runs[-1]
        times = [x["seconds"] for x in runs]
        gone = [x["gone_s"] for x in runs]
        left = sorted({len(x["left"]) for x in runs})
        alive = sorted({len(x["alive"]) for x in runs})
        what = "nothing" if left == [0] and alive == [0] else f"{left} entries, {alive} processes"
        if name == "SIGKILL of the whole process group":
            out = subprocess.run([sys.executable, "-m", "mprt", "clean"], capture_output=True, text=True)
            what += f"; `mprt clean`: {out.stdout.strip().splitlines()[-1]}"
        hung = " (HUNG)" if any(x["hung"] for x in runs) else ""
        print(f"| {name} | `{first_line(r['stderr'])[:150]}` | {sorted({x['rc'] for x in runs})} | "
              f"{statistics.median(times) * 1e3:.0f}, {max(times) * 1e3:.0f} ms / "
              f"{statistics.median(gone) * 1e3:.0f}, {max(gone) * 1e3:.0f} ms{hung} | {what} |", flush=True)


if __name__ == "__main__":
    main()
