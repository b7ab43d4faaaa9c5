"""sync.Map over the shared heap: load, store, load_or_store, delete, range, from every M.

Go's sync.Map holds interface{} keys and values.  Here a key is an int, a float, a str, bytes or a
heap Ptr (an int and a float are different keys, as Go's int and float64 in an interface), and a
value any value a channel can carry (a heap message, as a channel's: its Ptrs stay reachable while
the map holds it).  One heap map per key kind, made on first use, under an RWMutex: loads share it,
writes take it alone (Go 1.9's sync.Map avoids the lock for stable keys with a read-only map and
atomics; the behaviour is the same, the speed is a Mutex-guarded map's).  range(f) calls f(key,
value) for the entries as they were when it began, with no lock held, until f returns False.
"""
from collections.abc import Callable

import numpy as np

from ..sched import msg
from ..sched.hashmap import Map as _HeapMap
from ..sched.hashmap import make_map, map_type
from ..sched.sema import RWMutex
from ..shm import malloc
from ..shm.ptr import Ptr
from ..shm.types import struct

_KINDS = (("i", np.int64), ("f", np.float64), ("s", str), ("b", bytes), ("p", Ptr))


@struct
class _syncmap:
    mu: Ptr
    i: map_type(np.int64, Ptr)
    f: map_type(np.float64, Ptr)
    s: map_type(str, Ptr)
    b: map_type(bytes, Ptr)
    p: map_type(Ptr, Ptr)


def _kind(key):
    if isinstance(key, (bool, np.bool_)) or isinstance(key, (int, np.integer)):
        return "i", int(key)
    if isinstance(key, (float, np.floating)):
        return "f", float(key)
    if isinstance(key, str):
        return "s", key
    if isinstance(key, bytes):
        return "b", key
    if isinstance(key, Ptr):
        return "p", key
    raise TypeError(f"sync.Map: key {key!r} (type {type(key).__name__}) is not an int, float, str, bytes or Ptr")


class Map:
    """sync.Map: load(k) -> (value, ok), store(k, v), load_or_store(k, v) -> (actual, loaded),
    delete(k), range(f)."""

    __slots__ = ("_p", "_mu")

    def __init__(self, p=None):
        if p is None:
            p = malloc.new(_syncmap, safepoint=False)
            p.mu = RWMutex()._p
        self._p = p
        self._mu = RWMutex(p.mu)

    def __reduce__(self):
        return (Map, (self._p,))

    def _map(self, kind, make=False) -> "_HeapMap | None":
        m = getattr(self._p, kind)
        if m is None and make:
            m = make_map(map_type(dict(_KINDS)[kind], Ptr))
            setattr(self._p, kind, m)
        return m

    @staticmethod
    def _message(v):
        return msg.message_of(v, "a sync.Map value")

    def load(self, key: object) -> tuple:
        kind, k = _kind(key)
        with self._mu.rlocker():
            m = self._map(kind)
            h = m.get(k) if m is not None else None
            v = msg.decode(h) if h is not None else None
        return (v, True) if h is not None else (None, False)

    def store(self, key: object, value: object) -> None:
        kind, k = _kind(key)
        h = self._message(value)
        with self._mu:
            self._map(kind, make=True)[k] = h

    def load_or_store(self, key: object, value: object) -> tuple:
        kind, k = _kind(key)
        with self._mu:
            m = self._map(kind, make=True)
            h = m.get(k)
            if h is not None:
                return msg.decode(h), True
            m[k] = self._message(value)
        return value, False

    def delete(self, key: object) -> None:
        kind, k = _kind(key)
        with self._mu:
            m = self._map(kind)
            if m is not None:
                del m[k]

    def range(self, f: Callable[[object, object], object]) -> None:
        with self._mu.rlocker():
            items = []
            for kind, _ in _KINDS:
                m = self._map(kind)
                if m is not None:
                    items.extend(m.items())
        for k, h in items:
            if f(k, msg.decode(h)) is False:
                return


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

# the program's code to a signal, as Once: range() calls the program's f
_codeclass.mark(__name__, _codeclass.USER)
