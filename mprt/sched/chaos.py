"""GODEBUG=schedchaos=SEED: the scheduler's chaos mode, for tests.

sysmon (in the coordinator) draws from a random.Random(SEED) at every round and, with small
probabilities, does what a busy program would make happen at the worst moment:

    PREEMPT   a goroutine running on a P is asked to yield and sent SIGURG (a preemption at its
              next safe point, or at once if it runs its own code; a Gosched at a safe point)
    GC        a GC cycle is requested (GC_FORCEDREQ, as runtime.GC() does)
    PROCS     GOMAXPROCS changes to a random value in 1..2n (a stop and a start of the world with a
              resize); the next PROCS event puts it back, unless the program set it meanwhile

Every event goes through the runtime's own paths (M_PREEMPT and the signal, the collector's request
word, stop_the_world/start_the_world), so what chaos finds is what a program can meet.  sysmon runs
at least every CHAOS_ROUND_S while chaos is on.  A run that ends with a non-zero status names its
seed on stderr (boot.py), so it can be replayed; timing still differs between runs, so a replay
raises the odds of the same failure rather than reproducing it exactly.
"""
import random

from ..shm.layout import GC_FORCEDREQ, GC_STARTED, MAXP
from . import mstate, proc
from .ctl import M_PID, M_PREEMPT, NONE, P_M, P_RUNNING, P_STATUS, S_EXIT, S_GOMAXPROCS

CHAOS_ROUND_S = 0.001
P_PREEMPT = 0.15
P_GC = 0.02
P_PROCS = 0.005


class Chaos:
    """The coordinator's chaos state (process-local)."""

    def __init__(self, sm, seed):
        self.sm = sm
        self.seed = seed
        self.rng = random.Random(seed)
        self.changed = None      # (the GOMAXPROCS we set, the one to put back)
        self.events = {"preempt": 0, "gc": 0, "procs": 0}

    def step(self):
        sm, rng = self.sm, self.rng
        q, ctl, s = sm.q, sm.ctl, sm.ctl.sched
        if q[s + S_EXIT]:
            return
        x = rng.random()
        if x < P_PREEMPT:
            n = q[s + S_GOMAXPROCS]
            p = rng.randrange(n)
            b = ctl.p(p)
            mid = q[b + P_M]
            if q[b + P_STATUS] == P_RUNNING and mid != NONE:
                q[ctl.m(mid) + M_PREEMPT] = 1
                mstate.signal_pids([q[ctl.m(mid) + M_PID]])
                self.events["preempt"] += 1
        elif x < P_PREEMPT + P_GC:
            gc = sm.heap.gc
            target = int(gc[GC_STARTED]) + 1
            if gc[GC_FORCEDREQ] < target:
                gc[GC_FORCEDREQ] = target
            self.events["gc"] += 1
        elif x < P_PREEMPT + P_GC + P_PROCS:
            cur = int(q[s + S_GOMAXPROCS])
            if self.changed is not None:
                mine, back = self.changed
                self.changed = None
                if cur == mine and back != cur:
                    proc.gomaxprocs(sm, back)
            else:
                n = rng.randint(1, min(2 * cur, MAXP))
                if n != cur:
                    self.changed = (n, cur)
                    proc.gomaxprocs(sm, n)
            self.events["procs"] += 1


from .. import codeclass  # noqa: E402  (last: marks every function above)

codeclass.mark(__name__, codeclass.RUNTIME)
