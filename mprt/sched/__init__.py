"""mprt/sched: G/M/P, run queues, Ms as processes, channels, select, sync, timers (to come)."""
