/* autolog._speedups: the training thread's hot path in C (optional; autolog works the same without it).

   FastPut wraps the spool's pure-Python ``put`` closure (autolog/spool.py, ``_make_put``) and shares its state
   through the closure's own cells (busy, buf, pos, limit, base, ids, fresh): the Python code is unchanged and
   reads and writes the very same variables. FastPut journals only the common case itself:

     a METRICS record (tag, run id, step, timestamp, values) with an exact int step (int64), an exact float
     timestamp, an exact dict of values whose keys are exact str already registered (a key id) in the current
     segment for that run and whose values are exact float or exact int that convert to a double, with room
     left in the segment and ``busy`` not set; or such a record where some values are of a type in ``deferred``
     (a set the Python code fills with the types it has found it never journals: tensors, text, None...). Those
     stay in memory only, in a dict of their own, and the record queued is the 7-tuple the Python code queues
     then: (tag, run id, step, timestamp, values, end offset, {key: value not journaled}). A training loop's step
     (a loss tensor beside a float learning rate) takes this path.

   It packs the 32-byte slots (journal.SLOT: "<IdqdI", key id, value, step, timestamp, MAGIC) into the segment's
   mapping, advances pos and appends the record the Python code would append (the record itself, or the 6-tuple
   with its end offset when ``fresh``), calling the writer's ``_put_crowded`` when the queue is at or over its
   threshold, exactly as the Python code does. Everything else goes to the Python ``put`` unchanged, before any
   state is touched. ``busy`` is set while FastPut works, as the Python code sets it, so that if any Python code
   runs in between (a garbage collection running a finalizer, ``_put_crowded``) no other call writes the mapping.

   log_plain(put, tag, run_id, step, metrics): ``ActiveRun.log_metrics``'s common case: when ``metrics`` is an
   exact dict whose values are all exact float or int, put (tag, run_id, step, time.time(), dict(metrics)) and
   return True; otherwise return False having done nothing (the caller takes its Python path).

   class_counts, log_loss_sum, rank_sum: the per-row passes of a scikit-learn classifier's training metrics
   (autolog/integrations/sklearn/_metrics.py), each one loop in place of a dozen numpy calls. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

#ifndef Py_TPFLAGS_HAVE_VECTORCALL
#define Py_TPFLAGS_HAVE_VECTORCALL _Py_TPFLAGS_HAVE_VECTORCALL
#endif

#define SLOT_SIZE 32
#define STACK_ITEMS 16

static PyObject *time_time = NULL; /* time.time, the clock runs.py's ``_now`` is */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *slow;         /* the Python put closure */
    PyObject *queue;        /* the writer's deque */
    PyObject *append;       /* queue.append */
    PyObject *put_crowded;  /* writer._put_crowded */
    PyObject *tag;          /* writer.METRICS */
    Py_ssize_t crowded;
    uint32_t magic;
    PyObject *busy, *buf, *pos, *limit, *base, *ids, *fresh; /* cells of the closure */
    PyObject *deferred;     /* the set of value types the Python code never journals */
} FastPut;

static PyTypeObject FastPut_Type;

/* Store a 32-byte slot little-endian, as struct "<IdqdI" does. */
static inline void
pack_slot(char *p, uint32_t kid, double value, int64_t step, double ts, uint32_t magic)
{
#if PY_LITTLE_ENDIAN
    memcpy(p, &kid, 4);
    memcpy(p + 4, &value, 8);
    memcpy(p + 12, &step, 8);
    memcpy(p + 20, &ts, 8);
    memcpy(p + 28, &magic, 4);
#else
    unsigned char tmp[SLOT_SIZE];
    uint64_t v;
    int i;
    for (i = 0; i < 4; i++) tmp[i] = (unsigned char)(kid >> (8 * i));
    memcpy(&v, &value, 8);
    for (i = 0; i < 8; i++) tmp[4 + i] = (unsigned char)(v >> (8 * i));
    v = (uint64_t)step;
    for (i = 0; i < 8; i++) tmp[12 + i] = (unsigned char)(v >> (8 * i));
    memcpy(&v, &ts, 8);
    for (i = 0; i < 8; i++) tmp[20 + i] = (unsigned char)(v >> (8 * i));
    for (i = 0; i < 4; i++) tmp[28 + i] = (unsigned char)(magic >> (8 * i));
    memcpy(p, tmp, SLOT_SIZE);
#endif
}

/* An exact int cell value as a Py_ssize_t; -1 (no error set) when it is not one. */
static inline Py_ssize_t
cell_size(PyObject *cell)
{
    PyObject *v = PyCell_GET(cell);
    Py_ssize_t n;
    if (v == NULL || !PyLong_CheckExact(v)) return -1;
    n = PyLong_AsSsize_t(v);
    if (n == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    return n;
}

static inline int
cell_store(PyObject *cell, PyObject *value) /* steals ``value`` */
{
    PyObject *old = PyCell_GET(cell);
    PyCell_SET(cell, value);
    Py_XDECREF(old);
    return 0;
}

static PyObject *
slow_put(FastPut *self, PyObject *record)
{
    return PyObject_CallOneArg(self->slow, record);
}

/* Journal and queue one record. Returns a new reference (None) or NULL with an exception set. */
static PyObject *
fastput_put(FastPut *self, PyObject *record)
{
    PyObject *rid, *step_obj, *ts_obj, *values, *keys, *key, *value, *kid_obj, *ids;
    PyObject *out = NULL, *res = NULL, *pos_obj, *left = NULL;
    Py_ssize_t n, i, seen, it, p, limit, base, span;
    long long step;
    int overflow;
    double ts;
    uint32_t kid_stack[STACK_ITEMS];
    double val_stack[STACK_ITEMS];
    uint32_t *kids = kid_stack;
    double *vals = val_stack;
    Py_buffer view;
    char *dst;

    if (PyCell_GET(self->busy) != Py_False) return slow_put(self, record); /* another call is in the mapping */
    if (!PyTuple_CheckExact(record) || PyTuple_GET_SIZE(record) != 5 || PyTuple_GET_ITEM(record, 0) != self->tag)
        return slow_put(self, record);
    rid = PyTuple_GET_ITEM(record, 1);
    step_obj = PyTuple_GET_ITEM(record, 2);
    ts_obj = PyTuple_GET_ITEM(record, 3);
    values = PyTuple_GET_ITEM(record, 4);
    if (!PyDict_CheckExact(values) || !PyLong_CheckExact(step_obj) || !PyFloat_CheckExact(ts_obj)
        || !PyUnicode_CheckExact(rid))
        return slow_put(self, record);
    step = PyLong_AsLongLongAndOverflow(step_obj, &overflow);
    if (overflow || (step == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return slow_put(self, record);
    }
    ts = PyFloat_AS_DOUBLE(ts_obj);
    n = PyDict_GET_SIZE(values);
    p = cell_size(self->pos);
    limit = cell_size(self->limit);
    base = cell_size(self->base);
    if (p < 0 || limit < 0 || base < 0 || n == 0 || n > (PY_SSIZE_T_MAX >> 6)) return slow_put(self, record);
    span = n << 5;
    if (p + span > limit) return slow_put(self, record); /* a new segment first: Python rolls it */
    ids = PyCell_GET(self->ids);
    if (ids == NULL || !PyDict_CheckExact(ids)) return slow_put(self, record);

    /* From here on ``busy`` is set: the Python code and other threads see a call in the mapping. */
    Py_INCREF(Py_True);
    cell_store(self->busy, Py_True);

    keys = PyDict_GetItemWithError(ids, rid); /* borrowed; exact str key: no Python code */
    if (keys == NULL || !PyDict_CheckExact(keys)) goto fallback_clear;
    if (n > STACK_ITEMS) {
        kids = PyMem_Malloc((size_t)n * sizeof(uint32_t));
        vals = PyMem_Malloc((size_t)n * sizeof(double));
        if (kids == NULL || vals == NULL) goto fallback_clear;
    }
    /* First every key id and value (nothing is written unless each is plain or deferred), then the slots. */
    it = 0;
    i = 0;    /* values journaled */
    seen = 0; /* values looked at */
    while (PyDict_Next(values, &it, &key, &value)) {
        long kid;
        int deferred = 0;
        if (seen++ >= n || !PyUnicode_CheckExact(key)) goto fallback_clear;
        if (PyFloat_CheckExact(value)) {
            vals[i] = PyFloat_AS_DOUBLE(value);
        }
        else if (PyLong_CheckExact(value)) {
            vals[i] = PyLong_AsDouble(value); /* as struct's "d" converts an int; a huge one: Python's path */
            if (vals[i] == -1.0 && PyErr_Occurred()) goto fallback_clear;
        }
        else if (PySet_GET_SIZE(self->deferred) && PySet_Contains(self->deferred, (PyObject *)Py_TYPE(value)) == 1) {
            deferred = 1;
        }
        else {
            goto fallback_clear;
        }
        kid_obj = PyDict_GetItemWithError(keys, key);
        if (kid_obj == NULL || !PyLong_CheckExact(kid_obj)) goto fallback_clear; /* a new key: Python registers it */
        kid = PyLong_AsLong(kid_obj);
        if (kid <= 0 || (unsigned long)kid > 0xFFFFFFFFUL) goto fallback_clear;
        if (deferred) {
            if (left == NULL && (left = PyDict_New()) == NULL) goto fallback_clear;
            if (PyDict_SetItem(left, key, value) < 0) goto fallback_clear;
        }
        else {
            kids[i++] = (uint32_t)kid;
        }
    }
    if (seen != n) goto fallback_clear;
    span = i << 5; /* the bytes journaled (the room checked above was for every value) */

    /* The record to queue: built before the slots are written (an allocation may run a collection). */
    if (left != NULL) {
        PyObject *end = PyLong_FromSsize_t(base + p + span);
        if (end == NULL) goto error;
        out = PyTuple_Pack(7, self->tag, rid, step_obj, ts_obj, values, end, left);
        Py_DECREF(end);
        if (out == NULL) goto error;
    }
    else if (PyCell_GET(self->fresh) != Py_False) {
        PyObject *end = PyLong_FromSsize_t(base + p + span);
        if (end == NULL) goto error;
        out = PyTuple_Pack(6, self->tag, rid, step_obj, ts_obj, values, end);
        Py_DECREF(end);
        if (out == NULL) goto error;
    }
    else {
        out = record;
        Py_INCREF(out);
    }
    pos_obj = PyLong_FromSsize_t(p + span);
    if (pos_obj == NULL) goto error;

    if (PyObject_GetBuffer(PyCell_GET(self->buf), &view, PyBUF_WRITABLE) < 0) { /* a closed mapping: Python */
        Py_DECREF(pos_obj);
        Py_CLEAR(out);
        goto fallback_clear;
    }
    if (view.len < p + span) {
        PyBuffer_Release(&view);
        Py_DECREF(pos_obj);
        Py_CLEAR(out);
        goto fallback;
    }
    dst = (char *)view.buf + p;
    n = span >> 5;
    for (i = 0; i < n; i++, dst += SLOT_SIZE) pack_slot(dst, kids[i], vals[i], (int64_t)step, ts, self->magic);
    PyBuffer_Release(&view);
    cell_store(self->pos, pos_obj);
    if (out != record && left == NULL) { /* as the Python code: a record with values left keeps ``fresh`` */
        Py_INCREF(Py_False);
        cell_store(self->fresh, Py_False);
    }

    if (PyObject_Size(self->queue) < self->crowded)
        res = PyObject_CallOneArg(self->append, out);
    else
        res = PyObject_CallOneArg(self->put_crowded, out);
    Py_DECREF(out);
    Py_XDECREF(res);
    Py_XDECREF(left);
    Py_INCREF(Py_False);
    cell_store(self->busy, Py_False);
    if (kids != kid_stack) {
        PyMem_Free(kids);
        PyMem_Free(vals);
    }
    if (res == NULL) return NULL;
    Py_RETURN_NONE;

error:
    Py_XDECREF(out);
    Py_XDECREF(left);
    Py_INCREF(Py_False);
    cell_store(self->busy, Py_False);
    if (kids != kid_stack) {
        PyMem_Free(kids);
        PyMem_Free(vals);
    }
    return NULL;

fallback_clear:
    PyErr_Clear();
fallback:
    Py_XDECREF(left);
    Py_INCREF(Py_False);
    cell_store(self->busy, Py_False);
    if (kids != kid_stack) {
        PyMem_Free(kids);
        PyMem_Free(vals);
    }
    return slow_put(self, record);
}

static PyObject *
fastput_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "put() takes exactly one argument (the record)");
        return NULL;
    }
    return fastput_put((FastPut *)self, args[0]);
}

static int
check_cell(PyObject *cell, const char *name)
{
    if (!PyCell_Check(cell)) {
        PyErr_Format(PyExc_TypeError, "FastPut: %s must be a closure cell", name);
        return -1;
    }
    return 0;
}

static PyObject *
fastput_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"slow", "queue", "crowded", "put_crowded", "tag", "magic", "busy", "buf", "pos",
                             "limit", "base", "ids", "fresh", "deferred", NULL};
    PyObject *slow, *queue, *put_crowded, *tag, *busy, *buf, *pos, *limit, *base, *ids, *fresh, *deferred;
    Py_ssize_t crowded;
    unsigned long magic;
    FastPut *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOnOOkOOOOOOOO!:FastPut", kwlist, &slow, &queue, &crowded,
                                     &put_crowded, &tag, &magic, &busy, &buf, &pos, &limit, &base, &ids, &fresh,
                                     &PySet_Type, &deferred))
        return NULL;
    if (check_cell(busy, "busy") || check_cell(buf, "buf") || check_cell(pos, "pos") || check_cell(limit, "limit")
        || check_cell(base, "base") || check_cell(ids, "ids") || check_cell(fresh, "fresh"))
        return NULL;
    if (!PyCallable_Check(slow) || !PyCallable_Check(put_crowded)) {
        PyErr_SetString(PyExc_TypeError, "FastPut: slow and put_crowded must be callable");
        return NULL;
    }
    self = (FastPut *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->append = PyObject_GetAttrString(queue, "append");
    if (self->append == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->vectorcall = fastput_vectorcall;
    self->crowded = crowded;
    self->magic = (uint32_t)magic;
#define KEEP(field, obj) \
    do {                 \
        Py_INCREF(obj);  \
        self->field = obj; \
    } while (0)
    KEEP(slow, slow);
    KEEP(queue, queue);
    KEEP(put_crowded, put_crowded);
    KEEP(tag, tag);
    KEEP(busy, busy);
    KEEP(buf, buf);
    KEEP(pos, pos);
    KEEP(limit, limit);
    KEEP(base, base);
    KEEP(ids, ids);
    KEEP(fresh, fresh);
    KEEP(deferred, deferred);
#undef KEEP
    return (PyObject *)self;
}

static int
fastput_traverse(FastPut *self, visitproc visit, void *arg)
{
    Py_VISIT(self->slow);
    Py_VISIT(self->queue);
    Py_VISIT(self->append);
    Py_VISIT(self->put_crowded);
    Py_VISIT(self->tag);
    Py_VISIT(self->busy);
    Py_VISIT(self->buf);
    Py_VISIT(self->pos);
    Py_VISIT(self->limit);
    Py_VISIT(self->base);
    Py_VISIT(self->ids);
    Py_VISIT(self->fresh);
    Py_VISIT(self->deferred);
    return 0;
}

static int
fastput_clear(FastPut *self)
{
    Py_CLEAR(self->slow);
    Py_CLEAR(self->queue);
    Py_CLEAR(self->append);
    Py_CLEAR(self->put_crowded);
    Py_CLEAR(self->tag);
    Py_CLEAR(self->busy);
    Py_CLEAR(self->buf);
    Py_CLEAR(self->pos);
    Py_CLEAR(self->limit);
    Py_CLEAR(self->base);
    Py_CLEAR(self->ids);
    Py_CLEAR(self->fresh);
    Py_CLEAR(self->deferred);
    return 0;
}

static void
fastput_dealloc(FastPut *self)
{
    PyObject_GC_UnTrack(self);
    fastput_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
fastput_get_slow(FastPut *self, void *closure)
{
    Py_INCREF(self->slow);
    return self->slow;
}

static PyGetSetDef fastput_getset[] = {
    {"slow", (getter)fastput_get_slow, NULL, "the pure-Python put this one falls back to", NULL},
    {NULL},
};

static PyTypeObject FastPut_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "autolog._speedups.FastPut",
    .tp_basicsize = sizeof(FastPut),
    .tp_dealloc = (destructor)fastput_dealloc,
    .tp_vectorcall_offset = offsetof(FastPut, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "The spool's put with its common case in C (see autolog/_speedups.c).",
    .tp_traverse = (traverseproc)fastput_traverse,
    .tp_clear = (inquiry)fastput_clear,
    .tp_getset = fastput_getset,
    .tp_new = fastput_new,
};

/* log_plain(put, tag, run_id, step, metrics) -> bool */
static PyObject *
log_plain(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *put, *metrics, *key, *value, *copy, *ts, *record, *res;
    Py_ssize_t it = 0;

    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "log_plain(put, tag, run_id, step, metrics) takes 5 arguments");
        return NULL;
    }
    put = args[0];
    metrics = args[4];
    if (!PyDict_CheckExact(metrics)) Py_RETURN_FALSE;
    while (PyDict_Next(metrics, &it, &key, &value)) {
        if (!PyFloat_CheckExact(value) && !PyLong_CheckExact(value)) Py_RETURN_FALSE;
    }
    copy = PyDict_Copy(metrics);
    if (copy == NULL) return NULL;
    ts = PyObject_CallNoArgs(time_time);
    if (ts == NULL) {
        Py_DECREF(copy);
        return NULL;
    }
    record = PyTuple_New(5);
    if (record == NULL) {
        Py_DECREF(copy);
        Py_DECREF(ts);
        return NULL;
    }
    Py_INCREF(args[1]);
    PyTuple_SET_ITEM(record, 0, args[1]);
    Py_INCREF(args[2]);
    PyTuple_SET_ITEM(record, 1, args[2]);
    Py_INCREF(args[3]);
    PyTuple_SET_ITEM(record, 2, args[3]);
    PyTuple_SET_ITEM(record, 3, ts);
    PyTuple_SET_ITEM(record, 4, copy);
    if (Py_TYPE(put) == &FastPut_Type)
        res = fastput_put((FastPut *)put, record);
    else
        res = PyObject_CallOneArg(put, record);
    Py_DECREF(record);
    if (res == NULL) return NULL;
    Py_DECREF(res);
    Py_RETURN_TRUE;
}

/* -- training metrics of a classifier (autolog/integrations/sklearn/_metrics.py) --------------------------------
   The per-row work of the metrics computed after a scikit-learn fit, one pass each in place of a dozen numpy calls
   (each of which costs more than its arithmetic on a thousand rows). Arrays come through the buffer protocol:
   row indices as int64, probabilities as a C-ordered float64 matrix, in this machine's byte order; anything else
   raises TypeError and the caller takes its numpy path. An index out of range raises ValueError. */

typedef struct {
    Py_buffer view;
    int held;
} Buf;

static void
buf_release(Buf *b)
{
    if (b->held) PyBuffer_Release(&b->view);
    b->held = 0;
}

/* A contiguous buffer of ``ndim`` dimensions whose items are 8-byte signed ints ('q' or 'l') or doubles ('d'). */
static int
buf_get(PyObject *obj, Buf *b, char kind, int ndim, const char *what)
{
    const char *f;
    if (PyObject_GetBuffer(obj, &b->view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: not a C-contiguous buffer", what);
        return -1;
    }
    b->held = 1;
    f = b->view.format == NULL ? "B" : b->view.format;
#if PY_LITTLE_ENDIAN
    if (f[0] == '<' || f[0] == '=' || f[0] == '@') f++;
#else
    if (f[0] == '>' || f[0] == '!' || f[0] == '=' || f[0] == '@') f++;
#endif
    if (b->view.ndim != ndim || b->view.itemsize != 8 || f[1] != '\0' ||
        (kind == 'i' ? (f[0] != 'q' && f[0] != 'l') : f[0] != 'd')) {
        buf_release(b);
        PyErr_Format(PyExc_TypeError, "%s: not %dD %s", what, ndim, kind == 'i' ? "int64" : "float64");
        return -1;
    }
    return 0;
}

static PyObject *
int_list(const Py_ssize_t *counts, Py_ssize_t k)
{
    PyObject *out = PyList_New(k);
    Py_ssize_t i;
    if (out == NULL) return NULL;
    for (i = 0; i < k; i++) {
        PyObject *v = PyLong_FromSsize_t(counts[i]);
        if (v == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, v);
    }
    return out;
}

/* The most probable class of a row: numpy's argmax (the first maximum; a NaN counts as the maximum). */
static inline Py_ssize_t
row_argmax(const double *row, Py_ssize_t k)
{
    Py_ssize_t j, best = 0;
    double m = row[0];
    if (m != m) return 0;
    for (j = 1; j < k; j++) {
        double v = row[j];
        if (v != v) return j;
        if (v > m) {
            m = v;
            best = j;
        }
    }
    return best;
}

static PyObject *
class_counts(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Buf t = {0}, q = {0}, pr = {0};
    Py_ssize_t n, k, i, *tp = NULL, *support, *predicted;
    const int64_t *truth, *pred = NULL;
    const double *proba = NULL;
    PyObject *a = NULL, *b = NULL, *c = NULL, *out = NULL;

    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "class_counts(true_idx, pred_idx, proba, k) takes 4 arguments");
        return NULL;
    }
    k = PyLong_AsSsize_t(args[3]);
    if (k == -1 && PyErr_Occurred()) return NULL;
    if (k < 1) {
        PyErr_SetString(PyExc_ValueError, "class_counts: k < 1");
        return NULL;
    }
    if (buf_get(args[0], &t, 'i', 1, "true_idx") < 0) return NULL;
    n = t.view.shape[0];
    truth = (const int64_t *)t.view.buf;
    if (args[1] != Py_None) {
        if (buf_get(args[1], &q, 'i', 1, "pred_idx") < 0) goto done;
        if (q.view.shape[0] != n) {
            PyErr_SetString(PyExc_ValueError, "class_counts: pred_idx and true_idx differ in length");
            goto done;
        }
        pred = (const int64_t *)q.view.buf;
    } else {
        if (buf_get(args[2], &pr, 'd', 2, "proba") < 0) goto done;
        if (pr.view.shape[0] != n || pr.view.shape[1] != k) {
            PyErr_SetString(PyExc_ValueError, "class_counts: proba is not (len(true_idx), k)");
            goto done;
        }
        proba = (const double *)pr.view.buf;
    }
    tp = PyMem_Calloc((size_t)(3 * k), sizeof(Py_ssize_t));
    if (tp == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    support = tp + k;
    predicted = tp + 2 * k;
    for (i = 0; i < n; i++) {
        int64_t ti = truth[i];
        int64_t pi = pred != NULL ? pred[i] : (int64_t)row_argmax(proba + i * k, k);
        if (ti < 0 || ti >= k) {
            PyErr_SetString(PyExc_ValueError, "class_counts: a true index out of range");
            goto done;
        }
        support[ti]++;
        if (pi >= 0 && pi < k) {
            predicted[pi]++;
            if (pi == ti) tp[ti]++;
        }
    }
    a = int_list(tp, k);
    b = a == NULL ? NULL : int_list(support, k);
    c = b == NULL ? NULL : int_list(predicted, k);
    if (c != NULL) out = PyTuple_Pack(3, a, b, c);
done:
    Py_XDECREF(a);
    Py_XDECREF(b);
    Py_XDECREF(c);
    PyMem_Free(tp);
    buf_release(&t);
    buf_release(&q);
    buf_release(&pr);
    return out;
}

static PyObject *
log_loss_sum(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    /* sum over rows of log(clip(proba[i, column[i]] / sum(proba[i]), eps, 1)); NaN propagates as in numpy */
    const double eps = 2.220446049250313e-16;
    Buf pr = {0}, col = {0};
    Py_ssize_t n, k, i, j;
    const double *proba;
    const int64_t *column;
    double total = 0.0;
    PyObject *out = NULL;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "log_loss_sum(proba, column) takes 2 arguments");
        return NULL;
    }
    if (buf_get(args[0], &pr, 'd', 2, "proba") < 0) return NULL;
    if (buf_get(args[1], &col, 'i', 1, "column") < 0) goto done;
    n = pr.view.shape[0];
    k = pr.view.shape[1];
    if (col.view.shape[0] != n || k < 1) {
        PyErr_SetString(PyExc_ValueError, "log_loss_sum: column is not one index per row");
        goto done;
    }
    proba = (const double *)pr.view.buf;
    column = (const int64_t *)col.view.buf;
    for (i = 0; i < n; i++) {
        const double *row = proba + i * k;
        double s = 0.0, p;
        int64_t c = column[i];
        if (c < 0 || c >= k) {
            PyErr_SetString(PyExc_ValueError, "log_loss_sum: a column out of range");
            goto done;
        }
        for (j = 0; j < k; j++) s += row[j];
        p = row[c] / s;
        if (p < eps)
            p = eps;
        else if (p > 1.0)
            p = 1.0;
        total += log(p);
    }
    out = PyFloat_FromDouble(total);
done:
    buf_release(&pr);
    buf_release(&col);
    return out;
}

static PyObject *
rank_sum(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    /* (sum of the ranks of the rows whose column is c, their count): ranks of proba[:, c] in the ascending ``order``
       (an argsort of it), 1-based, tied scores given their group's average rank (the Mann-Whitney statistic). */
    Buf pr = {0}, ord = {0}, col = {0};
    Py_ssize_t n, k, c, i, j;
    const double *proba;
    const int64_t *order, *column;
    double total = 0.0;
    Py_ssize_t positives = 0;
    PyObject *out = NULL;

    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "rank_sum(proba, c, order, column) takes 4 arguments");
        return NULL;
    }
    c = PyLong_AsSsize_t(args[1]);
    if (c == -1 && PyErr_Occurred()) return NULL;
    if (buf_get(args[0], &pr, 'd', 2, "proba") < 0) return NULL;
    if (buf_get(args[2], &ord, 'i', 1, "order") < 0) goto done;
    if (buf_get(args[3], &col, 'i', 1, "column") < 0) goto done;
    n = pr.view.shape[0];
    k = pr.view.shape[1];
    if (c < 0 || c >= k || ord.view.shape[0] != n || col.view.shape[0] != n) {
        PyErr_SetString(PyExc_ValueError, "rank_sum: shapes or class out of range");
        goto done;
    }
    proba = (const double *)pr.view.buf;
    order = (const int64_t *)ord.view.buf;
    column = (const int64_t *)col.view.buf;
    for (i = 0; i < n; i++) {
        if (order[i] < 0 || order[i] >= n) {
            PyErr_SetString(PyExc_ValueError, "rank_sum: an order index out of range");
            goto done;
        }
    }
    i = 0;
    while (i < n) {
        double v = proba[order[i] * k + c];
        Py_ssize_t pos = 0;
        j = i;
        do {  /* the group of scores equal to v (a NaN equals nothing: a group of its own) */
            pos += column[order[j]] == c;
            j++;
        } while (j < n && proba[order[j] * k + c] == v);
        total += (double)pos * ((double)(i + 1 + j) / 2.0);  /* the average of ranks i+1 .. j */
        positives += pos;
        i = j;
    }
    out = Py_BuildValue("(dn)", total, positives);
done:
    buf_release(&pr);
    buf_release(&ord);
    buf_release(&col);
    return out;
}

static PyMethodDef module_methods[] = {
    {"class_counts", (PyCFunction)(void (*)(void))class_counts, METH_FASTCALL,
     "class_counts(true_idx, pred_idx, proba, k) -> (tp, support, predicted): per-class counts (lists of k ints); "
     "pred_idx None: each row's most probable class of proba (numpy's argmax); a pred index outside 0..k-1 is "
     "no class."},
    {"log_loss_sum", (PyCFunction)(void (*)(void))log_loss_sum, METH_FASTCALL,
     "log_loss_sum(proba, column) -> float: the sum of log(clip(proba[i, column[i]] / proba[i].sum(), eps, 1))."},
    {"rank_sum", (PyCFunction)(void (*)(void))rank_sum, METH_FASTCALL,
     "rank_sum(proba, c, order, column) -> (rank sum, count) of the rows whose column is c, ranked by proba[:, c] "
     "in ``order`` (its argsort), ties averaged."},
    {"log_plain", (PyCFunction)(void (*)(void))log_plain, METH_FASTCALL,
     "log_plain(put, tag, run_id, step, metrics) -> bool: put (tag, run_id, step, time.time(), dict(metrics)) "
     "when metrics is an exact dict of exact float/int values; False (nothing done) otherwise."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "autolog._speedups",
    .m_doc = "The training thread's hot path in C: see autolog/_speedups.c.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *m, *time_module;

    if (PyType_Ready(&FastPut_Type) < 0) return NULL;
    time_module = PyImport_ImportModule("time");
    if (time_module == NULL) return NULL;
    time_time = PyObject_GetAttrString(time_module, "time");
    Py_DECREF(time_module);
    if (time_time == NULL) return NULL;
    m = PyModule_Create(&module_def);
    if (m == NULL) return NULL;
    Py_INCREF(&FastPut_Type);
    if (PyModule_AddObject(m, "FastPut", (PyObject *)&FastPut_Type) < 0) {
        Py_DECREF(&FastPut_Type);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
