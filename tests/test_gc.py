"""The collector, end to end: small mprt programs (tests/progs/gc_cases.py) run in their own process
trees, with real Ms, a real coordinator and real signals; the tests read their output."""
import json
import os
import re
import subprocess
import sys
import time

import psutil
import pytest

from mprt.shm.segment import runtime_entries

PROG = os.path.join(os.path.dirname(__file__), "progs", "gc_cases.py")
pytestmark = pytest.mark.timeout(120)

GCTRACE = re.compile(
    r"^gc (\d+) @\d+\.\d{3}s \d+%: [\d.]+\+[\d.]+\+[\d.]+ ms clock, "
    r"[\d.]+\+[\d.]+/[\d.]+/[\d.]+\+[\d.]+ ms cpu, \d+->\d+->\d+ MB, \d+ MB goal, \d+ P( \(forced\))?$")


def run(case, *args, env=None, timeout=100):
    e = dict(os.environ)
    for k in ("GOMAXPROCS", "GOTRACEBACK", "GODEBUG", "GOGC"):
        e.pop(k, None)
    e.update(env or {})
    p = subprocess.run([sys.executable, PROG, case, *args], capture_output=True, text=True,
                       timeout=timeout, env=e)
    return p.returncode, p.stdout, p.stderr


def result(case, *args, env=None):
    rc, out, err = run(case, *args, env=env)
    assert rc == 0, f"exit status {rc}\nstdout:\n{out}\nstderr:\n{err}"
    return json.loads(out.strip().splitlines()[-1]), err


# ---- correctness under stress ----

def test_rewiring_graph_on_two_ms_with_back_to_back_checkmarked_cycles():
    r, err = result("stress", "3000", env={"GOMAXPROCS": "2", "GODEBUG": "gccheckmark=1"})
    assert r["cycles"] >= 3, r                 # cycles really ran while the graph changed
    assert r["bad"] == 0, r                    # every reachable node's payload intact
    assert r["reachable"] > 0 and r["mid_objects"] >= r["reachable"], r
    # everything dropped: the heap goes back to its baseline
    assert r["end_objects"] == r["base_objects"], r
    assert r["end_alloc"] == r["base_alloc"], r


@pytest.mark.parametrize("mode", ["1", "2"])
def test_gcstoptheworld_modes_keep_reachable_objects(mode):
    r, _ = result("stw_modes", env={"GODEBUG": f"gcstoptheworld={mode},gccheckmark=1"})
    assert r == {"reachable": 800, "bad": 0, "numgc": 3}, r


# ---- the pacer ----

def test_pacer_goal_follows_the_live_heap_and_gogc():
    r, _ = result("pacer")
    live = r["heap"]
    assert live >= 64 << 20
    assert 1.95 <= r["next100"] / live <= 2.05, r      # GOGC=100: goal = 2 x marked
    assert 1.45 <= r["next50"] / live <= 1.55, r       # SetGCPercent(50), at once
    assert 1.45 <= r["next50_after"] / live <= 1.55, r
    assert r["old"] == 100


def test_setgcpercent_below_the_live_heap_starts_a_cycle():
    r, _ = result("setgcpercent_below_live")
    assert r["ngc2"] > r["ngc1"], r
    assert r["waited"] < 2, r            # the allocation kicks the collector; no 2-minute forced GC


def test_gogc_off_means_no_goal_yet_gc_still_collects():
    r, _ = result("gogc_off", env={"GOGC": "off"})
    assert r["next"] == 2 ** 64 - 1
    assert r["numgc"] == 1 and r["forced"] == 1 and r["enable"] is True


def test_setgcpercent_negative_turns_the_collector_off():
    r, _ = result("setgcpercent_off")
    assert r == {"old": 100, "next": 2 ** 64 - 1, "back": -1}


def test_allocation_alone_triggers_cycles():
    r, _ = result("pacer_runs", env={"GODEBUG": "gctrace=1"})
    assert r["numgc"] >= 3 and r["forced"] == 0, r
    assert r["heap"] < 60 << 20, r                 # 200 MB allocated, 5 MB kept


# ---- finalizers ----

def test_finalizer_order_cancellation_and_cycles():
    r, _ = result("finalizers")
    # A points to B: only A's runs in the first cycle, B's in the next; C was cancelled; X and Y
    # form a cycle through finalizers and are never finalized
    assert r["order"] == ["A", "|", "B", "|", "|"], r
    assert r["ng_idle"] == 1 and r["ng"] == 1, r     # the finalizer goroutine is a system goroutine


def test_finalizer_sees_its_object_which_is_freed_afterwards():
    r, _ = result("finalizer_keeps_alive")
    assert r["got"] == [77, True]
    assert r["end"] == r["base"], r


def test_finalizer_that_raises_is_a_panic_of_the_finalizer_goroutine():
    rc, out, err = run("finalizer_panics")
    assert rc == 2, err
    assert "panic: ValueError: finalizer failed" in err, err
    assert re.search(r"^goroutine \d+ \[running\]:", err, re.M), err
    assert "survived" not in out


@pytest.mark.parametrize("what,msg", [
    ("nil", "runtime.SetFinalizer: first argument is nil"),
    ("notptr", "runtime.SetFinalizer: first argument is int, not pointer"),
    ("notfunc", "runtime.SetFinalizer: second argument is int, not a function"),
    ("twice", "runtime.SetFinalizer: finalizer already set"),
])
def test_setfinalizer_bad_arguments_are_fatal(what, msg):
    rc, out, err = run("setfinalizer_bad", what)
    assert rc == 2, err
    assert f"fatal error: {msg}\n" in err, err
    assert "unreachable" not in out


# ---- statistics and traces ----

def test_memstats_invariants_after_gc():
    r, _ = result("memstats")
    assert r["Sys"] == r["parts"]
    assert r["HeapIdle"] + r["HeapInuse"] == r["HeapSys"]
    assert r["HeapAlloc"] == r["Alloc"]
    assert r["HeapObjects"] == r["Mallocs"] - r["Frees"]
    assert r["HeapObjects"] >= r["kept"]
    n = r["NumGC"]
    assert n == 3 and r["NumForcedGC"] <= n
    assert r["LastGC"] == r["PauseEnd"][(n + 255) % 256]
    assert r["PauseTotalNs"] == sum(r["PauseNs"])
    assert all(x == 0 for x in r["PauseNs"][n:]) and all(x == 0 for x in r["PauseEnd"][n:])
    assert all(x > 0 for x in r["PauseNs"][:n])
    assert abs(r["now"] - r["LastGC"]) < 60e9
    assert r["EnableGC"] is True and r["DebugGC"] is False
    assert 0 < r["GCCPUFraction"] < 1
    g = r["gcstats"]
    assert g["NumGC"] == n and g["LastGC"] == r["LastGC"] and g["PauseTotal"] == r["PauseTotalNs"]
    assert g["Pause"] == [r["PauseNs"][(n - 1 - i) % 256] for i in range(n)]
    assert g["PauseEnd"][0] == r["LastGC"]
    q = g["PauseQuantiles"]
    assert len(q) == 5 and q[0] == min(g["Pause"]) and q[-1] == max(g["Pause"])


def test_gctrace_lines_and_scavenger():
    r, err = result("trace", env={"GODEBUG": "gctrace=1"})
    lines = [ln for ln in err.splitlines() if ln.startswith("gc ")]
    assert len(lines) == r["numgc"] == 3, err
    for i, ln in enumerate(lines):
        m = GCTRACE.match(ln)
        assert m, ln
        assert int(m.group(1)) == i + 1 and m.group(2) == " (forced)", ln
    assert re.search(r"^scvg-1: \d+ MB released$", err, re.M), err
    assert re.search(r"^scvg-1: inuse: \d+, idle: \d+, sys: \d+, released: \d+, consumed: \d+ \(MB\)$", err, re.M), err
    assert r["released"] >= 3 << 20


def test_gcpacertrace_prints_the_pacer():
    _, err = result("pacer_runs", env={"GODEBUG": "gcpacertrace=1"})
    assert re.search(r"^pacer: H_m_prev=\d+ h_t=[+-]\d\.\d{6}e[+-]\d{3} H_T=\d+ h_a=", err, re.M), err


# ---- faults ----

def test_invalidptr_reports_the_bad_word():
    rc, out, err = run("invalidptr", env={"GODEBUG": "invalidptr=1"})
    assert rc == 2, err
    assert re.search(r"^runtime: pointer 0x[0-9a-f]+ to unused region of span", err, re.M), err
    assert re.search(r"^runtime: found in object at \*\(0x[0-9a-f]+\+0x0\)$", err, re.M), err
    assert "fatal error: found bad pointer in Go heap (incorrect use of unsafe or cgo?)" in err
    assert "survived" not in out


def test_coordinator_dying_ends_the_program_at_once():
    e = dict(os.environ)
    for k in ("GOMAXPROCS", "GOTRACEBACK", "GODEBUG", "GOGC"):
        e.pop(k, None)
    p = subprocess.Popen([sys.executable, PROG, "kill_coordinator"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=e)
    first = json.loads(p.stdout.readline())
    out, err = p.communicate(timeout=30)
    took = time.time() - first["t"]
    assert p.returncode == 2, err
    assert "fatal error: runtime: the coordinator process" in err and "died: signal SIGKILL" in err, err
    assert took < 1.5, took
    assert "survived" not in out
    assert not psutil.pid_exists(first["coordinator"]) or \
        psutil.Process(first["coordinator"]).status() == psutil.STATUS_ZOMBIE
    left = [f for f, rt in runtime_entries()]
    assert not any(str(p.pid) in f for f in left), left


# ---- GODEBUG allocation and collection modes ----

def test_efence_gives_every_object_its_own_pages_never_reused():
    r, _ = result("debug_alloc", env={"GODEBUG": "efence=1"})
    assert r["a"] == 5 and r["b"] == 6 and r["s"] == [1, 2, 3]
    addrs = [r["addr"], r["baddr"], r["junk"], r["saddr"], *r["more"]]
    assert all(a % 8192 == 0 for a in addrs), addrs
    assert len(set(addrs)) == len(addrs), addrs        # the freed object's pages are not handed out again


def test_allocfreetrace_traces_allocations_and_frees():
    r, err = result("debug_alloc", env={"GODEBUG": "allocfreetrace=1"})
    assert re.search(rf"^tracealloc\({r['addr']:#x}, 0x20, __main__\.Node\)\ngoroutine 1 \[running\]:\n"
                     rf"__main__\.new_node\(\.\.\.\)\n\t.*gc_cases\.py:\d+ \+0x[0-9a-f]+$", err, re.M), err[:2000]
    assert f"tracefree({r['junk']:#x}, 0x20)" in err, err[-2000:]


def test_gctrace_2_marks_twice_and_prints_the_same_lines():
    r, err = result("memstats", env={"GODEBUG": "gctrace=2"})
    lines = [ln for ln in err.splitlines() if ln.startswith("gc ")]
    assert len(lines) == r["NumGC"] == 3 and all(GCTRACE.match(ln) for ln in lines), err


def test_sbrk_never_collects():
    r, _ = result("debug_alloc", env={"GODEBUG": "sbrk=1"})
    assert r["numgc"] == 0 and r["a"] == 5 and r["b"] == 6
