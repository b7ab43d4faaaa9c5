"""Segments: naming, teardown, and the cleanup of runtimes that died without it."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from mprt.shm import malloc
from mprt.shm.segment import reap_dead, runtime_entries


def _files(rtid):
    return sorted(f for f, _ in runtime_entries(rtid))


def test_names_carry_the_runtime_id_and_teardown_unlinks_all():
    h = malloc.create(arena_max=1 << 26)
    try:
        rtid = h.rtid
        pid, token = rtid.split(".")
        assert int(pid) == os.getpid() and len(token) == 16
        import numpy as np

        import mprt
        mprt.make(np.float64, 10)            # opens an mcentral lock too
        files = _files(rtid)
        assert f"mprt.{rtid}.arena" in files and f"mprt.{rtid}.heap" in files
        assert f"sem.mprt.{rtid}.lock.heap" in files
        assert any(f.startswith(f"sem.mprt.{rtid}.lock.c") for f in files)
        assert any(f.startswith(f"mprt.{rtid}.roots.") for f in files)
    finally:
        h.destroy()
    assert _files(rtid) == []


def test_two_runtimes_never_meet():
    a = malloc.create(arena_max=1 << 26)
    malloc._cur = None
    b = malloc.create(arena_max=1 << 26)
    try:
        assert a.rtid != b.rtid
        assert not set(_files(a.rtid)) & set(_files(b.rtid))
        reap_dead()                                        # live runtimes are not touched
        assert _files(a.rtid) and _files(b.rtid)
    finally:
        b.destroy()
        malloc._cur = a
        a.destroy()


CHILD = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import mprt
    from mprt.shm import malloc
    h = malloc.create(arena_max=1 << 28)
    mprt.make(np.float64, 1 << 16).np[:] = 1.0
    mprt.new_batch(mprt.struct(type("T", (), {"__annotations__": {"x": np.int64}})), 1000)
    print(h.rtid, flush=True)
    time.sleep(60)
""")


def test_sigkilled_runtime_is_removed_by_the_next_start():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        rtid = child.stdout.readline().strip()
        assert rtid, "child did not start a runtime"
        left = _files(rtid)
        assert len(left) >= 4
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        # SIGKILL: nothing was torn down (unless a runtime started meanwhile by a test in another
        # xdist worker has already reaped it, which is the behaviour under test as well)
        assert set(_files(rtid)) <= set(left)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    h = malloc.create(arena_max=1 << 26)                  # the next start finds the dead pid
    try:
        assert _files(rtid) == []
        assert _files(h.rtid)
    finally:
        h.destroy()


def test_mprt_clean_removes_dead_runtimes():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    rtid = child.stdout.readline().strip()
    child.kill()
    child.wait(10)
    child.stdout.close()
    out = subprocess.run([sys.executable, "-m", "mprt", "clean"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.endswith(" entries of dead runtimes removed\n")
    # a runtime started meanwhile by a test in another xdist worker may have removed them first
    assert _files(rtid) == []


def test_bad_arena_maximum():
    for bad in (0, -1, 1000, "1G", 2.5):
        with pytest.raises(ValueError, match=f"arena maximum {bad!r}"):
            malloc.create(arena_max=bad)
    with pytest.raises(ValueError, match="P id 5000 out of range"):
        malloc.create(arena_max=1 << 26, p=5000)             # a heap that cannot be joined is undone
    assert malloc.current_or_none() is None
    assert not [f for f, rid in runtime_entries() if rid.startswith(f"{os.getpid()}.")]


def _die_attached(rtid, p):
    import numpy as np

    import mprt
    malloc.attach(rtid, p=p)
    mprt.new_batch(mprt.struct(type("U", (), {"__annotations__": {"x": np.int64}})), 100)
    os._exit(0)                                            # no detach: slot, P and root table left


def test_dead_process_slot_and_p_are_reused(heap):
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    pr = ctx.Process(target=_die_attached, args=(heap.rtid, 1))
    pr.start()
    pr.join(30)
    assert pr.exitcode == 0
    roots = [f for f in _files(heap.rtid) if ".roots." in f]
    assert len(roots) == 2                                 # ours and the dead one's
    from procs import run_each
    (res,) = run_each(heap, [(1, lambda: malloc.current().slot, ())])   # same P, a reused slot
    assert res == 1
    assert len([f for f in _files(heap.rtid) if ".roots." in f]) == 1   # the reused one was detached


def test_mprt_demo_runs():
    out = subprocess.run([sys.executable, "-m", "mprt", "demo", "-n", "3000"], capture_output=True, text=True,
                         timeout=100)
    assert out.returncode == 0, out.stderr
    assert "followed 3000 pointers" in out.stdout and "runtime.MemStats: HeapAlloc=" in out.stdout


def test_program_that_forgets_teardown_leaves_nothing():
    code = CHILD.replace("time.sleep(60)", "raise SystemExit(3)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 3
    rtid = out.stdout.strip()
    assert rtid and _files(rtid) == []


def test_attach_to_a_runtime_that_is_gone():
    with pytest.raises(RuntimeError, match="runtime '1.deadbeef' does not exist"):
        malloc.attach("1.deadbeef")
    assert malloc.current_or_none() is None


def test_attached_program_that_forgets_detach_gives_its_p_back(heap):
    code = textwrap.dedent(f"""
        import numpy as np, mprt
        from mprt.shm import malloc
        malloc.attach({heap.rtid!r}, p=3)
        mprt.make(np.float64, 100)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    from mprt.shm.layout import PS_OWNER, PSTAT_WORDS
    assert heap.pstat[3 * PSTAT_WORDS + PS_OWNER] == 0
    from mprt.shm.types import size_class
    assert heap.pstat[3 * PSTAT_WORDS + size_class(8 + 800)] == 1    # its allocation is still counted
    assert [f for f in _files(heap.rtid) if ".roots." in f] == [f"mprt.{heap.rtid}.roots.0"]
    heap.check()


def test_a_reused_pid_is_not_the_owner():
    from mprt.shm.segment import Segment, shm_name
    me = os.getpid()
    # a runtime id naming this live pid but an earlier start time: the owner was another process
    rtid = f"{me}.{1:010x}abcdef"
    seg = Segment(shm_name(rtid, "heap"), size=4096, create=True)
    seg.close()
    live = malloc.create(arena_max=1 << 26)                # its start reaps the impostor's files
    try:
        assert _files(rtid) == []
        reap_dead()
        assert _files(live.rtid)                            # our own runtime, same pid, is alive
    finally:
        live.destroy()


def test_a_runtimes_owner_is_known_by_a_start_the_wall_clock_does_not_move():
    # the owner's start is its starttime in ticks since boot: psutil's create_time adds a boot time
    # derived from the wall clock, which moved by a second on this VM now and then, and the next
    # runtime's start then reaped a live runtime's semaphores ("No semaphore exists")
    from mprt.shm.segment import new_runtime_id, pid_alive
    pid, token = new_runtime_id().split(".")
    with open(f"/proc/{pid}/stat") as f:
        starttime = int(f.read().rsplit(")", 1)[1].split()[19])
    assert int(pid) == os.getpid() and int(token[:10], 16) == starttime
    assert pid_alive(os.getpid(), starttime)
    assert not pid_alive(os.getpid(), starttime + 100)     # another process that had this pid
