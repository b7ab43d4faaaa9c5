"""sysmon: the coordinator's watch over the Ps (Go's sysmon, proc.go), one round at a time.

The coordinator (mprt/boot.py) calls `retake` every round, between its sleeps on note.sysmon (20 us
doubling to 10 ms while nothing happens), and `write_schedtrace` every GODEBUG=schedtrace ms.

retake, for each P:
  - in a system call for a whole sysmon round (its syscalltick unchanged), and with work waiting or
    no spinning or idle M to notice it, or an M waiting for a P, or
    after 10 ms in any case: the P is taken from the M in
    the call (proc.retake_locked, under the sched lock, checked again there) and handed on.
  - running the same goroutine for FORCE_PREEMPT_NS (its schedtick and goroutine unchanged): the M is
    asked to yield (M_PREEMPT, read at its next safe point) and, unless asyncpreemptoff, signalled
    with SIGURG so a goroutine that never calls the runtime yields too (stw.py says where).
sysmon writes only its own SM* words of a P, and M_PREEMPT; everything else through proc.
"""
import time

from . import mstate, proc, schedule
from .ctl import (
    G_GOID,
    G_LOCKEDM,
    G_M,
    G_RUNNING,
    G_STATUS,
    G_WAIT,
    M_CURG,
    M_PID,
    M_PREEMPT,
    MAXM,
    NONE,
    P_M,
    P_RQHEAD,
    P_RQTAIL,
    P_RUNNEXT,
    P_RUNNING,
    P_SCHEDTICK,
    P_SMG,
    P_SMSTICK,
    P_SMTICK,
    P_SMWHEN,
    P_STATUS,
    P_SYSCALL,
    P_SYSCALLTICK,
    S_GCWAITING,
    S_GOMAXPROCS,
    S_GQSIZE,
    S_NGALLOC,
    S_NMSPINNING,
    S_NPIDLE,
    S_STARTNS,
    S_STOPWAIT,
    S_SYSMONWAIT,
)
from .snapshot import snapshot_from
from .traceback import write_err

SYSMON_MIN_S = 20e-6
SYSMON_MAX_S = 10e-3
FORCE_PREEMPT_NS = 10_000_000


def retake(sm, now):
    """sysmon's retake: Ps stuck in system calls go to other Ms; goroutines running for more than
    10 ms are asked to yield at their next safe point."""
    q, ctl, s = sm.q, sm.ctl, sm.ctl.sched
    acted = 0
    for p in range(q[s + S_GOMAXPROCS]):
        b = ctl.p(p)
        st = q[b + P_STATUS]
        if st == P_SYSCALL:
            t = q[b + P_SYSCALLTICK]
            if q[b + P_SMSTICK] != t:
                q[b + P_SMSTICK] = t
                q[b + P_SMWHEN] = now
                continue
            empty = q[b + P_RUNNEXT] == NONE and q[b + P_RQHEAD] == q[b + P_RQTAIL]
            if (empty and q[s + S_NMSPINNING] + q[s + S_NPIDLE] > 0 and now - q[b + P_SMWHEN] < 10_000_000
                    and schedule.needp_get_locked(sm) == NONE):
                continue
            mstate.acq(sm.schedlock)
            if q[b + P_STATUS] == P_SYSCALL and q[b + P_SYSCALLTICK] == t:
                proc.retake_locked(sm, p)
                acted += 1
            mstate.rel(sm.schedlock)
        elif st == P_RUNNING:
            # Go's schedtick watch, plus the goroutine seen: a P handed to another M, or a
            # goroutine resumed without a tick, starts the 10 ms over
            mid = q[b + P_M]
            curg = q[ctl.m(mid) + M_CURG] if mid != NONE else NONE    # before the tick (proc._execute_mark)
            t = q[b + P_SCHEDTICK]
            seen = curg * MAXM + mid if curg != NONE else NONE
            if q[b + P_SMTICK] != t or q[b + P_SMG] != seen:
                q[b + P_SMTICK] = t
                q[b + P_SMG] = seen
                q[b + P_SMWHEN] = now
            elif now - q[b + P_SMWHEN] >= FORCE_PREEMPT_NS and curg != NONE:
                q[ctl.m(mid) + M_PREEMPT] = 1
                q[b + P_SMWHEN] = now
                if sm.asyncpreempt:
                    # Go 1.14's asynchronous preemption: the signal reaches a goroutine that never
                    # calls the runtime (proc.on_sigurg)
                    mstate.signal_pids([q[ctl.m(mid) + M_PID]])
    return acted


def write_schedtrace(sm, detailed):
    """GODEBUG=schedtrace=X[,scheddetail=1]: Go's SCHED line (and P, M, G lines)."""
    q, ctl, s = sm.q, sm.ctl, sm.ctl.sched
    snap = snapshot_from(sm)
    ms = (time.monotonic_ns() - q[s + S_STARTNS]) // 1_000_000
    idle_threads = sum(1 for x in snap.ms if x.state in ("idle", "lockedwait"))
    line = (f"SCHED {ms}ms: gomaxprocs={snap.gomaxprocs} idleprocs={q[s + S_NPIDLE]} threads={len(snap.ms)} "
            f"spinningthreads={q[s + S_NMSPINNING]} idlethreads={idle_threads} runqueue={q[s + S_GQSIZE]}")
    if detailed:
        nlocked = sum(1 for x in snap.ms if x.state == "lockedwait")
        line += (f" gcwaiting={q[s + S_GCWAITING]} nmidlelocked={nlocked} stopwait={q[s + S_STOPWAIT]}"
                 f" sysmonwait={q[s + S_SYSMONWAIT]}\n")
        for p in snap.ps:
            b = ctl.p(p.id)
            line += (f"  P{p.id}: status={p.status} schedtick={q[b + P_SCHEDTICK]} syscalltick={q[b + P_SYSCALLTICK]}"
                     f" m={-1 if p.m is None else p.m} runqsize={p.runqsize} gfreecnt=0\n")
        for x in snap.ms:
            line += (f"  M{x.id}: p={-1 if x.p is None else x.p} curg={-1 if x.curg is None else x.curg}"
                     f" mallocing=0 throwing=0 preemptoff= locks=0 dying=0 helpgc=0"
                     f" spinning={str(x.state == 'spinning').lower()} blocked={str(x.state in ('idle', 'lockedwait', 'needp')).lower()}"
                     f" lockedg={-1 if x.lockedg is None else x.lockedg}\n")
        for g in range(q[s + S_NGALLOC]):
            r = ctl.g(g)
            st = q[r + G_STATUS]
            if q[r + G_GOID] == 0:
                continue
            mid = q[r + G_M] if st in (G_RUNNING, 3) else -1
            line += (f"  G{q[r + G_GOID]}: status={st}({proc.wait_reason(q[r + G_WAIT]) if st == 4 else ''})"
                     f" m={mid} lockedm={q[r + G_LOCKEDM]}\n")
    else:
        line += " [" + " ".join(str(p.runqsize) for p in snap.ps) + "]\n"
    write_err(line)


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
