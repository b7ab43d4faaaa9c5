"""The rest of package runtime: callers and stacks, profiles (pprof), the execution tracer.  Each
test runs a small mprt program (tests/progs/api_cases.py) in its own process tree and reads what it
printed and the files it wrote."""
import gzip
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from mprt.runtime._profile_pb import Profile

PROG = os.path.join(os.path.dirname(__file__), "progs", "api_cases.py")
pytestmark = pytest.mark.timeout(120)
GO = shutil.which("go")


def run(case, outdir, env=None):
    e = dict(os.environ)
    for k in ("GOMAXPROCS", "GOTRACEBACK", "GODEBUG", "GOGC"):
        e.pop(k, None)
    e["GOMAXPROCS"] = "2"
    e.update(env or {})
    p = subprocess.run([sys.executable, PROG, case, str(outdir)], capture_output=True, text=True, timeout=100, env=e)
    return p.returncode, p.stdout, p.stderr


def result(case, outdir, env=None):
    rc, out, err = run(case, outdir, env)
    assert rc == 0, f"exit status {rc}\nstdout:\n{out}\nstderr:\n{err}"
    return json.loads(out.strip().splitlines()[-1])


def parse(path):
    """A profile.proto file: (message, {function name: summed first value of samples through it})."""
    with open(path, "rb") as f:
        p = Profile()
        p.ParseFromString(gzip.decompress(f.read()))
    st = p.string_table
    fname = {fn.id: st[fn.name] for fn in p.function}
    locf = {loc.id: [fname[ln.function_id] for ln in loc.line] for loc in p.location}
    cum = {}
    for s in p.sample:
        for name in {n for lid in s.location_id for n in locf[lid]}:
            cum[name] = cum.get(name, 0) + s.value[0]
    return p, cum


def pprof_top(path):
    """`go tool pprof -top`'s output, when the Go toolchain is here."""
    if GO is None:
        return None
    p = subprocess.run([GO, "tool", "pprof", "-top", path], capture_output=True, text=True, timeout=100)
    assert p.returncode == 0, p.stderr
    return p.stdout


# ---- callers and stacks ----

def test_caller_and_callers_frames_give_exact_lines(tmp_path):
    r = result("callers", tmp_path)
    file, line, ok, want = r["caller"]
    assert (file, ok, line) == ("api_cases.py", True, want)
    assert r["func"] == "__main__.case_callers" and r["fileline"][1] == want and r["entry_same"]
    # Callers(1, pcs) from inner: inner, outer, case_callers, main, each with its call line
    assert [f[0] for f in r["frames"]] == ["__main__.inner", "__main__.outer", "__main__.case_callers",
                                          "__main__.main"]
    assert [f[2] for f in r["frames"][:3]] == r["lines"]
    assert r["callers0"] == "mprt.runtime.Callers" and r["nfull"] == 3     # skip 0 includes Callers
    assert r["empty"] == 0 and r["bad"] and r["caller_far"] == [0, "", 0, False]


def test_callers_outside_a_runtime():
    code = ("from mprt import runtime\n"
            "def f():\n    pcs=[0]*8\n    n=runtime.Callers(1,pcs)\n"
            "    return [(x.Function, x.Line) for x in runtime.CallersFrames(pcs[:n])]\n"
            "print(f())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "('__main__.f', 4)" in out and "('__main__.<module>', 6)" in out


def test_stack_all_names_every_goroutine_once_across_two_ms(tmp_path):
    r = result("stack", tmp_path)
    assert r["mids"][0] != r["mids"][-1]             # the goroutines sit on both worker Ms
    text = (tmp_path / "stack.txt").read_text()
    heads = re.findall(r"^goroutine (\d+) \[([^\]]+)\]:$", text, re.M)
    assert sorted(int(g) for g, _ in heads) == [1, 2, 3, 4, 5]
    assert dict(heads)["1"] == "running" and dict(heads)["3"] == "chan receive"      # 2 is busy_until
    assert text.count("__main__.parked_on(...)") == 3 and text.count("__main__.busy_until(...)") == 1
    assert "created by __main__.case_stack" in text
    assert r["one"].startswith("goroutine 1 [running]:\n__main__.case_stack(...)\n\t")
    assert r["one"].count("goroutine ") == 1
    assert r["small"] == 20                          # a short buffer takes what fits
    # GoroutineProfile: the caller first, then every other goroutine, with its Python stack
    assert r["ok"] and r["gn"] == 5 and r["names"][0] == ["__main__.case_stack", "__main__.main"]
    assert sum(1 for n in r["names"] if n[-1] == "__main__.parked_on") == 3
    assert (r["nshort"], r["okshort"]) == (5, False)
    txt = (tmp_path / "goroutine.txt").read_text()
    assert txt.startswith("goroutine profile: total 5\n3 @ 0x")
    assert re.search(r"^#\t0x[0-9a-f]+\t__main__\.parked_on\+0x[0-9a-f]+\t.*api_cases\.py:\d+$", txt, re.M)
    assert (tmp_path / "goroutine2.txt").read_text().count("goroutine 3 [chan receive]:") == 1
    p, cum = parse(tmp_path / "goroutine.pb.gz")
    assert p.string_table[p.sample_type[0].type] == "goroutine" and cum["__main__.parked_on"] == 3
    top = pprof_top(str(tmp_path / "goroutine.pb.gz"))
    if top is not None:
        assert "__main__.parked_on" in top


def test_stack_of_a_goroutine_in_foreign_code_is_unavailable(tmp_path):
    r = result("stack_unavailable", tmp_path)
    assert re.search(r"^goroutine \d+ \[syscall\]:\n\tgoroutine running on other thread; stack unavailable\n"
                     r"created by __main__\.case_stack_unavailable\n", r["text"], re.M), r["text"]
    assert r["took"] < 2.0          # the M that cannot answer is given up after a second


# ---- profiles ----

def test_heap_profile_counts_sampled_allocations_and_frees(tmp_path):
    r = result("heap", tmp_path)
    assert r["rate"] == 1 and r["got"] == [500, 500]
    # MemProfileRate = 1: every allocation; the dropped ones were freed by the cycles since
    kept = r["recs"]["__main__.alloc_kept"]
    assert kept[0] == 1000 and kept[1] == 0 and kept[3] == 1000 * 32
    assert "__main__.alloc_dropped" not in r["recs"]          # inuseZero=False: fully freed sites left out
    txt = (tmp_path / "heap.txt").read_text()
    assert re.match(r"heap profile: \d+: \d+ \[\d+: \d+\] @ heap/2\n", txt)
    assert re.search(r"^0: 0 \[1000: 32000\] @ .*\n#\t0x[0-9a-f]+\t__main__\.alloc_dropped\+", txt, re.M)
    assert "\n# runtime.MemStats\n# Alloc = " in txt and "# NumGC = " in txt
    p, cum = parse(tmp_path / "heap.pb.gz")
    assert [p.string_table[v.type] for v in p.sample_type] == ["alloc_objects", "alloc_space", "inuse_objects",
                                                               "inuse_space"]
    assert cum["__main__.alloc_kept"] == 1000 and cum["__main__.allocator"] >= 2000
    top = pprof_top(str(tmp_path / "heap.pb.gz"))
    if top is not None:
        assert "__main__.alloc_kept" in top and "inuse_space" in top


def test_block_mutex_and_threadcreate_profiles(tmp_path):
    r = result("block", tmp_path)
    block = {tuple(x[:-2]): x[-2:] for x in r["names"]["block"]}
    recv = block[("mprt.sched.chan.Chan.recv", "__main__.waiter")]
    assert recv[0] == 2 and recv[1] >= 2 * 40_000_000          # both waited >= 50 ms
    assert any(k[:2] == ("mprt.sched.sema.Mutex.lock", "__main__.locker") for k in block)
    assert any(k[:2] == ("mprt.sched.sema.WaitGroup.wait", "__main__.case_block") for k in block)
    mutex = r["names"]["mutex"]
    assert mutex and mutex[0][:2] == ["mprt.sched.sema.Mutex.unlock", "__main__.locker"] and mutex[0][-2] > 0
    assert r["old"] == 0 and r["frac"] == 1
    txt = (tmp_path / "block.txt").read_text()
    assert txt.startswith("--- contention:\ncycles/second=1000000000\n")
    assert re.search(r"^\d+ 2 @ 0x[0-9a-f]+ 0x[0-9a-f]+\n#\t0x[0-9a-f]+\tmprt\.sched\.chan\.Chan\.recv\+", txt, re.M)
    assert (tmp_path / "mutex.txt").read_text().startswith("--- mutex:\ncycles/second=1000000000\nsampling period=1\n")
    for kind, fn in (("block", "__main__.waiter"), ("mutex", "__main__.locker")):
        p, cum = parse(tmp_path / f"{kind}.pb.gz")
        assert [p.string_table[v.type] for v in p.sample_type] == ["contentions", "delay"] and cum[fn] > 0
        top = pprof_top(str(tmp_path / f"{kind}.pb.gz"))
        if top is not None:
            assert fn in top
    # one record per M: M0 has no creator; the Ms started for main's goroutines name main
    assert r["threads"] == len(r["tstacks"]) >= 2 and r["tstacks"][0] == []
    assert all("__main__.case_block" in s for s in r["tstacks"][1:])
    assert (tmp_path / "threadcreate.txt").read_text().startswith(f"threadcreate profile: total {r['threads']}\n")
    p, cum = parse(tmp_path / "threadcreate.pb.gz")
    assert cum["__main__.case_block"] == r["threads"] - 1


def test_cpu_profile_samples_every_m(tmp_path):
    r = result("cpu", tmp_path)
    assert r["ok"] == [True, True]
    assert r["again"] == "cpu profiling already in use" and r["panicked"] == "CPUProfile no longer available"
    p, cum = parse(tmp_path / "cpu.pb.gz")
    assert [p.string_table[v.type] for v in p.sample_type] == ["samples", "cpu"]
    assert p.period == 10_000_000
    total = sum(s.value[0] for s in p.sample)
    # two goroutines on two Ms each burn 0.6 s of CPU at 100 Hz: ~120 samples, nearly all in spin_cpu
    assert cum["__main__.spin_cpu"] >= 60 and cum["__main__.spin_cpu"] >= 0.8 * total
    top = pprof_top(str(tmp_path / "cpu.pb.gz"))
    if top is not None:
        assert "__main__.spin_cpu" in top and "Type: cpu" in top


# ---- the execution tracer ----

def test_trace_of_a_fan_out_shows_both_ms_and_a_gc_and_makes_a_picture(tmp_path):
    r = result("trace", tmp_path)
    assert r["second"] == "tracing is already enabled"
    assert r["got"] == 8000 and r["nchunks"] >= 2 and r["after"] is None
    from mprt.runtime import traceview
    meta, ev, trailer = traceview.load(str(tmp_path / "trace.bin"))
    s = traceview.summary(meta, ev, trailer)
    assert s["lost"] == 0 and s["gc_cycles"] >= 1 and s["stops"] >= 2
    per_m = s["goroutines_per_m"]
    assert per_m.get("M1", 0) >= 1 and per_m.get("M2", 0) >= 1 and sum(per_m.values()) >= 41
    assert set(traceview.goroutine_funcs(ev, trailer).values()) >= {"__main__.fan_worker"}
    p = subprocess.run([sys.executable, "-m", "mprt", "trace", str(tmp_path / "trace.bin")], capture_output=True,
                       text=True, timeout=100)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    png = (tmp_path / "trace.bin.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000 and out["png"].endswith("trace.bin.png")
    chrome = json.loads((tmp_path / "trace.bin.json").read_text())
    names = {e.get("name", "") for e in chrome["traceEvents"]}
    assert any(n.startswith("GC ") for n in names) and any("fan_worker" in n for n in names)
    assert {e["args"]["name"] for e in chrome["traceEvents"] if e.get("name") == "thread_name"} >= {"M1", "M2"}
    # ReadTrace's chunks form the same stream
    meta2, ev2, _ = traceview.load(str(tmp_path / "trace2.bin"))
    assert len(ev2) > 0 and meta2["gomaxprocs"] == 2


@pytest.mark.skipif(GO is None, reason="the go toolchain is not on PATH (apt-get install golang-go)")
def test_go_tool_trace_reads_the_trace_of_a_fan_out(tmp_path):
    result("trace", tmp_path)
    path = str(tmp_path / "trace.bin")
    # -d: Go's parser checked the whole trace and prints its events
    p = subprocess.run([GO, "tool", "trace", "-d", path], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    creates = re.findall(r"GoCreate p=-?\d+ g=\d+ off=\d+ g=(\d+)", p.stdout)
    assert len(set(creates)) >= 41 and " GCStart " in p.stdout and " GoEnd " in p.stdout
    assert " ProcStart p=1 " in p.stdout      # both Ps ran goroutines
    for mode, fn in (("sched", "case_trace"), ("sync", "fan_worker")):
        prof = tmp_path / f"{mode}.pb"
        with open(prof, "wb") as f:
            p = subprocess.run([GO, "tool", "trace", f"-pprof={mode}", path], stdout=f, stderr=subprocess.PIPE,
                               timeout=120)
        assert p.returncode == 0, p.stderr[-2000:]
        top = subprocess.run([GO, "tool", "pprof", "-top", str(prof)], capture_output=True, text=True,
                             timeout=120).stdout
        assert "Type: delay" in top and fn in top, top


def test_read_trace_from_a_goroutine_on_another_m(tmp_path):
    from mprt.sched import tracefmt
    r = result("trace_reader", tmp_path, {"GOMAXPROCS": "2"})
    assert r["n"] == 6000 and r["after"] is None and r["again"] == "ok"
    assert r["reader_mid"] != r["main_mid"] and r["size"] > 1000
    assert r["stop_s"] < 5      # StopTrace by the goroutine that reads: it does not wait for itself
    assert tracefmt.parse((tmp_path / "trace4.bin").read_bytes()).freq == tracefmt.FREQ
    t = tracefmt.parse((tmp_path / "trace3.bin").read_bytes())
    starts = {e[4][0] for e in t.events if e[1] == tracefmt.EvGoStart}
    assert len(starts) >= 31
    if GO:
        p = subprocess.run([GO, "tool", "trace", "-d", str(tmp_path / "trace3.bin")], capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, p.stderr[-2000:]


def test_mprt_trace_rejects_what_is_not_a_trace(tmp_path):
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"hello")
    p = subprocess.run([sys.executable, "-m", "mprt", "trace", str(bad)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "not a Go execution trace" in p.stderr


# ---- runtime/debug's and runtime/pprof's remaining names ----

def test_stack_overflow_is_gos_fatal_error(tmp_path):
    # Go's TestStackOverflow: past SetMaxStack's limit a goroutine's recursion ends the program
    rc, out, err = run("stack_overflow", tmp_path)
    assert rc == 2
    assert json.loads(out.splitlines()[0]) == {"old": 1000000000, "again": 1474560}
    assert err.startswith("runtime: goroutine stack exceeds 1474560-byte limit\nfatal error: stack overflow\n\n"
                          "goroutine 1 [running]:\n__main__.case_stack_overflow.<locals>.f(...)\n"), err[:500]
    assert err.count("case_stack_overflow.<locals>.f(...)") == 100 and "...additional frames elided...\n" in err


def test_set_max_stack_limits_every_goroutine(tmp_path):
    r = result("stack_limit", tmp_path)
    assert r["old"] == 1000000000
    assert r["before"] > 800                          # the interpreter's own limit (1000 frames)
    assert 150 <= r["after"] <= 240 and 150 <= r["main"] <= 240, r    # 200 KiB = 200 frames of 1 KiB


def test_set_panic_on_fault_returns_the_previous_setting(tmp_path):
    assert result("panic_on_fault", tmp_path)["seq"] == [False, True, False]


def test_write_heap_dump_in_gos_format(tmp_path):
    r = result("heap_dump", tmp_path)
    assert r["params"][:2] == [0, 8] and r["params"][4] == r["params"][4].lower() and r["params"][6] >= 1
    assert r["nodes"] == 50 and r["linked"] == 50     # each node's pointer field, at offset 8
    assert 1 in r["goroutines"] and r["threads"] >= 1


def test_profiler_labels_and_custom_profiles(tmp_path):
    # Go's TestContextLabels, TestCPUProfileLabel (labels on the samples of a labelled goroutine,
    # and of the goroutine it starts), and a NewProfile
    r = result("labels", tmp_path, {"GOMAXPROCS": "2"})
    assert r["background"] == [] and r["one"] == [["value", True], [["key", "value"]]]
    assert r["replaced"] == [["key", "value3"], ["key2", "value2"], ["key4", "value4b"]]
    assert r["missing"] == ["", False] and r["inside"] == ["value", True]
    assert r["odd"] == "uneven number of arguments to pprof.Labels"
    assert r["dup"] == "pprof: Profile.Add of duplicate value"
    assert r["again"] == "pprof: NewProfile name already in use: mprt.test/widgets"
    assert r["builtin"] == "pprof: Add called on built-in Profile heap"
    assert r["count"] == 2 and r["name"] == "mprt.test/widgets" and r["listed"] and r["lookup"]
    assert r["text"].startswith("mprt.test/widgets profile: total 2\n2 @ ") and "__main__.case_labels+" in r["text"]
    p, _ = parse(str(tmp_path / "cpu.pb.gz"))
    st = p.string_table
    fname = {fn.id: st[fn.name] for fn in p.function}
    locf = {loc.id: {fname[ln.function_id] for ln in loc.line} for loc in p.location}
    by = {}
    for smp in p.sample:
        names = set().union(*(locf[lid] for lid in smp.location_id)) if smp.location_id else set()
        labels = tuple(sorted((st[lb.key], st[lb.str]) for lb in smp.label))
        for where in ("labelled", "child", "case_labels"):
            if f"__main__.case_labels.<locals>.{where}" in names or (where == "case_labels" and "__main__.hog" in names
                                                                     and not any("<locals>" in n for n in names)):
                by.setdefault(where, {}).setdefault(labels, 0)
                by[where][labels] += smp.value[0]
    assert r["child_labels"] == [["key", "value"]]             # inherited by the goroutine it started
    # the samples: main's (M0's own, always collected) inside Do carry the label, none after it;
    # the child's, where its M's samples came back in time (a dump under load may not), too
    assert set(by["labelled"]) == {(("key", "value"),)}, by
    assert set(by.get("child", {(("key", "value"),): 1})) == {(("key", "value"),)}, by
    assert set(by.get("case_labels", {(): 1})) == {()}, by
    if GO:
        tags = subprocess.run([GO, "tool", "pprof", "-tags", str(tmp_path / "cpu.pb.gz")], capture_output=True,
                              text=True, timeout=100).stdout
        assert "key: Total" in tags and "value" in tags, tags


# ---- the rest ----

def test_the_remaining_names(tmp_path):
    import platform
    r = result("misc", tmp_path)
    want_arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    assert (r["version"], r["goos"], r["goarch"], r["compiler"]) == ("go1.9.2", "linux", want_arch, "gc")
    assert r["cgo"][1] - r["cgo"][0] == 3          # three `with mprt.syscall()` blocks
    assert r["cgo_version"] == "unsupported version"
    assert r["tae"] == "interface conversion: interface {} is string, not int" and r["tae_is"]
    assert r["goroot"] and r["rate"] == 512 * 1024
    if GO:                                              # Go's own names for this host
        goenv = subprocess.run([GO, "env", "GOOS", "GOARCH"], capture_output=True, text=True).stdout.split()
        assert goenv == [r["goos"], r["goarch"]]
    r = result("misc", tmp_path, {"GODEBUG": "memprofilerate=4096"})
    assert r["rate"] == 4096


def test_breakpoint_without_a_debugger_is_a_sigtrap_crash(tmp_path):
    rc, out, err = run("breakpoint", tmp_path)
    assert rc == 2
    assert re.match(r"SIGTRAP: trace trap\nPC=0x[0-9a-f]+ m=0 sigcode=128\n\ngoroutine 1 \[running\]:\n"
                    r"__main__\.case_breakpoint\(\.\.\.\)\n", err), err
