/* A graph's weights to and from a checkpoint, by tensor name. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/checkpoint.h>
#include <dlas/params.h>
#include <dlas/status.h>

/* Fields from QUANT_FIELD on are a conv's int8 parameters (<dlas/quant.h>):
 * a file may bring them to a graph that has none (a quantised model loaded
 * into the freshly built network). */
enum { FIELDS = 6, QUANT_FIELD = 4, TNAME_MAX = DLAS_NAME_MAX + 32 };
static const char *const field_names[FIELDS] = {"weight",       "bias",        "running_mean",
                                                "running_var",  "weight_scale", "input_quant"};

static struct dlas_tensor *field(struct dlas_node *n, int k)
{
    struct dlas_tensor *t[FIELDS] = {&n->weight,       &n->bias,        &n->running_mean,
                                     &n->running_var,  &n->weight_scale, &n->input_quant};
    return t[k];
}

static void tensor_name(const struct dlas_node *n, int k, int mask, char *buf)
{
    snprintf(buf, TNAME_MAX, "%s.%s%s", n->name, field_names[k], mask ? ".mask" : "");
}

static const char *shape_str(int ndim, const int64_t *dims, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    if (ndim == 0)
        snprintf(buf, len, "scalar");
    for (int i = 0; i < ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? "x" : "",
                                 (long long)dims[i]);
    return buf;
}

int dlas_checkpoint_save_graph(const struct dlas_graph *g, const char *path)
{
    if (!g)
        return dlas_error(DLAS_ERR_INVALID, "checkpoint %s: NULL graph", path ? path : "");
    if (dlas_graph_status(g))
        return dlas_error(dlas_graph_status(g), "checkpoint %s: the graph is incomplete (a "
                          "builder call failed)", path ? path : "");
    struct dlas_ckpt_writer *w;
    int rc = dlas_ckpt_writer_open(path, &w);
    if (rc)
        return rc;
    char name[TNAME_MAX];
    for (int i = 0; i < dlas_graph_n_nodes(g) && !rc; i++) {
        struct dlas_node *n = dlas_graph_node(g, i);
        for (int k = 0; k < FIELDS && !rc; k++) {
            const struct dlas_tensor *t = field(n, k);
            if (!t->data)
                continue;
            tensor_name(n, k, 0, name);
            rc = dlas_ckpt_writer_add(w, name, t->dtype, t->ndim, t->dims, t->data);
            if (!rc && t->mask) {
                tensor_name(n, k, 1, name);
                rc = dlas_ckpt_writer_add(w, name, DLAS_U8, t->ndim, t->dims, t->mask);
            }
        }
    }
    if (rc) {
        dlas_ckpt_writer_abort(w);
        return rc;
    }
    return dlas_ckpt_writer_commit(w);
}

/* One graph tensor and where its new contents come from. */
struct item {
    struct dlas_tensor *t;
    int field;  /* index into field_names */
    int create; /* a quantisation tensor the graph does not have yet */
    const struct dlas_ckpt_entry *e, *mask;
    void *data;
    uint8_t *maskdata;
};

static int check_entry(const struct dlas_ckpt *c, const char *name,
                       const struct dlas_ckpt_entry *e, enum dlas_dtype dtype, int ndim,
                       const int64_t *dims)
{
    char b1[96], b2[96];
    if (e->dtype != dtype)
        return dlas_error(DLAS_ERR_INVALID,
                          "checkpoint %s: tensor '%s' is %s in the file but %s in the graph",
                          dlas_ckpt_path(c), name, dlas_dtype_name(e->dtype),
                          dlas_dtype_name(dtype));
    if (e->ndim != ndim || memcmp(e->dims, dims, (size_t)ndim * sizeof *dims))
        return dlas_error(DLAS_ERR_INVALID,
                          "checkpoint %s: tensor '%s' is %s in the file but %s in the graph",
                          dlas_ckpt_path(c), name, shape_str(e->ndim, e->dims, b1, sizeof b1),
                          shape_str(ndim, dims, b2, sizeof b2));
    return DLAS_OK;
}

/* A conv's quantisation tensor that the file has and the graph lacks. */
static int match_new_quant(struct dlas_ckpt *c, struct dlas_node *n, int k, struct item *items,
                           int *n_items, uint8_t *claimed)
{
    char name[TNAME_MAX];
    tensor_name(n, k, 0, name);
    const struct dlas_ckpt_entry *e = dlas_ckpt_lookup(c, name);
    if (!e)
        return DLAS_OK;
    int64_t dims[1] = {k == QUANT_FIELD ? n->attr.conv.out_channels : 2};
    int rc = check_entry(c, name, e, DLAS_F32, 1, dims);
    if (rc)
        return rc;
    claimed[e - dlas_ckpt_entry_at(c, 0)] = 1;
    struct item *it = &items[(*n_items)++];
    it->t = field(n, k);
    it->field = k;
    it->e = e;
    it->create = 1;
    return DLAS_OK;
}

/* Match file entries to graph tensors (claiming them) and check them. */
static int match(struct dlas_graph *g, struct dlas_ckpt *c, unsigned flags, struct item *items,
                 int *n_items, uint8_t *claimed)
{
    const struct dlas_ckpt_entry *first = dlas_ckpt_entry_at(c, 0);
    char name[TNAME_MAX], b[96];
    int rc = DLAS_OK;
    *n_items = 0;
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        struct dlas_node *n = dlas_graph_node(g, i);
        for (int k = 0; k < FIELDS; k++) {
            struct dlas_tensor *t = field(n, k);
            if (!t->data) {
                if (k >= QUANT_FIELD && n->op == DLAS_OP_CONV2D &&
                    (rc = match_new_quant(c, n, k, items, n_items, claimed)))
                    return rc;
                continue;
            }
            tensor_name(n, k, 0, name);
            const struct dlas_ckpt_entry *e = dlas_ckpt_lookup(c, name);
            if (!e) {
                if (flags & DLAS_CKPT_ALLOW_MISSING)
                    continue;
                return dlas_error(DLAS_ERR_NOTFOUND,
                                  "checkpoint %s: tensor '%s' is missing (the graph's is %s "
                                  "%s)",
                                  dlas_ckpt_path(c), name, dlas_dtype_name(t->dtype),
                                  shape_str(t->ndim, t->dims, b, sizeof b));
            }
            if ((rc = check_entry(c, name, e, t->dtype, t->ndim, t->dims)))
                return rc;
            claimed[e - first] = 1;
            struct item *it = &items[(*n_items)++];
            it->t = t;
            it->field = k;
            it->e = e;
            tensor_name(n, k, 1, name);
            if ((it->mask = dlas_ckpt_lookup(c, name))) {
                if ((rc = check_entry(c, name, it->mask, DLAS_U8, t->ndim, t->dims)))
                    return rc;
                claimed[it->mask - first] = 1;
            }
        }
    }
    return DLAS_OK;
}

/* Names of every graph tensor, for "did you mean" hints. */
static const char *nearest_tensor(const struct dlas_graph *g, const char *word)
{
    int nn = dlas_graph_n_nodes(g), m = 0;
    char (*names)[TNAME_MAX] = malloc((size_t)(nn * FIELDS + 1) * sizeof *names);
    const char **ptrs = malloc((size_t)(nn * FIELDS + 1) * sizeof *ptrs);
    static _Thread_local char found[TNAME_MAX];
    const char *near = NULL;
    if (names && ptrs) {
        for (int i = 0; i < nn; i++)
            for (int k = 0; k < FIELDS; k++)
                if (field(dlas_graph_node(g, i), k)->data) {
                    tensor_name(dlas_graph_node(g, i), k, 0, names[m]);
                    ptrs[m] = names[m];
                    m++;
                }
        near = dlas_nearest(word, ptrs, (size_t)m);
        if (near) {
            snprintf(found, sizeof found, "%s", near);
            near = found;
        }
    }
    free(names);
    free(ptrs);
    return near;
}

/* Steps and scales positive, the zero point an integer in 0..255: checked
 * before the graph changes, as a hostile file may hold anything. */
static int check_quant_values(const struct dlas_ckpt *c, const struct item *it)
{
    const float *v = it->data;
    int64_t n = (int64_t)(it->e->nbytes / sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        int zp = it->field == QUANT_FIELD + 1 && i == 1;
        if (zp ? !(v[i] >= 0.0f && v[i] <= 255.0f && v[i] == floorf(v[i]))
               : !(v[i] > 0.0f && isfinite(v[i])))
            return dlas_error(DLAS_ERR_INVALID,
                              "checkpoint %s: tensor '%s' element %lld is %g (%s)",
                              dlas_ckpt_path(c), it->e->name, (long long)i, (double)v[i],
                              zp ? "a zero point must be an integer in 0..255"
                                 : "a scale must be positive and finite");
    }
    return DLAS_OK;
}

static void items_free(struct item *items, int n)
{
    for (int i = 0; items && i < n; i++) {
        dlas_aligned_free(items[i].data);
        free(items[i].maskdata);
    }
    free(items);
}

int dlas_checkpoint_load_graph(struct dlas_graph *g, const char *path, unsigned flags)
{
    if (!g)
        return dlas_error(DLAS_ERR_INVALID, "checkpoint %s: NULL graph", path ? path : "");
    struct dlas_ckpt *c;
    int rc = dlas_ckpt_open(path, &c);
    if (rc)
        return rc;
    const size_t ne = dlas_ckpt_count(c);
    struct item *items = calloc((size_t)dlas_graph_n_nodes(g) * FIELDS + 1, sizeof *items);
    uint8_t *claimed = calloc(ne + 1, 1);
    int n_items = 0;
    if (!items || !claimed) {
        rc = dlas_error(DLAS_ERR_NOMEM, "checkpoint %s: out of memory", path);
        goto out;
    }
    if ((rc = match(g, c, flags, items, &n_items, claimed)))
        goto out;
    for (size_t i = 0; i < ne && !(flags & DLAS_CKPT_ALLOW_UNEXPECTED); i++) {
        if (claimed[i])
            continue;
        const char *name = dlas_ckpt_entry_at(c, i)->name;
        const char *near = nearest_tensor(g, name);
        rc = dlas_error(DLAS_ERR_INVALID,
                        "checkpoint %s: tensor '%s' is not in the graph%s%s%s", path, name,
                        near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
        goto out;
    }
    /* read everything before touching the graph */
    for (int i = 0; i < n_items && !rc; i++) {
        struct item *it = &items[i];
        if (!(it->data = dlas_aligned_alloc((size_t)it->e->nbytes)) ||
            (it->mask && !(it->maskdata = malloc((size_t)it->mask->nbytes + 1)))) {
            rc = dlas_error(DLAS_ERR_NOMEM, "checkpoint %s: tensor '%s': out of memory", path,
                            it->e->name);
            break;
        }
        rc = dlas_ckpt_read(c, it->e, it->data, (size_t)it->e->nbytes);
        if (!rc && it->mask)
            rc = dlas_ckpt_read(c, it->mask, it->maskdata, (size_t)it->mask->nbytes);
        if (!rc && it->field >= QUANT_FIELD)
            rc = check_quant_values(c, it);
    }
    if (rc)
        goto out;
    for (int i = 0; i < n_items; i++) {
        struct item *it = &items[i];
        if (it->create) {
            memset(it->t, 0, sizeof *it->t);
            it->t->dtype = it->e->dtype;
            it->t->ndim = it->e->ndim;
            memcpy(it->t->dims, it->e->dims, sizeof it->t->dims);
        }
        dlas_aligned_free(it->t->data);
        free(it->t->mask);
        it->t->data = it->data;
        it->t->mask = it->maskdata;
        it->data = NULL;
        it->maskdata = NULL;
        dlas_tensor_mask_apply(it->t); /* pruned elements must read exactly zero */
    }
out:
    items_free(items, n_items);
    free(claimed);
    dlas_ckpt_close(c);
    return rc;
}
