"""The runtime's timers (Go 1.9's time.go): one timer goroutine fires every Timer and Ticker of
the program, from every M.

A timer is a heap object, so any goroutine on any M may stop or reset it:

    _timer  state  gen << 1 | 1 while armed, gen << 1 when stopped or fired; every Stop and Reset
                   makes a new gen, so a firing queued for an older one is dropped
            when   monotonic ns of the next firing;  period  ns between a ticker's firings (0: once)
            c      the channel C (buffer 1) its time is sent on, without blocking (Go's sendTime:
                   a slow receiver misses ticks), or 0
            f      for AfterFunc, a channel (buffer 1) holding the function, started in its own
                   goroutine when the timer fires, or 0
    Every change of state, when and period is made under the timer object's lock.

The timer goroutine (Go's timerproc) is started by the first timer; it is a system goroutine
(NumGoroutine and tracebacks leave it out).  It keeps the armed timers in a heap of its own
process; new firings reach it on the `add` channel of its state object (_timers, whose address is
the sched word S_TIMERS, a root of the collector):

    loop: take every (timer, gen, when) queued on add; fire the due ones (a ticker goes back in
          for its next period); then, under the state's lock, if nothing was queued meanwhile:
          state = (gen + 1) << 1 | 1 (asleep), a wakeup of its own M at the next due time, park.

Whoever queues a firing then wakes it if it sleeps: under the state's lock, state -> gen << 1 and
ready it.  The M's own wakeup, when it comes, does the same test (a guarded timer entry,
schedule._fire_timers): exactly one of them readies the goroutine, and the lock, released by park
only once the goroutine waits, means neither can ready it before it has parked.  With no timer
armed it waits with no wakeup at all; with one armed its M's timer keeps checkdead from calling
the program deadlocked, as Go's sleeping timerproc does.
"""
import heapq
import time

import numpy as np

from ..panic import Panic
from ..shm import malloc
from ..shm.ptr import Ptr
from ..shm.types import struct
from . import chan, mstate, proc
from .chan import Chan, default, select
from .ctl import S_TIMERG, S_TIMERS, W_TIMERIDLE
from .schedule import add_timer


@struct
class _timers:
    state: np.int64      # gen << 1 | 1 while the timer goroutine sleeps
    add: Ptr             # the channel firings are queued on


@struct
class _timer:
    state: np.int64
    when: np.int64
    period: np.int64
    c: Ptr
    f: Ptr


ADD_CAP = 1024          # firings queued at once before a new one waits for the timer goroutine
_ST, _WHEN, _PERIOD = 0, 1, 2       # word indices in _timer (and _ST in _timers)


def new_timer(d, period=0, f=None, send=True):
    """A Timer's heap object, armed to fire d seconds from now (then every `period`), its channel
    and function set as asked.  Returns the object (a Ptr)."""
    m = mstate.current_m()
    t = malloc.new(_timer, safepoint=False)
    if send:
        t.c = chan.make_chan(1)._p
    if f is not None:
        fc = chan.make_chan(1)
        fc.send(f)
        t.f = fc._p
    arm(m, t, d, period)
    return t


def _ns(d):
    return int(d * 1e9)


def arm(m, t, d, period=None):
    """Arm timer t to fire d seconds from now (a new gen; period: a ticker's new period, None to
    keep it).  Returns whether it was armed before (Reset's result)."""
    h = m.heap
    w = t.addr >> 3
    q = h.mvq
    lk = chan.objlock(m, t.addr)
    mstate.acq(lk)
    st = int(q[w + _ST])
    gen = (st >> 1) + 1
    when = mstate.nanotime() + max(0, _ns(d))
    q[w + _ST] = gen << 1 | 1
    q[w + _WHEN] = when
    if period is not None:
        q[w + _PERIOD] = period
    mstate.rel(lk)
    _queue(m, t, gen, when)
    return bool(st & 1)


def disarm(m, t):
    """Stop timer t; whether it was armed (Stop's result: False once it fired or was stopped)."""
    q = m.heap.mvq
    w = t.addr >> 3
    lk = chan.objlock(m, t.addr)
    mstate.acq(lk)
    st = int(q[w + _ST])
    q[w + _ST] = ((st >> 1) + 1) << 1
    mstate.rel(lk)
    return bool(st & 1)


# ---- the timer goroutine ----

def _state(m):
    """The timer goroutine's state object, started by the first caller."""
    q, s = m.q, m.ctl.sched
    while True:
        a = int(q[s + S_TIMERS])
        if a > 0:
            return m.heap.ptr_at(a)
        lk = m.schedlock
        mstate.acq(lk)
        mine = q[s + S_TIMERS] == 0
        if mine:
            q[s + S_TIMERS] = -1          # being started
        mstate.rel(lk)
        if mine:
            st = malloc.new(_timers, safepoint=False)
            st.add = chan.make_chan(ADD_CAP)._p
            proc.go(_timerproc, st)
            q[s + S_TIMERS] = st.addr     # a root from here on (mgcmark.ctl_roots)
            return st
        proc.gosched()                    # another goroutine is starting it


def _queue(m, t, gen, when):
    st = _state(m)
    Chan(st.add).send((t, gen, when))
    lk = chan.objlock(m, st.addr)
    q = m.heap.mvq
    w = st.addr >> 3
    g = m.q[m.ctl.sched + S_TIMERG] - 1
    mstate.acq(lk)
    s = int(q[w + _ST])
    wake = s & 1 and g >= 0
    if wake:
        q[w + _ST] = s & ~1
    mstate.rel(lk)
    if wake:
        proc.ready(m, g)


def _timerproc(st):
    m = mstate.current_m()
    g = m.curg
    m.q[m.ctl.sched + S_TIMERG] = g + 1
    add = Chan(st.add)
    q = m.heap.mvq
    w = st.addr >> 3
    lk = chan.objlock(m, st.addr)
    armed = []          # (when, seq, timer, gen)
    seq = 0
    while True:
        while True:
            i, v = select(add.recv, default)
            if i != 0:
                break
            t, gen, when = v
            seq += 1
            heapq.heappush(armed, (when, seq, t, gen))
        now = mstate.nanotime()
        while armed and armed[0][0] <= now:
            _, _, t, gen = heapq.heappop(armed)
            nxt = _fire(m, t, gen, now)
            if nxt is not None:
                seq += 1
                heapq.heappush(armed, (nxt, seq, t, gen))
        mstate.acq(lk)
        if len(add):
            mstate.rel(lk)
            continue
        s = int(q[w + _ST])
        gen = (s >> 1) + 1
        q[w + _ST] = gen << 1 | 1
        if armed:
            add_timer(m, armed[0][0], (g, _guard(m, st, gen)))
        proc.park(W_TIMERIDLE, lk)


def _guard(m, st, gen):
    """The timer goroutine's own wakeup at its next due time: it wakes the goroutine unless a
    queued firing did (or it woke for another reason) since it parked."""
    def claim():
        lk = chan.objlock(m, st.addr)
        q = m.heap.mvq
        w = st.addr >> 3
        mstate.acq(lk)
        ok = q[w + _ST] == (gen << 1 | 1)
        if ok:
            q[w + _ST] = gen << 1
        mstate.rel(lk)
        return ok
    return claim


def _fire(m, t, gen, now):
    """Fire timer t if it is still armed at gen: send the time on C, start AfterFunc's function.
    Returns a ticker's next firing time, else None."""
    q = m.heap.mvq
    w = t.addr >> 3
    lk = chan.objlock(m, t.addr)
    mstate.acq(lk)
    if q[w + _ST] != (gen << 1 | 1):
        mstate.rel(lk)
        return None
    period = int(q[w + _PERIOD])
    nxt = None
    if period > 0:
        when = int(q[w + _WHEN])
        nxt = when + period * (1 + max(0, now - when) // period)   # missed periods are skipped
        q[w + _WHEN] = nxt
    else:
        q[w + _ST] = gen << 1
    mstate.rel(lk)
    c, f = t.c, t.f
    if c is not None:
        select((Chan(c).send, time.time()), default)    # Go's sendTime: never blocks
    if f is not None:
        fc = Chan(f)
        fn = fc.recv()
        fc.send(fn)                  # kept for a Reset
        proc.go(fn)
    return nxt


def nonpositive(what):
    raise Panic(f"non-positive interval for {what}")


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
