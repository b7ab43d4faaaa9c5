"""Programs for tests/test_cluster.py (cluster mode, MPRT_CLUSTER=local:2): `python cluster_cases.py
CASE [ARGS]`, each a small mprt program whose last stdout line is JSON the tests read."""
import json
import os
import sys
import time

import numpy as np

import mprt
from mprt import runtime, sched
from mprt.sync import Mutex, RWMutex, WaitGroup


def out(**kw):
    print(json.dumps(kw), flush=True)


def busy(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _candidate(k, tok, fn, args):
    busy(0.03)          # long enough that an idle node steals some of the queued candidates
    if sched.current().node != k:
        return
    i, _ = mprt.select(tok.recv, mprt.default)      # the first one there wins
    if i == 0:
        fn(*args)


def on_node(k, fn, *args):
    """Run fn(*args) in a goroutine on node k (goroutines land where stealing puts them: start
    candidates until one is there)."""
    tok = mprt.chan(1)
    tok.send(True)
    for _ in range(50):
        for _ in range(8):
            mprt.go(_candidate, k, tok, fn, args)
        mprt.sleep(0.3)
        if len(tok) == 0:
            return
    raise AssertionError(f"no goroutine reached node {k}")


# ---- fan-out ----

def _work(i, wg, res):
    s = 0
    for k in range(50000 + (i % 7) * 1000):
        s += k
    res.send((i, s, sched.current().node, os.getpid()))
    wg.done()


def case_fanout(n="300"):
    n = int(n)
    wg = WaitGroup()
    res = mprt.chan(n)
    wg.add(n)
    for i in range(n):
        mprt.go(_work, i, wg, res)
    wg.wait()
    got = [res.recv() for _ in range(n)]
    exact = sorted((i, s) for i, s, _, _ in got) == [(i, sum(range(50000 + (i % 7) * 1000))) for i in range(n)]
    snap = sched.snapshot()
    out(exact=exact, nodes=sorted({nd for _, _, nd, _ in got}), gomaxprocs=runtime.GOMAXPROCS(0),
        numcpu=runtime.NumCPU(), snap_nodes=[(x.id, x.ncpu, len(x.ms)) for x in snap.nodes],
        ms_nodes=sorted({mi.node for mi in snap.ms}), main_node=sched.current().node,
        pids_per_node={str(nd): len({p for _, _, n2, p in got if n2 == nd}) for nd in (0, 1)})


# ---- a pipeline over both nodes ----

def _stage(k, inp, outp, where):
    busy(0.05)
    where.send((k, sched.current().node))
    for v in inp:
        outp.send(v * 2 + k)
    outp.close()


def _feed(ch, src):
    for v in src:
        ch.send(v)
    ch.close()


def case_pipeline():
    nstages = 6
    chans = [mprt.chan(4) for _ in range(nstages + 1)]
    where = mprt.chan(nstages)
    for k in range(nstages):
        on_node(k % 2, _stage, k, chans[k], chans[k + 1], where)     # every other stage on node 1
    src = list(range(200))
    mprt.go(_feed, chans[0], src)
    got = list(chans[-1])
    want = []
    for v in src:
        for k in range(nstages):
            v = v * 2 + k
        want.append(v)
    placed = sorted(where.recv() for _ in range(nstages))
    out(exact=got == want, nodes=sorted({nd for _, nd in placed}))


# ---- select with a remote and a local channel ----

def _selects(remote, report):
    local = mprt.chan(1)
    r = {"node": sched.current().node}
    r["empty_default"] = mprt.select(remote.recv, local.recv, mprt.default)[0]
    local.send("L")
    r["local_ready"] = list(mprt.select(remote.recv, local.recv, mprt.default))
    report.send("waiting")
    r["remote_blocking"] = list(mprt.select(remote.recv, local.recv))
    r["remote_only"] = list(mprt.select(remote.recv))
    r["send_remote"] = mprt.select((remote.send, "to main"), mprt.default)[0]
    r["len"] = len(remote)
    try:
        remote.send(RWMutex())
    except Exception as e:
        r["refused"] = str(e)
    report.send(r)


def case_select():
    remote = mprt.chan(1)     # made here, on node 0: remote for the goroutine on node 1
    report = mprt.chan()
    on_node(1, _selects, remote, report)
    assert report.recv() == "waiting"
    mprt.sleep(0.1)
    remote.send("R1")
    remote.send("R2")
    r = report.recv()
    r["main_got"] = remote.recv()
    out(**r)


# ---- WaitGroup and Mutex from both nodes ----

def _incr(path, mu, wg, nodes, times):
    busy(0.02)
    nodes.send(sched.current().node)
    for _ in range(times):
        with mu:
            with open(path) as f:
                v = int(f.read())
            time.sleep(0.0005)           # without the lock, increments of other goroutines are lost
            with open(path, "w") as f:
                f.write(str(v + 1))
    wg.done()


def _waiter(wg, done):
    wg.wait()
    done.send(sched.current().node)


def case_sync(path):
    with open(path, "w") as f:
        f.write("0")
    mu = Mutex()
    wg = WaitGroup()
    gate = WaitGroup()
    gate.add(1)
    done = mprt.chan(1)
    on_node(1, _waiter, gate, done)        # node 1 waits on node 0's WaitGroup
    n, times = 8, 10
    nodes = mprt.chan(n)
    wg.add(n)
    for i in range(n):
        on_node(i % 2, _incr, path, mu, wg, nodes, times)      # half on each node
    wg.wait()
    gate.done()
    waiter_node = done.recv()
    with open(path) as f:
        total = int(f.read())
    out(total=total, want=n * times, nodes=sorted({nodes.recv() for _ in range(n)}), waiter_node=waiter_node)


# ---- a Ptr crossing nodes is a deep copy ----

@mprt.struct
class Node:
    val: np.int64
    w: np.float64
    name: str
    next: mprt.Ptr
    kids: mprt.Ptr          # a slice of Ptr


def _walk(p):
    out = []
    while p is not None:
        out.append((int(p.val), float(p.w), p.name, [int(k.val) for k in (p.kids[i] for i in range(len(p.kids)))]
                    if p.kids is not None else None))
        p = p.next
    return out


def _remote_copy(inp, outp):
    lst = inp.recv()
    seen = _walk(lst)
    lst.val = 1000                     # the copy is this node's: the sender's stays as it was
    nums = mprt.make(np.float32, 5)
    nums.np[:] = np.arange(5) * 1.5
    back = mprt.new(Node)
    back.val = 7
    back.name = f"from node {sched.current().node}"
    back.kids = nums
    outp.send((seen, back, [0 if x is None else 1 for x in (lst.next, lst.kids)]))


def case_ptrcopy():
    head = None
    for i in range(5):
        n = mprt.new(Node)
        n.val = i
        n.w = i / 4
        n.name = f"n{i}"
        n.next = head
        if i % 2 == 0:
            n.kids = mprt.make(mprt.Ptr, 2)
            for j in range(2):
                k = mprt.new(Node)
                k.val = 10 * i + j
                n.kids[j] = k
        head = n
    inp, outp = mprt.chan(1), mprt.chan(1)
    on_node(1, _remote_copy, inp, outp)
    inp.send(head)
    seen, back, links = outp.recv()
    runtime.GC()
    out(same=seen == _walk(head), seen=seen, head_val=int(head.val), back_name=back.name, back_val=int(back.val),
        back_nums=back.kids.np.tolist(), links=links)


# ---- numpy arrays crossing nodes ----

def _arrays(inp, outp):
    a = inp.recv()
    ok = a.flags.writeable
    a[0] = -1.0                        # its own copy: main's array is not changed
    outp.send((float(a[1:].sum()), ok, np.arange(300_000, dtype=np.int32) * 2, sched.current().node))


def case_arrays():
    a = np.linspace(0.0, 1.0, 250_000)      # 2 MB: out of band, through Ray's object store
    inp, outp = mprt.chan(1), mprt.chan(1)
    on_node(1, _arrays, inp, outp)
    inp.send(a)
    total, writable, back, node = outp.recv()
    out(total_ok=abs(total - float(a[1:].sum())) < 1e-6, writable=writable, first=float(a[0]),
        back_ok=bool((back == np.arange(300_000, dtype=np.int32) * 2).all()), back_dtype=str(back.dtype), node=node)


# ---- endings ----

def _boom():
    mprt.panic("boom on node 1")


def case_panic():
    on_node(1, _boom)
    mprt.sleep(30)


def _stuck(ch, started):
    started.send(sched.current().node)
    ch.recv()          # nobody ever sends


def case_deadlock():
    ch = mprt.chan()
    started = mprt.chan(1)
    on_node(1, _stuck, ch, started)
    print("stuck on node", started.recv(), flush=True)
    mprt.chan().recv()


def _report_pids(ch):
    ch.send((os.getpid(), os.getppid()))
    mprt.chan().recv()


def case_lost():
    ch = mprt.chan(1)
    on_node(1, _report_pids, ch)
    m_pid, coord_pid = ch.recv()
    snap = sched.snapshot()
    node1 = next(n for n in snap.nodes if n.id == 1)
    m0 = next(mi.pid for mi in node1.ms if mi.id == 0)
    pids = {m_pid, coord_pid, m0, *(mi.pid for mi in node1.ms if mi.pid > 0)}
    print(json.dumps({"pids": sorted(pids), "actor": os.getppid()}), flush=True)
    print("ready", flush=True)
    while True:               # until node 1 is lost (sleeping: a timer is pending, so never a deadlock)
        mprt.sleep(0.05)


def case_noop():
    out(main_node=sched.current().node, gomaxprocs=runtime.GOMAXPROCS(0))


def main():
    globals()["case_" + sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    mprt.run(main)
