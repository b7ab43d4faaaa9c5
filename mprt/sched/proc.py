"""The scheduler: Go's G/M/P model on worker processes.

Glossary (as in Go's proc.go):
    G   a goroutine: a row of the control segment (ctl.py) and, once started, a greenlet inside
        the process of the M it started on.
    M   a worker process, one OS thread running goroutines, pinned to one CPU.  M0 is the process
        that called mprt.run; it runs goroutine 1 (main) and nothing else, as if main were locked
        to it.  Ms are forked on demand by the coordinator (boot.py) and never exit before the
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

Scheduling (findrunnable, run by an M holding a P, in this order):
 1. a safe point: stop for the world, or for the program's end;
 2. every 61st tick, the global queue first (fairness);
 3. due timers of this M fire (their goroutines join the M's ready list);
 4. the M's ready list, then the P's runnext and ring, then the global queue, then the M's yield list;
 5. steal from the other Ps (4 passes in a random order, runnext only in the last), unless
    2*spinning >= busy Ps;
 6. spin a little polling all of the above (a goroutine readied by another M is seen within a
    microsecond instead of a wakeup), then give the P up and park on the M's semaphore.

The one park path is `park` (a goroutine waits); the one ready path is `ready` (any process makes a
parked goroutine runnable); the one way to wake an M is `_wakem` (post its semaphore, after its
state was changed with the sched lock held); the one stop-the-world path is `stop_the_world` /
`start_the_world`.  Lock order: sched lock, then a P lock; a channel lock before the sched lock.

Safe points: every runtime call, and every allocation by the program (mprt.new, make, new_batch),
reads the sched word ATTN (set while the world is stopping or the program ends) and its M's PREEMPT
word (sysmon's request to yield, after 10 ms on a P).  A goroutine that makes no runtime call is
reached by SIGURG, which sysmon sends with the request (unless GODEBUG=asyncpreemptoff=1) and the
stopper sends for a stop.

Preemption (Go 1.14's asynchronous preemption, beyond Go 1.9).  Where the signal handler may act is
decided by the kind of every frame on the stack, walked whole (mprt/shm/codeclass.py), never by
depth or module names:
  - it may stop the M for the world (park it in the handler; no goroutine is switched) only if the
    M holds no runtime lock (`_M.locks`) and no frame down to the goroutine's entry is runtime or
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

Rejected: a lock-free run queue (no compare-and-swap on shared memory from Python; every queue has
a POSIX-semaphore lock, and the hot paths take one lock each); one mcache per P (the cache is
process memory, so it would be flushed at every P handoff; each M has its own, keyed by its M id
in the heap's per-cache rows, which MemStats sums anyway).
"""
import collections
import ctypes
import heapq
import os
import pickle
import random
import signal
import sys
import time
from types import MethodType as _MethodType

import greenlet
import numpy as np
import posix_ipc

from ..gc.mbarrier import shade_vec, shade_word
from ..gc.mfinal import fing_system
from ..shm import codeclass, malloc
from ..shm.layout import GC_PHASE, MAXP
from ..shm.ptr import loads
from ..shm import segment as _segment
from ..shm.segment import Lock, shm_name
from . import mprof as _mprof
from . import msg
from . import symtab as _symtab
from . import trace as _trace
from .ctl import (
    CHUNK,
    EXIT_DEADLOCK,
    EXIT_FATAL,
    EXIT_GOEXIT,
    EXIT_OSEXIT,
    G_DEAD,
    G_FNLEN,
    G_GOID,
    G_INLINE,
    G_INLINE_BYTES,
    G_LINK,
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
    M_CPU,
    M_CREATEBK,
    M_CURG,
    M_GCREATED,
    M_GCSCAN,
    M_GEXITED,
    M_LOCKEDG,
    M_NCGOCALL,
    M_NBOUND,
    M_NEXTP,
    M_NLIVE,
    M_NTIMERS,
    M_P,
    M_PID,
    M_PREEMPT,
    M_RQHEAD,
    M_RQTAIL,
    M_SPINNING,
    M_STAMP,
    M_STATE,
    M_WAKEUPS,
    M_WORDS,
    MAXG,
    MAXM,
    MS_DEAD,
    MS_GCSTOP,
    MS_IDLE,
    MS_LOCKEDWAIT,
    MS_NEEDP,
    MS_RUNNING,
    MS_STARTING,
    MS_SYSCALL,
    NONE,
    NPAUSE,
    NSITES,
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
    P_SCHEDTICK,
    P_SMSTICK,
    P_SMTICK,
    P_STATUS,
    P_SYSCALL,
    P_SYSCALLTICK,
    P_WORDS,
    RUNQ,
    S_ATTN,
    S_BLOCKRATE,
    S_COORDPID,
    S_CPUHZ,
    S_DEAD,
    S_EXIT,
    S_EXITKIND,
    S_GCWAITING,
    S_GFREE,
    S_GOIDGEN,
    S_GOMAXPROCS,
    S_GQHEAD,
    S_GQSIZE,
    S_GQTAIL,
    S_MAXMCOUNT,
    S_MCOUNT,
    S_MUTEXRATE,
    S_NGALLOC,
    S_NMSPINNING,
    S_NPIDLE,
    S_NSITES,
    S_NSTW,
    S_PAUSEIDX,
    S_PIDLE,
    S_PROFSYNC,
    S_SITEBYTES,
    S_STOPPER,
    S_STOPWAIT,
    S_STWTOTAL,
    SG_WORDS,
    SITEBYTES,
    W_CHANRECV,
    W_CHANSEND,
    W_SELECT,
    W_SEMACQUIRE,
    W_SLEEP,
    WAIT_REASONS,
)

EXIT_PANIC_CODE = 2
_BLOCK_REASONS = frozenset((W_CHANRECV, W_CHANSEND, W_SELECT, W_SEMACQUIRE))   # the block profile's

SPIN_NS = 50_000          # how long an M with nothing to run polls before parking (a wakeup costs ~20 us)
STW_SPIN_NS = 20_000      # how long a stopper polls for the Ms to stop before sleeping on note.stw
STW_YIELD_NS = 2_000_000  # ... and a stopper holding no P (the collector), yielding the CPU meanwhile
STW_RESIGNAL_NS = 300_000  # and how long it waits before signalling the Ms that have not stopped again
                          # (longer would take the CPU from an M that must run to stop)
LOCK_SPINS = 50           # sem_trywait attempts (~0.3 us each) before a contended lock sleeps
GOID_BATCH = 16           # Go's _GoidCacheBatch
GFREE_BATCH = 128         # G slots an M takes from the shared free list at a time
FAIRNESS_TICKS = 61
MAX_PARK_S = 0.5          # M0 re-checks the coordinator at least this often

_libc = ctypes.CDLL(None, use_errno=True)
_sched_getcpu = _libc.sched_getcpu


class Goexit(BaseException):
    """runtime.Goexit: ends the calling goroutine after its finally blocks (deferred calls) ran."""


class _Exiting(BaseException):
    """Raised in M0 when another process ended the program (a panic, a fatal error)."""


class _M:
    """This process's M.  Process-local: nothing here is shared."""

    def __init__(self, ctl, heap, mid, rtid, is_m0):
        """mid None: the coordinator's context (sysmon, the collector): no M row, no P, no heap,
        yet the same locks and wakeups, so it can run retake, stop the world and wake Ms."""
        self.ctl, self.q, self.heap, self.id, self.rtid = ctl, ctl.q, heap, NONE if mid is None else mid, rtid
        self.row = None if mid is None else ctl.m(mid)
        self.is_m0 = is_m0
        self.mv8 = memoryview(ctl.seg.mm)
        self.schedlock = Lock(shm_name(rtid, "lock.sched"))
        self.symlock = Lock(shm_name(rtid, "lock.symtab"))
        self.proflock = Lock(shm_name(rtid, "lock.prof"))
        self.plocks = {}
        self.msems = {}
        self.sem = None if mid is None else self.msem(mid)
        self.stwnote = posix_ipc.Semaphore(shm_name(rtid, "note.stw"))
        self.sysmonnote = posix_ipc.Semaphore(shm_name(rtid, "note.sysmon"))
        self.locks = 0
        self.sigpending = False
        self.p = NONE
        self.curg = NONE
        self.lockedg = NONE
        self.spinning = False
        self.tick = 0
        self.greenlets = {}       # G slot -> greenlet, for goroutines started here
        self.pool = []            # greenlets whose goroutine ended, for reuse
        self.sched_gr = None
        self.timers = []          # heap of (when_ns, seq, gslot)
        self.tseq = 0
        self.localq = collections.deque()   # our goroutines that we readied ourselves
        self.yieldq = collections.deque()   # our goroutines that yielded (Gosched, preemption)
        self.gfree = []           # G slots this M may use for new goroutines
        self.sgfree = []          # sudog rows likewise
        self.g1 = NONE            # goroutine 1's slot (M0 only)
        self.dying = False        # M0 tearing down: signals are ignored
        self.signalled = 0        # M0: SIGINT or SIGTERM arrived
        self.goid_next = self.goid_end = 0
        self.curgoid = 0
        self.sites = {}
        self.cpus = sorted(os.sched_getaffinity(0))
        self.pinned = None
        self.dumped = 0
        self.in_gcstop = False    # parked for a stop of the world (a signal then has nothing to do)
        self.stw_hook = None      # the coordinator: sysmon's must-do work while it waits for a stop
        self.tracing = False      # emitting execution-trace events (trace.py); tbase: this M's ring
        self.tbase = 0
        self.profsync = 0         # the S_PROFSYNC this M last acted on (tracing, CPU profiling)
        self.cpuhz = 0            # SIGPROF rate armed here, and the samples taken: {stack: count}
        self.cpusamples = {}
        self.prof_pending = None  # the coordinator: the heap profile's cycle between stop and flush
        self.asyncpreempt = True  # GODEBUG=asyncpreemptoff=1 turns the signal's preemption off
        self.schedcheck = False   # GODEBUG=schedcheck=1: check_pm_locked at every sched unlock

    def plock(self, p):
        lk = self.plocks.get(p)
        if lk is None:
            lk = self.plocks[p] = Lock(shm_name(self.rtid, f"lock.p{p}"))
        return lk

    def msem(self, mid):
        s = self.msems.get(mid)
        if s is None:
            s = self.msems[mid] = posix_ipc.Semaphore(shm_name(self.rtid, f"m{mid}"), posix_ipc.O_CREAT,
                                                      mode=0o600, initial_value=0)
        return s

    def close(self):
        for lk in [self.schedlock, self.symlock, self.proflock, *self.plocks.values()]:
            lk.close()
        for s in [*self.msems.values(), self.stwnote, self.sysmonnote]:
            try:
                s.close()
            except posix_ipc.ExistentialError:
                pass


_m = None


def current_m():
    if _m is None:
        from ..shm.malloc import NoRuntime
        raise NoRuntime("mprt: no runtime is running in this process (use mprt.run)")
    return _m


# ---- locks: every runtime lock is taken through these, so a signal never parks a lock holder ----

def _acq(lk):
    _m.locks += 1
    try:
        return lk.acquire_raw(0)          # sem_trywait: the common, uncontended case
    except posix_ipc.BusyError:
        pass
    # held: the holder keeps it a microsecond or two, so spin briefly before sleeping in the
    # kernel (a futex sleep and wakeup costs ten times that, and both Ms pay it)
    for _ in range(LOCK_SPINS):
        try:
            return lk.acquire_raw(0)
        except posix_ipc.BusyError:
            pass
    try:
        return lk.acquire()
    except BaseException:
        _m.locks -= 1     # the wait hook ended the wait: the program is ending
        raise


def _lock_wait_hook():
    """A runtime lock's wait goes on (segment.Lock.acquire, every LOCK_WAIT_S and after a signal)
    unless the program is ending: its holder may be dead (a killed M) or may have thrown holding it
    (fatal(locked=True)), so the waiter leaves as its M leaves on any other ending.  M0 unwinds to
    teardown (or takes its SIGINT/SIGTERM); a worker M exits; the coordinator does sysmon's
    must-do work, which reaps a dead M and exits when the program ends."""
    m = _m
    if m is None or m.dying:
        return
    if m.stw_hook is not None:
        m.stw_hook()
        return
    if m.signalled:      # SIGINT or SIGTERM in M0 whose exception the wait swallowed
        from .boot import _Terminated
        raise KeyboardInterrupt() if m.signalled == signal.SIGINT else _Terminated()
    if m.q[m.ctl.sched + S_EXIT]:
        if m.is_m0:
            raise _Exiting()
        _worker_exit()


_segment.set_wait_hook(_lock_wait_hook)


def _rel(lk):
    m = _m
    if m.schedcheck and lk is m.schedlock:
        check_pm_locked(m)
    lk.release()
    m.locks -= 1
    # a stop the signal found us holding a lock for is not acted on here: this is runtime code,
    # which stops only at its safe points (or the stopper's next signal finds the program's code)


def check_pm_locked(m):
    """GODEBUG=schedcheck=1, at every release of the sched lock: the P and M rows agree.  A running
    P names an M whose row holds it (or has it handed over in NEXTP); an M holding a P is named by
    it.  A goroutine never runs on an M without a P (_execute_mark checks that always)."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    for p in range(q[s + S_GOMAXPROCS]):
        b = ctl.p(p)
        mid = q[b + P_M]
        if q[b + P_STATUS] == P_RUNNING:
            r = ctl.m(mid) if mid != NONE else None
            if r is None or (q[r + M_P] != p and q[r + M_NEXTP] != p):
                _pm_broken(m, f"P{p} runs on M{mid}, whose row holds P{q[r + M_P] if r else '-'} "
                              f"(next P{q[r + M_NEXTP] if r else '-'})")
    for mid in range(_mcount(m)):
        p = q[ctl.m(mid) + M_P]
        if p != NONE and q[ctl.p(p) + P_M] != mid:
            _pm_broken(m, f"M{mid} holds P{p}, whose row names M{q[ctl.p(p) + P_M]}")


def _pm_broken(m, what):
    import traceback as _pytb
    m.schedcheck = False
    fatal(f"schedcheck: {what}", pre="".join(_pytb.format_stack(sys._getframe(3), limit=12)), locked=True)


def _nanotime():
    return time.monotonic_ns()


# ---- M wakeups: the one way to wake an M ----

def _wakem(m, mid):
    """Post M mid's semaphore.  The caller changed the M's state (or nextp) with the sched lock."""
    m.q[m.ctl.m(mid) + M_WAKEUPS] += 1
    m.msem(mid).release()


def _park_m(m, timeout=None):
    """Sleep on this M's semaphore until posted (or timeout seconds).  Returns False on timeout."""
    try:
        m.sem.acquire(timeout)
        return True
    except posix_ipc.BusyError:
        return False
    except posix_ipc.SignalError:
        if m.signalled:      # SIGINT or SIGTERM in M0 whose exception the wait swallowed
            from .boot import _Terminated
            raise KeyboardInterrupt() if m.signalled == signal.SIGINT else _Terminated()
        return True   # a signal; the caller's loop looks again


# ---- G slots ----

def _gslot_get(m):
    if not m.gfree:
        _refill_gfree(m)
    return m.gfree.pop()


def _refill_gfree(m):
    q, ctl = m.q, m.ctl
    _acq(m.schedlock)
    try:
        s = ctl.sched
        while len(m.gfree) < GFREE_BATCH and q[s + S_GFREE] != NONE:
            g = q[s + S_GFREE]
            q[s + S_GFREE] = q[ctl.g(g) + G_LINK]
            m.gfree.append(g)
        if len(m.gfree) < GFREE_BATCH:
            n0 = q[s + S_NGALLOC]
            n1 = n0 + GFREE_BATCH - len(m.gfree)
            if n1 > MAXG:
                raise RuntimeError(f"mprt: more than {MAXG} goroutines")
            c0, c1 = (n0 + CHUNK - 1) // CHUNK * CHUNK, (n1 + CHUNK - 1) // CHUNK * CHUNK
            if c1 > c0:
                ctl.commit_rows("g", c0, c1, G_WORDS)
                ctl.commit_rows("sudog", c0, c1, SG_WORDS)
            q[s + S_NGALLOC] = n1
            for g in range(n0, n1):
                r = ctl.gbase + g * G_WORDS
                q[r + G_M] = q[r + G_LOCKEDM] = q[r + G_LINK] = NONE
            m.gfree.extend(range(n1 - 1, n0 - 1, -1))
    finally:
        _rel(m.schedlock)


def _gslot_put(m, g):
    m.gfree.append(g)
    if len(m.gfree) > 2 * GFREE_BATCH:
        q, ctl, s = m.q, m.ctl, m.ctl.sched
        give = m.gfree[GFREE_BATCH:]
        del m.gfree[GFREE_BATCH:]
        _acq(m.schedlock)
        for x in give:
            q[ctl.g(x) + G_LINK] = q[s + S_GFREE]
            q[s + S_GFREE] = x
        _rel(m.schedlock)


def _new_goid(m):
    """Goroutine ids come in batches of GOID_BATCH from the sched word, as Go's per-P goidcache."""
    g = m.goid_next
    if g >= m.goid_end:
        _acq(m.schedlock)
        s = m.ctl.sched
        g = m.q[s + S_GOIDGEN] + 1
        m.q[s + S_GOIDGEN] += GOID_BATCH
        _rel(m.schedlock)
        m.goid_end = g + GOID_BATCH
    m.goid_next = g + 1
    return g


# ---- creation sites ("created by" lines) ----

def _site(m, frame):
    key = (frame.f_code, frame.f_lineno)
    sid = m.sites.get(key)
    if sid is None:
        from .traceback import frame_line
        text = frame_line(frame).encode()
        q, ctl, s = m.q, m.ctl, m.ctl.sched
        _acq(m.schedlock)
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
        _rel(m.schedlock)
        m.sites[key] = sid
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


def go(fn, *args, **kwargs):
    """Start a goroutine running fn(*args, **kwargs) (Go's go statement)."""
    m = _m
    if m is None:
        current_m()
    if fn is None:
        fatal("go of nil func value")
    if not callable(fn):
        raise TypeError(f"mprt.go: {fn!r} is not callable")
    try:
        ent = msg._FN_CACHE.get((fn.__func__, id(fn.__self__)) if type(fn) is _MethodType else fn)
    except TypeError:
        ent = None
    if ent is None or ent is msg._NOCACHE:
        fb, ptrs = msg.encode_fn(fn, _what(fn))
    else:
        fb, ptrs = ent[0], ent[1]
    if args or kwargs:
        ab, aptrs = msg.encode((args, kwargs), _what(fn) + " arguments")
        if aptrs:
            ptrs = list(ptrs) + list(aptrs)
        data = fb + ab
    else:
        data = fb
    q = m.q
    g = m.gfree.pop() if m.gfree else _gslot_get(m)
    r = m.ctl.gbase + g * G_WORDS       # a free row has G_M and G_LOCKEDM = NONE (_goexit0)
    goid = m.goid_next
    if goid < m.goid_end:
        m.goid_next = goid + 1
    else:
        goid = _new_goid(m)
    q[r + G_GOID] = goid
    q[r + G_PARENT] = m.curgoid
    f = sys._getframe(1)
    sid = m.sites.get((f.f_code, f.f_lineno))
    q[r + G_SITE] = _site(m, f) if sid is None else sid
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
        _trace.ev(m, _trace.EV_GOCREATE, goid, q[r + G_SITE])
    # runqput(p, g, next=True), inline: g takes runnext, the old runnext goes to the ring's tail
    p = m.p
    b = m.ctl.pbase + p * P_WORDS
    lk = m.plock(p)
    _acq(lk)
    old = q[b + P_RUNNEXT]
    q[b + P_RUNNEXT] = g
    if old == NONE:
        _rel(lk)
    else:
        t = q[b + P_RQTAIL]
        if t - q[b + P_RQHEAD] < RUNQ:
            q[b + P_RUNQ + t % RUNQ] = old
            q[b + P_RQTAIL] = t + 1
            _rel(lk)
        else:
            _rel(lk)
            _runqput(m, p, old, False)      # full: the slow path moves half to the global queue
    s = m.ctl.sched
    if q[s + S_NPIDLE] and not q[s + S_NMSPINNING]:
        _wakep(m)
    check_safepoint(m)


# ---- P run queues (each with its P's lock) ----

def _ring_read(w, base, cap, h, n):
    """Items [h, h+n) of a ring of cap words at word base (a copy)."""
    i = h % cap
    if i + n <= cap:
        return w[base + i:base + i + n].copy()
    k = cap - i
    return np.concatenate((w[base + i:base + cap], w[base:base + n - k]))


def _ring_write(w, base, cap, t, items):
    n = len(items)
    i = t % cap
    if i + n <= cap:
        w[base + i:base + i + n] = items
    else:
        k = cap - i
        w[base + i:base + cap] = items[:k]
        w[base:base + n - k] = items[k:]


def _runqput(m, p, g, nxt):
    q, ctl = m.q, m.ctl
    b = ctl.p(p)
    lk = m.plock(p)
    _acq(lk)
    if nxt:
        old = q[b + P_RUNNEXT]
        q[b + P_RUNNEXT] = g
        if old == NONE:
            _rel(lk)
            return
        g = old
    h, t = q[b + P_RQHEAD], q[b + P_RQTAIL]
    if t - h < RUNQ:
        q[b + P_RUNQ + t % RUNQ] = g
        q[b + P_RQTAIL] = t + 1
        _rel(lk)
        return
    # full: half of the ring and g go to the global queue in one batch
    n = RUNQ // 2
    batch = _ring_read(ctl.words, b + P_RUNQ, RUNQ, h, n)
    q[b + P_RQHEAD] = h + n
    _rel(lk)
    _acq(m.schedlock)
    _globrunqput_locked(m, np.append(batch, g))
    _rel(m.schedlock)


def _runqget(m, p):
    q = m.q
    b = m.ctl.p(p)
    if q[b + P_RUNNEXT] == NONE and q[b + P_RQHEAD] == q[b + P_RQTAIL]:
        return NONE
    lk = m.plock(p)
    _acq(lk)
    g = q[b + P_RUNNEXT]
    if g != NONE:
        q[b + P_RUNNEXT] = NONE
    else:
        h = q[b + P_RQHEAD]
        if h == q[b + P_RQTAIL]:
            g = NONE
        else:
            g = q[b + P_RUNQ + h % RUNQ]
            q[b + P_RQHEAD] = h + 1
    _rel(lk)
    return g


def _runqempty(m, p):
    q, b = m.q, m.ctl.p(p)
    return q[b + P_RUNNEXT] == NONE and q[b + P_RQHEAD] == q[b + P_RQTAIL]


def _runqputbatch(m, items, sched_locked=False):
    """Put items (a numpy array of G slots, fewer than RUNQ/2 + 1) on this M's P's ring, which a
    thief or the global queue just filled from empty, so there is room."""
    if not len(items):
        return
    q, ctl = m.q, m.ctl
    mb = ctl.p(m.p)
    lk = m.plock(m.p)
    _acq(lk)
    t = q[mb + P_RQTAIL]
    room = RUNQ - (t - q[mb + P_RQHEAD])
    k = min(room, len(items))
    _ring_write(ctl.words, mb + P_RUNQ, RUNQ, t, items[:k])
    q[mb + P_RQTAIL] = t + k
    _rel(lk)
    if k < len(items):
        if sched_locked:
            _globrunqput_locked(m, items[k:])
        else:
            _acq(m.schedlock)
            _globrunqput_locked(m, items[k:])
            _rel(m.schedlock)


def _runqsteal(m, victim, stealnext):
    """Take half (rounded up) of victim's ring into this M's P; returns a G to run or NONE."""
    q, ctl = m.q, m.ctl
    b = ctl.p(victim)
    if q[b + P_RQHEAD] == q[b + P_RQTAIL] and (not stealnext or q[b + P_RUNNEXT] == NONE):
        return NONE      # looks empty: a racy read, but a goroutine put there now wakes someone anyway
    lk = m.plock(victim)
    _acq(lk)
    h, t = q[b + P_RQHEAD], q[b + P_RQTAIL]
    n = t - h
    n = n - n // 2
    if n:
        got = _ring_read(ctl.words, b + P_RUNQ, RUNQ, h, n)
        q[b + P_RQHEAD] = h + n
        _rel(lk)
    elif stealnext and q[b + P_RUNNEXT] != NONE:
        g = q[b + P_RUNNEXT]
        q[b + P_RUNNEXT] = NONE
        _rel(lk)
        return g
    else:
        _rel(lk)
        return NONE
    g = int(got[-1])          # Go runs the last one stolen
    _runqputbatch(m, got[:-1])
    return g


# ---- the global queue, idle Ps, G lists (sched lock held) ----

def _globrunqput_locked(m, gs):
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    t = q[s + S_GQTAIL]
    _ring_write(ctl.words, ctl.base["gq"], MAXG, t, gs)
    q[s + S_GQTAIL] = t + len(gs)
    q[s + S_GQSIZE] += len(gs)


def _globrunqget_locked(m, maxn):
    """Take a batch from the global queue: run the first, the rest go to this M's P's ring."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    size = q[s + S_GQSIZE]
    if size == 0:
        return NONE
    n = min(size, size // max(1, q[s + S_GOMAXPROCS]) + 1, maxn, RUNQ // 2)
    h = q[s + S_GQHEAD]
    got = _ring_read(ctl.words, ctl.base["gq"], MAXG, h, n)
    q[s + S_GQHEAD] = h + n
    q[s + S_GQSIZE] = size - n
    if n > 1:
        _runqputbatch(m, got[1:], True)      # P lock after the sched lock: the documented order
    return int(got[0])


def _list_push(q, ctl, headw, tailw, g):
    q[ctl.g(g) + G_LINK] = NONE
    if q[tailw] == NONE:
        q[headw] = g
    else:
        q[ctl.g(q[tailw]) + G_LINK] = g
    q[tailw] = g


def _list_pop(q, ctl, headw, tailw):
    g = q[headw]
    if g != NONE:
        q[headw] = q[ctl.g(g) + G_LINK]
        if q[headw] == NONE:
            q[tailw] = NONE
    return g


def _list_remove(q, ctl, headw, tailw, g):
    prev, x = NONE, q[headw]
    while x != NONE:
        nxt = q[ctl.g(x) + G_LINK]
        if x == g:
            if prev == NONE:
                q[headw] = nxt
            else:
                q[ctl.g(prev) + G_LINK] = nxt
            if q[tailw] == x:
                q[tailw] = prev
            return True
        prev, x = x, nxt
    return False


def _pidleget_locked(m):
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    p = q[s + S_PIDLE]
    if p != NONE:
        q[s + S_PIDLE] = q[ctl.p(p) + P_LINK]
        q[s + S_NPIDLE] -= 1
    return p


def _pidleput_locked(m, p):
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    b = ctl.p(p)
    q[b + P_STATUS] = P_IDLE
    q[b + P_M] = NONE
    q[b + P_LINK] = q[s + S_PIDLE]
    q[s + S_PIDLE] = p
    q[s + S_NPIDLE] += 1


def _mcount(m):
    return m.q[m.ctl.sched + S_MCOUNT]


def _mstates(m):
    n = _mcount(m)
    return m.ctl.table("m", n, M_WORDS)


def _has_ready_own(m):
    """Whether this M has a goroutine of its own to run (sched lock held)."""
    q, r = m.q, m.row
    lg = m.lockedg
    if lg != NONE:
        return lg in m.localq or _in_list(q, m.ctl, r + M_RQHEAD, lg)
    return bool(m.localq or m.yieldq) or q[r + M_RQHEAD] != NONE


def _in_list(q, ctl, headw, g):
    x = q[headw]
    while x != NONE:
        if x == g:
            return True
        x = q[ctl.g(x) + G_LINK]
    return False


def _needp_get_locked(m):
    """The needp M that has waited longest (lowest M_STAMP), or NONE."""
    q, ctl = m.q, m.ctl
    best, bstamp = NONE, None
    for mid in range(_mcount(m)):
        r = ctl.m(mid)
        if q[r + M_STATE] == MS_NEEDP:
            st = q[r + M_STAMP]
            if bstamp is None or st < bstamp:
                best, bstamp = mid, st
    return best


def _give_p_locked(m, mid, p):
    """Hand P p to M mid (parked without a P) and wake it."""
    q, ctl = m.q, m.ctl
    b = ctl.p(p)
    q[b + P_STATUS] = P_RUNNING
    q[b + P_M] = mid
    r = ctl.m(mid)
    q[r + M_NEXTP] = p
    q[r + M_STATE] = MS_RUNNING
    _wakem(m, mid)


def _handoffp_locked(m, p):
    """P p was given up by its M (Go's handoffp): to a needp M first, to a new or idle M if there is
    work, to the world stopper if it waits, else to the idle list."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    b = ctl.p(p)
    if q[s + S_GCWAITING]:
        q[b + P_STATUS] = P_GCSTOP
        q[b + P_M] = NONE
        q[s + S_STOPWAIT] -= 1
        if q[s + S_STOPWAIT] == 0:
            m.stwnote.release()
        return
    mid = _needp_get_locked(m)
    if mid != NONE:
        _give_p_locked(m, mid, p)
        return
    if not _runqempty(m, p) or q[s + S_GQSIZE]:
        _startm_locked(m, p, False)
        return
    if q[s + S_NMSPINNING] + q[s + S_NPIDLE] == 0:
        q[s + S_NMSPINNING] += 1
        _startm_locked(m, p, True)
        return
    _pidleput_locked(m, p)


def _startm_locked(m, p, spinning):
    """Run P p on an idle M, or on a new one (Go's startm).  Of the idle Ms, the one carrying the
    fewest goroutines (M_NLIVE + M_NBOUND, as _spread counts), ties to the one woken least: new
    goroutines it starts stay there, so the Ms share them."""
    q, ctl = m.q, m.ctl
    best, key = NONE, None
    for mid in range(_mcount(m)):
        r = ctl.m(mid)
        if q[r + M_STATE] == MS_IDLE:
            k = (q[r + M_NLIVE] + q[r + M_NBOUND], q[r + M_WAKEUPS])
            if key is None or k < key:
                best, key = mid, k
    if best != NONE:
        q[ctl.m(best) + M_SPINNING] = int(spinning)
        _give_p_locked(m, best, p)
        return
    _newm_locked(m, p, spinning)


def init_mrow(q, r):
    """A fresh M row: counters zero, links and ids none."""
    for w in range(M_WORDS):
        q[r + w] = 0
    for w in (M_P, M_NEXTP, M_CURG, M_LOCKEDG, M_RQHEAD, M_RQTAIL, M_CPU, M_CREATEBK):
        q[r + w] = NONE


def _newm_locked(m, p, spinning):
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    mid = q[s + S_MCOUNT]
    if mid + 1 > q[s + S_MAXMCOUNT] or mid + 1 > MAXM:
        limit = min(q[s + S_MAXMCOUNT], MAXM)
        if m.row is None:
            # sysmon found no M for a retaken P: report, and leave the P idle (the program ends)
            from .traceback import fatal_report, request_exit_first
            if request_exit_first(m, locked=True):
                fatal_report(m, "thread exhaustion", f"runtime: program exceeds {limit}-thread limit\n")
            request_exit(m, 2, EXIT_FATAL)
            _pidleput_locked(m, p)
            return
        fatal("thread exhaustion", pre=f"runtime: program exceeds {limit}-thread limit\n", locked=True)
    r = ctl.m(mid)
    init_mrow(q, r)
    if m.row is not None:
        q[r + M_CREATEBK] = _mprof.bucket(m, _mprof.THREAD, _mprof.user_stack(sys._getframe(1)))
    q[r + M_NEXTP] = p        # NONE: an M for goroutines bound to it (_spread); it waits needp
    q[r + M_SPINNING] = int(spinning)
    q[r + M_STATE] = MS_STARTING
    if p != NONE:
        b = ctl.p(p)
        q[b + P_STATUS] = P_RUNNING
        q[b + P_M] = mid
    m.msem(mid)       # create its semaphore before anyone can post it
    q[s + S_MCOUNT] = mid + 1
    m.sysmonnote.release()    # the coordinator forks it
    return mid


def _wakep(m):
    """Start a spinning M on an idle P if nobody is spinning (Go's wakep)."""
    q, s = m.q, m.ctl.sched
    _acq(m.schedlock)
    try:
        if q[s + S_NMSPINNING] or not q[s + S_NPIDLE] or q[s + S_GCWAITING]:
            return
        p = _pidleget_locked(m)
        q[s + S_NMSPINNING] += 1
        _startm_locked(m, p, True)
    finally:
        _rel(m.schedlock)


# ---- ready and park: the one path each ----

def ready(m, g):
    """Make parked goroutine g runnable (from any process).  A started goroutine goes on its own
    M's ready list; if that M has no P it gets an idle one, or joins the needp list.  A goroutine
    of the calling M itself goes on the M's local queue, with no lock: only this process touches
    it, and the M is running, so nothing else needs to know."""
    q = m.q
    gr = m.ctl.gbase + g * G_WORDS
    if m.tracing:
        _trace.ev(m, _trace.EV_GOUNBLOCK, q[gr + G_GOID])
    if q[gr + G_M] == m.id and m.p != NONE:
        # only while this M holds a P: then it counts as running for checkdead, and will look at
        # its local queue; an M without a P must show its ready goroutine in shared memory
        q[gr + G_STATUS] = G_RUNNABLE
        m.localq.append(g)
        return
    _acq(m.schedlock)
    _ready_locked(m, g)
    _rel(m.schedlock)


def _ready_locked(m, g):
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    gr = ctl.g(g)
    q[gr + G_STATUS] = G_RUNNABLE
    mid = q[gr + G_M]
    r = ctl.m(mid)
    _list_push(q, ctl, r + M_RQHEAD, r + M_RQTAIL, g)
    st = q[r + M_STATE]
    if st in (MS_IDLE, MS_LOCKEDWAIT):
        lg = q[r + M_LOCKEDG]
        if lg != NONE and lg != g:
            return          # the M is locked to another goroutine: g waits for the lock to end
        p = _pidleget_locked(m) if not q[s + S_GCWAITING] else NONE
        if p != NONE:
            _give_p_locked(m, mid, p)
        else:
            q[r + M_STATE] = MS_NEEDP
            q[r + M_STAMP] = _nanotime()
            _wakem(m, mid)      # it re-checks; a P reaches it through the needp list


def park(reason, unlock=None):
    """Park the calling goroutine until `ready`.  The caller has queued it on some structure whose
    lock it holds: `unlock` (a Lock, or a function) releases it after the goroutine is marked
    waiting, so a waker on another M can only see a waiting goroutine (Go's gopark)."""
    m = _m
    g = m.curg
    q = m.q
    gr = m.ctl.gbase + g * G_WORDS
    s = m.ctl.sched
    prof = (q[s + S_BLOCKRATE] or q[s + S_MUTEXRATE]) and reason in _BLOCK_REASONS
    if prof:
        t0 = q[gr + G_WAITSINCE] = _nanotime()
    q[gr + G_WAIT] = reason
    q[gr + G_STATUS] = G_WAITING
    if m.tracing:
        _trace.ev(m, _trace.EV_GOBLOCK, m.curgoid, reason)
    if unlock is not None:
        if isinstance(unlock, Lock):
            _rel(unlock)
        else:
            unlock()
    _switch_out(m)
    if prof:
        t = _nanotime() - t0
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
    q = m.q
    if (m.localq and m.p != NONE and m.lockedg == NONE and (m.tick + 1) % FAIRNESS_TICKS
            and not (q[m.ctl.sched + S_ATTN] or q[m.row + M_PREEMPT])):
        m.tick += 1
        g = m.localq.popleft()
        _execute_mark(m, g)
        gl = m.greenlets[g]
        gl.switch()
    else:
        m.sched_gr.switch()


def _m0_wait(m):
    # M0 runs only goroutine 1: its scheduler is findrunnable restricted to that G
    g = findrunnable(m)
    _execute_mark(m, g)


def gosched():
    """runtime.Gosched: yield; other goroutines run first."""
    m = current_m()
    g = m.curg
    q, ctl = m.q, m.ctl
    _acq(m.schedlock)
    q[ctl.g(g) + G_STATUS] = G_RUNNABLE
    if m.tracing:
        _trace.ev(m, _trace.EV_GOSCHED, m.curgoid)
    if m.lockedg == g:
        m.localq.append(g)
    else:
        m.yieldq.append(g)
    yield_p = _needp_get_locked(m) != NONE or (m.lockedg != NONE and _others_waiting_locked(m))
    if yield_p:
        _release_p_to_needp_locked(m)
    _rel(m.schedlock)
    _switch_out(m)


def _others_waiting_locked(m):
    q, s = m.q, m.ctl.sched
    return q[s + S_NPIDLE] == 0 and (q[s + S_GQSIZE] or not _runqempty(m, m.p))


def _release_p_to_needp_locked(m):
    """This M yields its P (it has ready goroutines of its own, so it becomes needp)."""
    q = m.q
    p = m.p
    _dropp_locked(m)
    _handoffp_locked(m, p)          # to another M: we become needp only after (not our own taker)
    q[m.row + M_STATE] = MS_NEEDP
    q[m.row + M_STAMP] = _nanotime()


def _dropp_locked(m):
    q = m.q
    if m.tracing:
        _trace.ev(m, _trace.EV_PROCSTOP, m.p)
    q[m.row + M_P] = NONE
    m.p = NONE


def _acquirep(m, p):
    """This M now holds P p (handed over with the sched lock; status already running)."""
    if m.p != NONE:
        fatal(f"runtime: M{m.id} takes P{p} while it holds P{m.p}")
    m.p = p
    q = m.q
    q[m.row + M_P] = p
    if m.tracing:
        _trace.ev(m, _trace.EV_PROCSTART, p)
    cpu = m.cpus[p % len(m.cpus)]
    if m.pinned != cpu:
        try:
            os.sched_setaffinity(0, {cpu})
            m.pinned = cpu
        except OSError:
            pass
        q[m.row + M_CPU] = m.pinned if m.pinned is not None else NONE


# ---- the scheduler proper ----

def findrunnable(m):
    """Return a runnable G (status still runnable) with this M holding a P.  Parks as needed."""
    q, _ctl, s = m.q, m.ctl, m.ctl.sched
    r = m.row
    while True:
        if q[s + S_EXIT]:
            _exiting(m)
        if q[s + S_GCWAITING] and m.p != NONE:
            _gcstopm(m)
            continue
        if m.p == NONE:
            _stopm(m)
            continue
        if m.lockedg != NONE:
            g = _pop_locked_ready(m)
            if g != NONE:
                return g
            _fire_timers(m)
            if _pop_locked_ready(m, peek=True):
                continue
            g = _spin_locked(m)
            if g != NONE:
                return g
            _stoplockedm(m)
            continue
        m.tick += 1
        g = NONE
        if m.tick % FAIRNESS_TICKS == 0:
            if q[s + S_GQSIZE]:
                _acq(m.schedlock)
                g = _globrunqget_locked(m, 1)
                _rel(m.schedlock)
            if g == NONE and m.yieldq:
                g = m.yieldq.popleft()
            if g != NONE:
                return g
        if m.timers:
            _fire_timers(m)
        if m.localq:
            return m.localq.popleft()
        if q[r + M_RQHEAD] != NONE:
            g = _pop_own(m, M_RQHEAD)
            if g != NONE:
                return g
        g = _runqget(m, m.p)
        if g != NONE:
            return g
        if q[s + S_GQSIZE]:
            _acq(m.schedlock)
            g = _globrunqget_locked(m, RUNQ)
            _rel(m.schedlock)
            if g != NONE:
                return g
        if m.yieldq:
            return m.yieldq.popleft()
        g = _steal(m)
        if g != NONE:
            return g
        g = _spin(m)
        if g != NONE:
            return g
        if _release_idle_p(m):
            continue


def _pop_own(m, head):
    q, ctl, r = m.q, m.ctl, m.row
    _acq(m.schedlock)
    g = _list_pop(q, ctl, r + head, r + head + 1)
    _rel(m.schedlock)
    return g


def _pop_locked_ready(m, peek=False):
    q, ctl, r = m.q, m.ctl, m.row
    lg = m.lockedg
    if lg in m.localq:
        if not peek:
            m.localq.remove(lg)
            return lg
        return True
    if q[r + M_RQHEAD] == NONE:
        return False if peek else NONE
    _acq(m.schedlock)
    found = _in_list(q, ctl, r + M_RQHEAD, lg)
    if found and not peek:
        _list_remove(q, ctl, r + M_RQHEAD, r + M_RQTAIL, lg)
    _rel(m.schedlock)
    if peek:
        return found
    return lg if found else NONE


def _steal(m):
    q, s = m.q, m.ctl.sched
    n = q[s + S_GOMAXPROCS]
    if n <= 1:
        return NONE
    if not m.spinning:
        if 2 * q[s + S_NMSPINNING] >= n - q[s + S_NPIDLE]:
            return NONE
        _set_spinning(m, True)
    order = list(range(n))
    for i in range(4):
        if n > 2:
            random.shuffle(order)
        for p in order:
            if p == m.p:
                continue
            g = _runqsteal(m, p, i == 3)
            if g != NONE:
                _set_spinning(m, False)
                return g
    return NONE


def _set_spinning(m, on):
    if m.spinning == on:
        return
    q, s = m.q, m.ctl.sched
    _acq(m.schedlock)
    q[s + S_NMSPINNING] += 1 if on else -1
    q[m.row + M_SPINNING] = int(on)
    _rel(m.schedlock)
    m.spinning = on
    if not on and q[s + S_NPIDLE] and not q[s + S_NMSPINNING]:
        # Go: the last spinning M that found work wakes another, so bursts spread out
        _wakep(m)


def _spin(m):
    """Poll for work for SPIN_NS before parking: own ready list, own ring, the global queue, the
    other rings, timers, and the safe-point words."""
    q, ctl, s, r = m.q, m.ctl, m.ctl.sched, m.row
    deadline = _nanotime() + SPIN_NS
    n = q[s + S_GOMAXPROCS]
    pbases = [ctl.p(p) for p in range(n)]
    while _nanotime() < deadline:
        if q[r + M_RQHEAD] != NONE:
            g = _pop_own(m, M_RQHEAD)
            if g != NONE:
                return g
        if q[s + S_GQSIZE] or q[s + S_GCWAITING] or q[s + S_EXIT]:
            return NONE
        for b in pbases:
            if q[b + P_RQHEAD] != q[b + P_RQTAIL] or q[b + P_RUNNEXT] != NONE:
                return NONE
        if m.timers and m.timers[0][0] <= _nanotime():
            return NONE
    return NONE


def _spin_locked(m):
    """A locked M whose goroutine just blocked polls for it a little before handing its P off,
    unless other work wants the P."""
    q, s, r = m.q, m.ctl.sched, m.row
    deadline = _nanotime() + SPIN_NS
    b = m.ctl.p(m.p)
    while _nanotime() < deadline:
        if q[r + M_RQHEAD] != NONE:
            g = _pop_locked_ready(m)
            if g != NONE:
                return g
        if (q[s + S_GQSIZE] or q[s + S_GCWAITING] or q[s + S_EXIT] or q[b + P_RUNNEXT] != NONE
                or q[b + P_RQHEAD] != q[b + P_RQTAIL]):
            return NONE
        if m.timers and m.timers[0][0] <= _nanotime():
            return NONE
    return NONE


def _release_idle_p(m):
    """Nothing to run: give the P up and park (Go's findrunnable tail + stopm).  Returns True to
    have the caller look again."""
    q, _ctl, s, r = m.q, m.ctl, m.ctl.sched, m.row
    _acq(m.schedlock)
    if q[s + S_GCWAITING] or q[s + S_EXIT] or q[r + M_RQHEAD] != NONE or m.localq or m.yieldq:
        _rel(m.schedlock)
        return True
    if q[s + S_GQSIZE] or not _runqempty(m, m.p):
        _rel(m.schedlock)
        return True
    p = m.p
    _dropp_locked(m)
    _pidleput_or_needp_locked(m, p)
    if m.spinning:
        m.spinning = False
        q[s + S_NMSPINNING] -= 1
        q[r + M_SPINNING] = 0
    q[r + M_STATE] = MS_IDLE
    _rel(m.schedlock)
    # work may have arrived in a ring between our last look and the P going idle
    n = q[s + S_GOMAXPROCS]
    for pp in range(n):
        if not _runqempty(m, pp) and q[s + S_NPIDLE]:
            _wakep(m)
            break
    return True


def _pidleput_or_needp_locked(m, p):
    mid = _needp_get_locked(m)
    if mid != NONE:
        _give_p_locked(m, mid, p)
    else:
        _pidleput_locked(m, p)


def _stopm(m, needp=False):
    """Park this M (no P) until it is handed one; fire its timers meanwhile.  needp: the M has a
    goroutine running (stopped mid-flight) that needs a P whether or not anything is queued, and
    that goroutine resumes straight from here: so a root scan the collector asked for while we
    waited (M_GCSCAN) is done before returning, as _execute_mark does for every other resume."""
    q, ctl, s, r = m.q, m.ctl, m.ctl.sched, m.row
    while True:
        if q[s + S_EXIT] or (m.is_m0 and q[s + S_DEAD]):
            _exiting(m)
        _acq(m.schedlock)
        nextp = q[r + M_NEXTP]
        if nextp != NONE:
            q[r + M_NEXTP] = NONE
            q[r + M_STATE] = MS_RUNNING
            q[r + M_P] = nextp          # with the lock: the rows agree whenever it is free
            _rel(m.schedlock)
            _acquirep(m, nextp)
            if q[r + M_SPINNING] and not m.spinning:
                m.spinning = True
            if q[r + M_GCSCAN]:
                gcscan_self(m)      # a mark began while we waited: our roots before any goroutine
            return
        st = q[r + M_STATE]
        if st == MS_RUNNING and m.p == NONE:
            # woken without a P: look at what we have
            st = MS_IDLE
        if needp or _has_ready_own(m):
            if not q[s + S_GCWAITING]:
                p = _pidleget_locked(m)
                if p != NONE:
                    q[ctl.p(p) + P_STATUS] = P_RUNNING
                    q[ctl.p(p) + P_M] = m.id
                    q[r + M_STATE] = MS_RUNNING
                    q[r + M_P] = p
                    _rel(m.schedlock)
                    _acquirep(m, p)
                    if q[r + M_GCSCAN]:
                        gcscan_self(m)
                    return
            if st != MS_NEEDP:
                q[r + M_STAMP] = _nanotime()
            q[r + M_STATE] = MS_NEEDP
        else:
            q[r + M_STATE] = MS_LOCKEDWAIT if m.lockedg != NONE else MS_IDLE
            _checkdead_locked(m)
        _rel(m.schedlock)
        timeout = None
        if m.timers:
            timeout = max(0.0, (m.timers[0][0] - _nanotime()) / 1e9)
        if m.is_m0:
            timeout = MAX_PARK_S if timeout is None else min(timeout, MAX_PARK_S)
        woke = _park_m(m, timeout)
        if m.timers:
            _fire_timers(m)
        if not woke and m.is_m0:
            _check_coordinator(m)


def _stoplockedm(m):
    """The locked goroutine is not runnable: hand the P off and park (Go's stoplockedm)."""
    q = m.q
    _acq(m.schedlock)
    if _has_ready_own(m):
        _rel(m.schedlock)
        return
    p = m.p
    _dropp_locked(m)
    q[m.row + M_STATE] = MS_LOCKEDWAIT
    _handoffp_locked(m, p)
    _rel(m.schedlock)


def gcscan_self(m):
    """The collector asked for this M's roots (M_GCSCAN, mprt/gc/mgc.py): 1, scan them now, before
    any goroutine runs; 2, the coordinator is scanning them (we were idle): wait until it is done."""
    q, r = m.q, m.row
    while True:
        v = q[r + M_GCSCAN]
        if v == 0:
            return
        if v == 2:
            time.sleep(0)
            continue
        _acq(m.schedlock)
        v = q[r + M_GCSCAN]
        if v == 1:
            q[r + M_GCSCAN] = 3
        _rel(m.schedlock)
        if v == 1:
            shade_vec(m.heap, m.heap.roots.live())
            q[r + M_GCSCAN] = 0
            return


def _execute_mark(m, g):
    """g runs now on this M (the P's schedtick is what sysmon watches).  No goroutine runs on an M
    that holds no P: checked here, on every path that starts or resumes one."""
    q = m.q
    if m.p == NONE:
        fatal(f"runtime: goroutine {q[m.ctl.gbase + g * G_WORDS + G_GOID]} would run on M{m.id}, which holds no P")
    if q[m.row + M_GCSCAN]:
        gcscan_self(m)
    gr = m.ctl.gbase + g * G_WORDS
    q[gr + G_STATUS] = G_RUNNING
    # order matters against sysmon, which reads M_CURG, then the tick: tick first, curg last
    q[m.ctl.pbase + m.p * P_WORDS + P_SCHEDTICK] += 1
    if q[m.row + M_PREEMPT]:
        q[m.row + M_PREEMPT] = 0      # a request to yield was for the goroutine that ran before
    q[m.row + M_CURG] = g
    m.curg = g
    m.curgoid = q[gr + G_GOID]
    if m.tracing:
        _trace.ev(m, _trace.EV_GOSTART, m.curgoid)


def _schedule_loop(m):
    """A worker M's main greenlet: run goroutines forever."""
    q = m.q
    while True:
        g = findrunnable(m)
        if m.spinning:
            _set_spinning(m, False)     # Go's resetspinning: found work, so wake another spinner
        gl = m.greenlets.get(g)
        if gl is None and q[m.ctl.g(g) + G_M] == NONE and _spread(m, g):
            continue
        _execute_mark(m, g)
        if gl is None:
            gl = m.pool.pop() if m.pool else greenlet.greenlet(_gmain)
            m.greenlets[g] = gl
            _start_here(m, g)
            gl.switch(g)
        else:
            gl.switch()
        m.curg = NONE
        q[m.row + M_CURG] = NONE


def _spread(m, g):
    """Goroutines spread over the Ms at their start (a started goroutine never moves, so where it
    starts is where it runs for good).  An M about to start not-started goroutine g while it already
    carries live goroutines binds g instead to the worker M that carries the fewest, if that is
    fewer than this M's; while there are fewer worker Ms than Ps, to a new M.  g then waits on that
    M's ready list like a readied goroutine of its own, and the M gets a P the needp way (every P
    given up goes to a needp M first).  A pool of workers that each block at once on an empty jobs
    channel so ends up split across the Ms, instead of all on the first M that ran them.
    Returns True if g went elsewhere.  Load of an M: M_NLIVE (goroutines started there, alive;
    written by the M itself) + M_NBOUND (bound there, not started yet; sched lock)."""
    mine = len(m.greenlets)
    if not mine or m.lockedg != NONE:
        return False
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    nprocs = q[s + S_GOMAXPROCS]
    if nprocs <= 1:
        return False
    # the choice reads the loads without the lock (a heuristic; a stale load only skews it)
    best = bload = NONE
    workers = 1
    for mid in range(1, _mcount(m)):
        r = ctl.m(mid)
        if mid == m.id or q[r + M_STATE] == MS_DEAD or q[r + M_LOCKEDG] != NONE:
            continue
        workers += 1
        load = q[r + M_NLIVE] + q[r + M_NBOUND]
        if bload == NONE or load < bload:
            best, bload = mid, load
    newm = workers < nprocs and (bload == NONE or bload > 0)
    if not newm and (best == NONE or bload >= mine):
        return False
    _acq(m.schedlock)
    if newm:
        if q[s + S_GCWAITING]:
            _rel(m.schedlock)
            return False
        best = _newm_locked(m, NONE, False)
    q[ctl.g(g) + G_M] = best
    q[ctl.m(best) + M_NBOUND] += 1
    _ready_locked(m, g)
    _rel(m.schedlock)
    return True


def _start_here(m, g):
    """Not-started goroutine g starts on this M (bound here by _spread, or taken from a queue)."""
    q, ctl = m.q, m.ctl
    gr = ctl.g(g)
    if q[gr + G_M] == m.id:
        _acq(m.schedlock)
        q[m.row + M_NBOUND] -= 1
        _rel(m.schedlock)
    else:
        q[gr + G_M] = m.id
    q[m.row + M_NLIVE] += 1


@codeclass.mark_base
def _gmain(g):
    """A goroutine's greenlet: runs one goroutine, then waits in the pool for the next."""
    m = _m
    while True:
        fn = args = kwargs = None
        try:
            fn, args, kwargs = _payload(m, g)
            if m.tracing:
                _trace_func(m, fn)
            fn(*args, **kwargs)
        except Goexit:
            pass
        except _Exiting:
            raise
        except SystemExit as e:
            # sys.exit in a goroutine is Go's os.Exit: the program ends with that status, no report
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            request_exit(m, code, EXIT_OSEXIT)
            _worker_exit(0)
        except BaseException as e:
            from .traceback import gopanic
            gopanic(m, e)
        fn = args = kwargs = None       # an ended goroutine holds nothing (its Ptrs are roots)
        g = _goexit0(m, g)


def _trace_func(m, fn):
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is not None:
        fi = _symtab._table.register(code, getattr(fn, "__module__", None) or "?")
        if fi is not None:
            _trace.ev(m, _trace.EV_GOFUNC, m.curgoid, _symtab.FUNC_BASE + (fi << _symtab.FUNC_SHIFT))


def _payload(m, g):
    """The function and arguments of goroutine g, from its row (and its heap message, taken)."""
    q = m.q
    r = m.ctl.gbase + g * G_WORDS
    n = q[r + G_PAYLEN]
    hasptr = q[r + G_NPTR] > 0
    fl = q[r + G_FNLEN]
    if n >= 0:
        o = (r + G_INLINE) * 8
        data = bytes(m.mv8[o:o + n])
        if m.heap.gcq[GC_PHASE]:
            # the deletion half of the barrier: the row is read by the collector concurrently
            for i in range(q[r + G_NPTR]):
                shade_word(m.heap, q[r + G_PTR0 + i])
        fn = msg.decode_fn(data[:fl], hasptr)
        args = (loads(data[fl:]) if hasptr else pickle.loads(data[fl:])) if n > fl else ((), {})
        # only now: the Ptrs inside are handles of their own.  The words are cleared too, so that no
        # row ever holds the address of an object that may since have been freed
        k = q[r + G_NPTR]
        q[r + G_NPTR] = 0
        for i in range(k):
            q[r + G_PTR0 + i] = 0
    else:
        q[r + G_NPTR] = 0       # first: with the length word cleared, a count would name the row's words
        hnd = msg.take_heap(q, r + G_PAYLEN)
        data = msg.heap_bytes(hnd)
        fn = msg.decode_fn(data[:fl], hasptr)
        args = loads(data[fl:]) if len(data) > fl else ((), {})
    return fn, args[0], args[1]


def _goexit0(m, g):
    """Goroutine g ended: free its row, unlock, and return the greenlet to the pool."""
    q, ctl = m.q, m.ctl
    gr = ctl.g(g)
    if m.lockedg == g:
        m.lockedg = NONE
        q[m.row + M_LOCKEDG] = NONE
    q[gr + G_STATUS] = G_DEAD
    q[gr + G_LOCKEDM] = NONE
    q[gr + G_M] = NONE
    q[m.row + M_GEXITED] += 1
    q[m.row + M_NLIVE] -= 1
    if m.tracing:
        _trace.ev(m, _trace.EV_GOEND, m.curgoid)
    gl = m.greenlets.pop(g)
    _gslot_put(m, g)
    # fast path: the next goroutine is a new one from our P's queue, and nothing else is due
    # (findrunnable's order: own readied goroutines first, the fairness tick, safe points); it runs
    # in this very greenlet, with no switch
    if (m.p != NONE and m.lockedg == NONE and not m.localq and q[m.row + M_RQHEAD] == NONE
            and (m.tick + 1) % FAIRNESS_TICKS
            and not q[ctl.sched + S_ATTN] and not q[m.row + M_PREEMPT] and not m.timers):
        g2 = _runqget(m, m.p)
        if g2 != NONE and not _spread(m, g2):
            m.tick += 1
            _execute_mark(m, g2)
            m.greenlets[g2] = gl
            _start_here(m, g2)
            return g2
    m.pool.append(gl)
    m.curg = NONE
    q[m.row + M_CURG] = NONE
    return m.sched_gr.switch()


# ---- timers (each M keeps the timers of its own goroutines) ----

def sleep(seconds):
    """Pause the calling goroutine for at least `seconds` (Go's time.Sleep).  Parks, never the M."""
    m = current_m()
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"mprt.sleep: duration {seconds!r} is not a number")
    if seconds <= 0:
        check_safepoint(m)
        return
    _add_timer(m, _nanotime() + int(seconds * 1e9), m.curg)
    park(W_SLEEP)


def _add_timer(m, when, g):
    m.tseq += 1
    heapq.heappush(m.timers, (when, m.tseq, g))
    m.q[m.row + M_NTIMERS] = len(m.timers)


def _fire_timers(m):
    now = _nanotime()
    due = []
    while m.timers and m.timers[0][0] <= now:
        due.append(heapq.heappop(m.timers)[2])
    if due:
        for g in due:
            if m.q[m.ctl.g(g) + G_STATUS] == G_WAITING:
                ready(m, g)
        # only now: checkdead must never see neither the timer nor the goroutine it readied
        m.q[m.row + M_NTIMERS] = len(m.timers)


# ---- LockOSThread ----

def lock_os_thread():
    m = current_m()
    g = m.curg
    if m.is_m0 or m.lockedg == g:
        return        # main is always locked to M0; a second Lock is ignored (Go 1.9)
    m.lockedg = g
    m.q[m.row + M_LOCKEDG] = g
    m.q[m.ctl.g(g) + G_LOCKEDM] = m.id


def unlock_os_thread():
    m = current_m()
    g = m.curg
    if m.is_m0 or m.lockedg != g:
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

    def __enter__(self):
        entersyscall()
        return self

    def __exit__(self, *exc):
        exitsyscall()


def syscall():
    return _Syscall()


def entersyscall():
    m = current_m()
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    check_safepoint(m)
    _acq(m.schedlock)
    b = ctl.p(m.p)
    q[b + P_STATUS] = P_SYSCALL
    q[b + P_SYSCALLTICK] += 1
    q[m.row + M_STATE] = MS_SYSCALL
    q[m.row + M_NCGOCALL] += 1
    if m.tracing:
        _trace.ev(m, _trace.EV_GOSYSCALL, m.curgoid)
    q[ctl.g(m.curg) + G_STATUS] = G_SYSCALL
    wake = q[s + S_NPIDLE] == 0 and (q[s + S_GQSIZE] or not _runqempty(m, m.p) or _needp_get_locked(m) != NONE)
    _rel(m.schedlock)
    if wake:
        m.sysmonnote.release()   # work is waiting: let sysmon retake the P soon


def exitsyscall():
    m = _m
    q, ctl, _s = m.q, m.ctl, m.ctl.sched
    g = m.curg
    _acq(m.schedlock)
    p = m.p
    if p != NONE and q[ctl.p(p) + P_STATUS] == P_SYSCALL and q[ctl.p(p) + P_M] == m.id:
        q[ctl.p(p) + P_STATUS] = P_RUNNING
        q[m.row + M_STATE] = MS_RUNNING
        q[ctl.g(g) + G_STATUS] = G_RUNNING
        _rel(m.schedlock)
        check_safepoint(m)
        return
    # the P was retaken: wait for one like any readied goroutine of this M
    _dropp_locked(m)
    q[m.row + M_STATE] = MS_IDLE
    _ready_locked(m, g)
    _rel(m.schedlock)
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
    q[b + P_STATUS] = P_IDLE
    q[b + P_M] = NONE
    _handoffp_locked(m, p)
    return True


# ---- stop the world: the one path ----

def stop_the_world(m, reason=""):
    """Stop every P: each M parks at its next safe point (a signal reaches one that makes no
    runtime call).  The caller keeps its P stopped too.  Returns the request time (ns)."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    t0 = _nanotime()
    while True:
        _acq(m.schedlock)
        if not q[s + S_GCWAITING]:
            break
        _rel(m.schedlock)
        if m.p != NONE:
            # someone else is stopping the world: be stopped, then try again, holding a P again
            # (a resize meanwhile may have taken ours: we would stop the world without one, and
            # wait for the P then handed to us as for any other M's)
            _gcstopm(m, keep_p=True)
        else:
            if m.stw_hook is not None:
                m.stw_hook()    # the coordinator: the other stopper may wait for an M it must fork
            time.sleep(0.0001)
    if m.schedcheck and m.row is not None and m.p == NONE:
        _rel(m.schedlock)
        fatal(f"schedcheck: M{m.id} stops the world holding no P (it would wait for its own)")
    n = q[s + S_GOMAXPROCS]
    q[s + S_GCWAITING] = 1
    q[s + S_ATTN] = 1
    q[s + S_STOPPER] = m.id
    if m.tracing:
        _trace.ev(m, _trace.EV_STWSTART, _trace.stw_reason(reason))
    wait = n
    if m.p != NONE:
        q[ctl.p(m.p) + P_STATUS] = P_GCSTOP
        wait -= 1
    while q[s + S_PIDLE] != NONE:
        p = _pidleget_locked(m)
        q[ctl.p(p) + P_STATUS] = P_GCSTOP
        wait -= 1
    for p in range(n):
        b = ctl.p(p)
        if q[b + P_STATUS] == P_SYSCALL:
            q[b + P_STATUS] = P_GCSTOP
            mid = q[b + P_M]
            if mid != NONE:
                q[ctl.m(mid) + M_P] = NONE
            q[b + P_M] = NONE
            wait -= 1
    q[s + S_STOPWAIT] = wait
    running = [q[ctl.p(p) + P_M] for p in range(n) if q[ctl.p(p) + P_STATUS] == P_RUNNING]
    _rel(m.schedlock)
    pids = {q[ctl.m(mid) + M_PID] for mid in running if mid != NONE and mid != m.id}
    _signal_pids(pids)
    last = _nanotime()
    spin_until = last + (STW_SPIN_NS if m.p != NONE else STW_YIELD_NS)
    while q[s + S_STOPWAIT] > 0 and _nanotime() < spin_until:
        if m.p == NONE:
            os.sched_yield()   # the collector: give the CPU to an M on its way to stop, stay awake
    # (a brief poll: the Ms often stop within a signal's delivery; a sleep and wakeup costs more)
    while q[s + S_STOPWAIT] > 0:
        if m.stw_hook is not None:
            m.stw_hook()        # the coordinator forks Ms: one may be owed a P we wait for
        try:
            m.stwnote.acquire(0.002)
        except (posix_ipc.BusyError, posix_ipc.SignalError):
            pass
        if q[s + S_EXIT] and not m.is_m0:
            _exiting(m)
        if _nanotime() - last > STW_RESIGNAL_NS:   # a signal that found the M in heap code, or lost
            # to a long C call: ask again
            _signal_pids(pids)
            last = _nanotime()
    while True:   # drain extra posts
        try:
            m.stwnote.acquire(0)
        except (posix_ipc.BusyError, posix_ipc.SignalError):
            break
    return t0


def _signal_pids(pids):
    for pid in pids:
        if pid > 0:
            try:
                os.kill(pid, signal.SIGURG)
            except ProcessLookupError:
                pass


def start_the_world(m, t0, newprocs=0):
    """Restart: resize if asked, give every stopped M its P back, idle Ps to the idle list or to
    needp Ms.  Records the pause (request to restart)."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    _acq(m.schedlock)
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
        _dropp_locked(m)
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
    now = _nanotime()
    for mid in range(_mcount(m)):
        r = ctl.m(mid)
        if q[r + M_STATE] == MS_GCSTOP:
            q[r + M_STATE] = MS_NEEDP
            q[r + M_STAMP] = now
            q[r + M_P] = NONE
            wake.append(mid)
    for p in reversed(free):
        _pidleput_or_needp_locked(m, p)
    # the world runs again once every state is flipped: the pause ends here, before the wakeups
    # (a woken M may take the stopper's CPU at once)
    dt = _nanotime() - t0
    i = q[s + S_PAUSEIDX] % NPAUSE
    pb = ctl.base["pause"]
    q[pb + 2 * i] = dt
    q[pb + 2 * i + 1] = time.time_ns()
    q[s + S_PAUSEIDX] += 1
    q[s + S_NSTW] += 1
    q[s + S_STWTOTAL] += dt
    if m.tracing:
        _trace.ev(m, _trace.EV_STWDONE)
    _rel(m.schedlock)
    for mid in wake:
        _wakem(m, mid)
    if mine != NONE and mine >= n:
        m.q[m.row + M_STATE] = MS_IDLE
    if q[s + S_NPIDLE] and (q[s + S_GQSIZE] or any(not _runqempty(m, p) for p in range(n))):
        _wakep(m)
    return dt


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
        _globrunqput_locked(m, moved)
    q[s + S_GOMAXPROCS] = n


def _gcstopm(m, keep_p=False):
    """Stop this M for the world at a safe point (it holds a P, no runtime lock).  keep_p: the M
    was interrupted (from_signal) and leaves holding a P again, whatever the resize did.
    Not reentrant: while it runs (m.in_gcstop), a signal or an unlock with a stop pending does
    nothing; the stopper signals again if it still waits (back-to-back stops once nested here,
    one level per stop, to a RecursionError)."""
    if m.in_gcstop:
        return
    q, ctl, s, r = m.q, m.ctl, m.ctl.sched, m.row
    m.in_gcstop = True
    try:
        _acq(m.schedlock)
        if not q[s + S_GCWAITING] or m.p == NONE:
            _rel(m.schedlock)
            return
        b = ctl.p(m.p)
        if q[b + P_STATUS] == P_RUNNING:
            q[b + P_STATUS] = P_GCSTOP
            q[s + S_STOPWAIT] -= 1
            if q[s + S_STOPWAIT] == 0:
                m.stwnote.release()
        q[r + M_STATE] = MS_GCSTOP
        _rel(m.schedlock)
        while q[r + M_STATE] == MS_GCSTOP:
            if q[s + S_EXIT]:
                _exiting(m)
            _park_m(m, 0.5 if m.is_m0 else None)
            if m.is_m0 and q[r + M_STATE] == MS_GCSTOP:
                _check_coordinator(m)
        if q[r + M_GCSCAN]:
            gcscan_self(m)     # the collector started a mark while we were stopped
        if q[r + M_P] == NONE:
            m.p = NONE
            if keep_p:
                # our P went away in a resize while code that counts on it was interrupted (a
                # signal, or the last unlock acting on one: a goroutine mid-flight, or the
                # scheduler between two looks at m.p): the M waits for a P before it goes on
                _stopm(m, needp=True)
        if m.schedcheck and m.p != NONE and q[r + M_GCSCAN] == 1:
            fatal(f"schedcheck: M{m.id} resumes with its roots unscanned (M_GCSCAN still asked for)")
    finally:
        m.in_gcstop = False


def check_safepoint(m):
    """The safe-point test, after every operation that may block (one word for a stop of the world
    or the program's end, one for sysmon's request to yield)."""
    q = m.q
    if q[m.ctl.sched + S_ATTN] or q[m.row + M_PREEMPT]:
        _safepoint(m)


def _safepoint(m, from_signal=False):
    """Act on the program's end, a stop of the world and (not from a signal handler, which must
    not switch goroutines) sysmon's request to yield."""
    q, s = m.q, m.ctl.sched
    if q[s + S_EXIT]:
        _exiting(m)
    if q[s + S_GCWAITING] and m.p != NONE and q[s + S_STOPPER] != m.id:
        _gcstopm(m, keep_p=from_signal)
        if not from_signal:
            ensure_p(m)          # our P went away in a resize: wait for one
    if not from_signal and q[m.row + M_PREEMPT]:
        q[m.row + M_PREEMPT] = 0
        if m.curg != NONE:
            gosched()


def _alloc_safepoint():
    """The safe point at the start of an allocation by the program (mprt/shm/malloc.py calls it
    from its entry points): a stop of the world, and a preemption when every frame of the
    goroutine is its own code."""
    m = _m
    if m is None or m.row is None:
        return
    q = m.q
    if q[m.ctl.sched + S_ATTN] or q[m.row + M_PREEMPT]:
        caller = sys._getframe(1).f_back       # the allocation entry point's caller
        kind = codeclass.classify(caller)[0]
        if not m.locks and kind <= codeclass.LOCKING:
            _safepoint(m, from_signal=kind != codeclass.USER)


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
            if m.sigpending and not m.locks and not m.in_gcstop and m.q[m.ctl.sched + S_ATTN]:
                pending_stop(m, f.f_back)
        return on_event

    frame.f_trace_lines = False
    frame.f_trace = on_event
    sys.settrace(_trace_calls)


def _trace_calls(frame, event, arg):
    return None        # frames called meanwhile are not traced


def _on_sigurg(signum, frame):
    """SIGURG: a stop of the world, a dump or profiling change, or sysmon's request to preempt a
    goroutine that ran past its slice (Go 1.14's asynchronous preemption; see "Preemption" above)."""
    m = _m
    if m is None or m.dying:
        return
    from .traceback import maybe_dump
    maybe_dump(m, frame)
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
        gosched()
    # otherwise runtime code: its next safe point yields, or sysmon asks again in 10 ms


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


def sync_prof(m):
    """Tracing and CPU profiling follow the shared words (after SIGURG, at an M's start)."""
    q, s = m.q, m.ctl.sched
    m.profsync = q[s + S_PROFSYNC]
    _trace.sync_state(m)
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
    m = _m
    if m is None or not m.cpuhz or frame is None:
        return
    key = tuple(_symtab.callers(frame, 64, in_signal=True))
    m.cpusamples[key] = m.cpusamples.get(key, 0) + 1


# ---- endings ----

def _exiting(m):
    """The program is ending: M0 unwinds to mprt.run; a worker M leaves at once."""
    if m.is_m0:
        q, s = m.q, m.ctl.sched
        kind = q[s + S_DEAD]
        if kind and not q[s + S_EXIT]:
            from .traceback import fatal_report, request_exit_first
            if request_exit_first(m):
                fatal_report(m, "all goroutines are asleep - deadlock!" if kind == EXIT_DEADLOCK
                             else "no goroutines (main called runtime.Goexit) - deadlock!")
            request_exit(m, 2, kind)
        raise _Exiting()
    _worker_exit()


def _worker_exit(code=0):
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    os._exit(code)


def request_exit(m, code, kind):
    """End the program with exit status `code` (M0 tears down).  Idempotent: the first wins."""
    q, s = m.q, m.ctl.sched
    if q[s + S_EXIT]:
        return False
    q[s + S_EXITKIND] = kind
    q[s + S_EXIT] = code + 1
    q[s + S_ATTN] = 1
    m0 = 0
    _wakem(m, m0)
    if not m.is_m0:
        _signal_pids([q[m.ctl.m(m0) + M_PID]])
    m.sysmonnote.release()
    return True


def fatal(text, pre="", locked=False, head=None):
    """Go's throw: `fatal error: text`, the goroutines per GOTRACEBACK, exit status 2.  `locked`:
    the caller holds the sched lock (the process ends or unwinds to teardown holding it).  `head`
    replaces the `fatal error:` line (a crash on a signal: `SIGTRAP: trace trap`)."""
    m = current_m()
    from .traceback import fatal_report, request_exit_first
    if request_exit_first(m, locked):
        fatal_report(m, text, pre, head)
    request_exit(m, 2, EXIT_FATAL)
    _exiting(m)
    raise _Exiting()


def _checkdead_locked(m):
    """No M is running and every goroutine waits: Go's checkdead (sched lock held)."""
    q, _ctl, s = m.q, m.ctl, m.ctl.sched
    if q[s + S_EXIT]:
        return
    mt = _mstates(m)
    st = mt[:, M_STATE]
    busy = ((st == MS_RUNNING) | (st == MS_STARTING) | (st == MS_SYSCALL) | (st == MS_GCSTOP)
            | (st == MS_NEEDP)).sum()
    if busy:
        return
    if mt[:, M_NTIMERS].sum() > 0:
        return
    if q[s + S_GQSIZE]:
        return
    for p in range(q[s + S_GOMAXPROCS]):
        if not _runqempty(m, p):
            return
    ngor = int(mt[:, M_GCREATED].sum() - mt[:, M_GEXITED].sum()) - fing_system(m.heap)
    # M0 prints the report while every M is still there to show its goroutines, then ends it all
    q[s + S_DEAD] = EXIT_GOEXIT if ngor == 0 else EXIT_DEADLOCK
    _wakem(m, 0)


def _check_coordinator(m):
    pid = m.q[m.ctl.sched + S_COORDPID]
    if pid <= 0:
        return
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        done, _status = pid, 0
    if done:
        m.q[m.ctl.sched + S_COORDPID] = 0
        if not m.q[m.ctl.sched + S_EXIT]:
            from .traceback import write_err
            write_err("fatal error: runtime: the coordinator process died\n")
            m.q[m.ctl.sched + S_EXITKIND] = EXIT_FATAL
            m.q[m.ctl.sched + S_EXIT] = 3
        raise _Exiting()


def ensure_p(m):
    """After a stop-the-world: if the caller's P went away in a resize, wait for one.  The M waits
    as a needp M (_stopm): nothing else can run on it without a P, and a P already handed to it
    (M_NEXTP, by the start of the world that took the old one) is the one it takes."""
    if m.p == NONE and m.curg != NONE:
        _stopm(m, needp=True)


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
    if _mcount(m) > n:
        fatal("thread exhaustion", pre=f"runtime: program exceeds {n}-thread limit\n")
    return old


# ---- introspection ----

def numgoroutine(m):
    """Goroutines that exist, less the finalizer goroutine unless it is running finalizers."""
    mt = _mstates(m)
    return int(mt[:, M_GCREATED].sum() - mt[:, M_GEXITED].sum()) - fing_system(m.heap)


def wait_reason(code):
    return WAIT_REASONS[code] if 0 <= code < len(WAIT_REASONS) else "???"


def cpu_now():
    return _sched_getcpu()


codeclass.mark(__name__, codeclass.RUNTIME)
