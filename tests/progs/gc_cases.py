"""Programs for tests/test_gc.py: `python gc_cases.py CASE [ARGS]`, each a small mprt program whose
output (a JSON line last) and exit status the tests read."""
import json
import random
import sys
import time

import numpy as np

import mprt
from mprt import runtime
from mprt.runtime import debug


def out(**kw):
    print(json.dumps(kw), flush=True)


def memstats():
    ms = runtime.MemStats()
    runtime.ReadMemStats(ms)
    return ms


@mprt.struct
class Node:
    a: mprt.Ptr
    b: mprt.Ptr
    v: np.int64
    chk: np.int64


def chk_of(v):
    return (int(v) * 2654435761 + 12345) & 0x7FFFFFFFFFFF


def new_node(v):
    n = mprt.new(Node)
    n.v = v
    n.chk = chk_of(v)
    return n


def verify(root):
    """Follow everything reachable from root (a pointer slice); every Node's payload must hold."""
    seen, bad = set(), 0
    stack = [root[i] for i in range(len(root))]
    while stack:
        p = stack.pop()
        if p is None or p.addr in seen:
            continue
        seen.add(p.addr)
        if isinstance(p, mprt.Ptr) and hasattr(p, "chk"):
            if p.chk != chk_of(p.v):
                bad += 1
            stack.append(p.a)
            stack.append(p.b)
        else:                                   # a pointer slice
            stack.extend(p[i] for i in range(len(p)))
    return len(seen), bad


# ---- stress: rewiring a shared graph on 2 Ms while cycles run back to back ----

def put_back(root, k, x, wg):
    root[k] = x
    wg.done()


def mutator(root, ch, seed, iters, wg, res):
    rng = random.Random(seed)
    n = len(root)
    made = 0
    for i in range(iters):
        op = rng.randrange(9)
        j, k = rng.randrange(n), rng.randrange(n)
        if op == 7 and i % 2:
            op = 8
        if op < 3:                              # a new node, linked in
            x = new_node(rng.randrange(1 << 40))
            x.a = root[j]
            root[k] = x
            made += 1
        elif op == 3:                           # rewire two existing nodes
            x, y = root[j], root[k]
            if x is not None and hasattr(x, "b"):
                x.b = y
        elif op == 4:                           # a pointer through a channel, and back into the graph
            x = root[j]
            root[j] = None
            ch.send(x)
            root[k] = ch.recv()
        elif op == 5:                           # a pointer slice holding nodes
            s = mprt.make(mprt.Ptr, 3)
            for t in range(3):
                s[t] = root[rng.randrange(n)]
            root[k] = s
        elif op == 6:                           # drop a subtree
            root[j] = None
        elif op == 8:                           # a pointer as a goroutine's argument, back into the graph
            x = root[j]
            root[j] = None
            wg.add(1)
            mprt.go(put_back, root, k, x, wg)
        else:                                   # a deep chain, then cut it loose again
            x = root[j]
            for _ in range(20):
                y = new_node(rng.randrange(1 << 40))
                y.a = x
                x = y
            root[k] = x
        if i % 50 == 0:
            runtime.Gosched()
    res.send(made)
    wg.done()


def case_stress():
    iters = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    ch = mprt.chan(4)
    res = mprt.chan(8)
    wg = mprt.sync.WaitGroup()
    stop = mprt.chan()
    gcs = mprt.chan(1)
    runtime.GC()
    base = memstats()
    root = mprt.make(mprt.Ptr, 64)
    for i in range(64):
        root[i] = new_node(i)
    mprt.go(collector_loop_until, stop, gcs)
    wg.add(2)
    mprt.go(mutator, root, ch, 1, iters, wg, res)
    mprt.go(mutator, root, ch, 2, iters, wg, res)
    wg.wait()
    stop.close()
    ncycles, marked = gcs.recv()
    made = res.recv() + res.recv()
    reach, bad = verify(root)
    mid = memstats()
    del root
    runtime.GC()
    runtime.GC()
    end = memstats()
    out(cycles=ncycles, marked=marked, made=made, reachable=reach, bad=bad, numgc=end.NumGC,
        base_objects=base.HeapObjects, end_objects=end.HeapObjects, mid_objects=mid.HeapObjects,
        base_alloc=base.HeapAlloc, end_alloc=end.HeapAlloc)


def collector_loop_until(stop, res):
    """Cycles back to back until stop is closed; sends (cycles, objects marked over them)."""
    from mprt.shm import malloc
    from mprt.shm.layout import GC_MARKOBJS
    n = marked = 0
    while mprt.select(stop.recv, mprt.default)[0] != 0:
        runtime.GC()
        n += 1
        marked += int(malloc.current().gc[GC_MARKOBJS])
    res.send((n, marked))


# ---- pacer ----

def case_pacer():
    live = mprt.make(np.float64, 8 << 20)        # 64 MiB live
    live.np[:] = 1.0
    runtime.GC()
    a = memstats()
    old = debug.SetGCPercent(50)
    b = memstats()
    runtime.GC()
    c = memstats()
    out(heap=a.HeapAlloc, next100=a.NextGC, next50=b.NextGC, next50_after=c.NextGC, old=old,
        sum=float(live.np.sum()))


def case_setgcpercent_below_live():
    """Go's TestSetGCPercent, its last part: lowering GOGC below the live heap must start a cycle
    (at the next allocation past the new trigger)."""
    debug.SetGCPercent(100)
    runtime.GC()
    ballast = mprt.make(np.uint8, 100 << 20)           # 100 MB live
    runtime.GC()
    sink = mprt.make(np.uint8, 20 << 20)               # raise live to 120 MB
    ngc1 = memstats().NumGC
    debug.SetGCPercent(10)
    sink = mprt.make(np.uint8, 1 << 20)                # an allocation past the trigger
    t = time.monotonic()
    while memstats().NumGC == ngc1 and time.monotonic() - t < 10:
        mprt.sleep(0.005)
    out(ngc1=ngc1, ngc2=memstats().NumGC, waited=time.monotonic() - t, live=len(ballast) + len(sink))


def case_gogc_off():
    a = memstats()
    runtime.GC()
    b = memstats()
    out(next=a.NextGC, numgc=b.NumGC, forced=b.NumForcedGC, enable=b.EnableGC)


def case_setgcpercent_off():
    old = debug.SetGCPercent(-1)
    a = memstats()
    back = debug.SetGCPercent(100)
    out(old=old, next=a.NextGC, back=back)


def case_pacer_runs():
    """Allocation alone (no runtime.GC) starts cycles once the heap passes the trigger."""
    keep = []
    for i in range(200):
        s = mprt.make(np.uint8, 1 << 20)
        if i % 40 == 0:
            keep.append(s)
        del s
        if i % 20 == 0:
            mprt.sleep(0.005)          # the coordinator shares the CPUs: let it look
    time.sleep(0.2)
    ms = memstats()
    out(numgc=ms.NumGC, forced=ms.NumForcedGC, heap=ms.HeapAlloc, next=ms.NextGC)


# ---- finalizers ----

def case_finalizers():
    done = mprt.chan(16)

    def fin(name):
        return lambda p: done.send(name)

    a, b = new_node(1), new_node(2)
    a.a = b
    runtime.SetFinalizer(a, fin("A"))
    runtime.SetFinalizer(b, fin("B"))
    c = new_node(3)
    runtime.SetFinalizer(c, fin("C"))
    runtime.SetFinalizer(c, None)              # cancelled
    x, y = new_node(4), new_node(5)
    x.a, y.a = y, x                            # a cycle through finalizers: never finalized
    runtime.SetFinalizer(x, fin("X"))
    runtime.SetFinalizer(y, fin("Y"))
    ng_idle = runtime.NumGoroutine()
    del a, b, c, x, y
    order = []

    def collect(rounds):
        for _ in range(rounds):
            runtime.GC()
            t = time.monotonic()
            while time.monotonic() - t < 0.3:
                i, v = mprt.select(done.recv, mprt.default)
                if i == 0:
                    order.append(v)
                else:
                    mprt.sleep(0.01)
            order.append("|")

    collect(3)
    out(order=order, ng_idle=ng_idle, ng=runtime.NumGoroutine())


def case_finalizer_keeps_alive():
    """The object stays readable inside its finalizer; afterwards it is freed."""
    done = mprt.chan(1)
    runtime.GC()
    base = memstats().HeapObjects
    a = new_node(77)
    runtime.SetFinalizer(a, lambda p: done.send((int(p.v), int(p.chk) == chk_of(77))))
    del a
    runtime.GC()
    got = done.recv()
    mprt.sleep(0.01)
    runtime.GC()
    runtime.GC()
    out(got=list(got), base=base, end=memstats().HeapObjects)


def case_finalizer_panics():
    a = new_node(1)

    def boom(p):
        raise ValueError("finalizer failed")
    runtime.SetFinalizer(a, boom)
    del a
    runtime.GC()
    mprt.sleep(2)
    out(survived=True)


def case_setfinalizer_bad():
    what = sys.argv[2]
    a = new_node(1)
    if what == "nil":
        runtime.SetFinalizer(None, print)
    elif what == "notptr":
        runtime.SetFinalizer(42, print)
    elif what == "notfunc":
        runtime.SetFinalizer(a, 42)
    elif what == "twice":
        runtime.SetFinalizer(a, print)
        runtime.SetFinalizer(a, print)
    out(unreachable=True)


# ---- statistics ----

def case_memstats():
    keep = [new_node(i) for i in range(1000)]
    for _ in range(3):
        junk = [mprt.make(np.int64, 100) for _ in range(500)]
        del junk
        runtime.GC()
    ms = memstats()
    st = debug.GCStats()
    st.PauseQuantiles = [0] * 5
    debug.ReadGCStats(st)
    out(Sys=ms.Sys, parts=ms.HeapSys + ms.StackSys + ms.MSpanSys + ms.MCacheSys + ms.BuckHashSys + ms.GCSys + ms.OtherSys,
        HeapIdle=ms.HeapIdle, HeapInuse=ms.HeapInuse, HeapSys=ms.HeapSys, HeapAlloc=ms.HeapAlloc, Alloc=ms.Alloc,
        HeapObjects=ms.HeapObjects, Mallocs=ms.Mallocs, Frees=ms.Frees, LastGC=ms.LastGC,
        PauseEnd=ms.PauseEnd, PauseNs=ms.PauseNs, NumGC=ms.NumGC, PauseTotalNs=ms.PauseTotalNs,
        NumForcedGC=ms.NumForcedGC, EnableGC=ms.EnableGC, DebugGC=ms.DebugGC, GCCPUFraction=ms.GCCPUFraction,
        NextGC=ms.NextGC, kept=len(keep), now=time.time_ns(),
        gcstats=dict(NumGC=st.NumGC, LastGC=st.LastGC, PauseTotal=st.PauseTotal, Pause=st.Pause,
                     PauseEnd=st.PauseEnd, PauseQuantiles=st.PauseQuantiles))


def case_trace():
    keep = [mprt.make(np.uint8, 1 << 20) for _ in range(3)]
    for _ in range(2):
        runtime.GC()
    del keep
    debug.FreeOSMemory()
    ms = memstats()
    out(released=ms.HeapReleased, numgc=ms.NumGC)


def case_stw_modes():
    root = mprt.make(mprt.Ptr, 16)
    for i in range(16):
        x = None
        for j in range(50):
            y = new_node(i * 100 + j)
            y.a = x
            x = y
        root[i] = x
    for _ in range(3):
        junk = [new_node(0) for _ in range(2000)]
        del junk
        runtime.GC()
    reach, bad = verify(root)
    out(reachable=reach, bad=bad, numgc=memstats().NumGC)


def case_invalidptr():
    from mprt.shm import malloc
    a = new_node(1)
    h = malloc.current()
    h.mvq[a.addr >> 3] = a.addr + 8          # a.a points inside an object: no allocated object starts there
    runtime.GC()
    out(survived=True)


def case_kill_coordinator():
    import os
    import signal

    from mprt.sched import mstate
    from mprt.sched.ctl import S_COORDPID
    m = mstate.current_m_or_none()
    pid = m.q[m.ctl.sched + S_COORDPID]
    print(json.dumps({"coordinator": pid, "t": time.time()}), flush=True)
    os.kill(pid, signal.SIGKILL)
    t = time.monotonic()
    while time.monotonic() - t < 10:
        x = new_node(1)
        del x
    out(survived=True)


def case_debug_alloc():
    """efence / allocfreetrace: objects still work; sizes and addresses as the mode says."""
    runtime.GC()
    a = new_node(5)
    b = new_node(6)
    a.a = b
    junk = new_node(7)
    addr = junk.addr
    del junk
    runtime.GC()
    s = mprt.make(np.int32, 3)
    s.np[:] = [1, 2, 3]
    more = [new_node(i).addr for i in range(4)]
    out(a=int(a.v), b=int(a.a.v), addr=a.addr, baddr=b.addr, junk=addr, s=s.np.tolist(), saddr=s.addr,
        more=more, numgc=memstats().NumGC)


def main():
    globals()["case_" + sys.argv[1]]()


if __name__ == "__main__":
    mprt.run(main)
