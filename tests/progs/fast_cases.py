"""Programs for tests/test_fastpaths.py: `python fast_cases.py CASE`.  Each prints one JSON line.

The fast paths must give what the general ones give: a goroutine's arguments written as typed
words arrive as the same values (same types, same heap objects) as pickled ones would."""
import json
import math
import os
import sys

import numpy as np

import mprt
from mprt import runtime


def out(**kw):
    print(json.dumps(kw), flush=True)


@mprt.struct
class Node:
    left: mprt.Ptr
    v: np.int64


def fp(v):
    """What a receiver sees of a value: its type, its repr, and for heap objects what they hold."""
    t = type(v).__qualname__
    if isinstance(v, float) and math.isnan(v):
        return [t, "nan"]
    if isinstance(v, float):
        return [t, v.hex()]
    if isinstance(v, mprt.Ptr):
        try:
            return [t, repr(v), int(v.v)]
        except AttributeError:
            return [t, repr(v), v.np.tolist()]
    return [t, repr(v)]


def receive(out_, i, *args):
    out_.send((i, [fp(a) for a in args]))


def receive_kw(out_, i, args=()):
    out_.send((i, [fp(a) for a in args]))


def arg_sets():
    n = mprt.new(Node)
    n.v = 42
    f = mprt.make(np.float64, 3)
    f.np[:] = [1.5, 2.5, 3.5]
    k = mprt.make(np.int64, 2)
    k.np[:] = [7, 8]
    ch, wg, mu = mprt.chan(1), mprt.sync.WaitGroup(), mprt.sync.Mutex()
    return [
        (1, -2**63, 2**63 - 1, 0, 2.5, -0.0, float("inf"), float("nan"), None, True, False),
        ("", "héllo wörld", "x" * 255, b"", b"\x00\xff", bytes(255)),
        (n, f, k, ch, wg, mu),                       # issue 14's trampoline shape, and more
        (f, k, ch),
        (ch, mprt.chan(), mprt.chan(2), n, f, k, wg),  # more handles than the row's pointer words
        tuple(range(40)),                            # more bytes than the row holds inline
        (2**63, -2**63 - 1, "x" * 256, bytes(256)),  # too big for a word: pickled
        ("\ud800", [1, 2], {"a": n}, (f, 1), np.int64(3), 1 + 2j),   # not typed at all: pickled
        (n, "\ud800"),                               # a handle with a value that needs the pickle
    ]


def case_args():
    """Every argument set, each way: positional (typed words where it can) and as a keyword
    argument (always the pickle).  Each goroutine sends back what it saw."""
    sets = arg_sets()
    res = mprt.chan(2 * len(sets))
    for i, a in enumerate(sets):
        mprt.go(receive, res, i, *a)
        mprt.go(receive_kw, res, i, args=a)
    want = [[fp(x) for x in a] for a in sets]
    got = {}
    for _ in range(2 * len(sets)):
        i, seen = res.recv()
        got.setdefault(i, []).append(seen)
    bad = [(i, want[i], g) for i in range(len(sets)) for g in got[i] if g != want[i]]
    # the handles work on the other side too
    wg = mprt.sync.WaitGroup()
    wg.add(1)
    mu = mprt.sync.Mutex()
    done = mprt.chan(1)
    mprt.go(use_handles, wg, mu, done, sets[2][0])
    wg.wait()
    mu.lock()
    mu.unlock()
    out(bad=bad, n=len(sets), used=done.recv())


def use_handles(wg, mu, done, n):
    with mu:
        n.v += 1
    done.send(int(n.v))
    wg.done()


TAG = 0


def check(n, i, wg, seen):
    seen.np[i] = 1 if int(n.v) == i and TAG >= 0 else 2
    wg.done()


def gc_loop(stop):
    while True:
        j, _ = mprt.select(stop.recv, mprt.default)
        if j == 0:
            return
        runtime.GC()


def case_churn():
    """Objects reachable only from goroutines' typed argument words while the collector runs:
    none may be freed before its goroutine reads it (run with GODEBUG=gccheckmark=1).  The
    goroutines' function is pickled by value and kept in the runtime's function table; every 100
    goroutines a global it uses changes, so it is pickled again while rows not started still name
    the entry before."""
    global TAG
    N = 3000
    stop = mprt.chan()
    mprt.go(gc_loop, stop)
    seen = mprt.make(np.int64, N)
    wg = mprt.sync.WaitGroup()
    wg.add(N)
    for i in range(N):
        n = mprt.new(Node)
        n.v = i
        n.left = mprt.new(Node)        # garbage behind it, for the sweeper
        mprt.go(check, n, i, wg, seen)
        if i % 100 == 0:
            TAG = i
            runtime.Gosched()
    del n
    wg.wait()
    stop.close()
    ms = runtime.MemStats()
    runtime.ReadMemStats(ms)
    out(ok=int((seen.np == 1).sum()), bad=int((seen.np == 2).sum()), numgc=ms.NumGC)


def chan_values():
    n = mprt.new(Node)
    n.v = 42
    f = mprt.make(np.float64, 2)
    f.np[:] = [0.5, 1.5]
    ch, wg, mu = mprt.chan(1), mprt.sync.WaitGroup(), mprt.sync.Mutex()
    return [n, f, ch, wg, mu, (1, ch), (n, 2.5, "s", None, True), (n, f), (n, "\ud800"), tuple(range(20)),
            (), ("x",), (2**70, ch), 5, "str", None, [1, 2], (f, (1, 2)), np.int64(3)]


def fpv(v):
    return [fp(x) for x in v] if type(v) is tuple else fp(v)


def echo(inp, outp, k, use_select):
    for _ in range(k):
        if use_select:
            _, v = mprt.select(inp.recv)
            mprt.select((outp.send, (fpv(v), v)))
        else:
            v = inp.recv()
            outp.send((fpv(v), v))


def case_chanvals():
    """Every value over every path of a channel: to a waiting receiver (a sudog), through a buffer,
    from a waiting sender into a full buffer, by select; each arrives as the value sent."""
    vals = chan_values()
    want = [fpv(v) for v in vals]
    bad = []
    for cap, use_select in ((0, False), (len(vals), False), (1, False), (0, True), (1, True)):
        inp, outp = mprt.chan(cap), mprt.chan(cap)
        mprt.go(echo, inp, outp, len(vals), use_select)
        got = []
        if cap >= len(vals):
            for v in vals:
                inp.send(v)
            got = [outp.recv() for _ in vals]
        else:
            for v in vals:
                inp.send(v)
                got.append(outp.recv())
        for i, (seen, back) in enumerate(got):
            if seen != want[i] or fpv(back) != want[i]:
                bad.append([cap, use_select, i, want[i], seen, fpv(back)])
    out(bad=bad, n=len(vals))


def produce(c, k):
    for i in range(k):
        n = mprt.new(Node)
        n.v = i
        c.send(n if i % 2 else (i, n))
        del n
        if i % 50 == 0:
            # the value waits in the receiver's sudog, held by nothing else, while this goroutine
            # keeps the P and allocates: cycles start (GOGC is low), and the freed blocks are
            # reused, so a value the collector missed would be overwritten
            g0 = gcs()
            while gcs() < g0 + 2:
                for _ in range(200):
                    mprt.new(Node).v = -1


def gcs():
    ms = runtime.MemStats()
    runtime.ReadMemStats(ms)
    return ms.NumGC


def case_chanchurn():
    """Objects held only by channel slots while the collector runs (run with
    GODEBUG=gccheckmark=1, GOGC=5, GOMAXPROCS=1: the receiver runs only once the sender blocks):
    none is freed before it is received."""
    K = 1000
    ok = bad = 0
    for cap in (0, 100):
        c = mprt.chan(cap)
        mprt.go(produce, c, K)
        for i in range(K):
            v = c.recv()
            n = v if i % 2 else v[1]
            if int(n.v) == i and (i % 2 or v[0] == i):
                ok += 1
            else:
                bad += 1
    ms = runtime.MemStats()
    runtime.ReadMemStats(ms)
    out(ok=ok, bad=bad, numgc=ms.NumGC)


LIMIT = 10
ITEMS = [1]


def helper_a(x):
    return ("a", x)


def helper_b(x):
    return ("b", x)


helper = helper_a


def report(out_, tag):
    out_.send((tag, LIMIT, list(ITEMS), helper(tag)))


def case_byvalue():
    """A function pickled by value (defined in __main__) is pickled once and used again only while
    everything it uses is the same: each goroutine sees the globals as they are at its go statement."""
    global LIMIT, helper
    res = mprt.chan(10)
    got = []
    mprt.go(report, res, 1)
    got.append(res.recv())
    mprt.go(report, res, 2)                      # nothing changed
    got.append(res.recv())
    LIMIT = 20                                   # a global rebound
    mprt.go(report, res, 3)
    got.append(res.recv())
    ITEMS.append(2)                              # a global changed in place
    mprt.go(report, res, 4)
    got.append(res.recv())
    helper = helper_b                            # a function it calls, rebound
    mprt.go(report, res, 5)
    got.append(res.recv())
    for k in (6, 7):                             # closures over different values
        mprt.go(lambda: res.send(("closure", k)))
        got.append(res.recv())
    out(got=got)


@mprt.struct
class Big:
    a: mprt.Ptr
    pad: np.float64
    b: mprt.Ptr


def case_markboth():
    """The collector's drain in C and in Python over the same graph (run with GOGC=off, so no cycle
    runs meanwhile): the same objects marked.  The graph mixes structs of two
    sizes, pointer slices, numeric slices, a large object, shared children and cycles."""
    from mprt.gc import mgcmark
    from mprt.shm import malloc
    rng = np.random.default_rng(7)
    objs, kinds = [], []
    for i in range(3000):
        k = int(rng.integers(4))
        if k == 0:
            o = mprt.new(Node)
        elif k == 1:
            o = mprt.new(Big)
        elif k == 2:
            o = mprt.make(mprt.Ptr, int(rng.integers(0, 6)))
        else:
            o = mprt.make(np.float64, int(rng.integers(1, 50)))
        objs.append(o)
        kinds.append(k)
    objs.append(mprt.make(mprt.Ptr, 5000))             # a large object
    kinds.append(2)

    def pick():
        return objs[int(rng.integers(len(objs)))]
    for o, k in zip(objs, kinds):
        if k == 0:
            o.left = pick()
        elif k == 1:
            o.a, o.b = pick(), pick()
        elif k == 2:
            for j in range(len(o)):
                o[j] = pick()
    roots = [o.addr for o in objs[:50]]
    h = malloc.current()
    addrs = np.array([o.addr for o in objs], dtype=np.int64)
    idx, _, _ = mgcmark.mark_indices(h, addrs)
    res = {}
    for use_c in (False, True):
        if use_c and mgcmark._cmark is None:
            res["c"] = "not built"
            continue
        h.hu8n[idx] = 0
        mgcmark.USE_C = use_c
        mk = mgcmark.Marker(h)
        mk.blacken(roots)
        while not mk.drain(100):          # small batches: the queue carried between calls
            pass
        res["c" if use_c else "py"] = [mk.objs, mk.bytes, (h.hu8n[idx] == 2).tolist()]
    built = res.get("c") != "not built"
    # the same objects marked; each scanned once by C (the vectorised scan may count an object
    # reached twice in one level twice)
    out(built=built, marked=sum(res["py"][2]), py_objs=res["py"][0],
        same_marks=(res["py"][2] == res["c"][2]) if built else None, c_objs=res["c"][0] if built else None)


@mprt.struct
class TNode:
    """A tree node of a size no runtime object has (its size class's Mallocs are this program's)."""
    left: mprt.Ptr
    right: mprt.Ptr
    item: np.int64
    pad: np.float64
    pad2: np.float64
    pad3: np.float64
    pad4: np.float64
    pad5: np.float64
    pad6: np.float64


def bottom_up(item, depth):
    n = mprt.new(TNode)
    n.item = item
    if depth > 0:
        n.left = bottom_up(2 * item - 1, depth - 1)
        n.right = bottom_up(2 * item, depth - 1)
    return n


def tree_check(n):
    left = n.left
    if left is None:
        return int(n.item)
    return int(n.item) + tree_check(left) - tree_check(n.right)


def tree_worker(depth, iters, res):
    total = 0
    for i in range(iters):
        total += tree_check(bottom_up(i, depth))
    res.send(total)


def case_trees():
    """Binary trees on 2 Ms with the collector running (GOGC low): the checks, and how many objects
    of the tree's size class were allocated (the C path counts them as the Python one does)."""
    from mprt.shm import malloc
    before = runtime.MemStats()
    runtime.ReadMemStats(before)
    res = mprt.chan(4)
    for k in range(4):
        mprt.go(tree_worker, 8, 6 + k, res)
    checks = sorted(res.recv() for _ in range(4))
    longlived = bottom_up(1, 10)
    runtime.GC()
    after = runtime.MemStats()
    runtime.ReadMemStats(after)
    size = mprt.sizeof(TNode)
    by = {b.Size: b.Mallocs for b in after.BySize}
    by0 = {b.Size: b.Mallocs for b in before.BySize}
    cls = min(k for k in by if k >= size)
    out(checks=checks, long=tree_check(longlived), mallocs=by[cls] - by0[cls], numgc=after.NumGC,
        c=malloc._cptr is not None and type(mprt.new).__name__ == "builtin_function_or_method")


def swapper(ring, n, rounds, seed, done):
    # goroutine `seed` writes the fields of the nodes of its parity only (two goroutines swapping
    # the same node's field would race, as in Go); it reads everyone's
    rng = np.random.default_rng(seed)
    for r in range(rounds):
        i, j = 2 * int(rng.integers(n // 2)) + seed, 2 * int(rng.integers(n // 2)) + seed
        a, b = ring[i], ring[j]
        # swap the successors of a and b, and back: the ring is whole after every pair
        an, bn = a.left, b.left
        a.left, b.left = bn, an
        a.left, b.left = an, bn
        if r % 50 == 0:
            mprt.new(TNode)            # garbage: the collector keeps running
            mprt.make(np.float64, 200)
    done.send(1)


def case_fieldchurn():
    """Two goroutines on two Ms read and write the pointer fields of one ring of nodes while the
    collector marks (GOGC low, checkmark): every node stays, every successor is the right one."""
    n = 300
    ring = mprt.make(mprt.Ptr, n)
    nodes = [mprt.new(TNode) for _ in range(n)]
    for i, x in enumerate(nodes):
        x.item = i
        ring[i] = x
    for i, x in enumerate(nodes):
        x.left = nodes[(i + 1) % n]
    del nodes, x
    done = mprt.chan(2)
    for k in range(2):
        mprt.go(swapper, ring, n, 3000, k, done)
    done.recv()
    done.recv()
    runtime.GC()
    bad = sum(1 for i in range(n) if int(ring[i].left.item) != (i + 1) % n or int(ring[i].item) != i)
    ms = runtime.MemStats()
    runtime.ReadMemStats(ms)
    out(bad=bad, numgc=ms.NumGC)


def _row_words(g):
    """What a G row says of its goroutine: payload bytes, pointer words, site, parent."""
    from mprt.sched import ctl as c
    from mprt.sched import mstate
    m = mstate.current_m()
    q, r = m.q, m.ctl.g(g)
    n = q[r + c.G_PAYLEN]
    o = (r + c.G_INLINE) * 8
    return [bytes(m.mv8[o:o + n]).hex(), q[r + c.G_FNLEN], q[r + c.G_NPTR],
            [q[r + c.G_PTR0 + i] for i in range(q[r + c.G_NPTR])], q[r + c.G_SITE], q[r + c.G_PARENT],
            q[r + c.G_STATUS]]


def case_gorows():
    """go() in C (mprt.go where csched.c is built) writes the rows the Python go writes: each
    argument set is started through both from one call site (GOMAXPROCS=1: each row is read from
    the P's runnext before anything runs it), and every goroutine then runs and reports."""
    from mprt.sched import ctl as c
    from mprt.sched import mstate, proc
    m = mstate.current_m()
    runnext = m.ctl.p(m.p) + c.P_RUNNEXT
    res = mprt.chan(64)
    bad, n, fast = [], 0, 0
    for i, a in enumerate(arg_sets()[:5] + [(), (m.p,)]):
        for _ in range(5):
            rows = []
            fast0 = proc._csched.counts()["go"] if proc._csched else 0
            for start in (proc.go, mprt.go, proc.go, mprt.go):     # the first enters the site
                start(receive, res, i, *a)
                rows.append(_row_words(m.q[runnext]))
            for _ in range(4):
                res.recv()
            # (a preemption at go's safe point runs the new goroutine before its row is read: again)
            if all(r[6] == c.G_RUNNABLE for r in rows):
                break
        n += 4
        fast += (proc._csched.counts()["go"] if proc._csched else 0) - fast0
        if not (rows[1] == rows[2] == rows[3]):
            bad.append((i, rows[1:]))
    out(bad=bad, n=n, c_go=mprt.go is not proc.go, fast=fast)


def _as_init_makes(a):
    """A handle received has every field its class's __init__ gives it (csched.c builds them)."""
    f = getattr(type(a), "_wire_fields", None)
    if not f:
        return True
    b = type(a)(a._p)
    return all(getattr(a, k) is getattr(b, k) or (type(getattr(a, k)) is int and getattr(a, k) == getattr(b, k))
               for k in f)


def receive_pay(out_, i, *args):
    from mprt.sched import proc
    seen = [fp(a) if _as_init_makes(a) else "fields differ" for a in args]
    out_.send((i, seen, os.getpid(), proc._csched.counts()["payload"] if proc._csched else 0))


def case_payloads():
    """A goroutine's function and typed arguments read from its row in C (csched.payload where it is
    built) arrive as the Python path gives them: GOMAXPROCS=1, one goroutine first (it decodes the
    function on the M that runs it, the Python path), then each argument set; all run on one M.  Five
    of the sets fit a row in typed words (0, 3 and the three added here): those are read in C."""
    sets = arg_sets()[:5]
    n, ch, wg = sets[2][0], sets[2][3], sets[2][4]
    sets += [("héllo wörld", b"\x00\xff", "", b""), (n, wg, 7, 2.5, ch), ()]
    res = mprt.chan(len(sets))
    mprt.go(receive_pay, res, -1)
    _, _, pid0, c0 = res.recv()
    for i, a in enumerate(sets):
        mprt.go(receive_pay, res, i, *a)
    got = sorted(res.recv() for _ in sets)
    want = [[fp(x) for x in a] for a in sets]
    out(bad=[(i, want[i], seen) for i, seen, _, _ in got if seen != want[i]],
        pids=sorted({pid for _, _, pid, _ in got} | {pid0}), c=max(c for *_, c in got) - c0)


def report_goid(out_, wg, i):
    from mprt.sched import proc
    c = proc._csched.counts() if proc._csched else {"exit_next": 0, "wg_done": 0}
    out_.send((i, mprt.sched.current().goid, c["exit_next"], c["wg_done"], os.getpid()))
    wg.done()


def case_exitnext():
    """Goroutines run back to back on one M (GOMAXPROCS=1): each but the first starts in the greenlet
    of the one before (csched.exit_next where it is built), and each sees its own goroutine id; their
    WaitGroup.done calls but the last are csched.wg_done's, and the wait ends after the last."""
    n = 200
    res = mprt.chan(n)
    wg = mprt.sync.WaitGroup()
    wg.add(n)
    for i in range(n):
        mprt.go(report_goid, res, wg, i)
    wg.wait()
    got = sorted(res.recv() for _ in range(n))
    for _ in range(100):            # the last one may still be ending after its wg.done
        if runtime.NumGoroutine() == 1:
            break
        mprt.sleep(0.01)
    # (the counts are each process's: main's M0 may hand its P to another M while it waits)
    by = {}
    for _, _, e, w, pid in got:
        by.setdefault(pid, []).append((e, w))
    out(n=len(got), distinct=len({r[1] for r in got}), numgoroutine=runtime.NumGoroutine(),
        exits=sum(max(e for e, _ in v) - min(e for e, _ in v) for v in by.values()),
        wgdone=sum(max(w for _, w in v) - min(w for _, w in v) for v in by.values()))


def build_and_check(n, res, wg):
    """A list of n nodes built one mprt.new at a time while the world is stopped again and again,
    then walked: every node there, in order, with its value."""
    head = None
    for i in range(n):
        x = mprt.new(Node)
        x.v = i
        x.left = head
        head = x
    bad, k, x = 0, n, head
    while x is not None:
        k -= 1
        bad += x.v != k
        x = x.left
    from mprt.sched import proc
    c = proc._csched.counts() if proc._csched else {"stop": 0}
    res.send((bad + abs(k), os.getpid(), c["stop"]))
    wg.done()


def case_stops():
    """Stops of the world while 2 goroutines allocate on 2 Ms (csched's stop at an allocation and
    the stopper's request and restart where it is built): lists made meanwhile are whole, each M
    stopped in C at least once, the collector's restarts were C's."""
    from mprt.sched import proc
    res, wg = mprt.chan(4), mprt.sync.WaitGroup()
    ms0 = runtime.MemStats()
    runtime.ReadMemStats(ms0)
    wg.add(2)
    for _ in range(2):
        mprt.go(build_and_check, 20_000, res, wg)
    wg.wait()
    got = [res.recv() for _ in range(2)]
    ms = runtime.MemStats()
    runtime.ReadMemStats(ms)
    out(bad=int(sum(g[0] for g in got)), pids=len({g[1] for g in got}), stops=[g[2] for g in got],
        cycles=int(ms.NumGC - ms0.NumGC), accel=proc._csched is not None)


if __name__ == "__main__":
    mprt.run(globals()["case_" + sys.argv[1]])
