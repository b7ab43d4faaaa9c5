"""Values crossing goroutines: goroutine payloads and channel elements.

A value is pickled once by the sender.  Where it lands is a *slot*: a length word, an address word
and some inline bytes, in a G row (the payload of a goroutine not yet started), a sudog (an element
handed to a parked goroutine) or a channel's buffer (a heap object).  A short pickle that carries no
heap pointer sits inline (length >= 0).  Every heap message address written to or taken from a
slot is shaded while the collector marks (mprt/gc/mbarrier.py): slots move pointers between
processes, so they take the write barrier's both halves.  Anything else is a heap message (length -1, the address
word set): a pointer slice [bytes, p1, ..., pk] whose element 0 is a uint8 slice holding the pickle
and whose other elements are the heap objects the value points to, so the collector finds them by
tracing from the slot.  The receiver frees the heap message once it has unpickled it, unless the
collector is marking: then the message's pointers are shaded and the message is left to the
collector (free_message).

Plain values (int, float, str, bytes, None, bool) take the C pickler; everything else goes through
the runtime's pickler (cloudpickle, with Ptrs carried as addresses).
"""
import collections
import io
import pickle
import types

import numpy as np
from cloudpickle import cloudpickle as _cp

from ..gc.mbarrier import shade_vec, shade_word
from ..shm import malloc
from ..shm.layout import GC_PHASE
from ..shm.ptr import Ptr, _Pickler, loads

_PLAIN = frozenset((int, float, str, bytes, type(None), bool))
HEAP = -1


def _code_reduce(co):
    # cloudpickle writes "<dynamic-code>" as the file of a function it pickles by value; keep the
    # real one, so that tracebacks of goroutines name their source as Go's do
    fn, args = _cp._code_reduce(co)
    if len(args) > 10 and args[10] == "<dynamic-code>":
        args = args[:10] + (co.co_filename,) + args[11:]
    return fn, args


class _PtrPickler(_Pickler):
    # a live view: reducers registered later with copyreg (mprt.runtime's module type) count too
    dispatch_table = collections.ChainMap({types.CodeType: _code_reduce}, _Pickler.dispatch_table)

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
    if type(v) in _PLAIN:
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
    if not ptrs and n <= inline_cap:
        mv8[inline_off:inline_off + n] = data
        q[lenw + 1] = 0
        q[lenw] = n
        return
    a = heap_message(data, ptrs)
    shade_word(malloc._cur, a)
    q[lenw + 1] = a
    q[lenw] = HEAP


def heap_message(data, ptrs):
    b = malloc.make(np.uint8, len(data))
    b.np[:] = np.frombuffer(data, dtype=np.uint8)
    m = malloc.make(Ptr, len(ptrs) + 1)
    m[0] = b
    for i, p in enumerate(ptrs):
        m[i + 1] = p
    return m.addr


def take(mv8, q, lenw, inline_off):
    """The raw content of a slot (bytes, or a heap message's address); the slot is left empty."""
    n = q[lenw]
    if n >= 0:
        return bytes(mv8[inline_off:inline_off + n])
    a = q[lenw + 1]
    shade_word(malloc._cur, a)     # the deletion half of the barrier: a slot in a channel's buffer
    q[lenw + 1] = 0                # is a heap word the mark may not have reached yet
    q[lenw] = 0
    return a


def put_raw(mv8, q, lenw, inline_off, inline_cap, raw):
    """Move a raw content (from take) into another slot."""
    if isinstance(raw, bytes):
        if len(raw) <= inline_cap:
            mv8[inline_off:inline_off + len(raw)] = raw
            q[lenw + 1] = 0
            q[lenw] = len(raw)
            return
        raw = heap_message(raw, ())
    shade_word(malloc._cur, raw)
    q[lenw + 1] = raw
    q[lenw] = HEAP


def decode(raw):
    """The value of a raw content; a heap message is freed once read."""
    if isinstance(raw, bytes):
        return pickle.loads(raw)
    v = loads(heap_bytes(raw))    # Ptrs inside become handles before the message goes
    free_message(raw)
    return v


def load(mv8, q, lenw, inline_off):
    return decode(take(mv8, q, lenw, inline_off))


def drop(q, lenw):
    """Free a slot's heap message without reading it (a value nobody will receive)."""
    if q[lenw] == HEAP and q[lenw + 1]:
        a = q[lenw + 1]
        q[lenw + 1] = 0
        q[lenw] = 0
        free_message(a)


# ---- goroutine payloads: (fn, args, kwargs) ----
#
# The function is pickled apart from its arguments, and both sides cache it: the sender by the
# function object (only for functions pickled by reference, and methods of the runtime's own
# handles: their pickle never changes), the receiver by the pickle's bytes.  Goroutines on one M
# that were started with the same function share one function object, as Go's goroutines share
# a closure.

_FN_CACHE = {}
_FN_DEC = {}
_CACHE_MAX = 1024


_NOCACHE = object()


def _cacheable(fn):
    from ..sched.chan import Chan
    from ..sched.sema import _SemaObject
    t = type(fn)
    if t is types.FunctionType:
        return _cp._should_pickle_by_reference(fn)
    if t is types.BuiltinFunctionType:
        # a module's function (sys.exit) pickles by name; a bound one ([].append) carries its object
        return fn.__self__ is None or isinstance(fn.__self__, types.ModuleType)
    if t is types.MethodType and isinstance(fn.__self__, (Chan, _SemaObject)):
        return _cp._should_pickle_by_reference(fn.__func__)
    return False


def encode_fn(fn, what):
    """(bytes, ptrs) of a goroutine's function, from the cache when its pickle cannot change."""
    # a method's key holds its handle's id; the entry holds the handle, so the id stays its own
    key = (fn.__func__, id(fn.__self__)) if type(fn) is types.MethodType else fn
    try:
        ent = _FN_CACHE.get(key)
    except TypeError:      # an unhashable callable
        return encode(fn, what)
    if ent is not None and ent is not _NOCACHE:
        return ent[0], ent[1]
    if ent is None:
        if len(_FN_CACHE) >= _CACHE_MAX:
            _FN_CACHE.clear()
        if not _cacheable(fn):
            _FN_CACHE[key] = _NOCACHE
            return encode(fn, what)
        b, ptrs = encode(fn, what)
        ent = _FN_CACHE[key] = (b, ptrs, getattr(fn, "__self__", None))
        return b, ptrs
    return encode(fn, what)


def decode_fn(b, hasptr):
    fn = _FN_DEC.get(b)
    if fn is None:
        fn = loads(b) if hasptr else pickle.loads(b)
        if len(_FN_DEC) >= _CACHE_MAX:
            _FN_DEC.clear()
        _FN_DEC[b] = fn
    return fn


def heap_bytes(a):
    """The pickle inside heap message a."""
    h = malloc.current()
    b = h.mvq[a >> 3]
    blen = h.mvq[(h.object_end(b) - 8) >> 3]
    return bytes(h.arena_u8[b:b + blen])


def free_message(a):
    """Free heap message a and its bytes (not the objects it points to), or, while the collector
    marks, leave both to it.  The message may be grey and not scanned yet: the coordinator may be
    reading it that very moment, and a slot freed under it could be another object by the time it
    reads the length word.  So a message done with during a mark is only unlinked (its slot was
    cleared by the caller); it was shaded when taken, survives this cycle and is swept in the next.
    Its pointers are shaded now as well (the deletion half of the barrier): the receiver's new
    handles sit in a root table that was scanned already."""
    h = malloc.current()
    if h.gcq[GC_PHASE]:
        n = int(h.mvq[(h.object_end(a) - 8) >> 3])
        if n > 1:
            shade_vec(h, h.mvq[(a >> 3) + 1:(a >> 3) + n])
        return
    h.free_objects([a, h.mvq[a >> 3]])
