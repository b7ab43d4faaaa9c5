"""Go's package sync/atomic over words of the shared heap: correct across Ms (processes).

A word is named by a Ref, mprt.ref(obj, "field") for a struct's field or mprt.ref(slice, i) for a
slice's element: the handle (which keeps the object alive, a GC root like any Ptr) and the word's
address.  The operations keep Go's names and types: AddInt64(ref, delta), LoadUint32(ref), ...;
a ref whose word is not of the function's type is a TypeError naming both (Go rejects it when it
compiles).  Values wrap to the word as Go's arithmetic does: AddUint32(ref, -1) is Go's
AddUint32(&x, ^uint32(0)).

Where the accelerator is built (cptr.c) each operation is one of the hardware's atomic
instructions on the shared mapping, so it is atomic with respect to every process at once.  The
pure-Python path (MPRT_ACCEL=0) reads and writes the word under the object's lock (the lock
stripes of channels and sync objects, by address), held for the read-modify-write and nothing
else: atomic with respect to every other operation of this module on the word (the accelerator
is on or off for a whole runtime, so the two never mix).

Value: Go's atomic.Value for heap handles (a Ptr, a channel, a WaitGroup or Mutex): Store(v) and
Load() of one aligned pointer word, written through the write barrier; the first Store fixes the
type (Go's "store of inconsistently typed value into Value" panic for another, and "store of nil
value into Value" for None).
"""
import numpy as np

from ..panic import Panic
from ..sched import chan as _chan
from ..sched import msg as _msg
from ..sched import mstate as _mstate
from ..shm import malloc as _malloc
from ..shm.ptr import Ptr, SlicePtr
from ..shm.types import struct

__all__ = [
    "AddInt32", "AddInt64", "AddUint32", "AddUint64",
    "LoadInt32", "LoadInt64", "LoadUint32", "LoadUint64",
    "StoreInt32", "StoreInt64", "StoreUint32", "StoreUint64",
    "SwapInt32", "SwapInt64", "SwapUint32", "SwapUint64",
    "CompareAndSwapInt32", "CompareAndSwapInt64", "CompareAndSwapUint32", "CompareAndSwapUint64",
    "Ref", "Value", "ref",
]

_LOAD, _STORE, _ADD, _SWAP, _CAS = range(5)
_KINDS = {np.dtype(np.int32): "Int32", np.dtype(np.int64): "Int64", np.dtype(np.uint32): "Uint32",
          np.dtype(np.uint64): "Uint64"}


class Ref:
    """A word of the heap that sync/atomic may operate on (Go's &x): mprt.ref(obj, "field") or
    mprt.ref(slice, i)."""

    __slots__ = ("_p", "_key", "_addr", "_kind", "_width", "_signed")

    def __init__(self, p, key):
        if not isinstance(p, Ptr):
            raise TypeError(f"mprt.ref: {p!r} is not a heap object (a Ptr to a struct or a slice)")
        if isinstance(p, SlicePtr):
            dt = p._t.elem
            if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
                raise TypeError(f"mprt.ref: index {key!r} of {p!r} is not an integer")
            if not 0 <= key < len(p):
                raise IndexError(f"mprt.ref: index {key} out of range [0:{len(p)}] of {p!r}")
            addr = p.addr + int(key) * p._t.elemsize
            what = f"element {key} of {p!r}"
        else:
            f = p._t.fields.get(key) if isinstance(key, str) else None
            if f is None:
                raise TypeError(f"mprt.ref: {p!r} has no field {key!r}")
            _, off, dt = f
            addr = p.addr + off
            what = f"field {key!r} of {p!r}"
        kind = _KINDS.get(dt) if dt is not None else None
        if kind is None:
            raise TypeError(f"mprt.ref: {what} is {'a pointer' if dt is None else dt.name}; sync/atomic "
                            f"works on int32, int64, uint32 and uint64 words")
        self._p, self._key, self._addr, self._kind = p, key, addr, kind
        self._width = dt.itemsize
        self._signed = dt.kind == "i"

    def __reduce__(self):
        return (Ref, (self._p, self._key))

    def __repr__(self):
        return f"mprt.ref({self._p!r}, {self._key!r}) ({self._kind.lower()})"


def ref(obj: Ptr, key: "str | int") -> Ref:
    """Go's &obj.field (key a field name) or &slice[i] (key an index), for sync/atomic."""
    return Ref(obj, key)


def _op(name, kind, r, op, a=0, b=0):
    if not isinstance(r, Ref):
        raise TypeError(f"atomic.{name}: {r!r} is not an mprt.ref")
    if r._kind != kind:
        raise TypeError(f"atomic.{name}: {r!r} is not an {kind.lower()} word")
    for v in (a, b) if op == _CAS else (a,):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"atomic.{name}: {v!r} is not an integer")
    h = r._p._t.heap
    cx = h.cx
    if cx is not None:
        return cx.atomic(r._addr, op, r._width, r._signed, int(a), int(b))
    return _op_locked(r, op, int(a), int(b))


def _op_locked(r, op, a, b):
    """The pure-Python path: the word read and written under its object's lock."""
    m = _mstate.current_m()
    h = r._p._t.heap
    if not h.alive:
        from ..shm.ptr import ended
        raise ended(h)
    bits = 8 * r._width
    mask = (1 << bits) - 1
    view = np.ndarray((1,), dtype=np.dtype(f"u{r._width}"), buffer=h.arena.mm, offset=r._addr)

    def signed(v):
        return v - (1 << bits) if r._signed and v >> (bits - 1) else v
    lk = _chan.objlock(m, r._addr)
    _mstate.acq(lk)
    try:
        old = int(view[0])
        if op == _LOAD:
            return signed(old)
        if op == _STORE:
            view[0] = a & mask
            return None
        if op == _ADD:
            new = (old + a) & mask
            view[0] = new
            return signed(new)
        if op == _SWAP:
            view[0] = a & mask
            return signed(old)
        if old == a & mask:
            view[0] = b & mask
            return True
        return False
    finally:
        _mstate.rel(lk)


def AddInt32(ref: Ref, delta: int) -> int:
    """Go's atomic.AddInt32: adds delta to the word, returns the new value."""
    return _op("AddInt32", "Int32", ref, _ADD, delta)


def LoadInt32(ref: Ref) -> int:
    """Go's atomic.LoadInt32."""
    return _op("LoadInt32", "Int32", ref, _LOAD)


def StoreInt32(ref: Ref, val: int) -> None:
    """Go's atomic.StoreInt32."""
    _op("StoreInt32", "Int32", ref, _STORE, val)


def SwapInt32(ref: Ref, new: int) -> int:
    """Go's atomic.SwapInt32: stores new, returns the old value."""
    return _op("SwapInt32", "Int32", ref, _SWAP, new)


def CompareAndSwapInt32(ref: Ref, old: int, new: int) -> bool:
    """Go's atomic.CompareAndSwapInt32: stores new if the word is old; whether it did."""
    return _op("CompareAndSwapInt32", "Int32", ref, _CAS, old, new)


def AddInt64(ref: Ref, delta: int) -> int:
    """Go's atomic.AddInt64: adds delta to the word, returns the new value."""
    return _op("AddInt64", "Int64", ref, _ADD, delta)


def LoadInt64(ref: Ref) -> int:
    """Go's atomic.LoadInt64."""
    return _op("LoadInt64", "Int64", ref, _LOAD)


def StoreInt64(ref: Ref, val: int) -> None:
    """Go's atomic.StoreInt64."""
    _op("StoreInt64", "Int64", ref, _STORE, val)


def SwapInt64(ref: Ref, new: int) -> int:
    """Go's atomic.SwapInt64: stores new, returns the old value."""
    return _op("SwapInt64", "Int64", ref, _SWAP, new)


def CompareAndSwapInt64(ref: Ref, old: int, new: int) -> bool:
    """Go's atomic.CompareAndSwapInt64: stores new if the word is old; whether it did."""
    return _op("CompareAndSwapInt64", "Int64", ref, _CAS, old, new)


def AddUint32(ref: Ref, delta: int) -> int:
    """Go's atomic.AddUint32: adds delta to the word, returns the new value."""
    return _op("AddUint32", "Uint32", ref, _ADD, delta)


def LoadUint32(ref: Ref) -> int:
    """Go's atomic.LoadUint32."""
    return _op("LoadUint32", "Uint32", ref, _LOAD)


def StoreUint32(ref: Ref, val: int) -> None:
    """Go's atomic.StoreUint32."""
    _op("StoreUint32", "Uint32", ref, _STORE, val)


def SwapUint32(ref: Ref, new: int) -> int:
    """Go's atomic.SwapUint32: stores new, returns the old value."""
    return _op("SwapUint32", "Uint32", ref, _SWAP, new)


def CompareAndSwapUint32(ref: Ref, old: int, new: int) -> bool:
    """Go's atomic.CompareAndSwapUint32: stores new if the word is old; whether it did."""
    return _op("CompareAndSwapUint32", "Uint32", ref, _CAS, old, new)


def AddUint64(ref: Ref, delta: int) -> int:
    """Go's atomic.AddUint64: adds delta to the word, returns the new value."""
    return _op("AddUint64", "Uint64", ref, _ADD, delta)


def LoadUint64(ref: Ref) -> int:
    """Go's atomic.LoadUint64."""
    return _op("LoadUint64", "Uint64", ref, _LOAD)


def StoreUint64(ref: Ref, val: int) -> None:
    """Go's atomic.StoreUint64."""
    _op("StoreUint64", "Uint64", ref, _STORE, val)


def SwapUint64(ref: Ref, new: int) -> int:
    """Go's atomic.SwapUint64: stores new, returns the old value."""
    return _op("SwapUint64", "Uint64", ref, _SWAP, new)


def CompareAndSwapUint64(ref: Ref, old: int, new: int) -> bool:
    """Go's atomic.CompareAndSwapUint64: stores new if the word is old; whether it did."""
    return _op("CompareAndSwapUint64", "Uint64", ref, _CAS, old, new)


@struct
class _value:
    typ: np.int64      # 0 until the first Store: the handle's wire code | its type id << 8
    p: Ptr


class Value:
    """Go's atomic.Value for heap handles: Store(v), Load() (None before the first Store)."""

    __slots__ = ("_p",)

    def __init__(self, p=None):
        if p is None:
            _mstate.current_m()
            p = _malloc.new(_value, safepoint=False)
        self._p = p

    def __reduce__(self):
        return (Value, (self._p,))

    def Store(self, v: object) -> None:
        if v is None:
            raise Panic("sync/atomic: store of nil value into Value")
        if isinstance(v, Ptr):
            code, target = 0, v
        else:
            code = _msg._wire_code.get(type(v))
            if code is None:
                raise TypeError(f"atomic.Value.Store: {v!r} is not a heap handle (a Ptr, a channel, a "
                                f"WaitGroup or a Mutex)")
            target = v._p
        typ = code | int(target._t.tid) << 8 | 1 << 62     # never 0 once stored
        w = ref(self._p, "typ")
        if not CompareAndSwapInt64(w, 0, typ) and LoadInt64(w) != typ:
            raise Panic("sync/atomic: store of inconsistently typed value into Value")
        self._p.p = target           # one aligned word, through the write barrier

    def Load(self) -> object:
        typ = LoadInt64(ref(self._p, "typ"))
        if typ == 0:
            return None
        target = self._p.p
        code = typ & 0xFF
        return target if code == 0 or target is None else _msg._wire_class[code](target)


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
