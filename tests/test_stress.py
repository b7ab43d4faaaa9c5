"""Stress: 100k goroutines in one run, 10k channels, several runtimes at once on one machine (they
never meet), the collector checked by gccheckmark under all of it.  The bounded soak of the
collector is scripts/soak_gc.py."""
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

PROG = os.path.join(os.path.dirname(__file__), "progs", "stress_cases.py")


def run(*args, env=None, timeout=240):
    e = dict(os.environ, GOMAXPROCS="2", GODEBUG="gccheckmark=1")
    e.pop("GOGC", None)
    e.update(env or {})
    r = subprocess.run([sys.executable, PROG, *map(str, args)], capture_output=True, text=True, env=e,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_100k_goroutines_run_then_100k_parked_at_once():
    got = run("goroutines", 100_000)
    assert got == {"after_run": 1, "parked": 100_001, "after_wake": 1}


def test_10k_channels_in_a_chain_of_goroutines():
    # each goroutine's channels reach it in a heap message; collections run while they start
    assert run("channels", 10_000) == {"got": 10_001, "goroutines_after": 1}


def test_several_runtimes_at_once_never_meet():
    with ThreadPoolExecutor(4) as ex:
        res = list(ex.map(lambda k: run("token", 1000 + k, 1500), range(4)))
    assert [r["wrong"] for r in res] == [0, 0, 0, 0]
    assert len({r["rtid"] for r in res}) == 4 and len({r["pid"] for r in res}) == 4
    assert all(r["numgc"] > 0 for r in res)          # each collected its own heap meanwhile
