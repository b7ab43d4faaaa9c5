"""Values crossing goroutines: goroutine payloads and channel elements.

A value is encoded once by the sender.  Where it lands is a *slot*: a length word, an address word
and some inline bytes, in a G row (the payload of a goroutine not yet started), a sudog (an element
handed to a parked goroutine) or a channel's buffer (a heap object).  Three forms:

  length >= 0   a short pickle that carries no heap pointer, inline;
  length <= -2  typed words (below): -2 - length bytes inline, and the one heap object they name,
                if any, in the address word, where the collector traces it;
  length == -1  a heap message, its address in the address word: a pointer slice [bytes, p1, ..., pk]
                whose element 0 is a uint8 slice holding the encoded value and whose other elements
                are the heap objects the value points to, so the collector finds them by tracing
                from the slot.

Every heap address written to or taken from a slot is shaded while the collector marks
(mprt/shm/mbarrier.py): slots move pointers between processes, so they take the write barrier's both
halves.  A goroutine's arguments in typed words keep their heap objects in the G row's pointer
words (G_PTR0..), also traced.

A heap message has one owner at a time and one free path.  The owner is the slot holding its
address, or, once taken, a rooted handle (a Ptr): `take` makes the handle before the slot lets go,
inside heap code, so no stop of the world falls between the two and no GC cycle can find the message
unreachable while anyone may still read it.  A typed record taken from a slot likewise becomes its
values (handles included) before the slot lets go.  Nothing frees a message explicitly: the sweeper
frees it once no slot and no handle holds it.  (An explicit free by the receiver had two owners to
agree with, the receiver and the collector, and lost: a message freed while the mark read it, or
swept while a goroutine that held its raw address was switched out, then freed again.)

Plain values (int, float, str, bytes, None, bool) take the C pickler; handles and tuples of typed
values take typed words; everything else goes through the runtime's pickler (cloudpickle, with Ptrs
carried as addresses).
"""
import collections
import io
import operator
import pickle
import struct
import types

import numpy as np
from cloudpickle import cloudpickle as _cp

from ..shm import malloc
from ..shm.mbarrier import shade_word
from ..shm.ptr import HeapPickler, Ptr, loads
from ..shm.types import StructLayout
from .ctl import FNPICKBYTES, NFNPICK, S_FNPICKBYTES, S_NFNPICK

PLAIN = frozenset((int, float, str, bytes, type(None), bool))
HEAP = -1


def _code_reduce(co):
    # cloudpickle writes "<dynamic-code>" as the file of a function it pickles by value; keep the
    # real one, so that tracebacks of goroutines name their source as Go's do
    fn, args = _cp._code_reduce(co)
    if len(args) > 10 and args[10] == "<dynamic-code>":
        args = args[:10] + (co.co_filename,) + args[11:]
    return fn, args


class _PtrPickler(HeapPickler):
    # a live view: reducers registered later with copyreg (mprt.runtime's module type) count too
    dispatch_table = collections.ChainMap({types.CodeType: _code_reduce}, HeapPickler.dispatch_table)

    def __init__(self, f):
        super().__init__(f, protocol=pickle.HIGHEST_PROTOCOL)
        self.ptrs = []

    def persistent_id(self, obj):
        if isinstance(obj, Ptr):
            self.ptrs.append(obj)
            return ("mprt.Ptr", obj._t.heap.rtid, obj._a)
        return None


def encode(v, what):
    """(pickle bytes, Ptrs it carries).  Raises TypeError naming `what` if v cannot be pickled."""
    if type(v) in PLAIN:
        return pickle.dumps(v, pickle.HIGHEST_PROTOCOL), ()
    f = io.BytesIO()
    p = _PtrPickler(f)
    try:
        p.dump(v)
    except Exception as e:
        raise TypeError(f"mprt: cannot send {what}: {type(e).__name__}: {e}") from e
    return f.getvalue(), p.ptrs


def put(mv8, q, lenw, inline_off, inline_cap, data, ptrs):
    """Write an encoded value into a slot: q[lenw] is its length word, q[lenw+1] its address word,
    mv8[inline_off:inline_off+inline_cap] its inline bytes."""
    n = len(data)
    if n <= inline_cap:
        if not ptrs and data[0] == 0x80:
            mv8[inline_off:inline_off + n] = data
            q[lenw + 1] = 0
            q[lenw] = n
            return
        if data[0] != 0x80 and len(ptrs) <= 1:
            _put_typed(mv8, q, lenw, inline_off, data, ptrs[0]._a if ptrs else 0)
            return
    put_heap(q, lenw, data, ptrs)


def _put_typed(mv8, q, lenw, inline_off, b, a):
    mv8[inline_off:inline_off + len(b)] = b
    if a:
        shade_word(malloc.current_or_none(), a)     # the slot may be a word the mark has passed
    q[lenw + 1] = a
    q[lenw] = TYPED_SLOT - len(b)


def put_heap(q, lenw, data, ptrs):
    """Write a heap message holding data and ptrs into a slot.  The message's handle is alive until
    the slot holds its address, so it is never unreachable (and the address is shaded: the slot may
    be a word the mark has passed)."""
    store_message(q, lenw + 1, data, ptrs)
    q[lenw] = HEAP


def store_message(words, i, data, ptrs):
    """words[i] <- the address of a new heap message holding data and ptrs (the finalizer table's
    form of put_heap)."""
    hnd = _new_message(data, ptrs)
    a = hnd._a
    shade_word(malloc.current_or_none(), a)
    words[i] = a
    if _check is not None:
        _check.made(a)


def message_of(v, what):
    """A new heap message holding value v (as a channel carries it): its handle.  Whoever keeps
    the handle's address in a traced word keeps the value and its Ptrs alive (sync.Map's values)."""
    data, ptrs = encode_value(v, what)
    return _new_message(data, ptrs)


def _new_message(data, ptrs):
    b = malloc.make(np.uint8, len(data), safepoint=False)
    b.np[:] = np.frombuffer(data, dtype=np.uint8)
    m = malloc.make(Ptr, len(ptrs) + 1 + (_check is not None), safepoint=False)
    m[0] = b
    for i, p in enumerate(ptrs):
        m[i + 1] = p
    if _check is not None:
        m[len(ptrs) + 1] = _check.history()
    return m


def take(mv8, q, lenw, inline_off):
    """The raw content of a slot: its bytes, or a handle on its heap message (a root: the message
    now belongs to the caller, and the collector frees it once the handle is gone).  The slot is
    left empty."""
    n = q[lenw]
    if n >= 0:
        return bytes(mv8[inline_off:inline_off + n])
    if n == HEAP:
        return take_heap(q, lenw)
    b = bytes(mv8[inline_off:inline_off + TYPED_SLOT - n])
    a = q[lenw + 1]
    raw = _Typed(b, a, decode_typed(b))   # its handles first, then the slot lets go
    if a:
        shade_word(malloc.current_or_none(), a)
    q[lenw + 1] = 0
    q[lenw] = 0
    return raw


def take_heap(q, lenw):
    """Take the heap message out of a slot: a handle is made before the slot lets go."""
    a = q[lenw + 1]
    h = malloc.current_or_none()
    if _check is not None:
        _check.taking(a)
    hnd = h.slice_type(Ptr).make(a)
    shade_word(h, a)     # the deletion half of the barrier: the slot may not have been scanned yet,
    q[lenw + 1] = 0      # and this process's root table may have been
    q[lenw] = 0
    return hnd


def put_raw(mv8, q, lenw, inline_off, inline_cap, raw):
    """Move a raw content (from take) into another slot."""
    if type(raw) is _Typed:
        _put_typed(mv8, q, lenw, inline_off, raw.b, raw.a)
        return
    if isinstance(raw, bytes):
        if len(raw) <= inline_cap:
            mv8[inline_off:inline_off + len(raw)] = raw
            q[lenw + 1] = 0
            q[lenw] = len(raw)
            return
        put_heap(q, lenw, raw, ())
        return
    a = raw._a
    shade_word(malloc.current_or_none(), a)
    q[lenw + 1] = a
    q[lenw] = HEAP
    if _check is not None:
        _check.made(a, moved=True)


def decode(raw):
    """The value of a raw content.  A heap message is read through its handle; the Ptrs inside
    become handles of their own before it goes.  Nothing is freed here: the sweeper frees a
    message once no slot and no handle holds it (one free path, the collector's)."""
    if isinstance(raw, bytes):
        return pickle.loads(raw)
    if type(raw) is _Typed:
        return raw.value()
    return _decode_bytes(heap_bytes(raw))


def load(mv8, q, lenw, inline_off):
    return decode(take(mv8, q, lenw, inline_off))


def drop(q, lenw):
    """Empty a slot whose value nobody will receive (its message is left to the sweeper)."""
    if q[lenw] < 0:
        if q[lenw + 1]:
            forget(q[lenw + 1])
        q[lenw + 1] = 0
    q[lenw] = 0


def forget(a):
    """A message's address leaves a word the collector may not have scanned yet: shade it (the
    deletion half of the barrier); the sweeper frees it in a later cycle."""
    shade_word(malloc.current_or_none(), a)


def decode_addr(a):
    """The value of heap message a, read from a word the caller holds locked (the finalizer queue)."""
    return decode(malloc.current_or_none().slice_type(Ptr).make(a))


# ---- typed words: the values Go passes in registers, without a pickle ----
#
# A goroutine's arguments (and a channel's value) that are all ints (int64), floats, None, bools,
# short str/bytes and heap handles (Ptrs, channels, the sync objects) are written as tagged words:
# TYPED, the count, then per value a tag byte and its bytes; a handle is its object's address (the
# slot also holds the address where the collector traces it, msg's G_PTR words or address word).
# The receiver rebuilds each handle from the address and the type in the object's header, as the
# pickle's persistent id does, so both forms give the same values.  Anything else is pickled.

TYPED = 0x01              # a list of values (a goroutine's arguments); a pickle (protocol 2 and up)
TYPED_VALUE = 0x02        # one value (a channel's)                      starts with 0x80: no clash
TYPED_TUPLE = 0x03        # a tuple of values (a channel's)
TYPED_SLOT = -2           # a slot's length word at or below this: a typed record of -2 - len bytes inline,
                          # its one heap pointer (or 0) in the address word
TYPED_MAX = 255           # values per typed record, and bytes per str/bytes value
_wire_code = {}           # handle class -> tag byte
_wire_class = {}          # tag byte -> handle class
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")


def register_wire_type(code, cls):
    """A handle class (exactly that class, rebuilt as cls(Ptr)) that travels as a typed word."""
    assert 0 < code < 64 and _wire_class.get(code, cls) is cls
    _wire_code[cls] = code
    _wire_class[code] = cls


def encode_typed(vals, marker=TYPED):
    """(bytes, Ptrs) of a sequence of values in typed words, or None if one of them needs a pickle."""
    n = len(vals)
    if n > TYPED_MAX:
        return None
    out = bytearray((marker, n))
    ptrs = []
    for v in vals:
        t = type(v)
        if t is int:
            if not -0x8000000000000000 <= v <= 0x7FFFFFFFFFFFFFFF:
                return None
            out += b"i"
            out += _I64.pack(v)
        elif t is float:
            out += b"f"
            out += _F64.pack(v)
        elif v is None:
            out += b"N"
        elif t is bool:
            out += b"T" if v else b"F"
        elif t is str:
            try:
                b = v.encode("utf-8")
            except UnicodeEncodeError:    # lone surrogates: the pickle carries them
                return None
            if len(b) > TYPED_MAX:
                return None
            out += b"s"
            out.append(len(b))
            out += b
        elif t is bytes:
            if len(v) > TYPED_MAX:
                return None
            out += b"b"
            out.append(len(v))
            out += v
        elif t in _wire_code:
            p = v._p
            ptrs.append(p)
            out.append(0x80 | _wire_code[t])
            out += _I64.pack(p._a)
        elif isinstance(v, Ptr):
            ptrs.append(v)
            out += b"p"
            out += _I64.pack(v._a)
        else:
            return None
    return bytes(out), ptrs


def encode_value(v, what):
    """A channel's value: (bytes, Ptrs), typed words where the value is a handle or a tuple of
    typed values, else the pickle (encode)."""
    t = type(v)
    if t in PLAIN:
        return pickle.dumps(v, pickle.HIGHEST_PROTOCOL), ()
    r = None
    if t in _wire_code or isinstance(v, Ptr):
        r = encode_typed((v,), TYPED_VALUE)
    elif t is tuple and len(v) <= 16:
        r = encode_typed(v, TYPED_TUPLE)
    return r if r is not None else encode(v, what)


def _decode_bytes(b):
    """A value's bytes, pickled or typed."""
    if b[0] == 0x80:
        return loads(b)
    vals = decode_typed(b)
    return vals[0] if b[0] == TYPED_VALUE else tuple(vals)


class _Typed:
    """A slot's typed record, taken: its bytes, its heap pointer and the values (their handles
    root the object from the moment the slot lets it go)."""
    __slots__ = ("b", "a", "vals")

    def __init__(self, b, a, vals):
        self.b, self.a, self.vals = b, a, vals

    def value(self):
        return self.vals[0] if self.b[0] == TYPED_VALUE else tuple(self.vals)


def decode_typed(b, i=0):
    """The list of values of typed words b[i:] (b[i] == TYPED)."""
    n = b[i + 1]
    i += 2
    out = []
    h = None
    for _ in range(n):
        c = b[i]
        i += 1
        if c == 0x69:                               # i
            out.append(_I64.unpack_from(b, i)[0])
            i += 8
        elif c >= 0x80 or c == 0x70:               # a handle, or p: a Ptr
            if h is None:
                h = malloc.current_or_none()
                at = h.ptr_at if h.cx is None else h.cx.at      # (cptr.c's Ctx.at: the same, in C)
            p = at(_I64.unpack_from(b, i)[0])
            i += 8
            out.append(p if c == 0x70 else _wire_class[c & 0x7F](p))
        elif c == 0x66:                             # f
            out.append(_F64.unpack_from(b, i)[0])
            i += 8
        elif c == 0x73 or c == 0x62:               # s, b
            k = b[i]
            v = b[i + 1:i + 1 + k]
            out.append(v.decode("utf-8") if c == 0x73 else bytes(v))
            i += 1 + k
        elif c == 0x4E:
            out.append(None)
        elif c == 0x54:
            out.append(True)
        elif c == 0x46:
            out.append(False)
        else:
            raise ValueError(f"mprt: bad typed word tag {c:#x}")
    return out


# ---- goroutine payloads: (fn, args, kwargs) ----
#
# The function is pickled apart from its arguments, and both sides cache it: the sender by the
# function object (only for functions pickled by reference, and methods of the runtime's own
# handles: their pickle never changes), the receiver by the pickle's bytes.  Goroutines on one M
# that were started with the same function share one function object, as Go's goroutines share
# a closure.

FN_CACHE = {}
_FN_DEC = {}


def reset():
    """Forget the cached function pickles: their handles belong to the runtime that ended."""
    FN_CACHE.clear()
    _FN_DEC.clear()
    _BYVAL.clear()
_CACHE_MAX = 1024


NOCACHE = object()
_handle_types = ()       # classes whose bound methods pickle as (handle, function name): Chan, the sync objects


def register_handle_type(cls):
    """A class of runtime handles (chan.py and sema.py register theirs at import): a goroutine started
    with one of its bound methods caches the method's pickle as a plain function's."""
    global _handle_types
    _handle_types = (*_handle_types, cls)


def _cacheable(fn):
    t = type(fn)
    if t is types.FunctionType:
        return _cp._should_pickle_by_reference(fn)
    if t is types.BuiltinFunctionType:
        # a module's function (sys.exit) pickles by name; a bound one ([].append) carries its object
        return fn.__self__ is None or isinstance(fn.__self__, types.ModuleType)
    if t is types.MethodType and isinstance(fn.__self__, _handle_types):
        return _cp._should_pickle_by_reference(fn.__func__)
    return False


def encode_fn(fn, what):
    """(bytes, ptrs) of a goroutine's function, from the cache when its pickle cannot change."""
    # a method's key holds its handle's id; the entry holds the handle, so the id stays its own
    key = (fn.__func__, id(fn.__self__)) if type(fn) is types.MethodType else fn
    try:
        ent = FN_CACHE.get(key)
    except TypeError:      # an unhashable callable
        return encode(fn, what)
    if ent is not None and ent is not NOCACHE:
        return ent[0], ent[1]
    if ent is None:
        if len(FN_CACHE) >= _CACHE_MAX:
            FN_CACHE.clear()
        if _cacheable(fn):
            b, ptrs = _kept(*encode(fn, what))
            FN_CACHE[key] = (b, ptrs, getattr(fn, "__self__", None))
            return b, ptrs
        FN_CACHE[key] = NOCACHE
    if type(fn) is types.FunctionType:
        return _encode_by_value(fn, what)
    return encode(fn, what)


# ---- functions pickled by value (defined in __main__, lambdas, closures) ----
#
# cloudpickle pickles such a function by value: its code, and the values of the globals, defaults
# and closure cells it uses, at the time of the go statement (~80 us).  The pickle is kept per code
# object with the objects it was made of, and used again while every one of them is the same
# object (compared by identity; the entry holds them, so no id is reused).  Only when they are all
# immutable or identity-stable (numbers, strings, tuples of such, modules, functions and classes,
# heap handles) is the pickle kept: a list or an instance may change in place, so a function that
# uses one is pickled afresh at every go, as before.

_BYVAL = {}        # code object -> (what it was made of, bytes, ptrs)
_ATOMS = frozenset((int, float, complex, str, bytes, bool, type(None), type(Ellipsis), type(NotImplemented)))
_SKIP_CLASS_KEYS = frozenset(("__dict__", "__weakref__"))
_MISSING = object()


def _encode_by_value(fn, what):
    deps = []
    if not _dep_function(fn, deps, set()):
        return encode(fn, what)
    code = fn.__code__
    ent = _BYVAL.get(code)
    if ent is not None and len(ent[0]) == len(deps) and all(map(operator.is_, ent[0], deps)):
        return ent[1], ent[2]
    b, ptrs = _kept(*encode(fn, what))
    if len(_BYVAL) >= _CACHE_MAX:
        _BYVAL.clear()
    _BYVAL[code] = (deps, b, ptrs)
    return b, ptrs


# A kept pickle longer than a G row can spare, holding no heap pointer, is written once into the
# runtime's table of function pickles (the control segment's fnbytes, append-only, never freed while
# the runtime lives); goroutines carry the reference record (FNREF, the entry's index) instead, and
# receivers cache what they unpickled by it.  When the table is full, pickles travel whole again.
FNREF = 0x04
FNREF_MIN = 64
_FNREF = struct.Struct("<Bi")


def _kept(b, ptrs):
    if ptrs or len(b) < FNREF_MIN:
        return b, ptrs
    m = _mstate.current_m_or_none()
    k = None if m is None or m.row is None else _fn_table_put(m, b)
    return (b, ptrs) if k is None else (_FNREF.pack(FNREF, k), ())


def _fn_table_put(m, b):
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    _mstate.acq(m.schedlock)
    try:
        k, nb = q[s + S_NFNPICK], q[s + S_FNPICKBYTES]
        if k >= NFNPICK or nb + len(b) > FNPICKBYTES:
            return None
        off = ctl.base["fnbytes"] * 8 + nb
        m.mv8[off:off + len(b)] = b
        q[ctl.base["fnidx"] + 2 * k] = nb
        q[ctl.base["fnidx"] + 2 * k + 1] = len(b)
        q[s + S_FNPICKBYTES] = nb + len(b)
        q[s + S_NFNPICK] = k + 1
        return k
    finally:
        _mstate.rel(m.schedlock)


def _fn_table_get(k):
    ctl = _mstate.current_m().ctl
    off = ctl.q[ctl.base["fnidx"] + 2 * k]
    n = ctl.q[ctl.base["fnidx"] + 2 * k + 1]
    b = ctl.base["fnbytes"] * 8 + off
    return bytes(ctl.u8[b:b + n])


def _dep(v, out, seen):
    """Append v (and what its pickle is made of) to out; False if some part may change in place."""
    out.append(v)
    t = type(v)
    if t in _ATOMS or t is types.ModuleType or t is StructLayout or v is _MISSING:
        return True
    if t is tuple or t is frozenset:
        return len(v) <= 64 and all(_dep(x, out, seen) for x in v)
    if t is types.FunctionType:
        return _cp._should_pickle_by_reference(v) or _dep_function(v, out, seen)
    if t is types.BuiltinFunctionType:
        return v.__self__ is None or isinstance(v.__self__, types.ModuleType)
    if isinstance(v, type):
        return _cp._should_pickle_by_reference(v) or _dep_class(v, out, seen)
    if isinstance(v, Ptr) or isinstance(v, _handle_types):
        return True
    if t is staticmethod or t is classmethod:
        return _dep(v.__func__, out, seen)
    if t is property:
        return all(_dep(f, out, seen) for f in (v.fget, v.fset, v.fdel))
    return t is types.MemberDescriptorType or t is types.GetSetDescriptorType


def _dep_function(fn, out, seen):
    if id(fn) in seen:
        return True
    seen.add(id(fn))
    out.append(fn.__code__)
    g = fn.__globals__
    for name in _cp._extract_code_globals(fn.__code__):
        if not _dep(g.get(name, _MISSING), out, seen):
            return False
    for v in (fn.__defaults__ or ()):
        if not _dep(v, out, seen):
            return False
    for d in (fn.__kwdefaults__, fn.__dict__, fn.__annotations__):
        if d and not _dep_items(d, out, seen):
            return False
    for c in (fn.__closure__ or ()):
        try:
            v = c.cell_contents
        except ValueError:        # a cell not filled yet
            v = _MISSING
        if not _dep(v, out, seen):
            return False
    out.append(fn.__name__)
    out.append(fn.__qualname__)
    out.append(fn.__module__)
    return True


def _dep_items(d, out, seen):
    out.append(len(d))
    for k, v in d.items():
        if not (_dep(k, out, seen) and _dep(v, out, seen)):
            return False
    return True


def _dep_class(cls, out, seen):
    if id(cls) in seen:
        return True
    seen.add(id(cls))
    for b in cls.__bases__:
        if not _dep(b, out, seen):
            return False
    for k, v in cls.__dict__.items():
        if k in _SKIP_CLASS_KEYS:
            continue
        out.append(k)
        if k == "__annotations__" and type(v) is dict:
            if not _dep_items(v, out, seen):
                return False
        elif not _dep(v, out, seen):
            return False
    return True


def decode_fn(b, hasptr):
    """The function of a goroutine's payload bytes (a pickle, or a reference record while the row
    or payload message holding it still holds its heap message)."""
    fn = _FN_DEC.get(b)
    if fn is None:
        if b[0] == FNREF:
            fn = pickle.loads(_fn_table_get(_FNREF.unpack(b)[1]))
        else:
            fn = loads(b) if hasptr else pickle.loads(b)
        if len(_FN_DEC) >= _CACHE_MAX:
            _FN_DEC.clear()
        _FN_DEC[b] = fn
    return fn


def heap_bytes(hnd):
    """The pickle inside the heap message of handle hnd."""
    if _check is not None:
        _check.reading(hnd._a)
    h = malloc.current_or_none()
    b = h.mvq[hnd._a >> 3]          # reachable from the message, which the handle roots
    blen = h.mvq[(h.object_end(b) - 8) >> 3]
    return bytes(h.arena_u8[b:b + blen])


# ---- GODEBUG=msgcheck=1 ----

_check = None


def set_check(checker):
    """msgcheck: a checker with made/taking/reading/history (mprt/sched/msgcheck.py), or None."""
    global _check
    _check = checker


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)
from . import mstate as _mstate  # noqa: E402  (last: mstate's imports come back here)

_codeclass.mark(__name__, _codeclass.HEAP)
