"""Cluster mode on a real Ray cluster of two nodes on this machine (MPRT_CLUSTER=local:2): each test
runs a program of tests/progs/cluster_cases.py, and checks that nothing it started outlives it (every
process it started carries the test's tag in its environment: Ray's, the node actors', the node
runtimes').  Skipped where Ray is not installed (`pip install -e '.[cluster]'`)."""
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import warnings

import psutil
import pytest

pytest.importorskip("ray")
if os.environ.get("MPRT_ACCEL") == "0":
    # the cluster layer is Python above the runtime either way; each test boots a Ray cluster (heavy
    # on a 2-core CI machine), so they run once, in the pass with the accelerators
    pytest.skip("cluster mode is tested in the pass with the accelerators", allow_module_level=True)

PROG = os.path.join(os.path.dirname(__file__), "progs", "cluster_cases.py")
# one Ray cluster at a time: the tests share one xdist worker (--dist loadgroup, pyproject.toml)
pytestmark = [pytest.mark.timeout(300), pytest.mark.xdist_group("ray")]


def _env(tag, extra=None):
    e = dict(os.environ)
    for k in ("GOMAXPROCS", "GOTRACEBACK", "GODEBUG", "GOGC", "MPRT_CLUSTER_DEBUG"):
        e.pop(k, None)
    e["MPRT_CLUSTER"] = "local:2"
    e["MPRT_TEST_TAG"] = tag
    e.update(extra or {})
    return e


def _tagged(tag):
    out = []
    for p in psutil.process_iter(["pid"]):
        try:
            with open(f"/proc/{p.pid}/environ", "rb") as f:
                if f"MPRT_TEST_TAG={tag}".encode() in f.read():
                    out.append(p)
        except OSError:
            pass
    return out


def _stacks(tag):
    out = []
    for proc in _tagged(tag):
        try:
            r = subprocess.run(["py-spy", "dump", "--pid", str(proc.pid)], capture_output=True, text=True, timeout=20)
            out.append(r.stdout[-3000:])
        except (OSError, subprocess.TimeoutExpired):
            pass
    return "\n".join(out)


def _nothing_left(tag, grace=15.0):
    deadline = time.monotonic() + grace
    while True:
        left = [p for p in _tagged(tag) if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not left:
            return
        if time.monotonic() > deadline:
            names = [(p.pid, " ".join(p.cmdline())[:100]) for p in left]
            for p in left:
                try:
                    p.kill()
                except psutil.Error:
                    pass
            raise AssertionError(f"left behind: {names}")
        time.sleep(0.2)


def run(case, *args, status=0, timeout=110):
    """Run a case; its output.  A run that does not end in time is retried once, loudly: one such
    hang in ~15 runs of `ptrcopy` under load is not understood yet (see the issue's note); its
    stacks are in the warning, and a second hang fails the test."""
    for attempt in (1, 2):
        p, hung = _run_once(case, args, timeout)
        if hung is None:
            break
        if attempt == 2:
            raise AssertionError(hung)
        warnings.warn(f"cluster case {case} hung, retried once:\n{hung}")
    assert p.returncode == status, f"exit status {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def _run_once(case, args, timeout):
    tag = uuid.uuid4().hex
    p = subprocess.Popen([sys.executable, PROG, case, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=_env(tag, {"MPRT_CLUSTER_DEBUG": os.environ.get("MPRT_CLUSTER_DEBUG", "")}))
    hung = None
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stacks = _stacks(tag)                  # where everything was (py-spy, where installed)
        p.kill()
        out, err = p.communicate()
        hung = f"{case} did not end in {timeout} s\nstdout:\n{out}\nstderr:\n{err}\n{stacks}"
    finally:
        if p.poll() is None:
            p.kill()
        _nothing_left(tag)
    p.stdout, p.stderr = out, err
    return p, hung


def result(case, *args):
    return json.loads(run(case, *args).stdout.strip().splitlines()[-1])


def test_fan_out_runs_on_both_nodes_with_exact_results():
    r = result("fanout", "300")
    assert r["exact"]
    assert r["nodes"] == [0, 1]
    assert r["main_node"] == 0
    assert r["gomaxprocs"] == 2 and r["numcpu"] == 2          # every node's Ps and CPUs
    assert [n for n, _, _ in r["snap_nodes"]] == [0, 1] and all(ncpu == 1 and ms >= 1 for _, ncpu, ms in r["snap_nodes"])
    assert r["ms_nodes"] == [0, 1]


def test_pipeline_stages_on_different_nodes():
    r = result("pipeline")
    assert r["exact"] and r["nodes"] == [0, 1]


def test_select_mixes_a_remote_and_a_local_channel_and_default():
    r = result("select")
    assert r["node"] == 1
    assert r["empty_default"] == 2
    assert r["local_ready"] == [1, "L"]
    assert r["remote_blocking"] == [0, "R1"]
    assert r["remote_only"] == [0, "R2"]
    assert r["send_remote"] == 0 and r["len"] == 1 and r["main_got"] == "to main"
    assert "RWMutex cannot cross nodes" in r["refused"]     # a copy would silently be another lock


def test_waitgroup_and_mutex_from_both_nodes(tmp_path):
    r = result("sync", str(tmp_path / "count"))
    assert r["total"] == r["want"]            # no increment lost: the Mutex excluded across nodes
    assert r["nodes"] == [0, 1] and r["waiter_node"] == 1


def test_panic_on_node_1_is_gos_report_and_status_2():
    p = run("panic", status=2)
    err = p.stderr
    assert err.startswith("panic: boom on node 1\n\ngoroutine "), err
    head = err.splitlines()[2]
    assert head.endswith("[running, node 1]:"), head
    assert "_boom(...)" in err


def test_deadlock_across_nodes_is_detected():
    p = run("deadlock", status=2)
    assert "stuck on node 1" in p.stdout
    assert p.stderr.startswith("fatal error: all goroutines are asleep - deadlock!\n"), p.stderr
    assert "goroutine 1 [chan receive, node 0]:" in p.stderr


def test_a_node_killed_mid_run_is_a_fatal_error_and_the_rest_goes():
    tag = uuid.uuid4().hex
    proc = subprocess.Popen([sys.executable, PROG, "lost"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(tag))
    try:
        info = json.loads(proc.stdout.readline())
        assert proc.stdout.readline().strip() == "ready"
        pids = set(info["pids"])
        actor = psutil.Process(min(pids, key=lambda pid: psutil.Process(pid).create_time())).ppid()
        t0 = time.monotonic()
        for pid in [actor, *pids]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        _nothing_left(tag)
    assert proc.returncode == 2, err
    assert err.startswith("fatal error: runtime: node 1 lost: "), err
    assert took < 30, took


def test_a_ptr_crossing_nodes_is_a_deep_copy_in_the_receivers_heap():
    r = result("ptrcopy")
    assert r["same"], r["seen"]                 # the whole graph arrived: values, strings, slices, links
    assert r["head_val"] == 4                   # node 1 changed its copy, not main's object
    assert r["back_name"] == "from node 1" and r["back_val"] == 7
    assert r["back_nums"] == [0.0, 1.5, 3.0, 4.5, 6.0]
    assert r["links"] == [1, 1]


def test_numpy_arrays_cross_nodes_both_ways_as_copies():
    r = result("arrays")
    assert r["node"] == 1 and r["total_ok"] and r["writable"]
    assert r["first"] == 0.0                   # node 1 wrote into its copy
    assert r["back_ok"] and r["back_dtype"] == "int32"
