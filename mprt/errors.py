"""The exceptions every layer raises: the bottom of the import order (it imports only Panic).

    Goexit       runtime.Goexit's unwinding of one goroutine (BaseException: `except Exception`
                 in user code does not stop it, as no recover stops Goexit in Go)
    NoRuntime    a runtime call in a process with no runtime running (or after it ended)
    Error        runtime.Error, Go's run-time panics: `runtime error: ...`
    PlainError   the run-time panics whose text has no prefix (Go's plainError: send on a closed
                 channel, close of a closed channel)
    index_error  an index out of range: a runtime.Error that is also Python's IndexError

The facade (mprt.runtime) re-exports Error; the heap, the scheduler and the collector raise these
without importing anything above them.
"""
from .panic import Panic


class Goexit(BaseException):
    """runtime.Goexit: ends the calling goroutine after its finally blocks (deferred calls) ran."""


class NoRuntime(RuntimeError):
    """A runtime call where no runtime runs (outside mprt.run, or a handle kept after it ended)."""


class Error(Panic):
    """runtime.Error: the runtime's own run-time panics.  str() is Go's Error() text."""

    def __init__(self, msg):
        super().__init__(msg)

    def __str__(self):
        return f"runtime error: {self.value}"

    def RuntimeError(self):   # Go's marker method
        pass

    def Error(self):
        return str(self)


class PlainError(Error):
    """A runtime error whose text has no "runtime error: " prefix."""

    def __str__(self):
        return str(self.value)


class IndexOutOfRange(Error, IndexError):
    """`runtime error: index out of range`, caught by `except IndexError` too."""


def index_error():
    return IndexOutOfRange("index out of range")


Error.__module__ = "mprt.runtime"     # the name users see (and pickle finds): the facade's

from . import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
