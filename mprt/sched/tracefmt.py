"""Go 1.9's execution-trace format: the coordinator's converter from the Ms' rings, and a reader.

Go's tools (`go tool trace`, its -pprof=sched|sync|net|syscall modes) read a trace as the header
"go 1.9 trace\\0\\0\\0\\0" and then batches: EvBatch(P, ticks) followed by that P's events, each a
type byte (the low 6 bits; the top 2 say how many varint arguments follow, 3 meaning a byte length
first), a tick delta and the arguments.  The footer holds EvFrequency (ticks per second), the timer
goroutine, the strings and the stacks (EvStack: id, frames of PC, function, file, line).  The
parser then checks the whole trace as a state machine: a goroutine is created, started, blocked,
unblocked, ended in order (per-goroutine sequence numbers order the events of different Ps), a P
runs one goroutine at a time between ProcStart and ProcStop, and so on; any event out of place
and the tool refuses the file.

The Ms do not write this format: each writes mprt's own 4-word events into its ring (trace.py),
with no lock and no knowledge of the others.  The coordinator alone drains the rings and runs this
converter every round, which makes the two agree:

  - Merge.  Each ring is in order; across rings, events are taken in time order, except that an
    event that is not possible yet (a goroutine started before the unblock that readied it reached
    its ring, both stamped within microseconds) waits for the event that makes it possible.  Only
    events older than WATERMARK_NS are merged before the trace stops, so a ring that is a little
    behind is waited for.
  - Replay.  The converter keeps Go's parser's view (every goroutine's state and sequence number,
    every P's holder and running goroutine) and writes only events that view accepts.  What mprt
    does not record the way Go does is made good here, as a repair written before the event that
    needs it: a goroutine blocked or running when tracing started (GoCreate + GoWaiting), the M that
    keeps its P through a stop of the world, an event lost to a full ring.  So every file the
    converter writes passes the parser's checks, whatever the rings held.
  - Lanes.  Events go to the P that the M held when it wrote them (the event's P), as Go's do.
    What has no P (the collector's cycles and stops, the heap figures, repairs, a wakeup by an M
    without a P) goes to Go's global batch, P -1, where no goroutine ever runs (G 0).
  - Time.  Ticks are 64 ns (15.625 MHz, about Go's cputicks/64), strictly increasing in the merged
    order, so Go's own merge of the batches finds the same order.

Stacks: an M names a stack by a number of its own and writes its PCs (symtab.py's, shared by every
process) once, before the first event that uses it; the converter maps (ring, number) to one id per
distinct stack and writes them all with their functions, files and lines at the end, as Go does.
"""
import collections

import numpy as np

from ..settings import load_accel
from ..shm.layout import MAXP
from . import symtab as _symtab
from .ctl import NTRACEBUF as NSLOTS

HEADER = b"go 1.9 trace\x00\x00\x00\x00"
TICK_SHIFT = 6
FREQ = 1_000_000_000 >> TICK_SHIFT
WATERMARK_NS = 10_000_000
GLOBAL = -1

# Go's event numbers (trace.go, version 1.9)
(EvNone, EvBatch, EvFrequency, EvStack, EvGomaxprocs, EvProcStart, EvProcStop, EvGCStart, EvGCDone,
 EvGCSTWStart, EvGCSTWDone, EvGCSweepStart, EvGCSweepDone, EvGoCreate, EvGoStart, EvGoEnd, EvGoStop,
 EvGoSched, EvGoPreempt, EvGoSleep, EvGoBlock, EvGoUnblock, EvGoBlockSend, EvGoBlockRecv,
 EvGoBlockSelect, EvGoBlockSync, EvGoBlockCond, EvGoBlockNet, EvGoSysCall, EvGoSysExit, EvGoSysBlock,
 EvGoWaiting, EvGoInSyscall, EvHeapAlloc, EvNextGC, EvTimerGoroutine, EvFutileWakeup, EvString,
 EvGoStartLocal, EvGoUnblockLocal, EvGoSysExitLocal, EvGoStartLabel, EvGoBlockGC, EvGCMarkAssistStart,
 EvGCMarkAssistDone) = range(45)
EV_COUNT = 45
# (name, has a stack argument) for the events this module writes or reads
_DESC = {EvGomaxprocs: ("Gomaxprocs", True), EvProcStart: ("ProcStart", False), EvProcStop: ("ProcStop", False),
         EvGCStart: ("GCStart", True), EvGCDone: ("GCDone", False), EvGCSTWStart: ("GCSTWStart", False),
         EvGCSTWDone: ("GCSTWDone", False), EvGoCreate: ("GoCreate", True), EvGoStart: ("GoStart", False),
         EvGoEnd: ("GoEnd", False), EvGoStop: ("GoStop", True), EvGoSched: ("GoSched", True),
         EvGoPreempt: ("GoPreempt", True), EvGoSleep: ("GoSleep", True), EvGoBlock: ("GoBlock", True),
         EvGoUnblock: ("GoUnblock", True), EvGoBlockSend: ("GoBlockSend", True),
         EvGoBlockRecv: ("GoBlockRecv", True), EvGoBlockSelect: ("GoBlockSelect", True),
         EvGoBlockSync: ("GoBlockSync", True), EvGoBlockCond: ("GoBlockCond", True),
         EvGoBlockNet: ("GoBlockNet", True), EvGoSysCall: ("GoSysCall", True), EvGoSysExit: ("GoSysExit", False),
         EvGoSysBlock: ("GoSysBlock", False), EvGoWaiting: ("GoWaiting", False),
         EvGoInSyscall: ("GoInSyscall", False), EvHeapAlloc: ("HeapAlloc", False), EvNextGC: ("NextGC", False),
         EvGoBlockGC: ("GoBlockGC", True)}
EVENT_NAMES = {k: v[0] for k, v in _DESC.items()}
_BLOCKS = (EvGoStop, EvGoSleep, EvGoBlock, EvGoBlockSend, EvGoBlockRecv, EvGoBlockSelect, EvGoBlockSync,
           EvGoBlockCond, EvGoBlockNet, EvGoBlockGC)

G_RUNNABLE, G_RUNNING, G_WAITING, G_SYSCALL = 1, 2, 3, 4     # the converter's view (G_SYSCALL: waiting in one)
PLACEHOLDER = 1 << 32        # stack PLACEHOLDER + goid: the start function of a goroutine the trace found
_ctrace = load_accel("mprt.sched.ctrace")


def put_uvarint(out, v):
    """v as an unsigned varint (Go's trace and heap dump encoding), appended to out."""
    v &= 0xFFFFFFFFFFFFFFFF
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _event_bytes(out, typ, vals):
    """vals: the tick delta, then the arguments."""
    if len(vals) <= 3:
        out.append(typ | (len(vals) - 1) << 6)
        for v in vals:
            put_uvarint(out, v)
    else:
        body = bytearray()
        for v in vals:
            put_uvarint(body, v)
        out.append(typ | 3 << 6)
        put_uvarint(out, len(body))
        out += body


class _G:
    __slots__ = ("state", "seq", "lane", "stack")

    def __init__(self, stack):
        self.state, self.seq, self.lane, self.stack = G_RUNNABLE, 1, None, stack


class Converter:
    """One trace's conversion, in the coordinator.  feed(slot, words) with each ring's new words,
    round(now_ns, final) to merge and write; the bytes come out of take()."""

    def __init__(self, start_ns, k, nlanes=MAXP + 1, nslots=NSLOTS):
        self.t0 = start_ns
        self.k = k                   # trace.py's event kinds, by name (no import cycle)
        self.last = 0                # the last tick written
        self.gs = {}                 # goid -> _G
        self.holder = {}             # P -> the ring (slot) that holds it
        self.curg = {}               # P -> the goroutine running on it (0: none)
        self.held = {}               # slot -> the P it holds
        self.pending = {}            # slot -> deque of (ns, kind, P, stack id, a, b)
        self.ltab = {}               # slot -> numpy array: the M's stack numbers -> stack ids
        self.stack_ids = {}          # tuple of PCs -> stack id
        self.fn_stack = {}           # a function's entry PC -> the id of the one-frame stack of it
        self.placeholder = set()     # goroutines whose start stack is PLACEHOLDER + goid (defined at the end)
        self.gfunc = {}              # goid -> function entry PC (GoFunc events)
        self.next_stack = 1
        self.gcseq = 0
        self.in_gc = False
        self.in_stw = False
        self.lanes = {}              # lane -> bytearray of this round
        self.lane_tick = {}
        self.out = bytearray(HEADER)
        self.nevents = 0
        self.c = None                # the merge and replay in C (ctrace.c), where it was built
        if _ctrace is not None:
            self.c = _ctrace.Conv(start_ns, nlanes, nslots)

    # ---- input ----

    def feed(self, slot, rows):
        """New records of a ring, an (n, 4) int64 array, oldest first: stack definitions and GoFunc
        events are taken here; the rest, with stack numbers made ids and a GoCreate's function
        made the id of its one-frame stack, go to the merge."""
        k = self.k
        kind = rows[:, 1] & 0xFF
        special = (kind == k.STACKDEF) | (kind == k.STACKPC) | (kind == k.GOFUNC) | (kind == 0)
        if special.any():
            for i in np.flatnonzero((kind == k.STACKDEF) | (kind == k.GOFUNC)).tolist():
                ns, w1, a, b = rows[i].tolist()
                if kind[i] == k.GOFUNC:
                    self.gfunc[a] = b
                    continue
                nf = (w1 >> 8) & 0xFFFF
                pcs = []
                for j in range(i + 1, min(i + 1 + (nf + 2) // 3, len(rows))):
                    r0, r1, r2, r3 = rows[j].tolist()
                    if r1 & 0xFF != k.STACKPC:
                        break
                    pcs += (r0, r2, r3)
                tab = self.ltab.get(slot)
                if tab is None or a >= len(tab):
                    new = np.zeros(max(64, 2 * a + 2), dtype=np.int64)
                    if tab is not None:
                        new[:len(tab)] = tab
                    tab = self.ltab[slot] = new
                tab[a] = self._stack_id(tuple(pcs[:nf]))
            rows = rows[~special]
            kind = kind[~special]
        if not len(rows):
            return
        ev = np.empty((len(rows), 6), dtype=np.int64)
        ev[:, 0] = rows[:, 0]
        ev[:, 1] = kind
        w1 = rows[:, 1]
        ev[:, 2] = ((w1 >> 8) & 0xFFFF) - 1
        lst = w1 >> 24
        tab = self.ltab.get(slot)
        if tab is None:
            ev[:, 3] = 0
        else:
            ok = (lst > 0) & (lst < len(tab))
            ev[:, 3] = np.where(ok, tab[np.where(ok, lst, 0)], 0)
        ev[:, 4] = rows[:, 2]
        ev[:, 5] = rows[:, 3]
        cr = np.flatnonzero(kind == k.GOCREATE)
        if len(cr):
            pcs = ev[cr, 5]
            uniq, inv = np.unique(pcs, return_inverse=True)
            ev[cr, 5] = np.array([self._fn_stack(int(pc)) for pc in uniq.tolist()], dtype=np.int64)[inv]
        if self.c is not None:
            self.c.feed(slot, ev)
            return
        q = self.pending.get(slot)
        if q is None:
            q = self.pending[slot] = collections.deque()
        q.extend(map(tuple, ev.tolist()))

    def npending(self):
        """Events fed and not merged yet."""
        if self.c is not None:
            return self.c.pending()
        return sum(len(q) for q in self.pending.values())

    def _stack_id(self, pcs):
        sid = self.stack_ids.get(pcs)
        if sid is None:
            sid = self.stack_ids[pcs] = self.next_stack
            self.next_stack += 1
        return sid

    def _fn_stack(self, pc):
        if not pc:
            return 0
        sid = self.fn_stack.get(pc)
        if sid is None:
            sid = self.fn_stack[pc] = self._stack_id((pc,))
        return sid

    # ---- output ----

    def _put(self, lane, typ, ns, *args):
        t = (ns - self.t0) >> TICK_SHIFT
        if t <= self.last:
            t = self.last + 1
        self.last = t
        buf = self.lanes.get(lane)
        if buf is None:
            buf = self.lanes[lane] = bytearray()
            buf.append(EvBatch | 1 << 6)
            put_uvarint(buf, lane)
            put_uvarint(buf, t)
            self.lane_tick[lane] = t
        d = t - self.lane_tick[lane]
        self.lane_tick[lane] = t
        self.nevents += 1
        n = len(args)
        if n < 3 and d < 0x80 and all(0 <= v < 0x80 for v in args):
            buf.append(typ | n << 6)          # the common case: every value one byte
            buf.append(d)
            buf.extend(args)
            return
        _event_bytes(buf, typ, (d,) + args)

    def take(self):
        """The bytes written since the last take (whole batches)."""
        if self.c is not None:
            self.out += self.c.take()
        for buf in self.lanes.values():
            self.out += buf
        self.lanes.clear()
        self.lane_tick.clear()
        out, self.out = self.out, bytearray()
        return bytes(out)

    # ---- Go's view, and the repairs that keep the output in it ----

    def _g(self, goid, ns):
        """The goroutine, created (on the global lane) if the trace has not seen it."""
        g = self.gs.get(goid)
        if g is None:
            self.placeholder.add(goid)
            g = self._create(GLOBAL, goid, ns, PLACEHOLDER + goid, 0)
        return g

    def _create(self, lane, goid, ns, newstack, stack):
        self._put(lane, EvGoCreate, ns, goid, newstack, stack)
        g = self.gs[goid] = _G(newstack)
        return g

    def _release(self, lane, ns):
        """P `lane` stops: its goroutine preempted first (the parser allows no stop while one runs)."""
        if self.curg.get(lane):
            self._preempt(lane, ns)
        self._put(lane, EvProcStop, ns)
        slot = self.holder.pop(lane, None)
        if slot is not None and self.held.get(slot) == lane:
            del self.held[slot]

    def _preempt(self, lane, ns):
        goid = self.curg.get(lane)
        if goid:
            self._put(lane, EvGoPreempt, ns, 0)
            g = self.gs[goid]
            g.state, g.lane = G_RUNNABLE, None
            self.curg[lane] = 0

    def _hold(self, slot, lane, ns):
        """Ring `slot`'s M holds P `lane` in the output (ProcStart, stopping what is in the way)."""
        if self.holder.get(lane) == slot:
            return
        mine = self.held.get(slot)
        if mine is not None:
            self._release(mine, ns)
        if lane in self.holder:
            self._release(lane, ns)
        self._put(lane, EvProcStart, ns, max(slot - 1, 0))
        self.holder[lane] = slot
        self.held[slot] = lane
        self.curg[lane] = 0

    def _runnable(self, goid, ns):
        g = self._g(goid, ns)
        if g.state == G_RUNNING:
            self._preempt(g.lane, ns)
        elif g.state == G_WAITING:
            self._put(GLOBAL, EvGoUnblock, ns, goid, g.seq, 0)
            g.seq += 1
            g.state = G_RUNNABLE
        elif g.state == G_SYSCALL:
            self._put(GLOBAL, EvGoSysExit, ns, goid, g.seq, 0)
            g.seq += 1
            g.state = G_RUNNABLE
        return g

    def _running(self, slot, lane, goid, ns):
        """goid runs on P `lane`, held by ring `slot`: what the event of a running goroutine needs."""
        if lane < 0:
            lane = self.held.get(slot)
            if lane is None:
                return None
        g = self.gs.get(goid)
        if g is not None and g.state == G_RUNNING and g.lane == lane and self.holder.get(lane) == slot:
            return lane
        self._hold(slot, lane, ns)
        g = self._runnable(goid, ns)
        if self.curg.get(lane):
            self._preempt(lane, ns)
        self._put(lane, EvGoStart, ns, goid, g.seq)
        g.seq += 1
        g.state, g.lane = G_RUNNING, lane
        self.curg[lane] = goid
        return lane

    def _stop(self, lane, goid, typ, ns, stack, state):
        self._put(lane, typ, ns, *((stack,) if _DESC[typ][1] else ()))
        g = self.gs[goid]
        if state is None:
            del self.gs[goid]
        else:
            g.state, g.lane = state, None
        self.curg[lane] = 0

    # ---- the merge ----

    def _ready(self, slot, e):
        """Whether event e of ring `slot` applies with no repair in the view as it is."""
        k = self.k
        kind = e[1]
        if kind == k.PROCSTART:
            h = self.holder.get(e[4])
            return h is None or h == slot
        if kind == k.GOSTART:
            g = self.gs.get(e[4])
            if g is None or g.state != G_RUNNABLE:
                return False
            h = self.holder.get(e[2])
            return h is None or h == slot
        if kind in k.RUNNING_KINDS:
            g = self.gs.get(e[4])
            return g is not None and g.state == G_RUNNING and g.lane == self.held.get(slot)
        if kind == k.GOUNBLOCK:
            g = self.gs.get(e[4])
            return g is not None and g.state == G_WAITING
        if kind == k.GOSYSBLOCK:
            g = self.gs.get(e[5])
            return g is not None and g.state == G_RUNNING and g.lane == e[4]
        if kind == k.GOSYSEXIT:
            g = self.gs.get(e[4])
            return g is not None and g.state == G_SYSCALL
        return True

    def round(self, now_ns, final=False, most=1 << 62):
        """Merge and write every event old enough (all of them if final), at most `most` of them;
        how many were taken."""
        if self.c is not None:
            return self.c.round(now_ns, final, most)
        return self._round_py(now_ns, final, most)

    def _round_py(self, now_ns, final, most):
        limit = (1 << 62) if final else now_ns - WATERMARK_NS
        young = now_ns - 8 * WATERMARK_NS
        pend = self.pending
        ready, apply = self._ready, self._apply
        done = 0
        while done < most:
            heads = sorted((q[0][0], slot) for slot, q in pend.items() if q and q[0][0] <= limit)
            if not heads:
                return done
            take = None
            for _ts, slot in heads:
                if ready(slot, pend[slot][0]):
                    take = slot
                    break
            if take is None:
                # nothing applies as it is: the oldest event may be waiting for one that has not
                # reached its ring yet (wait, while the merge is not final and the event is young)
                if not final and heads[0][0] > young:
                    return done
                take = heads[0][1]
                apply(take, pend[take].popleft())
                done += 1
                continue
            # a run of this ring's events, while they stay the oldest and apply as they are
            nxt = min([ts for ts, slot in heads if slot != take] or [limit])
            q = pend[take]
            while True:
                apply(take, q.popleft())
                done += 1
                if not q or done >= most:
                    break
                e = q[0]
                if e[0] > nxt or not ready(take, e):
                    break
        return done

    def _apply(self, slot, e):
        k = self.k
        ns, kind, p, stack, a, b = e
        if kind == k.GOCREATE:
            if a in self.gs:
                return
            lane = p if p >= 0 and self.holder.get(p) == slot else GLOBAL
            self._create(lane, a, ns, b, stack)
        elif kind == k.GOEXIST:
            if a in self.gs:
                return
            self.placeholder.add(a)
            g = self._create(GLOBAL, a, ns, PLACEHOLDER + a, 0)
            if b == k.G_WAITING_STATUS:
                self._put(GLOBAL, EvGoWaiting, ns, a)
                g.seq, g.state = 2, G_WAITING
            elif b == k.G_SYSCALL_STATUS:
                self._put(GLOBAL, EvGoInSyscall, ns, a)
                g.seq, g.state = 2, G_SYSCALL
        elif kind == k.PROCSTART:
            self._hold(slot, a, ns)
        elif kind == k.PROCSTOP:
            if self.holder.get(a) == slot:
                self._release(a, ns)
        elif kind == k.GOSTART:
            if p >= 0:
                self._running(slot, p, a, ns)
        elif kind in k.RUNNING_KINDS:
            lane = self._running(slot, p, a, ns)
            if lane is None:
                return
            if kind == k.GOEND:
                self._stop(lane, a, EvGoEnd, ns, 0, None)
            elif kind == k.GOSCHED:
                self._stop(lane, a, EvGoPreempt if b else EvGoSched, ns, stack, G_RUNNABLE)
            elif kind == k.GOBLOCK:
                typ = k.block_event(b)
                self._stop(lane, a, typ, ns, stack, None if typ == EvGoStop else G_WAITING)
            elif kind == k.GOSYSCALL:
                self._put(lane, EvGoSysCall, ns, stack)
        elif kind == k.GOUNBLOCK:
            g = self.gs.get(a)
            if g is None:
                g = self._g(a, ns)
                self._put(GLOBAL, EvGoWaiting, ns, a)
                g.seq, g.state = 2, G_WAITING
            elif g.state == G_RUNNING:
                # its block is lost or late: the goroutine blocks here, then is woken
                self._stop(g.lane, a, EvGoBlock, ns, 0, G_WAITING)
            elif g.state != G_WAITING:
                return
            lane = p if p >= 0 and self.holder.get(p) == slot else GLOBAL
            self._put(lane, EvGoUnblock, ns, a, g.seq, stack)
            g.seq += 1
            g.state = G_RUNNABLE
        elif kind == k.GOSYSBLOCK:
            g = self.gs.get(b)
            if g is None or g.state != G_RUNNING or g.lane != a:
                return
            self._put(a, EvGoSysBlock, ns)
            g.state, g.lane = G_SYSCALL, None
            self.curg[a] = 0
            self._release(a, ns)
        elif kind == k.GOSYSEXIT:
            g = self.gs.get(a)
            if g is not None and g.state == G_SYSCALL:
                self._put(GLOBAL, EvGoSysExit, ns, a, g.seq, 0)
                g.seq += 1
                g.state = G_RUNNABLE
        elif kind == k.GCSTART:
            if not self.in_gc:
                self._put(GLOBAL, EvGCStart, ns, self.gcseq, 0)
                self.gcseq += 1
                self.in_gc = True
        elif kind == k.GCDONE:
            if self.in_gc:
                self._put(GLOBAL, EvGCDone, ns)
                self.in_gc = False
        elif kind == k.STWSTART:
            if not self.in_stw:
                self._put(GLOBAL, EvGCSTWStart, ns)
                self.in_stw = True
        elif kind == k.STWDONE:
            if self.in_stw:
                self._put(GLOBAL, EvGCSTWDone, ns)
                self.in_stw = False
        elif kind == k.HEAPALLOC:
            self._put(GLOBAL, EvHeapAlloc, ns, a)
        elif kind == k.NEXTGC:
            self._put(GLOBAL, EvNextGC, ns, a if a < 1 << 62 else 0xFFFFFFFFFFFFFFFF)
        elif kind == k.GOMAXPROCS:
            self._put(GLOBAL, EvGomaxprocs, ns, a, 0)

    # ---- the end ----

    def footer(self, timer_goid, extra_strings=()):
        """The end: what runs is stopped as Go's StopTrace leaves it (no goroutine running, no GC
        or stop of the world open: Go's tools expect every such stretch to end), then EvFrequency,
        EvTimerGoroutine, the strings and the stacks."""
        last = self.c.last() if self.c is not None else self.last
        end = self.t0 + ((last + 1) << TICK_SHIFT)
        if self.c is not None:
            self.c.close(end)
            self.placeholder.update(self.c.placeholders())
        for lane, goid in list(self.curg.items()):
            if goid:
                self._put(lane, EvGoSched, end, 0)
                g = self.gs[goid]
                g.state, g.lane = G_RUNNABLE, None
                self.curg[lane] = 0
        if self.in_stw:
            self._put(GLOBAL, EvGCSTWDone, end)
            self.in_stw = False
        if self.in_gc:
            self._put(GLOBAL, EvGCDone, end)
            self.in_gc = False
        out = bytearray(self.take())
        out.append(EvFrequency)
        put_uvarint(out, FREQ)
        if timer_goid > 0:
            out.append(EvTimerGoroutine)
            put_uvarint(out, timer_goid)
        strings = {}

        def sid(s):
            if not s:
                return 0
            i = strings.get(s)
            if i is None:
                i = strings[s] = len(strings) + 1
                b = s.encode()
                out.append(EvString)
                put_uvarint(out, i)
                put_uvarint(out, len(b))
                out.extend(b)
            return i

        for s in extra_strings:
            sid(s)
        stacks = list(self.stack_ids.items())
        for goid in sorted(self.placeholder):
            pc = self.gfunc.get(goid)
            if pc:
                stacks.append(((pc,), PLACEHOLDER + goid))
        for pcs, i in stacks:
            frames = []
            for pc in pcs[:1000]:
                r = _symtab.resolve(pc)
                if r is None:
                    frames.append((pc, 0, 0, 0))
                else:
                    name, file, line, _entry = r
                    frames.append((pc, sid(name), sid(file), line))
            body = bytearray()
            put_uvarint(body, i)
            put_uvarint(body, len(frames))
            for f in frames:
                for v in f:
                    put_uvarint(body, v)
            out.append(EvStack | 3 << 6)
            put_uvarint(out, len(body))
            out += body
        return bytes(out)


# ---- reading a trace (mprt trace; tests) ----

class Trace:
    """A parsed trace: events [(ticks, type, P, G, args, stack id)] in time order, stacks
    {id: [(pc, function, file, line)]}, strings, the frequency."""

    def __init__(self, events, stacks, strings, freq, timer_goid):
        self.events, self.stacks, self.strings = events, stacks, strings
        self.freq, self.timer_goid = freq, timer_goid

    def ns(self, ticks):
        return ticks * 1e9 / self.freq if self.freq else ticks


def read_uvarint(data, i):
    """The unsigned varint at data[i]: (value, the offset after it)."""
    v = s = 0
    while True:
        b = data[i]
        i += 1
        v |= (b & 0x7F) << s
        if b < 0x80:
            return v, i
        s += 7


def parse(data):
    """Read a Go 1.9 trace (the format above; Go's own traces of the same version too)."""
    if not data.startswith(b"go 1."):
        raise ValueError("not a Go execution trace (no 'go 1.9 trace' header)")
    if data[:16] != HEADER:
        raise ValueError(f"trace version {data[3:7].decode(errors='replace')!r}: only go 1.9 traces are read")
    i, n = 16, len(data)
    events, stacks, strings = [], {}, {}
    freq = timer = 0
    lane, lastg, tick = GLOBAL, {}, 0
    try:
        while i < n:
            b0 = data[i]
            i += 1
            typ, narg = b0 & 0x3F, (b0 >> 6) + 1
            if typ == EvString:
                sid, i = read_uvarint(data, i)
                ln, i = read_uvarint(data, i)
                strings[sid] = data[i:i + ln].decode(errors="replace")
                i += ln
                continue
            args = []
            if narg < 4:
                for _ in range(narg):
                    v, i = read_uvarint(data, i)
                    args.append(v)
            else:
                ln, i = read_uvarint(data, i)
                end = i + ln
                while i < end:
                    v, i = read_uvarint(data, i)
                    args.append(v)
            if typ == EvBatch:
                lane = args[0] if args[0] < 1 << 63 else args[0] - (1 << 64)
                tick = args[1]
            elif typ == EvFrequency:
                freq = args[0]
            elif typ == EvTimerGoroutine:
                timer = args[0]
            elif typ == EvStack:
                sid, nf = args[0], args[1]
                stacks[sid] = [tuple(args[2 + 4 * j:6 + 4 * j]) for j in range(nf)]
            elif 0 < typ < EV_COUNT:
                tick += args[0]
                rest = args[1:]
                stk = 0
                if typ in _DESC and _DESC[typ][1] and rest:
                    stk = rest[-1]
                    rest = rest[:-1]
                g = lastg.get(lane, 0)
                if typ in (EvGoStart, EvGoStartLocal, EvGoStartLabel):
                    g = lastg[lane] = rest[0]
                elif typ in (EvGoSysExit, EvGoWaiting, EvGoInSyscall):
                    g = rest[0]
                elif typ in _BLOCKS or typ in (EvGoEnd, EvGoSched, EvGoPreempt, EvGoSysBlock):
                    lastg[lane] = 0
                events.append((tick, typ, lane, g, rest, stk))
            else:
                raise ValueError(f"unknown event type {typ} at offset {i - 1:#x}")
    except IndexError:
        raise ValueError(f"the trace ends in the middle of an event (offset {i:#x})") from None
    events.sort(key=lambda e: e[0])
    res = {}
    for sid, frames in stacks.items():
        res[sid] = [(pc, strings.get(fn, ""), strings.get(fl, ""), line) for pc, fn, fl, line in frames]
    return Trace(events, res, strings, freq, timer)


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
