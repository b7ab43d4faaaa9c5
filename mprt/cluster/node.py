"""The runtime's side of cluster mode: what runs inside a node runtime's processes (no Ray here).

Frames on the node's local socket (to and from its node actor, _ray.py): a header (body length,
node, kind) and a body.  Kind PAYLOAD is a message for (from) another node, encoded by `encode`
(a pickle made by _Pickler, arrays out of band), opaque to the actors; kind IDLE the same for a
message that wakes nothing (a steal request, an empty answer: the deadlock check does not count
them); kind CONTROL is between the runtime and its own actor (a plain pickle of a tuple).  Any process of the runtime writes its frames on a connection of its own (one
per process, made at its first frame); a frame is written whole with the M's lock count raised, so
no signal switches goroutines inside it.  Only the gateway goroutine reads.

Messages (tuples):
    ("req", src, reply, op, kind, addr, args)   do op on object (kind, addr) of this node, then send
                                                ("rep", reply, ok, value) to node src
    ("rep", reply, ok, value)                   reply is the address of the waiting goroutine's
                                                reply channel (cap 1), alive while it waits
    ("steal", src, n)                           give node src up to n not-started goroutines
    ("gos", batch)                              start these [(fn, args, kwargs)] here
Control (actor -> runtime): ("quiet?", token), ("stop",), ("deadlock", any goroutine left),
("end", status), ("lost", node, why), ("out", fd, bytes); (runtime -> actor): ("hello", node,
pid, runtime id), ("quiet", token, quiet, goroutines).
"""
import io
import json
import os
import pickle
import random
import socket
import struct
import subprocess
import sys
import time

import cloudpickle
import numpy as np

from .. import cluster
from ..errors import Panic
from ..sched import chan as _chan
from ..sched import msg as _msg
from ..sched import mstate, proc, schedule, sema
from ..sched.ctl import (
    EXIT_DEADLOCK,
    EXIT_GOEXIT,
    EXIT_OSEXIT,
    M_NTIMERS,
    M_RQHEAD,
    M_STATE,
    MS_GCSTOP,
    MS_NEEDP,
    MS_RUNNING,
    MS_STARTING,
    MS_SYSCALL,
    NONE,
    P_IDLE,
    P_M,
    P_STATUS,
    P_SYSCALL,
    S_COORDPID,
    S_DEAD,
    S_GATEWAYG,
    S_GOMAXPROCS,
    S_GQSIZE,
)
from ..sched.snapshot import local_snapshot, set_node_snapshots
from ..shm import types
from ..shm.ptr import Ptr, store_ptr
from . import CONTROL, HDR, IDLE, PAYLOAD, write_parts

STEAL_MAX = 256
STEAL_IDLE_S = 0.002          # a node idle this long asks for work
STEAL_BACKOFF_MAX_S = 0.02     # an idle node asks again at least this often (IDLE messages, uncounted)

_DEBUG = bool(os.environ.get("MPRT_CLUSTER_DEBUG"))
_out = None                   # (pid, socket): this process's connection to the node actor
_exports = {}                 # (kind, addr) -> handle: objects other nodes may name, kept alive


# ---- frames ----

_sock = None          # the node's socket name (set at boot: before or after the Ms' forks)


def _connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("\0" + _sock)
    return s


def send_frame(node, kind, body):
    """Write one frame to this node's actor (for node `node`), whole.  body: bytes, or the parts
    of an encoded message (written as they are: an array's buffer is not copied here)."""
    global _out
    m = mstate.current_m_or_none()
    if m is not None:
        m.locks += 1            # no goroutine switch inside a frame (mstate: signals wait for 0)
    try:
        if _out is None or _out[0] != os.getpid():
            _out = (os.getpid(), _connect())
        write_parts(_out[1], node, kind, body)
    finally:
        if m is not None:
            m.locks -= 1


def send(node, message):
    send_frame(node, PAYLOAD, encode(message))


# ---- values crossing nodes ----

_KINDS = {}          # handle class -> kind


def _kind_of(obj):
    t = type(obj)
    if t is _chan.SendChan or t is _chan.RecvChan:
        return "chan", obj._c._a, "send" if t is _chan.SendChan else "recv"
    k = _KINDS.get(t)
    return (k, obj._a, None) if k else None


def _local(kind, addr):
    h = mstate.current_m().heap
    p = h.ptr_at_checked(addr)
    return _chan.Chan(p) if kind == "chan" else (sema.WaitGroup(p) if kind == "wg" else sema.Mutex(p))


def _rebuild(kind, node, addr, view):
    if node == cluster.NODE:
        obj = _local(kind, addr)
        if view == "send":
            return obj.send_only()
        if view == "recv":
            return obj.recv_only()
        return obj
    cls = {"chan": RemoteChan, "wg": RemoteWaitGroup, "mutex": RemoteMutex}[kind]
    return cls(node, addr, view) if kind == "chan" else cls(node, addr)


class _Pickler(cloudpickle.Pickler):
    dispatch_table = _msg._PtrPickler.dispatch_table      # functions keep their source file's name

    def reducer_override(self, obj):
        ref = _kind_of(obj)
        if ref is not None:
            kind, addr, view = ref
            if (kind, addr) not in _exports:
                _exports[(kind, addr)] = obj        # kept alive: another node may name it
            return _rebuild, (kind, cluster.NODE, addr, view)
        if isinstance(obj, Remote):
            return _rebuild, (obj._kind, obj._node, obj._addr, getattr(obj, "_view", None))
        if isinstance(obj, Ptr):
            return _copy_in, (_copy_out(obj),)
        if type(obj).__module__.startswith("mprt.") and (hasattr(obj, "_p") or hasattr(obj, "_t")):
            # a runtime object living in this node's heap (RWMutex, Cond, Once, sync.Map, a map,
            # atomic.Value, a Timer): a copy would silently be another object
            raise pickle.PicklingError(f"mprt: a {type(obj).__name__} cannot cross nodes (channels, "
                                       f"WaitGroups and Mutexes can; heap Ptrs cross as copies)")
        return super().reducer_override(obj)


_META = struct.Struct("<I")


def encode(obj):
    """A message's body as parts: [buffer count and lengths, pickle, buffers...].  Arrays travel
    out of band (pickle protocol 5): their bytes are written from where they are, not copied into
    the pickle; on the way the node actor hands a large body to Ray as an array, so Ray's object
    store carries it."""
    f = io.BytesIO()
    bufs = []
    _Pickler(f, protocol=5, buffer_callback=bufs.append).dump(obj)
    raws = [b.raw() for b in bufs]
    meta = _META.pack(len(raws)) + b"".join(struct.pack("<Q", r.nbytes) for r in raws)
    return [meta, f.getbuffer(), *raws]


def decode(body):
    """The message of a body (a bytearray: the arrays made over it are writable, as a pickle's)."""
    mv = memoryview(body)
    k, = _META.unpack_from(mv)
    lens = struct.unpack_from(f"<{k}Q", mv, 4) if k else ()
    off = 4 + 8 * k
    end = len(mv) - sum(lens)
    bufs = []
    o = end
    for n in lens:
        bufs.append(mv[o:o + n])
        o += n
    return pickle.loads(mv[off:end], buffers=bufs)


# A Ptr crossing nodes is a deep copy: its object graph, each object as (type descriptor, pointer
# map, data bytes, slice length or -1, {pointer word offset: index of the object it points to}),
# made again on arrival in the receiving node's heap (Go has no pointers between machines).  Maps
# do not cross (their layout hashes with this runtime's seed): a map field is an error.

def _copy_out(p):
    h = p._t.heap
    index, objs, todo = {p._a: 0}, [], [p._a]
    while todo:
        a = todo.pop()
        t = h.typeinfo(h.tid_at(a))
        desc = types.read_desc(h, t.tid)
        if t.kind == types.K_STRUCT:
            for fname, (code, _, _) in t.fields.items():
                if code.startswith(types.MAP_PREFIX):
                    raise pickle.PicklingError(f"mprt: a map (field {t.name}.{fname}) cannot cross nodes")
            n, data = -1, h.arena_u8[a:a + t.size].tobytes()
            words = [int(o) for o in t.ptroffs]
        else:
            n = int(h.arena_i64[(h.object_end(a) - 8) >> 3])
            data = h.arena_u8[a:a + n * t.elemsize].tobytes()
            words = list(range(0, 8 * n, 8)) if t.elem is None else []
        links = {}
        for off in words:
            c = int(h.arena_i64[(a + off) >> 3])
            if c:
                if c not in index:
                    index[c] = len(index)
                    todo.append(c)
                links[off] = index[c]
        objs.append((index[a], desc, types.read_ptroffs(h, t.tid).tolist(), data, n, links))
    objs.sort(key=lambda o: o[0])
    return objs


def _copy_in(objs):
    from ..shm import malloc
    h = malloc.current()
    made = []                # Ptrs: every new object stays reachable until the graph is whole
    for _, desc, ptroffs, data, n, _ in objs:
        tid = types.register(h, desc, ptroffs)
        t = h.typeinfo(tid)
        if n < 0:
            a = h.alloc(t.objsize, tid, t.noscan)
        else:
            a = h.alloc(n * t.elemsize + 8, tid, t.noscan)
            h.arena_i64[(h.object_end(a) - 8) >> 3] = n
        p = t.make(a)
        b = np.frombuffer(data, dtype=np.uint8).copy()
        for off in (t.ptroffs if n < 0 else range(0, 8 * n, 8) if t.elem is None else ()):
            b[int(off):int(off) + 8] = 0      # the sender's addresses, never ours (nor the collector's)
        h.arena_u8[a:a + len(b)] = b
        made.append(p)
    for (_, _, _, _, _, links), p in zip(objs, made):
        for off, j in links.items():
            store_ptr(h, p._a + off, made[j]._a)
    return made[0]


# ---- remote handles ----

class Remote:
    """An object of another node: every operation is a request to it."""
    __slots__ = ("_node", "_addr")
    _kind = None

    def __init__(self, node, addr):
        self._node, self._addr = node, addr

    def _call(self, op, *args):
        return call(self._node, op, self._kind, self._addr, args)

    def __eq__(self, other):
        return isinstance(other, Remote) and (other._node, other._addr) == (self._node, self._addr)

    def __hash__(self):
        return hash((self._kind, self._node, self._addr))

    def __repr__(self):
        return f"<mprt remote {self._kind} {self._addr:#x} of node {self._node}>"


class RemoteChan(Remote):
    """A channel of another node (made there): the operations of mprt.Chan, each a request."""
    __slots__ = ("_view",)
    _kind = "chan"

    def __init__(self, node, addr, view=None):
        super().__init__(node, addr)
        self._view = view

    def _refuse(self, what, kind):
        raise TypeError(f"invalid operation: {what} ({kind})")

    def send(self, v):
        if self._view == "recv":
            self._refuse("send to receive-only channel", "receive from receive-only type <-chan")
        self._call("send", v)

    def recv2(self):
        if self._view == "send":
            self._refuse("receive from send-only channel", "receive from send-only type chan<-")
        return self._call("recv2")

    def recv(self):
        return self.recv2()[0]

    def close(self):
        if self._view == "recv":
            self._refuse("close of receive-only channel", "close of receive-only type <-chan")
        self._call("close")

    def __len__(self):
        return self._call("len")

    @property
    def cap(self):
        return self._call("cap")

    def __iter__(self):
        while True:
            v, ok = self.recv2()
            if not ok:
                return
            yield v

    def send_only(self):
        return RemoteChan(self._node, self._addr, "send")

    def recv_only(self):
        return RemoteChan(self._node, self._addr, "recv")


class RemoteWaitGroup(Remote):
    __slots__ = ()
    _kind = "wg"

    def add(self, delta):
        self._call("add", delta)

    def done(self):
        self._call("add", -1)

    def wait(self):
        self._call("wait")


class RemoteMutex(Remote):
    __slots__ = ()
    _kind = "mutex"

    def lock(self):
        self._call("lock")

    def unlock(self):
        self._call("unlock")

    def __enter__(self):
        self.lock()
        return self

    def __exit__(self, *exc):
        self.unlock()


def call(node, op, kind, addr, args):
    """One request to node `node`; the calling goroutine parks on its reply channel until the
    answer comes.  A panic there (send on a closed channel...) is raised here."""
    rc = _chan.make_chan(1)
    if _DEBUG:
        _dbg(f"call {op} {kind} {addr:#x} {args} on {node} reply {rc._a:#x}")
    send(node, ("req", cluster.NODE, rc._a, op, kind, addr, args))
    ok, v = rc.recv()
    if not ok:
        raise v
    return v


def _op(obj, op, args):
    if op == "send":
        return obj.send(*args)
    if op == "recv2":
        return obj.recv2()
    if op == "close":
        return obj.close()
    if op == "len":
        return len(obj)
    if op == "cap":
        return obj.cap
    if op == "add":
        return obj.add(*args)
    if op == "wait":
        return obj.wait()
    if op == "lock":
        return obj.lock()
    if op == "unlock":
        return obj.unlock()
    raise ValueError(f"mprt cluster: unknown operation {op!r}")


def _serve(src, reply, op, kind, addr, args):
    """A request of node src, done here by a goroutine of its own (it may block, as Go's would)."""
    if _DEBUG:
        _dbg(f"serve {op} {kind} {addr:#x} {args} for {src} reply {reply:#x}")
    try:
        if op == "select":
            v = _select_here(*args)
        elif op == "snapshot":
            v = _local_snapshot()
        else:
            v = _op(_local(kind, addr), op, args)
        ok = True
    except Panic as e:
        ok, v = False, e
    try:
        body = encode(("rep", reply, ok, v))
    except Exception as e:          # what it received cannot cross (a lock, a map): the caller's error
        body = encode(("rep", reply, False, pickle.PicklingError(str(e))))
    send_frame(src, PAYLOAD, body)


# ---- select with remote cases ----

def _case_of(c):
    """(channel, is_send, value) of a select case, or None for mprt.default."""
    if c is _chan.default:
        return None
    if isinstance(c, tuple) and len(c) == 2:
        return (getattr(c[0], "__self__", None), True, c[1])
    return (getattr(c, "__self__", None), False, None)


def remote_select(cases):
    """mprt.select's hook: None when no case is a remote channel's; else (index, value).
    All remote cases on one node and no local case: the whole select runs there (Go's semantics
    exactly).  Mixed: each round tries every case without blocking, in a random order of the
    nodes involved (this node's cases as one select with default, each other node's as one
    request); a blocking select waits between rounds (0.2 ms doubling to 5 ms), on its local cases
    if it has any."""
    parsed = [_case_of(c) for c in cases]
    if not any(p is not None and isinstance(p[0], RemoteChan) for p in parsed):
        return None
    dflt = next((i for i, p in enumerate(parsed) if p is None), -1)
    groups = {}
    for i, p in enumerate(parsed):
        if p is None:
            continue
        ch, is_send, v = p
        node = ch._node if isinstance(ch, RemoteChan) else cluster.NODE
        groups.setdefault(node, []).append((i, ch, is_send, v))
    if len(groups) == 1 and cluster.NODE not in groups and dflt < 0:
        (node, cs), = groups.items()
        j, v = call(node, "select", None, 0, ([(ch._addr, s, v) for _, ch, s, v in cs], False))
        return cs[j][0], v
    wait = 0.0002
    from .. import time as _time
    while True:
        order = list(groups)
        random.shuffle(order)
        for node in order:
            cs = groups[node]
            if node == cluster.NODE:
                j, v = _chan.select(*[(ch.send, v) if s else ch.recv for _, ch, s, v in cs], _chan.default)
            else:
                j, v = call(node, "select", None, 0, ([(ch._addr, s, v) for _, ch, s, v in cs], True))
            if 0 <= j < len(cs):
                return cs[j][0], v
        if dflt >= 0:
            return dflt, None
        local = groups.get(cluster.NODE)
        if local:
            t = _time.After(wait)
            j, v = _chan.select(*[(ch.send, v) if s else ch.recv for _, ch, s, v in local], t.recv)
            if j < len(local):
                return local[j][0], v
        else:
            proc.sleep(wait)
        wait = min(wait * 2, 0.005)


def _select_here(cases, nonblocking):
    chans = [(_local("chan", a), s, v) for a, s, v in cases]
    cs = [(ch.send, v) if s else ch.recv for ch, s, v in chans]
    if nonblocking:
        cs.append(_chan.default)
    return _chan.select(*cs)


# ---- stealing ----

def _serve_steal(src, n):
    """Node src is idle: give it up to n of this node's queued goroutines (half of them at most)."""
    m = mstate.current_m()
    batch = []
    for fn, args, kwargs in schedule.take_unstarted(m, n):
        if _DEBUG:
            _dbg(f"taken {getattr(fn, '__name__', fn)} {args}")
        if fn in _PINNED:
            proc.go(fn, *args, **kwargs)      # serves this node's objects: stays (never stolen)
        else:
            batch.append((fn, args, kwargs))
    try:
        body = encode(("gos", batch))
    except Exception:
        # something of theirs cannot cross nodes: they start here after all
        for fn, args, kwargs in batch:
            proc.go(fn, *args, **kwargs)
        body, batch = encode(("gos", [])), []
    send_frame(src, PAYLOAD if batch else IDLE, body)   # an empty answer wakes nothing


def _idle(m):
    """Every P idle (or the gateway's own, in its system call) and no goroutine queued."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    if q[s + S_GQSIZE]:
        return False
    for p in range(q[s + S_GOMAXPROCS]):
        b = ctl.p(p)
        st = q[b + P_STATUS]
        if not (st == P_IDLE or st == P_SYSCALL and q[b + P_M] == m.id) or not schedule.runqempty(m, p):
            return False
    return True


# ---- the gateway ----

def _quiet(m):
    """Nothing on this node can run without a message: no M busy but the gateway's own, no
    goroutine queued, no timer.  Returns (quiet, user goroutines)."""
    q, s = m.q, m.ctl.sched
    mt = schedule.mstates(m)
    st = mt[:, M_STATE].copy()
    st[m.id] = -1
    busy = ((st == MS_RUNNING) | (st == MS_STARTING) | (st == MS_SYSCALL) | (st == MS_GCSTOP)
            | (st == MS_NEEDP)).sum()
    quiet = (not busy and mt[:, M_NTIMERS].sum() == 0 and q[s + S_GQSIZE] == 0 and not m.localq
             and (mt[:, M_RQHEAD] == NONE).all()
             and all(schedule.runqempty(m, p) for p in range(q[s + S_GOMAXPROCS])))
    ngor = proc.numgoroutine(m) - (1 if cluster.NODE else 0)      # (a node runtime's main is not the program's)
    return bool(quiet), int(ngor)


class _Gateway:
    """The node's one reader of its socket.  It waits in a system call (its P goes to whoever
    needs it) and does there what needs no P: control messages, the quiet check, and asking for
    work when the node is idle; it takes a P only to start goroutines for the messages that came."""

    def __init__(self, stop):
        self.stop = stop
        self.sock = _connect()
        self.buf = bytearray()
        self.stealing = False
        self.backoff = STEAL_IDLE_S
        self.next_steal = 0.0
        self.victim = 0
        self.others = [n["id"] for n in cluster.NODES if n["id"] != cluster.NODE]

    def run(self):
        m = mstate.current_m()
        self._write(CONTROL, pickle.dumps(("hello", cluster.NODE, os.getpid(), m.rtid)))
        while True:
            proc.entersyscallblock()        # the P goes at once to whoever needs it
            try:
                todo = self._wait(m)
            finally:
                proc.exitsyscall()
            for src, kind, body in todo:
                self._handle(m, src, kind, body)

    def _write(self, kind, body, node=None):
        m = mstate.current_m()
        m.locks += 1
        try:
            write_parts(self.sock, cluster.NODE if node is None else node, kind, body)
        finally:
            m.locks -= 1

    def _wait(self, m):
        """In the system call: read until a message needs a P; returns those."""
        while True:
            timeout = None
            if self.others and not self.stealing:
                timeout = max(0.0, self.next_steal - time.monotonic()) or STEAL_IDLE_S
            self.sock.settimeout(timeout)
            try:
                b = self.sock.recv(1 << 20)
            except (TimeoutError, socket.timeout):
                b = None
                if time.monotonic() >= self.next_steal and _idle(m):
                    self._steal()
            if b == b"":
                return [(cluster.NODE, CONTROL, pickle.dumps(("lost", cluster.NODE, "its node actor is gone")))]
            if not b:
                continue
            self.buf += b
            todo = []
            while len(self.buf) >= HDR.size:
                n, src, kind = HDR.unpack_from(self.buf)
                if len(self.buf) < HDR.size + n:
                    break
                body = self.buf[HDR.size:HDR.size + n]        # a bytearray of its own
                del self.buf[:HDR.size + n]
                if kind == CONTROL and self._control_here(m, pickle.loads(body), todo):
                    continue
                todo.append((src, kind, body))
            if todo:
                return todo

    def _control_here(self, m, c, todo):
        """A control message that needs no P, done; False for the others.  The quiet check
        counts what this read brought and is not started yet (todo) as work."""
        if _DEBUG:
            os.write(2, f"[node {cluster.NODE} {time.monotonic():.3f}] control {c[0]}\n".encode())
        what = c[0]
        if what == "quiet?":
            quiet, ngor = _quiet(m)
            quiet = quiet and not todo
            self._write(CONTROL, pickle.dumps(("quiet", c[1], quiet, ngor)))
        elif what == "out":
            _write_all(c[1], c[2])
        else:
            return False
        return True

    def _steal(self):
        if _DEBUG:
            os.write(2, f"[node {cluster.NODE} {time.monotonic():.3f}] steal\n".encode())
        self.victim = (self.victim + 1) % len(self.others)
        self.stealing = True
        self._write(IDLE, encode(("steal", cluster.NODE, STEAL_MAX)), self.others[self.victim])

    def _handle(self, m, src, kind, body):
        if kind == CONTROL:
            return self._control(m, pickle.loads(body))
        msg = decode(body)
        what = msg[0]
        if _DEBUG:
            os.write(2, f"[node {cluster.NODE} {time.monotonic():.3f}] {what} from {src}\n".encode())
        if what == "req":
            proc.go(_serve, *msg[1:])
        elif what == "rep":
            _, reply, ok, v = msg
            if _DEBUG:
                _dbg(f"rep {reply:#x} {ok} {v}")
            _chan.Chan(m.heap.ptr_at_checked(reply)).send((ok, v))
        elif what == "steal":
            proc.go(_serve_steal, msg[1], msg[2])
        elif what == "gos":
            self.stealing = False
            batch = msg[1]
            if _DEBUG:
                _dbg(f"gos {[getattr(f, '__name__', f) for f, _, _ in batch]}")
            for fn, args, kwargs in batch:
                proc.go(fn, *args, **kwargs)
            if batch:
                self.backoff = STEAL_IDLE_S
                self.next_steal = 0.0
            else:
                self.backoff = min(self.backoff * 2, STEAL_BACKOFF_MAX_S)
                self.next_steal = time.monotonic() + self.backoff

    def _control(self, m, c):
        what = c[0]
        if what == "stop":
            self.stop.close()
        elif what == "deadlock":
            q, s = m.q, m.ctl.sched
            mstate.acq(m.schedlock)
            q[s + S_DEAD] = EXIT_DEADLOCK if c[1] else EXIT_GOEXIT
            mstate.wakem(m, 0)
            mstate.rel(m.schedlock)
        elif what == "end":
            mstate.request_exit(m, c[1], EXIT_OSEXIT)
        elif what == "lost":
            mstate.fatal(f"runtime: node {c[1]} lost: {c[2]}")


def _dbg(text):
    fd = os.open("/tmp/mprt-cluster-debug.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"[node {cluster.NODE} pid {os.getpid()} {time.monotonic():.4f}] {text}\n".encode())
    os.close(fd)


def _write_all(fd, b):
    while b:
        n = os.write(fd, b)
        b = b[n:]


def gateway(stop, sock, nodes):
    """The node's gateway goroutine (started at boot; a system goroutine in all but name)."""
    global _sock
    _sock = sock
    cluster.NODES = nodes
    m = mstate.current_m()
    m.q[m.ctl.sched + S_GATEWAYG] = m.curg + 1
    # an M of its own: started goroutines never move, and this one spends its life in a system
    # call, so any other goroutine started (or bound by _spread) here would wait for the next message
    proc.lock_os_thread()
    _Gateway(stop).run()


# ---- snapshots ----

def _local_snapshot():
    return local_snapshot()


def node_snapshots():
    """[(node id, snapshot)] of every node, this one's taken here."""
    out = []
    for n in cluster.NODES:
        if n["id"] == cluster.NODE:
            out.append((n, _local_snapshot()))
        else:
            out.append((n, call(n["id"], "snapshot", None, 0, ())))
    return out


# ---- the driver's side: start and stop ----

class Driver:
    """Node 0's link to the helper process (the Ray driver): a socketpair of JSON lines."""

    def __init__(self, mode, addr, shares):
        self.mode, self.addr, self.shares = mode, addr, shares
        self.proc = None
        self.sock = None
        self.log = None

    def start(self):
        import tempfile
        a, b = socket.socketpair()
        self.sock = a
        self.log = tempfile.TemporaryFile()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        args = {"mode": self.mode, "addr": self.addr, "shares": self.shares, "fd": b.fileno(),
                "cwd": os.getcwd(), "driver": os.getpid(), "path": [p for p in sys.path if p],
                "env": {k: v for k, v in os.environ.items()
                        if k.startswith(("GO", "MPRT_")) and k != "GOMAXPROCS"}}
        self.proc = subprocess.Popen([sys.executable, "-m", "mprt.cluster", "driver", json.dumps(args)],
                                     pass_fds=(b.fileno(),), stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, env=env,
                                     preexec_fn=_die_with_parent,
                                     start_new_session=True)    # a terminal's ^C is the program's, not Ray's
        b.close()
        self.rfile = a.makefile("rb")
        first = self._line()
        return first

    def _line(self):
        if mstate.current_m_or_none() is None or _coordinator_missing():
            line = self.rfile.readline()
        else:
            with proc.syscall():
                line = self.rfile.readline()
        if not line:
            self.log.seek(0)
            tail = self.log.read()[-4000:].decode(errors="replace")
            raise RuntimeError(f"mprt: the cluster did not start (MPRT_CLUSTER={os.environ.get('MPRT_CLUSTER')}):"
                               f"\n{tail}")
        d = json.loads(line)
        if "error" in d:
            raise RuntimeError(f"mprt: the cluster did not start: {d['error']}")
        return d

    def wait_ready(self):
        return self._line()

    def stop(self, timeout=30.0):
        if self.proc is None:
            return
        try:
            self.sock.sendall(b'{"stop": true}\n')
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.sock.close()
        self.log.close()
        self.proc = None


def _coordinator_missing():
    m = mstate.current_m()
    return m.q[m.ctl.sched + S_COORDPID] <= 0


def _die_with_parent():
    import ctypes
    import signal
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG


_driver = None


def start_driver(config, cpus):
    """Node 0 (the driver's runtime), before the coordinator's fork (so that every process of the
    runtime knows its node and the nodes): start the helper, which starts or joins the cluster and
    places the node actors, and learn node 0's socket."""
    global _driver, _sock
    import importlib.util
    if importlib.util.find_spec("ray") is None:
        raise RuntimeError(f"MPRT_CLUSTER={os.environ.get('MPRT_CLUSTER')}: cluster mode needs Ray "
                           f"(pip install 'mprt[cluster]')")
    mode, addr = config
    shares = cluster.local_shares(cpus, addr) if mode == "local" else None
    _driver = Driver(mode, addr, shares)
    try:
        first = _driver.start()
    except BaseException:
        stop_driver()
        raise
    cluster.NODE = 0
    cluster.NODES = first["nodes"]
    _sock = first["sock"]


def connect_driver():
    """Node 0, once the runtime runs: start the gateway and wait for every node."""
    proc.go(gateway, None, _sock, cluster.NODES)
    _driver.wait_ready()


def stop_driver():
    global _driver
    d, _driver = _driver, None
    if d is not None:
        d.stop()
    cluster.NODE = None
    cluster.NODES = []
    _exports.clear()


# ---- a node runtime's main ----

def node_main():
    stop = _chan.make_chan()
    proc.go(gateway, stop, os.environ["MPRT_CLUSTER_SOCK"], cluster.NODES)
    for _ in stop:
        pass


def setup_node_from_env():
    """In a node runtime: this node's id and the cluster's nodes, from the environment."""
    global _sock
    _sock = os.environ["MPRT_CLUSTER_SOCK"]
    cluster.NODE = int(os.environ["MPRT_NODE"])
    cluster.NODES = json.loads(os.environ["MPRT_CLUSTER_NODES"])


_PINNED = (_serve, _serve_steal, gateway)
_KINDS.update({_chan.Chan: "chan", sema.WaitGroup: "wg", sema.Mutex: "mutex"})
_chan.set_remote_select(remote_select)
set_node_snapshots(node_snapshots)
