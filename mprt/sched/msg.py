"""Values crossing goroutines: goroutine payloads and channel elements.

A value is pickled once by the sender.  Where it lands is a *slot*: a length word, an address word
and some inline bytes, in a G row (the payload of a goroutine not yet started), a sudog (an element
handed to a parked goroutine) or a channel's buffer (a heap object).  A short pickle that carries no
heap pointer sits inline (length >= 0).  Every heap message address written to or taken from a
slot is shaded while the collector marks (mprt/shm/mbarrier.py): slots move pointers between
processes, so they take the write barrier's both halves.  Anything else is a heap message (length -1, the address
word set): a pointer slice [bytes, p1, ..., pk] whose element 0 is a uint8 slice holding the pickle
and whose other elements are the heap objects the value points to, so the collector finds them by
tracing from the slot.

A heap message has one owner at a time and one free path.  The owner is the slot holding its
address, or, once taken, a rooted handle (a Ptr): `take` makes the handle before the slot lets go,
inside heap code, so no stop of the world falls between the two and no GC cycle can find the message
unreachable while anyone may still read it.  Nothing frees a message explicitly: the sweeper frees
it once no slot and no handle holds it.  (An explicit free by the receiver had two owners to agree
with, the receiver and the collector, and lost: a message freed while the mark read it, or swept
while a goroutine that held its raw address was switched out, then freed again.)

Plain values (int, float, str, bytes, None, bool) take the C pickler; everything else goes through
the runtime's pickler (cloudpickle, with Ptrs carried as addresses).
"""
import collections
import io
import pickle
import types

import numpy as np
from cloudpickle import cloudpickle as _cp

from ..shm import malloc
from ..shm.mbarrier import shade_word
from ..shm.ptr import HeapPickler, Ptr, loads

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
    if not ptrs and n <= inline_cap:
        mv8[inline_off:inline_off + n] = data
        q[lenw + 1] = 0
        q[lenw] = n
        return
    put_heap(q, lenw, data, ptrs)


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
    return take_heap(q, lenw)


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
    return loads(heap_bytes(raw))


def load(mv8, q, lenw, inline_off):
    return decode(take(mv8, q, lenw, inline_off))


def drop(q, lenw):
    """Empty a slot whose value nobody will receive (its message is left to the sweeper)."""
    if q[lenw] == HEAP:
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
        if not _cacheable(fn):
            FN_CACHE[key] = NOCACHE
            return encode(fn, what)
        b, ptrs = encode(fn, what)
        ent = FN_CACHE[key] = (b, ptrs, getattr(fn, "__self__", None))
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

_codeclass.mark(__name__, _codeclass.HEAP)
