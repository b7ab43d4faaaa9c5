"""Named POSIX shared-memory segments and semaphores, and the cleanup of dead runtimes.

Every object a runtime creates in /dev/shm is named

    /mprt.<pid>.<token>.<what>          (a segment; the file /dev/shm/mprt.<pid>.<token>.<what>)
    /mprt.<pid>.<token>.<what>          (a semaphore; the file /dev/shm/sem.mprt.<pid>.<token>.<what>)

where <pid>.<token> is the runtime id: the pid of the process that created the runtime, then a token
of that process's start time (10 hex digits of clock ticks since boot) and 6 random hex digits.  The token
keeps two runtimes apart; pid and start time together say whether the runtime's owner is still
alive, even after the pid has been reused.  A runtime that died without tearing down (SIGKILL)
leaves files whose owner is gone: `reap_dead` removes them, and every new runtime calls it at start.

Segments are reserved large and committed explicitly with fallocate (`Segment.commit`): tmpfs then
takes its pages at once and reports a full /dev/shm as ENOSPC, where a first touch of an uncommitted
page would have been a SIGBUS.  `Segment.release` punches the pages out again (MADV_REMOVE): the range
reads as zeros afterwards and must be committed again before it is reused.

multiprocessing.shared_memory is not used: its resource tracker may unlink a live segment.
"""
import errno
import mmap
import os
import re
import secrets

import posix_ipc
import psutil

SHM_DIR = "/dev/shm"
PREFIX = "mprt."
_NAME_RE = re.compile(r"^(?:sem\.)?mprt\.(\d+)\.([0-9a-f]+)\.")


class NoSpace(OSError):
    """fallocate could not commit a range: /dev/shm is full."""


def _start_stamp(pid):
    """The process's start: its starttime in /proc/<pid>/stat (clock ticks since boot, fixed for the
    process's life), or None if there is no such process.  Not psutil's create_time: that adds the
    boot time the kernel derives from the wall clock, which moves when the clock is adjusted (a
    second, now and then, on a VM), and a live runtime then looked dead to the next runtime's
    reap_dead, which removed its semaphores ("No semaphore exists" in 4 tests of 2 suite runs)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return int(data[data.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def new_runtime_id():
    pid = os.getpid()
    return f"{pid}.{_start_stamp(pid):010x}{secrets.token_hex(3)}"


def shm_name(rtid, what):
    return f"/{PREFIX}{rtid}.{what}"


class Segment:
    """One mapped POSIX shared-memory object.  `mm` is the mapping; the fd stays open so that any
    attached process can commit ranges."""

    __slots__ = ("name", "size", "fd", "mm", "_shm")

    def __init__(self, name, size=None, create=False):
        flags = posix_ipc.O_CREX if create else 0
        self._shm = posix_ipc.SharedMemory(name, flags, mode=0o600, size=size or 0)
        self.name = name
        self.fd = self._shm.fd
        self.size = os.fstat(self.fd).st_size
        self.mm = mmap.mmap(self.fd, self.size)

    def commit(self, off, n):
        """Make [off, off+n) backed by tmpfs pages (idempotent)."""
        if n <= 0:
            return
        try:
            os.posix_fallocate(self.fd, off, n)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.ENOMEM, errno.EFBIG):
                raise NoSpace(e.errno, f"{e.strerror} (committing {n} bytes of {self.name})") from None
            raise

    def release(self, off, n):
        """Return [off, off+n) to the OS.  Never read the range afterwards without committing it."""
        if n > 0:
            self.mm.madvise(mmap.MADV_REMOVE, off, n)

    def committed_bytes(self):
        return os.fstat(self.fd).st_blocks * 512

    def unlink(self):
        try:
            posix_ipc.unlink_shared_memory(self.name)
        except posix_ipc.ExistentialError:
            pass

    def close(self):
        """Unmap if nothing still views the mapping (numpy views keep it alive), close the fd."""
        try:
            self.mm.close()
        except BufferError:
            pass  # a live view holds it; the mapping goes when the last view does
        try:
            os.close(self.fd)
        except OSError:
            pass


LOCK_WAIT_S = 0.05     # a contended wait wakes this often to ask whether it should go on waiting
LOCK_SPINS = 50        # sem_trywait attempts (~0.3 us each) before a contended lock sleeps
_wait_hook = None


def set_wait_hook(fn):
    """Register what every lock wait calls each LOCK_WAIT_S it goes on (and after a signal).

    A holder that is killed, or that ends the program holding its lock (a fatal error thrown with
    the sched lock held), never releases it: the scheduler registers a hook that leaves the wait
    when the program is ending, so no waiter outlives the program."""
    global _wait_hook
    _wait_hook = fn


class Lock:
    """A mutex shared by processes: a POSIX semaphore with initial value 1.

    A holder that is killed leaves it held; the runtime's fault handling treats a dead holder as
    a dead runtime, and the wait hook (set_wait_hook) takes its waiters out."""

    __slots__ = ("name", "_sem", "acquire_raw", "release")

    def __init__(self, name, create=False):
        flags = posix_ipc.O_CREX if create else 0
        self._sem = posix_ipc.Semaphore(name, flags, mode=0o600, initial_value=1)
        self.name = name
        self.acquire_raw = self._sem.acquire
        self.release = self._sem.release

    def acquire(self):
        """The one blocking wait for a runtime lock.  It spins a while first: holders keep these
        locks for microseconds, and a holder that releases and takes a lock again in a loop (the
        sweeper, span by span) would otherwise get it back every time before a sleeping waiter
        wakes (a futex wakeup costs tens of microseconds)."""
        for _ in range(LOCK_SPINS):
            try:
                return self.acquire_raw(0)
            except posix_ipc.BusyError:
                pass
        while True:
            try:
                return self.acquire_raw(LOCK_WAIT_S)
            except (posix_ipc.BusyError, posix_ipc.SignalError):
                if _wait_hook is not None:
                    _wait_hook()   # returns to wait again, or raises/exits: the program is ending

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()

    def unlink(self):
        try:
            self._sem.unlink()
        except posix_ipc.ExistentialError:
            pass

    def close(self):
        try:
            self._sem.close()
        except posix_ipc.ExistentialError:
            pass


def runtime_entries(rtid=None):
    """Files in /dev/shm that belong to runtime `rtid` (or to any runtime): [(file, rtid)]."""
    out = []
    try:
        names = os.listdir(SHM_DIR)
    except FileNotFoundError:
        return out
    for f in names:
        m = _NAME_RE.match(f)
        if m:
            rid = f"{m.group(1)}.{m.group(2)}"
            if rtid is None or rid == rtid:
                out.append((f, rid))
    return out


def unlink_runtime(rtid):
    """Remove every segment and semaphore of runtime `rtid`.  Returns the file names removed."""
    removed = []
    for f, _ in runtime_entries(rtid):
        try:
            os.unlink(os.path.join(SHM_DIR, f))
            removed.append(f)
        except OSError:     # gone already, or another user's
            pass
    return removed


def reap_dead(only=None):
    """Remove what runtimes whose owner process is gone left in /dev/shm (of the runtime ids in
    `only`, if given).  Returns the files removed."""
    removed = []
    dead = {}
    for f, rid in runtime_entries():
        if only is not None and rid not in only:
            continue
        if rid not in dead:
            dead[rid] = _owner_gone(rid)
        if dead[rid]:
            try:
                os.unlink(os.path.join(SHM_DIR, f))
                removed.append(f)
            except OSError:     # gone already, or another user's
                pass
    return removed


def pid_alive(pid, stamp=None):
    """Whether process pid exists and is not a zombie (and, given its start stamp, is that very
    process, not a later one that reused the pid)."""
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return False
    except psutil.Error:
        return False
    return stamp is None or _start_stamp(pid) == stamp


def _owner_gone(rtid):
    pid, token = rtid.split(".")
    return not pid_alive(int(pid), int(token[:10], 16) if len(token) == 16 else None)


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.HEAP)
