"""sync.WaitGroup, sync.Mutex, sync.RWMutex and sync.Cond over heap objects (Go's sema.go and
notifyList, reduced to what they need).

Each is a heap object: a state word and a FIFO of waiting sudogs, guarded by the object's lock
(chan.objlock: the same lock stripes as channels; nothing holds two of them except select).
    WaitGroup: state = the counter.  wait() parks while it is > 0; the add() that brings it to 0
               wakes every waiter.
    Mutex:     Go 1.9's two modes.  state = LOCKED | WOKEN | STARVING | waiters << WAITER_SHIFT.
               Normal mode: unlock() releases the mutex and wakes the first waiter, which then
               competes for it with goroutines arriving meanwhile (a goroutine that unlocks and
               locks again usually keeps it: no cross-M wakeup per lock); a woken waiter that loses
               waits again first in line.  A waiter that has waited more than 1 ms
               (STARVATION_NS) turns starvation mode on: unlock() hands the mutex to the first
               waiter, arrivals queue behind; the mode ends with a waiter that waited less, or the
               last one.  Every word is read and written under the object's lock, so Go's CAS loops
               are plain updates, and a waiter is queued in the same hold that counts it.
    RWMutex:   Go 1.9's: readers counted (less MAXREADERS while a writer holds or waits: new
               readers queue behind it, the writer preferred), the departing readers a pending
               writer waits for, a queue for each side, and a Mutex the writers take first.
    Cond:      Go 1.9's notifyList: a ticket taken before wait() unlocks L, the next ticket to
               wake; signal() wakes the oldest ticket (a waiter that has not parked yet finds
               itself signalled and does not park), broadcast() every one.
All park the goroutine, never the M, and work across Ms.  WaitGroup.done's common case (the
counter stays above zero) is in C where it was built (csched.wg_done), under the same lock.
"""
import random
import sys

import numpy as np

from ..panic import Panic
from ..settings import load_accel
from ..shm import malloc
from ..shm.ptr import Ptr
from ..shm.types import struct
from . import chan, mprof, msg, mstate, proc, stw
from .ctl import G_WAITSINCE, M_PREEMPT, NONE, S_ATTN, S_MUTEXRATE, SG_CASEI, SG_G, SG_NEXT, W_SEMACQUIRE


@struct
class semaobj:
    state: np.int64
    waitq_head: np.int64
    waitq_tail: np.int64


STATE, WAITQ = 0, 1
LOCKED, WOKEN, STARVING, WAITER_SHIFT = 1, 2, 4, 3     # a Mutex's state (Go's mutexLocked, ...)
WAITER = 1 << WAITER_SHIFT
STARVATION_NS = 1_000_000                               # Go's starvationThresholdNs


def _park_on(m, hq, qw, obj, lk, ticket=None, first=False):
    """Queue the calling goroutine on the wait queue at word qw of object obj (its lock lk held;
    `first`: at the head; `ticket`: kept in its sudog, Cond's), release the lock, park."""
    b = chan.own_sudog(m)
    if ticket is not None:
        m.q[b + SG_CASEI] = ticket
    (chan.enqueue_front if first else chan.enqueue)(m, hq, qw, m.curg, obj)
    proc.park(W_SEMACQUIRE, lk)


def _take_waiters(m, hq, qw, n=None):
    """Take up to n (all: None) goroutines off the wait queue at word qw (the object's lock held):
    their G slots, to ready once the lock is released."""
    out = []
    while n is None or len(out) < n:
        sg = chan.dequeue(m, hq, qw)
        if sg == NONE:
            break
        out.append(m.q[m.ctl.sg(sg) + SG_G])
    return out


def _hold(obj):
    """The current M, the heap's words and obj's lock, taken (obj: a heap sync object of this
    runtime)."""
    m = chan.here(obj)
    lk = chan.objlock(m, obj._a)
    mstate.acq(lk)
    return m, m.heap.mvq, lk


def _ready_all(m, gs):
    for g in gs:
        proc.ready(m, g)


class SemaObject:
    __slots__ = ("_p", "_a", "_w", "_h")
    _wire_fields = __slots__     # what __init__(p) sets: csched.c builds a received handle from them

    def __init__(self, p=None):
        if p is None:
            mstate.current_m()
            p = malloc.new(semaobj, safepoint=False)
        self._p = p
        self._a = p.addr
        self._w = p.addr >> 3
        self._h = p._t.heap

    def __reduce__(self):
        return (type(self), (self._p,))

    def __eq__(self, other):
        return type(other) is type(self) and other._a == self._a

    def __hash__(self):
        return hash((type(self).__name__, self._a))

    def _wait_locked(self, m, lk, first=False):
        """Queue the calling goroutine (lock held; `first`: at the head), release the lock, park."""
        _park_on(m, m.heap.mvq, self._w + WAITQ, self._a, lk, first=first)


class WaitGroup(SemaObject):
    """sync.WaitGroup: add(n), done(), wait()."""

    __slots__ = ()

    def add(self, delta: int) -> None:
        if isinstance(delta, bool) or not isinstance(delta, (int, np.integer)):
            raise TypeError(f"sync.WaitGroup.add: delta {delta!r} is not an integer")
        m = chan.here(self)
        hq = m.heap.mvq
        lk = chan.objlock(m, self._a)
        mstate.acq(lk)
        v = hq[self._w + STATE] + int(delta)
        hq[self._w + STATE] = v
        if v < 0:
            mstate.rel(lk)
            raise Panic("sync: negative WaitGroup counter")
        wake = _take_waiters(m, hq, self._w + WAITQ) if v == 0 else []
        mstate.rel(lk)
        _ready_all(m, wake)
        stw.check_safepoint(m)

    def done(self) -> None:
        if _cdone is not None and _cdone(self):
            return          # the common case, in C where it was built (csched.wg_done)
        m = chan.here(self)
        hq = m.heap.mvq
        w = self._w
        lk = chan.objlock(m, self._a)
        mstate.acq(lk)
        v = hq[w + STATE] - 1
        hq[w + STATE] = v
        if v > 0:
            mstate.rel(lk)
            stw.check_safepoint(m)
            return
        hq[w + STATE] = v + 1
        mstate.rel(lk)
        self.add(-1)       # reaching zero (or below): the general path

    def wait(self) -> None:
        m = chan.here(self)
        lk = chan.objlock(m, self._a)
        mstate.acq(lk)
        if m.heap.mvq[self._w + STATE] == 0:
            mstate.rel(lk)
            stw.check_safepoint(m)
            return
        self._wait_locked(m, lk)

    def __repr__(self):
        return f"<sync.WaitGroup {self._a:#x}>"


class Mutex(SemaObject):
    """sync.Mutex: lock(), unlock(); a context manager."""

    __slots__ = ()

    def lock(self) -> None:
        m = chan.here(self)
        hq = m.heap.mvq
        w = self._w + STATE
        lk = chan.objlock(m, self._a)
        since, starving, awoke = 0, False, False
        while True:
            mstate.acq(lk)
            old = hq[w]
            new = old if old & STARVING else old | LOCKED    # a starving mutex is handed, not taken
            if old & (LOCKED | STARVING):
                new += WAITER
                if starving and old & LOCKED:
                    new |= STARVING
            if awoke:
                new &= ~WOKEN
            hq[w] = new
            if not old & (LOCKED | STARVING):
                mstate.rel(lk)
                stw.check_safepoint(m)
                return
            first = since != 0
            if not since:
                since = mstate.nanotime()
            self._wait_locked(m, lk, first)
            starving = starving or mstate.nanotime() - since > STARVATION_NS
            mstate.acq(lk)
            old = hq[w]
            if old & STARVING:
                # handed to us (unlock in starvation mode left it counted as ours)
                new = old + LOCKED - WAITER
                if not starving or old >> WAITER_SHIFT == 1:
                    new &= ~STARVING                          # the mode ends
                hq[w] = new
                mstate.rel(lk)
                stw.check_safepoint(m)
                return
            mstate.rel(lk)
            awoke = True

    def unlock(self) -> None:
        m = chan.here(self)
        hq = m.heap.mvq
        w = self._w + STATE
        lk = chan.objlock(m, self._a)
        mstate.acq(lk)
        old = hq[w]
        if not old & LOCKED:
            mstate.rel(lk)
            mstate.fatal("sync: unlock of unlocked mutex")
        new = old & ~LOCKED
        if not new & STARVING:
            if new >> WAITER_SHIFT == 0 or new & WOKEN:
                hq[w] = new               # no waiter, or one is awake already and will compete
                mstate.rel(lk)
                stw.check_safepoint(m)
                return
            new = (new - WAITER) | WOKEN
        hq[w] = new                       # starving: the waiter takes it (and its count) on waking
        sg = chan.dequeue(m, hq, self._w + WAITQ)
        g = NONE if sg == NONE else m.q[m.ctl.sg(sg) + SG_G]
        mstate.rel(lk)
        if g == NONE:
            mstate.fatal(f"sync: mutex state {old:#x} counts waiters its queue does not have")
        rate = m.q[m.ctl.sched + S_MUTEXRATE]
        if rate > 0 and random.randrange(rate) == 0:
            t = mstate.nanotime() - m.q[m.ctl.g(g) + G_WAITSINCE]
            mprof.record_event(m, mprof.MUTEX, t, sys._getframe(0))
        proc.ready(m, g)
        stw.check_safepoint(m)

    def __enter__(self):
        self.lock()
        return self

    def __exit__(self, *exc):
        self.unlock()

    def __repr__(self):
        return f"<sync.Mutex {self._a:#x}>"


@struct
class rwobj:
    readers: np.int64        # Go's readerCount: readers holding or waiting, less MAXREADERS while a writer is
    departing: np.int64      # Go's readerWait: readers the pending writer still waits for
    rwait_head: np.int64     # readers waiting for the writer
    rwait_tail: np.int64
    wwait_head: np.int64     # the writer waiting for the readers
    wwait_tail: np.int64
    w: Ptr                   # the writers' Mutex


READERS, DEPARTING, RWAITQ, WWAITQ = 0, 1, 2, 4
MAXREADERS = 1 << 30                                    # Go's rwmutexMaxReaders


class RWMutex:
    """sync.RWMutex (Go 1.9's): lock/unlock for one writer, rlock/runlock for many readers, and a
    writer preferred: once a writer waits in lock(), new readers wait behind it.  Go's atomic
    counters and semaphores are words and wait queues of one heap object under its lock; the
    writers queue on a Mutex first, as Go's do."""

    __slots__ = ("_p", "_a", "_w", "_h", "_mu")
    _wire_fields = ()

    def __init__(self, p=None):
        if p is None:
            mstate.current_m()
            p = malloc.new(rwobj, safepoint=False)
            p.w = Mutex()._p
        self._p = p
        self._a = p.addr
        self._w = p.addr >> 3
        self._h = p._t.heap
        self._mu = Mutex(p.w)

    def __reduce__(self):
        return (RWMutex, (self._p,))

    def __eq__(self, other):
        return type(other) is RWMutex and other._a == self._a

    def __hash__(self):
        return hash(("RWMutex", self._a))

    def rlock(self) -> None:
        m, hq, lk = _hold(self)
        hq[self._w + READERS] += 1
        if hq[self._w + READERS] < 0:          # a writer holds or waits: queue behind it
            _park_on(m, hq, self._w + RWAITQ, self._a, lk)   # woken holding the read lock (unlock counted us)
            return
        mstate.rel(lk)
        stw.check_safepoint(m)

    def runlock(self) -> None:
        m, hq, lk = _hold(self)
        r = hq[self._w + READERS] - 1
        hq[self._w + READERS] = r
        wake = []
        if r < 0:
            if r + 1 == 0 or r + 1 == -MAXREADERS:
                mstate.rel(lk)
                mstate.fatal("sync: RUnlock of unlocked RWMutex")
            hq[self._w + DEPARTING] -= 1
            if hq[self._w + DEPARTING] == 0:   # the last reader the writer waits for
                wake = _take_waiters(m, hq, self._w + WWAITQ, 1)
        mstate.rel(lk)
        _ready_all(m, wake)
        stw.check_safepoint(m)

    def lock(self) -> None:
        self._mu.lock()                         # one writer at a time
        m, hq, lk = _hold(self)
        r = hq[self._w + READERS]
        hq[self._w + READERS] = r - MAXREADERS  # readers arriving from now on wait
        if r != 0:
            hq[self._w + DEPARTING] += r
            if hq[self._w + DEPARTING] != 0:
                _park_on(m, hq, self._w + WWAITQ, self._a, lk)   # woken by the last reader's runlock
                return
        mstate.rel(lk)
        stw.check_safepoint(m)

    def unlock(self) -> None:
        m, hq, lk = _hold(self)
        r = hq[self._w + READERS] + MAXREADERS
        if r >= MAXREADERS:
            mstate.rel(lk)
            mstate.fatal("sync: Unlock of unlocked RWMutex")
        hq[self._w + READERS] = r
        wake = _take_waiters(m, hq, self._w + RWAITQ, r)   # the readers queued behind us, readers now
        mstate.rel(lk)
        _ready_all(m, wake)
        self._mu.unlock()

    def rlocker(self) -> "RLocker":
        """A Locker whose lock/unlock are rlock/runlock (Go's RLocker)."""
        return RLocker(self)

    def __enter__(self):
        self.lock()
        return self

    def __exit__(self, *exc):
        self.unlock()

    def __repr__(self):
        return f"<sync.RWMutex {self._a:#x}>"


class RLocker:
    """rw.rlocker(): lock() and unlock() are rw.rlock() and rw.runlock()."""

    __slots__ = ("rw",)

    def __init__(self, rw):
        self.rw = rw

    def __reduce__(self):
        return (RLocker, (self.rw,))

    def lock(self) -> None:
        self.rw.rlock()

    def unlock(self) -> None:
        self.rw.runlock()

    def __enter__(self):
        self.rw.rlock()
        return self

    def __exit__(self, *exc):
        self.rw.runlock()


@struct
class notifyobj:
    wait: np.int64           # the next waiter's ticket (Go's notifyList.wait)
    notify: np.int64         # the next ticket to wake (notifyList.notify)
    waitq_head: np.int64
    waitq_tail: np.int64


WAIT, NOTIFY, NWAITQ = 0, 1, 2


class Cond:
    """sync.Cond(L) (Go 1.9's, over its notifyList): wait(), signal(), broadcast(); L is any Locker
    (a Mutex, an RWMutex, rw.rlocker()).  wait() takes a ticket before it unlocks L, so a signal
    between the unlock and the wait is not lost: it wakes the oldest ticket, waiting or not yet."""

    __slots__ = ("_p", "_a", "_w", "_h", "L")
    _wire_fields = ()

    def __init__(self, L, p=None):
        if not (callable(getattr(L, "lock", None)) and callable(getattr(L, "unlock", None))):
            raise TypeError(f"sync.Cond: {L!r} is not a Locker (it needs lock() and unlock())")
        if p is None:
            mstate.current_m()
            p = malloc.new(notifyobj, safepoint=False)
        self.L = L
        self._p = p
        self._a = p.addr
        self._w = p.addr >> 3
        self._h = p._t.heap

    def __reduce__(self):
        return (_cond, (self.L, self._p))

    def wait(self) -> None:
        m, hq, lk = _hold(self)
        t = hq[self._w + WAIT]
        hq[self._w + WAIT] = t + 1
        mstate.rel(lk)
        self.L.unlock()
        mstate.acq(lk)
        if t < hq[self._w + NOTIFY]:             # signalled since it took its ticket
            mstate.rel(lk)
            stw.check_safepoint(m)
        else:
            _park_on(m, hq, self._w + NWAITQ, self._a, lk, ticket=t)
        self.L.lock()

    def signal(self) -> None:
        m, hq, lk = _hold(self)
        t = hq[self._w + NOTIFY]
        g = NONE
        if t != hq[self._w + WAIT]:
            hq[self._w + NOTIFY] = t + 1
            sg = hq[self._w + NWAITQ] - 1
            while sg != NONE:                     # the waiter holding ticket t, if it waits yet
                b = m.ctl.sg(sg)
                if m.q[b + SG_CASEI] == t:
                    chan._unlink(m, hq, self._w + NWAITQ, sg)
                    g = m.q[b + SG_G]
                    break
                sg = m.q[b + SG_NEXT]
        mstate.rel(lk)
        if g != NONE:
            proc.ready(m, g)
        stw.check_safepoint(m)

    def broadcast(self) -> None:
        m, hq, lk = _hold(self)
        hq[self._w + NOTIFY] = hq[self._w + WAIT]
        wake = _take_waiters(m, hq, self._w + NWAITQ)
        mstate.rel(lk)
        _ready_all(m, wake)
        stw.check_safepoint(m)

    def __repr__(self):
        return f"<sync.Cond {self._a:#x}>"


def _cond(L, p):
    return Cond(L, p)


msg.register_handle_type(SemaObject)

_csched = load_accel("mprt.sched.csched")
_cdone = None
if _csched is not None:
    _csched.setup_wg(chan.NLOCKS, STATE, S_ATTN, M_PREEMPT, stw.check_safepoint)
    _cdone = _csched.wg_done
msg.register_wire_type(2, WaitGroup)
msg.register_wire_type(3, Mutex)

from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
