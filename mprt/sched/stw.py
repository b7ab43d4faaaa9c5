"""Stopping the world, safe points, and the signals that reach a goroutine (SIGURG, SIGPROF).

The one stop-the-world path is stop_the_world / start_the_world (the collector's phases,
GOMAXPROCS, runtime.Stack and the profiles use it).  The stopper sets GCWAITING under the sched
lock, takes the idle Ps, sets ATTN last, and waits for each running M to park its P at a safe
point.  Where csched.c is built, the common case of each step is done there, the same steps on the
same words (the request and restart, and an M's stop at an allocation: the pause is spent in cold
code, ~50 us of Python per M and as much in the stopper), and everything else here.

Safe points: every runtime call, and every allocation by the program (mprt.new, make, new_batch),
reads the sched word ATTN (set while the world is stopping or the program ends) and its M's PREEMPT
word (sysmon's request to yield, after 10 ms on a P).  A goroutine that makes no runtime call is
reached by SIGURG, which sysmon sends with the request (unless GODEBUG=asyncpreemptoff=1) and the
stopper sends for a stop.

Preemption (Go 1.14's asynchronous preemption, beyond Go 1.9).  Where the signal handler may act is
decided by the kind of every frame on the stack, walked whole (mprt/codeclass.py), never by
depth or module names:
  - it may stop the M for the world (park it in the handler; no goroutine is switched) only if the
    M holds no runtime lock (`M.locks`) and no frame down to the goroutine's entry is runtime or
    heap code.  Runtime code stops at its own safe points (the end of a runtime call, the scheduler's
    loop), or the stopper's next signal (every STW_RESIGNAL_NS) finds the program's code: a stop at
    an arbitrary point of the scheduler let a resize take a P that the code still held in a local.
    Heap code holds raw heap addresses in Python locals and updates the allocator's books (a GC cycle
    during a stop there could sweep what it holds): its outermost frame gets a trace function that
    stops the M when it returns.  An M stopped by the signal leaves holding a P again (it waits for
    one, needp, if a resize took its own): the code it interrupted counts on it;
  - it may switch the goroutine out (gosched) only if, besides, the M has a P, the scheduler's own
    greenlet is not running, and every frame from the interrupted one down to the goroutine's entry
    (`_gmain`, M0's `_run_main`) is the program's own code: no runtime frame (the scheduler keeps
    process-local state, G-slot caches, goid batches, run queues, that another goroutine of the same
    M would see half updated), no heap frame, and no frame of the import machinery, logging or
    threading (a Python lock held there would deadlock the M when another of its goroutines takes it).
    Otherwise the request stays: the goroutine yields at its next safe point, or at sysmon's next
    signal 10 ms later.  Being switched out at a bytecode boundary of its own code is safe for the
    goroutine because it is exactly a Gosched there: its frames stay in its greenlet on this M.
A program's own threading.Lock held across a preemption is the case left open (README).
"""
import os
import signal
import sys
import time

import greenlet
import posix_ipc

from .. import codeclass
from ..settings import load_accel
from ..shm import malloc
from ..shm.segment import shm_name
from .ctl import (
    G_LABELS,
    M_GCSCAN,
    M_P,
    M_PID,
    M_PREEMPT,
    M_STAMP,
    M_STATE,
    M_WORDS,
    MS_GCSTOP,
    MS_IDLE,
    MS_NEEDP,
    MS_RUNNING,
    NONE,
    NPAUSE,
    P_DEAD,
    P_GCSTOP,
    P_IDLE,
    P_LINK,
    P_M,
    P_RQHEAD,
    P_RQTAIL,
    P_RUNNEXT,
    P_RUNNING,
    P_RUNQ,
    P_SMSTICK,
    P_SMTICK,
    P_STATUS,
    P_SYSCALL,
    P_WORDS,
    RUNQ,
    S_ATTN,
    S_CPUHZ,
    S_EXIT,
    S_GCWAITING,
    S_GOMAXPROCS,
    S_GQSIZE,
    S_MAXSTACK,
    S_MCOUNT,
    S_NPIDLE,
    S_NSTW,
    S_PAUSEIDX,
    S_PIDLE,
    S_PROFSYNC,
    S_STOPPER,
    S_STOPWAIT,
    S_STWTOTAL,
)
from .mstate import (
    acq,
    check_coordinator,
    current_m_or_none,
    exiting,
    fatal,
    mcount,
    nanotime,
    park_m,
    rel,
    safepoint_due,
    signal_pids,
    stop_pending,
    wakem,
)
from .schedule import (
    dropp_locked,
    ensure_p,
    gcscan_self,
    globrunqput_locked,
    pidleget_locked,
    pidleput_or_needp_locked,
    runqempty,
    stopm,
    wakep,
)

STW_SIGNAL_NS = 50_000    # how long a stopper waits for the Ms' safe points before it signals them
STW_SPIN_NS = 20_000      # how long a stopper polls for the Ms to stop before sleeping on note.stw
STW_YIELD_NS = 2_000_000  # ... and a stopper holding no P (the collector), yielding the CPU meanwhile
STW_RESIGNAL_NS = 300_000  # and how long it waits before signalling the Ms that have not stopped again
STW_RECOUNT_NS = 10_000_000  # and before it counts the running Ps again from their rows


# ---- stop the world: the one path ----

def stop_the_world(m, reason=""):
    """Stop every P: each M parks at its next safe point (a signal reaches one that makes no
    runtime call).  The caller keeps its P stopped too.  Returns the request time (ns)."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    t0 = nanotime()
    nop = m.p == NONE
    if _csched is not None and not m.tracing:
        # the request and the first spin in C (csched.stw_stop); None: it did nothing
        wait = _csched.stw_stop(m.p, min(STW_SIGNAL_NS, STW_YIELD_NS if nop else STW_SPIN_NS))
        if wait is not None:
            if wait > 0 or not _all_stopped(m):
                _stop_wait(m, t0)
            return t0
    while True:
        acq(m.schedlock)
        if not q[s + S_GCWAITING]:
            break
        rel(m.schedlock)
        if m.p != NONE:
            # someone else is stopping the world: be stopped, then try again, holding a P again
            # (a resize meanwhile may have taken ours: we would stop the world without one, and
            # wait for the P then handed to us as for any other M's)
            gcstopm(m, keep_p=True)
        else:
            if m.stw_hook is not None:
                m.stw_hook()    # the coordinator: the other stopper may wait for an M it must fork
            time.sleep(0.0001)
    if m.schedcheck and m.row is not None and m.p == NONE:
        rel(m.schedlock)
        fatal(f"schedcheck: M{m.id} stops the world holding no P (it would wait for its own)")
    n = q[s + S_GOMAXPROCS]
    q[s + S_GCWAITING] = 1
    q[s + S_STOPPER] = m.id
    if m.tracing:
        _trace.ev(m, _trace.EV_STWSTART, _trace.stw_reason(reason))
    wait = n
    if m.p != NONE:
        q[ctl.p(m.p) + P_STATUS] = P_GCSTOP
        wait -= 1
    while q[s + S_PIDLE] != NONE:
        p = pidleget_locked(m)
        q[ctl.p(p) + P_STATUS] = P_GCSTOP
        wait -= 1
    for p in range(n):
        b = ctl.p(p)
        if q[b + P_STATUS] == P_SYSCALL:
            q[b + P_STATUS] = P_GCSTOP
            mid = q[b + P_M]
            if mid != NONE:
                q[ctl.m(mid) + M_P] = NONE
                if m.tracing:
                    proc.trace_sysblock(m, p, mid)
            q[b + P_M] = NONE
            wait -= 1
    q[s + S_STOPWAIT] = wait
    # ATTN last, just before the unlock: an M that sees it finds the sched lock free (the Ms'
    # stop at an allocation, in C, takes it with a try and goes the slow way when it is held)
    q[s + S_ATTN] = 1
    rel(m.schedlock)
    if wait > 0 or not _all_stopped(m):
        if nop:
            os.sched_yield()   # with every CPU busy the collector shares one with a running M
        _stop_wait(m, t0)
    return t0


def _all_stopped(m):
    """Whether every P but the stopper's own is stopped (P_GCSTOP): what a stop of the world
    waits for, read from the Ps themselves.  STOPWAIT, the count the Ms take down as they stop,
    only says when to look: the stopper ends its wait on this, so a count that went wrong can
    neither hang it (every P stopped, the count still above zero: a stop waited forever, 3 runs
    in 20 of the stw_deadlock program, cause not found) nor end it early."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    for p in range(q[s + S_GOMAXPROCS]):
        if p != m.p and q[ctl.p(p) + P_STATUS] != P_GCSTOP:
            return False
    return True


def _recount_locked(m):
    """The stop's count made again from the Ps (sched lock held): a P idle or in a system call
    is taken for the stopper as the request takes them, the running ones are counted.  Returns
    them; STOPWAIT is set to it."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    running = 0
    while q[s + S_PIDLE] != NONE:
        q[ctl.p(pidleget_locked(m)) + P_STATUS] = P_GCSTOP
    for p in range(q[s + S_GOMAXPROCS]):
        b = ctl.p(p)
        st = q[b + P_STATUS]
        if p == m.p or st == P_GCSTOP:
            continue
        if st == P_SYSCALL or st == P_IDLE:
            q[b + P_STATUS] = P_GCSTOP
            mid = q[b + P_M]
            if mid != NONE and q[ctl.m(mid) + M_P] == p:
                q[ctl.m(mid) + M_P] = NONE
            q[b + P_M] = NONE
        else:
            running += 1
    if running != q[s + S_STOPWAIT] and m.schedcheck:
        rel(m.schedlock)
        fatal(f"schedcheck: stop of the world counts {q[s + S_STOPWAIT]} Ps running, {running} are")
    q[s + S_STOPWAIT] = running
    return running


def _stop_wait(m, t0):
    """The stopper's wait for the Ps still running (the request was made at about t0): until every
    P is stopped (_all_stopped), the count STOPWAIT saying when to look, made again from the Ps
    if they disagree (_recount_locked)."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    n = q[s + S_GOMAXPROCS]

    def unstopped():
        # the Ms of the Ps still running: a signal to one already stopped only wakes it for nothing
        # (and on a loaded machine takes the CPU the others need to reach their stop)
        out = set()
        for p in range(n):
            b = ctl.p(p)
            mid = q[b + P_M]
            if q[b + P_STATUS] == P_RUNNING and mid != NONE and mid != m.id:
                out.add(q[ctl.m(mid) + M_PID])
        return out
    # an M that makes runtime calls (allocation included) stops at its next one, within microseconds;
    # the signal, whose handler walks the M's stack, is for those that make none: sent once the
    # first STW_SIGNAL_NS have passed, then every STW_RESIGNAL_NS
    nop = m.p == NONE
    last = t0 - STW_RESIGNAL_NS + STW_SIGNAL_NS
    spin_until = t0 + (STW_YIELD_NS if nop else STW_SPIN_NS)
    while q[s + S_STOPWAIT] > 0 and nanotime() < spin_until:
        if nop:
            os.sched_yield()   # the collector: give the CPU to an M on its way to stop, stay awake
        if nanotime() - last > STW_RESIGNAL_NS:
            signal_pids(unstopped())
            last = nanotime()
    # (a brief poll: the Ms often stop within a signal's delivery; a sleep and wakeup costs more)
    recount = nanotime() + STW_RECOUNT_NS
    while True:
        if q[s + S_STOPWAIT] <= 0 or nanotime() > recount:
            if q[s + S_STOPWAIT] <= 0 and _all_stopped(m):
                return
            acq(m.schedlock)
            left = _recount_locked(m)
            rel(m.schedlock)
            if left == 0:
                return
            recount = nanotime() + STW_RECOUNT_NS
        if m.stw_hook is not None:
            m.stw_hook()        # the coordinator forks Ms: one may be owed a P we wait for
        try:
            # until the next signal is due (at most 2 ms)
            m.stwnote.acquire(min(0.002, max(0.00002, (last + STW_RESIGNAL_NS - nanotime()) / 1e9)))
        except (posix_ipc.BusyError, posix_ipc.SignalError):
            pass
        if q[s + S_EXIT] and not m.is_m0:
            exiting(m)
        if nanotime() - last > STW_RESIGNAL_NS:   # a signal that found the M in heap code, or lost
            # to a long C call: ask again
            signal_pids(unstopped())
            last = nanotime()


def start_the_world(m, t0, newprocs=0):
    """Restart: resize if asked, give every stopped M its P back, idle Ps to the idle list or to
    needp Ms.  Records the pause (request to restart)."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    if _csched is not None and not m.tracing and (not newprocs or newprocs == q[s + S_GOMAXPROCS]):
        r = _csched.stw_start(m.p, t0)     # the common restart in C; None: it did nothing
        if r is not None:
            dt, wake = r
            _after_start(m, wake, m.p, q[s + S_GOMAXPROCS])
            return dt
    acq(m.schedlock)
    old = q[s + S_GOMAXPROCS]
    n = newprocs or old
    if n != old:
        _procresize_locked(m, old, n)
    q[s + S_GCWAITING] = 0
    q[s + S_ATTN] = 1 if q[s + S_EXIT] else 0
    q[s + S_STOPPER] = NONE
    mine = m.p
    if mine != NONE and mine < n:
        q[ctl.p(mine) + P_STATUS] = P_RUNNING
        q[ctl.p(mine) + P_M] = m.id
    elif mine != NONE:
        dropp_locked(m)
    free, wake = [], []
    for p in range(n):
        if p == mine:
            continue
        b = ctl.p(p)
        if q[b + P_STATUS] != P_GCSTOP:
            continue
        mid = q[b + P_M]
        # the P goes back to the M stopped holding it: both rows must say so (a P whose row names an
        # M that now holds another P would give that M two)
        if mid != NONE and q[ctl.m(mid) + M_STATE] == MS_GCSTOP and q[ctl.m(mid) + M_P] == p:
            q[b + P_STATUS] = P_RUNNING
            q[ctl.m(mid) + M_STATE] = MS_RUNNING
            wake.append(mid)
        else:
            q[b + P_M] = NONE
            free.append(p)
    # stopped Ms whose P is gone wake without one, as needp: they were running something (a
    # goroutine mid-flight, or the scheduler), so checkdead counts them busy, and the Ps freed
    # below go to them first
    now = nanotime()
    for mid in range(mcount(m)):
        r = ctl.m(mid)
        if q[r + M_STATE] == MS_GCSTOP:
            q[r + M_STATE] = MS_NEEDP
            q[r + M_STAMP] = now
            q[r + M_P] = NONE
            wake.append(mid)
    for p in reversed(free):
        pidleput_or_needp_locked(m, p)
    # the world runs again once every state is flipped: the pause ends here, before the wakeups
    # (a woken M may take the stopper's CPU at once)
    dt = nanotime() - t0
    i = q[s + S_PAUSEIDX] % NPAUSE
    pb = ctl.base["pause"]
    q[pb + 2 * i] = dt
    q[pb + 2 * i + 1] = time.time_ns()
    q[s + S_PAUSEIDX] += 1
    q[s + S_NSTW] += 1
    q[s + S_STWTOTAL] += dt
    if m.tracing:
        _trace.ev(m, _trace.EV_STWDONE)
    rel(m.schedlock)
    _after_start(m, wake, mine, n)
    return dt


def _after_start(m, wake, mine, n):
    """The world runs: wake the Ms, and an idle P's M if work waits."""
    q, s = m.q, m.ctl.sched
    for mid in wake:
        wakem(m, mid)
    # the last M's post of note.stw, if the stopper saw STOPWAIT reach 0 before it (the post is made
    # under the sched lock, taken above), with the world running again
    while True:
        try:
            m.stwnote.acquire(0)
        except (posix_ipc.BusyError, posix_ipc.SignalError):
            break
    if mine != NONE and mine >= n:
        m.q[m.row + M_STATE] = MS_IDLE
    if q[s + S_NPIDLE] and (q[s + S_GQSIZE] or any(not runqempty(m, p) for p in range(n))):
        wakep(m)


def _procresize_locked(m, old, n):
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    for p in range(old, n):
        b = ctl.p(p)
        for w in range(P_RUNQ):
            q[b + w] = 0
        q[b + P_RUNNEXT] = NONE
        q[b + P_M] = NONE
        q[b + P_LINK] = NONE
        q[b + P_SMTICK] = q[b + P_SMSTICK] = NONE
        q[b + P_STATUS] = P_GCSTOP
        posix_ipc.Semaphore(shm_name(m.rtid, f"lock.p{p}"), posix_ipc.O_CREAT, mode=0o600,
                            initial_value=1).close()
    moved = []
    for p in range(n, old):
        b = ctl.p(p)
        if q[b + P_RUNNEXT] != NONE:
            moved.append(q[b + P_RUNNEXT])
        for i in range(q[b + P_RQHEAD], q[b + P_RQTAIL]):
            moved.append(q[b + P_RUNQ + i % RUNQ])
        q[b + P_RUNNEXT] = NONE
        q[b + P_RQHEAD] = q[b + P_RQTAIL] = 0
        q[b + P_STATUS] = P_DEAD
        mid = q[b + P_M]
        q[b + P_M] = NONE
        if mid != NONE and q[ctl.m(mid) + M_STATE] == MS_GCSTOP and q[ctl.m(mid) + M_P] == p:
            q[ctl.m(mid) + M_P] = NONE
    if moved:
        globrunqput_locked(m, moved)
    q[s + S_GOMAXPROCS] = n
    if m.tracing:
        _trace.ev(m, _trace.EV_GOMAXPROCS, n)


def gcstopm(m, keep_p=False):
    """Stop this M for the world at a safe point (it holds a P, no runtime lock).  keep_p: the M
    was interrupted (from_signal) and leaves holding a P again, whatever the resize did.
    Not reentrant: while it runs (m.in_gcstop), a signal or an unlock with a stop pending does
    nothing; the stopper signals again if it still waits (back-to-back stops once nested here,
    one level per stop, to a RecursionError).  csched.alloc_safepoint does the first half in C
    (the P counted stopped) and _cstopped the second."""
    if m.in_gcstop:
        return
    q, ctl, s, r = m.q, m.ctl, m.ctl.sched, m.row
    m.in_gcstop = True
    try:
        acq(m.schedlock)
        if not q[s + S_GCWAITING] or m.p == NONE:
            rel(m.schedlock)
            return
        b = ctl.p(m.p)
        if q[b + P_STATUS] == P_RUNNING:
            q[b + P_STATUS] = P_GCSTOP
            q[s + S_STOPWAIT] -= 1
            if q[s + S_STOPWAIT] == 0:
                m.stwnote.release()
        q[r + M_STATE] = MS_GCSTOP
        rel(m.schedlock)
        _gcstop_wait(m, keep_p)
    finally:
        m.in_gcstop = False


def _gcstop_wait(m, keep_p):
    """gcstopm's second half: parked until the world restarts, then the roots' scan the collector
    asked for meanwhile, and a P lost in a resize."""
    q, s, r = m.q, m.ctl.sched, m.row
    while q[r + M_STATE] == MS_GCSTOP:
        if q[s + S_EXIT]:
            exiting(m)
        park_m(m, 0.5 if m.is_m0 else None)
        if m.is_m0 and q[r + M_STATE] == MS_GCSTOP:
            check_coordinator(m)
    if q[r + M_GCSCAN]:
        gcscan_self(m)     # the collector started a mark while we were stopped
    if q[r + M_P] == NONE:
        m.p = NONE
        if keep_p:
            # our P went away in a resize while code that counts on it was interrupted (a
            # signal, or the last unlock acting on one: a goroutine mid-flight, or the
            # scheduler between two looks at m.p): the M waits for a P before it goes on
            stopm(m, needp=True)
    if m.schedcheck and m.p != NONE and q[r + M_GCSCAN] == 1:
        fatal(f"schedcheck: M{m.id} resumes with its roots unscanned (M_GCSCAN still asked for)")


def _cstopped(m, from_signal, timed_out, frame):
    """csched.alloc_safepoint gave up this M's P for a stop of the world (gcstopm's first half, with
    in_gcstop set) and parked once (timed_out: 0.5 s passed): the second half, then what _safepoint
    does after a stop.  frame: the allocating code's, which C found USER or LOCKING without
    codeclass's entries for LOCKING modules imported since its last look: looked at again here."""
    if not from_signal and codeclass.stale():
        from_signal = codeclass.classify(frame)[0] != codeclass.USER
    try:
        if timed_out and m.is_m0 and m.q[m.row + M_STATE] == MS_GCSTOP:
            check_coordinator(m)
        _gcstop_wait(m, keep_p=from_signal)
    finally:
        m.in_gcstop = False
    if not from_signal:
        ensure_p(m)
    _after_stop(m, from_signal)


def check_safepoint(m):
    """The safe-point test, after every operation that may block (one word for a stop of the world
    or the program's end, one for sysmon's request to yield)."""
    if safepoint_due(m):
        _safepoint(m)


def _safepoint(m, from_signal=False):
    """Act on the program's end, a stop of the world and (not from a signal handler, which must
    not switch goroutines) sysmon's request to yield."""
    q, s = m.q, m.ctl.sched
    if q[s + S_EXIT]:
        exiting(m)
    if q[s + S_GCWAITING] and m.p != NONE and q[s + S_STOPPER] != m.id:
        gcstopm(m, keep_p=from_signal)
        if not from_signal:
            ensure_p(m)          # our P went away in a resize: wait for one
    _after_stop(m, from_signal)


def _after_stop(m, from_signal):
    """Sysmon's request to yield, acted on at a safe point that is not a signal handler."""
    if not from_signal and m.q[m.row + M_PREEMPT]:
        m.q[m.row + M_PREEMPT] = 0
        if m.curg != NONE:
            proc.gosched()


def _alloc_safepoint():
    """The safe point at the start of an allocation by the program (mprt/shm/malloc.py calls it
    from its entry points): a stop of the world, and a preemption when every frame of the
    goroutine is its own code."""
    m = current_m_or_none()
    if m is None or m.row is None:
        return
    if safepoint_due(m):
        caller = sys._getframe(1).f_back       # the entry point (which calls the hook itself)'s caller:
        # classify walks from there, so an allocation made by heap code is never a safe point
        kind = codeclass.classify(caller)[0]
        if not m.locks and kind <= codeclass.LOCKING:
            _safepoint(m, from_signal=kind != codeclass.USER)


# the hook is csched.alloc_safepoint where the accelerator is built: a stop's common case in C
_csched = load_accel("mprt.sched.csched")
if _csched is not None:
    _csched.setup_safepoint((S_ATTN, S_GCWAITING, S_STOPPER, S_STOPWAIT, S_EXIT, M_PREEMPT, M_STATE, M_P, MS_GCSTOP,
                             P_WORDS, P_STATUS, P_RUNNING, P_GCSTOP, NONE, codeclass.USER, codeclass.BASE,
                             codeclass.LOCKING, codeclass.RUNTIME, codeclass.HEAP, S_GOMAXPROCS, S_PIDLE, S_NPIDLE,
                             S_PAUSEIDX, S_NSTW, S_STWTOTAL, S_MCOUNT, P_M, P_LINK, P_SYSCALL, M_WORDS, M_STAMP,
                             MS_RUNNING, NPAUSE),
                            _alloc_safepoint, _cstopped, codeclass._kind)
    malloc.set_safepoint_hook(_csched.alloc_safepoint)
    malloc.set_stop_hook(_csched.alloc_stop)
else:
    malloc.set_safepoint_hook(_alloc_safepoint)


def _stop_after(m, frame):
    """A stop request found the M in heap code: stop as soon as that code returns.  The outermost
    heap frame gets a trace function for its return event (tracing is on only until then, so the
    hot paths pay nothing); under a debugger's tracer the stopper's repeated signal does it."""
    m.sigpending = True
    if sys.gettrace() is not None and sys.gettrace() is not _trace_calls:
        return

    def on_event(f, event, arg):
        if event == "return":
            sys.settrace(None)
            f.f_trace = None
            if stop_pending(m):
                pending_stop(m, f.f_back)
        return on_event

    frame.f_trace_lines = False
    frame.f_trace = on_event
    sys.settrace(_trace_calls)


def _trace_calls(frame, event, arg):
    return None        # frames called meanwhile are not traced


def on_sigurg(signum, frame):
    """SIGURG: a stop of the world, a dump or profiling change, or sysmon's request to preempt a
    goroutine that ran past its slice (Go 1.14's asynchronous preemption; see "Preemption" above)."""
    m = current_m_or_none()
    if m is None or m.dying:
        return
    _traceback.maybe_dump(m, frame)
    if m.profsync != m.q[m.ctl.sched + S_PROFSYNC]:
        sync_prof(m)
    if m.in_gcstop:
        return
    if m.locks:
        m.sigpending = True
        return
    q = m.q
    attn, preempt = q[m.ctl.sched + S_ATTN], q[m.row + M_PREEMPT] and m.asyncpreempt
    if not (attn or preempt):
        return
    kind = pending_stop(m, frame) if attn else codeclass.classify(frame)[0]
    if (preempt and kind == codeclass.USER and m.curg != NONE and m.p != NONE
            and greenlet.getcurrent() is not m.sched_gr):
        q[m.row + M_PREEMPT] = 0
        proc.gosched()


def pending_stop(m, frame):
    """A stop of the world is pending and the M holds no lock: stop here if the stack allows it (see
    "Preemption" above).  Returns the stack's kind."""
    kind, heap = codeclass.classify(frame)
    if kind == codeclass.HEAP:
        _stop_after(m, heap)
    elif kind == codeclass.RUNTIME:
        m.sigpending = True
    else:
        m.sigpending = False
        _safepoint(m, from_signal=True)
    return kind


DEFAULT_MAX_STACK = 1_000_000_000
FRAME_BYTES = 1024          # a Python frame's worth of Go's stack (debug.SetMaxStack)


def set_max_stack(m, n):
    """debug.SetMaxStack: the new limit for every M; returns the old one."""
    q, s = m.q, m.ctl.sched
    old = q[s + S_MAXSTACK] or DEFAULT_MAX_STACK
    q[s + S_MAXSTACK] = n if n > 0 else 1
    q[s + S_PROFSYNC] += 1
    sync_prof(m)
    _trace.signal_ms(m)
    return old


def max_stack(m):
    return m.q[m.ctl.sched + S_MAXSTACK] or DEFAULT_MAX_STACK


def _sync_max_stack(m):
    """This process's recursion limit from S_MAXSTACK: the limit's depth, never above the
    interpreter's own (and never below where this M stands now, which would raise here)."""
    want = m.q[m.ctl.sched + S_MAXSTACK]
    if want == m.maxstack:
        return
    m.maxstack = want
    if m.base_reclimit is None:
        m.base_reclimit = sys.getrecursionlimit()
    limit = m.base_reclimit if want == 0 else min(m.base_reclimit, STACK_SLACK + want // FRAME_BYTES)
    depth = 0
    f = sys._getframe()
    while f is not None:
        depth += 1
        f = f.f_back
    try:
        sys.setrecursionlimit(max(limit, depth + 50))
    except (RecursionError, ValueError):
        pass


STACK_SLACK = 40            # frames under a goroutine's own: the scheduler's, the greenlet's


def sync_prof(m):
    """Tracing, CPU profiling and the stack limit follow the shared words (after SIGURG, at an
    M's start)."""
    q, s = m.q, m.ctl.sched
    m.profsync = q[s + S_PROFSYNC]
    _trace.sync_state(m)
    _sync_max_stack(m)
    hz = q[s + S_CPUHZ]
    if hz != m.cpuhz and m.row is not None:
        m.cpuhz = hz
        if hz > 0:
            signal.signal(signal.SIGPROF, _on_sigprof)
            signal.setitimer(signal.ITIMER_PROF, 1.0 / hz, 1.0 / hz)
        else:
            signal.setitimer(signal.ITIMER_PROF, 0)


def _on_sigprof(signum, frame):
    """A CPU profile sample: the running goroutine's Python stack (or the scheduler's)."""
    m = current_m_or_none()
    if m is None or not m.cpuhz or frame is None:
        return
    key = tuple(_symtab.callers(frame, 64, in_signal=True))
    if m.curg != NONE:
        lab = m.q[m.ctl.g(m.curg) + G_LABELS]
        if lab > 0:
            key = (-lab,) + key       # the goroutine's profiler labels (pprof.StopCPUProfile)
    m.cpusamples[key] = m.cpusamples.get(key, 0) + 1


# the scheduler's other modules, imported last: they import this one (see proc.py)
from . import proc  # noqa: E402
from . import symtab as _symtab  # noqa: E402
from . import trace as _trace  # noqa: E402
from . import traceback as _traceback  # noqa: E402

codeclass.mark(__name__, codeclass.RUNTIME)
