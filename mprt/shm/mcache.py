"""The per-P span cache: one span per span class, with no lock on its fast path.

See malloc.py for the overview.  An MCache lives in the process that holds its P, and only that
process touches it: it is ordinary Python state (a list of free object indices per span class),
not shared memory.  The spans it caches are marked s_cached = P in shared memory and are on no
central list, so no other process allocates from them.  When the process gives its P up it flushes
the cache (every span goes back to its mcentral), so a P moving to another process carries no state
with it but its counters in pstat.

Invariant: for a cached span of class sc, free[sc] holds indices of objects whose type id is zero,
and ncached[sc] - len(free[sc]) objects were allocated from it since it was cached.
"""
import numpy as np

from . import mcentral
from .layout import NSPANCLASS, PSTAT_WORDS
from .sizeclasses import PAGE_SHIFT, class_to_nobjs


class MCache:
    __slots__ = ("h", "p", "span", "free", "base", "tidbase", "ncached", "stats")

    def __init__(self, h, p):
        self.h, self.p = h, p
        self.span = [0] * NSPANCLASS
        self.free = [[] for _ in range(NSPANCLASS)]
        self.base = [0] * NSPANCLASS
        self.tidbase = [0] * NSPANCLASS
        self.ncached = [0] * NSPANCLASS
        row = h.pstat_mv[p * PSTAT_WORDS:(p + 1) * PSTAT_WORDS]
        self.stats = row    # [PS_NMALLOC + sizeclass] (layout.py) counts allocations; written only here

    def refill(self, sc):
        """Swap the span of class sc for one with free objects (Go's mcache.refill)."""
        h, fl = self.h, self.free[sc]
        s = self.span[sc]
        if s:
            self.span[sc] = 0
            n = self.ncached[sc] - len(fl)
            del fl[:]
            mcentral.uncache_span(h, sc, s, n)
        s = mcentral.cache_span(h, sc, self.p)
        nobj = class_to_nobjs[sc >> 1]
        tb = int(h.s_meta[s]) >> 1
        free = np.flatnonzero(h.meta_tid[tb:tb + nobj] == 0)[::-1].tolist()
        fl.extend(free)
        self.span[sc], self.base[sc], self.tidbase[sc], self.ncached[sc] = s, s << PAGE_SHIFT, tb, len(free)

    def flush(self):
        """Give every cached span back (Go's releaseAll)."""
        h = self.h
        for sc, s in enumerate(self.span):
            if s:
                fl = self.free[sc]
                self.span[sc] = 0
                n = self.ncached[sc] - len(fl)
                del fl[:]
                mcentral.uncache_span(h, sc, s, n)



