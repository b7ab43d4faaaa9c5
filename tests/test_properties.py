"""Property tests (hypothesis), each a whole run of examples inside one runtime on 2 Ms, under
gccheckmark: channel operations against a model of Go's channel semantics; many senders and
receivers (nothing lost or doubled, each sender's order kept); object graphs mutated from two Ms
with collections between, against a model of what is reachable.  The programs are
tests/progs/prop_cases.py; a counterexample ends the program with hypothesis's report."""
import json
import os
import subprocess
import sys

import pytest

PROG = os.path.join(os.path.dirname(__file__), "progs", "prop_cases.py")
EXAMPLES = 100


def run(case):
    env = dict(os.environ, GOMAXPROCS="2", GODEBUG="gccheckmark=1")
    env.pop("GOGC", None)
    r = subprocess.run([sys.executable, PROG, case, str(EXAMPLES)], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-5000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_channel_operations_across_ms_follow_gos_semantics():
    got = run("chan")
    assert got["examples"] == EXAMPLES
    # the examples reached every kind of outcome, panics of closed channels included
    assert set(got["outcomes"]) == {"default", "sent", "got", "len", "closed", "panic"}


def test_many_senders_and_receivers_lose_nothing_and_keep_order():
    got = run("fanin")
    assert got["examples"] == EXAMPLES and got["values"] > 0


@pytest.mark.timeout(300)
def test_object_graphs_match_a_reachability_model_across_collections():
    got = run("graph")
    assert got["examples"] == EXAMPLES and got["checked"] > 0
    assert got["end"] <= got["base"] + 8          # every example's graph was freed once dropped
