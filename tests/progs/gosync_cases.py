"""Programs for tests/test_gosync.py (what Go programs use beyond goroutines and channels):
`python gosync_cases.py CASE`, each a small mprt program whose output the tests read."""
import json
import sys

import mprt
from mprt import sched


def out(**kw):
    print(json.dumps(kw), flush=True)


# ---- directional channels ----

def producer(out_ch, n, where):
    where.send(sched.current().mid)
    for i in range(n):
        out_ch.send(i)
    out_ch.close()


def consumer(in_ch, res):
    res.send((type(in_ch).__name__, sched.current().mid, [v for v in in_ch]))


def refused(f):
    try:
        f()
    except TypeError as e:
        return str(e)
    return None


def case_directional():
    ch = mprt.chan(4)
    res, where = mprt.chan(1), mprt.chan(2)
    s, r = ch.send_only(), ch.recv_only()
    mprt.go(producer, s, 50, where)           # a goroutine given only the send side
    mprt.go(consumer, r, res)                 # ... and one given only the receive side
    kind, mid, got = res.recv()
    errors = {
        "recv on send-only": refused(s.recv),
        "recv2 on send-only": refused(s.recv2),
        "range on send-only": refused(lambda: list(s)),
        "send on recv-only": refused(lambda: r.send(1)),
        "close of recv-only": refused(r.close),
        "send-only to recv-only": refused(s.recv_only),
        "select recv on send-only": refused(lambda: mprt.select(s.recv, mprt.default)),
        "select send on recv-only": refused(lambda: mprt.select((r.send, 1), mprt.default)),
        "view of a non-channel": refused(lambda: type(s)(42)),
    }
    # select through views: one of each direction, with a default
    c2 = mprt.chan(1)
    i1, _ = mprt.select((c2.send_only().send, "x"), mprt.default)
    i2, v2 = mprt.select(c2.recv_only().recv, mprt.default)
    views_travel = mprt.chan(1)
    views_travel.send(c2.recv_only())
    back = views_travel.recv()
    out(kind=kind, got=got, errors=errors, sel=[i1, i2, v2], eq=[s == ch, r == ch, ch == s, hash(s) == hash(ch)],
        back=type(back).__name__, back_eq=back == c2, lens=[len(s), s.cap, r.cap])


def main():
    globals()["case_" + sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    mprt.run(main)
