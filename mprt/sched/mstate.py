"""This process's M: its state, the current M, the runtime's locks, waking an M, and the endings.

The M object is process-local (nothing in it is shared); its shared words are its row of the
control segment (ctl.py).  One process runs one M for its whole life: M0 (the caller of mprt.run),
a worker M, or the coordinator's M-shaped context (no row, no P, no heap).

Locks.  Every runtime lock (sched, each P's, a channel's, symtab, prof) is a POSIX semaphore taken
through acq/rel, which count the M's held locks (M.locks): a signal never stops or preempts an M
holding one.  acq tries once, then waits in segment.Lock.acquire, which spins a while and whose wait
wakes every LOCK_WAIT_S to ask _lock_wait_hook whether the program is ending (the holder may be a
dead M).  Lock order: a channel's lock, then the sched lock, then a P's lock.

Waking an M: wakem posts its semaphore after its state was changed under the sched lock; park_m
is the wait.  Endings: request_exit (first wins), fatal (Go's throw), worker_exit, and exiting
(M0 unwinds to mprt.run, a worker M leaves).
"""
import collections
import os
import signal
import sys
import time

import posix_ipc

from .. import codeclass
from ..errors import NoRuntime
from ..settings import load_accel
from ..shm import segment as _segment
from ..shm.segment import Lock, shm_name
from .ctl import (
    EXIT_DEADLOCK,
    EXIT_FATAL,
    M_NEXTP,
    M_P,
    M_PID,
    M_PREEMPT,
    M_WAKEUPS,
    NONE,
    P_M,
    P_RUNNING,
    P_STATUS,
    S_ATTN,
    S_COORDPID,
    S_DEAD,
    S_EXIT,
    S_EXITKIND,
    S_GOMAXPROCS,
    S_MCOUNT,
)


class Terminated(BaseException):
    """SIGTERM reached M0: tear down, then die of the signal."""


class Exiting(BaseException):
    """Raised in M0 when another process ended the program (a panic, a fatal error)."""


class M:
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
        self.sites = {}           # (id(code), lasti) -> the site's index in the shared table
        self.site_codes = []      # ... and those codes, kept alive so that no id is reused
        self.cpus = sorted(os.sched_getaffinity(0))
        self.pinned = None
        self.dumped = 0
        self.dumping = False      # a dump request being answered (traceback.maybe_dump)
        self.panicking = None     # the exception this M's goroutine panicked with, while another reports
        self.in_gcstop = False    # parked for a stop of the world (a signal then has nothing to do)
        self.stw_hook = None      # the coordinator: sysmon's must-do work while it waits for a stop
        self.tracing = False      # emitting execution-trace events (trace.py); tbase: this M's ring
        self.tbase = 0
        self.tstacks = {}         # this trace's stack numbers by call site (trace.stack)
        self.tgo = {}             # a traced go's GoCreate by (function, call site) (proc._trace_go)
        self.profsync = 0         # the S_PROFSYNC this M last acted on (tracing, CPU profiling)
        self.maxstack = 0         # the S_MAXSTACK applied as this process's recursion limit (stw.py)
        self.base_reclimit = None  # the interpreter's own recursion limit, before any SetMaxStack
        self.panic_on_fault = {}  # G slot -> True: debug.SetPanicOnFault(True) by that goroutine
        self.unwound = False      # M0: main has unwound for the program's end (boot._unwound)
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
_csched = load_accel("mprt.sched.csched")   # its stop at an allocation reads this process's M


def current_m():
    if _m is None:
        raise NoRuntime("mprt: no runtime is running in this process (use mprt.run)")
    return _m


def current_m_or_none():
    return _m


def set_current_m(m):
    """This process's M from now on (boot: M0, the coordinator, a worker M; None at teardown)."""
    global _m
    old, _m = _m, m
    # the allocator's C path reads the M's safe-point words itself (safepoint_due)
    if old is not None and old.row is not None and old.heap is not None and old.heap.cx is not None:
        old.heap.cx.set_sched(None)
    if m is not None and m.row is not None and m.heap is not None and m.heap.cx is not None:
        m.heap.cx.set_sched(m.ctl.seg.mm, (m.ctl.sched + S_ATTN) * 8, (m.row + M_PREEMPT) * 8)
    # ... and so does the scheduler's, for a stop of the world (stw.py: csched's stop at an allocation,
    # and the stopper's request and restart)
    if _csched is not None:
        if m is not None:
            _csched.setup_stop(m, m.ctl.seg.mm, m.ctl.sched, -1 if m.row is None else m.row, m.ctl.pbase,
                               m.ctl.mbase, m.ctl.base["pause"], m.id, m.schedlock.name, m.stwnote.name,
                               None if m.sem is None else m.sem.name)
        else:
            _csched.setup_stop(None)


def _after_fork_in_child():
    # A forked process is no M until its main says which it is (set_current_m): until then a lock
    # wait or a signal handler in it must not act as its parent (a worker M attaching under a held
    # heap lock ran the coordinator's checks, found its parent was not M0, and ended the runtime
    # as orphaned).  Also true of a process the program forks itself.
    global _m
    _m = None


os.register_at_fork(after_in_child=_after_fork_in_child)


# ---- locks: every runtime lock is taken through these, so a signal never parks a lock holder ----

def acq(lk):
    _m.locks += 1
    try:
        return lk.acquire_raw(0)          # sem_trywait: the common, uncontended case
    except posix_ipc.BusyError:
        pass
    try:
        return lk.acquire()               # spins a while, then sleeps
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
        raise KeyboardInterrupt() if m.signalled == signal.SIGINT else Terminated()
    if m.q[m.ctl.sched + S_EXIT]:
        if m.is_m0:
            raise Exiting()
        worker_exit()


_segment.set_wait_hook(_lock_wait_hook)


def rel(lk):
    m = _m
    if m.schedcheck and lk is m.schedlock:
        check_pm_locked(m)
    lk.release()
    m.locks -= 1


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
    for mid in range(mcount(m)):
        p = q[ctl.m(mid) + M_P]
        if p != NONE and q[ctl.p(p) + P_M] != mid:
            _pm_broken(m, f"M{mid} holds P{p}, whose row names M{q[ctl.p(p) + P_M]}")


def _pm_broken(m, what):
    import traceback as _pytb
    m.schedcheck = False
    fatal(f"schedcheck: {what}", pre="".join(_pytb.format_stack(sys._getframe(3), limit=12)), locked=True)


def safepoint_due(m):
    """The one safe-point test: a stop of the world or the program's end (the sched word ATTN), or
    sysmon's request that this M's goroutine yield (its PREEMPT word)."""
    q = m.q
    return q[m.ctl.sched + S_ATTN] or q[m.row + M_PREEMPT]


def stop_pending(m):
    """A stop that a signal found this M unable to take (a lock held, heap code) is still wanted
    and can be taken now."""
    return m.sigpending and not m.locks and not m.in_gcstop and m.q[m.ctl.sched + S_ATTN]


def nanotime():
    return time.monotonic_ns()


# ---- M wakeups: the one way to wake an M ----

def wakem(m, mid):
    """Post M mid's semaphore.  The caller changed the M's state (or nextp) with the sched lock."""
    m.q[m.ctl.m(mid) + M_WAKEUPS] += 1
    m.msem(mid).release()


def park_m(m, timeout=None):
    """Sleep on this M's semaphore until posted (or timeout seconds).  Returns False on timeout."""
    try:
        m.sem.acquire(timeout)
        return True
    except posix_ipc.BusyError:
        return False
    except posix_ipc.SignalError:
        if m.signalled:      # SIGINT or SIGTERM in M0 whose exception the wait swallowed
                raise KeyboardInterrupt() if m.signalled == signal.SIGINT else Terminated()
        return True   # a signal; the caller's loop looks again


def mcount(m):
    return m.q[m.ctl.sched + S_MCOUNT]


def signal_pids(pids):
    for pid in pids:
        if pid > 0:
            try:
                os.kill(pid, signal.SIGURG)
            except ProcessLookupError:
                pass


# ---- endings ----

def exiting(m):
    """The program is ending: M0 unwinds to mprt.run; a worker M leaves at once."""
    if m.is_m0:
        q, s = m.q, m.ctl.sched
        kind = q[s + S_DEAD]
        if kind and not q[s + S_EXIT]:
            if _traceback.request_exit_first(m):
                _traceback.fatal_report(m, "all goroutines are asleep - deadlock!" if kind == EXIT_DEADLOCK
                             else "no goroutines (main called runtime.Goexit) - deadlock!")
            request_exit(m, 2, kind)
        raise Exiting()
    worker_exit()


def worker_exit(code=0):
    for f in (sys.stdout, sys.stderr):
        try:
            getattr(f, "flush_all", f.flush)()     # (boot._LineText: every goroutine's unended line)
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
    wakem(m, m0)
    if not m.is_m0:
        signal_pids([q[m.ctl.m(m0) + M_PID]])
    m.sysmonnote.release()
    return True


def fatal(text, pre="", locked=False, head=None):
    """Go's throw: `fatal error: text`, the goroutines per GOTRACEBACK, exit status 2.  `locked`:
    the caller holds the sched lock (the process ends or unwinds to teardown holding it).  `head`
    replaces the `fatal error:` line (a crash on a signal: `SIGTRAP: trace trap`)."""
    m = current_m()
    if _traceback.request_exit_first(m, locked):
        _traceback.fatal_report(m, text, pre, head)
    request_exit(m, 2, EXIT_FATAL)
    exiting(m)
    raise Exiting()


def reap_coordinator(m):
    """M0's one check of its child, the coordinator (sysmon and the collector; the Ms die with it):
    None while it lives, False if it left as the program ends, True if it died before: then the
    program ends here with a fatal error (exit status 2)."""
    q, s = m.q, m.ctl.sched
    pid = q[s + S_COORDPID]
    if pid <= 0:
        return None
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        done, status = pid, 0
    if not done:
        return None
    q[s + S_COORDPID] = 0
    if q[s + S_EXIT]:
        return False
    how = (f"signal {signal.Signals(-os.waitstatus_to_exitcode(status)).name}" if os.WIFSIGNALED(status)
           else f"exit status {os.waitstatus_to_exitcode(status)}")
    _traceback.write_err(f"fatal error: runtime: the coordinator process (sysmon and the collector, "
                         f"pid {pid}) died: {how}\n")
    request_exit(m, 2, EXIT_FATAL)
    return True


def check_coordinator(m):
    """M0, waiting: unwind if the coordinator is gone."""
    if reap_coordinator(m) is not None:
        raise Exiting()


# the scheduler's other modules, imported last: they import this one (see proc.py)
from . import traceback as _traceback  # noqa: E402

codeclass.mark(__name__, codeclass.RUNTIME)
