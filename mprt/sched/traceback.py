"""Go's panic and fatal-error reports (panic.go, traceback.go), for goroutines spread over processes.

A report is written to stderr (fd 2, unbuffered) by the process that has the panicking goroutine,
or by M0 for a deadlock.  Goroutines of other Ms are collected with a dump request: the requester
bumps S_DUMPREQ and sends SIGURG to every M; each M's handler writes the stacks of the goroutines
started on it to /dev/shm/mprt.<rtid>.dump.<mid> (a file of the runtime, removed with it).  An M that
does not answer within DUMP_WAIT_S (a long C call) is reported as Go reports a goroutine running on
another thread.

Frames print as Go's: `module.qualname(...)`, a tab, `file:line +0xOFFSET` (the bytecode offset).
mprt's own frames are left out unless GOTRACEBACK=system or crash.

GOTRACEBACK (S_TRACEBACK = level << 2 | all << 1 | crash): none 0, single 1 (the default), all,
system 2, crash (system, then SIGABRT); 0/1/2 mean none/all/system.
"""
import json
import os
import time

from .. import cluster as _cluster
from .. import codeclass as _codeclass
from ..panic import Panic
from ..panic import panic as _gopanic
from ..settings import atoi
from ..shm import malloc as _malloc
from ..shm.layout import GC_FING, fing_system
from ..shm.mheap import OutOfMemory
from . import mstate, proc, schedule, stw
from . import symtab as _symtab
from .ctl import (
    EXIT_PANIC,
    G_DEAD,
    G_GOID,
    G_LOCKEDM,
    G_M,
    G_RUNNABLE,
    G_RUNNING,
    G_SITE,
    G_STATUS,
    G_SYSCALL,
    G_WAIT,
    G_WAITING,
    M_PID,
    M_STATE,
    MS_DEAD,
    NONE,
    S_CPUHZ,
    S_DUMPREQ,
    S_EXIT,
    S_GATEWAYG,
    S_NGALLOC,
    S_PANICKING,
    S_TIMERG,
    S_TRACEBACK,
)

DUMP_WAIT_S = 1.0
STATUS_NAMES = {0: "idle", 1: "runnable", 2: "running", 3: "syscall", 4: "waiting", 6: "dead"}


def parse_gotraceback(s):
    """GOTRACEBACK's value -> (level, all, crash) as Go's setTraceback."""
    s = s or ""
    table = {"none": (0, False, False), "single": (1, False, False), "": (1, False, False),
             "all": (1, True, False), "system": (2, True, False), "crash": (2, True, True)}
    if s in table:
        return table[s]
    # Go: anything else is "all" at the level the number gives, 0 (no goroutine traces) when it is
    # not a number or not a uint32
    n = atoi(s, 64)
    return (n if n is not None and 0 <= n < 1 << 32 else 0, True, False)


def encode_level(level, all_, crash):
    return level << 2 | int(all_) << 1 | int(crash)


def level_of(q, sched):
    t = q[sched + S_TRACEBACK]
    return t >> 2, bool(t & 2), bool(t & 1)


def write_err(text):
    data = text.encode(errors="replace")
    while data:
        try:
            n = os.write(2, data)
        except InterruptedError:
            continue
        except OSError:
            return
        data = data[n:]


def _is_runtime(frame):
    return _symtab.is_runtime_file(frame.f_code.co_filename)


def frame_line(frame, lineno=None, lasti=None):
    mod = frame.f_globals.get("__name__", "?")
    code = frame.f_code
    name = getattr(code, "co_qualname", code.co_name)
    ln = frame.f_lineno if lineno is None else lineno
    off = _symtab.lasti(frame) if lasti is None else lasti
    return f"{mod}.{name}(...)\n\t{code.co_filename}:{ln} +{max(off, 0):#x}"


def _frames_from(frame, system, stop_at_run=False):
    """Frames innermost first from `frame` outwards."""
    out = []
    while frame is not None:
        code = frame.f_code
        if stop_at_run and _codeclass.is_root(code):
            break
        if code is schedule.GMAIN_CODE:
            break
        if system or not _is_runtime(frame):
            out.append(frame_line(frame))
        frame = frame.f_back
    return out


def _frames_from_chain(e, system):
    """The frames of a panic report, innermost first.  For nested panics (panic_chain) they are
    Go's: the last panic's frame, `panic(...)`, the panic before it's frame, ..., then the frames
    around each, oldest panic's first, as Go's stack holds them while deferred calls (here finally
    blocks and except clauses) run on top of the frames that panicked."""
    chain = panic_chain(e)
    if len(chain) < 2:
        return _frames_from_tb(e.__traceback__, system, e)
    per = [_frames_from_tb(x.__traceback__, system, x) for x in chain]
    out = []
    for k in range(len(chain) - 1, -1, -1):
        if per[k]:
            out.append(per[k][0])
        if k:
            out.append(_PANIC_FRAME)
    for fr in per:
        out.extend(fr[1:])
    return out


def _panic_frame():
    code = _gopanic.__code__
    return f"panic(...)\n\t{code.co_filename}:{code.co_firstlineno + 2} +0x0"


_PANIC_FRAME = _panic_frame()


def _frames_from_tb(tb, system, e=None):
    """The frames of an exception's traceback, innermost first.  Runtime frames show at
    GOTRACEBACK=system.  Below that, a panic (mprt.Panic: the program's, or one of the runtime's
    own with Go's message) shows the goroutine's frames only, as Go elides runtime.gopanic; any
    other error raised inside runtime code shows where it happened: the runtime call the
    goroutine's own code made (the first runtime frame after its last own frame), or, when the
    goroutine has no frame of its own yet (its arguments failed to arrive), every runtime frame."""
    entries = []
    while tb is not None:
        f = tb.tb_frame
        if f.f_code is not schedule.GMAIN_CODE:
            entries.append((f, tb.tb_lineno, _symtab.lasti(f, tb.tb_lasti), _is_runtime(f)))
        tb = tb.tb_next
    own = [i for i, x in enumerate(entries) if not x[3]]
    if system or not own:
        keep = range(len(entries))
    else:
        keep = set(own)
        if own[-1] + 1 < len(entries) and not isinstance(e, Panic):
            keep.add(own[-1] + 1)       # the runtime call that failed
    out = [frame_line(f, ln, la) for i, (f, ln, la, _) in enumerate(entries) if i in keep]
    out.reverse()
    return out


def _header(q, ctl, g, status=None):
    r = ctl.g(g)
    st = q[r + G_STATUS]
    if status is None:
        status = STATUS_NAMES.get(st, "???")
        if st == G_WAITING and q[r + G_WAIT]:
            status = proc.wait_reason(q[r + G_WAIT])
    locked = ", locked to thread" if q[r + G_LOCKEDM] != NONE else ""
    node = f", node {_cluster.NODE}" if _cluster.NODE is not None else ""     # cluster mode: where it runs
    return f"goroutine {q[r + G_GOID]} [{status}{locked}{node}]:\n"


def _created_by(q, ctl, g):
    r = ctl.g(g)
    if q[r + G_GOID] == 1:
        return ""
    t = proc.site_text(ctl, q[r + G_SITE])
    if not t:
        return ""
    return "created by " + t.replace("(...)", "", 1) + "\n"


TRACEBACK_MAX_FRAMES = 100     # Go's _TracebackMaxFrames: a deeper stack is cut there


def _block(q, ctl, g, frames, status=None):
    if len(frames) > TRACEBACK_MAX_FRAMES:
        frames = list(frames[:TRACEBACK_MAX_FRAMES]) + ["...additional frames elided..."]
    return _header(q, ctl, g, status) + "".join(f + "\n" for f in frames) + _created_by(q, ctl, g)


# ---- dumps: each M writes its own goroutines ----

def _panicked_frames(m, system):
    return _frames_from_chain(m.panicking, system)


def _dump_path(m, mid):
    return f"/dev/shm/mprt.{m.rtid}.dump.{mid}"


def own_goroutines(m, frame, system, pcs=None, in_signal=False):
    """{goid: block text} for goroutines started on this M.  `frame`: where this M is now.
    `pcs`: a dict to fill with each goroutine's PCs (symtab.py) as well."""
    q, ctl = m.q, m.ctl
    out = {}
    if m.row is None:
        return out      # the coordinator runs no goroutines
    if m.is_m0:
        g = m.g1
        if g != NONE and q[ctl.g(g) + G_STATUS] != G_DEAD:
            f = _m0_goroutine_frame(frame)
            if m.panicking is not None:
                out[1] = _block(q, ctl, g, _panicked_frames(m, system), "running")
            else:
                out[1] = _block(q, ctl, g, _frames_from(f, system, stop_at_run=True))
            if pcs is not None:
                pcs[1] = _symtab.callers(f, 64, in_signal, spell_out=in_signal)
        return out
    for g, gl in list(m.greenlets.items()):
        if g == m.curg:
            f = frame
        else:
            f = gl.gr_frame
        if q[ctl.g(g) + G_STATUS] == G_DEAD:
            continue
        if g == m.curg and m.panicking is not None:
            out[q[ctl.g(g) + G_GOID]] = _block(q, ctl, g, _panicked_frames(m, system), "running")
            continue
        out[q[ctl.g(g) + G_GOID]] = _block(q, ctl, g, _frames_from(f, system))
        if pcs is not None:
            pcs[q[ctl.g(g) + G_GOID]] = _symtab.callers(f, 64, in_signal, spell_out=in_signal)
    return out


def maybe_dump(m, frame):
    """SIGURG handler part: answer a dump request.  Not reentrant: a request whose signal arrives
    while this handler still writes the last answer (a handler can run inside a handler, and an M
    kept from its CPU for over DUMP_WAIT_S is still writing when the requester asks again) is
    answered by the same call once the last is written; a nested one once renamed the first's
    file from under it ("could not dump ... FileNotFoundError")."""
    if m.dumping:
        return
    q, s = m.q, m.ctl.sched
    m.dumping = True
    try:
        while q[s + S_DUMPREQ] > m.dumped:
            m.dumped = q[s + S_DUMPREQ]
            _dump_one(m, frame, m.dumped)
    finally:
        m.dumping = False


def _dump_one(m, frame, req):
    q, s = m.q, m.ctl.sched
    level, _, _ = level_of(q, s)
    try:
        pcs = {}
        blocks = own_goroutines(m, frame, level >= 2, pcs, in_signal=True)
        cpu = []
        if not q[s + S_CPUHZ]:
            # profiling stopped: hand the samples over (StopCPUProfile's dump)
            cpu = [[n, list(k)] for k, n in m.cpusamples.items()]
            m.cpusamples.clear()
        tmp = _dump_path(m, m.id) + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"req": int(req), "blocks": {str(k): v for k, v in blocks.items()},
                       "pcs": {str(k): v for k, v in pcs.items()}, "cpu": cpu}, f)
        os.rename(tmp, _dump_path(m, m.id))
    except Exception as e:
        write_err(f"runtime: M{m.id} could not dump its goroutines: {type(e).__name__}: {e}\n")


def collect_others(m, skip_goids, pcs=None, cpu=None):
    """Ask every other M for its goroutines; returns {goid: block}.  `pcs` (a dict) gets each
    goroutine's PCs, `cpu` (a list) the CPU profile samples the Ms took since the last dump."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    q[s + S_DUMPREQ] += 1
    req = q[s + S_DUMPREQ]
    m.dumped = req
    want = {}
    for mid in range(mstate.mcount(m)):
        if mid == m.id:
            continue
        r = ctl.m(mid)
        pid = q[r + M_PID]
        if pid > 0 and q[r + M_STATE] != MS_DEAD:
            want[mid] = pid
            try:
                os.unlink(_dump_path(m, mid))
            except OSError:
                pass
            try:
                os.kill(pid, __import__("signal").SIGURG)
            except ProcessLookupError:
                want.pop(mid)
    got = {}
    deadline = time.monotonic() + DUMP_WAIT_S
    while want and time.monotonic() < deadline:
        for mid in list(want):
            try:
                with open(_dump_path(m, mid)) as f:
                    d = json.load(f)
            except (OSError, ValueError):
                continue
            if d.get("req") == req:
                for k, v in d["blocks"].items():
                    got[int(k)] = v
                if pcs is not None:
                    for k, v in d.get("pcs", {}).items():
                        pcs[int(k)] = _symtab.enter_spelled(v)
                if cpu is not None:
                    cpu.extend(d.get("cpu", ()))
                want.pop(mid)
                try:
                    os.unlink(_dump_path(m, mid))
                except OSError:
                    pass
        if want:
            time.sleep(0.002)
    # goroutines not started yet, and those of Ms that did not answer
    n = q[s + S_NGALLOC]
    for g in range(n):
        r = ctl.g(g)
        st = q[r + G_STATUS]
        goid = q[r + G_GOID]
        if goid in got or goid in skip_goids or goid == 0:
            continue
        if st == G_RUNNABLE and q[r + G_M] == NONE:
            got[goid] = _header(q, ctl, g) + _created_by(q, ctl, g)
        elif st in (G_RUNNING, G_SYSCALL, G_WAITING, G_RUNNABLE) and q[r + G_M] in want:
            got[goid] = (_header(q, ctl, g) + "\tgoroutine running on other thread; stack unavailable\n"
                         + _created_by(q, ctl, g))
    if q[s + S_TRACEBACK] >> 2 < 2:
        # Go's isSystemGoroutine, shown from GOTRACEBACK=system on: the timer goroutine (timers.py),
        # the finalizer goroutine while it waits for finalizers to run
        for tg in (q[s + S_TIMERG] - 1, q[s + S_GATEWAYG] - 1):    # (cluster mode's gateway too)
            if tg >= 0:
                got.pop(q[ctl.g(tg) + G_GOID], None)
        if fing_system(m.heap):
            fg = int(m.heap.gc[GC_FING]) - 1
            if fg >= 0:
                got.pop(q[ctl.g(fg) + G_GOID], None)
    return got


# ---- reports ----

def others_text(m, mine, skip):
    blocks = dict(mine)
    blocks.update(collect_others(m, set(skip) | set(mine)))
    return "".join("\n" + blocks[k] for k in sorted(blocks) if k not in skip)


def gopanic(m, e):
    """An uncaught exception ended a goroutine of this worker M: Go's panic report, then the end."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    if not request_exit_first(m):
        wait_for_reporter(m, e)
        mstate.worker_exit(0)
    level, all_, _ = level_of(q, s)
    text, throw = panic_head(e, m)
    all_ = all_ or throw
    if level > 0:
        g = m.curg
        goid = q[ctl.g(g) + G_GOID]
        text += "\n" + _block(q, ctl, g, _frames_from_chain(e, level >= 2), "running")
        if all_:
            mine = own_goroutines(m, None, level >= 2)
            mine.pop(goid, None)
            text += others_text(m, mine, {goid})
    write_err(text)
    mstate.request_exit(m, proc.EXIT_PANIC_CODE, EXIT_PANIC)
    mstate.worker_exit(0)


def request_exit_first(m, locked=False):
    """Claim the right to report (the first panicking goroutine prints, as Go's paniclk).
    `locked`: the caller holds the sched lock."""
    q, s = m.q, m.ctl.sched
    if not locked:
        mstate.acq(m.schedlock)
    first = q[s + S_PANICKING] == 0
    q[s + S_PANICKING] += 1
    if not locked:
        mstate.rel(m.schedlock)
    return first


def wait_for_reporter(m, e):
    """Another goroutine is panicking or throwing: as Go's startpanic, wait while it prints and ends
    the program (its report needs this M's goroutines; leaving before the end is set would be
    reported as this M dying).  If its M dies instead, the coordinator ends the program."""
    q, s = m.q, m.ctl.sched
    m.panicking = e       # its goroutine shows in the report where it panicked
    while not q[s + S_EXIT]:
        time.sleep(0.002)


def panic_head(e, m=None):
    """(first lines, whether Go throws) of an uncaught exception's report.  The heap's OutOfMemory
    is Go's throw (`runtime: out of memory: ...` then `fatal error: out of memory`, every goroutine
    shown), and so is a RecursionError: the goroutine's stack went past debug.SetMaxStack's limit
    (`fatal error: stack overflow`); anything else is a panic."""
    if isinstance(e, OutOfMemory):
        return str(e) + "\n", True
    if isinstance(e, RecursionError) and m is not None:
        return (f"runtime: goroutine stack exceeds {stw.max_stack(m)}-byte limit\n"
                "fatal error: stack overflow\n"), True
    return "".join(("\t" if i else "") + "panic: " + panic_value(x) + "\n"
                   for i, x in enumerate(panic_chain(e))), False


def panic_chain(e):
    """The panics a report prints, oldest first (Go's printpanics): an exception raised while
    another was being handled or unwound (a finally block, a deferred call, that panics) comes after
    the one it interrupted, as Go prints a deferred call's panic after the panic that ran it.
    `raise X from Y` links Y the same way; `from None` ends the chain."""
    chain, seen = [], set()
    while e is not None and id(e) not in seen and len(chain) < 100:
        chain.append(e)
        seen.add(id(e))
        if not isinstance(e, Panic) and _raised_in_runtime(e):
            break       # the runtime's own report of an error it met (its message says what)
        e = e.__cause__ if e.__cause__ is not None else (None if e.__suppress_context__ else e.__context__)
    chain.reverse()
    return chain


def _raised_in_runtime(e):
    tb = e.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return _is_runtime(tb.tb_frame)


def panic_value(e):
    if isinstance(e, Panic):
        return str(e)
    msg = str(e)
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def m0_panic_report(m, e):
    """The main goroutine's uncaught exception (M0 prints; teardown follows)."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    level, all_, _ = level_of(q, s)
    text, throw = panic_head(e, m)
    all_ = all_ or throw
    if level > 0:
        text += "\n" + _block(q, ctl, m.g1, _frames_from_chain(e, level >= 2), "running")
        if all_:
            text += others_text(m, {}, {1})
    write_err(text)


def fatal_report(m, text, pre="", head=None):
    """Go's throw: `fatal error: ...`, then every goroutine (a throw prints all of them), unless
    GOTRACEBACK=none.  `head`: the first lines instead of `fatal error: ...`."""
    import sys
    q, s = m.q, m.ctl.sched
    level, _, _ = level_of(q, s)
    out = pre + (head if head is not None else f"fatal error: {text}\n")
    if level > 0:
        mine = own_goroutines(m, sys._getframe(2 if head else 1), level >= 2)
        out += others_text(m, mine, set())
    write_err(out)


def goroutine_stack(m, frame):
    """debug.Stack's text for the calling goroutine."""
    q, ctl = m.q, m.ctl
    level, _, _ = level_of(q, m.ctl.sched)
    g = m.curg
    return _block(q, ctl, g, _frames_from(frame, level >= 2, stop_at_run=m.is_m0), "running")


def _m0_goroutine_frame(frame):
    import sys
    return frame if frame is not None else sys._getframe(2)


def _tracealloc(text, frame):
    """GODEBUG=allocfreetrace=1 (the heap's hook): its tracealloc line, then the allocating
    goroutine's stack."""
    m = mstate.current_m_or_none()
    if m is not None and m.curg != NONE:
        text += goroutine_stack(m, frame) + "\n"
    write_err(text)


_malloc.set_tracealloc_hook(_tracealloc)


_codeclass.mark(__name__, _codeclass.RUNTIME)
