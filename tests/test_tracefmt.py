"""The trace converter (mprt/sched/tracefmt.py, ctrace.c) on event streams made here: what the Ms'
rings can hold, including events out of order across rings, lost ones and goroutines that existed
before the trace.  Go's own parser (`go tool trace -d`) must accept whatever it writes, and the C
merge must write the very bytes of the Python reference."""
import random
import shutil
import subprocess

import numpy as np
import pytest

from mprt.sched import trace as _t
from mprt.sched import tracefmt

pytestmark = pytest.mark.timeout(300)
GO = shutil.which("go")
K = _t._Kinds


def _w1(kind, p, stk=0):
    return kind | (p + 1) << 8 | stk << 24


def stream(seed, n=300, drop=0.0, jitter=0):
    """Rings of a made-up run: goroutines created on M0 (ring 1), run, block, woken and ended on
    two Ms (rings 1 and 2, P 0 and 1), the collector's events on ring 0; some goroutines exist
    before the trace (GoExist).  drop: the share of events lost; jitter: ns of disorder between
    rings (an event stamped before the one that caused it)."""
    rnd = random.Random(seed)
    rings = {0: [], 1: [], 2: []}
    t = [1_000_000]

    def ev(slot, kind, p, a=0, b=0, stk=0):
        t[0] += rnd.randint(50, 400)
        if drop and kind not in (K.STACKDEF, K.STACKPC) and rnd.random() < drop:
            return
        ts = t[0] + (rnd.randint(-jitter, jitter) if jitter else 0)
        rings[slot].append([ts, _w1(kind, p, stk), a, b])

    # stack 1 of ring 1: two PCs
    rings[1].append([t[0], K.STACKDEF | 2 << 8, 1, 0])
    rings[1].append([0x400100, K.STACKPC, 0x400200, 0])
    for goid, st in ((1, 2), (2, 4), (3, 4), (4, 1)):
        ev(1, K.GOEXIST, 0, goid, st)
    ev(1, K.GOMAXPROCS, 0, 2)
    ev(1, K.PROCSTART, 0, 0)
    ev(1, K.GOSTART, 0, 1)
    ev(2, K.PROCSTART, 1, 1)
    waiting = [2, 3]
    runnable = [4]
    nextg = 10
    for i in range(n):
        r = rnd.random()
        if r < 0.3:
            ev(1, K.GOCREATE, 0, nextg, 0x500000 + (nextg % 3 << 20), 1)
            runnable.append(nextg)
            nextg += 1
        elif r < 0.55 and runnable:
            g = runnable.pop(rnd.randrange(len(runnable)))
            ev(2, K.GOSTART, 1, g)
            what = rnd.random()
            if what < 0.4:
                ev(2, K.GOEND, 1, g)
            elif what < 0.7:
                ev(2, K.GOBLOCK, 1, g, rnd.choice([1, 2, 3, 5, 6]))
                waiting.append(g)
            elif what < 0.85:
                ev(2, K.GOSCHED, 1, g)
                runnable.append(g)
            else:
                ev(2, K.GOSYSCALL, 1, g)
                ev(0, K.GOSYSBLOCK, -1, 1, g)
                ev(2, K.GOSYSEXIT, -1, g)
                ev(2, K.PROCSTART, 1, 1)
                runnable.append(g)
        elif r < 0.75 and waiting:
            g = waiting.pop(rnd.randrange(len(waiting)))
            ev(1, K.GOUNBLOCK, 0, g, 0, 1)
            runnable.append(g)
        elif r < 0.8:
            ev(0, K.GCSTART, -1, i)
            ev(0, K.STWSTART, -1, 1)
            ev(0, K.STWDONE, -1)
            ev(0, K.HEAPALLOC, -1, 4 << 20)
            ev(0, K.GCDONE, -1, i)
            ev(0, K.NEXTGC, -1, 8 << 20)
        elif r < 0.85:
            ev(2, K.PROCSTOP, 1, 1)
            ev(2, K.PROCSTART, 1, 1)
    return {s: np.array(r, dtype=np.int64).reshape(-1, 4) for s, r in rings.items()}


def convert(rings, use_c):
    conv = tracefmt.Converter(500_000, K)
    if not use_c:
        conv.c = None
    for slot, rows in rings.items():
        if len(rows):
            conv.feed(slot, rows)
    conv.round(10**15, True)
    out = conv.take()
    out += conv.footer(0, ["mprt: 0 events lost to full rings"])
    return out


@pytest.mark.parametrize("seed,drop,jitter", [(1, 0, 0), (2, 0, 300), (3, 0.05, 0), (4, 0.15, 500), (5, 0.3, 2000)])
def test_every_stream_converts_to_a_trace_gos_parser_accepts(seed, drop, jitter, tmp_path):
    data = convert(stream(seed, drop=drop, jitter=jitter), use_c=tracefmt._ctrace is not None)
    tr = tracefmt.parse(data)
    assert tr.freq == tracefmt.FREQ and any(e[1] == tracefmt.EvGoCreate for e in tr.events)
    assert tr.stacks[1] == [(0x400100, "", "", 0), (0x400200, "", "", 0)] or tr.stacks
    if GO:
        path = tmp_path / "t.trace"
        path.write_bytes(data)
        p = subprocess.run([GO, "tool", "trace", "-d", str(path)], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr[-3000:]


@pytest.mark.skipif(tracefmt._ctrace is None, reason="the C accelerators are off or not built")
@pytest.mark.parametrize("seed", range(12))
def test_the_c_merge_writes_the_bytes_of_the_python_one(seed):
    rings = stream(100 + seed, n=400, drop=0.1 * (seed % 4), jitter=200 * (seed % 3))
    assert convert(rings, True) == convert(rings, False)
