/* bench_int8_model: a whole network, fp32 against int8, end to end.
 *
 * Builds a model from the zoo with random weights (batchnorm statistics
 * randomised so that folding matters), times its fp32 plan on the fp32
 * primitive, then quantises a copy with quant-int8 (gaussian calibration
 * inputs: a timing study) and times its plan on the int8 primitive (with the
 * fp32 primitive as the fallback for the layers kept fp32), interleaved, and
 * lists where the plan converts between f32 and uint8.
 *
 *   bench_int8_model [--model NAME] [--depth D] [--input CxHxW] [--classes N]
 *                    [--threads T] [--batch B] [--repeat N] [--warmup W]
 *                    [--int8 PRIM] [--fp32 PRIM] [--calibration METHOD] [--breakdown]
 *
 * --breakdown: after the timing, where the int8 plan's time goes, node by
 * node (dlas_plan_run_timed, medians over the runs), summed by kind, with
 * the elements each conv quantises from an f32 input (the fp32 -> int8
 * boundaries; that time is inside the conv's). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/dlas.h>
#include <dlas/quant.h>

#include "bench_common.h"

static void quiet_log(enum dlas_log_level l, const char *fmt, ...)
{
    (void)l;
    (void)fmt;
}

static int die(const char *what)
{
    fprintf(stderr, "bench_int8_model: %s: %s\n", what, dlas_last_error());
    return 1;
}

/* The kind a node's time is summed under. */
static const char *kind_of(const struct dlas_plan *p, const struct dlas_node *n, int id)
{
    if (n->op != DLAS_OP_CONV2D)
        return dlas_op_name(n->op);
    const struct dlas_conv_desc *d = dlas_plan_conv_desc(p, id);
    const char *pr = dlas_plan_precision(p, id);
    static char buf[96];
    snprintf(buf, sizeof buf, "conv %s %dx%d s%d", strncmp(pr, "int8 ", 5) ? pr : "int8",
             d ? d->kh : 0, d ? d->kw : 0, d ? d->stride_h : 0);
    return buf;
}

/* Median seconds of each node of plan p over `repeat` timed runs, then the
 * sums by kind; each f32 input an int8 conv quantises is timed apart. */
static int print_breakdown(struct dlas_plan *p, const struct dlas_graph *g, int64_t batch,
                           const float *x, float *y, int repeat)
{
    const int n = dlas_plan_n_nodes(p);
    double *t = calloc((size_t)n * repeat, sizeof *t);
    double *med = calloc((size_t)n, sizeof *med);
    if (!t || !med)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    double *one = calloc((size_t)n, sizeof *one);
    for (int r = 0; r < repeat; r++) {
        memset(one, 0, (size_t)n * sizeof *one);
        if (dlas_plan_run_timed(p, batch, x, y, one))
            return -1;
        for (int id = 0; id < n; id++)
            t[(size_t)id * repeat + r] = one[id];
    }
    free(one);
    double total = 0, quant_total = 0;
    printf("int8 plan, node by node (median of %d runs, ms; backend clock):\n", repeat);
    printf("node,op,precision,binding,ms,quantised_inputs\n");
    struct { char kind[96]; double ms; int count; } kinds[32];
    int nk = 0;
    for (int id = 0; id < n; id++) {
        if (dlas_plan_fused_into(p, id) >= 0)
            continue;
        med[id] = bench_stats(t + (size_t)id * repeat, repeat).median;
        const struct dlas_node *nd = dlas_graph_node(g, id);
        const char *pr = dlas_plan_precision(p, id);
        int64_t qel = 0; /* elements this conv quantises (an f32 input) */
        if (!strncmp(pr, "int8 f32", 8)) {
            const struct dlas_node *in = dlas_graph_node(g, nd->inputs[0]);
            qel = batch;
            for (int k = 0; k < in->out_ndim; k++)
                qel *= in->out_shape[k];
        }
        printf("%s,%s,%s,%s,%.4f,%lld\n", nd->name, dlas_op_name(nd->op), pr,
               dlas_plan_binding(p, id), med[id] * 1e3, (long long)qel);
        total += med[id] * 1e3;
        quant_total += (double)qel;
        const char *k = kind_of(p, nd, id);
        int j = 0;
        while (j < nk && strcmp(kinds[j].kind, k))
            j++;
        if (j == nk && nk < 32) {
            snprintf(kinds[nk].kind, sizeof kinds[nk].kind, "%s", k);
            kinds[nk].ms = 0;
            kinds[nk++].count = 0;
        }
        if (j < nk) {
            kinds[j].ms += med[id] * 1e3;
            kinds[j].count++;
        }
    }
    printf("by kind (sum of node medians, ms; share of %.3f ms):\n", total);
    for (int j = 0; j < nk; j++)
        printf("  %-26s %3d nodes %8.3f ms %5.1f%%\n", kinds[j].kind, kinds[j].count, kinds[j].ms,
               100 * kinds[j].ms / total);
    printf("  f32 -> uint8 boundaries: %.0f elements quantised per image (in the convs' times)\n",
           quant_total / (double)batch);
    free(t);
    free(med);
    return 0;
}

int main(int argc, char **argv)
{
    const char *model = "resnet", *depth = "18", *int8 = "int8-direct", *fp32 = "im2col-gemm";
    const char *calibration = "minmax", *skip_first = "true";
    int c = 3, h = 224, w = 224, classes = 1000, threads = 1, repeat = 11, warmup = 2;
    int cpu_time = 0; /* --cpu-time: this process's CPU clock (1 thread, busy machine) */
    int breakdown = 0;
    int64_t batch = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--cpu-time")) {
            cpu_time = 1;
            continue;
        }
        if (!strcmp(a, "--breakdown")) {
            breakdown = 1;
            continue;
        }
        if (i + 1 >= argc || !strcmp(a, "--help")) {
            fprintf(stderr, "usage: bench_int8_model [--model NAME] [--depth D] [--input CxHxW] "
                            "[--classes N] [--threads T] [--batch B] [--repeat N] [--warmup W] "
                            "[--int8 PRIM] [--fp32 PRIM] [--calibration METHOD] [--skip-first true|false] "
                            "[--cpu-time] [--breakdown]\n");
            return strcmp(a, "--help") ? 2 : 0;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--depth"))
            depth = v;
        else if (!strcmp(a, "--input") && sscanf(v, "%dx%dx%d", &c, &h, &w) == 3)
            ;
        else if (!strcmp(a, "--classes"))
            classes = atoi(v);
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--batch"))
            batch = atoll(v);
        else if (!strcmp(a, "--repeat"))
            repeat = atoi(v);
        else if (!strcmp(a, "--warmup"))
            warmup = atoi(v);
        else if (!strcmp(a, "--int8"))
            int8 = v;
        else if (!strcmp(a, "--fp32"))
            fp32 = v;
        else if (!strcmp(a, "--calibration"))
            calibration = v;
        else if (!strcmp(a, "--skip-first"))
            skip_first = v;
        else {
            fprintf(stderr, "bench_int8_model: unknown option %s\n", a);
            return 2;
        }
    }
    if (threads < 1 || repeat < 1 || batch < 1 || classes < 1)
        return 2;
    struct dlas_registry *reg = dlas_registry_new();
    if (!reg || dlas_registry_discover(reg, NULL))
        return die("plugins");
    struct dlas_rng rng;
    dlas_rng_seed(&rng, 1);
    struct dlas_host host = {sizeof host, quiet_log, dlas_aligned_alloc, dlas_aligned_free, &rng, 1};
    const struct dlas_component *mc = dlas_registry_find(reg, DLAS_KIND_MODEL, model);
    const struct dlas_component *qc = dlas_registry_find(reg, DLAS_KIND_COMPRESSOR, "quant-int8");
    const struct dlas_component *pi = dlas_registry_find(reg, DLAS_KIND_PRIMITIVE, int8);
    const struct dlas_component *pf = dlas_registry_find(reg, DLAS_KIND_PRIMITIVE, fp32);
    if (!mc || !qc || !pi || !pf)
        return die("components");
    struct dlas_params *mp = NULL, *qp = NULL;
    if (dlas_params_defaults(mc->params, &mp) || dlas_params_set(mp, "depth", depth, "cli") ||
        dlas_params_defaults(qc->params, &qp) || dlas_params_set(qp, "data", "gaussian", "cli") ||
        dlas_params_set(qp, "calibration", calibration, "cli") ||
        dlas_params_set(qp, "skip_first", skip_first, "cli") ||
        dlas_params_set(qp, "batches", "2", "cli") || dlas_params_set(qp, "batch", "2", "cli"))
        return die("parameters");
    struct dlas_graph *g = dlas_graph_new();
    if (((const struct dlas_model_ops *)mc->ops)->build(&host, mp, c, h, w, classes, g) ||
        dlas_graph_status(g) || dlas_graph_init_weights(g, &rng))
        return die("model");
    for (int id = 0; id < dlas_graph_n_nodes(g); id++) {
        struct dlas_node *n = dlas_graph_node(g, id);
        if (n->op != DLAS_OP_BATCHNORM)
            continue;
        for (int64_t k = 0; k < n->out_shape[0]; k++) {
            dlas_f32(&n->weight)[k] = 0.5f + (float)dlas_rng_uniform(&rng);
            dlas_f32(&n->bias)[k] = 0.1f * dlas_rng_normal(&rng);
            dlas_f32(&n->running_var)[k] = 0.5f + (float)dlas_rng_uniform(&rng);
        }
    }
    struct dlas_graph *gq = dlas_graph_clone(g);
    struct dlas_compress_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.size = sizeof ctx;
    ctx.host = &host;
    ctx.graph = gq;
    if (!gq || ((const struct dlas_compressor_ops *)qc->ops)->apply(&ctx, qp))
        return die("quant-int8");
    struct dlas_backend be;
    if (bench_backend(reg, threads, &host, &be))
        return die("backend");
    struct dlas_primitive_choice cf = {fp32, pf, NULL}, ci = {int8, pi, NULL};
    struct dlas_plan *plan_f = NULL, *plan_i = NULL, *plan_fq = NULL;
    if (dlas_plan_create(g, &host, &be, &cf, 1, NULL, batch, &plan_f) ||
        dlas_plan_create(gq, &host, &be, &ci, 1, &cf, batch, &plan_i) ||
        dlas_plan_create(gq, &host, &be, &cf, 1, NULL, batch, &plan_fq))
        return die("plan");
    int64_t nin = batch * c * h * w, nout = batch * dlas_plan_output_numel(plan_f);
    float *x = dlas_aligned_alloc((size_t)nin * sizeof *x);
    float *y0 = malloc((size_t)nout * sizeof *y0), *y1 = malloc((size_t)nout * sizeof *y1);
    for (int64_t i = 0; i < nin; i++)
        x[i] = dlas_rng_normal(&rng);
    /* where the int8 plan converts */
    int n_int8 = 0, n_u8 = 0;
    printf("int8 plan of %s-%s (%s, fallback %s):\n", model, depth, int8, fp32);
    for (int id = 0; id < dlas_plan_n_nodes(plan_i); id++) {
        const char *pr = dlas_plan_precision(plan_i, id);
        if (!pr[0])
            continue;
        printf("  %-28s %-14s %s\n", dlas_graph_node(gq, id)->name, pr,
               dlas_plan_binding(plan_i, id));
        n_int8 += !strncmp(pr, "int8 ", 5);
        n_u8 += !!strstr(pr, ">u8");
    }
    printf("%d convs int8, %d hand uint8 to the next\n", n_int8, n_u8);
    if (dlas_plan_run(plan_fq, batch, x, y0) || dlas_plan_run(plan_i, batch, x, y1))
        return die("run");
    printf("int8 vs fake-quant fp32 output: rel. error %.3g\n", dlas_rel_error(y1, y0, nout));
    double *tf = malloc((size_t)repeat * sizeof *tf), *ti = malloc((size_t)repeat * sizeof *ti);
    char load[64];
    bench_loadavg(load, sizeof load);
    printf("%s, %d thread(s), batch %lld, %d runs each, interleaved, %s clock\n", load, threads,
           (long long)batch, repeat, cpu_time ? "CPU" : "wall");
    for (int r = -warmup; r < repeat; r++) {
        double (*clock)(void) = cpu_time ? bench_cpu_now : bench_now;
        double t0 = clock();
        dlas_plan_run(plan_f, batch, x, y0);
        double t1 = clock();
        dlas_plan_run(plan_i, batch, x, y1);
        double t2 = clock();
        if (r >= 0) {
            tf[r] = t1 - t0;
            ti[r] = t2 - t1;
        }
    }
    struct bench_stats sf = bench_stats(tf, repeat), si = bench_stats(ti, repeat);
    printf("model,primitive,threads,batch,median_ms,min_ms,max_ms\n");
    printf("%s-%s,%s,%d,%lld,%.3f,%.3f,%.3f\n", model, depth, fp32, threads, (long long)batch,
           sf.median * 1e3, sf.min * 1e3, sf.max * 1e3);
    printf("%s-%s,%s,%d,%lld,%.3f,%.3f,%.3f\n", model, depth, int8, threads, (long long)batch,
           si.median * 1e3, si.min * 1e3, si.max * 1e3);
    bench_loadavg(load, sizeof load);
    printf("speed-up int8 over fp32: %.2fx; %s\n", sf.median / si.median, load);
    if (breakdown && print_breakdown(plan_i, gq, batch, x, y1, repeat))
        return die("breakdown");
    dlas_plan_free(plan_f);
    dlas_plan_free(plan_i);
    dlas_plan_free(plan_fq);
    be.ops->release(be.ctx);
    dlas_graph_free(g);
    dlas_graph_free(gq);
    dlas_params_free(mp);
    dlas_params_free(qp);
    dlas_aligned_free(x);
    free(y0);
    free(y1);
    free(tf);
    free(ti);
    dlas_registry_free(reg);
    return 0;
}
