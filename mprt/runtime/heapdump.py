"""debug.WriteHeapDump: Go 1.9's heap dump format (heapdump.go), from mprt's heap.

The file is "go1.7 heap dump\\n" and then records, each a varint tag and its fields (varints,
and strings as a varint length and the bytes), in Go's order:

    params       byte order, pointer size, the arena's start and end, GOARCH, GOEXPERIMENT, NumCPU
    objects      every allocated object: its address, its bytes, and its pointer fields (kind 1 and
                 the offset each, kind 0 to end), from every in-use span
    goroutines   each goroutine that exists: its G (the row's index), its id, its status, whether it
                 is the runtime's own, its wait reason, its M
    OS threads   each M: its row, its id, its process id
    memstats     MemStats' fields in Go's dumpmemstats order, the 256 pauses, NumGC
    EOF

Where mprt has no counterpart the field is 0 (a goroutine's stack pointer and creating PC, its
defer and panic records); there are no type, itab, root or stack-frame records, as mprt's objects
carry their pointer maps themselves.  The sweep of the last cycle is waited for first (Go sweeps
every span before it dumps), and the world is stopped while the dump is written.
"""
import os

import numpy as np

from .. import runtime
from ..sched import ctl as _ctl
from ..sched import mstate as _mstate
from ..sched import proc as _proc
from ..sched import stw as _stw
from ..sched.tracefmt import put_uvarint, read_uvarint
from ..shm import layout as _layout
from ..shm import malloc as _malloc
from ..shm.sizeclasses import PAGE_SHIFT, class_to_nobjs, class_to_size
from ..shm.types import K_STRUCT

HEADER = b"go1.7 heap dump\n"
(TAG_EOF, TAG_OBJECT, TAG_OTHERROOT, TAG_TYPE, TAG_GOROUTINE, TAG_STACKFRAME, TAG_PARAMS, TAG_FINALIZER, TAG_ITAB,
 TAG_OSTHREAD, TAG_MEMSTATS) = range(11)
FIELD_EOL, FIELD_PTR = 0, 1
_MEMSTATS = ("Alloc", "TotalAlloc", "Sys", "Lookups", "Mallocs", "Frees", "HeapAlloc", "HeapSys", "HeapIdle",
             "HeapInuse", "HeapReleased", "HeapObjects", "StackInuse", "StackSys", "MSpanInuse", "MSpanSys",
             "MCacheInuse", "MCacheSys", "BuckHashSys", "GCSys", "OtherSys", "NextGC", "LastGC", "PauseTotalNs")


class _Out:
    def __init__(self, fd):
        self.fd, self.buf = fd, bytearray()

    def int(self, v):
        put_uvarint(self.buf, int(v))

    def str(self, s):
        data = s.encode() if isinstance(s, str) else bytes(s)
        self.int(len(data))
        self.buf += data
        if len(self.buf) >= 1 << 20:
            self.flush()

    def flush(self):
        mv = memoryview(self.buf)
        while mv:
            n = os.write(self.fd, mv)
            mv = mv[n:]
        self.buf = bytearray()


def _objects(h):
    """[(address, size, tid)] of every allocated object, span by span."""
    npages = int(h.hdr[_layout.H_ARENA_PAGES])
    pages = np.arange(npages)
    spanof = np.asarray(h.spanof[:npages])
    heads = np.flatnonzero((spanof == pages) & (np.asarray(h.s_state[:npages]) == _layout.S_INUSE))
    out = []
    for s in heads.tolist():
        cls = int(h.s_sc[s]) >> 1
        base = s << PAGE_SHIFT
        if cls == 0:
            tid = int(h.s_tid[s])
            if tid:
                out.append((base, int(h.s_npages[s]) << PAGE_SHIFT, tid))
            continue
        size, n = class_to_size[cls], class_to_nobjs[cls]
        m0 = int(h.s_meta[s]) >> 1
        tids = h.meta_tid[m0:m0 + n]
        for i in np.flatnonzero(tids).tolist():
            out.append((base + i * size, size, int(tids[i])))
    return out


def write(fd):
    """Write the dump to the open file descriptor fd (debug.WriteHeapDump)."""
    if isinstance(fd, bool) or not isinstance(fd, int) or fd < 0:
        raise TypeError(f"debug.WriteHeapDump: {fd!r} is not a file descriptor")
    m = _mstate.current_m()
    h = _malloc.current()
    ms = runtime.MemStats()
    runtime.ReadMemStats(ms)
    gc = h.gc
    for _ in range(2000):                 # the last cycle's sweep (the coordinator does it)
        if gc[_layout.GC_DONE] >= gc[_layout.GC_STARTED]:
            break
        _proc.sleep(0.001)
    out = _Out(fd)
    t0 = _stw.stop_the_world(m, "write heap dump")
    try:
        q, ctl, s = m.q, m.ctl, m.ctl.sched
        out.buf += HEADER
        out.int(TAG_PARAMS)
        out.int(0)                                      # little-endian
        out.int(8)
        out.int(0)
        out.int(int(h.hdr[_layout.H_ARENA_PAGES]) << PAGE_SHIFT)
        out.str(runtime.GOARCH)
        out.str("")
        out.int(q[s + _ctl.S_NCPU])
        ptroffs = {}
        for a, size, tid in _objects(h):
            out.int(TAG_OBJECT)
            out.int(a)
            out.str(h.arena_u8[a:a + size].tobytes())
            offs = ptroffs.get(tid)
            if offs is None:
                t = h.typeinfo(tid)
                if t.kind == K_STRUCT:
                    offs = ptroffs[tid] = [int(o) for o in t.ptroffs]
                else:
                    offs = (h.pointer_slots(np.array([a], dtype=np.int64)) - a).tolist()
            for o in offs:
                out.int(FIELD_PTR)
                out.int(o)
            out.int(FIELD_EOL)
        system = set()
        tg = q[s + _ctl.S_TIMERG] - 1
        if tg >= 0:
            system.add(tg)
        if _layout.fing_system(h):
            system.add(int(gc[_layout.GC_FING]) - 1)
        for g in range(q[s + _ctl.S_NGALLOC]):
            r = ctl.g(g)
            st = q[r + _ctl.G_STATUS]
            if st == _ctl.G_DEAD or q[r + _ctl.G_GOID] <= 0:
                continue
            out.int(TAG_GOROUTINE)
            out.int(g)
            out.int(0)
            out.int(q[r + _ctl.G_GOID])
            out.int(0)
            out.int(st)
            out.int(1 if g in system else 0)
            out.int(0)
            out.int(q[r + _ctl.G_WAITSINCE])
            out.str(_proc.wait_reason(q[r + _ctl.G_WAIT]) if st == _ctl.G_WAITING else "")
            out.int(0)
            out.int(max(q[r + _ctl.G_M], 0))
            out.int(0)
            out.int(0)
        for mid in range(_mstate.mcount(m)):
            r = ctl.m(mid)
            if q[r + _ctl.M_STATE] in (_ctl.MS_FREE, _ctl.MS_DEAD):
                continue
            out.int(TAG_OSTHREAD)
            out.int(r)
            out.int(mid)
            out.int(q[r + _ctl.M_PID])
        out.int(TAG_MEMSTATS)
        for f in _MEMSTATS:
            out.int(getattr(ms, f))
        for p in ms.PauseNs:
            out.int(p)
        out.int(ms.NumGC)
        out.int(TAG_EOF)
    finally:
        _stw.start_the_world(m, t0)
    out.flush()


def read(data):
    """Parse a dump (tests, and a user's own look): {"params", "objects": [(addr, bytes, offsets)],
    "goroutines": [dict], "threads": [...], "memstats": [...]}."""
    if not data.startswith(HEADER):
        raise ValueError("not a heap dump (no 'go1.7 heap dump' header)")
    i = len(HEADER)

    def uv():
        nonlocal i
        v, i = read_uvarint(data, i)
        return v

    def st():
        nonlocal i
        n = uv()
        s = data[i:i + n]
        i += n
        return s

    res = {"objects": [], "goroutines": [], "threads": []}
    while True:
        tag = uv()
        if tag == TAG_EOF:
            return res
        if tag == TAG_PARAMS:
            res["params"] = (uv(), uv(), uv(), uv(), st().decode(), st().decode(), uv())
        elif tag == TAG_OBJECT:
            a, body, offs = uv(), st(), []
            while uv() == FIELD_PTR:
                offs.append(uv())
            res["objects"].append((a, body, offs))
        elif tag == TAG_GOROUTINE:
            g = dict(g=uv(), sp=uv(), goid=uv(), gopc=uv(), status=uv(), system=uv(), background=uv(),
                     waitsince=uv())
            g["waitreason"] = st().decode()
            g.update(ctxt=uv(), m=uv(), defer=uv(), panic=uv())
            res["goroutines"].append(g)
        elif tag == TAG_OSTHREAD:
            res["threads"].append((uv(), uv(), uv()))
        elif tag == TAG_MEMSTATS:
            res["memstats"] = [uv() for _ in range(len(_MEMSTATS) + 256 + 1)]
        else:
            raise ValueError(f"heap dump: unknown record tag {tag} at offset {i}")


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
