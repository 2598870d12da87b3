/* Training checkpoints: the graph's tensors under their usual names (so the
 * file also loads as plain weights), and the trainer's state beside them:
 *   trainer:state    f64  version, epoch, step, and the running sums of the
 *                         epoch in progress (steps, loss, correct, samples,
 *                         seconds)
 *   trainer:recipe   u8[8]  fingerprint of the recipe and seed
 *   trainer:rng      u8[32] the dropout RNG, little-endian words
 *   trainer:history  f64 epochs x HIST_COLS, the metrics of finished epochs
 *   optim:<param>    f32 each started SGD velocity
 * Written through dlas_ckpt_writer: a temporary file, fsynced and renamed,
 * so a kill at any moment leaves the previous checkpoint or the new one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/checkpoint.h>
#include <dlas/status.h>

#include "train_impl.h"

#define STATE_VERSION 1
enum { ST_VERSION, ST_EPOCH, ST_STEP, ST_ACC_STEPS, ST_ACC_LOSS, ST_ACC_CORRECT, ST_ACC_SAMPLES,
       ST_ACC_SECONDS, ST_N };
enum { HIST_COLS = 13 };
#define OPTIM_PREFIX "optim:"

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void hist_row(const struct dlas_epoch_metrics *m, double *r)
{
    double v[HIST_COLS] = {(double)m->epoch, (double)m->steps, (double)m->samples, m->lr,
                           m->train_loss, m->train_top1, m->evaluated, m->eval_split,
                           m->eval_loss, m->eval_top1, m->eval_top5, m->seconds,
                           m->images_per_s};
    memcpy(r, v, sizeof v);
}

static void hist_unrow(const double *r, struct dlas_epoch_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->epoch = (int64_t)r[0];
    m->steps = (int64_t)r[1];
    m->samples = (int64_t)r[2];
    m->lr = r[3];
    m->train_loss = r[4];
    m->train_top1 = r[5];
    m->evaluated = (int)r[6];
    m->eval_split = (int)r[7];
    m->eval_loss = r[8];
    m->eval_top1 = r[9];
    m->eval_top5 = r[10];
    m->seconds = r[11];
    m->images_per_s = r[12];
}

static int add_graph(struct dlas_ckpt_writer *w, const struct dlas_graph *g)
{
    static const char *const fields[4] = {"weight", "bias", "running_mean", "running_var"};
    char name[DLAS_NAME_MAX + 32];
    int rc = DLAS_OK;
    for (int i = 0; i < dlas_graph_n_nodes(g) && !rc; i++) {
        struct dlas_node *n = dlas_graph_node(g, i);
        const struct dlas_tensor *t[4] = {&n->weight, &n->bias, &n->running_mean,
                                          &n->running_var};
        for (int k = 0; k < 4 && !rc; k++) {
            if (!t[k]->data)
                continue;
            snprintf(name, sizeof name, "%s.%s", n->name, fields[k]);
            rc = dlas_ckpt_writer_add(w, name, t[k]->dtype, t[k]->ndim, t[k]->dims, t[k]->data);
            if (!rc && t[k]->mask) {
                snprintf(name, sizeof name, "%s.%s.mask", n->name, fields[k]);
                rc = dlas_ckpt_writer_add(w, name, DLAS_U8, t[k]->ndim, t[k]->dims, t[k]->mask);
            }
        }
    }
    return rc;
}

int dlas_trainer_save(struct dlas_trainer *t, const char *path)
{
    if (!t || !path)
        return dlas_error(DLAS_ERR_INVALID, "train checkpoint: NULL %s", t ? "path" : "trainer");
    struct dlas_ckpt_writer *w;
    int rc = dlas_ckpt_writer_open(path, &w);
    if (rc)
        return rc;
    rc = add_graph(w, t->g);
    double st[ST_N];
    st[ST_VERSION] = STATE_VERSION;
    st[ST_EPOCH] = (double)t->epoch;
    st[ST_STEP] = (double)t->step;
    st[ST_ACC_STEPS] = (double)t->acc.steps;
    st[ST_ACC_LOSS] = t->acc.loss_sum;
    st[ST_ACC_CORRECT] = (double)t->acc.correct;
    st[ST_ACC_SAMPLES] = (double)t->acc.samples;
    st[ST_ACC_SECONDS] = t->acc.seconds;
    int64_t dims[2] = {ST_N, 0};
    if (!rc)
        rc = dlas_ckpt_writer_add(w, "trainer:state", DLAS_F64, 1, dims, st);
    uint8_t recipe[8], rng[32];
    put_u64(recipe, trainer_recipe_sig(t));
    for (int i = 0; i < 4; i++)
        put_u64(rng + 8 * i, t->rng.s[i]);
    dims[0] = 8;
    if (!rc)
        rc = dlas_ckpt_writer_add(w, "trainer:recipe", DLAS_U8, 1, dims, recipe);
    dims[0] = 32;
    if (!rc)
        rc = dlas_ckpt_writer_add(w, "trainer:rng", DLAS_U8, 1, dims, rng);
    if (!rc && t->n_hist) {
        double *h = malloc((size_t)(t->n_hist * HIST_COLS) * sizeof *h);
        if (!h)
            rc = dlas_error(DLAS_ERR_NOMEM, "train checkpoint: out of memory");
        for (int64_t i = 0; h && i < t->n_hist; i++)
            hist_row(&t->hist[i], h + i * HIST_COLS);
        dims[0] = t->n_hist;
        dims[1] = HIST_COLS;
        if (!rc)
            rc = dlas_ckpt_writer_add(w, "trainer:history", DLAS_F64, 2, dims, h);
        free(h);
    }
    char name[DLAS_NAME_MAX + 64];
    for (int i = 0; !rc && i < dlas_sgd_n_states(t->sgd); i++) {
        const struct dlas_tensor *v = dlas_sgd_state(t->sgd, i);
        if (!v)
            continue;
        snprintf(name, sizeof name, OPTIM_PREFIX "%s", dlas_sgd_state_name(t->sgd, i));
        rc = dlas_ckpt_writer_add(w, name, DLAS_F32, v->ndim, v->dims, v->data);
    }
    if (rc) {
        dlas_ckpt_writer_abort(w);
        return dlas_error_context("train checkpoint %s", path);
    }
    return dlas_ckpt_writer_commit(w);
}

static int read_exact(struct dlas_ckpt *c, const char *name, enum dlas_dtype dtype, int64_t n,
                      void *buf)
{
    const struct dlas_ckpt_entry *e = dlas_ckpt_lookup(c, name);
    if (!e)
        return dlas_error(DLAS_ERR_CORRUPT, "checkpoint %s: no '%s': not a training checkpoint",
                          dlas_ckpt_path(c), name);
    if (e->dtype != dtype || e->nbytes != (uint64_t)n * dlas_dtype_size(dtype))
        return dlas_error(DLAS_ERR_CORRUPT, "checkpoint %s: '%s' has the wrong type or size",
                          dlas_ckpt_path(c), name);
    return dlas_ckpt_read(c, e, buf, (size_t)e->nbytes);
}

int dlas_trainer_load(struct dlas_trainer *t, const char *path)
{
    if (!t || !path)
        return dlas_error(DLAS_ERR_INVALID, "train checkpoint: NULL %s", t ? "path" : "trainer");
    struct dlas_ckpt *c;
    int rc = dlas_ckpt_open(path, &c);
    if (rc)
        return rc;
    double st[ST_N];
    uint8_t recipe[8], rng[32];
    struct dlas_epoch_metrics *hist = NULL;
    int64_t n_hist = 0;
    if (!(rc = read_exact(c, "trainer:state", DLAS_F64, ST_N, st)) &&
        !(rc = read_exact(c, "trainer:recipe", DLAS_U8, 8, recipe)))
        rc = read_exact(c, "trainer:rng", DLAS_U8, 32, rng);
    if (!rc && st[ST_VERSION] != STATE_VERSION)
        rc = dlas_error(DLAS_ERR_CORRUPT, "checkpoint %s: trainer state version %g, expected %d",
                        path, st[ST_VERSION], STATE_VERSION);
    if (!rc && get_u64(recipe) != trainer_recipe_sig(t))
        rc = dlas_error(DLAS_ERR_INVALID,
                        "checkpoint %s was written under another training recipe or seed; "
                        "remove it to start again",
                        path);
    const struct dlas_ckpt_entry *he = rc ? NULL : dlas_ckpt_lookup(c, "trainer:history");
    if (he) {
        if (he->dtype != DLAS_F64 || he->ndim != 2 || he->dims[1] != HIST_COLS)
            rc = dlas_error(DLAS_ERR_CORRUPT, "checkpoint %s: malformed trainer:history", path);
        double *h = rc ? NULL : malloc((size_t)he->nbytes);
        n_hist = he->dims[0];
        hist = rc ? NULL : calloc((size_t)n_hist, sizeof *hist);
        if (!rc && (!h || !hist))
            rc = dlas_error(DLAS_ERR_NOMEM, "checkpoint %s: out of memory", path);
        if (!rc)
            rc = dlas_ckpt_read(c, he, h, (size_t)he->nbytes);
        for (int64_t i = 0; !rc && i < n_hist; i++)
            hist_unrow(h + i * HIST_COLS, &hist[i]);
        free(h);
    }
    /* Everything is read and checked before the trainer changes. */
    struct dlas_sgd_options so = {t->o.momentum, t->o.weight_decay, t->o.nesterov,
                                  t->o.decay_bn_bias};
    struct dlas_sgd *sgd = NULL;
    if (!rc)
        rc = dlas_sgd_new(&so, &sgd);
    size_t np = strlen(OPTIM_PREFIX);
    for (size_t i = 0; !rc && i < dlas_ckpt_count(c); i++) {
        const struct dlas_ckpt_entry *e = dlas_ckpt_entry_at(c, i);
        if (strncmp(e->name, OPTIM_PREFIX, np))
            continue;
        struct dlas_tensor v;
        memset(&v, 0, sizeof v);
        if (!(rc = dlas_ckpt_read_tensor(c, e->name, &v)))
            rc = dlas_sgd_set_state(sgd, e->name + np, &v);
        dlas_tensor_free(&v);
    }
    dlas_ckpt_close(c);
    if (!rc)
        rc = dlas_checkpoint_load_graph(t->g, path, DLAS_CKPT_ALLOW_UNEXPECTED);
    if (rc) {
        dlas_sgd_free(sgd);
        free(hist);
        return rc;
    }
    dlas_sgd_free(t->sgd);
    t->sgd = sgd;
    free(t->hist);
    t->hist = hist;
    t->n_hist = t->cap_hist = n_hist;
    t->epoch = (int64_t)st[ST_EPOCH];
    t->step = (int64_t)st[ST_STEP];
    t->acc.steps = (int64_t)st[ST_ACC_STEPS];
    t->acc.loss_sum = st[ST_ACC_LOSS];
    t->acc.correct = (int64_t)st[ST_ACC_CORRECT];
    t->acc.samples = (int64_t)st[ST_ACC_SAMPLES];
    t->acc.seconds = st[ST_ACC_SECONDS];
    for (int i = 0; i < 4; i++)
        t->rng.s[i] = get_u64(rng + 8 * i);
    return dlas_autograd_sync(t->ag);
}
