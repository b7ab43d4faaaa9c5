/* The collector's drain in C (mprt/gc/mgcmark.py, Marker.drain): the same walk as the vectorised
 * numpy scan, object by object with a stack, for the mark rate a numpy call per level cannot reach.
 *
 * drain(queue, head, tail, budget, arrays..., types, resolve) -> (head, tail, objects, bytes)
 *
 * `queue` (a bytearray of int64 addresses, native order) holds in entries [head, tail) the black
 * objects still to scan; the caller writes newly blackened ones from `tail` on.  The bytearray is
 * the queue's storage, kept from cycle to cycle: it only grows (doubling), so that a cycle neither
 * reallocates it nor takes a page fault per 512 entries on memory the last cycle already touched.  Each object's
 * span, size class, size and type id are read from the heap's page and span arrays; its pointer
 * words (a struct's pointer offsets, or every element of a pointer slice) are read from the arena,
 * and every child inside the arena whose mark byte is not BLACK is made BLACK and queued (first in,
 * first out: breadth first, so that objects allocated together are scanned together).  It stops
 * when the queue is empty or `budget` objects (> 0) were scanned; the queue is left holding what
 * is still to scan in the returned [head, tail) (0, 0 when nothing is).  Type ids are looked up in the dict `types` (tid -> (kind,
 * offsets as bytes of int64)); a tid not there is asked of `resolve(tid)`, which returns that pair
 * (kind 1: struct, 2: pointer slice, 3: no pointers).  The arrays are the same shared memory the
 * Ms write meanwhile (mark bytes greyed by the write barrier are found later through dirty spans):
 * every read is of one aligned word or byte, as the numpy scan's.
 *
 * Pure Python stays the reference: MPRT_ACCEL=0 turns this off, and CI runs the tests both ways.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <limits.h>

#define BLACK 2
#define K_STRUCT 1
#define K_PTRS 2
#define PF_DIST 16



/* the queue: int64 addresses in a bytearray the Marker keeps between calls and cycles (so a
 * batch's leftover is not copied out and in again); entries [head, tail) are still to scan, the
 * bytearray's length is its capacity */
typedef struct {
    PyObject *ba;
    int64_t *v;
    Py_ssize_t head, tail, cap;
} queue_t;

static int push(queue_t *q, int64_t a) {
    if (q->tail == q->cap) {
        if (q->head > 0 && q->head * 2 >= q->tail) {   /* room at the front: compact */
            memmove(q->v, q->v + q->head, (q->tail - q->head) * sizeof(int64_t));
            q->tail -= q->head;
            q->head = 0;
        } else {
            Py_ssize_t cap = q->cap < 4096 ? 8192 : q->cap * 2;
            if (PyByteArray_Resize(q->ba, cap * (Py_ssize_t)sizeof(int64_t)) < 0)
                return -1;
            q->v = (int64_t *)PyByteArray_AS_STRING(q->ba);
            q->cap = cap;
        }
    }
    q->v[q->tail++] = a;
    return 0;
}

static int get_buf(PyObject *o, Py_buffer *b, int writable, const char *what) {
    if (PyObject_GetBuffer(o, b, writable ? PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS : PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Format(PyExc_TypeError, "cmark.drain: %s is not a contiguous buffer", what);
        return -1;
    }
    return 0;
}

/* the type of tid: kind and pointer offsets (borrowed from the dict's entry) */
static int type_of(PyObject *types, PyObject *resolve, int64_t tid, long *kind, const int64_t **offs,
                   Py_ssize_t *noffs) {
    PyObject *key = PyLong_FromLongLong(tid);
    if (!key)
        return -1;
    PyObject *ent = PyDict_GetItemWithError(types, key);
    if (!ent) {
        if (PyErr_Occurred()) {
            Py_DECREF(key);
            return -1;
        }
        PyObject *r = PyObject_CallFunction(resolve, "L", (long long)tid);
        if (!r) {
            Py_DECREF(key);
            return -1;
        }
        int bad = PyDict_SetItem(types, key, r);
        Py_DECREF(r);
        if (bad) {
            Py_DECREF(key);
            return -1;
        }
        ent = PyDict_GetItemWithError(types, key);
    }
    Py_DECREF(key);
    if (!ent || !PyTuple_Check(ent) || PyTuple_GET_SIZE(ent) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(ent, 1))) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "cmark.drain: a type entry is not (kind, bytes)");
        return -1;
    }
    *kind = PyLong_AsLong(PyTuple_GET_ITEM(ent, 0));
    PyObject *b = PyTuple_GET_ITEM(ent, 1);
    *offs = (const int64_t *)PyBytes_AS_STRING(b);
    *noffs = PyBytes_GET_SIZE(b) / 8;
    return 0;
}

/* what the drain needs of the heap's page and span tables */
typedef struct {
    const int32_t *spanof, *s_np, *s_tid;
    const int16_t *s_sc;
    const int64_t *s_meta, *size, *nobj2;
    const uint64_t *divmul;
    Py_ssize_t npages, nspans, nclass;
    int64_t meta_off, smark_off;
    int page_shift;
} layout_t;

/* one page's span, as the drain uses it: for a small size class, its objects' size, the
 * multiplier of an object's index (Go's divMagic), the index of its first type id in the meta
 * tids (uint16) and of its first mark byte; for a large span, its size, its type id and its
 * mark byte (mul 0) */
typedef struct {
    int64_t page, start, size, tids, marks;
    uint64_t mul;
} pagec_t;

static int page_info(pagec_t *c, int64_t page, const layout_t *L) {
    if (page < 0 || page >= L->npages)
        return -1;
    int64_t s = L->spanof[page];
    if (s < 0 || s >= L->nspans)
        return -1;
    int64_t k = L->s_sc[s] >> 1;
    c->start = s << L->page_shift;
    if (k > 0 && k < L->nclass) {
        if (L->s_meta[s] == 0)
            return -1;                  /* a span still being carved: none of its objects exists yet */
        c->size = L->size[k];
        c->mul = L->divmul[k];
        c->tids = L->s_meta[s] >> 1;
        c->marks = L->meta_off + L->s_meta[s] + L->nobj2[k];
    } else {
        c->size = (int64_t)L->s_np[s] << L->page_shift;
        c->mul = 0;
        c->tids = L->s_tid[s];
        c->marks = L->smark_off + s;
    }
    c->page = page;
    return 0;
}

static PyObject *drain(PyObject *self, PyObject *args) {
    PyObject *ba, *spanof_o, *ssc_o, *snp_o, *stid_o, *smeta_o, *mtid_o, *arena_o, *marks_o, *size_o,
        *nobj2_o, *types, *resolve;
    long long budget, meta_off, smark_off, limit, head0, tail0;
    int page_shift;
    if (!PyArg_ParseTuple(args, "O!LLLOOOOOOOOLLLiOOOO", &PyByteArray_Type, &ba, &head0, &tail0, &budget, &spanof_o, &ssc_o,
                          &snp_o, &stid_o, &smeta_o, &mtid_o, &arena_o, &marks_o, &meta_off, &smark_off, &limit,
                          &page_shift, &size_o, &nobj2_o, &types, &resolve))
        return NULL;
    if (!PyDict_Check(types)) {
        PyErr_SetString(PyExc_TypeError, "cmark.drain: types is not a dict");
        return NULL;
    }
    Py_buffer bspan, bsc, bnp, btid, bmeta, bmtid, barena, bmarks, bsize, bnobj2;
    Py_buffer *all[] = {&bspan, &bsc, &bnp, &btid, &bmeta, &bmtid, &barena, &bmarks, &bsize, &bnobj2};
    PyObject *objs[] = {spanof_o, ssc_o, snp_o, stid_o, smeta_o, mtid_o, arena_o, marks_o, size_o, nobj2_o};
    const char *names[] = {"spanof", "s_sc", "s_npages", "s_tid", "s_meta", "meta_tid", "arena", "marks",
                           "sizes", "nobj2"};
    int got = 0;
    for (; got < 10; got++)
        if (get_buf(objs[got], all[got], got == 7, names[got]) < 0)
            break;
    PyObject *result = NULL;
    queue_t st;
    st.ba = ba;
    st.v = (int64_t *)PyByteArray_AS_STRING(ba);
    st.cap = PyByteArray_GET_SIZE(ba) / (Py_ssize_t)sizeof(int64_t);
    st.tail = tail0 < 0 ? 0 : (tail0 > st.cap ? st.cap : tail0);
    st.head = head0 < 0 ? 0 : (head0 > st.tail ? st.tail : head0);
    if (got < 10)
        goto done;
    {
        const int32_t *spanof = bspan.buf;
        const int16_t *s_sc = bsc.buf;
        const int32_t *s_np = bnp.buf;
        const int32_t *s_tid = btid.buf;
        const int64_t *s_meta = bmeta.buf;
        const uint16_t *meta_tid = bmtid.buf;
        const int64_t *arena = barena.buf;
        uint8_t *marks = bmarks.buf;
        const int64_t *size = bsize.buf;
        const int64_t *nobj2 = bnobj2.buf;
        Py_ssize_t nclass = bsize.len / 8;
        /* an object's index in its span by multiplication, as Go's divMagic: exact below a span's size */
        uint64_t divmul[256];
        if (nclass > 256)
            nclass = 256;
        for (Py_ssize_t k = 0; k < nclass; k++)
            divmul[k] = size[k] > 0 ? (uint64_t)(0xFFFFFFFFu / (uint32_t)size[k]) + 1 : 0;
        Py_ssize_t npage_arr = bspan.len / 4, nspan_arr = bsc.len / 2;
        Py_ssize_t nmarks = bmarks.len, nmeta = bmtid.len / 2;
        int64_t arena_words = barena.len / 8;
        if (limit > arena_words * 8)
            limit = arena_words * 8;
        layout_t L = {spanof, s_np, s_tid, s_sc, s_meta, size, nobj2, divmul, npage_arr, nspan_arr, nclass,
                      meta_off, smark_off, page_shift};
        long long nobjs = 0, nbytes = 0;
        int64_t last_tid = -1;
        long kind = 0;
        const int64_t *offs = NULL;
        Py_ssize_t noffs = 0;
        /* the last page looked up, on each side (the objects scanned, the children marked): a
         * breadth-first walk meets the objects of one page together, and a page that holds a
         * reachable object keeps its span until the mark ends (spans are freed by the sweep only).
         * Kept in locals, not structs, and the queue's ends too: the loop's state stays in
         * registers (as struct fields and queue_t members, whose addresses the calls take, every
         * object paid loads and stores through the stack: 17 ns an object, 4x a plain BFS) */
        int64_t p_page = -1, p_start = 0, p_size = 0, p_tids = 0;
        uint64_t p_mul = 0;
        int64_t c_page = -1, c_start = 0, c_marks = 0;
        uint64_t c_mul = 0;
        int64_t *qv = st.v;
        Py_ssize_t head = st.head, tail = st.tail, cap = st.cap;
        long long most = budget > 0 ? budget : LLONG_MAX;
        while (head < tail && nobjs < most) {
            int64_t a = qv[head++];      /* first in, first out: breadth first, in the order found */
            if (head + PF_DIST < tail) {      /* the words of an object scanned soon */
                int64_t ahead = qv[head + PF_DIST];
                if (ahead > 0 && ahead < limit)
                    __builtin_prefetch(&arena[ahead >> 3]);
            }
            if (a <= 0 || a >= limit)
                continue;
            if ((a >> page_shift) != p_page) {
                pagec_t t;
                if (page_info(&t, a >> page_shift, &L) < 0)
                    continue;
                p_page = t.page, p_start = t.start, p_size = t.size, p_tids = t.tids, p_mul = t.mul;
            }
            int64_t tid, end;
            nobjs++;
            if (p_mul) {
                int64_t mi = p_tids + (int64_t)(((uint64_t)(a - p_start) * p_mul) >> 32);
                if (mi < 0 || mi >= nmeta)
                    continue;
                tid = meta_tid[mi];
                end = a + p_size;
            } else {
                tid = p_tids;
                end = p_start + p_size;
            }
            nbytes += p_size;
            if (tid == 0)
                continue;
            if (tid != last_tid) {
                if (type_of(types, resolve, tid, &kind, &offs, &noffs) < 0)
                    goto done;
                last_tid = tid;
            }
            Py_ssize_t nk;
            const int64_t *base;
            if (kind == K_STRUCT) {
                nk = noffs;
                base = offs;
            } else if (kind == K_PTRS) {
                if (end - 8 >= limit)
                    continue;
                nk = arena[(end - 8) >> 3];
                if (nk < 0 || a + nk * 8 > end - 8)
                    continue;
                base = NULL;
            } else {
                continue;
            }
            /* a child: made BLACK and queued if it is an object of the arena not yet BLACK */
#define CHILD(SLOT)                                                                                  \
    do {                                                                                             \
        int64_t ch = arena[(SLOT) >> 3];                                                             \
        if (ch <= 0 || ch >= limit)                                                                  \
            break;                                                                                   \
        if ((ch >> page_shift) != c_page) {                                                          \
            pagec_t t;                                                                               \
            if (page_info(&t, ch >> page_shift, &L) < 0)                                             \
                break;                                                                               \
            c_page = t.page, c_start = t.start, c_marks = t.marks, c_mul = t.mul;                    \
        }                                                                                            \
        int64_t mb = c_marks + (c_mul ? (int64_t)(((uint64_t)(ch - c_start) * c_mul) >> 32) : 0);    \
        if (mb < 0 || mb >= nmarks || marks[mb] == BLACK)                                            \
            break;                                                                                   \
        marks[mb] = BLACK;                                                                           \
        if (tail == cap) {                                                                           \
            st.head = head, st.tail = tail;                                                          \
            if (push(&st, ch) < 0)                                                                   \
                goto done;                                                                           \
            qv = st.v, head = st.head, tail = st.tail, cap = st.cap;                                 \
        } else {                                                                                     \
            qv[tail++] = ch;                                                                         \
        }                                                                                            \
    } while (0)
            /* two pointer words (a tree's or a list's node) unrolled: the loop's exit branch, taken
             * every other word, cost a quarter of the drain */
            if (base && nk == 2) {
                int64_t o0 = base[0], o1 = base[1];
                CHILD(a + o0);
                CHILD(a + o1);
            } else {
                for (Py_ssize_t k = 0; k < nk; k++)
                    CHILD(base ? a + base[k] : a + 8 * k);
            }
#undef CHILD
        }
        st.head = head, st.tail = tail;
        if (st.head == st.tail)
            st.head = st.tail = 0;
        result = Py_BuildValue("nnLL", st.head, st.tail, nobjs, nbytes);
    }
done:
    for (int i = 0; i < got; i++)
        PyBuffer_Release(all[i]);
    return result;
}

/* any_nonzero(buffer, n): whether any of the first n bytes is not zero (Marker.collect_dirty's look
 * at the dirty flags of every span, at mark termination with the world stopped: most often none is;
 * numpy's compare and flatnonzero over all spans took ~10 us there).  Reads bytes other processes
 * write: a flag set after its byte was read is found at the next look, as with numpy's copy. */
static PyObject *any_nonzero(PyObject *self, PyObject *args) {
    Py_buffer b;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "y*n", &b, &n))
        return NULL;
    if (n > b.len)
        n = b.len;
    const volatile uint8_t *p = (const volatile uint8_t *)b.buf;
    int found = 0;
    for (Py_ssize_t i = 0; i < n && !found; i++)
        found = p[i] != 0;
    PyBuffer_Release(&b);
    return PyBool_FromLong(found);
}

static PyMethodDef methods[] = {
    {"drain", drain, METH_VARARGS, "The collector's drain: see the module's comment."},
    {"any_nonzero", any_nonzero, METH_VARARGS, "any_nonzero(buffer, n): whether any of its first n bytes is not 0"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "cmark", NULL, -1, methods};

PyMODINIT_FUNC PyInit_cmark(void) { return PyModule_Create(&module); }
