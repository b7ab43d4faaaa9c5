"""Programs for tests/test_api.py: `python api_cases.py CASE OUTDIR`, each a small mprt program that
writes its profiles and traces into OUTDIR and prints a JSON line last."""
import json
import os
import sys
import time

import numpy as np

import mprt
from mprt import runtime
from mprt.runtime import debug, pprof, trace


def out(**kw):
    print(json.dumps(kw), flush=True)


def here():
    return sys._getframe(1).f_lineno


# ---- callers ----

def inner(pcs):
    n = runtime.Callers(1, pcs)
    return n, here() - 1


def outer(pcs):
    n, line = inner(pcs)
    return n, line, here() - 1


def case_callers(outdir):
    pc, file, line, ok = runtime.Caller(0)
    want_line = here() - 1
    pcs = [0] * 32
    n, l_inner, l_outer = outer(pcs)
    l_main = here() - 1
    frames = []
    for fr in runtime.CallersFrames(pcs[:n]):
        frames.append([fr.Function, os.path.basename(fr.File), fr.Line])
    f = runtime.FuncForPC(pc)
    f0 = runtime.FuncForPC(f.Entry())
    full = [0] * 64
    nfull = runtime.Callers(0, full)
    out(caller=[os.path.basename(file), line, ok, want_line], func=f.Name(), fileline=list(f.FileLine(pc)),
        entry_same=f0.Name() == f.Name(), frames=frames, lines=[l_inner, l_outer, l_main],
        callers0=runtime.FuncForPC(full[0]).Name(), nfull=nfull, empty=runtime.Callers(0, []),
        bad=runtime.FuncForPC(12345) is None, caller_far=list(runtime.Caller(1000)))


# ---- stacks ----

def parked_on(ch, ready):
    ready.send(sched_mid())
    ch.recv()


def sched_mid():
    from mprt import sched
    return sched.current().mid


def busy_until(ch, ready):
    ready.send(sched_mid())
    while True:
        i, _ = mprt.select(ch.recv, mprt.default)
        if i == 0:
            return
        x = 0
        for k in range(2000):
            x += k


def case_stack(outdir):
    ch, ready = mprt.chan(), mprt.chan(8)
    mprt.go(busy_until, ch, ready)      # first: it holds one M, so the others start on the other
    mids = [ready.recv()]
    for _ in range(3):
        mprt.go(parked_on, ch, ready)
    mids = sorted(mids + [ready.recv() for _ in range(3)])
    buf = bytearray(1 << 16)
    deadline = time.monotonic() + 20
    while True:       # until the three have got from their send to their receive (a loaded machine
        n = runtime.Stack(buf, True)        # may leave a worker M unscheduled for a while, and an M
        text = buf[:n].decode()             # that does not answer within a second is reported as
        if (text.count("[chan receive]:") == 3 and text.count("parked_on(...)") == 3   # "stack
                or time.monotonic() > deadline):                                     # unavailable")
            break
        time.sleep(0.01)
    one = bytearray(1 << 16)
    n1 = runtime.Stack(one, False)
    small = bytearray(20)
    ns = runtime.Stack(small, False)
    p = [None] * 16
    gn, ok = runtime.GoroutineProfile(p)
    names = [[runtime.FuncForPC(pc).Name() for pc in r.Stack()] for r in p[:gn]]
    with open(os.path.join(outdir, "goroutine.pb.gz"), "wb") as f:
        pprof.Lookup("goroutine").WriteTo(f, 0)
    with open(os.path.join(outdir, "goroutine.txt"), "w") as f:
        pprof.Lookup("goroutine").WriteTo(f, 1)
    with open(os.path.join(outdir, "goroutine2.txt"), "w") as f:
        pprof.Lookup("goroutine").WriteTo(f, 2)
    short = [0] * 0
    nshort, okshort = runtime.GoroutineProfile(short)
    for _ in range(4):
        ch.send(None)
    with open(os.path.join(outdir, "stack.txt"), "w") as f:
        f.write(text)
    out(mids=mids, one=buf[:0].decode() + one[:n1].decode(), small=ns, gn=gn, ok=ok, names=names,
        nshort=nshort, okshort=okshort, numg=runtime.NumGoroutine())


def in_c_call(ready, seconds):
    import hashlib
    ready.send(None)
    with mprt.syscall():                    # one C call of seconds: no signal handler runs meanwhile
        hashlib.pbkdf2_hmac("sha256", b"x", b"y", int(seconds * 4_000_000))


def case_stack_unavailable(outdir):
    ready = mprt.chan()
    mprt.go(in_c_call, ready, 3.0)
    ready.recv()
    mprt.sleep(0.2)
    buf = bytearray(1 << 16)
    t = time.monotonic()
    n = runtime.Stack(buf, True)
    out(text=buf[:n].decode(), took=time.monotonic() - t)


# ---- profiles ----

@mprt.struct
class Blob:
    a: np.int64
    b: np.int64
    c: np.int64
    d: np.int64


def alloc_kept(n, keep):
    for _ in range(n):
        keep.append(mprt.new(Blob))


def alloc_dropped(n):
    for _ in range(n):
        mprt.new(Blob)


def allocator(n, done, release):
    keep = []
    alloc_kept(n, keep)
    alloc_dropped(n)
    done.send(len(keep))
    release.recv()       # keep `keep` alive until main has written the profile


def case_heap(outdir):
    runtime.MemProfileRate = 1
    done, release = mprt.chan(), mprt.chan()
    for _ in range(2):
        mprt.go(allocator, 500, done, release)
    got = [done.recv() for _ in range(2)]
    runtime.GC()
    runtime.GC()
    p = [None] * 256
    n, ok = runtime.MemProfile(p, False)
    recs = {}
    for r in p[:n]:
        top = runtime.FuncForPC(r.Stack()[0]).Name()
        a = recs.setdefault(top, [0, 0, 0, 0])
        a[0] += r.AllocObjects
        a[1] += r.FreeObjects
        a[2] += r.AllocBytes
        a[3] += r.InUseBytes()
    with open(os.path.join(outdir, "heap.pb.gz"), "wb") as f:
        pprof.WriteHeapProfile(f)
    with open(os.path.join(outdir, "heap.txt"), "w") as f:
        pprof.Lookup("heap").WriteTo(f, 1)
    for _ in range(2):
        release.send(None)
    out(got=got, recs=recs, rate=runtime.MemProfileRate, n=n, ok=ok, nshort=runtime.MemProfile([], False))


def waiter(ch, wg):
    ch.recv()
    wg.done()


def locker(mu, wg, hold):
    for _ in range(20):
        mu.lock()
        t = time.monotonic() + hold
        while time.monotonic() < t:
            pass
        mu.unlock()
        mprt.sleep(0)
    wg.done()


def wait_parked(reason, n):
    """Until n goroutines wait with that reason (runtime.Stack of all of them tells)."""
    deadline = time.monotonic() + 10
    buf = bytearray(1 << 16)
    while time.monotonic() < deadline:
        k = runtime.Stack(buf, True)
        if buf[:k].decode().count(f"[{reason}]") >= n:
            return
        mprt.sleep(0.005)
    raise RuntimeError(f"{n} goroutines never waited on {reason}")


def case_block(outdir):
    runtime.SetBlockProfileRate(1)
    old = runtime.SetMutexProfileFraction(1)
    ch = mprt.chan()
    wg = mprt.sync.WaitGroup()
    wg.add(2)
    for _ in range(2):
        mprt.go(waiter, ch, wg)
    wait_parked("chan receive", 2)
    mprt.sleep(0.05)
    ch.send(1)
    ch.send(2)
    wg.wait()
    mu = mprt.sync.Mutex()
    wg.add(3)
    for _ in range(3):
        mprt.go(locker, mu, wg, 0.001)
    wg.wait()
    names = {}
    for kind, fn in (("block", runtime.BlockProfile), ("mutex", runtime.MutexProfile)):
        p = [None] * 64
        n, ok = fn(p)
        names[kind] = [[runtime.FuncForPC(pc).Name() for pc in r.Stack()] + [r.Count, r.Cycles] for r in p[:n]]
        for debug_ in (0, 1):
            with open(os.path.join(outdir, f"{kind}.{'pb.gz' if debug_ == 0 else 'txt'}"), "wb") as f:
                pprof.Lookup(kind).WriteTo(f, debug_)
    tp = [None] * 16
    tn, _ = runtime.ThreadCreateProfile(tp)
    with open(os.path.join(outdir, "threadcreate.pb.gz"), "wb") as f:
        pprof.Lookup("threadcreate").WriteTo(f, 0)
    with open(os.path.join(outdir, "threadcreate.txt"), "w") as f:
        pprof.Lookup("threadcreate").WriteTo(f, 1)
    out(names=names, old=old, frac=runtime.SetMutexProfileFraction(-1), threads=tn,
        tstacks=[[runtime.FuncForPC(pc).Name() for pc in r.Stack()] for r in tp[:tn]])


def spin_cpu(seconds, done):
    t = time.process_time() + seconds
    x = 0
    while time.process_time() < t:
        for k in range(1000):
            x += k * k
    done.send(x > 0)


def case_cpu(outdir):
    with open(os.path.join(outdir, "cpu.pb.gz"), "wb") as f:
        pprof.StartCPUProfile(f)
        try:
            pprof.StartCPUProfile(f)
            again = "no error"
        except RuntimeError as e:
            again = str(e)
        done = mprt.chan()
        for _ in range(2):
            mprt.go(spin_cpu, 0.6, done)
        ok = [done.recv() for _ in range(2)]
        pprof.StopCPUProfile()
    try:
        runtime.CPUProfile()
        panicked = None
    except mprt.Panic as e:
        panicked = str(e)
    out(ok=ok, again=again, panicked=panicked)


# ---- the execution tracer ----

def fan_worker(i, done):
    x = 0
    for k in range(20000):
        x += k
    b = [mprt.new(Blob) for _ in range(200)]
    done.send(len(b))


def read_trace():
    """runtime.ReadTrace until nil: the chunks."""
    chunks = []
    while True:
        c = runtime.ReadTrace()
        if c is None:
            return chunks
        chunks.append(c)


def case_trace(outdir):
    path = os.path.join(outdir, "trace.bin")
    with open(path, "wb") as f:
        trace.Start(f)
        try:
            runtime.StartTrace()
            second = "no error"
        except RuntimeError as e:
            second = str(e)
        done = mprt.chan()
        for i in range(40):
            mprt.go(fan_worker, i, done)
        got = sum(done.recv() for _ in range(40))
        runtime.GC()
        mprt.sleep(0.01)
        trace.Stop()
    # the low-level reader, a second time
    runtime.StartTrace()
    mprt.go(fan_worker, 0, done)
    done.recv()
    runtime.StopTrace()
    chunks = read_trace()
    with open(os.path.join(outdir, "trace2.bin"), "wb") as f:
        f.write(b"".join(chunks))
    out(second=second, got=got, nchunks=len(chunks), after=runtime.ReadTrace())


def case_trace_reader(outdir):
    """Go's canonical reader: a goroutine loops on ReadTrace until nil, on an M other than main's
    (the first of some candidates that lands on one takes the reader's part); main stops the trace
    and StopTrace returns once the reader has everything."""
    from mprt import sched
    runtime.StartTrace()
    got = mprt.chan(1)
    token, started = mprt.chan(1), mprt.chan(1)
    token.send(1)
    main_mid = sched.current().mid

    def candidate():
        if sched.current().mid == main_mid or mprt.select(token.recv, mprt.default)[0] != 0:
            return
        started.send(1)
        got.send((sched.current().mid, b"".join(read_trace())))

    deadline = time.monotonic() + 30
    while mprt.select(started.recv, mprt.default)[0] != 0 and time.monotonic() < deadline:
        mprt.go(candidate)
        t = time.monotonic() + 0.01
        while time.monotonic() < t:     # main keeps its M busy: a candidate goes to the other
            pass
        mprt.sleep(0.001)
    done = mprt.chan()
    for i in range(30):
        mprt.go(fan_worker, i, done)
    n = sum(done.recv() for _ in range(30))
    runtime.StopTrace()
    mid, data = got.recv()
    with open(os.path.join(outdir, "trace3.bin"), "wb") as f:
        f.write(data)
    after = runtime.ReadTrace()
    # one goroutine that reads, then stops the trace itself, then reads the rest: no hang
    runtime.StartTrace()
    first = runtime.ReadTrace()
    t0 = time.monotonic()
    runtime.StopTrace()
    stop_s = time.monotonic() - t0
    rest = b"".join(read_trace())
    with open(os.path.join(outdir, "trace4.bin"), "wb") as f:
        f.write(first + rest)
    try:
        runtime.StartTrace()            # the trace was read to its end: a new one may start
        runtime.StopTrace()             # no reader: returns at once, the trace stays readable
        again = "ok"
        while runtime.ReadTrace() is not None:
            pass
    except RuntimeError as e:
        again = str(e)
    out(n=n, reader_mid=mid, main_mid=sched.current().mid, size=len(data), after=after,
        again=again, stop_s=stop_s)


# ---- runtime/debug's and runtime/pprof's remaining names ----

def case_stack_overflow(outdir):
    """Go's testprog StackOverflow: 64 KiB frames under a 1474560-byte limit (a Python frame counts
    as 1 KiB here: the limit is ~1440 frames, the interpreter's own 1000 is lower)."""
    def f(n):
        return f(n + 1) + 1
    out(old=debug.SetMaxStack(1474560), again=debug.SetMaxStack(1474560))
    f(0)
    mprt.select()


def case_stack_limit(outdir):
    """A lower limit cuts a goroutine's recursion sooner; a caught RecursionError is the program's."""
    def depth(n):
        try:
            return depth(n + 1)
        except RecursionError:
            return n

    def child(res):
        res.send(depth(0))

    res = mprt.chan(1)
    mprt.go(child, res)
    before = res.recv()
    old = debug.SetMaxStack(200 * 1024)
    mprt.go(child, res)
    after = res.recv()
    out(old=old, before=before, after=after, main=depth(0))


def case_panic_on_fault(outdir):
    a = debug.SetPanicOnFault(True)
    b = debug.SetPanicOnFault(False)
    c = debug.SetPanicOnFault(False)
    out(seq=[a, b, c])


def case_heap_dump(outdir):
    from mprt.runtime import heapdump

    @mprt.struct
    class Node:
        v: np.int64
        next: mprt.Ptr

    head = None
    for i in range(50):
        n = mprt.new(Node)
        n.v = 1000 + i
        n.next = head
        head = n
    path = os.path.join(outdir, "heap.dump")
    with open(path, "wb") as f:
        debug.WriteHeapDump(f.fileno())
    d = heapdump.read(open(path, "rb").read())
    addrs = {a for a, _, _ in d["objects"]}
    nodes = [(a, body, offs) for a, body, offs in d["objects"]
             if len(body) >= 16 and 1000 <= int.from_bytes(body[:8], "little") < 1050]
    linked = sum(1 for a, body, offs in nodes if offs == [8] and int.from_bytes(body[8:16], "little") in addrs | {0})
    out(params=list(d["params"]), nodes=len(nodes), linked=linked, goroutines=[g["goid"] for g in d["goroutines"]],
        threads=len(d["threads"]), numgc=d["memstats"][-1], keep=int(head.v))


def hog(n):
    x = 0
    for i in range(n):
        x += i * i
    return x


def case_labels(outdir):
    """Go's TestContextLabels and TestCPUProfileLabel; labels inherited by a goroutine started
    inside Do; a custom profile (NewProfile)."""
    import io
    got = {}
    ctx = None
    got["background"] = sorted(_labels(ctx))
    ctx = pprof.WithLabels(ctx, pprof.Labels("key", "value"))
    got["one"] = [pprof.Label(ctx, "key"), sorted(_labels(ctx))]
    ctx = pprof.WithLabels(ctx, pprof.Labels("key2", "value2"))
    ctx = pprof.WithLabels(ctx, pprof.Labels("key", "value3"))
    ctx = pprof.WithLabels(ctx, pprof.Labels("key4", "value4a", "key4", "value4b"))
    got["replaced"] = sorted(_labels(ctx))
    got["missing"] = pprof.Label(ctx, "nope")
    try:
        pprof.Labels("odd")
    except mprt.Panic as e:
        got["odd"] = str(e)
    f = io.BytesIO()
    pprof.StartCPUProfile(f)
    done = mprt.chan()

    def child():
        from mprt.sched import ctl, mstate
        m = mstate.current_m()
        got["child_labels"] = pprof._labels_of(m.q[m.ctl.g(m.curg) + ctl.G_LABELS], m.ctl)
        hog(3_000_000)
        done.send(got["child_labels"])

    def labelled(c):
        got["inside"] = pprof.Label(c, "key")
        mprt.go(child)                       # inherits key=value
        hog(3_000_000)

    pprof.Do(None, pprof.Labels("key", "value"), labelled)
    got["child_labels"] = done.recv()
    hog(2_000_000)                           # no labels again after Do
    pprof.StopCPUProfile()
    with open(os.path.join(outdir, "cpu.pb.gz"), "wb") as w:
        w.write(f.getvalue())
    p = pprof.NewProfile("mprt.test/widgets")
    objs = [object() for _ in range(3)]
    for o in objs:
        p.Add(o, 0)
    try:
        p.Add(objs[0], 0)
    except mprt.Panic as e:
        got["dup"] = str(e)
    p.Remove(objs[1])
    try:
        pprof.NewProfile("mprt.test/widgets")
    except mprt.Panic as e:
        got["again"] = str(e)
    try:
        pprof.Lookup("heap").Add(1, 0)
    except mprt.Panic as e:
        got["builtin"] = str(e)
    text = io.StringIO()
    p.WriteTo(text, 1)
    got.update(count=p.Count(), name=p.Name(), listed="mprt.test/widgets" in [x.Name() for x in pprof.Profiles()],
               lookup=pprof.Lookup("mprt.test/widgets") is p, text=text.getvalue())
    out(**got)


def _labels(ctx):
    res = []
    pprof.ForLabels(ctx, lambda k, v: res.append([k, v]) or True)
    return res


# ---- the rest ----

def case_misc(outdir):
    n0 = runtime.NumCgoCall()
    for _ in range(3):
        with mprt.syscall():
            time.sleep(0.001)
    try:
        runtime.SetCgoTraceback(1, None, None, None)
        cgo = "no panic"
    except mprt.Panic as e:
        cgo = str(e)
    runtime.SetCgoTraceback(0, None, None, None)
    e = runtime.TypeAssertionError("interface {}", "string", "int")
    debug.SetTraceback("all")
    out(version=runtime.Version(), goos=runtime.GOOS, goarch=runtime.GOARCH, compiler=runtime.Compiler,
        cgo=[n0, runtime.NumCgoCall()], cgo_version=cgo, tae=str(e), tae_is=isinstance(e, runtime.Error),
        goroot=bool(runtime.GOROOT()), rate=runtime.MemProfileRate)


def case_breakpoint(outdir):
    runtime.Breakpoint()


def main():
    case, outdir = sys.argv[1], sys.argv[2]
    globals()["case_" + case](outdir)


if __name__ == "__main__":
    mprt.run(main)
