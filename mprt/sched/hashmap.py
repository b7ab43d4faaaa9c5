"""Go's maps (hashmap.go) on the shared heap: mprt.make(mprt.map(K, V)), usable from every M.

Go 1.9's design, object for object:

    hmap     count, flags, B (2^B buckets), noverflow, hash0 (the map's hash seed), nevacuate,
             buckets (a pointer slice of 2^B buckets, each made on first use), oldbuckets (the
             array being evacuated while the map grows, else nil)
    bucket   tophash (8 bytes: the top byte of each slot's hash; 0 empty, 1-3 evacuated, >= 4 a
             key), 8 keys, 8 values, overflow (the next bucket of the chain)

A key's hash (seeded by hash0: ints and floats mixed, strings and bytes keyed BLAKE2b, pointers by
address; a NaN's at random, so a NaN key is never found again, as Go's) picks the bucket by its low
B bits and the tophash by its top byte.  Past a load factor of 6.5 per bucket, or with as many
overflow buckets as buckets, the map grows (doubling, or to the same size to compact): the old
array is evacuated incrementally, the bucket a write touches and one more per write, each entry to
X (same index) or Y (index + old size) by the hash's next bit.  Reads look in the old bucket while
it is not evacuated.  Iteration starts at a random bucket and a random slot in it (Go randomizes
it so programs cannot depend on an order); it walks the buckets as they are when it starts and
yields each entry still in the map when its turn comes, with its current value, each at most once.

Maps are not safe for concurrent use (Go's rule): a goroutine that writes while another writes,
reads or iterates (on any M) meets the hashWriting flag and the program ends with Go's fatal
error (`concurrent map writes`, `concurrent map read and map write`, `concurrent map iteration and
map write`); guard shared maps with a Mutex.  As Go's, m[k] of a missing key is the zero value
(0, "", None), `del m[k]` of a missing key does nothing; `k in m` and m.get(k, d) say whether it
is there.  The map's code is runtime code: a goroutine is never switched out in the middle of a
map operation (it may be stopped for the world there).
"""
import hashlib
import random
import struct as _struct
from collections.abc import Iterator

import numpy as np

from ..shm import malloc
from ..shm.ptr import (
    Ptr,
    ended,
    load_str,
    ptr_value,
    read_value,
    set_map_handle,
    store_ptr,
    store_str,
    typed_view,
    write_value,
)
from ..shm.types import BYTES_CODE, MAP_PREFIX, PTR_CODE, STR_CODE, MapType, struct
from . import mstate

BUCKETCNT = 8
LOADFACTOR = 6.5
EMPTY, EVAC_EMPTY, EVAC_X, EVAC_Y, MINTOPHASH = 0, 1, 2, 3, 4
ITERATOR, HASHWRITING, SAMESIZEGROW = 1, 4, 8       # flags (Go's iterator, hashWriting, sameSizeGrow)
M64 = (1 << 64) - 1


@struct
class hmap:
    count: np.int64
    flags: np.int64
    B: np.int64
    noverflow: np.int64
    hash0: np.int64
    nevacuate: np.int64
    buckets: Ptr
    oldbuckets: Ptr


_HM = {f: i for i, f in enumerate(("count", "flags", "B", "noverflow", "hash0", "nevacuate", "buckets",
                                   "oldbuckets"))}    # word index of each hmap field
_ANN = {"<i8": np.int64, "<f8": np.float64, STR_CODE: str, BYTES_CODE: bytes, PTR_CODE: Ptr}
_buckets = {}         # (kcode, vcode) -> the bucket struct class


def map_type(key: object, value: object) -> MapType:
    """mprt.map(K, V): Go's map[K]V."""
    return MapType(key, value)


def _bucket_class(kc, vc):
    cls = _buckets.get((kc, vc))
    if cls is None:
        vann = _ANN.get(vc) or np.dtype(vc).type
        ann = {"tophash": np.uint64}
        ann.update({f"k{i}": _ANN[kc] for i in range(BUCKETCNT)})
        ann.update({f"v{i}": vann for i in range(BUCKETCNT)})
        ann["overflow"] = Ptr
        c = type(f"bucket[{kc}]{vc}", (), {"__annotations__": ann})
        c.__module__ = "mprt.map"
        cls = _buckets[(kc, vc)] = struct(c)
    return cls


def _mix(x):
    """splitmix64's finalizer: a 64-bit hash of a 64-bit word."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & M64
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & M64
    return x ^ (x >> 31)


class Map:
    """A map on the heap (Go's map[K]V): m[k], m[k] = v, del m[k], k in m, len(m), iteration,
    m.items(), m.get(k, d).  Made by mprt.make(mprt.map(K, V))."""

    __slots__ = ("_p", "_a", "_h", "_code", "_kc", "_vc", "_bt", "_koff", "_voff", "_vdt", "_vmv", "_hw", "_q",
                 "_bcls")

    def __init__(self, p, code):
        self._p, self._a, self._h, self._code = p, p.addr, p._t.heap, code
        kc, vc = code[len(MAP_PREFIX):].split(",")
        self._kc, self._vc = kc, vc
        cls = _bucket_class(kc, vc)
        self._bt = self._h.tcache.get(cls) or self._h.bind_class(cls)
        f = self._bt.fields
        self._koff = [f[f"k{i}"][1] for i in range(BUCKETCNT)]
        self._voff = [f[f"v{i}"][1] for i in range(BUCKETCNT)]
        self._vdt = None if vc in (STR_CODE, PTR_CODE) else np.dtype(vc)
        self._vmv = typed_view(self._h, self._vdt)     # the values' words as their type, if plain
        self._hw = self._a >> 3
        self._q = self._h.mvq
        self._bcls = cls

    def __reduce__(self):
        return (Map, (self._p, self._code))

    def __eq__(self, other):
        return isinstance(other, Map) and other._a == self._a

    def __hash__(self):
        return hash(("map", self._a))

    def __repr__(self):
        return f"<mprt.Map {self._code[1:]} @{self._a:#x} len={self._w('count')}>"

    # ---- words ----

    def _w(self, name):
        try:
            return int(self._q[self._hw + _HM[name]])
        except ValueError:
            raise ended(self._h) from None

    def _set(self, name, v):
        self._q[self._hw + _HM[name]] = v

    # ---- keys and values in buckets ----

    def _hash_at(self, b, i):
        """The hash of the key in slot i of bucket b, from its words (an evacuation moves keys
        without making them again)."""
        kc = self._kc
        h, a = self._h, b + self._koff[i]
        if kc in (STR_CODE, BYTES_CODE):
            return self._hash_bytes(load_str(h, a, True))
        if kc == "<f8":
            f = float(read_value(self._bt, a, np.dtype(np.float64)))
            return self._hash(f)
        w = int(h.mvq[a >> 3]) & M64
        return _mix(w ^ (self._w("hash0") & M64))

    def _hash_bytes(self, b):
        seed = self._w("hash0") & M64
        d = hashlib.blake2b(b, digest_size=8, key=seed.to_bytes(8, "little")).digest()
        return int.from_bytes(d, "little")

    def _copy_slot(self, src, i, dst, j):
        """Move slot i of bucket src to slot j of bucket dst: its words (a string or pointer word
        through the write barrier), not its values made again."""
        h = self._h
        for off, ptrs in ((self._koff, self._kc in (STR_CODE, BYTES_CODE, PTR_CODE)),
                          (self._voff, self._vc in (STR_CODE, PTR_CODE))):
            sa, da = src + off[i], dst + off[j]
            if ptrs:
                store_ptr(h, da, int(h.mvq[sa >> 3]))
            else:
                h.arena_u8[da:da + 8] = h.arena_u8[sa:sa + 8]

    def _hash(self, k):
        kc = self._kc
        seed = self._w("hash0") & M64
        if kc == "<i8":
            return _mix((int(k) ^ seed) & M64)
        if kc == "<f8":
            f = float(k)
            if f != f:
                return random.getrandbits(64)          # NaN: never found again (Go's)
            if f == 0.0:
                f = 0.0                                # +0 and -0 are one key
            return _mix(_struct.unpack("<Q", _struct.pack("<d", f))[0] ^ seed)
        if kc == PTR_CODE:
            return _mix((k._a ^ seed) & M64)
        return self._hash_bytes(k.encode("utf-8", "surrogatepass") if kc == STR_CODE else bytes(k))

    def _check_key(self, k):
        kc = self._kc
        t = type(k)
        if t is int and kc == "<i8" and -(1 << 63) <= k < (1 << 63) or t is str and kc == STR_CODE:
            return                                      # the common cases
        ok = (isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)) if kc == "<i8"
              else isinstance(k, (int, float, np.integer, np.floating)) and not isinstance(k, (bool, np.bool_))
              if kc == "<f8" else isinstance(k, str) if kc == STR_CODE else isinstance(k, bytes)
              if kc == BYTES_CODE else isinstance(k, Ptr))
        if not ok:
            raise TypeError(f"mprt: {k!r} (type {type(k).__name__}) is not a key of {self!r}")
        if kc == "<i8" and not -(1 << 63) <= int(k) < (1 << 63):
            raise OverflowError(f"mprt: key {k} out of range for int64")
        if kc == PTR_CODE:
            ptr_value(self._h, k, f"a key of {self!r}")

    def _key_at(self, b, i):
        h, a = self._h, b + self._koff[i]
        kc = self._kc
        if kc == "<i8" or kc == PTR_CODE:
            return int(h.mvq[a >> 3])
        if kc == "<f8":
            return float(read_value(self._bt, a, np.dtype(np.float64)))
        return load_str(h, a, kc == BYTES_CODE)

    def _key_eq(self, b, i, k):
        got = self._key_at(b, i)
        if self._kc == PTR_CODE:
            return got == k._a
        if self._kc == "<f8":
            return got == float(k)
        return got == k

    def _put_key(self, b, i, k):
        h, a = self._h, b + self._koff[i]
        kc = self._kc
        if kc == "<i8":
            h.mvq[a >> 3] = int(k)
        elif kc == "<f8":
            write_value(self._bt, a, np.dtype(np.float64), float(k), "a map key")
        elif kc == PTR_CODE:
            store_ptr(h, a, k._a)
        else:
            store_str(h, a, k, "a map key", kc == BYTES_CODE)

    def _val_at(self, b, i):
        h, a = self._h, b + self._voff[i]
        if self._vmv is not None:
            return self._vdt.type(self._vmv[a // self._vdt.itemsize])
        if self._vc == STR_CODE:
            return load_str(h, a)
        if self._vc == PTR_CODE:
            w = int(h.mvq[a >> 3])
            return h.ptr_at(w) if w else None
        return read_value(self._bt, a, self._vdt)

    def _put_val(self, b, i, v):
        h, a = self._h, b + self._voff[i]
        mv = self._vmv
        if mv is not None and type(v) in (int, float):
            try:
                mv[a // self._vdt.itemsize] = v
                return
            except (TypeError, ValueError, OverflowError):
                pass                                    # write_value says what is wrong
        if self._vc == STR_CODE:
            store_str(h, a, v, f"a value of {self!r}")
        elif self._vc == PTR_CODE:
            store_ptr(h, a, ptr_value(h, v, f"a value of {self!r}"))
        else:
            write_value(self._bt, a, self._vdt, v, f"a value of {self!r}")

    def _clear_slot(self, b, i):
        """Empty slot i of bucket b (pointer words through the write barrier)."""
        h = self._h
        ka, va = b + self._koff[i], b + self._voff[i]
        if self._kc in (STR_CODE, BYTES_CODE, PTR_CODE):
            store_ptr(h, ka, 0)
        else:
            h.mvq[ka >> 3] = 0
        if self._vc in (STR_CODE, PTR_CODE):
            store_ptr(h, va, 0)
        else:
            h.arena_u8[va:va + self._vdt.itemsize] = 0

    def _tophash(self, b):
        return int(self._h.mvq[b >> 3]).to_bytes(8, "little", signed=True)

    def _set_tophash(self, b, i, t):
        th = bytearray(self._tophash(b))
        th[i] = t
        self._h.mvq[b >> 3] = int.from_bytes(th, "little", signed=True)

    def _overflow(self, b):
        return int(self._h.mvq[(b + self._bt.size - 8) >> 3])

    # ---- the bucket arrays ----

    def _array(self, name):
        """The address of a bucket array (0: nil).  Raw addresses are held only between the map's
        own words and its buckets, in runtime code with no safe point between (no stop of the
        world, so no sweep, can come while one is held)."""
        return self._w(name)

    def _bucket(self, arr, i, make=False):
        """Bucket i of the bucket array at arr (its address), made if asked; 0 if never made."""
        h = self._h
        slot = arr + 8 * i
        b = int(self._q[slot >> 3])
        if not b and make:
            nb = malloc.new(self._bcls, safepoint=False)
            store_ptr(h, slot, nb.addr)
            b = nb.addr
        return b

    def _new_overflow(self, b):
        nb = malloc.new(self._bcls, safepoint=False)
        store_ptr(self._h, b + self._bt.size - 8, nb.addr)
        self._set("noverflow", self._w("noverflow") + 1)
        return nb.addr

    def _tophash_of(self, hsh):
        t = hsh >> 56
        return t + MINTOPHASH if t < MINTOPHASH else t

    def _growing(self):
        return self._w("oldbuckets") != 0

    def _find(self, k, hsh):
        """(bucket address, slot) of key k, or (0, -1)."""
        B = self._w("B")
        arr = self._array("buckets")
        b = self._bucket(arr, hsh & ((1 << B) - 1))
        old = self._array("oldbuckets")
        if old:
            ob_n = 1 << B if self._w("flags") & SAMESIZEGROW else 1 << (B - 1)
            ob = self._bucket(old, hsh & (ob_n - 1))
            if ob and not self._evacuated(ob):
                b = ob
        top = self._tophash_of(hsh)
        while b:
            th = self._tophash(b)
            for i in range(BUCKETCNT):
                if th[i] == top and self._key_eq(b, i, k):
                    return b, i
            b = self._overflow(b)
        return 0, -1

    def _evacuated(self, b):
        return EMPTY < self._tophash(b)[0] < MINTOPHASH

    # ---- Go's mapaccess, mapassign, mapdelete ----

    def _zero(self):
        return "" if self._vc == STR_CODE else None if self._vc == PTR_CODE else self._vdt.type(0)

    def get(self, k: object, default: object = None) -> object:
        """The value of k, or default if k is not in the map."""
        self._check_key(k)
        if self._w("flags") & HASHWRITING:
            mstate.fatal("concurrent map read and map write")
        if not self._w("count"):
            return default
        b, i = self._find(k, self._hash(k))
        return self._val_at(b, i) if b else default

    def __getitem__(self, k):
        v = self.get(k, _MISSING)
        return self._zero() if v is _MISSING else v

    def __contains__(self, k) -> bool:
        return self.get(k, _MISSING) is not _MISSING

    def __len__(self) -> int:
        return self._w("count")

    def _start_write(self):
        f = self._w("flags")
        if f & HASHWRITING:
            mstate.fatal("concurrent map writes")
        self._set("flags", f | HASHWRITING)

    def _end_write(self):
        f = self._w("flags")
        if not f & HASHWRITING:
            mstate.fatal("concurrent map writes")
        self._set("flags", f & ~HASHWRITING)

    def __setitem__(self, k, v):
        self._check_key(k)
        self._check_value(v)
        hsh = self._hash(k)
        self._start_write()
        try:
            while True:
                B = self._w("B")
                if self._growing():
                    self._grow_work(hsh & ((1 << B) - 1))
                arr = self._array("buckets")
                b = self._bucket(arr, hsh & ((1 << B) - 1), make=True)
                top = self._tophash_of(hsh)
                free = None
                while True:
                    th = self._tophash(b)
                    for i in range(BUCKETCNT):
                        if th[i] == top and self._key_eq(b, i, k):
                            self._put_val(b, i, v)
                            return
                        if free is None and th[i] == EMPTY:
                            free = (b, i)
                    nxt = self._overflow(b)
                    if not nxt:
                        break
                    b = nxt
                count = self._w("count")
                if not self._growing() and (_over_load(count + 1, B) or self._w("noverflow") >= 1 << min(B, 15)):
                    self._hash_grow(count + 1)
                    continue                   # growing invalidates everything: again
                if free is None:
                    free = (self._new_overflow(b), 0)
                fb, fi = free
                self._put_key(fb, fi, k)
                self._put_val(fb, fi, v)
                self._set_tophash(fb, fi, top)
                self._set("count", count + 1)
                return
        finally:
            self._end_write()

    def _check_value(self, v):
        vc = self._vc
        if vc == STR_CODE:
            if not isinstance(v, str):
                raise TypeError(f"mprt: {v!r} (type {type(v).__name__}) is not a value of {self!r}")
        elif vc == PTR_CODE:
            ptr_value(self._h, v, f"a value of {self!r}")

    def __delitem__(self, k):
        self._check_key(k)
        hsh = self._hash(k)
        self._start_write()
        try:
            if not self._w("count"):
                return
            if self._growing():
                self._grow_work(hsh & ((1 << self._w("B")) - 1))
            b, i = self._find(k, hsh)
            if b:
                self._clear_slot(b, i)
                self._set_tophash(b, i, EMPTY)
                self._set("count", self._w("count") - 1)
        finally:
            self._end_write()

    # ---- growth (Go's hashGrow, growWork, evacuate) ----

    def _hash_grow(self, count):
        B = self._w("B")
        bigger = 1 if _over_load(count, B) else 0
        h = self._h
        store_ptr(h, self._a + 8 * _HM["oldbuckets"], self._w("buckets"))
        arr = malloc.make(Ptr, 1 << (B + bigger), safepoint=False)
        store_ptr(h, self._a + 8 * _HM["buckets"], arr.addr)
        self._set("B", B + bigger)
        self._set("nevacuate", 0)
        self._set("noverflow", 0)
        f = self._w("flags") & ~SAMESIZEGROW
        self._set("flags", f if bigger else f | SAMESIZEGROW)

    def _oldsize(self):
        B = self._w("B")
        return 1 << B if self._w("flags") & SAMESIZEGROW else 1 << (B - 1)

    def _grow_work(self, bucket):
        self._evacuate(bucket & (self._oldsize() - 1))
        if self._growing():
            self._evacuate(self._w("nevacuate"))

    def _evacuate(self, oi):
        old = self._array("oldbuckets")
        n = self._oldsize()
        ob = self._bucket(old, oi)
        if ob and not self._evacuated(ob):
            same = self._w("flags") & SAMESIZEGROW
            arr = self._array("buckets")
            dest = {EVAC_X: [self._bucket(arr, oi, make=True), 0]}
            if not same:
                dest[EVAC_Y] = [self._bucket(arr, oi + n, make=True), 0]
            b = ob
            while b:
                th = self._tophash(b)
                for i in range(BUCKETCNT):
                    t = th[i]
                    if t == EMPTY:
                        self._set_tophash(b, i, EVAC_EMPTY)
                        continue
                    if self._kc == "<f8" and self._key_at(b, i) != self._key_at(b, i):
                        xy = EVAC_Y if not same and t & 1 else EVAC_X      # NaN: by the tophash's bit (Go's)
                    else:
                        xy = EVAC_Y if not same and self._hash_at(b, i) & n else EVAC_X
                    d = dest[xy]
                    db, di = d
                    while True:                    # the next empty slot of the destination chain
                        if di == BUCKETCNT:
                            nxt = self._overflow(db)
                            db, di = (nxt if nxt else self._new_overflow(db)), 0
                            continue
                        if self._tophash(db)[di] == EMPTY:
                            break
                        di += 1
                    self._copy_slot(b, i, db, di)
                    self._set_tophash(db, di, t)
                    d[0], d[1] = db, di + 1
                    self._clear_slot(b, i)
                    self._set_tophash(b, i, xy)
                b = self._overflow(b)
            self._mark_evacuated(ob)
        elif not ob:
            pass                                   # never made: nothing to move
        if oi == self._w("nevacuate"):
            ne = oi + 1
            while ne < n:
                b = self._bucket(old, ne)
                if b and not self._evacuated(b):
                    break
                ne += 1
            self._set("nevacuate", ne)
            if ne == n:                            # the grow is done
                store_ptr(self._h, self._a + 8 * _HM["oldbuckets"], 0)
                self._set("flags", self._w("flags") & ~SAMESIZEGROW)

    def _mark_evacuated(self, ob):
        # slot 0 of the first bucket of a chain says "evacuated" even when it was empty
        th = self._tophash(ob)
        if not EMPTY < th[0] < MINTOPHASH:
            self._set_tophash(ob, 0, EVAC_EMPTY)

    # ---- iteration ----

    def _entries(self):
        """Every (bucket, slot) holding a key, bucket by bucket from a random bucket and slot (Go's
        randomized iteration order), with the old array's entries where not yet evacuated."""
        if self._w("flags") & HASHWRITING:
            mstate.fatal("concurrent map iteration and map write")
        B = self._w("B")
        nb = 1 << B
        arr = self._array("buckets")
        old = self._array("oldbuckets")
        start, off = random.randrange(nb), random.randrange(BUCKETCNT)
        out = []
        for j in range(nb):
            bi = (start + j) & (nb - 1)
            chains = []
            if old:
                osz = self._oldsize()
                ob = self._bucket(old, bi & (osz - 1))
                if ob and not self._evacuated(ob):
                    chains.append((ob, bi))       # only the entries that will move to bi
            b = self._bucket(arr, bi)
            if b:
                chains.append((b, None))
            for b, want in chains:
                while b:
                    th = self._tophash(b)
                    for s in range(BUCKETCNT):
                        i = (s + off) & (BUCKETCNT - 1)
                        if th[i] < MINTOPHASH:
                            continue
                        k = self._key_at(b, i)
                        key = self._h.ptr_at(k) if self._kc == PTR_CODE else k
                        if want is not None:       # an old bucket's entry: only those bound for bi
                            if self._kc == "<f8" and k != k:
                                # a NaN goes by its tophash's low bit, as evacuate sends it
                                same = self._w("flags") & SAMESIZEGROW
                                if not same and bool(th[i] & 1) != bool(want & self._oldsize()):
                                    continue
                            elif self._hash(key) & (nb - 1) != want:
                                continue
                        out.append((key, b, i))
                    b = self._overflow(b)
        return out

    def _pairs(self):
        for key, b, i in self._entries():
            if self._kc == "<f8" and key != key:
                # a NaN key is found by iteration only: its slot, if it still holds a key
                if self._tophash(b)[i] >= MINTOPHASH:
                    yield key, self._val_at(b, i)
                continue
            v = self.get(key, _MISSING)
            if v is not _MISSING:                  # deleted since the iteration began: skipped
                yield key, v

    def __iter__(self) -> Iterator:
        for k, _ in self._pairs():
            yield k

    def items(self) -> Iterator:
        """(key, value) pairs in Go's randomized order."""
        return self._pairs()


_MISSING = object()


def _over_load(count, B):
    return count > BUCKETCNT and count > LOADFACTOR * (1 << B)


def make_map(t: MapType, hint: int = 0) -> Map:
    """mprt.make(mprt.map(K, V)[, hint]): an empty map with room for about hint entries."""
    mstate.current_m()
    if isinstance(hint, bool) or not isinstance(hint, (int, np.integer)) or hint < 0:
        raise ValueError(f"mprt.make: map size hint {hint!r} is not a non-negative integer")
    B = 0
    while _over_load(int(hint), B):
        B += 1
    p = malloc.new(hmap, safepoint=False)
    m = Map(p, t.code)
    m._set("hash0", random.getrandbits(63))
    m._set("B", B)
    arr = malloc.make(Ptr, 1 << B, safepoint=False)
    p.buckets = arr
    return m


def _handle(p, code):
    return Map(p, code)


set_map_handle(_handle)

from .. import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
