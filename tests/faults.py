"""Break a running program and see what it leaves: the harness of tests/test_faults.py and
scripts/faults.py (which prints the table of every fault).

A program of tests/progs/fault_cases.py runs in a session of its own; once it has written its ready
file, the fault is injected (a signal to one of its processes, or none when the case faults by
itself), and we time how long the program takes to end, then look for what it left: entries of its
runtime in /dev/shm (segments and semaphores) and processes (M0, the coordinator, the Ms).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psutil
from procs import sigint_default

from mprt.shm.segment import runtime_entries

PROG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "progs", "fault_cases.py")

# name: (program case, what is done to it, extra environment, /dev/shm size in MiB or None)
FAULTS = {
    "SIGKILL of a worker M": ("busy", "m", {}, None),
    "SIGKILL of the coordinator": ("busy", "coordinator", {}, None),
    "SIGKILL of M0": ("busy", "m0", {}, None),
    "SIGINT (Ctrl-C) to M0": ("busy", "sigint", {}, None),
    "SIGTERM to M0": ("busy", "sigterm", {}, None),
    "exception in a finalizer": ("finalizer", None, {}, None),
    "arena used up (MPRT_ARENA=64M)": ("arena", None, {"MPRT_ARENA": "64M"}, None),
    "/dev/shm full (a 64 MiB tmpfs)": ("shmfull", None, {}, 64),
    "SIGKILL of the whole process group": ("busy", "pgroup", {}, None),
}


def private_shm_works():
    """Whether this machine lets us give a program a /dev/shm of its own (a mount namespace)."""
    if not shutil.which("unshare"):
        return False
    r = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /dev/shm"],
                       capture_output=True, timeout=30)
    return r.returncode == 0


def _alive(pids):
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def run_fault(name, timeout=30):
    """Run one fault; returns {rc, seconds (fault to the program's exit), gone_s (fault to the last
    of its processes and entries gone), stderr, left (entries in /dev/shm), alive (processes of the
    program still there), hung, rtid}."""
    case, action, extra, shm_mb = FAULTS[name]
    tmp = tempfile.mkdtemp(prefix="mprt-fault-")
    ready, leftfile = os.path.join(tmp, "ready"), os.path.join(tmp, "left")
    env = dict(os.environ, GOMAXPROCS="2", **extra)
    for k in ("GODEBUG", "GOGC", "GOTRACEBACK"):
        env.pop(k, None)
    cmd = [sys.executable, PROG, case, ready]
    if shm_mb:
        # the program sees a /dev/shm of its own; what it leaves there is listed before it goes
        cmd = ["unshare", "-m", "sh", "-c",
               f'mount -t tmpfs -o size={shm_mb}m tmpfs /dev/shm && "$@"; rc=$?; ls /dev/shm > {leftfile}; exit $rc',
               "sh", *cmd]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         start_new_session=True, preexec_fn=sigint_default)
    try:
        t = time.monotonic()
        while not os.path.exists(ready):
            if p.poll() is not None or time.monotonic() - t > timeout:
                out, err = p.communicate(timeout=timeout)
                raise AssertionError(f"{name}: the program did not get ready (exit {p.returncode}):\n{err[-3000:]}")
            time.sleep(0.005)
        with open(ready) as f:
            info = json.load(f)
        m0 = psutil.Process(info["m0"])
        pids = [info["m0"]] + [c.pid for c in m0.children(recursive=True)]
        t0 = time.monotonic()
        if action == "m":
            os.kill(info["pinger"], signal.SIGKILL)
        elif action == "coordinator":
            os.kill(m0.children()[0].pid, signal.SIGKILL)
        elif action == "m0":
            os.kill(info["m0"], signal.SIGKILL)
        elif action == "sigint":
            os.kill(info["m0"], signal.SIGINT)
        elif action == "sigterm":
            os.kill(info["m0"], signal.SIGTERM)
        elif action == "pgroup":
            os.killpg(p.pid, signal.SIGKILL)
        hung = False
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            hung = True
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
        seconds = time.monotonic() - t0
        deadline = time.monotonic() + 5          # a killed M0's coordinator cleans up after it
        while (_alive(pids) or _entries(info["rtid"], leftfile if shm_mb else None)) and time.monotonic() < deadline:
            if action == "pgroup" and not _alive(pids):
                break                             # nobody is left to clean: the entries stay
            time.sleep(0.02)
        return {"rc": p.returncode, "seconds": seconds, "gone_s": time.monotonic() - t0, "stderr": err,
                "hung": hung, "rtid": info["rtid"],
                "left": _entries(info["rtid"], leftfile if shm_mb else None), "alive": _alive(pids)}
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def _entries(rtid, leftfile):
    if leftfile is not None:                      # the private /dev/shm, as the program left it
        if not os.path.exists(leftfile):
            return ["(not listed)"]
        with open(leftfile) as f:
            return [x for x in f.read().split() if "mprt" in x]
    return sorted(f for f, r in runtime_entries() if r == rtid)
