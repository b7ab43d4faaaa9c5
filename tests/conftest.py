"""Shared fixtures.  Every test tears its runtime down; the session fails if anything of mprt is
left in /dev/shm when all workers are done."""
import os

import pytest

from mprt.shm import malloc
from mprt.shm.segment import SHM_DIR, runtime_entries


@pytest.fixture
def heap():
    """A fresh runtime heap, this process holding P0; destroyed afterwards."""
    h = malloc.create(arena_max=1 << 30, p=0)
    try:
        yield h
    finally:
        h.destroy()


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):
        return   # an xdist worker: the controller checks once everyone is done
    left = [f for f, _ in runtime_entries()]
    if left:
        session.exitstatus = 1
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        msg = f"mprt left {len(left)} entries in {SHM_DIR}: {sorted(left)[:10]}"
        if tr:
            tr.write_line(msg, red=True)
        else:
            print(msg)
        for f in left:   # clean up so that the next run starts from nothing
            try:
                os.unlink(os.path.join(SHM_DIR, f))
            except OSError:
                pass
