"""Objects, types and Ptr handles in one process; bad input."""
import copy
import pickle

import numpy as np
import pytest

import mprt
from mprt import runtime
from mprt.shm import malloc


@mprt.struct
class Point:
    x: np.int64
    y: np.float32
    flag: np.bool_
    small: np.int8


@mprt.struct
class Node:
    left: mprt.Ptr
    right: mprt.Ptr
    val: np.int64


@mprt.struct
class Wide:
    c: np.complex128
    h: np.float16
    u: np.uint64


def test_struct_layout_is_gos():
    lay = Point._mprt_struct
    assert [(f, o) for f, _, o, _ in lay.fields] == [("x", 0), ("y", 8), ("flag", 12), ("small", 13)]
    assert lay.size == 16
    assert Node._mprt_struct.ptroffs == [0, 8] and Node._mprt_struct.size == 24


def test_new_is_zeroed_and_fields_round_trip(heap):
    p = mprt.new(Point)
    assert (p.x, p.y, p.flag, p.small) == (0, 0.0, False, 0)
    assert type(p.x) is np.int64 and type(p.y) is np.float32
    p.x, p.y, p.flag, p.small = -5, 1.5, True, -128
    assert (p.x, p.y, p.flag, p.small) == (-5, 1.5, True, -128)
    assert mprt.sizeof(p) == 16 == mprt.sizeof(Point)
    with pytest.raises(TypeError, match="not a mprt.Ptr or a struct type"):
        mprt.sizeof(3)
    w = mprt.new(Wide)
    w.c, w.h, w.u = 1 + 2j, 0.5, 2**64 - 1
    assert (w.c, w.h, w.u) == (1 + 2j, 0.5, 2**64 - 1)


def test_pointer_fields_nil_and_equality(heap):
    a, b = mprt.new(Node), mprt.new(Node)
    assert a.left is None and a != b
    a.left = b
    b.val = 42
    assert a.left == b and a.left.val == 42 and a.left is not b
    assert hash(a.left) == hash(b) and len({a.left, b}) == 1
    a.left = None
    assert a.left is None
    assert isinstance(a, mprt.Ptr)


def test_slices(heap):
    s = mprt.make(np.float64, 1000)
    assert len(s) == 1000 and mprt.sizeof(s) == 8000
    v = s.np
    assert v.dtype == np.float64 and v.shape == (1000,) and not v.any()
    v[:] = np.arange(1000)
    assert s.np.sum() == 999 * 500 and s[999] == 999.0
    s[3] = 7
    assert v[3] == 7
    ps = mprt.make(mprt.Ptr, 3)
    n = mprt.new(Node)
    ps[2] = n
    assert ps[2] == n and ps[0] is None and list(ps)[2] == n
    with pytest.raises(IndexError, match="index out of range"):
        ps[3]
    with pytest.raises(runtime.Error):
        s[-1]
    with pytest.raises(TypeError, match="no numpy view"):
        ps.np
    big = mprt.make(np.int32, 100_000)     # a large object, its own span
    big.np[-1] = 9
    assert big[99_999] == 9 and mprt.sizeof(big) == 400_000
    empty = mprt.make(np.uint8, 0)
    assert len(empty) == 0 and empty.np.size == 0


def test_batch(heap):
    b = mprt.new_batch(Node, 5000)
    assert len(b) == 5000 and len(set(b.addrs.tolist())) == 5000
    assert not b.addrs.flags.writeable
    b.set("val", np.arange(5000))
    assert b[1234].val == 1234 and b.get("val").sum() == 5000 * 4999 // 2
    b.set("left", np.roll(b.addrs, 1))
    assert b[1].left == b[0] and b[0].left == b[4999]
    assert (b.get("left") == np.roll(b.addrs, 1)).all()
    b.set("right", 0)
    assert b[7].right is None
    assert [p.val for p in list(b)[:3]] == [0, 1, 2]
    e = mprt.new_batch(Point, 0)
    assert len(e) == 0
    w = mprt.new_batch(Wide, 10)
    w.set("c", np.arange(10) * 1j)
    assert w[3].c == 3j and (w.get("c") == np.arange(10) * 1j).all()


def test_every_live_ptr_is_a_root(heap):
    p = mprt.new(Node)
    q = p                           # same handle, one root
    r = mprt.new(Node)
    live = set(heap.roots.live().tolist())
    assert p.addr in live and r.addr in live
    slot_addr = r.addr
    del r
    assert slot_addr not in set(heap.roots.live().tolist())
    b = mprt.new_batch(Node, 100)
    roots = set(heap.roots.live().tolist())
    assert b._root.addr in roots           # the batch's objects hang off one rooted slice
    del p, q


def test_ptr_refuses_plain_pickling(heap):
    p = mprt.new(Node)
    with pytest.raises(pickle.PicklingError, match="only through the runtime"):
        pickle.dumps(p)
    with pytest.raises(pickle.PicklingError):
        pickle.dumps({"inner": [p]})
    with pytest.raises(pickle.PicklingError):
        pickle.dumps(mprt.new_batch(Node, 2))
    from mprt.shm.ptr import dumps, loads
    p.val = 3
    q = loads(dumps({"x": [p]}))["x"][0]
    assert q == p and q.val == 3
    assert copy.copy(p) == p and copy.deepcopy(p) == p
    with pytest.raises(TypeError, match="made by mprt.new"):
        mprt.Ptr()


class NotAStruct:
    x: np.int64


def test_bad_input(heap):
    for bad in (int, NotAStruct, Node._mprt_struct, 3, None):
        with pytest.raises(TypeError, match="not a struct type"):
            mprt.new(bad)
    with pytest.raises(TypeError, match="not a struct type"):
        mprt.new(mprt.new(Node))
    p = mprt.new(Point)
    with pytest.raises(ValueError, match=r"cannot use 300 .*int8 in field .*Point.small: value out of range"):
        p.small = 300
    with pytest.raises(TypeError, match=r"cannot use 1\.5 .*int64 in field .*Point.x"):
        p.x = 1.5
    with pytest.raises(TypeError, match="'a'"):
        p.y = "a"
    with pytest.raises(TypeError, match="bool"):
        p.flag = 1
    n = mprt.new(Node)
    with pytest.raises(TypeError, match="want mprt.Ptr or None"):
        n.left = 12345
    with pytest.raises(runtime.Error, match=r"^runtime error: makeslice: len out of range$"):
        mprt.make(np.int64, -1)
    with pytest.raises(runtime.Error, match="makeslice: len out of range"):
        mprt.make(np.int64, 1 << 62)
    with pytest.raises(TypeError, match="length 2.5 is not an integer"):
        mprt.make(np.int64, 2.5)
    with pytest.raises(TypeError, match="element type"):
        mprt.make(object, 3)
    with pytest.raises(ValueError, match="count -1"):
        mprt.new_batch(Node, -1)
    b = mprt.new_batch(Node, 4)
    with pytest.raises(ValueError, match="0x10 is not the address of an object"):
        b.set("left", [0, 0, 16, 0])
    with pytest.raises(ValueError, match="out of range"):
        mprt.new_batch(Point, 2).set("small", [1, 1000])
    with pytest.raises(TypeError):
        b.set("val", ["a", "b", "c", "d"])
    with pytest.raises(AttributeError, match="no field 'nope'"):
        b.get("nope")
    with pytest.raises(ValueError, match=f"address {n.addr + 8} is not the start of an allocated object"):
        heap.ptr_at_checked(n.addr + 8)
    with pytest.raises(ValueError, match="not the start"):
        heap.ptr_at_checked(123 << 20)
    with pytest.raises(ValueError, match="not the start"):
        heap.free_objects([n.addr + 8])


def test_struct_fields_include_base_classes(heap):
    @mprt.struct
    class Derived(Node):
        extra: np.float64

    assert [f for f, *_ in Derived._mprt_struct.fields] == ["left", "right", "val", "extra"]
    d = mprt.new(Derived)
    d.left, d.extra = d, 2.5
    assert d.left == d and d.extra == 2.5 and mprt.sizeof(d) == 32


def test_bad_struct_definitions():
    with pytest.raises(TypeError, match="field 'x' has type <class 'int'>"):
        @mprt.struct
        class A:
            x: int
    with pytest.raises(TypeError, match="reserved"):
        @mprt.struct
        class B:
            addr: np.int64
    with pytest.raises(TypeError, match="decorates a class"):
        mprt.struct(3)


def test_no_runtime():
    assert malloc.current_or_none() is None
    with pytest.raises(RuntimeError, match="no runtime"):
        mprt.new(Node)
    with pytest.raises(RuntimeError, match="no runtime"):
        runtime.ReadMemStats(runtime.MemStats())


def test_pointer_from_another_runtime(heap):
    n = mprt.new(Node)
    from mprt.shm.ptr import dumps
    data = dumps(n)
    heap.release_p()
    rtid = heap.rtid
    # a second runtime in this process (after leaving the first)
    malloc._cur = None
    h2 = malloc.create(arena_max=1 << 26)
    try:
        m = mprt.new(Node)
        with pytest.raises(ValueError, match="another runtime"):
            m.left = n
        from mprt.shm.ptr import loads
        with pytest.raises(ValueError, match=f"belongs to runtime {rtid}"):
            loads(data)
    finally:
        h2.destroy()
        malloc._cur = heap


@mprt.struct
class C32:
    a: np.int64
    b: np.int64
    c: np.int64


def test_batch_tail_from_a_partly_used_span(heap):
    """A refill may bring back a span another P left half full: the batch must keep refilling."""
    keep = [mprt.new(C32) for _ in range(250)]      # class 3: 256 per span, 6 left free
    heap.release_p()                                 # the half-used span goes to the mcentral
    heap.bind_p(1)
    b = mprt.new_batch(C32, 100)
    assert len(b) == 100 and (b.addrs != 0).all() and len(np.unique(b.addrs)) == 100
    assert heap.valid_objects(b.addrs).all()
    assert not set(b.addrs.tolist()) & {p.addr for p in keep}
    heap.check()


def test_large_struct_gets_a_span_of_its_own(heap):
    Big = mprt.struct(type("Big", (), {"__annotations__": {**{f"f{i}": np.int64 for i in range(5000)},
                                                            "link": mprt.Ptr}}))
    b = mprt.new(Big)
    assert mprt.sizeof(b) == 40008
    s, cls, start = heap.find_object(b.addr + 20000)
    assert cls == 0 and start == b.addr and b.addr % 8192 == 0
    b.f4999, b.link = 7, b
    assert b.link.f4999 == 7 and b.link == b
    assert heap.pointer_slots([b.addr]).tolist() == [b.addr + 40000]
    a = b.addr
    del b
    heap.free_objects([a])
    assert heap.find_object(a) is None
    heap.check()


def test_slice_lengths_survive_full_writes_and_lookups(heap):
    from mprt.shm.ptr import dumps, loads
    for elem in (np.uint8, np.float64, np.complex128):
        for n in list(range(0, 70)) + [4095, 4096, 5000, 100_000]:
            s = mprt.make(elem, n)
            s.np.view(np.uint8)[:] = 0xFF                  # every byte of every element
            again = loads(dumps(s))                         # a fresh handle reads the length from the heap
            assert len(s) == len(again) == n and mprt.sizeof(again) == n * np.dtype(elem).itemsize
            assert s.np.ctypes.data % min(16, np.dtype(elem).itemsize) == 0
    big = mprt.make(np.float64, 1 << 20)
    assert big.addr % 8192 == 0 and big.np.ctypes.data % 4096 == 0   # page-aligned data


def test_handles_after_teardown_say_so():
    h = malloc.create(arena_max=1 << 26)
    p, w = mprt.new(Point), mprt.new(Wide)
    n = mprt.new(Node)
    s, ps, b = mprt.make(np.float64, 4), mprt.make(mprt.Ptr, 2), mprt.new_batch(Node, 3)
    view = s.np
    h.destroy()
    for op in (lambda: p.x, lambda: setattr(p, "x", 1), lambda: p.flag, lambda: w.c, lambda: n.left,
               lambda: setattr(n, "left", None), lambda: s.np, lambda: s[0], lambda: ps[0],
               lambda: b[0], lambda: b.get("val"), lambda: b.set("val", 1)):
        with pytest.raises(RuntimeError, match=f"runtime {h.rtid} has ended"):
            op()
    assert len(s) == 4 and view.shape == (4,)    # what is already in hand stays valid memory
