"""The scheduler proper (Go's schedule/findrunnable and the queues it reads): G slots, the P
run queues (each with its P's lock), the global queue and the idle P and M lists (sched lock), the
scheduler's greenlet loop, a goroutine's start (_gmain) and end (_goexit0), and the timers each M
keeps for its own goroutines.  proc.py's essay explains the model.

Scheduling (findrunnable, run by an M holding a P, in this order):
 1. a safe point: stop for the world, or for the program's end;
 2. every 61st tick, the global queue first (fairness);
 3. due timers of this M fire (their goroutines join the M's ready list);
 4. the M's ready list, then the P's runnext and ring, then the global queue, then the M's yield list;
 5. steal from the other Ps (4 passes in a random order, runnext only in the last), unless
    2*spinning >= busy Ps;
 6. spin a little polling all of the above (a goroutine readied by another M is seen within a
    microsecond instead of a wakeup), then give the P up and park on the M's semaphore.

A goroutine's start from its row (_payload) and its end with the next one's start in the same
greenlet (_goexit0's fast path) have their common cases in C (csched.c: payload, exit_next), each
done whole or not at all; the Python code here is the reference and does everything else.
"""
import heapq
import os
import pickle
import random
import sys
import time

import greenlet
import numpy as np

from .. import codeclass
from ..errors import Goexit
from ..settings import load_accel
from ..shm.layout import GC_PHASE
from ..shm.mbarrier import shade_vec, shade_word
from ..shm.ptr import loads
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
    G_LINK,
    G_LOCKEDM,
    G_M,
    G_NPTR,
    G_PAYLEN,
    G_PTR0,
    G_RUNNING,
    G_STATUS,
    G_TRACEX,
    G_WAITING,
    G_WORDS,
    M_CPU,
    M_CREATEBK,
    M_CURG,
    M_GCREATED,
    M_GCSCAN,
    M_GEXITED,
    M_LOCKEDG,
    M_NBOUND,
    M_NEXTP,
    M_NLIVE,
    M_NTIMERS,
    M_P,
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
    MAXSUDOG,
    MS_DEAD,
    MS_GCSTOP,
    MS_IDLE,
    MS_LOCKEDWAIT,
    MS_NEEDP,
    MS_RUNNING,
    MS_STARTING,
    MS_SYSCALL,
    NONE,
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
    P_STATUS,
    P_WORDS,
    RUNQ,
    S_ATTN,
    S_DEAD,
    S_EXIT,
    S_GCWAITING,
    S_GFREE,
    S_GOIDGEN,
    S_GOMAXPROCS,
    S_GQHEAD,
    S_GQSIZE,
    S_GQTAIL,
    S_MAXMCOUNT,
    S_MCOUNT,
    S_NGALLOC,
    S_NMSPINNING,
    S_NPIDLE,
    S_NSGALLOC,
    S_PIDLE,
    S_SGFREE,
    S_STOPWAIT,
    S_TRACESTART,
    SG_NEXT,
    SG_WORDS,
)
from .mstate import (
    Exiting,
    acq,
    check_coordinator,
    current_m_or_none,
    exiting,
    fatal,
    mcount,
    nanotime,
    park_m,
    rel,
    request_exit,
    safepoint_due,
    wakem,
    worker_exit,
)

SPIN_NS = 50_000          # how long an M with nothing to run polls before parking (a wakeup costs ~20 us)
GOID_BATCH = 16           # Go's _GoidCacheBatch
GFREE_BATCH = 128         # G slots an M takes from the shared free list at a time
FAIRNESS_TICKS = 61
FAIRNESS_WAIT_NS = 1_000_000    # ... and hands its P to an M that has waited for one this long
MAX_PARK_S = 0.5          # M0 re-checks the coordinator at least this often


# ---- G slots and sudogs: control-segment rows handed out by index ----

class RowPool:
    """One kind of control-segment row handed out by index: G slots, and sudogs.  A shared free
    list (its head a sched word, linked through one word of each row, sched lock) sits in front of
    rows never used yet (a sched count, committed CHUNK rows at a time); each M keeps a cache of
    free indexes (a process-local list), refilled `batch` at a time and given back down to `keep`
    when it holds twice that."""

    def __init__(self, what, region, words, link, free_word, count_word, first, limit, batch, keep, grow):
        self.what, self.region, self.words, self.link = what, region, words, link
        self.free_word, self.count_word, self.first, self.limit = free_word, count_word, first, limit
        self.batch, self.keep, self.grow = batch, keep, grow

    def _row(self, ctl, x):
        return ctl.base[self.region] + x * self.words

    def refill(self, m, cache):
        q, ctl, s = m.q, m.ctl, m.ctl.sched
        acq(m.schedlock)
        try:
            while len(cache) < self.batch and q[s + self.free_word] != NONE:
                x = q[s + self.free_word]
                q[s + self.free_word] = q[self._row(ctl, x) + self.link]
                cache.append(x)
            if len(cache) < self.batch:
                n0 = q[s + self.count_word]
                n1 = n0 + self.batch - len(cache)
                if n1 > self.limit:
                    raise RuntimeError(f"mprt: more than {self.limit} {self.what}")
                self.grow(ctl, n0, n1)
                q[s + self.count_word] = n1
                cache.extend(range(self.first + n1 - 1, self.first + n0 - 1, -1))
        finally:
            rel(m.schedlock)

    def put(self, m, cache, x):
        cache.append(x)
        if len(cache) > 2 * self.keep:
            q, ctl, s = m.q, m.ctl, m.ctl.sched
            give = cache[self.keep:]
            del cache[self.keep:]
            acq(m.schedlock)
            for y in give:
                q[self._row(ctl, y) + self.link] = q[s + self.free_word]
                q[s + self.free_word] = y
            rel(m.schedlock)


def _chunks(n0, n1):
    return (n0 + CHUNK - 1) // CHUNK * CHUNK, (n1 + CHUNK - 1) // CHUNK * CHUNK


def _grow_gslots(ctl, n0, n1):
    c0, c1 = _chunks(n0, n1)
    if c1 > c0:
        ctl.commit_rows("g", c0, c1, G_WORDS)
        ctl.commit_rows("sudog", c0, c1, SG_WORDS)     # each G slot's own sudog row
    q = ctl.q
    for g in range(n0, n1):
        r = ctl.gbase + g * G_WORDS
        q[r + G_M] = q[r + G_LOCKEDM] = q[r + G_LINK] = NONE


def _grow_sudogs(ctl, n0, n1):
    c0, c1 = _chunks(n0, n1)
    if c1 > c0:
        ctl.commit_rows("sudog", MAXG + c0, MAXG + c1, SG_WORDS)


GSLOTS = RowPool("goroutines", "g", G_WORDS, G_LINK, S_GFREE, S_NGALLOC, 0, MAXG, GFREE_BATCH, GFREE_BATCH,
                 _grow_gslots)
# select's sudogs beyond each G's own row (chan.py)
SUDOGS = RowPool("waiting goroutines", "sudog", SG_WORDS, SG_NEXT, S_SGFREE, S_NSGALLOC, MAXG, MAXSUDOG, 32, 128,
                 _grow_sudogs)


def gslot_get(m):
    if not m.gfree:
        GSLOTS.refill(m, m.gfree)
    return m.gfree.pop()


def new_goid(m):
    """Goroutine ids come in batches of GOID_BATCH from the sched word, as Go's per-P goidcache."""
    if m.goid_next >= m.goid_end:
        _goid_batch(m)
    g = m.goid_next
    m.goid_next = g + 1
    return g


def _goid_batch(m):
    acq(m.schedlock)
    s = m.ctl.sched
    g = m.q[s + S_GOIDGEN] + 1
    m.q[s + S_GOIDGEN] += GOID_BATCH
    rel(m.schedlock)
    m.goid_next, m.goid_end = g, g + GOID_BATCH


def refill_go_caches(m):
    """A free G slot and a goroutine id ready in this M's caches (csched.go calls it when either
    ran out, before it takes anything)."""
    if not m.gfree:
        GSLOTS.refill(m, m.gfree)
    if m.goid_next >= m.goid_end:
        _goid_batch(m)


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


def runqput(m, p, g, nxt):
    q, ctl = m.q, m.ctl
    b = ctl.p(p)
    lk = m.plock(p)
    acq(lk)
    if nxt:
        old = q[b + P_RUNNEXT]
        q[b + P_RUNNEXT] = g
        if old == NONE:
            rel(lk)
            return
        g = old
    h, t = q[b + P_RQHEAD], q[b + P_RQTAIL]
    if t - h < RUNQ:
        q[b + P_RUNQ + t % RUNQ] = g
        q[b + P_RQTAIL] = t + 1
        rel(lk)
        return
    # full: half of the ring and g go to the global queue in one batch
    n = RUNQ // 2
    batch = _ring_read(ctl.words, b + P_RUNQ, RUNQ, h, n)
    q[b + P_RQHEAD] = h + n
    rel(lk)
    acq(m.schedlock)
    globrunqput_locked(m, np.append(batch, g))
    rel(m.schedlock)


def _runqget(m, p):
    q = m.q
    b = m.ctl.p(p)
    if q[b + P_RUNNEXT] == NONE and q[b + P_RQHEAD] == q[b + P_RQTAIL]:
        return NONE
    lk = m.plock(p)
    acq(lk)
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
    rel(lk)
    return g


def runqempty(m, p):
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
    acq(lk)
    t = q[mb + P_RQTAIL]
    room = RUNQ - (t - q[mb + P_RQHEAD])
    k = min(room, len(items))
    _ring_write(ctl.words, mb + P_RUNQ, RUNQ, t, items[:k])
    q[mb + P_RQTAIL] = t + k
    rel(lk)
    if k < len(items):
        if sched_locked:
            globrunqput_locked(m, items[k:])
        else:
            acq(m.schedlock)
            globrunqput_locked(m, items[k:])
            rel(m.schedlock)


def _runqsteal(m, victim, stealnext):
    """Take half (rounded up) of victim's ring into this M's P; returns a G to run or NONE."""
    q, ctl = m.q, m.ctl
    b = ctl.p(victim)
    if q[b + P_RQHEAD] == q[b + P_RQTAIL] and (not stealnext or q[b + P_RUNNEXT] == NONE):
        return NONE      # looks empty: a racy read, but a goroutine put there now wakes someone anyway
    lk = m.plock(victim)
    acq(lk)
    h, t = q[b + P_RQHEAD], q[b + P_RQTAIL]
    n = t - h
    n = n - n // 2
    if n:
        got = _ring_read(ctl.words, b + P_RUNQ, RUNQ, h, n)
        q[b + P_RQHEAD] = h + n
        rel(lk)
    elif stealnext and q[b + P_RUNNEXT] != NONE:
        g = q[b + P_RUNNEXT]
        q[b + P_RUNNEXT] = NONE
        rel(lk)
        return g
    else:
        rel(lk)
        return NONE
    g = int(got[-1])          # Go runs the last one stolen
    _runqputbatch(m, got[:-1])
    return g


# ---- the global queue, idle Ps, G lists (sched lock held) ----

def globrunqput_locked(m, gs):
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


def list_push(q, ctl, headw, tailw, g):
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


def pidleget_locked(m):
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


def mstates(m):
    n = mcount(m)
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


def needp_get_locked(m):
    """The needp M that has waited longest (lowest M_STAMP), or NONE."""
    q, ctl = m.q, m.ctl
    best, bstamp = NONE, None
    for mid in range(mcount(m)):
        r = ctl.m(mid)
        if q[r + M_STATE] == MS_NEEDP:
            st = q[r + M_STAMP]
            if bstamp is None or st < bstamp:
                best, bstamp = mid, st
    return best


def give_p_locked(m, mid, p):
    """Hand P p to M mid (parked without a P) and wake it."""
    q, ctl = m.q, m.ctl
    b = ctl.p(p)
    q[b + P_STATUS] = P_RUNNING
    q[b + P_M] = mid
    r = ctl.m(mid)
    q[r + M_NEXTP] = p
    q[r + M_STATE] = MS_RUNNING
    wakem(m, mid)


def handoffp_locked(m, p):
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
    mid = needp_get_locked(m)
    if mid != NONE:
        give_p_locked(m, mid, p)
        return
    if not runqempty(m, p) or q[s + S_GQSIZE]:
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
    for mid in range(mcount(m)):
        r = ctl.m(mid)
        if q[r + M_STATE] == MS_IDLE:
            k = (q[r + M_NLIVE] + q[r + M_NBOUND], q[r + M_WAKEUPS])
            if key is None or k < key:
                best, key = mid, k
    if best != NONE:
        q[ctl.m(best) + M_SPINNING] = int(spinning)
        give_p_locked(m, best, p)
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
            if _traceback.request_exit_first(m, locked=True):
                _traceback.fatal_report(m, "thread exhaustion", f"runtime: program exceeds {limit}-thread limit\n")
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


def wakep(m):
    """Start a spinning M on an idle P if nobody is spinning (Go's wakep)."""
    q, s = m.q, m.ctl.sched
    acq(m.schedlock)
    try:
        if q[s + S_NMSPINNING] or not q[s + S_NPIDLE] or q[s + S_GCWAITING]:
            return
        p = pidleget_locked(m)
        q[s + S_NMSPINNING] += 1
        _startm_locked(m, p, True)
    finally:
        rel(m.schedlock)


def dropp_locked(m):
    q = m.q
    if m.tracing and q[m.ctl.p(m.p) + P_M] in (m.id, NONE):
        _trace.ev(m, _trace.EV_PROCSTOP, m.p)     # not for a P retaken from our system call
    q[m.row + M_P] = NONE
    m.p = NONE


def acquirep(m, p):
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
            exiting(m)
        if q[s + S_GCWAITING] and m.p != NONE:
            stw.gcstopm(m)
            continue
        if m.p == NONE:
            stopm(m)
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
            if _yield_p_to_needp(m):
                continue
            if q[s + S_GQSIZE]:
                acq(m.schedlock)
                g = _globrunqget_locked(m, 1)
                rel(m.schedlock)
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
            acq(m.schedlock)
            g = _globrunqget_locked(m, RUNQ)
            rel(m.schedlock)
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


def _yield_p_to_needp(m):
    """Fairness for goroutines that only another M may run (its own, or the goroutine locked to
    it: main on M0): every FAIRNESS_TICKS an M hands its P to the M that has waited longest for
    one, as Go's scheduler picks a locked goroutine from the global queue within 61 ticks and
    hands its P to the goroutine's M (startlockedm).  Without it, main preempted by sysmon while
    starting goroutines waited until every queue of the Ps was empty.  Only to an M that has waited
    FAIRNESS_WAIT_NS (each handoff is a wakeup and a move to another CPU).  The P keeps its queue;
    this M parks (needp if it has ready goroutines of its own).  True if the P was handed over."""
    q, ctl = m.q, m.ctl
    if not any(q[ctl.m(mid) + M_STATE] == MS_NEEDP for mid in range(mcount(m))):
        return False
    acq(m.schedlock)
    mid = NONE if q[m.ctl.sched + S_GCWAITING] else needp_get_locked(m)
    if mid == NONE or mid == m.id or nanotime() - q[ctl.m(mid) + M_STAMP] < FAIRNESS_WAIT_NS:
        rel(m.schedlock)
        return False
    p = m.p
    dropp_locked(m)
    give_p_locked(m, mid, p)
    rel(m.schedlock)
    return True


def _pop_own(m, head):
    q, ctl, r = m.q, m.ctl, m.row
    acq(m.schedlock)
    g = _list_pop(q, ctl, r + head, r + head + 1)
    rel(m.schedlock)
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
    acq(m.schedlock)
    found = _in_list(q, ctl, r + M_RQHEAD, lg)
    if found and not peek:
        _list_remove(q, ctl, r + M_RQHEAD, r + M_RQTAIL, lg)
    rel(m.schedlock)
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
    acq(m.schedlock)
    q[s + S_NMSPINNING] += 1 if on else -1
    q[m.row + M_SPINNING] = int(on)
    rel(m.schedlock)
    m.spinning = on
    if not on and q[s + S_NPIDLE] and not q[s + S_NMSPINNING]:
        # Go: the last spinning M that found work wakes another, so bursts spread out
        wakep(m)


def _spin(m):
    """Poll for work for SPIN_NS before parking: own ready list, own ring, the global queue, the
    other rings, timers, and the safe-point words."""
    q, ctl, s, r = m.q, m.ctl, m.ctl.sched, m.row
    deadline = nanotime() + SPIN_NS
    n = q[s + S_GOMAXPROCS]
    pbases = [ctl.p(p) for p in range(n)]
    while nanotime() < deadline:
        if q[r + M_RQHEAD] != NONE:
            g = _pop_own(m, M_RQHEAD)
            if g != NONE:
                return g
        if q[s + S_GQSIZE] or q[s + S_GCWAITING] or q[s + S_EXIT]:
            return NONE
        for b in pbases:
            if q[b + P_RQHEAD] != q[b + P_RQTAIL] or q[b + P_RUNNEXT] != NONE:
                return NONE
        if m.timers and m.timers[0][0] <= nanotime():
            return NONE
    return NONE


def _spin_locked(m):
    """A locked M whose goroutine just blocked polls for it a little before handing its P off,
    unless other work wants the P."""
    q, s, r = m.q, m.ctl.sched, m.row
    deadline = nanotime() + SPIN_NS
    b = m.ctl.p(m.p)
    while nanotime() < deadline:
        if q[r + M_RQHEAD] != NONE:
            g = _pop_locked_ready(m)
            if g != NONE:
                return g
        if (q[s + S_GQSIZE] or q[s + S_GCWAITING] or q[s + S_EXIT] or q[b + P_RUNNEXT] != NONE
                or q[b + P_RQHEAD] != q[b + P_RQTAIL]):
            return NONE
        if m.timers and m.timers[0][0] <= nanotime():
            return NONE
    return NONE


def _release_idle_p(m):
    """Nothing to run: give the P up and park (Go's findrunnable tail + stopm).  Returns True to
    have the caller look again."""
    q, _ctl, s, r = m.q, m.ctl, m.ctl.sched, m.row
    acq(m.schedlock)
    if q[s + S_GCWAITING] or q[s + S_EXIT] or q[r + M_RQHEAD] != NONE or m.localq or m.yieldq:
        rel(m.schedlock)
        return True
    if q[s + S_GQSIZE] or not runqempty(m, m.p):
        rel(m.schedlock)
        return True
    p = m.p
    dropp_locked(m)
    pidleput_or_needp_locked(m, p)
    if m.spinning:
        m.spinning = False
        q[s + S_NMSPINNING] -= 1
        q[r + M_SPINNING] = 0
    q[r + M_STATE] = MS_IDLE
    rel(m.schedlock)
    # work may have arrived in a ring between our last look and the P going idle
    n = q[s + S_GOMAXPROCS]
    for pp in range(n):
        if not runqempty(m, pp) and q[s + S_NPIDLE]:
            wakep(m)
            break
    return True


def pidleput_or_needp_locked(m, p):
    mid = needp_get_locked(m)
    if mid != NONE:
        give_p_locked(m, mid, p)
    else:
        _pidleput_locked(m, p)


def stopm(m, needp=False):
    """Park this M (no P) until it is handed one; fire its timers meanwhile.  needp: the M has a
    goroutine running (stopped mid-flight) that needs a P whether or not anything is queued, and
    that goroutine resumes straight from here: so a root scan the collector asked for while we
    waited (M_GCSCAN) is done before returning, as _execute_mark does for every other resume."""
    q, ctl, s, r = m.q, m.ctl, m.ctl.sched, m.row
    while True:
        if q[s + S_EXIT] or (m.is_m0 and q[s + S_DEAD]):
            exiting(m)
        acq(m.schedlock)
        nextp = q[r + M_NEXTP]
        if nextp != NONE:
            q[r + M_NEXTP] = NONE
            q[r + M_STATE] = MS_RUNNING
            q[r + M_P] = nextp          # with the lock: the rows agree whenever it is free
            rel(m.schedlock)
            acquirep(m, nextp)
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
                p = pidleget_locked(m)
                if p != NONE:
                    q[ctl.p(p) + P_STATUS] = P_RUNNING
                    q[ctl.p(p) + P_M] = m.id
                    q[r + M_STATE] = MS_RUNNING
                    q[r + M_P] = p
                    rel(m.schedlock)
                    acquirep(m, p)
                    if q[r + M_GCSCAN]:
                        gcscan_self(m)
                    return
            if st != MS_NEEDP:
                q[r + M_STAMP] = nanotime()
            q[r + M_STATE] = MS_NEEDP
        else:
            q[r + M_STATE] = MS_LOCKEDWAIT if m.lockedg != NONE else MS_IDLE
            _checkdead_locked(m)
        rel(m.schedlock)
        timeout = None
        if m.timers:
            timeout = max(0.0, (m.timers[0][0] - nanotime()) / 1e9)
        if m.is_m0:
            timeout = MAX_PARK_S if timeout is None else min(timeout, MAX_PARK_S)
        woke = park_m(m, timeout)
        if m.timers:
            _fire_timers(m)
        if not woke and m.is_m0:
            check_coordinator(m)


def _stoplockedm(m):
    """The locked goroutine is not runnable: hand the P off and park (Go's stoplockedm)."""
    q = m.q
    acq(m.schedlock)
    if _has_ready_own(m):
        rel(m.schedlock)
        return
    p = m.p
    dropp_locked(m)
    q[m.row + M_STATE] = MS_LOCKEDWAIT
    handoffp_locked(m, p)
    rel(m.schedlock)


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
        acq(m.schedlock)
        v = q[r + M_GCSCAN]
        if v == 1:
            q[r + M_GCSCAN] = 3
        rel(m.schedlock)
        if v == 1:
            shade_vec(m.heap, m.heap.roots.live())
            q[r + M_GCSCAN] = 0
            return


def execute_mark(m, g):
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


def schedule_loop(m):
    """A worker M's main greenlet: run goroutines forever."""
    q = m.q
    while True:
        g = findrunnable(m)
        if m.spinning:
            _set_spinning(m, False)     # Go's resetspinning: found work, so wake another spinner
        gl = m.greenlets.get(g)
        if gl is None and q[m.ctl.g(g) + G_M] == NONE and _spread(m, g):
            continue
        execute_mark(m, g)
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
    for mid in range(1, mcount(m)):
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
    acq(m.schedlock)
    if newm:
        if q[s + S_GCWAITING]:
            rel(m.schedlock)
            return False
        best = _newm_locked(m, NONE, False)
    q[ctl.g(g) + G_M] = best
    q[ctl.m(best) + M_NBOUND] += 1
    proc.ready_locked(m, g)
    rel(m.schedlock)
    return True


def _start_here(m, g):
    """Not-started goroutine g starts on this M (bound here by _spread, or taken from a queue)."""
    q, ctl = m.q, m.ctl
    gr = ctl.g(g)
    if q[gr + G_M] == m.id:
        acq(m.schedlock)
        q[m.row + M_NBOUND] -= 1
        rel(m.schedlock)
    else:
        q[gr + G_M] = m.id
    q[m.row + M_NLIVE] += 1


@codeclass.mark_base
def _gmain(g):
    """A goroutine's greenlet: runs one goroutine, then waits in the pool for the next."""
    m = current_m_or_none()
    q = m.q
    while True:
        fn = args = kwargs = None
        try:
            fn, args, kwargs = _payload(m, g)
            if m.tracing and q[m.ctl.g(g) + G_TRACEX] == q[m.ctl.sched + S_TRACESTART]:
                _trace_func(m, fn)      # created before the trace: its GoCreate named no function
            if kwargs:
                fn(*args, **kwargs)
            else:
                fn(*args)
        except Goexit:
            pass
        except Exiting:
            raise
        except SystemExit as e:
            # sys.exit in a goroutine is Go's os.Exit: the program ends with that status, no report
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            request_exit(m, code, EXIT_OSEXIT)
            worker_exit(0)
        except BaseException as e:
            _traceback.gopanic(m, e)
        fn = args = kwargs = None       # an ended goroutine holds nothing (its Ptrs are roots)
        g = _goexit0(m, g)


GMAIN_CODE = _gmain.__code__     # a walk of a goroutine's frames ends at its greenlet's body


def _trace_func(m, fn):
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is not None:
        fi = _symtab.register(code, getattr(fn, "__module__", None) or "?")
        if fi is not None:
            _trace.ev(m, _trace.EV_GOFUNC, m.curgoid, _symtab.FUNC_BASE + (fi << _symtab.FUNC_SHIFT))


def _payload(m, g):
    """The function and arguments of goroutine g, from its row (and its heap message, taken).
    The common case (inline, typed, the function seen on this M, no mark) in C where it was built."""
    if _cpayload is not None:
        r = _cpayload(m, g)
        if r is not None:
            return r
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
        if n <= fl:
            args = ((), {})
        elif data[fl] == msg.TYPED:
            args = (msg.decode_typed(data, fl), {})
        else:
            args = loads(data[fl:]) if hasptr else pickle.loads(data[fl:])
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
        if len(data) <= fl:
            args = ((), {})
        elif data[fl] == msg.TYPED:
            args = (msg.decode_typed(data, fl), {})
        else:
            args = loads(data[fl:])
    return fn, args[0], args[1]


def _shade_row(m, r):
    """The deletion half of the barrier for the pointer words of G row r (csched.payload)."""
    q = m.q
    for i in range(q[r + G_NPTR]):
        shade_word(m.heap, q[r + G_PTR0 + i])


def _goexit0(m, g):
    """Goroutine g ended: free its row, unlock, and return the greenlet to the pool (or start the
    next goroutine in it: in C where it was built, csched.exit_next)."""
    if _cexit is not None:
        g2 = _cexit(m, g)           # traced: it writes GoEnd and GoStart itself
        if g2 is not None:
            return g2
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
    GSLOTS.put(m, m.gfree, g)
    # fast path: the next goroutine is a new one from our P's queue, and nothing else is due
    # (findrunnable's order: own readied goroutines first, the fairness tick, safe points); it runs
    # in this very greenlet, with no switch
    if (m.p != NONE and m.lockedg == NONE and not m.localq and q[m.row + M_RQHEAD] == NONE
            and (m.tick + 1) % FAIRNESS_TICKS
            and not safepoint_due(m) and not m.timers):
        g2 = _runqget(m, m.p)
        if g2 != NONE and not _spread(m, g2):
            m.tick += 1
            execute_mark(m, g2)
            m.greenlets[g2] = gl
            _start_here(m, g2)
            return g2
    m.pool.append(gl)
    m.curg = NONE
    q[m.row + M_CURG] = NONE
    return m.sched_gr.switch()


def add_timer(m, when, g):
    m.tseq += 1
    heapq.heappush(m.timers, (when, m.tseq, g))
    m.q[m.row + M_NTIMERS] = len(m.timers)


def _fire_timers(m):
    now = nanotime()
    due = []
    while m.timers and m.timers[0][0] <= now:
        due.append(heapq.heappop(m.timers)[2])
    if due:
        for g in due:
            if type(g) is tuple:
                # (g, guard): a wakeup another M may have made already (the timer goroutine's,
                # timers.py); the guard claims it, or says it was taken
                g, guard = g
                if not guard():
                    continue
            if m.q[m.ctl.g(g) + G_STATUS] == G_WAITING:
                proc.ready(m, g)
        # only now: checkdead must never see neither the timer nor the goroutine it readied
        m.q[m.row + M_NTIMERS] = len(m.timers)


def _checkdead_locked(m):
    """No M is running and every goroutine waits: Go's checkdead (sched lock held)."""
    q, _ctl, s = m.q, m.ctl, m.ctl.sched
    if q[s + S_EXIT]:
        return
    mt = mstates(m)
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
        if not runqempty(m, p):
            return
    ngor = int(mt[:, M_GCREATED].sum() - mt[:, M_GEXITED].sum()) - proc.system_goroutines(m)
    # M0 prints the report while every M is still there to show its goroutines, then ends it all
    q[s + S_DEAD] = EXIT_GOEXIT if ngor == 0 else EXIT_DEADLOCK
    wakem(m, 0)


def take_unstarted(m, n):
    """Cluster mode's stealing (mprt/cluster): take up to n not-started goroutines from the global
    queue and the P rings (half of what is queued at most, runnext never: Go's runqsteal) and end
    them here as if they had run; returns their [(fn, args, kwargs)] to start on another node.
    Half rounded down, and nothing while a P idles: a goroutine alone in a queue, or one an idle P
    is about to take, stays (two idle nodes would otherwise hand it back and forth, unstarted).
    The queues hold only goroutines that never ran (a readied one waits on its own M's list)."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    got = []
    if q[s + S_NPIDLE]:
        return got
    acq(m.schedlock)
    size = q[s + S_GQSIZE]
    k = min(size // 2, n)
    if k > 0:
        h = q[s + S_GQHEAD]
        got.extend(int(g) for g in _ring_read(ctl.words, ctl.base["gq"], MAXG, h, k))
        q[s + S_GQHEAD] = h + k
        q[s + S_GQSIZE] = size - k
    nprocs = q[s + S_GOMAXPROCS]
    rel(m.schedlock)
    for p in range(nprocs):
        if len(got) >= n:
            break
        b = ctl.p(p)
        lk = m.plock(p)
        acq(lk)
        h, t = q[b + P_RQHEAD], q[b + P_RQTAIL]
        k = min((t - h) // 2, n - len(got))
        if k > 0:
            got.extend(int(g) for g in _ring_read(ctl.words, b + P_RUNQ, RUNQ, h, k))
            q[b + P_RQHEAD] = h + k
        rel(lk)
    out = []
    for g in got:
        fn, args, kwargs = _payload(m, g)
        out.append((fn, tuple(args), kwargs or {}))
        gr = ctl.g(g)
        q[gr + G_STATUS] = G_DEAD
        q[gr + G_M] = NONE
        q[gr + G_LOCKEDM] = NONE
        q[m.row + M_GEXITED] += 1
        GSLOTS.put(m, m.gfree, g)
    return out


def ensure_p(m):
    """After a stop-the-world: if the caller's P went away in a resize, wait for one.  The M waits
    as a needp M (_stopm): nothing else can run on it without a P, and a P already handed to it
    (M_NEXTP, by the start of the world that took the old one) is the one it takes."""
    if m.p == NONE and m.curg != NONE:
        stopm(m, needp=True)


# the scheduler's other modules, imported last: they import this one (see proc.py)
from . import mprof as _mprof  # noqa: E402
from . import msg, proc, stw  # noqa: E402
from . import symtab as _symtab  # noqa: E402
from . import trace as _trace  # noqa: E402
from . import traceback as _traceback  # noqa: E402

_csched = load_accel("mprt.sched.csched")
_cpayload = _cexit = None
if _csched is not None:
    _csched.setup_payload(msg._FN_DEC, msg._wire_class,
                          (G_WORDS, G_PAYLEN, G_NPTR, G_FNLEN, G_INLINE, G_PTR0, GC_PHASE, msg.TYPED), _shade_row)
    _cpayload = _csched.payload
    _csched.setup_exit((G_WORDS, G_STATUS, G_LOCKEDM, G_M, G_GOID, G_DEAD, G_RUNNING, M_GEXITED, M_NLIVE, M_RQHEAD,
                        M_PREEMPT, M_GCSCAN, M_CURG, S_ATTN, P_WORDS, P_RUNNEXT, P_RQHEAD, P_RQTAIL, P_RUNQ,
                        P_SCHEDTICK, RUNQ, NONE, FAIRNESS_TICKS, 2 * GFREE_BATCH), GSLOTS.put, _start_here,
                       refill_go_caches)
    _cexit = _csched.exit_next

codeclass.mark(__name__, codeclass.RUNTIME)
