"""Programs for tests/test_gosync.py (what Go programs use beyond goroutines and channels):
`python gosync_cases.py CASE`, each a small mprt program whose output the tests read."""
import json
import sys
import time

import numpy as np

import mprt
from mprt import runtime, sched
from mprt.sync import Once, WaitGroup, atomic


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


def main():
    globals()["case_" + sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    mprt.run(main)
