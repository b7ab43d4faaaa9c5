"""Programs for tests/test_trust.py: `python trust_cases.py CASE [N]`, the shapes of programs that once
hung or corrupted the runtime (a goroutine that never yields, a double free under GC and GOMAXPROCS
churn, a heap value delivered to the wrong goroutine, a stop inside the allocator, a goroutine run
without a P, a worker pool run serially, print lines torn apart).  Each prints one JSON line."""
import json
import sys
import time

import numpy as np

import mprt
from mprt import runtime, sched


def out(**kw):
    print(json.dumps(kw), flush=True)


@mprt.struct
class Node:
    left: mprt.Ptr
    right: mprt.Ptr
    v: np.int64


@mprt.struct
class Flag:
    on: np.int64
    t: np.float64


# ---- 1: a goroutine that never yields must not starve main ----

def spin_new():
    while True:
        mprt.new(Node)


def spin_make():
    while True:
        mprt.make(np.uint8, 100)


def spin_plain():
    x = 0
    while True:
        x += 1


def rewire(root):
    i = 0
    while True:
        n = mprt.new(Node)
        if i % 2:
            root.left = n
        else:
            root.right = n
        i += 1


def case_starve():
    """GOMAXPROCS=1: a goroutine of each kind spins; main's 50 ms sleep returns."""
    kind = sys.argv[2] if len(sys.argv) > 2 else "plain"
    fn = {"new": spin_new, "make": spin_make, "plain": spin_plain}[kind]
    mprt.go(fn)
    mprt.sleep(0.001)          # let it start
    t0 = time.monotonic()
    mprt.sleep(0.05)
    out(kind=kind, slept=time.monotonic() - t0)


def case_starve2():
    """GOMAXPROCS=2: two allocators and a rewiring goroutine hold both Ps; main still runs."""
    root = mprt.new(Node)
    mprt.go(spin_new)
    mprt.go(spin_make)
    mprt.go(rewire, root)
    mprt.sleep(0.01)
    t0 = time.monotonic()
    for _ in range(5):
        mprt.sleep(0.01)
    out(slept=time.monotonic() - t0)


def read_flag(f, done):
    while f.on == 0:
        pass
    done.send(1)


def case_flag():
    """Four goroutines poll a heap flag on 2 Ps; main sets it and they all see it."""
    f = mprt.new(Flag)
    done = mprt.chan(4)
    for _ in range(4):
        mprt.go(read_flag, f, done)
    mprt.sleep(0.05)
    t0 = time.monotonic()
    f.on = 1
    for _ in range(4):
        done.recv()
    out(waited=time.monotonic() - t0)


def spin_flag(f):
    f.t = time.monotonic()
    f.on = 1
    x = 0
    while True:
        x += 1


def case_preempt_latency():
    """A goroutine in a plain loop that never calls the runtime, GOMAXPROCS=1: how long from its
    start until main has the P back (printed; the test asserts it loosely)."""
    f = mprt.new(Flag)
    mprt.go(spin_flag, f)
    while f.on == 0:
        runtime.Gosched()        # the spinner runs; main is back once it is preempted
    out(latency=time.monotonic() - f.t)


# ---- 2: Go's TestStopTheWorldDeadlock ----

def gcs(n, done):
    for _ in range(n):
        runtime.GC()
    done.send(1)


def procs(n, done):
    for i in range(n):
        runtime.GOMAXPROCS(2 + i % 2)
    done.send(1)


def respawn(stop):
    i, _ = mprt.select(stop.recv, mprt.default)
    if i == 1:
        mprt.go(respawn, stop)


def case_stw_deadlock():
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    stop, done = mprt.chan(), mprt.chan(2)
    mprt.go(gcs, n, done)
    mprt.go(procs, n, done)
    mprt.go(respawn, stop)
    done.recv()
    done.recv()
    stop.close()
    out(ok=True, n=n)


# ---- 3: the right object, every time ----

def check_args(fs, is_, ch, k, res):
    assert isinstance(fs, mprt.Ptr) and fs.np.dtype == np.float64 and fs.np[0] == k, (fs, k)
    assert isinstance(is_, mprt.Ptr) and is_.np.dtype == np.int64 and is_.np[0] == -k, (is_, k)
    ch.send(k)
    res.send(k)


def trampoline(fs, is_, ch, k, res):
    mprt.go(check_args, fs, is_, ch, k, res)


def case_trampoline():
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    res = mprt.chan(n)
    mprt.go(gcs, 20, mprt.chan(1))
    for k in range(n):
        fs = mprt.make(np.float64, 16)
        is_ = mprt.make(np.int64, 8)
        fs.np[0] = k
        is_.np[0] = -k
        ch = mprt.chan(1)
        mprt.go(trampoline, fs, is_, ch, k, res)
    got = sorted(res.recv() for _ in range(n))
    assert got == list(range(n)), got
    out(ok=True, n=n)


# ---- 4: heap code under a deep stack, stops in a loop ----

def fill_unique(s, lo, hi, done):
    s.np[lo:hi] = np.arange(lo, hi) % 7
    u = np.unique(s.np[lo:hi])           # the first call imports numpy.ma: a deep, slow stack
    done.send((lo, len(u)))


def deep(n, f, *a):
    return deep(n - 1, f, *a) if n else f(*a)


def churn(n, done):
    for i in range(n):
        b = mprt.make(mprt.Ptr, 4)
        b[0] = mprt.new(Node)
        deep(200, mprt.make, np.int64, 64)       # heap code 200 frames down
        runtime.GC()
    done.send(1)


def case_deep_heap():
    n = 8
    s = mprt.make(np.int64, 8000)
    done = mprt.chan(n)
    gd = mprt.chan(1)
    mprt.go(churn, 30, gd)
    for i in range(n):
        mprt.go(fill_unique, s, i * 1000, (i + 1) * 1000, done)
    got = sorted(done.recv() for _ in range(n))
    gd.recv()
    assert got == [(i * 1000, 7) for i in range(n)], got
    out(ok=True)


# ---- 5 and 6: CPU-bound worker pools ----

def burn(ms):
    t = time.process_time() + ms / 1000
    x = 0
    while time.process_time() < t:
        x += 1
    return x


def pool_worker(jobs, results):
    for j in jobs:
        burn(j)
        results.send(sched.current().mid)


def warm_up(wg):
    burn(5)
    wg.done()


def case_pool():
    """8 workers over a jobs channel on 2 Ps, `n` jobs of `ms` ms of Python each."""
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    ms = float(sys.argv[3]) if len(sys.argv) > 3 else 20
    jobs, results = mprt.chan(n), mprt.chan(n)
    warm = mprt.sync.WaitGroup()                 # the Ms up first, as a Pool's workers are
    warm.add(2)
    for _ in range(2):
        mprt.go(warm_up, warm)
    warm.wait()
    t0 = time.monotonic()
    for _ in range(8):
        mprt.go(pool_worker, jobs, results)
    for _ in range(n):
        jobs.send(ms)
    jobs.close()
    mids = [results.recv() for _ in range(n)]
    out(seconds=time.monotonic() - t0, mids={str(m): mids.count(m) for m in set(mids)})


def yielder(n, wg):
    for i in range(n):
        burn(0.2)
        runtime.Gosched()
    wg.done()


def case_yield_pool():
    """8 goroutines that burn and yield on 2 Ps (the handoff path of a yield to a needp M)."""
    wg = mprt.sync.WaitGroup()
    wg.add(8)
    for _ in range(8):
        mprt.go(yielder, 200, wg)
    wg.wait()
    out(ok=True)


# ---- 7: print lines whole and in order ----

def printer(k, n, wg):
    for i in range(n):
        print(f"worker {k} line {i} " + "x" * (k * 7 % 50))
    wg.done()


class _Yields:
    """An argument of print() whose __str__ lets the goroutine's M run its other goroutines."""

    def __init__(self, k):
        self.k = k

    def __str__(self):
        runtime.Gosched()
        return "x" * self.k


def yielding_printer(k, n, wg):
    for i in range(n):
        print("worker", k, "line", i, _Yields(k), end="\n", sep=" ")
    wg.done()


def case_print_yields():
    """print() with an argument whose __str__ yields: print writes each argument and separator on its
    own, so the goroutines of one M (GOMAXPROCS=1) take turns inside each other's print calls."""
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    print("main before go")
    wg = mprt.sync.WaitGroup()
    wg.add(4)
    for k in range(4):
        mprt.go(yielding_printer, k, n, wg)
    wg.wait()


def case_print():
    lines = sys.argv[2] if len(sys.argv) > 2 else "100"
    print("main before go")
    wg = mprt.sync.WaitGroup()
    wg.add(8)
    for k in range(8):
        mprt.go(printer, k, int(lines), wg)
    wg.wait()


# ---- heap handles of every kind through goroutines and small channels, GCs back to back ----

def relay(k, fs, node, ch, wg, mu, out_ch):
    with mu:
        pass
    v = ch.recv()
    assert v.v == k and node.v == k and fs.np[0] == k, (k, v.v, node.v)
    out_ch.send(node)
    wg.done()


def case_handles():
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    stop = mprt.chan()

    def gcloop():
        while True:
            i, _ = mprt.select(stop.recv, mprt.default)
            if i == 0:
                return
            runtime.GC()

    mprt.go(gcloop)
    wg = mprt.sync.WaitGroup()
    mu = mprt.sync.Mutex()
    out_ch = mprt.chan(2)
    got = []
    for k in range(n):
        fs = mprt.make(np.float64, 4)
        fs.np[0] = k
        node = mprt.new(Node)
        node.v = k
        ch = mprt.chan(1)
        wg.add(1)
        mprt.go(relay, k, fs, node, ch, wg, mu, out_ch)
        ch.send(node)
        got.append(out_ch.recv().v)
    wg.wait()
    stop.close()
    assert got == list(range(n)), got[:20]
    out(ok=True, n=n)


# ---- runtime errors show where they happened ----

class BadArrival:
    """Pickles fine, fails to unpickle on the goroutine's M (inside the runtime, before any frame of
    the goroutine's own exists)."""

    def __reduce__(self):
        return (int, ("not a number",))


def takes(x):
    pass


threading_lock = __import__("threading").Lock()


def case_runtime_error_where():
    kind = sys.argv[2]
    if kind == "arrival":
        mprt.go(takes, BadArrival())
    else:
        mprt.go(sends_a_lock)
    mprt.sleep(5)


def sends_a_lock():
    mprt.chan(1).send(threading_lock)


# ---- msgcheck: a message with two owners is caught, with its history ----

def case_msgcheck_twice():
    """A slot whose address word is copied (the shape of the old double free: two parties each
    believing they own the message): the second take throws under GODEBUG=msgcheck=1."""
    from mprt.sched import msg
    slot = np.zeros(2, dtype=np.int64)
    node = mprt.new(Node)
    data, ptrs = msg.encode({"node": node}, "a test value")
    msg.put_heap(slot, 0, data, ptrs)
    stale = slot.copy()
    first = msg.take_heap(slot, 0)
    print("first take ok", flush=True)
    slot[:] = stale
    second = msg.take_heap(slot, 0)
    out(second=repr(second), first=repr(first))


# ---- chaos: what GODEBUG=schedchaos makes happen ----

def case_chaos_probe():
    seen = set()
    stop = mprt.chan()
    mprt.go(spin_until, stop)
    for _ in range(200):
        seen.add(runtime.GOMAXPROCS(0))
        mprt.sleep(0.005)
    stop.close()
    ms = runtime.MemStats()
    runtime.ReadMemStats(ms)
    out(procs=sorted(seen), numgc=ms.NumGC)


def spin_until(stop):
    while True:
        i, _ = mprt.select(stop.recv, mprt.default)
        if i == 0:
            return
        burn(1)


if __name__ == "__main__":
    mprt.run(globals()["case_" + sys.argv[1]])
