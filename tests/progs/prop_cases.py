"""Property tests run inside one runtime (tests/test_properties.py): hypothesis generates programs,
mprt runs them across Ms, and a model says what Go would do.

    python prop_cases.py chan|fanin|graph EXAMPLES

Prints a JSON line with the number of examples run; a counterexample is an uncaught exception in
main (hypothesis prints the falsifying example on stderr), so the program panics with status 2.
"""
import json
import sys

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mprt
from mprt import runtime

N = int(sys.argv[2]) if len(sys.argv) > 2 else 50
SETTINGS = settings(max_examples=N, deadline=None, database=None, derandomize=False,
                    suppress_health_check=list(HealthCheck))


def out(**kw):
    print(json.dumps(kw), flush=True)


# ---- channel operations, one at a time, each by a goroutine chosen by the example ----

def executor(jobs, results):
    """Runs the operations it is handed (a closure over a channel) and reports what Go said."""
    for op in jobs:
        kind, ch, v = op
        try:
            if kind == "send":
                i, _ = mprt.select((ch.send, v), mprt.default)
                results.send(("sent",) if i == 0 else ("default",))
            elif kind == "recv":
                i, got = mprt.select(ch.recv, mprt.default)     # None once closed and drained
                results.send(("got", got) if i == 0 else ("default",))
            elif kind == "close":
                ch.close()
                results.send(("closed",))
            else:
                results.send(("len", len(ch), ch.cap))
        except runtime.Error as e:
            results.send(("panic", str(e)))


class ChanModel:
    def __init__(self, cap):
        self.cap, self.buf, self.closed = cap, [], False

    def step(self, kind, v):
        if kind == "send":
            if self.closed:
                return ("panic", "send on closed channel")
            if len(self.buf) < self.cap:
                self.buf.append(v)
                return ("sent",)
            return ("default",)              # nobody receives: an unbuffered or full channel blocks
        if kind == "recv":
            if self.buf:
                return ("got", self.buf.pop(0))
            return ("got", None) if self.closed else ("default",)
        if kind == "close":
            if self.closed:
                return ("panic", "close of closed channel")
            self.closed = True
            return ("closed",)
        return ("len", len(self.buf), self.cap)


ops = st.lists(st.tuples(st.sampled_from(["send", "send", "recv", "recv", "close", "len"]),
                         st.integers(0, 2), st.integers(0, 2), st.integers(-5, 1000)), min_size=5, max_size=40)


def case_chan():
    n = [0]
    stats = {}
    workers = [(mprt.chan(), mprt.chan()) for _ in range(3)]
    for jobs, results in workers:
        mprt.go(executor, jobs, results)

    @SETTINGS
    @given(caps=st.lists(st.integers(0, 3), min_size=3, max_size=3), program=ops)
    def prop(caps, program):
        n[0] += 1
        chans = [mprt.chan(c) for c in caps]
        models = [ChanModel(c) for c in caps]
        for kind, c, w, v in program:
            jobs, results = workers[w]
            jobs.send((kind, chans[c], v))
            got = results.recv()
            want = models[c].step(kind, v)
            stats[want[0]] = stats.get(want[0], 0) + 1
            assert got == want, (kind, c, w, v, got, want)
    prop()
    out(examples=n[0], outcomes=stats)


# ---- many senders, many receivers: nothing lost, nothing doubled, each sender's order kept ----

def producer(ch, k, count, done):
    for i in range(count):
        ch.send((k, i))
    done.send(k)


def consumer(ch, res):
    got = [v for v in ch]
    res.send(got)


def case_fanin():
    n = [0]
    moved = [0]

    @SETTINGS
    @given(cap=st.integers(0, 4), counts=st.lists(st.integers(0, 60), min_size=1, max_size=5),
           nrecv=st.integers(1, 4))
    def prop(cap, counts, nrecv):
        n[0] += 1
        ch, done, res = mprt.chan(cap), mprt.chan(len(counts)), mprt.chan(nrecv)
        for _ in range(nrecv):
            mprt.go(consumer, ch, res)
        for k, c in enumerate(counts):
            mprt.go(producer, ch, k, c, done)
        for _ in counts:
            done.recv()
        ch.close()
        parts = [res.recv() for _ in range(nrecv)]
        everything = sorted(v for p in parts for v in p)
        moved[0] += len(everything)
        assert everything == sorted((k, i) for k, c in enumerate(counts) for i in range(c))
        for p in parts:                      # FIFO: each receiver sees each sender's values in order
            for k in range(len(counts)):
                seq = [i for kk, i in p if kk == k]
                assert seq == sorted(seq), (k, seq)
    prop()
    out(examples=n[0], values=moved[0])


# ---- object graphs: mutations on two Ms with collections between, against a reachability model ----

@mprt.struct
class Node:
    a: mprt.Ptr
    b: mprt.Ptr
    id: np.int64


def linker(jobs, done):
    """Another M's mutator: sets x.b = y on the nodes it is handed."""
    for x, y in jobs:
        x.b = y
        done.send(None)


graph_ops = st.lists(st.one_of(
    st.tuples(st.just("new"), st.integers(0, 7), st.integers(0, 7)),
    st.tuples(st.just("set_a"), st.integers(0, 7), st.integers(0, 8)),     # 8: nil
    st.tuples(st.just("remote_b"), st.integers(0, 7), st.integers(0, 8)),
    st.tuples(st.just("follow"), st.integers(0, 7), st.integers(0, 7)),    # slot j = slot i's a (or b)
    st.tuples(st.just("drop"), st.integers(0, 7), st.integers(0, 7)),
    st.tuples(st.just("gc"), st.integers(0, 7), st.integers(0, 7)),
), min_size=10, max_size=60)


def case_graph():
    n = [0]
    jobs, done = mprt.chan(), mprt.chan()
    mprt.go(linker, jobs, done)
    runtime.GC()
    ms = runtime.MemStats()
    runtime.ReadMemStats(ms)
    base = ms.HeapObjects
    stats = {"checked": 0}

    def check(roots, edges, slots):
        """Everything the model says is reachable is there, with the model's edges."""
        seen = {}
        stack = [(roots[i], slots[i]) for i in range(8)]
        while stack:
            p, want = stack.pop()
            if want is None:
                assert p is None, (p, want)
                continue
            assert p is not None and int(p.id) == want, (want, p)
            if want in seen:
                assert seen[want] == p.addr
                continue
            seen[want] = p.addr
            stats["checked"] += 1
            a, b = edges[want]
            stack.append((p.a, a))
            stack.append((p.b, b))

    @SETTINGS
    @given(program=graph_ops)
    def prop(program):
        n[0] += 1
        roots = mprt.make(mprt.Ptr, 8)
        slots = [None] * 8                   # the model: node id per root slot, and each node's edges
        edges = {}
        next_id = 1
        for op, i, j in program:
            if op == "new":
                x = mprt.new(Node)
                x.id = next_id
                x.a = roots[j]
                edges[next_id] = [slots[j], None]
                roots[i], slots[i] = x, next_id
                next_id += 1
            elif op in ("set_a", "remote_b") and slots[i] is not None:
                y = roots[j] if j < 8 else None
                yid = slots[j] if j < 8 else None
                if op == "set_a":
                    roots[i].a = y
                    edges[slots[i]][0] = yid
                else:
                    jobs.send((roots[i], y))
                    done.recv()
                    edges[slots[i]][1] = yid
            elif op == "follow" and slots[i] is not None:
                k = 0 if j % 2 == 0 else 1
                roots[j] = roots[i].a if k == 0 else roots[i].b
                slots[j] = edges[slots[i]][k]
            elif op == "drop":
                roots[i], slots[i] = None, None
            elif op == "gc":
                runtime.GC()
                check(roots, edges, slots)
        runtime.GC()
        check(roots, edges, slots)
    prop()
    runtime.GC()
    runtime.GC()
    ms = runtime.MemStats()
    runtime.ReadMemStats(ms)
    # every example's graph was dropped: the heap holds what it held before, give or take the
    # channels' messages in flight
    out(examples=n[0], checked=stats["checked"], base=base, end=ms.HeapObjects)


if __name__ == "__main__":
    mprt.run(globals()["case_" + sys.argv[1]])
