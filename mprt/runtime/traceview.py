"""`mprt trace FILE`: an execution trace (mprt/sched/trace.py) as something a person can look at.

    intervals(events)   who ran where: (lane, goid, start ns, end ns) for every stretch a goroutine
                        ran on an M, from GoStart to the M's next GoStart/GoBlock/GoSched/GoEnd/
                        GoSysCall/ProcStop (or the trace's end)
    chrome_json(...)    Chrome/Perfetto trace-event JSON: one thread per M (and one for the
                        collector), "X" slices per goroutine stretch, GC cycles and stops of the world
                        on the collector's thread, instants for creations and wakeups, a heap counter
    timeline_png(...)   a picture (matplotlib): one lane per M, each goroutine's stretches coloured by
                        its function, GC cycles shaded across every lane, stops of the world in red,
                        the heap's size below
"""
import json

import numpy as np

from ..sched import trace as _t

_ENDS = (_t.EV_GOSTART, _t.EV_GOBLOCK, _t.EV_GOSCHED, _t.EV_GOEND, _t.EV_GOSYSCALL, _t.EV_PROCSTOP,
         _t.EV_GOPREEMPT)


def load(path):
    with open(path, "rb") as f:
        return _t.decode(f.read())


def lane_name(slot):
    return "GC (coordinator)" if slot == 0 else f"M{slot - 1}"


def intervals(ev):
    """[(slot, goid, t0, t1)] of goroutines running, and the trace's end time."""
    end = int(ev[-1, 1]) if len(ev) else 0
    out = []
    running = {}
    for slot, ts, kind, _p, a, _b in ev.tolist():
        if kind in _ENDS and slot in running:
            g, t0 = running.pop(slot)
            out.append((slot, g, t0, ts))
        if kind == _t.EV_GOSTART:
            running[slot] = (a, ts)
    for slot, (g, t0) in running.items():
        out.append((slot, g, t0, end))
    return out, end


def spans(ev, start_kind, end_kind):
    """[(t0, t1, a)] between matching start and end events (GC cycles, stops of the world)."""
    out, t0, a0 = [], None, 0
    for _slot, ts, kind, _p, a, _b in ev.tolist():
        if kind == start_kind:
            t0, a0 = ts, a
        elif kind == end_kind and t0 is not None:
            out.append((t0, ts, a0))
            t0 = None
    return out


def goroutine_funcs(ev, trailer):
    names = trailer.get("funcs", {})
    out = {1: "main (goroutine 1)"}
    for a, b in ev[ev[:, 2] == _t.EV_GOFUNC][:, 4:6].tolist():
        out[a] = names.get(str(b), "?")
    return out


def chrome_json(meta, ev, trailer):
    t0 = meta["start_ns"]
    us = lambda ns: (ns - t0) / 1000.0     # noqa: E731
    funcs = goroutine_funcs(ev, trailer)
    events = [{"name": "process_name", "ph": "M", "pid": 1, "args": {"name": "mprt"}}]
    for slot in sorted(set(ev[:, 0].tolist())):
        events.append({"name": "thread_name", "ph": "M", "pid": 1, "tid": slot, "args": {"name": lane_name(slot)}})
    runs, _ = intervals(ev)
    for slot, g, a, b in runs:
        events.append({"name": f"G{g} {funcs.get(g, '')}".strip(), "cat": "goroutine", "ph": "X", "pid": 1,
                       "tid": slot, "ts": us(a), "dur": max((b - a) / 1000.0, 0.001), "args": {"goid": g}})
    for a, b, n in spans(ev, _t.EV_GCSTART, _t.EV_GCDONE):
        events.append({"name": f"GC {n}", "cat": "gc", "ph": "X", "pid": 1, "tid": 0, "ts": us(a),
                       "dur": (b - a) / 1000.0})
    for a, b, r in spans(ev, _t.EV_STWSTART, _t.EV_STWDONE):
        events.append({"name": "STW " + (_t.STW_REASONS[r] if 0 < r < len(_t.STW_REASONS) else ""), "cat": "stw",
                       "ph": "X", "pid": 1, "tid": 0, "ts": us(a), "dur": (b - a) / 1000.0})
    for slot, ts, kind, p, a, _b in ev.tolist():
        if kind in (_t.EV_GOCREATE, _t.EV_GOUNBLOCK):
            events.append({"name": f"{_t.EVENTS[kind]} G{a}", "ph": "i", "s": "t", "pid": 1, "tid": slot,
                           "ts": us(ts)})
        elif kind in (_t.EV_HEAPALLOC, _t.EV_NEXTGC):
            events.append({"name": "heap", "ph": "C", "pid": 1, "ts": us(ts),
                           "args": {"HeapAlloc" if kind == _t.EV_HEAPALLOC else "NextGC": a}})
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"gomaxprocs": meta.get("gomaxprocs"), "lost": trailer.get("lost", 0)}}


def timeline_png(meta, ev, trailer, path, title=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    t0 = meta["start_ns"]
    ms = lambda ns: (ns - t0) / 1e6     # noqa: E731
    runs, end = intervals(ev)
    funcs = goroutine_funcs(ev, trailer)
    slots = sorted(set(ev[:, 0].tolist()) | {s for s, *_ in runs})
    mslots = [s for s in slots if s > 0]
    lane = {s: i for i, s in enumerate(reversed(mslots))}
    names = sorted({funcs.get(g, "") for _, g, _, _ in runs})
    cmap = plt.get_cmap("tab20")
    palette = [cmap(i) for i in (0, 4, 8, 16, 18, 1, 5, 9, 17, 19, 2, 3, 10, 11, 12, 13)]   # no reds
    colour_of_name = {n: palette[i % len(palette)] for i, n in enumerate(x for x in names if not x.startswith("main"))}
    colour_of_name["main (goroutine 1)"] = (0.55, 0.55, 0.55, 1.0)
    fig, (ax, axh) = plt.subplots(2, 1, figsize=(14, 2.2 + 0.7 * max(len(mslots), 1)), sharex=True,
                                  gridspec_kw={"height_ratios": [max(len(mslots), 1), 1.2]})
    for slot, g, a, b in runs:
        if slot not in lane:
            continue
        name = funcs.get(g, "")
        c = colour_of_name[name] if name else palette[g % len(palette)]
        ax.broken_barh([(ms(a), max(ms(b) - ms(a), 0.002))], (lane[slot] - 0.4, 0.8), facecolors=c,
                       edgecolors="none")
    for a, b, _n in spans(ev, _t.EV_GCSTART, _t.EV_GCDONE):
        for x in (ax, axh):
            x.axvspan(ms(a), ms(b), color="orange", alpha=0.18, lw=0)
    for a, b, _r in spans(ev, _t.EV_STWSTART, _t.EV_STWDONE):
        for x in (ax, axh):
            x.axvspan(ms(a), max(ms(b), ms(a) + 0.02), color="red", alpha=0.5, lw=0)
    ax.set_yticks(range(len(mslots)))
    ax.set_yticklabels([lane_name(s) for s in reversed(mslots)])
    ax.set_ylim(-0.6, max(len(mslots), 1) - 0.4)
    ngo = len({g for _, g, _, _ in runs})
    ax.set_title(title or f"mprt execution trace: {len(mslots)} Ms, {ngo} goroutines, "
                 f"GOMAXPROCS={meta.get('gomaxprocs')}, {len(ev)} events")
    handles = [Patch(color=colour_of_name[n], label=n) for n in names[:12] if n]
    handles += [Patch(color="orange", alpha=0.3, label="GC cycle"), Patch(color="red", alpha=0.5,
                                                                          label="stop the world")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    heap = ev[ev[:, 2] == _t.EV_HEAPALLOC]
    nextgc = ev[ev[:, 2] == _t.EV_NEXTGC]
    if len(heap):
        axh.step([ms(x) for x in heap[:, 1]], heap[:, 4] / 2**20, where="post", marker="o",
                 label="HeapAlloc at GC start and end (MB)")
    if len(nextgc):
        axh.step([ms(x) for x in nextgc[:, 1]], np.minimum(nextgc[:, 4], 2**62) / 2**20, where="post",
                 marker="x", label="NextGC (MB)", ls="--")
    if len(heap) or len(nextgc):
        axh.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    axh.set_ylabel("MB")
    axh.set_xlabel("ms since StartTrace")
    axh.set_xlim(0, max(ms(end), 0.001))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(meta, ev, trailer):
    runs, end = intervals(ev)
    per_m = {}
    for slot, g, a, b in runs:
        per_m.setdefault(lane_name(slot), set()).add(g)
    return {"events": int(len(ev)), "duration_ms": round((end - meta["start_ns"]) / 1e6, 3) if len(ev) else 0,
            "goroutines_per_m": {k: len(v) for k, v in sorted(per_m.items())},
            "gc_cycles": len(spans(ev, _t.EV_GCSTART, _t.EV_GCDONE)),
            "stops": len(spans(ev, _t.EV_STWSTART, _t.EV_STWDONE)), "lost": trailer.get("lost", 0)}


def convert(path, json_out=None, png_out=None):
    """Write the JSON and the picture next to the trace (or where asked); returns the summary."""
    meta, ev, trailer = load(path)
    json_out = json_out or path + ".json"
    png_out = png_out or path + ".png"
    with open(json_out, "w") as f:
        json.dump(chrome_json(meta, ev, trailer), f)
    timeline_png(meta, ev, trailer, png_out)
    s = summary(meta, ev, trailer)
    s.update(json=json_out, png=png_out)
    return s


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
