"""Profiling buckets shared by every M (Go's mprof.go): heap, block, mutex and thread-creation records.

A bucket is a row of the control segment (region "buckets", BK_WORDS words): its kind, the hash
of its stack, the stack (up to MAXSTACK PCs, symtab.py) and its counters.  Rows are appended, and
found again through an open-addressing index (region "buckhash"), under lock.prof; every process
also keeps a dict from (kind, size, stack) to row, so a repeated event takes the lock only to count.

Heap profile (Go's memRecord, three cycles deep):
    an allocation is sampled when the allocating M's byte countdown runs out (the countdown is drawn
    from an exponential distribution of mean MemProfileRate, as Go's nextSample; MemProfileRate = 1
    samples every allocation).  The sampled object's address goes to the "profobj" table with its
    bucket and its mark byte's index; the allocation counts in future[(C+2) % 3].  At mark
    termination the coordinator (`mark_termination`, the world stopped: Go's mProf_NextCycle)
    advances C and copies the mark bytes of the sampled objects, one gather; once the world runs
    again (`flush`, Go's mProf_Flush and the sweep's mProf_Free) it counts every one left white as
    a free of future[(C+1) % 3] and folds cycles C and C+1 into `active`, which MemProfile reports:
    so a profile is as of the last completed cycle, as Go's, and an object allocated since does not
    show until a cycle has had the chance to free it.  Before any cycle MemProfile folds all cycles in,
    as Go does when no GC has run.  A full profobj table (NPROFOBJ objects) samples no more objects
    until a cycle frees some.
Block profile: a goroutine that parked on a channel, select, Mutex or WaitGroup records the time it
    was blocked when it resumes, sampled as Go's blocksampled (rate in ns: every event of at least
    rate ns, a shorter one with probability t/rate), with its stack from the blocking call outwards.
Mutex profile: Mutex.unlock that hands the mutex to a waiter records how long that waiter waited,
    with the unlocker's stack, one event in SetMutexProfileFraction's rate.
Thread creation: the goroutine whose wakeup started a new M leaves its stack in the M's row
    (M_CREATEBK), which ThreadCreateProfile reports per M.
Stacks keep the one runtime frame that the program called (Chan.recv, Mutex.lock) and what is above
it, as Go's skip counts do.
"""
import math
import random
import sys

import numpy as np

from ..shm import malloc as _malloc
from ..shm.layout import WHITE
from ..shm.mbarrier import mark_index
from . import mstate, stw
from . import symtab as _symtab
from .ctl import (
    BK_WORDS,
    NBUCKET,
    NBUCKHASH,
    NPROFOBJ,
    PO_WORDS,
    S_MEMPROFRATE,
    S_NBUCKET,
    S_NPROFOBJ,
    S_PROFCYCLE,
)

MAXSTACK = 32
(BK_TYPE, BK_HASH, BK_NSTK, BK_SIZE) = range(4)
BK_C = 4               # counters: mem: active (allocs, frees, alloc_bytes, free_bytes), future[3] x 4;
BK_STK = 32            # block/mutex/threadcreate: count, cycles (ns)
MEM, BLOCK, MUTEX, THREAD = 1, 2, 3, 4

_cache = {}           # (rtid, kind, size, stack) -> bucket row


def reset():
    _cache.clear()


def user_stack(frame, limit=MAXSTACK, keep_api=True):
    """PCs from frame outwards, leading runtime frames dropped but the last (the API call) when
    keep_api."""
    pcs = _symtab.callers(frame, MAXSTACK + 16)
    i = 0
    while i + (1 if keep_api else 0) < len(pcs):
        f = _symtab.findfunc(pcs[i + (1 if keep_api else 0)])
        if f is None or not f.runtime:
            break
        i += 1
    return pcs[i:i + limit]


def _hash(kind, size, pcs):
    return hash((kind, size, tuple(pcs))) & 0x7FFF_FFFF_FFFF_FFFF


def bucket(m, kind, pcs, size=0, locked=False):
    """The row for (kind, size, stack), made if new.  -1 when the table is full."""
    key = (m.rtid, kind, size, tuple(pcs))
    b = _cache.get(key)
    if b is not None:
        return b
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    hv = _hash(kind, size, pcs)
    hb = ctl.base["buckhash"]
    bb = ctl.base["buckets"]
    if not locked:
        mstate.acq(m.proflock)
    try:
        i = hv % NBUCKHASH
        while True:
            e = q[hb + i]
            if e == 0:
                break
            r = bb + (e - 1) * BK_WORDS
            if q[r + BK_HASH] == hv and q[r + BK_TYPE] == kind and q[r + BK_SIZE] == size and \
                    q[r + BK_NSTK] == len(pcs) and all(q[r + BK_STK + j] == pcs[j] for j in range(len(pcs))):
                b = e - 1
                break
            i = (i + 1) % NBUCKHASH
        if b is None:
            n = q[s + S_NBUCKET]
            if n >= NBUCKET:
                return -1
            r = bb + n * BK_WORDS
            q[r + BK_TYPE], q[r + BK_HASH], q[r + BK_NSTK], q[r + BK_SIZE] = kind, hv, len(pcs), size
            for j, pc in enumerate(pcs):
                q[r + BK_STK + j] = pc
            q[hb + i] = n + 1
            q[s + S_NBUCKET] = n + 1
            b = n
    finally:
        if not locked:
            mstate.rel(m.proflock)
    _cache[key] = b
    return b


def buckets(ctl, kind):
    """[(row index, row view)] of every bucket of this kind (a snapshot of the counters)."""
    n = ctl.q[ctl.sched + S_NBUCKET]
    bb = ctl.base["buckets"]
    rows = ctl.words[bb:bb + n * BK_WORDS].reshape(n, BK_WORDS).copy()
    return [(i, rows[i]) for i in range(n) if rows[i, BK_TYPE] == kind]


def stack_of(row):
    return [int(x) for x in row[BK_STK:BK_STK + row[BK_NSTK]]]


# ---- heap profile ----

def next_sample(rate):
    """Bytes to allocate before the next sample (Go's nextSample)."""
    if rate <= 0:
        return 1 << 62
    if rate == 1:
        return 0
    return int(-math.log(1.0 - random.random()) * rate)


def profilealloc(h, a, size):
    """The allocator's countdown ran out: draw the next one, and sample this object."""
    m = mstate.current_m_or_none()
    if m is None or m.row is None:
        h.sample_left = 1 << 62
        return
    q, s = m.q, m.ctl.sched
    rate = q[s + S_MEMPROFRATE]
    h.sample_left = next_sample(rate)
    if rate <= 0:
        return
    # The allocator's caller may hold the new object's address in no root yet (a heap message on
    # its way to a goroutine row): no stop of the world may start in here.  A stop requested
    # meanwhile waits for the heap code around us to return (proc._stop_after).
    m.locks += 1
    try:
        _profilealloc(m, a, size, sys._getframe())     # user_stack drops the runtime's frames
    finally:
        m.locks -= 1
        if mstate.stop_pending(m):
            stw.pending_stop(m, sys._getframe(1))      # the heap code around us: stop when it returns


def _profilealloc(m, a, size, frame):
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    pcs = user_stack(frame, keep_api=False) or _symtab.callers(frame, MAXSTACK)
    b = bucket(m, MEM, pcs, size)
    if b < 0:
        return
    mstate.acq(m.proflock)
    n = q[s + S_NPROFOBJ]
    if n < NPROFOBJ:
        o = ctl.base["profobj"] + PO_WORDS * n
        q[o], q[o + 1], q[o + 2] = a, b, mark_index(m.heap, a)
        q[s + S_NPROFOBJ] = n + 1
        r = ctl.base["buckets"] + b * BK_WORDS + BK_C + 4 + 4 * ((q[s + S_PROFCYCLE] + 2) % 3)
        q[r] += 1
        q[r + 2] += size
    mstate.rel(m.proflock)


def _fold(rows, c):
    """active += future[c]; future[c] = 0 (rows: the bucket table, MEM rows selected)."""
    f = BK_C + 4 + 4 * (c % 3)
    rows[:, BK_C:BK_C + 4] += rows[:, f:f + 4]
    rows[:, f:f + 4] = 0


def mark_termination(sm, h):
    """The coordinator, world stopped, marks final: Go's mProf_NextCycle, and the mark bytes of the
    sampled objects, for `flush` to read once the world runs (the sweep reuses what is white)."""
    q, ctl, s = sm.q, sm.ctl, sm.ctl.sched
    mstate.acq(sm.proflock)
    c = q[s + S_PROFCYCLE] = q[s + S_PROFCYCLE] + 1
    n = q[s + S_NPROFOBJ]
    po = ctl.base["profobj"]
    marks = h.hu8n[ctl.words[po + 2:po + PO_WORDS * n:PO_WORDS]] if n else None
    mstate.rel(sm.proflock)
    sm.prof_pending = (c, n, marks)


def flush(sm):
    """After the restart: the frees that mark_termination's copy shows, and the fold of cycles C and
    C+1 into active.  Objects sampled since the restart lie past the first n rows and stay."""
    pending, sm.prof_pending = sm.prof_pending, None
    if pending is None:
        return
    c, n, marks = pending
    q, ctl, s = sm.q, sm.ctl, sm.ctl.sched
    mstate.acq(sm.proflock)
    try:
        nb = q[s + S_NBUCKET]
        bb = ctl.base["buckets"]
        rows = ctl.words[bb:bb + nb * BK_WORDS].reshape(nb, BK_WORDS)
        if n:
            po = ctl.base["profobj"]
            total = q[s + S_NPROFOBJ]
            tab = ctl.words[po:po + PO_WORDS * total].reshape(total, PO_WORDS)
            dead = np.zeros(total, dtype=bool)
            dead[:n] = marks == WHITE
            if dead.any():
                f = BK_C + 4 + 4 * ((c + 1) % 3)
                b = tab[dead, 1]
                np.add.at(rows[:, f + 1], b, 1)
                np.add.at(rows[:, f + 3], b, rows[b, BK_SIZE])
                keep = tab[~dead].copy()
                tab[:len(keep)] = keep
                q[s + S_NPROFOBJ] = len(keep)
        mem = rows[:, BK_TYPE] == MEM
        if mem.any():
            sub = rows[mem]
            _fold(sub, c)
            _fold(sub, c + 1)
            rows[mem] = sub
    finally:
        mstate.rel(sm.proflock)


def mem_records(m):
    """[(allocs, frees, alloc_bytes, free_bytes, stack)] as MemProfile reports them."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    mstate.acq(m.proflock)
    try:
        nb = q[s + S_NBUCKET]
        bb = ctl.base["buckets"]
        rows = ctl.words[bb:bb + nb * BK_WORDS].reshape(nb, BK_WORDS)
        mem = rows[:, BK_TYPE] == MEM
        sub = rows[mem]
        if not sub[:, BK_C:BK_C + 2].any():
            # no cycle has completed: everything so far (Go does the same)
            for c in range(3):
                _fold(sub, c)
            rows[mem] = sub
        out = [(int(r[BK_C]), int(r[BK_C + 1]), int(r[BK_C + 2]), int(r[BK_C + 3]), stack_of(r)) for r in sub]
    finally:
        mstate.rel(m.proflock)
    return out


# ---- block and mutex profiles ----

def blocksampled(rate, t):
    return not (rate <= 0 or (rate > t and random.randrange(rate) > t))


def record_event(m, kind, t, frame):
    """One blocking (or contention) event of t ns, stack from `frame` outwards."""
    pcs = user_stack(frame)
    b = bucket(m, kind, pcs)
    if b < 0:
        return
    r = m.ctl.base["buckets"] + b * BK_WORDS + BK_C
    q = m.q
    mstate.acq(m.proflock)
    q[r] += 1
    q[r + 1] += max(t, 1)
    mstate.rel(m.proflock)


def event_records(ctl, kind):
    """[(count, cycles, stack)] of a block or mutex profile."""
    return [(int(r[BK_C]), int(r[BK_C + 1]), stack_of(r)) for _, r in buckets(ctl, kind)]


def thread_stack(ctl, b):
    if b < 0:
        return []
    r = ctl.base["buckets"] + b * BK_WORDS
    return stack_of(np.asarray(ctl.words[r:r + BK_WORDS]))


_malloc.set_profile_hook(profilealloc)


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
