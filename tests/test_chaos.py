"""The stress, property and trust programs under GODEBUG=schedchaos=SEED (preemptions, GCs and
GOMAXPROCS changes at random moments, mprt/sched/chaos.py), with schedcheck, msgcheck and gccheckmark on, at
small sizes and a few seeds.  A failure names its seed (in the test id and on the program's stderr);
scripts/soak_gc.py runs the same at large sizes for as long as asked."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(__file__)
SEEDS = [1, 2, 3]
PROGRAMS = {
    "handles": ("trust_cases.py", "handles", "150"),
    "trampoline": ("trust_cases.py", "trampoline", "150"),
    "stw_deadlock": ("trust_cases.py", "stw_deadlock", "100"),
    "yield_pool": ("trust_cases.py", "yield_pool"),
    "gc_stress": ("gc_cases.py", "stress", "1500"),
    "channels": ("stress_cases.py", "channels", "2000"),
    "fanin": ("prop_cases.py", "fanin", "15"),
}


def chaos_env(seed):
    e = dict(os.environ, GOMAXPROCS="2", GODEBUG=f"schedchaos={seed},schedcheck=1,msgcheck=1,gccheckmark=1")
    e.pop("GOGC", None)
    return e


@pytest.mark.timeout(200)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("prog", list(PROGRAMS))
def test_program_under_chaos(prog, seed):
    f, *args = PROGRAMS[prog]
    r = subprocess.run([sys.executable, os.path.join(HERE, "progs", f), *args], capture_output=True, text=True,
                       env=chaos_env(seed), timeout=180)
    assert r.returncode == 0, (f"GODEBUG=schedchaos={seed}: exit {r.returncode}\n"
                               f"{r.stdout[-2000:]}\n{r.stderr[-5000:]}")


def test_chaos_changes_gomaxprocs_and_starts_gcs():
    r = subprocess.run([sys.executable, os.path.join(HERE, "progs", "trust_cases.py"), "chaos_probe"],
                       capture_output=True, text=True, env=chaos_env(7), timeout=60)
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(got["procs"]) > 1 and got["numgc"] > 0, got


def test_a_failing_run_names_its_seed():
    r = subprocess.run([sys.executable, os.path.join(HERE, "progs", "trust_cases.py"), "msgcheck_twice"],
                       capture_output=True, text=True, env=chaos_env(11), timeout=60)
    assert r.returncode == 2
    assert "GODEBUG=schedchaos=11" in r.stderr


def test_msgcheck_throws_on_a_second_take_with_the_history():
    e = dict(os.environ, GOMAXPROCS="2", GODEBUG="msgcheck=1")
    r = subprocess.run([sys.executable, os.path.join(HERE, "progs", "trust_cases.py"), "msgcheck_twice"],
                       capture_output=True, text=True, env=e, timeout=60)
    assert r.returncode == 2 and "first take ok" in r.stdout
    err = r.stderr
    assert err.startswith("fatal error: msgcheck: heap message 0x"), err
    assert "taken twice" in err
    assert "made by M0 goroutine 1 in GC cycle" in err and "taken by M0 goroutine 1" in err
    assert "__main__.case_msgcheck_twice(...)" in err
