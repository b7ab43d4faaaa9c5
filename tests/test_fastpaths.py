"""Fast paths give what the general paths give: a goroutine's arguments and a channel's values as
typed words (no pickle, no heap message) arrive as the same values and the same heap objects, and
keep those objects alive until they are received, under the collector's checkmark.  Programs: tests/progs/fast_cases.py."""
import json
import os
import subprocess
import sys

import pytest

PROG = os.path.join(os.path.dirname(__file__), "progs", "fast_cases.py")


def result(args, env=None, timeout=120):
    e = dict(os.environ)
    for k in ("GOMAXPROCS", "GOTRACEBACK", "GODEBUG", "GOGC"):
        e.pop(k, None)
    e.update(env or {})
    p = subprocess.run([sys.executable, PROG, *args], capture_output=True, text=True, timeout=timeout, env=e)
    assert p.returncode == 0, f"exit status {p.returncode}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-5000:]}"
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_goroutine_arguments_arrive_the_same_typed_or_pickled():
    r = result(["args"], {"GOMAXPROCS": "2"})
    assert r["bad"] == [], r["bad"]
    assert r["used"] == 43


def test_go_in_c_writes_the_rows_the_python_go_writes():
    r = result(["gorows"], {"GOMAXPROCS": "1"})
    assert r["n"] == 28
    if not r["c_go"]:
        pytest.skip("the C accelerator is not built here (MPRT_ACCEL=0, or no compiler)")
    assert r["bad"] == [], r["bad"]
    assert r["fast"] == 8, r      # twice each of the 4 sets that fit a row in typed words


def test_goroutine_payloads_read_in_c_give_the_python_values():
    r = result(["payloads"], {"GOMAXPROCS": "1"})
    assert r["bad"] == [], r["bad"]
    assert len(r["pids"]) == 1, r
    if os.environ.get("MPRT_ACCEL") == "0":
        assert r["c"] == 0
    elif r["c"] == 0:
        pytest.skip("the C accelerator is not built here (no compiler)")
    else:
        assert r["c"] == 5, r       # every typed set: the row read in C


def test_goroutines_started_in_the_ended_ones_greenlet_are_themselves():
    r = result(["exitnext"], {"GOMAXPROCS": "1"})
    assert (r["n"], r["distinct"], r["numgoroutine"]) == (200, 200, 1), r
    if os.environ.get("MPRT_ACCEL") == "0":
        assert (r["exits"], r["wgdone"]) == (0, 0)
    elif r["exits"] == 0:
        pytest.skip("the C accelerator is not built here (no compiler)")
    else:
        assert r["exits"] >= 150, r      # back to back, nearly all (a safe point or the fairness tick: Python)
        assert r["wgdone"] >= 150, r


def test_stops_of_the_world_in_c_leave_what_goroutines_build_whole():
    # a small GOGC for many cycles; gccheckmark marks again with the world stopped and checks
    r = result(["stops"], {"GOMAXPROCS": "2", "GOGC": "1", "GODEBUG": "gccheckmark=1"})
    assert r["bad"] == 0, r
    assert r["cycles"] >= 2, r
    if not r["accel"]:
        return
    assert r["pids"] == 2, r
    # the Ms stopped at an allocation in C (each stop finds an M allocating or checking its list:
    # one of the two may meet every one of a few cycles' stops checking, 1 in ~10 runs)
    assert sum(r["stops"]) >= 2, r


def test_objects_held_only_by_argument_words_survive_the_collector():
    r = result(["churn"], {"GOMAXPROCS": "2", "GODEBUG": "gccheckmark=1"})
    assert (r["ok"], r["bad"]) == (3000, 0), r
    assert r["numgc"] > 0


def test_channel_values_arrive_the_same_on_every_path():
    r = result(["chanvals"], {"GOMAXPROCS": "2"})
    assert r["bad"] == [], r["bad"]


def test_objects_held_only_by_channel_slots_survive_the_collector():
    r = result(["chanchurn"], {"GOMAXPROCS": "1", "GOGC": "5", "GODEBUG": "gccheckmark=1"})
    assert (r["ok"], r["bad"]) == (2000, 0), r
    assert r["numgc"] > 0


def test_a_function_pickled_by_value_sees_the_globals_of_its_go_statement():
    # the pickle of a function defined in __main__ is kept while what it uses stays the same
    r = result(["byvalue"], {"GOMAXPROCS": "2"})
    assert r["got"] == [[1, 10, [1], ["a", 1]], [2, 10, [1], ["a", 2]], [3, 20, [1], ["a", 3]],
                        [4, 20, [1, 2], ["a", 4]], [5, 20, [1, 2], ["b", 5]], ["closure", 6], ["closure", 7]]


def test_the_c_drain_marks_what_the_python_drain_marks():
    r = result(["markboth"], {"GOMAXPROCS": "2", "GOGC": "off"})
    assert r["marked"] > 100
    if not r["built"]:
        pytest.skip("the C accelerator is not built here (MPRT_ACCEL=0, or no compiler)")
    assert r["same_marks"] and r["c_objs"] == r["marked"], r


def test_heap_handles_and_new_in_c_give_what_python_gives():
    # cptr.c: mprt.new, handles, pointer fields and the sweep in C; the same program with
    # MPRT_ACCEL=0 is the reference (trees made and checked on 2 Ms while the collector runs, under
    # its checkmark: the Python new behind the C one, unmarked as heap code once, let a stop land
    # between an allocation and its handle, ~1 run in 13)
    env = {"GOMAXPROCS": "2", "GOGC": "10", "GODEBUG": "gccheckmark=1"}
    c = result(["trees"], dict(env, MPRT_ACCEL="1"))
    py = result(["trees"], dict(env, MPRT_ACCEL="0"))
    assert not py["c"]
    want = (6 + 7 + 8 + 9) * ((1 << 9) - 1) + (1 << 11) - 1     # the trees' nodes, the long-lived one's
    assert py["mallocs"] == want and py["numgc"] > 0, py
    if not c["c"]:
        pytest.skip("the C accelerator is not built here (MPRT_ACCEL=0, or no compiler)")
    assert (c["checks"], c["long"], c["mallocs"]) == (py["checks"], py["long"], py["mallocs"]), (c, py)


def test_pointer_fields_read_and_written_on_two_ms_while_the_collector_marks():
    r = result(["fieldchurn"], {"GOMAXPROCS": "2", "GOGC": "5", "GODEBUG": "gccheckmark=1"})
    assert r["bad"] == 0 and r["numgc"] > 0, r


def test_the_python_new_behind_the_c_new_is_heap_code():
    # `new` rebound to the C function hid the Python one from codeclass.mark (it ran as the
    # program's code: a stop or a preemption could land between an allocation and its handle)
    from mprt import codeclass
    from mprt.shm import malloc
    assert codeclass.kind_of(malloc._new_py.__code__) == codeclass.HEAP
    assert codeclass.kind_of(malloc.Heap.alloc_small.__code__) == codeclass.HEAP
