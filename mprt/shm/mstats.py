"""Allocator statistics: Go's MemStats computed from the heap's shared counters.

Every counter has one writer (layout.py): a P's allocations are counted in its own pstat row
without a lock, frees under the mcentral lock of their class, page and large-object counts under
the heap lock.  Reading sums them; the world is not stopped here (the scheduler's ReadMemStats
stops it first), so a read that races an allocation sees it either wholly or not at all, and the
identities below hold by construction for every read:

  Sys == HeapSys + StackSys + MSpanSys + MCacheSys + BuckHashSys + GCSys + OtherSys
  HeapIdle + HeapInuse == HeapSys;  HeapAlloc == Alloc;  HeapObjects == Mallocs - Frees

What each Sys field counts in mprt (committed bytes of shared memory):
  HeapSys      the arena grown so far;           MSpanSys   span records of those pages
  GCSys        per-object meta blocks, page maps (spanof, page flags, dirty flags), the
               collector's words and pause rings, the finalizer tables
  MCacheSys    the per-P counter rows;           OtherSys   header, lists, type table
  StackSys     the processes' root tables: in Go the roots live on goroutine stacks, in mprt
               they live in these tables (StackInuse is the same figure)
  BuckHashSys  the profiling buckets and function table (control segment, sched/mprof.py, symtab.py)
"""
import numpy as np

from .layout import (
    H_ARENA_PAGES,
    H_LARGEALLOC,
    H_LARGEFREE,
    H_META_COMMIT,
    H_NEXTGC,
    H_NLARGEALLOC,
    H_NLARGEFREE,
    H_NSPANS_INUSE,
    H_PAGES_FREE,
    H_PAGES_INUSE,
    H_PAGES_RELEASED,
    H_TBLOB_COMMIT,
    MAXP,
    MAXPROCS,
    PAGE_ARRAYS,
    PR_LOOKUPS,
    PR_ROOTBYTES,
    PROC_WORDS,
    PS_NMALLOC,
    PS_OWNER,
    PSTAT_WORDS,
    SPAN_RECORD_BYTES,
    round_up,
)
from .sizeclasses import NUM_SIZE_CLASSES, PAGE_SHIFT, class_to_size

GC_REGIONS = ("gc", "specials", "finq")
NUM_BYSIZE = 61   # MemStats.BySize keeps Go 1.9's 61 entries
_sizes = np.array(class_to_size, dtype=np.int64)


def alloc_totals(h, nrows):
    """(TotalAlloc, HeapAlloc), summing only the first nrows P rows (the Ms that exist)."""
    return _alloc_totals(h, max(1, nrows))


def _alloc_totals(h, nrows):
    pst = h.pstat[:nrows * PSTAT_WORDS].reshape(nrows, PSTAT_WORDS)
    nmalloc = pst[:, PS_NMALLOC:PS_NMALLOC + NUM_SIZE_CLASSES].sum(axis=0)
    nfree = h.central_nfree.reshape(NUM_SIZE_CLASSES, 2).sum(axis=1)
    nmalloc[0] = nfree[0] = 0
    hdr = h.hdr
    total = int(nmalloc @ _sizes) + int(hdr[H_LARGEALLOC])
    return total, total - int(nfree @ _sizes) - int(hdr[H_LARGEFREE])


def heap_alloc(h, nrows):
    """HeapAlloc, summing only the first nrows P rows (the Ms that exist): the pacer's heap_live."""
    return _alloc_totals(h, max(1, nrows))[1]


def total_alloc(h, nrows):
    return _alloc_totals(h, max(1, nrows))[0]


def read(h, buckhash_bytes=0):
    """A dict of every MemStats field.  buckhash_bytes: BuckHashSys, the profiling tables, which
    live in the scheduler's control segment (mprt/sched/ctl.py buckhash_bytes)."""
    with h.lock:
        hdr = h.hdr.copy()
    pst = h.pstat.reshape(MAXP, PSTAT_WORDS)
    procs = h.procs.reshape(MAXPROCS, PROC_WORDS)
    nmalloc = pst[:, PS_NMALLOC:PS_NMALLOC + NUM_SIZE_CLASSES].sum(axis=0)
    nfree = h.central_nfree.reshape(NUM_SIZE_CLASSES, 2).sum(axis=1)
    nmalloc[0] = nfree[0] = 0
    arena_pages = int(hdr[H_ARENA_PAGES])
    lay = h.layout

    def page_arrays(kind):
        return sum(round_up(arena_pages * np.dtype(dt).itemsize) for _, dt, k in PAGE_ARRAYS if k == kind)

    total_alloc = int((nmalloc * _sizes).sum()) + int(hdr[H_LARGEALLOC])
    total_free = int((nfree * _sizes).sum()) + int(hdr[H_LARGEFREE])
    mallocs = int(nmalloc.sum()) + int(hdr[H_NLARGEALLOC])
    frees = int(nfree.sum()) + int(hdr[H_NLARGEFREE])
    st = {
        "Alloc": total_alloc - total_free,
        "TotalAlloc": total_alloc,
        "Lookups": int(procs[:, PR_LOOKUPS].sum()),
        "Mallocs": mallocs,
        "Frees": frees,
        "HeapSys": (arena_pages - 1) << PAGE_SHIFT,
        "HeapIdle": int(hdr[H_PAGES_FREE]) << PAGE_SHIFT,
        "HeapInuse": int(hdr[H_PAGES_INUSE]) << PAGE_SHIFT,
        "HeapReleased": int(hdr[H_PAGES_RELEASED]) << PAGE_SHIFT,
        "HeapObjects": mallocs - frees,
        "StackInuse": int(procs[:, PR_ROOTBYTES].sum()),
        "MSpanInuse": int(hdr[H_NSPANS_INUSE]) * SPAN_RECORD_BYTES,
        "MSpanSys": page_arrays("mspan"),
        "MCacheInuse": int(np.count_nonzero(pst[:, PS_OWNER])) * PSTAT_WORDS * 8,
        "MCacheSys": lay.fixed_bytes(["pstat"]),
        "BuckHashSys": buckhash_bytes,
        "GCSys": int(hdr[H_META_COMMIT]) + page_arrays("gc") + lay.fixed_bytes(GC_REGIONS),
        "OtherSys": (lay.fixed_bytes([n for n in lay.fixed if n != "pstat" and n not in GC_REGIONS])
                     + int(hdr[H_TBLOB_COMMIT])),
        "NextGC": int(hdr[H_NEXTGC]) & (2**64 - 1),
        "EnableGC": True,
        "DebugGC": False,
        "BySize": [(class_to_size[i], int(nmalloc[i]), int(nfree[i])) for i in range(NUM_BYSIZE)],
    }
    st["HeapAlloc"] = st["Alloc"]
    st["StackSys"] = st["StackInuse"]
    st["Sys"] = (st["HeapSys"] + st["StackSys"] + st["MSpanSys"] + st["MCacheSys"] + st["BuckHashSys"]
                 + st["GCSys"] + st["OtherSys"])
    return st


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.HEAP)
