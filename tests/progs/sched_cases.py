"""Programs for tests/test_sched.py: `python sched_cases.py CASE`, each a small mprt program whose
output and exit status the tests read (as Go's runtime tests run testprog)."""
import json
import sys
import threading
import time

import numpy as np

import mprt
from mprt import runtime, sched
from mprt.runtime import debug


def out(**kw):
    print(json.dumps(kw), flush=True)


# ---- LockOSThread ----

def locked_worker(res, ready, release):
    runtime.LockOSThread()
    t0 = time.monotonic()
    me = sched.current()
    seen = set()
    for step in range(20):
        c = sched.current()
        seen.add((c.pid, c.tid, c.mid))
        if step % 3 == 0:
            runtime.Gosched()
        elif step % 3 == 1:
            mprt.sleep(0.002)
        else:
            ready.send(step)
            release.recv()
    res.send((me.mid, sorted(seen), t0, time.monotonic()))
    runtime.UnlockOSThread()


def others(mids, stop, wg):
    while True:
        mids.send((sched.current().mid, time.monotonic()))
        i, _ = mprt.select(stop.recv, mprt.default)
        if i == 0:
            break
        mprt.sleep(0.001)
    wg.done()


def case_lockosthread():
    res, ready, release = mprt.chan(1), mprt.chan(), mprt.chan()
    mids, stop = mprt.chan(10000), mprt.chan()
    mprt.go(locked_worker, res, ready, release)
    wg = mprt.sync.WaitGroup()
    wg.add(4)
    for _ in range(4):
        mprt.go(others, mids, stop, wg)
    for _ in range(6):
        ready.recv()
        mprt.sleep(0.01)
        release.send(None)
    locked_mid, seen, t0, t1 = res.recv()
    stop.close()
    wg.wait()
    reports = []
    while len(mids):
        reports.append(mids.recv())
    inside = [mid for mid, t in reports if t0 < t < t1]
    out(locked_mid=locked_mid, seen=seen, inside=sorted(set(inside)), n_inside=len(inside),
        gomaxprocs=runtime.GOMAXPROCS(0))


def parallel_turns(turn, me, n, done):
    # only finishes if the other goroutine runs at the same time: each waits for its turn
    t = turn.np
    for i in range(n):
        deadline = time.monotonic() + 10
        while t[0] % 2 != me:
            if time.monotonic() > deadline:
                done.send(("stuck", i))
                return
        t[0] += 1
    done.send(("ok", sched.current().mid))


def case_locked_parallel():
    # two locked goroutines plus the turn-taking pair: GOMAXPROCS goroutines still run at once
    turn = mprt.make(np.int64, 1)
    done = mprt.chan(2)

    def locked(turn, me, n, done):
        runtime.LockOSThread()
        parallel_turns(turn, me, n, done)
    mprt.go(locked, turn, 0, 2000, done)
    mprt.go(locked, turn, 1, 2000, done)
    out(results=sorted([done.recv()[0], done.recv()[0]]))


def case_parallel():
    turn = mprt.make(np.int64, 1)
    done = mprt.chan(2)
    mprt.go(parallel_turns, turn, 0, 2000, done)
    mprt.go(parallel_turns, turn, 1, 2000, done)
    r = [done.recv(), done.recv()]
    out(results=sorted(x[0] for x in r), mids=sorted(x[1] for x in r if x[0] == "ok"))


def case_affinity():
    wg = mprt.sync.WaitGroup()
    mids = mprt.chan(100)

    def busy(wg, mids):
        t = time.monotonic()
        while time.monotonic() - t < 0.2:
            pass
        mids.send((sched.current().mid, time.monotonic()))
        wg.done()
    wg.add(4)
    for _ in range(4):
        mprt.go(busy, wg, mids)
    time.sleep(0.1)
    # an M handed a P re-pins itself just after its row says it holds it (the scheduler hands Ps
    # over for fairness): a snapshot in between sees the old CPU, so a few are taken
    for _ in range(5):
        snap = sched.snapshot()
        holding = [(m.id, m.pid, sorted(m.affinity)) for m in snap.ms if m.p is not None]
        cpus = [tuple(aff) for _, _, aff in holding]
        if len(cpus) == len(set(cpus)):
            break
        time.sleep(0.01)
    wg.wait()
    snap = sched.snapshot()
    out(ms=[(m.id, m.pid, sorted(m.affinity), m.p) for m in snap.ms], holding=holding,
        ncpu=runtime.NumCPU(), gomaxprocs=snap.gomaxprocs)


def case_steal():
    done = mprt.chan(1000)

    def spawner(n, done):
        def leaf(done):
            t = time.monotonic()
            while time.monotonic() - t < 0.002:
                pass
            done.send(sched.current().mid)
        for _ in range(n):
            mprt.go(leaf, done)
    mprt.go(spawner, 200, done)
    mids = [done.recv() for _ in range(200)]
    out(mids=sorted(set(mids)), counts={str(k): mids.count(k) for k in set(mids)})


# ---- endings ----

def case_deadlock():
    ch = mprt.chan()

    def waiter(ch):
        ch.recv()
    mprt.go(waiter, ch)
    mprt.sleep(0.05)
    ch.recv()


def case_deadlock_select():
    mprt.select()


# Go 1.9.2's testprog programs (runtime/testdata/testprog), written in mprt

def case_locked_deadlock():
    runtime.LockOSThread()
    mprt.select()


def case_locked_deadlock2():
    def locked():
        runtime.LockOSThread()
        mprt.select()
    mprt.go(locked)
    mprt.sleep(0.001)
    mprt.select()


def case_panic_traceback():
    pt1()


def pt1():
    try:
        pt2()
    finally:
        mprt.panic("panic pt1")


def pt2():
    try:
        mprt.panic("hello")
    finally:
        mprt.panic("panic pt2")


def case_no_helper_goroutines():
    from mprt import time as mtime

    @mprt.struct
    class Box:
        v: np.int64

    runtime.SetFinalizer(mprt.new(Box), lambda p: None)
    mtime.AfterFunc(3600, lambda: None)
    runtime.GC()
    mprt.sleep(0.05)
    mprt.panic("oops")


def case_goexit():
    def work():
        mprt.sleep(0.05)
        print("work done", flush=True)
    mprt.go(work)
    try:
        runtime.Goexit()
    finally:
        print("deferred ran", flush=True)


def case_goexit_goroutine():
    ch = mprt.chan()

    def g(ch):
        try:
            runtime.Goexit()
        finally:
            ch.send("deferred")
    mprt.go(g, ch)
    got = ch.recv()
    # g sent from its finally block and is ending now: it must end (Goexit completes)
    t = time.monotonic()
    while runtime.NumGoroutine() > 1 and time.monotonic() - t < 10:
        mprt.sleep(0.001)
    out(got=got, n=runtime.NumGoroutine())


def case_panic_goroutine():
    def boom():
        mprt.panic("boom in goroutine")
    mprt.go(boom)
    mprt.sleep(10)


def _panic_at(go_flag, k):
    while not go_flag.np[0]:
        pass
    raise ValueError(f"panic number {k}")


def case_panic_together():
    """Goroutines on every M and main panic at the same moment: one report, the others wait."""
    go_flag = mprt.make(np.int64, 1)
    for k in range(3):
        mprt.go(_panic_at, go_flag, k)
    mprt.sleep(0.2)
    go_flag.np[0] = 1
    _panic_at(go_flag, "main")


def case_panic_main():
    def inner():
        raise ValueError("bad value")
    inner()


def blocked(ch, ready):
    ready.send(1)
    ch.recv()


def park_one():
    """Start a goroutine that blocks on a channel receive for good, and let it get there."""
    ch, ready = mprt.chan(), mprt.chan()
    mprt.go(blocked, ch, ready)
    ready.recv()
    buf = bytearray(1 << 16)
    deadline = time.monotonic() + 20     # a loaded machine can keep its M from the receive for a while
    while b"[chan receive]:" not in bytes(buf[:runtime.Stack(buf, True)]) and time.monotonic() < deadline:
        mprt.sleep(0.01)
    return ch


def case_panic_all():
    park_one()
    mprt.panic("with all")


def case_recover():
    try:
        mprt.panic("caught")
    except mprt.Panic as e:
        out(recovered=str(e))
    ch = mprt.chan(1)
    ch.close()
    errs = []
    for f in (lambda: ch.send(1), ch.close):
        try:
            f()
        except runtime.Error as e:
            errs.append(str(e))
    wg = mprt.sync.WaitGroup()
    try:
        wg.add(-1)
    except mprt.Panic as e:
        errs.append(str(e))
        errs.append(isinstance(e, runtime.Error))
    out(errs=errs)


def case_nil_go():
    mprt.go(None)


def case_unpicklable():
    lock = threading.Lock()

    def uses_lock():
        with lock:
            pass
    try:
        mprt.go(uses_lock)
    except TypeError as e:
        out(err=str(e))


def case_unlock_unlocked():
    mprt.sync.Mutex().unlock()


# ---- GOMAXPROCS, syscalls, threads ----

def case_gomaxprocs():
    r = [runtime.GOMAXPROCS(0)]
    r.append(runtime.GOMAXPROCS(3))
    r.append(runtime.GOMAXPROCS(-1))
    r.append(runtime.GOMAXPROCS(1))
    r.append(runtime.GOMAXPROCS(0))
    r.append(runtime.GOMAXPROCS(5000))
    r.append(runtime.GOMAXPROCS(2))
    try:
        runtime.GOMAXPROCS("2")
    except TypeError as e:
        r.append(str(e))
    wg = mprt.sync.WaitGroup()
    wg.add(50)
    for _ in range(50):
        mprt.go(wg.done)
    wg.wait()
    out(r=r, snap=sched.snapshot().gomaxprocs, numcpu=runtime.NumCPU())


def case_env_gomaxprocs():
    out(n=runtime.GOMAXPROCS(0), numcpu=runtime.NumCPU())


def case_syscall():
    # two goroutines block in marked system calls: their Ps go to other Ms, so a third goroutine
    # still runs while both sleep
    done = mprt.chan(3)

    def blocker(done):
        with mprt.syscall():
            time.sleep(2.0)
        done.send(("blocker", sched.current().mid))

    def runner(done):
        mprt.sleep(0.05)
        done.send(("runner", time.monotonic()))
    t0 = time.monotonic()
    mprt.go(blocker, done)
    mprt.go(blocker, done)
    mprt.sleep(0.1)
    mprt.go(runner, done)
    got = [done.recv() for _ in range(3)]
    runner_t = [t for k, t in got if k == "runner"][0] - t0
    out(runner_before_blockers=runner_t < 1.8, runner_t=runner_t, threads=len(sched.snapshot().ms))


def case_thread_exhaustion():
    debug.SetMaxThreads(3)

    def blocker():
        with mprt.syscall():
            time.sleep(2)
    for _ in range(6):
        mprt.go(blocker)
    mprt.sleep(3)


def case_lock_holder(how):
    # a goroutine on a worker M takes the sched lock and then, holding it, is killed ("kill"),
    # throws ("throw", as a thread-exhaustion fatal error found while starting an M does), or
    # sleeps ("sleep": the test then sends SIGTERM to M0); main meanwhile waits on that lock
    # ("kill_panic": main panics, and its report waits on that lock)
    import os
    import signal

    from mprt.sched import mstate
    ready, go_on = mprt.chan(1), mprt.chan(1)
    held = mprt.make(np.int64, 1)

    def holder(ready, go_on, held):
        if sched.current().mid == 0:
            ready.send(False)
            return
        ready.send(True)
        go_on.recv()
        m = mstate.current_m()
        mstate.acq(m.schedlock)
        held.np[0] = 1
        time.sleep(0.2)           # main is waiting on the lock by now
        if how == "sleep":
            # said here, not by main: sysmon may preempt main's spin below into the scheduler,
            # which waits for this lock (that is main waiting on the lock too)
            print("waiting", flush=True)
        if how.startswith("kill"):
            os.kill(os.getpid(), signal.SIGKILL)
        elif how == "throw":
            mstate.fatal("thread exhaustion", pre="runtime: program exceeds 2-thread limit\n", locked=True)
        time.sleep(60)
    while True:
        mprt.go(holder, ready, go_on, held)
        if ready.recv():
            break
        mprt.sleep(0.01)
    go_on.send(1)
    h = held.np
    while h[0] == 0:
        pass
    if how == "kill_panic":
        mprt.panic("main panics while the lock's holder dies")
    t = time.monotonic()
    while time.monotonic() - t < 30:
        runtime.Gosched()
        mprt.sleep(0.001)
    out(outlived=True)


def case_slow_m_start():
    # a worker M starts while the heap lock it attaches under is held for longer than a lock wait's
    # round (segment.LOCK_WAIT_S): it waits as any M does, and the program ends as written (its
    # forked process had taken the coordinator's identity in that wait, and ended the runtime)
    from mprt.shm import malloc
    runtime.GOMAXPROCS(1)
    wg = mprt.sync.WaitGroup()
    res = mprt.make(np.int64, 8)
    wg.add(1)
    mprt.go(slow_start_worker, wg, res, 0, 0)   # after this, go() takes no heap lock
    wg.wait()
    mprt.sleep(0.2)
    before = len(sched.snapshot().ms)
    lk = malloc.current().lock
    taken = threading.Event()

    def hold():
        lk.acquire_raw()
        taken.set()
        time.sleep(0.5)
        lk.release()
    th = threading.Thread(target=hold)
    th.start()
    taken.wait()
    runtime.GOMAXPROCS(before + 1)              # M0 runs main only: one more M than there is
    for i in range(1, 8):
        wg.add(1)
        mprt.go(slow_start_worker, wg, res, i, 0.1)
    wg.wait()
    th.join()
    out(res=res.np.tolist(), started=len(sched.snapshot().ms) - before)


def slow_start_worker(wg, res, i, busy):
    t = time.monotonic()
    while time.monotonic() - t < busy:
        pass
    res.np[i] = i + 1
    wg.done()


def case_stw():
    # two goroutines in tight loops with no runtime call: the world still stops (by signal)
    stop = mprt.make(np.int64, 1)
    started = mprt.chan(2)

    def spin(stop, started):
        s = stop.np
        started.send(1)
        x = 0
        while s[0] == 0:
            x += 1
    mprt.go(spin, stop, started)
    mprt.go(spin, stop, started)
    started.recv()
    started.recv()
    pauses = []
    m = runtime.MemStats()
    for _ in range(20):
        t = time.perf_counter()
        runtime.ReadMemStats(m)
        pauses.append(time.perf_counter() - t)
    stop.np[0] = 1
    out(n=len(pauses), max_ms=max(pauses) * 1e3)


def case_schedtrace():
    mprt.sleep(0.35)


def case_timers():
    res = mprt.chan(10)

    def sleeper(d, res):
        t = time.monotonic()
        mprt.sleep(d)
        res.send((d, time.monotonic() - t))
    for d in (0.45, 0.05, 0.25):
        mprt.go(sleeper, d, res)
    t = time.monotonic()
    got = [res.recv() for _ in range(3)]
    out(order=[d for d, _ in got], short=[d for d, slept in got if slept < d], took=time.monotonic() - t)


def case_mutex():
    mu = mprt.sync.Mutex()
    counter = mprt.make(np.int64, 1)
    wg = mprt.sync.WaitGroup()

    def add(n):
        for _ in range(n):
            with mu:
                c = counter.np
                v = c[0]
                if _ % 7 == 0:
                    runtime.Gosched()
                c[0] = v + 1
        wg.done()
    wg.add(4)
    for _ in range(4):
        mprt.go(add, 300)
    wg.wait()
    out(counter=int(counter.np[0]))


def case_mutex_starve():
    # Go 1.9's starvation mode: a goroutine that relocks the mutex at once would keep it from a
    # waiter on another M for as long as it runs (barging wins the normal mode's races); after 1 ms
    # of waiting the waiter is handed the mutex.  Also the normal mode's point: the relocking
    # goroutine gets most of its turns without waiting
    mu = mprt.sync.Mutex()
    stop, got = mprt.make(np.int64, 1), mprt.chan(1)
    turns = mprt.make(np.int64, 1)

    def hog():
        t = stop.np
        n = turns.np
        while t[0] == 0:
            mu.lock()
            n[0] += 1
            end = time.monotonic() + 0.0001
            while time.monotonic() < end:
                pass
            mu.unlock()

    def waiter():
        mprt.sleep(0.1)             # the hog has the mutex by now
        waits = []
        for _ in range(5):
            t = time.monotonic()
            mu.lock()
            waits.append(time.monotonic() - t)
            mu.unlock()
            mprt.sleep(0.02)
        got.send(waits)
    mprt.go(hog)
    mprt.go(waiter)
    waits = got.recv()
    stop.np[0] = 1
    out(waits=waits, turns=int(turns.np[0]))


def case_select_fair():
    a, b = mprt.chan(100), mprt.chan(100)
    for i in range(100):
        a.send(i)
        b.send(i)
    picks = [mprt.select(a.recv, b.recv)[0] for _ in range(100)]
    out(a=picks.count(0), b=picks.count(1))


def case_ptr_through_chan():
    @mprt.struct
    class Node:
        val: np.int64
        next: mprt.Ptr

    ch = mprt.chan()

    def consumer(ch, res):
        total = 0
        for n in ch:
            while n is not None:
                total += int(n.val)
                n = n.next
        res.send(total)
    res = mprt.chan()
    mprt.go(consumer, ch, res)
    for i in range(10):
        head = None
        for k in range(5):
            n = mprt.new(Node)
            n.val = i * 10 + k
            n.next = head
            head = n
        ch.send(head)
    ch.close()
    out(total=res.recv())


def case_ctrl_c():
    print("ready", flush=True)
    def loop():
        while True:
            mprt.sleep(0.01)
    mprt.go(loop)
    mprt.go(loop)
    mprt.sleep(30)


def case_term_in_go():
    # SIGTERM while go() pickles its function (~0.2 s here: a default of 2M ints, pickled by value),
    # in Python code that the C go() calls; then main sleeps, as case_ctrl_c's
    big = tuple(range(2_000_000))

    def f(x=big):
        return len(x)
    print("ready", flush=True)
    mprt.go(f)
    mprt.sleep(30)


def case_pids():
    wg = mprt.sync.WaitGroup()
    wg.add(20)
    for _ in range(20):
        mprt.go(lambda: (mprt.sleep(0.01), wg.done()))
    wg.wait()
    snap = sched.snapshot()
    out(pids=[m.pid for m in snap.ms], coord=None)


def case_locked_exit():
    # a locked goroutine that exits leaves its M usable: others run there afterwards
    res = mprt.chan(100)

    def locker(res):
        runtime.LockOSThread()
        res.send(("locked", sched.current().mid))

    def plain(res):
        res.send(("plain", sched.current().mid))
    mprt.go(locker, res)
    kind, mid = res.recv()
    mprt.sleep(0.05)
    seen = set()
    for _ in range(30):
        wg = mprt.sync.WaitGroup()
        for _ in range(20):
            wg.add(1)
            mprt.go(lambda: (plain(res), wg.done()))
        wg.wait()
        while len(res):
            seen.add(res.recv()[1])
        if mid in seen:
            break
    out(locked_mid=mid, seen=sorted(seen), old_max=debug.SetMaxThreads(10000))


def case_preempt():
    # sysmon asks a goroutine running for more than 10 ms to yield at its next runtime call
    res = mprt.chan(2)

    def hog(res):
        mprt.sleep(0.001)         # settle: the 10 ms count starts when we are running again
        t0 = time.monotonic()
        mprt.go(lambda: res.send(("other", time.monotonic() - t0)))
        tick = mprt.chan(1)
        while time.monotonic() - t0 < 0.5:
            tick.send(1)          # a runtime call: a safe point, never a block
            tick.recv()
        res.send(("hog", time.monotonic() - t0))
    mprt.go(hog, res)
    got = dict([res.recv(), res.recv()])
    out(**got)


def case_debug():
    st = debug.Stack().decode()
    debug.SetTraceback("none")          # cannot lower the level: GOTRACEBACK=all stays
    park_one()
    print(json.dumps({"stack": st, "version": runtime.Version(), "goos": runtime.GOOS}), flush=True)
    mprt.panic("after SetTraceback")


def case_dumpnest():
    """A dump request arrives while this M's handler still writes its answer to the last one (the
    second SIGURG runs its handler inside the first's json.dump): both answered, no error."""
    import os
    import signal

    from mprt.sched import ctl, mstate
    from mprt.sched import traceback as tb
    m = mstate.current_m()
    q, s = m.q, m.ctl.sched
    orig, nested = json.dump, []

    def dump_asked_again(obj, f, *a, **k):
        if not nested:
            nested.append(obj["req"])
            q[s + ctl.S_DUMPREQ] += 1            # the requester, giving up on us, asks again
            os.kill(os.getpid(), signal.SIGURG)
            for _ in range(100_000):              # the handler runs between these bytecodes
                pass
        return orig(obj, f, *a, **k)
    json.dump = dump_asked_again
    try:
        q[s + ctl.S_DUMPREQ] += 1
        os.kill(os.getpid(), signal.SIGURG)
        for _ in range(100_000):
            pass
    finally:
        json.dump = orig
    with open(tb._dump_path(m, m.id)) as f:
        got = json.load(f)["req"]
    print(json.dumps({"first": nested[0], "answered": got, "asked": int(q[s + ctl.S_DUMPREQ])}), flush=True)


def main():
    case = sys.argv[1]
    globals()["case_" + case](*sys.argv[2:])


if __name__ == "__main__":
    mprt.run(main)
