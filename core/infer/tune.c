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

int dlas_tune_layer(const struct dlas_component *prim, const struct dlas_params *base,
                    const struct dlas_host *host, const struct dlas_backend *be,
                    const struct dlas_conv_desc *d, const struct dlas_tune_options *o,
                    struct dlas_tune_result *r)
{
    memset(r, 0, sizeof *r);
    if (!prim || prim->kind != DLAS_KIND_PRIMITIVE || !be || !be->ops || !d || !o || !host)
        return dlas_error(DLAS_ERR_INVALID, "tune: needs a primitive, backend, layer, options");
    struct dlas_conv_desc desc = *d;
    if (desc.batch < 1)
        desc.batch = 1;
    /* a primitive that does not apply activations is tuned without one (a
     * plan runs the activation after it) */
    if (!dlas_prim_applies_activation(prim->ops))
        desc.activation = DLAS_ACT_NONE;
    if (dlas_conv_desc_finish(&desc))
        return dlas_last_status();

    /* knobs */
    struct knob *knobs = calloc(MAX_KNOBS, sizeof *knobs);
    if (!knobs)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    int nk = 0;
    double space = 1;
    for (const struct dlas_param_spec *s = prim->params; s && s->name && nk < MAX_KNOBS; s++)
        if (s->flags & DLAS_PARAM_TUNABLE && !(s->flags & DLAS_PARAM_LIST)) {
            knob_values(s, &knobs[nk]);
            if (knobs[nk].n > 0)
                space *= knobs[nk++].n;
        }
    r->space = space > 1e9 ? 1000000000 : (int)space;

    /* buffers */
    const int64_t wn = desc.out_c * (desc.in_c / desc.groups) * desc.kh * desc.kw;
    const int64_t in_n = desc.batch * desc.in_c * desc.in_h * desc.in_w;
    const int64_t out_n = desc.batch * desc.out_c * desc.out_h * desc.out_w;
    float *w = NULL, *bias = NULL, *in = NULL, *ref = NULL;
    float *out = dlas_aligned_alloc((size_t)out_n * sizeof(float));
    uint64_t rs = o->seed ^ 0x7475ULL;
    if (!o->weight && (w = dlas_aligned_alloc((size_t)wn * sizeof(float))))
        for (int64_t i = 0; i < wn; i++)
            w[i] = (float)(normal(&rs) * 0.1);
    if (!o->bias && (bias = dlas_aligned_alloc((size_t)desc.out_c * sizeof(float))))
        for (int64_t i = 0; i < desc.out_c; i++)
            bias[i] = (float)normal(&rs);
    if (!o->input && (in = dlas_aligned_alloc((size_t)in_n * sizeof(float))))
        for (int64_t i = 0; i < in_n; i++)
            in[i] = (float)normal(&rs);
    struct bench_bufs b = {&desc, o->weight ? o->weight : w, o->bias ? o->bias : bias,
                           o->input ? o->input : in, NULL, out, out_n};
    if (!out || !b.w || !b.bias || !b.in) {
        dlas_aligned_free(out);
        dlas_aligned_free(w);
        dlas_aligned_free(bias);
        dlas_aligned_free(in);
        free(knobs);
        return dlas_error(DLAS_ERR_NOMEM, "tune: out of memory for layer buffers");
    }
    if (o->reference)
        b.ref = o->reference;
    else if ((ref = dlas_aligned_alloc((size_t)out_n * sizeof(float)))) {
        dlas_ref_conv2d(&desc, desc.batch, b.in, b.w, desc.has_bias ? b.bias : NULL, ref);
        b.ref = ref;
    }

    struct dlas_params *p0 = NULL;
    int rc = b.ref ? DLAS_OK : dlas_error(DLAS_ERR_NOMEM, "out of memory");
    if (!rc)
        rc = base ? ((p0 = dlas_params_clone(base)) ? DLAS_OK : DLAS_ERR_NOMEM)
                  : (prim->params ? dlas_params_defaults(prim->params, &p0) : DLAS_OK);

    /* the defaults: the untuned baseline. Candidates are ranked by their
     * fastest run, which other processes on the machine disturb least; the
     * winner and the defaults are timed again, interleaved, at the end. */
    double best = INFINITY, ms = 0, mn = 0, err = 0, def_err = 0;
    struct dlas_params *best_p = NULL; /* NULL: the defaults */
    int have_default = 0;
    if (!rc) {
        int m = measure(prim, p0, host, be, &b, o, &ms, &mn, &err);
        if (m == DLAS_OK) {
            have_default = 1;
            r->default_ms = ms;
            def_err = err;
            best = mn;
            r->best_err = err;
            r->tried++;
            if (dlas_params_tunables(p0, r->settings, sizeof r->settings))
                r->settings[0] = '\0';
        } else if (m == DLAS_ERR_UNSUPPORTED)
            r->refused++;
        else if (m == DLAS_ERR_INTERNAL)
            r->invalid++;
        else
            rc = m;
    }

    /* candidates in a seeded random order: a shuffled list of the whole
     * space when it is small, independent draws when it is not */
    const int64_t SHUFFLE_MAX = 65536;
    int64_t n_cand = nk && !rc ? (int64_t)(space > 1e9 ? 1e9 : space) : 0;
    int64_t *order = n_cand && n_cand <= SHUFFLE_MAX ? malloc((size_t)n_cand * sizeof *order)
                                                    : NULL;
    if (n_cand && n_cand <= SHUFFLE_MAX && !order)
        rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
    uint64_t draw = o->seed ^ 0xd1ceULL;
    if (order) {
        for (int64_t i = 0; i < n_cand; i++)
            order[i] = i;
        uint64_t s = o->seed;
        for (int64_t i = n_cand - 1; i > 0; i--) {
            int64_t j = (int64_t)(next_rand(&s) % (uint64_t)(i + 1));
            int64_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }
    const double t_start = now_of(be);
    for (int64_t c = 0; !rc && c < n_cand; c++) {
        if (now_of(be) - t_start > o->budget_s)
            break;
        if (o->max_candidates > 0 && r->tried >= o->max_candidates)
            break;
        struct dlas_params *p = dlas_params_clone(p0);
        if (!p) {
            rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
            break;
        }
        int64_t idx = order ? order[c] : (int64_t)(next_rand(&draw) % (uint64_t)n_cand);
        int bad = 0;
        for (int k = 0; k < nk && !bad; k++) {
            int v = (int)(idx % knobs[k].n);
            idx /= knobs[k].n;
            bad = dlas_params_set(p, knobs[k].name, knobs[k].values[v], "tune") != 0;
        }
        if (bad) {
            dlas_params_free(p);
            r->refused++;
            continue;
        }
        int m = measure(prim, p, host, be, &b, o, &ms, &mn, &err);
        if (m == DLAS_OK) {
            r->tried++;
            if (mn < best) {
                best = mn;
                r->best_ms = ms;
                r->best_err = err;
                if (dlas_params_tunables(p, r->settings, sizeof r->settings))
                    r->settings[0] = '\0';
                dlas_params_free(best_p);
                best_p = p;
                p = NULL;
            }
        } else if (m == DLAS_ERR_UNSUPPORTED)
            r->refused++;
        else if (m == DLAS_ERR_INTERNAL)
            r->invalid++;
        else
            rc = m;
        dlas_params_free(p);
    }
    /* the winner against the defaults, interleaved: it must beat them on
     * medians, or the defaults stand */
    if (!rc && have_default && best_p) {
        enum { ROUNDS = 3 };
        double dm[ROUNDS], bm[ROUNDS], e2 = 0;
        for (int k = 0; k < ROUNDS && !rc; k++) {
            int m = measure(prim, p0, host, be, &b, o, &dm[k], &mn, &e2);
            if (!m)
                m = measure(prim, best_p, host, be, &b, o, &bm[k], &mn, &e2);
            if (m)
                rc = m;
        }
        if (!rc) {
            qsort(dm, ROUNDS, sizeof dm[0], dlas_cmp_double);
            qsort(bm, ROUNDS, sizeof bm[0], dlas_cmp_double);
            r->default_ms = dm[ROUNDS / 2];
            r->best_ms = bm[ROUNDS / 2];
            if (r->best_ms >= r->default_ms) {
                r->best_ms = r->default_ms;
                r->best_err = def_err;
                if (dlas_params_tunables(p0, r->settings, sizeof r->settings))
                    r->settings[0] = '\0';
            }
        }
    } else if (have_default && !best_p)
        r->best_ms = r->default_ms;
    dlas_params_free(best_p);
    if (!rc)
        dlas_clear_error(); /* refusals and rejects were counted, not failures */
    if (!rc && !isfinite(best))
        rc = dlas_error(DLAS_ERR_UNSUPPORTED,
                        "tune: primitive '%s' ran no candidate for this layer (%d refused, %d "
                        "wrong)",
                        prim->name, r->refused, r->invalid);
    if (!have_default)
        r->default_ms = NAN;
    free(order);
    free(knobs);
    dlas_params_free(p0);
    dlas_aligned_free(out);
    dlas_aligned_free(w);
    dlas_aligned_free(bias);
    dlas_aligned_free(in);
    dlas_aligned_free(ref);
    return rc;
}
