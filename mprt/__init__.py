"""mprt: Go 1.9.2's runtime rebuilt from processes and POSIX shared memory.

    process-local (each process)                 shared (/dev/shm, every process maps them)
    ---------------------------------            ------------------------------------------------
    M0: the program's process                    /mprt.<rtid>.arena   the heap arena: objects,
      Python objects, Ptr handles ----addr---->                       addressed by byte offset
      mcache of the P it holds (free lists)      /mprt.<rtid>.heap    allocator books: spans,
                                                                      mcentral lists, page heap,
    worker Ms (processes), same shape                                 type table, per-P counters
                                                 /mprt.<rtid>.roots.N one root table per process:
    coordinator (the collector)                                       every live Ptr's address
                                                 sem.mprt.<rtid>.lock.*  heap, types, mcentral

A process allocates from the mcache of the P it holds without locks; refills go through the
mcentral and mheap locks.  Every Ptr alive in any process is a root in its process's root table.

The language level lives here: run, go, chan, select, default, sleep, syscall, struct, new, make,
new_batch, Ptr, sizeof, Panic, panic, Goexit.  Go's package sync is mprt.sync.
"""
from . import sync
from .panic import Panic, panic
from .sched.boot import run
from .sched.chan import Chan, default, select
from .sched.chan import make_chan as chan
from .sched.proc import Goexit, go, sleep, syscall
from .shm.malloc import make, new, new_batch, sizeof
from .shm.ptr import Batch, Ptr
from .shm.types import struct

__all__ = ["Batch", "Chan", "Goexit", "Panic", "Ptr", "chan", "default", "go", "make", "new", "new_batch",
           "panic", "run", "select", "sizeof", "sleep", "struct", "sync", "syscall"]
__version__ = "0.1.0"
