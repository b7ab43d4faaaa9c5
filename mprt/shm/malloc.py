"""The shared heap: Go's allocator over POSIX shared memory.

Every process of a runtime maps two segments: the arena, where objects live, and the heap segment,
where the allocator keeps its books (layout.py lists every region and who may write it).  An
address is a byte offset into the arena; 0 is nil, and the arena's first page is never handed out.

Allocating a small object (<= 32 KiB) proceeds up a hierarchy of caches, as in Go:

 1. Round the size up to one of the 67 size classes (sizeclasses.py) and look in the P's mcache
    at the span cached for that class.  If it has a free slot, take it: no lock, no system call;
    record the object's type id and count the allocation in the P's row of pstat.
 2. If that span is full, give it back to the mcentral of its class and take a span with free
    objects from there, under the mcentral lock of the class (mcentral.py).
 3. If the mcentral has no such span, take a run of pages from the page heap, under the heap lock,
    and make it a span of the class (mheap.py).
 4. If the page heap has no run that fits, grow the arena (commit more of the reservation).  If
    that fails, it is Go's out-of-memory.

A large object (> 32 KiB) is a span of its own, taken straight from the page heap.  new_batch
takes whole spans from the page heap at once and fills them with vector writes.

Spans are classed by spanclass = sizeclass << 1 | noscan, so pointer-free objects never share a
span with objects the collector must scan.  Each small span has a meta block (carved from the meta
region, recycled per size class, like Go's gcBits arenas): a uint16 type id per object slot (0: the
slot is free) and a mark byte per slot for the collector.  A large span keeps both in its span
record.  Given an address, spanof gives the span, the span its class, and arithmetic the object's
start and slot: O(1) from any process (`find_object`).

Memory is zeroed once: fresh arena pages are zero, the free path zeroes an object before clearing
its type id, and a span whose pages may hold old data (a freed large object) is zeroed when it is
handed out again.  So allocation never zeroes.

Decisions where Go differs or is silent:
  - No tiny allocator: every object keeps its own type id, so the 16-byte blocks that pack several
    pointer-free objects are not used (one object per slot; 8-byte objects use class 1).
  - mcaches are process-local and flushed when a process gives its P away (mcache.py).  A process
    allocates from one thread, the M's (Go's Ms are threads; mprt's are processes), so the mcache
    needs no lock even against the process's own threads.
  - A slice object holds its elements from its address on (p.addr is element 0, as a Go slice's
    data pointer; a large slice's data is page-aligned) and its length in the last 8-byte word of
    its block, which no element reaches.  Handles keep the length, so len() reads no memory.
  - Zero-sized structs take 8 bytes (Go points them all at one zerobase address).

Step 1 for a struct type already seen is also written in C (cptr.c's new, which is `mprt.new`
where it was built): it reads the same mcache lists, type ids and pstat row, and hands everything
else (a safe point due, an empty span, a new type, GODEBUG allocation modes, a large object) to
`new` here.  An object allocated while a mark runs is black: the phase word is read when the object
is taken.
"""
import atexit
import json
import os
import sys

import numpy as np
import posix_ipc

from ..errors import Error, NoRuntime
from ..settings import load_accel
from . import mcentral, mheap
from .layout import (
    BLACK,
    GC_ALLOCFREETRACE,
    GC_EFENCE,
    GC_GEN,
    GC_KICKED,
    GC_PHASE,
    GC_SWEEPGEN,
    GC_TRIGGER,
    H_ARENA_MAX,
    H_ARENA_PAGES,
    H_GCPERCENT,
    H_LARGEALLOC,
    H_MAGIC,
    H_META_BUMP,
    H_NEXTGC,
    H_NLARGEALLOC,
    H_OWNER_PID,
    H_PAGES_INUSE,
    HDR_WORDS,
    MAGIC,
    MAXP,
    MAXPROCS,
    PAGE_ARRAYS,
    PR_LOOKUPS,
    PR_PID,
    PROC_WORDS,
    PS_NMALLOC,
    PS_OWNER,
    PSTAT_WORDS,
    WHITE,
    Layout,
    round_up,
)
from .mcache import MCache
from .mobject import ObjectQueries
from .ptr import Batch, Ptr, Roots, SliceTypeInfo, TypeInfo, c_context, store_ptrs
from .segment import Lock, Segment, new_runtime_id, pid_alive, reap_dead, shm_name, unlink_runtime
from .sizeclasses import PAGE_SHIFT, PAGE_SIZE, class_to_nobjs, class_to_size
from .types import (
    K_SLICE,
    K_STRUCT,
    STR_CODE,
    code_is_data,
    elem_code,
    layout_of,
    read_desc,
    read_ptroffs,
    register,
    size_class,
    slice_desc,
)

DEFAULT_ARENA_MAX = 64 << 30
HEAP_MINIMUM = 4 << 20
MIN_ARENA = 4 << 20

_cur = None   # the heap this process is attached to
_cptr = load_accel("mprt.shm.cptr")   # cptr.c where it was built: new(), the sweep (handles: ptr.py)


def _set_cur(h):
    global _cur
    _cur = h
    if _cptr is not None:
        _cptr.set_current(None if h is None else h.cx)


def current():
    if _cur is None:
        raise NoRuntime("mprt: no runtime is running in this process (use mprt.run)")
    return _cur


def current_or_none():
    return _cur


class Heap(ObjectQueries):
    """One process's attachment to a runtime's heap (object queries: mobject.py)."""

    def __init__(self, rtid, create, arena_max=None, gcpercent=100):
        self.rtid = rtid
        self.alive = True
        heapname = shm_name(rtid, "heap")
        if create:
            if not isinstance(arena_max, int) or isinstance(arena_max, bool) or arena_max < MIN_ARENA:
                raise ValueError(f"mprt: arena maximum {arena_max!r} is not an integer >= {MIN_ARENA}")
            arena_max = arena_max & ~(PAGE_SIZE - 1)
            self.layout = Layout(arena_max)
            self.heapseg = Segment(heapname, size=self.layout.size, create=True)
            self.arena = Segment(shm_name(rtid, "arena"), size=arena_max, create=True)
            for name in self.layout.fixed:
                off, dt, count = self.layout.regions[name]
                self.heapseg.commit(off, round_up(dt.itemsize * count))
            self.lock = Lock(shm_name(rtid, "lock.heap"), create=True)
            self.types_lock = Lock(shm_name(rtid, "lock.types"), create=True)
        else:
            self.heapseg = Segment(heapname)
            hdr = np.ndarray((HDR_WORDS,), np.int64, buffer=self.heapseg.mm)
            if hdr[H_MAGIC] != MAGIC:
                raise RuntimeError(f"mprt: {heapname} is not a heap of this mprt version")
            self.layout = Layout(int(hdr[H_ARENA_MAX]))
            self.arena = Segment(shm_name(rtid, "arena"))
            self.lock = Lock(shm_name(rtid, "lock.heap"))
            self.types_lock = Lock(shm_name(rtid, "lock.types"))
        self._map()
        if create:
            hdr = self.hdr
            hdr[H_MAGIC] = MAGIC
            hdr[H_ARENA_MAX] = arena_max
            hdr[H_OWNER_PID] = os.getpid()
            hdr[H_GCPERCENT] = gcpercent
            hdr[H_NEXTGC] = HEAP_MINIMUM * gcpercent // 100 if gcpercent >= 0 else -1
            hdr[H_ARENA_PAGES] = 1            # page 0 is nil
            hdr[H_META_BUMP] = 64             # meta offset 0 is "none"
            self.gc[GC_SWEEPGEN] = 1
        self._central_locks = {}
        self.types = {}          # tid -> TypeInfo
        self.tcache = {}         # struct class / slice elem code -> TypeInfo
        self.tid_by_desc = {}
        self.types_scanned = 0
        self.mcache = None
        self.p = -1
        self.dbg = None          # GODEBUG allocation modes (efence, allocfreetrace): mgc.set_alloc_debug
        self._kick = None
        self._claim_slot()
        self.roots = Roots(rtid, self.slot, self.procs_mv[self.slot * PROC_WORDS:(self.slot + 1) * PROC_WORDS])
        self.cx = c_context(self)    # handles, pointer fields, the sweep and new() in C, or None (ptr.py)
        self.sample_left = 1 << 62   # bytes until the heap profile's next sample (sched/mprof.py)
        self.lookups = self.procs_mv[self.slot * PROC_WORDS + PR_LOOKUPS:self.slot * PROC_WORDS + PR_LOOKUPS + 1]
        self.max_alloc = self.layout.arena_max
        self.owner = create

    if _cptr is not None:
        # new() in C counts the bytes to the next sample there
        sample_left = property(lambda self: self.cx.sample_left,
                               lambda self, v: setattr(self.cx, "sample_left", v))

    # ---- mapping ----

    def _map(self):
        mm = self.heapseg.mm
        for name, (off, dt, count) in self.layout.regions.items():
            setattr(self, name, np.ndarray((count,), dt, buffer=mm, offset=off))
            if name in ("meta", "tblob"):
                setattr(self, name + "_off", off)
        base = memoryview(mm)

        def mv(name, fmt):
            off, dt, count = self.layout.regions[name]
            return base[off:off + dt.itemsize * count].cast(fmt)

        self._views = [base]
        self.pstat_mv = mv("pstat", "q")
        self.gcq = mv("gc", "q")
        self.hu8 = base               # every byte of the heap segment: mark bytes are addressed in it
        self.hu8n = np.frombuffer(mm, dtype=np.uint8)
        self.smark_off = self.layout.regions["s_mark"][0]
        self.dirty_mv = mv("gcdirty", "B")
        self._views += [self.gcq, self.dirty_mv]
        self.procs_mv = mv("procs", "q")
        self.spanof_mv = mv("spanof", "i")
        self.s_sc_mv = mv("s_sc", "h")
        self.s_meta_mv = mv("s_meta", "q")
        self.s_tid_mv = mv("s_tid", "i")
        self.meta_tid_mv = mv("meta", "H")
        self._views += [self.pstat_mv, self.procs_mv, self.spanof_mv, self.s_sc_mv, self.s_meta_mv,
                        self.s_tid_mv, self.meta_tid_mv]
        self.meta_tid = self.meta.view(np.uint16)
        self.meta_q = self.meta.view(np.int64)
        amm = self.arena.mm
        abase = memoryview(amm)
        self.mv = {f: abase.cast(f) for f in "bhiqBHIQfd"}
        self.mvq = self.mv["q"]
        self._views += [abase] + list(self.mv.values())
        self.arena_u8 = np.frombuffer(amm, dtype=np.uint8)
        self.arena_i64 = np.frombuffer(amm, dtype=np.int64)
        self._npviews = {}

    def commit_page_arrays(self, npages):
        """Commit the per-page arrays for the first npages pages (heap lock held)."""
        for name, dt, _ in PAGE_ARRAYS:
            off, dtype, _ = self.layout.regions[name]
            self.heapseg.commit(off, round_up(npages * dtype.itemsize))

    def central_lock(self, cls):
        lk = self._central_locks.get(cls)
        if lk is None:
            # O_CREAT without O_EXCL: whichever process opens it first creates it
            name = shm_name(self.rtid, f"lock.c{cls}")
            sem = posix_ipc.Semaphore(name, posix_ipc.O_CREAT, mode=0o600, initial_value=1)
            sem.close()
            lk = self._central_locks[cls] = Lock(name)
        return lk

    def _claim_slot(self):
        pid = os.getpid()
        with self.lock:
            procs = self.procs.reshape(MAXPROCS, PROC_WORDS)
            for i in range(MAXPROCS):
                owner = int(procs[i, PR_PID])
                if owner == 0 or (owner != pid and not pid_alive(owner)):
                    procs[i, :] = 0
                    procs[i, PR_PID] = pid
                    self.slot = i
                    return
        raise RuntimeError(f"mprt: more than {MAXPROCS} processes attached to runtime {self.rtid}")

    def kick_gc(self):
        """The heap grew past the collector's trigger: wake the coordinator (once per cycle)."""
        gcq = self.gcq
        if gcq[GC_KICKED] or (int(self.hdr[H_PAGES_INUSE]) << PAGE_SHIFT) < gcq[GC_TRIGGER] or gcq[GC_TRIGGER] <= 0:
            return
        gcq[GC_KICKED] = 1
        try:
            if self._kick is None:
                self._kick = posix_ipc.Semaphore(shm_name(self.rtid, "note.sysmon"))
            self._kick.release()
        except posix_ipc.ExistentialError:
            pass       # a heap with no scheduler (the allocator's own tests): no collector to wake

    # ---- Ps ----

    def bind_p(self, p):
        """This process holds P p from now on: it gets the P's mcache."""
        if not 0 <= p < MAXP:
            raise ValueError(f"mprt: P id {p!r} out of range [0, {MAXP})")
        if self.mcache is not None:
            self.release_p()
        row = self.pstat_mv[p * PSTAT_WORDS:(p + 1) * PSTAT_WORDS]
        with self.lock:
            owner = row[PS_OWNER]
            if owner and owner != os.getpid() and pid_alive(owner):
                raise RuntimeError(f"mprt: P{p} is held by process {owner}")
            row[PS_OWNER] = os.getpid()
        self.p = p
        mc = self.mcache = MCache(self, p)
        if self.cx is not None:
            self.cx.set_mcache(mc.free, mc.base, mc.tidbase, mc.markbase,
                               self.layout.regions["pstat"][0] + (p * PSTAT_WORDS + PS_NMALLOC) * 8,
                               mc.gen)

    def release_p(self):
        mc = self.mcache
        if mc is None:
            return
        mc.flush()
        self.mcache = None
        if self.cx is not None:
            self.cx.set_mcache(None)
        self.pstat_mv[self.p * PSTAT_WORDS + PS_OWNER] = 0
        self.p = -1

    # ---- types ----

    def bind_class(self, T):
        lay = layout_of(T)
        tid = register(self, lay.desc, lay.ptroffs)
        t = self.types.get(tid) or self.typeinfo(tid)
        self.tcache[T] = t
        if self.cx is not None and t.sizeclass:
            self.cx.note_type(T, t, t.cls, t.spanclass, t.tid, t.objsize)
        return t

    def slice_type(self, elem):
        t = self.tcache.get(("slice", elem))
        if t is None:
            code, dt = elem_code(elem)
            tid = register(self, slice_desc(code), [])
            t = self.types.get(tid) or self.typeinfo(tid)
            try:
                self.tcache[("slice", elem)] = t
            except TypeError:
                pass
        return t

    def typeinfo(self, tid):
        """The TypeInfo of type id tid, built from the shared type table."""
        t = self.types.get(tid)
        if t is not None:
            return t
        d = json.loads(read_desc(self, tid))
        if d["k"] == "struct":
            fields = {}
            for fname, code, off in d["fields"]:
                fields[fname] = (code, off, None if not code_is_data(code) else np.dtype(code))
            t = TypeInfo(self, tid, K_STRUCT, d["name"], d["size"], fields=fields,
                         ptroffs=read_ptroffs(self, tid))
        else:
            code = d["elem"]
            dt = None if not code_is_data(code) else np.dtype(code)
            name = "[]" + ("string" if code == STR_CODE else "mprt.Ptr" if dt is None else dt.name)
            t = SliceTypeInfo(self, tid, K_SLICE, name, 8 if dt is None else dt.itemsize, elem=dt,
                         elemsize=8 if dt is None else dt.itemsize, strs=code == STR_CODE)
        self.types[tid] = t
        return t

    # ---- allocation ----

    def _mcache(self):
        mc = self.mcache
        if mc is None:
            raise RuntimeError("mprt: this process holds no P and cannot allocate")
        return mc

    def alloc(self, nbytes, tid, noscan):
        """Allocate an object of nbytes bytes with type id tid; returns its address."""
        cls = size_class(nbytes)
        if cls == 0:
            return self.alloc_large(nbytes, tid, noscan)
        return self.alloc_small(cls << 1 | noscan, tid)

    def alloc_small(self, sc, tid):
        """Step 1 of the overview: a free slot of the P's cached span of class sc, no lock (the
        refill of step 2 takes them)."""
        mc = self.mcache
        if mc is None:
            self._mcache()
        if mc.gen != self.gcq[GC_GEN]:
            mc.sync()
        fl = mc.free[sc]
        if not fl:
            mc.refill(sc)
        i = fl.pop()
        self.meta_tid_mv[mc.tidbase[sc] + i] = tid
        if self.gcq[GC_PHASE]:
            # allocated during a mark: black (the phase word itself: one source of truth)
            self.hu8[mc.markbase[sc] + i] = BLACK
        cls = sc >> 1
        mc.stats[PS_NMALLOC + cls] += 1
        return mc.base[sc] + i * class_to_size[cls]

    def alloc_large(self, nbytes, tid, noscan):
        mc = self._mcache()
        if mc.gen != self.gcq[GC_GEN]:
            mc.sync()
        npages = (nbytes + PAGE_SIZE - 1) >> PAGE_SHIFT
        if npages >= self.layout.maxpages:
            raise mheap.OutOfMemory(npages << PAGE_SHIFT, (int(self.hdr[H_ARENA_PAGES]) - 1) << PAGE_SHIFT)
        with self.lock:
            s, nz = mheap.alloc_locked(self, npages)
            self.s_sc[s] = noscan
            self.s_cached[s] = -1
            self.hdr[H_NLARGEALLOC] += 1
            self.hdr[H_LARGEALLOC] += npages << PAGE_SHIFT
            self.s_sweepgen[s] = self.gcq[GC_SWEEPGEN]
            self.s_mark[s] = BLACK if self.gcq[GC_PHASE] else WHITE     # (see alloc_small)
        mheap.prepare(self, s, npages, nz)
        self.s_tid[s] = tid
        self.kick_gc()
        return s << PAGE_SHIFT

    def alloc_batch(self, t, n):
        """n objects of struct type t; returns their addresses (int64 array)."""
        if t.sizeclass == 0:
            return np.array([self.alloc_large(t.objsize, t.tid, t.noscan) for _ in range(n)], dtype=np.int64)
        mc = self._mcache()
        if mc.gen != self.gcq[GC_GEN]:
            mc.sync()
        sc, cls, stride, tid = t.spanclass, t.sizeclass, t.stride, t.tid
        nobj = class_to_nobjs[cls]
        parts = []

        def take(k):
            fl = mc.free[sc]
            idx = np.array(fl[-k:][::-1], dtype=np.int64)
            del fl[-k:]
            self.meta_tid[mc.tidbase[sc] + idx] = tid
            if self.gcq[GC_PHASE]:       # (see alloc_small)
                self.hu8n[mc.markbase[sc] + idx] = BLACK
            mc.stats[PS_NMALLOC + cls] += k
            return mc.base[sc] + idx * stride

        rem = n
        k = min(rem, len(mc.free[sc]))
        if k:
            parts.append(take(k))
            rem -= k
        full = rem // nobj
        if full:
            starts = mcentral.alloc_full_spans(self, sc, full, tid)
            mc.stats[PS_NMALLOC + cls] += full * nobj
            parts.append(((starts << PAGE_SHIFT)[:, None] + np.arange(nobj, dtype=np.int64) * stride).ravel())
            rem -= full * nobj
        while rem:   # a refill may bring a partly used span from the mcentral
            mc.refill(sc)
            k = min(rem, len(mc.free[sc]))
            parts.append(take(k))
            rem -= k
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    # ---- the free path (what the sweeper calls) ----

    def free_objects(self, addrs):
        """Free the objects starting at addrs (each once).  Keeps Frees, HeapObjects, HeapAlloc and
        BySize exact.  The caller guarantees nothing reachable is freed."""
        a = np.unique(np.asarray(addrs, dtype=np.int64))
        if len(a) != len(np.asarray(addrs)):
            raise ValueError("mprt: free_objects: an address appears twice")
        bad = ~self.valid_objects(a) | (a == 0)
        if bad.any():
            raise ValueError(f"mprt: free_objects: {int(a[bad][0]):#x} is not the start of an allocated object")
        spans = self.spanof[a >> PAGE_SHIFT].astype(np.int64)
        order = np.argsort(spans, kind="stable")
        a, spans = a[order], spans[order]
        cuts = np.flatnonzero(np.diff(spans)) + 1
        for grp_a, grp_s in zip(np.split(a, cuts), np.split(spans, cuts)):
            s = int(grp_s[0])
            cls = int(self.s_sc[s]) >> 1
            if cls == 0:
                mcentral.free_large(self, s)
            else:
                mcentral.free_small(self, s, (grp_a - (s << PAGE_SHIFT)) // class_to_size[cls])

    def scavenge(self):
        """Return every idle page to the OS; returns the bytes released (Go's scavenge(all))."""
        with self.lock:
            return mheap.scavenge_locked(self)

    def check(self):
        """Assert the allocator's invariants (tests and debugging: takes every lock)."""
        locks = [self.central_lock(c) for c in range(1, len(class_to_size))]
        for lk in locks:      # nothing else ever holds two mcentral locks, so this order is safe
            lk.acquire()
        try:
            with self.lock:
                mheap.check_locked(self)
                mcentral.check_locked(self)
        finally:
            for lk in reversed(locks):
                lk.release()

    # ---- teardown ----

    def _drop(self):
        self._dead()
        for v in reversed(self._views):
            try:
                v.release()
            except (BufferError, ValueError):
                pass

    def _dead(self):
        """No handle of this process may use the heap from now on (teardown; a forked child)."""
        self.alive = False
        self.roots.alive = False
        if self.cx is not None:
            self.cx.close()

    def detach(self):
        """Leave the runtime: give the P back, drop the root table, unmap."""
        if not self.alive:
            return
        if self.mcache is not None:
            self.release_p()
        with self.lock:
            self.procs[self.slot * PROC_WORDS:(self.slot + 1) * PROC_WORDS] = 0
        self.roots.seg.unlink()
        self._close()
        if _cur is self:
            _set_cur(None)

    def destroy(self):
        """Tear the whole runtime's heap down: unlink every segment and semaphore it has."""
        if not self.alive:
            return
        self._close()
        unlink_runtime(self.rtid)
        if _cur is self:
            _set_cur(None)

    def _close(self):
        self._drop()
        for lk in [self.lock, self.types_lock, *self._central_locks.values()]:
            lk.close()
        for seg in (self.roots.seg, self.arena, self.heapseg):
            seg.close()


def create(arena_max=None, gcpercent=100, p=0):
    """Create a new runtime heap, attach this process to it holding P p, and make it current."""
    if _cur is not None:
        raise RuntimeError(f"mprt: this process is already attached to runtime {_cur.rtid}")
    reap_dead()
    rtid = new_runtime_id()
    try:
        h = Heap(rtid, True, DEFAULT_ARENA_MAX if arena_max is None else arena_max, gcpercent)
    except BaseException:
        unlink_runtime(rtid)
        raise
    return _make_current(h, p, h.destroy)


def _make_current(h, p, undo):
    set_alloc_debug(h, h.gc[GC_EFENCE], h.gc[GC_ALLOCFREETRACE])
    if p is not None:
        try:
            h.bind_p(p)
        except BaseException:
            undo()
            raise
    _set_cur(h)
    return h


@atexit.register
def _at_exit():
    # A program that ends without tearing down still leaves nothing behind; an attached process
    # that ends without detaching still gives its P back.  (A forked child has no current heap:
    # _after_fork_in_child cleared it.)
    h = _cur
    if h is None or not h.alive:
        return
    if h.owner:
        h.destroy()
    else:
        h.detach()


def attach(rtid, p=None):
    """Attach this process to the running heap of runtime rtid (holding P p if given)."""
    if _cur is not None:
        raise RuntimeError(f"mprt: this process is already attached to runtime {_cur.rtid}")
    try:
        h = Heap(rtid, False)
    except posix_ipc.ExistentialError:
        raise RuntimeError(f"mprt: runtime {rtid!r} does not exist (it ended, or it never started)") from None
    return _make_current(h, p, h.detach)


def _after_fork_in_child():
    # A forked child inherits the parent's mappings and Python objects, but not its P or its
    # root table: Ptrs it inherited must not touch the parent's roots.
    h = _cur
    if h is not None:
        h._dead()
        h.mcache = None
        _set_cur(None)


os.register_at_fork(after_in_child=_after_fork_in_child)


# ---- the language-level entry points ----

# What the heap calls above it.  The heap imports nothing above shm: the scheduler registers these
# at its import.
#   safepoint()                 at the start of every allocation from the program (mprt.new,
#                               mprt.make, mprt.new_batch): a goroutine that allocates in a loop is
#                               stopped for the world and preempted there (mprt/sched/stw.py)
#   stop()                      the C new found a stop of the world due (csched.alloc_stop, called
#                               from cptr.c before the slow path, whose safepoint() does the rest)
#   profile(h, addr, size)      the memory profile's sampling countdown ran out (mprt/sched/mprof.py)
#   tracealloc(text, frame)     GODEBUG=allocfreetrace=1: write a tracealloc line with the stack of
#                               the goroutine whose code is at frame (mprt/sched/traceback.py)
_safepoint_hook = None
_profile_hook = None
_tracealloc_hook = None


def set_safepoint_hook(fn):
    global _safepoint_hook
    _safepoint_hook = fn


def set_stop_hook(fn):
    if _cptr is not None:
        _cptr.set_hooks(_new_py, _c_profile, fn)


def set_profile_hook(fn):
    global _profile_hook
    _profile_hook = fn


def set_tracealloc_hook(fn):
    global _tracealloc_hook
    _tracealloc_hook = fn


def new(T: type, safepoint: bool = True) -> Ptr:
    """A zeroed object of struct type T.  safepoint=False: the runtime's own allocations."""
    h = _cur
    if h is None:
        h = current()
    if safepoint and _safepoint_hook is not None:
        _safepoint_hook()
    t = h.tcache.get(T)
    if t is None:
        t = h.bind_class(T)
    if h.dbg is not None:
        a = _debug_alloc(h, t.objsize, t.tid, t.noscan, t.name)
    elif t.sizeclass:
        a = h.alloc_small(t.spanclass, t.tid)
    else:
        a = h.alloc_large(t.objsize, t.tid, t.noscan)
    p = t.make(a)
    h.sample_left -= t.objsize
    if h.sample_left < 0:
        _profilealloc(h, a, t.objsize)     # after the Ptr exists: the object is a root from here on
    return p


def make(elem: object, n: int, safepoint: bool = True) -> Ptr:
    """A zeroed slice of n elements of elem (a numpy scalar dtype, or mprt.Ptr)."""
    h = current()
    if safepoint and _safepoint_hook is not None:
        _safepoint_hook()
    if not isinstance(n, (int, np.integer)) or isinstance(n, (bool, np.bool_)):
        raise TypeError(f"mprt.make: length {n!r} is not an integer")
    t = h.slice_type(elem)
    n = int(n)
    if n < 0 or n * t.elemsize > h.max_alloc:
        raise Error("makeslice: len out of range")
    if h.dbg is not None:
        a = _debug_alloc(h, n * t.elemsize + 8, t.tid, t.noscan, t.name)
    else:
        a = h.alloc(n * t.elemsize + 8, t.tid, t.noscan)
    h.mvq[(h.object_end(a) - 8) >> 3] = n
    p = t.make(a)
    size = n * t.elemsize + 8
    h.sample_left -= size
    if h.sample_left < 0:
        _profilealloc(h, a, size)
    return p


def _profilealloc(h, a, size):
    if _profile_hook is not None:
        _profile_hook(h, a, size)
    else:
        h.sample_left = 1 << 62


def set_alloc_debug(h, efence, tracealloc):
    """GODEBUG efence=1 (every object on pages of its own, never handed out again once freed: the
    collector releases them) and allocfreetrace=1 (a tracealloc line and the goroutine's stack for
    every allocation, a tracefree line for every object swept)."""
    h.dbg = (bool(efence), bool(tracealloc)) if efence or tracealloc else None
    if h.cx is not None:
        h.cx.dbg = h.dbg is not None


def _debug_alloc(h, nbytes, tid, noscan, name):
    efence, trace = h.dbg
    a = h.alloc_large(max(nbytes, 8), tid, noscan) if efence else h.alloc(nbytes, tid, noscan)
    if trace and _tracealloc_hook is not None:
        _tracealloc_hook(f"tracealloc({a:#x}, {h.object_end(a) - a:#x}, {name})\n",
                         _codeclass.program_frame(sys._getframe()))
    return a


def new_batch(T: type, n: int) -> Batch:
    """n zeroed objects of struct type T in one call (see Batch)."""
    h = current()
    if not isinstance(n, (int, np.integer)) or isinstance(n, (bool, np.bool_)) or n < 0:
        raise ValueError(f"mprt.new_batch: count {n!r} is not a non-negative integer")
    if _safepoint_hook is not None:
        _safepoint_hook()
    t = h.tcache.get(T) or h.bind_class(T)
    root = make(Ptr, int(n), safepoint=False)
    if h.dbg is not None:
        addrs = np.array([_debug_alloc(h, t.objsize, t.tid, t.noscan, t.name) for _ in range(int(n))],
                         dtype=np.int64)
    else:
        addrs = h.alloc_batch(t, int(n))
    store_ptrs(h, root.addr + np.arange(len(addrs), dtype=np.int64) * 8, addrs)
    b = Batch(root, t)
    if len(addrs):
        h.sample_left -= t.objsize * len(addrs)
        if h.sample_left < 0:
            _profilealloc(h, int(addrs[0]), t.objsize)
    return b


def sizeof(p: Ptr | type) -> int:
    """The bytes p's type declares: the struct's size, or length x element size for a slice.
    A struct class gives its size too (Go's unsafe.Sizeof of a value of the type)."""
    if isinstance(p, type) and "_mprt_struct" in p.__dict__:
        return p._mprt_struct.size
    if not isinstance(p, Ptr):
        raise TypeError(f"mprt.sizeof: {p!r} is not a mprt.Ptr or a struct type")
    t = p._t
    if t.kind == K_STRUCT:
        return t.size
    return len(p) * t.elemsize


def _c_profile(a, size):
    _profilealloc(_cur, a, size)


_new_py = new      # a module global, so that mark() below finds it whatever `new` is bound to


if _cptr is not None:
    # mprt.new: the common case (a small struct type seen before, a free object in the P's mcache,
    # no safe point due, no GODEBUG allocation mode) in C (cptr.c); the Python new above does the
    # rest.  (Before _new_py existed, rebinding `new` here hid the Python new from mark(): it ran
    # as the program's code, a stop could land between alloc_small and the handle, and an object
    # allocated just before a mark began was never marked: gccheckmark, ~1 run in 13.)
    _cptr.set_hooks(_new_py, _c_profile)
    new = _cptr.new  # noqa: F811


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.HEAP)
