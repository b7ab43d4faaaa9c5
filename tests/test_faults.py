"""Faults from outside and from inside a running program (real signals, real processes): each ends
the program with a clear message and a non-zero status, and leaves nothing behind: no entry of
the runtime in /dev/shm (segments and semaphores), no process.  `scripts/faults.py` prints the same
runs as a table with the time each program took to end."""
import re
import subprocess
import sys

import pytest
from faults import FAULTS, private_shm_works, run_fault

# name: (exit status, the message on stderr)
EXPECT = {
    "SIGKILL of a worker M": (2, r"fatal error: runtime: M\d+ \(pid \d+\) died: signal SIGKILL"),
    "SIGKILL of the coordinator": (2, r"fatal error: runtime: the coordinator process \(sysmon and the "
                                      r"collector, pid \d+\) died: signal SIGKILL"),
    "SIGKILL of M0": (-9, r"fatal error: runtime: M0 \(pid \d+, the program's main process\) died without "
                          r"tearing down; its \d+ Ms were killed and the runtime's shared memory removed"),
    "SIGINT (Ctrl-C) to M0": (-2, r"KeyboardInterrupt"),
    "SIGTERM to M0": (-15, r"^$"),
    "exception in a finalizer": (2, r"panic: ValueError: finalizer of cell 7 failed\n\ngoroutine \d+ \[running\]:"),
    "arena used up (MPRT_ARENA=64M)": (2, r"runtime: out of memory: cannot allocate \d+-byte block \(\d+ in use\)\n"
                                          r"fatal error: out of memory\n\ngoroutine"),
    "/dev/shm full (a 64 MiB tmpfs)": (2, r"runtime: out of memory: cannot allocate \d+-byte block \(\d+ in use\)\n"
                                          r"fatal error: out of memory\n\ngoroutine"),
}

# a bound against hangs only: the times themselves are measured by scripts/faults.py
ENDS_WITHIN_S = 10


@pytest.mark.parametrize("name", list(EXPECT))
def test_fault_ends_the_program_and_leaves_nothing(name):
    if FAULTS[name][3] and not private_shm_works():
        pytest.skip("no mount namespace here: cannot give the program a small /dev/shm of its own")
    r = run_fault(name)
    status, message = EXPECT[name]
    assert not r["hung"] and r["seconds"] < ENDS_WITHIN_S, r
    assert r["rc"] == status, (r["rc"], r["stderr"][-3000:])
    assert re.search(message, r["stderr"], re.M), r["stderr"][-3000:]
    assert r["left"] == [], r["left"]
    assert r["alive"] == [], r["alive"]


def test_sigkill_of_the_process_group_is_cleaned_by_mprt_clean():
    """Killed whole, the runtime cannot remove its segments: `mprt clean` does (so does the next
    runtime that starts on the machine, which may be another test's, running in parallel)."""
    from faults import _entries
    r = run_fault("SIGKILL of the whole process group")
    assert r["rc"] == -9 and r["alive"] == []
    out = subprocess.run([sys.executable, "-m", "mprt", "clean"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert re.search(r"^\d+ entries of dead runtimes removed$", out.stdout, re.M)
    assert _entries(r["rtid"], None) == []
