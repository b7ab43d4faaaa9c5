"""Cluster mode: one program over the nodes of a Ray cluster (MPRT_CLUSTER).

    driver's node (node 0)                          node k (k >= 1)
      M0: main, the node-0 runtime                    node runtime: `python -m mprt.cluster node`,
      gateway goroutine <-socket-> node actor 0       an mprt runtime of its own (Ms pinned to the
      helper (`python -m mprt.cluster driver`):       node's CPUs, its heap, its collector) whose
        the Ray driver: starts or joins the           main waits for the end; gateway goroutine
        cluster, places one node actor per node,      <-socket-> node actor k (a Ray actor, which
        watches them, decides deadlock and loss       started the node runtime and forwards its
                                                      output to node 0)

Every node runtime is a whole mprt runtime; nothing is shared between nodes but messages, and every
message between nodes is a Ray actor call between node actors (node.py: `deliver`), batched per
destination.  Inside a node, a node runtime's processes reach their node actor over a local Unix
socket (abstract namespace: nothing on disk): any M writes frames out, the gateway goroutine (in a
system call while it waits, as Go's netpoller's thread) reads what comes in.  Ray is imported only
by the helper and the node actors (_ray.py), never by a runtime's processes.

Objects stay on the node that made them: a channel, WaitGroup or Mutex that crosses nodes (as a
goroutine's argument, or a value on a channel) arrives as a remote handle naming its node and
address; each operation on it is a request to that node, served there by a goroutine of its own
that does the operation with Go's semantics (it may block), then replies.  The exported object is
kept alive by the process that exported it until the program ends.  Values are copied (pickled);
a heap Ptr crossing nodes is a deep copy of its object graph into the receiving node's heap.

Scheduling across nodes is Go's stealing at a coarser grain: a node whose Ps are all idle and whose
queues are empty asks another node for not-started goroutines; that node gives half of its queued
ones (at most 256) as one batch.  Started goroutines never move (as within a node).

Endings: a node runtime's report goes to the driver's stderr with its node named in the goroutine
header; a node that ends (panic, fatal error, os.Exit) ends the program with its status; a node
lost (its processes gone, its actor dead) is `fatal error: runtime: node N lost: ...`; the helper
declares a deadlock when every node is quiet (no goroutine runnable, running or sleeping) and the
message counts of two probes in a row agree (nothing in flight).
"""
import os
import re
import struct

_RE_LOCAL = re.compile(r"local:(\d+)$")
_RE_RAY = re.compile(r"ray://[^\s:/]+:\d+$")

HDR = struct.Struct("<IiB")      # a local frame: body length, node, kind
PAYLOAD, CONTROL, IDLE = 0, 1, 2    # IDLE: a payload that wakes nothing (uncounted: see _ray.py)

NODE = None          # this runtime's node id in cluster mode (0 = the driver's), else None
NODES = []           # [{"id", "host", "ncpu", "procs"}] of every node, in cluster mode


def parse(value):
    """MPRT_CLUSTER's value: None (one machine), ("local", n), ("auto", None) or ("ray", address)."""
    if value is None or value == "":
        return None
    m = _RE_LOCAL.match(value)
    if m:
        n = int(m.group(1))
        if n < 1:
            raise ValueError(f"MPRT_CLUSTER={value!r}: a local cluster needs at least one node")
        return ("local", n)
    if value == "auto":
        return ("auto", None)
    if _RE_RAY.match(value):
        return ("ray", value)
    raise ValueError(f"MPRT_CLUSTER={value!r}: want local:N, auto or ray://HOST:PORT")


def describe(env=None):
    """What `mprt env` prints for MPRT_CLUSTER."""
    v = (os.environ if env is None else env).get("MPRT_CLUSTER")
    c = parse(v)
    if c is None:
        return "unset: one machine"
    if c[0] == "local":
        return f"a Ray cluster of {c[1]} nodes started on this machine, each with its share of the CPUs"
    return "join a running Ray cluster: a node runtime on each of its nodes"


def active():
    return NODE is not None


def total_procs():
    return sum(n["procs"] for n in NODES)


def total_cpus():
    return sum(n["ncpu"] for n in NODES)


def local_shares(cpus, n):
    """The CPUs of each of n local nodes: consecutive equal shares of `cpus` (every node at least one;
    with fewer CPUs than nodes they are dealt round)."""
    cpus = sorted(cpus)
    if len(cpus) >= n:
        k = len(cpus) // n
        return [cpus[i * k:(i + 1) * k] if i < n - 1 else cpus[i * k:] for i in range(n)]
    return [[cpus[i % len(cpus)]] for i in range(n)]


def write_parts(sock, node, kind, body):
    """Write one frame (header, then body: bytes or a list of bytes-like parts) on a local socket,
    whole, from where the parts are (sendmsg: no copy into one buffer first)."""
    parts = [body] if isinstance(body, (bytes, bytearray)) else body
    views = [memoryview(p).cast("B") for p in parts]
    n = sum(v.nbytes for v in views)
    views.insert(0, memoryview(HDR.pack(n, node, kind)))
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= views[0].nbytes:
            sent -= views[0].nbytes
            views.pop(0)
        if views and sent:
            views[0] = views[0][sent:]
