"""sched.current() and sched.snapshot(): the scheduler's state as plain objects (what
GODEBUG=schedtrace/scheddetail print).  Read without the sched lock: a snapshot is a moment's view,
each word consistent, the whole not necessarily so."""
import os
import socket
import threading

from .. import cluster as _cluster
from . import mstate, proc
from .ctl import (
    G_GOID,
    M_CURG,
    M_LOCKEDG,
    M_P,
    M_PID,
    M_SPINNING,
    M_STATE,
    M_TID,
    MS_RUNNING,
    MSTATE_NAMES,
    NONE,
    P_M,
    P_RQHEAD,
    P_RQTAIL,
    P_STATUS,
    S_GOMAXPROCS,
    S_GQSIZE,
    S_MCOUNT,
)


class _Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


class Current(_Obj):
    """The calling goroutine: goid, mid, pid, tid, cpu."""


class Snapshot(_Obj):
    """gomaxprocs, goroutines, runqueue, ms, ps."""


class MInfo(_Obj):
    """id, pid, tid, affinity, p, curg, lockedg, state."""


class NodeInfo(_Obj):
    """id, host, ncpu, ms, ps (cluster mode: every node; else the one machine as node 0)."""


class PInfo(_Obj):
    """id, status, runqsize, m."""


def current():
    m = mstate.current_m()
    g = m.curg
    return Current(goid=int(m.q[m.ctl.g(g) + G_GOID]) if g != NONE else None, mid=m.id, pid=os.getpid(),
                   tid=threading.get_native_id(), cpu=proc.cpu_now(), node=_cluster.NODE or 0)


def snapshot():
    """This runtime's Ms and Ps; in cluster mode gomaxprocs, goroutines and runqueue count every
    node, and `nodes` lists each node with its Ms (whose `node` says which), `ms` all of them."""
    m = mstate.current_m()
    if _cluster.NODE is None:
        s = snapshot_from(m)
        s.nodes = [NodeInfo(id=0, host=socket.gethostname(), ncpu=len(m.cpus), ms=s.ms, ps=s.ps)]
        return s
    parts = node_snapshots()
    nodes = []
    for n, s in parts:
        for mi in s.ms:
            mi.node = n["id"]
        nodes.append(NodeInfo(id=n["id"], host=n["host"], ncpu=n["ncpu"], ms=s.ms, ps=s.ps))
    here = next(s for n, s in parts if n["id"] == _cluster.NODE)
    return Snapshot(gomaxprocs=sum(s.gomaxprocs for _, s in parts), goroutines=sum(s.goroutines for _, s in parts),
                    runqueue=sum(s.runqueue for _, s in parts), ms=[mi for _, s in parts for mi in s.ms],
                    ps=here.ps, nodes=nodes)


node_snapshots = None     # cluster mode: [(node, its snapshot)] of every node (mprt/cluster/node.py)


def set_node_snapshots(f):
    global node_snapshots
    node_snapshots = f


def local_snapshot():
    """This node's snapshot alone (cluster mode: what another node asks for)."""
    s = snapshot_from(mstate.current_m())
    for mi in s.ms:
        mi.node = _cluster.NODE or 0
    return s


def _goid(q, ctl, g):
    return None if g == NONE else int(q[ctl.g(g) + G_GOID])


def snapshot_from(m):
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    n = q[s + S_GOMAXPROCS]
    ms = []
    for mid in range(q[s + S_MCOUNT]):
        r = ctl.m(mid)
        pid = q[r + M_PID]
        try:
            aff = os.sched_getaffinity(pid) if pid > 0 else set()
        except OSError:
            aff = set()
        st = q[r + M_STATE]
        word = MSTATE_NAMES[st] if 0 <= st < len(MSTATE_NAMES) else "?"
        if st == MS_RUNNING and q[r + M_SPINNING]:
            word = "spinning"
        p = q[r + M_P]
        ms.append(MInfo(id=mid, node=_cluster.NODE or 0, pid=int(pid), tid=int(q[r + M_TID]), affinity=aff,
                        p=None if p == NONE else int(p), curg=_goid(q, ctl, q[r + M_CURG]),
                        lockedg=_goid(q, ctl, q[r + M_LOCKEDG]), state=word))
    ps = []
    for p in range(n):
        b = ctl.p(p)
        mm = q[b + P_M]
        ps.append(PInfo(id=p, status=int(q[b + P_STATUS]), runqsize=int(q[b + P_RQTAIL] - q[b + P_RQHEAD]),
                        m=None if mm == NONE else int(mm)))
    ngor = proc.numgoroutine(m)
    return Snapshot(gomaxprocs=int(n), goroutines=ngor, runqueue=int(q[s + S_GQSIZE]), ms=ms, ps=ps)


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
