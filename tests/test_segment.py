"""Segments: naming, teardown, and the cleanup of runtimes that died without it."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from mprt.shm import malloc
from mprt.shm.segment import SHM_DIR, reap_dead, runtime_entries


def _files(rtid):
    return sorted(f for f, _ in runtime_entries(rtid))


def test_names_carry_the_runtime_id_and_teardown_unlinks_all():
    h = malloc.create(arena_max=1 << 26)
    try:
        rtid = h.rtid
        pid, token = rtid.split(".")
        assert int(pid) == os.getpid() and len(token) == 8
        import mprt
        import numpy as np
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
        assert _files(rtid) == left                       # SIGKILL: nothing was torn down
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
    assert _files(rtid)
    out = subprocess.run([sys.executable, "-m", "mprt", "clean"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and f"mprt.{rtid}.arena" in out.stdout
    assert _files(rtid) == []


def test_bad_arena_maximum():
    for bad in (0, -1, 1000, "1G", 2.5):
        with pytest.raises(ValueError, match=f"arena maximum {bad!r}"):
            malloc.create(arena_max=bad)
    assert malloc.current_or_none() is None
    assert not [f for f in os.listdir(SHM_DIR) if f.startswith("mprt.") and str(os.getpid()) in f]
