"""Programs for tests/test_stress.py: `python stress_cases.py CASE [ARGS]`, a JSON line last."""
import json
import os
import sys
import time

import numpy as np

import mprt
from mprt import runtime


def out(**kw):
    print(json.dumps(kw), flush=True)


def wait_goroutines(n, limit_s=60):
    t = time.monotonic()
    while runtime.NumGoroutine() != n and time.monotonic() - t < limit_s:
        mprt.sleep(0.02)
    return runtime.NumGoroutine()


def case_goroutines(n):
    """n goroutines run to completion, then n goroutines alive at once (parked), then woken."""
    n = int(n)
    wg = mprt.sync.WaitGroup()
    wg.add(n)
    for _ in range(n):
        mprt.go(wg.done)
    wg.wait()                                   # returns only after exactly n done() calls
    after_run = wait_goroutines(1)
    start = mprt.chan()
    for _ in range(n):
        mprt.go(start.recv)
    parked = wait_goroutines(n + 1)
    start.close()                               # wakes every one of them
    after_wake = wait_goroutines(1)
    out(after_run=after_run, parked=parked, after_wake=after_wake)


def whisper(left, right):
    left.send(1 + right.recv())


def case_channels(n):
    """Go's daisy chain of whispers: n channels, n goroutines each passing a number one step on."""
    n = int(n)
    leftmost = left = mprt.chan()
    for _ in range(n):
        right = mprt.chan()
        mprt.go(whisper, left, right)
        left = right
    right.send(1)
    got = leftmost.recv()
    out(got=got, goroutines_after=wait_goroutines(1))


@mprt.struct
class Msg:
    token: np.int64
    seq: np.int64


def echo(inp, outp, n):
    for _ in range(n):
        m = inp.recv()
        m.seq = m.seq + 1
        outp.send(m)


def case_token(token, n):
    """One of several runtimes run at once: messages carry this runtime's token through the heap,
    across Ms and through collections; any other runtime's data would show as a wrong token."""
    token, n = int(token), int(n)
    from mprt.shm import malloc
    a, b = mprt.chan(), mprt.chan()
    mprt.go(echo, a, b, n)
    wrong = 0
    for i in range(n):
        m = mprt.new(Msg)
        m.token, m.seq = token, 2 * i
        a.send(m)
        r = b.recv()
        wrong += int(r.token != token or r.seq != 2 * i + 1)
        mprt.make(np.float64, 512)              # garbage, so that collections run meanwhile
    ms = runtime.MemStats()
    runtime.ReadMemStats(ms)
    out(rtid=malloc.current().rtid, pid=os.getpid(), wrong=wrong, numgc=ms.NumGC)


if __name__ == "__main__":
    mprt.run(globals()["case_" + sys.argv[1]], *sys.argv[2:])
