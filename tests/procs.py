"""Running functions in real worker processes attached to a test's heap."""
import multiprocessing as mp
import traceback

from mprt.shm import malloc
from mprt.shm.ptr import dumps, loads

_ctx = mp.get_context("fork")


def _child(rtid, p, fn, args, conn, barrier, parent_ends):
    for c in parent_ends:
        c.close()          # the parent's death must read as EOF here
    h = malloc.attach(rtid, p=p)
    try:
        args = loads(args)     # through the runtime's pickler: Ptrs become this process's handles
        if barrier is not None:
            barrier.wait(timeout=30)
        res = fn(*args)
        conn.send_bytes(dumps(("ok", res)))
        conn.recv()        # hold our handles until the parent has read the result
    except BaseException:
        conn.send_bytes(dumps(("err", traceback.format_exc())))
    finally:
        h.detach()


def run_each(heap, calls, together=False, timeout=60):
    """Run calls [(P, fn, args)] each in its own process attached to `heap` holding that P; returns
    their results.  Arguments and results cross through the runtime's pickler, so Ptrs arrive as
    the receiving process's own (rooted) handles."""
    barrier = _ctx.Barrier(len(calls)) if together else None
    started = []
    for p, fn, args in calls:
        a, b = _ctx.Pipe()
        ends = [x for _, x in started] + [a]
        pr = _ctx.Process(target=_child, args=(heap.rtid, p, fn, dumps(args), b, barrier, ends))
        pr.start()
        b.close()          # a dead child must read as EOF here
        started.append((pr, a))
    results = []
    try:
        for pr, a in started:
            if not a.poll(timeout):
                raise TimeoutError(f"worker {pr.pid} gave no result in {timeout}s")
            try:
                kind, val = loads(a.recv_bytes())
            except EOFError:
                pr.join(5)
                raise AssertionError(f"worker {pr.pid} died with exit status {pr.exitcode}") from None
            if kind == "err":
                raise AssertionError(f"worker {pr.pid} failed:\n{val}")
            results.append(val)
    finally:
        for pr, a in started:
            try:
                a.send(True)
            except OSError:
                pass
        for pr, a in started:
            pr.join(10)
            if pr.is_alive():
                pr.kill()
                pr.join()
    return results


def sigint_default():
    """preexec_fn for a child the test will send SIGINT: a shell or CI may start the suite with
    SIGINT ignored, and the child would inherit that (mprt keeps an inherited ignore, as Go does)."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)
