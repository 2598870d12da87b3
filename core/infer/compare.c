/* Side-by-side comparison of primitives on one model (see compare.h). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dlas/compare.h>
#include <dlas/quant.h>
#include <dlas/tune.h>

#include "../base/sysinfo.h"
#include "../base/util.h"
#include "../graph/probe.h"
#include "auto_choice.h"

void dlas_compare_options_default(struct dlas_compare_options *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->batch = 1;
    o->warmup = 3;
    o->repeat = 20;
    o->layers = 1;
    o->end_to_end = 1;
    o->check = 1;
    o->seed = 1;
    o->burst = 3;
}

/* An output with NaN or Inf in it (or a relative error that is not finite)
 * is a failure, never "ok" with an error of inf. */
static int finite_output(const float *out, int64_t n, double err)
{
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(out[i]) && !bad++)
            first = i;
    if (!bad && isfinite(err))
        return DLAS_OK;
    if (bad)
        return dlas_error(DLAS_ERR_INTERNAL,
                          "output holds %lld non-finite values (the first at element %lld is "
                          "%g)",
                          (long long)bad, (long long)first, (double)out[first]);
    return dlas_error(DLAS_ERR_INTERNAL,
                      "relative error against the reference is %g (the reference itself is "
                      "not finite?)",
                      err);
}

static void loadavg(char *buf, size_t len)
{
    double a[3];
    dlas_sys_loadavg(a);
    snprintf(buf, len, "%.2f", a[0]);
}

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void fill_uniform(float *x, int64_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)((double)(mix(&s) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void stats(double *t, int n, double *med, double *mn, double *mx)
{
    qsort(t, (size_t)n, sizeof *t, dlas_cmp_double);
    *mn = t[0];
    *mx = t[n - 1];
    *med = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static int cpu_clock(const struct dlas_compare_options *o)
{
    return o->size >= offsetof(struct dlas_compare_options, cpu_time) + sizeof o->cpu_time &&
           o->cpu_time;
}

/* The backend's clock, or the process's CPU clock (options.cpu_time). */
static double now_of(const struct dlas_backend *be, const struct dlas_compare_options *o)
{
    if (cpu_clock(o)) {
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    }
    return be->ops->now(be->ctx);
}

/* A timer on the backend's own clock: device events on a device backend
 * that records them (nothing synchronises between the two marks), else the
 * host clock around work the backend has finished. */
struct timer {
    const struct dlas_backend *be;
    const struct dlas_compare_options *o; /* its cpu_time: the CPU clock on the host */
    const struct dlas_backend_ops *dev;
    double t0;
};

static void timer_start(struct timer *t, const struct dlas_backend *be,
                        const struct dlas_compare_options *o)
{
    t->be = be;
    t->o = o;
    t->dev = dlas_backend_device_ops(be);
    if (t->dev && (!t->dev->marks_reserve || t->dev->marks_reserve(be->ctx, 2)))
        t->dev = NULL;
    if (t->dev)
        t->dev->mark(be->ctx, 0);
    else
        t->t0 = now_of(be, o);
}

static double timer_ms(struct timer *t) /* since timer_start */
{
    if (t->dev) {
        t->dev->mark(t->be->ctx, 1);
        return t->dev->elapsed(t->be->ctx, 0, 1) * 1e3;
    }
    t->be->ops->sync(t->be->ctx);
    return (now_of(t->be, t->o) - t->t0) * 1e3;
}

/* Buffers in backend memory: the host's own on a CPU backend, device copies
 * on a device backend (to = 1: host -> backend, 0: backend -> host). */
static float *backend_buf(const struct dlas_backend *be, float *host, int64_t n)
{
    if (!dlas_backend_device_ops(be))
        return host;
    return be->ops->alloc(be->ctx, (size_t)n * sizeof(float));
}

static int backend_sync_buf(const struct dlas_backend *be, float *host, float *buf, int64_t n,
                            int to)
{
    const struct dlas_backend_ops *dev = dlas_backend_device_ops(be);
    if (!dev || host == buf)
        return DLAS_OK;
    return to ? dev->copy_in(be->ctx, buf, host, (size_t)n * sizeof(float))
              : dev->copy_out(be->ctx, host, buf, (size_t)n * sizeof(float));
}

static void backend_buf_free(const struct dlas_backend *be, float *host, float *buf)
{
    if (buf && buf != host)
        be->ops->free(be->ctx, buf);
}

static int threads_of(const struct dlas_backend *be)
{
    return be->ops->threads ? be->ops->threads(be->ctx) : 1;
}

void dlas_compare_free(struct dlas_compare *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_layers; i++)
        free(c->layers[i].cells);
    for (int i = 0; i < c->n_e2e; i++) {
        free(c->e2e[i].fallbacks);
        free(c->e2e[i].fallbacks_grouped);
        free(c->e2e[i].layer_count);
        free(c->e2e[i].blocks);
    }
    free(c->layers);
    free(c->e2e);
    free(c->labels);
    free(c);
}

/* ---- per layer ----------------------------------------------------------------- */

struct slot {
    void *state, *ws;
    struct dlas_params *tuned;
    double *t;
    int int8; /* a quantised layer on an int8 primitive: uint8 in (inq), f32 out */
};

/* One run of primitive k's prepared state on the layer's input. */
static int cell_run(const struct dlas_primitive_ops *ops, const struct slot *sl, int64_t batch,
                    const float *in, const uint8_t *inq, float *out)
{
    if (sl->int8)
        return ops->run_int8(sl->state, batch, inq, out, sl->ws, NULL);
    return ops->run(sl->state, batch, in, out, sl->ws, NULL);
}

/* Time every primitive on conv node `id` (described by d, weights w). */
static int time_layer(struct dlas_compare *c, struct dlas_compare_layer *L,
                      const struct dlas_conv_desc *d, const float *w, const struct dlas_host *host,
                      const struct dlas_backend *be, const struct dlas_primitive_choice *prims,
                      int n_prims, const struct dlas_compare_options *o,
                      const struct dlas_node *nd)
{
    /* an int8 layer (quant-int8): int8 primitives get its parameters, a
     * uint8 input and the fake-quantised reference; fp32 ones the f32 input */
    struct dlas_conv_quant q;
    memset(&q, 0, sizeof q);
    q.size = sizeof q;
    const int quantised = dlas_node_is_quantised(nd) && !dlas_node_input_quant(nd, &q.in);
    q.weight_step = quantised ? dlas_f32(&nd->weight_scale) : NULL;
    uint8_t *inq = NULL;
    float *ref_q = NULL;
    const int64_t in_n = d->batch * d->in_c * d->in_h * d->in_w;
    const int64_t out_n = d->batch * d->out_c * d->out_h * d->out_w;
    float *in = dlas_aligned_alloc((size_t)in_n * sizeof(float));
    float *out = dlas_aligned_alloc((size_t)out_n * sizeof(float));
    float *bias = dlas_aligned_alloc((size_t)d->out_c * sizeof(float));
    float *ref = o->check ? dlas_aligned_alloc((size_t)out_n * sizeof(float)) : NULL;
    struct slot *sl = calloc((size_t)n_prims, sizeof *sl);
    int rc = DLAS_OK;
    if (!in || !out || !bias || (o->check && !ref) || !sl)
        rc = dlas_error(DLAS_ERR_NOMEM, "compare: out of memory for layer '%s'", L->name);
    /* a primitive that applies the layer's activation is timed with it (as
     * the plan runs it); one that does not, without, against a reference
     * without it */
    struct dlas_conv_desc plain = *d;
    plain.activation = DLAS_ACT_NONE;
    float *ref_plain = NULL;
    if (!rc && o->check && d->activation != DLAS_ACT_NONE &&
        !(ref_plain = dlas_aligned_alloc((size_t)out_n * sizeof(float))))
        rc = dlas_error(DLAS_ERR_NOMEM, "compare: out of memory for layer '%s'", L->name);
    if (!rc) {
        fill_uniform(in, in_n, o->seed + (uint64_t)L->node);
        fill_uniform(bias, d->out_c, o->seed ^ 0xb1a5ULL);
        if (ref)
            dlas_ref_conv2d(d, d->batch, in, w, d->has_bias ? bias : NULL, ref);
        if (ref_plain)
            dlas_ref_conv2d(&plain, d->batch, in, w, d->has_bias ? bias : NULL, ref_plain);
    }
    if (!rc && quantised) {
        float *fq = dlas_aligned_alloc((size_t)in_n * sizeof(float));
        inq = dlas_aligned_alloc((size_t)in_n);
        ref_q = o->check ? dlas_aligned_alloc((size_t)out_n * sizeof(float)) : NULL;
        if (!fq || !inq || (o->check && !ref_q))
            rc = dlas_error(DLAS_ERR_NOMEM, "compare: out of memory for layer '%s'", L->name);
        else {
            dlas_quantize_u8(in, in_n, &q.in, inq);
            dlas_dequantize_u8(inq, in_n, &q.in, fq);
            if (ref_q)
                dlas_ref_conv2d(d, d->batch, fq, w, d->has_bias ? bias : NULL, ref_q);
        }
        dlas_aligned_free(fq);
    }
    /* the primitives read and write backend memory */
    float *bin = NULL, *bout = NULL;
    if (!rc && (!(bin = backend_buf(be, in, in_n)) || !(bout = backend_buf(be, out, out_n))))
        rc = dlas_error(DLAS_ERR_NOMEM, "compare: cannot allocate layer '%s' on the backend",
                        L->name);
    if (!rc)
        rc = backend_sync_buf(be, in, bin, in_n, 1);
    const int threads = threads_of(be);
    const struct dlas_conv_desc *descs[2] = {d, &plain};
    const float *refs[2] = {ref, ref_plain ? ref_plain : ref};
    int *which = calloc((size_t)(n_prims ? n_prims : 1), sizeof *which);
    if (!rc && !which)
        rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (int k = 0; !rc && k < n_prims; k++) {
        struct dlas_compare_cell *cell = &L->cells[k];
        const struct dlas_primitive_ops *ops = prims[k].comp->ops;
        const struct dlas_params *pp = prims[k].params;
        which[k] = !dlas_prim_applies_activation(ops);
        const struct dlas_tune_entry *te =
            o->tunelog ? dlas_tunelog_find(o->tunelog, prims[k].comp->name, be->ops->device,
                                           threads, d)
                       : NULL;
        if (te && te->settings[0]) {
            if (pp)
                sl[k].tuned = dlas_params_clone(pp);
            else if (prims[k].comp->params)
                dlas_params_defaults(prims[k].comp->params, &sl[k].tuned);
            if (sl[k].tuned && !dlas_params_apply(sl[k].tuned, te->settings, "tuning log")) {
                pp = sl[k].tuned;
                snprintf(cell->settings, sizeof cell->settings, "%s", te->settings);
            }
        }
        char why[256] = "";
        const struct dlas_conv_desc *dk = descs[which[k]];
        struct dlas_conv_desc dq;
        if (quantised && dlas_prim_runs_int8(ops)) {
            dq = *d; /* int8 primitives apply the activation */
            dq.quant = &q;
            dk = &dq;
            which[k] = 0;
            sl[k].int8 = 1;
        }
        int s = ops->supports(dk, pp, why, sizeof why);
        if (s) {
            cell->status = s;
            snprintf(cell->why, sizeof cell->why, "%s", why[0] ? why : dlas_status_name(s));
            continue;
        }
        s = ops->prepare(host, be, dk, w, d->has_bias ? bias : NULL, pp, &sl[k].state);
        size_t wsb = s ? 0 : ops->workspace(sl[k].state, d->batch);
        if (!s && wsb && !(sl[k].ws = be->ops->alloc(be->ctx, wsb)))
            s = dlas_error(DLAS_ERR_NOMEM, "cannot allocate %zu bytes of workspace", wsb);
        if (!s) {
            for (int64_t i = 0; i < out_n; i++)
                out[i] = NAN;
            s = backend_sync_buf(be, out, bout, out_n, 1);
            if (!s)
                s = cell_run(ops, &sl[k], d->batch, bin, inq, bout);
            if (!s)
                s = backend_sync_buf(be, out, bout, out_n, 0);
        }
        cell->err = NAN; /* not checked */
        if (!s && ref)
            cell->err = dlas_rel_error(out, sl[k].int8 ? ref_q : refs[which[k]], out_n);
        if (!s)
            s = finite_output(out, out_n, ref ? cell->err : 0);
        if (!s && !(sl[k].t = malloc((size_t)o->repeat * sizeof(double))))
            s = dlas_error(DLAS_ERR_NOMEM, "out of memory");
        if (s) {
            cell->status = s;
            snprintf(cell->why, sizeof cell->why, "%s", dlas_last_error());
            if (sl[k].state)
                ops->release(sl[k].state);
            sl[k].state = NULL;
        }
    }
    dlas_clear_error();
    /* warm-up, then interleaved rounds (a change of machine load hits all
     * alike), each a burst per primitive: one untimed run to bring its data
     * back into the caches the others used, then `burst` timed ones */
    const int burst = o->burst > 0 ? o->burst : 1;
    for (int k = 0; k < n_prims; k++)
        for (int r = 0; sl[k].state && r < o->warmup; r++)
            cell_run(prims[k].comp->ops, &sl[k], d->batch, bin, inq, bout);
    for (int r0 = 0; !rc && r0 < o->repeat; r0 += burst)
        for (int k = 0; k < n_prims && !rc; k++) {
            if (!sl[k].state)
                continue;
            const struct dlas_primitive_ops *ops = prims[k].comp->ops;
            int s = cell_run(ops, &sl[k], d->batch, bin, inq, bout);
            for (int r = r0; !s && r < r0 + burst && r < o->repeat; r++) {
                struct timer tm;
                timer_start(&tm, be, o);
                s = cell_run(ops, &sl[k], d->batch, bin, inq, bout);
                sl[k].t[r] = timer_ms(&tm);
            }
            if (s) {
                L->cells[k].status = s;
                snprintf(L->cells[k].why, sizeof L->cells[k].why, "%s", dlas_last_error());
                ops->release(sl[k].state);
                sl[k].state = NULL;
            }
        }
    L->best = -1;
    for (int k = 0; k < n_prims; k++) {
        struct dlas_compare_cell *cell = &L->cells[k];
        if (sl && sl[k].state) {
            stats(sl[k].t, o->repeat, &cell->ms, &cell->min, &cell->max);
            cell->gflops = 2.0 * (double)L->macs / (cell->ms * 1e6);
            if (L->best < 0 || cell->ms < L->cells[L->best].ms)
                L->best = k;
            ((const struct dlas_primitive_ops *)prims[k].comp->ops)->release(sl[k].state);
        }
        if (sl) {
            if (sl[k].ws)
                be->ops->free(be->ctx, sl[k].ws);
            dlas_params_free(sl[k].tuned);
            free(sl[k].t);
        }
    }
    free(sl);
    free(which);
    backend_buf_free(be, in, bin);
    backend_buf_free(be, out, bout);
    dlas_aligned_free(ref_plain);
    dlas_aligned_free(inq);
    dlas_aligned_free(ref_q);
    dlas_aligned_free(in);
    dlas_aligned_free(out);
    dlas_aligned_free(bias);
    dlas_aligned_free(ref);
    (void)c;
    return rc;
}

/* ---- end to end ---------------------------------------------------------------- */

/* An untrained model's output may not show its convolutions (see
 * core/graph/probe.c): the check is repeated on a copy with its batchnorms
 * calibrated on the input, and the larger error counts. */
struct probe {
    struct dlas_graph *g; /* NULL: not needed */
    struct dlas_tensor ref;
};

static int check_probe(const struct probe *probe, const struct dlas_host *host,
                       const struct dlas_backend *be, const struct dlas_primitive_choice *prims,
                       int n, const struct dlas_primitive_choice *fallback,
                       const struct dlas_compare_options *o, const struct dlas_plan_options *po,
                       const float *input, float *out, int64_t out_n, double *err)
{
    struct dlas_plan *p = NULL;
    int s = dlas_plan_create_ex(probe->g, host, be, prims, n, fallback, o->batch, po, &p);
    if (!s)
        s = dlas_plan_run(p, o->batch, input, out);
    if (!s) {
        double e = dlas_rel_error(out, dlas_f32(&probe->ref), out_n);
        if (!(e <= *err))
            *err = e;
        s = finite_output(out, out_n, *err);
    }
    dlas_plan_free(p);
    return s;
}

/* Create plan k (auto = the last, bound per layer by layer_prim), check it
 * against the reference and warm it up. */
static int make_plan(struct dlas_compare *c, const struct dlas_graph *g,
                     const struct dlas_host *host, const struct dlas_backend *be,
                     const struct dlas_primitive_choice *prims, int n_prims,
                     const struct dlas_primitive_choice *fallback,
                     const struct dlas_compare_options *o, int k, const int *layer_prim,
                     const int *block_mask, const float *input, float *out,
                     const struct dlas_tensor *ref, const struct probe *probe, int64_t out_n,
                     struct dlas_plan **plan)
{
    struct dlas_compare_e2e *e = &c->e2e[k];
    struct dlas_plan_options po;
    dlas_plan_options_default(&po);
    po.tunelog = o->tunelog;
    const int is_auto = k == n_prims;
    snprintf(e->label, sizeof e->label, "%s", is_auto ? "auto" : prims[k].label);
    if (is_auto) {
        po.layer_prim = layer_prim;
        po.blocks = block_mask != NULL; /* the blocks auto kept, as it timed them */
        po.block_mask = block_mask;
        if (!e->layer_count)
            e->layer_count = calloc((size_t)(n_prims ? n_prims : 1), sizeof *e->layer_count);
    }
    int s = dlas_plan_create_ex(g, host, be, is_auto ? prims : &prims[k], is_auto ? n_prims : 1,
                                fallback, o->batch, &po, plan);
    if (!s) {
        e->n_fallbacks = dlas_plan_n_fallbacks(*plan);
        e->fallbacks = strdup(dlas_plan_fallbacks(*plan));
        e->fallbacks_grouped = strdup(dlas_plan_fallbacks_grouped(*plan));
        if (is_auto && e->layer_count)
            for (int l = 0; l < c->n_layers; l++) {
                int b = dlas_plan_binding_index(*plan, c->layers[l].node);
                if (b >= 0 && b < n_prims)
                    e->layer_count[b]++;
                e->block_layers += b == -3; /* inside a fused block */
            }
        if (is_auto && dlas_plan_n_blocks(*plan))
            e->blocks = strdup(dlas_plan_blocks(*plan));
        s = dlas_plan_run(*plan, o->batch, input, out);
        e->err = NAN; /* not checked */
        if (!s && ref)
            e->err = dlas_rel_error(out, dlas_f32(ref), out_n);
        if (!s)
            s = finite_output(out, out_n, ref ? e->err : 0);
        if (!s && ref && probe->g)
            s = check_probe(probe, host, be, is_auto ? prims : &prims[k], is_auto ? n_prims : 1,
                            fallback, o, &po, input, out, out_n, &e->err);
        for (int r = 0; !s && r < o->warmup; r++)
            s = dlas_plan_run(*plan, o->batch, input, out);
    }
    if (s) {
        e->status = s;
        snprintf(e->why, sizeof e->why, "%s", dlas_last_error());
        dlas_plan_free(*plan);
        *plan = NULL;
    }
    dlas_clear_error();
    return DLAS_OK;
}

/* Per-node times of a plan over a few runs (ms), and its breakdown. */
static void breakdown(struct dlas_compare_e2e *e, struct dlas_plan *p, const struct dlas_graph *g,
                      const struct dlas_compare_options *o, const float *input, float *out,
                      double *node_ms)
{
    const int nn = dlas_graph_n_nodes(g), n_timed = o->repeat < 5 ? o->repeat : 5;
    for (int i = 0; i < nn; i++)
        node_ms[i] = 0;
    for (int r = 0; r < n_timed; r++)
        dlas_plan_run_timed(p, o->batch, input, out, node_ms);
    e->conv_ms = e->other_ms = 0;
    memset(e->op_ms, 0, sizeof e->op_ms);
    for (int i = 0; i < nn; i++) {
        node_ms[i] *= 1e3 / n_timed;
        enum dlas_op op = dlas_graph_node(g, i)->op;
        e->op_ms[op] += node_ms[i];
        if (op == DLAS_OP_CONV2D)
            e->conv_ms += node_ms[i];
        else
            e->other_ms += node_ms[i];
    }
}

/* The per-node runs synchronise after every node and are fewer, so their sum
 * is not the median end-to-end time: report the median split in their
 * proportions, so conv + other is the total. */
static void split_median(struct dlas_compare_e2e *e)
{
    double sum = e->conv_ms + e->other_ms;
    if (!(sum > 0))
        return;
    double conv_share = e->conv_ms / sum;
    e->conv_ms = e->ms * conv_share;
    e->other_ms = e->ms - e->conv_ms;
}

/* End to end: a plan per primitive (with the fallback where it refuses a
 * layer), then "auto": as the plan chooses it (auto_choose), or each conv
 * layer bound to the primitive whose plan ran it fastest, timed inside
 * those plans (so with the caches as a whole network leaves them: a layer
 * timed alone keeps its weights in L3, in a network they come from
 * memory), else by the per-layer table. Then all plans are timed in
 * interleaved rounds. */
static int run_e2e(struct dlas_compare *c, const struct dlas_graph *g,
                   const struct dlas_host *host, const struct dlas_backend *be,
                   const struct dlas_primitive_choice *prims, int n_prims,
                   const struct dlas_primitive_choice *fallback,
                   const struct dlas_compare_options *o)
{
    const int n_plans = n_prims + 1;
    const int nn = dlas_graph_n_nodes(g);
    c->e2e = calloc((size_t)n_plans, sizeof *c->e2e);
    struct dlas_plan **plans = calloc((size_t)n_plans, sizeof *plans);
    double **t = calloc((size_t)n_plans, sizeof *t);
    double **node_ms = calloc((size_t)n_plans, sizeof *node_ms);
    int *layer_prim = malloc((size_t)nn * sizeof *layer_prim);
    if (!c->e2e || !plans || !t || !node_ms || !layer_prim) {
        free(plans);
        free(t);
        free(node_ms);
        free(layer_prim);
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    c->n_e2e = n_plans;
    int rc = DLAS_OK;
    for (int k = 0; !rc && k < n_plans; k++)
        if (!(t[k] = malloc((size_t)o->repeat * sizeof(double))) ||
            !(node_ms[k] = calloc((size_t)nn, sizeof(double))))
            rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");

    const struct dlas_node *in_node = dlas_graph_node(g, 0);
    int64_t per = 1;
    for (int k = 0; k < in_node->out_ndim; k++)
        per *= in_node->out_shape[k];
    float *input = malloc((size_t)(per * o->batch) * sizeof(float));
    float *out = NULL;
    struct dlas_tensor ref = {0};
    struct probe probe = {0};
    if (!rc && !input)
        rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
    if (!rc)
        fill_uniform(input, per * o->batch, o->seed ^ 0x1e2eULL);
    if (!rc && o->check) {
        struct dlas_tensor x = {0};
        x.dtype = DLAS_F32;
        x.ndim = 4;
        x.dims[0] = o->batch;
        for (int k = 0; k < 3; k++)
            x.dims[k + 1] = in_node->out_ndim > k ? in_node->out_shape[k] : 1;
        x.data = input;
        rc = dlas_graph_forward_ref(g, &x, &ref);
        if (!rc && graph_needs_probe(g) && !(rc = graph_probe(g, input, o->batch, &probe.g)))
            rc = dlas_graph_forward_ref(probe.g, &x, &probe.ref);
    }
    const struct dlas_node *last = dlas_graph_node(g, nn - 1);
    int64_t out_n = o->batch;
    for (int k = 0; k < last->out_ndim; k++)
        out_n *= last->out_shape[k];
    if (!rc && !(out = malloc((size_t)out_n * sizeof(float))))
        rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");

    /* the primitives' plans */
    for (int k = 0; !rc && k < n_prims; k++)
        rc = make_plan(c, g, host, be, prims, n_prims, fallback, o, k, NULL, NULL, input, out,
                       o->check ? &ref : NULL, &probe, out_n, &plans[k]);

    /* auto as the plan chooses it (dlas_plan_auto_select: each layer on the
     * primitive that ran it fastest inside whole plans, timed until the
     * decision is clear; fused blocks raced against their layers), the
     * same auto that a deployed plan and bench/vs_ort.py use, with the
     * primitives' plans above as its candidates rather than preparing each
     * again (a plan that failed or disagreed with the reference is no
     * candidate). On a device, or on the CPU clock (whose per-node times
     * auto_choose cannot take), each layer takes the primitive that ran it
     * fastest in one breakdown of its primitive's plan, below. */
    int *sel_prim = NULL, *sel_blocks = NULL, selected = 0;
    if (!rc && n_prims > 0 && !cpu_clock(o)) {
        sel_prim = malloc((size_t)nn * sizeof *sel_prim);
        sel_blocks = calloc((size_t)nn, sizeof *sel_blocks);
        if (!sel_prim || !sel_blocks)
            rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
        else if ((rc = auto_choose(g, host, be, prims, n_prims, fallback, o->batch, o->tunelog,
                                   o->seed, plans, sel_prim, sel_blocks,
                                   &c->e2e[n_prims].auto_runs, &c->e2e[n_prims].auto_unclear,
                                   &selected)))
            dlas_error_context("auto: choosing the primitives");
    }

    /* where the primitives' time goes */
    for (int k = 0; !rc && k < n_prims; k++)
        if (plans[k])
            breakdown(&c->e2e[k], plans[k], g, o, input, out, node_ms[k]);

    /* auto: the fastest primitive of each layer, as its plan ran it */
    for (int i = 0; i < nn; i++)
        layer_prim[i] = -1;
    for (int l = 0; l < c->n_layers; l++) {
        struct dlas_compare_layer *L = &c->layers[l];
        int best = -1;
        for (int k = 0; k < n_prims; k++)
            if (plans[k] && dlas_plan_binding_index(plans[k], L->node) == 0 &&
                node_ms[k][L->node] > 0 &&
                (best < 0 || node_ms[k][L->node] < node_ms[best][L->node]))
                best = k;
        L->best_in_plan = best;
        /* on the CPU clock the per-layer table decides: the per-node times
         * inside plans come from the backend's wall clock, which other
         * processes' time slices distort on a busy machine */
        if (cpu_clock(o) && c->layers_timed && L->best >= 0)
            best = L->best;
        layer_prim[L->node] = best >= 0 ? best : L->best;
    }
    if (!rc) /* auto as the plan itself chose it above, else by the breakdowns */
        rc = make_plan(c, g, host, be, prims, n_prims, fallback, o, n_prims,
                       selected ? sel_prim : layer_prim, selected ? sel_blocks : NULL, input,
                       out, o->check ? &ref : NULL, &probe, out_n, &plans[n_prims]);

    /* interleaved rounds, a burst per plan: one untimed run to bring its
     * weights back into the caches the other plans used (a deployed model
     * runs warm; PyTorch, timed on its own, does), then `burst` timed ones */
    const int burst = o->burst > 0 ? o->burst : 1;
    for (int r0 = 0; !rc && r0 < o->repeat; r0 += burst)
        for (int k = 0; k < n_plans; k++) {
            if (!plans[k])
                continue;
            int s = dlas_plan_run(plans[k], o->batch, input, out);
            for (int r = r0; !s && r < r0 + burst && r < o->repeat; r++) {
                if (dlas_backend_device_ops(be)) {
                    /* on a device: the forward alone, its input already
                     * there (as frameworks are timed), on device events */
                    struct timer tm;
                    timer_start(&tm, be, o);
                    s = dlas_plan_run_resident(plans[k], o->batch);
                    t[k][r] = timer_ms(&tm);
                    continue;
                }
                double t0 = now_of(be, o);
                s = dlas_plan_run(plans[k], o->batch, input, out);
                t[k][r] = (now_of(be, o) - t0) * 1e3;
            }
            if (s) {
                c->e2e[k].status = s;
                snprintf(c->e2e[k].why, sizeof c->e2e[k].why, "%s", dlas_last_error());
                dlas_plan_free(plans[k]);
                plans[k] = NULL;
            }
        }
    for (int k = 0; !rc && k < n_plans; k++)
        if (plans[k])
            stats(t[k], o->repeat, &c->e2e[k].ms, &c->e2e[k].min, &c->e2e[k].max);
    if (!rc && plans[n_prims])
        breakdown(&c->e2e[n_prims], plans[n_prims], g, o, input, out, node_ms[n_prims]);
    for (int k = 0; !rc && k < n_plans; k++)
        if (plans[k])
            split_median(&c->e2e[k]);
    for (int k = 0; k < n_plans; k++) {
        dlas_plan_free(plans[k]);
        free(t[k]);
        free(node_ms[k]);
    }
    dlas_tensor_free(&ref);
    dlas_tensor_free(&probe.ref);
    dlas_graph_free(probe.g);
    free(plans);
    free(t);
    free(node_ms);
    free(layer_prim);
    free(sel_prim);
    free(sel_blocks);
    free(input);
    free(out);
    return rc;
}

/* ---- the comparison ----------------------------------------------------------------- */

int dlas_compare_run(const struct dlas_graph *g, const struct dlas_host *host,
                     const struct dlas_backend *be, const struct dlas_primitive_choice *prims,
                     int n_prims, const struct dlas_primitive_choice *fallback,
                     const struct dlas_compare_options *o, struct dlas_compare **out)
{
    *out = NULL;
    if (!g || !host || !be || !be->ops || !o || (n_prims && !prims) || n_prims < 0)
        return dlas_error(DLAS_ERR_INVALID, "compare: needs a graph, host, backend, options");
    if (o->size < sizeof *o || o->batch < 1 || o->repeat < 1 || o->warmup < 0)
        return dlas_error(DLAS_ERR_INVALID, "compare: batch and repeat must be >= 1");
    struct dlas_compare *c = calloc(1, sizeof *c);
    if (!c)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    c->n_prims = n_prims;
    c->labels = calloc((size_t)(n_prims ? n_prims : 1), sizeof *c->labels);
    if (!c->labels) {
        free(c);
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < n_prims; k++)
        snprintf(c->labels[k], sizeof c->labels[k], "%s", prims[k].label);
    if (fallback)
        snprintf(c->fallback, sizeof c->fallback, "%s", fallback->label);
    c->batch = o->batch;
    c->threads = threads_of(be);
    c->warmup = o->warmup;
    c->repeat = o->repeat;
    c->burst = o->burst > 0 ? o->burst : 1;
    c->cpu_time = cpu_clock(o);
    loadavg(c->load_before, sizeof c->load_before);

    /* the layers as the plan sees them (batchnorm folded: bias present) */
    struct dlas_plan *shape_plan = NULL;
    int rc = dlas_plan_create_ex(g, host, be, NULL, 0, NULL, o->batch, NULL, &shape_plan);
    const int nn = dlas_graph_n_nodes(g);
    for (int i = 0; !rc && i < nn; i++)
        if (dlas_plan_conv_desc(shape_plan, i))
            c->n_layers++;
    if (!rc && c->n_layers &&
        !(c->layers = calloc((size_t)c->n_layers, sizeof *c->layers)))
        rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
    int l = 0;
    for (int i = 0; !rc && i < nn; i++) {
        const struct dlas_conv_desc *d = dlas_plan_conv_desc(shape_plan, i);
        if (!d)
            continue;
        struct dlas_compare_layer *L = &c->layers[l];
        L->node = i;
        snprintf(L->name, sizeof L->name, "%s", dlas_graph_node(g, i)->name);
        dlas_conv_desc_format(d, L->shape, sizeof L->shape);
        snprintf(L->precision, sizeof L->precision, "%s",
                 dlas_node_is_quantised(dlas_graph_node(g, i)) ? "int8" : "fp32");
        L->macs = dlas_conv_desc_macs(d) * o->batch;
        L->sparsity = d->weight_sparsity;
        L->same_as = -1;
        L->best = -1;
        L->best_in_plan = -1;
        if (!(L->cells = calloc((size_t)(n_prims ? n_prims : 1), sizeof *L->cells))) {
            rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
            break;
        }
        for (int j = 0; j < l; j++)
            if (!memcmp(dlas_plan_conv_desc(shape_plan, c->layers[j].node), d, sizeof *d)) {
                L->same_as = j;
                break;
            }
        if (o->layers && L->same_as < 0) {
            const struct dlas_node *nd = dlas_graph_node(g, i);
            if (nd->weight.dtype != DLAS_F32 || !nd->weight.data)
                rc = dlas_error(DLAS_ERR_UNSUPPORTED, "compare: layer '%s' has no f32 weights",
                                nd->name);
            else
                rc = time_layer(c, L, d, dlas_f32(&nd->weight), host, be, prims, n_prims, o, nd);
        } else if (o->layers) {
            const struct dlas_compare_layer *S = &c->layers[L->same_as];
            memcpy(L->cells, S->cells, (size_t)n_prims * sizeof *L->cells);
            L->best = S->best;
        }
        l++;
    }
    dlas_plan_free(shape_plan);
    c->layers_timed = !rc && o->layers;
    if (!rc && o->end_to_end)
        rc = run_e2e(c, g, host, be, prims, n_prims, fallback, o);
    loadavg(c->load_after, sizeof c->load_after);
    if (rc) {
        dlas_compare_free(c);
        return rc;
    }
    *out = c;
    return DLAS_OK;
}

/* ---- output --------------------------------------------------------------------------- */

void dlas_compare_print(const struct dlas_compare *c, FILE *f)
{
    if (c->n_layers && c->layers_timed) {
        int wn = 5;
        for (int l = 0; l < c->n_layers; l++)
            if ((int)strlen(c->layers[l].name) > wn)
                wn = (int)strlen(c->layers[l].name);
        fprintf(f, "per layer: ms (GFLOP/s), median of %d runs (interleaved rounds of %d) after "
                   "%d warm-up, batch %lld, %d thread(s)\n",
                c->repeat, c->burst, c->warmup, (long long)c->batch, c->threads);
        fprintf(f, "%-*s  %-42s %8s %6s", wn, "layer", "shape", "MMACs", "zeros");
        for (int k = 0; k < c->n_prims; k++)
            fprintf(f, "  %17.17s", c->labels[k]);
        fprintf(f, "  best\n");
        double *tot = calloc((size_t)c->n_prims + 1, sizeof *tot);
        for (int l = 0; l < c->n_layers; l++) {
            const struct dlas_compare_layer *L = &c->layers[l];
            char shp[200];
            snprintf(shp, sizeof shp, "%s%s", L->shape, strcmp(L->precision, "int8") ? "" : " int8");
            fprintf(f, "%-*s  %-42.42s %8.1f %5.1f%%", wn, L->name, shp, (double)L->macs / 1e6,
                    100.0 * L->sparsity);
            for (int k = 0; k < c->n_prims; k++) {
                const struct dlas_compare_cell *x = &L->cells[k];
                if (x->status)
                    fprintf(f, "  %17s", x->status == DLAS_ERR_UNSUPPORTED ? "-" : "failed");
                else
                    fprintf(f, "  %8.3f (%6.1f)", x->ms, x->gflops);
                if (tot && !x->status)
                    tot[k] += x->ms;
            }
            if (tot && L->best >= 0)
                tot[c->n_prims] += L->cells[L->best].ms;
            fprintf(f, "  %s", L->best >= 0 ? c->labels[L->best] : "-");
            if (L->best_in_plan >= 0 && L->best_in_plan != L->best)
                fprintf(f, " (in its plan: %s)", c->labels[L->best_in_plan]);
            fputc('\n', f);
        }
        if (tot) {
            fprintf(f, "%-*s  %-42s %8s %6s", wn, "sum", "(layers a primitive ran)", "", "");
            for (int k = 0; k < c->n_prims; k++)
                fprintf(f, "  %8.3f %8s", tot[k], "");
            fprintf(f, "  %.3f\n", tot[c->n_prims]);
        }
        free(tot);
    }
    if (c->n_e2e) {
        fprintf(f, "\nend to end: ms, median of %d runs (interleaved rounds of %d) after %d "
                   "warm-up (min .. max); conv + other = ms, split as per-node timed runs "
                   "split it\n",
                c->repeat, c->burst, c->warmup);
        fprintf(f, "%-20s %9s %9s %9s %9s %9s %9s  %s\n", "primitive", "ms", "min", "max",
                "conv", "other", "rel.err", "fallbacks / layers");
        for (int k = 0; k < c->n_e2e; k++) {
            const struct dlas_compare_e2e *e = &c->e2e[k];
            if (e->status) {
                fprintf(f, "%-20.20s failed: %s\n", e->label, e->why);
                continue;
            }
            fprintf(f, "%-20.20s %9.3f %9.3f %9.3f %9.3f %9.3f ", e->label, e->ms, e->min,
                    e->max, e->conv_ms, e->other_ms);
            if (isnan(e->err))
                fprintf(f, "%9s  ", "-");
            else
                fprintf(f, "%9.2g  ", e->err);
            if (e->layer_count) {
                int first = 1;
                for (int p = 0; p < c->n_prims; p++)
                    if (e->layer_count[p]) {
                        fprintf(f, "%s%s x%d", first ? "" : ", ", c->labels[p],
                                e->layer_count[p]);
                        first = 0;
                    }
                if (e->block_layers)
                    fprintf(f, "%s%d in fused blocks", first ? "" : "; ", e->block_layers);
                if (e->n_fallbacks)
                    fprintf(f, "; %d fell back", e->n_fallbacks);
            } else if (e->n_fallbacks)
                fprintf(f, "%d fell back: %s", e->n_fallbacks,
                        e->fallbacks_grouped ? e->fallbacks_grouped : "");
            else
                fprintf(f, "none");
            fputc('\n', f);
        }
    }
    for (int k = 0; k < c->n_e2e; k++) {
        const struct dlas_compare_e2e *e = &c->e2e[k];
        if (e->status || strcmp(e->label, "auto"))
            continue;
        fprintf(f, "auto, time by operator (ms):");
        for (int op = 0; op < DLAS_OP__COUNT; op++)
            if (e->op_ms[op] > 0)
                fprintf(f, " %s %.3f", dlas_op_name((enum dlas_op)op), e->op_ms[op]);
        fputc('\n', f);
    }
    fprintf(f, "load average before %s, after %s; %s clock\n", c->load_before, c->load_after,
            c->cpu_time ? "process CPU" : "wall");
}

int dlas_compare_write_csv(const struct dlas_compare *c, const char *layers_path,
                           const char *e2e_path)
{
    struct dlas_buf b = {0};
    int rc = DLAS_OK;
    if (layers_path && c->layers_timed) {
        dlas_buf_printf(&b, "layer,shape,macs,sparsity,primitive,status,ms_median,ms_min,ms_max,gflops,"
                            "max_rel_err,tuned_settings,best,reason,precision\n");
        for (int l = 0; l < c->n_layers; l++) {
            const struct dlas_compare_layer *L = &c->layers[l];
            for (int k = 0; k < c->n_prims && L->cells; k++) {
                const struct dlas_compare_cell *x = &L->cells[k];
                dlas_csv_field(&b, L->name);
                dlas_buf_printf(&b, ",");
                dlas_csv_field(&b, L->shape);
                dlas_buf_printf(&b, ",%lld,%.4f,", (long long)L->macs, L->sparsity);
                dlas_csv_field(&b, c->labels[k]);
                if (x->status)
                    dlas_buf_printf(&b, ",%s,,,,,,,%d,",
                                    x->status == DLAS_ERR_UNSUPPORTED ? "refused" : "failed",
                                    L->best == k);
                else {
                    dlas_buf_printf(&b, ",ok,%.5f,%.5f,%.5f,%.3f,", x->ms, x->min, x->max,
                                    x->gflops);
                    if (!isnan(x->err))
                        dlas_buf_printf(&b, "%.3g", x->err);
                    dlas_buf_printf(&b, ",");
                }
                if (!x->status) {
                    dlas_csv_field(&b, x->settings);
                    dlas_buf_printf(&b, ",%d,", L->best == k);
                }
                dlas_csv_field(&b, x->why);
                dlas_buf_printf(&b, ",%s\n", L->precision);
            }
        }
        rc = dlas_write_atomic(layers_path, b.s ? b.s : "", b.len);
        dlas_buf_free(&b);
    }
    if (!rc && e2e_path) {
        dlas_buf_printf(&b, "primitive,status,ms_median,ms_min,ms_max,conv_ms,other_ms,"
                            "max_rel_err,n_fallbacks,fallback_layers,batch,threads\n");
        for (int k = 0; k < c->n_e2e; k++) {
            const struct dlas_compare_e2e *e = &c->e2e[k];
            dlas_csv_field(&b, e->label);
            if (e->status)
                dlas_buf_printf(&b, ",failed,,,,,,,,");
            else {
                dlas_buf_printf(&b, ",ok,%.5f,%.5f,%.5f,%.5f,%.5f,", e->ms, e->min, e->max,
                                e->conv_ms, e->other_ms);
                if (!isnan(e->err))
                    dlas_buf_printf(&b, "%.3g", e->err);
                dlas_buf_printf(&b, ",%d,", e->n_fallbacks);
            }
            dlas_csv_field(&b, e->status ? e->why : (e->fallbacks ? e->fallbacks : ""));
            dlas_buf_printf(&b, ",%lld,%d\n", (long long)c->batch, c->threads);
        }
        rc = dlas_write_atomic(e2e_path, b.s ? b.s : "", b.len);
        dlas_buf_free(&b);
    }
    return rc;
}

static void json_num(struct dlas_buf *b, const char *key, double v, int comma)
{
    dlas_buf_printf(b, "\"%s\": ", key);
    if (isfinite(v))
        dlas_buf_printf(b, "%.6g", v);
    else
        dlas_buf_printf(b, "null");
    if (comma)
        dlas_buf_printf(b, ", ");
}

int dlas_compare_write_json(const struct dlas_compare *c, const char *path,
                            const char *const *meta, int n_meta)
{
    struct dlas_buf b = {0};
    dlas_buf_printf(&b, "{\n");
    for (int i = 0; meta && i < 2 * n_meta; i += 2) {
        dlas_buf_printf(&b, "  ");
        dlas_json_string(&b, meta[i]);
        dlas_buf_printf(&b, ": ");
        dlas_json_string(&b, meta[i + 1] ? meta[i + 1] : "");
        dlas_buf_printf(&b, ",\n");
    }
    dlas_buf_printf(&b,
                    "  \"batch\": %lld, \"threads\": %d, \"warmup\": %d, \"repeat\": %d, "
                    "\"burst\": %d,\n",
                    (long long)c->batch, c->threads, c->warmup, c->repeat, c->burst);
    dlas_buf_printf(&b, "  \"load_before\": %s, \"load_after\": %s,\n  \"clock\": \"%s\",\n"
                    "  \"fallback\": ",
                    c->load_before, c->load_after, c->cpu_time ? "process_cpu" : "wall");
    dlas_json_string(&b, c->fallback);
    dlas_buf_printf(&b, ",\n  \"primitives\": [");
    for (int k = 0; k < c->n_prims; k++) {
        dlas_buf_printf(&b, k ? ", " : "");
        dlas_json_string(&b, c->labels[k]);
    }
    dlas_buf_printf(&b, "],\n  \"layers\": [");
    for (int l = 0; l < c->n_layers; l++) {
        const struct dlas_compare_layer *L = &c->layers[l];
        dlas_buf_printf(&b, "%s\n    {\"name\": ", l ? "," : "");
        dlas_json_string(&b, L->name);
        dlas_buf_printf(&b, ", \"shape\": ");
        dlas_json_string(&b, L->shape);
        dlas_buf_printf(&b, ", \"precision\": ");
        dlas_json_string(&b, L->precision);
        dlas_buf_printf(&b, ", \"macs\": %lld, \"sparsity\": %.4f, \"best\": ", (long long)L->macs,
                        L->sparsity);
        if (L->best >= 0)
            dlas_json_string(&b, c->labels[L->best]);
        else
            dlas_buf_printf(&b, "null");
        dlas_buf_printf(&b, ", \"best_in_plan\": ");
        if (L->best_in_plan >= 0)
            dlas_json_string(&b, c->labels[L->best_in_plan]);
        else
            dlas_buf_printf(&b, "null");
        dlas_buf_printf(&b, ", \"results\": {");
        for (int k = 0; k < c->n_prims && L->cells; k++) {
            const struct dlas_compare_cell *x = &L->cells[k];
            dlas_buf_printf(&b, "%s\n      ", k ? "," : "");
            dlas_json_string(&b, c->labels[k]);
            dlas_buf_printf(&b, ": {");
            if (x->status) {
                dlas_buf_printf(&b, "\"status\": \"%s\", \"reason\": ",
                                x->status == DLAS_ERR_UNSUPPORTED ? "refused" : "failed");
                dlas_json_string(&b, x->why);
            } else {
                dlas_buf_printf(&b, "\"status\": \"ok\", ");
                json_num(&b, "ms", x->ms, 1);
                json_num(&b, "min", x->min, 1);
                json_num(&b, "max", x->max, 1);
                json_num(&b, "gflops", x->gflops, 1);
                json_num(&b, "max_rel_err", x->err, 1);
                dlas_buf_printf(&b, "\"tuned_settings\": ");
                dlas_json_string(&b, x->settings);
            }
            dlas_buf_printf(&b, "}");
        }
        dlas_buf_printf(&b, "}}");
    }
    dlas_buf_printf(&b, "\n  ],\n  \"end_to_end\": [");
    for (int k = 0; k < c->n_e2e; k++) {
        const struct dlas_compare_e2e *e = &c->e2e[k];
        dlas_buf_printf(&b, "%s\n    {\"primitive\": ", k ? "," : "");
        dlas_json_string(&b, e->label);
        if (e->status) {
            dlas_buf_printf(&b, ", \"status\": \"failed\", \"reason\": ");
            dlas_json_string(&b, e->why);
        } else {
            dlas_buf_printf(&b, ", \"status\": \"ok\", ");
            json_num(&b, "ms", e->ms, 1);
            json_num(&b, "min", e->min, 1);
            json_num(&b, "max", e->max, 1);
            json_num(&b, "conv_ms", e->conv_ms, 1);
            json_num(&b, "other_ms", e->other_ms, 1);
            json_num(&b, "max_rel_err", e->err, 1);
            dlas_buf_printf(&b, "\"n_fallbacks\": %d, \"fallback_layers\": ", e->n_fallbacks);
            dlas_json_string(&b, e->fallbacks ? e->fallbacks : "");
            dlas_buf_printf(&b, ", \"ms_by_op\": {");
            for (int op = 0, first = 1; op < DLAS_OP__COUNT; op++)
                if (e->op_ms[op] > 0) {
                    dlas_buf_printf(&b, "%s\"%s\": %.5f", first ? "" : ", ",
                                    dlas_op_name((enum dlas_op)op), e->op_ms[op]);
                    first = 0;
                }
            dlas_buf_printf(&b, "}");
            if (e->layer_count) {
                dlas_buf_printf(&b, ", \"layers_per_primitive\": {");
                for (int p = 0, first = 1; p < c->n_prims; p++)
                    if (e->layer_count[p]) {
                        dlas_buf_printf(&b, first ? "" : ", ");
                        dlas_json_string(&b, c->labels[p]);
                        dlas_buf_printf(&b, ": %d", e->layer_count[p]);
                        first = 0;
                    }
                dlas_buf_printf(&b, "}, \"block_layers\": %d, \"blocks\": ", e->block_layers);
                dlas_json_string(&b, e->blocks ? e->blocks : "");
                dlas_buf_printf(&b, ", \"auto_runs\": %d, \"auto_unclear\": %d", e->auto_runs,
                                e->auto_unclear);
            }
        }
        dlas_buf_printf(&b, "}");
    }
    dlas_buf_printf(&b, "\n  ]\n}\n");
    int rc = b.s ? dlas_write_atomic(path, b.s, b.len)
                 : dlas_error(DLAS_ERR_NOMEM, "out of memory");
    dlas_buf_free(&b);
    return rc;
}
