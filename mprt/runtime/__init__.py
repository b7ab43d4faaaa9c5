"""Go's package runtime (go1.9.2), as a facade over mprt's heap, scheduler and collector.

This module grows with the runtime; each name does what Go's does, in Go's shapes (out-parameters
filled in place, Go's messages).
"""
import copyreg as _copyreg
import os as _os
import sys as _sys
import types as _types
from collections.abc import Callable
from typing import Any, NoReturn

from .. import cluster as _cluster
from .. import settings as _settings
from ..errors import Error
from ..errors import Goexit as _Goexit
from ..gc import mfinal as _mfinal
from ..gc import mgc as _mgc
from ..panic import Panic
from ..sched import ctl as _ctl
from ..sched import mprof as _mprof
from ..sched import mstate as _mstate
from ..sched import proc as _proc
from ..sched import schedule as _schedule
from ..sched import stw as _stw
from ..sched import symtab as _symtab
from ..sched import trace as _trace
from ..sched import traceback as _tb
from ..sched.ctl import S_NCPU as _S_NCPU
from ..shm import layout as _layout
from ..shm import malloc as _malloc
from ..shm import mstats as _mstats

Compiler = "gc"


def _goarch(machine):
    """The host's architecture as Go names it (platform.machine() spells it the kernel's way)."""
    m = machine.lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i386": "386",
            "i486": "386", "i586": "386", "i686": "386", "x86": "386", "ppc64le": "ppc64le",
            "ppc64": "ppc64", "s390x": "s390x", "mips64": "mips64", "mips64el": "mips64le",
            "mips": "mips", "mipsel": "mipsle", "riscv64": "riscv64"}.get(m, "arm" if m.startswith("arm") else m)


def _goos(platform):
    """The host's operating system as Go names it."""
    for prefix, name in (("linux", "linux"), ("darwin", "darwin"), ("win", "windows"), ("freebsd", "freebsd"),
                         ("openbsd", "openbsd"), ("netbsd", "netbsd"), ("sunos", "solaris")):
        if platform.startswith(prefix):
            return name
    return platform


GOARCH = _goarch(__import__("platform").machine())
GOOS = _goos(_sys.platform)


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


def ReadMemStats(m: "MemStats") -> None:
    """Fill m (a MemStats) with the allocator's statistics as of now, from any attached process."""
    if not isinstance(m, MemStats):
        raise TypeError(f"runtime.ReadMemStats: want a *runtime.MemStats, got {type(m).__name__}")
    h = _malloc.current()
    pm = _mstate.current_m_or_none()
    if pm is not None and pm.p != _proc.NONE:
        t0 = _stw.stop_the_world(pm, "read mem stats")
        try:
            st = _mgc.read_stats(h, _mstats.read(h, _ctl.buckhash_bytes()))
        finally:
            _stw.start_the_world(pm, t0)
            _schedule.ensure_p(pm)
    else:
        st = _mgc.read_stats(h, _mstats.read(h, _ctl.buckhash_bytes()))
    for k, v in st.items():
        if k == "BySize":
            for e, (size, nm, nf) in zip(m.BySize, v):
                e.Size, e.Mallocs, e.Frees = size, nm, nf
        else:
            setattr(m, k, v)


# ---- the scheduler's part of package runtime ----

def GOMAXPROCS(n: int = 0) -> int:
    """Set the number of Ps to n and return the previous setting; n <= 0 only reports it.  A change
    stops the world (Go: n is capped at 1024)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"runtime.GOMAXPROCS: {n!r} is not an integer")
    m = _mstate.current_m()
    if _cluster.NODE is not None:
        # cluster mode: the Ps of every node are counted; a change sets this node's
        total = _cluster.total_procs()
        if n > 0:
            _proc.gomaxprocs(m, n)
            _cluster.NODES[_cluster.NODE]["procs"] = min(n, _ctl.MAXP)
        return total
    return _proc.gomaxprocs(m, n)


def NumCPU() -> int:
    """The CPUs this process may run on (sched_getaffinity at boot, as Go)."""
    m = _mstate.current_m_or_none()
    if m is not None:
        if _cluster.NODE is not None:
            return _cluster.total_cpus()        # cluster mode: every node's
        return int(m.q[m.ctl.sched + _S_NCPU])
    import os
    return len(os.sched_getaffinity(0))


def NumGoroutine() -> int:
    """Goroutines that exist now (main included, system goroutines not)."""
    return _proc.numgoroutine(_mstate.current_m())


def Gosched() -> None:
    _proc.gosched()


def Goexit() -> NoReturn:
    """End the calling goroutine; its finally blocks (deferred calls) run first."""
    _mstate.current_m()
    raise _Goexit()


def LockOSThread() -> None:
    _proc.lock_os_thread()


def UnlockOSThread() -> None:
    _proc.unlock_os_thread()


def Version() -> str:
    return "go1.9.2"


def GOROOT() -> str:
    import os
    return os.environ.get("GOROOT") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def KeepAlive(x: object) -> None:
    """Go's KeepAlive: x stays reachable up to here.  A Ptr held by a Python variable is a root
    until the variable goes, so passing it here keeps it alive up to this call, as in Go."""
    return None


# ---- the collector's part of package runtime ----

def GC() -> None:
    """Run a full collection (after the one in progress, if any) and wait until its sweep is done.
    Only the calling goroutine waits."""
    _mgc.request_and_wait(_mstate.current_m())


def SetFinalizer(obj: object, finalizer: Callable[[Any], object] | None) -> None:
    """Run finalizer(obj) once obj is unreachable (see mprt/gc/mfinal.py); finalizer None removes
    it.  Bad arguments are fatal errors with Go's messages."""
    _mfinal.set_finalizer(obj, finalizer)


# ---- callers and stacks (symtab.go, traceback.go, mprof.go) ----

class Func:
    """A function that PCs name: a Python code object (mprt/sched/symtab.py)."""

    __slots__ = ("_f",)

    def __init__(self, f):
        self._f = f

    def Name(self):
        return self._f.name

    def Entry(self):
        return self._f.entry

    def FileLine(self, pc):
        """(file, line) of pc in this function."""
        return self._f.file, self._f.line(pc - self._f.entry)

    def __repr__(self):
        return f"<runtime.Func {self._f.name} {self._f.file}:{self._f.firstline}>"


def FuncForPC(pc: int) -> "Func | None":
    """The Func that pc is in, or None."""
    f = _symtab.findfunc(pc)
    return None if f is None else Func(f)


def Caller(skip: int = 0) -> tuple[int, str, int, bool]:
    """(pc, file, line, ok) of the frame `skip` levels above the caller of Caller (0: that caller)."""
    if isinstance(skip, bool) or not isinstance(skip, int):
        raise TypeError(f"runtime.Caller: skip {skip!r} is not an integer")
    if skip < 0:
        return 0, "", 0, False
    try:
        f = _sys._getframe(skip + 1)
    except ValueError:
        return 0, "", 0, False
    if _reaches_bottom(f):
        return 0, "", 0, False
    pc = _symtab.pc_of(f)
    return pc, f.f_code.co_filename, f.f_lineno, True


def _reaches_bottom(f):
    g = _sys._getframe(1)
    while g is not None and g is not f:
        if _symtab.is_bottom(g):
            return True
        g = g.f_back
    return _symtab.is_bottom(f)


def Callers(skip: int, pc: list[int]) -> int:
    """Fill the list pc with the PCs of the calling goroutine's stack; skip=0 is Callers itself,
    1 its caller.  Returns how many were written (at most len(pc))."""
    if isinstance(skip, bool) or not isinstance(skip, int):
        raise TypeError(f"runtime.Callers: skip {skip!r} is not an integer")
    if not isinstance(pc, list):
        raise TypeError(f"runtime.Callers: want a list to fill, got {type(pc).__name__}")
    if not pc:
        return 0
    pcs = _symtab.callers(_sys._getframe(0), len(pc) + max(skip, 0))[max(skip, 0):]
    pc[:len(pcs)] = pcs
    return len(pcs)


class Frame:
    """One frame of CallersFrames: PC, Func, Function (module.qualname), File, Line, Entry."""

    __slots__ = ("PC", "Func", "Function", "File", "Line", "Entry")

    def __init__(self, PC=0, Func=None, Function="", File="", Line=0, Entry=0):
        self.PC, self.Func, self.Function, self.File, self.Line, self.Entry = PC, Func, Function, File, Line, Entry

    def __repr__(self):
        return f"Frame(Function={self.Function!r}, File={self.File!r}, Line={self.Line}, PC={self.PC:#x})"


class Frames:
    """runtime.Frames: Next() -> (Frame, more)."""

    def __init__(self, pcs):
        self._pcs = list(pcs)

    def Next(self):
        while self._pcs:
            pc = self._pcs.pop(0)
            f = _symtab.findfunc(pc)
            if f is None:
                continue
            fr = Frame(pc, Func(f), f.name, f.file, f.line(pc - f.entry), f.entry)
            return fr, bool(self._pcs)
        return Frame(), False

    def __iter__(self):
        while True:
            fr, more = self.Next()
            if fr.PC:
                yield fr
            if not more:
                return


def CallersFrames(callers: list[int]) -> "Frames":
    """Frames for a list of PCs from Callers."""
    return Frames(callers)


def Stack(buf: bytearray, all: bool = False) -> int:
    """Write the calling goroutine's stack (all=True: every goroutine's, on every M) into the
    bytearray buf in Go's format; returns the bytes written."""
    if not isinstance(buf, bytearray):
        raise TypeError(f"runtime.Stack: want a bytearray, got {type(buf).__name__}")
    m = _mstate.current_m()
    text = _tb.goroutine_stack(m, _sys._getframe(1))
    if all:
        with _StoppedWorld(m):
            level, _, _ = _tb.level_of(m.q, m.ctl.sched)
            mine = _tb.own_goroutines(m, _sys._getframe(1), level >= 2)
            mine.pop(m.curgoid, None)
            text += _tb.others_text(m, mine, {m.curgoid})
    data = text.encode()
    n = min(len(buf), len(data))
    buf[:n] = data[:n]
    return n


class StackRecord:
    """One stack of a profile: Stack0 (a list of PCs); Stack() the PCs up to the first 0."""

    __slots__ = ("Stack0",)

    def __init__(self, stack=()):
        self.Stack0 = list(stack)

    def Stack(self):
        out = []
        for pc in self.Stack0:
            if not pc:
                break
            out.append(pc)
        return out

    def __repr__(self):
        return f"StackRecord({self.Stack0!r})"


class _StoppedWorld:
    """The world stopped around a block (Go's Stack(all) and GoroutineProfile stop it): every M
    answers the goroutine dump from where it stopped."""

    def __init__(self, m):
        self.m, self.t0 = m, None

    def __enter__(self):
        if self.m.p != _proc.NONE:
            self.t0 = _stw.stop_the_world(self.m, "stack trace")

    def __exit__(self, *exc):
        if self.t0 is not None:
            _stw.start_the_world(self.m, self.t0)
            _schedule.ensure_p(self.m)


def _all_goroutine_pcs(m):
    """{goid: PCs} of every goroutine (system ones left out), the caller's included."""
    pcs = {}
    level, _, _ = _tb.level_of(m.q, m.ctl.sched)
    with _StoppedWorld(m):
        _tb.own_goroutines(m, _sys._getframe(2), level >= 2, pcs)
        _tb.collect_others(m, set(pcs), pcs)
    from ..sched.ctl import G_DEAD, G_GOID, G_STATUS, S_NGALLOC, S_TIMERG
    q, ctl = m.q, m.ctl
    for g in range(q[ctl.sched + S_NGALLOC]):     # goroutines not started: no stack yet
        r = ctl.g(g)
        goid = q[r + G_GOID]
        if q[r + G_STATUS] != G_DEAD and goid > 0 and goid not in pcs:
            pcs[goid] = []
    if _layout.fing_system(m.heap):       # the finalizer goroutine, waiting: a system goroutine
        slot = int(m.heap.gc[_layout.GC_FING]) - 1
        if slot >= 0:
            pcs.pop(q[ctl.g(slot) + G_GOID], None)
    slot = q[ctl.sched + S_TIMERG] - 1    # the timer goroutine: a system goroutine
    if slot >= 0:
        pcs.pop(q[ctl.g(slot) + G_GOID], None)
    return pcs


def GoroutineProfile(p: list) -> tuple[int, bool]:
    """n, ok: the number of goroutines, and whether p (a list of StackRecord) was long enough to
    be filled with their stacks (the caller's first)."""
    m = _mstate.current_m()
    pcs = _all_goroutine_pcs(m)
    n = len(pcs)
    if n > len(p):
        return n, False
    order = [m.curgoid] + sorted(k for k in pcs if k != m.curgoid)
    for i, goid in enumerate(order):
        p[i] = StackRecord(pcs.get(goid, []))
    return n, True


# ---- profiles (mprof.go) ----

class MemProfileRecord:
    """Go's MemProfileRecord: AllocBytes, FreeBytes, AllocObjects, FreeObjects, Stack0."""

    __slots__ = ("AllocBytes", "FreeBytes", "AllocObjects", "FreeObjects", "Stack0")

    def __init__(self):
        self.AllocBytes = self.FreeBytes = self.AllocObjects = self.FreeObjects = 0
        self.Stack0 = []

    def InUseBytes(self):
        return self.AllocBytes - self.FreeBytes

    def InUseObjects(self):
        return self.AllocObjects - self.FreeObjects

    def Stack(self):
        return StackRecord.Stack(self)

    def __repr__(self):
        return (f"MemProfileRecord(AllocBytes={self.AllocBytes}, FreeBytes={self.FreeBytes}, "
                f"AllocObjects={self.AllocObjects}, FreeObjects={self.FreeObjects})")


class BlockProfileRecord(StackRecord):
    """Go's BlockProfileRecord: Count, Cycles (here nanoseconds) and Stack0."""

    __slots__ = ("Count", "Cycles")

    def __init__(self, count=0, cycles=0, stack=()):
        super().__init__(stack)
        self.Count, self.Cycles = count, cycles

    def __repr__(self):
        return f"BlockProfileRecord(Count={self.Count}, Cycles={self.Cycles}, Stack0={self.Stack0!r})"


def MemProfile(p: list, inuseZero: bool) -> tuple[int, bool]:
    """n, ok as Go's: the heap profile's records as of the last completed cycle (see
    mprt/sched/mprof.py); p, a list, is filled when len(p) >= n."""
    m = _mstate.current_m()
    recs = [r for r in _mprof.mem_records(m) if inuseZero or r[2] != r[3]]
    n = len(recs)
    if n > len(p):
        return n, False
    for i, (na, nf, ba, bf, stk) in enumerate(recs):
        r = MemProfileRecord()
        r.AllocObjects, r.FreeObjects, r.AllocBytes, r.FreeBytes, r.Stack0 = na, nf, ba, bf, stk
        p[i] = r
    return n, True


def _event_profile(kind, p):
    m = _mstate.current_m()
    recs = _mprof.event_records(m.ctl, kind)
    n = len(recs)
    if n > len(p):
        return n, False
    for i, (count, cycles, stk) in enumerate(recs):
        p[i] = BlockProfileRecord(count, cycles, stk)
    return n, True


def BlockProfile(p: list) -> tuple[int, bool]:
    """n, ok: the blocking profile's records (Cycles in nanoseconds)."""
    return _event_profile(_mprof.BLOCK, p)


def MutexProfile(p: list) -> tuple[int, bool]:
    """n, ok: the mutex contention profile's records (Cycles in nanoseconds)."""
    return _event_profile(_mprof.MUTEX, p)


def SetBlockProfileRate(rate: int) -> None:
    """Sample one blocking event per `rate` nanoseconds blocked (1: every event; <= 0: off)."""
    if isinstance(rate, bool) or not isinstance(rate, int):
        raise TypeError(f"runtime.SetBlockProfileRate: {rate!r} is not an integer")
    m = _mstate.current_m()
    m.q[m.ctl.sched + _ctl.S_BLOCKRATE] = max(rate, 0)


def SetMutexProfileFraction(rate: int) -> int:
    """Report one in `rate` contention events (0: off; negative: only read).  Returns the old rate."""
    if isinstance(rate, bool) or not isinstance(rate, int):
        raise TypeError(f"runtime.SetMutexProfileFraction: {rate!r} is not an integer")
    m = _mstate.current_m()
    w = m.ctl.sched + _ctl.S_MUTEXRATE
    old = m.q[w]
    if rate >= 0:
        m.q[w] = rate
    return old


def ThreadCreateProfile(p: list) -> tuple[int, bool]:
    """n, ok: one record per M started (the stack of the goroutine whose wakeup started it; M0's
    is empty)."""
    m = _mstate.current_m()
    q, ctl = m.q, m.ctl
    n = _mstate.mcount(m)
    if n > len(p):
        return n, False
    for mid in range(n):
        b = q[ctl.m(mid) + _ctl.M_CREATEBK] if mid else -1
        p[mid] = StackRecord(_mprof.thread_stack(ctl, b))
    return n, True


def SetCPUProfileRate(hz: int) -> None:
    """Sample the running goroutine's stack hz times a second of CPU on every M (SIGPROF); 0 stops.
    As Go's, the rate cannot change while a profile runs."""
    if isinstance(hz, bool) or not isinstance(hz, int):
        raise TypeError(f"runtime.SetCPUProfileRate: {hz!r} is not an integer")
    m = _mstate.current_m()
    q, s = m.q, m.ctl.sched
    hz = min(max(hz, 0), 1_000_000)
    if hz > 0 and q[s + _ctl.S_CPUHZ] > 0:
        _tb.write_err("runtime: cannot set cpu profile rate until previous profile has finished.\n")
        return
    q[s + _ctl.S_CPUHZ] = hz
    q[s + _ctl.S_PROFSYNC] += 1
    _stw.sync_prof(m)
    _trace.signal_ms(m)


def _cpu_samples(m):
    """Stop sampling and gather every M's samples: [(count, PCs)]."""
    SetCPUProfileRate(0)
    cpu = []
    _tb.collect_others(m, set(), None, cpu)
    cpu.extend([n, list(k)] for k, n in m.cpusamples.items())
    m.cpusamples.clear()
    return cpu


def CPUProfile() -> NoReturn:
    """Gone since Go 1.9, as in Go: it panics."""
    raise Panic("CPUProfile no longer available")


# ---- the execution tracer (trace.go; Go 1.9's format: mprt/sched/trace.py and tracefmt.py) ----

def StartTrace() -> None:
    """Start tracing every M; RuntimeError("tracing is already enabled") if it is on, or if a
    stopped trace has not been read to its end."""
    _trace.start(_mstate.current_m())


def StopTrace() -> None:
    """Stop tracing.  If a goroutine reads this trace, wait until it has read everything (Go's
    StopTrace); otherwise return at once and the trace stays readable with ReadTrace."""
    _trace.stop(_mstate.current_m())


def ReadTrace() -> bytes | None:
    """The next chunk of the trace in Go 1.9's binary format, from any goroutine on any M: waits
    while tracing is on and nothing is new; None once the trace was stopped and everything read."""
    return _trace.read(_mstate.current_m())


# ---- the rest of package runtime ----

def NumCgoCall() -> int:
    """Calls into foreign code so far, over every M: mprt counts each `with mprt.syscall():` block
    (the way a goroutine tells the scheduler it enters foreign, possibly blocking code, as Go's
    cgocall enters a system call).  Plain ctypes calls are not seen by the runtime."""
    m = _mstate.current_m()
    q, ctl = m.q, m.ctl
    return int(sum(q[ctl.m(i) + _ctl.M_NCGOCALL] for i in range(_mstate.mcount(m))))


_cgo_hooks = {}


def SetCgoTraceback(version: int, traceback: object, context: object, symbolizer: object) -> None:
    """Go's hooks for printing foreign (C) frames.  version must be 0 (Go panics otherwise).  The
    hooks are kept but never called: a Python process cannot walk the C stack below the
    interpreter, so mprt's tracebacks show Python frames only."""
    if version != 0:
        raise Panic("unsupported version")
    _cgo_hooks.update(traceback=traceback, context=context, symbolizer=symbolizer)


def Breakpoint() -> None:
    """Go's breakpoint trap.  Under a Python debugger (a trace function is set) it stops there;
    otherwise the program dies as a Go program does on SIGTRAP: `SIGTRAP: trace trap`, the
    goroutines, exit status 2."""
    if _sys.gettrace() is not None:
        breakpoint()
        return
    m = _mstate.current_m()
    pc = _symtab.pc_of(_sys._getframe(1))
    _mstate.fatal("", head=f"SIGTRAP: trace trap\nPC={pc:#x} m={m.id} sigcode=128\n")


class TypeAssertionError(Error):
    """Go's *runtime.TypeAssertionError: a failed type assertion x.(T)."""

    def __init__(self, interface="interface {}", concrete="", asserted="", missingMethod=""):
        self._interface, self.concreteString, self.assertedString = interface, concrete, asserted
        self.missingMethod = missingMethod
        super().__init__(self._text())

    def _text(self):
        inter = self._interface or "interface"
        if not self.concreteString:
            return f"interface conversion: {inter} is nil, not {self.assertedString}"
        if not self.missingMethod:
            return f"interface conversion: {inter} is {self.concreteString}, not {self.assertedString}"
        return (f"interface conversion: {self.concreteString} is not {self.assertedString}: "
                f"missing method {self.missingMethod}")

    def __str__(self):
        return self._text()


# MemProfileRate is a variable in Go: reading and assigning the module attribute go to the shared
# word every M's allocator samples by (mprt/sched/mprof.py).
class _RuntimeModule(_types.ModuleType):
    @property
    def MemProfileRate(self):
        m = _mstate.current_m_or_none()
        if m is None:
            return _boot_memprofilerate()
        return int(m.q[m.ctl.sched + _ctl.S_MEMPROFRATE])

    @MemProfileRate.setter
    def MemProfileRate(self, v):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"runtime.MemProfileRate: {v!r} is not an integer")
        m = _mstate.current_m()
        m.q[m.ctl.sched + _ctl.S_MEMPROFRATE] = v
        if m.heap is not None:
            m.heap.sample_left = _mprof.next_sample(v)


def _boot_memprofilerate():
    v = _settings.parse_godebug(_os.environ.get("GODEBUG")).get("memprofilerate")
    return _settings.MEMPROFRATE if v is None else v


def _reduce_module(mod):
    import importlib
    return importlib.import_module, (mod.__name__,)


_sys.modules[__name__].__class__ = _RuntimeModule
_copyreg.pickle(_RuntimeModule, _reduce_module)     # goroutines that use runtime pickle it by name


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
