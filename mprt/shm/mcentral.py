"""Central span lists, one pair per span class, shared by every P; and the free path.

See malloc.py for the overview.  For span class sc (sizeclass << 1 | noscan):
    central_heads[sc*2]     spans with free objects that no P caches (L_PARTIAL)
    central_heads[sc*2+1]   spans with no free object that no P caches (L_FULL)
A span cached by a P is on neither list (s_cached = P).  Both lists, s_alloc, s_list and
central_nfree of a size class are guarded by that class's mcentral lock.  Lock order: an mcentral
lock, then the heap lock; never the other way round.

s_alloc of a span is exact while no P caches it.  While cached, the P counts its allocations
locally and adds them when it gives the span back (uncache_span); frees that happen meanwhile
subtract at once.  A span whose count drops to zero while uncached goes back to the page heap.

Free object slots are always zero, and so are their type ids: the free path zeroes an object before
clearing its type id, so whoever sees a zero type id sees zeroed memory.  Allocation never zeroes.

Sweeping (the collector's free path, `sweep_span_locked`): after a mark, every span whose
s_sweepgen is behind the heap's GC_SWEEPGEN frees its allocated objects whose mark byte is white
and clears its mark bytes.  The coordinator sweeps in the background; cache_span sweeps a span
before a P may allocate from it, so no P allocates from an unswept span (mcache.py).
"""
import numpy as np

from . import mheap
from .layout import (
    BLACK,
    GC_DONE,
    GC_EFENCE,
    GC_PHASE,
    GC_STARTED,
    GC_SWEEPGEN,
    H_ARENA_PAGES,
    H_LARGEFREE,
    H_META_BUMP,
    H_META_COMMIT,
    H_META_FREE,
    H_NLARGEFREE,
    H_NSPANS_INUSE,
    L_FULL,
    L_PARTIAL,
    MAX_META_PER_PAGE,
    S_INUSE,
    meta_bytes,
    round_up,
)
from .segment import NoSpace
from .sizeclasses import PAGE_SHIFT, class_to_allocnpages, class_to_nobjs, class_to_size

META_COMMIT_STEP = 64 << 10


# ---- meta blocks (heap lock) ----

def _meta_bump_locked(h, nbytes):
    hdr = h.hdr
    off = int(hdr[H_META_BUMP])
    end = off + nbytes
    if end > int(hdr[H_META_COMMIT]):
        newc = round_up(end, META_COMMIT_STEP)
        limit = h.layout.maxpages * MAX_META_PER_PAGE
        newc = min(newc, limit)
        heap_sys = (int(hdr[H_ARENA_PAGES]) - 1) << PAGE_SHIFT
        if end > limit:
            raise mheap.OutOfMemory(nbytes, heap_sys)
        try:
            h.heapseg.commit(h.meta_off + int(hdr[H_META_COMMIT]), newc - int(hdr[H_META_COMMIT]))
        except NoSpace:
            raise mheap.OutOfMemory(nbytes, heap_sys) from None
        hdr[H_META_COMMIT] = newc
    hdr[H_META_BUMP] = end
    return off


def meta_alloc_locked(h, cls, k=1):
    """k meta blocks for spans of size class cls: recycled ones first, then fresh ones."""
    hdr, q = h.hdr, h.meta_q
    out = []
    while len(out) < k:
        head = int(hdr[H_META_FREE + cls])
        if not head:
            break
        hdr[H_META_FREE + cls] = q[head >> 3]
        q[head >> 3] = 0
        out.append(head)
    rest = k - len(out)
    if rest:
        size = meta_bytes[cls]
        try:
            first = _meta_bump_locked(h, size * rest)
        except BaseException:
            for off in out:                # nothing taken when the heap is out of memory
                meta_free_locked(h, cls, off)
            raise
        out.extend(range(first, first + size * rest, size))
    return out


def meta_free_locked(h, cls, off):
    h.meta[off:off + meta_bytes[cls]] = 0
    h.meta_q[off >> 3] = int(h.hdr[H_META_FREE + cls])
    h.hdr[H_META_FREE + cls] = off


# ---- spans in and out of P caches ----

FULL_WALK = 32    # full spans cache_span looks at for one that sweeping would give room in


def cache_span(h, sc, p, give=()):
    """Give P p a span of class sc with at least one free object from the mcentral (Go's
    mcentral.cacheSpan); 0 if it has none (the caller takes fresh ones: new_spans).  `give`: the
    spans the P gives back, (span, objects it allocated from it) pairs (uncache_spans, in the same
    hold of the mcentral lock: a refill takes it once)."""
    cls = sc >> 1
    with h.central_lock(cls):
        for s, nalloc in give:
            _uncache_locked(h, sc, s, nalloc)
        return _cache_locked(h, sc, p)


def _cache_locked(h, sc, p):
    """A span of class sc with room, from the mcentral (its lock held), cached by P p; 0 if none."""
    heads = h.central_heads
    sg = h.gcq[GC_SWEEPGEN]
    while True:
        s = int(heads[sc * 2])
        if not s:
            break
        if h.s_sweepgen[s] != sg:
            sweep_span_locked(h, s, preserve=True)
        mheap.list_remove(h, heads, sc * 2, s)
        h.s_cached[s] = p
        return s
    # spans full before the last mark may have room once swept (Go's cacheSpan does this too).
    # A span swept here is kept even if sweeping emptied it (Go's sweep(preserve=true)): the P
    # takes it, where giving it to the page heap would only have the refill take a fresh one.
    # Spans that became full since are pushed in front of them, already swept: the walk is
    # bounded in steps, not only in sweeps (a heap of many full spans made each refill walk
    # them all); the sweeper gets to the rest.  Once the last cycle's sweep is done (GC_DONE
    # caught up with GC_STARTED) every full span is swept and full, and there is nothing to
    # walk for (Go's mheap_.sweepdone): the walk cost a refill ~13 us, a tenth of a refill on
    # a program that allocates without keeping.  No cycle can flip the sweepgen meanwhile: the
    # world cannot stop while we hold this lock in heap code.
    gc = h.gcq
    if gc[GC_DONE] == gc[GC_STARTED]:
        return 0
    s = int(heads[sc * 2 + 1])
    tries = steps = 0
    while s and tries < 16 and steps < FULL_WALK:
        steps += 1
        nxt = int(h.s_next[s])
        if h.s_sweepgen[s] != sg:
            tries += 1
            sweep_span_locked(h, s, preserve=True)
            if h.s_list[s] == L_PARTIAL:
                mheap.list_remove(h, heads, sc * 2, s)
                h.s_cached[s] = p
                return s
        s = nxt
    return 0


def new_spans(h, sc, p, k=1):
    """k fresh spans of class sc from the page heap, carved from one run in one hold of the heap
    lock, each cached by P p with nothing allocated (the mcache takes the first and keeps the rest
    for its next refills: mcache.RESERVE_PAGES).  Returns their first pages."""
    cls = sc >> 1
    npg = class_to_allocnpages[cls]
    with h.lock:
        run, nz, metas = _alloc_spans_locked(h, cls, npg, k)
        if k == 1:
            starts = run
        else:
            starts = run + np.arange(k, dtype=np.int64) * npg
            metas = np.array(metas, dtype=np.int64)
            h.s_npages[starts] = npg
            h.s_state[starts] = S_INUSE
            h.spanof[run:run + k * npg] = np.repeat(starts, npg)
            h.hdr[H_NSPANS_INUSE] += k - 1
        h.s_sc[starts] = sc
        h.s_alloc[starts] = 0
        h.s_cached[starts] = p
        h.s_meta[starts] = metas[0] if k == 1 else metas
        h.s_sweepgen[starts] = h.gcq[GC_SWEEPGEN]
    mheap.prepare(h, run, k * npg, nz)
    return [run] if k == 1 else starts.tolist()


def _alloc_spans_locked(h, cls, npages, k=1):
    """A run of k * npages pages and k meta blocks for spans of class cls; if either cannot be
    had (out of memory), neither is taken."""
    metas = meta_alloc_locked(h, cls, k)
    try:
        run, nz = mheap.alloc_locked(h, k * npages)
    except BaseException:
        for off in metas:
            meta_free_locked(h, cls, off)
        raise
    return run, nz, metas


def uncache_spans(h, sc, give):
    """A P gives spans of class sc back: (span, objects it allocated from it) pairs (Go's
    mcentral.uncacheSpan)."""
    with h.central_lock(sc >> 1):
        for s, nalloc in give:
            _uncache_locked(h, sc, s, nalloc)


def _uncache_locked(h, sc, s, nalloc):
    cls = sc >> 1
    h.s_cached[s] = -1
    a = int(h.s_alloc[s]) + nalloc
    h.s_alloc[s] = a
    if a == 0:
        _release_locked(h, cls, s)
    elif a == class_to_nobjs[cls]:
        mheap.list_push(h, h.central_heads, sc * 2 + 1, s, L_FULL)
    else:
        mheap.list_push(h, h.central_heads, sc * 2, s, L_PARTIAL)


def _release_locked(h, cls, s):
    # caller holds the mcentral lock of cls; the span is on no list
    with h.lock:
        meta_free_locked(h, cls, int(h.s_meta[s]))
        mheap.free_locked(h, s, needzero=False)   # every slot was zeroed when freed


def alloc_full_spans(h, sc, k, tid):
    """k fresh spans of class sc with every object allocated to type tid, in one contiguous run,
    linked onto the full list (new_batch's path).  Returns the spans' first pages."""
    cls = sc >> 1
    npg, nobj = class_to_allocnpages[cls], class_to_nobjs[cls]
    with h.lock:
        run, nz, metas = _alloc_spans_locked(h, cls, npg, k)
        metas = np.array(metas, dtype=np.int64)
        starts = run + np.arange(k, dtype=np.int64) * npg
        h.s_npages[starts] = npg
        h.s_state[starts] = S_INUSE
        h.spanof[run:run + k * npg] = np.repeat(starts, npg)
        h.hdr[H_NSPANS_INUSE] += k - 1
        h.s_sc[starts] = sc
        h.s_alloc[starts] = nobj
        h.s_cached[starts] = -1
        h.s_meta[starts] = metas
        h.s_sweepgen[starts] = h.gcq[GC_SWEEPGEN]
    mheap.prepare(h, run, k * npg, nz)
    h.meta_tid[((metas >> 1)[:, None] + np.arange(nobj)).ravel()] = tid
    if h.gcq[GC_PHASE]:      # allocated during a mark: black (the phase now: see Heap.alloc_small)
        h.meta[((metas + 2 * nobj)[:, None] + np.arange(nobj)).ravel()] = BLACK
    heads = h.central_heads
    with h.central_lock(cls):
        first, last = int(starts[0]), int(starts[-1])
        h.s_next[starts[:-1]] = starts[1:]
        h.s_prev[starts[1:]] = starts[:-1]
        h.s_list[starts] = L_FULL
        old = int(heads[sc * 2 + 1])
        h.s_prev[first] = 0
        h.s_next[last] = old
        if old:
            h.s_prev[old] = last
        heads[sc * 2 + 1] = first
    return starts


# ---- the free path (what the sweeper calls) ----

def free_small(h, s, idxs):
    """Free the objects at indices idxs (unique, validated as allocated) of small span s."""
    with h.central_lock(int(h.s_sc[s]) >> 1):
        _free_slots_locked(h, s, idxs)


def _free_slots_locked(h, s, idxs, preserve=False):
    """The free path of a small span (its mcentral lock held): zero the objects, clear their type
    ids, keep the counts and the span's list; an emptied span goes back to the page heap.
    Returns False in that case."""
    sc = int(h.s_sc[s])
    cls = sc >> 1
    size, nobj = class_to_size[cls], class_to_nobjs[cls]
    base = s << PAGE_SHIFT
    mb = int(h.s_meta[s])
    h.arena_u8[base:base + nobj * size].reshape(nobj, size)[idxs] = 0
    h.meta_tid[(mb >> 1) + np.asarray(idxs)] = 0
    return _freed_locked(h, s, len(idxs), preserve)


def _freed_locked(h, s, k, preserve=False):
    """k objects of small span s were freed (zeroed, type ids cleared): the counts and the span's
    list; an emptied span goes back to the page heap (then False) unless `preserve` (it stays on
    the partial list)."""
    sc = int(h.s_sc[s])
    cls = sc >> 1
    a = int(h.s_alloc[s]) - k
    h.s_alloc[s] = a
    h.central_nfree[sc] += k
    if h.s_cached[s] < 0:
        lst = int(h.s_list[s])
        if a == 0 and not preserve:
            mheap.list_remove(h, h.central_heads, sc * 2 + (lst == L_FULL), s)
            _release_locked(h, cls, s)
            return False
        if lst == L_FULL:
            mheap.list_remove(h, h.central_heads, sc * 2 + 1, s)
            mheap.list_push(h, h.central_heads, sc * 2, s, L_PARTIAL)
    return True


def sweep_span_locked(h, s, trace=None, preserve=False):
    """Sweep small span s (its mcentral lock held): free the white objects, clear the marks.
    Returns False if the span ended up empty and went back to the page heap (never with
    `preserve`: the caller is about to cache it)."""
    cls = int(h.s_sc[s]) >> 1
    size, nobj = class_to_size[cls], class_to_nobjs[cls]
    mb = int(h.s_meta[s])
    if not cls or not mb or h.s_state[s] != S_INUSE:
        # a record not (or no longer) a small span's: sweeping it would free through meta block 0
        raise RuntimeError(f"mprt: sweep of span {s}, which is not an in-use small span "
                           f"(state {int(h.s_state[s])}, class {cls}, meta {mb})")
    if h.cx is not None and trace is None:
        k = h.cx.sweep_small(mb, nobj, size, s << PAGE_SHIFT)     # the same loop in C (cptr.c)
        h.s_sweepgen[s] = h.gcq[GC_SWEEPGEN]
        return _freed_locked(h, s, k, preserve) if k else True
    tids = h.meta_tid[mb >> 1:(mb >> 1) + nobj]
    marks = h.meta[mb + 2 * nobj:mb + 3 * nobj]
    dead = np.flatnonzero((tids != 0) & (marks == 0))
    marks[:] = 0
    h.s_sweepgen[s] = h.gcq[GC_SWEEPGEN]
    if not len(dead):
        return True
    if trace is not None:
        trace((s << PAGE_SHIFT) + dead * size, size)
    return _free_slots_locked(h, s, dead, preserve)


def sweep_large_locked(h, s, trace=None):
    """Sweep large span s (heap lock held): free it if white, else clear its mark."""
    h.s_sweepgen[s] = h.gcq[GC_SWEEPGEN]
    if h.s_tid[s] == 0 or h.s_mark[s]:
        h.s_mark[s] = 0
        return True
    if trace is not None:
        trace(np.array([s << PAGE_SHIFT]), int(h.s_npages[s]) << PAGE_SHIFT)
    _free_large_locked(h, s)
    return False


def free_large(h, s):
    with h.lock:
        _free_large_locked(h, s)


def _free_large_locked(h, s):
    n = int(h.s_npages[s])
    h.hdr[H_NLARGEFREE] += 1
    h.hdr[H_LARGEFREE] += n << PAGE_SHIFT
    if h.gc[GC_EFENCE]:
        # GODEBUG=efence=1: the pages go back to the OS and the span is never handed out again
        h.s_tid[s] = 0
        h.s_mark[s] = 0
        h.arena.release(s << PAGE_SHIFT, n << PAGE_SHIFT)
        return
    mheap.free_locked(h, s, needzero=True)


def check_locked(h):
    """Assert the central lists' invariants (every mcentral lock and the heap lock held)."""
    seen = set()
    for sc in range(2, len(h.central_heads) // 2):
        cls = sc >> 1
        nobj = class_to_nobjs[cls]
        for which, code in ((0, L_PARTIAL), (1, L_FULL)):
            s, prev = int(h.central_heads[sc * 2 + which]), 0
            while s:
                assert s not in seen, f"span {s} on two central lists"
                seen.add(s)
                assert h.s_state[s] == S_INUSE and int(h.s_sc[s]) == sc, (s, sc)
                assert int(h.s_list[s]) == code and h.s_cached[s] < 0 and int(h.s_prev[s]) == prev, s
                a = int(h.s_alloc[s])
                tb = int(h.s_meta[s]) >> 1
                assert a == int(np.count_nonzero(h.meta_tid[tb:tb + nobj])), f"span {s}: s_alloc {a} is wrong"
                assert (0 < a < nobj) if code == L_PARTIAL else a == nobj, (s, a, code)
                prev, s = s, int(h.s_next[s])
    inuse = np.flatnonzero(h.s_state[:int(h.hdr[H_ARENA_PAGES])] == S_INUSE)
    small = inuse[(h.s_sc[inuse] >> 1) > 0]
    uncached = set(small[h.s_cached[small] < 0].tolist())
    assert uncached == seen, f"small spans on no list: {sorted(uncached - seen)[:5]}"


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.HEAP)
