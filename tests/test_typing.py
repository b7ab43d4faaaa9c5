"""The public API (API.md: mprt, mprt.runtime, mprt.sync) carries type annotations an editor and a
type checker read, and the package says so (py.typed)."""
import inspect
import os
import typing

import mprt
from mprt import runtime, sync
from mprt import time as mtime
from mprt.sched.chan import RecvChan, SendChan
from mprt.sync import atomic


def _public_functions():
    out = []
    for mod in (mprt, runtime, atomic, mtime):
        for name in getattr(mod, "__all__", None) or [n for n in vars(mod) if not n.startswith("_")]:
            obj = getattr(mod, name)
            if inspect.isfunction(obj) and obj.__module__.startswith("mprt"):
                out.append((f"{mod.__name__}.{name}", obj))
    for cls in (mprt.Chan, sync.Mutex, sync.WaitGroup, sync.Once, sync.RWMutex, sync.Cond, atomic.Value, mtime.Timer, mtime.Ticker,
                SendChan, RecvChan, mprt.Map, sync.Map):
        for name, obj in vars(cls).items():
            if inspect.isfunction(obj) and not name.startswith("_"):
                out.append((f"{cls.__name__}.{name}", obj))
    return out


def test_public_functions_are_annotated():
    missing = []
    for name, fn in _public_functions():
        hints = typing.get_type_hints(fn)         # every annotation resolves
        params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
        if "return" not in hints or any(p.name not in hints for p in params):
            missing.append(name)
    assert missing == []


def test_the_package_is_marked_typed():
    assert os.path.exists(os.path.join(os.path.dirname(mprt.__file__), "py.typed"))
