"""Programs for the bad-input tests (tests/test_badinput.py): each prints one JSON line.

    python bad_cases.py CASE
"""
import json
import sys

import numpy as np

import mprt
from mprt import runtime
from mprt.runtime import debug


def out(**kw):
    print(json.dumps(kw), flush=True)


@mprt.struct
class Cell:
    v: np.int64


def case_settings():
    """What the runtime took from GOMAXPROCS, GOGC and GODEBUG (read back, not parsed again)."""
    def main():
        gogc = debug.SetGCPercent(100)                    # returns the setting it replaces
        out(gomaxprocs=runtime.GOMAXPROCS(0), gogc=gogc, memprofilerate=runtime.MemProfileRate)
        runtime.GC()                                      # a gctrace line, if gctrace took
    mprt.run(main)


def _boom():
    raise ValueError("boom")


def case_panic():
    def main():
        mprt.go(_boom)
        mprt.sleep(10)
    mprt.run(main)


def case_run_twice_and_nested():
    res = {}

    def inner():
        pass

    def main():
        try:
            mprt.run(inner)
        except RuntimeError as e:
            res["nested"] = str(e)
    mprt.run(main)
    mprt.run(lambda: res.setdefault("second", "ran"))    # one after the other is fine
    try:
        mprt.run(42)
    except TypeError as e:
        res["not_callable"] = str(e)
    out(**res)


def case_outside():
    """Runtime calls with no runtime, and objects of a runtime that has ended."""
    keep = {}

    def main():
        keep["ch"] = mprt.chan(1)
        keep["p"] = mprt.new(Cell)
        keep["wg"] = mprt.sync.WaitGroup()
    mprt.run(main)
    res = {}
    calls = {"go": lambda: mprt.go(print), "chan": lambda: mprt.chan(), "new": lambda: mprt.new(Cell),
             "sleep": lambda: mprt.sleep(0), "select": lambda: mprt.select(mprt.default), "GC": runtime.GC,
             "send": lambda: keep["ch"].send(1), "recv": lambda: keep["ch"].recv(),
             "close": lambda: keep["ch"].close(), "len": lambda: len(keep["ch"]),
             "wg.add": lambda: keep["wg"].add(1), "ptr": lambda: keep["p"].v}
    for k, f in calls.items():
        try:
            f()
            res[k] = "no error"
        except Exception as e:
            res[k] = f"{type(e).__name__}: {e}"

    def later():
        for k, f in {"send": lambda: keep["ch"].send(1), "wg.wait": lambda: keep["wg"].wait(),
                     "ptr": lambda: keep["p"].v}.items():
            try:
                f()
                res["later " + k] = "no error"
            except Exception as e:
                res["later " + k] = f"{type(e).__name__}: {e}"
    mprt.run(later)
    out(**res)


def _ptr_keeper(path):
    """The first runtime: hand out a pickled Ptr (as the runtime's own pickler writes it)."""
    from mprt.shm.ptr import dumps

    def main():
        p = mprt.new(Cell)
        p.v = 41
        with open(path, "wb") as f:
            f.write(dumps(p))
    mprt.run(main)


def case_foreign_ptr(path):
    """A heap pointer made by one runtime, loaded by another (a pickle written to a file)."""
    from mprt.shm.ptr import loads
    _ptr_keeper(path)
    res = {}

    def main():
        try:
            with open(path, "rb") as f:
                p = loads(f.read())
            res["loaded"] = int(p.v)
        except Exception as e:
            res["error"] = f"{type(e).__name__}: {e}"
    mprt.run(main)
    out(**res)


if __name__ == "__main__":
    globals()["case_" + sys.argv[1]](*sys.argv[2:])
