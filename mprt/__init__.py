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
from .sched.chan import Chan, default, select
from .sched.chan import make_chan as chan
from .sched.proc import go_entry as go
from .sched.proc import sleep, syscall
from .shm.malloc import make, new, new_batch, sizeof
from .shm.ptr import Batch, Ptr
from .shm.types import struct
from .sync.atomic import ref

__all__ = ["Batch", "Chan", "Goexit", "Panic", "Ptr", "chan", "default", "go", "make", "new", "new_batch",
           "panic", "ref", "run", "select", "sizeof", "sleep", "struct", "sync", "syscall", "time"]
__version__ = "0.1.0"
