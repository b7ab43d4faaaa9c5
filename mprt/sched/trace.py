"""The execution tracer (Go's trace.go): runtime.StartTrace / ReadTrace / StopTrace.

Three parties, three places in the control segment:

  - Every M, and the coordinator (the collector's events), writes events into a ring of its own
    (region "trace": slot 0 the coordinator's, slot mid+1 M mid's; TRACEBUF_WORDS words each), so
    emitting takes no lock: the ring's first word counts records written (by its owner), the second
    records read (by the coordinator), the third events lost to a full ring.  An event is 4 words:
    (monotonic ns, kind | (P+1) << 8 | stack << 24, a, b), the stack an M-local number.  The first
    event that names a stack is preceded by its definition: a STACKDEF record (its number, how many
    PCs) and the PCs, three to a STACKPC record (pc, STACKPC, pc, pc), written and published as one.
  - The coordinator alone drains the rings, every sysmon round while a trace is on, and converts
    the events into Go 1.9's binary format (tracefmt.py: the merge, the replay that keeps the file
    acceptable to Go's parser, the stacks), which it appends to region "traceout", a byte ring
    (S_TOUTW bytes written).  After StopTrace it waits STOP_SETTLE_NS for events still being
    written, converts the rest and writes the footer (frequency, timer goroutine, strings, stacks).
  - ReadTrace, from any goroutine on any M, takes what is in "traceout" (S_TOUTR bytes read); it
    parks while there is nothing and the trace is not finished, and returns None once everything
    was read after StopTrace.  One reader at a time, as in Go (a second gets None and Go's message).

S_TRACE: 0 off, 1 on, 2 stopped and being finished by the coordinator, 3 finished (the readers take
the rest; the one that reads to the end sets 0).  StartTrace succeeds only from 0 ("tracing is
already enabled" otherwise, also while a stopped trace is still unread, as in Go).  StopTrace waits
for the reader to finish, as Go's does, when some goroutine reads this trace (it is inside
ReadTrace, or was within READER_GONE_S); otherwise it returns and the trace stays readable (mprt's
choice: a program that reads after stopping, from the same goroutine, does not hang).

Ms learn that tracing started or stopped from S_TRACE: the starter sets it and sends every M SIGURG,
whose handler (sync_state) reads it (an M started later reads it at its start).  The hot paths test
the process-local `m.tracing` only.  The coordinator reads S_TRACE once per sysmon tick and cycle.
"""
import sys
import time

import numpy as np

from .. import codeclass as _cc
from . import mstate, proc, tracefmt
from . import symtab as _symtab
from . import traceback as _traceback
from .ctl import (
    G_DEAD,
    G_GOID,
    G_STATUS,
    G_SYSCALL,
    G_TRACEX,
    G_WAITING,
    M_PID,
    M_STATE,
    MS_DEAD,
    NTRACEBUF,
    OFF,
    S_GOMAXPROCS,
    S_MCOUNT,
    S_NGALLOC,
    S_PROFSYNC,
    S_TIMERG,
    S_TOUTR,
    S_TOUTW,
    S_TRACE,
    S_TRACERDR,
    S_TRACESTART,
    TRACEBUF_WORDS,
    TRACEOUT_BYTES,
    W_CHANRECV,
    W_CHANRECVNIL,
    W_CHANSEND,
    W_CHANSENDNIL,
    W_GCASSIST,
    W_SELECT,
    W_SELECTNOCASES,
    W_SEMACQUIRE,
    W_SLEEP,
)

TB_HDR = 8
CAP = (TRACEBUF_WORDS - TB_HDR) // 4
STOP_SETTLE_NS = 20_000_000     # after StopTrace, events an M was writing as it stopped still land
# events the coordinator converts in one sysmon round: a few ms of its time (C: ~0.3 us an event,
# Python: ~5), so that sysmon's other duties wait no longer than that
ROUND_EVENTS = 20_000 if tracefmt._ctrace is not None else 2_000
READ_MAX = 1 << 20
TRACE_ROUND_S = 0.005           # the coordinator's longest sleep while a trace is on
READER_GONE_S = 0.25            # StopTrace stops waiting for a reader not seen in ReadTrace that long
MAX_FRAMES = 32

EVENTS = ["", "ProcStart", "ProcStop", "GCStart", "GCDone", "STWStart", "STWDone", "GoCreate", "GoStart",
          "GoEnd", "GoSched", "GoBlock", "GoUnblock", "HeapAlloc", "NextGC", "GoSysCall", "GoSysExit",
          "GoFunc", "GoPreempt", "GoSysBlock", "StackDef", "GoExist", "Gomaxprocs", "StackPCs"]
(EV_PROCSTART, EV_PROCSTOP, EV_GCSTART, EV_GCDONE, EV_STWSTART, EV_STWDONE, EV_GOCREATE, EV_GOSTART, EV_GOEND,
 EV_GOSCHED, EV_GOBLOCK, EV_GOUNBLOCK, EV_HEAPALLOC, EV_NEXTGC, EV_GOSYSCALL, EV_GOSYSEXIT, EV_GOFUNC,
 EV_GOPREEMPT, EV_GOSYSBLOCK, EV_STACKDEF, EV_GOEXIST, EV_GOMAXPROCS, EV_STACKPC) = range(1, len(EVENTS))
# the events' arguments: GoCreate (goid, function entry PC) with the creator's stack; GoStart, GoEnd,
# GoSysCall, GoSysExit (goid); GoSched (goid, 1 if a preemption); GoBlock (goid, wait reason) and
# GoUnblock (goid) with stacks; GoFunc (goid, entry PC); GoSysBlock (P, goid), written by whoever
# takes the P from an M in a system call; GoExist (goid, status) for each goroutine at the start;
# ProcStart/ProcStop (P); GCStart/GCDone (cycle); STWStart (reason); HeapAlloc, NextGC, Gomaxprocs.

STW_REASONS = ["", "GC sweep termination", "GC mark termination", "GOMAXPROCS", "read mem stats", "stack trace"]

_BLOCK_EVENT = {W_CHANRECV: tracefmt.EvGoBlockRecv, W_CHANRECVNIL: tracefmt.EvGoBlockRecv,
                W_CHANSEND: tracefmt.EvGoBlockSend, W_CHANSENDNIL: tracefmt.EvGoBlockSend,
                W_SELECT: tracefmt.EvGoBlockSelect, W_SELECTNOCASES: tracefmt.EvGoStop,
                W_SEMACQUIRE: tracefmt.EvGoBlockSync, W_SLEEP: tracefmt.EvGoSleep, W_GCASSIST: tracefmt.EvGoBlockGC}


class _Kinds:
    """The event kinds, as the converter (tracefmt.py) names them."""
    PROCSTART, PROCSTOP, GCSTART, GCDONE = EV_PROCSTART, EV_PROCSTOP, EV_GCSTART, EV_GCDONE
    STWSTART, STWDONE, GOCREATE, GOSTART, GOEND = EV_STWSTART, EV_STWDONE, EV_GOCREATE, EV_GOSTART, EV_GOEND
    GOSCHED, GOBLOCK, GOUNBLOCK, HEAPALLOC, NEXTGC = EV_GOSCHED, EV_GOBLOCK, EV_GOUNBLOCK, EV_HEAPALLOC, EV_NEXTGC
    GOSYSCALL, GOSYSEXIT, GOFUNC, GOSYSBLOCK = EV_GOSYSCALL, EV_GOSYSEXIT, EV_GOFUNC, EV_GOSYSBLOCK
    STACKDEF, STACKPC, GOEXIST, GOMAXPROCS = EV_STACKDEF, EV_STACKPC, EV_GOEXIST, EV_GOMAXPROCS
    RUNNING_KINDS = frozenset((EV_GOEND, EV_GOSCHED, EV_GOBLOCK, EV_GOSYSCALL))
    G_WAITING_STATUS, G_SYSCALL_STATUS = G_WAITING, G_SYSCALL

    @staticmethod
    def block_event(reason):
        return _BLOCK_EVENT.get(reason, tracefmt.EvGoBlock)


if tracefmt._ctrace is not None:
    tracefmt._ctrace.setup(
        (EV_PROCSTART, EV_PROCSTOP, EV_GCSTART, EV_GCDONE, EV_STWSTART, EV_STWDONE, EV_GOCREATE, EV_GOSTART,
         EV_GOEND, EV_GOSCHED, EV_GOBLOCK, EV_GOUNBLOCK, EV_HEAPALLOC, EV_NEXTGC, EV_GOSYSCALL, EV_GOSYSEXIT,
         EV_GOSYSBLOCK, EV_GOEXIST, EV_GOMAXPROCS, G_WAITING, G_SYSCALL, tracefmt.TICK_SHIFT,
         tracefmt.WATERMARK_NS, tracefmt.PLACEHOLDER), _BLOCK_EVENT)


def stw_reason(text):
    try:
        return STW_REASONS.index(text)
    except ValueError:
        return 0


def slot_of(m):
    return 0 if m.row is None else m.id + 1


# ---- the Ms' side: emitting ----

def sync_state(m, announce=True):
    """Start or stop emitting as S_TRACE says (SIGURG handler, M start, coordinator tick)."""
    on = m.q[m.ctl.sched + S_TRACE] == 1
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
        m.tstacks = {}
        m.tgo = {}              # proc._trace_go's findings for csched's GoCreate (this trace's stacks)
    m.tracing = on
    if on and announce and m.row is not None:
        _announce(m)


def _announce(m):
    """What an M has when tracing starts: its P, its goroutine running, its goroutines' functions."""
    if m.p >= 0:
        ev(m, EV_PROCSTART, m.p)
    for g, gl in list(m.greenlets.items()):
        fr = getattr(gl, "gr_frame", None)
        pc = _entry_of(fr)
        if pc:
            ev(m, EV_GOFUNC, m.q[m.ctl.g(g) + G_GOID], pc)
    if m.curg >= 0:
        pc = _entry_of(sys._getframe(1))
        if pc:
            ev(m, EV_GOFUNC, m.curgoid, pc)
        ev(m, EV_GOSTART, m.curgoid)


def _entry_of(frame):
    """The entry PC of the goroutine's own function: its outermost frame of the program's code
    inside its base (or, for main, mprt.run)."""
    inner = None
    kind_of = _cc.kind_of
    while frame is not None:
        code = frame.f_code
        k = kind_of(code)
        if k == _cc.BASE or _cc.is_root(code):
            break
        if k == _cc.USER:
            inner = frame
        frame = frame.f_back
    if frame is None or inner is None:
        return 0
    fi = _symtab.register(inner.f_code, inner.f_globals.get("__name__", "?"))
    return 0 if fi is None else _symtab.FUNC_BASE + (fi << _symtab.FUNC_SHIFT)


def fn_entry(fn):
    """The entry PC of a goroutine's function (0 for what has no Python code)."""
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is None:
        return 0
    fi = _symtab.register(code, getattr(fn, "__module__", None) or "?")
    return 0 if fi is None else _symtab.FUNC_BASE + (fi << _symtab.FUNC_SHIFT)


def ev(m, kind, a=0, b=0, stk=0):
    """Emit one event on this M's ring (the caller tested m.tracing)."""
    q, t = m.q, m.tbase
    n = q[t]
    if n - q[t + 1] >= CAP:
        q[t + 2] += 1
        return
    o = t + TB_HDR + (n % CAP) * 4
    q[o] = time.monotonic_ns()
    q[o + 1] = kind | (m.p + 1) << 8 | stk << 24
    q[o + 2] = a
    q[o + 3] = b
    q[t] = n + 1


def stack(m, frame):
    """This M's number for the stack of the program's code at or outside `frame` (0: none).  A stack
    is known by its innermost program frame (its code and instruction): the first walk from there
    is the one recorded (two paths to one call site share the first path's frames)."""
    frame = _cc.program_frame(frame)
    if frame is None:
        return 0
    key = (id(frame.f_code), frame.f_lasti)
    sid = m.tstacks.get(key)
    if sid is not None:
        return sid
    pcs = [pc for pc in _symtab.callers(frame, MAX_FRAMES) if isinstance(pc, int) and pc > 0]
    if not pcs:
        return 0
    q, t = m.q, m.tbase
    nrec = 1 + (len(pcs) + 2) // 3
    n = q[t]
    if n - q[t + 1] + nrec > CAP or n % CAP + nrec > CAP:
        # no room, or the definition would wrap: not defined (events name stack 0)
        if n % CAP + nrec > CAP and n - q[t + 1] + (CAP - n % CAP) <= CAP:
            _pad(m, n, CAP - n % CAP)
        return 0
    sid = len(m.tstacks) + 1
    o = t + TB_HDR + (n % CAP) * 4
    q[o] = time.monotonic_ns()
    q[o + 1] = EV_STACKDEF | len(pcs) << 8
    q[o + 2] = sid
    q[o + 3] = 0
    for i in range(0, len(pcs), 3):         # the PCs, three to a record marked STACKPC
        o += 4
        q[o] = pcs[i]
        q[o + 1] = EV_STACKPC
        q[o + 2] = pcs[i + 1] if i + 1 < len(pcs) else 0
        q[o + 3] = pcs[i + 2] if i + 2 < len(pcs) else 0
    q[t] = n + nrec
    m.tstacks[key] = sid
    return sid


def _pad(m, n, k):
    """k records of nothing (kind 0) to the ring's end, so a definition starts at its beginning."""
    q, t = m.q, m.tbase
    o = t + TB_HDR + (n % CAP) * 4
    for i in range(k):
        q[o + 4 * i + 1] = 0
    q[t] = n + k


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
    if q[s + S_TRACE]:
        mstate.rel(m.schedlock)
        raise RuntimeError("tracing is already enabled")
    base = ctl.base["trace"]
    nslots = min(NTRACEBUF, q[s + S_MCOUNT] + 9)
    try:
        ctl.seg.commit(base * 8, nslots * TRACEBUF_WORDS * 8)
        ctl.seg.commit(OFF["traceout"], TRACEOUT_BYTES)
    except OSError:
        mstate.rel(m.schedlock)
        raise
    for i in range(nslots):
        t = base + i * TRACEBUF_WORDS
        q[t] = q[t + 1] = q[t + 2] = 0
    q[s + S_TOUTW] = q[s + S_TOUTR] = q[s + S_TRACERDR] = 0
    q[s + S_TRACESTART] = time.monotonic_ns()
    q[s + S_TRACE] = 1
    q[s + S_PROFSYNC] += 1
    mstate.rel(m.schedlock)
    sync_state(m, announce=False)
    # the goroutines that exist already (Go's StartTrace: GoCreate, and GoWaiting or GoInSyscall)
    ev(m, EV_GOMAXPROCS, q[s + S_GOMAXPROCS])
    for g in range(q[s + S_NGALLOC]):
        r = ctl.g(g)
        st = q[r + G_STATUS]
        goid = q[r + G_GOID]
        if st != G_DEAD and goid > 0:
            q[r + G_TRACEX] = q[s + S_TRACESTART]
            ev(m, EV_GOEXIST, goid, st)
    if m.row is not None:
        _announce(m)
    signal_ms(m)
    m.sysmonnote.release()


def stop(m):
    """runtime.StopTrace: the Ms stop emitting; the coordinator finishes the trace.  Waits for the
    reader to have read it all if some goroutine reads this trace (Go's StopTrace)."""
    q, s = m.q, m.ctl.sched
    mstate.acq(m.schedlock)
    was = q[s + S_TRACE] == 1
    if was:
        q[s + S_TRACE] = 2
        q[s + S_PROFSYNC] += 1
    mstate.rel(m.schedlock)
    if not was:
        return
    sync_state(m)
    signal_ms(m)
    m.sysmonnote.release()
    # wait while a reader reads: one that is inside ReadTrace now, or was within READER_GONE_S (a
    # goroutine that reads, then stops the trace itself, would wait for itself: Go's deadlock)
    idle = 0.0
    while q[s + S_TRACERDR] & 2 and q[s + S_TRACE] and idle < READER_GONE_S:
        _nap(m, 0.002)
        idle = 0.0 if q[s + S_TRACERDR] & 1 else idle + 0.002


def _nap(m, sec):
    if m.curg >= 0:
        proc.sleep(sec)
    else:
        time.sleep(sec)


def will_read(m):
    """Say that this trace has a reader (runtime/trace's thread): StopTrace waits for it."""
    m.q[m.ctl.sched + S_TRACERDR] |= 2


def read(m, block=True):
    """runtime.ReadTrace: the next bytes of the trace; parks (block) while tracing is on and nothing
    is new; None once the trace is finished and everything was returned (and while none is on).
    block=False: b"" instead of waiting (runtime/trace's copying thread)."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    if block:
        mstate.acq(m.schedlock)
        st, rdr = q[s + S_TRACE], q[s + S_TRACERDR]
        if st == 0:
            mstate.rel(m.schedlock)
            return None
        if rdr & 1:
            mstate.rel(m.schedlock)
            _traceback.write_err("runtime: ReadTrace called from multiple goroutines simultaneously\n")
            return None
        q[s + S_TRACERDR] = rdr | 3
        mstate.rel(m.schedlock)
    elif q[s + S_TRACE] == 0:
        return None
    try:
        while True:
            w, r = q[s + S_TOUTW], q[s + S_TOUTR]
            if w > r:
                n = min(w - r, READ_MAX)
                o = OFF["traceout"]
                i = r % TRACEOUT_BYTES
                k = min(n, TRACEOUT_BYTES - i)
                data = bytes(ctl.u8[o + i:o + i + k])
                if k < n:
                    data += bytes(ctl.u8[o:o + n - k])
                q[s + S_TOUTR] = r + n
                return data
            if q[s + S_TRACE] == 3:
                # finished and all read (the coordinator wrote its last bytes before it set 3; only
                # the reader leaves 3, and only one reads at a time)
                q[s + S_TRACE] = 0
                return None
            if q[s + S_TRACE] == 0:
                return None
            if not block:
                return b""
            _nap(m, 0.002)
    finally:
        if block:
            mstate.acq(m.schedlock)
            q[s + S_TRACERDR] &= ~1
            mstate.rel(m.schedlock)


# ---- the coordinator's side: draining, converting, writing ----

class _Coord:
    conv = None
    start = 0
    stop_seen = 0
    out = b""
    finished = False


def active():
    """Whether the coordinator has a trace to tend (then it comes round every TRACE_ROUND_S)."""
    return _Coord.conv is not None


def poll(sm):
    """The coordinator's round: convert what the rings hold; finish a stopped trace.  True if it
    did something (the coordinator then comes back soon)."""
    q, s = sm.q, sm.ctl.sched
    sync_state(sm)
    st = q[s + S_TRACE]
    c = _Coord
    if st in (1, 2) and (c.conv is None or c.start != q[s + S_TRACESTART]):
        c.start = q[s + S_TRACESTART]
        c.conv = tracefmt.Converter(c.start, _Kinds)
        c.stop_seen, c.out, c.finished = 0, c.conv.take(), False
    if c.conv is None:
        return False
    if st not in (1, 2) or c.start != q[s + S_TRACESTART]:
        if st != 3:
            c.conv = None
        return False
    did = 0
    if not c.finished:
        now = time.monotonic_ns()
        final = False
        if st == 2:
            if not c.stop_seen:
                c.stop_seen = now
            final = now - c.stop_seen >= STOP_SETTLE_NS
        lost = _drain(sm, c.conv)
        did = c.conv.round(now, final, ROUND_EVENTS)
        c.out += c.conv.take()
        if final and not c.conv.npending():
            c.out += c.conv.footer(_timer_goid(sm), [f"mprt: {lost} events lost to full rings"])
            c.finished = True
    did += _flush(sm, c)
    if c.finished and not c.out:
        mstate.acq(sm.schedlock)
        if q[s + S_TRACE] == 2 and c.start == q[s + S_TRACESTART]:
            q[s + S_TRACE] = 3
        mstate.rel(sm.schedlock)
        c.conv = None
    return did > 0


def _drain(sm, conv):
    """Every ring's new records into the converter; the events lost so far, over every ring."""
    q, ctl = sm.q, sm.ctl
    base = ctl.base["trace"]
    words = ctl.words
    lost = 0
    for i in range(min(NTRACEBUF, q[ctl.sched + S_MCOUNT] + 1)):
        t = base + i * TRACEBUF_WORDS
        w, r = q[t], q[t + 1]
        lost += q[t + 2]
        if w == r:
            continue
        o = t + TB_HDR
        a, b = r % CAP, w % CAP
        if a < b:
            recs = words[o + a * 4:o + b * 4].reshape(-1, 4).copy()
        else:
            recs = np.concatenate((words[o + a * 4:o + CAP * 4], words[o:o + b * 4])).reshape(-1, 4)
        q[t + 1] = w
        conv.feed(i, recs)
    return lost


def _flush(sm, c):
    if not c.out:
        return 0
    q, ctl, s = sm.q, sm.ctl, sm.ctl.sched
    w, r = q[s + S_TOUTW], q[s + S_TOUTR]
    n = min(len(c.out), TRACEOUT_BYTES - (w - r))
    if n <= 0:
        return 0
    o = OFF["traceout"]
    i = w % TRACEOUT_BYTES
    k = min(n, TRACEOUT_BYTES - i)
    mv = memoryview(c.out)
    ctl.u8[o + i:o + i + k] = mv[:k]
    if k < n:
        ctl.u8[o:o + n - k] = mv[k:n]
    c.out = c.out[n:]
    q[s + S_TOUTW] = w + n
    return n


def _timer_goid(sm):
    g = sm.q[sm.ctl.sched + S_TIMERG] - 1
    return sm.q[sm.ctl.g(g) + G_GOID] if g >= 0 else 0


# ---- reading a trace back (mprt trace) ----

def decode(data):
    """(meta, events, trailer) from a Go 1.9 trace, in the shape traceview.py draws: events an
    (n, 6) int64 array of slot (the M + 1 that held the P, 0 for the collector's), ns since the
    trace's first event, kind (this module's), P, a, b, in time order; trailer: the functions that
    GoFunc rows name, events lost."""
    tr = tracefmt.parse(data)
    f = tracefmt
    thread = {}
    rows = []
    funcs = {}
    gomaxprocs = 0
    t0 = tr.events[0][0] if tr.events else 0
    kinds = {f.EvProcStart: EV_PROCSTART, f.EvProcStop: EV_PROCSTOP, f.EvGCStart: EV_GCSTART,
             f.EvGCDone: EV_GCDONE, f.EvGCSTWStart: EV_STWSTART, f.EvGCSTWDone: EV_STWDONE,
             f.EvGoCreate: EV_GOCREATE, f.EvGoStart: EV_GOSTART, f.EvGoEnd: EV_GOEND, f.EvGoStop: EV_GOEND,
             f.EvGoSched: EV_GOSCHED, f.EvGoPreempt: EV_GOPREEMPT, f.EvGoUnblock: EV_GOUNBLOCK,
             f.EvHeapAlloc: EV_HEAPALLOC, f.EvNextGC: EV_NEXTGC, f.EvGoSysCall: EV_GOSYSCALL,
             f.EvGoSysExit: EV_GOSYSEXIT, f.EvGoSysBlock: EV_GOSYSBLOCK}
    for tick, typ, p, g, args, _stk in tr.events:
        ns = int(tr.ns(tick - t0))
        if typ == f.EvProcStart:
            thread[p] = args[0] + 1
        slot = thread.get(p, 0) if p >= 0 else 0
        if typ == f.EvGomaxprocs:
            gomaxprocs = args[0]
        elif typ == f.EvGoCreate:
            frames = tr.stacks.get(args[1])
            if frames:
                pc, fn = frames[0][0], frames[0][1]
                funcs[str(pc)] = fn
                rows.append((slot, ns, EV_GOFUNC, p, args[0], pc))
        if typ in _BLOCK_EVENT.values() or typ == f.EvGoBlock:
            kind, a = EV_GOBLOCK, g
        else:
            kind = kinds.get(typ)
            if kind is None:
                continue
            a = args[0] if typ in (f.EvGoCreate, f.EvGoStart, f.EvGoUnblock, f.EvGoSysExit, f.EvHeapAlloc,
                                   f.EvNextGC, f.EvGCStart) else g
        if typ == f.EvGCStart:
            a += 1
        rows.append((slot, ns, kind, p, a, 0))
        if typ == f.EvProcStop:
            thread.pop(p, None)
    ev = np.array(rows, dtype=np.int64).reshape(-1, 6)
    ev = ev[np.argsort(ev[:, 1], kind="stable")]
    lost = 0
    for text in tr.strings.values():
        if text.startswith("mprt: ") and text.endswith(" events lost to full rings"):
            lost = int(text.split()[1])
    meta = {"start_ns": 0, "gomaxprocs": gomaxprocs, "timer_goroutine": tr.timer_goid}
    return meta, ev, {"funcs": funcs, "lost": lost}


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
