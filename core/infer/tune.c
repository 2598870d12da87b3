/* The tuner: a budgeted search over a primitive's tunable parameters for
 * one layer. The defaults are measured first (the "untuned" baseline), then
 * candidates from the cartesian product of the knobs' values in a seeded
 * random order, each validated against the reference output before it is
 * timed, until the budget or the space runs out. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/tune.h>

#include "../base/util.h"

#define MAX_KNOBS 12
#define MAX_VALUES 40

void dlas_tune_options_default(struct dlas_tune_options *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->budget_s = 10.0;
    o->warmup = 2;
    o->repeat = 7;
    o->seed = 1;
    o->tolerance = 1e-4;
}

struct knob {
    const char *name;
    int n;
    char values[MAX_VALUES][48];
};

static void add_value(struct knob *k, const char *v)
{
    for (int i = 0; i < k->n; i++)
        if (!strcmp(k->values[i], v))
            return;
    if (k->n < MAX_VALUES)
        snprintf(k->values[k->n++], sizeof k->values[0], "%s", v);
}

/* The values tried for one tunable parameter. */
static void knob_values(const struct dlas_param_spec *s, struct knob *k)
{
    k->name = s->name;
    k->n = 0;
    char b[48];
    switch (s->type) {
    case DLAS_PARAM_INT: {
        long long lo = (long long)s->min, hi = (long long)s->max;
        if (!(s->min < s->max)) {
            add_value(k, s->def);
            break;
        }
        if (hi - lo <= MAX_VALUES - 2) {
            for (long long v = lo; v <= hi; v++) {
                snprintf(b, sizeof b, "%lld", v);
                add_value(k, b);
            }
        } else {
            /* a wide range: its ends, powers of two between, and the default */
            snprintf(b, sizeof b, "%lld", lo);
            add_value(k, b);
            for (long long v = 1; v < hi; v *= 2)
                if (v > lo) {
                    snprintf(b, sizeof b, "%lld", v);
                    add_value(k, b);
                }
            snprintf(b, sizeof b, "%lld", hi);
            add_value(k, b);
            add_value(k, s->def);
        }
        break;
    }
    case DLAS_PARAM_FLOAT:
        if (!(s->min < s->max)) {
            add_value(k, s->def);
            break;
        }
        for (int i = 0; i <= 4; i++) {
            snprintf(b, sizeof b, "%.6g", s->min + (s->max - s->min) * i / 4.0);
            add_value(k, b);
        }
        add_value(k, s->def);
        break;
    case DLAS_PARAM_BOOL:
        add_value(k, "false");
        add_value(k, "true");
        break;
    case DLAS_PARAM_ENUM: {
        const char *c = s->choices ? s->choices : "";
        while (*c) {
            const char *bar = strchr(c, '|');
            size_t l = bar ? (size_t)(bar - c) : strlen(c);
            snprintf(b, sizeof b, "%.*s", (int)l, c);
            add_value(k, b);
            c += l + (bar ? 1 : 0);
        }
        break;
    }
    default:
        add_value(k, s->def ? s->def : "");
        break;
    }
}

static uint64_t next_rand(uint64_t *s)
{
    /* splitmix64: enough to shuffle candidates reproducibly */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double normal(uint64_t *s)
{
    double u1 = ((next_rand(s) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (next_rand(s) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static double uniform(uint64_t *s) { return (next_rand(s) >> 11) / 9007199254740992.0; }

static double now_of(const struct dlas_backend *be)
{
    return be && be->ops && be->ops->now ? be->ops->now(be->ctx) : dlas_now();
}

struct bench_bufs {
    const struct dlas_conv_desc *d;
    const float *w, *bias, *in, *ref;
    float *out;
    int64_t out_n;
};

/* Prepare, validate and time one parameter set. Returns DLAS_OK with *ms
 * (median) and *mn (fastest run),
 * DLAS_ERR_UNSUPPORTED when refused, DLAS_ERR_INTERNAL when wrong. */
static int measure(const struct dlas_component *prim, const struct dlas_params *p,
                   const struct dlas_host *host, const struct dlas_backend *be,
                   const struct bench_bufs *b, const struct dlas_tune_options *o, double *ms,
                   double *mn, double *err)
{
    const struct dlas_primitive_ops *ops = prim->ops;
    char why[256];
    int rc = ops->supports(b->d, p, why, sizeof why);
    if (rc)
        return DLAS_ERR_UNSUPPORTED;
    void *st = NULL;
    rc = ops->prepare(host, be, b->d, b->w, b->d->has_bias ? b->bias : NULL, p, &st);
    if (rc)
        return rc;
    size_t wsb = ops->workspace(st, b->d->batch);
    void *ws = wsb ? be->ops->alloc(be->ctx, wsb) : NULL;
    if (wsb && !ws) {
        ops->release(st);
        return dlas_error(DLAS_ERR_NOMEM, "tune: cannot allocate %zu bytes of workspace", wsb);
    }
    for (int64_t i = 0; i < b->out_n; i++)
        b->out[i] = NAN;
    /* a device backend's primitives read and write device memory */
    const struct dlas_backend_ops *dev = dlas_backend_device_ops(be);
    const int64_t in_n = b->d->batch * b->d->in_c * b->d->in_h * b->d->in_w;
    const float *in = b->in;
    float *out = b->out;
    if (dev) {
        float *din = be->ops->alloc(be->ctx, (size_t)in_n * sizeof(float));
        float *dout = be->ops->alloc(be->ctx, (size_t)b->out_n * sizeof(float));
        rc = din && dout ? DLAS_OK : dlas_error(DLAS_ERR_NOMEM, "tune: no device memory");
        if (!rc)
            rc = dev->copy_in(be->ctx, din, b->in, (size_t)in_n * sizeof(float));
        if (!rc)
            rc = dev->copy_in(be->ctx, dout, b->out, (size_t)b->out_n * sizeof(float));
        in = din;
        out = dout;
    }
    if (!rc)
        rc = ops->run(st, b->d->batch, in, out, ws, NULL);
    if (!rc && dev)
        rc = dev->copy_out(be->ctx, b->out, out, (size_t)b->out_n * sizeof(float));
    if (!rc) {
        *err = dlas_rel_error(b->out, b->ref, b->out_n);
        if (!(*err <= o->tolerance))
            rc = dlas_error(DLAS_ERR_INTERNAL, "tune: relative error %.3g > %.3g", *err,
                            o->tolerance);
    }
    int rep = o->repeat > 0 ? o->repeat : 1;
    double *t = rc ? NULL : malloc((size_t)rep * sizeof *t);
    if (!rc && !t)
        rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (int i = 0; !rc && i < o->warmup; i++)
        rc = ops->run(st, b->d->batch, in, out, ws, NULL);
    for (int i = 0; !rc && i < rep; i++) {
        double t0 = now_of(be);
        rc = ops->run(st, b->d->batch, in, out, ws, NULL);
        if (!rc)
            rc = be->ops->sync(be->ctx);
        t[i] = (now_of(be) - t0) * 1e3;
    }
    if (dev && in && in != b->in)
        be->ops->free(be->ctx, (void *)in);
    if (dev && out && out != b->out)
        be->ops->free(be->ctx, out);
    if (!rc) {
        qsort(t, (size_t)rep, sizeof *t, dlas_cmp_double);
        *ms = rep % 2 ? t[rep / 2] : 0.5 * (t[rep / 2 - 1] + t[rep / 2]);
        *mn = t[0];
    }
    free(t);
    if (ws)
        be->ops->free(be->ctx, ws);
    ops->release(st);
    return rc;
}

/* One tuning of one layer: what its stages share. */
struct tuning {
    const struct dlas_component *prim;
    const struct dlas_host *host;
    const struct dlas_backend *be;
    const struct dlas_tune_options *o;
    struct dlas_tune_result *r;
    struct dlas_conv_desc desc;
    struct knob *knobs;
    int nk;
    double space;
    float *w, *bias, *in, *ref, *out; /* owned; the options' buffers are used where given */
    struct bench_bufs b;
    struct dlas_params *p0;     /* the untuned baseline */
    struct dlas_params *best_p; /* NULL: the defaults */
    double best, def_err;
    int have_default;
    int64_t *order;
};

static void tuning_free(struct tuning *t)
{
    dlas_params_free(t->best_p);
    free(t->order);
    free(t->knobs);
    dlas_params_free(t->p0);
    dlas_aligned_free(t->out);
    dlas_aligned_free(t->w);
    dlas_aligned_free(t->bias);
    dlas_aligned_free(t->in);
    dlas_aligned_free(t->ref);
}

/* The layer as the primitive will see it: at least one image, and no
 * activation for a primitive that does not apply one (a plan runs it after). */
static int tune_desc(struct tuning *t, const struct dlas_conv_desc *d)
{
    t->desc = *d;
    if (t->desc.batch < 1)
        t->desc.batch = 1;
    if (!dlas_prim_applies_activation(t->prim->ops))
        t->desc.activation = DLAS_ACT_NONE;
    return dlas_conv_desc_finish(&t->desc) ? dlas_last_status() : DLAS_OK;
}

/* The knobs: every scalar tunable parameter with its candidate values. */
static int collect_knobs(struct tuning *t)
{
    t->knobs = calloc(MAX_KNOBS, sizeof *t->knobs);
    if (!t->knobs)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    t->space = 1;
    for (const struct dlas_param_spec *s = t->prim->params; s && s->name && t->nk < MAX_KNOBS;
         s++)
        if (s->flags & DLAS_PARAM_TUNABLE && !(s->flags & DLAS_PARAM_LIST)) {
            knob_values(s, &t->knobs[t->nk]);
            if (t->knobs[t->nk].n > 0)
                t->space *= t->knobs[t->nk++].n;
        }
    t->r->space = t->space > 1e9 ? 1000000000 : (int)t->space;
    return DLAS_OK;
}

/* Seeded random weights, bias and input where the options give none, the
 * output buffer, and the reference output every candidate must match. */
static int make_buffers(struct tuning *t)
{
    const struct dlas_conv_desc *d = &t->desc;
    const struct dlas_tune_options *o = t->o;
    const int64_t wn = d->out_c * (d->in_c / d->groups) * d->kh * d->kw;
    const int64_t in_n = d->batch * d->in_c * d->in_h * d->in_w;
    const int64_t out_n = d->batch * d->out_c * d->out_h * d->out_w;
    t->out = dlas_aligned_alloc((size_t)out_n * sizeof(float));
    uint64_t rs = o->seed ^ 0x7475ULL;
    /* random weights, as sparse as the layer's (a sparse primitive's time
     * depends on it), the zeros spread uniformly */
    if (!o->weight && (t->w = dlas_aligned_alloc((size_t)wn * sizeof(float))))
        for (int64_t i = 0; i < wn; i++) {
            t->w[i] = (float)(normal(&rs) * 0.1);
            if (d->weight_sparsity > 0 && uniform(&rs) < d->weight_sparsity)
                t->w[i] = 0.0f;
        }
    if (!o->bias && (t->bias = dlas_aligned_alloc((size_t)d->out_c * sizeof(float))))
        for (int64_t i = 0; i < d->out_c; i++)
            t->bias[i] = (float)normal(&rs);
    if (!o->input && (t->in = dlas_aligned_alloc((size_t)in_n * sizeof(float))))
        for (int64_t i = 0; i < in_n; i++)
            t->in[i] = (float)normal(&rs);
    t->b = (struct bench_bufs){d, o->weight ? o->weight : t->w, o->bias ? o->bias : t->bias,
                               o->input ? o->input : t->in, NULL, t->out, out_n};
    if (!t->out || !t->b.w || !t->b.bias || !t->b.in)
        return dlas_error(DLAS_ERR_NOMEM, "tune: out of memory for layer buffers");
    if (o->reference)
        t->b.ref = o->reference;
    else if ((t->ref = dlas_aligned_alloc((size_t)out_n * sizeof(float)))) {
        dlas_ref_conv2d(d, d->batch, t->b.in, t->b.w, d->has_bias ? t->b.bias : NULL, t->ref);
        t->b.ref = t->ref;
    }
    return t->b.ref ? DLAS_OK : dlas_error(DLAS_ERR_NOMEM, "out of memory");
}

/* Count a candidate that was refused or wrong; anything else is an error. */
static int count_reject(struct tuning *t, int m)
{
    if (m == DLAS_ERR_UNSUPPORTED)
        t->r->refused++;
    else if (m == DLAS_ERR_INTERNAL)
        t->r->invalid++;
    else
        return m;
    return DLAS_OK;
}

/* The defaults: the untuned baseline, and the first best. Candidates are
 * ranked by their fastest run, which other processes on the machine disturb
 * least; the winner and the defaults are timed again, interleaved, at the end. */
static int measure_defaults(struct tuning *t, const struct dlas_params *base)
{
    int rc = base ? ((t->p0 = dlas_params_clone(base)) ? DLAS_OK : DLAS_ERR_NOMEM)
                  : (t->prim->params ? dlas_params_defaults(t->prim->params, &t->p0) : DLAS_OK);
    if (rc)
        return rc;
    double ms = 0, mn = 0, err = 0;
    int m = measure(t->prim, t->p0, t->host, t->be, &t->b, t->o, &ms, &mn, &err);
    if (m != DLAS_OK)
        return count_reject(t, m);
    t->have_default = 1;
    t->r->default_ms = ms;
    t->def_err = err;
    t->best = mn;
    t->r->best_err = err;
    t->r->tried++;
    if (dlas_params_tunables(t->p0, t->r->settings, sizeof t->r->settings))
        t->r->settings[0] = '\0';
    return DLAS_OK;
}

/* Candidates in a seeded random order: a shuffled list of the whole space
 * when it is small (t->order), independent draws when it is not. */
static int candidate_order(struct tuning *t, int64_t *n_cand)
{
    const int64_t SHUFFLE_MAX = 65536;
    *n_cand = t->nk ? (int64_t)(t->space > 1e9 ? 1e9 : t->space) : 0;
    if (!*n_cand || *n_cand > SHUFFLE_MAX)
        return DLAS_OK;
    t->order = malloc((size_t)*n_cand * sizeof *t->order);
    if (!t->order)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < *n_cand; i++)
        t->order[i] = i;
    uint64_t s = t->o->seed;
    for (int64_t i = *n_cand - 1; i > 0; i--) {
        int64_t j = (int64_t)(next_rand(&s) % (uint64_t)(i + 1));
        int64_t x = t->order[i];
        t->order[i] = t->order[j];
        t->order[j] = x;
    }
    return DLAS_OK;
}

/* The parameters of candidate idx (a mixed-radix number over the knobs);
 * NULL with *refused set when a value does not apply. */
static struct dlas_params *candidate(struct tuning *t, int64_t idx, int *refused)
{
    *refused = 0;
    struct dlas_params *p = dlas_params_clone(t->p0);
    if (!p)
        return NULL;
    for (int k = 0; k < t->nk; k++) {
        int v = (int)(idx % t->knobs[k].n);
        idx /= t->knobs[k].n;
        if (dlas_params_set(p, t->knobs[k].name, t->knobs[k].values[v], "tune")) {
            dlas_params_free(p);
            *refused = 1;
            return NULL;
        }
    }
    return p;
}

/* Try candidates until the space, the time budget or the candidate limit
 * runs out, keeping the fastest that is right. */
static int search(struct tuning *t)
{
    int64_t n_cand;
    int rc = candidate_order(t, &n_cand);
    uint64_t draw = t->o->seed ^ 0xd1ceULL;
    const double t_start = now_of(t->be);
    for (int64_t c = 0; !rc && c < n_cand; c++) {
        if (now_of(t->be) - t_start > t->o->budget_s)
            break;
        if (t->o->max_candidates > 0 && t->r->tried >= t->o->max_candidates)
            break;
        int64_t idx = t->order ? t->order[c] : (int64_t)(next_rand(&draw) % (uint64_t)n_cand);
        int refused;
        struct dlas_params *p = candidate(t, idx, &refused);
        if (!p) {
            if (!refused)
                return dlas_error(DLAS_ERR_NOMEM, "out of memory");
            t->r->refused++;
            continue;
        }
        double ms = 0, mn = 0, err = 0;
        int m = measure(t->prim, p, t->host, t->be, &t->b, t->o, &ms, &mn, &err);
        if (m == DLAS_OK) {
            t->r->tried++;
            if (mn < t->best) {
                t->best = mn;
                t->r->best_ms = ms;
                t->r->best_err = err;
                if (dlas_params_tunables(p, t->r->settings, sizeof t->r->settings))
                    t->r->settings[0] = '\0';
                dlas_params_free(t->best_p);
                t->best_p = p;
                p = NULL;
            }
        } else
            rc = count_reject(t, m);
        dlas_params_free(p);
    }
    return rc;
}

/* The winner against the defaults, interleaved: it must beat them on
 * medians, or the defaults stand. */
static int confirm_winner(struct tuning *t)
{
    struct dlas_tune_result *r = t->r;
    if (!t->have_default)
        return DLAS_OK;
    if (!t->best_p) {
        r->best_ms = r->default_ms;
        return DLAS_OK;
    }
    enum { ROUNDS = 3 };
    double dm[ROUNDS], bm[ROUNDS], mn = 0, e2 = 0;
    for (int k = 0; k < ROUNDS; k++) {
        int m = measure(t->prim, t->p0, t->host, t->be, &t->b, t->o, &dm[k], &mn, &e2);
        if (!m)
            m = measure(t->prim, t->best_p, t->host, t->be, &t->b, t->o, &bm[k], &mn, &e2);
        if (m)
            return m;
    }
    qsort(dm, ROUNDS, sizeof dm[0], dlas_cmp_double);
    qsort(bm, ROUNDS, sizeof bm[0], dlas_cmp_double);
    r->default_ms = dm[ROUNDS / 2];
    r->best_ms = bm[ROUNDS / 2];
    if (r->best_ms >= r->default_ms) {
        r->best_ms = r->default_ms;
        r->best_err = t->def_err;
        if (dlas_params_tunables(t->p0, r->settings, sizeof r->settings))
            r->settings[0] = '\0';
    }
    return DLAS_OK;
}

/* Tuning a layer: its descriptor, the knobs, the buffers and reference, the
 * defaults, the search, the winner confirmed against the defaults. */
int dlas_tune_layer(const struct dlas_component *prim, const struct dlas_params *base,
                    const struct dlas_host *host, const struct dlas_backend *be,
                    const struct dlas_conv_desc *d, const struct dlas_tune_options *o,
                    struct dlas_tune_result *r)
{
    memset(r, 0, sizeof *r);
    if (!prim || prim->kind != DLAS_KIND_PRIMITIVE || !be || !be->ops || !d || !o || !host)
        return dlas_error(DLAS_ERR_INVALID, "tune: needs a primitive, backend, layer, options");
    struct tuning t;
    memset(&t, 0, sizeof t);
    t.prim = prim;
    t.host = host;
    t.be = be;
    t.o = o;
    t.r = r;
    t.best = INFINITY;
    int rc = tune_desc(&t, d);
    if (!rc)
        rc = collect_knobs(&t);
    if (!rc)
        rc = make_buffers(&t);
    if (!rc)
        rc = measure_defaults(&t, base);
    if (!rc)
        rc = search(&t);
    if (!rc)
        rc = confirm_winner(&t);
    if (!rc)
        dlas_clear_error(); /* refusals and rejects were counted, not failures */
    if (!rc && !isfinite(t.best))
        rc = dlas_error(DLAS_ERR_UNSUPPORTED,
                        "tune: primitive '%s' ran no candidate for this layer (%d refused, %d "
                        "wrong)",
                        prim->name, r->refused, r->invalid);
    if (!t.have_default)
        r->default_ms = NAN;
    tuning_free(&t);
    return rc;
}
