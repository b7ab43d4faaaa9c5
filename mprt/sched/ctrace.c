/* The trace converter's merge and replay in C (mprt/sched/tracefmt.py has the design and the pure
 * Python reference, which MPRT_ACCEL=0 selects and CI tests as well).
 *
 * Conv(t0, nlanes): one trace's conversion.  feed(slot, rows) takes an (n, 6) int64 C-contiguous
 * array of one ring's events, oldest first, already normalised by tracefmt.Converter.feed: (ns,
 * kind, P, stack id, a, b), a GoCreate's b being the id of its function's one-frame stack.
 * round(now_ns, final, most) merges and replays them exactly as tracefmt.Converter._round_py does:
 * the same readiness test, the same runs, the same repairs, the same bytes.  take() returns the
 * bytes of the round (one batch per lane used), close(end_ns) stops what still runs (the footer's
 * first part), placeholders() the goroutines whose start-function stack the footer must define.
 *
 * The goroutine table is open addressing on goid (never 0) with tombstones; lanes are P + 1, lane 0
 * being Go's global batch (P -1).  Nothing here calls back into Python. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* the event kinds of mprt/sched/trace.py (set by setup) */
enum { K_PROCSTART, K_PROCSTOP, K_GCSTART, K_GCDONE, K_STWSTART, K_STWDONE, K_GOCREATE, K_GOSTART, K_GOEND,
       K_GOSCHED, K_GOBLOCK, K_GOUNBLOCK, K_HEAPALLOC, K_NEXTGC, K_GOSYSCALL, K_GOSYSEXIT, K_GOSYSBLOCK,
       K_GOEXIST, K_GOMAXPROCS, K_GWAITING, K_GSYSCALL, K_TICK_SHIFT, K_WATERMARK, K_PLACEHOLDER, K_N };
static long long K[K_N];
static int kready;
static uint8_t block_ev[64];            /* wait reason -> Go's block event (setup) */
#define NREASON 64

/* Go's event numbers */
enum { EvBatch = 1, EvGomaxprocs = 4, EvProcStart = 5, EvProcStop = 6, EvGCStart = 7, EvGCDone = 8,
       EvGCSTWStart = 9, EvGCSTWDone = 10, EvGoCreate = 13, EvGoStart = 14, EvGoEnd = 15, EvGoStop = 16,
       EvGoSched = 17, EvGoPreempt = 18, EvGoBlock = 20, EvGoUnblock = 21, EvGoSysCall = 28, EvGoSysExit = 29,
       EvGoSysBlock = 30, EvGoWaiting = 31, EvGoInSyscall = 32, EvHeapAlloc = 33, EvNextGC = 34 };

enum { G_EMPTY = 0, G_RUNNABLE = 1, G_RUNNING = 2, G_WAITING = 3, G_SYSCALL = 4, G_TOMB = 5 };

typedef struct { int64_t goid, seq; int32_t state, lane; } GEnt;
typedef struct { uint8_t *b; Py_ssize_t n, cap; int64_t tick; int used; } Buf;
typedef struct { int64_t *r; Py_ssize_t head, n, cap; } Queue;

typedef struct {
    PyObject_HEAD
    int64_t t0, last, gcseq, nevents;
    int in_gc, in_stw;
    GEnt *gs;
    Py_ssize_t gcap, gused;         /* used: live + tombstones */
    int nlanes;                     /* P + 1; lane 0 is P -1 */
    int *holder;                    /* lane -> slot + 1 holding it, 0 none */
    int64_t *curg;                  /* lane -> goid running, 0 none */
    int *held;                      /* slot -> lane held + 1, 0 none */
    int nslots;
    Buf *bufs;
    int *order, norder;             /* lanes in the order first used this round */
    Queue *qs;
    int64_t *ph;                    /* goroutines given a placeholder start stack */
    Py_ssize_t nph, phcap;
    int oom;
} Conv;

static int grow(void **p, Py_ssize_t *cap, Py_ssize_t need, size_t item) {
    if (need <= *cap)
        return 0;
    Py_ssize_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *q = PyMem_Realloc(*p, c * item);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* ---- the goroutine table ---- */

static GEnt *g_find(Conv *c, int64_t goid) {
    Py_ssize_t mask = c->gcap - 1, i = (Py_ssize_t)((uint64_t)goid * 0x9E3779B97F4A7C15ULL >> 20) & mask;
    for (;;) {
        GEnt *e = &c->gs[i];
        if (e->state == G_EMPTY)
            return NULL;
        if (e->goid == goid && e->state != G_TOMB)
            return e;
        i = (i + 1) & mask;
    }
}

static int g_rehash(Conv *c, Py_ssize_t cap) {
    GEnt *old = c->gs;
    Py_ssize_t ocap = c->gcap;
    c->gs = PyMem_Calloc(cap, sizeof(GEnt));
    if (!c->gs) {
        c->gs = old;
        return -1;
    }
    c->gcap = cap;
    c->gused = 0;
    for (Py_ssize_t i = 0; i < ocap; i++) {
        if (old[i].state != G_EMPTY && old[i].state != G_TOMB) {
            Py_ssize_t mask = cap - 1, j = (Py_ssize_t)((uint64_t)old[i].goid * 0x9E3779B97F4A7C15ULL >> 20) & mask;
            while (c->gs[j].state != G_EMPTY)
                j = (j + 1) & mask;
            c->gs[j] = old[i];
            c->gused++;
        }
    }
    PyMem_Free(old);
    return 0;
}

static GEnt *g_add(Conv *c, int64_t goid) {
    if ((c->gused + 1) * 10 >= c->gcap * 7) {
        Py_ssize_t live = 0;
        for (Py_ssize_t i = 0; i < c->gcap; i++)
            live += c->gs[i].state != G_EMPTY && c->gs[i].state != G_TOMB;
        if (g_rehash(c, live * 4 > c->gcap ? c->gcap * 2 : c->gcap) < 0) {
            c->oom = 1;
            return NULL;
        }
    }
    Py_ssize_t mask = c->gcap - 1, i = (Py_ssize_t)((uint64_t)goid * 0x9E3779B97F4A7C15ULL >> 20) & mask;
    while (c->gs[i].state != G_EMPTY && c->gs[i].state != G_TOMB)
        i = (i + 1) & mask;
    if (c->gs[i].state == G_EMPTY)
        c->gused++;
    GEnt *e = &c->gs[i];
    e->goid = goid;
    e->seq = 1;
    e->state = G_RUNNABLE;
    e->lane = -1;
    return e;
}

static void g_del(GEnt *e) { e->state = G_TOMB; }

/* ---- output ---- */

static inline void put_uv(Buf *b, uint64_t v) {
    while (v >= 0x80) {
        b->b[b->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->b[b->n++] = (uint8_t)v;
}

static inline int uv_len(uint64_t v) {
    int n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* lane: P (-1 the global batch); args: the event's arguments after the tick */
static void put(Conv *c, int lane, int typ, int64_t ns, int nargs, const uint64_t *args) {
    int li = lane + 1;
    if (li < 0 || li >= c->nlanes)
        return;
    int64_t t = (ns - c->t0) >> K[K_TICK_SHIFT];
    if (t <= c->last)
        t = c->last + 1;
    c->last = t;
    Buf *b = &c->bufs[li];
    if (grow((void **)&b->b, &b->cap, b->n + 32 + 11 * (nargs + 2), 1) < 0) {
        c->oom = 1;
        return;
    }
    if (!b->used) {
        b->used = 1;
        c->order[c->norder++] = li;
        b->b[b->n++] = EvBatch | 1 << 6;
        put_uv(b, (uint64_t)(int64_t)lane);
        put_uv(b, (uint64_t)t);
        b->tick = t;
    }
    uint64_t d = (uint64_t)(t - b->tick);
    b->tick = t;
    c->nevents++;
    if (nargs < 3) {
        b->b[b->n++] = (uint8_t)(typ | nargs << 6);
        put_uv(b, d);
        for (int i = 0; i < nargs; i++)
            put_uv(b, args[i]);
    } else {
        int len = uv_len(d);
        for (int i = 0; i < nargs; i++)
            len += uv_len(args[i]);
        b->b[b->n++] = (uint8_t)(typ | 3 << 6);
        put_uv(b, (uint64_t)len);
        put_uv(b, d);
        for (int i = 0; i < nargs; i++)
            put_uv(b, args[i]);
    }
}

#define PUT(c, lane, typ, ns, ...) do { uint64_t _a[] = {__VA_ARGS__}; \
    put(c, lane, typ, ns, (int)(sizeof(_a) / sizeof(_a[0])), _a); } while (0)
#define PUT0(c, lane, typ, ns) put(c, lane, typ, ns, 0, NULL)

/* ---- Go's view, and the repairs (tracefmt.Converter's methods of the same names) ---- */

static int add_ph(Conv *c, int64_t goid) {
    if (grow((void **)&c->ph, &c->phcap, c->nph + 1, sizeof(int64_t)) < 0)
        return -1;
    c->ph[c->nph++] = goid;
    return 0;
}

static GEnt *create(Conv *c, int lane, int64_t goid, int64_t ns, int64_t newstack, int64_t stack) {
    PUT(c, lane, EvGoCreate, ns, (uint64_t)goid, (uint64_t)newstack, (uint64_t)stack);
    return g_add(c, goid);
}

static GEnt *g_get(Conv *c, int64_t goid, int64_t ns) {
    GEnt *g = g_find(c, goid);
    if (!g) {
        add_ph(c, goid);
        g = create(c, -1, goid, ns, K[K_PLACEHOLDER] + goid, 0);
    }
    return g;
}

static inline int lane_ok(Conv *c, int64_t lane) { return lane >= -1 && lane + 1 < c->nlanes; }
#define HOLDER(c, lane) ((c)->holder[(lane) + 1])
#define CURG(c, lane) ((c)->curg[(lane) + 1])

static void preempt(Conv *c, int lane, int64_t ns) {
    int64_t goid = CURG(c, lane);
    if (goid) {
        PUT(c, lane, EvGoPreempt, ns, 0);
        GEnt *g = g_find(c, goid);
        if (g) {
            g->state = G_RUNNABLE;
            g->lane = -1;
        }
        CURG(c, lane) = 0;
    }
}

static void release(Conv *c, int lane, int64_t ns) {
    if (CURG(c, lane))
        preempt(c, lane, ns);
    PUT0(c, lane, EvProcStop, ns);
    int slot = HOLDER(c, lane) - 1;
    HOLDER(c, lane) = 0;
    if (slot >= 0 && slot < c->nslots && c->held[slot] == lane + 1)
        c->held[slot] = 0;
}

static void hold(Conv *c, int slot, int lane, int64_t ns) {
    if (HOLDER(c, lane) == slot + 1)
        return;
    if (c->held[slot])
        release(c, c->held[slot] - 1, ns);
    if (HOLDER(c, lane))
        release(c, lane, ns);
    PUT(c, lane, EvProcStart, ns, (uint64_t)(slot > 0 ? slot - 1 : 0));
    HOLDER(c, lane) = slot + 1;
    c->held[slot] = lane + 1;
    CURG(c, lane) = 0;
}

static GEnt *runnable(Conv *c, int64_t goid, int64_t ns) {
    GEnt *g = g_get(c, goid, ns);
    if (!g)
        return NULL;
    if (g->state == G_RUNNING)
        preempt(c, g->lane, ns);
    else if (g->state == G_WAITING || g->state == G_SYSCALL) {
        PUT(c, -1, g->state == G_WAITING ? EvGoUnblock : EvGoSysExit, ns, (uint64_t)goid, (uint64_t)g->seq, 0);
        g->seq++;
        g->state = G_RUNNABLE;
    }
    return g;
}

/* returns the lane, or -2 */
static int running(Conv *c, int slot, int lane, int64_t goid, int64_t ns) {
    if (lane < 0) {
        if (!c->held[slot])
            return -2;
        lane = c->held[slot] - 1;
    }
    GEnt *g = g_find(c, goid);
    if (g && g->state == G_RUNNING && g->lane == lane && HOLDER(c, lane) == slot + 1)
        return lane;
    hold(c, slot, lane, ns);
    g = runnable(c, goid, ns);
    if (!g)
        return -2;
    if (CURG(c, lane))
        preempt(c, lane, ns);
    PUT(c, lane, EvGoStart, ns, (uint64_t)goid, (uint64_t)g->seq);
    g->seq++;
    g->state = G_RUNNING;
    g->lane = lane;
    CURG(c, lane) = goid;
    return lane;
}

static void stop(Conv *c, int lane, int64_t goid, int typ, int64_t ns, int64_t stack, int state) {
    if (typ == EvGoEnd)
        PUT0(c, lane, typ, ns);
    else
        PUT(c, lane, typ, ns, (uint64_t)stack);
    GEnt *g = g_find(c, goid);
    if (g) {
        if (state < 0)
            g_del(g);
        else {
            g->state = state;
            g->lane = -1;
        }
    }
    CURG(c, lane) = 0;
}

/* ---- the merge ---- */

static int ready(Conv *c, int slot, const int64_t *e) {
    int64_t kind = e[1];
    if (kind == K[K_PROCSTART]) {
        if (!lane_ok(c, e[4]))
            return 1;
        int h = HOLDER(c, e[4]);
        return h == 0 || h == slot + 1;
    }
    if (kind == K[K_GOSTART]) {
        GEnt *g = g_find(c, e[4]);
        if (!g || g->state != G_RUNNABLE)
            return 0;
        if (!lane_ok(c, e[2]) || e[2] < 0)
            return 1;
        int h = HOLDER(c, e[2]);
        return h == 0 || h == slot + 1;
    }
    if (kind == K[K_GOEND] || kind == K[K_GOSCHED] || kind == K[K_GOBLOCK] || kind == K[K_GOSYSCALL]) {
        GEnt *g = g_find(c, e[4]);
        return g && g->state == G_RUNNING && g->lane + 1 == c->held[slot];
    }
    if (kind == K[K_GOUNBLOCK]) {
        GEnt *g = g_find(c, e[4]);
        return g && g->state == G_WAITING;
    }
    if (kind == K[K_GOSYSBLOCK]) {
        GEnt *g = g_find(c, e[5]);
        return g && g->state == G_RUNNING && g->lane == e[4];
    }
    if (kind == K[K_GOSYSEXIT]) {
        GEnt *g = g_find(c, e[4]);
        return g && g->state == G_SYSCALL;
    }
    return 1;
}

static void apply(Conv *c, int slot, const int64_t *e) {
    int64_t ns = e[0], kind = e[1], p = e[2], stack = e[3], a = e[4], b = e[5];
    if (!lane_ok(c, p))
        p = -1;
    if (kind == K[K_GOCREATE]) {
        if (g_find(c, a))
            return;
        int lane = p >= 0 && HOLDER(c, p) == slot + 1 ? (int)p : -1;
        create(c, lane, a, ns, b, stack);
    } else if (kind == K[K_GOSTART]) {
        if (p >= 0)
            running(c, slot, (int)p, a, ns);
    } else if (kind == K[K_GOEND] || kind == K[K_GOSCHED] || kind == K[K_GOBLOCK] || kind == K[K_GOSYSCALL]) {
        int lane = running(c, slot, (int)p, a, ns);
        if (lane < -1)
            return;
        if (kind == K[K_GOEND])
            stop(c, lane, a, EvGoEnd, ns, 0, -1);
        else if (kind == K[K_GOSCHED])
            stop(c, lane, a, b ? EvGoPreempt : EvGoSched, ns, stack, G_RUNNABLE);
        else if (kind == K[K_GOBLOCK]) {
            int typ = b >= 0 && b < NREASON && block_ev[b] ? block_ev[b] : EvGoBlock;
            stop(c, lane, a, typ, ns, stack, typ == EvGoStop ? -1 : G_WAITING);
        } else
            PUT(c, lane, EvGoSysCall, ns, (uint64_t)stack);
    } else if (kind == K[K_PROCSTART]) {
        if (lane_ok(c, a) && a >= 0)
            hold(c, slot, (int)a, ns);
    } else if (kind == K[K_PROCSTOP]) {
        if (lane_ok(c, a) && a >= 0 && HOLDER(c, a) == slot + 1)
            release(c, (int)a, ns);
    } else if (kind == K[K_GOUNBLOCK]) {
        GEnt *g = g_find(c, a);
        if (!g) {
            g = g_get(c, a, ns);
            if (!g)
                return;
            PUT(c, -1, EvGoWaiting, ns, (uint64_t)a);
            g->seq = 2;
            g->state = G_WAITING;
        } else if (g->state == G_RUNNING) {
            stop(c, g->lane, a, EvGoBlock, ns, 0, G_WAITING);
        } else if (g->state != G_WAITING)
            return;
        int lane = p >= 0 && HOLDER(c, p) == slot + 1 ? (int)p : -1;
        PUT(c, lane, EvGoUnblock, ns, (uint64_t)a, (uint64_t)g->seq, (uint64_t)stack);
        g->seq++;
        g->state = G_RUNNABLE;
    } else if (kind == K[K_GOEXIST]) {
        if (g_find(c, a))
            return;
        add_ph(c, a);
        GEnt *g = create(c, -1, a, ns, K[K_PLACEHOLDER] + a, 0);
        if (!g)
            return;
        if (b == K[K_GWAITING] || b == K[K_GSYSCALL]) {
            PUT(c, -1, b == K[K_GWAITING] ? EvGoWaiting : EvGoInSyscall, ns, (uint64_t)a);
            g->seq = 2;
            g->state = b == K[K_GWAITING] ? G_WAITING : G_SYSCALL;
        }
    } else if (kind == K[K_GOSYSBLOCK]) {
        GEnt *g = g_find(c, b);
        if (!g || g->state != G_RUNNING || g->lane != a || !lane_ok(c, a) || a < 0)
            return;
        PUT0(c, (int)a, EvGoSysBlock, ns);
        g->state = G_SYSCALL;
        g->lane = -1;
        CURG(c, a) = 0;
        release(c, (int)a, ns);
    } else if (kind == K[K_GOSYSEXIT]) {
        GEnt *g = g_find(c, a);
        if (g && g->state == G_SYSCALL) {
            PUT(c, -1, EvGoSysExit, ns, (uint64_t)a, (uint64_t)g->seq, 0);
            g->seq++;
            g->state = G_RUNNABLE;
        }
    } else if (kind == K[K_GCSTART]) {
        if (!c->in_gc) {
            PUT(c, -1, EvGCStart, ns, (uint64_t)c->gcseq, 0);
            c->gcseq++;
            c->in_gc = 1;
        }
    } else if (kind == K[K_GCDONE]) {
        if (c->in_gc) {
            PUT0(c, -1, EvGCDone, ns);
            c->in_gc = 0;
        }
    } else if (kind == K[K_STWSTART]) {
        if (!c->in_stw) {
            PUT0(c, -1, EvGCSTWStart, ns);
            c->in_stw = 1;
        }
    } else if (kind == K[K_STWDONE]) {
        if (c->in_stw) {
            PUT0(c, -1, EvGCSTWDone, ns);
            c->in_stw = 0;
        }
    } else if (kind == K[K_HEAPALLOC]) {
        PUT(c, -1, EvHeapAlloc, ns, (uint64_t)a);
    } else if (kind == K[K_NEXTGC]) {
        PUT(c, -1, EvNextGC, ns, a < ((int64_t)1 << 62) ? (uint64_t)a : ~(uint64_t)0);
    } else if (kind == K[K_GOMAXPROCS]) {
        PUT(c, -1, EvGomaxprocs, ns, (uint64_t)a, 0);
    }
}

static const int64_t *head(Conv *c, int slot) {
    Queue *q = &c->qs[slot];
    return q->head < q->n ? q->r + 6 * q->head : NULL;
}

static PyObject *Conv_round(Conv *c, PyObject *args) {
    long long now, most;
    int final;
    if (!PyArg_ParseTuple(args, "LpL", &now, &final, &most))
        return NULL;
    int64_t limit = final ? INT64_MAX : now - K[K_WATERMARK], young = now - 8 * K[K_WATERMARK];
    long long done = 0;
    while (done < most && !c->oom) {
        /* the oldest head that applies as it is, and the oldest head */
        int best = -1, take = -1;
        int64_t bts = 0, tts = 0;
        for (int s = 0; s < c->nslots; s++) {
            const int64_t *e = head(c, s);
            if (!e || e[0] > limit)
                continue;
            if (best < 0 || e[0] < bts) {
                best = s;
                bts = e[0];
            }
            if ((take < 0 || e[0] < tts) && ready(c, s, e)) {
                take = s;
                tts = e[0];
            }
        }
        if (best < 0)
            break;
        if (take < 0) {
            if (!final && bts > young)
                break;
            apply(c, best, head(c, best));
            c->qs[best].head++;
            done++;
            continue;
        }
        int64_t nxt = limit;
        for (int s = 0; s < c->nslots; s++) {
            const int64_t *e = head(c, s);
            if (s != take && e && e[0] <= limit && e[0] < nxt)
                nxt = e[0];
        }
        Queue *q = &c->qs[take];
        for (;;) {
            apply(c, take, q->r + 6 * q->head);
            q->head++;
            done++;
            const int64_t *e = head(c, take);
            if (!e || done >= most || e[0] > nxt || !ready(c, take, e))
                break;
        }
    }
    for (int s = 0; s < c->nslots; s++) {        /* compact the queues */
        Queue *q = &c->qs[s];
        if (q->head && q->head == q->n)
            q->head = q->n = 0;
        else if (q->head > 4096 && q->head * 2 > q->n) {
            memmove(q->r, q->r + 6 * q->head, (q->n - q->head) * 6 * sizeof(int64_t));
            q->n -= q->head;
            q->head = 0;
        }
    }
    if (c->oom)
        return PyErr_NoMemory();
    return PyLong_FromLongLong(done);
}

static PyObject *Conv_feed(Conv *c, PyObject *args) {
    int slot;
    PyObject *arr;
    if (!PyArg_ParseTuple(args, "iO", &slot, &arr))
        return NULL;
    if (slot < 0 || slot >= c->nslots) {
        PyErr_Format(PyExc_ValueError, "ctrace: ring %d out of range", slot);
        return NULL;
    }
    Py_buffer b;
    if (PyObject_GetBuffer(arr, &b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (b.itemsize != 8 || b.len % 48) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "ctrace: feed wants an (n, 6) int64 array");
        return NULL;
    }
    Py_ssize_t n = b.len / 48;
    Queue *q = &c->qs[slot];
    Py_ssize_t cap = q->cap;
    if (grow((void **)&q->r, &cap, 6 * (q->n + n), sizeof(int64_t)) < 0) {
        PyBuffer_Release(&b);
        return PyErr_NoMemory();
    }
    q->cap = cap;
    memcpy(q->r + 6 * q->n, b.buf, b.len);
    q->n += n;
    PyBuffer_Release(&b);
    Py_RETURN_NONE;
}

static PyObject *Conv_take(Conv *c, PyObject *unused) {
    Py_ssize_t n = 0;
    for (int i = 0; i < c->norder; i++)
        n += c->bufs[c->order[i]].n;
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (!out)
        return NULL;
    char *p = PyBytes_AS_STRING(out);
    for (int i = 0; i < c->norder; i++) {
        Buf *b = &c->bufs[c->order[i]];
        memcpy(p, b->b, b->n);
        p += b->n;
        b->n = 0;
        b->used = 0;
    }
    c->norder = 0;
    return out;
}

static PyObject *Conv_close(Conv *c, PyObject *args) {
    long long end;
    if (!PyArg_ParseTuple(args, "L", &end))
        return NULL;
    for (int li = 0; li < c->nlanes; li++) {
        int64_t goid = c->curg[li];
        if (goid) {
            PUT(c, li - 1, EvGoSched, end, 0);
            GEnt *g = g_find(c, goid);
            if (g) {
                g->state = G_RUNNABLE;
                g->lane = -1;
            }
            c->curg[li] = 0;
        }
    }
    if (c->in_stw) {
        PUT0(c, -1, EvGCSTWDone, end);
        c->in_stw = 0;
    }
    if (c->in_gc) {
        PUT0(c, -1, EvGCDone, end);
        c->in_gc = 0;
    }
    Py_RETURN_NONE;
}

static PyObject *Conv_pending(Conv *c, PyObject *unused) {
    long long n = 0;
    for (int s = 0; s < c->nslots; s++)
        n += c->qs[s].n - c->qs[s].head;
    return PyLong_FromLongLong(n);
}

static PyObject *Conv_placeholders(Conv *c, PyObject *unused) {
    PyObject *l = PyList_New(c->nph);
    for (Py_ssize_t i = 0; l && i < c->nph; i++) {
        PyObject *v = PyLong_FromLongLong(c->ph[i]);
        if (!v) {
            Py_CLEAR(l);
            break;
        }
        PyList_SET_ITEM(l, i, v);
    }
    return l;
}

static PyObject *Conv_last(Conv *c, PyObject *unused) { return PyLong_FromLongLong(c->last); }
static PyObject *Conv_nevents(Conv *c, PyObject *unused) { return PyLong_FromLongLong(c->nevents); }

static void Conv_dealloc(Conv *c) {
    PyMem_Free(c->gs);
    PyMem_Free(c->holder);
    PyMem_Free(c->curg);
    PyMem_Free(c->held);
    if (c->bufs)
        for (int i = 0; i < c->nlanes; i++)
            PyMem_Free(c->bufs[i].b);
    PyMem_Free(c->bufs);
    PyMem_Free(c->order);
    if (c->qs)
        for (int i = 0; i < c->nslots; i++)
            PyMem_Free(c->qs[i].r);
    PyMem_Free(c->qs);
    PyMem_Free(c->ph);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyObject *Conv_new(PyTypeObject *tp, PyObject *args, PyObject *kw) {
    long long t0;
    int nlanes, nslots;
    if (!kready) {
        PyErr_SetString(PyExc_RuntimeError, "ctrace: setup() first");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "Lii", &t0, &nlanes, &nslots))
        return NULL;
    if (nlanes < 1 || nslots < 1) {
        PyErr_SetString(PyExc_ValueError, "ctrace: no lanes or rings");
        return NULL;
    }
    Conv *c = (Conv *)tp->tp_alloc(tp, 0);
    if (!c)
        return NULL;
    c->t0 = t0;
    c->nlanes = nlanes;
    c->nslots = nslots;
    c->gcap = 1024;
    c->gs = PyMem_Calloc(c->gcap, sizeof(GEnt));
    c->holder = PyMem_Calloc(nlanes, sizeof(int));
    c->curg = PyMem_Calloc(nlanes, sizeof(int64_t));
    c->held = PyMem_Calloc(nslots, sizeof(int));
    c->bufs = PyMem_Calloc(nlanes, sizeof(Buf));
    c->order = PyMem_Calloc(nlanes, sizeof(int));
    c->qs = PyMem_Calloc(nslots, sizeof(Queue));
    if (!c->gs || !c->holder || !c->curg || !c->held || !c->bufs || !c->order || !c->qs) {
        Py_DECREF(c);
        return PyErr_NoMemory();
    }
    return (PyObject *)c;
}

static PyMethodDef Conv_methods[] = {
    {"feed", (PyCFunction)Conv_feed, METH_VARARGS, "feed(slot, rows): a ring's normalised events, (n, 6) int64"},
    {"round", (PyCFunction)Conv_round, METH_VARARGS, "round(now_ns, final, most): merge and replay; how many"},
    {"take", (PyCFunction)Conv_take, METH_NOARGS, "take(): the bytes written since the last take"},
    {"close", (PyCFunction)Conv_close, METH_VARARGS, "close(end_ns): stop what runs, end an open GC or stop"},
    {"pending", (PyCFunction)Conv_pending, METH_NOARGS, "pending(): events fed and not merged yet"},
    {"placeholders", (PyCFunction)Conv_placeholders, METH_NOARGS,
     "placeholders(): goroutines whose GoCreate names the placeholder stack PLACEHOLDER + goid"},
    {"last", (PyCFunction)Conv_last, METH_NOARGS, "last(): the last tick written"},
    {"nevents", (PyCFunction)Conv_nevents, METH_NOARGS, "nevents(): events written"},
    {NULL}};

static PyTypeObject ConvType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mprt.sched.ctrace.Conv",
    .tp_basicsize = sizeof(Conv),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Conv_new,
    .tp_dealloc = (destructor)Conv_dealloc,
    .tp_methods = Conv_methods,
    .tp_doc = "Conv(t0_ns, nlanes, nrings): one trace's merge and replay (tracefmt.Converter's core)",
};

static PyObject *setup(PyObject *mod, PyObject *args) {
    PyObject *consts, *blocks;
    if (!PyArg_ParseTuple(args, "OO", &consts, &blocks))
        return NULL;
    PyObject *seq = PySequence_Fast(consts, "setup: constants");
    if (!seq)
        return NULL;
    if (PySequence_Fast_GET_SIZE(seq) != K_N) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "ctrace.setup: %d constants wanted", K_N);
        return NULL;
    }
    for (int i = 0; i < K_N; i++) {
        K[i] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));
        if (K[i] == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return NULL;
        }
    }
    Py_DECREF(seq);
    memset(block_ev, 0, sizeof(block_ev));
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    if (!PyDict_Check(blocks)) {
        PyErr_SetString(PyExc_TypeError, "ctrace.setup: block events by wait reason (a dict)");
        return NULL;
    }
    while (PyDict_Next(blocks, &pos, &k, &v)) {
        long r = PyLong_AsLong(k), e = PyLong_AsLong(v);
        if (PyErr_Occurred())
            return NULL;
        if (r >= 0 && r < NREASON)
            block_ev[r] = (uint8_t)e;
    }
    kready = 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"setup", setup, METH_VARARGS, "setup(constants, {wait reason: Go block event})"},
    {NULL}};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "mprt.sched.ctrace",
                                    "The trace converter's merge and replay (tracefmt.py)", -1, methods};

PyMODINIT_FUNC PyInit_ctrace(void) {
    if (PyType_Ready(&ConvType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m)
        return NULL;
    Py_INCREF(&ConvType);
    if (PyModule_AddObject(m, "Conv", (PyObject *)&ConvType) < 0) {
        Py_DECREF(&ConvType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
