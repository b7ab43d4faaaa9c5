"""Go's package sync: WaitGroup and Mutex, usable from every goroutine on every M (sched/sema.py)."""
from .sched.sema import Mutex, WaitGroup

__all__ = ["Mutex", "WaitGroup"]
