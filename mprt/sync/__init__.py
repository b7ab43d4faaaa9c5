"""Go's package sync: WaitGroup, Mutex, RWMutex and Cond (sched/sema.py), Once (once.py), Map
(syncmap.py), and sync/atomic (atomic.py), usable from every goroutine on every M."""
from ..sched.sema import Cond, Mutex, RWMutex, WaitGroup
from . import atomic
from .once import Once
from .syncmap import Map

__all__ = ["Cond", "Map", "Mutex", "Once", "RWMutex", "WaitGroup", "atomic"]


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
