"""Go's package runtime (go1.9.2), as a facade over mprt's heap, scheduler and collector.

This module grows with the runtime; each name does what Go's does, in Go's shapes (out-parameters
filled in place, Go's messages).
"""
from ..panic import Panic
from ..shm import malloc as _malloc
from ..shm import mstats as _mstats


class Error(Panic):
    """runtime.Error: the runtime's own run-time panics.  str() is Go's Error() text."""

    def __init__(self, msg):
        super().__init__(msg)

    def __str__(self):
        return f"runtime error: {self.value}"

    def RuntimeError(self):   # Go's marker method
        pass

    def Error(self):
        return str(self)


class _IndexError(Error, IndexError):
    pass


def _index_error():
    return _IndexError("index out of range")


class MemStatsBySize:
    __slots__ = ("Size", "Mallocs", "Frees")

    def __init__(self, size=0, mallocs=0, frees=0):
        self.Size, self.Mallocs, self.Frees = size, mallocs, frees

    def __repr__(self):
        return f"{{Size:{self.Size} Mallocs:{self.Mallocs} Frees:{self.Frees}}}"


_MEMSTATS_FIELDS = (
    "Alloc", "TotalAlloc", "Sys", "Lookups", "Mallocs", "Frees",
    "HeapAlloc", "HeapSys", "HeapIdle", "HeapInuse", "HeapReleased", "HeapObjects",
    "StackInuse", "StackSys", "MSpanInuse", "MSpanSys", "MCacheInuse", "MCacheSys",
    "BuckHashSys", "GCSys", "OtherSys",
    "NextGC", "LastGC", "PauseTotalNs", "PauseNs", "PauseEnd", "NumGC", "NumForcedGC",
    "GCCPUFraction", "EnableGC", "DebugGC", "BySize",
)


class MemStats:
    """Go's runtime.MemStats: every field, in Go's order, with Go's names and zero values."""

    __slots__ = _MEMSTATS_FIELDS

    def __init__(self):
        for f in _MEMSTATS_FIELDS:
            setattr(self, f, 0)
        self.PauseNs = [0] * 256
        self.PauseEnd = [0] * 256
        self.GCCPUFraction = 0.0
        self.EnableGC = False
        self.DebugGC = False
        self.BySize = [MemStatsBySize() for _ in range(_mstats.NUM_BYSIZE)]

    def __repr__(self):
        return "MemStats(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in _MEMSTATS_FIELDS
                                       if f not in ("PauseNs", "PauseEnd", "BySize")) + ")"


def ReadMemStats(m):
    """Fill m (a MemStats) with the allocator's statistics as of now, from any attached process."""
    if not isinstance(m, MemStats):
        raise TypeError(f"runtime.ReadMemStats: want a *runtime.MemStats, got {type(m).__name__}")
    st = _mstats.read(_malloc.current())
    for k, v in st.items():
        if k == "BySize":
            for e, (size, nm, nf) in zip(m.BySize, v):
                e.Size, e.Mallocs, e.Frees = size, nm, nf
        else:
            setattr(m, k, v)
