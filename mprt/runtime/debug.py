"""Go's runtime/debug: SetMaxThreads, SetMaxStack, SetPanicOnFault, SetTraceback, Stack, PrintStack
(the scheduler's part); SetGCPercent, FreeOSMemory, GCStats, ReadGCStats and WriteHeapDump (the
collector's).

SetMaxStack: a goroutine's stack is its Python frames; each counts as stw.FRAME_BYTES (1 KiB) of
Go's stack, so the limit is a depth, applied on every M as the process's recursion limit, and never
above the interpreter's own (sys.getrecursionlimit() at the M's start): Go's default of 1 GB is that
limit.  A goroutine that goes past it ends the program as Go's does (`runtime: goroutine stack
exceeds N-byte limit`, `fatal error: stack overflow`, exit status 2), unless it catches the
RecursionError itself.
"""
import sys

from ..gc import mgc as _mgc
from ..sched import mstate as _mstate
from ..sched import proc as _proc
from ..sched import stw as _stw
from ..sched import traceback as _tb
from ..sched.ctl import S_TRACEBACK as _S_TRACEBACK
from ..shm import malloc as _malloc


def SetMaxThreads(n):
    """Set the limit on Ms (M0 included) and return the old one.  Past it the program dies with Go's
    "thread exhaustion".  mprt's control segment holds at most 10000 Ms whatever the setting."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"debug.SetMaxThreads: {n!r} is not an integer")
    m = _mstate.current_m()
    return _proc.set_max_threads(m, n)


def SetMaxStack(n):
    """Set the largest stack a goroutine may use, in bytes (Go's default 1000000000); returns the
    previous setting."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"debug.SetMaxStack: {n!r} is not an integer")
    m = _mstate.current_m()
    return _stw.set_max_stack(m, n)


def SetPanicOnFault(enabled):
    """Whether a fault at an unexpected address panics (instead of crashing) in the calling
    goroutine; returns the previous setting.  mprt's faults are Go's already: a nil or freed
    pointer's use panics with `invalid memory address or nil pointer dereference`."""
    m = _mstate.current_m()
    g = m.curg
    old = m.panic_on_fault.get(g, False)
    if enabled:
        m.panic_on_fault[g] = True
    else:
        m.panic_on_fault.pop(g, None)
    return old


def WriteHeapDump(fd):
    """Write a description of the heap and the objects in it to the file descriptor fd, in Go 1.9's
    heap dump format (mprt/runtime/heapdump.py); the world is stopped while it is written."""
    from . import heapdump
    heapdump.write(fd)


def SetTraceback(level):
    """Set GOTRACEBACK's level at run time; it can only be raised, as Go."""
    m = _mstate.current_m()
    q, s = m.q, m.ctl.sched
    new = _tb.parse_gotraceback(level)
    old = _tb.level_of(q, s)
    if (new[0], new[1], new[2]) > old:
        q[s + _S_TRACEBACK] = _tb.encode_level(*new)


def Stack():
    """The calling goroutine's stack, formatted as Go's (bytes)."""
    m = _mstate.current_m()
    f = sys._getframe(1)
    return _tb.goroutine_stack(m, f).encode()


def PrintStack():
    _tb.write_err(Stack().decode())


# ---- the collector ----

def SetGCPercent(percent):
    """Set GOGC's value at run time (negative: off) and return the previous one.  The pacer's
    trigger and NextGC follow at once, from the last cycle's marked heap."""
    if isinstance(percent, bool) or not isinstance(percent, int):
        raise TypeError(f"debug.SetGCPercent: {percent!r} is not an integer")
    _mstate.current_m()
    return _mgc.set_gc_percent(_malloc.current(), percent)


def FreeOSMemory():
    """Force a collection, then return as much memory to the OS as possible (scvg-1 under gctrace)."""
    from .. import runtime
    runtime.GC()
    _mgc.scavenge(_malloc.current(), -1)


class GCStats:
    """Go's debug.GCStats: LastGC (Unix ns), NumGC, PauseTotal, Pause (most recent first),
    PauseEnd (likewise), PauseQuantiles; times in nanoseconds."""

    __slots__ = ("LastGC", "NumGC", "PauseTotal", "Pause", "PauseEnd", "PauseQuantiles")

    def __init__(self):
        self.LastGC, self.NumGC, self.PauseTotal = 0, 0, 0
        self.Pause, self.PauseEnd, self.PauseQuantiles = [], [], []

    def __repr__(self):
        return (f"GCStats(LastGC={self.LastGC}, NumGC={self.NumGC}, PauseTotal={self.PauseTotal}, "
                f"Pause={self.Pause[:4]}..., PauseQuantiles={self.PauseQuantiles})")


def ReadGCStats(stats):
    """Fill stats as Go's does: Pause and PauseEnd most recent first (up to 256); if
    PauseQuantiles has room (len > 0), it gets min, quantiles and max of the recorded pauses."""
    if not isinstance(stats, GCStats):
        raise TypeError(f"debug.ReadGCStats: want a *debug.GCStats, got {type(stats).__name__}")
    from .. import runtime
    ms = runtime.MemStats()
    runtime.ReadMemStats(ms)
    n = min(ms.NumGC, 256)
    stats.NumGC = ms.NumGC
    stats.LastGC = ms.LastGC
    stats.PauseTotal = ms.PauseTotalNs
    order = [(ms.NumGC - 1 - i) % 256 for i in range(n)]
    stats.Pause = [ms.PauseNs[j] for j in order]
    stats.PauseEnd = [ms.PauseEnd[j] for j in order]
    nq = len(stats.PauseQuantiles)
    if nq > 0:
        if n == 0:
            stats.PauseQuantiles = [0] * nq
        else:
            srt = sorted(stats.Pause)
            stats.PauseQuantiles = [srt[int(i * (n - 1) / (nq - 1))] if nq > 1 else srt[-1] for i in range(nq)]


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
