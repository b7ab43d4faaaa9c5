"""Boot and teardown: mprt.run, the worker Ms' start, and the coordinator (sysmon).

    M0 (the caller of mprt.run)                   coordinator (forked from M0 at boot)
      creates heap + control segment                sysmon: retakes Ps from system calls, asks
      runs main as goroutine 1, pinned to a CPU     goroutines past 10 ms to yield, prints
      tears everything down when main returns       schedtrace, notices dead processes
      or another process ends the program           forks worker Ms on request (note.sysmon)
                                                  worker M k (forked by the coordinator)
                                                    attaches the heap (its mcache is cache k),
                                                    runs proc.schedule_loop until the end

Ms are forked by the coordinator rather than by whoever needs one: the coordinator runs no Python
user code and holds no goroutines, so a fork copies nothing that must be undone, and the fork
happens after the program's imports (about 2-3 ms) instead of a fresh interpreter (~100 ms).
Worker Ms die with the coordinator (PR_SET_PDEATHSIG); the coordinator tears the runtime down if M0
dies; M0 kills whatever is left at teardown.  Environment (GOMAXPROCS, GOGC, GODEBUG, GOTRACEBACK)
is read here, once, at boot.
"""
import ctypes
import io
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

import greenlet
import posix_ipc

from . import cluster as _cluster
from . import codeclass
from .errors import Goexit
from .gc import mgc
from .sched import mprof, msg, mstate, proc, schedule, stw, symtab, sysmon, traceback
from .sched import trace as _trace
from .sched.chan import NLOCKS
from .sched.chaos import CHAOS_ROUND_S, Chaos
from .sched.ctl import (
    EXIT_FATAL,
    EXIT_MAIN,
    EXIT_PANIC,
    G_GOID,
    G_LINK,
    G_LOCKEDM,
    G_M,
    G_RUNNING,
    G_STATUS,
    M_CURG,
    M_LOCKEDG,
    M_P,
    M_PID,
    M_STATE,
    M_TID,
    MAXM,
    MS_DEAD,
    MS_RUNNING,
    MS_STARTING,
    NONE,
    P_IDLE,
    P_LINK,
    P_M,
    P_RUNNEXT,
    P_RUNNING,
    P_SMSTICK,
    P_SMTICK,
    P_STATUS,
    S_ATTN,
    S_COORDPID,
    S_EXIT,
    S_EXITKIND,
    S_GFREE,
    S_GOMAXPROCS,
    S_M0PID,
    S_MAINGOEXIT,
    S_MAXMCOUNT,
    S_MCOUNT,
    S_MEMPROFRATE,
    S_NCPU,
    S_NPIDLE,
    S_PIDLE,
    S_SCHEDDETAIL,
    S_SCHEDTRACE,
    S_SGFREE,
    S_STARTNS,
    S_STOPPER,
    S_TRACE,
    S_TRACEBACK,
    Ctl,
)
from .sched.msgcheck import MsgCheck
from .settings import MEMPROFRATE, config, parse_arena, parse_godebug, parse_gogc, parse_gomaxprocs
from .shm import malloc
from .shm.layout import MAXP
from .shm.segment import Lock, shm_name, unlink_runtime

EXIT_GRACE_S = 0.2
_PR_SET_PDEATHSIG = 1

class _LineSink(io.BufferedIOBase):
    """The bytes layer under stdout and stderr while a runtime runs, in place of a BufferedWriter:
    each line the text layer flushes goes out in whole write(2) calls made from this Python code.
    A BufferedWriter holds a per-thread lock across its write(2), and a signal that interrupts a
    blocking write runs its handlers inside it: a goroutine preempted there left the lock to the
    next goroutine of its M ("reentrant call inside BufferedWriter").  Here the handler finds this
    runtime frame on top, where the goroutine is never switched out."""

    def __init__(self, fd, name):
        super().__init__()
        self._fd, self.name = fd, name

    def writable(self):
        return True

    def fileno(self):
        return self._fd

    def isatty(self):
        return os.isatty(self._fd)

    def write(self, b):
        mv = memoryview(b).cast("B")
        n, i = len(mv), 0
        while i < n:
            i += os.write(self._fd, mv[i:])
        return n

    def flush(self):
        pass


class _LineText(io.TextIOBase):
    """The text layer of stdout and stderr while a runtime runs, over a _LineSink: each goroutine's
    text is kept apart until it ends a line, and the line goes out in one write.  A TextIOWrapper
    shared by the goroutines of an M mixed them: print() writes its arguments, separators and end
    one by one, and Python code that runs in between (an argument's __str__ that parks, a finalizer
    run by the collector that a signal handler preempts) let another goroutine of the M write into
    the same pending text ("worker 1 ...worker 2 ...\n").  This code is runtime code, so a
    goroutine is never switched out inside it.  flush() writes the caller's unended line,
    flush_all() everyone's (an M's exit, a fork, the end of the run: _flush_lines)."""

    line_buffering = True

    def __init__(self, sink, encoding, errors):
        super().__init__()
        self.buffer = sink
        self._enc, self._err = encoding, errors
        self._part = {}          # (G slot, goroutine id) -> the text written since its last newline

    encoding = property(lambda self: self._enc)
    errors = property(lambda self: self._err)
    name = property(lambda self: self.buffer.name)

    def writable(self):
        return True

    def fileno(self):
        return self.buffer.fileno()

    def isatty(self):
        return self.buffer.isatty()

    def reconfigure(self, *, encoding=None, errors=None, **_):
        self.flush()
        if encoding is not None:
            self._enc = encoding
            self._err = errors or "strict"
        elif errors is not None:
            self._err = errors

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        k = self._key()
        i = s.rfind("\n")
        if i < 0:
            if s:
                self._part[k] = self._part.get(k, "") + s
            return len(s)
        line = self._part.pop(k, "") + s[:i + 1]
        if i + 1 < len(s):
            self._part[k] = s[i + 1:]
        self.buffer.write(line.encode(self._enc, self._err))
        return len(s)

    def _key(self):
        m = mstate.current_m_or_none()
        return None if m is None else (m.curg, m.curgoid)

    def flush(self):
        """The calling goroutine's unended line (print(..., flush=True), logging's handlers): another
        goroutine's half line stays until it ends it."""
        text = self._part.pop(self._key(), None)
        if text:
            self.buffer.write(text.encode(self._enc, self._err))

    def flush_all(self):
        """Every unended line (an M's exit, a fork, the end of the run)."""
        part, self._part = self._part, {}
        for text in part.values():
            self.buffer.write(text.encode(self._enc, self._err))


def _whole_lines():
    """Go's Println is one write(2) of the whole line, at once.  Every M's stdout and stderr are
    _LineText over a _LineSink (a line goes out in one write as soon as it ends, PYTHONUNBUFFERED or
    not, to a terminal, a pipe or a file): lines of goroutines, on one M or on several, never mix,
    and none waits in a buffer behind a later one.  Returns what to restore (M0, after the run); a
    stream that is not a file's TextIOWrapper (a capture object) is left as it is."""
    saved = []
    for name in ("stdout", "stderr"):
        f = getattr(sys, name)
        try:
            if not isinstance(f, io.TextIOWrapper):
                continue        # (a capture object; or an M forked from M0 with its _LineText already)
            fd = f.fileno()
            f.flush()
            new = _LineText(_LineSink(fd, getattr(f.buffer, "name", fd)), f.encoding, f.errors)
        except (AttributeError, ValueError, OSError):
            continue
        setattr(sys, name, new)
        saved.append((name, f, new))
    return saved


def _flush_lines():
    """Every unended line of stdout and stderr (before a fork, at an M's exit)."""
    for f in (sys.stdout, sys.stderr):
        try:
            getattr(f, "flush_all", f.flush)()
        except (ValueError, OSError, AttributeError):
            pass


def _restore_lines(saved):
    for name, old, new in saved:
        try:
            new.flush_all()
        except (ValueError, OSError):
            pass
        if getattr(sys, name) is new:
            setattr(sys, name, old)


def _setup_common_signals():
    signal.signal(signal.SIGURG, stw.on_sigurg)


# ---- run ----

@codeclass.mark_root
def run(main: Callable[..., object], *args: object) -> None:
    """Boot the runtime in this process (M0), run main(*args) as goroutine 1, tear down."""
    if mstate.current_m_or_none() is not None:
        raise RuntimeError("mprt.run: a runtime is already running in this process")
    if not callable(main):
        raise TypeError(f"mprt.run: {main!r} is not callable")
    env = os.environ
    cl = _cluster.parse(env.get("MPRT_CLUSTER")) if _cluster.NODE is None else None
    saved_affinity = os.sched_getaffinity(0)
    cpus = sorted(saved_affinity)
    allcpus = cpus
    if cl is not None and cl[0] == "local":
        cpus = _cluster.local_shares(cpus, cl[1])[0]      # node 0's share; the others' are theirs
        os.sched_setaffinity(0, cpus)
    ncpu = len(cpus)
    nprocs = parse_gomaxprocs(env.get("GOMAXPROCS"), ncpu)
    gcpercent = parse_gogc(env.get("GOGC"))
    godebug = parse_godebug(env.get("GODEBUG"))
    tb = traceback.parse_gotraceback(env.get("GOTRACEBACK"))
    config.update(gomaxprocs=nprocs, gogc=gcpercent, godebug=godebug, gotraceback=tb)
    heap = malloc.create(arena_max=parse_arena(env.get("MPRT_ARENA")), gcpercent=gcpercent, p=0)
    rtid = heap.rtid
    mgc.init_pacer(heap, gcpercent)
    mgc.init_debug(heap, godebug)
    old_handlers = {}
    m = None
    code, exc = 0, None
    saved_lines = _whole_lines()
    msg.set_check(MsgCheck() if godebug.get("msgcheck") else None)
    try:
        ctl = _create_control(rtid, nprocs, ncpu, tb, godebug)
        symtab.reset()
        mprof.reset()
        m = mstate.M(ctl, heap, 0, rtid, True)
        m.asyncpreempt = not godebug.get("asyncpreemptoff")
        m.schedcheck = bool(godebug.get("schedcheck"))
        mstate.set_current_m(m)
        heap.sample_left = mprof.next_sample(q_rate(m))
        m.g1 = _boot_m0(m)
        for sig in (signal.SIGURG, signal.SIGTERM, signal.SIGINT):
            old_handlers[sig] = signal.getsignal(sig)
        _setup_common_signals()
        signal.signal(signal.SIGTERM, _on_sigterm)
        for sig in (signal.SIGCHLD, signal.SIGALRM):
            old_handlers[sig] = signal.getsignal(sig)
        signal.signal(signal.SIGCHLD, _on_sigchld)
        if old_handlers[signal.SIGINT] is signal.default_int_handler:
            signal.signal(signal.SIGINT, _on_sigterm)
        schedule.acquirep(m, 0)
        codeclass.prime()         # before the forks: no M pays for it in its first signal handler
        if cl is not None:
            from .cluster import node as _cnode  # cluster mode only; Ray runs in a helper process
            _cnode.start_driver(cl, allcpus)        # before the forks: every process knows its node
        _start_coordinator(m)
        if cl is not None and _boot_cluster(m):
            code = _ending_report(m)        # the program ended while the cluster started
        else:
            code, exc = _run_main(m, main, args)
    finally:
        _teardown(m, heap, saved_affinity, old_handlers)
        _restore_lines(saved_lines)
    if isinstance(exc, mstate.Terminated):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
    if code and "schedchaos" in config["godebug"]:
        traceback.write_err(f"mprt: the run had GODEBUG=schedchaos={config['godebug']['schedchaos']} "
                            f"(run again with it to replay)\n")
    if exc is not None:
        raise exc
    if code == 2 and config["gotraceback"][2] and m is not None:
        signal.signal(signal.SIGABRT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGABRT)
    if code:
        raise SystemExit(code)


def _boot_cluster(m):
    """Cluster mode (MPRT_CLUSTER): start the other nodes before main.  True if the program ended
    meanwhile (a node's fatal error)."""
    from .cluster import node as _cnode
    try:
        _cnode.connect_driver()
    except mstate.Exiting:
        _unwound(m)
        return True
    return False


def _on_sigchld(signum, frame):
    """M0's child is the coordinator: if it died, the program ends with a fatal error at once (the
    Ms, its children, die with it: PR_SET_PDEATHSIG)."""
    m = mstate.current_m_or_none()
    if m is None or m.dying or not m.is_m0:
        return
    if mstate.reap_coordinator(m):
        _unwind_m0(signal.SIGALRM, frame)


def _unwound(m):
    """Main has unwound (Exiting caught in _run_main): a timer _unwind_m0 armed must not raise again
    while M0 reports the ending."""
    m.unwound = True
    signal.setitimer(signal.ITIMER_REAL, 0)


def _unwind_m0(signum, frame):
    """The program ends: unwind main, unless it is inside heap code, where a timer asks again."""
    m = mstate.current_m_or_none()
    if m is None or m.dying or m.unwound:
        return
    if m.locks or codeclass.in_heap_code(frame) is not None:
        signal.signal(signal.SIGALRM, _unwind_m0)
        signal.setitimer(signal.ITIMER_REAL, 0.002)
        return
    raise mstate.Exiting()


def _on_sigterm(signum, frame):
    """SIGINT and SIGTERM in M0.  The exception may be lost if the signal cut a semaphore wait
    short (posix_ipc raises SignalError instead), so it is also left in m.signalled, which the
    wait loops check (proc._park_m)."""
    m = mstate.current_m_or_none()
    if m is None or m.dying:
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        return
    m.signalled = signum
    raise KeyboardInterrupt() if signum == signal.SIGINT else mstate.Terminated()


def _create_control(rtid, nprocs, ncpu, tb, godebug):
    ctl = Ctl(shm_name(rtid, "ctl"), create=True)
    Lock(shm_name(rtid, "lock.sched"), create=True).close()
    Lock(shm_name(rtid, "lock.symtab"), create=True).close()
    Lock(shm_name(rtid, "lock.prof"), create=True).close()
    for i in range(NLOCKS):
        Lock(shm_name(rtid, f"lock.o{i}"), create=True).close()
    for p in range(nprocs):
        Lock(shm_name(rtid, f"lock.p{p}"), create=True).close()
    for note in ("note.stw", "note.sysmon"):
        posix_ipc.Semaphore(shm_name(rtid, note), posix_ipc.O_CREX, mode=0o600, initial_value=0).close()
    q, s = ctl.q, ctl.sched
    for w in (S_PIDLE, S_GFREE, S_SGFREE, S_STOPPER):
        q[s + w] = NONE
    q[s + S_GOMAXPROCS] = nprocs
    q[s + S_MAXMCOUNT] = MAXM
    q[s + S_NCPU] = ncpu
    q[s + S_TRACEBACK] = traceback.encode_level(*tb)
    q[s + S_SCHEDTRACE] = max(0, godebug.get("schedtrace", 0))
    q[s + S_SCHEDDETAIL] = godebug.get("scheddetail", 0)
    q[s + S_STARTNS] = time.monotonic_ns()
    q[s + S_M0PID] = os.getpid()
    mpr = godebug.get("memprofilerate")
    q[s + S_MEMPROFRATE] = MEMPROFRATE if mpr is None else mpr
    for p in range(MAXP):
        b = ctl.p(p)
        q[b + P_SMTICK] = q[b + P_SMSTICK] = NONE     # sysmon has not seen it yet
        q[b + P_RUNNEXT] = NONE
        q[b + P_M] = NONE
        q[b + P_LINK] = NONE
        q[b + P_STATUS] = 4 if p >= nprocs else P_IDLE
    for p in range(nprocs - 1, 0, -1):
        b = ctl.p(p)
        q[b + P_LINK] = q[s + S_PIDLE]
        q[s + S_PIDLE] = p
        q[s + S_NPIDLE] += 1
    b = ctl.p(0)
    q[b + P_STATUS] = P_RUNNING
    q[b + P_M] = 0
    return ctl


def _boot_m0(m):
    q, ctl = m.q, m.ctl
    r = m.row
    schedule.init_mrow(q, r)
    q[r + M_P] = 0                # P0 is M0's from the start (_create_control); m.p follows in run
    q[r + M_PID] = os.getpid()
    q[r + M_TID] = threading.get_native_id()
    q[r + M_STATE] = MS_RUNNING
    q[ctl.sched + S_MCOUNT] = 1
    m.msem(0)
    g = schedule.gslot_get(m)
    gr = ctl.g(g)
    q[gr + G_GOID] = 1
    q[gr + G_M] = 0
    q[gr + G_LOCKEDM] = NONE
    q[gr + G_LINK] = NONE
    q[gr + G_STATUS] = G_RUNNING
    q[ctl.sched + 1] = 1          # S_GOIDGEN: goroutine 1 is main
    m.curgoid = 1
    q[r + M_CURG] = g
    q[r + M_LOCKEDG] = g
    q[r + proc.M_GCREATED] = 1
    m.curg = g
    m.lockedg = g
    return g


@codeclass.mark_base
def _run_main(m, main, args):
    """Run main as goroutine 1.  Returns (exit status, exception to re-raise after teardown)."""
    q, s = m.q, m.ctl.sched
    try:
        try:
            main(*args)
            return 0, None
        except Goexit:
            _main_goexit(m)       # returns only by raising Exiting
    except mstate.Exiting:
        _unwound(m)
        return _ending_report(m), None
    except (KeyboardInterrupt, SystemExit, mstate.Terminated) as e:
        return 0, e
    except BaseException as e:
        try:
            if q[s + S_EXIT]:
                return _ending_report(m), None
            if not traceback.request_exit_first(m):
                traceback.wait_for_reporter(m, e)
                return _ending_report(m), None
            traceback.m0_panic_report(m, e)
            _set_exit(m, 2, EXIT_PANIC)
        except mstate.Exiting:
            # another M ended the program while main's report waited for a lock (its holder may
            # have died): that ending is the program's
            return _ending_report(m), None
        return 2, None
    return 0, None


def _set_exit(m, code, kind):
    q, s = m.q, m.ctl.sched
    if not q[s + S_EXIT]:
        q[s + S_EXITKIND] = kind
        q[s + S_EXIT] = code + 1
        q[s + S_ATTN] = 1


def _main_goexit(m):
    """main called Goexit: goroutine 1 ends; the program goes on until the others end (then it
    is Go's "no goroutines" deadlock) or one of them ends it."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    q[s + S_MAINGOEXIT] = 1
    g = m.g1
    q[ctl.g(g) + G_STATUS] = 6
    q[m.row + proc.M_GEXITED] += 1
    m.curg = NONE
    q[m.row + M_CURG] = NONE
    # M0 keeps waiting as if locked to a goroutine that never wakes
    schedule.findrunnable(m)
    raise mstate.Exiting()


def _ending_report(m):
    """Another process (or checkdead) ended the program: print what M0 prints, return the status."""
    q, s = m.q, m.ctl.sched
    return max(0, q[s + S_EXIT] - 1)


# ---- the coordinator ----

_FORK_BLOCKED = {signal.SIGINT, signal.SIGTERM}


def _fork(fn, *args, on_pid=None):
    """Fork a child that runs fn(*args) and exits (1 with a traceback if fn raised); returns its pid.
    Buffered output is flushed first, so the child does not print it again.  SIGINT and SIGTERM
    wait (blocked) until the fork and its at-fork callbacks are done and on_pid(pid) has recorded
    the child: a handler's exception raised inside such a callback is ignored by Python (the
    signal was lost, the program did not end), and one raised before the pid is kept would leave
    the child unknown."""
    _flush_lines()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _FORK_BLOCKED)
    try:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
                fn(*args)
            except BaseException:
                import traceback as _tb
                _tb.print_exc()
                code = 1
            finally:
                os._exit(code)
        if on_pid is not None:
            on_pid(pid)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return pid


def _start_coordinator(m):
    def keep(pid):
        m.q[m.ctl.sched + S_COORDPID] = pid
    _fork(_coordinator_main, m, on_pid=keep)


def q_rate(m):
    return m.q[m.ctl.sched + S_MEMPROFRATE]


def _SysmonM(ctl, rtid):
    """The coordinator's view: an M-shaped context with no M row, no P and no heap."""
    return mstate.M(ctl, None, None, rtid, False)


def _coordinator_main(m0):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGURG, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    m0pid = m0.q[m0.ctl.sched + S_M0PID]
    ctl, rtid = m0.ctl, m0.rtid
    try:
        os.sched_setaffinity(0, set(m0.cpus))
    except OSError:
        pass
    sm = _SysmonM(ctl, rtid)
    sm.asyncpreempt = not config["godebug"].get("asyncpreemptoff")
    sm.schedcheck = bool(config["godebug"].get("schedcheck"))
    mstate.set_current_m(sm)
    q, s = sm.q, ctl.sched
    children = {}
    delay, idle = sysmon.SYSMON_MIN_S, 0
    trace = [0]

    def tick():
        """sysmon's duties, also run between the collector's batches of work."""
        must_do()
        now = time.monotonic_ns()
        acted = sysmon.retake(sm, now)
        if q[s + S_TRACE] or _trace.active():
            acted += _trace.poll(sm)
        st = q[s + S_SCHEDTRACE]
        if st > 0 and now >= trace[0]:
            if trace[0]:
                sysmon.write_schedtrace(sm, q[s + S_SCHEDDETAIL] > 0)
            trace[0] = now + st * 1_000_000
        return acted, now, st

    def must_do():
        if q[s + S_EXIT]:
            _coordinator_exit(sm, children)
        if os.getppid() != m0pid:
            _orphaned(sm, children, m0pid)
        _spawn_ms(sm, children)
        _reap(sm, children)

    sm.stw_hook = must_do
    sm.heap = malloc.attach(rtid)
    collector = mgc.Collector(sm, sm.heap, tick)
    seed = config["godebug"].get("schedchaos")
    chaos = None if seed is None else Chaos(sm, seed)
    while True:
        try:
            sm.sysmonnote.acquire(delay)
        except (posix_ipc.BusyError, posix_ipc.SignalError):
            pass
        acted, now, st = tick()
        if collector.poll(now):
            acted = True
        if acted:
            idle = 0
            delay = sysmon.SYSMON_MIN_S
        else:
            idle += 1
            if idle > 50:
                delay = min(delay * 2, sysmon.SYSMON_MAX_S)
        if st > 0:
            delay = min(delay, max(sysmon.SYSMON_MIN_S, (trace[0] - now) / 1e9))
        if q[s + S_TRACE] or _trace.active():
            delay = min(delay, _trace.TRACE_ROUND_S)
        if chaos is not None:
            chaos.step()
            delay = min(delay, CHAOS_ROUND_S)


def _spawn_ms(sm, children):
    q, ctl, s = sm.q, sm.ctl, sm.ctl.sched
    for mid in range(q[s + S_MCOUNT]):
        r = ctl.m(mid)
        if q[r + M_STATE] == MS_STARTING and q[r + M_PID] == 0:
            def keep(pid, r=r, mid=mid):
                q[r + M_PID] = pid
                children[pid] = mid
            _fork(_worker_main, sm, mid, on_pid=keep)


def _reap(sm, children):
    q, s = sm.q, sm.ctl.sched
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        mid = children.pop(pid, None)
        if mid is None:
            continue
        q[sm.ctl.m(mid) + M_STATE] = MS_DEAD
        if not q[s + S_EXIT]:
            how = (f"signal {signal.Signals(-os.waitstatus_to_exitcode(status)).name}"
                   if os.WIFSIGNALED(status) else f"exit status {os.waitstatus_to_exitcode(status)}")
            traceback.write_err(f"fatal error: runtime: M{mid} (pid {pid}) died: {how}\n")
            _set_exit(sm, 2, EXIT_FATAL)
            mstate.wakem(sm, 0)


def _coordinator_exit(sm, children):
    """The program is ending: let the Ms leave (they flush their output), then kill stragglers."""
    q, _ctl, s = sm.q, sm.ctl, sm.ctl.sched
    for mid in range(1, q[s + S_MCOUNT]):
        try:
            sm.msem(mid).release()
        except posix_ipc.ExistentialError:
            pass
    pids = list(children)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGURG)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + EXIT_GRACE_S
    while children and time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            children.pop(pid, None)
        else:
            time.sleep(0.001)
    _kill(children)
    os._exit(0)


def _orphaned(sm, children, m0pid):
    """M0 died without tearing down (SIGKILL, a crash of the interpreter): kill the Ms, remove the
    runtime, and say so (M0 cannot: the coordinator shares its stderr)."""
    _kill(children)
    unlink_runtime(sm.rtid)
    traceback.write_err(f"fatal error: runtime: M0 (pid {m0pid}, the program's main process) died without "
                        f"tearing down; its {len(children)} Ms were killed and the runtime's shared memory "
                        f"removed\n")
    os._exit(0)


def _kill(children):
    """SIGKILL and reap the coordinator's children (Ms) still there."""
    for pid in list(children):
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


# ---- a worker M ----

def _worker_main(sm, mid):
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _whole_lines()
    ctl, rtid = sm.ctl, sm.rtid
    heap = malloc.attach(rtid, p=mid)
    m = mstate.M(ctl, heap, mid, rtid, False)
    m.asyncpreempt = sm.asyncpreempt
    m.schedcheck = sm.schedcheck
    m.g1 = NONE
    q = m.q
    q[m.row + M_PID] = os.getpid()
    q[m.row + M_TID] = threading.get_native_id()
    m.sched_gr = greenlet.getcurrent()
    mstate.set_current_m(m)
    _setup_common_signals()
    heap.sample_left = mprof.next_sample(q_rate(m))
    stw.sync_prof(m)
    if q[ctl.sched + S_EXIT]:
        mstate.worker_exit(0)
    schedule.schedule_loop(m)


# ---- teardown ----

def _teardown(m, heap, saved_affinity, old_handlers):
    """Everything goes: other goroutines are dropped, every process exits, every segment and
    semaphore is unlinked."""
    try:
        if m is not None:
            m.dying = True
            q, ctl, s = m.q, m.ctl, m.ctl.sched
            _set_exit(m, 0, EXIT_MAIN)
            try:
                m.sysmonnote.release()
            except posix_ipc.Error:
                pass
            if _cluster.NODE == 0:
                from .cluster import node as _cnode
                _cnode.stop_driver()        # the other nodes, their actors, the cluster started
            cpid = q[s + S_COORDPID]
            mpids = [q[ctl.m(i) + M_PID] for i in range(1, q[s + S_MCOUNT])]
            if cpid > 0:
                deadline = time.monotonic() + EXIT_GRACE_S + 2.0
                while True:
                    try:
                        done, _ = os.waitpid(cpid, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if done:
                        break
                    if time.monotonic() > deadline:
                        # the coordinator is stuck: kill it and its Ms (they would die with it anyway)
                        os.kill(cpid, signal.SIGKILL)
                        os.waitpid(cpid, 0)
                        for pid in mpids:
                            if pid > 0:
                                try:
                                    os.kill(pid, signal.SIGKILL)
                                except (ProcessLookupError, PermissionError):
                                    pass
                        break
                    time.sleep(0.0005)
    finally:
        mstate.set_current_m(None)
        msg.set_check(None)
        msg.reset()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.setitimer(signal.ITIMER_PROF, 0)
        symtab.reset()
        mprof.reset()
        for sig, h in old_handlers.items():
            try:
                signal.signal(sig, h)
            except (TypeError, ValueError):
                pass
        try:
            os.sched_setaffinity(0, saved_affinity)
        except OSError:
            pass
        if m is not None:
            m.close()
            m.ctl.close()
        heap.destroy()


codeclass.mark(__name__, codeclass.RUNTIME)
