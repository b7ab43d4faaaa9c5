"""The page heap: spans of 8 KiB pages carved from the arena, shared by every process.

See malloc.py for the overview.  Everything here runs under the heap lock (h.lock) unless it says
otherwise; callers take the lock with `with h.lock:` and call the *_locked functions.

Invariants (checked by `check_locked`, asserted in tests):
  - every page below hdr[H_ARENA_PAGES], except page 0, belongs to exactly one span, and
    spanof[p] is that span's first page;
  - a span is S_FREE (on free_heads[min(npages, 128)]) or S_INUSE; two free spans never touch
    (freeing coalesces);
  - H_PAGES_INUSE + H_PAGES_FREE == H_ARENA_PAGES - 1; H_PAGES_RELEASED counts free pages with
    PF_RELEASED, and only free pages carry it;
  - a released page is never read: it is committed again (fallocate) before its span is handed out.

Allocation is best fit: the exact-size list first, then longer small lists, then the smallest large
span (lowest address on ties).  The arena grows by at least 1 MiB (Go's _HeapAllocChunk), in 64 KiB
steps.  Growing past the reservation, or past what /dev/shm can commit, is Go's out-of-memory.
"""
import numpy as np

from .layout import (
    H_ARENA_PAGES,
    H_NSPANS_INUSE,
    H_PAGES_FREE,
    H_PAGES_INUSE,
    H_PAGES_RELEASED,
    L_FREE,
    L_NONE,
    PF_NEEDZERO,
    PF_RELEASED,
    S_DEAD,
    S_FREE,
    S_INUSE,
)
from .segment import NoSpace
from .sizeclasses import PAGE_SHIFT

HEAP_ALLOC_CHUNK_PAGES = (1 << 20) >> PAGE_SHIFT   # grow by at least 1 MiB
GROW_STEP_PAGES = (64 << 10) >> PAGE_SHIFT         # in multiples of 64 KiB
LARGE_LIST = 128


class OutOfMemory(MemoryError):
    """Go's out-of-memory: the arena cannot grow (reservation reached, or /dev/shm is full)."""

    def __init__(self, ask, in_use):
        self.ask, self.in_use = ask, in_use
        super().__init__(f"runtime: out of memory: cannot allocate {ask}-byte block ({in_use} in use)\n"
                         f"fatal error: out of memory")


# ---- lists (doubly linked through s_next/s_prev; 0 is the end) ----

def list_push(h, heads, i, s, code):
    head = int(heads[i])
    h.s_next[s] = head
    h.s_prev[s] = 0
    if head:
        h.s_prev[head] = s
    heads[i] = s
    h.s_list[s] = code


def list_remove(h, heads, i, s):
    prev, nxt = int(h.s_prev[s]), int(h.s_next[s])
    if prev:
        h.s_next[prev] = nxt
    else:
        heads[i] = nxt
    if nxt:
        h.s_prev[nxt] = prev
    h.s_next[s] = h.s_prev[s] = 0
    h.s_list[s] = L_NONE


def _free_list(npages):
    return npages if npages < LARGE_LIST else LARGE_LIST


# ---- allocation ----

def alloc_locked(h, npages):
    """Take a span of exactly `npages` pages off the free lists, growing the arena if needed.
    Returns (start page, whether any page needs zeroing).  The span is S_INUSE, counted in
    H_PAGES_INUSE; pages that had been released are committed again first (sysUsed), so running
    out of /dev/shm there is out-of-memory with nothing taken.  The caller zeroes (`prepare`,
    outside the lock) before use."""
    s = _find_locked(h, npages)
    if s == 0:
        grow_locked(h, npages)
        s = _find_locked(h, npages)
        assert s, "grown heap has no span to fit"
    flags = h.pflags[s:s + npages]
    anyf = int(flags[0]) if npages == 1 else int(np.bitwise_or.reduce(flags))
    nreleased = int(np.count_nonzero(flags & PF_RELEASED)) if anyf & PF_RELEASED else 0
    if nreleased:
        try:
            h.arena.commit(s << PAGE_SHIFT, npages << PAGE_SHIFT)
        except NoSpace:
            raise OutOfMemory(npages << PAGE_SHIFT, (int(h.hdr[H_ARENA_PAGES]) - 1) << PAGE_SHIFT) from None
    needzero = bool(anyf & PF_NEEDZERO)
    n = int(h.s_npages[s])
    list_remove(h, h.free_heads, _free_list(n), s)
    if n > npages:  # trim the tail into a free span of its own
        t, tn = s + npages, n - npages
        _set_span(h, t, tn, S_FREE)
        list_push(h, h.free_heads, _free_list(tn), t, L_FREE)
    _set_span(h, s, npages, S_INUSE)
    flags[:] = 0
    hdr = h.hdr
    hdr[H_PAGES_FREE] -= npages
    hdr[H_PAGES_INUSE] += npages
    hdr[H_PAGES_RELEASED] -= nreleased
    hdr[H_NSPANS_INUSE] += 1
    return s, needzero


def prepare(h, s, npages, needzero):
    """Zero a freshly allocated span if its pages may hold old data (no lock: the caller owns it)."""
    if needzero:
        h.arena_u8[s << PAGE_SHIFT:(s + npages) << PAGE_SHIFT] = 0


def _find_locked(h, npages):
    heads = h.free_heads
    if npages < LARGE_LIST:
        nz = np.flatnonzero(heads[npages:LARGE_LIST] != 0)   # the first list with a span of its size
        if len(nz):
            return int(heads[npages + int(nz[0])])
    best, bestn = 0, 0
    s = int(heads[LARGE_LIST])
    while s:
        n = int(h.s_npages[s])
        if n >= npages and (best == 0 or n < bestn or (n == bestn and s < best)):
            best, bestn = s, n
        s = int(h.s_next[s])
    return best


def _set_span(h, s, npages, state):
    h.s_npages[s] = npages
    h.s_state[s] = state
    h.spanof[s:s + npages] = s
    if npages > 1:
        h.s_state[s + 1:s + npages] = S_DEAD


def grow_locked(h, npages):
    """Extend the arena by at least `npages` pages and put them on the free lists (sysMap)."""
    hdr = h.hdr
    cur = int(hdr[H_ARENA_PAGES])
    maxpages = h.layout.maxpages
    ask = max(-(-npages // GROW_STEP_PAGES) * GROW_STEP_PAGES, HEAP_ALLOC_CHUNK_PAGES)
    for n in (ask, npages):
        if cur + n > maxpages:
            continue
        try:
            h.arena.commit(cur << PAGE_SHIFT, n << PAGE_SHIFT)
            h.commit_page_arrays(cur + n)
        except NoSpace:
            continue
        break
    else:
        raise OutOfMemory(ask << PAGE_SHIFT, (cur - 1) << PAGE_SHIFT)
    hdr[H_ARENA_PAGES] = cur + n
    hdr[H_PAGES_FREE] += n
    _set_span(h, cur, n, S_INUSE)    # a fake in-use span, freed so that it coalesces
    h.pflags[cur:cur + n] = 0
    hdr[H_NSPANS_INUSE] += 1
    hdr[H_PAGES_FREE] -= n
    hdr[H_PAGES_INUSE] += n
    free_locked(h, cur, needzero=False)


# ---- freeing ----

def free_locked(h, s, needzero=True):
    """Return in-use span s to the free lists, coalescing with free neighbours."""
    n = int(h.s_npages[s])
    assert h.s_state[s] == S_INUSE, f"free of span {s} in state {h.s_state[s]}"
    hdr = h.hdr
    hdr[H_PAGES_INUSE] -= n
    hdr[H_PAGES_FREE] += n
    hdr[H_NSPANS_INUSE] -= 1
    if needzero:
        h.pflags[s:s + n] |= PF_NEEDZERO
    h.s_sc[s] = 0
    h.s_alloc[s] = 0
    h.s_cached[s] = -1
    h.s_meta[s] = 0
    h.s_tid[s] = 0
    h.s_mark[s] = 0
    if s > 1:  # left neighbour
        left = int(h.spanof[s - 1])
        if h.s_state[left] == S_FREE:
            list_remove(h, h.free_heads, _free_list(int(h.s_npages[left])), left)
            h.s_state[s] = S_DEAD
            n += int(h.s_npages[left])
            s = left
    right = s + n
    if right < int(hdr[H_ARENA_PAGES]) and h.s_state[right] == S_FREE:
        rn = int(h.s_npages[right])
        list_remove(h, h.free_heads, _free_list(rn), right)
        h.s_state[right] = S_DEAD
        n += rn
    _set_span(h, s, n, S_FREE)
    list_push(h, h.free_heads, _free_list(n), s, L_FREE)
    return s


def free_spans_locked(h):
    """Every free span, as a list of (start, npages)."""
    out = []
    for i in range(1, LARGE_LIST + 1):
        s = int(h.free_heads[i])
        while s:
            out.append((s, int(h.s_npages[s])))
            s = int(h.s_next[s])
    return out


def scavenge_locked(h):
    """Return every free page not yet released to the OS (MADV_REMOVE).  Returns bytes released."""
    released = 0
    for s, n in free_spans_locked(h):
        flags = h.pflags[s:s + n]
        todo = (flags & PF_RELEASED) == 0
        if not todo.any():
            continue
        # runs of unreleased pages
        edges = np.flatnonzero(np.diff(np.concatenate(([0], todo.view(np.int8), [0]))))
        for a, b in zip(edges[0::2], edges[1::2]):
            h.arena.release((s + int(a)) << PAGE_SHIFT, int(b - a) << PAGE_SHIFT)
        k = int(np.count_nonzero(todo))
        flags[todo] = PF_RELEASED     # a hole reads as zeros: no need to zero it again
        released += k
    h.hdr[H_PAGES_RELEASED] += released
    return released << PAGE_SHIFT


def check_locked(h):
    """Assert the page heap's invariants (tests and debug mode)."""
    hdr = h.hdr
    npages = int(hdr[H_ARENA_PAGES])
    p, inuse, free, released, nspans = 1, 0, 0, 0, 0
    while p < npages:
        n = int(h.s_npages[p])
        st = int(h.s_state[p])
        assert n > 0 and p + n <= npages, (p, n)
        assert (h.spanof[p:p + n] == p).all(), f"spanof broken in span {p}"
        if st == S_FREE:
            free += n
            released += int(np.count_nonzero(h.pflags[p:p + n] & PF_RELEASED))
            assert int(h.s_list[p]) == L_FREE
            nxt = p + n
            assert nxt >= npages or h.s_state[nxt] != S_FREE, f"free spans {p} and {nxt} not coalesced"
        else:
            assert st == S_INUSE, (p, st)
            assert not (h.pflags[p:p + n] & PF_RELEASED).any(), f"in-use span {p} has released pages"
            inuse += n
            nspans += 1
        p += n
    listed = sum(n for _, n in free_spans_locked(h))
    assert listed == free, (listed, free)
    assert inuse == hdr[H_PAGES_INUSE] and free == hdr[H_PAGES_FREE], (inuse, free, hdr[H_PAGES_INUSE], hdr[H_PAGES_FREE])
    assert released == hdr[H_PAGES_RELEASED], (released, hdr[H_PAGES_RELEASED])
    assert nspans == hdr[H_NSPANS_INUSE], (nspans, hdr[H_NSPANS_INUSE])
    assert inuse + free == npages - 1


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.HEAP)
