"""Programs for tests/test_gosync.py (what Go programs use beyond goroutines and channels):
`python gosync_cases.py CASE`, each a small mprt program whose output the tests read."""
import json
import sys
import time

import numpy as np

import mprt
from mprt import runtime, sched
from mprt import time as mtime
from mprt.sync import Cond, Map, Mutex, Once, RWMutex, WaitGroup, atomic


def out(**kw):
    print(json.dumps(kw), flush=True)


# ---- directional channels ----

def producer(out_ch, n, where):
    where.send(sched.current().mid)
    for i in range(n):
        out_ch.send(i)
    out_ch.close()


def consumer(in_ch, res):
    res.send((type(in_ch).__name__, sched.current().mid, [v for v in in_ch]))


def refused(f):
    try:
        f()
    except TypeError as e:
        return str(e)
    return None


def case_directional():
    ch = mprt.chan(4)
    res, where = mprt.chan(1), mprt.chan(2)
    s, r = ch.send_only(), ch.recv_only()
    mprt.go(producer, s, 50, where)           # a goroutine given only the send side
    mprt.go(consumer, r, res)                 # ... and one given only the receive side
    kind, mid, got = res.recv()
    errors = {
        "recv on send-only": refused(s.recv),
        "recv2 on send-only": refused(s.recv2),
        "range on send-only": refused(lambda: list(s)),
        "send on recv-only": refused(lambda: r.send(1)),
        "close of recv-only": refused(r.close),
        "send-only to recv-only": refused(s.recv_only),
        "select recv on send-only": refused(lambda: mprt.select(s.recv, mprt.default)),
        "select send on recv-only": refused(lambda: mprt.select((r.send, 1), mprt.default)),
        "view of a non-channel": refused(lambda: type(s)(42)),
    }
    # select through views: one of each direction, with a default
    c2 = mprt.chan(1)
    i1, _ = mprt.select((c2.send_only().send, "x"), mprt.default)
    i2, v2 = mprt.select(c2.recv_only().recv, mprt.default)
    views_travel = mprt.chan(1)
    views_travel.send(c2.recv_only())
    back = views_travel.recv()
    out(kind=kind, got=got, errors=errors, sel=[i1, i2, v2], eq=[s == ch, r == ch, ch == s, hash(s) == hash(ch)],
        back=type(back).__name__, back_eq=back == c2, lens=[len(s), s.cap, r.cap])


# ---- sync/atomic ----

@mprt.struct
class Counters:
    n32: np.int32
    n64: np.int64
    u64: np.uint64
    cas: np.int64
    plain: np.int64


def hammer(c, arr, k, wg, mids):
    r32, r64, ru, rc = mprt.ref(c, "n32"), mprt.ref(c, "n64"), mprt.ref(c, "u64"), mprt.ref(c, "cas")
    re = mprt.ref(arr, 3)
    seen = set()
    for i in range(k):
        atomic.AddInt32(r32, 1)
        atomic.AddInt64(r64, 3)
        atomic.AddUint64(ru, -1)                      # Go's AddUint64(&x, ^uint64(0))
        while True:                                   # a CAS loop, as Go's lock-free counters
            old = atomic.LoadInt64(rc)
            if atomic.CompareAndSwapInt64(rc, old, old + 2):
                break
        atomic.AddUint32(re, 1)
        c.plain = c.plain + 1                         # not atomic: may lose updates across Ms
        if i % 500 == 0:
            seen.add(sched.current().mid)
    mids.send(sorted(seen))
    wg.done()


def case_atomics():
    c = mprt.new(Counters)
    arr = mprt.make(np.uint32, 8)
    g, k = 4, 5000
    wg, mids = WaitGroup(), mprt.chan(g)
    wg.add(g)
    t = time.perf_counter()
    for _ in range(g):
        mprt.go(hammer, c, arr, k, wg, mids)
    wg.wait()
    dt = time.perf_counter() - t
    seen = set()
    for _ in range(g):
        seen.update(mids.recv())
    r = mprt.ref(c, "n64")
    out(n32=int(c.n32), n64=int(c.n64), u64=int(c.u64), cas=int(c.cas), arr=arr.np.tolist(), plain=int(c.plain),
        want=g * k, mids=sorted(seen), ops_per_s=6 * g * k / dt,
        swap=[atomic.SwapInt64(r, -5), atomic.LoadInt64(r), atomic.CompareAndSwapInt64(r, 0, 1),
              atomic.StoreInt64(r, 2 ** 63 - 1), atomic.AddInt64(r, 1)],
        refs=[repr(mprt.ref(c, "u64")), repr(mprt.ref(arr, 3))])


def case_atomic_errors():
    c = mprt.new(Counters)
    p = mprt.make(mprt.Ptr, 2)
    f = mprt.make(np.float64, 2)
    errs = {}
    for name, f_ in {"wrong type": lambda: atomic.AddInt32(mprt.ref(c, "n64"), 1),
                     "pointer field": lambda: mprt.ref(p, 0), "float": lambda: mprt.ref(f, 0),
                     "no field": lambda: mprt.ref(c, "nope"), "index": lambda: mprt.ref(f, 2),
                     "not a ref": lambda: atomic.LoadInt64(c), "not an int": lambda: atomic.AddInt64(mprt.ref(c, "n64"), 1.5),
                     "not heap": lambda: mprt.ref(42, "x")}.items():
        try:
            f_()
            errs[name] = None
        except (TypeError, IndexError) as e:
            errs[name] = f"{type(e).__name__}: {e}"
    out(errs=errs)


def value_user(v, res):
    x = v.Load()
    res.send((type(x).__name__, int(x.n64) if x is not None else None))


def case_value():
    v = atomic.Value()
    res = mprt.chan(2)
    first = v.Load()
    c = mprt.new(Counters)
    c.n64 = 41
    v.Store(c)
    mprt.go(value_user, v, res)               # the Value travels; Load on another goroutine (and M)
    got = res.recv()
    c2 = mprt.new(Counters)
    c2.n64 = 42
    v.Store(c2)
    mprt.go(value_user, v, res)
    got2 = res.recv()
    panics = []
    for bad in (None, mprt.chan(1), mprt.make(np.int64, 1)):
        try:
            v.Store(bad)
        except mprt.Panic as e:
            panics.append(e.value)
    w = atomic.Value()
    ch = mprt.chan(1)
    w.Store(ch)
    del c, c2
    runtime.GC()                              # the Value's pointer keeps its object alive
    out(first=first, got=got, got2=got2, panics=panics, chan=w.Load() == ch, kept=int(v.Load().n64))


# ---- Once ----

def once_user(o, calls, wg):
    o.do(lambda: calls.send(sched.current().mid))
    wg.done()


def spin_until(flag):
    while flag.np[0] == 0:      # no runtime call: only preemption lets another goroutine run
        pass


def set_flag(flag):
    flag.np[0] = 1


def case_once():
    o = Once()
    calls, wg = mprt.chan(16), WaitGroup()
    wg.add(16)
    for _ in range(16):
        mprt.go(once_user, o, calls, wg)
    wg.wait()
    n = len(calls)
    p = Once()
    try:
        p.do(lambda: mprt.panic("in f"))
        panicked = None
    except mprt.Panic as e:
        panicked = e.value
    again = []
    p.do(lambda: again.append(1))             # a panicking f still counts as done (Go's defer)
    # f waits on another goroutine with no runtime call, with one P: it must be preempted
    flag = mprt.make(np.int64, 1)
    mprt.go(set_flag, flag)
    q = Once()
    t = time.monotonic()
    q.do(lambda: spin_until(flag))
    out(n=n, panicked=panicked, again=again, preempted_in_f=time.monotonic() - t < 5)


# ---- timers (ports of Go 1.9's time/sleep_test.go and tick_test.go where they exist) ----

def stopper(t, res):
    res.send((sched.current().mid, t.Stop()))


def case_timers():
    r = {}
    t0 = time.monotonic()
    v = mtime.After(0.05).recv()
    r["after"] = [time.monotonic() - t0, isinstance(v, float) and abs(v - time.time()) < 1]
    # TestAfterStop: stopped timers never fire, an unstopped one does
    fired = mprt.chan(4)
    t1 = mtime.AfterFunc(0.1, lambda: fired.send("afterfunc"))
    t2 = mtime.NewTimer(0.1)
    c1 = mtime.After(0.2)
    r["stop_first"] = [t1.Stop(), t2.Stop()]
    c1.recv()
    i1, _ = mprt.select(fired.recv, mprt.default)
    i2, _ = mprt.select(t2.C.recv, mprt.default)
    r["stopped_never_fired"] = [i1, i2]
    r["stop_again"] = [t1.Stop(), t2.Stop()]
    # Stop after firing, Reset of a fired timer, Reset of an armed one (fires at the new time)
    t3 = mtime.NewTimer(0.01)
    t3.C.recv()
    r["stop_fired"] = t3.Stop()
    r["reset_fired"] = t3.Reset(0.01)
    t3.C.recv()
    t4 = mtime.NewTimer(10)
    a = time.monotonic()
    r["reset_armed"] = t4.Reset(0.03)
    t4.C.recv()
    r["reset_waited"] = time.monotonic() - a
    # a timer stopped by a goroutine (on another M), passed to it as an argument
    t5 = mtime.NewTimer(5)
    res = mprt.chan(1)
    mprt.go(stopper, t5, res)
    r["stopped_elsewhere"] = res.recv()[1]
    # AfterFunc's f runs in its own goroutine
    gids = mprt.chan(1)
    mprt.go(lambda: None)
    mtime.AfterFunc(0.01, lambda: gids.send(runtime.NumGoroutine()))
    r["afterfunc_goroutines"] = gids.recv()
    r["numgoroutine"] = runtime.NumGoroutine()         # the timer goroutine is not counted
    # TestTicker: ~count ticks of a 20 ms ticker in count * 20 ms; a slow receiver misses ticks
    tk = mtime.NewTicker(0.02)
    a = time.monotonic()
    for _ in range(10):
        tk.C.recv()
    r["ticker_10"] = time.monotonic() - a
    time.sleep(0.1)                                     # 5 periods without a receive
    r["ticker_buffered"] = len(tk.C)
    tk.Stop()
    time.sleep(0.05)               # a tick being sent as Stop ran may still land (as in Go 1.9)
    while len(tk.C):
        tk.C.recv()
    time.sleep(0.1)                # five periods: none after that
    r["ticker_stopped"] = len(tk.C)
    tk.Reset(0.01)
    tk.C.recv()
    tk.Stop()
    errs = []
    for f in (lambda: mtime.NewTicker(0), lambda: mtime.NewTicker(-1), lambda: tk.Reset(0)):
        try:
            f()
        except mprt.Panic as e:
            errs.append(e.value)
    r["panics"] = errs
    r["tick0"] = mtime.Tick(0)
    try:
        mtime.NewTimer("1s")
    except TypeError as e:
        r["bad"] = str(e)
    out(**r)


def case_timers_many():
    """Go's TestAfterQueuing-style: timers made by goroutines on every M fire in the order of their
    deadlines, each once; stopped ones never."""
    res = mprt.chan(64)
    t0 = time.monotonic()

    def wait(i):
        d = t0 + 0.5 + 0.02 * i - time.monotonic()
        made = time.time()
        c = mtime.After(d)
        registered = time.time()        # the timer is in the timer goroutine's queue by now
        res.send((i, made, made + d, c.recv(), registered))
    for i in [5, 3, 9, 1, 7, 0, 8, 2, 6, 4]:
        mprt.go(wait, i)
    rows = sorted(res.recv() for _ in range(10))
    # each fired at or after its deadline, and before any timer of a later deadline if it was
    # queued before that one was due (a goroutine started late on a loaded machine, or one
    # descheduled inside After, queues its timer late: its time is taken once After returned)
    early = [i for i, _, dl, v, _ in rows if v < dl - 0.002]
    order = [(a[0], b[0]) for a in rows for b in rows
             if a[2] < b[2] and a[4] <= b[2] and a[3] > b[3] + 0.001]
    timers = [mtime.NewTimer(0.5 + 0.001 * i) for i in range(50)]
    n = sum(t.Stop() for t in timers[::2])
    for t in timers[1::2]:
        t.C.recv()
    time.sleep(0.05)
    out(early=early, out_of_order=order, stopped=n, fired_stopped=sum(len(t.C) for t in timers[::2]))


def case_timer_deadlock():
    t = mtime.NewTimer(0.05)
    t.Stop()
    t.C.recv()          # a stopped timer never fires: every goroutine asleep


# ---- RWMutex and Cond (ports of Go 1.9's sync/rwmutex_test.go and cond_test.go) ----

@mprt.struct
class Activity:
    n: np.int32
    bad: np.int64


def hammer_reader(rw, act, k, wg):
    r = mprt.ref(act, "n")
    for i in range(k):
        rw.rlock()
        n = atomic.AddInt32(r, 1)
        if n < 1 or n >= 10000:
            atomic.AddInt64(mprt.ref(act, "bad"), 1)
        for _ in range(50):
            pass
        atomic.AddInt32(r, -1)
        rw.runlock()
    wg.done()


def hammer_writer(rw, act, k, wg):
    r = mprt.ref(act, "n")
    for i in range(k):
        rw.lock()
        n = atomic.AddInt32(r, 10000)
        if n != 10000:
            atomic.AddInt64(mprt.ref(act, "bad"), 1)
        for _ in range(50):
            pass
        atomic.AddInt32(r, -10000)
        rw.unlock()
    wg.done()


def case_rwmutex_hammer():
    rw, act, wg = RWMutex(), mprt.new(Activity), WaitGroup()
    wg.add(8)
    mprt.go(hammer_writer, rw, act, 300, wg)
    for _ in range(6):
        mprt.go(hammer_reader, rw, act, 300, wg)
    mprt.go(hammer_writer, rw, act, 300, wg)
    wg.wait()
    out(bad=int(act.bad), n=int(act.n))


def early_reader(rw, log, held, release):
    rw.rlock()
    log.send("r1 locked")
    held.send(1)
    release.recv()
    log.send("r1 unlocking")
    rw.runlock()


def writer(rw, log, done):
    rw.lock()
    log.send("w locked")
    mprt.sleep(0.05)
    log.send("w unlocking")
    rw.unlock()
    done.send(1)


def late_reader(rw, log, done):
    rw.rlock()
    log.send("r2 locked")
    rw.runlock()
    done.send(1)


def case_rwmutex_writer_preferred():
    rw = RWMutex()
    log, held, release, done = mprt.chan(16), mprt.chan(1), mprt.chan(1), mprt.chan(2)
    mprt.go(early_reader, rw, log, held, release)
    held.recv()
    mprt.go(writer, rw, log, done)
    time.sleep(0.1)                        # the writer waits for r1
    mprt.go(late_reader, rw, log, done)
    time.sleep(0.1)                        # r2 must wait behind the writer, not join r1
    release.send(1)
    done.recv()
    done.recv()
    lines = [log.recv() for _ in range(len(log))]
    with rw.rlocker():                     # rlocker / context managers
        pass
    with rw:
        pass
    out(log=lines)


def cond_waiter(c, mu, st, i, awake):
    mu.lock()
    st.n = st.n + 1
    c.wait()
    awake.send(i)
    mu.unlock()


def case_cond():
    mu = Mutex()
    c = Cond(mu)
    st = mprt.new(Activity)
    awake = mprt.chan(16)
    for i in range(6):
        mprt.go(cond_waiter, c, mu, st, i, awake)
    while True:                            # all six waiting (each counted itself under mu)
        with mu:
            if st.n == 6:
                break
        mprt.sleep(0.005)
    signalled = []
    for _ in range(3):                     # TestCondSignal: one at a time
        c.signal()
        signalled.append(awake.recv())
    time.sleep(0.05)
    extra = len(awake)
    c.broadcast()                          # TestCondBroadcast: the rest
    rest = sorted(awake.recv() for _ in range(3))
    c.signal()                             # nobody waits: nothing happens
    # TestRace-like: a signal between wait's unlock and its park is not lost
    flag = mprt.make(np.int64, 1)
    done = mprt.chan(1)

    def waiter():
        mu.lock()
        while flag.np[0] == 0:
            c.wait()
        mu.unlock()
        done.send(1)
    mprt.go(waiter)
    for _ in range(50):
        mu.lock()
        flag.np[0] = 1
        mu.unlock()
        c.signal()
    done.recv()
    try:
        Cond(42)
        bad = None
    except TypeError as e:
        bad = str(e)
    out(signalled=signalled, extra=extra, rest=rest, everyone=sorted(signalled + rest), bad=bad)


def case_runlock_of_unlocked():
    RWMutex().runlock()


def case_unlock_of_unlocked_rw():
    RWMutex().unlock()


# ---- strings on the heap ----

@mprt.struct
class Person:
    name: str
    age: np.int64
    next: mprt.Ptr


def read_people(p, res):
    res.send((sched.current().mid, p.name, p.next.name))


def rename(people, names, k, who, wg):
    for r in range(k):
        for i in range(len(people)):
            p = people[i]
            p.name = f"{who}:{r}:{i}:" + "é" * (i % 7)
            names[i] = p.name.upper()
            if i % 50 == 0:
                mprt.new(Person)             # garbage, for the collector
    wg.done()


def case_strings():
    p = mprt.new(Person)
    r = {"zero": p.name}
    p.name = "Ana"
    q = mprt.new(Person)
    q.name = "Bé ünïcode ✓ 日本 \U0001f600"
    p.next = q
    res = mprt.chan(1)
    mprt.go(read_people, p, res)
    r["other_goroutine"] = res.recv()[1:]
    s = mprt.make(str, 3)
    s[0] = "x"
    s[2] = "yz" * 1000
    r["slice"] = [s[0], s[1], len(s[2]), len(s)]
    errs = []
    for f in (lambda: setattr(p, "name", 5), lambda: s.__setitem__(0, b"bytes"), lambda: s.np):
        try:
            f()
        except TypeError as e:
            errs.append(str(e))
    r["errors"] = errs
    b = mprt.new_batch(Person, 3)
    b.set("name", ["a", "b", "c"])
    r["batch"] = b.get("name")
    p.name = ""
    r["emptied"] = p.name
    # two goroutines on two Ms rewrite every name over and over while the collector runs (GOGC=1,
    # gccheckmark): the names read at the end are the last written, whole
    people = mprt.make(mprt.Ptr, 200)
    names = mprt.make(str, 200)
    for i in range(200):
        people[i] = mprt.new(Person)
    wg = WaitGroup()
    wg.add(2)
    mprt.go(rename, people, names, 30, "a", wg)
    mprt.go(rename, people, names, 30, "b", wg)
    wg.wait()
    last = [people[i].name for i in range(200)]
    upper = [names[i] for i in range(200)]
    r["churn_ok"] = (all(x.split(":")[1:3] == ["29", str(i)] and x.endswith("é" * (i % 7)) for i, x in enumerate(last))
                     and all(x.split(":")[1:3] == ["29", str(i)] and x.endswith("É" * (i % 7)) for i, x in enumerate(upper)))
    ms = runtime.MemStats()
    runtime.ReadMemStats(ms)
    r["numgc"] = ms.NumGC
    out(**r)


# ---- maps (ports of Go 1.9's runtime/map_test.go where they exist) ----

@mprt.struct
class Registry:
    counts: mprt.map(str, np.int64)
    owner: str


def case_maps():
    r = {}
    m = mprt.make(mprt.map(str, int))                      # Go's make(map[string]int)
    for w in "the quick brown fox jumps over the lazy dog the end".split():
        m[w] += 1                                          # Go's m[w]++: a missing key is 0
    r["wordcount"] = sorted((k, int(v)) for k, v in m.items())
    r["missing"] = [int(m["nope"]), "nope" in m, m.get("nope", -1), "fox" in m]
    del m["fox"]
    del m["fox"]                                           # deleting a missing key does nothing
    r["after_delete"] = [len(m), "fox" in m]
    # TestMapIteration-like: the order of a 20-key map's iteration is not always the same
    small = mprt.make(mprt.map(np.int64, np.int64))
    for i in range(20):
        small[i] = i * i
    orders = {tuple(small) for _ in range(20)}
    r["orders"] = len(orders)
    r["small_ok"] = sorted(small) == list(range(20)) and all(small[i] == i * i for i in range(20))
    # growth with deletes against a dict
    big = mprt.make(mprt.map(np.int64, np.int64), 10)
    ref, rng = {}, np.random.default_rng(1)
    for i in range(4000):
        k = int(rng.integers(-10 ** 15, 10 ** 15))
        big[k] = i
        ref[k] = i
        if i % 3 == 0:
            d = list(ref)[int(rng.integers(len(ref)))]
            del big[d]
            del ref[d]
    r["big_ok"] = len(big) == len(ref) and all(big[k] == v for k, v in ref.items()) and sorted(big) == sorted(ref)
    # TestIterGrowAndDelete: growth and deletes in the middle of an iteration
    g = mprt.make(mprt.map(np.int64, np.int64))
    for i in range(100):
        g[i] = i
    seen, first = [], None
    for k in g:
        if first is None:
            first = k
            for i in range(100, 1100):
                g[i] = i                                   # forces the map to grow
            for i in range(100):
                if i != k:
                    del g[i]
        seen.append(int(k))
    r["iter_grow"] = [len(seen) == len(set(seen)), all(k == first or k >= 100 for k in seen), len(g)]
    # TestNaNKeys / TestNegativeZero
    f = mprt.make(mprt.map(np.float64, str))
    f[float("nan")] = "a"
    f[float("nan")] = "b"
    f[0.0] = "zero"
    f[-0.0] = "negzero"
    r["floats"] = [len(f), f.get(float("nan"), "absent"), f[0.0], sorted(v for _, v in f.items())]
    for i in range(1, 300):
        f[float(i)] = str(i)                               # grows past the NaNs: each still once
    r["nan_after_growth"] = sorted(v for k, v in f.items() if k != k)
    # other key and value types; a map in a struct field; the types refused
    b = mprt.make(mprt.map(bytes, mprt.Ptr))
    node = mprt.new(Person)
    node.name = "n"
    b[b"\x00\xff"] = node
    pk = mprt.make(mprt.map(mprt.Ptr, str))
    pk[node] = "by address"
    reg = mprt.new(Registry)
    none_before = reg.counts is None
    reg.counts = mprt.make(mprt.map(str, np.int64))
    reg.counts["x"] = 7
    r["kinds"] = [b[b"\x00\xff"].name, b[b"zz"], pk[node], none_before, int(reg.counts["x"])]
    errs = []
    for bad in (lambda: m.__setitem__(1, 2), lambda: m.__setitem__("k", "v"), lambda: mprt.map(list, int),
                lambda: mprt.map(str, complex), lambda: setattr(reg, "counts", small)):
        try:
            bad()
            errs.append(None)
        except TypeError as e:
            errs.append(str(e))
    r["errors"] = errs
    r["same_type"] = mprt.map(str, int) == mprt.map(str, np.int64) and repr(mprt.map(float, str))
    out(**r)


def map_adder(m, mu, who, k, wg):
    for i in range(k):
        key = f"k{i % 50}"
        with mu:
            m[key] += 1
            m[f"{who}:{i}"] = i
            if i % 2:
                del m[f"{who}:{i - 1}"]
    wg.done()


def case_maps_shared():
    """A map shared by goroutines on two Ms under a Mutex, strings for keys (run with GOGC=1 and
    gccheckmark by the test): every count exact."""
    m = mprt.make(mprt.map(str, np.int64))
    mu, wg = Mutex(), WaitGroup()
    wg.add(2)
    mprt.go(map_adder, m, mu, "a", 1500, wg)
    mprt.go(map_adder, m, mu, "b", 1500, wg)
    wg.wait()
    counts = [int(m[f"k{i}"]) for i in range(50)]
    rest = sorted(k for k in m if ":" in k)
    out(counts=counts, rest=len(rest), total=len(m))


def map_writer(m, k):
    for i in range(k):
        m[i] = i


def case_map_concurrent_writes():
    """Two writers on two different Ms (on one M they would take turns, never overlapping): one
    candidate at a time is started until two sit on different Ms, then both write at once."""
    from mprt import sched
    m = mprt.make(mprt.map(np.int64, np.int64))
    done, seen = mprt.chan(2), mprt.chan(1)

    def candidate(go_ahead):
        seen.send(sched.current().mid)
        if go_ahead.recv():
            map_writer(m, 200000)
            done.send(1)

    writers = {}                        # mid -> its candidate's channel
    for _ in range(60):
        c = mprt.chan(1)
        mprt.go(candidate, c)
        mid = seen.recv()
        if mid in writers:
            c.send(False)               # an M already taken: this candidate leaves
        else:
            writers[mid] = c
        if len(writers) == 2:
            break
        mprt.sleep(0.002)
    for c in writers.values():
        c.send(True)
    for _ in writers:
        done.recv()
    out(finished=True, writers=len(writers))


# ---- sync.Map ----

def syncmap_user(sm, who, wg, winners):
    for i in range(100):
        sm.store((who * 1000 + i), {"who": who, "i": i})
    node = mprt.new(Person)
    node.name = f"node of {who}"
    actual, loaded = sm.load_or_store("first", node)      # one of the goroutines stores
    if not loaded:
        winners.send(who)
    sm.store(f"node {who}", node)
    wg.done()


def case_syncmap():
    sm = Map()
    r = {"empty": list(sm.load("x"))}
    wg, winners = WaitGroup(), mprt.chan(8)
    wg.add(4)
    for who in range(4):
        mprt.go(syncmap_user, sm, who, wg, winners)
    wg.wait()
    del_keys = [k for k in range(0, 4000, 1000)]
    for k in del_keys:
        sm.delete(k)
    sm.delete("never there")
    runtime.GC()
    runtime.GC()                                           # the values' Ptrs are kept by the map
    seen = {}
    sm.range(lambda k, v: seen.__setitem__(repr(k), v))
    stopped = []
    sm.range(lambda k, v: stopped.append(k) or False)
    first, ok = sm.load("first")
    r.update(winners=len(winners), first=[first.name.startswith("node of "), ok], n=len(seen),
             sample=sm.load(3099)[0], nodes=sorted(sm.load(f"node {w}")[0].name for w in range(4)),
             deleted=[sm.load(k)[1] for k in del_keys], stopped=len(stopped), int_float=[sm.load(1)[1], sm.load(1.0)[1]])
    try:
        sm.store([1], 2)
    except TypeError as e:
        r["bad"] = str(e)
    out(**r)


def main():
    globals()["case_" + sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    mprt.run(main)
