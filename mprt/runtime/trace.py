"""Go's runtime/trace: Start(f) and Stop() over runtime.StartTrace/ReadTrace/StopTrace.

Start begins tracing and starts a thread in the calling process that copies the trace into f as
the coordinator produces it (Go starts a goroutine for this; a thread here, because the file object
lives in this process).  Stop stops tracing and returns when f has everything: the thread reads to
the trace's end (StopTrace waits for it, as Go's does).  The file is Go 1.9's binary trace format
(mprt/sched/tracefmt.py): `go tool trace FILE` opens it, and `mprt trace FILE` turns it into a
picture and a Chrome/Perfetto trace-event JSON.
"""
import threading

from .. import runtime
from ..sched import mstate as _mstate
from ..sched import trace as _trace

__all__ = ["Start", "Stop"]


class _State:
    f = None
    thread = None
    error = None


def Start(f):
    """Trace every M into f (a binary file object) until Stop."""
    runtime.StartTrace()
    m = _mstate.current_m()
    _State.f, _State.error = f, None
    _trace.will_read(m)                    # StopTrace waits for this reader

    def copy():
        import time
        try:
            while True:
                data = _trace.read(m, block=False)
                if data is None:
                    return
                if data:
                    f.write(data)
                else:
                    time.sleep(0.01)
        except Exception as e:          # reported by Stop
            _State.error = e

    _State.thread = threading.Thread(target=copy, name="mprt-trace", daemon=True)
    _State.thread.start()


def Stop():
    """Stop tracing and finish the file."""
    if _State.f is None:
        return
    runtime.StopTrace()
    _State.thread.join()
    f = _State.f
    _State.f = None
    try:
        f.flush()
    except (AttributeError, OSError):
        pass
    if _State.error is not None:
        raise _State.error


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
