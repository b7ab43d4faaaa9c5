"""Program counters for Python code (Go's symtab.go): Callers, FuncForPC, CallersFrames.

A PC is an integer that names a code object and a bytecode offset in it:

    pc = FUNC_BASE + findex << FUNC_SHIFT | f_lasti        (entry: the offset 0)

`findex` is the function's row in a table that every process of a runtime shares (control segment
regions "functab" and "funcbytes", appended under lock.symtab), so a PC recorded by one M (a profile
bucket, a goroutine dump) reads back in any other.  A row holds the function's qualified name
(`module.qualname`, what Frame.Function and the tracebacks print), its file, its first line and its
line table (bytecode offset ranges -> line, from co_lines), so a PC maps to a line without the code
object.  Each process keeps a dict from code object to findex; a function is registered once per
runtime (rows are found again by a 64-bit hash of name, file, first line and code length).
Outside a running runtime the table is the process's own.

A signal handler (a goroutine dump) must not wait for lock.symtab, which its own process may hold:
there `register` only tries the lock, and a frame it cannot register gets PC 0.
"""
import bisect
import dis
import hashlib
import os
import struct
import sys
import time

from .. import codeclass as _codeclass
from . import mstate
from .ctl import FT_WORDS, FUNCBYTES, NFUNC, S_FUNCBYTES, S_NFUNC

FUNC_BASE = 0x400000
FUNC_SHIFT = 20                      # bytecode offsets below 1 MiB
_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FuncInfo:
    __slots__ = ("index", "name", "file", "firstline", "starts", "lines", "runtime")

    def __init__(self, index, name, file, firstline, starts, lines, runtime):
        self.index, self.name, self.file, self.firstline = index, name, file, firstline
        self.starts, self.lines, self.runtime = starts, lines, runtime

    @property
    def entry(self):
        return FUNC_BASE + (self.index << FUNC_SHIFT)

    def line(self, off):
        i = bisect.bisect_right(self.starts, off) - 1
        if i < 0:
            return self.firstline
        ln = self.lines[i]
        return self.firstline if ln < 0 else ln


def _qualname(code, module):
    return f"{module}.{getattr(code, 'co_qualname', code.co_name)}"


def is_runtime_file(path):
    """Whether path is a source file of the runtime (the mprt package; its tests live outside it)."""
    return path.startswith(_PKG + os.sep)


def _encode(code, module):
    name = _qualname(code, module).encode(errors="replace")
    fname = code.co_filename.encode(errors="replace")
    pairs = []
    for start, _end, line in code.co_lines():
        ln = -1 if line is None else line
        if not pairs or pairs[-1][1] != ln:
            pairs.append((start, ln))
    body = struct.pack(f"<iI{2 * len(pairs)}i", code.co_firstlineno, len(pairs), *[x for p in pairs for x in p])
    return struct.pack("<HH", len(name), len(fname)) + name + fname + body


def _decode(index, data, flags):
    ln, lf = struct.unpack_from("<HH", data)
    name = data[4:4 + ln].decode(errors="replace")
    fname = data[4 + ln:4 + ln + lf].decode(errors="replace")
    o = 4 + ln + lf
    first, n = struct.unpack_from("<iI", data, o)
    vals = struct.unpack_from(f"<{2 * n}i", data, o + 8)
    return FuncInfo(index, name, fname, first, list(vals[0::2]), list(vals[1::2]), bool(flags & 1))


class _Table:
    """The runtime's function table (shared) or, with no runtime, this process's own."""

    def __init__(self):
        self.bycode = {}       # id(code object) -> (findex, the code: kept, so no id is reused)
                               # (an id, not the code: hashing a code hashes its constants)
        self.info = {}         # findex -> FuncInfo
        self.local = []        # rows when there is no runtime: (data, flags)

    def _shared(self):
        m = mstate.current_m_or_none()
        return m if m is not None and m.ctl is not None else None

    def register(self, code, module, in_signal=False):
        e = self.bycode.get(id(code))
        if e is not None:
            return e[0]
        data = _encode(code, module)
        flags = 1 if is_runtime_file(code.co_filename) else 0
        m = self._shared()
        if m is None:
            fi = len(self.local)
            self.local.append((data, flags))
        else:
            fi = _register_shared(m, data, flags, in_signal)
            if fi is None:
                return None
        self.bycode[id(code)] = (fi, code)
        return fi

    def lookup(self, fi):
        info = self.info.get(fi)
        if info is not None:
            return info
        m = self._shared()
        if m is None:
            if fi >= len(self.local):
                return None
            data, flags = self.local[fi]
        else:
            q, ctl = m.q, m.ctl
            if fi >= q[ctl.sched + S_NFUNC]:
                return None
            r = ctl.base["functab"] + fi * FT_WORDS
            off, n, flags = q[r + 1], q[r + 2], q[r + 3]
            b = ctl.base["funcbytes"] * 8 + off
            data = bytes(ctl.u8[b:b + n])
        info = self.info[fi] = _decode(fi, data, flags)
        return info

    def reset(self):
        """A new runtime (or none): its table starts empty."""
        self.bycode.clear()
        self.info.clear()
        self.local.clear()


def _register_shared(m, data, flags, in_signal, retry=False):
    """retry: an M that holds a lock (a stop of the world's dump collector) tries the table's lock
    for up to 0.1 s before it gives up (PC 0): another M's signal handler may hold it for a moment;
    a handler never waits."""
    q, ctl, s = m.q, m.ctl, m.ctl.sched
    h = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little", signed=True)
    lk = m.symlock
    if in_signal:
        if m.locks and not retry:
            return None
        for attempt in range(200 if retry else 1):
            try:
                lk.acquire_raw(0)
                break
            except Exception:
                if attempt == (199 if retry else 0):
                    return None
                time.sleep(0.0005)
        m.locks += 1
    else:
        mstate.acq(lk)
    try:
        n = q[s + S_NFUNC]
        tab = ctl.words[ctl.base["functab"]:ctl.base["functab"] + n * FT_WORDS].reshape(n, FT_WORDS)
        hit = (tab[:, 0] == h).nonzero()[0]
        if len(hit):
            return int(hit[0])
        nb = q[s + S_FUNCBYTES]
        if n >= NFUNC or nb + len(data) > FUNCBYTES:
            return None
        o = ctl.base["funcbytes"] * 8 + nb
        m.mv8[o:o + len(data)] = data
        r = ctl.base["functab"] + n * FT_WORDS
        q[r], q[r + 1], q[r + 2], q[r + 3] = h, nb, len(data), flags
        q[s + S_FUNCBYTES] = nb + len(data)
        q[s + S_NFUNC] = n + 1
        return n
    finally:
        if in_signal:
            lk.release()
            m.locks -= 1
        else:
            mstate.rel(lk)


_table = _Table()


def reset():
    _table.reset()


def register(code, module):
    """The function index of a code object (entered in the table on first sight)."""
    return _table.register(code, module)


_PRECALL = dis.opmap.get("PRECALL")          # 3.11 only
_PRECALL_LEN = 2 + 2 * dis._inline_cache_entries[_PRECALL] if _PRECALL is not None else 0


def lasti(frame, i=None):
    """The offset a frame stands at (or offset i of its code, a traceback's), as its call site: on
    3.11 a call of a C function may be made by the call's PRECALL (specialised), a Python one by
    the CALL after it; both are the CALL's."""
    if i is None:
        i = frame.f_lasti
    if i < 0:
        return 0
    if _PRECALL is not None and frame.f_code.co_code[i] == _PRECALL:
        return i + _PRECALL_LEN
    return i


def pc_of(frame, in_signal=False):
    """The PC of `frame` where it is now (0 if it cannot be had)."""
    fi = _table.register(frame.f_code, frame.f_globals.get("__name__", "?"), in_signal)
    if fi is None:
        return 0
    return FUNC_BASE + (fi << FUNC_SHIFT) + lasti(frame)


def is_bottom(frame):
    """The frame below a goroutine's own: the goroutine's greenlet body, or the one on M0 that
    called main."""
    return _codeclass.kind_of(frame.f_code) == _codeclass.BASE


def callers(frame, limit=1 << 30, in_signal=False, spell_out=False):
    """PCs from `frame` outwards, stopping at the goroutine's bottom.  `spell_out`: a frame whose
    function a signal handler cannot enter in the table (its M holds a lock) is written out instead
    of 0, for the process that reads the PCs to enter (enter_spelled): a 0 would end the stack."""
    out = []
    while frame is not None and len(out) < limit:
        if is_bottom(frame):
            break
        pc = pc_of(frame, in_signal)
        if pc == 0 and spell_out:
            code = frame.f_code
            data = _encode(code, frame.f_globals.get("__name__", "?"))
            pc = f"{data.hex()}:{1 if is_runtime_file(code.co_filename) else 0}:{lasti(frame)}"
        out.append(pc)
        frame = frame.f_back
    return out


def enter_spelled(pcs):
    """PCs read from another M's dump, each frame it wrote out (callers' spell_out) entered in the
    table here (0 where this M cannot take the table's lock without waiting)."""
    out = []
    for pc in pcs:
        if isinstance(pc, str):
            data, flags, lasti = pc.split(":")
            m = _table._shared()
            fi = None if m is None else _register_shared(m, bytes.fromhex(data), int(flags), bool(m.locks),
                                                         retry=True)
            pc = 0 if fi is None else FUNC_BASE + (fi << FUNC_SHIFT) + int(lasti)
        out.append(pc)
    return out


def stack_here(skip, limit=32):
    """PCs of the caller's caller's ... stack: skip=0 is the caller of stack_here."""
    return callers(sys._getframe(skip + 1), limit)


def findfunc(pc):
    """FuncInfo for a PC, or None."""
    if not isinstance(pc, int) or pc < FUNC_BASE:
        return None
    return _table.lookup((pc - FUNC_BASE) >> FUNC_SHIFT)


def resolve(pc):
    """(function name, file, line, entry) for a PC; None when it names nothing."""
    f = findfunc(pc)
    if f is None:
        return None
    return f.name, f.file, f.line(pc - f.entry), f.entry


_codeclass.mark(__name__, _codeclass.RUNTIME)
