"""Mark bytes, shading and the write barrier: the collector's side of every process.

An object's mark byte lives with its type id: in its span's meta block for a small object (after
the span's type ids, one byte per slot) and in the span record (s_mark) for a large one.  Both are
in the heap segment, so a mark byte is addressed by its offset in that segment (`mark_index`).
Values: WHITE (0) not reached; GREY (1) reached by some process, not yet scanned; BLACK (2) the
coordinator has it (queued or scanned), or it was allocated during the mark.

shade(a) makes a white object grey and sets its span's dirty flag, which is how the coordinator
finds objects greyed by other processes (mgcmark.py).  A process's stores are ordered (x86-TSO):
the grey mark is visible before the dirty flag is.

The write barrier is Go 1.9's hybrid one, in its simplest form: while the mark runs (GC_PHASE is
not off), a pointer store shades both the pointer it overwrites and the pointer it writes (Yuasa's
deletion barrier plus Dijkstra's insertion barrier).  Root tables are scanned once per cycle
without rescans, as Go scans stacks once.  The barrier runs for heap pointer words (ptr.store_ptr)
and for every address the scheduler writes in the control segment or in a channel's buffer (goroutine
arguments, channel elements: `shade_word`), since those carry pointers between processes too.

Nothing here may be interrupted by a stop of the world: the scheduler's signal handler does not stop
a process inside heap code (this module is marked HEAP: mprt/codeclass.py).
"""
import numpy as np

from .layout import GC_PHASE, GREY, WHITE
from .sizeclasses import PAGE_SHIFT, class_to_nobjs, class_to_size

_size = np.array(class_to_size, dtype=np.int64)
_nobj2 = np.array(class_to_nobjs, dtype=np.int64) * 2
_size_l = list(class_to_size)
_nobj2_l = [2 * n for n in class_to_nobjs]


def mark_index(h, a):
    """Offset in the heap segment of the mark byte of the object starting at a."""
    s = h.spanof_mv[a >> PAGE_SHIFT]
    cls = h.s_sc_mv[s] >> 1
    if cls == 0:
        return h.smark_off + s
    return h.meta_off + h.s_meta_mv[s] + _nobj2_l[cls] + (a - (s << PAGE_SHIFT)) // _size_l[cls]


def mark_indices(h, a):
    """Vector form of mark_index: (mark byte offsets, spans, size classes)."""
    s = h.spanof[a >> PAGE_SHIFT].astype(np.int64)
    cls = h.s_sc[s].astype(np.int64) >> 1
    small = h.meta_off + h.s_meta[s] + _nobj2[cls] + (a - (s << PAGE_SHIFT)) // np.maximum(_size[cls], 1)
    return np.where(cls > 0, small, h.smark_off + s), s, cls


def shade(h, a):
    """Grey the object at a (0 is nil) if it is white."""
    if a:
        i = mark_index(h, a)
        if h.hu8[i] == WHITE:
            h.hu8[i] = GREY
            h.dirty_mv[h.spanof_mv[a >> PAGE_SHIFT]] = 1


def shade_vec(h, addrs):
    """Grey every white object of addrs (nil entries ignored)."""
    a = np.asarray(addrs, dtype=np.int64)
    a = a[a != 0]
    if not len(a):
        return
    idx, s, _ = mark_indices(h, a)
    white = h.hu8n[idx] == WHITE
    if white.any():
        h.hu8n[idx[white]] = GREY
        h.gcdirty[s[white]] = 1


def shade_word(h, a):
    """The barrier for an address written outside a heap pointer word (control segment, a channel's
    slot words): the object written is shaded while the mark runs."""
    if a and h.gcq[GC_PHASE]:
        shade(h, a)


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.HEAP)
