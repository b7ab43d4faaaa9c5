"""Channels and select (Go's chan.go and select.go), usable from every goroutine on every M.

A channel is a heap object (hchan), so it lives as long as some Ptr to it does, anywhere:

    hchan  qcount dataqsiz closed sendx recvx | recvq head/tail, sendq head/tail (sudog rows)
           bufb -> uint8 slice: dataqsiz slots of SLOT bytes (length word, address word, inline bytes)
           bufp -> pointer slice: dataqsiz words, the heap message of each slot (msg.py), for tracing

Every field is guarded by the channel's lock: one of NLOCKS semaphores, chosen by the hchan's
address.  Invariants (with the lock): at least one of recvq and sendq is empty; qcount > 0 implies
recvq is empty; qcount < dataqsiz implies sendq is empty.

A sudog (a row of the control segment) is a goroutine waiting on one channel (or sync object): it
carries the element being sent or the slot the received one is written to.  A select enqueues one
sudog per case; the first waker to claim the goroutine (G_SELDONE, tested and set with the sched
lock) wins and records the winning sudog in G_PARAM; other wakers skip its sudogs.  select takes the
locks of all its channels in lock-index order; nothing else holds two channel locks.

Directional views (Go's chan<- T and <-chan T): ch.send_only() and ch.recv_only() are SendChan and
RecvChan, thin wrappers of the same Chan that refuse the other direction's operations with a
TypeError (Go refuses them at compile time), travel as views, and compare equal to their channel.
"""
import pickle
import random
from collections.abc import Iterator
from typing import Any, NoReturn

import numpy as np

from ..errors import Error, NoRuntime, PlainError
from ..shm import malloc
from ..shm.ptr import Ptr
from ..shm.segment import Lock, shm_name
from ..shm.types import struct
from . import msg, mstate, proc, schedule, stw
from .ctl import (
    G_PARAM,
    G_SELDONE,
    NONE,
    SG_CASEI,
    SG_ELEMLEN,
    SG_G,
    SG_INLINE,
    SG_INLINE_BYTES,
    SG_ISSELECT,
    SG_NEXT,
    SG_OBJ,
    SG_PREV,
    SG_SUCCESS,
    SG_WORDS,
    W_CHANRECV,
    W_CHANSEND,
    W_SELECT,
    W_SELECTNOCASES,
)

_PLAIN = msg.PLAIN
_dumps = pickle.dumps
_loads = pickle.loads
NLOCKS = 64
SLOT = 16 + SG_INLINE_BYTES     # a buffer slot holds what a sudog holds


@struct
class hchan:
    qcount: np.int64
    dataqsiz: np.int64
    closed: np.int64
    sendx: np.int64
    recvx: np.int64
    recvq_head: np.int64
    recvq_tail: np.int64
    sendq_head: np.int64
    sendq_tail: np.int64
    bufb: Ptr
    bufp: Ptr


# word offsets in an hchan
QCOUNT, DATAQSIZ, CLOSED, SENDX, RECVX, RECVQ, RECVQ_T, SENDQ, SENDQ_T, BUFB, BUFP = range(11)


def _plain_error(msg_):
    return PlainError(msg_)


def objlock(m, addr):
    """The lock guarding the heap object at addr (a channel or a sync object)."""
    i = (addr >> 4) % NLOCKS
    lk = m.plocks.get(("o", i))
    if lk is None:
        lk = m.plocks[("o", i)] = Lock(shm_name(m.rtid, f"lock.o{i}"))
    return lk


def lock_index(addr):
    return (addr >> 4) % NLOCKS


# ---- sudogs ----

def sudog_get(m, g):
    if not m.sgfree:
        schedule.SUDOGS.refill(m, m.sgfree)
    sg = m.sgfree.pop()
    q, b = m.q, m.ctl.sg(sg)
    q[b + SG_G] = g
    q[b + SG_NEXT] = q[b + SG_PREV] = NONE
    q[b + SG_OBJ] = 0
    q[b + SG_ISSELECT] = 0
    q[b + SG_SUCCESS] = 0
    q[b + SG_ELEMLEN] = 0
    q[b + SG_ELEMLEN + 1] = 0
    return sg


def sudog_put(m, sg):
    schedule.SUDOGS.put(m, m.sgfree, sg)


def enqueue(m, hq, w, sg, obj):
    """Append sudog sg to the wait queue whose head word is hq[w] (tail hq[w+1])."""
    q, base = m.q, m.ctl.sgbase
    b = base + sg * SG_WORDS
    q[b + SG_OBJ] = obj
    q[b + SG_NEXT] = NONE
    t = hq[w + 1] - 1
    q[b + SG_PREV] = t
    if t == NONE:
        hq[w] = sg + 1
    else:
        q[base + t * SG_WORDS + SG_NEXT] = sg
    hq[w + 1] = sg + 1


def enqueue_front(m, hq, w, sg, obj):
    """Put sudog sg first in the wait queue whose head word is hq[w] (a woken mutex waiter that
    lost the mutex again waits first: Go's queueLifo)."""
    q, base = m.q, m.ctl.sgbase
    b = base + sg * SG_WORDS
    q[b + SG_OBJ] = obj
    q[b + SG_PREV] = NONE
    h = hq[w] - 1
    q[b + SG_NEXT] = h
    if h == NONE:
        hq[w + 1] = sg + 1
    else:
        q[base + h * SG_WORDS + SG_PREV] = sg
    hq[w] = sg + 1


def _unlink(m, hq, w, sg):
    q, ctl = m.q, m.ctl
    b = ctl.sg(sg)
    prev, nxt = q[b + SG_PREV], q[b + SG_NEXT]
    if prev == NONE:
        hq[w] = nxt + 1
    else:
        q[ctl.sg(prev) + SG_NEXT] = nxt
    if nxt == NONE:
        hq[w + 1] = prev + 1
    else:
        q[ctl.sg(nxt) + SG_PREV] = prev
    q[b + SG_OBJ] = 0
    q[b + SG_NEXT] = q[b + SG_PREV] = NONE


def dequeue(m, hq, w):
    """Take the first sudog whose goroutine can be woken (a select already won elsewhere is
    skipped); NONE if there is none.  (Queue words store sudog + 1, so 0 is empty.)"""
    q, ctl = m.q, m.ctl
    while True:
        sg = hq[w] - 1
        if sg == NONE:
            return NONE
        b = ctl.sgbase + sg * SG_WORDS
        # unlink the head
        nxt = q[b + SG_NEXT]
        hq[w] = nxt + 1
        if nxt == NONE:
            hq[w + 1] = 0
        else:
            q[ctl.sgbase + nxt * SG_WORDS + SG_PREV] = NONE
        q[b + SG_OBJ] = 0
        q[b + SG_NEXT] = NONE
        if not q[b + SG_ISSELECT]:
            return sg
        mstate.acq(m.schedlock)
        gr = ctl.g(q[b + SG_G])
        won = not q[gr + G_SELDONE]
        if won:
            q[gr + G_SELDONE] = 1
            q[gr + G_PARAM] = sg
        mstate.rel(m.schedlock)
        if won:
            return sg


def _sg_slot(m, sg):
    b = m.ctl.sg(sg)
    return b + SG_ELEMLEN, (b + SG_INLINE) * 8


def own_sudog(m):
    """The calling goroutine's own sudog (row g), reset for one wait; returns its row's base.  A
    goroutine waits on one thing at a time unless it selects (select takes pool sudogs)."""
    g = m.curg
    q = m.q
    b = m.ctl.sgbase + g * SG_WORDS
    q[b + SG_G] = g
    q[b + SG_ISSELECT] = 0
    q[b + SG_SUCCESS] = 0
    q[b + SG_ELEMLEN] = 0
    return b


def _give(m, sg, data, ptrs):
    """Hand an encoded value to the receiver waiting in sudog sg (its channel's lock held); returns
    the goroutine to ready once the lock is released."""
    q = m.q
    b = m.ctl.sgbase + sg * SG_WORDS
    msg.put(m.mv8, q, b + SG_ELEMLEN, (b + SG_INLINE) * 8, SG_INLINE_BYTES, data, ptrs)
    q[b + SG_SUCCESS] = 1
    return q[b + SG_G]


# ---- channels ----

class Chan:
    """A Go channel.  Make one with mprt.chan(cap)."""

    __slots__ = ("_p", "_a", "_w", "_lk", "_hq", "_h")
    _wire_fields = __slots__     # what __init__(p) sets: csched.c builds a received handle from them

    def __init__(self, p):
        self._p = p
        self._a = p.addr
        self._w = p.addr >> 3
        self._lk = None
        self._h = p._t.heap
        self._hq = self._h.mvq

    @property
    def cap(self) -> int:
        here(self)
        return self._hq[self._w + DATAQSIZ]

    def __len__(self) -> int:
        here(self)
        return self._hq[self._w + QCOUNT]

    def __eq__(self, other):
        # a view compares equal to its channel, as Go's chan<- T to the chan T it was assigned from
        return isinstance(other, (Chan, SendChan, RecvChan)) and other._a == self._a

    def __hash__(self):
        return hash(("chan", self._a))

    def send_only(self) -> "SendChan":
        """A view that can only send (and close): Go's chan<- T."""
        return SendChan(self)

    def recv_only(self) -> "RecvChan":
        """A view that can only receive: Go's <-chan T."""
        return RecvChan(self)

    def __repr__(self):
        m = mstate.current_m_or_none()
        if m is None or m.heap is not self._h:
            return f"<mprt.Chan {self._a:#x} of ended runtime {self._h.rtid}>"
        return f"<mprt.Chan {self._a:#x} cap={self.cap}>"

    def __reduce__(self):
        return (Chan, (self._p,))

    def __iter__(self) -> Iterator[Any]:
        while True:
            v, ok = self.recv2()
            if not ok:
                return
            yield v

    def send(self, v: object) -> None:
        m = here(self)
        if type(v) in _PLAIN:
            data, ptrs = _dumps(v, 5), ()
        else:
            data, ptrs = msg.encode_value(v, "a value on a channel")
        hq = self._hq
        w = self._w
        lk = self._lk or self._lock(m)
        mstate.acq(lk)
        if hq[w + CLOSED]:
            mstate.rel(lk)
            raise _plain_error("send on closed channel")
        q = m.q
        if hq[w + RECVQ]:
            sg = dequeue(m, hq, w + RECVQ)
            if sg != NONE:
                g = _give(m, sg, data, ptrs)
                mstate.rel(lk)
                proc.ready(m, g)
                stw.check_safepoint(m)
                return
        n = hq[w + QCOUNT]
        if n < hq[w + DATAQSIZ]:
            _buf_put(m.heap, hq, w, data, ptrs)
            hq[w + QCOUNT] = n + 1
            mstate.rel(lk)
            stw.check_safepoint(m)
            return
        b = own_sudog(m)
        msg.put(m.mv8, q, b + SG_ELEMLEN, (b + SG_INLINE) * 8, SG_INLINE_BYTES, data, ptrs)
        enqueue(m, hq, w + SENDQ, m.curg, self._a)
        proc.park(W_CHANSEND, lk)
        if not q[b + SG_SUCCESS]:
            msg.drop(q, b + SG_ELEMLEN)
            raise _plain_error("send on closed channel")

    def _lock(self, m):
        self._lk = objlock(m, self._a)
        return self._lk

    def recv(self) -> Any:
        return self.recv2()[0]

    def recv2(self) -> tuple[Any, bool]:
        m = here(self)
        hq = self._hq
        w = self._w
        lk = self._lk or self._lock(m)
        mstate.acq(lk)
        q = m.q
        if hq[w + SENDQ] or hq[w + QCOUNT] or hq[w + CLOSED]:
            raw, ok = _recv_locked(m, m.heap, hq, w)
            mstate.rel(lk)
            stw.check_safepoint(m)
            if not ok:
                return None, False
            return (_loads(raw) if type(raw) is bytes else msg.decode(raw)), True
        b = own_sudog(m)
        enqueue(m, hq, w + RECVQ, m.curg, self._a)
        proc.park(W_CHANRECV, lk)
        if not q[b + SG_SUCCESS]:
            return None, False
        n = q[b + SG_ELEMLEN]
        if n >= 0:
            o = (b + SG_INLINE) * 8
            return _loads(m.mv8[o:o + n]), True
        return msg.load(m.mv8, q, b + SG_ELEMLEN, (b + SG_INLINE) * 8), True

    def close(self) -> None:
        m = here(self)
        hq = self._hq
        w = self._w
        lk = self._lk or self._lock(m)
        mstate.acq(lk)
        if hq[w + CLOSED]:
            mstate.rel(lk)
            raise _plain_error("close of closed channel")
        hq[w + CLOSED] = 1
        wake = []
        for qw in (RECVQ, SENDQ):
            while True:
                sg = dequeue(m, hq, w + qw)
                if sg == NONE:
                    break
                b = m.ctl.sg(sg)
                m.q[b + SG_SUCCESS] = 0
                wake.append(m.q[b + SG_G])
        mstate.rel(lk)
        for g in wake:
            proc.ready(m, g)
        stw.check_safepoint(m)


class _View:
    """A directional view of a channel (Go's chan<- T and <-chan T): the same channel, with the
    operations of the other direction refused (Go refuses them when it compiles; here they raise
    TypeError when called).  Views travel wherever a channel does (goroutine arguments, channel
    values) and stay views; a view compares equal to its channel."""

    __slots__ = ("_c",)

    def __init__(self, c):
        if isinstance(c, _View):
            c = c._c
        if not isinstance(c, Chan):
            raise TypeError(f"mprt: {type(self).__name__} of {c!r}, which is not a channel")
        self._c = c

    @property
    def _a(self):
        return self._c._a

    @property
    def _h(self):
        return self._c._h

    @property
    def cap(self) -> int:
        return self._c.cap

    def __len__(self) -> int:
        return len(self._c)

    def __eq__(self, other):
        return isinstance(other, (Chan, _View)) and other._a == self._c._a

    def __hash__(self):
        return hash(("chan", self._c._a))

    def __reduce__(self):
        return (type(self), (self._c,))

    def _refuse(self, what: str) -> NoReturn:
        raise TypeError(f"invalid operation: {what} ({self._kind})")


class SendChan(_View):
    """A send-only view of a channel (Go's chan<- T), made by ch.send_only(): send, close, len, cap;
    (v.send, value) is a select case."""

    __slots__ = ()
    _kind = "send-only channel, chan<-"

    def send(self, v: object) -> None:
        self._c.send(v)

    def close(self) -> None:
        self._c.close()

    def send_only(self) -> "SendChan":
        return self

    def recv(self) -> NoReturn:
        self._refuse("receive from send-only channel")

    def recv2(self) -> NoReturn:
        self._refuse("receive from send-only channel")

    def __iter__(self) -> NoReturn:
        self._refuse("range over send-only channel")

    def recv_only(self) -> NoReturn:
        self._refuse("cannot convert a send-only channel to receive-only")

    def __repr__(self):
        return f"<mprt.SendChan of {self._c!r}>"


class RecvChan(_View):
    """A receive-only view of a channel (Go's <-chan T), made by ch.recv_only(): recv, recv2,
    `for v in view`, len, cap; v.recv is a select case."""

    __slots__ = ()
    _kind = "receive-only channel, <-chan"

    def recv(self) -> Any:
        return self._c.recv()

    def recv2(self) -> tuple[Any, bool]:
        return self._c.recv2()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._c)

    def recv_only(self) -> "RecvChan":
        return self

    def send(self, v: object) -> NoReturn:
        self._refuse("send to receive-only channel")

    def close(self) -> NoReturn:
        self._refuse("cannot close receive-only channel")

    def send_only(self) -> NoReturn:
        self._refuse("cannot convert a receive-only channel to send-only")

    def __repr__(self):
        return f"<mprt.RecvChan of {self._c!r}>"


def _recv_locked(m, h, hq, w):
    """Receive without blocking (lock held): (raw, True), (None, False) when closed and drained, or
    (None, None) when the caller must wait."""
    sg = dequeue(m, hq, w + SENDQ)
    if sg != NONE:
        lw, io = _sg_slot(m, sg)
        if hq[w + DATAQSIZ] == 0:
            raw = msg.take(m.mv8, m.q, lw, io)
        else:
            # the buffer is full: take its head, the sender's element goes to the tail
            raw = _buf_take(h, hq, w)
            _buf_put_raw(h, hq, w, msg.take(m.mv8, m.q, lw, io))
        m.q[m.ctl.sg(sg) + SG_SUCCESS] = 1
        proc.ready(m, m.q[m.ctl.sg(sg) + SG_G])
        return raw, True
    n = hq[w + QCOUNT]
    if n > 0:
        raw = _buf_take(h, hq, w)
        hq[w + QCOUNT] = n - 1
        return raw, True
    if hq[w + CLOSED]:
        return None, False
    return None, None


def _slot_words(hq, w, i):
    b = hq[w + BUFB]
    lw = (b + i * SLOT) >> 3
    return lw, b + i * SLOT + 16


def _buf_put(h, hq, w, data, ptrs):
    i = hq[w + SENDX]
    lw, io = _slot_words(hq, w, i)
    msg.put(h.mv["B"], hq, lw, io, SG_INLINE_BYTES, data, ptrs)
    hq[(hq[w + BUFP] >> 3) + i] = hq[lw + 1]
    hq[w + SENDX] = (i + 1) % hq[w + DATAQSIZ]


def _buf_put_raw(h, hq, w, raw):
    i = hq[w + SENDX]
    lw, io = _slot_words(hq, w, i)
    msg.put_raw(h.mv["B"], hq, lw, io, SG_INLINE_BYTES, raw)
    hq[(hq[w + BUFP] >> 3) + i] = hq[lw + 1]
    hq[w + SENDX] = (i + 1) % hq[w + DATAQSIZ]


def _buf_take(h, hq, w):
    i = hq[w + RECVX]
    lw, io = _slot_words(hq, w, i)
    raw = msg.take(h.mv["B"], hq, lw, io)
    hq[(hq[w + BUFP] >> 3) + i] = 0
    hq[w + RECVX] = (i + 1) % hq[w + DATAQSIZ]
    return raw


def make_chan(cap: int = 0) -> Chan:
    """mprt.chan(cap): a channel with a buffer of cap elements."""
    mstate.current_m()
    if isinstance(cap, bool) or not isinstance(cap, (int, np.integer)):
        raise TypeError(f"mprt.chan: capacity {cap!r} is not an integer")
    cap = int(cap)
    if cap < 0 or cap * SLOT > (1 << 40):
        raise Error("makechan: size out of range")
    p = malloc.new(hchan, safepoint=False)
    h = malloc.current()
    w = p.addr >> 3
    h.mvq[w + DATAQSIZ] = cap
    if cap:
        p.bufb = malloc.make(np.uint8, cap * SLOT, safepoint=False)
        p.bufp = malloc.make(Ptr, cap, safepoint=False)
    return Chan(p)


# ---- select ----

_remote_select = None     # cluster mode's select with other nodes' channels (mprt/cluster/node.py)


def set_remote_select(f):
    global _remote_select
    _remote_select = f


class _Default:
    def __repr__(self):
        return "mprt.default"


default = _Default()
RECV, SEND, DEFAULT = 0, 1, 2


def here(obj):
    """The current M, where obj (a channel or sync object) belongs to the runtime running in this
    process: the one owner check of every operation on them."""
    m = mstate.current_m_or_none()
    if m is None or m.heap is not obj._h:
        foreign(obj, m)
    return m


def foreign(obj, m):
    """A channel or sync object used where its runtime is not running: with no runtime in this
    process, or in a later one (its heap has ended: the same address is another object now)."""
    what = f"{type(obj).__name__} {obj._a:#x} of runtime {obj._h.rtid}"
    if m is None:
        raise NoRuntime(f"mprt: {what} used with no runtime running in this process (its runtime has ended)")
    raise RuntimeError(f"mprt: {what} used in runtime {m.rtid}: its runtime has ended in this process, and "
                       f"its channels and sync objects with it")


_RECV_CASES = (Chan.recv, Chan.recv2, RecvChan.recv, RecvChan.recv2)
_SEND_CASES = (Chan.send, SendChan.send)


def _parse(cases):
    out = []
    dflt = -1
    for i, c in enumerate(cases):
        if c is default:
            if dflt >= 0:
                raise ValueError("mprt.select: multiple defaults in select")
            dflt = i
            out.append((DEFAULT, None, None))
        elif getattr(c, "__func__", None) in _RECV_CASES:
            ch = c.__self__
            out.append((RECV, ch._c if isinstance(ch, _View) else ch, None))
        elif isinstance(c, tuple) and len(c) == 2 and getattr(c[0], "__func__", None) in _SEND_CASES:
            ch = c[0].__self__
            out.append((SEND, ch._c if isinstance(ch, _View) else ch, c[1]))
        elif getattr(c, "__func__", None) in (SendChan.recv, SendChan.recv2):
            c.__self__._refuse("receive from send-only channel")
        elif isinstance(c, tuple) and len(c) == 2 and getattr(c[0], "__func__", None) is RecvChan.send:
            c[0].__self__._refuse("send to receive-only channel")
        else:
            raise TypeError(f"mprt.select: case {i} is {c!r}; want ch.recv, (ch.send, value) or mprt.default")
    return out, dflt


def select(*cases: object) -> tuple[int, Any]:
    """Go's select: (index of the case that ran, value received or None)."""
    m = mstate.current_m()
    if not cases:
        proc.park(W_SELECTNOCASES)      # select {}: blocks forever
        raise AssertionError("unreachable")
    try:
        parsed, dflt = _parse(cases)
    except TypeError:
        r = _remote_select(cases) if _remote_select is not None else None
        if r is None:
            raise
        return r
    for _, ch, _ in parsed:
        if ch is not None and ch._h is not m.heap:
            foreign(ch, m)
    enc = {i: msg.encode_value(v, "a value on a channel") for i, (k, _, v) in enumerate(parsed) if k == SEND}
    h = m.heap
    hq = h.mvq
    order = [i for i, c in enumerate(parsed) if c[0] != DEFAULT]
    random.shuffle(order)
    locks = sorted({lock_index(parsed[i][1]._a) for i in order})
    lks = [objlock(m, i << 4) for i in locks]
    for lk in lks:
        mstate.acq(lk)

    def unlock_all():
        for lk in reversed(lks):
            mstate.rel(lk)

    for i in order:
        kind, ch, _ = parsed[i]
        w = ch._w
        if kind == RECV:
            raw, ok = _recv_locked(m, h, hq, w)
            if ok is not None:
                unlock_all()
                return i, (msg.decode(raw) if ok else None)
        else:
            if hq[w + CLOSED]:
                unlock_all()
                raise _plain_error("send on closed channel")
            sg = dequeue(m, hq, w + RECVQ)
            data, ptrs = enc[i]
            if sg != NONE:
                g = _give(m, sg, data, ptrs)
                unlock_all()
                proc.ready(m, g)
                return i, None
            if hq[w + QCOUNT] < hq[w + DATAQSIZ]:
                _buf_put(h, hq, w, data, ptrs)
                hq[w + QCOUNT] += 1
                unlock_all()
                return i, None
    if dflt >= 0:
        unlock_all()
        stw.check_safepoint(m)
        return dflt, None
    # wait on every channel
    g = m.curg
    q, ctl = m.q, m.ctl
    q[ctl.g(g) + G_SELDONE] = 0
    q[ctl.g(g) + G_PARAM] = NONE
    sgs = []
    for i in order:
        kind, ch, _ = parsed[i]
        sg = sudog_get(m, g)
        b = ctl.sg(sg)
        q[b + SG_ISSELECT] = 1
        q[b + SG_CASEI] = i
        if kind == SEND:
            data, ptrs = enc[i]
            msg.put(m.mv8, q, b + SG_ELEMLEN, (b + SG_INLINE) * 8, SG_INLINE_BYTES, data, ptrs)
            enqueue(m, hq, ch._w + SENDQ, sg, ch._a)
        else:
            enqueue(m, hq, ch._w + RECVQ, sg, ch._a)
        sgs.append((sg, kind, ch))
    proc.park(W_SELECT, unlock_all)
    for lk in lks:
        mstate.acq(lk)
    win = q[ctl.g(g) + G_PARAM]
    res = None
    for sg, kind, ch in sgs:
        b = ctl.sg(sg)
        if sg == win:
            res = (q[b + SG_CASEI], kind, q[b + SG_SUCCESS])
        elif q[b + SG_OBJ]:
            _unlink(m, hq, ch._w + (SENDQ if kind == SEND else RECVQ), sg)
        if kind == SEND and sg != win:
            msg.drop(q, b + SG_ELEMLEN)
    unlock_all()
    i, kind, ok = res
    b = ctl.sg(win)
    val = None
    if kind == RECV and ok:
        val = msg.load(m.mv8, q, b + SG_ELEMLEN, (b + SG_INLINE) * 8)
    for sg, _, _ in sgs:
        sudog_put(m, sg)
    if kind == SEND and not ok:
        raise _plain_error("send on closed channel")
    return i, val


msg.register_handle_type(Chan)
msg.register_handle_type(_View)
msg.register_wire_type(1, Chan)

from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
