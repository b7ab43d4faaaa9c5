"""The `mprt` command (also `python -m mprt`).

    mprt demo    a parallel workload under mprt.run: goroutines on worker Ms building and summing
                 shared-heap data; what mprt is, in a few seconds
    mprt clean   remove what dead runtimes left in /dev/shm
"""
import argparse
import sys


def _cmd_demo(args):
    import os
    if args.procs is not None:
        os.environ["GOMAXPROCS"] = str(args.procs)
    from ._demo import run
    return run(n=args.n)


def _cmd_clean(args):
    from .shm.segment import reap_dead
    removed = reap_dead()
    for f in removed:
        print(f"removed /dev/shm/{f}")
    print(f"{len(removed)} entries of dead runtimes removed")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="mprt", description="Go 1.9.2's runtime on processes and shared memory")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="a parallel workload under mprt.run, with the scheduler's view and MemStats",
                       description="Goroutines on worker Ms (processes pinned to CPUs) build linked structs "
                                   "and slices in one shared heap and sum a shared array zero-copy; main "
                                   "follows their pointers, then prints sched.snapshot and runtime.MemStats.")
    d.add_argument("--procs", type=int, default=None, help="GOMAXPROCS (default: the environment's, else the CPUs)")
    d.add_argument("-n", type=int, default=200_000, help="objects per worker (default 200000)")
    d.set_defaults(fn=_cmd_demo)
    c = sub.add_parser("clean", help="remove what dead runtimes left in /dev/shm",
                       description="Remove segments and semaphores in /dev/shm whose runtime's process is gone.")
    c.set_defaults(fn=_cmd_clean)
    args = ap.parse_args(argv)
    if args.cmd == "demo" and not ((args.procs is None or 1 <= args.procs <= 1024) and args.n >= 1):
        ap.error(f"demo: want 1 <= --procs < 1024 and -n >= 1, got --procs {args.procs} -n {args.n}")
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
