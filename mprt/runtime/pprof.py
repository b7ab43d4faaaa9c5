"""Go's runtime/pprof over mprt's profiles (mprt/sched/mprof.py, symtab.py).

`Lookup(name).WriteTo(f, debug)` for goroutine, heap, threadcreate, block and mutex;
`WriteHeapProfile(f)`; `StartCPUProfile(f)` / `StopCPUProfile()`.  debug=0 writes a gzipped
profile.proto (the protobuf library's messages, _profile_pb.py) that `go tool pprof` reads: a
location per PC, a function per Python function (its qualified name, file and first line).
debug=1 writes Go's text forms (`goroutine profile: total N`, `heap profile: ...` with the
MemStats comment block, `--- contention:`), with frames as Go's printStackRecord prints them;
debug=2 on the goroutine profile is runtime.Stack(all=True).

Chosen where Go 1.9 differs from later Go: block and mutex profiles at debug=0 are protos too
(Go 1.9 wrote its legacy text there; pprof reads both), with Go 1.11's sample types
contentions/count and delay/nanoseconds.  Cycles are nanoseconds (cycles/second=1000000000).
StopCPUProfile must be called in the process (on the M) that called StartCPUProfile: the file is
an object of that process.
"""
import gzip
import json
import math
import sys
import time

from .. import runtime
from ..panic import Panic
from ..sched import ctl as _ctl
from ..sched import mstate as _mstate
from ..sched import proc as _proc
from ..sched import symtab as _symtab
from ._profile_pb import Profile as _PB


class _Builder:
    """profile.proto assembly: interned strings, one function per Python function, one location
    per PC."""

    def __init__(self):
        self.p = _PB()
        self.strings = {"": 0}
        self.p.string_table.append("")
        self.funcs = {}
        self.locs = {}
        mp = self.p.mapping.add()      # one mapping: the interpreter, with functions resolved here
        mp.id, mp.filename = 1, self.s(sys.executable)
        mp.has_functions = mp.has_filenames = mp.has_line_numbers = True

    def s(self, text):
        i = self.strings.get(text)
        if i is None:
            i = self.strings[text] = len(self.p.string_table)
            self.p.string_table.append(text)
        return i

    def value_type(self, field, typ, unit):
        vt = field.add() if hasattr(field, "add") else field
        vt.type, vt.unit = self.s(typ), self.s(unit)

    def loc(self, pc):
        lid = self.locs.get(pc)
        if lid is not None:
            return lid
        f = _symtab.findfunc(pc)
        if f is None:
            return 0
        fid = self.funcs.get(f.index)
        if fid is None:
            fid = self.funcs[f.index] = len(self.funcs) + 1
            fn = self.p.function.add()
            fn.id, fn.name, fn.system_name = fid, self.s(f.name), self.s(f.name)
            fn.filename, fn.start_line = self.s(f.file), f.firstline
        lid = self.locs[pc] = len(self.locs) + 1
        loc = self.p.location.add()
        loc.id, loc.address, loc.mapping_id = lid, pc, 1
        ln = loc.line.add()
        ln.function_id, ln.line = fid, f.line(pc - f.entry)
        return lid

    def sample(self, values, pcs, labels=()):
        smp = self.p.sample.add()
        smp.value.extend(int(v) for v in values)
        for pc in pcs:
            lid = self.loc(pc)
            if lid:
                smp.location_id.append(lid)
        for key, val, unit in labels:
            lb = smp.label.add()
            lb.key = self.s(key)
            if isinstance(val, str):
                lb.str = self.s(val)
            else:
                lb.num = val
            if unit:
                lb.num_unit = self.s(unit)

    def bytes(self):
        self.p.time_nanos = time.time_ns()
        return gzip.compress(self.p.SerializeToString())


def _write(f, data):
    if isinstance(data, str):
        data = data.encode()
    try:
        f.write(data)
    except TypeError:
        f.write(data.decode())


def _hidden(pcs, all_frames=False):
    """Go's printStackRecord: leading runtime frames hidden (all of them shown if nothing else)."""
    out = []
    show = all_frames
    for pc in pcs:
        fi = _symtab.findfunc(pc)
        if fi is None:
            out.append(f"#\t{pc:#x}\n")
            show = True
            continue
        if show or not fi.runtime:
            show = True
            out.append(f"#\t{pc:#x}\t{fi.name}+{pc - fi.entry:#x}\t{fi.file}:{fi.line(pc - fi.entry)}\n")
    if not show:
        return _hidden(pcs, True)
    return "".join(out) + "\n"


def _key(pcs):
    return "@" + "".join(f" {pc:#x}" for pc in pcs)


def _count_profile(f, debug, name, stacks):
    count, first = {}, {}
    for stk in stacks:
        k = _key(stk)
        if k not in count:
            first[k] = stk
        count[k] = count.get(k, 0) + 1
    keys = sorted(count, key=lambda k: (-count[k], k))
    if debug > 0:
        out = [f"{name} profile: total {len(stacks)}\n"]
        for k in keys:
            out.append(f"{count[k]} {k}\n")
            out.append(_hidden(first[k]))
        _write(f, "".join(out))
        return
    b = _Builder()
    b.value_type(b.p.period_type, name, "count")
    b.p.period = 1
    b.value_type(b.p.sample_type, name, "count")
    for k in keys:
        b.sample([count[k]], first[k])
    _write(f, b.bytes())


def _goroutine(f, debug):
    if debug >= 2:
        buf = bytearray(1 << 16)
        while True:
            n = runtime.Stack(buf, True)
            if n < len(buf):
                break
            buf = bytearray(2 * len(buf))
        _write(f, bytes(buf[:n]))
        return
    n, _ = runtime.GoroutineProfile([])
    while True:
        p = [None] * (n + 10)
        n, ok = runtime.GoroutineProfile(p)
        if ok:
            break
    _count_profile(f, debug, "goroutine", [r.Stack() for r in p[:n]])


def _threadcreate(f, debug):
    n, _ = runtime.ThreadCreateProfile([])
    p = [None] * (n + 10)
    n, _ = runtime.ThreadCreateProfile(p)
    _count_profile(f, debug, "threadcreate", [r.Stack() for r in p[:n]])


def _scale(count, size, rate):
    """Go's scaleHeapSample: undo the sampling's bias (probability 1 - exp(-size/rate))."""
    if count == 0 or size == 0:
        return 0, 0
    if rate <= 1:
        return count, size
    avg = size / count
    scale = 1 / (1 - math.exp(-avg / rate))
    return int(count * scale), int(size * scale)


def _heap(f, debug):
    n, _ = runtime.MemProfile([], True)
    while True:
        p = [None] * (n + 50)
        n, ok = runtime.MemProfile(p, True)
        if ok:
            p = p[:n]
            break
    rate = runtime.MemProfileRate
    if debug == 0:
        b = _Builder()
        b.value_type(b.p.period_type, "space", "bytes")
        b.p.period = rate
        for typ, unit in (("alloc_objects", "count"), ("alloc_space", "bytes"), ("inuse_objects", "count"),
                          ("inuse_space", "bytes")):
            b.value_type(b.p.sample_type, typ, unit)
        for r in p:
            ao, ab = _scale(r.AllocObjects, r.AllocBytes, rate)
            io_, ib = _scale(r.InUseObjects(), r.InUseBytes(), rate)
            bs = ab // ao if ao else 0
            b.sample([ao, ab, io_, ib], r.Stack(), [("bytes", bs, "")] if bs else [])
        _write(f, b.bytes())
        return
    p.sort(key=lambda r: -r.InUseBytes())
    tot = runtime.MemProfileRecord()
    for r in p:
        tot.AllocBytes += r.AllocBytes
        tot.AllocObjects += r.AllocObjects
        tot.FreeBytes += r.FreeBytes
        tot.FreeObjects += r.FreeObjects
    out = [f"heap profile: {tot.InUseObjects()}: {tot.InUseBytes()} [{tot.AllocObjects}: {tot.AllocBytes}] "
           f"@ heap/{2 * rate}\n"]
    for r in p:
        out.append(f"{r.InUseObjects()}: {r.InUseBytes()} [{r.AllocObjects}: {r.AllocBytes}] {_key(r.Stack())}\n")
        out.append(_hidden(r.Stack()))
    s = runtime.MemStats()
    runtime.ReadMemStats(s)
    out.append("\n# runtime.MemStats\n")
    for name in ("Alloc", "TotalAlloc", "Sys", "Lookups", "Mallocs", "Frees"):
        out.append(f"# {name} = {getattr(s, name)}\n")
    out.append("\n")
    for name in ("HeapAlloc", "HeapSys", "HeapIdle", "HeapInuse", "HeapReleased", "HeapObjects"):
        out.append(f"# {name} = {getattr(s, name)}\n")
    out.append("\n")
    out.append(f"# Stack = {s.StackInuse} / {s.StackSys}\n# MSpan = {s.MSpanInuse} / {s.MSpanSys}\n"
               f"# MCache = {s.MCacheInuse} / {s.MCacheSys}\n# BuckHashSys = {s.BuckHashSys}\n"
               f"# GCSys = {s.GCSys}\n# OtherSys = {s.OtherSys}\n\n")
    out.append(f"# NextGC = {s.NextGC}\n# LastGC = {s.LastGC}\n"
               f"# PauseNs = [{' '.join(str(x) for x in s.PauseNs)}]\n"
               f"# PauseEnd = [{' '.join(str(x) for x in s.PauseEnd)}]\n"
               f"# NumGC = {s.NumGC}\n# NumForcedGC = {s.NumForcedGC}\n"
               f"# GCCPUFraction = {s.GCCPUFraction}\n# DebugGC = {str(s.DebugGC).lower()}\n")
    _write(f, "".join(out))


def _contention(f, debug, name, fn, rate_line):
    n, _ = fn([])
    p = [None] * (n + 50)
    n, _ = fn(p)
    p = sorted(p[:n], key=lambda r: -r.Cycles)
    if debug == 0:
        b = _Builder()
        b.value_type(b.p.period_type, "contentions", "count")
        b.p.period = 1
        b.value_type(b.p.sample_type, "contentions", "count")
        b.value_type(b.p.sample_type, "delay", "nanoseconds")
        for r in p:
            b.sample([r.Count, r.Cycles], r.Stack())
        _write(f, b.bytes())
        return
    out = [f"--- {name}:\n", "cycles/second=1000000000\n", rate_line]
    for r in p:
        out.append(f"{r.Cycles} {r.Count} {_key(r.Stack())}\n")
        out.append(_hidden(r.Stack(), True))
    _write(f, "".join(out))


def _block(f, debug):
    _contention(f, debug, "contention", runtime.BlockProfile, "")


def _mutex(f, debug):
    _contention(f, debug, "mutex", runtime.MutexProfile,
                f"sampling period={runtime.SetMutexProfileFraction(-1)}\n")


class Profile:
    """A named profile (Go's *pprof.Profile): Name(), Count(), WriteTo(f, debug); a profile made
    by NewProfile also Add(value, skip) and Remove(value)."""

    def __init__(self, name, count=None, write=None):
        self._name, self._count, self._write = name, count, write
        self._m = {} if write is None else None       # a custom profile's values -> their stacks

    def Name(self):
        return self._name

    def Count(self):
        return len(self._m) if self._m is not None else self._count()

    def Add(self, value, skip):
        """Record the caller's stack (skip=0: the function that calls Add; 1: its caller) with
        value, which must not be in the profile already (Go's panic otherwise)."""
        if self._m is None:
            raise Panic("pprof: Add called on built-in Profile " + self._name)
        if isinstance(skip, bool) or not isinstance(skip, int):
            raise TypeError(f"pprof: Profile.Add: skip {skip!r} is not an integer")
        try:
            f = sys._getframe(1 + max(skip, 0))
            stk = _symtab.callers(f, 32)
        except ValueError:
            stk = []
        key = _value_key(value)
        if key in self._m:
            raise Panic("pprof: Profile.Add of duplicate value")
        self._m[key] = stk or [_symtab.FUNC_BASE]

    def Remove(self, value):
        """Forget value's stack (nothing if it is not in the profile)."""
        if self._m is not None:
            self._m.pop(_value_key(value), None)

    def WriteTo(self, f, debug):
        """Write the profile to f (a binary or text file object): debug=0 a gzipped profile.proto,
        debug=1 Go's text form (debug=2 on goroutine: every goroutine's stack)."""
        if isinstance(debug, bool) or not isinstance(debug, int):
            raise TypeError(f"pprof: debug {debug!r} is not an integer")
        if self._m is not None:
            _count_profile(f, debug, self._name, list(self._m.values()))
        else:
            self._write(f, debug)

    def __repr__(self):
        return f"<pprof.Profile {self._name}>"


def _n(fn, *args):
    return lambda: fn([], *args)[0]


_PROFILES = {
    "goroutine": Profile("goroutine", runtime.NumGoroutine, _goroutine),
    "threadcreate": Profile("threadcreate", _n(runtime.ThreadCreateProfile), _threadcreate),
    "heap": Profile("heap", _n(runtime.MemProfile, False), _heap),
    "block": Profile("block", _n(runtime.BlockProfile), _block),
    "mutex": Profile("mutex", _n(runtime.MutexProfile), _mutex),
}


def _value_key(value):
    """Go keys a custom profile by the value (an interface): equal values are one entry.  A value
    Python cannot hash is its own entry (its identity)."""
    try:
        hash(value)
        return (0, value)
    except TypeError:
        return (1, id(value))


def NewProfile(name):
    """A new custom profile, listed by Profiles() and found by Lookup(name).  A custom profile is
    the process's (its M's) object, as any Python object: Add on another M counts there."""
    if not isinstance(name, str):
        raise TypeError(f"pprof.NewProfile: name {name!r} is not a string")
    if name == "":
        raise Panic("pprof: NewProfile with empty name")
    if name in _PROFILES:
        raise Panic("pprof: NewProfile name already in use: " + name)
    p = _PROFILES[name] = Profile(name)
    return p


def Lookup(name):
    """The profile of that name, or None."""
    return _PROFILES.get(name)


# ---- profiler labels (Go's label.go, runtime/proflabel.go) ----

class LabelSet:
    """Labels(k, v, ...)'s result: key-value pairs, a later pair replacing an earlier one's key."""

    __slots__ = ("list",)

    def __init__(self, pairs):
        self.list = tuple(pairs)

    def __repr__(self):
        return "LabelSet(" + ", ".join(f"{k}={v}" for k, v in self.list) + ")"


class LabelContext:
    """The context that WithLabels and Do hand on (Go's context.Context carrying labels; None
    stands for context.Background())."""

    __slots__ = ("labels",)

    def __init__(self, labels):
        self.labels = dict(labels)

    def __repr__(self):
        return f"LabelContext({self.labels!r})"


def _ctx_labels(ctx):
    if ctx is None:
        return {}
    if not isinstance(ctx, LabelContext):
        raise TypeError(f"pprof: {ctx!r} is not a context from WithLabels or Do (nor None)")
    return ctx.labels


def Labels(*args):
    """A LabelSet from an even number of strings: key, value, key, value, ..."""
    if len(args) % 2:
        raise Panic("uneven number of arguments to pprof.Labels")
    for a in args:
        if not isinstance(a, str):
            raise TypeError(f"pprof.Labels: {a!r} is not a string")
    return LabelSet(zip(args[0::2], args[1::2]))


def WithLabels(ctx, labels):
    """A new context: ctx's labels with labels added (replacing those with the same keys)."""
    if not isinstance(labels, LabelSet):
        raise TypeError(f"pprof.WithLabels: {labels!r} is not a LabelSet (pprof.Labels)")
    child = dict(_ctx_labels(ctx))
    for k, v in labels.list:
        child[k] = v
    return LabelContext(child)


def Label(ctx, key):
    """(value, True) for the label of that key on ctx, ("", False) if there is none."""
    labels = _ctx_labels(ctx)
    return (labels[key], True) if key in labels else ("", False)


def ForLabels(ctx, f):
    """Call f(key, value) for each label on ctx until it returns False."""
    for k, v in list(_ctx_labels(ctx).items()):
        if not f(k, v):
            break


_label_ids = {}          # this process's label-set texts -> their ids in the runtime's text table


def SetGoroutineLabels(ctx):
    """The calling goroutine's labels become ctx's: its CPU profile samples carry them, and the
    goroutines it starts from now on inherit them."""
    labels = _ctx_labels(ctx)
    m = _mstate.current_m()
    if m.curg == _ctl.NONE:
        return
    word = 0
    if labels:
        text = json.dumps(sorted(labels.items()), separators=(",", ":"))
        sid = _label_ids.get(text)
        if sid is None:
            sid = _proc.add_text(m, text)
            if sid != _ctl.NONE:
                _label_ids[text] = sid
        word = sid + 1 if sid is not None and sid != _ctl.NONE else 0
    m.q[m.ctl.g(m.curg) + _ctl.G_LABELS] = word


def Do(ctx, labels, f):
    """Call f(ctx2), ctx2 being ctx with labels added, with the goroutine's labels set to ctx2's
    for the call (and to ctx's after it, as Go's Do)."""
    ctx2 = WithLabels(ctx, labels)
    SetGoroutineLabels(ctx2)
    try:
        f(ctx2)
    finally:
        SetGoroutineLabels(ctx)


def _labels_of(word, ctl):
    """The labels a G_LABELS word names: [(key, value)]."""
    if word <= 0:
        return []
    text = _proc.site_text(ctl, word - 1)
    try:
        return [tuple(kv) for kv in json.loads(text)]
    except (TypeError, ValueError):
        return []


def Profiles():
    """Every profile, sorted by name."""
    return [_PROFILES[k] for k in sorted(_PROFILES)]


def WriteHeapProfile(f):
    """Lookup("heap").WriteTo(f, 0)."""
    _heap(f, 0)


class _CPU:
    f = None
    hz = 0
    t0 = 0


def StartCPUProfile(f, hz=100):
    """Profile the CPU of every M at 100 Hz until StopCPUProfile, which writes the profile to f.
    RuntimeError("cpu profiling already in use") if one is running."""
    m = _mstate.current_m()
    if _CPU.f is not None or m.q[m.ctl.sched + _ctl.S_CPUHZ]:
        raise RuntimeError("cpu profiling already in use")
    _CPU.f, _CPU.hz, _CPU.t0 = f, hz, time.time_ns()
    runtime.SetCPUProfileRate(hz)


def StopCPUProfile():
    """Stop profiling and write the profile (gzipped profile.proto) to StartCPUProfile's file."""
    if _CPU.f is None:
        return
    m = _mstate.current_m()
    samples = runtime._cpu_samples(m)
    f, hz, t0 = _CPU.f, _CPU.hz, _CPU.t0
    _CPU.f = None
    period = 1_000_000_000 // hz
    merged = {}
    for n, stk in samples:
        k = tuple(stk)
        merged[k] = merged.get(k, 0) + n
    b = _Builder()
    b.value_type(b.p.sample_type, "samples", "count")
    b.value_type(b.p.sample_type, "cpu", "nanoseconds")
    b.value_type(b.p.period_type, "cpu", "nanoseconds")
    b.p.period = period
    b.p.duration_nanos = time.time_ns() - t0
    for stk, n in merged.items():
        labels = ()
        if stk and stk[0] < 0:           # a labelled goroutine's sample (stw._on_sigprof)
            labels = [(k, v, None) for k, v in _labels_of(-stk[0], m.ctl)]
            stk = stk[1:]
        b.sample([n, n * period], stk, labels)
    _write(f, b.bytes())
    try:
        f.flush()
    except (AttributeError, OSError):
        pass


__all__ = ["Do", "ForLabels", "Label", "LabelContext", "LabelSet", "Labels", "Lookup", "NewProfile", "Profile",
           "Profiles", "SetGoroutineLabels", "StartCPUProfile", "StopCPUProfile", "WithLabels", "WriteHeapProfile"]


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
