"""Go's package runtime (go1.9.2), as a facade over mprt's heap, scheduler and collector.

This module grows with the runtime; each name does what Go's does, in Go's shapes (out-parameters
filled in place, Go's messages).
"""
from ..gc import mfinal as _mfinal
from ..gc import mgc as _mgc
from ..panic import Panic
from ..sched import proc as _proc
from ..sched.ctl import S_NCPU as _S_NCPU
from ..sched.proc import Goexit as _Goexit
from ..shm import malloc as _malloc
from ..shm import mstats as _mstats

Compiler = "gc"
GOARCH = "amd64"
GOOS = "linux"


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


class _PlainError(Error):
    """A runtime error whose text has no "runtime error: " prefix (Go's plainError: send on a
    closed channel, close of a closed channel)."""

    def __str__(self):
        return str(self.value)


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
    h = _malloc.current()
    pm = _proc._m
    if pm is not None and pm.p != _proc.NONE:
        t0 = _proc.stop_the_world(pm, "read mem stats")
        try:
            st = _mgc.read_stats(h, _mstats.read(h))
        finally:
            _proc.start_the_world(pm, t0)
            _proc.ensure_p(pm)
    else:
        st = _mgc.read_stats(h, _mstats.read(h))
    for k, v in st.items():
        if k == "BySize":
            for e, (size, nm, nf) in zip(m.BySize, v):
                e.Size, e.Mallocs, e.Frees = size, nm, nf
        else:
            setattr(m, k, v)


# ---- the scheduler's part of package runtime ----

def GOMAXPROCS(n=0):
    """Set the number of Ps to n and return the previous setting; n <= 0 only reports it.  A change
    stops the world (Go: n is capped at 1024)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"runtime.GOMAXPROCS: {n!r} is not an integer")
    m = _proc.current_m()
    return _proc.gomaxprocs(m, n)


def NumCPU():
    """The CPUs this process may run on (sched_getaffinity at boot, as Go)."""
    m = _proc._m
    if m is not None:
        return int(m.q[m.ctl.sched + _S_NCPU])
    import os
    return len(os.sched_getaffinity(0))


def NumGoroutine():
    """Goroutines that exist now (main included, system goroutines not)."""
    return _proc.numgoroutine(_proc.current_m())


def Gosched():
    _proc.gosched()


def Goexit():
    """End the calling goroutine; its finally blocks (deferred calls) run first."""
    _proc.current_m()
    raise _Goexit()


def LockOSThread():
    _proc.lock_os_thread()


def UnlockOSThread():
    _proc.unlock_os_thread()


def Version():
    return "go1.9.2"


def GOROOT():
    import os
    return os.environ.get("GOROOT") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def KeepAlive(x):
    """Go's KeepAlive: x stays reachable up to here.  A Ptr held by a Python variable is a root
    until the variable goes, so passing it here keeps it alive up to this call, as in Go."""
    return None


# ---- the collector's part of package runtime ----

def GC():
    """Run a full collection (after the one in progress, if any) and wait until its sweep is done.
    Only the calling goroutine waits."""
    _mgc.request_and_wait(_proc.current_m())


def SetFinalizer(obj, finalizer):
    """Run finalizer(obj) once obj is unreachable (see mprt/gc/mfinal.py); finalizer None removes
    it.  Bad arguments are fatal errors with Go's messages."""
    _mfinal.set_finalizer(obj, finalizer)
