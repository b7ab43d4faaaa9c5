"""mprt/sched: the scheduler.  proc.py is the essay (G/M/P on processes) and go, park, ready;
mstate.py the M, its locks and the endings; schedule.py the run queues and findrunnable; stw.py stop
the world, safe points and preemption; sysmon.py the coordinator's watch; ctl.py lays out the control
segment; chan.py channels and select; sema.py WaitGroup and Mutex; msg.py how values cross;
traceback.py Go's reports; snapshot.py the introspection below.  mprt.run, the Ms' start, the
coordinator and teardown are mprt/boot.py (above the collector, which the coordinator runs).

Public here (API.md): current() and snapshot()."""
from .snapshot import current, snapshot

__all__ = ["current", "snapshot"]
