"""The `mprt` command: run (with Go's exit statuses), env, bench, and every example under `mprt run`."""
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def mprt(*args, env=None, timeout=90):
    e = dict(os.environ, GOMAXPROCS="2")
    for k in ("GODEBUG", "GOGC", "GOTRACEBACK"):
        e.pop(k, None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "mprt", *args], capture_output=True, text=True, env=e,
                          timeout=timeout, cwd=ROOT)


def example(name, *args, **kw):
    r = mprt("run", os.path.join(EXAMPLES, name), *args, **kw)
    assert r.returncode == 0, r.stderr
    return r


# ---- mprt run ----

def test_run_exit_statuses(tmp_path):
    cases = {
        "ok.py": ("import mprt\nmprt.run(lambda: print('fine'))\n", 0, "fine"),
        # a file that only defines main(): main runs under mprt.run, as Go's main.main
        "main_only.py": ("import mprt\ndef hi(c):\n    c.send('from a goroutine')\n"
                         "def main():\n    c = mprt.chan()\n    mprt.go(hi, c)\n    print(c.recv())\n", 0,
                         "from a goroutine"),
        "panic.py": ("import mprt\ndef boom():\n    raise ValueError('bad')\n"
                     "def main():\n    mprt.go(boom)\n    mprt.sleep(5)\n", 2, "panic: "),
        "exit3.py": ("import sys, mprt\ndef main():\n    mprt.go(sys.exit, 3)\n    mprt.sleep(5)\n", 3, ""),
        "deadlock.py": ("import mprt\ndef main():\n    mprt.chan().recv()\n", 2,
                        "fatal error: all goroutines are asleep - deadlock!"),
        "args.py": ("import sys\nprint(sys.argv[1:])\n", 0, "['a', '--b']"),
    }
    for name, (src, status, text) in cases.items():
        (tmp_path / name).write_text(src)
        r = mprt("run", str(tmp_path / name), *(["a", "--b"] if name == "args.py" else []))
        assert r.returncode == status, (name, r.returncode, r.stderr)
        assert text in r.stdout + r.stderr, (name, r.stdout, r.stderr)
    r = mprt("run", str(tmp_path / "missing.py"))
    assert r.returncode == 1 and "no such file" in r.stderr


def test_env_reports_the_settings():
    r = mprt("env", env={"GOMAXPROCS": "3", "GOGC": "off", "GODEBUG": "gctrace=1"})
    assert r.returncode == 0, r.stderr
    assert re.search(r"^GOMAXPROCS\s+3\b", r.stdout, re.M)
    assert re.search(r"^GOGC\s+off\b", r.stdout, re.M)
    assert re.search(r"^GODEBUG\s+gctrace=1\b", r.stdout, re.M)
    d = json.loads(mprt("env", "--json", env={"GOMAXPROCS": "junk"}).stdout)
    assert d["GOMAXPROCS"] == str(len(os.sched_getaffinity(0)))        # not a number: ignored, as Go
    assert d["NumCPU"] == str(len(os.sched_getaffinity(0)))


def test_help_on_every_command():
    for cmd in ("run", "bench", "trace", "env", "clean", "demo"):
        r = mprt(cmd, "--help")
        assert r.returncode == 0 and "usage: mprt " + cmd in r.stdout, (cmd, r.stderr)


# ---- mprt bench ----

def test_bench_compares_with_a_peer(tmp_path):
    js, png = tmp_path / "b.json", tmp_path / "b.png"
    r = mprt("bench", "spawn", "cpu", "--quick", "--procs", "1,2", "--vs", "pool", "--json", str(js),
             "--plot", str(png), timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "measurements in" in r.stderr                       # the progress report
    assert re.search(r"^go\(worker, wg, i\)\s+\S+\s+\S+ \(\d+\.\d+x\)", r.stdout, re.M)
    assert "goal: speedup from 1 to 2 Ms" in r.stdout
    d = json.loads(js.read_text())
    rows = d["suites"]["spawn"]["rows"]
    assert rows[0]["ratio"]["pool"] > 0
    assert set(d["suites"]["cpu"]["speedup"]) == {"mprt", "pool"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_bad_input():
    r = mprt("bench", "nosuch")
    assert r.returncode != 0 and "unknown suite 'nosuch'" in r.stderr
    r = mprt("bench", "spawn", "--procs", "0,x")
    assert r.returncode != 0 and "--procs '0,x'" in r.stderr
    r = mprt("bench", "spawn", "--vs", "celery")
    assert r.returncode != 0 and "unknown peer 'celery'" in r.stderr


# ---- the examples, each under mprt run ----

def test_example_hello():
    out = example("hello.py", "6").stdout.splitlines()
    assert len(out) == 7 and all(f"(#{i}) on M" in out[i] for i in range(6))
    assert "6 goroutines, GOMAXPROCS=2, main on M0" in out[-1]


def test_example_binarytrees_output_is_the_benchmarks_games():
    out = example("binarytrees.py", "6").stdout
    assert out == ("stretch tree of depth 7\t check: 255\n"
                   "64\t trees of depth 4\t check: 1984\n"
                   "16\t trees of depth 6\t check: 2032\n"
                   "long lived tree of depth 6\t check: 127\n")


def test_example_mandelbrot(tmp_path):
    pbm = tmp_path / "m.pbm"
    out = example("mandelbrot.py", "200", "--out", str(pbm)).stdout
    m = re.search(r"mandelbrot 200x200: (\d+) points inside", out)
    assert m and 0 < int(m.group(1)) < 200 * 200
    assert pbm.read_bytes().startswith(b"P4\n200 200\n") and len(pbm.read_bytes()) == 11 + 25 * 200
    rows = dict(re.findall(r"M(\d+): (\d+)", out.splitlines()[-1]))
    assert sum(map(int, rows.values())) == 200


def test_example_pipeline():
    out = example("pipeline.py", "50").stdout
    assert "sum of squares 1..50 = 42925 (expected 42925)" in out
    assert "slow stage: timed out after 0.2 s" in out
    assert "nothing ready (default case)" in out


def test_example_lockosthread():
    out = example("lockosthread.py").stdout
    m = re.search(r"locked: 20 sleeps and yields, always on M(\d+) \(pid \d+, thread \d+\)\n", out)
    assert m, out
    assert "on the locked M%s: never" % m.group(1) in out


def test_example_mapreduce():
    out = example("mapreduce.py", "2").stdout
    assert "2,000,000 values seen" in out and "matches numpy on the whole array: True" in out


def test_example_gcdemo():
    # GOGC=25: the first cycle comes at a quarter of the 4 MB minimum heap, so a loaded machine's
    # second of churn (one run allocated 3.9 MB in it) still collects
    r = example("gcdemo.py", "1", env={"GOGC": "25"})
    assert re.search(r"^gc \d+ @\S+s \d+%: ", r.stderr, re.M), r.stderr      # gctrace, Go's line
    assert "the live tree is intact: True" in r.stdout


@pytest.mark.parametrize("name", ["hello.py", "pipeline.py"])
def test_example_runs_as_a_plain_script(name):
    r = subprocess.run([sys.executable, os.path.join(EXAMPLES, name)], capture_output=True, text=True, timeout=90,
                       env=dict(os.environ, GOMAXPROCS="2"))
    assert r.returncode == 0, r.stderr
