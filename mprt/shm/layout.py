"""The heap segment's layout: every shared array of the allocator, at a fixed offset.

The heap segment `/mprt.<rtid>.heap` holds the allocator's metadata; the arena `/mprt.<rtid>.arena`
holds the objects.  Both are reserved for the configured arena maximum and committed as they grow
(see segment.py).  Every region starts on a 4 KiB boundary so that commits never share an OS page.

Who may touch what (no GIL protects memory shared between processes):

  hdr[...]           see the H_* names below; each says its lock
  pstat[p, :]        written only by the process that holds P p (its mcache); read by anyone
  procs[slot, :]     written only by the process in that slot; slot claimed/freed under heap lock
  central_*          mcentral lists and counters, under the mcentral lock of the size class
  free_heads         mheap free lists, under the heap lock
  spanof[page]       start page of the span holding `page`, for every page below hdr[H_ARENA_PAGES];
                     written under the heap lock, read by anyone (an in-use span's entries are stable)
  pflags[page]       PF_RELEASED / PF_NEEDZERO of free pages, under the heap lock
  s_*[start page]    span records, indexed by the span's first page.  npages/state/sc/meta/tid are
                     written under the heap lock when a span changes hands, and a span is in use
                     before its record is whole: whoever acts on a record it did not find on a list
                     reads it under the heap lock (the sweeper).  s_alloc, s_next/s_prev, s_list and
                     s_cached of a small span under its mcentral lock
  meta               per-span object metadata (see malloc.py), carved under the heap lock; a span's
                     tid slots are written by the P caching it (allocation) and by the free path under
                     the mcentral lock (never the same slot at once)
  t_* and tblob      the type table, append-only under the types lock; an entry is immutable once
                     hdr[H_NTYPES] covers it
  gc[...]            the collector's words (GC_* below, mprt/gc/mgc.py says who writes each);
                     the pause rings are the coordinator's alone
  s_sweepgen[s]      the sweep generation a span was last swept in: under the mcentral lock of its
                     class (small) or the heap lock (large); set for a new span when it is carved
  gcdirty[s]         1 when a process greyed an object of span s (write barrier, root scan); set by
                     anyone, cleared by the coordinator before it looks (mprt/gc/mgcmark.py)
  specials, finq     finalizers set and finalizers queued: under the finalizer lock (mfinal.py)
"""
import numpy as np

from ..settings import MAX_GOMAXPROCS
from .sizeclasses import NUM_SIZE_CLASSES, PAGE_SHIFT, class_to_nobjs

OS_PAGE = 4096
MAGIC = 0x6D707274_19020002  # "mprt", go1.9.2 layout v2 (collector)

MAXP = MAX_GOMAXPROCS   # Go's GOMAXPROCS cap (_MaxGomaxprocs)
MAXPROCS = 1024      # processes attached at once (each has a root table)
MAXTYPES = 65535     # type ids are uint16; 0 means "no object"
NSPANCLASS = NUM_SIZE_CLASSES * 2   # spanclass = sizeclass << 1 | noscan
TBLOB_BYTES = 16 << 20

# Header words.
(H_MAGIC,            # constant
 H_ARENA_MAX,        # constant: arena reservation in bytes
 H_OWNER_PID,        # constant: pid of the creating process
 H_GCPERCENT,        # set at boot (GOGC)
 H_NEXTGC,           # heap lock
 H_ARENA_PAGES,      # heap lock: pages grown so far, page 0 (nil) included
 H_PAGES_INUSE,      # heap lock
 H_PAGES_FREE,       # heap lock
 H_PAGES_RELEASED,   # heap lock
 H_NSPANS_INUSE,     # heap lock
 H_NLARGEALLOC,      # heap lock
 H_LARGEALLOC,       # heap lock (bytes)
 H_NLARGEFREE,       # heap lock
 H_LARGEFREE,        # heap lock (bytes)
 H_META_BUMP,        # heap lock: next free byte of the meta region
 H_META_COMMIT,      # heap lock: bytes of the meta region committed
 H_NTYPES,           # types lock: type ids 1..H_NTYPES are in use
 H_TBLOB_BUMP,       # types lock
 H_TBLOB_COMMIT,     # types lock
 ) = range(19)
H_META_FREE = 32     # heap lock: H_META_FREE + sizeclass = head of that class's free meta blocks
HDR_WORDS = H_META_FREE + NUM_SIZE_CLASSES + 1

# The collector's words: region "gc" (see mprt/gc/mgc.py for their writers).
GC_PHASE = 0
GC_GEN = 1
GC_SWEEPGEN = 2
GC_NUMGC = 3
GC_NUMFORCED = 4
GC_PAUSETOTAL = 5
GC_LASTGC = 6
GC_STARTED = 7
GC_DONE = 8
GC_HEAPMARKED = 9
GC_TRIGGER = 10
GC_TRIGRATIO = 11
GC_TOTALTIME = 12
GC_STARTNS = 13
GC_KICKED = 14
GC_NSPECIAL = 15
GC_NFINQ = 16
GC_FING = 17
GC_FINGWAIT = 18
GC_FINGRUNNING = 19
GC_NSCVG = 20
GC_GCTRACE = 21
GC_GCPACERTRACE = 22
GC_GCSTOPTHEWORLD = 23
GC_GCCHECKMARK = 24
GC_SBRK = 25
GC_EFENCE = 26
GC_INVALIDPTR = 27
GC_ALLOCFREETRACE = 28
GC_MARKBYTES = 29
GC_MARKOBJS = 30
GC_MARKNS = 31
GC_LASTSCVG = 32
GC_FORCEDREQ = 33
GC_MARKCPUNS = 34
GC_CPUFRACTION = 35
_GC_COUNT = 36
GC_PAUSENS = 256          # 256-entry ring of pause lengths (ns), indexed by NumGC % 256
GC_PAUSEEND = 512         # 256-entry ring of pause end times (Unix ns)
GC_WORDS = 768
assert _GC_COUNT <= GC_PAUSENS
# GC_PHASE values (Go's _GCoff, _GCmark, _GCmarktermination)
PH_OFF, PH_MARK, PH_MARKTERM = 0, 1, 2
# mark bytes: 0 white, 1 grey (shaded by a process, waits in a dirty span), 2 black (the
# coordinator has it, or it was allocated during the mark)
WHITE, GREY, BLACK = 0, 1, 2
MAXSPECIALS = 1 << 14     # finalizers set at once
MAXFINQ = 1 << 14         # finalizers queued and not yet run

# pstat columns: one row per P, written only by its holder.
PS_NMALLOC = 0                   # + sizeclass: small objects allocated (class 0 unused)
PS_OWNER = NUM_SIZE_CLASSES      # pid of the process holding the P, 0 if none
PSTAT_WORDS = 80

# procs columns: one row per attached process.
PR_PID, PR_ROOTBYTES, PR_LOOKUPS = 0, 1, 2
PROC_WORDS = 8

# span states
S_DEAD, S_FREE, S_INUSE = 0, 1, 2
# span lists (s_list)
L_NONE, L_PARTIAL, L_FULL, L_FREE = 0, 1, 2, 3
# page flags
PF_RELEASED, PF_NEEDZERO = 1, 2

# Meta bytes of a span of each size class: nobjs uint16 type ids, then nobjs mark bytes, 64-aligned.
meta_bytes = [0] + [((n * 3) + 63) & ~63 for n in class_to_nobjs[1:]]
# In use, meta never exceeds 3 KiB per page (class 1: 1024 objects on one page).  Freed blocks are
# recycled per class only, so a heap that cycles through size classes keeps some of each class's
# blocks: the region reserves 4x that (virtual address space; only what is carved is committed).
MAX_META_PER_PAGE = 4 * 3 * 1024

# Per-page arrays of span records and page maps: (name, dtype, kind) with kind
# "mspan" (span records) or "gc" (page maps, counted as GC metadata).
PAGE_ARRAYS = [
    ("spanof", np.int32, "gc"),
    ("pflags", np.uint8, "gc"),
    ("s_npages", np.int32, "mspan"),
    ("s_state", np.int8, "mspan"),
    ("s_sc", np.int16, "mspan"),
    ("s_alloc", np.int32, "mspan"),
    ("s_cached", np.int16, "mspan"),
    ("s_list", np.int8, "mspan"),
    ("s_next", np.int32, "mspan"),
    ("s_prev", np.int32, "mspan"),
    ("s_meta", np.int64, "mspan"),
    ("s_tid", np.int32, "mspan"),
    ("s_mark", np.uint8, "mspan"),
    ("s_sweepgen", np.int32, "mspan"),
    ("gcdirty", np.uint8, "gc"),
]
SPAN_RECORD_BYTES = sum(np.dtype(d).itemsize for n, d, k in PAGE_ARRAYS if k == "mspan")


def round_up(n, a=OS_PAGE):
    return (n + a - 1) & ~(a - 1)


class Layout:
    """Offsets of every region of the heap segment for a given arena reservation."""

    def __init__(self, arena_max):
        self.arena_max = arena_max
        self.maxpages = arena_max >> PAGE_SHIFT
        self.regions = {}      # name -> (offset, dtype, count)
        self.fixed = []        # regions committed at creation
        off = 0

        def add(name, dtype, count, fixed=False):
            nonlocal off
            self.regions[name] = (off, np.dtype(dtype), count)
            if fixed:
                self.fixed.append(name)
            off = round_up(off + np.dtype(dtype).itemsize * count)

        add("hdr", np.int64, HDR_WORDS, True)
        add("pstat", np.int64, MAXP * PSTAT_WORDS, True)
        add("procs", np.int64, MAXPROCS * PROC_WORDS, True)
        add("central_heads", np.int32, NSPANCLASS * 2, True)   # [sc*2 + 0] partial, [sc*2 + 1] full
        add("central_nfree", np.int64, NSPANCLASS, True)
        add("free_heads", np.int32, 129, True)                 # [n] spans of n pages, [128] larger
        add("t_desc", np.int64, MAXTYPES + 1, True)            # blob offset << 24 | length
        add("t_ptroffs", np.int64, MAXTYPES + 1, True)         # blob offset << 24 | count (int32 words)
        add("gc", np.int64, GC_WORDS, True)
        add("specials", np.int64, MAXSPECIALS * 2, True)      # (object, finalizer message) pairs
        add("finq", np.int64, MAXFINQ * 2, True)              # queued pairs, a FIFO from 0
        add("tblob", np.uint8, TBLOB_BYTES)
        for name, dtype, _ in PAGE_ARRAYS:
            add(name, dtype, self.maxpages)
        add("meta", np.uint8, self.maxpages * MAX_META_PER_PAGE)
        self.size = off

    def fixed_bytes(self, names):
        return sum(round_up(self.regions[n][1].itemsize * self.regions[n][2]) for n in names)


def fing_system(h):
    """1 if the finalizer goroutine exists and counts as a system goroutine now (it is not running
    finalizers: Go's isSystemGoroutine), else 0."""
    return 1 if h is not None and h.gc[GC_FING] != 0 and not h.gc[GC_FINGRUNNING] else 0


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.HEAP)
