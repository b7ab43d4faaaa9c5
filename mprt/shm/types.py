"""Object types: @mprt.struct layouts and the shared type table.

A struct type is a class whose annotations are numpy scalar types, str or mprt.Ptr.  A str field
(and a str slice's element) is a pointer word to an immutable string object (ptr.py), "" when nil:
the collector traces it like any pointer.  Its layout is Go's:
fields in declaration order, each aligned to its own alignment (its size, at most 8), the struct's
size rounded up to its largest alignment.  A slice is a heap object holding its elements from its
address on and its length in the last word of its block; its type is "slice of <elem>".

Every type a runtime has allocated gets a type id (1..65535) in the type table of the heap segment:
a descriptor (its kind and layout as JSON, so any process can rebuild the field accessors from
shared memory alone) and its pointer map: the byte offsets of its pointer words, the sparse form of
Go's gcdata bitmap, ready for vector gathers (a pointer slice's map is implicit: every element).
Each allocated object's type id is recorded with the object (see malloc.py), so any process, and
the collector, knows where the pointers of any object are.  The table is append-only under the
types lock; an entry never changes once published (hdr[H_NTYPES] covers it).
"""
import inspect
import json
from typing import TypeVar

import numpy as np

from .layout import H_NTYPES, H_TBLOB_BUMP, H_TBLOB_COMMIT, MAXTYPES, TBLOB_BYTES, round_up
from .sizeclasses import MAX_SMALL_SIZE, class_to_size

_T = TypeVar("_T")
_Ptr = None      # mprt.Ptr, the pointer field and element type: ptr.py sets it (set_ptr_class)


def code_is_data(code):
    """Whether a field or element code is plain data (a numpy dtype's), not a pointer word."""
    return not (code in (PTR_CODE, STR_CODE, BYTES_CODE) or code.startswith(MAP_PREFIX))


class MapType:
    """mprt.map(K, V): Go's map[K]V as a type (a struct field's annotation, mprt.make's element).
    Keys: np.int64 (or int), np.float64 (or float), str, bytes, mprt.Ptr; values: numpy scalars of
    at most 8 bytes (int, float), mprt.Ptr, str."""

    __slots__ = ("key", "value", "kcode", "vcode", "code")

    def __init__(self, key, value):
        # Python's int and float name Go's int and float64 (mprt.map(str, int) is map[string]int)
        key = {int: np.int64, float: np.float64}.get(key, key)
        value = {int: np.int64, float: np.float64}.get(value, value)
        keys = {np.int64: "<i8", np.float64: "<f8", str: STR_CODE, bytes: BYTES_CODE}
        kc = keys.get(key) if not (key is _Ptr and key is not None) else PTR_CODE
        if kc is None:
            raise TypeError(f"mprt.map: key type {key!r} is not one of np.int64, np.float64, str, bytes, mprt.Ptr")
        if value is _Ptr and value is not None:
            vc = PTR_CODE
        elif value is str:
            vc = STR_CODE
        else:
            try:
                dt = np.dtype(value) if isinstance(value, type) and issubclass(value, np.generic) else None
            except TypeError:
                dt = None
            if dt is None or dt.kind not in "biuf" or dt.itemsize > 8:
                raise TypeError(f"mprt.map: value type {value!r} is not a numpy scalar type of at most 8 bytes, "
                                f"str or mprt.Ptr")
            vc = dt.str
        self.key, self.value, self.kcode, self.vcode = key, value, kc, vc
        self.code = f"{MAP_PREFIX}{kc},{vc}"

    def __eq__(self, other):
        return isinstance(other, MapType) and other.code == self.code

    def __hash__(self):
        return hash(self.code)

    def __repr__(self):
        def name(t):
            return "mprt.Ptr" if t is _Ptr else getattr(t, "__name__", repr(t))
        return f"mprt.map({name(self.key)}, {name(self.value)})"



def set_ptr_class(cls):
    global _Ptr
    _Ptr = cls

K_STRUCT, K_SLICE = 1, 2
PTR_CODE = "P"
STR_CODE = "S"   # a string: a pointer word to an immutable string object (ptr.py), "" when 0
BYTES_CODE = "Y"  # bytes: the same, read as bytes (a map's bytes keys), b"" when 0
MAP_PREFIX = "M"  # "M<key code>,<value code>": a pointer word to a map (sched/hashmap.py), None when 0
WORD = 8
RESERVED_FIELDS = frozenset({"addr", "np"})


class StructLayout:
    """The process-local description of a @mprt.struct class (independent of any runtime)."""

    __slots__ = ("name", "fields", "size", "ptroffs", "desc")

    def __init__(self, name, fields, size):
        self.name = name
        self.fields = fields            # [(fname, code, offset, dtype or None)]
        self.size = size
        self.ptroffs = [off for _, code, off, _ in fields if not code_is_data(code)]
        self.desc = json.dumps({"k": "struct", "name": name, "size": size,
                                "fields": [[f, c, o] for f, c, o, _ in fields]},
                               separators=(",", ":")).encode()


def _field_code(cls, fname, ann):
    if ann is _Ptr and ann is not None:
        return PTR_CODE, None
    if ann is str:
        return STR_CODE, None
    if ann is bytes:
        return BYTES_CODE, None
    if isinstance(ann, MapType):
        return ann.code, None
    try:
        if isinstance(ann, type) and issubclass(ann, np.generic):
            dt = np.dtype(ann)
        else:
            raise TypeError
    except TypeError:
        raise TypeError(f"mprt.struct {cls.__qualname__}: field {fname!r} has type {ann!r}; "
                        f"fields must be numpy scalar types (np.int64, np.float32, ...), str or mprt.Ptr") from None
    if dt.kind not in "biufc" or dt.itemsize > 16:
        raise TypeError(f"mprt.struct {cls.__qualname__}: field {fname!r} has type {ann!r}; "
                        f"only numpy bool, integer, float and complex scalars are allowed")
    return dt.str, dt


def struct(cls: type[_T]) -> type[_T]:
    """Class decorator: make `cls` a heap struct type (see the module comment)."""
    if not isinstance(cls, type):
        raise TypeError(f"mprt.struct decorates a class, not {cls!r}")
    anns = {}
    for k in reversed(cls.__mro__[:-1]):      # fields of base classes first, as Python users expect
        try:
            anns.update(inspect.get_annotations(k, eval_str=True))
        except Exception as e:
            raise TypeError(f"mprt.struct {cls.__qualname__}: cannot resolve field annotations: {e}") from None
    fields, off, align = [], 0, 1
    for fname, ann in anns.items():
        if fname.startswith("_") or fname in RESERVED_FIELDS:
            raise TypeError(f"mprt.struct {cls.__qualname__}: field name {fname!r} is reserved")
        code, dt = _field_code(cls, fname, ann)
        size = WORD if dt is None else dt.itemsize
        a = min(size, WORD)
        off = (off + a - 1) // a * a
        fields.append((fname, code, off, dt))
        off += size
        align = max(align, a)
    size = (off + align - 1) // align * align
    cls._mprt_struct = StructLayout(f"{cls.__module__}.{cls.__qualname__}", fields, size)
    return cls


def layout_of(T):
    lay = T.__dict__.get("_mprt_struct") if isinstance(T, type) else None
    if lay is None:
        raise TypeError(f"mprt.new: {T!r} is not a struct type (decorate the class with @mprt.struct)")
    return lay


def elem_code(elem):
    """The element code of a slice element spec: mprt.Ptr or a numpy dtype-like."""
    if elem is _Ptr and elem is not None:
        return PTR_CODE, None
    if elem is str:
        return STR_CODE, None
    try:
        dt = None if elem is None else np.dtype(elem)
    except TypeError:
        dt = None
    if dt is None or dt.kind not in "biufc" or dt.itemsize > 16:
        raise TypeError(f"mprt.make: element type {elem!r} is not a numpy scalar dtype, str or mprt.Ptr")
    return dt.str, dt


def slice_desc(code):
    return json.dumps({"k": "slice", "elem": code}, separators=(",", ":")).encode()


# ---- the shared type table ----

def register(h, desc, ptroffs):
    """The type id of the type described by desc in heap h, adding it to the table if it is new."""
    tid = h.tid_by_desc.get(desc)
    if tid is not None:
        return tid
    with h.types_lock:
        hdr = h.hdr
        n = int(hdr[H_NTYPES])
        for t in range(h.types_scanned + 1, n + 1):
            h.tid_by_desc.setdefault(read_desc(h, t), t)
        h.types_scanned = n
        tid = h.tid_by_desc.get(desc)
        if tid is not None:
            return tid
        if n >= MAXTYPES:
            raise RuntimeError(f"mprt: too many heap types (limit {MAXTYPES})")
        po = np.asarray(ptroffs, dtype=np.int32).tobytes()
        off = int(hdr[H_TBLOB_BUMP])
        end = round_up(off + len(desc) + len(po), 8)
        if end > TBLOB_BYTES:
            raise RuntimeError("mprt: type table full")
        if end > int(hdr[H_TBLOB_COMMIT]):
            c = round_up(end, 64 << 10)
            h.heapseg.commit(h.tblob_off + int(hdr[H_TBLOB_COMMIT]), c - int(hdr[H_TBLOB_COMMIT]))
            hdr[H_TBLOB_COMMIT] = c
        blob = h.tblob
        blob[off:off + len(desc)] = np.frombuffer(desc, dtype=np.uint8)
        blob[off + len(desc):off + len(desc) + len(po)] = np.frombuffer(po, dtype=np.uint8)
        tid = n + 1
        h.t_desc[tid] = off << 24 | len(desc)
        h.t_ptroffs[tid] = (off + len(desc)) << 24 | len(ptroffs)
        hdr[H_TBLOB_BUMP] = end
        hdr[H_NTYPES] = tid          # publish last
        h.tid_by_desc[desc] = tid
        h.types_scanned = tid
        return tid


def read_desc(h, tid):
    d = int(h.t_desc[tid])
    off, n = d >> 24, d & 0xFFFFFF
    return h.tblob[off:off + n].tobytes()


def read_ptroffs(h, tid):
    d = int(h.t_ptroffs[tid])
    off, n = d >> 24, d & 0xFFFFFF
    return np.frombuffer(h.tblob[off:off + 4 * n].tobytes(), dtype=np.int32).astype(np.int64)


def size_class(nbytes):
    """Go's size_to_class for a small allocation (0 for large)."""
    if nbytes > MAX_SMALL_SIZE:
        return 0
    return _size_to_class[(nbytes + 7) >> 3]


def _build_size_to_class():
    out, c = [], 1
    for i in range((MAX_SMALL_SIZE >> 3) + 1):
        size = i << 3
        while class_to_size[c] < size:
            c += 1
        out.append(c)
    return out


_size_to_class = _build_size_to_class()


from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.HEAP)
