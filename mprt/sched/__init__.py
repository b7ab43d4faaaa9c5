"""mprt/sched: the scheduler.  proc.py is the essay (G/M/P on processes, run queues, park/ready,
stop-the-world); ctl.py lays out the control segment; chan.py channels and select; sema.py
WaitGroup and Mutex; msg.py how values cross; boot.py mprt.run, the Ms' start, the coordinator
(sysmon) and teardown; traceback.py Go's reports; snapshot.py the introspection below.

Public here (API.md): current() and snapshot()."""
from .snapshot import current, snapshot

__all__ = ["current", "snapshot"]
