"""Programs that the fault tests (tests/test_faults.py, scripts/faults.py) break from outside or
from inside.

    python fault_cases.py CASE READYFILE

`busy`: goroutines on both worker Ms exchange messages and allocate without end; main writes
READYFILE (JSON: rtid, M0's pid, the Ms' pids) once both Ms run, then waits for good.  The fault
comes from outside: a signal to one of the processes.  The other cases fault by themselves.
"""
import json
import os
import sys
import time

import numpy as np

import mprt
from mprt import runtime, sched


@mprt.struct
class Cell:
    next: mprt.Ptr
    v: np.int64


def pinger(inp, out, k, where):
    where.np[k] = os.getpid()             # which M (process) runs this pinger
    n = 0
    if k:
        n = inp.recv().v + 1              # the second one answers the first
    while True:
        c = mprt.new(Cell)
        c.v = n
        out.send(c)
        got = inp.recv()
        n = got.v + 1
        if n % 200 == 0:
            mprt.make(np.float64, 1000)     # some garbage: the collector runs too


def ready(path, **extra):
    snap = sched.snapshot()
    from mprt.shm import malloc
    d = {"rtid": malloc.current().rtid, "m0": os.getpid(),
         "ms": sorted({m.pid for m in snap.ms if m.pid != os.getpid()}), **extra}
    with open(path + ".tmp", "w") as f:
        json.dump(d, f)
    os.rename(path + ".tmp", path)


def case_busy(path):
    a, b = mprt.chan(), mprt.chan()
    where = mprt.make(np.int64, 2)
    mprt.go(pinger, a, b, 0, where)
    mprt.go(pinger, b, a, 1, where)
    deadline = time.monotonic() + 20
    while not where.np.all() and time.monotonic() < deadline:
        mprt.sleep(0.01)
    mprt.sleep(0.1)
    ready(path, pinger=int(where.np[0]))
    mprt.select()                         # wait for good (the goroutines keep running)


def _raise_in_finalizer(c):
    raise ValueError(f"finalizer of cell {c.v} failed")


def case_finalizer(path):
    c = mprt.new(Cell)
    c.v = 7
    runtime.SetFinalizer(c, _raise_in_finalizer)
    del c
    ready(path)
    runtime.GC()
    mprt.sleep(5)                         # the finalizer goroutine panics meanwhile


def _hoard(keep, size):
    while True:
        keep.append(mprt.make(np.uint8, size))


def case_arena(path):
    """Run with MPRT_ARENA small: a goroutine keeps 1 MiB slices until the arena is used up."""
    ready(path)
    keep = []
    mprt.go(_hoard, keep, 1 << 20)
    mprt.sleep(30)


def case_shmfull(path):
    """Run where /dev/shm is a small tmpfs (a mount namespace): main keeps 1 MiB slices until
    the arena cannot grow, because /dev/shm is full (the arena's reservation is far larger)."""
    ready(path)
    keep = []
    while True:
        keep.append(mprt.make(np.uint8, 1 << 20))


CASES = {"busy": case_busy, "finalizer": case_finalizer, "arena": case_arena, "shmfull": case_shmfull}

if __name__ == "__main__":
    mprt.run(CASES[sys.argv[1]], sys.argv[2])
