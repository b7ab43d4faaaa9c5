"""The `mprt` command (also `python -m mprt`).

    mprt demo    a parallel workload under mprt.run: goroutines on worker Ms building and summing
                 shared-heap data; what mprt is, in a few seconds
    mprt clean   remove what dead runtimes left in /dev/shm
    mprt trace   an execution trace (runtime/trace) as a timeline picture and Chrome trace-event JSON
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


def _cmd_trace(args):
    import json
    import os
    if not os.path.exists(args.file):
        print(f"mprt trace: {args.file}: no such file", file=sys.stderr)
        return 1
    from .runtime.traceview import convert
    try:
        s = convert(args.file, args.json, args.png)
    except ValueError as e:
        print(f"mprt trace: {args.file}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(s, indent=1))
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
    t = sub.add_parser("trace", help="turn an execution trace into a timeline picture and trace-event JSON",
                       description="Read a trace written by runtime/trace.Start (or ReadTrace's chunks) and write "
                                   "FILE.json (Chrome/Perfetto trace-event format: open it in ui.perfetto.dev or "
                                   "chrome://tracing) and FILE.png (one lane per M, goroutines coloured by "
                                   "function, GC cycles shaded, stops of the world in red, the heap below).")
    t.add_argument("file", help="the trace file")
    t.add_argument("--json", default=None, help="where to write the JSON (default FILE.json)")
    t.add_argument("--png", default=None, help="where to write the picture (default FILE.png)")
    t.set_defaults(fn=_cmd_trace)
    args = ap.parse_args(argv)
    if args.cmd == "demo" and not ((args.procs is None or 1 <= args.procs <= 1024) and args.n >= 1):
        ap.error(f"demo: want 1 <= --procs < 1024 and -n >= 1, got --procs {args.procs} -n {args.n}")
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
