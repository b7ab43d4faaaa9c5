"""Go's allocator over shared memory, with real worker processes."""
import os

import numpy as np
import pytest
from procs import run_each

import mprt
from mprt import runtime
from mprt.shm import malloc
from mprt.shm.layout import H_ARENA_PAGES, S_INUSE
from mprt.shm.sizeclasses import class_to_size


@mprt.struct
class Obj:
    a: np.int64
    b: np.int64
    c: np.int64       # 24 bytes -> class 3 (32 B)


@mprt.struct
class Cell:
    next: mprt.Ptr
    val: np.int64


def _write_slice(n):
    s = mprt.make(np.float64, n)
    s.np[:] = np.arange(n, dtype=np.float64) * 2
    return s


def _build_list(k):
    head = None
    for i in range(k):
        c = mprt.new(Cell)
        c.val = i
        c.next = head
        head = c
    return head


def _read_and_bump(s, cellhead):
    total, c = 0, cellhead
    while c is not None:
        total += int(c.val)
        c.val = c.val + 1000
        c = c.next
    return float(s.np.sum()), total


def test_values_and_pointers_cross_processes(heap):
    (s,) = run_each(heap, [(1, _write_slice, (10_000,))])
    assert s.np[9999] == 19998.0                     # written by the child's numpy view
    (head,) = run_each(heap, [(2, _build_list, (50,))])
    vals, c = [], head
    while c is not None:                             # pointers built by another process
        vals.append(int(c.val))
        c = c.next
    assert vals == list(range(49, -1, -1))
    s.np[0] = 1e6                                    # written here, read there
    ((ssum, total),) = run_each(heap, [(1, _read_and_bump, (s, head))])
    assert ssum == s.np.sum() and total == sum(range(50))
    assert head.val == 49 + 1000                     # the child's write is seen here


def _alloc_many(n):
    addrs = np.empty(n, dtype=np.int64)
    keep = []
    for i in range(n):
        p = mprt.new(Obj)
        p.a = os.getpid()
        addrs[i] = p.addr
        keep.append(p)
    h = malloc.current()
    arr = mprt.make(np.int64, n)        # hand the addresses back in the heap itself
    arr.np[:] = addrs
    p = h.p
    h.release_p()                       # flush the mcache: spans go back to mcentral
    h.bind_p(p)
    return arr, os.getpid()


def test_two_processes_allocate_concurrently_without_overlap(heap):
    n = 200_000
    res = run_each(heap, [(1, _alloc_many, (n,)), (2, _alloc_many, (n,))], together=True, timeout=120)
    all_addrs = np.concatenate([arr.np.copy() for arr, _ in res])
    assert len(all_addrs) == 2 * n
    assert len(np.unique(all_addrs)) == 2 * n                       # no two objects share a start
    order = np.sort(all_addrs)
    assert (np.diff(order) >= 32).all()                             # and none overlaps the next
    for arr, pid in res:                                            # each object still holds its writer
        a = arr.np
        vals = heap.gather(a, np.dtype(np.int64))
        assert (vals == pid).all()
    spans = heap.spanof[all_addrs >> 13]                            # every object in a class-3 span
    assert ((heap.s_sc[spans] >> 1) == 3).all() and (heap.s_state[spans] == S_INUSE).all()
    assert (((all_addrs - (spans.astype(np.int64) << 13)) % 32) == 0).all()
    for a in all_addrs[:: 997].tolist():                             # O(1) address -> span/class/start
        s, cls, start = heap.find_object(a)
        assert class_to_size[cls] == 32 and start == a
        assert heap.find_object(a + 8)[2] == a
    assert heap.valid_objects(all_addrs).all()
    heap.check()
    m = runtime.MemStats()
    runtime.ReadMemStats(m)
    assert m.BySize[3].Size == 32 and m.BySize[3].Mallocs == 2 * n


def test_free_coalesces_and_release_returns_memory(heap):
    before = runtime.MemStats()
    runtime.ReadMemStats(before)
    b = mprt.new_batch(Obj, 300_000)                      # ~9.6 MB of small spans
    bigs = [mprt.make(np.float64, 1 << 20) for _ in range(24)]   # 24 x 8 MB large spans
    for s in bigs:
        s.np[:] = 1.0                                      # touch: really committed
    addrs = np.concatenate([b.addrs, [s.addr for s in bigs]])
    root = b._root.addr
    del b, bigs
    heap.release_p()
    heap.free_objects(np.append(addrs, root))
    heap.bind_p(0)
    heap.check()
    with heap.lock:
        from mprt.shm.mheap import free_spans_locked
        spans = free_spans_locked(heap)
    # everything freed: the whole arena is one free span again
    assert before.HeapObjects == 0
    assert spans == [(1, int(heap.hdr[H_ARENA_PAGES]) - 1)]
    assert not (heap.s_state[1:int(heap.hdr[H_ARENA_PAGES])] == S_INUSE).any()
    m1 = runtime.MemStats()
    runtime.ReadMemStats(m1)
    assert m1.HeapObjects == before.HeapObjects and m1.HeapAlloc == before.HeapAlloc
    assert m1.HeapReleased == 0
    shmem0 = _shmem()
    blocks0 = heap.arena.committed_bytes()
    released = heap.scavenge()
    m2 = runtime.MemStats()
    runtime.ReadMemStats(m2)
    assert released >= 200 << 20
    assert m2.HeapReleased == released and m2.HeapIdle == m1.HeapIdle
    assert blocks0 - heap.arena.committed_bytes() == released     # exactly those pages left tmpfs
    assert shmem0 - _shmem() > (released >> 1)                      # the machine sees it (noisy: others run)
    heap.check()
    again = mprt.make(np.float64, 1 << 20)                # reuse of released pages: committed again
    again.np[:] = 2.0
    assert again.np.sum() == 2.0 * (1 << 20)
    m3 = runtime.MemStats()
    runtime.ReadMemStats(m3)
    assert m3.HeapReleased < m2.HeapReleased
    heap.check()


def _shmem():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Shmem:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no Shmem in /proc/meminfo")


def _mixed(p, seed):
    rng = np.random.default_rng(seed)
    h = malloc.current()
    kept, freed = [], []
    for i in range(3000):
        k = rng.integers(3)
        if k == 0:
            kept.append(mprt.new(Obj))
        elif k == 1:
            kept.append(mprt.make(np.uint8, int(rng.integers(0, 5000))))
        else:
            kept.append(mprt.make(np.int64, int(rng.integers(4097, 20000))))   # large
        if rng.random() < 0.4:
            victim = kept.pop(int(rng.integers(len(kept))))
            a = victim.addr
            del victim
            freed.append(a)
    h.free_objects(np.array(freed, dtype=np.int64))      # the free path, from this process
    nbytes = sum(h.find_object(p_.addr) and _objsize(h, p_.addr) for p_ in kept)
    arr = mprt.make(mprt.Ptr, len(kept))
    for i, q in enumerate(kept):
        arr[i] = q
    m = runtime.MemStats()
    runtime.ReadMemStats(m)                              # from an attached worker process
    assert m.HeapObjects == m.Mallocs - m.Frees and m.HeapIdle + m.HeapInuse == m.HeapSys
    assert m.Frees >= len(freed) and m.HeapAlloc >= nbytes
    return arr, nbytes


def _objsize(h, a):
    s, cls, _ = h.find_object(a)
    return class_to_size[cls] if cls else int(h.s_npages[s]) * 8192


def test_memstats_invariants_after_mixed_alloc_and_free(heap):
    base = runtime.MemStats()
    runtime.ReadMemStats(base)
    res = run_each(heap, [(1, _mixed, (1, 1)), (2, _mixed, (2, 2))], together=True, timeout=120)
    m = runtime.MemStats()
    runtime.ReadMemStats(m)
    # Go's TestMemStats identities
    assert m.Sys == m.HeapSys + m.StackSys + m.MSpanSys + m.MCacheSys + m.BuckHashSys + m.GCSys + m.OtherSys
    assert m.HeapIdle + m.HeapInuse == m.HeapSys
    assert m.HeapAlloc == m.Alloc
    assert m.HeapObjects == m.Mallocs - m.Frees
    assert m.LastGC == m.PauseEnd[(m.NumGC + 255) % 256]
    assert m.PauseTotalNs == sum(m.PauseNs) and not any(m.PauseNs[m.NumGC:]) and not any(m.PauseEnd[m.NumGC:])
    assert m.NumForcedGC <= m.NumGC and m.EnableGC is True and m.DebugGC is False
    for f in ("Alloc", "TotalAlloc", "Sys", "Lookups", "Mallocs", "Frees", "HeapAlloc", "HeapSys", "HeapInuse",
              "HeapObjects", "StackInuse", "StackSys", "MSpanInuse", "MSpanSys", "MCacheInuse", "MCacheSys",
              "GCSys", "OtherSys", "NextGC"):
        v = getattr(m, f)
        assert 0 < v < 1e10, (f, v)
    assert m.NextGC == 4 << 20
    assert len(m.BySize) == 61 and m.BySize[0].Size == 0 and m.BySize[60].Size == 19072
    # exact: the live objects are what the children kept, plus their two result arrays
    live = base.HeapAlloc + sum(nbytes for _, nbytes in res) + sum(_objsize(heap, arr.addr) for arr, _ in res)
    assert m.HeapAlloc == live
    assert m.Frees > 0 and sum(e.Frees for e in m.BySize) <= m.Frees
    assert m.Mallocs - base.Mallocs == 2 * 3000 + 2
    heap.check()


def test_out_of_memory_is_gos_message_and_leaves_heap_usable(heap):
    assert malloc.current() is heap
    keep = []
    with pytest.raises(MemoryError) as ei:
        for _ in range(200):
            keep.append(mprt.make(np.float64, 1 << 20))        # 8 MB each, arena max 1 GiB
    msg = str(ei.value)
    assert msg.startswith("runtime: out of memory: cannot allocate ") and "-byte block (" in msg
    assert msg.endswith("in use)\nfatal error: out of memory")
    assert len(keep) >= 100
    heap.check()
    p = mprt.new(Obj)                                           # small objects still fit
    p.a = 1
    room = [keep.pop().addr for _ in range(3)]                  # 24 MB free again
    heap.free_objects(room)
    with pytest.raises(MemoryError, match="out of memory"):
        mprt.new_batch(Obj, 1_000_000)                          # its slice fits, its 32 MB of spans do not
    heap.check()                                                # a failed batch takes nothing with it
    del keep


STAMP = 0x5EED


def _churn(p, seed, rounds):
    """Random allocation, batches, frees and P hand-overs; every live object carries a stamp that
    is checked at the end, so an object handed out twice or zeroed under us is seen."""
    rng = np.random.default_rng(seed)
    h = malloc.current()
    live = {}                 # addr -> (Ptr or Batch, stamp)
    batches = []
    for r in range(rounds):
        op = rng.integers(6)
        if op <= 1:
            o = mprt.new(Obj)
            o.a, o.b = STAMP, p * 1_000_000 + r
            live[o.addr] = (o, p * 1_000_000 + r)
        elif op == 2:
            n = int(rng.integers(1, 700))
            b = mprt.new_batch(Obj, n)
            b.set("a", STAMP)
            b.set("b", p * 1_000_000 + r)
            batches.append((b, p * 1_000_000 + r))
        elif op == 3:
            s = mprt.make(np.int64, int(rng.integers(0, 9000)))
            s.np[:] = p * 1_000_000 + r
            live[s.addr] = (s, p * 1_000_000 + r)
        elif op == 4 and live:
            keys = list(live)
            victims = [keys[i] for i in rng.choice(len(keys), size=min(len(keys), 20), replace=False)]
            for a in victims:
                del live[a]
            h.free_objects(np.array(victims, dtype=np.int64))
        elif op == 5:
            mine = h.p
            h.release_p()             # flush: cached spans go back to mcentral, maybe to the other P
            h.bind_p(mine)
    bad = 0
    for a, (o, stamp) in live.items():
        if isinstance(o, mprt.Ptr) and hasattr(o, "a"):
            bad += (o.a != STAMP) or (o.b != stamp)
        else:
            bad += int((o.np != stamp).sum())
    for b, stamp in batches:
        bad += int((b.get("a") != STAMP).sum() + (b.get("b") != stamp).sum())
    nobj = len(live) + sum(len(b) + 1 for b, _ in batches)
    return bad, nobj


def test_two_processes_churn_without_losing_an_object(heap):
    base = runtime.MemStats()
    runtime.ReadMemStats(base)
    res = run_each(heap, [(1, _churn, (1, 11, 1500)), (2, _churn, (2, 22, 1500))], together=True, timeout=120)
    for bad, nobj in res:
        assert bad == 0 and nobj > 100
    heap.check()
    m = runtime.MemStats()
    runtime.ReadMemStats(m)
    assert m.HeapObjects == m.Mallocs - m.Frees and m.HeapIdle + m.HeapInuse == m.HeapSys


@mprt.struct
class Mixed:
    n1: np.int32
    p1: mprt.Ptr
    f: np.float64
    p2: mprt.Ptr


def _build_graph():
    # a type this process registers first, objects of every kind, and pointers between them
    m = mprt.new(Mixed)
    c = mprt.new(Cell)
    ps = mprt.make(mprt.Ptr, 5)
    ps[0], ps[4] = c, m
    m.p1, m.p2 = c, ps
    big = mprt.make(mprt.Ptr, 5000)          # a large pointer slice
    big[4999] = m
    return m, c, ps, big


def test_any_process_knows_where_the_pointers_are(heap):
    ((m, c, ps, big),) = run_each(heap, [(1, _build_graph, ())])
    slots = heap.pointer_slots([m.addr, c.addr, ps.addr, big.addr])
    assert set(slots.tolist()) == ({m.addr + 8, m.addr + 24, c.addr} | {ps.addr + 8 * i for i in range(5)}
                                   | {big.addr + 8 * i for i in range(5000)})
    targets = heap.arena_i64[slots >> 3]
    assert set(targets[targets != 0].tolist()) == {c.addr, ps.addr, m.addr}
    s = mprt.make(np.float64, 10)
    assert len(heap.pointer_slots([s.addr])) == 0           # noscan: nothing to scan
    assert heap.tids_of([m.addr, c.addr]).tolist() == [heap.tid_at(m.addr), heap.tid_at(c.addr)]


def test_ptr_through_a_pipe_or_file_raises():
    import multiprocessing as mp
    import pickle
    import tempfile
    h = malloc.create(arena_max=1 << 26)
    try:
        p = mprt.new(Cell)
        a, b = mp.Pipe()
        with pytest.raises(pickle.PicklingError, match="mprt.Ptr"):
            a.send(p)
        with tempfile.TemporaryFile() as f, pytest.raises(pickle.PicklingError, match="mprt.Ptr"):
            pickle.dump([p], f)
        a.close()
        b.close()
    finally:
        h.destroy()


def test_page_heap_random_walk_keeps_its_invariants(heap):
    """Large objects of random sizes allocated, freed and scavenged at random: the page heap's
    invariants hold after every step, live objects never overlap, and their contents survive
    neighbours being freed, coalesced, released and reused."""
    rng = np.random.default_rng(7)
    live = {}
    for step in range(400):
        op = rng.random()
        if op < 0.55 or not live:
            n = int(rng.integers(4097, 300_000))             # 32 KiB .. 2.4 MB of int64: large spans
            s = mprt.make(np.int64, n)
            assert not s.np.any()                            # reused pages come back zeroed
            s.np[:] = step
            live[s.addr] = (s, step, n)
        elif op < 0.9:
            a = list(live)[int(rng.integers(len(live)))]
            del live[a]
            heap.free_objects([a])
        else:
            heap.scavenge()
        heap.check()
    spans = sorted((a, a + (8 + n * 8)) for a, (_, _, n) in live.items())
    assert all(e <= s2 for (_, e), (s2, _) in zip(spans, spans[1:]))
    for s, stamp, n in live.values():
        assert (s.np == stamp).all()


def test_the_sweeper_waits_for_a_span_being_carved(heap):
    """A span carved for a cache is in use before its class, meta block and sweepgen are written
    (under the heap lock).  The collector's sweeper reads the record under the heap lock too, so it
    never sweeps a half-made span: one with no meta block yet was swept through meta block 0's
    neighbourhood, where the first span's type ids live (it freed a channel main still held)."""
    import threading
    import time

    from mprt.gc import mgc
    from mprt.shm import mcentral, mheap
    from mprt.shm.layout import GC_SWEEPGEN

    first = [mprt.new(Obj) for _ in range(40)]          # the first span of class 3
    tids = [heap.tid_at(p.addr) for p in first]
    sg = int(heap.gcq[GC_SWEEPGEN])
    sweeper = object.__new__(mgc.Collector)             # the coordinator's sweep, run here
    sweeper.h = heap
    carving, made = threading.Event(), []

    def carve():                                         # cache_span's new span, slowed down
        with heap.lock:
            s, _ = mheap.alloc_locked(heap, 1)
            heap.s_sc[s] = 3 << 1                        # in use, class written; no meta block yet
            heap.s_sweepgen[s] = sg - 1
            made.append(s)
            carving.set()
            time.sleep(0.2)                              # the sweeper arrives meanwhile
            heap.s_meta[s] = mcentral.meta_alloc_locked(heap, 3)[0]
            heap.s_alloc[s] = 0
            heap.s_sweepgen[s] = sg

    t = threading.Thread(target=carve)
    t.start()
    assert carving.wait(5)
    s = made[0]
    sweeper._sweep(np.array([s], dtype=np.int64))       # waits for the carve, then finds it swept
    t.join(5)
    assert [heap.tid_at(p.addr) for p in first] == tids
    meta = int(heap.s_meta[s])
    with heap.central_lock(3):
        heap.s_meta[s] = 0
        with pytest.raises(RuntimeError, match="not an in-use small span"):
            mcentral.sweep_span_locked(heap, s)          # the free path refuses a half-made record
        heap.s_meta[s] = meta
        mcentral._release_locked(heap, 3, s)             # the empty span goes back to the page heap
    assert [heap.tid_at(p.addr) for p in first] == tids
    heap.check()


def test_a_refill_takes_fresh_spans_several_at_a_time_and_gives_back_what_it_did_not_use(heap):
    """A P that finds no span in its class's mcentral takes RESERVE_PAGES of fresh spans at once
    (one page-heap search for several refills): the spans after the first are its own, on no
    central list and used by its next refills, and the full ones it leaves stay its own until
    it next takes the mcentral's lock; when it gives its cache back, the full ones go to the full
    list with every object counted, the ones it never used to the page heap, and nothing of them
    is left counted in use."""
    from mprt.shm import mcache
    from mprt.shm.layout import H_PAGES_INUSE
    from mprt.shm.sizeclasses import PAGE_SHIFT, class_to_nobjs
    p0 = int(heap.hdr[H_PAGES_INUSE])
    first = mprt.new(Obj)                      # class 3, one page a span: a reserve of 8 spans
    mc = heap.mcache
    sc = int(heap.s_sc[first.addr >> PAGE_SHIFT])
    r = list(mc.reserve[sc])
    assert len(r) == mcache.RESERVE_PAGES - 1
    assert all(int(heap.s_cached[s]) == 0 and int(heap.s_alloc[s]) == 0 for s in r)
    assert int(heap.hdr[H_PAGES_INUSE]) - p0 == mcache.RESERVE_PAGES
    heap.check()                               # the reserve is on no central list, as a cached span
    keep = [first] + [mprt.new(Obj) for _ in range(class_to_nobjs[3] * 2)]   # two refills more
    spans = {p.addr >> PAGE_SHIFT for p in keep}
    assert len(spans) == 3 and spans - {first.addr >> PAGE_SHIFT} <= set(r)   # taken from the reserve
    assert len(mc.reserve[sc]) == mcache.RESERVE_PAGES - 3
    # the mcentral has nothing for the class: the full spans stayed the P's (no lock taken), with
    # the counts it hands in when they go back
    assert sorted(s for s, _ in mc.retired[sc]) == sorted(spans - {keep[-1].addr >> PAGE_SHIFT})
    assert [n for _, n in mc.retired[sc]] == [class_to_nobjs[3]] * 2
    heap.release_p()                           # the cache goes back: the unused spans with it
    assert int(heap.hdr[H_PAGES_INUSE]) - p0 == 3
    assert all(int(heap.s_state[s]) != S_INUSE for s in r if s not in spans)
    assert all(int(heap.s_alloc[s]) == class_to_nobjs[3] for s in spans if s != keep[-1].addr >> PAGE_SHIFT)
    heap.bind_p(0)
    heap.check()                               # s_alloc agrees with the type ids, every list whole
    assert len({int(p.addr) for p in keep}) == len(keep)      # no object handed out twice
