"""The per-P span cache: one span per span class, with no lock on its fast path.

See malloc.py for the overview.  An MCache lives in the process that holds its P, and only that
process touches it: it is ordinary Python state (a list of free object indices per span class),
not shared memory.  The spans it caches are marked s_cached = P in shared memory and are on no
central list, so no other process allocates from them.  When the process gives its P up it flushes
the cache (every span goes back to its mcentral), so a P moving to another process carries no state
with it but its counters in pstat.

Invariant: for a cached span of class sc, free[sc] holds indices of objects whose type id is zero,
and ncached[sc] - len(free[sc]) objects were allocated from it since it was cached.  A P also
caches spans it does not allocate from: reserve[sc], fresh spans taken with the last one from the
page heap (nothing allocated), and retired[sc], full spans it allocated from, with the count it has
not handed in yet.  They are cached like the current one (s_cached = P, on no list) and go back to
the mcentral at the next refill that takes its lock, or with the cache (flush).

The collector (mprt/gc/mgc.py): every allocation first compares `gen` with the heap's GC_GEN word,
which changes when a mark starts and when it ends (sync).  While marking, objects are allocated
black (their mark byte set).  When a mark has ended, the cache is flushed before anything else is
allocated: the spans it held were not swept, and go back to their mcentral to be swept before
anyone allocates from them again.  So an M never allocates from an unswept span, and the sweeper
may sweep a span still cached by an M that has not synced: that M drops it unused.
"""
import numpy as np

from . import mcentral
from .layout import GC_DONE, GC_GEN, GC_PHASE, GC_STARTED, NSPANCLASS, PH_OFF, PSTAT_WORDS
from .sizeclasses import PAGE_SHIFT, class_to_allocnpages, class_to_nobjs

# a refill that finds no span in the mcentral takes fresh ones from the page heap, this many pages
# of them at a time, and keeps the rest cached by its P for its next refills of the class (one search
# of the page heap and one hold of its lock for several refills: that was a third of a refill's cost,
# and a refill a third of mprt.new's on a program that drops what it allocates).  They go back with
# the cache (flush).
RESERVE_PAGES = 8

# every object of a span of size class k free, the last popped first (a refill of a fresh span
# copies it: building it anew cost ~5 us a refill)
_ALL_FREE = [tuple(range(n - 1, -1, -1)) for n in class_to_nobjs]


class MCache:
    __slots__ = ("h", "p", "span", "free", "base", "tidbase", "markbase", "ncached", "stats", "gen",
                 "black", "reserve", "retired")

    def __init__(self, h, p):
        self.h, self.p = h, p
        self.markbase = [0] * NSPANCLASS
        self.gen = h.gcq[GC_GEN]
        self.black = h.gcq[GC_PHASE] != PH_OFF
        self.span = [0] * NSPANCLASS
        self.free = [[] for _ in range(NSPANCLASS)]
        self.reserve = [[] for _ in range(NSPANCLASS)]
        self.retired = [[] for _ in range(NSPANCLASS)]
        self.base = [0] * NSPANCLASS
        self.tidbase = [0] * NSPANCLASS
        self.ncached = [0] * NSPANCLASS
        row = h.pstat_mv[p * PSTAT_WORDS:(p + 1) * PSTAT_WORDS]
        self.stats = row    # [PS_NMALLOC + sizeclass] (layout.py) counts allocations; written only here

    def refill(self, sc):
        """Swap the span of class sc for one with free objects (Go's mcache.refill)."""
        h, fl = self.h, self.free[sc]
        old = self.span[sc]
        retired, r = self.retired[sc], self.reserve[sc]
        if old:
            self.span[sc] = 0
            retired.append((old, self.ncached[sc] - len(fl)))
            del fl[:]
        gc = h.gcq
        if r and not h.central_heads[sc * 2] and gc[GC_DONE] == gc[GC_STARTED]:
            # the common case, with no lock: no span in the mcentral has room (a look without
            # its lock: one that gets some meanwhile is found by a later refill) and none can be
            # swept for room (the cycle's sweep is done), so the mcentral lock would only take
            # the full span back and give nothing: it stays ours (retired) until then
            s = r.pop()
        else:
            s = mcentral.cache_span(h, sc, self.p, retired)     # what we give back, in the same hold
            del retired[:]
            if not s:
                if not r:
                    k = max(1, RESERVE_PAGES // class_to_allocnpages[sc >> 1])
                    r.extend(reversed(mcentral.new_spans(h, sc, self.p, k)))
                s = r.pop()
        nobj = class_to_nobjs[sc >> 1]
        tb = int(h.s_meta[s]) >> 1
        if h.s_alloc[s] == 0:       # a fresh span, or one swept empty: every object is free
            free = _ALL_FREE[sc >> 1]
        else:
            free = np.flatnonzero(h.meta_tid[tb:tb + nobj] == 0)[::-1].tolist()
        fl.extend(free)
        self.span[sc], self.base[sc], self.tidbase[sc], self.ncached[sc] = s, s << PAGE_SHIFT, tb, len(free)
        self.markbase[sc] = h.meta_off + tb * 2 + 2 * nobj
        h.kick_gc()

    def sync(self):
        """The collector changed phase since this cache last looked (see the module comment)."""
        h = self.h
        gen = h.gcq[GC_GEN]
        black = h.gcq[GC_PHASE] != PH_OFF
        if not black:
            self.flush()
        self.gen, self.black = gen, black
        if h.cx is not None:
            h.cx.mcache_state(gen)

    def flush(self):
        """Give every cached span back (Go's releaseAll): the one allocated from, the retired and
        the reserved."""
        h = self.h
        for sc, s in enumerate(self.span):
            fl, retired, r = self.free[sc], self.retired[sc], self.reserve[sc]
            if not (s or retired or r):
                continue
            give = retired + [(x, 0) for x in r]          # a reserved span: nothing allocated
            if s:
                give.append((s, self.ncached[sc] - len(fl)))
                self.span[sc] = 0
                del fl[:]
            del retired[:], r[:]
            mcentral.uncache_spans(h, sc, give)


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.HEAP)
