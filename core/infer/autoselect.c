/* `auto` by measurement: bind each conv layer to the primitive that ran it
 * fastest inside a whole plan.
 *
 * One plan per candidate primitive (with the fallback where it refuses a
 * layer) is prepared and run in interleaved rounds, each run timed node by
 * node (dlas_plan_run_timed), so a layer is timed in context: with the caches
 * as the rest of the network leaves them (a layer timed alone keeps its
 * weights in L3; in a network they come from memory) and its input as its
 * producer wrote it. A layer's decision is clear when the best candidate's
 * upper quartile lies below every rival's lower quartile, or when the rivals
 * are within the tolerance of it (then the choice barely matters, and a
 * fixed rule keeps it stable: the previous choice if it is among them, else
 * the primitive listed first). Rounds go on until every decision is clear
 * or max_runs is reached; a layer still unclear then takes the fastest
 * median and is counted in the report. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/plan.h>

#include "../base/util.h"
#include "auto_choice.h"
#include "plan_impl.h"

void dlas_plan_auto_options_default(struct dlas_plan_auto_options *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->batch = 1;
    o->min_runs = 5;
    o->max_runs = 15;
    o->tolerance = 0.03;
    o->seed = 0xa07a07ULL;
}

struct candidates {
    int n_prims, nn, n_layers, cap_runs, runs;
    int *layer_node;           /* n_layers: node id of each conv */
    int *layer_add;            /* n_layers: the residual add it may run (or -1) */
    int *layer_pro;            /* n_layers: the batchnorm it may apply (or -1) */
    struct dlas_plan **plans;  /* n_prims; NULL where the plan failed */
    int borrowed;              /* the plans are the caller's: not freed here */
    double *t;                 /* [prim][run][layer] seconds */
    char *eligible;            /* [prim][layer]: the primitive itself ran it */
};

static double *slot(struct candidates *c, int k, int r, int l)
{
    return &c->t[((size_t)k * (size_t)c->cap_runs + (size_t)r) * (size_t)c->n_layers + (size_t)l];
}

static double quantile(double *v, int n, double q) /* sorts v */
{
    qsort(v, (size_t)n, sizeof *v, dlas_cmp_double);
    double pos = q * (n - 1);
    int i = (int)pos;
    double f = pos - i;
    return i + 1 < n ? v[i] * (1 - f) + v[i + 1] * f : v[i];
}

struct layer_stats {
    double q1, med, q3;
};

static uint64_t mix(uint64_t *s);

static struct layer_stats stats_of(struct candidates *c, int k, int l, double *scratch)
{
    for (int r = 0; r < c->runs; r++)
        scratch[r] = *slot(c, k, r, l);
    struct layer_stats s;
    s.q1 = quantile(scratch, c->runs, 0.25);
    s.med = quantile(scratch, c->runs, 0.5);
    s.q3 = quantile(scratch, c->runs, 0.75);
    return s;
}

/* The choice for layer l, and whether it is clear (see the top comment). */
static int decide(struct candidates *c, int l, int previous, double tol, double *scratch,
                  struct layer_stats *st, int *clear)
{
    int best = -1;
    for (int k = 0; k < c->n_prims; k++) {
        if (!c->eligible[(size_t)k * c->n_layers + l])
            continue;
        st[k] = stats_of(c, k, l, scratch);
        if (best < 0 || st[k].med < st[best].med)
            best = k;
    }
    *clear = 1;
    if (best < 0)
        return -1;
    int pick = -1, separated = 1;
    for (int k = 0; k < c->n_prims; k++) {
        if (!c->eligible[(size_t)k * c->n_layers + l])
            continue;
        if (st[k].med <= st[best].med * (1 + tol)) { /* a tie: the stable rule */
            if (pick < 0 || k == previous)
                pick = k;
        } else if (st[k].q1 <= st[best].q3)
            separated = 0;
    }
    if (previous >= 0 && previous < c->n_prims && c->eligible[(size_t)previous * c->n_layers + l] &&
        st[previous].med <= st[best].med * (1 + tol))
        pick = previous;
    *clear = separated;
    return pick;
}

static int run_round(struct candidates *c, int64_t batch, const float *in, float *out,
                     double *node_s)
{
    for (int k = 0; k < c->n_prims; k++) {
        if (!c->plans[k])
            continue;
        /* one untimed run brings this plan's weights back into the caches */
        int s = dlas_plan_run(c->plans[k], batch, in, out);
        for (int i = 0; !s && i < c->nn; i++)
            node_s[i] = 0;
        if (!s)
            s = dlas_plan_run_timed(c->plans[k], batch, in, out, node_s);
        if (s)
            return s;
        /* a layer's time includes its residual add's and its batchnorm's,
         * which are 0 where the primitive ran them itself (a fused node has
         * no time) */
        for (int l = 0; l < c->n_layers; l++)
            *slot(c, k, c->runs, l) =
                node_s[c->layer_node[l]] + (c->layer_add[l] >= 0 ? node_s[c->layer_add[l]] : 0) +
                (c->layer_pro[l] >= 0 ? node_s[c->layer_pro[l]] : 0);
    }
    c->runs++;
    return DLAS_OK;
}

static void free_candidates(struct candidates *c)
{
    for (int k = 0; c->plans && !c->borrowed && k < c->n_prims; k++)
        dlas_plan_free(c->plans[k]);
    free(c->plans);
    free(c->layer_node);
    free(c->layer_add);
    free(c->layer_pro);
    free(c->t);
    free(c->eligible);
}

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Each candidate's plan: given (the caller's, prepared with the same
 * options; NULL where it failed), or prepared here. */
static int prepare(struct candidates *c, const struct dlas_graph *g, const struct dlas_host *host,
                   const struct dlas_backend *be, const struct dlas_primitive_choice *prims,
                   const struct dlas_primitive_choice *fallback,
                   const struct dlas_plan_auto_options *o, struct dlas_plan *const *given)
{
    c->nn = dlas_graph_n_nodes(g);
    c->layer_node = malloc((size_t)c->nn * sizeof *c->layer_node);
    c->layer_add = malloc((size_t)c->nn * sizeof *c->layer_add);
    c->layer_pro = malloc((size_t)c->nn * sizeof *c->layer_pro);
    c->plans = calloc((size_t)c->n_prims, sizeof *c->plans);
    if (!c->layer_node || !c->layer_add || !c->layer_pro || !c->plans)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < c->nn; i++)
        if (dlas_graph_node(g, i)->op == DLAS_OP_CONV2D) {
            c->layer_add[c->n_layers] = -1;
            c->layer_pro[c->n_layers] = plan_prologue_bn(g, i);
            c->layer_node[c->n_layers++] = i;
        }
    for (int i = 0; i < c->nn; i++) {
        int conv = plan_residual_conv(g, i, NULL);
        for (int l = 0; conv >= 0 && l < c->n_layers; l++)
            if (c->layer_node[l] == conv)
                c->layer_add[l] = i;
    }
    c->cap_runs = o->max_runs;
    c->t = calloc((size_t)c->n_prims * (size_t)c->cap_runs * (size_t)(c->n_layers ? c->n_layers : 1),
                  sizeof *c->t);
    c->eligible = calloc((size_t)c->n_prims * (size_t)(c->n_layers ? c->n_layers : 1), 1);
    if (!c->t || !c->eligible)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    struct dlas_plan_options po;
    dlas_plan_options_default(&po);
    po.tunelog = o->tunelog;
    c->borrowed = given != NULL;
    for (int k = 0; k < c->n_prims; k++) {
        /* a primitive that cannot plan this graph is no candidate */
        if (given)
            c->plans[k] = given[k];
        else if (dlas_plan_create_ex(g, host, be, &prims[k], 1, fallback, o->batch, &po,
                                     &c->plans[k])) {
            dlas_clear_error();
            c->plans[k] = NULL;
        }
        if (!c->plans[k])
            continue;
        for (int l = 0; l < c->n_layers; l++)
            c->eligible[(size_t)k * c->n_layers + l] =
                dlas_plan_binding_index(c->plans[k], c->layer_node[l]) == 0;
    }
    return DLAS_OK;
}

/* ---- fused mobile blocks against their layers ------------------------------------ */

/* Plans A (layers on their chosen primitives) and B (every block fused),
 * timed in interleaved rounds; block k (head h) is kept where B's time for
 * h beats A's time for every node B fused into h (the same computation). */
struct block_race {
    int nb, runs, cap;
    int *head;       /* nb */
    char *member;    /* [nb][nn]: node belongs to block k in B */
    double *ta, *tb; /* [run][nb] */
};

static void race_stats(const double *t, int runs, int nb, int k, double *scratch,
                       struct layer_stats *st)
{
    for (int r = 0; r < runs; r++)
        scratch[r] = t[(size_t)r * nb + k];
    st->q1 = quantile(scratch, runs, 0.25);
    st->med = quantile(scratch, runs, 0.5);
    st->q3 = quantile(scratch, runs, 0.75);
}

static int race_blocks(const struct dlas_graph *g, const struct dlas_host *host,
                       const struct dlas_backend *be, const struct dlas_primitive_choice *prims,
                       int n_prims, const struct dlas_primitive_choice *fallback,
                       const struct dlas_plan_auto_options *o, const int *layer_prim,
                       int *block_mask, struct dlas_buf *rep, int *n_fused)
{
    const int nn = dlas_graph_n_nodes(g);
    struct dlas_plan_options po;
    dlas_plan_options_default(&po);
    po.tunelog = o->tunelog;
    po.layer_prim = layer_prim;
    struct dlas_plan *pa = NULL, *pb = NULL;
    struct block_race br;
    memset(&br, 0, sizeof br);
    *n_fused = 0;
    for (int i = 0; i < nn; i++)
        block_mask[i] = 0;
    int rc = dlas_plan_create_ex(g, host, be, prims, n_prims, fallback, o->batch, &po, &pa);
    po.blocks = 1;
    if (!rc)
        rc = dlas_plan_create_ex(g, host, be, prims, n_prims, fallback, o->batch, &po, &pb);
    if (rc || dlas_plan_n_blocks(pb) == 0) {
        dlas_plan_free(pa);
        dlas_plan_free(pb);
        return rc;
    }
    br.cap = o->max_runs;
    br.head = malloc((size_t)nn * sizeof *br.head);
    br.member = calloc((size_t)nn * (size_t)nn, 1);
    br.ta = malloc((size_t)br.cap * (size_t)nn * sizeof *br.ta);
    br.tb = malloc((size_t)br.cap * (size_t)nn * sizeof *br.tb);
    double *na = malloc((size_t)nn * sizeof *na), *nb_ = malloc((size_t)nn * sizeof *nb_);
    double *scratch = malloc((size_t)br.cap * sizeof *scratch);
    const struct dlas_node *in_node = dlas_graph_node(g, 0), *last = dlas_graph_node(g, nn - 1);
    int64_t in_n = o->batch, out_n = o->batch;
    for (int k = 0; k < in_node->out_ndim; k++)
        in_n *= in_node->out_shape[k];
    for (int k = 0; k < last->out_ndim; k++)
        out_n *= last->out_shape[k];
    float *in = calloc((size_t)in_n, sizeof *in), *out = malloc((size_t)out_n * sizeof *out);
    if (!br.head || !br.member || !br.ta || !br.tb || !na || !nb_ || !scratch || !in || !out)
        rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (int i = 0; !rc && i < nn; i++) { /* a block's head is a conv the others fuse into */
        if (dlas_plan_binding_index(pb, i) != -3 || dlas_plan_fused_into(pb, i) >= 0)
            continue;
        for (int j = 0; j < nn; j++)
            br.member[(size_t)br.nb * nn + j] = j == i || dlas_plan_fused_into(pb, j) == i;
        br.head[br.nb++] = i;
    }
    uint64_t seed = o->seed;
    for (int64_t i = 0; !rc && i < in_n; i++)
        in[i] = (float)((double)(mix(&seed) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    int unclear = br.nb;
    while (!rc && br.runs < br.cap && (br.runs < o->min_runs || unclear > 0)) {
        for (int i = 0; i < nn; i++)
            na[i] = nb_[i] = 0;
        if ((rc = dlas_plan_run(pa, o->batch, in, out)) ||
            (rc = dlas_plan_run_timed(pa, o->batch, in, out, na)) ||
            (rc = dlas_plan_run(pb, o->batch, in, out)) ||
            (rc = dlas_plan_run_timed(pb, o->batch, in, out, nb_)))
            break;
        for (int k = 0; k < br.nb; k++) {
            double sa = 0;
            for (int j = 0; j < nn; j++)
                if (br.member[(size_t)k * nn + j])
                    sa += na[j];
            br.ta[(size_t)br.runs * br.nb + k] = sa;
            br.tb[(size_t)br.runs * br.nb + k] = nb_[br.head[k]];
        }
        br.runs++;
        if (br.runs < o->min_runs)
            continue;
        unclear = 0;
        for (int k = 0; k < br.nb; k++) {
            struct layer_stats a, b;
            race_stats(br.ta, br.runs, br.nb, k, scratch, &a);
            race_stats(br.tb, br.runs, br.nb, k, scratch, &b);
            double lo = a.med < b.med ? a.med : b.med, hi = a.med < b.med ? b.med : a.med;
            const struct layer_stats *w = a.med < b.med ? &a : &b, *l = a.med < b.med ? &b : &a;
            unclear += hi > lo * (1 + o->tolerance) && l->q1 <= w->q3;
        }
    }
    for (int k = 0; !rc && k < br.nb; k++) {
        struct layer_stats a, b;
        race_stats(br.ta, br.runs, br.nb, k, scratch, &a);
        race_stats(br.tb, br.runs, br.nb, k, scratch, &b);
        /* a tie keeps the previous choice, else fuses (one pass instead of three) */
        int prev = o->previous_blocks ? o->previous_blocks[br.head[k]] : -1;
        int fuse = b.med <= a.med * (1 + o->tolerance)
                       ? (prev >= 0 && a.med <= b.med * (1 + o->tolerance) ? prev != 0 : 1)
                       : 0;
        block_mask[br.head[k]] = fuse;
        *n_fused += fuse;
        dlas_buf_printf(rep, "%sblock %s: %s %.3f ms, layers %.3f", rep->len ? "; " : "",
                        dlas_graph_node(g, br.head[k])->name, fuse ? "fused" : "not fused",
                        b.med * 1e3, a.med * 1e3);
    }
    free(br.head);
    free(br.member);
    free(br.ta);
    free(br.tb);
    free(na);
    free(nb_);
    free(scratch);
    free(in);
    free(out);
    dlas_plan_free(pa);
    dlas_plan_free(pb);
    return rc;
}

static int auto_select(const struct dlas_graph *g, const struct dlas_host *host,
                       const struct dlas_backend *be, const struct dlas_primitive_choice *prims,
                       int n_prims, const struct dlas_primitive_choice *fallback,
                       const struct dlas_plan_auto_options *opt, struct dlas_plan *const *given,
                       int *layer_prim, int *block_mask, struct dlas_plan_auto_report *report)
{
    struct dlas_plan_auto_options o;
    dlas_plan_auto_options_default(&o);
    if (opt)
        memcpy(&o, opt, opt->size < sizeof o ? opt->size : sizeof o);
    if (n_prims < 1 || o.batch < 1 || o.min_runs < 1 || o.max_runs < o.min_runs ||
        !(o.tolerance >= 0))
        return dlas_error(DLAS_ERR_INVALID,
                          "auto: %d primitives, batch %lld, runs %d..%d, tolerance %g", n_prims,
                          (long long)o.batch, o.min_runs, o.max_runs, o.tolerance);
    struct candidates c;
    memset(&c, 0, sizeof c);
    c.n_prims = n_prims;
    int rc = prepare(&c, g, host, be, prims, fallback, &o, given);
    const struct dlas_node *in_node = dlas_graph_node(g, 0);
    int64_t in_n = o.batch;
    for (int k = 0; k < in_node->out_ndim; k++)
        in_n *= in_node->out_shape[k];
    const struct dlas_node *last = dlas_graph_node(g, c.nn > 0 ? c.nn - 1 : 0);
    int64_t out_n = o.batch;
    for (int k = 0; k < last->out_ndim; k++)
        out_n *= last->out_shape[k];
    float *in = rc ? NULL : malloc((size_t)in_n * sizeof *in);
    float *out = rc ? NULL : malloc((size_t)out_n * sizeof *out);
    double *node_s = rc ? NULL : malloc((size_t)c.nn * sizeof *node_s);
    double *scratch = rc ? NULL : malloc((size_t)o.max_runs * sizeof *scratch);
    struct layer_stats *st = rc ? NULL : malloc((size_t)n_prims * sizeof *st);
    if (!rc && (!in || !out || !node_s || !scratch || !st))
        rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
    int any = 0;
    for (int k = 0; k < n_prims; k++)
        any |= c.plans && c.plans[k] != NULL;
    if (!rc && !any)
        rc = dlas_error(DLAS_ERR_UNSUPPORTED, "auto: no candidate primitive could plan the graph");
    if (!rc) {
        uint64_t s = o.seed;
        for (int64_t i = 0; i < in_n; i++)
            in[i] = (float)((double)(mix(&s) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    int unclear = c.n_layers;
    while (!rc && c.runs < o.max_runs && (c.runs < o.min_runs || unclear > 0)) {
        rc = run_round(&c, o.batch, in, out, node_s);
        if (rc || c.runs < o.min_runs)
            continue;
        unclear = 0;
        for (int l = 0; l < c.n_layers; l++) {
            int clear;
            int prev = o.previous ? o.previous[c.layer_node[l]] : -1;
            decide(&c, l, prev, o.tolerance, scratch, st, &clear);
            unclear += !clear;
        }
    }
    if (!rc) {
        struct dlas_buf b = {0};
        for (int i = 0; i < c.nn; i++)
            layer_prim[i] = -1;
        unclear = 0;
        for (int l = 0; l < c.n_layers; l++) {
            int clear;
            int prev = o.previous ? o.previous[c.layer_node[l]] : -1;
            int k = decide(&c, l, prev, o.tolerance, scratch, st, &clear);
            layer_prim[c.layer_node[l]] = k;
            unclear += !clear;
            if (report && k >= 0) {
                dlas_buf_printf(&b, "%s%s: %s %.3f ms", b.len ? "; " : "",
                                dlas_graph_node(g, c.layer_node[l])->name, prims[k].label,
                                st[k].med * 1e3);
                for (int j = 0; j < n_prims; j++)
                    if (j != k && c.eligible[(size_t)j * c.n_layers + l])
                        dlas_buf_printf(&b, ", %s %.3f", prims[j].label, st[j].med * 1e3);
                if (!clear)
                    dlas_buf_printf(&b, " (unclear)");
            }
        }
        const int runs = c.runs, n_layers = c.n_layers;
        free_candidates(&c); /* before the race: their memory and caches */
        memset(&c, 0, sizeof c);
        int n_fused = 0;
        if (block_mask)
            rc = race_blocks(g, host, be, prims, n_prims, fallback, &o, layer_prim, block_mask,
                             &b, &n_fused);
        if (report && !rc) {
            report->runs = runs;
            report->unclear = unclear;
            report->layers = n_layers;
            report->blocks = n_fused;
            report->text = b.s ? b.s : strdup("");
        } else
            dlas_buf_free(&b);
    }
    free_candidates(&c);
    free(in);
    free(out);
    free(node_s);
    free(scratch);
    free(st);
    return rc;
}

int dlas_plan_auto_select(const struct dlas_graph *g, const struct dlas_host *host,
                          const struct dlas_backend *be,
                          const struct dlas_primitive_choice *prims, int n_prims,
                          const struct dlas_primitive_choice *fallback,
                          const struct dlas_plan_auto_options *opt, int *layer_prim,
                          int *block_mask, struct dlas_plan_auto_report *report)
{
    return auto_select(g, host, be, prims, n_prims, fallback, opt, NULL, layer_prim, block_mask,
                       report);
}

int auto_choose(const struct dlas_graph *g, const struct dlas_host *host,
                const struct dlas_backend *be, const struct dlas_primitive_choice *prims,
                int n_prims, const struct dlas_primitive_choice *fallback, int64_t batch,
                const struct dlas_tunelog *tunelog, uint64_t seed,
                struct dlas_plan *const *plans, int *layer_prim, int *block_mask, int *runs,
                int *unclear, int *chosen)
{
    *chosen = 0;
    if (dlas_backend_device_ops(be))
        return DLAS_OK;
    struct dlas_plan_auto_options ao;
    dlas_plan_auto_options_default(&ao);
    ao.batch = batch;
    ao.tunelog = tunelog;
    ao.seed = seed;
    struct dlas_plan_auto_report rep;
    memset(&rep, 0, sizeof rep);
    int rc = auto_select(g, host, be, prims, n_prims, fallback, &ao, plans, layer_prim,
                         block_mask, &rep);
    free(rep.text);
    if (rc == DLAS_ERR_UNSUPPORTED) { /* no candidate could plan the graph */
        dlas_clear_error();
        return DLAS_OK;
    }
    if (rc)
        return rc;
    if (runs)
        *runs = rep.runs;
    if (unclear)
        *unclear = rep.unclear;
    *chosen = 1;
    return DLAS_OK;
}
