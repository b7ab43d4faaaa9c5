"""Go's runtime/debug: the scheduler's part (SetMaxThreads, SetTraceback, Stack, PrintStack)."""
import sys

from ..sched import proc as _proc
from ..sched import traceback as _tb
from ..sched.ctl import S_TRACEBACK as _S_TRACEBACK


def SetMaxThreads(n):
    """Set the limit on Ms (M0 included) and return the old one.  Past it the program dies with Go's
    "thread exhaustion".  mprt's control segment holds at most 10000 Ms whatever the setting."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"debug.SetMaxThreads: {n!r} is not an integer")
    m = _proc.current_m()
    return _proc.set_max_threads(m, n)


def SetTraceback(level):
    """Set GOTRACEBACK's level at run time; it can only be raised, as Go."""
    m = _proc.current_m()
    q, s = m.q, m.ctl.sched
    new = _tb.parse_gotraceback(level)
    old = _tb.level_of(q, s)
    if (new[0], new[1], new[2]) > old:
        q[s + _S_TRACEBACK] = _tb.encode_level(*new)


def Stack():
    """The calling goroutine's stack, formatted as Go's (bytes)."""
    m = _proc.current_m()
    f = sys._getframe(1)
    return _tb.goroutine_stack(m, f).encode()


def PrintStack():
    _tb.write_err(Stack().decode())
