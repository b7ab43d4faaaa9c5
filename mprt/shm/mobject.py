"""Address queries: from an address to its object, its type and its pointer words.

See malloc.py for the overview.  An address maps to its object in O(1) from any process: spanof
gives the span, the span record its size class, arithmetic the slot, the span's meta block (or, for
a large object, its span record) the slot's type id, and the type table the pointer map.  Nothing
here takes a lock: an in-use span's records do not change while it holds live objects, so a query
about a live object is exact; a query about an address nobody holds may race with the allocator
and answers as of some moment.

These are methods of Heap (the ObjectQueries mixin), scalar forms for single addresses and vector
forms (numpy) for the collector and new_batch.
"""
import numpy as np

from .layout import H_ARENA_PAGES, S_INUSE
from .sizeclasses import PAGE_SHIFT, class_to_nobjs, class_to_size
from .types import K_STRUCT

_class_size = np.array(class_to_size, dtype=np.int64)
_class_nobjs = np.array(class_to_nobjs, dtype=np.int64)


class ObjectQueries:
    def find_object(self, addr):
        """(span, sizeclass, object start) of the allocated object holding addr, or None.
        Counted in MemStats.Lookups, as Go counts findObject."""
        self.lookups[0] += 1
        if not isinstance(addr, (int, np.integer)) or addr <= 0 or \
                addr >= int(self.hdr[H_ARENA_PAGES]) << PAGE_SHIFT:
            return None
        addr = int(addr)
        s = self.spanof_mv[addr >> PAGE_SHIFT]
        if self.s_state[s] != S_INUSE:
            return None
        cls = self.s_sc_mv[s] >> 1
        base = s << PAGE_SHIFT
        if cls == 0:
            if addr >= base + (int(self.s_npages[s]) << PAGE_SHIFT) or self.s_tid_mv[s] == 0:
                return None
            return s, 0, base
        size = class_to_size[cls]
        idx = (addr - base) // size
        if idx >= class_to_nobjs[cls] or self.meta_tid_mv[(self.s_meta_mv[s] >> 1) + idx] == 0:
            return None
        return s, cls, base + idx * size

    def object_end(self, a):
        """The end of the block of the object starting at a (start + its size class's size, or
        the end of its span for a large object): a slice keeps its length in the last word."""
        s = self.spanof_mv[a >> PAGE_SHIFT]
        cls = self.s_sc_mv[s] >> 1
        if cls:
            return a + class_to_size[cls]
        return (s + int(self.s_npages[s])) << PAGE_SHIFT

    def object_ends(self, addrs):
        """Vector form of object_end."""
        a = np.asarray(addrs, dtype=np.int64)
        s = self.spanof[a >> PAGE_SHIFT].astype(np.int64)
        cls = self.s_sc[s].astype(np.int64) >> 1
        return np.where(cls > 0, a + _class_size[cls], (s + self.s_npages[s]) << PAGE_SHIFT)

    def tid_at(self, a):
        s = self.spanof_mv[a >> PAGE_SHIFT]
        cls = self.s_sc_mv[s] >> 1
        if cls == 0:
            return self.s_tid_mv[s]
        return self.meta_tid_mv[(self.s_meta_mv[s] >> 1) + (a - (s << PAGE_SHIFT)) // class_to_size[cls]]

    def ptr_at(self, a):
        """A Ptr for the object starting at a (a was stored by the runtime, so it is valid)."""
        tid = self.tid_at(a)
        t = self.types.get(tid) or self.typeinfo(tid)
        return t.make(a)

    def ptr_at_checked(self, a):
        f = self.find_object(a)
        if f is None or f[2] != a:
            raise ValueError(f"mprt: address {a!r} is not the start of an allocated object"
                             + (f" (it is inside the object at {f[2]:#x})" if f else ""))
        return self.ptr_at(a)

    def valid_objects(self, addrs, count=True):
        """Vector check: True where addrs[i] is 0 (nil) or the start of an allocated object.
        count=False: the collector's own check, not counted in MemStats.Lookups."""
        a = np.asarray(addrs, dtype=np.int64)
        if count:
            self.lookups[0] += a.size
        ok = a == 0
        inr = (a > 0) & (a < (int(self.hdr[H_ARENA_PAGES]) << PAGE_SHIFT)) & (a % 8 == 0)
        if not inr.any():
            return ok
        x = a[inr]
        s = self.spanof[x >> PAGE_SHIFT].astype(np.int64)
        cls = self.s_sc[s].astype(np.int64) >> 1
        base = s << PAGE_SHIFT
        off = x - base
        size = np.where(cls == 0, 1, _class_size[cls])
        idx = off // size
        small_ok = (cls > 0) & (off % size == 0) & (idx < _class_nobjs[cls])
        tids = np.zeros(len(x), dtype=np.int64)
        if small_ok.any():
            tids[small_ok] = self.meta_tid[(self.s_meta[s[small_ok]] >> 1) + idx[small_ok]]
        large = cls == 0
        tids[large & (off == 0)] = self.s_tid[s[large & (off == 0)]]
        ok[inr] = (self.s_state[s] == S_INUSE) & (tids != 0)
        return ok

    def tids_of(self, addrs):
        """Vector form of tid_at: the type ids of the objects starting at addrs (0 where none)."""
        a = np.asarray(addrs, dtype=np.int64)
        s = self.spanof[a >> PAGE_SHIFT].astype(np.int64)
        cls = self.s_sc[s].astype(np.int64) >> 1
        tids = self.s_tid[s].astype(np.int64)
        small = cls > 0
        if small.any():
            sm, cs = s[small], cls[small]
            tids[small] = self.meta_tid[(self.s_meta[sm] >> 1) + (a[small] - (sm << PAGE_SHIFT)) // _class_size[cs]]
        return tids

    def pointer_slots(self, addrs):
        """The addresses of every pointer word of the objects starting at addrs: what the
        collector scans.  Any process can answer it from shared memory alone."""
        a = np.asarray(addrs, dtype=np.int64)
        tids = self.tids_of(a)
        out = []
        for tid in np.unique(tids).tolist():
            if tid == 0:
                continue
            sel = a[tids == tid]
            t = self.typeinfo(tid)
            if t.kind == K_STRUCT:
                if len(t.ptroffs):
                    out.append((sel[:, None] + t.ptroffs).ravel())
            elif t.elem is None:                      # a pointer slice: every element
                lens = self.arena_i64[(self.object_ends(sel) - 8) >> 3]
                first = np.repeat(sel, lens)
                k = np.arange(int(lens.sum()), dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
                out.append(first + k * 8)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def gather(self, addrs, dt):
        if dt.itemsize <= 8:
            return self._npview(dt)[addrs // dt.itemsize]
        idx = addrs[:, None] + np.arange(dt.itemsize)
        return self.arena_u8[idx].view(dt).ravel()

    def scatter(self, addrs, dt, values):
        if dt.itemsize <= 8:
            self._npview(dt)[addrs // dt.itemsize] = values
        else:
            idx = addrs[:, None] + np.arange(dt.itemsize)
            self.arena_u8[idx] = np.ascontiguousarray(values).view(np.uint8).reshape(len(addrs), dt.itemsize)

    def _npview(self, dt):
        v = self._npviews.get(dt)
        if v is None:
            v = self._npviews[dt] = np.frombuffer(self.arena.mm, dtype=dt)
        return v


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.HEAP)
