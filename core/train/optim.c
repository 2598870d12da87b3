/* SGD with momentum, Nesterov and weight decay, exactly as torch.optim.SGD
 * (dampening 0). Velocities are kept by parameter name, not by node id, so
 * that they survive a compressor removing or replacing nodes; pruned weights
 * (mask 0) get neither gradient nor decay nor velocity and are written back
 * as exact zeros. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/status.h>

#include "autograd_impl.h"

struct sgd_state {
    char name[DLAS_NAME_MAX + 8];
    struct dlas_tensor v;
    int started; /* v holds a velocity (else the next step starts it at g) */
};

struct dlas_sgd {
    struct dlas_sgd_options o;
    struct sgd_state *st;
    int n, cap;
};

int dlas_sgd_new(const struct dlas_sgd_options *o, struct dlas_sgd **out)
{
    *out = NULL;
    if (!o || o->momentum < 0 || o->weight_decay < 0)
        return dlas_error(DLAS_ERR_INVALID, "sgd: momentum and weight decay must be >= 0");
    if (o->nesterov && !(o->momentum > 0))
        return dlas_error(DLAS_ERR_INVALID, "sgd: Nesterov momentum needs momentum > 0");
    struct dlas_sgd *s = calloc(1, sizeof *s);
    if (!s)
        return dlas_error(DLAS_ERR_NOMEM, "sgd: out of memory");
    s->o = *o;
    *out = s;
    return DLAS_OK;
}

void dlas_sgd_reset(struct dlas_sgd *s)
{
    for (int i = 0; s && i < s->n; i++)
        dlas_tensor_free(&s->st[i].v);
    if (s)
        s->n = 0;
}

void dlas_sgd_free(struct dlas_sgd *s)
{
    if (!s)
        return;
    dlas_sgd_reset(s);
    free(s->st);
    free(s);
}

static struct sgd_state *find(struct dlas_sgd *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->st[i].name, name))
            return &s->st[i];
    return NULL;
}

static int same_shape(const struct dlas_tensor *a, const struct dlas_tensor *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

/* The state for `name` shaped as p: found, or new and not started. */
static struct sgd_state *state_for(struct dlas_sgd *s, const char *name,
                                   const struct dlas_tensor *p)
{
    struct sgd_state *e = find(s, name);
    if (e && e->v.data && same_shape(&e->v, p))
        return e;
    if (!e) {
        if (s->n == s->cap) {
            int cap = s->cap ? 2 * s->cap : 64;
            struct sgd_state *st = realloc(s->st, (size_t)cap * sizeof *st);
            if (!st) {
                dlas_error(DLAS_ERR_NOMEM, "sgd: out of memory");
                return NULL;
            }
            s->st = st;
            s->cap = cap;
        }
        e = &s->st[s->n++];
        memset(e, 0, sizeof *e);
        snprintf(e->name, sizeof e->name, "%s", name);
    }
    dlas_tensor_free(&e->v); /* a changed shape starts again */
    e->started = 0;
    if (dlas_tensor_alloc(&e->v, DLAS_F32, p->ndim, p->dims))
        return NULL;
    return e;
}

/* One parameter's update, as a job of the step's single parallel region. */
struct job {
    float *w, *v;
    const float *g;
    const uint8_t *mask;
    int64_t n;
    float wd;
    int started;
};

static void update(const struct dlas_sgd_options *o, const struct job *j, float lr)
{
    float *w = j->w, *v = j->v;
    const float *g = j->g;
    const uint8_t *mask = j->mask;
    const float wd = j->wd, mom = (float)o->momentum;
    const int started = j->started, nesterov = o->nesterov;
#pragma omp for simd schedule(static) nowait
    for (int64_t i = 0; i < j->n; i++) {
        if (mask && !mask[i]) {
            w[i] = 0.0f;
            if (v)
                v[i] = 0.0f;
            continue;
        }
        float d = g[i] + wd * w[i];
        if (v) {
            float b = started ? mom * v[i] + d : d;
            v[i] = b;
            d = nesterov ? d + mom * b : b;
        }
        w[i] -= lr * d;
    }
}

int dlas_sgd_step(struct dlas_sgd *s, struct dlas_autograd *a, double lr)
{
    if (!s || !a)
        return dlas_error(DLAS_ERR_INVALID, "sgd: NULL %s", s ? "autograd" : "optimiser");
    int rc = dlas_autograd_sync(a);
    if (rc)
        return rc;
    struct dlas_graph *g = a->g;
    struct job *jobs = malloc((size_t)(2 * a->n + 1) * sizeof *jobs);
    /* indices, not pointers: state_for may move the states */
    int *used = malloc((size_t)(2 * a->n + 1) * sizeof *used);
    if (!jobs || !used) {
        free(jobs);
        free(used);
        return dlas_error(DLAS_ERR_NOMEM, "sgd: out of memory");
    }
    int nj = 0;
    char name[DLAS_NAME_MAX + 8];
    for (int id = 0; id < a->n && !rc; id++) {
        struct dlas_node *n = dlas_graph_node(g, id);
        for (int which = 0; which < 2; which++) {
            struct dlas_tensor *p = which ? &n->bias : &n->weight;
            struct dlas_tensor *gr = dlas_autograd_param_grad(a, id, which);
            if (!p->data || !gr)
                continue;
            int plain_weight = !which && n->op != DLAS_OP_BATCHNORM;
            double decay = s->o.decay_bn_bias || plain_weight ? s->o.weight_decay : 0.0;
            struct sgd_state *e = NULL;
            if (s->o.momentum > 0) {
                snprintf(name, sizeof name, "%s.%s", n->name, which ? "bias" : "weight");
                if (!(e = state_for(s, name, p))) {
                    rc = dlas_error_context("sgd: velocity of '%s'", name);
                    break;
                }
            }
            used[nj] = e ? (int)(e - s->st) : -1;
            jobs[nj++] = (struct job){dlas_f32(p), e ? dlas_f32(&e->v) : NULL, dlas_f32(gr),
                                      p->mask, dlas_tensor_numel(p), (float)decay,
                                      e ? e->started : 0};
        }
    }
    if (!rc) {
        const float step = (float)lr;
#pragma omp parallel num_threads(a->threads)
        for (int k = 0; k < nj; k++)
            update(&s->o, &jobs[k], step);
        for (int k = 0; k < nj; k++)
            if (used[k] >= 0)
                s->st[used[k]].started = 1;
    }
    free(jobs);
    free(used);
    return rc;
}

int dlas_sgd_n_states(const struct dlas_sgd *s) { return s ? s->n : 0; }

const char *dlas_sgd_state_name(const struct dlas_sgd *s, int i)
{
    return s && i >= 0 && i < s->n ? s->st[i].name : NULL;
}

const struct dlas_tensor *dlas_sgd_state(const struct dlas_sgd *s, int i)
{
    return s && i >= 0 && i < s->n && s->st[i].started ? &s->st[i].v : NULL;
}

int dlas_sgd_set_state(struct dlas_sgd *s, const char *name, const struct dlas_tensor *v)
{
    if (!s || !name || !v || !v->data || v->dtype != DLAS_F32)
        return dlas_error(DLAS_ERR_INVALID, "sgd: bad velocity for '%s'", name ? name : "?");
    struct sgd_state *e = state_for(s, name, v);
    if (!e)
        return dlas_error_context("sgd: velocity of '%s'", name);
    memcpy(e->v.data, v->data, dlas_tensor_bytes(v));
    e->started = 1;
    return DLAS_OK;
}
