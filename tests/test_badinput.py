"""Bad input: environment values that are empty, huge, negative, not numbers or unknown (Go's handling,
as the runtime took it, read back from the running program); mprt.run called twice or nested; runtime
calls with no runtime; objects and heap pointers of a runtime that has ended, or of another one."""
import json
import os
import re
import subprocess
import sys

import pytest

PROG = os.path.join(os.path.dirname(__file__), "progs", "bad_cases.py")
NCPU = len(os.sched_getaffinity(0))


def run(case, *args, env=None):
    e = dict(os.environ, GOMAXPROCS="2")
    for k in ("GODEBUG", "GOGC", "GOTRACEBACK", "MPRT_ARENA"):
        e.pop(k, None)
    e.update(env or {})
    return subprocess.run([sys.executable, PROG, case, *args], capture_output=True, text=True, env=e, timeout=90)


def settings(**env):
    r = run("settings", env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1]), r.stderr


# Go's atoi32 takes an optional '-' and digits only, within int32; anything else is "not set"
@pytest.mark.parametrize("val,want", [("", NCPU), ("-3", NCPU), ("0", NCPU), ("abc", NCPU), (" 2", NCPU),
                                      ("+1", NCPU), ("1_0", NCPU), ("99999999999", NCPU), ("5000", 1024),
                                      ("1", 1)])
def test_gomaxprocs_values(val, want):
    assert settings(GOMAXPROCS=val)[0]["gomaxprocs"] == want


@pytest.mark.parametrize("val,want", [("", 100), ("off", -1), ("-20", -20), ("abc", 100), ("99999999999", 100),
                                      ("OFF", 100), ("2147483647", 2147483647), ("250", 250)])
def test_gogc_values(val, want):
    assert settings(GOGC=val)[0]["gogc"] == want


def test_godebug_unknown_keys_and_bad_values_are_ignored():
    got, err = settings(GODEBUG="gctrace=1,foo=bar,=,nokey,,memprofilerate=7,schedtrace=x")
    assert got["memprofilerate"] == 7
    assert re.search(r"^gc 1 @", err, re.M)
    for bad in ("gctrace=x", "gctrace=99999999999", "gctrace", "gctrace =1", ""):
        got, err = settings(GODEBUG=bad)
        assert not re.search(r"^gc \d+ @", err, re.M), (bad, err)
        assert got["memprofilerate"] == 512 * 1024


@pytest.mark.parametrize("val,traces", [("", True), ("single", True), ("2", True), ("none", False),
                                        ("junk", False), ("-1", False), ("99999999999", False)])
def test_gotraceback_values(val, traces):
    """Go: a word it does not know, or a number out of uint32, is "all" at level 0: no goroutine traces."""
    r = run("panic", env={"GOTRACEBACK": val})
    assert r.returncode == 2
    assert r.stderr.startswith("panic: ValueError: boom\n")
    assert ("goroutine 2 [running]:" in r.stderr) == traces, r.stderr


def test_bad_arena_setting_names_the_value():
    r = run("settings", env={"MPRT_ARENA": "lots"})
    assert r.returncode == 1 and "MPRT_ARENA='lots' is not a size" in r.stderr


def test_run_twice_nested_and_not_callable():
    r = run("run_twice_and_nested")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got == {"nested": "mprt.run: a runtime is already running in this process", "second": "ran",
                   "not_callable": "mprt.run: 42 is not callable"}


def test_runtime_calls_outside_and_objects_of_an_ended_runtime():
    r = run("outside")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    for k in ("go", "chan", "new", "sleep", "select", "GC"):
        assert got[k] == "NoRuntime: mprt: no runtime is running in this process (use mprt.run)", k
    for k in ("send", "recv", "close", "len", "wg.add"):
        assert re.fullmatch(r"NoRuntime: mprt: (Chan|WaitGroup) 0x[0-9a-f]+ of runtime \S+ used with no runtime "
                            r"running in this process \(its runtime has ended\)", got[k]), got[k]
    for k in ("later send", "later wg.wait"):
        assert re.fullmatch(r"RuntimeError: mprt: (Chan|WaitGroup) 0x[0-9a-f]+ of runtime \S+ used in runtime \S+: "
                            r"its runtime has ended in this process, and its channels and sync objects with it",
                            got[k]), got[k]
    for k in ("ptr", "later ptr"):
        assert re.fullmatch(r"RuntimeError: mprt: runtime \S+ has ended in this process; its heap handles are "
                            r"no longer usable", got[k]), got[k]


def test_heap_pointer_of_another_runtime(tmp_path):
    r = run("foreign_ptr", str(tmp_path / "ptr.bin"))
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert re.fullmatch(r"ValueError: mprt: heap pointer 0x[0-9a-f]+ belongs to runtime \S+, not to this one \(\S+\)",
                        got.get("error", "")), got
