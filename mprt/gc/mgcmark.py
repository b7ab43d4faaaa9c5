"""Marking: roots, and the coordinator's drain of grey objects.

Roots (what a process holds, and what sits between processes):
  - each attached process's root table (ptr.py): every live Ptr handle.  An M that held a P when
    the mark started scans its own table at its next safe point (it stopped at one for the world;
    `scan_own_roots`), so the table is read at an instant when its goroutines do not run.  The
    coordinator scans the tables of the Ms that held no P (idle, waiting for a P, locked, in a
    system call) while the world is stopped.  A table is scanned once per cycle; the hybrid write
    barrier (mprt/shm/mbarrier.py) makes rescans unnecessary, as in Go 1.9.
  - the control segment: heap messages and inline pointers of goroutines not yet started (G rows),
    and elements handed to parked goroutines (sudogs).  Scanned with the world stopped at both ends
    of the mark; in between, every address written there is shaded (mbarrier.shade_word).
  - finalizers (mfinal.py): the finalizer messages, what finalizable objects point to (not the
    objects themselves), and queued finalizers.
Values in channel buffers and goroutine arguments are heap objects reached by tracing.

The drain (`Marker.drain`) runs in the coordinator, breadth first and vectorised: a frontier of
black objects is scanned as numpy arrays (type ids, then each type's pointer offsets gathered at
once, then the children's mark bytes), giving the next frontier of newly blackened children.  A
narrow frontier (a linked list) is followed in a plain loop instead, still breadth first, until it
widens, so a long chain costs per object rather than per level of numpy calls.  Objects greyed by the
other processes are found through the dirty flags of their spans; the coordinator clears a flag
before it reads the span's mark bytes (and fences), so a grey mark made meanwhile leaves the flag
set again.

The mark is over when every M has scanned its roots, no span is dirty and the frontier is empty;
mark termination then drains once more with the world stopped (mgc.py).
"""
import collections

import numpy as np
import posix_ipc

from ..sched.ctl import (
    G_NPTR,
    G_NPTRS,
    G_PAYADDR,
    G_PAYLEN,
    G_PTR0,
    G_WORDS,
    MAXG,
    S_NGALLOC,
    S_NSGALLOC,
    S_TIMERS,
    SG_ELEMADDR,
    SG_ELEMLEN,
    SG_WORDS,
)
from ..settings import load_accel
from ..shm.layout import BLACK, GREY, H_ARENA_PAGES, MAXPROCS, PR_PID, PR_ROOTBYTES, PROC_WORDS, S_INUSE
from ..shm.mbarrier import mark_index, mark_indices, shade_vec
from ..shm.segment import Segment, shm_name
from ..shm.sizeclasses import PAGE_SHIFT, class_to_nobjs, class_to_size
from ..shm.types import K_STRUCT

_cmark = load_accel("mprt.gc.cmark")      # the drain in C (cmark.c), built by pip install where it can be
USE_C = _cmark is not None

_size = np.array(class_to_size, dtype=np.int64)
_nobj2 = np.array(class_to_nobjs, dtype=np.int64) * 2     # a span's mark bytes follow its 2-byte type ids
_STRUCT, _PTRS, _NOSCAN = "struct", "[]Ptr", "noscan"    # how an object is scanned
_C_KIND = {_STRUCT: 1, _PTRS: 2, _NOSCAN: 3}                 # ... as the C drain names it
NARROW = 64          # a frontier narrower than this is followed depth first
WIDE = 1024          # ... until the depth-first stack holds this many


class BadPointer(Exception):
    """invalidptr=1 found a pointer word that points at no allocated object."""


def scan_own_roots(h):
    """Shade every object this process holds (its root table).  Called by an M at a safe point."""
    shade_vec(h, h.roots.live())


class Marker:
    """The coordinator's marking state for one runtime (kept across cycles)."""

    def __init__(self, h, ctl=None, invalidptr=False):
        self.h, self.ctl = h, ctl
        self.invalidptr = invalidptr
        self.frontier = []          # arrays of black objects still to scan
        self.stack = collections.deque()   # breadth-first queue (narrow frontiers)
        self._q = bytearray()       # the C drain's queue (int64 addresses; its length is its capacity,
        self._qhead = self._qtail = 0   # kept from cycle to cycle) and its entries still to scan
        self.bytes = 0              # bytes of objects blackened this cycle
        self.objs = 0
        self.tables = {}            # slot -> (pid, Segment) of other processes' root tables
        self._offs = {}             # tid -> (kind, pointer offsets list, ptroffs array)
        self._ctypes = {}           # the same for the C drain: tid -> (kind, offsets as bytes)
        self._fence = None

    # ---- roots ----

    def root_table(self, slot):
        """The live addresses in process slot's root table (the process must not be running Ptr code)."""
        h = self.h
        row = h.procs[slot * PROC_WORDS:(slot + 1) * PROC_WORDS]
        pid, nbytes = int(row[PR_PID]), int(row[PR_ROOTBYTES])
        if not pid or not nbytes:
            return np.zeros(0, dtype=np.int64)
        ent = self.tables.get(slot)
        if ent is None or ent[0] != pid:
            if ent is not None:
                ent[1].close()
            try:
                seg = Segment(shm_name(h.rtid, f"roots.{slot}"))
            except posix_ipc.ExistentialError:
                return np.zeros(0, dtype=np.int64)
            ent = self.tables[slot] = (pid, seg)
        n = min(nbytes, len(ent[1].mm)) // 8
        a = np.frombuffer(ent[1].mm, dtype=np.int64, count=n)
        return a[a != 0].copy()

    def slot_of_pid(self, pid):
        procs = self.h.procs.reshape(MAXPROCS, PROC_WORDS)
        hit = np.flatnonzero(procs[:, PR_PID] == pid)
        return int(hit[0]) if len(hit) else None

    def ctl_roots(self):
        """Heap addresses in the control segment: unstarted goroutines' payloads, sudog elements."""
        ctl = self.ctl
        if ctl is None:
            return np.zeros(0, dtype=np.int64)
        q = ctl.q
        s = ctl.sched
        ng = q[s + S_NGALLOC]
        out = []
        if ng:
            g = ctl.table("g", ng, G_WORDS)
            pl = g[:, G_PAYLEN]
            out.append(g[pl == -1, G_PAYADDR])
            inline = (np.arange(G_NPTRS) < g[:, G_NPTR, None]) & (pl != -1)[:, None]
            out.append(g[:, G_PTR0:G_PTR0 + G_NPTRS][inline])
            sg = ctl.table("sudog", ng, SG_WORDS)
            out.append(sg[sg[:, SG_ELEMLEN] < 0, SG_ELEMADDR])
        if q[s + S_TIMERS] > 0:
            out.append(np.array([q[s + S_TIMERS]], dtype=np.int64))    # the timer goroutine's state
        nsg = q[s + S_NSGALLOC]
        if nsg:
            b = ctl.base["sudog"] + MAXG * SG_WORDS
            sg = ctl.words[b:b + nsg * SG_WORDS].reshape(nsg, SG_WORDS)
            out.append(sg[sg[:, SG_ELEMLEN] < 0, SG_ELEMADDR])
        a = np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
        a = a[a != 0]
        # the Ms write these words while we read them, column by column: keep only addresses of
        # allocated objects, so that no mark byte is ever written for a block that is not one (a
        # mark byte written through a stale address lands in another span's meta block)
        return a[self.h.valid_objects(a, count=False)]

    def close(self):
        for _, seg in self.tables.values():
            seg.close()
        self.tables.clear()

    # ---- greying and blackening ----

    def reset(self):
        self.frontier, self.stack = [], collections.deque()
        self._qhead = self._qtail = 0
        self.bytes = self.objs = 0

    def blacken(self, addrs):
        """Take objects (any colour) into the frontier; returns how many were not black yet."""
        a = np.asarray(addrs, dtype=np.int64)
        a = a[a != 0]
        if not len(a):
            return 0
        a = self._valid(a, None)
        idx, _, _ = mark_indices(self.h, a)
        take = self.h.hu8n[idx] != BLACK
        if take.any():
            self.h.hu8n[idx[take]] = BLACK
            self.frontier.append(a[take])
        return int(take.sum())

    def collect_dirty(self):
        """Blacken the objects other processes greyed (found through dirty spans)."""
        h = self.h
        npages = int(h.hdr[H_ARENA_PAGES])
        if USE_C and not _cmark.any_nonzero(h.gcdirty, npages):
            return 0
        # (compared first, into a copy: other processes write the flags, and numpy's nonzero of
        # memory that changes while it counts raises)
        d = np.flatnonzero(h.gcdirty[:npages] != 0)
        if not len(d):
            return 0
        h.gcdirty[d] = 0
        self.fence()
        found = 0
        d = d[h.s_state[d] == S_INUSE]
        cls = h.s_sc[d].astype(np.int64) >> 1
        for s, c in zip(d.tolist(), cls.tolist()):
            if c == 0:
                if h.s_mark[s] == GREY:
                    h.s_mark[s] = BLACK
                    self.frontier.append(np.array([s << PAGE_SHIFT], dtype=np.int64))
                    found += 1
                continue
            if not h.s_meta[s]:
                continue            # a span still being carved: none of its objects exists yet
            nobj = class_to_nobjs[c]
            mb = h.meta_off + int(h.s_meta[s]) + 2 * nobj
            marks = h.hu8n[mb:mb + nobj]
            g = np.flatnonzero(marks == GREY)
            if len(g):
                marks[g] = BLACK
                self.frontier.append((s << PAGE_SHIFT) + g * class_to_size[c])
                found += len(g)
        return found

    def fence(self):
        # a locked instruction orders the flag clears above before the mark reads that follow
        # (x86 lets a load pass an earlier store); sem_post/sem_wait are such instructions
        if self._fence is None:
            self._fence = posix_ipc.Semaphore(None, posix_ipc.O_CREX, initial_value=0)
            self._fence.unlink()
        self._fence.release()
        self._fence.acquire()

    # ---- scanning ----

    def pending(self):
        return bool(self.frontier or self.stack or self._qhead < self._qtail)

    def drain(self, budget_objs=None):
        """Scan until nothing is left (True) or about budget_objs objects were scanned (False)."""
        if USE_C and not self.invalidptr:
            return self._drain_c(budget_objs)
        done = 0
        while self.frontier or self.stack:
            if self.stack and (len(self.stack) < WIDE or not self.frontier):
                done += self._scan_narrow()
                if len(self.stack) >= WIDE:
                    self.frontier.append(np.array(self.stack, dtype=np.int64))
                    self.stack = collections.deque()
            else:
                f = np.concatenate(self.frontier) if len(self.frontier) > 1 else self.frontier[0]
                self.frontier = []
                if len(f) < NARROW:
                    self.stack.extend(f.tolist())
                    continue
                done += len(f)
                nxt = self._scan_wide(f)
                if len(nxt):
                    self.frontier.append(nxt)
            if budget_objs is not None and done >= budget_objs:
                return False
        return True

    def _drain_c(self, budget_objs):
        h = self.h
        q = self._q
        if self.stack:
            self.frontier.append(np.array(self.stack, dtype=np.int64))
        for f in self.frontier:
            b = np.ascontiguousarray(f, dtype=np.int64).tobytes()
            t = self._qtail * 8
            q[t:t + len(b)] = b         # grows the bytearray only past its end
            self._qtail += len(f)
        self.frontier, self.stack = [], collections.deque()
        if self._qhead >= self._qtail:
            self._qhead = self._qtail = 0
            return True
        self._qhead, self._qtail, objs, nbytes = _cmark.drain(
            q, self._qhead, self._qtail, budget_objs or 0, h.spanof, h.s_sc, h.s_npages, h.s_tid, h.s_meta, h.meta_tid,
            h.arena_i64, h.hu8n, h.meta_off, h.smark_off, int(h.hdr[H_ARENA_PAGES]) << PAGE_SHIFT, PAGE_SHIFT,
            _size, _nobj2, self._ctypes, self._c_type)
        self.objs += objs
        self.bytes += nbytes
        return self._qhead >= self._qtail

    def _c_type(self, tid):
        kind, _, offs = self._type(tid)
        return (_C_KIND[kind], np.asarray(offs, dtype=np.int64).tobytes() if offs is not None else b"")

    def _type(self, tid):
        ent = self._offs.get(tid)
        if ent is None:
            t = self.h.typeinfo(tid)
            if t.kind == K_STRUCT:
                ent = (_STRUCT, t.ptroffs.tolist(), t.ptroffs)
            else:
                ent = (_NOSCAN if t.elem is not None else _PTRS, None, None)
            self._offs[tid] = ent
        return ent

    def _valid(self, children, parents):
        h = self.h
        limit = int(h.hdr[H_ARENA_PAGES]) << PAGE_SHIFT
        if self.invalidptr:
            ok = h.valid_objects(children)
            if not ok.all():
                bad = int(children[~ok][0])
                raise BadPointer(self._describe_bad(bad, parents))
            return children
        return children[(children > 0) & (children < limit)]

    def _describe_bad(self, bad, parents):
        h = self.h
        s = int(h.spanof[bad >> PAGE_SHIFT]) if 0 < bad < (int(h.hdr[H_ARENA_PAGES]) << PAGE_SHIFT) else 0
        st = "in use" if s and h.s_state[s] == S_INUSE else "unallocated"
        where = ""
        if parents is not None:
            for p in np.asarray(parents).tolist():
                for slot in h.pointer_slots(np.array([p], dtype=np.int64)).tolist():
                    if h.mvq[slot >> 3] == bad:
                        where = f"runtime: found in object at *({p:#x}+{slot - p:#x})\n"
                        break
                if where:
                    break
        return (f"runtime: pointer {bad:#x} to {'unused region of span' if st == 'in use' else 'unallocated span'}"
                f" span.base()={s << PAGE_SHIFT:#x} span.state={st}\n{where}")

    def _scan_wide(self, f):
        """Scan frontier f (black objects): returns the children it blackened."""
        h = self.h
        s = h.spanof[f >> PAGE_SHIFT].astype(np.int64)
        cls = h.s_sc[s].astype(np.int64) >> 1
        small = cls > 0
        size = np.where(small, _size[cls], h.s_npages[s].astype(np.int64) << PAGE_SHIFT)
        self.bytes += int(size.sum())
        self.objs += len(f)
        tids = h.s_tid[s].astype(np.int64)
        if small.any():
            ss, cs = s[small], cls[small]
            tids[small] = h.meta_tid[(h.s_meta[ss] >> 1) + (f[small] - (ss << PAGE_SHIFT)) // _size[cs]]
        lo, hi = int(tids.min()), int(tids.max())
        groups = [(lo, f)] if lo == hi else [(int(t), f[tids == t]) for t in np.unique(tids).tolist()]
        slots = []
        for tid, sel in groups:
            if tid == 0:
                continue          # freed while queued (an explicitly freed message): nothing to scan
            kind, _, offs = self._type(tid)
            if kind == _STRUCT:
                if len(offs):
                    slots.append((sel[:, None] + offs).ravel())
            elif kind == _PTRS:
                lens = h.arena_i64[(h.object_ends(sel) - 8) >> 3]
                tot = int(lens.sum())
                if tot:
                    first = np.repeat(sel, lens)
                    k = np.arange(tot, dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
                    slots.append(first + k * 8)
        if not slots:
            return np.zeros(0, dtype=np.int64)
        sl = np.concatenate(slots) if len(slots) > 1 else slots[0]
        c = h.arena_i64[sl >> 3]
        c = c[c != 0]
        if not len(c):
            return c
        c = self._valid(c, f if self.invalidptr else None)
        idx, _, _ = mark_indices(h, c)
        take = h.hu8n[idx] != BLACK
        if not take.any():
            return np.zeros(0, dtype=np.int64)
        idx = idx[take]
        h.hu8n[idx] = BLACK
        return c[take]

    def _scan_narrow(self):
        """Breadth first over the queue, one object at a time, until it empties or widens (a tree
        widens within a few levels and goes to the vectorised scan; a list never does)."""
        h = self.h
        st = self.stack
        pop = st.popleft
        mvq, hu8 = h.mvq, h.hu8
        spanof, s_sc, s_meta, s_tid, s_np = h.spanof_mv, h.s_sc_mv, h.s_meta_mv, h.s_tid_mv, h.s_npages
        meta_tid = h.meta_tid_mv
        limit = int(h.hdr[H_ARENA_PAGES]) << PAGE_SHIFT
        n = 0
        nbytes = 0
        while st and len(st) < WIDE:
            a = pop()
            n += 1
            s = spanof[a >> PAGE_SHIFT]
            c = s_sc[s] >> 1
            if c:
                size = class_to_size[c]
                tid = meta_tid[(s_meta[s] >> 1) + (a - (s << PAGE_SHIFT)) // size]
            else:
                size = int(s_np[s]) << PAGE_SHIFT
                tid = s_tid[s]
            nbytes += size
            if not tid:
                continue
            kind, offs, _ = self._type(tid)
            if kind == _STRUCT:
                if not offs:
                    continue
                kids = [mvq[(a + o) >> 3] for o in offs]
            elif kind == _PTRS:
                ln = mvq[(h.object_end(a) - 8) >> 3]
                kids = mvq[a >> 3:(a >> 3) + ln].tolist()
            else:
                continue
            for k in kids:
                if not k:
                    continue
                if self.invalidptr:
                    self._valid(np.array([k], dtype=np.int64), np.array([a], dtype=np.int64))
                elif k < 0 or k >= limit:
                    continue
                i = mark_index(h, k)
                if hu8[i] != BLACK:
                    hu8[i] = BLACK
                    st.append(k)
        self.bytes += nbytes
        self.objs += n
        return n

    # ---- gccheckmark ----

    def checkmark(self, roots):
        """Mark again from roots, the world stopped, without mark bytes: every object reached must
        already be black.  Returns the first white one, or None."""
        h = self.h
        seen = set()
        front = np.unique(self._valid(np.asarray(roots, dtype=np.int64), None))
        while len(front):
            idx, _, _ = mark_indices(h, front)
            white = h.hu8n[idx] != BLACK
            if white.any():
                return int(front[white][0])
            seen.update(front.tolist())
            slots = h.pointer_slots(front)
            c = h.arena_i64[slots >> 3] if len(slots) else np.zeros(0, dtype=np.int64)
            c = np.unique(self._valid(c[c != 0], None))
            front = np.array([x for x in c.tolist() if x not in seen], dtype=np.int64)
        return None


def object_children(h, addrs):
    """What objects addrs point to (their pointer words' targets, nil left out)."""
    slots = h.pointer_slots(np.asarray(addrs, dtype=np.int64))
    if not len(slots):
        return np.zeros(0, dtype=np.int64)
    c = h.arena_i64[slots >> 3]
    return c[c != 0]


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
