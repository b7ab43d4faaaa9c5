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
    traceout  the trace in Go's format, written by the coordinator, read by ReadTrace on any M
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

WORD = 8
MAXM = 10000            # Go's default thread limit; debug.SetMaxThreads cannot raise it past this
MAXG = 1 << 20          # G rows reserved; committed CHUNK at a time
MAXSUDOG = 1 << 20
CHUNK = 4096
RUNQ = 256              # Go's per-P ring
NSITES = 1 << 15
SITEBYTES = 1 << 21
NFNPICK = 1 << 12           # msg.py: kept pickles of goroutine functions, appended once each
FNPICKBYTES = 1 << 20
NPAUSE = 256
NONE = -1

# the sizes of the regions that symtab.py, mprof.py and trace.py keep here
NFUNC = 1 << 14                      # functions per runtime
FUNCBYTES = 1 << 21
FT_WORDS = 4                         # a functab row: hash, offset, length, flags
NBUCKET = 4096                       # profile buckets
BK_WORDS = 64
NBUCKHASH = 8192
NPROFOBJ = 1 << 16                   # sampled heap objects
PO_WORDS = 3                         # a profobj row: address, bucket, mark byte index
NTRACEBUF = 65                       # trace rings: the coordinator + Ms 0..63 (a later M's events are not traced)
TRACEBUF_WORDS = 1 << 17             # 1 MiB each: 32766 events
TRACEOUT_BYTES = 1 << 22             # the converted trace on its way to ReadTrace

# ---- sched header words ----
S_GOMAXPROCS = 0
S_GOIDGEN = 1
S_GQHEAD = 2
S_GQTAIL = 3
S_GQSIZE = 4
S_PIDLE = 5
S_NPIDLE = 6
S_NMSPINNING = 7
S_MCOUNT = 8
S_MAXMCOUNT = 9
S_GCWAITING = 10
S_STOPWAIT = 11
S_STOPPER = 12
S_SYSMONWAIT = 13
S_EXIT = 14
S_EXITKIND = 15
S_MAINGOEXIT = 16
S_GFREE = 17
S_NGALLOC = 18
S_SGFREE = 19
S_NSGALLOC = 20
S_NSITES = 21
S_SITEBYTES = 22
S_TRACEBACK = 23
S_SCHEDTRACE = 24
S_SCHEDDETAIL = 25
S_STARTNS = 26
S_NSTW = 27
S_STWTOTAL = 28
S_M0PID = 29
S_COORDPID = 30
S_DUMPREQ = 31
S_PANICKING = 32
S_PAUSEIDX = 33
S_NCPU = 34
S_DEAD = 35
S_ATTN = 36
S_NFUNC = 37
S_FUNCBYTES = 38
S_PROFCYCLE = 39
S_NBUCKET = 40
S_NPROFOBJ = 41
S_MEMPROFRATE = 42
S_BLOCKRATE = 43
S_MUTEXRATE = 44
S_CPUHZ = 45
S_TRACE = 46
S_TRACESTART = 47
S_PROFSYNC = 48
S_NCGOCALL = 49
S_NFNPICK = 50
S_FNPICKBYTES = 51
S_TIMERS = 52          # the timer goroutine's state object (timers.py), 0 before the first timer
S_TIMERG = 53          # its G slot + 1 (a system goroutine: NumGoroutine and tracebacks leave it out)
S_TOUTW = 54           # trace.py: bytes of the Go-format trace the coordinator wrote to "traceout"
S_TOUTR = 55           # ... and readers took (ReadTrace, from any M)
S_TRACERDR = 56        # 1: a ReadTrace is under way; 2: some goroutine has read this trace
S_MAXSTACK = 57        # debug.SetMaxStack's limit in bytes (0: Go's default, 1000000000)
S_GATEWAYG = 58        # cluster mode: the gateway goroutine's G slot + 1 (a system goroutine, as S_TIMERG)
_S_COUNT = 59
SCHED_WORDS = 64
assert _S_COUNT <= SCHED_WORDS

# S_ATTN is nonzero while GCWAITING or EXIT is: the one word a safe point reads
# exit kinds (S_EXITKIND); S_EXIT holds the exit status + 1 once the program is ending
EXIT_MAIN, EXIT_PANIC, EXIT_DEADLOCK, EXIT_GOEXIT, EXIT_FATAL, EXIT_SIGNAL, EXIT_OSEXIT = range(7)

# ---- P rows ----
P_STATUS = 0
P_M = 1
P_LINK = 2
P_SCHEDTICK = 3
P_SYSCALLTICK = 4
P_RQHEAD = 5
P_RQTAIL = 6
P_RUNNEXT = 7
P_SMTICK = 8
P_SMWHEN = 9
P_SMSTICK = 10
P_SMG = 11
_P_COUNT = 12
P_RUNQ = 16
P_WORDS = P_RUNQ + RUNQ
# P status: Go's numbers
P_IDLE, P_RUNNING, P_SYSCALL, P_GCSTOP, P_DEAD = range(5)

# ---- M rows ----
M_PID = 0
M_TID = 1
M_CPU = 2
M_P = 3
M_NEXTP = 4
M_CURG = 5
M_LOCKEDG = 6
M_STATE = 7
M_SPINNING = 8
M_RQHEAD = 9
M_RQTAIL = 10
M_PREEMPT = 11
M_NTIMERS = 12
M_STAMP = 13
M_WAKEUPS = 14
M_GCREATED = 15
M_GEXITED = 16
M_GCSCAN = 17
M_CREATEBK = 18
M_NCGOCALL = 19
M_NLIVE = 20
M_NBOUND = 21
_M_COUNT = 22
M_WORDS = 32
# M states
(MS_FREE, MS_STARTING, MS_RUNNING, MS_IDLE, MS_NEEDP, MS_LOCKEDWAIT, MS_SYSCALL, MS_GCSTOP,
 MS_DEAD) = range(9)
MSTATE_NAMES = ["free", "starting", "running", "idle", "needp", "lockedwait", "syscall", "gcstop", "dead"]

# ---- G rows ----
G_GOID = 0
G_STATUS = 1
G_WAIT = 2
G_M = 3
G_LOCKEDM = 4
G_LINK = 5
G_PARENT = 6
G_SITE = 7
G_PAYLEN = 8
G_PAYADDR = 9
G_PARAM = 10
G_SELDONE = 11
G_FNLEN = 12
G_NPTR = 13
G_PTR0 = 14
G_PTR1 = 15
G_PTR2 = 16
G_PTR3 = 17
G_WAITSINCE = 18
G_LABELS = 19           # the goroutine's profiler labels (runtime/pprof): a text id + 1, 0 for none
G_TRACEX = 20           # the S_TRACESTART of the trace that found this goroutine existing (trace.py)
_G_COUNT = 21
G_NPTRS = 4             # heap pointers a payload may carry in the row itself (G_PTR0..3, traced)
G_INLINE = 24
G_WORDS = 56
G_INLINE_BYTES = (G_WORDS - G_INLINE) * WORD
# G status: Go's numbers
G_IDLE, G_RUNNABLE, G_RUNNING, G_SYSCALL, G_WAITING, G_DEAD = 0, 1, 2, 3, 4, 6

WAIT_REASONS = ["", "chan receive", "chan send", "select", "select (no cases)", "semacquire", "sleep",
                "chan receive (nil chan)", "chan send (nil chan)", "locked to thread", "GC assist wait",
                "finalizer wait", "timer goroutine (idle)"]
(W_NONE, W_CHANRECV, W_CHANSEND, W_SELECT, W_SELECTNOCASES, W_SEMACQUIRE, W_SLEEP, W_CHANRECVNIL,
 W_CHANSENDNIL, W_LOCKED, W_GCASSIST, W_FINALIZER, W_TIMERIDLE) = range(len(WAIT_REASONS))

# ---- sudog rows ----
SG_G = 0
SG_NEXT = 1
SG_PREV = 2
SG_OBJ = 3
SG_ISSELECT = 4
SG_CASEI = 5
SG_SUCCESS = 6
SG_ELEMLEN = 7
SG_ELEMADDR = 8
_SG_COUNT = 9
SG_INLINE = 12
SG_WORDS = 24
SG_INLINE_BYTES = (SG_WORDS - SG_INLINE) * WORD

assert _P_COUNT <= P_RUNQ and _M_COUNT <= M_WORDS and _G_COUNT <= G_INLINE and _SG_COUNT <= SG_INLINE

# ---- regions ----
_REGIONS = [
    ("sched", SCHED_WORDS),
    ("p", MAXP * P_WORDS),
    ("m", MAXM * M_WORDS),
    ("pause", NPAUSE * 2),
    ("gq", MAXG),            # the global run queue: a ring of G slots that never fills (<= MAXG Gs)
    ("siteidx", NSITES * 2),
    ("sitebytes", SITEBYTES // WORD),
    ("fnidx", NFNPICK * 2),
    ("fnbytes", FNPICKBYTES // WORD),
    ("functab", NFUNC * FT_WORDS),          # symtab.py: the functions PCs name
    ("funcbytes", FUNCBYTES // WORD),
    ("buckets", NBUCKET * BK_WORDS),        # mprof.py: profile buckets, their hash index, sampled objects
    ("buckhash", NBUCKHASH),
    ("profobj", NPROFOBJ * PO_WORDS),
    ("trace", NTRACEBUF * TRACEBUF_WORDS),  # trace.py: one event ring per M (+ the coordinator's)
    ("traceout", TRACEOUT_BYTES // WORD),   # trace.py: the Go-format bytes, coordinator -> ReadTrace
    ("g", MAXG * G_WORDS),
    ("sudog", (MAXG + MAXSUDOG) * SG_WORDS),   # row g < MAXG is G slot g's own; the rest a pool
]
OFF = {}
_o = 0
for _name, _words in _REGIONS:
    OFF[_name] = _o
    _o += (_words * WORD + 4095) & ~4095
CTL_SIZE = _o
FIXED = ("sched", "p", "m", "pause", "gq", "siteidx", "sitebytes", "fnidx", "fnbytes", "functab", "funcbytes", "buckets", "buckhash",
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


def buckhash_bytes():
    """MemStats.BuckHashSys: the profiling tables' share of the control segment."""
    return sum(_region_bytes(r) for r in ("functab", "funcbytes", "buckets", "buckhash", "profobj"))


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
