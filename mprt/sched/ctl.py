"""The control segment: the scheduler's shared state (Go's runtime2.go).

One segment, /mprt.<rtid>.ctl, mapped by every process of the runtime and read as flat int64 words
(a memoryview for single words, numpy views for scans).  It holds

    sched   one header row (Go's schedt): queue heads, idle lists, counters, stop-the-world state
    gq      the global run queue, a ring of G slots (head and tail are sched words)
    P       MAXP rows: status, owner M, a 256-slot ring of G slots plus runnext
    M       MAXM rows: the process, its P, its current and locked G, its own ready and yield lists
    G       G rows, grown in chunks: goid, status, wait reason, the M it started on, its payload
    sudog   sudog rows, grown in chunks: a G waiting on a channel or a sync object.  Row g (g < MAXG)
            belongs to G slot g, for the common one-wait case; select takes rows from the pool above
    sites   creation sites ("created by" lines), appended once per site and process
    func    the functions that PCs name (symtab.py)
    prof    profile buckets, their hash index and the sampled heap objects (mprof.py)
    trace   the execution tracer's event rings, committed while tracing (trace.py)
    stw     the last 256 stop-the-world pauses

Who may write what (no GIL protects this memory):
  - sched words, the idle P and M lists, the needp list, every M's ready and yield lists, G status
    transitions to and from runnable, and M state words: with the sched lock.
  - a P's ring, head, tail and runnext: with that P's lock (the owner puts and takes, thieves take).
  - a P's status and owner: with the sched lock, except the running M's own syscall round trip,
    which holds the P's lock (entersyscall/exitsyscall against sysmon's retake).
  - a sudog: by the G that owns it until it is queued on a channel or sync object; then with that
    object's lock.
  - a G's payload and bookkeeping words (creation site, parent): by its creator before it is queued.
  - an M's PID, TID, CPU, CURG, RQ* reads and its counters (GCREATED, GEXITED, NTIMERS): written by
    the M itself (RQ* with the sched lock, as other Ms push there); M_PREEMPT: set by sysmon,
    cleared by the M; M_GCSCAN: set by the collector with the world stopped, cleared by the M once
    it has scanned its roots (mprt/gc/mgc.py).  A P's SM* words: sysmon's alone.
Lists are singly linked through G_LINK (G lists) or M_LINK / P_LINK, -1 terminated.
"""
import numpy as np

from ..shm.layout import MAXP
from ..shm.segment import Segment
from .mprof import BK_WORDS, NBUCKET, NBUCKHASH, NPROFOBJ, PO_WORDS
from .symtab import FT_WORDS, FUNCBYTES, NFUNC
from .trace import NTRACEBUF, TRACEBUF_WORDS

WORD = 8
MAXM = 10000            # Go's default thread limit; debug.SetMaxThreads cannot raise it past this
MAXG = 1 << 20          # G rows reserved; committed CHUNK at a time
MAXSUDOG = 1 << 20
CHUNK = 4096
RUNQ = 256              # Go's per-P ring
NSITES = 1 << 15
SITEBYTES = 1 << 21
NPAUSE = 256
NONE = -1

# ---- sched header words ----
_S = """GOMAXPROCS GOIDGEN GQHEAD GQTAIL GQSIZE PIDLE NPIDLE NMSPINNING MCOUNT MAXMCOUNT GCWAITING
STOPWAIT STOPPER SYSMONWAIT EXIT EXITKIND MAINGOEXIT GFREE NGALLOC SGFREE NSGALLOC NSITES SITEBYTES
TRACEBACK SCHEDTRACE SCHEDDETAIL STARTNS NSTW STWTOTAL M0PID COORDPID DUMPREQ PANICKING PAUSEIDX NCPU
DEAD ATTN NFUNC FUNCBYTES PROFCYCLE NBUCKET NPROFOBJ MEMPROFRATE BLOCKRATE MUTEXRATE CPUHZ TRACE
TRACESTART PROFSYNC NCGOCALL""".split()
for _i, _n in enumerate(_S):
    globals()["S_" + _n] = _i
SCHED_WORDS = 64
assert len(_S) <= SCHED_WORDS

# S_ATTN is nonzero while GCWAITING or EXIT is: the one word a safe point reads
# exit kinds (S_EXITKIND); S_EXIT holds the exit status + 1 once the program is ending
EXIT_MAIN, EXIT_PANIC, EXIT_DEADLOCK, EXIT_GOEXIT, EXIT_FATAL, EXIT_SIGNAL, EXIT_OSEXIT = range(7)

# ---- P rows ----
_P = "STATUS M LINK SCHEDTICK SYSCALLTICK RQHEAD RQTAIL RUNNEXT SMTICK SMWHEN SMSTICK SMG".split()
for _i, _n in enumerate(_P):
    globals()["P_" + _n] = _i
P_RUNQ = 16
P_WORDS = P_RUNQ + RUNQ
# P status: Go's numbers
P_IDLE, P_RUNNING, P_SYSCALL, P_GCSTOP, P_DEAD = range(5)

# ---- M rows ----
_M = """PID TID CPU P NEXTP CURG LOCKEDG STATE SPINNING RQHEAD RQTAIL PREEMPT NTIMERS STAMP WAKEUPS
GCREATED GEXITED GCSCAN CREATEBK NCGOCALL NLIVE NBOUND""".split()
for _i, _n in enumerate(_M):
    globals()["M_" + _n] = _i
M_WORDS = 32
# M states
(MS_FREE, MS_STARTING, MS_RUNNING, MS_IDLE, MS_NEEDP, MS_LOCKEDWAIT, MS_SYSCALL, MS_GCSTOP,
 MS_DEAD) = range(9)
MSTATE_NAMES = ["free", "starting", "running", "idle", "needp", "lockedwait", "syscall", "gcstop", "dead"]

# ---- G rows ----
_G = """GOID STATUS WAIT M LOCKEDM LINK PARENT SITE PAYLEN PAYADDR PARAM SELDONE FNLEN NPTR PTR0 PTR1
PTR2 PTR3 WAITSINCE""".split()
for _i, _n in enumerate(_G):
    globals()["G_" + _n] = _i
G_NPTRS = 4             # heap pointers a payload may carry in the row itself (G_PTR0..3, traced)
G_INLINE = 24
G_WORDS = 56
G_INLINE_BYTES = (G_WORDS - G_INLINE) * WORD
# G status: Go's numbers
G_IDLE, G_RUNNABLE, G_RUNNING, G_SYSCALL, G_WAITING, G_DEAD = 0, 1, 2, 3, 4, 6

WAIT_REASONS = ["", "chan receive", "chan send", "select", "select (no cases)", "semacquire", "sleep",
                "chan receive (nil chan)", "chan send (nil chan)", "locked to thread", "GC assist wait",
                "finalizer wait"]
(W_NONE, W_CHANRECV, W_CHANSEND, W_SELECT, W_SELECTNOCASES, W_SEMACQUIRE, W_SLEEP, W_CHANRECVNIL,
 W_CHANSENDNIL, W_LOCKED, W_GCASSIST, W_FINALIZER) = range(len(WAIT_REASONS))

# ---- sudog rows ----
_SG = "G NEXT PREV OBJ ISSELECT CASEI SUCCESS ELEMLEN ELEMADDR".split()
for _i, _n in enumerate(_SG):
    globals()["SG_" + _n] = _i
SG_INLINE = 12
SG_WORDS = 24
SG_INLINE_BYTES = (SG_WORDS - SG_INLINE) * WORD

assert len(_P) <= P_RUNQ and len(_M) <= M_WORDS and len(_G) <= G_INLINE and len(_SG) <= SG_INLINE

# ---- regions ----
_REGIONS = [
    ("sched", SCHED_WORDS),
    ("p", MAXP * P_WORDS),
    ("m", MAXM * M_WORDS),
    ("pause", NPAUSE * 2),
    ("gq", MAXG),            # the global run queue: a ring of G slots that never fills (<= MAXG Gs)
    ("siteidx", NSITES * 2),
    ("sitebytes", SITEBYTES // WORD),
    ("functab", NFUNC * FT_WORDS),          # symtab.py: the functions PCs name
    ("funcbytes", FUNCBYTES // WORD),
    ("buckets", NBUCKET * BK_WORDS),        # mprof.py: profile buckets, their hash index, sampled objects
    ("buckhash", NBUCKHASH),
    ("profobj", NPROFOBJ * PO_WORDS),
    ("trace", NTRACEBUF * TRACEBUF_WORDS),  # trace.py: one event ring per M (+ the coordinator's)
    ("g", MAXG * G_WORDS),
    ("sudog", (MAXG + MAXSUDOG) * SG_WORDS),   # row g < MAXG is G slot g's own; the rest a pool
]
OFF = {}
_o = 0
for _name, _words in _REGIONS:
    OFF[_name] = _o
    _o += (_words * WORD + 4095) & ~4095
CTL_SIZE = _o
FIXED = ("sched", "p", "m", "pause", "gq", "siteidx", "sitebytes", "functab", "funcbytes", "buckets", "buckhash",
         "profobj")


class Ctl:
    """One process's mapping of the control segment."""

    def __init__(self, name, create=False):
        self.seg = Segment(name, size=CTL_SIZE if create else None, create=create)
        if create:
            for r in FIXED:
                self.seg.commit(OFF[r], _region_bytes(r))
        mm = self.seg.mm
        self.q = memoryview(mm).cast("q")                       # every word, by index
        self.words = np.frombuffer(mm, dtype=np.int64)          # the same, for scans
        self.base = {r: OFF[r] // WORD for r in OFF}
        self.sched = self.base["sched"]
        self.pbase = self.base["p"]
        self.mbase = self.base["m"]
        self.gbase = self.base["g"]
        self.sgbase = self.base["sudog"]
        self.u8 = np.frombuffer(mm, dtype=np.uint8)

    def p(self, i):
        return self.pbase + i * P_WORDS

    def m(self, i):
        return self.mbase + i * M_WORDS

    def g(self, i):
        return self.gbase + i * G_WORDS

    def sg(self, i):
        return self.sgbase + i * SG_WORDS

    def table(self, region, rows, width):
        b = self.base[region]
        return self.words[b:b + rows * width].reshape(rows, width)

    def commit_rows(self, region, row0, row1, width):
        """Commit region rows [row0, row1) (caller holds the sched lock)."""
        self.seg.commit(OFF[region] + row0 * width * WORD, (row1 - row0) * width * WORD)

    def close(self):
        for v in (self.q,):
            try:
                v.release()
            except (BufferError, ValueError):
                pass
        self.words = self.u8 = None
        self.seg.close()


def _region_bytes(r):
    for name, words in _REGIONS:
        if name == r:
            return words * WORD
    raise KeyError(r)


from ..shm import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
