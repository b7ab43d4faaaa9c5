"""The execution tracer (Go's trace.go): runtime.StartTrace / ReadTrace / StopTrace.

Every M, and the coordinator (the collector's events), writes events into a ring of its own in the
control segment (region "trace": slot 0 the coordinator's, slot mid+1 M mid's; TRACEBUF_WORDS words
each), so emitting takes no lock: the ring's first word counts events written (by its owner), the
second events read (by the reader), the third events lost to a full ring.  An event is 4 words:
(monotonic ns, kind | (P+1) << 8, a, b).

Ms learn that tracing started or stopped from S_TRACE: the starter sets it and sends every M SIGURG,
whose handler (sync_state) reads it (an M started later reads it at its start).  The hot paths test
the process-local `m.tracing` only.  The coordinator reads S_TRACE once per sysmon tick and cycle.

The stream that ReadTrace returns (mprt's own format, documented in README "Execution trace"):
    b"mprt trace 1\\n", one JSON line (start ns, GOMAXPROCS, NumCPU, the Ms' pids), then records of
    5 little-endian int64 (slot, ns, kind | (P+1) << 8, a, b), and at the end a record whose slot is
    -1 followed by one JSON line: the goroutines' creation sites and functions, the events lost.
`decode` reads it back; mprt/runtime/traceview.py turns it into a picture and trace-event JSON.
"""
import json
import time

import numpy as np

from . import mstate, proc
from . import symtab as _symtab
from .ctl import (
    G_DEAD,
    G_GOID,
    G_SITE,
    G_STATUS,
    M_PID,
    M_STATE,
    MS_DEAD,
    NTRACEBUF,
    S_GOMAXPROCS,
    S_MCOUNT,
    S_NCPU,
    S_NGALLOC,
    S_NSITES,
    S_PROFSYNC,
    S_TRACE,
    S_TRACESTART,
    TRACEBUF_WORDS,
)

TB_HDR = 8
CAP = (TRACEBUF_WORDS - TB_HDR) // 4
MAGIC = b"mprt trace 1\n"

EVENTS = ["", "ProcStart", "ProcStop", "GCStart", "GCDone", "STWStart", "STWDone", "GoCreate", "GoStart",
          "GoEnd", "GoSched", "GoBlock", "GoUnblock", "HeapAlloc", "NextGC", "GoSysCall", "GoSysExit",
          "GoFunc", "GoPreempt"]
(EV_PROCSTART, EV_PROCSTOP, EV_GCSTART, EV_GCDONE, EV_STWSTART, EV_STWDONE, EV_GOCREATE, EV_GOSTART, EV_GOEND,
 EV_GOSCHED, EV_GOBLOCK, EV_GOUNBLOCK, EV_HEAPALLOC, EV_NEXTGC, EV_GOSYSCALL, EV_GOSYSEXIT, EV_GOFUNC,
 EV_GOPREEMPT) = range(1, len(EVENTS))

STW_REASONS = ["", "GC sweep termination", "GC mark termination", "GOMAXPROCS", "read mem stats", "stack trace"]


def stw_reason(text):
    try:
        return STW_REASONS.index(text)
    except ValueError:
        return 0


def slot_of(m):
    return 0 if m.row is None else m.id + 1


def sync_state(m):
    """Start or stop emitting as S_TRACE says (SIGURG handler, M start, coordinator tick)."""
    on = bool(m.q[m.ctl.sched + S_TRACE])
    if on == m.tracing:
        return
    slot = slot_of(m)
    if on and slot >= NTRACEBUF:
        return
    m.tbase = m.ctl.base["trace"] + slot * TRACEBUF_WORDS
    if on:
        try:
            m.ctl.seg.commit(m.tbase * 8, TRACEBUF_WORDS * 8)      # idempotent; an M started later
        except OSError:
            return                                                # no memory for a ring: not traced
    m.tracing = on
    if on and m.row is not None:
        if m.p >= 0:
            ev(m, EV_PROCSTART, m.p)
        if m.curg >= 0:
            ev(m, EV_GOSTART, m.curgoid)


def ev(m, kind, a=0, b=0):
    """Emit one event on this M's ring (the caller tested m.tracing)."""
    q, t = m.q, m.tbase
    n = q[t]
    if n - q[t + 1] >= CAP:
        q[t + 2] += 1
        return
    o = t + TB_HDR + (n % CAP) * 4
    q[o] = time.monotonic_ns()
    q[o + 1] = kind | (m.p + 1) << 8
    q[o + 2] = a
    q[o + 3] = b
    q[t] = n + 1


class _Reader:
    """The reading side, in the process that called StartTrace."""

    def __init__(self):
        self.rtid = None
        self.header_sent = False
        self.done = False
        self.funcs = set()        # function PCs named by GoFunc events


reader = _Reader()


def signal_ms(m):
    import os
    import signal

    q, ctl = m.q, m.ctl
    for mid in range(mstate.mcount(m)):
        r = ctl.m(mid)
        pid = q[r + M_PID]
        if mid != m.id and pid > 0 and q[r + M_STATE] != MS_DEAD:
            try:
                os.kill(pid, signal.SIGURG)
            except ProcessLookupError:
                pass


def start(m):
    """runtime.StartTrace."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    mstate.acq(m.schedlock)
    if q[s + S_TRACE] or (reader.rtid == m.rtid and not reader.done):
        mstate.rel(m.schedlock)
        raise RuntimeError("tracing is already enabled")
    base = ctl.base["trace"]
    nslots = min(NTRACEBUF, q[s + S_MCOUNT] + 9)
    ctl.seg.commit(base * 8, nslots * TRACEBUF_WORDS * 8)
    for i in range(NTRACEBUF):
        if i < nslots:
            q[base + i * TRACEBUF_WORDS] = q[base + i * TRACEBUF_WORDS + 1] = q[base + i * TRACEBUF_WORDS + 2] = 0
    q[s + S_TRACESTART] = time.monotonic_ns()
    q[s + S_TRACE] = 1
    q[s + S_PROFSYNC] += 1
    mstate.rel(m.schedlock)
    reader.__init__()
    reader.rtid = m.rtid
    sync_state(m)
    # the goroutines that exist already
    for g in range(q[s + S_NGALLOC]):
        r = ctl.g(g)
        if q[r + G_STATUS] != G_DEAD and q[r + G_GOID] > 0:
            ev(m, EV_GOCREATE, q[r + G_GOID], q[r + G_SITE])
    signal_ms(m)


def stop(m):
    """runtime.StopTrace: Ms stop emitting; what they wrote stays for ReadTrace."""
    q, s = m.q, m.ctl.sched
    mstate.acq(m.schedlock)
    was = q[s + S_TRACE]
    q[s + S_TRACE] = 0
    q[s + S_PROFSYNC] += 1
    mstate.rel(m.schedlock)
    if not was:
        return
    sync_state(m)
    signal_ms(m)
    time.sleep(0.005)       # the signalled Ms finish the event they were writing


def drain(m):
    q, ctl = m.q, m.ctl
    base = ctl.base["trace"]
    out = []
    nslots = min(NTRACEBUF, q[ctl.sched + S_MCOUNT] + 1)
    for i in range(nslots):
        t = base + i * TRACEBUF_WORDS
        w, r = q[t], q[t + 1]
        if w == r:
            continue
        idx = (np.arange(r, w) % CAP) * 4 + t + TB_HDR
        ev4 = ctl.words[idx[:, None] + np.arange(4)]
        rec = np.empty((len(idx), 5), dtype="<i8")
        rec[:, 0] = i
        rec[:, 1:] = ev4
        out.append(rec)
        q[t + 1] = w
    if not out:
        return b""
    allr = np.concatenate(out)
    f = allr[:, 2] & 0xFF == EV_GOFUNC
    if f.any():
        reader.funcs.update(int(x) for x in allr[f, 4])
    allr = allr[np.argsort(allr[:, 1], kind="stable")]
    return allr.tobytes()


def header(m):
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    meta = {"start_ns": int(q[s + S_TRACESTART]), "gomaxprocs": int(q[s + S_GOMAXPROCS]),
            "ncpu": int(q[s + S_NCPU]), "ms": {str(i): int(q[ctl.m(i) + M_PID]) for i in range(mstate.mcount(m))}}
    return MAGIC + json.dumps(meta).encode() + b"\n"


def _trailer(m):
    q, ctl = m.q, m.ctl
    base = ctl.base["trace"]
    lost = sum(int(q[base + i * TRACEBUF_WORDS + 2]) for i in range(min(NTRACEBUF, q[ctl.sched + S_MCOUNT] + 1)))
    sites = {str(i): proc.site_text(ctl, i) for i in range(q[ctl.sched + S_NSITES])}
    funcs = {}
    for pc in reader.funcs:
        f = _symtab.findfunc(pc)
        if f is not None:
            funcs[str(pc)] = f.name
    return (np.array([[-1, 0, 0, 0, 0]], dtype="<i8").tobytes()
            + json.dumps({"sites": sites, "lost": lost, "funcs": funcs}).encode() + b"\n")


def read(m):
    """runtime.ReadTrace: the next chunk; waits (parking the goroutine) while tracing is on and
    nothing is new; None once tracing stopped and everything was returned.  The reader's state is
    the StartTrace caller's process: read from there (another process gets None)."""
    if reader.rtid != m.rtid or reader.done:
        return None
    out = b""
    if not reader.header_sent:
        reader.header_sent = True
        out = header(m)
    while True:
        on = m.q[m.ctl.sched + S_TRACE]
        data = drain(m)
        if data or out:
            return out + data
        if not on:
            reader.done = True
            return _trailer(m)
        if m.curg >= 0:
            proc.sleep(0.01)
        else:
            time.sleep(0.01)


def decode(data):
    """(meta, events, trailer) from a stream; events is an (n, 6) array of slot, ns, kind, P, a, b
    in time order."""
    if not data.startswith(MAGIC):
        raise ValueError("not an mprt trace (no 'mprt trace 1' header)")
    i = data.index(b"\n", len(MAGIC))
    meta = json.loads(data[len(MAGIC):i])
    body = data[i + 1:]
    rows = np.frombuffer(body[:len(body) // 40 * 40], dtype="<i8").reshape(-1, 5)
    ends = np.flatnonzero(rows[:, 0] == -1)
    trailer = {}
    if len(ends):
        k = int(ends[0])
        tail = body[k * 40 + 40:]
        trailer = json.loads(tail[:tail.index(b"\n")])
        rows = rows[:k]
    ev = np.empty((len(rows), 6), dtype=np.int64)
    ev[:, 0] = rows[:, 0]
    ev[:, 1] = rows[:, 1]
    ev[:, 2] = rows[:, 2] & 0xFF
    ev[:, 3] = (rows[:, 2] >> 8) - 1
    ev[:, 4] = rows[:, 3]
    ev[:, 5] = rows[:, 4]
    ev = ev[np.argsort(ev[:, 1], kind="stable")]
    return meta, ev, trailer


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
