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
