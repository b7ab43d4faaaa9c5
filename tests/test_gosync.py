"""What Go programs use from the runtime beyond goroutines and channels (directional channels, ...):
each test runs a small mprt program (tests/progs/gosync_cases.py) in its own process tree."""
import json
import os
import subprocess
import sys

import pytest

PROG = os.path.join(os.path.dirname(__file__), "progs", "gosync_cases.py")
pytestmark = pytest.mark.timeout(120)


def result(case, env=None, timeout=100):
    e = dict(os.environ)
    for k in ("GOMAXPROCS", "GOTRACEBACK", "GODEBUG", "GOGC"):
        e.pop(k, None)
    e["GOMAXPROCS"] = "2"
    e.update(env or {})
    p = subprocess.run([sys.executable, PROG, case], capture_output=True, text=True, timeout=timeout, env=e)
    assert p.returncode == 0, f"exit status {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_directional_views_send_and_receive_in_goroutines_and_refuse_the_other_direction():
    r = result("directional")
    assert r["kind"] == "RecvChan" and r["got"] == list(range(50))       # the view arrived a view
    e = r["errors"]
    assert e["recv on send-only"] == e["recv2 on send-only"] == \
        "invalid operation: receive from send-only channel (send-only channel, chan<-)"
    assert e["range on send-only"] == "invalid operation: range over send-only channel (send-only channel, chan<-)"
    assert e["send on recv-only"] == "invalid operation: send to receive-only channel (receive-only channel, <-chan)"
    assert e["close of recv-only"] == \
        "invalid operation: cannot close receive-only channel (receive-only channel, <-chan)"
    assert "cannot convert" in e["send-only to recv-only"]
    assert e["select recv on send-only"] == e["recv on send-only"]
    assert e["select send on recv-only"] == e["send on recv-only"]
    assert "42" in e["view of a non-channel"] and "not a channel" in e["view of a non-channel"]
    assert r["sel"] == [0, 0, "x"]
    assert r["eq"] == [True, True, True, True]
    assert r["back"] == "RecvChan" and r["back_eq"] is True
    assert r["lens"] == [0, 4, 4]


# ---- sync/atomic ----

def test_atomics_on_heap_words_are_exact_across_ms():
    r = result("atomics")
    n = r["want"]
    assert r["n32"] == n and r["n64"] == 3 * n and r["cas"] == 2 * n
    assert r["u64"] == 2 ** 64 - n                        # n wrapping decrements of 0
    assert r["arr"] == [0, 0, 0, n, 0, 0, 0, 0]
    assert r["swap"] == [3 * n, -5, False, None, -2 ** 63]   # Go's wrap of int64 at the top
    assert r["refs"][0].startswith("mprt.ref(") and r["refs"][0].endswith("'u64') (uint64)")
    assert len(r["mids"]) == 2, r["mids"]                # the goroutines really ran on both Ms


def test_atomic_misuse_names_the_bad_value():
    e = result("atomic_errors")["errs"]
    assert e["wrong type"].startswith("TypeError: atomic.AddInt32: mprt.ref(") and "is not an int32 word" in e["wrong type"]
    assert "is a pointer; sync/atomic works on int32, int64, uint32 and uint64 words" in e["pointer field"]
    assert "is float64; sync/atomic works on" in e["float"]
    assert "has no field 'nope'" in e["no field"]
    assert e["index"].startswith("IndexError: mprt.ref: index 2 out of range [0:2]")
    assert "is not an mprt.ref" in e["not a ref"] and "1.5 is not an integer" in e["not an int"]
    assert "42 is not a heap object" in e["not heap"]


def test_atomic_value_stores_and_loads_handles_with_gos_panics():
    r = result("value")
    assert r["first"] is None
    assert r["got"][1] == 41
    assert r["got2"][1] == 42
    assert r["panics"] == ["sync/atomic: store of nil value into Value",
                           "sync/atomic: store of inconsistently typed value into Value",
                           "sync/atomic: store of inconsistently typed value into Value"]
    assert r["chan"] is True and r["kept"] == 42


# ---- Once ----

def test_once_runs_f_once_among_goroutines_even_when_f_panics_and_f_stays_preemptible():
    r = result("once", {"GOMAXPROCS": "1"})
    assert r["n"] == 1
    assert r["panicked"] == "in f" and r["again"] == []
    assert r["preempted_in_f"] is True


def test_once_across_two_ms():
    assert result("once")["n"] == 1


# ---- timers ----

def test_timers_and_tickers_keep_gos_semantics():
    r = result("timers")
    assert 0.045 <= r["after"][0] < 1 and r["after"][1] is True
    assert r["stop_first"] == [True, True]
    assert r["stopped_never_fired"] == [1, 1]             # select took the default: nothing came
    assert r["stop_again"] == [False, False]
    assert r["stop_fired"] is False and r["reset_fired"] is False
    assert r["reset_armed"] is True and 0.025 <= r["reset_waited"] < 1
    assert r["stopped_elsewhere"] is True
    assert r["afterfunc_goroutines"] >= 2                 # main and f's own goroutine
    assert r["numgoroutine"] == 1
    assert 0.18 <= r["ticker_10"] < 1.5
    assert r["ticker_buffered"] == 1                       # a buffer of one: the rest were dropped
    assert r["ticker_stopped"] == 0
    assert r["panics"] == ["non-positive interval for NewTicker"] * 2 + ["non-positive interval for Ticker.Reset"]
    assert r["tick0"] is None
    assert r["bad"] == "time.NewTimer: duration '1s' is not a number of seconds"


def test_many_timers_fire_in_order_once_and_stopped_ones_never():
    r = result("timers_many")
    assert r["early"] == [] and r["out_of_order"] == []
    assert r["stopped"] == 25 and r["fired_stopped"] == 0


def test_waiting_on_a_stopped_timer_is_a_deadlock():
    e = dict(os.environ)
    for k in ("GOMAXPROCS", "GOTRACEBACK", "GODEBUG", "GOGC"):
        e.pop(k, None)
    p = subprocess.run([sys.executable, PROG, "timer_deadlock"], capture_output=True, text=True, timeout=60, env=e)
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 [chan receive]:\n"), p.stderr
    assert "timer goroutine" not in p.stderr


# ---- RWMutex and Cond ----

def test_rwmutex_hammered_by_readers_and_writers_on_two_ms_excludes_as_go():
    r = result("rwmutex_hammer")
    assert r == {"bad": 0, "n": 0}


def test_rwmutex_prefers_a_waiting_writer_to_new_readers():
    assert result("rwmutex_writer_preferred")["log"] == [
        "r1 locked", "r1 unlocking", "w locked", "w unlocking", "r2 locked"]


def test_cond_signal_wakes_one_broadcast_the_rest_and_no_signal_is_lost():
    r = result("cond")
    assert len(r["signalled"]) == 3 and r["extra"] == 0
    assert r["everyone"] == list(range(6))
    assert "42 is not a Locker" in r["bad"]


@pytest.mark.parametrize("case,message", [("runlock_of_unlocked", "sync: RUnlock of unlocked RWMutex"),
                                          ("unlock_of_unlocked_rw", "sync: Unlock of unlocked RWMutex")])
def test_rwmutex_misuse_is_gos_fatal_error(case, message):
    p = subprocess.run([sys.executable, PROG, case], capture_output=True, text=True, timeout=60,
                       env={k: v for k, v in os.environ.items() if k not in ("GOTRACEBACK", "GODEBUG")})
    assert p.returncode == 2 and p.stderr.startswith(f"fatal error: {message}\n"), p.stderr


# ---- strings on the heap ----

@pytest.mark.parametrize("env", [{}, {"GOGC": "1", "GODEBUG": "gccheckmark=1"}], ids=["default", "gccheckmark"])
def test_strings_in_structs_and_slices_are_shared_and_collected(env):
    r = result("strings", env, timeout=110)
    assert r["zero"] == ""
    assert r["other_goroutine"] == ["Ana", "Bé ünïcode ✓ 日本 \U0001f600"]
    assert r["slice"] == ["x", "", 2000, 3]
    assert r["errors"] == ["mprt: cannot store 5 (type int) in field gosync_cases.Person.name: want str".replace(
        "gosync_cases", "__main__"), "mprt: cannot store b'bytes' (type bytes) in element 0 of "
        + r["errors"][1].split(" in element 0 of ")[1], r["errors"][2]]
    assert "want str" in r["errors"][1] and "slice of strings and has no numpy view" in r["errors"][2]
    assert r["batch"] == ["a", "b", "c"] and r["emptied"] == ""
    assert r["churn_ok"] is True
    if env:
        assert r["numgc"] > 5


# ---- maps ----

def test_maps_keep_gos_semantics():
    r = result("maps")
    assert r["wordcount"] == [["brown", 1], ["dog", 1], ["end", 1], ["fox", 1], ["jumps", 1], ["lazy", 1],
                              ["over", 1], ["quick", 1], ["the", 3]]
    assert r["missing"] == [0, False, -1, True]
    assert r["after_delete"] == [8, False]
    assert r["orders"] > 1 and r["small_ok"] is True        # iteration order randomized
    assert r["big_ok"] is True
    seen_unique, only_allowed, n = r["iter_grow"]
    assert seen_unique and only_allowed and n == 1001
    assert r["floats"] == [3, "absent", "negzero", ["a", "b", "negzero"]]   # two NaNs, one zero
    assert r["nan_after_growth"] == ["a", "b"]
    assert r["kinds"] == ["n", None, "by address", True, 7]
    e = r["errors"]
    assert "1 (type int) is not a key of" in e[0] and "cannot use 'v' (type str) as int64 in a value of" in e[1]
    assert "key type <class 'list'> is not one of" in e[2] and "value type <class 'complex'> is not" in e[3]
    assert "want a map of its type or None" in e[4]
    assert r["same_type"] == "mprt.map(float64, str)"


@pytest.mark.parametrize("env", [{}, {"GOGC": "1", "GODEBUG": "gccheckmark=1"}], ids=["default", "gccheckmark"])
def test_a_map_shared_under_a_mutex_by_two_ms_counts_exactly(env):
    r = result("maps_shared", env, timeout=110)
    assert r["counts"] == [60] * 50
    assert r["rest"] == 1500 and r["total"] == 1550


def test_concurrent_map_writes_are_gos_fatal_error():
    e = dict(os.environ)
    for k in ("GOTRACEBACK", "GODEBUG", "GOGC"):
        e.pop(k, None)
    e["GOMAXPROCS"] = "2"
    p = subprocess.run([sys.executable, PROG, "map_concurrent_writes"], capture_output=True, text=True, timeout=100,
                       env=e)
    assert p.returncode == 2, (p.stdout, p.stderr[-2000:])
    assert p.stderr.startswith(("fatal error: concurrent map writes\n",
                                "fatal error: concurrent map read and map write\n")), p.stderr[:500]


def test_sync_map_from_goroutines_on_two_ms():
    r = result("syncmap")
    assert r["empty"] == [None, False]
    assert r["winners"] == 1 and r["first"] == [True, True]     # load_or_store: one stored
    assert r["n"] == 4 * 100 - 4 + 1 + 4                          # 4 deleted; "first"; 4 nodes
    assert r["sample"] == {"who": 3, "i": 99}
    assert r["nodes"] == [f"node of {w}" for w in range(4)]
    assert r["deleted"] == [False] * 4 and r["stopped"] == 1
    assert r["int_float"] == [True, False]                       # 1 and 1.0 are different keys
    assert r["bad"] == "sync.Map: key [1] (type list) is not an int, float, str, bytes or Ptr"
