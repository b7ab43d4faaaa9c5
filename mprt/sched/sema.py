"""sync.WaitGroup and sync.Mutex over heap objects (Go's sema.go, reduced to what they need).

Each is a heap object: a state word and a FIFO of waiting sudogs, guarded by the object's lock
(chan.objlock: the same lock stripes as channels; nothing holds two of them except select).
    WaitGroup: state = the counter.  wait() parks while it is > 0; the add() that brings it to 0
               wakes every waiter.
    Mutex:     state = 1 while locked.  unlock() with waiters hands the mutex straight to the first
               (it stays locked; the waiter wakes owning it), so waiters are served in order.
Both park the goroutine, never the M, and work across Ms.
"""
import random
import sys

import numpy as np

from ..panic import Panic
from ..shm import malloc
from ..shm.types import struct
from . import chan, mprof, msg, mstate, proc, stw
from .ctl import G_WAITSINCE, NONE, S_MUTEXRATE, SG_G, W_SEMACQUIRE


@struct
class semaobj:
    state: np.int64
    waitq_head: np.int64
    waitq_tail: np.int64


STATE, WAITQ = 0, 1


class SemaObject:
    __slots__ = ("_p", "_a", "_w", "_h")

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

    def _wait_locked(self, m, lk):
        """Queue the calling goroutine (lock held), release the lock, park."""
        chan.own_sudog(m)
        chan.enqueue(m, m.heap.mvq, self._w + WAITQ, m.curg, self._a)
        proc.park(W_SEMACQUIRE, lk)


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
        wake = []
        if v == 0:
            while True:
                sg = chan.dequeue(m, hq, self._w + WAITQ)
                if sg == NONE:
                    break
                wake.append(m.q[m.ctl.sg(sg) + SG_G])
        mstate.rel(lk)
        for g in wake:
            proc.ready(m, g)
        stw.check_safepoint(m)

    def done(self) -> None:
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
        lk = chan.objlock(m, self._a)
        mstate.acq(lk)
        if hq[self._w + STATE] == 0:
            hq[self._w + STATE] = 1
            mstate.rel(lk)
            stw.check_safepoint(m)
            return
        self._wait_locked(m, lk)     # woken owning the mutex

    def unlock(self) -> None:
        m = chan.here(self)
        hq = m.heap.mvq
        lk = chan.objlock(m, self._a)
        mstate.acq(lk)
        if hq[self._w + STATE] == 0:
            mstate.rel(lk)
            mstate.fatal("sync: unlock of unlocked mutex")
        sg = chan.dequeue(m, hq, self._w + WAITQ)
        if sg == NONE:
            hq[self._w + STATE] = 0
            mstate.rel(lk)
        else:
            g = m.q[m.ctl.sg(sg) + SG_G]
            mstate.rel(lk)
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


msg.register_handle_type(SemaObject)
msg.register_wire_type(2, WaitGroup)
msg.register_wire_type(3, Mutex)

from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
