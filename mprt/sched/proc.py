"""The scheduler: Go's G/M/P model on worker processes.

Glossary (as in Go's proc.go):
    G   a goroutine: a row of the control segment (ctl.py) and, once started, a greenlet inside
        the process of the M it started on.
    M   a worker process, one OS thread running goroutines, pinned to one CPU.  M0 is the process
        that called mprt.run; it runs goroutine 1 (main) and nothing else, as if main were locked
        to it.  Ms are forked on demand by the coordinator (mprt/boot.py) and never exit before the
        program does.
    P   a processor: GOMAXPROCS of them.  An M runs goroutines only while it holds a P.  A P has a
        256-slot ring of G slots plus runnext.

The one deep difference from Go: a started goroutine's Python frames live in its M's interpreter,
so it can never move.  Hence two kinds of runnable G:
  - not started: on a P's ring or runnext, or on the global queue; any M may run it, and idle Ms
    steal half a victim's ring, as Go does.
  - started: bound to its M.  When readied it goes on its M's own ready list (Go would put it on the
    waker's runnext): a shared list for wakers on other Ms, a process-local queue when the M readies
    its own (no lock).  Gosched and preemption put it on the M's own yield queue, taken after the P's
    ring and the global queue (Go: the global tail).
    An M that has bound Gs ready but no P is "needp": it waits for a P, and every P that is given
    up goes to a needp M first.  An M whose goroutine yields while a needp M waits hands its P over,
    so Ps rotate among Ms as Go's Ps rotate among goroutines.
LockOSThread is the same machinery restricted: a locked M considers only its locked G; when that G
blocks the M hands its P off and parks (state lockedwait), and when the G is readied the M gets a
P through the needp path.  M0 is permanently locked to goroutine 1.

The one park path is `park` (a goroutine waits); the one ready path is `ready` (any process makes a
parked goroutine runnable); the one way to wake an M is `wakem` (post its semaphore, after its
state was changed with the sched lock held); the one stop-the-world path is `stop_the_world` /
`start_the_world`.  Lock order: sched lock, then a P lock; a channel lock before the sched lock.

The scheduler is five modules, bottom up (each imports only those below it at its top; a call
upwards goes through a module imported at the end):
    mstate.py    this process's M, the current M, the runtime's locks, waking an M, the endings
    schedule.py  G slots, the P run queues, the global queue, idle Ps and Ms, findrunnable, the
                 scheduler's loop and a goroutine's start and end, timers
    stw.py       stop the world, safe points, the signals that reach a goroutine (preemption)
    proc.py      this file: go, park and ready, Gosched, LockOSThread, system calls, GOMAXPROCS
    sysmon.py    the coordinator's watch over the Ps (retake, schedtrace)

Rejected: a lock-free run queue (no compare-and-swap on shared memory from Python; every queue has
a POSIX-semaphore lock, and the hot paths take one lock each); one mcache per P (the cache is
process memory, so it would be flushed at every P handoff; each M has its own, keyed by its M id
in the heap's per-cache rows, which MemStats sums anyway).
"""
import ctypes
import sys
from collections.abc import Callable
from types import MethodType as _MethodType

from .. import codeclass
from ..settings import load_accel
from ..shm.layout import GC_PHASE, MAXP, fing_system
from ..shm.mbarrier import shade_word
from ..shm.ptr import Ptr
from ..shm.segment import Lock
from . import mprof as _mprof
from . import msg
from . import mstate as _mstate_mod
from . import trace as _trace
from . import traceback as _traceback
from .ctl import (
    G_FNLEN,
    G_GOID,
    G_INLINE,
    G_INLINE_BYTES,
    G_LABELS,
    G_LOCKEDM,
    G_M,
    G_NPTR,
    G_NPTRS,
    G_PARENT,
    G_PAYLEN,
    G_PTR0,
    G_RUNNABLE,
    G_RUNNING,
    G_SITE,
    G_STATUS,
    G_SYSCALL,
    G_WAIT,
    G_WAITING,
    G_WAITSINCE,
    G_WORDS,
    M_CURG,
    M_GCREATED,
    M_GEXITED,
    M_LOCKEDG,
    M_NCGOCALL,
    M_P,
    M_PREEMPT,
    M_RQHEAD,
    M_RQTAIL,
    M_STAMP,
    M_STATE,
    MS_IDLE,
    MS_LOCKEDWAIT,
    MS_NEEDP,
    MS_RUNNING,
    MS_SYSCALL,
    NONE,
    NSITES,
    P_IDLE,
    P_M,
    P_RQHEAD,
    P_RQTAIL,
    P_RUNNEXT,
    P_RUNNING,
    P_RUNQ,
    P_STATUS,
    P_SYSCALL,
    P_SYSCALLTICK,
    P_WORDS,
    RUNQ,
    S_ATTN,
    S_BLOCKRATE,
    S_GATEWAYG,
    S_GCWAITING,
    S_GOMAXPROCS,
    S_GQSIZE,
    S_MAXMCOUNT,
    S_MUTEXRATE,
    S_NMSPINNING,
    S_NPIDLE,
    S_NSITES,
    S_SITEBYTES,
    S_TIMERG,
    SITEBYTES,
    TRACEBUF_WORDS,
    W_CHANRECV,
    W_CHANSEND,
    W_SELECT,
    W_SEMACQUIRE,
    W_SLEEP,
    WAIT_REASONS,
)
from .mstate import (
    acq,
    current_m,
    current_m_or_none,
    fatal,
    mcount,
    nanotime,
    rel,
    safepoint_due,
    wakem,
)
from .schedule import (
    FAIRNESS_TICKS,
    add_timer,
    dropp_locked,
    ensure_p,
    execute_mark,
    findrunnable,
    give_p_locked,
    gslot_get,
    handoffp_locked,
    list_push,
    mstates,
    needp_get_locked,
    new_goid,
    pidleget_locked,
    runqempty,
    runqput,
    wakep,
)
from .stw import (
    check_safepoint,
    start_the_world,
    stop_the_world,
)

EXIT_PANIC_CODE = 2
_BLOCK_REASONS = frozenset((W_CHANRECV, W_CHANSEND, W_SELECT, W_SEMACQUIRE))   # the block profile's


_libc = ctypes.CDLL(None, use_errno=True)


_sched_getcpu = _libc.sched_getcpu


# ---- creation sites ("created by" lines) ----

def _site(m, frame):
    # keyed by the code's identity (hashing a code object hashes its constants: ~0.4 us a go())
    # and the call's instruction (its line costs a walk of the line table); the codes are kept, so
    # an id in the table is never another code's
    key = (id(frame.f_code), frame.f_lasti)
    sid = m.sites.get(key)
    if sid is None:
        sid = add_text(m, _traceback.frame_line(frame))
        m.sites[key] = sid
        m.site_codes.append(frame.f_code)
    return sid


def add_text(m, text):
    """Append text to the runtime's table of texts (creation sites, profiler label sets): its id,
    which site_text reads in any process; NONE when the table is full."""
    text = text.encode()
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    acq(m.schedlock)
    n, nb = q[s + S_NSITES], q[s + S_SITEBYTES]
    if n < NSITES and nb + len(text) <= SITEBYTES:
        off = ctl.base["sitebytes"] * 8 + nb
        m.mv8[off:off + len(text)] = text
        q[ctl.base["siteidx"] + 2 * n] = nb
        q[ctl.base["siteidx"] + 2 * n + 1] = len(text)
        q[s + S_NSITES] = n + 1
        q[s + S_SITEBYTES] = nb + len(text)
        sid = n
    else:
        sid = NONE
    rel(m.schedlock)
    return sid


def site_text(ctl, sid):
    if sid < 0:
        return None
    q = ctl.q
    off = q[ctl.base["siteidx"] + 2 * sid]
    n = q[ctl.base["siteidx"] + 2 * sid + 1]
    b = ctl.base["sitebytes"] * 8 + off
    return bytes(ctl.u8[b:b + n]).decode()


# ---- go ----

def _what(fn):
    return f"goroutine function {getattr(fn, '__qualname__', fn)!r}"


def go(fn: Callable[..., object], *args: object, **kwargs: object) -> None:
    """Start a goroutine running fn(*args, **kwargs) (Go's go statement)."""
    m = current_m_or_none()
    if m is None:
        current_m()
    if fn is None:
        fatal("go of nil func value")
    if not callable(fn):
        raise TypeError(f"mprt.go: {fn!r} is not callable")
    try:
        ent = msg.FN_CACHE.get((fn.__func__, id(fn.__self__)) if type(fn) is _MethodType else fn)
    except TypeError:
        ent = None
    if ent is None or ent is msg.NOCACHE:
        fb, ptrs = msg.encode_fn(fn, _what(fn))
    else:
        fb, ptrs = ent[0], ent[1]
    if args or kwargs:
        enc = None if kwargs else msg.encode_typed(args)
        ab, aptrs = enc if enc is not None else msg.encode((args, kwargs), _what(fn) + " arguments")
        if aptrs:
            ptrs = list(ptrs) + list(aptrs)
        data = fb + ab
    else:
        data = fb
    q = m.q
    g = m.gfree.pop() if m.gfree else gslot_get(m)
    r = m.ctl.gbase + g * G_WORDS       # a free row has G_M and G_LOCKEDM = NONE (_goexit0)
    goid = m.goid_next
    if goid < m.goid_end:
        m.goid_next = goid + 1
    else:
        goid = new_goid(m)
    q[r + G_GOID] = goid
    q[r + G_PARENT] = m.curgoid
    f = sys._getframe(1)
    sid = m.sites.get((id(f.f_code), f.f_lasti))
    q[r + G_SITE] = _site(m, f) if sid is None else sid
    q[r + G_LABELS] = q[m.ctl.g(m.curg) + G_LABELS] if m.curg != NONE else 0   # inherited (Go's newproc)
    q[r + G_FNLEN] = len(fb)
    n = len(data)
    if len(ptrs) <= G_NPTRS and n <= G_INLINE_BYTES:
        o = (r + G_INLINE) * 8
        m.mv8[o:o + n] = data
        for i, p in enumerate(ptrs):
            q[r + G_PTR0 + i] = p._a       # the arguments' heap objects stay reachable from the row
            shade_word(m.heap, p._a)
        # the count last: the collector reads rows while we write them, and a word it counts must
        # already hold this goroutine's pointer (a stale one is an object that may have been freed)
        q[r + G_PAYLEN] = n
        q[r + G_NPTR] = len(ptrs)
    else:
        msg.put_heap(q, r + G_PAYLEN, data, ptrs)
        q[r + G_NPTR] = len(ptrs)
    q[r + G_STATUS] = G_RUNNABLE
    q[m.row + M_GCREATED] += 1
    if m.tracing:
        _trace.ev(m, _trace.EV_GOCREATE, goid, _trace.fn_entry(fn), _trace.stack(m, f))
    _put_new(m, g)


def _put_new(m, g):
    """The new goroutine g on this M's P: runqput(p, g, next=True), inline (g takes runnext, the old
    runnext goes to the ring's tail), a P started for it if one idles, then go's safe point."""
    q = m.q
    p = m.p
    b = m.ctl.pbase + p * P_WORDS
    lk = m.plock(p)
    acq(lk)
    old = q[b + P_RUNNEXT]
    q[b + P_RUNNEXT] = g
    if old == NONE:
        rel(lk)
    else:
        t = q[b + P_RQTAIL]
        if t - q[b + P_RQHEAD] < RUNQ:
            q[b + P_RUNQ + t % RUNQ] = old
            q[b + P_RQTAIL] = t + 1
            rel(lk)
        else:
            rel(lk)
            runqput(m, p, old, False)      # full: the slow path moves half to the global queue
    s = m.ctl.sched
    if q[s + S_NPIDLE] and not q[s + S_NMSPINNING]:
        wakep(m)
    check_safepoint(m)


def _trace_go(m, g, fn):
    """The GoCreate event of a go made in C (csched.go) while tracing: the function's entry and the
    stack of the go statement (the frame that called mprt.go).  What it found is kept in m.tgo for
    csched to write the next such event itself (same function, same call site, same trace)."""
    f = sys._getframe(1)
    pc, stk = _trace.fn_entry(fn), _trace.stack(m, f)
    _trace.ev(m, _trace.EV_GOCREATE, m.q[m.ctl.g(g) + G_GOID], pc, stk)
    if stk or codeclass.program_frame(f) is None:
        try:
            m.tgo[(fn, f.f_code, f.f_lasti)] = (_trace.EV_GOCREATE | stk << 24, pc)
        except TypeError:
            pass                    # an unhashable callable: the hook each time


def _fn_payload(fn):
    """(bytes, ptrs) of a goroutine function's pickle, for csched.c (the caches of msg.encode_fn)."""
    return msg.encode_fn(fn, _what(fn))


# The program's go statement (mprt.go): in C (csched.c) where it was built, doing what go and
# _put_new do for a cached function and typed arguments, and calling go for everything else.
_csched = load_accel("mprt.sched.csched")
if _csched is not None:
    _csched.setup(msg.FN_CACHE, msg.NOCACHE, msg._wire_code, Ptr, (
        msg.TYPED, msg.TYPED_MAX, G_WORDS, G_GOID, G_PARENT, G_SITE, G_FNLEN, G_INLINE, G_INLINE_BYTES,
        G_NPTRS, G_PTR0, G_PAYLEN, G_NPTR, G_STATUS, G_RUNNABLE, M_GCREATED, NONE, P_WORDS, P_RUNNEXT,
        P_RQHEAD, P_RQTAIL, P_RUNQ, RUNQ, S_NPIDLE, S_NMSPINNING, S_ATTN, M_PREEMPT, GC_PHASE, G_LABELS,
        TRACEBUF_WORDS, _trace.TB_HDR, _trace.EV_GOEND, _trace.EV_GOSTART),
        vars(_mstate_mod), go, _put_new, runqput, wakep, check_safepoint, _fn_payload)
    go_entry = _csched.go
    _csched.set_trace_hook(_trace_go)
else:
    go_entry = go


# ---- ready and park: the one path each ----

def ready(m, g):
    """Make parked goroutine g runnable (from any process).  A started goroutine goes on its own
    M's ready list; if that M has no P it gets an idle one, or joins the needp list.  A goroutine
    of the calling M itself goes on the M's local queue, with no lock: only this process touches
    it, and the M is running, so nothing else needs to know."""
    q = m.q
    gr = m.ctl.gbase + g * G_WORDS
    if m.tracing:
        _trace.ev(m, _trace.EV_GOUNBLOCK, q[gr + G_GOID], 0, _trace.stack(m, sys._getframe(1)))
    if q[gr + G_M] == m.id and m.p != NONE:
        # only while this M holds a P: then it counts as running for checkdead, and will look at
        # its local queue; an M without a P must show its ready goroutine in shared memory
        q[gr + G_STATUS] = G_RUNNABLE
        m.localq.append(g)
        return
    acq(m.schedlock)
    ready_locked(m, g)
    rel(m.schedlock)


def ready_locked(m, g):
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    gr = ctl.g(g)
    q[gr + G_STATUS] = G_RUNNABLE
    mid = q[gr + G_M]
    r = ctl.m(mid)
    list_push(q, ctl, r + M_RQHEAD, r + M_RQTAIL, g)
    st = q[r + M_STATE]
    if st in (MS_IDLE, MS_LOCKEDWAIT):
        lg = q[r + M_LOCKEDG]
        if lg != NONE and lg != g:
            return          # the M is locked to another goroutine: g waits for the lock to end
        p = pidleget_locked(m) if not q[s + S_GCWAITING] else NONE
        if p != NONE:
            give_p_locked(m, mid, p)
        else:
            q[r + M_STATE] = MS_NEEDP
            q[r + M_STAMP] = nanotime()
            wakem(m, mid)      # it re-checks; a P reaches it through the needp list


def park(reason, unlock=None):
    """Park the calling goroutine until `ready`.  The caller has queued it on some structure whose
    lock it holds: `unlock` (a Lock, or a function) releases it after the goroutine is marked
    waiting, so a waker on another M can only see a waiting goroutine (Go's gopark)."""
    m = current_m_or_none()
    g = m.curg
    q = m.q
    gr = m.ctl.gbase + g * G_WORDS
    s = m.ctl.sched
    prof = (q[s + S_BLOCKRATE] or q[s + S_MUTEXRATE]) and reason in _BLOCK_REASONS
    if prof:
        t0 = q[gr + G_WAITSINCE] = nanotime()
    q[gr + G_WAIT] = reason
    q[gr + G_STATUS] = G_WAITING
    if m.tracing:
        _trace.ev(m, _trace.EV_GOBLOCK, m.curgoid, reason, _trace.stack(m, sys._getframe(1)))
    if unlock is not None:
        if isinstance(unlock, Lock):
            rel(unlock)
        else:
            unlock()
    _switch_out(m)
    if prof:
        t = nanotime() - t0
        rate = q[s + S_BLOCKRATE]
        if rate > 0 and _mprof.blocksampled(rate, t):
            _mprof.record_event(m, _mprof.BLOCK, t, sys._getframe(1))


def _switch_out(m):
    """Leave the running goroutine; returns when the scheduler runs it again.  On a worker M, a
    goroutine of this M that is ready already gets the M straight away (no trip through the
    scheduler greenlet), unless a safe point, the fairness tick or a lock says otherwise."""
    if m.is_m0:
        _m0_wait(m)
        return
    if (m.localq and m.p != NONE and m.lockedg == NONE and (m.tick + 1) % FAIRNESS_TICKS
            and not safepoint_due(m)):
        m.tick += 1
        g = m.localq.popleft()
        execute_mark(m, g)
        gl = m.greenlets[g]
        gl.switch()
    else:
        m.sched_gr.switch()


def _m0_wait(m):
    # M0 runs only goroutine 1: its scheduler is findrunnable restricted to that G
    g = findrunnable(m)
    execute_mark(m, g)


def gosched() -> None:
    """runtime.Gosched: yield; other goroutines run first."""
    m = current_m()
    g = m.curg
    q, ctl = m.q, m.ctl
    acq(m.schedlock)
    q[ctl.g(g) + G_STATUS] = G_RUNNABLE
    if m.tracing:
        _trace.ev(m, _trace.EV_GOSCHED, m.curgoid, 0, _trace.stack(m, sys._getframe(1)))
    if m.lockedg == g:
        m.localq.append(g)
    else:
        m.yieldq.append(g)
    yield_p = needp_get_locked(m) != NONE or (m.lockedg != NONE and _others_waiting_locked(m))
    if yield_p:
        _release_p_to_needp_locked(m)
    rel(m.schedlock)
    _switch_out(m)


def _others_waiting_locked(m):
    q, s = m.q, m.ctl.sched
    return q[s + S_NPIDLE] == 0 and (q[s + S_GQSIZE] or not runqempty(m, m.p))


def _release_p_to_needp_locked(m):
    """This M yields its P (it has ready goroutines of its own, so it becomes needp)."""
    q = m.q
    p = m.p
    dropp_locked(m)
    handoffp_locked(m, p)          # to another M: we become needp only after (not our own taker)
    q[m.row + M_STATE] = MS_NEEDP
    q[m.row + M_STAMP] = nanotime()


# ---- timers (each M keeps the timers of its own goroutines) ----

def sleep(seconds: float) -> None:
    """Pause the calling goroutine for at least `seconds` (Go's time.Sleep).  Parks, never the M."""
    m = current_m()
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"mprt.sleep: duration {seconds!r} is not a number")
    if seconds <= 0:
        check_safepoint(m)
        return
    add_timer(m, nanotime() + int(seconds * 1e9), m.curg)
    park(W_SLEEP)


# ---- LockOSThread ----

def lock_os_thread():
    m = current_m()
    g = m.curg
    if m.is_m0:
        # main runs on M0 only: locking it changes nothing but what its reports say
        # (", locked to thread", as Go's header for a goroutine with a lockedm)
        m.q[m.ctl.g(g) + G_LOCKEDM] = m.id
        return
    if m.lockedg == g:
        return        # a second Lock is ignored (Go 1.9)
    m.lockedg = g
    m.q[m.row + M_LOCKEDG] = g
    m.q[m.ctl.g(g) + G_LOCKEDM] = m.id


def unlock_os_thread():
    m = current_m()
    g = m.curg
    if m.is_m0:
        m.q[m.ctl.g(g) + G_LOCKEDM] = NONE
        return
    if m.lockedg != g:
        return
    m.lockedg = NONE
    m.q[m.row + M_LOCKEDG] = NONE
    m.q[m.ctl.g(g) + G_LOCKEDM] = NONE
    # goroutines of this M that became ready while it was locked may run again: if the M has no
    # spare P they are on its ready list already and findrunnable takes them.
    check_safepoint(m)


# ---- system calls ----

class _Syscall:
    """`with mprt.syscall():` marks a blocking call (Go's entersyscall/exitsyscall): the P may be
    retaken by sysmon and handed to another M while this M blocks."""

    def __enter__(self) -> "_Syscall":
        entersyscall()
        return self

    def __exit__(self, *exc: object) -> None:
        exitsyscall()


def syscall() -> _Syscall:
    return _Syscall()


def entersyscall():
    m = current_m()
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    check_safepoint(m)
    acq(m.schedlock)
    b = ctl.p(m.p)
    q[b + P_STATUS] = P_SYSCALL
    q[b + P_SYSCALLTICK] += 1
    q[m.row + M_STATE] = MS_SYSCALL
    q[m.row + M_NCGOCALL] += 1
    if m.tracing:
        _trace.ev(m, _trace.EV_GOSYSCALL, m.curgoid, 0, _trace.stack(m, sys._getframe(1)))
    q[ctl.g(m.curg) + G_STATUS] = G_SYSCALL
    wake = q[s + S_NPIDLE] == 0 and (q[s + S_GQSIZE] or not runqempty(m, m.p) or needp_get_locked(m) != NONE)
    rel(m.schedlock)
    if wake:
        m.sysmonnote.release()   # work is waiting: let sysmon retake the P soon


def entersyscallblock():
    """Go's entersyscallblock: a call known to block for long.  The P is handed off at once (to a
    needp M, or an M for the work queued on it), not when sysmon finds it; exitsyscall then waits
    for a P as after a retake."""
    entersyscall()
    m = current_m()
    acq(m.schedlock)
    if m.p != NONE:
        retake_locked(m, m.p)
    rel(m.schedlock)


def exitsyscall():
    m = current_m_or_none()
    q, ctl, _s = m.q, m.ctl, m.ctl.sched
    g = m.curg
    acq(m.schedlock)
    p = m.p
    if p != NONE and q[ctl.p(p) + P_STATUS] == P_SYSCALL and q[ctl.p(p) + P_M] == m.id:
        q[ctl.p(p) + P_STATUS] = P_RUNNING
        q[m.row + M_STATE] = MS_RUNNING
        q[ctl.g(g) + G_STATUS] = G_RUNNING
        rel(m.schedlock)
        check_safepoint(m)
        return
    # the P was retaken: wait for one like any readied goroutine of this M
    dropp_locked(m)
    if m.tracing:
        _trace.ev(m, _trace.EV_GOSYSEXIT, m.curgoid)
    q[m.row + M_STATE] = MS_IDLE
    ready_locked(m, g)
    rel(m.schedlock)
    _switch_out(m)


def retake_locked(m, p):
    """sysmon: take P p from an M in a system call and hand it off (sched lock held)."""
    q, ctl = m.q, m.ctl
    b = ctl.p(p)
    if q[b + P_STATUS] != P_SYSCALL:
        return False
    mid = q[b + P_M]
    if mid != NONE:
        q[ctl.m(mid) + M_P] = NONE
        if m.tracing:
            trace_sysblock(m, p, mid)
    q[b + P_STATUS] = P_IDLE
    q[b + P_M] = NONE
    handoffp_locked(m, p)
    return True


def trace_sysblock(m, p, mid):
    """The trace's GoSysBlock: P p taken from M mid, whose goroutine is in a system call."""
    q, ctl = m.q, m.ctl
    g = q[ctl.m(mid) + M_CURG]
    if g != NONE:
        _trace.ev(m, _trace.EV_GOSYSBLOCK, p, q[ctl.g(g) + G_GOID])


def gomaxprocs(m, n):
    q, s = m.q, m.ctl.sched
    cur = int(q[s + S_GOMAXPROCS])
    if n <= 0 or n == cur:
        return cur
    n = min(n, MAXP)
    t0 = stop_the_world(m, "GOMAXPROCS")
    start_the_world(m, t0, newprocs=n)
    ensure_p(m)
    return cur


def set_max_threads(m, n):
    q, s = m.q, m.ctl.sched
    old = int(q[s + S_MAXMCOUNT])
    q[s + S_MAXMCOUNT] = n
    if mcount(m) > n:
        fatal("thread exhaustion", pre=f"runtime: program exceeds {n}-thread limit\n")
    return old


# ---- introspection ----

def numgoroutine(m):
    """Goroutines that exist, less the system goroutines: the finalizer goroutine unless it is
    running finalizers, the timer goroutine (timers.py)."""
    mt = mstates(m)
    return int(mt[:, M_GCREATED].sum() - mt[:, M_GEXITED].sum()) - system_goroutines(m)


def system_goroutines(m):
    """How many of the goroutines that exist are the runtime's own (Go's isSystemGoroutine)."""
    return fing_system(m.heap) + (m.q[m.ctl.sched + S_TIMERG] > 0) + (m.q[m.ctl.sched + S_GATEWAYG] > 0)


def wait_reason(code):
    return WAIT_REASONS[code] if 0 <= code < len(WAIT_REASONS) else "???"


def cpu_now():
    return _sched_getcpu()


codeclass.mark(__name__, codeclass.RUNTIME)
