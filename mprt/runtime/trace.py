"""Go's runtime/trace: Start(f) and Stop() over runtime.StartTrace/ReadTrace/StopTrace.

Start begins tracing and starts a thread in the calling process that copies the trace into f as
it is produced (Go starts a goroutine for this; a thread here, because the file object lives in
this process and reading the rings needs no goroutine).  Stop ends tracing, writes what is left
and the trailer, and returns when f has everything.  The format is mprt's own (mprt/sched/trace.py);
`mprt trace FILE` turns it into a picture and a Chrome/Perfetto trace-event JSON.
"""
import threading
import time

from .. import runtime
from ..sched import mstate as _mstate
from ..sched import trace as _trace

__all__ = ["Start", "Stop"]


class _State:
    f = None
    thread = None
    stop = None
    error = None


def Start(f):
    """Trace every M into f (a binary file object) until Stop."""
    runtime.StartTrace()
    m = _mstate.current_m()
    _State.f, _State.stop, _State.error = f, threading.Event(), None

    def copy():
        try:
            while not _State.stop.is_set():
                data = _trace.drain(m)
                if data:
                    f.write(data)
                time.sleep(0.02)
        except Exception as e:          # reported by Stop
            _State.error = e

    f.write(_trace.header(m))
    _trace.reader.header_sent = True
    _State.thread = threading.Thread(target=copy, name="mprt-trace", daemon=True)
    _State.thread.start()


def Stop():
    """Stop tracing and finish the file."""
    if _State.f is None:
        return
    runtime.StopTrace()
    _State.stop.set()
    _State.thread.join()
    f = _State.f
    _State.f = None
    while True:
        data = runtime.ReadTrace()
        if data is None:
            break
        f.write(data)
    try:
        f.flush()
    except (AttributeError, OSError):
        pass
    if _State.error is not None:
        raise _State.error


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
