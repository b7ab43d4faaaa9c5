/* Heap handles in C (mprt/shm/ptr.py): the Ptr base type, making a handle, struct pointer fields
 * with the write barrier, mprt.new's common case and the sweep of a small span, for the speed of
 * code that makes, walks and links heap objects (binary trees: an object made, a handle made or
 * dropped and a pointer field read or written per node; a span swept per 512 of them).
 *
 * Handle: the base of mprt.Ptr when this module is loaded.  It carries the address (_a), the
 * root-table slot (_s) and the TypeInfo (_t) as C fields, and its dealloc clears the slot and puts
 * it back on the free list (Ptr.__del__ of the pure-Python path).  Handles are left untracked by
 * CPython's cyclic collector (no cycle goes through one).
 *
 * Ctx: one per attached heap.  It holds buffer exports of the heap segment, the arena and the root
 * table (the mappings stay valid while it lives) and reads them only while `alive`: close() ends
 * that (the heap's teardown, a forked child), after which every use raises the heap's "ended"
 * error.  Ctx.make(cls, t, a) makes a handle: a free root slot (this path keeps its own stack of
 * them, refilled from Roots.free when Roots.grow commits a chunk), the address written in that
 * slot, then the handle.
 *
 * new(T): malloc.new when a small struct type was seen before (note_type), the P's mcache has a
 * free object of its class in this GC phase (set_mcache / mcache_state mirror MCache: the same
 * lists), no safe point is due (the M's ATTN and PREEMPT words, set_sched) and no GODEBUG
 * allocation mode is on; anything else goes to the Python new, which does it all.
 *
 * sweep_small: the loop of mcentral.sweep_span_locked (the caller holds the mcentral lock and does
 * the accounting).
 *
 * atomic: sync/atomic's operations on an aligned arena word (mprt/sync/atomic.py).
 *
 * PtrField: the descriptor of a struct's pointer field.  Reading makes a handle for the object the
 * field points to (its type id read from the heap's span and meta arrays, as ObjectQueries.tid_at);
 * writing takes a handle of the same heap or None and stores it through the write barrier (while
 * the mark runs, the old and the new target are shaded: mbarrier.shade).
 *
 * Safe points: Python signal handlers run only between bytecodes, so this code is not interrupted
 * by a stop of the world or a preemption except where it calls back into Python (allocating an
 * object may run the cyclic collector and finalizers; a type not seen yet is resolved by Python;
 * an empty free list is grown by Python).  Those calls all come before the field is (re)read and
 * the slot is taken: from that read to the slot's write nothing runs that could stop this M, so
 * the address is never held only in a C local across a safe point.
 *
 * Pure Python stays the reference: MPRT_ACCEL=0 turns this off, and CI runs the tests both ways.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#define WHITE 0
#define GREY 1
#define NTID 65536     /* type ids are uint16 in the meta blocks */
#define NCLASS_MAX 128

typedef struct {
    PyObject_HEAD
    int alive;
    Py_buffer hbuf, abuf, rbuf;
    uint8_t *hseg;         /* the heap segment (mark bytes are addressed in it) */
    int64_t *arena;
    int64_t *tab;          /* this process's root table */
    int64_t *gcphase;
    int32_t *spanof;
    int16_t *s_sc;
    int64_t *s_meta;
    int32_t *s_tid;
    uint16_t *meta;
    uint8_t *dirty;
    int64_t meta_off, smark_off, page_shift, nclass;
    int64_t size[NCLASS_MAX], nobj2[NCLASS_MAX];
    PyObject *free;        /* Roots.free: a list of ints, where Roots.grow puts a new chunk's slots */
    PyObject *grow;        /* Roots.grow(): one slot, the rest of a new chunk on the free list */
    int64_t *slots;        /* this path's own free slots (a stack): taken from `free` as it grows */
    Py_ssize_t nslots, capslots;
    PyObject *resolve;     /* tid -> (TypeInfo, handle class, or None: call TypeInfo.make) */
    PyObject *ended;       /* () -> the exception a use after teardown raises */
    PyObject **tcache;     /* tid -> (t, cls) tuples, NTID entries, made on first use */
    int64_t tmax;          /* no entry above this tid */
    /* new(): the allocator's fast path (malloc.alloc_small for a struct type seen before) */
    int64_t *gcgen;
    PyObject *bytype;      /* struct class -> (t, cls, spanclass, tid, objsize) */
    long long sample_left; /* bytes to the heap profile's next sample (Heap.sample_left) */
    int dbg;               /* GODEBUG efence / allocfreetrace: every allocation goes the slow way */
    int has_mc;            /* the P's mcache, as MCache keeps it: */
    PyObject *mfree, *mbase, *mtidbase, *mmarkbase;    /* lists by span class */
    int64_t *stats;        /* the P's pstat row (PS_NMALLOC + size class) */
    int64_t mgen;
    int has_sched;         /* the M's safe-point words (mstate.safepoint_due) */
    Py_buffer cbuf;
    int64_t *attn, *preempt;
} Ctx;

typedef struct {
    PyObject_HEAD
    int64_t a;
    int64_t s;
    PyObject *t;
    Ctx *c;
} Handle;

typedef struct {
    PyObject_HEAD
    Ctx *c;
    int64_t off;
    PyObject *bad;         /* v -> raises the error for a value that is not a handle of this heap */
    PyObject *doc;
} PtrField;

static PyTypeObject CtxType, HandleType, PtrFieldType;

/* ---- Ctx ---- */

static int ctx_traverse(Ctx *c, visitproc visit, void *arg) {
    Py_VISIT(c->free);
    Py_VISIT(c->grow);
    Py_VISIT(c->resolve);
    Py_VISIT(c->ended);
    Py_VISIT(c->bytype);
    Py_VISIT(c->mfree);
    Py_VISIT(c->mbase);
    Py_VISIT(c->mtidbase);
    Py_VISIT(c->mmarkbase);
    if (c->tcache)
        for (int64_t i = 0; i <= c->tmax; i++)
            Py_VISIT(c->tcache[i]);
    return 0;
}

static void drop_sched(Ctx *c) {
    if (c->has_sched) {
        c->has_sched = 0;
        c->attn = c->preempt = NULL;
        PyBuffer_Release(&c->cbuf);
    }
}

static void drop_mcache(Ctx *c) {
    c->has_mc = 0;
    Py_CLEAR(c->mfree);
    Py_CLEAR(c->mbase);
    Py_CLEAR(c->mtidbase);
    Py_CLEAR(c->mmarkbase);
}

static void ctx_release(Ctx *c) {
    drop_sched(c);
    drop_mcache(c);
    if (c->alive) {
        c->alive = 0;
        PyBuffer_Release(&c->hbuf);
        PyBuffer_Release(&c->abuf);
        PyBuffer_Release(&c->rbuf);
    }
}

static int ctx_clear(Ctx *c) {
    ctx_release(c);
    Py_CLEAR(c->free);
    Py_CLEAR(c->grow);
    Py_CLEAR(c->resolve);
    Py_CLEAR(c->ended);
    Py_CLEAR(c->bytype);
    if (c->tcache)
        for (int64_t i = 0; i <= c->tmax; i++)
            Py_CLEAR(c->tcache[i]);
    return 0;
}

static void ctx_dealloc(Ctx *c) {
    PyObject_GC_UnTrack(c);
    ctx_clear(c);
    PyMem_Free(c->tcache);
    PyMem_Free(c->slots);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

/* Ctx(heapseg_mm, arena_mm, roots_mm, offsets, page_shift, sizes, nobjs, free, grow, resolve, ended)
 * offsets: dict of byte offsets in the heap segment: gcphase, spanof, s_sc, s_meta, s_tid, meta,
 * smark, gcdirty */
static int ctx_init(Ctx *c, PyObject *args, PyObject *kw) {
    PyObject *hmm, *amm, *rmm, *offs, *sizes, *nobjs, *free, *grow, *resolve, *ended;
    long long page_shift;
    if (!PyArg_ParseTuple(args, "OOOO!LOOO!OOO", &hmm, &amm, &rmm, &PyDict_Type, &offs, &page_shift,
                          &sizes, &nobjs, &PyList_Type, &free, &grow, &resolve, &ended))
        return -1;
    if (c->alive || c->tcache) {
        PyErr_SetString(PyExc_RuntimeError, "cptr.Ctx initialised twice");
        return -1;
    }
    Py_ssize_t n = PySequence_Size(sizes);
    if (n < 1 || n > NCLASS_MAX || PySequence_Size(nobjs) != n) {
        PyErr_SetString(PyExc_ValueError, "cptr.Ctx: bad size class tables");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *x = PySequence_GetItem(sizes, i), *y = PySequence_GetItem(nobjs, i);
        c->size[i] = x ? PyLong_AsLongLong(x) : -1;
        c->nobj2[i] = y ? 2 * PyLong_AsLongLong(y) : -1;
        Py_XDECREF(x);
        Py_XDECREF(y);
        if (PyErr_Occurred())
            return -1;
    }
    c->nclass = n;
    c->page_shift = page_shift;
    const char *names[] = {"gcphase", "spanof", "s_sc", "s_meta", "s_tid", "meta", "smark", "gcdirty", "gcgen"};
    int64_t off[9];
    for (int i = 0; i < 9; i++) {
        PyObject *v = PyDict_GetItemString(offs, names[i]);
        if (v == NULL) {
            PyErr_Format(PyExc_KeyError, "cptr.Ctx: no offset %s", names[i]);
            return -1;
        }
        off[i] = PyLong_AsLongLong(v);
        if (PyErr_Occurred())
            return -1;
    }
    c->tcache = PyMem_Calloc(NTID, sizeof(PyObject *));
    if (c->tcache == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (PyObject_GetBuffer(hmm, &c->hbuf, PyBUF_WRITABLE) < 0)
        return -1;
    if (PyObject_GetBuffer(amm, &c->abuf, PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&c->hbuf);
        return -1;
    }
    if (PyObject_GetBuffer(rmm, &c->rbuf, PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&c->hbuf);
        PyBuffer_Release(&c->abuf);
        return -1;
    }
    c->alive = 1;
    c->hseg = c->hbuf.buf;
    c->arena = c->abuf.buf;
    c->tab = c->rbuf.buf;
    c->gcphase = (int64_t *)(c->hseg + off[0]);
    c->spanof = (int32_t *)(c->hseg + off[1]);
    c->s_sc = (int16_t *)(c->hseg + off[2]);
    c->s_meta = (int64_t *)(c->hseg + off[3]);
    c->s_tid = (int32_t *)(c->hseg + off[4]);
    c->meta = (uint16_t *)(c->hseg + off[5]);
    c->meta_off = off[5];
    c->smark_off = off[6];
    c->dirty = c->hseg + off[7];
    c->gcgen = (int64_t *)(c->hseg + off[8]);
    c->bytype = PyDict_New();
    if (c->bytype == NULL)
        return -1;
    c->sample_left = (long long)1 << 62;
    Py_INCREF(free);
    c->free = free;
    Py_INCREF(grow);
    c->grow = grow;
    Py_INCREF(resolve);
    c->resolve = resolve;
    Py_INCREF(ended);
    c->ended = ended;
    return 0;
}

static PyObject *raise_ended(Ctx *c) {
    PyObject *e = PyObject_CallNoArgs(c->ended);
    if (e != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(e), e);
        Py_DECREF(e);
    }
    return NULL;
}

static inline int64_t tid_at(Ctx *c, int64_t a) {
    int64_t s = c->spanof[a >> c->page_shift];
    int64_t cls = c->s_sc[s] >> 1;
    if (cls == 0)
        return c->s_tid[s];
    return c->meta[(c->s_meta[s] >> 1) + (a - (s << c->page_shift)) / c->size[cls]];
}

static inline void shade(Ctx *c, int64_t a) {
    if (!a)
        return;
    int64_t s = c->spanof[a >> c->page_shift];
    int64_t cls = c->s_sc[s] >> 1;
    int64_t i = cls == 0 ? c->smark_off + s
                         : c->meta_off + c->s_meta[s] + c->nobj2[cls] + (a - (s << c->page_shift)) / c->size[cls];
    if (c->hseg[i] == WHITE) {
        c->hseg[i] = GREY;
        c->dirty[s] = 1;
    }
}

/* (t, cls) for type id tid: a new reference, or NULL with an exception */
static PyObject *type_entry(Ctx *c, int64_t tid) {
    PyObject *e = c->tcache[tid & (NTID - 1)];
    if (e != NULL) {
        Py_INCREF(e);
        return e;
    }
    e = PyObject_CallFunction(c->resolve, "L", (long long)tid);
    if (e == NULL)
        return NULL;
    if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 2) {
        Py_DECREF(e);
        PyErr_SetString(PyExc_TypeError, "cptr: resolve must return (TypeInfo, class or None)");
        return NULL;
    }
    if (c->tcache[tid & (NTID - 1)] == NULL) {
        Py_INCREF(e);
        c->tcache[tid & (NTID - 1)] = e;
        if ((tid & (NTID - 1)) > c->tmax)
            c->tmax = tid & (NTID - 1);
    }
    return e;
}

static int push_slot(Ctx *c, int64_t s) {
    if (c->nslots == c->capslots) {
        Py_ssize_t cap = c->capslots ? 2 * c->capslots : 1024;
        int64_t *v = PyMem_Realloc(c->slots, cap * sizeof(int64_t));
        if (v == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        c->slots = v;
        c->capslots = cap;
    }
    c->slots[c->nslots++] = s;
    return 0;
}

/* make sure a free root slot is there (may call Python): 0, or -1 with an exception.  Slots given
 * back are kept here; the root table grows through Roots.grow, whose chunk we take over. */
static int ensure_slot(Ctx *c) {
    if (c->nslots > 0)
        return 0;
    if (PyList_GET_SIZE(c->free) == 0) {
        PyObject *s = PyObject_CallNoArgs(c->grow);     /* returns one slot, pushes the rest */
        if (s == NULL)
            return -1;
        int r = PyList_Append(c->free, s);
        Py_DECREF(s);
        if (r < 0)
            return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(c->free);
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t s = PyLong_AsLongLong(PyList_GET_ITEM(c->free, i));
        if ((s == -1 && PyErr_Occurred()) || push_slot(c, s) < 0)
            return -1;
    }
    return PyList_SetSlice(c->free, 0, n, NULL);
}

/* take a slot and root a (no Python code runs here) */
static int64_t take_slot(Ctx *c, int64_t a) {
    int64_t s = c->slots[--c->nslots];
    c->tab[s] = a;
    return s;
}

static PyObject *new_handle(Ctx *c, PyTypeObject *cls, PyObject *t) {
    Handle *h = (Handle *)cls->tp_alloc(cls, 0);
    if (h == NULL)
        return NULL;
    if (PyObject_GC_IsTracked((PyObject *)h))
        PyObject_GC_UnTrack(h);    /* see handle_dealloc: no cycle goes through a handle */
    Py_INCREF(t);
    h->t = t;
    Py_INCREF(c);
    h->c = c;
    h->s = -1;
    return (PyObject *)h;
}

static PyObject *ctx_make(Ctx *c, PyObject *args) {
    PyObject *cls, *t;
    long long a;
    if (!PyArg_ParseTuple(args, "O!OL", &PyType_Type, &cls, &t, &a))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)cls, &HandleType)) {
        PyErr_SetString(PyExc_TypeError, "cptr.Ctx.make: not a handle class");
        return NULL;
    }
    if (!c->alive)
        return raise_ended(c);
    /* a is rooted first, as the pure-Python make does: the caller's heap code holds it in a local
     * only, and allocating the handle may run any Python code (CPython's collector and what it
     * calls), which may reach a stop of the world outside the caller's heap frames */
    if (ensure_slot(c) < 0)          /* Roots.grow: heap code */
        return NULL;
    if (!c->alive)
        return raise_ended(c);
    int64_t s = take_slot(c, a);
    PyObject *h = new_handle(c, (PyTypeObject *)cls, t);
    if (h == NULL) {
        if (c->alive) {
            c->tab[s] = 0;
            if (push_slot(c, s) < 0)
                PyErr_Clear();
        }
        return NULL;
    }
    ((Handle *)h)->a = a;
    ((Handle *)h)->s = s;
    return h;
}

/* set_mcache(free, base, tidbase, markbase, stats_off, gen) or set_mcache(None): the P's
 * mcache lists (MCache's own, mutated in place by its refill) */
static PyObject *ctx_set_mcache(Ctx *c, PyObject *args) {
    PyObject *fl = NULL, *base = NULL, *tb = NULL, *mb = NULL;
    long long stats_off = 0, gen = 0;
    if (PyTuple_GET_SIZE(args) == 1 && PyTuple_GET_ITEM(args, 0) == Py_None) {
        drop_mcache(c);
        Py_RETURN_NONE;
    }
    if (!PyArg_ParseTuple(args, "O!O!O!O!LL", &PyList_Type, &fl, &PyList_Type, &base, &PyList_Type, &tb,
                          &PyList_Type, &mb, &stats_off, &gen))
        return NULL;
    if (!c->alive)
        return raise_ended(c);
    drop_mcache(c);
    Py_INCREF(fl);
    c->mfree = fl;
    Py_INCREF(base);
    c->mbase = base;
    Py_INCREF(tb);
    c->mtidbase = tb;
    Py_INCREF(mb);
    c->mmarkbase = mb;
    c->stats = (int64_t *)(c->hseg + stats_off);
    c->mgen = gen;
    c->has_mc = 1;
    Py_RETURN_NONE;
}

/* mcache_state(gen): MCache.sync saw the collector's new phase */
static PyObject *ctx_mcache_state(Ctx *c, PyObject *args) {
    long long gen;
    if (!PyArg_ParseTuple(args, "L", &gen))
        return NULL;
    c->mgen = gen;
    Py_RETURN_NONE;
}

/* set_sched(ctl_mm, attn_off, preempt_off) or set_sched(None): the M's safe-point words */
static PyObject *ctx_set_sched(Ctx *c, PyObject *args) {
    PyObject *mm;
    long long ao = 0, po = 0;
    if (PyTuple_GET_SIZE(args) == 1 && PyTuple_GET_ITEM(args, 0) == Py_None) {
        drop_sched(c);
        Py_RETURN_NONE;
    }
    if (!PyArg_ParseTuple(args, "OLL", &mm, &ao, &po))
        return NULL;
    drop_sched(c);
    if (PyObject_GetBuffer(mm, &c->cbuf, PyBUF_WRITABLE) < 0)
        return NULL;
    if (ao < 0 || po < 0 || ao + 8 > c->cbuf.len || po + 8 > c->cbuf.len) {
        PyBuffer_Release(&c->cbuf);
        PyErr_SetString(PyExc_ValueError, "cptr.Ctx.set_sched: offset out of range");
        return NULL;
    }
    c->attn = (int64_t *)((char *)c->cbuf.buf + ao);
    c->preempt = (int64_t *)((char *)c->cbuf.buf + po);
    c->has_sched = 1;
    Py_RETURN_NONE;
}

/* note_type(T, t, cls, spanclass, tid, objsize): new(T) may take the fast path */
static PyObject *ctx_note_type(Ctx *c, PyObject *args) {
    PyObject *T, *t, *cls;
    long long sc, tid, size;
    if (!PyArg_ParseTuple(args, "OOO!LLL", &T, &t, &PyType_Type, &cls, &sc, &tid, &size))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)cls, &HandleType) || sc < 2 || (sc >> 1) >= c->nclass ||
        tid <= 0 || tid >= NTID) {
        PyErr_SetString(PyExc_ValueError, "cptr.Ctx.note_type: not a small struct type");
        return NULL;
    }
    PyObject *e = Py_BuildValue("(OOLLL)", t, cls, sc, tid, size);
    if (e == NULL)
        return NULL;
    int r = PyDict_SetItem(c->bytype, T, e);
    Py_DECREF(e);
    if (r < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* sweep_small(mb, nobj, size, base): mcentral.sweep_span_locked's loop (its lock held by the
 * caller): every allocated object whose mark byte is white is zeroed, then its type id cleared;
 * every mark byte is cleared.  Returns how many objects were freed. */
static PyObject *ctx_sweep_small(Ctx *c, PyObject *args) {
    long long mb, nobj, size, base;
    if (!PyArg_ParseTuple(args, "LLLL", &mb, &nobj, &size, &base))
        return NULL;
    if (!c->alive)
        return raise_ended(c);
    if (mb <= 0 || nobj <= 0 || size <= 0 || base <= 0 || (mb & 1) ||
        c->meta_off + mb + 3 * nobj > (long long)c->hbuf.len || base + nobj * size > (long long)c->abuf.len) {
        PyErr_SetString(PyExc_ValueError, "cptr.Ctx.sweep_small: span out of range");
        return NULL;
    }
    uint16_t *tids = c->meta + (mb >> 1);
    uint8_t *marks = c->hseg + c->meta_off + mb + 2 * nobj;
    uint8_t *objs = (uint8_t *)c->arena + base;
    long long k = 0;
    for (long long i = 0; i < nobj; i++) {
        if (tids[i] != 0 && marks[i] == WHITE) {
            memset(objs + i * size, 0, (size_t)size);
            __atomic_signal_fence(__ATOMIC_SEQ_CST);    /* zeroed before the slot reads as free */
            tids[i] = 0;
            k++;
        }
        marks[i] = 0;
    }
    return PyLong_FromLongLong(k);
}

static PyObject *ctx_get_sample(Ctx *c, void *closure) { return PyLong_FromLongLong(c->sample_left); }

static int ctx_set_sample(Ctx *c, PyObject *v, void *closure) {
    long long x = v ? PyLong_AsLongLong(v) : -1;
    if (x == -1 && PyErr_Occurred())
        return -1;
    c->sample_left = x;
    return 0;
}

static PyObject *ctx_get_dbg(Ctx *c, void *closure) { return PyBool_FromLong(c->dbg); }

static int ctx_set_dbg(Ctx *c, PyObject *v, void *closure) {
    int x = v ? PyObject_IsTrue(v) : 0;
    if (x < 0)
        return -1;
    c->dbg = x;
    return 0;
}

static PyObject *ctx_close(Ctx *c, PyObject *unused) {
    ctx_release(c);
    Py_RETURN_NONE;
}

static PyObject *ctx_get_alive(Ctx *c, void *closure) { return PyBool_FromLong(c->alive); }

static PyObject *ctx_at(Ctx *c, PyObject *arg);

/* atomic(addr, op, width, signed, a, b): sync/atomic on an aligned word of the arena, shared with
 * every process (the hardware's atomic instructions on the shared mapping).  op: 0 load, 1 store a,
 * 2 add a (the new value), 3 swap a (the old value), 4 compare-and-swap a -> b (whether it did).
 * Values wrap to the word (Go's unsigned arithmetic; a negative delta of an unsigned add is
 * ^uint(-delta-1)); results are read as signed or unsigned words. */
static PyObject *word_value(uint64_t v, int width, int sgn) {
    if (width == 4)
        return sgn ? PyLong_FromLong((int32_t)(uint32_t)v) : PyLong_FromUnsignedLong((uint32_t)v);
    return sgn ? PyLong_FromLongLong((int64_t)v) : PyLong_FromUnsignedLongLong(v);
}

static int word_arg(PyObject *o, uint64_t *v) {
    *v = PyLong_AsUnsignedLongLongMask(o);        /* any int, modulo 2**64 */
    return (*v == (uint64_t)-1 && PyErr_Occurred()) ? -1 : 0;
}

static PyObject *ctx_atomic(Ctx *c, PyObject *args) {
    long long addr;
    int op, width, sgn;
    PyObject *ao, *bo;
    if (!PyArg_ParseTuple(args, "LiipOO", &addr, &op, &width, &sgn, &ao, &bo))
        return NULL;
    if (!c->alive)
        return raise_ended(c);
    if ((width != 4 && width != 8) || op < 0 || op > 4) {
        PyErr_Format(PyExc_ValueError, "cptr.atomic: op %d width %d", op, width);
        return NULL;
    }
    if (addr <= 0 || addr % width || addr + width > (long long)c->abuf.len) {
        PyErr_Format(PyExc_ValueError, "cptr.atomic: address %#llx is not an aligned %d-byte word of the arena",
                     addr, width);
        return NULL;
    }
    uint64_t a = 0, b = 0;
    if (op && word_arg(ao, &a) < 0)
        return NULL;
    if (op == 4 && word_arg(bo, &b) < 0)
        return NULL;
    char *w = (char *)c->arena + addr;
    if (width == 4) {
        uint32_t *p = (uint32_t *)w, x = (uint32_t)a, y = (uint32_t)b;
        switch (op) {
        case 0: return word_value(__atomic_load_n(p, __ATOMIC_SEQ_CST), 4, sgn);
        case 1: __atomic_store_n(p, x, __ATOMIC_SEQ_CST); Py_RETURN_NONE;
        case 2: return word_value(__atomic_add_fetch(p, x, __ATOMIC_SEQ_CST), 4, sgn);
        case 3: return word_value(__atomic_exchange_n(p, x, __ATOMIC_SEQ_CST), 4, sgn);
        default: return PyBool_FromLong(__atomic_compare_exchange_n(p, &x, y, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
        }
    }
    uint64_t *p = (uint64_t *)w;
    switch (op) {
    case 0: return word_value(__atomic_load_n(p, __ATOMIC_SEQ_CST), 8, sgn);
    case 1: __atomic_store_n(p, a, __ATOMIC_SEQ_CST); Py_RETURN_NONE;
    case 2: return word_value(__atomic_add_fetch(p, a, __ATOMIC_SEQ_CST), 8, sgn);
    case 3: return word_value(__atomic_exchange_n(p, a, __ATOMIC_SEQ_CST), 8, sgn);
    default: return PyBool_FromLong(__atomic_compare_exchange_n(p, &a, b, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    }
}

static PyMethodDef ctx_methods[] = {
    {"make", (PyCFunction)ctx_make, METH_VARARGS, "make(cls, t, a): a rooted handle of class cls on address a"},
    {"at", (PyCFunction)ctx_at, METH_O, "at(a): a rooted handle for the object at a (ObjectQueries.ptr_at)"},
    {"close", (PyCFunction)ctx_close, METH_NOARGS, "the heap is gone from this process: no more reads"},
    {"set_mcache", (PyCFunction)ctx_set_mcache, METH_VARARGS, "the P's mcache lists, or None"},
    {"mcache_state", (PyCFunction)ctx_mcache_state, METH_VARARGS, "the mcache's gen after a sync"},
    {"set_sched", (PyCFunction)ctx_set_sched, METH_VARARGS, "the M's safe-point words, or None"},
    {"note_type", (PyCFunction)ctx_note_type, METH_VARARGS, "a small struct type new() may make fast"},
    {"sweep_small", (PyCFunction)ctx_sweep_small, METH_VARARGS, "sweep a small span's slots: how many freed"},
    {"atomic", (PyCFunction)ctx_atomic, METH_VARARGS, "atomic(addr, op, width, signed, a, b): sync/atomic on an arena word"},
    {NULL},
};

static PyGetSetDef ctx_getset[] = {
    {"alive", (getter)ctx_get_alive, NULL, NULL, NULL},
    {"sample_left", (getter)ctx_get_sample, (setter)ctx_set_sample, NULL, NULL},
    {"dbg", (getter)ctx_get_dbg, (setter)ctx_set_dbg, NULL, NULL},
    {NULL},
};

static PyTypeObject CtxType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mprt.shm.cptr.Ctx",
    .tp_basicsize = sizeof(Ctx),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)ctx_init,
    .tp_dealloc = (destructor)ctx_dealloc,
    .tp_traverse = (traverseproc)ctx_traverse,
    .tp_clear = (inquiry)ctx_clear,
    .tp_methods = ctx_methods,
    .tp_getset = ctx_getset,
};

/* ---- Handle ---- */

/* Handles are not tracked by the cyclic collector (instances of heap types are, by default): they
 * refer only to their TypeInfo, their Ctx and their class, none of which refers to a handle, so no
 * cycle goes through one, and a heap of handles costs CPython's collections nothing.  (SlicePtr's
 * _n holds an int.) */
static void handle_dealloc(Handle *h) {
    if (PyType_IS_GC(Py_TYPE(h)))
        PyObject_GC_UnTrack(h);
    Ctx *c = h->c;
    if (c != NULL && c->alive && h->s >= 0) {
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        c->tab[h->s] = 0;
        if (push_slot(c, h->s) < 0)
            PyErr_Clear();          /* the slot is lost to this process, never reused: harmless */
        PyErr_Restore(et, ev, tb);
    }
    Py_CLEAR(h->t);
    Py_CLEAR(h->c);
    Py_TYPE(h)->tp_free((PyObject *)h);
}

static PyMemberDef handle_members[] = {
    {"_a", T_LONGLONG, offsetof(Handle, a), READONLY, NULL},
    {"_s", T_LONGLONG, offsetof(Handle, s), READONLY, NULL},
    {"_t", T_OBJECT, offsetof(Handle, t), READONLY, NULL},
    {NULL},
};

static PyTypeObject HandleType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mprt.shm.cptr.Handle",
    .tp_basicsize = sizeof(Handle),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_dealloc = (destructor)handle_dealloc,
    .tp_members = handle_members,
};

/* ---- PtrField ---- */

static int field_traverse(PtrField *f, visitproc visit, void *arg) {
    Py_VISIT(f->c);
    Py_VISIT(f->bad);
    Py_VISIT(f->doc);
    return 0;
}

static int field_clear(PtrField *f) {
    Py_CLEAR(f->c);
    Py_CLEAR(f->bad);
    Py_CLEAR(f->doc);
    return 0;
}

static void field_dealloc(PtrField *f) {
    PyObject_GC_UnTrack(f);
    field_clear(f);
    Py_TYPE(f)->tp_free((PyObject *)f);
}

/* PtrField(ctx, offset, bad, doc) */
static int field_init(PtrField *f, PyObject *args, PyObject *kw) {
    PyObject *c, *bad, *doc;
    long long off;
    if (!PyArg_ParseTuple(args, "O!LOO", &CtxType, &c, &off, &bad, &doc))
        return -1;
    if (off < 0 || off % 8) {
        PyErr_SetString(PyExc_ValueError, "cptr.PtrField: bad offset");
        return -1;
    }
    Py_INCREF(c);
    Py_XSETREF(f->c, (Ctx *)c);
    f->off = off;
    Py_INCREF(bad);
    Py_XSETREF(f->bad, bad);
    Py_INCREF(doc);
    Py_XSETREF(f->doc, doc);
    return 0;
}

static PyObject *field_get(PtrField *f, PyObject *obj, PyObject *type) {
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(f);
        return (PyObject *)f;
    }
    if (!PyObject_TypeCheck(obj, &HandleType)) {
        PyErr_SetString(PyExc_TypeError, "cptr.PtrField: not a heap handle");
        return NULL;
    }
    Ctx *c = f->c;
    int64_t at = ((Handle *)obj)->a + f->off;
    for (;;) {
        if (!c->alive)
            return raise_ended(c);
        int64_t a = c->arena[at >> 3];
        if (a == 0)
            Py_RETURN_NONE;
        int64_t tid = tid_at(c, a);
        PyObject *e = type_entry(c, tid);                  /* may run Python */
        if (e == NULL)
            return NULL;
        PyObject *t = PyTuple_GET_ITEM(e, 0), *cls = PyTuple_GET_ITEM(e, 1);
        if (cls == Py_None) {
            /* a slice (its handle keeps its length): TypeInfo.make, heap code in Python */
            PyObject *r = PyObject_CallMethod(t, "make", "L", (long long)a);
            Py_DECREF(e);
            return r;
        }
        PyObject *h = new_handle(c, (PyTypeObject *)cls, t);   /* may run Python */
        Py_DECREF(e);
        if (h == NULL)
            return NULL;
        if (ensure_slot(c) < 0) {                           /* may run Python */
            Py_DECREF(h);
            return NULL;
        }
        if (!c->alive) {
            Py_DECREF(h);
            return raise_ended(c);
        }
        /* from here to the slot's write, no Python code: read the field again (it may have been
         * written meanwhile), and root what it holds now */
        int64_t a2 = c->arena[at >> 3];
        if (a2 == 0) {
            Py_DECREF(h);
            Py_RETURN_NONE;
        }
        if (a2 != a && tid_at(c, a2) != tid) {
            Py_DECREF(h);
            continue;
        }
        ((Handle *)h)->a = a2;
        ((Handle *)h)->s = take_slot(c, a2);
        return h;
    }
}

/* Ctx.at(a): a handle for the object that starts at a, an address the runtime stored and keeps
 * reachable meanwhile (a goroutine's or a channel slot's pointer words, cleared by the caller once
 * the handles exist): ObjectQueries.ptr_at */
static PyObject *ctx_at(Ctx *c, PyObject *arg) {
    long long a = PyLong_AsLongLong(arg);
    if (a == -1 && PyErr_Occurred())
        return NULL;
    if (!c->alive)
        return raise_ended(c);
    int64_t tid = tid_at(c, a);
    PyObject *e = type_entry(c, tid);                  /* may run Python */
    if (e == NULL)
        return NULL;
    PyObject *t = PyTuple_GET_ITEM(e, 0), *cls = PyTuple_GET_ITEM(e, 1);
    if (cls == Py_None) {           /* a slice: TypeInfo.make */
        PyObject *r = PyObject_CallMethod(t, "make", "L", a);
        Py_DECREF(e);
        return r;
    }
    PyObject *h = new_handle(c, (PyTypeObject *)cls, t);   /* may run Python */
    Py_DECREF(e);
    if (h == NULL)
        return NULL;
    if (ensure_slot(c) < 0) {                           /* may run Python */
        Py_DECREF(h);
        return NULL;
    }
    if (!c->alive) {
        Py_DECREF(h);
        return raise_ended(c);
    }
    ((Handle *)h)->a = a;
    ((Handle *)h)->s = take_slot(c, a);
    return h;
}

static int field_set(PtrField *f, PyObject *obj, PyObject *v) {
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete a struct field");
        return -1;
    }
    if (!PyObject_TypeCheck(obj, &HandleType)) {
        PyErr_SetString(PyExc_TypeError, "cptr.PtrField: not a heap handle");
        return -1;
    }
    Ctx *c = f->c;
    int64_t a;
    if (v == Py_None) {
        a = 0;
    } else if (PyObject_TypeCheck(v, &HandleType) && ((Handle *)v)->c == c) {
        a = ((Handle *)v)->a;
    } else {
        PyObject *r = PyObject_CallOneArg(f->bad, v);        /* raises */
        if (r == NULL)
            return -1;
        Py_DECREF(r);
        PyErr_Format(PyExc_TypeError, "mprt: cannot store %R in a pointer field", v);
        return -1;
    }
    if (!c->alive) {
        raise_ended(c);
        return -1;
    }
    int64_t w = (((Handle *)obj)->a + f->off) >> 3;
    if (*c->gcphase) {
        shade(c, c->arena[w]);
        shade(c, a);
    }
    c->arena[w] = a;
    return 0;
}

static PyObject *field_get_doc(PtrField *f, void *closure) {
    Py_INCREF(f->doc);
    return f->doc;
}

static PyGetSetDef field_getset[] = {
    {"__doc__", (getter)field_get_doc, NULL, NULL, NULL},
    {NULL},
};

static PyTypeObject PtrFieldType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mprt.shm.cptr.PtrField",
    .tp_basicsize = sizeof(PtrField),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)field_init,
    .tp_dealloc = (destructor)field_dealloc,
    .tp_traverse = (traverseproc)field_traverse,
    .tp_clear = (inquiry)field_clear,
    .tp_descr_get = (descrgetfunc)field_get,
    .tp_descr_set = (descrsetfunc)field_set,
    .tp_getset = field_getset,
};

/* ---- new ---- */

static Ctx *cur;             /* the heap this process is attached to (malloc._cur), or NULL */
static PyObject *slow_new;   /* malloc's Python new(T, safepoint): everything the fast path is not */
static PyObject *profile;    /* (addr, size): the heap profile's sample is due (malloc._profilealloc) */
static PyObject *stop_hook;  /* (): a stop of the world is due; take it here if it can be (csched.alloc_stop) */

static PyObject *mod_set_hooks(PyObject *mod, PyObject *args) {
    PyObject *s, *p, *st = Py_None;
    if (!PyArg_ParseTuple(args, "OO|O", &s, &p, &st))
        return NULL;
    Py_INCREF(s);
    Py_XSETREF(slow_new, s);
    Py_INCREF(p);
    Py_XSETREF(profile, p);
    Py_XINCREF(st == Py_None ? NULL : st);
    Py_XSETREF(stop_hook, st == Py_None ? NULL : st);
    Py_RETURN_NONE;
}

static PyObject *mod_set_current(PyObject *mod, PyObject *c) {
    if (c != Py_None && !PyObject_TypeCheck(c, &CtxType)) {
        PyErr_SetString(PyExc_TypeError, "cptr.set_current: a Ctx or None");
        return NULL;
    }
    Py_XINCREF(c == Py_None ? NULL : c);
    Py_XSETREF(cur, c == Py_None ? NULL : (Ctx *)c);
    Py_RETURN_NONE;
}

static inline int64_t list_int(PyObject *l, Py_ssize_t i) {
    return PyLong_AsLongLong(PyList_GET_ITEM(l, i));
}

/* the fast path's conditions: a P's mcache of this GC phase with a free object of class sc, and no
 * safe point due */
static inline int fast_ok(Ctx *c, int64_t sc, int safepoint) {
    if (!c->alive || !c->has_mc || c->dbg || *c->gcgen != c->mgen)
        return 0;
    if (safepoint && (!c->has_sched || *c->attn || *c->preempt))
        return 0;
    if (sc >= PyList_GET_SIZE(c->mfree))
        return 0;
    return PyList_GET_SIZE(PyList_GET_ITEM(c->mfree, sc)) > 0;
}

/* new(T, safepoint=True): malloc.new, with the common case here (see malloc.new) */
static PyObject *mod_new(PyObject *mod, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    Ctx *c = cur;
    PyObject *T = nargs > 0 ? args[0] : NULL;
    int safepoint = 1;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs == 2 && nkw == 0)
        safepoint = PyObject_IsTrue(args[1]);
    else if (nargs == 1 && nkw == 1 && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "safepoint") == 0)
        safepoint = PyObject_IsTrue(args[1]);
    else if (nargs != 1 || nkw != 0)
        c = NULL;            /* anything unusual: the Python new says what is wrong */
    if (safepoint < 0)
        return NULL;
    if (c == NULL || profile == NULL)
        goto slow;
    PyObject *e = PyDict_GetItemWithError(c->bytype, T);
    if (e == NULL) {
        PyErr_Clear();       /* not seen yet, or unhashable: the slow path */
        goto slow;
    }
    PyObject *t = PyTuple_GET_ITEM(e, 0), *cls = PyTuple_GET_ITEM(e, 1);
    int64_t sc = PyLong_AsLongLong(PyTuple_GET_ITEM(e, 2));
    int64_t tid = PyLong_AsLongLong(PyTuple_GET_ITEM(e, 3));
    int64_t objsize = PyLong_AsLongLong(PyTuple_GET_ITEM(e, 4));
    if (!fast_ok(c, sc, safepoint)) {
        /* a stop of the world due: taken from here, where the caller's frame is the program's (the
         * slow path's Python entry, cold by then, would add its call to the stop's pause) */
        if (safepoint && stop_hook && c->has_sched && *c->attn) {
            PyObject *r = PyObject_CallNoArgs(stop_hook);
            if (r == NULL)
                return NULL;
            Py_DECREF(r);
        }
        goto slow;
    }
    Py_INCREF(e);            /* t and cls stay alive while Python may run */
    Py_INCREF(c);
    PyObject *h = new_handle(c, (PyTypeObject *)cls, t);      /* may run Python */
    if (h == NULL || ensure_slot(c) < 0) {                     /* may run Python */
        Py_XDECREF(h);
        Py_DECREF(e);
        Py_DECREF(c);
        return NULL;
    }
    Py_DECREF(e);
    if (!fast_ok(c, sc, safepoint)) {     /* Python ran: the phase, the mcache or a safe point changed */
        Py_DECREF(h);
        Py_DECREF(c);
        goto slow;
    }
    /* from here on no Python code: the object's index, its type id and mark, its address rooted */
    PyObject *fl = PyList_GET_ITEM(c->mfree, sc);
    Py_ssize_t n = PyList_GET_SIZE(fl);
    PyObject *item = PyList_GET_ITEM(fl, n - 1);
    int64_t i = PyLong_AsLongLong(item);
    Py_SET_SIZE(fl, n - 1);
    Py_DECREF(item);
    int64_t cls_ = sc >> 1;
    c->meta[list_int(c->mtidbase, sc) + i] = (uint16_t)tid;
    if (*c->gcphase)      /* the phase word, as alloc_small reads it */
        c->hseg[list_int(c->mmarkbase, sc) + i] = 2;   /* BLACK: allocated during the mark */
    c->stats[cls_] += 1;                                /* the row's PS_NMALLOC + size class */
    int64_t a = list_int(c->mbase, sc) + i * c->size[cls_];
    ((Handle *)h)->a = a;
    ((Handle *)h)->s = take_slot(c, a);
    c->sample_left -= objsize;
    if (c->sample_left < 0) {
        PyObject *r = PyObject_CallFunction(profile, "LL", (long long)a, (long long)objsize);
        if (r == NULL) {
            Py_DECREF(h);
            Py_DECREF(c);
            return NULL;
        }
        Py_DECREF(r);
    }
    Py_DECREF(c);
    return h;
slow:
    if (slow_new == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "mprt: the allocator's C path has no Python new");
        return NULL;
    }
    return PyObject_Vectorcall(slow_new, args, nargs, kwnames);
}

static PyMethodDef mod_methods[] = {
    {"set_current", (PyCFunction)mod_set_current, METH_O, "the Ctx of the heap this process is attached to, or None"},
    {"set_hooks", (PyCFunction)mod_set_hooks, METH_VARARGS,
     "(the Python new, the heap profile's sample[, the stop of the world's hook])"},
    {"new", (PyCFunction)(void (*)(void))mod_new, METH_FASTCALL | METH_KEYWORDS,
     "new(T, safepoint=True): a zeroed object of struct type T (malloc.new)"},
    {NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "cptr", NULL, -1, mod_methods};

PyMODINIT_FUNC PyInit_cptr(void) {
    if (PyType_Ready(&CtxType) < 0 || PyType_Ready(&HandleType) < 0 || PyType_Ready(&PtrFieldType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&CtxType);
    Py_INCREF(&HandleType);
    Py_INCREF(&PtrFieldType);
    if (PyModule_AddObject(m, "Ctx", (PyObject *)&CtxType) < 0 ||
        PyModule_AddObject(m, "Handle", (PyObject *)&HandleType) < 0 ||
        PyModule_AddObject(m, "PtrField", (PyObject *)&PtrFieldType) < 0)
        return NULL;
    return m;
}
