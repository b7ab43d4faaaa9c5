"""The `mprt` command (also `python -m mprt`).

    mprt run     run a program: FILE.py as __main__ (its own mprt.run, or its main() under one),
                 with Go's exit statuses (0; 2 for a panic or a fatal error; n for os.Exit(n))
    mprt bench   the benchmark suites, mprt and its peers in the same run (mprt/bench)
    mprt demo    a parallel workload under mprt.run: goroutines on worker Ms building and summing
                 shared-heap data; what mprt is, in a few seconds
    mprt env     the settings a runtime started here would take, and the machine's
    mprt clean   remove what dead runtimes left in /dev/shm
    mprt trace   an execution trace (runtime/trace) as a timeline picture and Chrome trace-event JSON
"""
import argparse
import os
import sys


def _cmd_run(args):
    """Go's `go run`: the file is the main package.  It runs as module __main__ (so goroutine
    functions defined in it are found by name on every M, which fork from this process); if it
    did not start a runtime itself and defines main(), main runs under mprt.run."""
    import types
    path = args.file
    if not os.path.isfile(path):
        print(f"mprt run: stat {path}: no such file or directory", file=sys.stderr)
        return 1
    with open(path, "rb") as f:
        code = compile(f.read(), path, "exec")
    mod = types.ModuleType("__main__")
    mod.__file__ = os.path.abspath(path)
    mod.__builtins__ = __builtins__
    sys.modules["__main__"] = mod
    sys.argv = [path, *args.args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    from . import settings
    exec(code, mod.__dict__)
    main = mod.__dict__.get("main")
    if not settings.config and callable(main):
        from . import run
        run(main)
    return 0


def _cmd_env(args):
    import shutil

    from . import cluster, settings
    from .sched.traceback import parse_gotraceback
    from .shm.malloc import DEFAULT_ARENA_MAX
    env = os.environ
    cpus = sorted(os.sched_getaffinity(0))
    tb = {(0, False, False): "none", (1, False, False): "single", (1, True, False): "all",
          (2, True, False): "system", (2, True, True): "crash"}
    level = parse_gotraceback(env.get("GOTRACEBACK"))
    gogc = settings.parse_gogc(env.get("GOGC"))
    dbg = settings.parse_godebug(env.get("GODEBUG"))
    try:
        arena = settings.parse_arena(env.get("MPRT_ARENA"))
    except ValueError as e:
        print(e, file=sys.stderr)
        return 1
    free = shutil.disk_usage("/dev/shm").free if os.path.isdir("/dev/shm") else 0
    try:
        clu = cluster.parse(env.get("MPRT_CLUSTER"))
    except ValueError as e:
        print(e, file=sys.stderr)
        return 1
    rows = [
        ("GOMAXPROCS", str(settings.parse_gomaxprocs(env.get("GOMAXPROCS"), len(cpus))),
         f"GOMAXPROCS={env.get('GOMAXPROCS', '')!r}" if "GOMAXPROCS" in env else "unset: NumCPU"),
        ("GOGC", "off" if gogc < 0 else str(gogc), f"GOGC={env.get('GOGC')!r}" if "GOGC" in env else "unset: 100"),
        ("GODEBUG", ",".join(f"{k}={v}" for k, v in dbg.items()) or "-",
         f"GODEBUG={env.get('GODEBUG')!r}" if "GODEBUG" in env else "unset"),
        ("GOTRACEBACK", tb.get(level, str(level[0])),
         f"GOTRACEBACK={env.get('GOTRACEBACK')!r}" if "GOTRACEBACK" in env else "unset: single"),
        ("NumCPU", str(len(cpus)), "CPUs this process may run on"),
        ("CPUs", _ranges(cpus), "os.sched_getaffinity: Ms are pinned to these, M k to CPU k mod NumCPU"),
        ("arena", _size(arena or DEFAULT_ARENA_MAX),
         "reserved in /dev/shm, sparse: committed as the heap grows" + ("" if arena else " (MPRT_ARENA unset)")),
        ("/dev/shm free", f"{free / 2**30:.1f} GiB", "tmpfs the heap and the control segment live in"),
        ("MPRT_CLUSTER", "off" if clu is None else env["MPRT_CLUSTER"],
         "unset: one machine" if clu is None else cluster.describe(env)),
    ]
    if args.json:
        import json
        print(json.dumps({k: v for k, v, _ in rows}))
        return 0
    for k, v, why in rows:
        print(f"{k:<14} {v:<12} {why}")
    return 0


def _size(n):
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


def _ranges(xs):
    out, i = [], 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[j] + 1:
            j += 1
        out.append(str(xs[i]) if i == j else f"{xs[i]}-{xs[j]}")
        i = j + 1
    return ",".join(out)


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
    r = sub.add_parser("run", help="run FILE.py under the runtime, with Go's exit statuses",
                       description="Run FILE.py as module __main__ with ARGS in sys.argv. A file that calls "
                                   "mprt.run itself runs as it is; one that only defines main() has main run "
                                   "under mprt.run. Exit status: 0, 2 for a panic or a fatal error (deadlock), "
                                   "n for sys.exit(n) in a goroutine (os.Exit), 1 for an error outside the "
                                   "runtime.")
    r.add_argument("file", help="the program")
    r.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    r.set_defaults(fn=_cmd_run)
    from .bench import add_parser as _bench_parser
    _bench_parser(sub)
    e = sub.add_parser("env", help="the settings a runtime started here would take",
                       description="GOMAXPROCS, GOGC, GODEBUG and GOTRACEBACK as mprt.run would read them from "
                                   "this environment, NumCPU, the CPUs allowed, the arena reservation.")
    e.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    e.set_defaults(fn=_cmd_env)
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
