/* Compressor "blockswap": BlockSwap (Turner, Crowley, O'Boyle, Storkey and
 * Gray, ICLR 2020). Sample genotypes - a cheap block type for every residual
 * block of the teacher - whose parameter count lies within a tolerance of a
 * budget, score each at random initialisation by its Fisher potential on one
 * minibatch, build the best and train it from the teacher with attention
 * transfer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blockswap.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The candidate types and their cost in every block. */
static int make_space(const struct dlas_params *p, const struct dlas_graph *g,
                      const struct dlas_residual_block *blocks, int n_blocks, struct bs_space *sp)
{
    memset(sp, 0, sizeof *sp);
    sp->blocks = blocks;
    sp->n_blocks = n_blocks;
    sp->n_types = dlas_param_list_len(p, "types");
    if (sp->n_types < 1)
        return dlas_error(DLAS_ERR_INVALID, "blockswap: types is empty");
    sp->types = calloc((size_t)sp->n_types, sizeof *sp->types);
    sp->params = calloc((size_t)sp->n_types * (size_t)n_blocks, sizeof *sp->params);
    if (!sp->types || !sp->params)
        return dlas_error(DLAS_ERR_NOMEM, "blockswap: out of memory");
    for (int t = 0; t < sp->n_types; t++)
        if (dlas_block_type_parse(dlas_param_list_str(p, "types", t), &sp->types[t]))
            return dlas_error_context("blockswap: types[%d]", t);
    struct dlas_graph_stats st;
    int rc = dlas_graph_stats(g, &st);
    if (rc)
        return rc;
    sp->base = st.params;
    for (int b = 0; b < n_blocks; b++) {
        sp->base -= blocks[b].trunk_params;
        int fit = 0;
        for (int t = 0; t < sp->n_types; t++) {
            int64_t c = dlas_block_type_params(&sp->types[t], blocks[b].in_c, blocks[b].out_c,
                                               blocks[b].k, 1);
            sp->params[b * sp->n_types + t] = c;
            fit += c >= 0;
        }
        if (!fit)
            return dlas_error(DLAS_ERR_INVALID, "blockswap: no listed type fits block '%s' (%d -> "
                              "%d channels)", blocks[b].prefix, blocks[b].in_c, blocks[b].out_c);
    }
    double budget = dlas_param_float(p, "budget"), tol = dlas_param_float(p, "tolerance");
    double target = budget <= 1.0 ? budget * (double)st.params : budget;
    sp->lo = (int64_t)(target * (1.0 - tol) + 0.999999);
    sp->hi = (int64_t)(target * (1.0 + tol));
    /* the cheapest and dearest genotypes bound what sampling can find */
    int64_t least = sp->base, most = sp->base;
    for (int b = 0; b < n_blocks; b++) {
        int64_t mn = -1, mx = -1;
        for (int t = 0; t < sp->n_types; t++) {
            int64_t c = sp->params[b * sp->n_types + t];
            if (c >= 0 && (mn < 0 || c < mn))
                mn = c;
            if (c > mx)
                mx = c;
        }
        least += mn;
        most += mx;
    }
    if (least > sp->hi || most < sp->lo)
        return dlas_error(DLAS_ERR_INVALID,
                          "blockswap: budget %.0f parameters (+-%.1f%%) is out of reach: the "
                          "listed types give %lld to %lld (the teacher has %lld)",
                          target, 100.0 * tol, (long long)least, (long long)most,
                          (long long)st.params);
    return DLAS_OK;
}

static void space_free(struct bs_space *sp)
{
    free(sp->types);
    free(sp->params);
}

/* The minibatch every candidate is scored on: fisher_batch training samples
 * drawn at random (without replacement) with the compressor's stream. */
static int read_minibatch(struct dlas_data *d, int64_t n, struct dlas_rng *rng, float **images,
                          int32_t **labels, int64_t *n_read)
{
    const struct dlas_dataset_info *info = dlas_data_info(d);
    int64_t size = dlas_data_size(d, DLAS_DATA_TRAIN), per = (int64_t)info->channels *
                                                                 info->height * info->width;
    if (size < n)
        n = size;
    *images = malloc((size_t)(n * per) * sizeof(float));
    *labels = malloc((size_t)n * sizeof(int32_t));
    int64_t *pick = malloc((size_t)size * sizeof *pick);
    int rc = *images && *labels && pick ? DLAS_OK
                                        : dlas_error(DLAS_ERR_NOMEM, "blockswap: out of memory");
    for (int64_t i = 0; !rc && i < size; i++)
        pick[i] = i;
    for (int64_t i = 0; !rc && i < n; i++) { /* partial Fisher-Yates */
        int64_t j = i + (int64_t)dlas_rng_below(rng, (uint64_t)(size - i));
        int64_t t = pick[i];
        pick[i] = pick[j];
        pick[j] = t;
        rc = dlas_data_read(d, DLAS_DATA_TRAIN, pick[i], 1, *images + i * per, *labels + i);
    }
    free(pick);
    *n_read = n;
    return rc;
}

/* Samples as CSV (index, params, fisher, chosen, genotype), written to a
 * temporary file and renamed. */
static int write_log(const char *path, const struct bs_space *sp, const struct bs_sample *s,
                     int n, int best)
{
    char tmp[4200], buf[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return dlas_error(DLAS_ERR_IO, "blockswap: cannot write '%s'", tmp);
    fprintf(f, "sample,params,fisher_potential,chosen,genotype\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "%d,%lld,%.10g,%d,\"%s\"\n", i, (long long)s[i].params, s[i].fisher, i == best,
                bs_genotype_str(sp, s[i].genotype, buf, sizeof buf));
    if (fclose(f) || rename(tmp, path)) {
        remove(tmp);
        return dlas_error(DLAS_ERR_IO, "blockswap: cannot write '%s'", path);
    }
    return DLAS_OK;
}

/* Progress as the trainer reports it: lines on stderr when the experiment
 * asked the trainer for progress, else the log at INFO. */
static void progress(struct dlas_compress_ctx *ctx, const char *fmt, ...) DLAS_PRINTF(2, 3);
static void progress(struct dlas_compress_ctx *ctx, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    const struct dlas_train_options *o = ctx->trainer ? dlas_trainer_options(ctx->trainer) : NULL;
    if (o && o->progress != 0) {
        fprintf(stderr, "dlas: %s%s%s\n", o->label ? o->label : "", o->label ? ": " : "", line);
        fflush(stderr);
    } else {
        ctx->host->log(DLAS_LOG_INFO, "%s", line);
    }
}

static int report(struct dlas_compress_ctx *ctx, const char *key, double v)
{
    char k[96];
    snprintf(k, sizeof k, "blockswap.%s", key);
    return dlas_report_num(ctx->report, k, v);
}

/* Sample, score, and return the index of the genotype to build. */
static int search(struct dlas_compress_ctx *ctx, const struct dlas_params *p,
                  const struct bs_space *sp, struct bs_sample *s, int *n_kept, int *chosen)
{
    const struct dlas_host *h = ctx->host;
    int want = (int)dlas_param_int(p, "samples");
    int64_t draws = 0;
    double t0 = now_s();
    int n = bs_sample_genotypes(sp, h->rng, want, dlas_param_int(p, "max_draws"), s, &draws);
    if (n <= 0)
        return dlas_error(DLAS_ERR_INVALID,
                          "blockswap: no genotype within %lld..%lld parameters in %lld random "
                          "draws; widen the tolerance or raise max_draws",
                          (long long)sp->lo, (long long)sp->hi, (long long)draws);
    if (n < want)
        h->log(DLAS_LOG_WARN, "blockswap: only %d of %d genotypes within budget in %lld draws",
               n, want, (long long)draws);
    *n_kept = n;

    float *images = NULL;
    int32_t *labels = NULL;
    int threads = dlas_trainer_options(ctx->trainer)->threads;
    int64_t mb = 0;
    int rc = read_minibatch(ctx->data, dlas_param_int(p, "fisher_batch"), h->rng, &images, &labels,
                            &mb);
    double last = now_s();
    /* one autograd for all candidates: its gigabyte of batch buffers is
     * allocated once and handed from graph to graph */
    struct dlas_autograd *a = NULL;
    struct dlas_graph *held = NULL;
    for (int i = 0; i < n && !rc; i++) {
        /* every candidate's weights from its own stream: the score of a
         * genotype does not depend on which others were drawn */
        struct dlas_rng r = dlas_rng_derive(h->rng, 0x5eed0000u + (uint64_t)i);
        struct dlas_graph *g = NULL;
        rc = bs_build(ctx->graph, sp, s[i].genotype, &r, &g);
        if (!rc) {
            rc = a ? dlas_autograd_set_graph(a, g) : dlas_autograd_new(g, mb, threads, &a);
            dlas_graph_free(held); /* the autograd has let go of it */
            held = g;
        }
        if (!rc)
            rc = dlas_fisher_potential_with(a, sp->blocks, sp->n_blocks, mb, images, labels,
                                            &s[i].fisher);
        if (rc)
            dlas_error_context("blockswap: sample %d", i);
        if (now_s() - last > 10.0 || i + 1 == n) {
            double el = now_s() - t0;
            progress(ctx, "blockswap: scored %d/%d genotypes, %.0f s, ETA %.0f s", i + 1, n, el,
                     el / (i + 1) * (n - i - 1));
            last = now_s();
        }
    }
    dlas_autograd_free(a);
    dlas_graph_free(held);
    free(images);
    free(labels);
    if (rc)
        return rc;
    int best = 0;
    for (int i = 1; i < n; i++)
        if (s[i].fisher > s[best].fisher)
            best = i;
    int pick = (int)dlas_param_int(p, "pick");
    if (pick >= n)
        return dlas_error(DLAS_ERR_INVALID, "blockswap: pick = %d, but only %d samples", pick, n);
    *chosen = pick >= 0 ? pick : best;

    double *f = malloc((size_t)n * sizeof *f);
    if (!f)
        return dlas_error(DLAS_ERR_NOMEM, "blockswap: out of memory");
    for (int i = 0; i < n; i++)
        f[i] = s[i].fisher;
    qsort(f, (size_t)n, sizeof *f, cmp_double);
    double med = n % 2 ? f[n / 2] : 0.5 * (f[n / 2 - 1] + f[n / 2]);
    if (!rc) rc = report(ctx, "samples", n);
    if (!rc) rc = report(ctx, "draws", (double)draws);
    if (!rc) rc = report(ctx, "fisher_best", f[n - 1]);
    if (!rc) rc = report(ctx, "fisher_median", med);
    if (!rc) rc = report(ctx, "fisher_worst", f[0]);
    if (!rc) rc = report(ctx, "search_seconds", now_s() - t0);
    free(f);
    const char *log = dlas_param_str(p, "log");
    if (!rc && log && *log)
        rc = write_log(log, sp, s, n, *chosen);
    return rc;
}

static int blockswap_apply(struct dlas_compress_ctx *ctx, const struct dlas_params *p)
{
    if (!ctx || !ctx->graph || !ctx->host || !p)
        return dlas_error(DLAS_ERR_INVALID, "blockswap: no graph, host or parameters");
    if (ctx->size < offsetof(struct dlas_compress_ctx, teacher) + sizeof ctx->teacher ||
        !ctx->trainer || !ctx->data)
        return dlas_error(DLAS_ERR_INVALID,
                          "blockswap: the Fisher potential needs the experiment's data and "
                          "trainer: set train.epochs > 0 in the experiment");
    struct dlas_residual_block *blocks = NULL;
    int nb = 0, rc = dlas_graph_residual_blocks(ctx->graph, &blocks, &nb);
    if (rc)
        return rc;
    if (nb == 0) {
        free(blocks);
        return dlas_error(DLAS_ERR_INVALID,
                          "blockswap: the model has no residual blocks of two k x k "
                          "convolutions to swap (WRN and basic-block ResNets have)");
    }
    struct bs_space sp;
    rc = make_space(p, ctx->graph, blocks, nb, &sp);
    int want = (int)dlas_param_int(p, "samples"), n = 0, chosen = 0;
    struct bs_sample *s = calloc((size_t)want, sizeof *s);
    int *gts = calloc((size_t)want * (size_t)nb, sizeof *gts);
    if (!rc && (!s || !gts))
        rc = dlas_error(DLAS_ERR_NOMEM, "blockswap: out of memory");
    for (int i = 0; !rc && i < want; i++)
        s[i].genotype = gts + (size_t)i * nb;
    if (!rc)
        rc = search(ctx, p, &sp, s, &n, &chosen);

    /* build the very network that was counted and scored, block by block */
    char gbuf[4096];
    for (int b = 0; b < nb && !rc; b++)
        rc = dlas_graph_substitute_block(ctx->graph, &blocks[b], &sp.types[s[chosen].genotype[b]],
                                         ctx->host->rng);
    if (!rc && dlas_distil_from_scratch(p))
        rc = dlas_graph_init_weights(ctx->graph, ctx->host->rng);
    struct dlas_graph_stats st;
    if (!rc)
        rc = dlas_graph_stats(ctx->graph, &st);
    if (!rc && st.params != s[chosen].params)
        rc = dlas_error(DLAS_ERR_INTERNAL, "blockswap: built %lld parameters, counted %lld",
                        (long long)st.params, (long long)s[chosen].params);
    if (!rc) {
        bs_genotype_str(&sp, s[chosen].genotype, gbuf, sizeof gbuf);
        progress(ctx,
                 "blockswap: chose sample %d of %d: %lld parameters (window %lld..%lld), "
                 "Fisher potential %.4g: %s",
                 chosen, n, (long long)st.params, (long long)sp.lo, (long long)sp.hi,
                 s[chosen].fisher, gbuf);
        rc = dlas_report_str(ctx->report, "blockswap.genotype", gbuf);
    }
    if (!rc) rc = report(ctx, "fisher", s[chosen].fisher);
    if (!rc) rc = report(ctx, "chosen_sample", chosen);
    if (!rc) rc = report(ctx, "params", (double)st.params);
    if (!rc) rc = report(ctx, "macs", (double)st.macs);
    if (!rc) rc = report(ctx, "budget_lo", (double)sp.lo);
    if (!rc) rc = report(ctx, "budget_hi", (double)sp.hi);
    if (!rc)
        rc = dlas_distil_student(ctx, p, "blockswap", blocks, nb);
    free(gts);
    free(s);
    space_free(&sp);
    free(blocks);
    return rc;
}

static const struct dlas_param_spec blockswap_params[] = {
    {"budget", DLAS_PARAM_FLOAT, 0, "0.3", 1e-6, 1e12, NULL,
     "parameter budget: a fraction of the teacher's parameters (<= 1) or a count (> 1)"},
    {"tolerance", DLAS_PARAM_FLOAT, 0, "0.025", 0, 0.5, NULL,
     "genotypes are kept within budget * (1 +- tolerance) (the paper's 2.5%)"},
    {"samples", DLAS_PARAM_INT, 0, "1000", 1, 1000000, NULL,
     "genotypes drawn within the budget and scored"},
    {"max_draws", DLAS_PARAM_INT, 0, "10000000", 1, 1e12, NULL,
     "give up after this many random draws (most fall outside a tight budget)"},
    {"fisher_batch", DLAS_PARAM_INT, 0, "128", 1, 65536, NULL,
     "samples of the one minibatch every genotype is scored on"},
    {"types", DLAS_PARAM_STRING, DLAS_PARAM_LIST,
     "[\"S\", \"G(2)\", \"G(4)\", \"G(8)\", \"G(16)\", \"G(N/16)\", \"G(N/8)\", \"G(N/4)\", "
     "\"G(N/2)\", \"DW\", \"B(2)\", \"B(4)\", \"BG(2,2)\", \"BG(2,4)\", \"BG(2,8)\", "
     "\"BG(2,16)\", \"BG(2,N/16)\", \"BG(2,N/8)\", \"BG(2,N/4)\", \"BG(2,N/2)\", "
     "\"BG(4,N/8)\", \"BG(4,N/4)\", \"BG(4,N/2)\"]",
     0, 0, NULL, "candidate block types (default: the 23 of the authors' code)"},
    {"pick", DLAS_PARAM_INT, 0, "-1", -1, 1000000, NULL,
     "-1: build the highest-scoring sample (BlockSwap); i: build sample i instead (for "
     "studies of the Fisher potential as a proxy)"},
    {"log", DLAS_PARAM_STRING, 0, "\"\"", 0, 0, NULL,
     "write every sample (params, Fisher potential, genotype) to this CSV file"},
    DLAS_DISTIL_PARAMS,
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_compressor_ops blockswap_ops = {sizeof(struct dlas_compressor_ops),
                                                         blockswap_apply};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_COMPRESSOR, "blockswap",
     "sample per-block cheap-block genotypes within a parameter budget, keep the one of "
     "highest Fisher potential at initialisation, train it with attention transfer",
     "J. Turner, E. J. Crowley, M. O'Boyle, A. Storkey, G. Gray. BlockSwap: Fisher-guided "
     "block substitution for network compression on a budget. ICLR 2020 (arXiv:1906.04113)",
     blockswap_params, &blockswap_ops},
};

DLAS_PLUGIN("blockswap", "0.1.0", "BlockSwap students: Fisher-guided block substitution",
            components)
