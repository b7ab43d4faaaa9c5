/* The goroutine's life in C where users' code spends it: go() (proc.go and _put_new: Go's newproc
 * for `go(worker, wg, i)`: a function, a handle and an int), the start of a goroutine from its row
 * (payload: schedule._payload), its end and the next one's start in the same greenlet (exit_next:
 * schedule._goexit0's fast path with execute_mark and _start_here), WaitGroup.done's common
 * case (wg_done: sema.WaitGroup.done), and the stop of the world where its pause is spent (an M's
 * stop at an allocation, the stopper's request and restart: stw.py; see that section below).  Each does the common case whole or nothing at all: None or
 * False with nothing taken sends the caller down the Python path, which stays the reference.
 * Locks are taken with a try and held only where no Python code runs, so no signal can stop an M
 * that holds one; the P's and an object's locks are the Python path's (segment.Lock).
 *
 * go(fn, *args): takes a free G row of the current M, a goroutine id and the creation site, and
 * writes the row as the Python path does: the function's pickle (msg.FN_CACHE, or proc._fn_payload
 * for the by-value cache of functions defined in __main__), the arguments in typed words
 * (msg.encode_typed: ints, floats, None, bools, short str/bytes, Ptrs and the runtime's handles),
 * the heap pointers in the row's pointer words, then the payload's length and pointer count last
 * (the collector reads rows while they are written: a word it counts must hold this goroutine's
 * pointer already) and the status.  Then runqput(p, g, next=True) under the P's lock, taken with a
 * try and held only where no Python code runs; wakep and the safe point in Python when due.
 *
 * Everything else is proc.go's, called with the same arguments: keyword arguments, a
 * running mark (the barrier's shading), an argument that needs a pickle, a payload longer than the
 * row, a creation site not seen yet (go enters it), any Exception on the way (cleared: the
 * Python path meets it again and reports it with its own frames).  An exception that is not an
 * Exception (what a signal handler raised in Python code called from here: KeyboardInterrupt, the
 * runtime's Terminated) propagates.
 *
 * From the first write to the row to its last no Python code runs (no callback, no allocation
 * of a tracked object), so no signal handler can stop this M with the row half made; before it,
 * Python may run (the pickle, a batch of free rows or ids, a lock's first opening): nothing is
 * taken yet.
 *
 * Pure Python stays the reference: MPRT_ACCEL=0 turns this off, and CI runs the tests both ways.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <semaphore.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

static PyObject *fn_cache, *nocache, *wire_code, *ptr_type, *mstate_dict, *go_py, *put_py, *runqput_py, *wakep_py,
    *safepoint_py, *fnpay_py, *zero, *fn_dec, *wire_class, *shade_py;
static PyObject *s_gfree, *s_goid_next, *s_goid_end, *s_curgoid, *s_sites, *s_row, *s_mv8, *s_ctl, *s_gbase,
    *s_a, *s_p, *s__m, *s_tracing, *s_tgo, *s_tbase, *s_heap, *s_gcq, *s_p_idx, *s_pbase, *s_sched, *s_plocks, *s_acquire_raw,
    *s_release, *s_cx, *s_at, *s_wire_fields, *s_lockedg, *s_localq, *s_timers, *s_greenlets, *s_tick, *s_id, *s_curg;

enum { C_TYPED, C_TYPED_MAX, C_G_WORDS, C_G_GOID, C_G_PARENT, C_G_SITE, C_G_FNLEN, C_G_INLINE, C_G_INLINE_BYTES,
       C_G_NPTRS, C_G_PTR0, C_G_PAYLEN, C_G_NPTR, C_G_STATUS, C_G_RUNNABLE, C_M_GCREATED, C_NONE, C_P_WORDS,
       C_P_RUNNEXT, C_P_RQHEAD, C_P_RQTAIL, C_P_RUNQ, C_RUNQ, C_S_NPIDLE, C_S_NMSPINNING, C_S_ATTN, C_M_PREEMPT,
       C_GC_PHASE, C_G_LABELS, C_TRACEBUF_WORDS, C_TB_HDR, C_EV_GOEND, C_EV_GOSTART, C_N };
/* payload(m, g)'s constants (setup_payload) */
enum { D_G_WORDS, D_G_PAYLEN, D_G_NPTR, D_G_FNLEN, D_G_INLINE, D_G_PTR0, D_GC_PHASE, D_TYPED, D_N };
static long long D[D_N];
static int dready;
/* exit_next(m, g)'s constants (setup_exit) */
enum { E_G_WORDS, E_G_STATUS, E_G_LOCKEDM, E_G_M, E_G_GOID, E_G_DEAD, E_G_RUNNING, E_M_GEXITED, E_M_NLIVE,
       E_M_RQHEAD, E_M_PREEMPT, E_M_GCSCAN, E_M_CURG, E_S_ATTN, E_P_WORDS, E_P_RUNNEXT, E_P_RQHEAD, E_P_RQTAIL,
       E_P_RUNQ, E_P_SCHEDTICK, E_RUNQ, E_NONE, E_FAIRNESS, E_GFREE_MAX, E_N };
static long long E[E_N];
static int eready;
static PyObject *gput_py, *start_here_py, *refill_py;
static PyObject *trace_go_py;       /* proc._trace_go: a traced go's GoCreate event (set_trace_hook) */
/* wg_done(wg)'s constants and hooks (setup_wg) */
static long long W_NLOCKS, W_STATE, W_S_ATTN, W_M_PREEMPT;
static int wready;
static PyObject *wg_safepoint_py, *s_o, *s__h, *s__w, *s__a, *s_mvq;
static long long K[C_N];
static int ready;
static long long nfast;        /* goroutines started here (tests check that the fast path ran) */
static long long npay;         /* goroutines whose payload was read here */
static long long nexit;        /* goroutines that ended here with the next one started by exit_next */
static long long nwg;          /* WaitGroup.done calls done by wg_done */

#define BUF_MAX 4096

/* after a failure: an Exception is cleared (the Python path will meet it again and say it where the
 * program sees it: 0); anything else (KeyboardInterrupt, SystemExit, the runtime's Terminated, a
 * greenlet's exit: what a signal handler raised in Python code called from here) stays set: -1 */
static int clear_exception(void) {
    if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Clear();
        return 0;
    }
    return -1;
}

static int64_t addr_of(PyObject *p) {      /* a Ptr's address (_a), or -1 */
    PyObject *a = PyObject_GetAttr(p, s_a);
    if (!a)
        return -1;
    int64_t v = PyLong_AsLongLong(a);
    Py_DECREF(a);
    return v;
}

static int64_t attr_int(PyObject *o, PyObject *name) {
    PyObject *a = PyObject_GetAttr(o, name);
    if (!a)
        return -1;
    int64_t v = PyLong_AsLongLong(a);
    Py_DECREF(a);
    return v;
}

static int put_i64(uint8_t *buf, Py_ssize_t *o, int tag, int64_t v) {
    if (*o + 9 > K[C_G_INLINE_BYTES])
        return -1;
    buf[(*o)++] = (uint8_t)tag;
    memcpy(buf + *o, &v, 8);    /* little-endian, as struct "<q" / "<d" on the machines we run on */
    *o += 8;
    return 0;
}

/* the arguments in typed words after the function's bytes; -1: the Python path */
static int encode_args(PyObject *const *argv, Py_ssize_t n, uint8_t *buf, Py_ssize_t *o, int64_t *ptrs, int *nptr) {
    if (n == 0)
        return 0;
    if (n > K[C_TYPED_MAX] || *o + 2 > K[C_G_INLINE_BYTES])
        return -1;
    buf[(*o)++] = (uint8_t)K[C_TYPED];
    buf[(*o)++] = (uint8_t)n;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = argv[i];
        PyTypeObject *t = Py_TYPE(v);
        if (t == &PyLong_Type) {
            int ovf = 0;
            long long x = PyLong_AsLongLongAndOverflow(v, &ovf);
            if (ovf || (x == -1 && PyErr_Occurred()))
                return -1;
            if (put_i64(buf, o, 'i', x) < 0)
                return -1;
        } else if (t == &PyFloat_Type) {
            double d = PyFloat_AS_DOUBLE(v);
            int64_t x;
            memcpy(&x, &d, 8);
            if (put_i64(buf, o, 'f', x) < 0)
                return -1;
        } else if (v == Py_None || v == Py_True || v == Py_False) {
            if (*o + 1 > K[C_G_INLINE_BYTES])
                return -1;
            buf[(*o)++] = v == Py_None ? 'N' : (v == Py_True ? 'T' : 'F');
        } else if (t == &PyUnicode_Type || t == &PyBytes_Type) {
            const char *s;
            Py_ssize_t k;
            if (t == &PyUnicode_Type) {
                s = PyUnicode_AsUTF8AndSize(v, &k);      /* fails for lone surrogates: the pickle */
                if (!s)
                    return -1;
            } else {
                s = PyBytes_AS_STRING(v);
                k = PyBytes_GET_SIZE(v);
            }
            if (k > K[C_TYPED_MAX] || *o + 2 + k > K[C_G_INLINE_BYTES])
                return -1;
            buf[(*o)++] = t == &PyUnicode_Type ? 's' : 'b';
            buf[(*o)++] = (uint8_t)k;
            memcpy(buf + *o, s, k);
            *o += k;
        } else {
            PyObject *code = PyDict_GetItemWithError(wire_code, (PyObject *)t);
            int tag;
            PyObject *p;
            if (code) {                 /* a runtime handle: its Ptr's address */
                tag = 0x80 | (int)PyLong_AsLong(code);
                p = PyObject_GetAttr(v, s_p);
                if (!p)
                    return -1;
            } else {
                if (PyErr_Occurred())
                    return -1;
                int is = PyObject_IsInstance(v, ptr_type);
                if (is <= 0)
                    return -1;
                tag = 'p';
                p = v;
                Py_INCREF(p);
            }
            int64_t a = addr_of(p);
            Py_DECREF(p);
            if (a == -1 && PyErr_Occurred())
                return -1;
            if (*nptr >= K[C_G_NPTRS] || put_i64(buf, o, tag, a) < 0)
                return -1;
            ptrs[(*nptr)++] = a;
        }
    }
    return 0;
}

/* (bytes, ptrs) of fn's pickle: FN_CACHE's entry (functions pickled by reference, the runtime's
 * handles' methods), else what proc._fn_payload says (msg.encode_fn: the by-value cache of functions
 * defined in __main__, closures, lambdas); a new reference, or NULL (maybe with an error set) */
static PyObject *fn_payload(PyObject *fn) {
    PyObject *key;
    if (PyMethod_Check(fn)) {
        PyObject *id = PyLong_FromVoidPtr(PyMethod_GET_SELF(fn));
        if (!id)
            goto fail;
        key = PyTuple_Pack(2, PyMethod_GET_FUNCTION(fn), id);
        Py_DECREF(id);
        if (!key)
            goto fail;
    } else {
        key = fn;
        Py_INCREF(key);
    }
    PyObject *ent = PyDict_GetItemWithError(fn_cache, key);    /* (a key that cannot hash: error) */
    Py_DECREF(key);
    if (!ent && PyErr_Occurred())
        goto fail;
    if (ent && ent != nocache) {
        Py_INCREF(ent);
    } else {
        ent = PyObject_CallOneArg(fnpay_py, fn);           /* runs Python: nothing is taken yet */
        if (!ent)
            goto fail;
    }
    if (!PyTuple_Check(ent) || PyTuple_GET_SIZE(ent) < 2 || !PyBytes_Check(PyTuple_GET_ITEM(ent, 0))) {
        Py_DECREF(ent);
        goto fail;
    }
    return ent;
fail:
    return NULL;
}

/* the creation site's index: M.sites[(id(code), lasti)] of the frame that called go (this C
 * function has none of its own: the current frame is the caller's); -1: the shared table was full;
 * -2: not entered yet, or an error */
static int64_t site_of(PyObject *m) {
    PyFrameObject *f = PyEval_GetFrame();      /* borrowed */
    if (!f)
        return -2;
    PyCodeObject *code = PyFrame_GetCode(f);
    int lasti = PyFrame_GetLasti(f);
    PyObject *id = PyLong_FromVoidPtr(code);
    Py_DECREF(code);
    PyObject *li = PyLong_FromLong(lasti);
    PyObject *key = (id && li) ? PyTuple_Pack(2, id, li) : NULL;
    Py_XDECREF(id);
    Py_XDECREF(li);
    if (!key)
        return -2;
    PyObject *sites = PyObject_GetAttr(m, s_sites);
    if (!sites) {
        Py_DECREF(key);
        return -2;
    }
    PyObject *sid = PyDict_Check(sites) ? PyDict_GetItemWithError(sites, key) : NULL;
    int64_t r = sid ? PyLong_AsLongLong(sid) : -2;
    Py_DECREF(sites);
    Py_DECREF(key);
    return r;
}

/* the row of a new goroutine fn(*argv) of M m: its index, or -1 (nothing taken, no error set: the
 * Python path), or -2 (nothing taken, an exception to propagate: see clear_exception) */
static long long row_impl(PyObject *m, PyObject *fn, PyObject *const *argv, Py_ssize_t argc) {
    uint8_t buf[BUF_MAX];
    int64_t ptrs[16];
    int nptr = 0;
    Py_ssize_t o;
    PyObject *gfree = NULL, *mv8 = NULL, *ctl = NULL, *ent = NULL;
    Py_buffer b;
    int have_buf = 0;
    long long res = -1;

    ent = fn_payload(fn);
    if (!ent)
        goto out;
    PyObject *fb = PyTuple_GET_ITEM(ent, 0), *fptrs = PyTuple_GET_ITEM(ent, 1);
    o = PyBytes_GET_SIZE(fb);
    if (o > K[C_G_INLINE_BYTES] || o > BUF_MAX || K[C_G_INLINE_BYTES] > BUF_MAX || K[C_G_NPTRS] > 16)
        goto out;
    memcpy(buf, PyBytes_AS_STRING(fb), o);
    Py_ssize_t nfb = o;
    int bad = 0;
    if (fptrs != Py_None) {         /* the function's own heap pointers (a handle's bound method) */
        PyObject *seq = PySequence_Fast(fptrs, "ptrs");
        if (!seq)
            bad = 1;
        else {
            for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq) && !bad; i++) {
                int64_t a = addr_of(PySequence_Fast_GET_ITEM(seq, i));
                if ((a == -1 && PyErr_Occurred()) || nptr >= K[C_G_NPTRS])
                    bad = 1;
                else
                    ptrs[nptr++] = a;
            }
            Py_DECREF(seq);
        }
    }
    if (bad || encode_args(argv, argc, buf, &o, ptrs, &nptr) < 0)
        goto out;
    /* ent (and its Ptrs, which root the pickle's heap objects) is kept until the row holds them */

    /* the M's caches: a free row, an id, the site */
    gfree = PyObject_GetAttr(m, s_gfree);
    if (!gfree || !PyList_Check(gfree))
        goto out;
    int64_t goid = attr_int(m, s_goid_next), goid_end = attr_int(m, s_goid_end);
    if (PyErr_Occurred())
        goto out;
    if (PyList_GET_SIZE(gfree) == 0 || goid >= goid_end) {
        /* a batch of slots or ids, in Python (nothing is taken yet) */
        PyObject *t = refill_py ? PyObject_CallOneArg(refill_py, m) : NULL;
        if (!t)
            goto out;
        Py_DECREF(t);
        goid = attr_int(m, s_goid_next);
        goid_end = attr_int(m, s_goid_end);
        if (PyErr_Occurred() || PyList_GET_SIZE(gfree) == 0 || goid >= goid_end)
            goto out;
    }
    int64_t sid = site_of(m);
    if (sid < -1 || PyErr_Occurred())
        goto out;                   /* not seen yet: the Python path enters it */
    int64_t curgoid = attr_int(m, s_curgoid), mrow = attr_int(m, s_row), curg = attr_int(m, s_curg);
    ctl = PyObject_GetAttr(m, s_ctl);
    int64_t gbase = ctl ? attr_int(ctl, s_gbase) : -1;
    if (PyErr_Occurred())
        goto out;
    PyObject *gobj = PyList_GET_ITEM(gfree, PyList_GET_SIZE(gfree) - 1);
    int64_t g = PyLong_AsLongLong(gobj);
    if (g == -1 && PyErr_Occurred())
        goto out;
    PyObject *next = PyLong_FromLongLong(goid + 1);
    if (!next)
        goto out;
    mv8 = PyObject_GetAttr(m, s_mv8);
    if (!mv8 || PyObject_GetBuffer(mv8, &b, PyBUF_WRITABLE) < 0) {
        Py_DECREF(next);
        goto out;
    }
    have_buf = 1;
    int64_t r = gbase + g * K[C_G_WORDS];
    if (r < 0 || (r + K[C_G_WORDS]) * 8 > b.len || mrow < 0 || (mrow + K[C_M_GCREATED] + 1) * 8 > b.len) {
        Py_DECREF(next);
        goto out;
    }
    /* take the row and the id (the only Python calls from here on cannot run Python code) */
    if (PyObject_SetAttr(m, s_goid_next, next) < 0 ||
        PyList_SetSlice(gfree, PyList_GET_SIZE(gfree) - 1, PyList_GET_SIZE(gfree), NULL) < 0) {
        Py_DECREF(next);
        goto out;
    }
    Py_DECREF(next);
    volatile int64_t *q = (volatile int64_t *)b.buf;
    q[r + K[C_G_GOID]] = goid;
    q[r + K[C_G_PARENT]] = curgoid;
    q[r + K[C_G_SITE]] = sid;
    /* the creator's profiler labels are the new goroutine's (Go's newproc) */
    q[r + K[C_G_LABELS]] = curg >= 0 && (gbase + curg * K[C_G_WORDS] + K[C_G_LABELS] + 1) * 8 <= b.len
                           ? q[gbase + curg * K[C_G_WORDS] + K[C_G_LABELS]] : 0;
    q[r + K[C_G_FNLEN]] = nfb;
    memcpy((uint8_t *)b.buf + (r + K[C_G_INLINE]) * 8, buf, o);
    for (int i = 0; i < nptr; i++)
        q[r + K[C_G_PTR0] + i] = ptrs[i];
    __atomic_thread_fence(__ATOMIC_RELEASE);     /* the counts last (see the comment at the top) */
    q[r + K[C_G_PAYLEN]] = o;
    q[r + K[C_G_NPTR]] = nptr;
    q[r + K[C_G_STATUS]] = K[C_G_RUNNABLE];
    q[mrow + K[C_M_GCREATED]] += 1;
    res = g;
out:
    if (have_buf)
        PyBuffer_Release(&b);
    Py_XDECREF(ent);
    Py_XDECREF(mv8);
    Py_XDECREF(ctl);
    Py_XDECREF(gfree);
    if (res < 0 && clear_exception() < 0)
        res = -2;
    return res;
}

/* runqput(p, g, next=True) on M m's P, as proc._put_new: under the P's lock taken with a try
 * (held only here, where no Python code runs, so no signal can stop the M holding it; the Python
 * path, with its spin and its count of held locks, when the try fails); then wakep and go's safe
 * point, in Python when due.  0, or -1 with an exception set. */
static int put_new(PyObject *m, long long g) {
    int64_t p = attr_int(m, s_p_idx), mrow = attr_int(m, s_row);
    PyObject *ctl = PyObject_GetAttr(m, s_ctl);
    int64_t pbase = ctl ? attr_int(ctl, s_pbase) : -1, sched = ctl ? attr_int(ctl, s_sched) : -1;
    Py_XDECREF(ctl);
    if (PyErr_Occurred())
        return -1;
    PyObject *lk = NULL, *locks = PyObject_GetAttr(m, s_plocks), *pk = PyLong_FromLongLong(p);
    if (locks && pk && PyDict_Check(locks))
        lk = PyDict_GetItemWithError(locks, pk);
    Py_XINCREF(lk);
    Py_XDECREF(locks);
    Py_XDECREF(pk);
    PyObject *got = NULL;
    if (lk) {
        PyObject *acq = PyObject_GetAttr(lk, s_acquire_raw);
        got = acq ? PyObject_CallOneArg(acq, zero) : NULL;
        Py_XDECREF(acq);
    }
    if (!got) {             /* held (BusyError), or not opened yet: the Python path */
        Py_XDECREF(lk);
        PyObject *et = NULL, *ev = NULL, *tb = NULL;
        if (clear_exception() < 0)
            PyErr_Fetch(&et, &ev, &tb);     /* the row is queued all the same, then it propagates */
        PyObject *r = PyObject_CallFunction(put_py, "OL", m, g);
        Py_XDECREF(r);
        if (et) {
            PyErr_Restore(et, ev, tb);
            return -1;
        }
        return r ? 0 : -1;
    }
    Py_DECREF(got);
    long long over = K[C_NONE];
    Py_buffer b;
    PyObject *mv8 = PyObject_GetAttr(m, s_mv8);
    int ok = mv8 && PyObject_GetBuffer(mv8, &b, PyBUF_WRITABLE) == 0;
    int64_t bq = pbase + p * K[C_P_WORDS];
    if (ok && (bq < 0 || (bq + K[C_P_WORDS]) * 8 > b.len)) {
        PyBuffer_Release(&b);
        ok = 0;
    }
    if (ok) {
        volatile int64_t *q = (volatile int64_t *)b.buf;
        int64_t old = q[bq + K[C_P_RUNNEXT]];
        q[bq + K[C_P_RUNNEXT]] = g;
        if (old != K[C_NONE]) {
            int64_t t = q[bq + K[C_P_RQTAIL]];
            if (t - q[bq + K[C_P_RQHEAD]] < K[C_RUNQ]) {
                q[bq + K[C_P_RUNQ] + t % K[C_RUNQ]] = old;
                q[bq + K[C_P_RQTAIL]] = t + 1;
            } else {
                over = old;         /* full: the slow path moves half to the global queue */
            }
        }
        PyBuffer_Release(&b);
    }
    Py_XDECREF(mv8);
    PyObject *rel = PyObject_CallMethodNoArgs(lk, s_release);
    Py_DECREF(lk);
    if (!ok || !rel) {
        Py_XDECREF(rel);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "mprt: csched.go: the control segment is not mapped");
        return -1;
    }
    Py_DECREF(rel);
    PyObject *r;
    if (over != K[C_NONE]) {
        r = PyObject_CallFunction(runqput_py, "OLLO", m, (long long)p, over, Py_False);
        if (!r)
            return -1;
        Py_DECREF(r);
    }
    /* wakep and the safe point read the words now (as the Python path, after its release) */
    int64_t npidle = 0, nspin = 0, attn = 0, preempt = 0;
    mv8 = PyObject_GetAttr(m, s_mv8);
    if (!mv8 || PyObject_GetBuffer(mv8, &b, PyBUF_SIMPLE) < 0) {
        Py_XDECREF(mv8);
        return -1;
    }
    const volatile int64_t *q = (const volatile int64_t *)b.buf;
    if ((sched + K[C_S_ATTN] + 1) * 8 <= b.len && (sched + K[C_S_NMSPINNING] + 1) * 8 <= b.len &&
        (mrow + K[C_M_PREEMPT] + 1) * 8 <= b.len && sched >= 0 && mrow >= 0) {
        npidle = q[sched + K[C_S_NPIDLE]];
        nspin = q[sched + K[C_S_NMSPINNING]];
    }
    PyBuffer_Release(&b);
    Py_DECREF(mv8);
    if (npidle && !nspin) {
        r = PyObject_CallOneArg(wakep_py, m);
        if (!r)
            return -1;
        Py_DECREF(r);
    }
    mv8 = PyObject_GetAttr(m, s_mv8);
    if (!mv8 || PyObject_GetBuffer(mv8, &b, PyBUF_SIMPLE) < 0) {
        Py_XDECREF(mv8);
        return -1;
    }
    q = (const volatile int64_t *)b.buf;
    if ((sched + K[C_S_ATTN] + 1) * 8 <= b.len && (mrow + K[C_M_PREEMPT] + 1) * 8 <= b.len && sched >= 0 && mrow >= 0) {
        attn = q[sched + K[C_S_ATTN]];
        preempt = q[mrow + K[C_M_PREEMPT]];
    }
    PyBuffer_Release(&b);
    Py_DECREF(mv8);
    if (attn || preempt) {
        r = PyObject_CallOneArg(safepoint_py, m);
        if (!r)
            return -1;
        Py_DECREF(r);
    }
    return 0;
}

/* One event on this M's trace ring (trace.ev): 1 written or counted lost, 0 if the ring is not in
 * the buffer (nothing done). */
static int ring_event(volatile int64_t *q, Py_ssize_t len, long long tbase, int64_t w1, int64_t a, int64_t b) {
    long long cap = (K[C_TRACEBUF_WORDS] - K[C_TB_HDR]) / 4;
    if (tbase <= 0 || (tbase + K[C_TRACEBUF_WORDS]) * 8 > len)
        return 0;
    int64_t n = q[tbase];
    if (n - q[tbase + 1] >= cap) {
        q[tbase + 2] += 1;                  /* a full ring: lost, as trace.ev counts it */
        return 1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    volatile int64_t *o = q + tbase + K[C_TB_HDR] + (n % cap) * 4;
    o[0] = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    o[1] = w1;
    o[2] = a;
    o[3] = b;
    q[tbase] = n + 1;
    return 1;
}

/* A traced go's GoCreate event written here when this M has seen the same function go from the
 * same call site in this trace: m.tgo maps (function, caller's code, caller's instruction) to
 * (GoCreate's kind word less the P, the function's entry PC), filled by proc._trace_go on a miss.
 * 1 if written; 0: the Python hook's to write (nothing done); -1 on an error (cleared). */
static int trace_go_c(PyObject *m, long long g, PyObject *fn) {
    int res = 0;
    PyObject *cache = NULL, *key = NULL, *mv8 = NULL;
    PyFrameObject *f = PyEval_GetFrame();           /* borrowed: the go statement's frame */
    if (!f)
        return 0;
    PyCodeObject *code = PyFrame_GetCode(f);
    PyObject *lasti = PyLong_FromLong(PyFrame_GetLasti(f));
    cache = PyObject_GetAttr(m, s_tgo);
    if (!code || !lasti || !cache || !PyDict_Check(cache))
        goto out;
    key = PyTuple_Pack(3, fn, (PyObject *)code, lasti);
    PyObject *ent = key ? PyDict_GetItemWithError(cache, key) : NULL;     /* borrowed */
    if (!ent || !PyTuple_Check(ent) || PyTuple_GET_SIZE(ent) != 2)
        goto out;
    long long w1 = PyLong_AsLongLong(PyTuple_GET_ITEM(ent, 0)), pc = PyLong_AsLongLong(PyTuple_GET_ITEM(ent, 1));
    long long tbase = attr_int(m, s_tbase), p = attr_int(m, s_p_idx), gbase = -1;
    PyObject *ctl = PyObject_GetAttr(m, s_ctl);
    if (ctl) {
        gbase = attr_int(ctl, s_gbase);
        Py_DECREF(ctl);
    }
    if (PyErr_Occurred() || tbase <= 0 || gbase < 0)
        goto out;
    mv8 = PyObject_GetAttr(m, s_mv8);
    Py_buffer b;
    if (!mv8 || PyObject_GetBuffer(mv8, &b, PyBUF_WRITABLE) < 0)
        goto out;
    volatile int64_t *q = (volatile int64_t *)b.buf;
    long long r = gbase + g * K[C_G_WORDS];
    if ((r + K[C_G_WORDS]) * 8 <= b.len)
        res = ring_event(q, b.len, tbase, w1 | (p + 1) << 8, q[r + K[C_G_GOID]], pc);
    PyBuffer_Release(&b);
out:
    if (PyErr_Occurred()) {
        PyErr_Clear();
        res = -1;
    }
    Py_XDECREF(code);
    Py_XDECREF(lasti);
    Py_XDECREF(cache);
    Py_XDECREF(key);
    Py_XDECREF(mv8);
    return res;
}

/* go(fn, *args, **kwargs): the program's go statement (mprt.go).  The common case here; anything
 * else (keyword arguments, no runtime, a running mark, what row_impl leaves) is proc.go's; while tracing
 * the GoCreate event is written by proc._trace_go. */
static PyObject *go(PyObject *mod, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (!ready || nargs < 1 || (kwnames && PyTuple_GET_SIZE(kwnames)))
        goto slow;
    PyObject *m = PyDict_GetItemWithError(mstate_dict, s__m);
    if (!m || m == Py_None) {
        PyErr_Clear();
        goto slow;
    }
    Py_INCREF(m);
    PyObject *tr = PyObject_GetAttr(m, s_tracing);
    int tracing = tr ? PyObject_IsTrue(tr) : -1;
    Py_XDECREF(tr);
    int64_t phase = -1;
    /* tracing: the same path, with the GoCreate event written by trace_go_py (the function's entry
     * and the caller's stack are Python's to name) before the goroutine can be taken */
    PyObject *heap = tracing == 0 || (tracing == 1 && trace_go_py) ? PyObject_GetAttr(m, s_heap) : NULL;
    PyObject *gcq = heap ? PyObject_GetAttr(heap, s_gcq) : NULL;
    Py_buffer b;
    if (gcq && PyObject_GetBuffer(gcq, &b, PyBUF_SIMPLE) == 0) {
        if (b.len >= 8 * (K[C_GC_PHASE] + 1))
            phase = ((const volatile int64_t *)b.buf)[K[C_GC_PHASE]];
        PyBuffer_Release(&b);
    }
    Py_XDECREF(gcq);
    Py_XDECREF(heap);
    if (phase != 0) {         /* a mark (the barrier's shading), tracing with no hook, or an error: Python */
        Py_DECREF(m);
        if (clear_exception() < 0)
            return NULL;
        goto slow;
    }
    long long g = row_impl(m, args[0], args + 1, nargs - 1);
    if (g == -2) {
        Py_DECREF(m);
        return NULL;
    }
    if (g < 0) {
        Py_DECREF(m);
        goto slow;
    }
    nfast++;
    if (tracing == 1 && trace_go_c(m, g, args[0]) <= 0) {
        PyObject *gobj = PyLong_FromLongLong(g);
        PyObject *tr2 = gobj ? PyObject_CallFunctionObjArgs(trace_go_py, m, gobj, args[0], NULL) : NULL;
        Py_XDECREF(gobj);
        if (!tr2)
            PyErr_Clear();          /* the row is taken: the goroutine is queued, its event lost */
        Py_XDECREF(tr2);
    }
    int r = put_new(m, g);
    Py_DECREF(m);
    if (r < 0)
        return NULL;
    Py_RETURN_NONE;
slow:
    return PyObject_Vectorcall(go_py, args, nargsf, kwnames);
}

/* ---- a goroutine's start: its function and arguments from its row (schedule._payload) ----
 *
 * payload(m, g): (fn, args, None) of not-started goroutine g, read from its row, for the common
 * case: the payload inline in the row, the function's pickle already decoded on this M (msg._FN_DEC)
 * and the arguments in typed words (or none), no mark running.  None for everything else, with
 * nothing taken: the Python path (_payload) does it all.  As there, every handle is made (a root
 * of its own) before the row's pointer words are cleared; if a mark started meanwhile (a finalizer
 * run by an allocation here ran a signal handler that stopped this M), the words are shaded first,
 * by schedule._shade_row, as the deletion half of the barrier. */

/* a runtime handle of class cls for the heap object at x (handle p): cls(p), or the same built here
 * where cls names its fields (_wire_fields: what its __init__(p) sets, each from p, the address
 * or the heap); the tests check that both give the same handle */
static PyObject *make_wire(PyObject *cls, PyObject *p, int64_t x, PyObject *heap) {
    PyObject *fields = PyObject_GetAttr(cls, s_wire_fields);
    if (!fields || !PyTuple_Check(fields) || !PyType_Check(cls)) {
        Py_XDECREF(fields);
        PyErr_Clear();
        return PyObject_CallOneArg(cls, p);
    }
    PyTypeObject *tp = (PyTypeObject *)cls;
    PyObject *o = tp->tp_alloc(tp, 0);
    for (Py_ssize_t k = 0; o && k < PyTuple_GET_SIZE(fields); k++) {
        PyObject *name = PyTuple_GET_ITEM(fields, k), *v = NULL;
        if (!PyUnicode_Check(name))
            v = NULL;
        else if (PyUnicode_CompareWithASCIIString(name, "_p") == 0)
            v = Py_NewRef(p);
        else if (PyUnicode_CompareWithASCIIString(name, "_a") == 0)
            v = PyLong_FromLongLong(x);
        else if (PyUnicode_CompareWithASCIIString(name, "_w") == 0)
            v = PyLong_FromLongLong(x >> 3);
        else if (PyUnicode_CompareWithASCIIString(name, "_h") == 0)
            v = Py_NewRef(heap);
        else if (PyUnicode_CompareWithASCIIString(name, "_hq") == 0)
            v = PyObject_GetAttr(heap, s_mvq);
        else if (PyUnicode_CompareWithASCIIString(name, "_lk") == 0)
            v = Py_NewRef(Py_None);
        if (!v || PyObject_SetAttr(o, name, v) < 0) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError, "mprt: %R: unknown wire field %R", cls, name);
            Py_CLEAR(o);
        }
        Py_XDECREF(v);
    }
    Py_DECREF(fields);
    return o;
}

static PyObject *decode_one(PyObject *cx, PyObject *heap, const uint8_t *d, Py_ssize_t n, Py_ssize_t *i) {
    if (*i >= n)
        return NULL;
    int c = d[(*i)++];
    int64_t x;
    if (c == 'i' || c == 'f' || c == 'p' || c >= 0x80) {
        if (*i + 8 > n)
            return NULL;
        memcpy(&x, d + *i, 8);
        *i += 8;
        if (c == 'i')
            return PyLong_FromLongLong(x);
        if (c == 'f') {
            double v;
            memcpy(&v, &x, 8);
            return PyFloat_FromDouble(v);
        }
        if (cx == Py_None)
            return NULL;
        PyObject *a = PyLong_FromLongLong(x);
        if (!a)
            return NULL;
        PyObject *p = PyObject_CallMethodOneArg(cx, s_at, a);
        Py_DECREF(a);
        if (!p || c == 'p')
            return p;
        PyObject *key = PyLong_FromLong(c & 0x7F);
        PyObject *cls = key ? PyDict_GetItemWithError(wire_class, key) : NULL;
        Py_XDECREF(key);
        PyObject *h = cls ? make_wire(cls, p, x, heap) : NULL;
        Py_DECREF(p);
        return h;
    }
    if (c == 's' || c == 'b') {
        if (*i >= n)
            return NULL;
        Py_ssize_t k = d[(*i)++];
        if (*i + k > n)
            return NULL;
        const char *s = (const char *)d + *i;
        *i += k;
        return c == 's' ? PyUnicode_DecodeUTF8(s, k, NULL) : PyBytes_FromStringAndSize(s, k);
    }
    if (c == 'N')
        Py_RETURN_NONE;
    if (c == 'T')
        Py_RETURN_TRUE;
    if (c == 'F')
        Py_RETURN_FALSE;
    return NULL;
}

static PyObject *payload(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    if (!dready || nargs != 2)
        Py_RETURN_NONE;
    PyObject *m = args[0];
    int64_t g = PyLong_AsLongLong(args[1]);
    PyObject *ctl = NULL, *mv8 = NULL, *heap = NULL, *gcq = NULL, *cx = NULL, *fb = NULL, *argt = NULL, *res = NULL;
    Py_buffer b, pb;
    int have_b = 0, have_pb = 0;
    if (g == -1 && PyErr_Occurred())
        goto out;
    ctl = PyObject_GetAttr(m, s_ctl);
    int64_t gbase = ctl ? attr_int(ctl, s_gbase) : -1;
    heap = PyObject_GetAttr(m, s_heap);
    gcq = heap ? PyObject_GetAttr(heap, s_gcq) : NULL;
    cx = heap ? PyObject_GetAttr(heap, s_cx) : NULL;
    mv8 = PyObject_GetAttr(m, s_mv8);
    if (PyErr_Occurred() || !cx || !gcq || !mv8 || PyObject_GetBuffer(gcq, &pb, PyBUF_SIMPLE) < 0)
        goto out;
    have_pb = 1;
    if (pb.len < 8 * (D[D_GC_PHASE] + 1) || ((const volatile int64_t *)pb.buf)[D[D_GC_PHASE]])
        goto out;
    if (PyObject_GetBuffer(mv8, &b, PyBUF_WRITABLE) < 0)
        goto out;
    have_b = 1;
    int64_t r = gbase + g * D[D_G_WORDS];
    if (gbase < 0 || g < 0 || (r + D[D_G_WORDS]) * 8 > b.len)
        goto out;
    volatile int64_t *q = (volatile int64_t *)b.buf;
    int64_t n = q[r + D[D_G_PAYLEN]], fl = q[r + D[D_G_FNLEN]], nptr = q[r + D[D_G_NPTR]];
    if (n < 0 || fl <= 0 || fl > n || (r + D[D_G_INLINE]) * 8 + n > b.len || nptr < 0 || nptr > 64)
        goto out;
    const uint8_t *d = (const uint8_t *)b.buf + (r + D[D_G_INLINE]) * 8;
    fb = PyBytes_FromStringAndSize((const char *)d, fl);
    if (!fb)
        goto out;
    PyObject *fn = PyDict_GetItemWithError(fn_dec, fb);      /* borrowed */
    if (!fn)
        goto out;              /* not decoded on this M yet: the Python path fills the cache */
    Py_INCREF(fn);
    Py_ssize_t i = fl;
    if (n == fl) {
        argt = PyTuple_New(0);
    } else {
        if (d[i] != D[D_TYPED] || i + 2 > n) {
            Py_DECREF(fn);
            goto out;
        }
        Py_ssize_t k = d[i + 1];
        i += 2;
        argt = PyTuple_New(k);
        for (Py_ssize_t j = 0; argt && j < k; j++) {
            PyObject *v = decode_one(cx, heap, d, n, &i);
            if (!v) {
                Py_CLEAR(argt);
                break;
            }
            PyTuple_SET_ITEM(argt, j, v);
        }
        if (argt && i != n)
            Py_CLEAR(argt);
    }
    if (!argt) {
        Py_DECREF(fn);
        goto out;
    }
    /* the handles exist: the row lets its pointers go (shaded first if a mark began meanwhile) */
    if (nptr > 0 && ((const volatile int64_t *)pb.buf)[D[D_GC_PHASE]]) {
        PyObject *t = PyObject_CallFunction(shade_py, "OL", m, (long long)r);
        if (!t) {
            Py_DECREF(fn);
            goto out;
        }
        Py_DECREF(t);
    }
    q[r + D[D_G_NPTR]] = 0;
    for (int64_t j = 0; j < nptr; j++)
        q[r + D[D_G_PTR0] + j] = 0;
    res = PyTuple_Pack(3, fn, argt, Py_None);      /* no keyword arguments (_gmain: fn(*args)) */
    npay++;
    Py_DECREF(fn);
    if (!res) {                /* the row is cleared: this error is the goroutine's */
        if (have_b)
            PyBuffer_Release(&b);
        have_b = 0;
        goto fail;
    }
out:
    if (!res) {
        if (clear_exception() < 0)
            goto fail;
        res = Py_None;
        Py_INCREF(res);
    }
fail:
    if (have_b)
        PyBuffer_Release(&b);
    if (have_pb)
        PyBuffer_Release(&pb);
    Py_XDECREF(argt);
    Py_XDECREF(fb);
    Py_XDECREF(cx);
    Py_XDECREF(gcq);
    Py_XDECREF(heap);
    Py_XDECREF(mv8);
    Py_XDECREF(ctl);
    return res;
}

/* a setup call's constants (a tuple of n ints, in the order of the caller's enum) into dst; -1 with
 * an exception otherwise */
static int load_consts(const char *who, PyObject *consts, long long *dst, int n) {
    if (PyTuple_GET_SIZE(consts) != n) {
        PyErr_Format(PyExc_ValueError, "csched.%s: %d constants expected", who, n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        dst[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(consts, i));
        if (PyErr_Occurred())
            return -1;
    }
    return 0;
}

/* a setup call's objects, each kept (a new reference) in its module static */
static void keep_all(PyObject **slots[], PyObject *objs[], int n) {
    for (int i = 0; i < n; i++) {
        Py_INCREF(objs[i]);
        Py_XSETREF(*slots[i], objs[i]);
    }
}

static PyObject *setup_payload(PyObject *mod, PyObject *args) {
    PyObject *fd, *wc, *consts, *sp;
    if (!PyArg_ParseTuple(args, "O!O!O!O", &PyDict_Type, &fd, &PyDict_Type, &wc, &PyTuple_Type, &consts, &sp) ||
        load_consts("setup_payload", consts, D, D_N) < 0)
        return NULL;
    keep_all((PyObject **[]){&fn_dec, &wire_class, &shade_py}, (PyObject *[]){fd, wc, sp}, 3);
    dready = 1;
    Py_RETURN_NONE;
}

/* ---- a goroutine's end and the next one's start in the same greenlet (schedule._goexit0) ----
 *
 * exit_next(m, g): goroutine g ended on M m.  When the next goroutine can start in this very
 * greenlet (_goexit0's fast path: no goroutine of this M readied or bound, no timer, no safe point
 * or root scan due, not the fairness tick, not locked, no other goroutine alive on
 * this M, so none to spread), take it from the P's runnext or ring under the P's lock taken with a
 * try, then do what _goexit0, execute_mark and _start_here do: g's row dead, its greenlet now g2's,
 * its slot back in the M's cache, g2's row running, the P's schedtick, the M's curg.  Returns g2;
 * None with nothing done for everything else (the Python path).  No Python code runs between the
 * take and the last write but the calls made once it is all consistent (GSLOTS.put when the cache
 * is full, _start_here for a goroutine bound to this M). */

static int64_t getattr_i64(PyObject *o, PyObject *name, int *err) {
    int64_t v = attr_int(o, name);
    if (v == -1 && PyErr_Occurred())
        *err = 1;
    return v;
}

static Py_ssize_t attr_len(PyObject *o, PyObject *name, int *err) {
    PyObject *a = PyObject_GetAttr(o, name);
    Py_ssize_t n = a ? PyObject_Length(a) : -1;
    Py_XDECREF(a);
    if (n < 0)
        *err = 1;
    return n;
}

static PyObject *exit_next(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    if (!eready || nargs != 2)
        Py_RETURN_NONE;
    PyObject *m = args[0], *gobj = args[1];
    PyObject *ctl = NULL, *mv8 = NULL, *greenlets = NULL, *gfree = NULL, *lk = NULL, *res = NULL;
    Py_buffer b;
    int have_b = 0, err = 0;
    int64_t g = PyLong_AsLongLong(gobj);
    if (g == -1 && PyErr_Occurred())
        goto out;
    PyObject *tr = PyObject_GetAttr(m, s_tracing);
    int tracing = tr ? PyObject_IsTrue(tr) : -1;
    Py_XDECREF(tr);
    int64_t lockedg = getattr_i64(m, s_lockedg, &err), p = getattr_i64(m, s_p_idx, &err);
    int64_t tick = getattr_i64(m, s_tick, &err), row = getattr_i64(m, s_row, &err), mid = getattr_i64(m, s_id, &err);
    Py_ssize_t nlocal = attr_len(m, s_localq, &err), ntimers = attr_len(m, s_timers, &err);
    if (err || tracing < 0 || lockedg != E[E_NONE] || p == E[E_NONE] || nlocal || ntimers ||
        (tick + 1) % E[E_FAIRNESS] == 0)
        goto out;
    greenlets = PyObject_GetAttr(m, s_greenlets);
    if (!greenlets || !PyDict_Check(greenlets) || PyDict_GET_SIZE(greenlets) != 1)
        goto out;
    PyObject *gl = PyDict_GetItemWithError(greenlets, gobj);    /* borrowed; held by the dict */
    if (!gl)
        goto out;
    gfree = PyObject_GetAttr(m, s_gfree);
    ctl = PyObject_GetAttr(m, s_ctl);
    int64_t gbase = ctl ? getattr_i64(ctl, s_gbase, &err) : -1, pbase = ctl ? getattr_i64(ctl, s_pbase, &err) : -1;
    int64_t sched = ctl ? getattr_i64(ctl, s_sched, &err) : -1;
    if (err || !gfree || !PyList_Check(gfree) || gbase < 0 || pbase < 0 || sched < 0 || row < 0 || g < 0)
        goto out;
    mv8 = PyObject_GetAttr(m, s_mv8);
    if (!mv8 || PyObject_GetBuffer(mv8, &b, PyBUF_WRITABLE) < 0)
        goto out;
    have_b = 1;
    int64_t words = b.len / 8, gr = gbase + g * E[E_G_WORDS], bq = pbase + p * E[E_P_WORDS];
    if (gr + E[E_G_WORDS] > words || bq + E[E_P_WORDS] > words || row + E[E_M_GCSCAN] + 1 > words ||
        sched + E[E_S_ATTN] + 1 > words)
        goto out;
    volatile int64_t *q = (volatile int64_t *)b.buf;
    if (q[row + E[E_M_RQHEAD]] != E[E_NONE] || q[sched + E[E_S_ATTN]] || q[row + E[E_M_PREEMPT]] ||
        q[row + E[E_M_GCSCAN]])
        goto out;
    if (q[bq + E[E_P_RUNNEXT]] == E[E_NONE] && q[bq + E[E_P_RQHEAD]] == q[bq + E[E_P_RQTAIL]])
        goto out;
    /* the P's lock, tried */
    PyObject *locks = PyObject_GetAttr(m, s_plocks), *pk = PyLong_FromLongLong(p);
    if (locks && pk && PyDict_Check(locks))
        lk = PyDict_GetItemWithError(locks, pk);
    Py_XINCREF(lk);
    Py_XDECREF(locks);
    Py_XDECREF(pk);
    if (!lk)
        goto out;
    PyObject *acq = PyObject_GetAttr(lk, s_acquire_raw);
    PyObject *got = acq ? PyObject_CallOneArg(acq, zero) : NULL;
    Py_XDECREF(acq);
    if (!got)
        goto out;            /* held (BusyError): the Python path waits for it */
    Py_DECREF(got);
    int64_t g2 = q[bq + E[E_P_RUNNEXT]];
    if (g2 != E[E_NONE]) {
        q[bq + E[E_P_RUNNEXT]] = E[E_NONE];
    } else {
        int64_t h = q[bq + E[E_P_RQHEAD]];
        if (h != q[bq + E[E_P_RQTAIL]]) {
            g2 = q[bq + E[E_P_RUNQ] + h % E[E_RUNQ]];
            q[bq + E[E_P_RQHEAD]] = h + 1;
        }
    }
    PyObject *rel = PyObject_CallMethodNoArgs(lk, s_release);
    if (!rel) {
        /* cannot be released: put g2 back is impossible to do safely; let it propagate */
        goto fail;
    }
    Py_DECREF(rel);
    if (g2 == E[E_NONE])
        goto out;
    int64_t g2r = gbase + g2 * E[E_G_WORDS];
    if (g2 < 0 || g2r + E[E_G_WORDS] > words) {
        PyErr_Format(PyExc_RuntimeError, "mprt: csched.exit_next: bad G slot %lld in P%lld's queue",
                     (long long)g2, (long long)p);
        goto fail;
    }
    /* g is dead; its greenlet runs g2 (traced: GoEnd and GoStart, as _goexit0 and execute_mark) */
    if (tracing == 1) {
        long long tbase = attr_int(m, s_tbase);
        if (tbase == -1 && PyErr_Occurred())
            PyErr_Clear();
        else if (ring_event(q, b.len, tbase, K[C_EV_GOEND] | (p + 1) << 8, q[gr + E[E_G_GOID]], 0))
            ring_event(q, b.len, tbase, K[C_EV_GOSTART] | (p + 1) << 8, q[g2r + E[E_G_GOID]], 0);
    }
    q[gr + E[E_G_STATUS]] = E[E_G_DEAD];
    q[gr + E[E_G_LOCKEDM]] = E[E_NONE];
    q[gr + E[E_G_M]] = E[E_NONE];
    q[row + E[E_M_GEXITED]] += 1;
    q[row + E[E_M_NLIVE]] -= 1;
    PyObject *g2obj = PyLong_FromLongLong(g2), *tickobj = PyLong_FromLongLong(tick + 1);
    PyObject *goid = PyLong_FromLongLong(q[g2r + E[E_G_GOID]]);
    Py_INCREF(gl);
    int bad = !g2obj || !tickobj || !goid || PyDict_DelItem(greenlets, gobj) < 0 ||
              PyDict_SetItem(greenlets, g2obj, gl) < 0;
    Py_DECREF(gl);
    if (!bad)
        bad = PyObject_SetAttr(m, s_tick, tickobj) < 0;
    /* execute_mark: the tick before curg (sysmon reads curg, then the tick) */
    q[g2r + E[E_G_STATUS]] = E[E_G_RUNNING];
    q[bq + E[E_P_SCHEDTICK]] += 1;
    q[row + E[E_M_CURG]] = g2;
    if (!bad)
        bad = PyObject_SetAttr(m, s_curg, g2obj) < 0 || PyObject_SetAttr(m, s_curgoid, goid) < 0;
    int bound_here = q[g2r + E[E_G_M]] == mid;
    if (!bound_here) {
        q[g2r + E[E_G_M]] = mid;
        q[row + E[E_M_NLIVE]] += 1;
    }
    PyBuffer_Release(&b);
    have_b = 0;
    Py_XDECREF(tickobj);
    Py_XDECREF(goid);
    if (bad) {
        Py_XDECREF(g2obj);
        goto fail;
    }
    /* the Python parts, everything consistent */
    PyObject *t;
    if (PyList_GET_SIZE(gfree) < E[E_GFREE_MAX]) {
        if (PyList_Append(gfree, gobj) < 0) {
            Py_DECREF(g2obj);
            goto fail;
        }
    } else {
        t = PyObject_CallFunctionObjArgs(gput_py, m, gfree, gobj, NULL);
        if (!t) {
            Py_DECREF(g2obj);
            goto fail;
        }
        Py_DECREF(t);
    }
    if (bound_here) {
        t = PyObject_CallFunctionObjArgs(start_here_py, m, g2obj, NULL);
        if (!t) {
            Py_DECREF(g2obj);
            goto fail;
        }
        Py_DECREF(t);
    }
    res = g2obj;
    nexit++;
    goto done;
out:
    if (clear_exception() < 0)
        goto fail;
    res = Py_None;
    Py_INCREF(res);
    goto done;
fail:
    res = NULL;
done:
    if (have_b)
        PyBuffer_Release(&b);
    Py_XDECREF(lk);
    Py_XDECREF(mv8);
    Py_XDECREF(ctl);
    Py_XDECREF(gfree);
    Py_XDECREF(greenlets);
    return res;
}

static PyObject *setup_exit(PyObject *mod, PyObject *args) {
    PyObject *consts, *gp, *sh, *rf;
    if (!PyArg_ParseTuple(args, "O!OOO", &PyTuple_Type, &consts, &gp, &sh, &rf) ||
        load_consts("setup_exit", consts, E, E_N) < 0)
        return NULL;
    keep_all((PyObject **[]){&gput_py, &start_here_py, &refill_py}, (PyObject *[]){gp, sh, rf}, 3);
    eready = 1;
    Py_RETURN_NONE;
}

/* ---- sync.WaitGroup.done's common case (sema.WaitGroup.done) ----
 *
 * wg_done(wg): the counter of a WaitGroup of this M's runtime goes down by one and stays above zero:
 * under the object's lock (chan.objlock), taken with a try and held only here, where no Python
 * code runs; then the safe point, in Python when due.  True when done; False with nothing done for
 * everything else (the lock held elsewhere or not opened yet, the zero crossing, another runtime's
 * object): the Python path. */

static PyObject *wg_done(PyObject *mod, PyObject *wg) {
    if (!wready)
        Py_RETURN_FALSE;
    PyObject *m = PyDict_GetItemWithError(mstate_dict, s__m);     /* borrowed */
    PyObject *h = NULL, *heap = NULL, *locks = NULL, *key = NULL, *mvq = NULL, *ctl = NULL, *res = NULL;
    PyObject *lk;
    Py_buffer b;
    int have_b = 0, held = 0, err = 0, ok = 0;
    if (!m || m == Py_None)
        goto out;
    h = PyObject_GetAttr(wg, s__h);
    heap = PyObject_GetAttr(m, s_heap);
    if (!h || !heap || h != heap)
        goto out;
    int64_t a = getattr_i64(wg, s__a, &err), w = getattr_i64(wg, s__w, &err);
    if (err || a < 0)
        goto out;
    locks = PyObject_GetAttr(m, s_plocks);
    key = Py_BuildValue("(OL)", s_o, (long long)((a >> 4) % W_NLOCKS));
    if (!locks || !key || !PyDict_Check(locks))
        goto out;
    lk = PyDict_GetItemWithError(locks, key);       /* borrowed: the dict keeps it */
    if (!lk)
        goto out;
    mvq = PyObject_GetAttr(heap, s_mvq);
    if (!mvq || PyObject_GetBuffer(mvq, &b, PyBUF_WRITABLE) < 0)
        goto out;
    have_b = 1;
    if (w < 0 || (w + W_STATE + 1) * 8 > b.len)
        goto out;
    PyObject *acq = PyObject_GetAttr(lk, s_acquire_raw);
    PyObject *got = acq ? PyObject_CallOneArg(acq, zero) : NULL;
    Py_XDECREF(acq);
    if (!got)
        goto out;               /* held (BusyError): the Python path waits for it */
    Py_DECREF(got);
    held = 1;
    volatile int64_t *hq = (volatile int64_t *)b.buf;
    int64_t v = hq[w + W_STATE] - 1;
    if (v > 0) {
        hq[w + W_STATE] = v;
        ok = 1;
    }
    PyBuffer_Release(&b);
    have_b = 0;
    PyObject *rel = PyObject_CallMethodNoArgs(lk, s_release);
    held = 0;
    if (!rel)
        goto fail;
    Py_DECREF(rel);
    if (!ok)
        goto out;
    /* the safe point (stw.check_safepoint) when a stop or a preemption is asked for */
    ctl = PyObject_GetAttr(m, s_ctl);
    int64_t sched = ctl ? getattr_i64(ctl, s_sched, &err) : -1, row = getattr_i64(m, s_row, &err);
    PyObject *mv8 = PyObject_GetAttr(m, s_mv8);
    int due = 1;
    if (mv8 && !err && sched >= 0 && row >= 0 && PyObject_GetBuffer(mv8, &b, PyBUF_SIMPLE) == 0) {
        const volatile int64_t *q = (const volatile int64_t *)b.buf;
        if ((sched + W_S_ATTN + 1) * 8 <= b.len && (row + W_M_PREEMPT + 1) * 8 <= b.len)
            due = q[sched + W_S_ATTN] || q[row + W_M_PREEMPT];
        PyBuffer_Release(&b);
    }
    Py_XDECREF(mv8);
    PyErr_Clear();          /* (no row: the check below does it all the same) */
    if (due) {
        PyObject *t = PyObject_CallOneArg(wg_safepoint_py, m);
        if (!t)
            goto fail;
        Py_DECREF(t);
    }
    res = Py_True;
    Py_INCREF(res);
    nwg++;
    goto done;
out:
    if (clear_exception() < 0)
        goto fail;
    res = Py_False;
    Py_INCREF(res);
    goto done;
fail:
    res = NULL;
done:
    if (have_b)
        PyBuffer_Release(&b);
    (void)held;
    Py_XDECREF(ctl);
    Py_XDECREF(mvq);
    Py_XDECREF(key);
    Py_XDECREF(locks);
    Py_XDECREF(heap);
    Py_XDECREF(h);
    return res;
}

static PyObject *setup_wg(PyObject *mod, PyObject *args) {
    PyObject *sp;
    if (!PyArg_ParseTuple(args, "LLLLO", &W_NLOCKS, &W_STATE, &W_S_ATTN, &W_M_PREEMPT, &sp))
        return NULL;
    Py_INCREF(sp);
    Py_XSETREF(wg_safepoint_py, sp);
    wready = 1;
    Py_RETURN_NONE;
}

/* ---- the stop of the world at an allocation (stw._alloc_safepoint's common case) ----
 *
 * A stop's pause lasts until the last running M has parked its P, and the Ms reach the stop at
 * their next allocation.  That path runs once per stop, with cold caches: in Python (the safe
 * point, the stack's walk, gcstopm's first half) it took 50-60 us of CPU per M, most of the pause.
 * alloc_safepoint() is malloc's safe-point hook where this is built: it reads the words itself, walks
 * the stack as codeclass.classify does (through the same table), and for a stop of the world gives
 * up the P as gcstopm does, under the sched lock taken with a try (sem_trywait on this process's
 * own opening of the lock's semaphore), where no Python code runs; then stw._cstopped does the rest
 * in Python (the park, the roots' scan, a P lost in a resize, a preemption due), with the P already
 * counted stopped.  Everything else (a preemption only, the program's end, the lock held a while,
 * GODEBUG=schedcheck=1, another M than the one set up) is the Python hook's.  alloc_stop() is the
 * same stop called by the allocator's C new itself when it finds the stop due (its caller's frame is
 * the program's), sparing the Python entry point's call on the way. */

enum { T_S_ATTN, T_S_GCWAITING, T_S_STOPPER, T_S_STOPWAIT, T_S_EXIT, T_M_PREEMPT, T_M_STATE, T_M_P, T_MS_GCSTOP,
       T_P_WORDS, T_P_STATUS, T_P_RUNNING, T_P_GCSTOP, T_NONE, T_USER, T_BASE, T_LOCKING, T_RUNTIME, T_HEAP,
       T_S_GOMAXPROCS, T_S_PIDLE, T_S_NPIDLE, T_S_PAUSEIDX, T_S_NSTW, T_S_STWTOTAL, T_S_MCOUNT, T_P_M, T_P_LINK,
       T_P_SYSCALL, T_M_WORDS, T_M_STAMP, T_MS_RUNNING, T_NPAUSE, T_N };
static long long T[T_N];
static struct {
    PyObject *m;                    /* the M set up (a new reference), or NULL */
    PyObject *mv;                   /* the object whose buffer q is (held with the buffer) */
    Py_buffer buf;
    volatile int64_t *q;
    int64_t sched, row, pbase, mbase, pause, mid, words;
    sem_t *schedlock, *stwnote, *msem;
} st;
static PyObject *sp_py, *cstopped_py, *kind_dict, *s_locks, *s_in_gcstop, *s_schedcheck;
static long long nstop;         /* stops taken here at an allocation */
static long long nstw;          /* stops of the world requested and restarted here by a stopper */

static void stop_release(void) {
    if (st.schedlock && st.schedlock != SEM_FAILED)
        sem_close(st.schedlock);
    if (st.stwnote && st.stwnote != SEM_FAILED)
        sem_close(st.stwnote);
    if (st.msem && st.msem != SEM_FAILED)     /* (glibc's SEM_FAILED is NULL: an M with no semaphore) */
        sem_close(st.msem);
    st.schedlock = st.stwnote = st.msem = NULL;
    if (st.mv) {
        PyBuffer_Release(&st.buf);
        Py_CLEAR(st.mv);
    }
    Py_CLEAR(st.m);
    st.q = NULL;
}

/* setup_stop(m, mv, sched, row, pbase, mbase, pause, id, schedlock name, stwnote name, the M's
 * semaphore's name) or setup_stop(None): the M of this process from now on (mstate.set_current_m).
 * The coordinator has no row (-1) and no semaphore (None): only the stopper's side is set up. */
static PyObject *setup_stop(PyObject *mod, PyObject *args) {
    PyObject *m, *mv = NULL;
    long long sched = 0, row = 0, pbase = 0, mbase = 0, pause = 0, mid = 0;
    const char *ln = NULL, *nn = NULL, *sn = NULL;
    if (!PyArg_ParseTuple(args, "O|OLLLLLLssz", &m, &mv, &sched, &row, &pbase, &mbase, &pause, &mid, &ln, &nn, &sn))
        return NULL;
    stop_release();
    if (m == Py_None)
        Py_RETURN_NONE;
    PyObject *sc = PyObject_GetAttr(m, s_schedcheck);
    int schedcheck = sc ? PyObject_IsTrue(sc) : -1;
    Py_XDECREF(sc);
    if (schedcheck < 0)
        return NULL;
    if (schedcheck)
        Py_RETURN_NONE;      /* GODEBUG=schedcheck=1 checks the rows at every unlock: the Python path */
    if (!mv || !ln || !nn) {
        PyErr_SetString(PyExc_TypeError, "csched.setup_stop: m, mv, sched, row, pbase, mbase, pause, id and the names");
        return NULL;
    }
    if (PyObject_GetBuffer(mv, &st.buf, PyBUF_WRITABLE) < 0)
        return NULL;
    Py_INCREF(mv);
    st.mv = mv;
    st.words = st.buf.len / 8;
    st.sched = sched;
    st.row = row;
    st.pbase = pbase;
    st.mbase = mbase;
    st.pause = pause;
    st.mid = mid;
    st.schedlock = sem_open(ln, 0);
    st.stwnote = sem_open(nn, 0);
    st.msem = sn ? sem_open(sn, 0) : NULL;
    if (st.schedlock == SEM_FAILED || st.stwnote == SEM_FAILED || (sn && st.msem == SEM_FAILED) ||
        sched + T[T_S_EXIT] >= st.words || row + T[T_M_P] >= st.words || pause + 2 * T[T_NPAUSE] > st.words) {
        stop_release();      /* not usable: the Python paths do everything */
        Py_RETURN_NONE;
    }
    st.q = (volatile int64_t *)st.buf.buf;
    Py_INCREF(m);
    st.m = m;
    Py_RETURN_NONE;
}

/* the kind of the stack from `f` down to the goroutine's BASE frame (codeclass.classify's rule);
 * -1 with an exception set */
static int stack_kind(PyFrameObject *f) {
    int top = (int)T[T_USER], user = 0;
    Py_XINCREF(f);
    while (f) {
        PyCodeObject *code = PyFrame_GetCode(f);
        PyObject *key = PyLong_FromVoidPtr(code);
        Py_DECREF(code);
        if (!key) {
            Py_DECREF(f);
            return -1;
        }
        PyObject *v = PyDict_GetItemWithError(kind_dict, key);
        Py_DECREF(key);
        long k = v ? PyLong_AsLong(v) : (long)T[T_USER];
        if (PyErr_Occurred()) {
            Py_DECREF(f);
            return -1;
        }
        if (k == T[T_BASE]) {
            Py_DECREF(f);
            return (user || top > T[T_RUNTIME]) ? top : (int)T[T_RUNTIME];
        }
        if (k > top)
            top = (int)k;
        user = 1;
        PyFrameObject *b = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = b;
    }
    return top > T[T_RUNTIME] ? top : (int)T[T_RUNTIME];
}

/* the sched lock, tried a few times: its holders keep it for microseconds, where no Python code runs
 * (a stopper yields the CPU it may share with us) */
static int trylock(sem_t *s) {
    for (int i = 0; i < 40; i++) {
        if (sem_trywait(s) == 0)
            return 1;
        if (errno != EAGAIN && errno != EINTR)
            return 0;
        if (i >= 8)
            sched_yield();
    }
    return 0;
}

static PyObject *python_hook(void) {
    return PyObject_CallNoArgs(sp_py);
}

/* the stop at the allocation whose caller's frame is `caller` (NULL: take the innermost frame's
 * caller); direct: called by the allocator's C new, which goes its slow path afterwards (the
 * Python hook there does whatever this left) */
static PyObject *stop_at_alloc(int direct) {
    if (!sp_py)
        Py_RETURN_NONE;
    PyObject *m = mstate_dict ? PyDict_GetItemWithError(mstate_dict, s__m) : NULL;     /* borrowed */
    if (PyErr_Occurred())
        return NULL;
    if (!m || m != st.m || !st.q || st.row < 0 || !st.msem)
        goto python;
    volatile int64_t *q = st.q;
    int attn = q[st.sched + T[T_S_ATTN]] != 0;
    if (!attn && !q[st.row + T[T_M_PREEMPT]])
        Py_RETURN_NONE;
    if (!attn || !q[st.sched + T[T_S_GCWAITING]] || q[st.sched + T[T_S_EXIT]] ||
        q[st.sched + T[T_S_STOPPER]] == st.mid)
        goto python;
    int err = 0;
    int64_t locks = getattr_i64(m, s_locks, &err), p = getattr_i64(m, s_p_idx, &err);
    PyObject *ig = PyObject_GetAttr(m, s_in_gcstop);
    int in_gcstop = ig ? PyObject_IsTrue(ig) : -1;
    Py_XDECREF(ig);
    if (err || in_gcstop != 0 || p == T[T_NONE] || p < 0) {
        if (clear_exception() < 0)
            return NULL;
        goto python;
    }
    if (locks)
        Py_RETURN_NONE;          /* the Python hook does nothing either: a lock's release stops it */
    /* the code that allocates: the caller of the C new, or of the entry point (malloc.new, make,
     * new_batch) that called this hook.  The walk needs no LOCKING entry codeclass has yet to make
     * (classify's _stdlib): a stop is allowed in USER and LOCKING code alike; _cstopped looks again
     * before what tells them apart (a preemption, ensure_p) */
    PyFrameObject *entry = PyEval_GetFrame(), *caller;
    if (direct) {
        caller = entry;
        Py_XINCREF(caller);
    } else {
        caller = entry ? PyFrame_GetBack(entry) : NULL;
    }
    int kind = caller ? stack_kind(caller) : (int)T[T_RUNTIME];
    if (kind < 0 || kind > T[T_LOCKING]) {
        Py_XDECREF(caller);
        if (kind < 0 && clear_exception() < 0)
            return NULL;
        if (kind < 0)
            goto python;
        Py_RETURN_NONE;          /* runtime or heap code: it stops at its own safe point */
    }
    int64_t b = st.pbase + p * T[T_P_WORDS];
    if (b + T[T_P_STATUS] >= st.words || q[st.row + T[T_M_P]] != p || !trylock(st.schedlock)) {
        Py_XDECREF(caller);
        goto python;             /* the lock held a while: the Python path waits for it */
    }
    /* gcstopm's first half: from here to the release no Python code runs (in_gcstop is a plain
     * attribute of M), so no signal handler meets the M half stopped */
    if (!q[st.sched + T[T_S_GCWAITING]] || PyObject_SetAttr(m, s_in_gcstop, Py_True) < 0) {
        sem_post(st.schedlock);
        Py_XDECREF(caller);
        if (clear_exception() < 0)
            return NULL;
        goto python;
    }
    if (q[b + T[T_P_STATUS]] == T[T_P_RUNNING]) {
        q[b + T[T_P_STATUS]] = T[T_P_GCSTOP];
        if (--q[st.sched + T[T_S_STOPWAIT]] == 0)
            sem_post(st.stwnote);
    }
    q[st.row + T[T_M_STATE]] = T[T_MS_GCSTOP];
    sem_post(st.schedlock);
    nstop++;
    /* the first park here too: an M that went on in Python to its park kept the CPU from the stopper
     * (on a machine with no free CPU it shares one with an M) for ~30 us more.  A signal (EINTR), a
     * timeout (M0 looks at the coordinator every 0.5 s) or the program's end: _cstopped's loop */
    int timed_out = 0;
    if (q[st.row + T[T_M_STATE]] == T[T_MS_GCSTOP] && !q[st.sched + T[T_S_EXIT]]) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 500000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        int r;
        Py_BEGIN_ALLOW_THREADS
        r = sem_timedwait(st.msem, &ts);
        Py_END_ALLOW_THREADS
        timed_out = r != 0 && errno == ETIMEDOUT;
    }
    PyObject *res = PyObject_CallFunctionObjArgs(cstopped_py, m, kind != T[T_USER] ? Py_True : Py_False,
                                                 timed_out ? Py_True : Py_False, caller, NULL);
    Py_DECREF(caller);
    return res;
python:
    if (direct)
        Py_RETURN_NONE;
    return python_hook();
}

static PyObject *alloc_safepoint(PyObject *mod, PyObject *unused) {
    return stop_at_alloc(0);
}

static PyObject *alloc_stop(PyObject *mod, PyObject *unused) {
    return stop_at_alloc(1);
}

/* ---- the stopper's side: stw.stop_the_world's request and start_the_world's common case ----
 *
 * The pause runs from the request to the restart's flip of the rows, and the stopper's Python there
 * (cold, in the collector that just woke) was a third of it.  stw_stop(p, spin_ns) makes the
 * request as stop_the_world does (GCWAITING, the idle and syscall Ps taken, STOPWAIT, ATTN last, all
 * under the sched lock) and spins until the Ps are stopped or spin_ns has passed, yielding the CPU
 * if the stopper holds no P: the Ps still running, for stop_the_world's wait (signals, the sleep).
 * stw_start(p, t0) restarts when every stopped P goes back to the M stopped holding it and no M
 * waits without one: (the pause in ns, the Ms to wake).  None from either: nothing was done (the
 * sched lock held a while, a stop already under way, any other restart): the Python path. */

static inline int64_t prow(int64_t p) { return st.pbase + p * T[T_P_WORDS]; }
static inline int64_t mrow(int64_t mid) { return st.mbase + mid * T[T_M_WORDS]; }

static long long clock_ns(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static PyObject *stw_stop(PyObject *mod, PyObject *args) {
    long long mp, spin_ns;
    if (!PyArg_ParseTuple(args, "LL", &mp, &spin_ns))
        return NULL;
    volatile int64_t *q = st.q;
    if (!q)
        Py_RETURN_NONE;
    int64_t s = st.sched, n = q[s + T[T_S_GOMAXPROCS]];
    if (n <= 0 || prow(n) > st.words || (mp != T[T_NONE] && (mp < 0 || mp >= n)) || !trylock(st.schedlock))
        Py_RETURN_NONE;
    if (q[s + T[T_S_GCWAITING]]) {
        sem_post(st.schedlock);
        Py_RETURN_NONE;          /* another stopper: stop_the_world waits for it */
    }
    q[s + T[T_S_GCWAITING]] = 1;
    q[s + T[T_S_STOPPER]] = st.mid;
    int64_t wait = n;
    if (mp != T[T_NONE]) {
        q[prow(mp) + T[T_P_STATUS]] = T[T_P_GCSTOP];
        wait--;
    }
    for (int64_t p = q[s + T[T_S_PIDLE]]; p != T[T_NONE] && p >= 0 && p < n; p = q[s + T[T_S_PIDLE]]) {
        q[s + T[T_S_PIDLE]] = q[prow(p) + T[T_P_LINK]];
        q[s + T[T_S_NPIDLE]]--;
        q[prow(p) + T[T_P_STATUS]] = T[T_P_GCSTOP];
        wait--;
    }
    for (int64_t p = 0; p < n; p++) {
        int64_t b = prow(p);
        if (q[b + T[T_P_STATUS]] == T[T_P_SYSCALL]) {
            q[b + T[T_P_STATUS]] = T[T_P_GCSTOP];
            int64_t mid = q[b + T[T_P_M]];
            if (mid >= 0 && mrow(mid + 1) <= st.words)
                q[mrow(mid) + T[T_M_P]] = T[T_NONE];
            q[b + T[T_P_M]] = T[T_NONE];
            wait--;
        }
    }
    q[s + T[T_S_STOPWAIT]] = wait;
    q[s + T[T_S_ATTN]] = 1;      /* last: an M that sees it finds the lock free */
    sem_post(st.schedlock);
    if (wait > 0) {
        long long until = clock_ns(CLOCK_MONOTONIC) + spin_ns;
        while (q[s + T[T_S_STOPWAIT]] > 0 && clock_ns(CLOCK_MONOTONIC) < until) {
            if (mp == T[T_NONE])
                sched_yield();   /* the collector may share its CPU with an M on its way to stop */
        }
    }
    return PyLong_FromLongLong(q[s + T[T_S_STOPWAIT]]);
}

static PyObject *stw_start(PyObject *mod, PyObject *args) {
    long long mp, t0;
    if (!PyArg_ParseTuple(args, "LL", &mp, &t0))
        return NULL;
    volatile int64_t *q = st.q;
    if (!q)
        Py_RETURN_NONE;
    int64_t s = st.sched, n = q[s + T[T_S_GOMAXPROCS]], mc = q[s + T[T_S_MCOUNT]];
    if (n <= 0 || prow(n) > st.words || mc < 0 || mrow(mc) > st.words || (mp != T[T_NONE] && (mp < 0 || mp >= n)) ||
        !trylock(st.schedlock))
        Py_RETURN_NONE;
    /* only the common restart: each stopped P to the M stopped holding it, no M stopped without one */
    int ok = n <= 64;
    int64_t mids[64];
    int nw = 0;
    for (int64_t p = 0; p < n && ok; p++) {
        int64_t b = prow(p), mid = q[b + T[T_P_M]];
        if (p == mp || q[b + T[T_P_STATUS]] != T[T_P_GCSTOP])
            continue;
        ok = mid >= 0 && mid < mc && q[mrow(mid) + T[T_M_STATE]] == T[T_MS_GCSTOP] && q[mrow(mid) + T[T_M_P]] == p;
        mids[nw++] = mid;
    }
    for (int64_t mid = 0; mid < mc && ok; mid++) {
        int64_t r = mrow(mid), p = q[r + T[T_M_P]];
        if (q[r + T[T_M_STATE]] != T[T_MS_GCSTOP])
            continue;
        ok = p >= 0 && p < n && p != mp && q[prow(p) + T[T_P_STATUS]] == T[T_P_GCSTOP] && q[prow(p) + T[T_P_M]] == mid;
    }
    PyObject *wake = ok ? PyList_New(nw) : NULL;    /* made before the first write: it may fail */
    for (int k = 0; wake && k < nw; k++) {
        PyObject *v = PyLong_FromLongLong(mids[k]);
        if (!v)
            Py_CLEAR(wake);
        else
            PyList_SET_ITEM(wake, k, v);
    }
    if (!wake) {
        sem_post(st.schedlock);
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    q[s + T[T_S_GCWAITING]] = 0;
    q[s + T[T_S_ATTN]] = q[s + T[T_S_EXIT]] ? 1 : 0;
    q[s + T[T_S_STOPPER]] = T[T_NONE];
    if (mp != T[T_NONE]) {
        q[prow(mp) + T[T_P_STATUS]] = T[T_P_RUNNING];
        q[prow(mp) + T[T_P_M]] = st.mid;
    }
    for (int k = 0; k < nw; k++) {
        int64_t mid = mids[k], p = q[mrow(mid) + T[T_M_P]];
        q[prow(p) + T[T_P_STATUS]] = T[T_P_RUNNING];
        q[mrow(mid) + T[T_M_STATE]] = T[T_MS_RUNNING];
    }
    long long dt = clock_ns(CLOCK_MONOTONIC) - t0;
    int64_t i = q[s + T[T_S_PAUSEIDX]] % T[T_NPAUSE];
    q[st.pause + 2 * i] = dt;
    q[st.pause + 2 * i + 1] = clock_ns(CLOCK_REALTIME);
    q[s + T[T_S_PAUSEIDX]] += 1;
    q[s + T[T_S_NSTW]] += 1;
    q[s + T[T_S_STWTOTAL]] += dt;
    sem_post(st.schedlock);
    nstw++;
    return Py_BuildValue("(LN)", dt, wake);
}

static PyObject *setup_safepoint(PyObject *mod, PyObject *args) {
    PyObject *consts, *sp, *cs, *kd;
    if (!PyArg_ParseTuple(args, "O!OOO!", &PyTuple_Type, &consts, &sp, &cs, &PyDict_Type, &kd) ||
        load_consts("setup_safepoint", consts, T, T_N) < 0)
        return NULL;
    keep_all((PyObject **[]){&sp_py, &cstopped_py, &kind_dict}, (PyObject *[]){sp, cs, kd}, 3);
    Py_RETURN_NONE;
}

static PyObject *setup(PyObject *mod, PyObject *args) {
    PyObject *fc, *nc, *wc, *pt, *consts, *md, *gp, *pp, *rp, *wp, *sp, *fp;
    if (!PyArg_ParseTuple(args, "O!OO!OO!O!OOOOOO", &PyDict_Type, &fc, &nc, &PyDict_Type, &wc, &pt, &PyTuple_Type,
                          &consts, &PyDict_Type, &md, &gp, &pp, &rp, &wp, &sp, &fp) ||
        load_consts("setup", consts, K, C_N) < 0)
        return NULL;
    keep_all((PyObject **[]){&fn_cache, &nocache, &wire_code, &ptr_type, &mstate_dict, &go_py, &put_py, &runqput_py,
                             &wakep_py, &safepoint_py, &fnpay_py},
             (PyObject *[]){fc, nc, wc, pt, md, gp, pp, rp, wp, sp, fp}, 11);
    ready = 1;
    Py_RETURN_NONE;
}

static PyObject *counts(PyObject *mod, PyObject *unused) {
    return Py_BuildValue("{sLsLsLsLsLsL}", "go", nfast, "payload", npay, "exit_next", nexit, "wg_done", nwg,
                         "stop", nstop, "stw", nstw);
}

static PyObject *set_trace_hook(PyObject *mod, PyObject *fn) {
    Py_INCREF(fn);
    Py_XSETREF(trace_go_py, fn == Py_None ? NULL : fn);
    if (fn == Py_None)
        Py_DECREF(fn);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"set_trace_hook", set_trace_hook, METH_O,
     "set_trace_hook(fn): fn(m, g, goroutine function) writes a traced go's GoCreate event"},
    {"counts", counts, METH_NOARGS,
     "{'go', 'payload', 'exit_next', 'wg_done', 'stop', 'stw'}: how often each fast path ran in this process (the tests check them)"},
    {"go", (PyCFunction)(void (*)(void))go, METH_FASTCALL | METH_KEYWORDS,
     "go($module, fn, /, *args, **kwargs)\n--\n\nStart a goroutine running fn(*args, **kwargs) (Go's go statement)."},
    {"exit_next", (PyCFunction)(void (*)(void))exit_next, METH_FASTCALL,
     "exit_next(m, g): goroutine g ended; the next one's slot, started in g's greenlet, or None (the Python path)"},
    {"wg_done", wg_done, METH_O, "wg_done(wg): WaitGroup.done's common case; False: the Python path"},
    {"setup_wg", setup_wg, METH_VARARGS, "setup_wg(NLOCKS, STATE, S_ATTN, M_PREEMPT, check_safepoint)"},
    {"stw_stop", stw_stop, METH_VARARGS,
     "stw_stop(p, spin_ns): stop_the_world's request; the Ps still running after the spin, or None"},
    {"stw_start", stw_start, METH_VARARGS,
     "stw_start(p, t0): start_the_world's common case: (pause ns, Ms to wake), or None"},
    {"alloc_stop", alloc_stop, METH_NOARGS,
     "alloc_stop(): the allocator's C new found a stop of the world due: take it here if it can be"},
    {"alloc_safepoint", alloc_safepoint, METH_NOARGS,
     "alloc_safepoint(): malloc's safe-point hook; a stop of the world's common case here, the rest in stw"},
    {"setup_safepoint", setup_safepoint, METH_VARARGS,
     "setup_safepoint(constants, _alloc_safepoint, _cstopped, codeclass._kind)"},
    {"setup_stop", setup_stop, METH_VARARGS,
     "setup_stop(m, mv, sched, row, pbase, id, schedlock name, stwnote name) or setup_stop(None)"},
    {"setup_exit", setup_exit, METH_VARARGS, "setup_exit(constants, GSLOTS.put, _start_here, refill_go_caches)"},
    {"payload", (PyCFunction)(void (*)(void))payload, METH_FASTCALL,
     "payload(m, g): (fn, args, None) of not-started goroutine g from its row, or None (the Python path)"},
    {"setup_payload", setup_payload, METH_VARARGS,
     "setup_payload(fn_dec, wire_class, constants, shade_row)"},
    {"setup", setup, METH_VARARGS,
     "setup(fn_cache, nocache, wire_code, ptr_type, constants, mstate globals, go, put_new, runqput, wakep, "
     "check_safepoint, fn_payload)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "csched", NULL, -1, methods};

PyMODINIT_FUNC PyInit_csched(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
#define INTERN(v, s) if (!(v = PyUnicode_InternFromString(s))) return NULL
    INTERN(s_gfree, "gfree");
    INTERN(s_goid_next, "goid_next");
    INTERN(s_goid_end, "goid_end");
    INTERN(s_curgoid, "curgoid");
    INTERN(s_sites, "sites");
    INTERN(s_row, "row");
    INTERN(s_mv8, "mv8");
    INTERN(s_ctl, "ctl");
    INTERN(s_gbase, "gbase");
    INTERN(s_a, "_a");
    INTERN(s_p, "_p");
    INTERN(s__m, "_m");
    INTERN(s_tracing, "tracing");
    INTERN(s_tgo, "tgo");
    INTERN(s_tbase, "tbase");
    INTERN(s_heap, "heap");
    INTERN(s_gcq, "gcq");
    INTERN(s_p_idx, "p");
    INTERN(s_pbase, "pbase");
    INTERN(s_sched, "sched");
    INTERN(s_plocks, "plocks");
    INTERN(s_acquire_raw, "acquire_raw");
    INTERN(s_release, "release");
    INTERN(s_cx, "cx");
    INTERN(s_wire_fields, "_wire_fields");
    INTERN(s_lockedg, "lockedg");
    INTERN(s_o, "o");
    INTERN(s__h, "_h");
    INTERN(s__w, "_w");
    INTERN(s__a, "_a");
    INTERN(s_mvq, "mvq");
    INTERN(s_localq, "localq");
    INTERN(s_timers, "timers");
    INTERN(s_greenlets, "greenlets");
    INTERN(s_tick, "tick");
    INTERN(s_id, "id");
    INTERN(s_curg, "curg");
    INTERN(s_at, "at");
    INTERN(s_locks, "locks");
    INTERN(s_in_gcstop, "in_gcstop");
    INTERN(s_schedcheck, "schedcheck");

    if (!(zero = PyLong_FromLong(0)))
        return NULL;
    return m;
}
