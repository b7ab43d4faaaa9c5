"""mprt: Go 1.9.2's runtime rebuilt from processes and POSIX shared memory.

    process-local (each process)                 shared (/dev/shm, every process maps them)
    ---------------------------------            ------------------------------------------------
    M0: the program's process, runs main         /mprt.<rtid>.ctl     the scheduler: sched words,
      Python objects, Ptr handles ----addr--+                         P rings, M/G/sudog rows,
      its mcache (free lists)               |                         the global run queue
                                            +--> /mprt.<rtid>.arena   the heap arena: objects
    worker Ms (forked by the coordinator)                             (channels, sync objects and
      goroutines as greenlets, their frames                           messages too), by offset
      its mcache, its timers, its local      /mprt.<rtid>.heap    allocator books: spans,
      ready and yield queues                                          mcentral lists, page heap,
                                                                      type table, per-cache counters
    coordinator: sysmon (and the collector   /mprt.<rtid>.roots.N one root table per process:
      to come); forks the Ms                                          every live Ptr's address
                                             sem.mprt.<rtid>.*    locks (sched, P, objects, heap,
                                                                      mcentral), one wakeup per M

An M runs goroutines only while it holds a P; a started goroutine stays on its M.  A process
allocates from its own mcache without locks; refills go through the mcentral and mheap locks.
Every Ptr alive in any process is a root in its process's root table.

The language level lives here: run, go, chan, select, default, sleep, syscall, struct, new, make,
new_batch, Ptr, sizeof, ref (a heap word for sync/atomic), Panic, panic, Goexit.  Go's package sync
is mprt.sync, sync/atomic mprt.sync.atomic, the timers of package time mprt.time.
"""
from . import sync, time
from .boot import run
from .errors import Goexit
from .panic import Panic, panic
from .sched import hashmap as _hashmap
from .sched.chan import Chan, default, select
from .sched.chan import make_chan as chan
from .sched.hashmap import Map
from .sched.hashmap import map_type as map
from .sched.proc import go_entry as go
from .sched.proc import sleep, syscall
from .shm import malloc as _malloc
from .shm.malloc import new, new_batch, sizeof
from .shm.ptr import Batch, Ptr
from .shm.types import MapType as _MapType
from .shm.types import struct
from .sync.atomic import ref

__all__ = ["Batch", "Chan", "Goexit", "Map", "Panic", "Ptr", "chan", "default", "go", "make", "map", "new", "new_batch",
           "panic", "ref", "run", "select", "sizeof", "sleep", "struct", "sync", "syscall", "time"]
__version__ = "0.1.0"


def make(elem: object, n: int = 0, safepoint: bool = True) -> "Ptr | Map":
    """mprt.make(elem, n): a zeroed slice of n elements of elem (a numpy scalar dtype, str or
    mprt.Ptr); mprt.make(mprt.map(K, V)[, hint]): an empty map (Go's make(map[K]V, hint))."""
    if isinstance(elem, _MapType):
        return _hashmap.make_map(elem, n)
    return _malloc.make(elem, n, safepoint)

