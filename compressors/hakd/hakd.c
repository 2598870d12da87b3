/* Compressor "hakd": hardware-aware students (Turner, Crowley, Radu, Cano,
 * Storkey and O'Boyle, "Distilling with performance enhanced students" /
 * "HAKD: Hardware aware knowledge distillation", arXiv:1810.10460). The
 * cheap block type of each stage of the teacher is chosen from the measured
 * latency of every candidate block on the experiment's own primitive and
 * backend, so that the student meets a latency budget with as few
 * substituted stages as possible (and, among those, the most parameters);
 * then it is trained from the teacher with attention transfer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/distil.h>
#include <dlas/plugin.h>

struct hakd {
    struct dlas_compress_ctx *ctx;
    const struct dlas_residual_block *b;
    int nb, n_stages, nt;
    int *stage;                  /* stage of each block */
    struct dlas_block_type *types;
    double *block_s;             /* [block * nt + type]: seconds, < 0 when it does not fit */
    double other_s, teacher_s;
    unsigned flags;              /* DLAS_LATENCY_AUTO or 0 */
    char binding[320];           /* how the teacher was planned, for the report */
};

/* The experiment's latency service (ABI 1.3): g planned and timed as the
 * point will be after the chain, on the point's primitive (or, with
 * binding = "auto", on the fastest of the experiment's primitives per layer)
 * and backend, at the experiment's batch, warmup and repeat. */
static int measure(struct hakd *h, const struct dlas_graph *g, double *seconds, double *node_s)
{
    struct dlas_latency l;
    int rc = dlas_compress_latency(h->ctx, g, h->flags, &l, node_s);
    if (rc)
        return dlas_error_context("hakd: timing a student");
    *seconds = l.median_s;
    if (!h->binding[0])
        snprintf(h->binding, sizeof h->binding, "%s, %d threads, batch %lld", l.binding,
                 l.threads, (long long)l.batch);
    return DLAS_OK;
}

static int stage_of_blocks(struct hakd *h)
{
    h->stage = calloc((size_t)h->nb, sizeof *h->stage);
    if (!h->stage)
        return dlas_error(DLAS_ERR_NOMEM, "hakd: out of memory");
    int s = 0;
    for (int i = 0; i < h->nb; i++) {
        h->stage[i] = s;
        s += h->b[i].stage_end;
    }
    h->n_stages = s;
    return DLAS_OK;
}

/* Seconds of the nodes of block b (named "<prefix>.*") in a timed run. */
static double block_seconds(const struct dlas_graph *g, const double *node_s, const char *prefix)
{
    size_t n = strlen(prefix);
    double t = 0.0;
    for (int id = 0; id < dlas_graph_n_nodes(g); id++) {
        const char *name = dlas_graph_node(g, id)->name;
        if (!strncmp(name, prefix, n) && name[n] == '.')
            t += node_s[id];
    }
    return t;
}

/* The network with type t in every block that takes it (S elsewhere). */
static int build_uniform(const struct hakd *h, int t, struct dlas_graph **out)
{
    struct dlas_graph *g = dlas_graph_clone(h->ctx->graph);
    if (!g)
        return dlas_error(DLAS_ERR_NOMEM, "hakd: out of memory");
    int rc = DLAS_OK;
    for (int i = 0; i < h->nb && !rc; i++)
        if (dlas_block_type_params(&h->types[t], h->b[i].in_c, h->b[i].out_c, h->b[i].k, 1) >= 0)
            rc = dlas_graph_substitute_block(g, &h->b[i], &h->types[t], h->ctx->host->rng);
    if (rc) {
        dlas_graph_free(g);
        return rc;
    }
    *out = g;
    return DLAS_OK;
}

/* The timing table: one timed plan per candidate type, split per block. */
static int measure_table(struct hakd *h)
{
    struct dlas_compress_ctx *ctx = h->ctx;
    int rc = DLAS_OK;
    for (int t = 0; t < h->nt && !rc; t++) {
        struct dlas_graph *g = NULL;
        if ((rc = build_uniform(h, t, &g)))
            break;
        double *ns = calloc((size_t)dlas_graph_n_nodes(g), sizeof *ns), med = 0.0;
        rc = ns ? measure(h, g, &med, ns) : dlas_error(DLAS_ERR_NOMEM, "hakd: out of memory");
        double in_blocks = 0.0;
        for (int i = 0; i < h->nb && !rc; i++) {
            int fits = dlas_block_type_params(&h->types[t], h->b[i].in_c, h->b[i].out_c,
                                              h->b[i].k, 1) >= 0;
            double s = block_seconds(g, ns, h->b[i].prefix);
            h->block_s[i * h->nt + t] = fits ? s : -1.0;
            in_blocks += s;
        }
        if (!rc && t == 0) { /* the first type is S: the teacher */
            /* the time outside the blocks from the same per-node means as the
             * blocks' (a median total less mean block times can go negative
             * on a noisy machine) */
            double all = 0.0;
            for (int id = 0; id < dlas_graph_n_nodes(g); id++)
                all += ns[id];
            h->other_s = all > in_blocks ? all - in_blocks : 0.0;
            h->teacher_s = med;
        }
        if (!rc) {
            char name[32];
            ctx->host->log(DLAS_LOG_INFO, "hakd: every block %s: %.3f ms",
                           dlas_block_type_name(&h->types[t], name, sizeof name), 1e3 * med);
        }
        free(ns);
        dlas_graph_free(g);
    }
    return rc;
}

static double stage_seconds(const struct hakd *h, int s, int t)
{
    double sum = 0.0;
    for (int i = 0; i < h->nb; i++)
        if (h->stage[i] == s) {
            if (h->block_s[i * h->nt + t] < 0)
                return -1.0;
            sum += h->block_s[i * h->nt + t];
        }
    return sum;
}

static int64_t stage_params(const struct hakd *h, int s, int t)
{
    int64_t sum = 0;
    for (int i = 0; i < h->nb; i++)
        if (h->stage[i] == s) {
            int64_t p = dlas_block_type_params(&h->types[t], h->b[i].in_c, h->b[i].out_c,
                                               h->b[i].k, 1);
            if (p < 0)
                return -1;
            sum += p;
        }
    return sum;
}

struct choice {
    int *types; /* per stage */
    double est_s;
    int substituted;
    int64_t params;
};

static int cmp_choice(const void *a, const void *b)
{
    const struct choice *x = a, *y = b;
    if (x->substituted != y->substituted)
        return x->substituted - y->substituted;
    if (x->params != y->params)
        return x->params > y->params ? -1 : 1;
    return (x->est_s > y->est_s) - (x->est_s < y->est_s);
}

/* Every per-stage assignment whose estimated latency meets the target,
 * best first: fewest substituted stages, then most parameters. */
static int candidates(const struct hakd *h, double target_s, struct choice **out, int *n_out,
                      int **store, double *fastest_s)
{
    int64_t total = 1;
    for (int s = 0; s < h->n_stages; s++) {
        total *= h->nt;
        if (total > 1000000)
            return dlas_error(DLAS_ERR_INVALID, "hakd: %d types over %d stages are too many "
                              "combinations; list fewer types", h->nt, h->n_stages);
    }
    struct choice *c = calloc((size_t)total, sizeof *c);
    int *ts = calloc((size_t)total * (size_t)(h->n_stages > 0 ? h->n_stages : 1), sizeof *ts);
    if (!c || !ts) {
        free(c);
        free(ts);
        return dlas_error(DLAS_ERR_NOMEM, "hakd: out of memory");
    }
    /* Per-node times do not add up to the whole network's: scale every sum
     * so that the teacher's (type 0, S, in every stage) is its measured whole
     * time. The teacher then never passes for a student under a relative
     * budget below 1 because its parts happened to sum low. */
    double teacher_sum = h->other_s;
    for (int s = 0; s < h->n_stages; s++)
        teacher_sum += stage_seconds(h, s, 0);
    const double scale = teacher_sum > 0.0 && h->teacher_s > 0.0 ? h->teacher_s / teacher_sum
                                                                  : 1.0;
    int n = 0;
    *fastest_s = -1.0;
    for (int64_t k = 0; k < total; k++) {
        int *t = ts + n * h->n_stages;
        int64_t r = k;
        double est = h->other_s;
        int64_t params = 0, sub = 0, ok = 1;
        for (int s = 0; s < h->n_stages; s++) {
            t[s] = (int)(r % h->nt);
            r /= h->nt;
            double ss = stage_seconds(h, s, t[s]);
            int64_t sp = stage_params(h, s, t[s]);
            if (ss < 0 || sp < 0) {
                ok = 0;
                break;
            }
            est += ss;
            params += sp;
            sub += h->types[t[s]].kind != DLAS_BLOCK_STANDARD;
        }
        if (!ok)
            continue;
        est *= scale;
        if (*fastest_s < 0 || est < *fastest_s)
            *fastest_s = est;
        if (est > target_s)
            continue;
        c[n] = (struct choice){t, est, (int)sub, params};
        n++;
    }
    qsort(c, (size_t)n, sizeof *c, cmp_choice);
    *out = c;
    *n_out = n;
    *store = ts;
    return DLAS_OK;
}

static int build_choice(const struct hakd *h, const struct choice *c, struct dlas_graph *g)
{
    int rc = DLAS_OK;
    for (int i = 0; i < h->nb && !rc; i++)
        rc = dlas_graph_substitute_block(g, &h->b[i], &h->types[c->types[h->stage[i]]],
                                         h->ctx->host->rng);
    return rc;
}

static const char *genotype_str(const struct hakd *h, const struct choice *c, int per_block,
                                char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    int n = per_block ? h->nb : h->n_stages;
    for (int i = 0; i < n && at < len; i++) {
        char name[32];
        int t = c->types[per_block ? h->stage[i] : i];
        int w = snprintf(buf + at, len - at, "%s%s", i ? " " : "",
                         dlas_block_type_name(&h->types[t], name, sizeof name));
        if (w < 0)
            break;
        at += (size_t)w;
    }
    return buf;
}

static int report(struct dlas_compress_ctx *ctx, const char *key, double v)
{
    char k[96];
    snprintf(k, sizeof k, "hakd.%s", key);
    return dlas_report_num(ctx->report, k, v);
}

/* Measure the best candidates in turn; keep the first that meets the
 * target when timed whole. */
static int choose(struct hakd *h, double target_s, const struct dlas_params *p, int *chosen,
                  struct choice *c, int n, double *measured_s)
{
    int tries = (int)dlas_param_int(p, "verify");
    for (int k = 0; k < n && k < tries; k++) {
        struct dlas_graph *g = dlas_graph_clone(h->ctx->graph);
        if (!g)
            return dlas_error(DLAS_ERR_NOMEM, "hakd: out of memory");
        double med = 0.0;
        int rc = build_choice(h, &c[k], g);
        if (!rc)
            rc = measure(h, g, &med, NULL);
        dlas_graph_free(g);
        if (rc)
            return rc;
        char buf[256];
        h->ctx->host->log(DLAS_LOG_INFO,
                          "hakd: candidate %d (%s): estimated %.3f ms, measured %.3f ms, "
                          "target %.3f ms",
                          k + 1, genotype_str(h, &c[k], 0, buf, sizeof buf), 1e3 * c[k].est_s,
                          1e3 * med, 1e3 * target_s);
        if (med <= target_s) {
            *chosen = k;
            *measured_s = med;
            return DLAS_OK;
        }
    }
    return dlas_error(DLAS_ERR_INVALID,
                      "hakd: none of the %d best of %d candidates estimated within %.3f ms met "
                      "it when measured; raise the target or `verify`",
                      n < tries ? n : tries, n, 1e3 * target_s);
}

static int hakd_apply(struct dlas_compress_ctx *ctx, const struct dlas_params *p)
{
    if (!ctx || !ctx->graph || !ctx->host || !p)
        return dlas_error(DLAS_ERR_INVALID, "hakd: no graph, host or parameters");
    struct hakd h;
    memset(&h, 0, sizeof h);
    h.ctx = ctx;
    struct dlas_residual_block *blocks = NULL;
    int rc = dlas_graph_residual_blocks(ctx->graph, &blocks, &h.nb);
    h.b = blocks;
    if (!rc && h.nb == 0)
        rc = dlas_error(DLAS_ERR_INVALID,
                        "hakd: the model has no residual blocks of two k x k convolutions to "
                        "swap (WRN and basic-block ResNets have)");
    if (!rc)
        rc = stage_of_blocks(&h);
    h.flags = strcmp(dlas_param_str(p, "binding"), "auto") ? 0 : DLAS_LATENCY_AUTO;
    h.nt = dlas_param_list_len(p, "types") + 1;
    h.types = calloc((size_t)h.nt, sizeof *h.types);
    h.block_s = calloc((size_t)(h.nt * (h.nb ? h.nb : 1)), sizeof *h.block_s);
    if (!rc && (!h.types || !h.block_s))
        rc = dlas_error(DLAS_ERR_NOMEM, "hakd: out of memory");
    /* type 0 is S, the teacher's own block, whatever the list says */
    for (int t = 1; t < h.nt && !rc; t++)
        if ((rc = dlas_block_type_parse(dlas_param_list_str(p, "types", t - 1), &h.types[t])))
            dlas_error_context("hakd: types[%d]", t - 1);
    if (!rc)
        rc = measure_table(&h);

    double target_s = 0.0, fastest_s = 0.0, measured_s = 0.0;
    struct choice *c = NULL;
    int *store = NULL, n = 0, chosen = -1;
    if (!rc) {
        double ms = dlas_param_float(p, "latency_ms");
        target_s = ms > 0 ? 1e-3 * ms : dlas_param_float(p, "latency") * h.teacher_s;
        rc = candidates(&h, target_s, &c, &n, &store, &fastest_s);
    }
    if (!rc && n == 0)
        rc = dlas_error(DLAS_ERR_INVALID,
                        "hakd: no student is estimated within %.3f ms (the teacher takes %.3f "
                        "ms, the fastest listed student %.3f ms)",
                        1e3 * target_s, 1e3 * h.teacher_s, 1e3 * fastest_s);
    if (!rc)
        rc = choose(&h, target_s, p, &chosen, c, n, &measured_s);
    if (!rc)
        rc = build_choice(&h, &c[chosen], ctx->graph);
    if (!rc && dlas_distil_from_scratch(p))
        rc = dlas_graph_init_weights(ctx->graph, ctx->host->rng);
    struct dlas_graph_stats st;
    char gbuf[4096], sbuf[512];
    if (!rc && !(rc = dlas_graph_stats(ctx->graph, &st))) {
        ctx->host->log(DLAS_LOG_INFO,
                       "hakd: stages %s: %.3f ms measured (teacher %.3f ms, target %.3f ms), "
                       "%lld parameters",
                       genotype_str(&h, &c[chosen], 0, sbuf, sizeof sbuf), 1e3 * measured_s,
                       1e3 * h.teacher_s, 1e3 * target_s, (long long)st.params);
        rc = dlas_report_str(ctx->report, "hakd.genotype",
                             genotype_str(&h, &c[chosen], 1, gbuf, sizeof gbuf));
    }
    if (!rc) rc = dlas_report_str(ctx->report, "hakd.stages", sbuf);
    if (!rc) rc = report(ctx, "latency_ms", 1e3 * measured_s);
    if (!rc) rc = report(ctx, "estimated_ms", 1e3 * c[chosen].est_s);
    if (!rc) rc = report(ctx, "teacher_latency_ms", 1e3 * h.teacher_s);
    if (!rc) rc = report(ctx, "target_ms", 1e3 * target_s);
    if (!rc) rc = report(ctx, "params", (double)st.params);
    if (!rc) rc = report(ctx, "macs", (double)st.macs);
    if (!rc) rc = report(ctx, "candidates", n);
    if (!rc) rc = dlas_report_str(ctx->report, "hakd.timed_on", h.binding);
    free(c);
    free(store);
    if (!rc)
        rc = dlas_distil_student(ctx, p, "hakd", blocks, h.nb);
    free(h.stage);
    free(h.types);
    free(h.block_s);
    free(blocks);
    return rc;
}

static const struct dlas_param_spec hakd_params[] = {
    {"latency", DLAS_PARAM_FLOAT, 0, "0.5", 0.001, 1, NULL,
     "latency budget as a fraction of the teacher's, both measured as the experiment times "
     "its points (its primitive, backend, batch, warmup, repeat)"},
    {"latency_ms", DLAS_PARAM_FLOAT, 0, "0", 0, 1e9, NULL,
     "latency budget in milliseconds per batch (overrides `latency` when > 0)"},
    {"binding", DLAS_PARAM_ENUM, 0, "point", 0, 0, "point|auto",
     "time students on the point's primitive (\"point\") or with every conv on the fastest "
     "of the experiment's primitives for it (\"auto\", as dlas compare)"},
    {"types", DLAS_PARAM_STRING, DLAS_PARAM_LIST,
     "[\"G(2)\", \"G(4)\", \"G(8)\", \"G(16)\", \"DW\", \"B(2)\", \"B(4)\", \"BG(2,2)\", "
     "\"BG(2,4)\"]",
     0, 0, NULL, "candidate cheap block types for each stage (S, the teacher's, always is one)"},
    {"verify", DLAS_PARAM_INT, 0, "5", 1, 1000, NULL,
     "time at most this many of the best estimated students whole before giving up"},
    DLAS_DISTIL_PARAMS,
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_compressor_ops hakd_ops = {sizeof(struct dlas_compressor_ops),
                                                    hakd_apply};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_COMPRESSOR, "hakd",
     "choose a cheap block type per stage from the measured latency of every candidate block "
     "to meet a latency budget, then distil with attention transfer",
     "J. Turner, E. J. Crowley, V. Radu, J. Cano, A. Storkey, M. O'Boyle. Distilling with "
     "performance enhanced students (HAKD: hardware aware knowledge distillation). "
     "arXiv:1810.10460, 2018",
     hakd_params, &hakd_ops},
};

DLAS_PLUGIN("hakd", "0.1.0", "hardware-aware students chosen by measured latency", components)
