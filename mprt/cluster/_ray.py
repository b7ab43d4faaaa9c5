"""Ray's side of cluster mode: the helper (the Ray driver) and the node actors.  Imported only in
cluster mode, by the helper process and by Ray's worker processes, never by a runtime's.

The helper (`python -m mprt.cluster driver ARGS`, started by node 0's M0, dies with it) starts a
local Ray cluster (local:N, ray.cluster_utils.Cluster, one Ray node per share of the CPUs) or joins
one (auto, ray://), places one NodeActor on each node (node affinity, no CPU reserved: the node
runtime's Ms are what use the CPUs), and tells M0 the name of node 0's socket and the nodes.  Then
every PROBE_S it probes every actor: a dead actor is a lost node; a node runtime that ended is
reported by its actor itself (after its output); every node quiet with the same message counts in
two probes in a row is a deadlock.  On M0's stop (or its death) it stops the node runtimes, kills
the actors and ends the cluster it started.

A NodeActor listens on the node's socket (abstract namespace), starts the node runtime (k >= 1:
`python -m mprt.cluster node`, pinned to the node's CPUs, dying with the actor), and moves frames:
out of the runtime (any connection's reader thread makes the Ray calls to the other actors itself,
batched per destination: a connection's frames keep their order, as Ray keeps a caller's), and out
of Ray calls into the gateway's connection.  Node k's stdout and stderr are forwarded to node 0, which writes them to the driver's.
"""
import json
import os
import pickle
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import ray

from .. import cluster as _cl

PROBE_S = 0.1
BIG = 100 * 1024          # a frame this large goes to Ray as an array: Ray's object store carries it
QUIET_ROUNDS = 3          # answers in a row: every node quiet, the same counts, all sent received
PROBE_TIMEOUT_S = 5.0


@ray.remote(num_cpus=0, max_concurrency=1)
class NodeActor:
    def __init__(self, k, sock, node_env, cpus, path, cwd):
        self.k = k
        self.sock = sock
        self.peers = None
        self.peered = threading.Event()
        self.gw = None              # the gateway's connection
        self.gw_lock = threading.Lock()
        self.hello = threading.Event()
        self.asked = self.last = None
        self.quiet_lock = threading.Lock()
        self.sent = self.recvd = 0
        self.count_lock = threading.Lock()
        self.to0 = queue.Queue()     # control messages for node 0 (_sender)
        self.ended = None
        self.rtid = None
        self.proc = None
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind("\0" + sock)
        self.lsock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()
        threading.Thread(target=self._sender, daemon=True).start()
        if k > 0:
            env = dict(os.environ)
            env.update(node_env)
            env.update({"MPRT_NODE": str(k), "MPRT_CLUSTER_SOCK": sock, "GOMAXPROCS": str(len(cpus)),
                        "PYTHONPATH": os.pathsep.join(path)})
            env.pop("MPRT_CLUSTER", None)
            self.proc = subprocess.Popen([sys.executable, "-m", "mprt.cluster", "node"], cwd=cwd, env=env,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE,
                                         preexec_fn=lambda: _child_setup(cpus))
            self.pumps = [threading.Thread(target=self._pump, args=(f, fd), daemon=True)
                          for f, fd in ((self.proc.stdout, 1), (self.proc.stderr, 2))]
            for t in self.pumps:
                t.start()
            threading.Thread(target=self._watch, daemon=True).start()

    def runtime_id(self):
        return self.rtid

    def set_peers(self, peers):
        self.peers = peers
        self.peered.set()

    def wait_hello(self, timeout):
        return self.hello.wait(timeout)

    # frames in from the runtime
    def _accept(self):
        while True:
            c, _ = self.lsock.accept()
            threading.Thread(target=self._reader, args=(c,), daemon=True).start()

    def _reader(self, c):
        buf = bytearray()
        out = {}
        while True:
            try:
                b = c.recv(1 << 20)
            except OSError:
                return
            if not b:
                return
            buf += b
            while len(buf) >= _cl.HDR.size:
                n, node, kind = _cl.HDR.unpack_from(buf)
                if len(buf) < _cl.HDR.size + n:
                    break
                body = bytes(buf[_cl.HDR.size:_cl.HDR.size + n])
                del buf[:_cl.HDR.size + n]
                if n >= BIG:
                    body = np.frombuffer(body, dtype=np.uint8)     # Ray's object store carries it
                if kind == _cl.PAYLOAD or kind == _cl.IDLE:
                    out.setdefault((node, kind), []).append(body)
                else:
                    self._from_runtime(c, pickle.loads(body))
            for (node, kind), bodies in out.items():
                # straight from this thread: one connection's frames keep their order (Ray keeps a
                # caller's order), and no hop to another thread waits for the GIL
                if kind == _cl.PAYLOAD:
                    with self.count_lock:
                        self.sent += len(bodies)
                self.peers[node].deliver.remote(self.k, bodies, kind)
            out.clear()

    def _from_runtime(self, c, msg):
        if msg[0] == "hello":
            self.rtid = msg[3]
            self.gw = c
            self.hello.set()
        elif msg[0] == "quiet":
            with self.quiet_lock:
                if self.asked and self.asked[0] == msg[1]:
                    self.last = (msg[2], msg[3], self.asked[1], self.asked[2])

    def _sender(self):
        """Node k's output and its ending, for node 0, in the order they happened (one thread)."""
        while True:
            msg = self.to0.get()
            self.peered.wait()          # node k may print before set_peers has come
            self.peers[0].control.remote(msg)

    # frames out to the runtime
    def _write(self, kind, src, body):
        with self.gw_lock:
            self.gw.sendall(_cl.HDR.pack(len(body), src, kind) + body)

    def deliver(self, src, bodies, kind):
        """Messages from node src for this node's runtime.  The deadlock check counts those of
        kind PAYLOAD, not IDLE ones (a steal request, an empty answer: they wake nothing, and an
        idle cluster keeps exchanging them)."""
        self.hello.wait()
        with self.gw_lock:
            for b in bodies:
                _cl.write_parts(self.gw, src, _cl.PAYLOAD, [b])
            if kind == _cl.PAYLOAD:
                self.recvd += len(bodies)

    def control(self, msg):
        self.hello.wait()
        self._write(_cl.CONTROL, self.k, pickle.dumps(msg))

    def probe(self, token):
        """(ended or None, quiet, goroutines, sent, received): the runtime's answer to the previous
        probe (with the counts taken when it was asked), and a new question.  Never waits."""
        if self.ended is not None:
            return self.ended, True, 0, self.sent, self.recvd
        with self.quiet_lock:
            last, self.last = self.last, None
            self.asked = (token, self.sent, self.recvd)
        if self.gw is not None:
            self._write(_cl.CONTROL, self.k, pickle.dumps(("quiet?", token)))
        return (None, *last) if last else (None, False, -1, -1, -1)

    # node k's runtime
    def _pump(self, f, fd):
        while True:
            b = f.read1(65536)
            if not b:
                return
            self.to0.put(("out", fd, b))

    def _watch(self):
        code = self.proc.wait()
        for t in self.pumps:
            t.join()
        _reap({self.rtid})          # a runtime killed whole leaves its segments: its node's job
        if code < 0:
            why = f"its runtime died of signal {signal.Signals(-code).name}"
            self.ended = ("lost", why)
            self.to0.put(("lost", self.k, why))
        else:
            self.ended = ("end", code)
            if code:
                self.to0.put(("end", code))

    def stop(self, timeout):
        if self.proc is None:
            return 0
        if self.proc.poll() is None and self.gw is not None:
            try:
                self._write(_cl.CONTROL, self.k, pickle.dumps(("stop",)))
            except OSError:
                pass
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def _reap(rtids):
    from ..shm import segment
    rtids = {r for r in rtids if r}
    if rtids:
        segment.reap_dead(rtids)


def _dbg(text):
    if os.environ.get("MPRT_CLUSTER_DEBUG"):
        with open("/tmp/mprt-cluster-debug.log", "a") as f:
            f.write(f"[helper {time.time():.3f}] {text}\n")


def _child_setup(cpus):
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)     # dies with its actor
    os.setsid()
    if cpus:
        os.sched_setaffinity(0, cpus)


# ---- the helper ----

class Helper:
    def __init__(self, args):
        self.args = args
        self.out = socket.socket(fileno=args["fd"])
        self.cluster = None
        self.actors = []
        self.nodes = []
        self.rtids = []

    def say(self, **d):
        self.out.sendall((json.dumps(d) + "\n").encode())

    def start(self):
        a = self.args
        _dbg("helper start")
        quiet = {"logging_level": "ERROR", "log_to_driver": False, "configure_logging": False}
        if a["mode"] == "local":
            from ray.cluster_utils import Cluster
            shares = a["shares"]
            store = 80 * 1024 * 1024
            self.cluster = Cluster(initialize_head=True, head_node_args={
                "num_cpus": len(shares[0]), "include_dashboard": False, "object_store_memory": store})
            for s in shares[1:]:
                self.cluster.add_node(num_cpus=len(s), object_store_memory=store)
            ray.init(address=self.cluster.address, **quiet)
            self.cluster.wait_for_nodes()
            _dbg("cluster up")
        elif a["mode"] == "auto":
            ray.init(address="auto", **quiet)
        else:
            ray.init(address=a["addr"], **quiet)
        rnodes = [n for n in ray.nodes() if n.get("Alive")]
        me = ray.get_runtime_context().get_node_id()
        rnodes.sort(key=lambda n: (n["NodeID"] != me, n["NodeID"]))
        if a["mode"] == "local":
            # the head is node 0 (the driver's); the others in the order they were added
            order = {n.unique_id: i for i, n in enumerate([self.cluster.head_node, *self.cluster.worker_nodes])}
            rnodes.sort(key=lambda n: order.get(n["NodeID"], len(order)))
            cpus_of = a["shares"]
        else:
            cpus_of = None
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        tag = f"mprt.{a['driver']}.{os.getpid()}"
        for k, rn in enumerate(rnodes):
            ncpu = int(rn["Resources"].get("CPU", 1)) or 1
            cpus = cpus_of[k] if cpus_of else []
            self.nodes.append({"id": k, "host": rn["NodeManagerAddress"], "ncpu": ncpu if not cpus else len(cpus),
                               "procs": ncpu if not cpus else len(cpus)})
        env = dict(a["env"])
        env["MPRT_CLUSTER_NODES"] = json.dumps(self.nodes)
        for k, rn in enumerate(rnodes):
            cpus = cpus_of[k] if cpus_of else []
            act = NodeActor.options(scheduling_strategy=NodeAffinitySchedulingStrategy(rn["NodeID"], soft=False),
                                    name=f"{tag}.n{k}").remote(k, f"{tag}.n{k}", env, cpus, a["path"], a["cwd"])
            self.actors.append(act)
        ray.get([x.set_peers.remote(self.actors) for x in self.actors])
        _dbg("actors up")
        # node 0's socket: the driver's gateway connects to it
        self.say(sock=f"{tag}.n0", nodes=self.nodes)
        ok = ray.get([x.wait_hello.remote(120.0) for x in self.actors])
        if not all(ok):
            raise RuntimeError("a node runtime did not start")
        _dbg("nodes up")
        self.rtids = ray.get([x.runtime_id.remote() for x in self.actors])
        self.say(ready=True)

    def run(self):
        token = 0
        prev = None
        rounds = 0
        while True:
            r, _, _ = select.select([self.out], [], [], PROBE_S)
            if r:
                b = self.out.recv(4096)
                if not b or b"stop" in b:
                    return
            token += 1
            refs = [x.probe.remote(token) for x in self.actors]
            res = []
            for k, ref in enumerate(refs):
                try:
                    res.append(ray.get(ref, timeout=PROBE_TIMEOUT_S))
                except ray.exceptions.GetTimeoutError:
                    res.append((None, False, -1, -1, -1))
                except ray.exceptions.RayActorError as e:
                    self._lost(k, f"its node actor died ({type(e).__name__})")
                    return self._wait_stop()
            if any(x[0] is not None for x in res):
                return self._wait_stop()        # its actor told node 0 (after its output)
            quiet = all(x[1] for x in res)
            counts = (sum(x[3] for x in res), sum(x[4] for x in res))
            if quiet and counts[0] == counts[1] and counts == prev:
                rounds += 1
                if rounds >= QUIET_ROUNDS - 1:
                    ngor = sum(x[2] for x in res)
                    self.actors[0].control.remote(("deadlock", ngor > 0))
                    return self._wait_stop()
            else:
                rounds = 0
            prev = counts if quiet else None

    def _lost(self, k, why):
        try:
            ray.get(self.actors[0].control.remote(("lost", k, why)), timeout=PROBE_TIMEOUT_S)
        except Exception:
            pass

    def _wait_stop(self):
        while True:
            b = self.out.recv(4096)
            if not b or b"stop" in b:
                return

    def stop(self):
        refs = [x.stop.remote(10.0) for x in self.actors[1:]]
        for ref in refs:
            try:
                ray.get(ref, timeout=15.0)
            except Exception:
                pass
        for x in self.actors:
            try:
                ray.kill(x)
            except Exception:
                pass
        try:
            ray.shutdown()
        except Exception:
            pass
        if self.cluster is not None:
            try:
                self.cluster.shutdown()
            except Exception:
                pass
            # every node is this machine: what a runtime killed with its actor left is ours to remove
            _reap(set(self.rtids[1:]))


def helper_main(args):
    signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(SystemExit(1)))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    h = Helper(args)
    try:
        try:
            h.start()
        except Exception as e:
            h.say(error=f"{type(e).__name__}: {e}")
            return
        h.run()
    finally:
        h.stop()


__all__ = ["NodeActor", "helper_main"]
