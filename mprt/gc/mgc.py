"""The collector: Go 1.9's concurrent mark and sweep, run by the coordinator process.

A cycle (Collector.cycle), as in mgc.go:
  1. Sweep termination: finish sweeping the last cycle, stop the world, turn the write barrier on
     (GC_PHASE = mark; GC_GEN moves so every mcache allocates black from its next allocation),
     take the roots that no running M can give (root tables of Ms without a P, the control
     segment, finalizers) and ask every M that was stopped holding a P to scan its own root table
     at its next safe point (M_GCSCAN).  Start the world.
  2. Concurrent mark: the coordinator drains grey objects (mgcmark.py) while the Ms run; their
     pointer stores shade both targets, their allocations are black.  It also keeps doing sysmon's
     work between batches (the `tick` it is given).
  3. Mark termination: stop the world, drain what the barriers and root scans left, scan the
     control segment again, gccheckmark if asked, queue the finalizers of unreachable objects,
     turn the barrier off and advance GC_SWEEPGEN (every span is now unswept; the mark bytes are
     the allocation bits to keep).  Record the pause, start the world.
  4. Concurrent sweep: the coordinator sweeps span by span; an M that needs a span sweeps it first
     (mcentral.cache_span); an M's cached spans are flushed before it allocates again (mcache.py).
     Once all is swept the cycle is done (GC_DONE): runtime.GC() waits for that.

The pacer is Go 1.9's: the goal is marked x (1 + GOGC/100), the trigger marked x (1 + ratio) with
the ratio moved halfway towards the goal's each cycle (assists are not modelled: utilization is
the 25% goal), both at least 4 MB x GOGC/100.  heap_live is HeapAlloc, exact (mstats.heap_alloc).
An M whose allocation crosses the trigger wakes the coordinator (Heap.kick_gc); the coordinator
also checks on every sysmon round that is a millisecond after the last check.  GOGC=off: no
trigger, NextGC = 2^64-1, runtime.GC() still collects.  sysmon forces a cycle when none ran for
two minutes.

Shared words (heap segment region "gc", layout.py): PHASE, GEN, SWEEPGEN, the statistics and the
pause rings are written by the coordinator only; FORCEDREQ by any M asking for a cycle (a
max, so a lost race asks for the same cycle); KICKED by an M (set) and the coordinator (cleared);
the GODEBUG words at boot.  H_NEXTGC and GC_TRIGGER by the coordinator and SetGCPercent, under the
heap lock.

Differences from Go, chosen: the mark is done by one process (Go's dedicated worker is 25% of
GOMAXPROCS; here it is the coordinator, whatever GOMAXPROCS); no mark assists, so a program that
allocates faster than the coordinator marks overshoots the goal rather than being slowed down;
the root table of an M in a system call is read while it may be running Python (see README).
"""
import os
import time

import numpy as np

from ..sched import mprof, mstate, proc, stw, trace
from ..sched import traceback as tb
from ..sched.ctl import (
    EXIT_FATAL,
    M_GCSCAN,
    M_PID,
    M_STATE,
    MS_DEAD,
    MS_FREE,
    MS_GCSTOP,
    MS_IDLE,
    MS_LOCKEDWAIT,
    MS_NEEDP,
    S_GOMAXPROCS,
    S_MCOUNT,
    buckhash_bytes,
)
from ..shm import mcentral, mstats
from ..shm.layout import (
    GC_ALLOCFREETRACE,
    GC_CPUFRACTION,
    GC_DONE,
    GC_EFENCE,
    GC_FORCEDREQ,
    GC_GCCHECKMARK,
    GC_GCPACERTRACE,
    GC_GCSTOPTHEWORLD,
    GC_GCTRACE,
    GC_GEN,
    GC_HEAPMARKED,
    GC_INVALIDPTR,
    GC_KICKED,
    GC_LASTGC,
    GC_LASTSCVG,
    GC_MARKBYTES,
    GC_MARKCPUNS,
    GC_MARKNS,
    GC_MARKOBJS,
    GC_NSCVG,
    GC_NUMFORCED,
    GC_NUMGC,
    GC_PAUSEEND,
    GC_PAUSENS,
    GC_PAUSETOTAL,
    GC_PHASE,
    GC_SBRK,
    GC_STARTED,
    GC_STARTNS,
    GC_SWEEPGEN,
    GC_TOTALTIME,
    GC_TRIGGER,
    GC_TRIGRATIO,
    H_ARENA_PAGES,
    H_GCPERCENT,
    H_NEXTGC,
    PH_MARK,
    PH_MARKTERM,
    PH_OFF,
    S_INUSE,
)
from ..shm.malloc import set_alloc_debug
from . import mfinal
from .mgcmark import USE_C, BadPointer, Marker

HEAP_MINIMUM = 4 << 20          # Go's defaultHeapMinimum
INT64_MAX = (1 << 63) - 1
TRIGGER_RATIO0 = 7 / 8          # the first cycle's trigger ratio
GOAL_UTILIZATION = 0.25
FORCEGC_PERIOD_NS = 2 * 60 * 1_000_000_000
SCAVENGE_PERIOD_NS = 5 * 60 * 1_000_000_000 // 2    # Go's scavenger: every 2.5 min ...
SCAVENGE_LIMIT_NS = 5 * 60 * 1_000_000_000          # ... releasing spans idle for 5 min
POLL_NS = 1_000_000
SWEEP_BATCH = 64
MARK_BATCH = 20_000       # objects per batch of the concurrent mark (sysmon runs between batches)
MARK_BATCH_C = 100_000   # ... when the C drain scans them (~3 ms)


def _f64(h):
    return h.gc.view(np.float64)


# ---- the pacer (any process, heap lock held) ----

def set_trigger_ratio_locked(h, ratio):
    """Go's gcSetTriggerRatio: clamp ratio, then set GC_TRIGGER and NextGC from the marked heap."""
    gogc = int(h.hdr[H_GCPERCENT])
    if ratio < 0:
        ratio = 0.0
    elif gogc >= 0 and ratio > 0.95 * gogc / 100:
        ratio = 0.95 * gogc / 100
    _f64(h)[GC_TRIGRATIO] = ratio
    marked = int(h.gc[GC_HEAPMARKED])
    if gogc < 0:
        h.gc[GC_TRIGGER] = -1
        h.hdr[H_NEXTGC] = -1
        return
    trigger = int(marked * (1 + ratio))
    trigger = max(trigger, HEAP_MINIMUM * gogc // 100)
    goal = marked + marked * gogc // 100
    # a GOGC near int32's top makes goals past 2^63 (Go's uint64 arithmetic wraps there): saturate
    h.gc[GC_TRIGGER] = min(trigger, INT64_MAX)
    h.hdr[H_NEXTGC] = min(max(goal, trigger), INT64_MAX)


def init_pacer(h, gogc):
    """At boot (Go's gcinit)."""
    h.hdr[H_GCPERCENT] = gogc
    h.gc[GC_HEAPMARKED] = int(HEAP_MINIMUM * max(gogc, 0) // 100 / (1 + TRIGGER_RATIO0))
    with h.lock:
        set_trigger_ratio_locked(h, TRIGGER_RATIO0)


def set_gc_percent(h, pct):
    """debug.SetGCPercent: returns the old setting."""
    with h.lock:
        old = int(h.hdr[H_GCPERCENT])
        h.hdr[H_GCPERCENT] = -1 if pct < 0 else pct
        set_trigger_ratio_locked(h, float(_f64(h)[GC_TRIGRATIO]))
    return old


def init_debug(h, godebug):
    """GODEBUG's collector keys into the shared words (boot, before any M starts)."""
    for key, word in (("gctrace", GC_GCTRACE), ("gcpacertrace", GC_GCPACERTRACE),
                      ("gcstoptheworld", GC_GCSTOPTHEWORLD), ("gccheckmark", GC_GCCHECKMARK),
                      ("sbrk", GC_SBRK), ("efence", GC_EFENCE), ("invalidptr", GC_INVALIDPTR),
                      ("allocfreetrace", GC_ALLOCFREETRACE)):
        h.gc[word] = max(0, int(godebug.get(key, 0)))
    h.gc[GC_STARTNS] = time.monotonic_ns()
    set_alloc_debug(h, h.gc[GC_EFENCE], h.gc[GC_ALLOCFREETRACE])


# ---- gctrace formats ----

def itoa_div(v, dec):
    """Go's itoaDiv: v with a decimal point dec digits from the right."""
    s = str(v)
    if dec <= 0:
        return s
    s = s.rjust(dec + 1, "0")
    return s[:-dec] + "." + s[-dec:]


def fmt_ns_as_ms(ns):
    """Go's fmtNSAsMS: whole ms from 10 ms up, else two significant digits, at most 3 decimals."""
    ns = max(0, int(ns))
    if ns >= 10_000_000:
        return str(ns // 1_000_000)
    x = ns // 1000
    if x == 0:
        return "0"
    dec = 3
    while x >= 100:
        x //= 10
        dec -= 1
    return itoa_div(x, dec)


def go_float(x):
    """Go's print of a float64: +1.234560e+000."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "+Inf" if x > 0 else "-Inf"
    m, e = f"{x:+.6e}".split("e")
    return f"{m}e{e[0]}{int(e[1:]):03d}"


def _err(text):
    os.write(2, text.encode())


# ---- the coordinator's collector ----

_IDLE = (MS_IDLE, MS_NEEDP, MS_LOCKEDWAIT)
_PARKED = (MS_GCSTOP,) + _IDLE


class _Fatal(Exception):
    pass


class _Aborted(Exception):
    """The cycle ended the program (a fatal error)."""


class _Cycle:
    """What one cycle's phases hand each other (times in monotonic ns)."""
    __slots__ = ("forced", "stw_mode", "ncycle", "goal", "nprocs", "cpu0", "alloc0", "heap0", "t_sweepterm",
                 "t_mark", "t_markterm", "t_end", "t1", "pause1", "pause2", "nfin", "prev_marked", "mark_bytes",
                 "ratio", "trig")


class Collector:
    def __init__(self, sm, h, tick):
        self.sm, self.h, self.tick = sm, h, tick
        self.marker = Marker(h, sm.ctl, invalidptr=bool(h.gc[GC_INVALIDPTR]))
        self.next_poll = 0
        self.sweep_pending = False
        self.cycle_done = 0
        self.last_end = time.monotonic_ns()     # sysmon's forced GC counts from here

    # ---- deciding to run ----

    def heap_live(self):
        return mstats.heap_alloc(self.h, self.sm.q[self.sm.ctl.sched + S_MCOUNT])

    def poll(self, now):
        """One sysmon round's look: start a cycle when one is due; otherwise sweep a little."""
        h = self.h
        gc = h.gc
        if gc[GC_SBRK]:
            return False
        forced = gc[GC_FORCEDREQ] > gc[GC_STARTED]
        if not forced and not gc[GC_KICKED] and now < self.next_poll:
            return self._sweep_some()
        self.next_poll = now + POLL_NS
        gogc = int(h.hdr[H_GCPERCENT])
        periodic = not forced and gogc >= 0 and now - self.last_end > FORCEGC_PERIOD_NS
        trig = gogc >= 0 and gc[GC_TRIGGER] > 0 and self.heap_live() >= gc[GC_TRIGGER]
        gc[GC_KICKED] = 0
        if forced or trig or periodic:
            try:
                try:
                    self.cycle(forced=forced, periodic=periodic and not trig)
                except BadPointer as e:       # found during the concurrent mark
                    self._fatal(str(e), "found bad pointer in Go heap (incorrect use of unsafe or cgo?)")
            except _Aborted:
                pass
            return True
        self._scavenge_idle(now)
        return self._sweep_some()

    # ---- the cycle ----

    def cycle(self, forced=False, periodic=False):
        """One whole cycle, in Go's phases: gcStart (sweep termination, the world stopped), the
        concurrent mark, gcMarkDone (the mark's end: stop the world again), gcMarkTermination (the
        last marking, finalizers, the flip to sweeping, the restart and the cycle's statistics).
        GODEBUG=gcstoptheworld=1|2 marks with the world stopped from the first stop on."""
        c = self._gc_start(forced, periodic)
        if not c.stw_mode:
            self._concurrent_mark()
            self._gc_mark_done(c)
        self._gc_mark_termination(c)
        self._gc_end_cycle(c)

    def _gc_start(self, forced, periodic):
        h, sm, mk = self.h, self.sm, self.marker
        gc = h.gc
        q, ctl = sm.q, sm.ctl
        c = _Cycle()
        c.forced = forced
        c.stw_mode = int(gc[GC_GCSTOPTHEWORLD])
        self.sweep_all()
        if periodic and gc[GC_GCTRACE]:
            _err("GC forced\n")
        gc[GC_STARTED] += 1
        c.ncycle = int(gc[GC_STARTED])
        c.goal = int(h.hdr[H_NEXTGC])
        c.nprocs = int(q[ctl.sched + S_GOMAXPROCS])
        c.cpu0 = time.thread_time_ns()
        trace.sync_state(sm)
        if sm.tracing:
            trace.ev(sm, trace.EV_GCSTART, c.ncycle)
            trace.ev(sm, trace.EV_HEAPALLOC, mstats.alloc_totals(h, q[ctl.sched + S_MCOUNT])[1])

        # 1. sweep termination (the sweep was finished above: no span turns unswept until the
        # mark ends, so nothing is left to sweep with the world stopped)
        c.alloc0, c.heap0 = mstats.alloc_totals(h, q[ctl.sched + S_MCOUNT])
        c.t_sweepterm = time.monotonic_ns()
        mk.reset()          # the marker is the collector's alone: made ready before the stop, not in it
        t0 = stw.stop_the_world(sm, "GC sweep termination")
        gc[GC_PHASE] = PH_MARK
        gc[GC_GEN] += 1
        self._roots_at_start(c.stw_mode)
        if c.stw_mode:
            self._drain_all()
            c.pause1 = 0
            c.t_mark = c.t_markterm = time.monotonic_ns()
            c.t1 = t0
        else:
            c.pause1 = stw.start_the_world(sm, t0)
            c.t_mark = time.monotonic_ns()
        return c

    def _concurrent_mark(self):
        """2. The mark, with the world running: the control segment's words take both halves of
        the barrier (msg.py, proc.go and schedule._payload), so they are scanned like a heap
        object, once; then the Ms' roots as each scans itself, the greyed objects the barrier
        left, and the grey queue, until all three stay empty."""
        mk = self.marker
        mk.blacken(mk.ctl_roots())
        idle = 0
        while True:
            self._scan_idle()
            got = mk.collect_dirty()
            done = mk.drain(MARK_BATCH_C if USE_C else MARK_BATCH)
            if done and not got and not self._scans_pending():
                idle += 1
                if idle > 2 and not mk.collect_dirty():
                    break
                time.sleep(20e-6)
            else:
                idle = 0
            self.tick()

    def _gc_mark_done(self, c):
        """3. The concurrent mark found nothing more: stop the world for mark termination."""
        c.t_markterm = time.monotonic_ns()
        c.t1 = stw.stop_the_world(self.sm, "GC mark termination")

    def _gc_mark_termination(self, c):
        """With the world stopped: the last roots and greys, the finalizers' objects, the flip
        to sweeping, and the restart."""
        h, sm, mk = self.h, self.sm, self.marker
        gc = h.gc
        gc[GC_PHASE] = PH_MARKTERM
        try:
            self._scan_leftover_roots()
            if mfinal.any_specials(h):
                mk.blacken(np.concatenate([mfinal.roots(h), mfinal.special_children(h)]))
            self._drain_all()
            if gc[GC_GCCHECKMARK] or gc[GC_GCTRACE] > 1:
                # gctrace=2 also marks again with the world stopped, as Go's does
                self._checkmark()
        except _Fatal as e:
            self._fatal(*e.args, stopped_at=c.t1)
        except BadPointer as e:
            self._fatal(str(e), "found bad pointer in Go heap (incorrect use of unsafe or cgo?)", c.t1)
        c.nfin = mfinal.queue_unreachable(h, mk)
        if c.nfin:
            self._drain_all()      # what the queued objects point to stays too
        mprof.mark_termination(sm, h)   # the heap profile's cycle: the marks of its sampled objects
        gc[GC_PHASE] = PH_OFF
        gc[GC_GEN] += 1
        gc[GC_SWEEPGEN] += 1
        # the world is stopped: what was allocated during the mark (black) is counted after the
        # restart, a few microseconds of allocation later, to keep the pause short
        c.prev_marked = int(gc[GC_HEAPMARKED])
        c.mark_bytes = mk.bytes
        # the pacer, before heap_marked moves on (Go's endCycle order)
        c.ratio = float(_f64(h)[GC_TRIGRATIO])
        c.trig = int(gc[GC_TRIGGER])
        if c.stw_mode == 2:
            self.sweep_all()
        # 4. restart
        c.pause2 = stw.start_the_world(sm, c.t1)
        c.t_end = time.monotonic_ns()

    def _gc_end_cycle(self, c):
        """The statistics of the cycle (MemStats, gctrace, gcpacertrace, the trace), the pacer's
        next trigger, and the finalizer goroutine's wakeup."""
        h, sm, mk = self.h, self.sm, self.marker
        gc = h.gc
        q, ctl = sm.q, sm.ctl
        forced, t_end = c.forced, c.t_end
        mprof.flush(sm)                 # its frees and its fold, with the world running
        alloc1, heap1 = mstats.alloc_totals(h, q[ctl.sched + S_MCOUNT])
        marked = c.mark_bytes + (alloc1 - c.alloc0)
        ratio, prev_marked = c.ratio, c.prev_marked
        if not forced and prev_marked > 0:
            actual = heap1 / prev_marked - 1
            gogc = int(h.hdr[H_GCPERCENT])
            ratio_next = ratio + 0.5 * ((gogc / 100) - ratio - (actual - ratio))
            if gc[GC_GCPACERTRACE]:
                goalg = gogc / 100
                _err(f"pacer: H_m_prev={prev_marked} h_t={go_float(ratio)} H_T={c.trig} h_a={go_float(actual)}"
                     f" H_a={heap1} h_g={go_float(goalg)} H_g={int(prev_marked * (1 + goalg))}"
                     f" u_a={go_float(GOAL_UTILIZATION)} u_g={go_float(GOAL_UTILIZATION)} W_a={mk.bytes}"
                     f" goalΔ={go_float(goalg - ratio)} actualΔ={go_float(actual - ratio)}"
                     f" u_a/u_g={go_float(1.0)}\n")
        else:
            ratio_next = ratio
        gc[GC_HEAPMARKED] = marked
        gc[GC_MARKBYTES] = mk.bytes
        gc[GC_MARKOBJS] = mk.objs
        pause1, pause2 = c.pause1, c.pause2
        if c.stw_mode:
            pause1, pause2 = 0, t_end - c.t_sweepterm
        with h.lock:
            set_trigger_ratio_locked(h, ratio_next)
        cpu = time.thread_time_ns() - c.cpu0
        pause = pause1 + pause2
        numgc = int(gc[GC_NUMGC])
        unix_now = time.time_ns()
        gc[GC_PAUSENS + numgc % 256] = pause
        gc[GC_PAUSEEND + numgc % 256] = unix_now
        gc[GC_PAUSETOTAL] += pause
        gc[GC_LASTGC] = unix_now
        nprocs = c.nprocs
        t_sweepterm, t_mark, t_markterm = c.t_sweepterm, c.t_mark, c.t_markterm
        stwprocs = min(nprocs, len(sm.cpus))
        sweepterm_cpu = stwprocs * (t_mark - t_sweepterm)
        markterm_cpu = stwprocs * (t_end - t_markterm)
        mark_cpu = 0 if c.stw_mode else cpu
        gc[GC_MARKCPUNS] = mark_cpu
        gc[GC_MARKNS] = t_markterm - t_mark
        gc[GC_TOTALTIME] += sweepterm_cpu + mark_cpu + markterm_cpu
        total = (t_end - int(gc[GC_STARTNS])) * nprocs
        _f64(h)[GC_CPUFRACTION] = gc[GC_TOTALTIME] / total if total > 0 else 0.0
        if forced:
            gc[GC_NUMFORCED] += 1
        gc[GC_NUMGC] = numgc + 1
        if gc[GC_GCTRACE]:
            util = int(_f64(h)[GC_CPUFRACTION] * 100)
            clock = "+".join(fmt_ns_as_ms(x) for x in (t_mark - t_sweepterm, t_markterm - t_mark, t_end - t_markterm))
            cpus = (f"{fmt_ns_as_ms(sweepterm_cpu)}+{fmt_ns_as_ms(0)}/{fmt_ns_as_ms(mark_cpu)}/"
                    f"{fmt_ns_as_ms(0)}+{fmt_ns_as_ms(markterm_cpu)}")
            _err(f"gc {numgc + 1} @{itoa_div((t_sweepterm - int(gc[GC_STARTNS])) // 1_000_000, 3)}s {util}%: "
                 f"{clock} ms clock, {cpus} ms cpu, {c.heap0 >> 20}->{heap1 >> 20}->{marked >> 20} MB, "
                 f"{(c.goal & (2 ** 64 - 1)) >> 20} MB goal, {nprocs} P" + (" (forced)" if forced else "") + "\n")
        if sm.tracing:
            trace.ev(sm, trace.EV_GCDONE, c.ncycle)
            trace.ev(sm, trace.EV_HEAPALLOC, heap1)
            trace.ev(sm, trace.EV_NEXTGC, int(h.hdr[H_NEXTGC]))
        self.sweep_pending = True
        self.cycle_done = c.ncycle
        self.last_end = t_end
        if c.nfin:
            mfinal.wake_fing(sm, h)
        if c.stw_mode == 2:
            self._sweep_some()

    # ---- roots ----

    def _m_rows(self):
        q, ctl = self.sm.q, self.sm.ctl
        for mid in range(q[ctl.sched + S_MCOUNT]):
            r = ctl.m(mid)
            yield mid, r, q[r + M_STATE], q[r + M_PID]

    def _roots_at_start(self, stw_mode):
        mk, h, q = self.marker, self.h, self.sm.q
        roots = [mfinal.roots(h), mfinal.special_children(h)] if mfinal.any_specials(h) else []
        if stw_mode:
            roots.append(mk.ctl_roots())
        for mid, r, st, pid in self._m_rows():
            if pid <= 0 or st in (MS_FREE, MS_DEAD):
                continue
            if st in _PARKED and not stw_mode:
                # stopped for us, or idle: the M scans its table before it runs a goroutine again
                # (proc.gcscan_self), or we do it while it stays idle (_scan_idle)
                q[r + M_GCSCAN] = 1
            else:
                # in a system call, or on its way to park: now, with the world stopped
                slot = mk.slot_of_pid(pid)
                if slot is not None:
                    roots.append(mk.root_table(slot))
        if roots:
            mk.blacken(np.concatenate(roots))

    def _scans_pending(self):
        q = self.sm.q
        return any(q[r + M_GCSCAN] for _, r, _, _ in self._m_rows())

    def _scan_idle(self):
        """Scan the tables of Ms still idle since the mark started (claimed under the sched lock,
        so an M that wakes meanwhile waits for us in proc.gcscan_self)."""
        mk, sm, q = self.marker, self.sm, self.sm.q
        for mid, r, st, pid in self._m_rows():
            if q[r + M_GCSCAN] != 1 or st not in _IDLE or pid <= 0:
                continue
            mstate.acq(sm.schedlock)
            claim = q[r + M_GCSCAN] == 1 and q[r + M_STATE] in _IDLE
            if claim:
                q[r + M_GCSCAN] = 2
            mstate.rel(sm.schedlock)
            if claim:
                slot = mk.slot_of_pid(pid)
                if slot is not None:
                    mk.blacken(mk.root_table(slot))
                q[r + M_GCSCAN] = 0

    def _scan_leftover_roots(self):
        """At mark termination: an M that has not scanned its table yet (it died, or lost its P in
        a resize) is scanned here, the world stopped.  (A plain loop: this runs in the pause.)"""
        mk, q, ctl = self.marker, self.sm.q, self.sm.ctl
        for mid in range(q[ctl.sched + S_MCOUNT]):
            r = ctl.m(mid)
            if q[r + M_GCSCAN]:          # (3: stopped halfway through its own scan: done again)
                q[r + M_GCSCAN] = 0
                pid = q[r + M_PID]
                slot = mk.slot_of_pid(pid) if pid > 0 else None
                if slot is not None:
                    mk.blacken(mk.root_table(slot))

    def _drain_all(self):
        mk = self.marker
        while True:
            if mk.collect_dirty() or mk.pending():
                mk.drain()
            if not mk.collect_dirty() and not mk.pending():
                return

    def _checkmark(self):
        mk, h = self.marker, self.h
        roots = [mk.ctl_roots(), mfinal.roots(h), mfinal.special_children(h)]
        for mid, r, st, pid in self._m_rows():
            slot = mk.slot_of_pid(pid) if pid > 0 else None
            if slot is not None:
                roots.append(mk.root_table(slot))
        w = mk.checkmark(np.concatenate(roots))
        if w is not None:
            raise _Fatal(f"runtime:greyobject: checkmarks finds unexpected unmarked object obj={w:#x}\n",
                         "checkmark found unmarked object")

    def _fatal(self, pre, msg, stopped_at=None):
        """A fatal error found by the collector: report it and end the program (the world is
        restarted first if it was stopped, so that M0 can tear down)."""
        tb.write_err(pre + f"fatal error: {msg}\n")
        mstate.request_exit(self.sm, 2, EXIT_FATAL)
        self.h.gc[GC_PHASE] = PH_OFF
        if stopped_at is not None:
            stw.start_the_world(self.sm, stopped_at)
        raise _Aborted()

    # ---- sweeping ----

    def _unswept(self):
        h = self.h
        n = int(h.hdr[H_ARENA_PAGES])
        sg = h.gc[GC_SWEEPGEN]
        return np.flatnonzero((h.s_state[:n] == S_INUSE) & (h.s_sweepgen[:n] != sg))

    def _sweep_some(self, limit=SWEEP_BATCH):
        if not self.sweep_pending:
            return False
        spans = self._unswept()
        if not len(spans):
            self.sweep_pending = False
            self.h.gc[GC_DONE] = self.cycle_done
            return False
        self._sweep(spans[:limit])
        return True

    def sweep_all(self):
        while True:
            spans = self._unswept()
            if not len(spans):
                break
            for i in range(0, len(spans), 256):
                self._sweep(spans[i:i + 256])
                self.tick()
        if self.sweep_pending:
            self.sweep_pending = False
            self.h.gc[GC_DONE] = self.cycle_done

    def _sweep(self, spans):
        h = self.h
        sg = h.gc[GC_SWEEPGEN]
        trace = _tracefree if h.gc[GC_ALLOCFREETRACE] else None
        cls = h.s_sc[spans].astype(np.int64) >> 1
        for s, c in zip(spans.tolist(), cls.tolist()):
            if c == 0:
                with h.lock:
                    if h.s_state[s] == S_INUSE and h.s_sweepgen[s] != sg and (int(h.s_sc[s]) >> 1) == 0:
                        mcentral.sweep_large_locked(h, s, trace)
                continue
            with h.central_lock(c):
                # the record is read under the heap lock too: a span being carved (cache_span,
                # under the heap lock alone) is in use before its class, meta block and sweepgen
                # are written, and a sweep of that half-made record freed another span's objects.
                # Once seen whole, in use and of class c, it stays so while we hold c's lock.
                with h.lock:
                    ok = h.s_state[s] == S_INUSE and h.s_sweepgen[s] != sg and (int(h.s_sc[s]) >> 1) == c
                if ok:
                    mcentral.sweep_span_locked(h, s, trace)

    # ---- the scavenger ----

    def _scavenge_idle(self, now):
        gc = self.h.gc
        last = int(gc[GC_LASTSCVG]) or int(gc[GC_STARTNS])
        if now - last < SCAVENGE_PERIOD_NS:
            return
        gc[GC_LASTSCVG] = now
        scavenge(self.h, int(gc[GC_NSCVG]))
        gc[GC_NSCVG] += 1


def scavenge(h, k):
    """Return idle pages to the OS; scvg lines under gctrace (k = -1 for FreeOSMemory)."""
    released = h.scavenge()
    if h.gc[GC_GCTRACE]:
        st = mstats.read(h, buckhash_bytes())
        if released >> 20:
            _err(f"scvg{k}: {released >> 20} MB released\n")
        _err(f"scvg{k}: inuse: {st['HeapInuse'] >> 20}, idle: {st['HeapIdle'] >> 20}, sys: {st['HeapSys'] >> 20}, "
             f"released: {st['HeapReleased'] >> 20}, consumed: {(st['HeapSys'] - st['HeapReleased']) >> 20} (MB)\n")
    return released


def _tracefree(addrs, size):
    _err("".join(f"tracefree({a:#x}, {size:#x})\n" for a in np.asarray(addrs).tolist()))


# ---- what the Ms call ----

def request_and_wait(m):
    """runtime.GC(): run a full cycle (after the one in progress, if any) and wait for its sweep.
    Only the calling goroutine waits; its M runs others meanwhile."""
    h = m.heap
    gc = h.gc
    if gc[GC_SBRK]:
        return
    target = int(gc[GC_STARTED]) + 1
    if gc[GC_FORCEDREQ] < target:
        gc[GC_FORCEDREQ] = target
    m.sysmonnote.release()
    delay = 50e-6
    while gc[GC_DONE] < target:
        if gc[GC_FORCEDREQ] < target:
            gc[GC_FORCEDREQ] = target
        proc.sleep(delay)
        delay = min(delay * 2, 2e-3)


def read_stats(h, st):
    """Add the collector's MemStats fields to st (a dict from mstats.read)."""
    gc = h.gc
    st["NumGC"] = int(gc[GC_NUMGC])
    st["NumForcedGC"] = int(gc[GC_NUMFORCED])
    st["PauseTotalNs"] = int(gc[GC_PAUSETOTAL])
    st["PauseNs"] = [int(x) for x in gc[GC_PAUSENS:GC_PAUSENS + 256]]
    st["PauseEnd"] = [int(x) for x in gc[GC_PAUSEEND:GC_PAUSEEND + 256]]
    st["LastGC"] = int(gc[GC_LASTGC])
    st["GCCPUFraction"] = float(_f64(h)[GC_CPUFRACTION])
    st["EnableGC"] = True
    st["DebugGC"] = False
    return st


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
