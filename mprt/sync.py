"""Go's package sync: WaitGroup and Mutex, usable from every goroutine on every M (sched/sema.py)."""
from .sched.sema import Mutex, WaitGroup

__all__ = ["Mutex", "WaitGroup"]


from . import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
