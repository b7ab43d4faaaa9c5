"""sync.Once over the shared heap: do(f) calls f once among every goroutine on every M.

Go 1.9's design: a done word read atomically (the fast path: once done, no lock), and a Mutex
that the first callers queue on; the one that finds done still 0 calls f and sets done when f
returns or panics (Go's deferred store), then unlocks.  Both words are a heap object's, so a Once
passed to goroutines on other Ms is the same Once.
"""
from collections.abc import Callable

import numpy as np

from ..sched import mstate
from ..sched.sema import Mutex
from ..shm import malloc
from ..shm.ptr import Ptr
from ..shm.types import struct
from .atomic import LoadInt64, StoreInt64, ref


@struct
class _once:
    done: np.int64
    m: Ptr          # the Mutex's object


class Once:
    """sync.Once: do(f)."""

    __slots__ = ("_p", "_done", "_m")

    def __init__(self, p=None):
        if p is None:
            mstate.current_m()
            p = malloc.new(_once, safepoint=False)
            p.m = Mutex()._p
        self._p = p
        self._done = ref(p, "done")
        self._m = Mutex(p.m)

    def __reduce__(self):
        return (Once, (self._p,))

    def do(self, f: Callable[[], object]) -> None:
        if LoadInt64(self._done) == 1:
            return
        with self._m:
            if LoadInt64(self._done) == 0:
                try:
                    f()
                finally:
                    StoreInt64(self._done, 1)


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

# the program's code as far as a signal is concerned: do() calls the program's f, which must stay
# preemptible, and holds nothing but the Once's Mutex (a heap object, as a program holding a Mutex)
_codeclass.mark(__name__, _codeclass.USER)
