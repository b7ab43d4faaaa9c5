"""Ptr handles, the per-process root tables, Batch, and how pointers cross process boundaries.

A Ptr is a Python handle on one heap object: its address (a byte offset into the arena), its type,
and a slot in its process's root table.  The root table is a shared-memory array of addresses, one
per attached process; a Ptr writes its address there when it is made and clears it in __del__, so
the collector can see every object that some Python object in some process still holds.  Slot
bookkeeping is process-local (a free list); the table itself is written only by its process.

Struct fields are properties of a per-type Ptr subclass made when a type is first used in a heap,
reading and writing the arena through memoryviews.  Pointer stores all go through `store_ptr` (and
its vector form `store_ptrs`): that is where the collector's write barrier belongs.

With the C accelerator (cptr.c) a Ptr's fields live in its C base, its dealloc gives the slot back,
and struct pointer fields are C descriptors doing what `_field`'s properties do; the pure-Python
path (MPRT_ACCEL=0) is the reference.

Pickling a Ptr with plain pickle raises: the address means nothing outside its runtime, and a
pickled address is not a root.  The runtime's own pickler (`dumps`/`loads`, used for channel
values and goroutine arguments) carries pointers as (runtime id, address) and checks the runtime
on the way in.
"""
import io
import pickle

import cloudpickle
import numpy as np
import posix_ipc

from ..errors import index_error
from ..settings import load_accel
from . import malloc as _malloc
from . import mbarrier as _mb
from .layout import GC_GEN, GC_PHASE, PR_ROOTBYTES
from .segment import Segment, shm_name
from .sizeclasses import PAGE_SHIFT, class_to_nobjs, class_to_size
from .types import BYTES_CODE, K_STRUCT, MAP_PREFIX, PTR_CODE, STR_CODE, set_ptr_class, size_class

_cptr = load_accel("mprt.shm.cptr")   # handles and pointer fields in C (cptr.c), where it was built

ROOT_SLOTS_MAX = 1 << 28     # per process (2 GiB reserved, committed in chunks)
ROOT_CHUNK = 1 << 16         # slots committed at a time (512 KiB), doubling up from ROOT_CHUNK_MIN
ROOT_CHUNK_MIN = 1 << 10
_onew = object.__new__

_FMT = {np.dtype(t): f for t, f in [(np.int8, "b"), (np.int16, "h"), (np.int32, "i"), (np.int64, "q"),
                                    (np.uint8, "B"), (np.uint16, "H"), (np.uint32, "I"),
                                    (np.uint64, "Q"), (np.float32, "f"), (np.float64, "d")]}


class Roots:
    """This process's root table."""

    __slots__ = ("seg", "mv", "free", "cap", "alive", "procs_row")

    def __init__(self, rtid, slot, procs_row):
        name = shm_name(rtid, f"roots.{slot}")
        try:
            self.seg = Segment(name, size=ROOT_SLOTS_MAX * 8, create=True)
        except posix_ipc.ExistentialError:
            # the slot's previous process died without detaching; its table goes with it
            posix_ipc.unlink_shared_memory(name)
            self.seg = Segment(name, size=ROOT_SLOTS_MAX * 8, create=True)
        self.mv = memoryview(self.seg.mm).cast("q")
        self.free = []
        self.cap = 0
        self.alive = True
        self.procs_row = procs_row

    def grow(self):
        """Commit another chunk of slots; returns one of them, the rest go on the free list."""
        chunk = min(max(self.cap, ROOT_CHUNK_MIN), ROOT_CHUNK)   # small at first: workers start fast
        if self.cap + chunk > ROOT_SLOTS_MAX:
            raise MemoryError(f"mprt: more than {ROOT_SLOTS_MAX} live Ptr handles in one process")
        self.seg.commit(self.cap * 8, chunk * 8)
        first = self.cap
        self.cap += chunk
        self.procs_row[PR_ROOTBYTES] = self.cap * 8
        self.free.extend(range(self.cap - 1, first, -1))
        return first

    def live(self):
        """Addresses currently rooted (for tests and the collector)."""
        a = np.frombuffer(self.seg.mm, dtype=np.int64, count=self.cap)
        return a[a != 0]


class Ptr(object if _cptr is None else _cptr.Handle):
    """A handle on a heap object (see the module comment).  Made by mprt.new, mprt.make and by
    reading pointer fields; never constructed directly.  With the C accelerator, _a, _s and _t are
    the C base's fields, and its dealloc gives the root slot back as __del__ does here."""

    __slots__ = ("_a", "_s", "_t") if _cptr is None else ()

    def __new__(cls, *args, **kwargs):
        raise TypeError("mprt.Ptr handles are made by mprt.new, mprt.make and pointer fields")

    if _cptr is None:
        def __del__(self):
            r = self._t.roots
            if r.alive:
                r.mv[self._s] = 0
                r.free.append(self._s)

    @property
    def addr(self):
        return self._a

    def __eq__(self, other):
        if isinstance(other, Ptr):
            return self._a == other._a and self._t.heap is other._t.heap
        return NotImplemented

    def __hash__(self):
        return hash(self._a)

    def __repr__(self):
        return f"<mprt.Ptr {self._t.name} @{self._a:#x}>"

    def __reduce_ex__(self, protocol):
        raise pickle.PicklingError(
            f"cannot pickle {self!r}: a mprt.Ptr is a handle into one runtime's shared heap; it can "
            f"cross processes only through the runtime (channels, goroutine arguments)")

    def __copy__(self):
        return self._t.make(self._a)

    def __deepcopy__(self, memo):
        return self._t.make(self._a)


class SlicePtr(Ptr):
    """A Ptr to a slice object: the elements from the object's address on, and the length in the
    last word of the object's block (see malloc.py).  A slice's length never changes, so the handle
    keeps it."""

    __slots__ = ("_n",)

    def __len__(self):
        return self._n

    @property
    def np(self):
        t = self._t
        if t.elem is None:
            what = "strings" if t.strs else "pointers"
            raise TypeError(f"{self!r} is a slice of {what} and has no numpy view; index it")
        if not t.heap.alive:
            raise ended(t.heap)
        return np.ndarray((self._n,), dtype=t.elem, buffer=t.heap.arena.mm, offset=self._a)

    def _index(self, i):
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"slice index must be an integer, not {type(i).__name__}")
        if not 0 <= i < self._n:
            raise index_error()
        if not self._t.heap.alive:
            raise ended(self._t.heap)
        return self._a + int(i) * self._t.elemsize

    def __getitem__(self, i):
        a = self._index(i)
        t = self._t
        if t.strs:
            return load_str(t.heap, a)
        if t.elem is None:
            v = t.mvq[a >> 3]
            return t.heap.ptr_at(v) if v else None
        return read_value(t, a, t.elem)

    def __setitem__(self, i, v):
        a = self._index(i)
        t = self._t
        if t.strs:
            store_str(t.heap, a, v, f"element {i} of {self!r}")
        elif t.elem is None:
            store_ptr(t.heap, a, ptr_value(t.heap, v, f"element {i} of {self!r}"))
        else:
            write_value(t, a, t.elem, v, f"element {i} of {self!r}")

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


def ended(h):
    """The error for a handle used after its runtime's heap was torn down (or left)."""
    return RuntimeError(f"mprt: runtime {h.rtid} has ended in this process; its heap handles are "
                        f"no longer usable")


# ---- stores ----

def ptr_value(h, v, where):
    if v is None:
        return 0
    if isinstance(v, Ptr):
        if v._t.heap is h:
            return v._a
        raise ValueError(f"mprt: cannot store {v!r} in {where}: it belongs to another runtime")
    raise TypeError(f"mprt: cannot store {v!r} (type {type(v).__name__}) in {where}: want mprt.Ptr or None")


# ---- strings ----
#
# A string on the heap (a str field, a str slice's element) is a pointer word to a string object:
# a byte slice ([]uint8) whose first word is the string's length in bytes and whose bytes follow,
# UTF-8.  String objects are immutable: a store makes a new one (Go's strings are values), so
# every process reads the same text without a lock, and the collector frees one that nothing
# points to.  "" is the nil word.

_map_handle = None     # (hmap Ptr, type code) -> the map's handle: sched/hashmap.py sets it


def set_map_handle(fn):
    global _map_handle
    _map_handle = fn


def load_str(h, slot, raw=False):
    """The str (raw: bytes) at the string word at byte address slot."""
    try:
        a = h.mvq[slot >> 3]
    except ValueError:
        raise ended(h) from None
    if not a:
        return b"" if raw else ""
    n = h.mvq[a >> 3]
    b = bytes(h.arena.mm[a + 8:a + 8 + n])
    return b if raw else b.decode("utf-8", "surrogatepass")


def store_str(h, slot, v, where, raw=False):
    """Store str v (raw: bytes) into the string word at byte address slot (a new string object,
    through the write barrier)."""
    if not isinstance(v, bytes if raw else str):
        raise TypeError(f"mprt: cannot store {v!r} (type {type(v).__name__}) in {where}: "
                        f"want {'bytes' if raw else 'str'}")
    if not h.alive:
        raise ended(h)
    if not v:
        store_ptr(h, slot, 0)
        return
    b = v if raw else v.encode("utf-8", "surrogatepass")
    s = _malloc.make(np.uint8, len(b) + 8, safepoint=False)
    a = s._a
    h.mvq[a >> 3] = len(b)
    h.arena.mm[a + 8:a + 8 + len(b)] = b
    store_ptr(h, slot, a)
    del s                            # the word holds it from here


def store_ptr(h, slot, a):
    """Store address a into the pointer word at byte address slot, through the write barrier
    (mprt/shm/mbarrier.py): while the mark runs, the old and the new target are shaded."""
    q = h.mvq
    if h.gcq[GC_PHASE]:
        _mb.shade(h, q[slot >> 3])
        _mb.shade(h, a)
    q[slot >> 3] = a


def store_ptrs(h, slots, addrs):
    """Vector form of store_ptr."""
    w = slots >> 3
    if h.gcq[GC_PHASE]:
        _mb.shade_vec(h, h.arena_i64[w])
        _mb.shade_vec(h, addrs)
    h.arena_i64[w] = addrs


def _bad_value(where, dt, v, why=None):
    return (TypeError if why is None else ValueError)(
        f"mprt: cannot use {v!r} (type {type(v).__name__}) as {dt.name} in {where}"
        + (f": {why}" if why else ""))


def typed_view(h, dt):
    """The heap arena's words as dtype dt (a memoryview indexed by address // itemsize), or None
    for a dtype with no plain view (bool, complex)."""
    fmt = _FMT.get(dt) if dt is not None and dt.kind != "b" else None
    return h.mv[fmt] if fmt else None


def write_value(t, a, dt, v, where):
    """Write numeric v at byte address a as dtype dt, refusing values that do not fit."""
    h = t.heap
    if not h.alive:
        raise ended(h)
    fmt = _FMT.get(dt)
    if dt.kind == "b":
        if not isinstance(v, (bool, np.bool_)):
            raise _bad_value(where, dt, v)
        h.arena_u8[a] = bool(v)
        return
    if fmt is not None:
        try:
            h.mv[fmt][a // dt.itemsize] = v
        except TypeError:
            raise _bad_value(where, dt, v) from None
        except (ValueError, OverflowError):
            raise _bad_value(where, dt, v, "value out of range") from None
        return
    if not isinstance(v, (int, float, complex, np.number)) or isinstance(v, bool) or \
            (dt.kind in "f" and isinstance(v, (complex, np.complexfloating))):
        raise _bad_value(where, dt, v)
    h.arena_u8[a:a + dt.itemsize] = np.frombuffer(np.array(v, dtype=dt).tobytes(), dtype=np.uint8)


def read_value(t, a, dt):
    fmt = _FMT.get(dt)
    h = t.heap
    if not h.alive:
        raise ended(h)
    if dt.kind == "b":
        return np.bool_(h.arena_u8[a])
    if fmt is not None:
        return dt.type(h.mv[fmt][a // dt.itemsize])
    return np.frombuffer(h.arena.mm, dtype=dt, count=1, offset=a)[0]


# ---- types bound to a heap ----

class TypeInfo:
    """A type as one attached process uses it: the shared type id plus local accessors."""

    __slots__ = ("heap", "roots", "mvq", "tid", "kind", "name", "size", "elem", "elemsize",
                 "noscan", "ptroffs", "fields", "cls", "sizeclass", "spanclass", "objsize", "stride", "cx", "strs")

    def __init__(self, h, tid, kind, name, size, fields=None, elem=None, elemsize=0, ptroffs=(), strs=False):
        self.heap, self.roots, self.mvq, self.cx = h, h.roots, h.mvq, h.cx
        self.strs = strs            # a slice of strings (its pointer words are string objects')
        self.tid, self.kind, self.name, self.size = tid, kind, name, size
        self.elem, self.elemsize = elem, elemsize
        self.ptroffs = np.asarray(ptroffs, dtype=np.int64)
        self.fields = fields or {}
        if kind == K_STRUCT:
            self.noscan = len(self.ptroffs) == 0
            self.objsize = max(size, 8)
            self.sizeclass = size_class(self.objsize)
            self.spanclass = self.sizeclass << 1 | self.noscan
            self.stride = class_to_size[self.sizeclass] if self.sizeclass else 0
            self.cls = _struct_class(self)
        else:
            self.noscan = elem is not None
            self.objsize = 0
            self.sizeclass = self.spanclass = -1
            self.stride = 0
            self.cls = SlicePtr

    def make(self, a):
        cx = self.cx
        if cx is not None:
            return cx.make(self.cls, self, a)
        r = self.roots
        fl = r.free
        s = fl.pop() if fl else r.grow()
        r.mv[s] = a
        p = _onew(self.cls)
        p._a = a
        p._s = s
        p._t = self
        return p


class SliceTypeInfo(TypeInfo):
    """A slice type: its handles also keep the slice's length, read once from the heap."""

    __slots__ = ()

    def make(self, a):
        p = TypeInfo.make(self, a)
        p._n = self.mvq[(self.heap.object_end(a) - 8) >> 3]
        return p


def _struct_class(t):
    ns = {"__slots__": ()}
    for fname, (code, off, dt) in t.fields.items():
        ns[fname] = _field(t, fname, code, off, dt)
    return type(f"Ptr[{t.name}]", (Ptr,), ns)


def _field(t, fname, code, off, dt):
    h = t.heap
    where = f"field {t.name}.{fname}"
    if code == PTR_CODE and h.cx is not None:
        return _cptr.PtrField(h.cx, off, lambda v: ptr_value(h, v, where), f"{fname}: mprt.Ptr")
    if code in (STR_CODE, BYTES_CODE):
        raw = code == BYTES_CODE

        def get(self):
            return load_str(h, self._a + off, raw)

        def set_(self, v):
            store_str(h, self._a + off, v, where, raw)
        return property(get, set_, doc=f"{fname}: {'bytes' if raw else 'str'}")
    if code.startswith(MAP_PREFIX):
        def get(self):
            try:
                a = h.mvq[(self._a + off) >> 3]
            except ValueError:
                raise ended(h) from None
            return _map_handle(h.ptr_at(a), code) if a else None

        def set_(self, v):
            if v is not None and getattr(v, "_code", None) != code:
                raise TypeError(f"mprt: cannot store {v!r} in {where}: want a map of its type or None")
            if not h.alive:
                raise ended(h)
            store_ptr(h, self._a + off, 0 if v is None else ptr_value(h, v._p, where))
        return property(get, set_, doc=f"{fname}: map")
    if code == PTR_CODE:
        mvq, ptr_at = h.mvq, h.ptr_at

        def get(self):
            try:
                a = mvq[(self._a + off) >> 3]
            except ValueError:
                raise ended(h) from None      # the heap's views were released at teardown
            return ptr_at(a) if a else None

        def set_(self, v):
            if not h.alive:
                raise ended(h)
            store_ptr(h, self._a + off, ptr_value(h, v, where))
    elif dt in _FMT:
        mv, sh, conv = h.mv[_FMT[dt]], dt.itemsize.bit_length() - 1, dt.type

        def get(self):
            try:
                return conv(mv[(self._a + off) >> sh])
            except ValueError:
                raise ended(h) from None

        def set_(self, v):
            try:
                mv[(self._a + off) >> sh] = v
            except TypeError:
                raise _bad_value(where, dt, v) from None
            except (ValueError, OverflowError):
                if not h.alive:
                    raise ended(h) from None
                raise _bad_value(where, dt, v, "value out of range") from None
    else:
        def get(self):
            return read_value(t, self._a + off, dt)

        def set_(self, v):
            write_value(t, self._a + off, dt, v, where)
    return property(get, set_, doc=f"{fname}: {dt.name if dt is not None else 'mprt.Ptr'}")


def c_context(h):
    """Heap h's context for the C accelerator (cptr.c), or None on the pure-Python path."""
    if _cptr is None:
        return None
    reg = h.layout.regions
    offs = {"gcphase": reg["gc"][0] + 8 * GC_PHASE, "spanof": reg["spanof"][0], "s_sc": reg["s_sc"][0],
            "s_meta": reg["s_meta"][0], "s_tid": reg["s_tid"][0], "meta": reg["meta"][0],
            "smark": reg["s_mark"][0], "gcdirty": reg["gcdirty"][0], "gcgen": reg["gc"][0] + 8 * GC_GEN}

    def resolve(tid):
        t = h.types.get(tid) or h.typeinfo(tid)
        return t, (t.cls if t.kind == K_STRUCT else None)
    return _cptr.Ctx(h.heapseg.mm, h.arena.mm, h.roots.seg.mm, offs, PAGE_SHIFT, class_to_size,
                     class_to_nobjs, h.roots.free, h.roots.grow, resolve, lambda: ended(h))


# ---- Batch ----

class Batch:
    """n objects of one struct type made by mprt.new_batch.  The objects stay reachable while the
    Batch is alive: it holds a pointer slice of their addresses, and `addrs` is a read-only view
    of that slice."""

    __slots__ = ("_root", "_t", "addrs")

    def __init__(self, root, t):
        self._root, self._t = root, t
        a = np.ndarray((len(root),), dtype=np.int64, buffer=t.heap.arena.mm, offset=root.addr)
        a.flags.writeable = False
        self.addrs = a

    def __len__(self):
        return len(self.addrs)

    def __getitem__(self, i):
        if not self._t.heap.alive:
            raise ended(self._t.heap)
        return self._t.make(int(self.addrs[i]))

    def __iter__(self):
        t = self._t
        if not t.heap.alive:
            raise ended(t.heap)
        for a in self.addrs.tolist():
            yield t.make(a)

    def __repr__(self):
        return f"<mprt.Batch of {len(self)} {self._t.name}>"

    def __reduce_ex__(self, protocol):
        raise pickle.PicklingError("cannot pickle a mprt.Batch outside the runtime")

    def _field(self, field):
        if not self._t.heap.alive:
            raise ended(self._t.heap)
        try:
            return self._t.fields[field]
        except KeyError:
            raise AttributeError(f"{self._t.name} has no field {field!r}") from None

    def get(self, field):
        """The values of `field` across the batch (addresses for a pointer field), as a new array."""
        code, off, dt = self._field(field)
        h = self._t.heap
        if code == STR_CODE:
            return [load_str(h, int(a)) for a in self.addrs + off]
        if code == PTR_CODE:
            return h.arena_i64[(self.addrs + off) >> 3]
        return h.gather(self.addrs + off, dt)

    def set(self, field, values):
        """Write `field` of every object: numbers, or addresses (0 = nil) for a pointer field."""
        code, off, dt = self._field(field)
        h = self._t.heap
        where = f"field {self._t.name}.{field}"
        n = len(self.addrs)
        if code == STR_CODE:
            vals = [values] * n if isinstance(values, str) else list(values)
            if len(vals) != n:
                raise ValueError(f"mprt: Batch.set({field!r}): {len(vals)} strings for {n} objects")
            for a, v in zip(self.addrs.tolist(), vals):
                store_str(h, a + off, v, where)
            return
        if code == PTR_CODE:
            v = np.asarray(values)
            if v.dtype.kind not in "iu":
                raise TypeError(f"mprt: Batch.set({field!r}): a pointer field takes integer addresses, "
                                f"not {v.dtype}")
            v = np.broadcast_to(v.astype(np.int64), (n,))
            bad = ~h.valid_objects(v)
            if bad.any():
                raise ValueError(f"mprt: Batch.set({field!r}): {int(v[bad][0]):#x} is not the address "
                                 f"of an object in this heap")
            store_ptrs(h, self.addrs + off, v)
            return
        v = np.asarray(values)
        if v.dtype.kind not in "biufc" or not np.can_cast(v.dtype, dt, "same_kind"):
            raise TypeError(f"mprt: cannot use values of type {v.dtype} as {dt.name} in {where}")
        if v.dtype.kind in "iu" and dt.kind in "iu" and v.size:
            info = np.iinfo(dt)
            lo, hi = v.min(), v.max()
            if lo < info.min or hi > info.max:
                bad = lo if lo < info.min else hi
                raise ValueError(f"mprt: cannot use {bad} as {dt.name} in {where}: value out of range")
        h.scatter(self.addrs + off, dt, np.broadcast_to(v.astype(dt), (n,)))


# ---- crossing processes through the runtime ----

class HeapPickler(cloudpickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Ptr):
            return ("mprt.Ptr", obj._t.heap.rtid, obj._a)
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, heap):
        super().__init__(f)
        self.heap = heap

    def persistent_load(self, pid):
        tag, rtid, a = pid
        h = self.heap
        if tag != "mprt.Ptr":
            raise pickle.UnpicklingError(f"unknown persistent id {tag!r}")
        if h is None or rtid != h.rtid:
            raise ValueError(f"mprt: heap pointer {a:#x} belongs to runtime {rtid}, "
                             f"not to this one ({h.rtid if h else 'none'})")
        return h.ptr_at_checked(a)


def dumps(obj):
    """Pickle obj for another process of the same runtime (Ptrs travel as addresses)."""
    f = io.BytesIO()
    HeapPickler(f, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return f.getvalue()


def loads(data):
    return _Unpickler(io.BytesIO(data), _malloc.current_or_none()).load()


set_ptr_class(Ptr)

from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.HEAP)
