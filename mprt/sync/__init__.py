"""Go's package sync: WaitGroup and Mutex (sched/sema.py), Once, and sync/atomic (atomic.py),
usable from every goroutine on every M."""
from ..sched.sema import Mutex, WaitGroup
from . import atomic
from .once import Once

__all__ = ["Mutex", "Once", "WaitGroup", "atomic"]


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
