"""Finalizers: runtime.SetFinalizer, and the one goroutine that runs them (Go's mfinal.go).

Two tables in the heap segment, both under the finalizer lock (`lock.fin`):
  specials  (object, finalizer) pairs set and not yet run.  The finalizer is a heap message
            (msg.py: the pickled function and the heap objects it captures), so a finalizer that
            captures its own object keeps it alive for ever, as a Go closure would.
  finq      pairs queued by the collector for the finalizer goroutine, oldest first.

At mark start and mark termination the collector takes as roots every finalizer message, every
queued pair, and what each object with a finalizer points to, but not the object itself
(`roots`, `special_children`).  So if A points to B and both have finalizers, B stays marked while
A lives: only A's finalizer runs this cycle; and objects on a cycle through a finalizer keep each
other marked and are never finalized, as in Go.  At mark termination, a finalizable object left
white is queued, taken out of specials and marked again so that it survives to be finalized
(`queue_unreachable`); the next cycle frees it unless the finalizer stored it somewhere.

The finalizer goroutine starts with the first SetFinalizer (from that goroutine's M, like any
goroutine) and then runs all finalizers, one after another: it takes the whole queue, makes each
object a Ptr and each finalizer a function while it holds the lock (so no cycle can start between
taking an address and holding it), runs them, and parks with wait reason "finalizer wait" when the
queue is empty; the coordinator readies it after a cycle that queued something.  While it waits it
is a system goroutine: NumGoroutine and the "no goroutines" check leave it out.  A finalizer that
raises is a panic of that goroutine and ends the program as any unrecovered panic does.
"""
import numpy as np
import posix_ipc

from ..sched import msg, mstate, proc
from ..sched.ctl import W_FINALIZER
from ..shm.layout import (
    BLACK,
    GC_FING,
    GC_FINGRUNNING,
    GC_FINGWAIT,
    GC_NFINQ,
    GC_NSPECIAL,
    MAXFINQ,
    MAXSPECIALS,
)
from ..shm.mbarrier import mark_indices
from ..shm.ptr import Ptr
from ..shm.segment import Lock, shm_name
from .mgcmark import object_children

_locks = {}


def fin_lock(h):
    lk = _locks.get(h.rtid)
    if lk is None:
        name = shm_name(h.rtid, "lock.fin")
        posix_ipc.Semaphore(name, posix_ipc.O_CREAT, mode=0o600, initial_value=1).close()
        lk = _locks[h.rtid] = Lock(name)
    return lk


def _tables(h):
    return h.specials.reshape(MAXSPECIALS, 2), h.finq.reshape(MAXFINQ, 2)


def _fatal(text):
    mstate.fatal("runtime.SetFinalizer: " + text)


def set_finalizer(obj, fn):
    """runtime.SetFinalizer(obj, fn); fn None removes obj's finalizer."""
    if obj is None:
        _fatal("first argument is nil")
    if not isinstance(obj, Ptr):
        _fatal(f"first argument is {type(obj).__name__}, not pointer")
    h = obj._t.heap
    m = mstate.current_m()
    if not h.alive:
        _fatal("pointer not in allocated block")
    a = obj._a
    f = h.find_object(a)
    if f is None:
        _fatal("pointer not in allocated block")
    if f[2] != a:
        _fatal("pointer not at beginning of allocated block")
    if fn is not None and not callable(fn):
        _fatal(f"second argument is {type(fn).__name__}, not a function")
    spec, _ = _tables(h)
    gc = h.gc
    data = ptrs = None
    if fn is not None:
        data, ptrs = msg.encode(fn, "the finalizer")
    lk = fin_lock(h)
    mstate.acq(lk)
    try:
        n = int(gc[GC_NSPECIAL])
        hit = np.flatnonzero(spec[:n, 0] == a)
        if fn is None:
            if len(hit):
                i = int(hit[0])
                old = int(spec[i, 1])
                spec[i] = spec[n - 1]
                spec[n - 1] = 0
                gc[GC_NSPECIAL] = n - 1
                msg.forget(old)
            return
        if len(hit):
            mstate.rel(lk)
            lk = None
            _fatal("finalizer already set")
        if n >= MAXSPECIALS:
            raise MemoryError(f"mprt: more than {MAXSPECIALS} finalizers set at once")
        spec[n, 0] = a
        msg.store_message(spec[n], 1, data, ptrs)
        gc[GC_NSPECIAL] = n + 1
        start = gc[GC_FING] == 0
        if start:
            gc[GC_FING] = -1          # being started
    finally:
        if lk is not None:
            mstate.rel(lk)
    if start:
        proc.go(_runfinq)
    del m


# ---- the collector's side (coordinator, world stopped) ----

def any_specials(h):
    """Whether any finalizer is set or queued (else roots and special_children are empty)."""
    return bool(h.gc[GC_NSPECIAL] or h.gc[GC_NFINQ])


def roots(h):
    """Finalizer messages, and the objects and messages of queued finalizers."""
    spec, finq = _tables(h)
    n, k = int(h.gc[GC_NSPECIAL]), int(h.gc[GC_NFINQ])
    return np.concatenate([spec[:n, 1], finq[:k, 0], finq[:k, 1]])


def special_children(h):
    """What finalizable objects point to (not the objects)."""
    spec, _ = _tables(h)
    n = int(h.gc[GC_NSPECIAL])
    if not n:
        return np.zeros(0, dtype=np.int64)
    return object_children(h, spec[:n, 0].copy())


def queue_unreachable(h, marker):
    """Queue the finalizers of white objects (they are marked, to live until finalized).
    Returns how many were queued."""
    gc = h.gc
    n = int(gc[GC_NSPECIAL])
    if not n:
        return 0
    spec, finq = _tables(h)
    objs = spec[:n, 0].copy()
    idx, _, _ = mark_indices(h, objs)
    white = h.hu8n[idx] != BLACK
    if not white.any():
        return 0
    k = int(gc[GC_NFINQ])
    w = np.flatnonzero(white)
    take = min(len(w), MAXFINQ - k)
    w = w[:take]
    finq[k:k + take] = spec[w]
    keep = np.ones(n, dtype=bool)
    keep[w] = False
    rest = spec[:n][keep].copy()
    spec[:len(rest)] = rest
    spec[len(rest):n] = 0
    gc[GC_NSPECIAL] = len(rest)
    gc[GC_NFINQ] = k + take
    marker.blacken(objs[w])
    return take


def wake_fing(sm, h):
    """The coordinator: ready the finalizer goroutine if it waits and something is queued."""
    lk = fin_lock(h)
    mstate.acq(lk)
    g = -1
    if h.gc[GC_FINGWAIT] and h.gc[GC_NFINQ]:
        h.gc[GC_FINGWAIT] = 0
        g = int(h.gc[GC_FING]) - 1
    mstate.rel(lk)
    if g >= 0:
        proc.ready(sm, g)


# ---- the finalizer goroutine ----

def _runfinq():
    m = mstate.current_m()
    h = m.heap
    gc = h.gc
    gc[GC_FING] = m.curg + 1
    _, finq = _tables(h)
    lk = fin_lock(h)
    while True:
        mstate.acq(lk)
        k = int(gc[GC_NFINQ])
        if not k:
            gc[GC_FINGWAIT] = 1
            gc[GC_FINGRUNNING] = 0
            proc.park(W_FINALIZER, unlock=lk)
            continue
        gc[GC_FINGRUNNING] = 1
        try:
            batch = [(h.ptr_at(int(o)), msg.decode_addr(int(f))) for o, f in finq[:k].tolist()]
            finq[:k] = 0
            gc[GC_NFINQ] = 0
        finally:
            mstate.rel(lk)
        for obj, fn in batch:
            fn(obj)
        del batch, obj, fn


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
