"""GODEBUG=msgcheck=1: every heap message carries its history, and a misuse throws with it.

A heap message (msg.py) gets one more element: a history, an int64 slice in the heap itself, so
that whichever process touches the message next can read and extend it:

    [MAGIC, serial, made: M, goroutine, mark phase, GC cycle, taken: M, goroutine, phase, cycle, moves]

    made    when a slot first received it (msg.store_message)
    taken   when its owner slot let it go to a handle (msg.take_heap); a move into another slot
            (a full channel's buffer taking a blocked sender's element) clears it and counts a move
    freed   there is no explicit free: the sweeper frees a message nobody holds; a message found
            no longer allocated was freed by it, in a cycle after the one its history last names

It throws (Go's throw: the report, exit status 2) on: a second take of a message (two owners: the
class of the double free), a take or read of an address that is no longer an allocated message (a
read after free), and a message of another type where a message was expected.
"""
import os

import numpy as np

from ..shm import malloc
from ..shm.layout import GC_NUMGC, GC_PHASE
from ..shm.ptr import Ptr
from . import mstate
from .ctl import NONE

MAGIC = 0x6D73_6763_6865_636B      # "msgcheck"
NWORDS = 11
(H_MAGIC, H_SERIAL, H_MADE_M, H_MADE_G, H_MADE_PHASE, H_MADE_CYCLE, H_TAKEN_M, H_TAKEN_G,
 H_TAKEN_PHASE, H_TAKEN_CYCLE, H_MOVES) = range(NWORDS)
PHASES = {0: "off", 1: "mark", 2: "mark termination"}


class MsgCheck:
    """The checker msg.py calls (msg.set_check); process-local state is only the serial counter."""

    def __init__(self):
        self.serial = 0

    def _who(self):
        m = mstate.current_m_or_none()
        h = malloc.current_or_none()
        mid = m.id if m is not None else NONE
        goid = m.curgoid if m is not None and m.curg != NONE else 0
        return mid, goid, int(h.gcq[GC_PHASE]), int(h.gcq[GC_NUMGC])

    def history(self):
        """A new history slice (the message's last element), made now."""
        self.serial += 1
        hs = malloc.make(np.int64, NWORDS, safepoint=False)
        w = hs.np
        w[H_MAGIC] = MAGIC
        w[H_SERIAL] = (os.getpid() << 24) | self.serial
        w[H_MADE_M:H_MADE_CYCLE + 1] = self._who()
        w[H_TAKEN_M] = NONE
        return hs

    def _hist_words(self, a):
        """(history word index, None) of message a, or (None, why) when a is not one."""
        h = malloc.current_or_none()
        if not a or not bool(h.valid_objects(np.array([a]))[0]):
            return None, "is not an allocated object (freed by the sweeper, or never a message)"
        if h.tid_at(a) != h.slice_type(Ptr).tid:
            return None, f"is an object of another type ({h.typeinfo(h.tid_at(a)).name}), not a heap message"
        n = int(h.mvq[(h.object_end(a) - 8) >> 3])
        hs = int(h.mvq[(a >> 3) + n - 1]) if n >= 2 else 0
        if not hs or not bool(h.valid_objects(np.array([hs]))[0]) or h.mvq[hs >> 3] != MAGIC:
            return None, "is a pointer slice without a message history (not a heap message)"
        return hs >> 3, None

    def _throw(self, a, what, w=None):
        h = malloc.current_or_none()
        lines = [f"msgcheck: heap message {a:#x} {what}"]
        if w is not None:
            q = h.mvq
            lines.append(f"  message {q[w + H_SERIAL]:#x}: made by M{q[w + H_MADE_M]} goroutine "
                         f"{q[w + H_MADE_G]} in GC cycle {q[w + H_MADE_CYCLE]} (mark "
                         f"{PHASES.get(q[w + H_MADE_PHASE], '?')}), moved {q[w + H_MOVES]} times")
            if q[w + H_TAKEN_M] != NONE:
                lines.append(f"  taken by M{q[w + H_TAKEN_M]} goroutine {q[w + H_TAKEN_G]} in GC cycle "
                             f"{q[w + H_TAKEN_CYCLE]} (mark {PHASES.get(q[w + H_TAKEN_PHASE], '?')})")
        mid, goid, phase, cycle = self._who()
        lines.append(f"  now M{mid} goroutine {goid} in GC cycle {cycle} (mark {PHASES.get(phase, '?')})")
        mstate.fatal(lines[0], head="fatal error: " + "\n".join(lines) + "\n")

    def made(self, a, moved=False):
        if moved:
            w, why = self._hist_words(a)
            if w is None:
                self._throw(a, "moved into a slot " + why)
            q = malloc.current_or_none().mvq
            q[w + H_TAKEN_M] = NONE
            q[w + H_MOVES] += 1

    def taking(self, a):
        w, why = self._hist_words(a)
        if w is None:
            self._throw(a, "taken from a slot " + why)
        q = malloc.current_or_none().mvq
        if q[w + H_TAKEN_M] != NONE:
            self._throw(a, "taken twice (two owners: one of them would free or read it after the other)", w)
        mid, goid, phase, cycle = self._who()
        q[w + H_TAKEN_M], q[w + H_TAKEN_G], q[w + H_TAKEN_PHASE], q[w + H_TAKEN_CYCLE] = mid, goid, phase, cycle

    def reading(self, a):
        w, why = self._hist_words(a)
        if w is None:
            self._throw(a, "read " + why)


from .. import codeclass  # noqa: E402  (last: marks every function above)

codeclass.mark(__name__, codeclass.HEAP)
