"""runtime.LockOSThread: a locked goroutine keeps its M (process and native thread) for good, and
no other goroutine runs there while it holds it; its P is handed on, so GOMAXPROCS goroutines still
run at once.

    mprt run examples/lockosthread.py
"""
import mprt
from mprt import runtime, sched


def locked(report, stop):
    runtime.LockOSThread()
    seen = set()
    for _ in range(20):
        c = sched.current()
        seen.add((c.mid, c.pid, c.tid))
        mprt.sleep(0.005)                  # parks: the M waits for this goroutine alone
        runtime.Gosched()
    c = sched.current()
    report.send(("locked", c.goid, sorted(seen)))
    stop.recv()
    runtime.UnlockOSThread()


def free(i, report):
    mids = set()
    for _ in range(20):
        mids.add(sched.current().mid)
        mprt.sleep(0.001)
    report.send(("free", i, sorted(mids)))


def main():
    report, stop = mprt.chan(), mprt.chan()
    mprt.go(locked, report, stop)
    kind, goid, seen = report.recv()
    print(f"goroutine {goid} locked: 20 sleeps and yields, always on "
          + ", ".join(f"M{m} (pid {p}, thread {t})" for m, p, t in seen))
    locked_mid = seen[0][0]
    for i in range(6):
        mprt.go(free, i, report)
    others = set()
    for _ in range(6):
        _, i, mids = report.recv()
        others.update(mids)
    print(f"6 other goroutines ran on M{', M'.join(map(str, sorted(others)))}; "
          f"on the locked M{locked_mid}: {'yes' if locked_mid in others else 'never'}")
    stop.send(None)
    snap = sched.snapshot()
    print(f"GOMAXPROCS={snap.gomaxprocs}, Ms started: {len(snap.ms)}")


if __name__ == "__main__":
    mprt.run(main)
