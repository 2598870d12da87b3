/* bench_sparse: sparse primitives against the best dense one, per layer and
 * sparsity, and the break-even sparsity of each layer.
 *
 * For every layer the dense primitives run on dense random weights (their
 * time does not depend on the values) and each sparse primitive on the same
 * weights pruned at random to each sparsity (unstructured, as magnitude
 * pruning leaves i.i.d. weights), every output checked once against the
 * core's reference convolution on those weights. All of a layer's
 * (primitive, sparsity) slots are then timed interleaved, one run each per
 * round, so that a change of machine load hits them alike; medians with
 * min and max. The break-even sparsity is where the sparse primitive's
 * time, fitted as a + b * density over the measured sparsities (least
 * squares), meets the best dense primitive's. A summary table at the end
 * gives, per sparse primitive, each layer's speed-up at each sparsity and
 * break-even, and the totals over the layers (weighted by their counts).
 *
 *   bench_sparse [--threads T] [--repeat N] [--warmup W] [--batch B]
 *                [--layers SET|SHAPE[,SHAPE...]] [--sparsity S[,S...]]
 *                [--dense P[,P...]] [--sparse P[,P...]] [--csv FILE] [--cpu-time]
 *
 * Defaults: 1 thread, batch 1, 21 runs after 3, ResNet-18's 3x3 stride-1
 * layers (resnet18-3x3; `resnet18` for every layer), sparsities
 * 0.5,0.7,0.8,0.9,0.95, dense direct,spatial-pack,winograd,im2col-gemm,
 * sparse sparse-direct,sparse-gemm. A primitive may carry settings,
 * sparse-direct:vectors=8 (as bench_layers). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/dlas.h>

#include "bench_common.h"

#define MAX_PRIMS 8
#define MAX_SP 12
#define MAX_LAYERS 64

/* A comma-separated list of primitives (settings after ':' use ';' between
 * them here, since ',' separates primitives). */
static int parse_prims(struct dlas_registry *reg, const char *list, struct bench_prim *out, int max)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save)) {
        for (char *c = t; *c; c++)
            if (*c == ';')
                *c = ',';
        if (bench_prim_parse(reg, t, &out[n])) {
            fprintf(stderr, "bench_sparse: primitive '%s': %s\n", t, dlas_last_error());
            return -1;
        }
        n++;
    }
    return n;
}

/* One timed configuration of a layer. */
struct slot {
    const struct bench_prim *p;
    int sparse_idx; /* -1: dense weights */
    void *st, *ws;
    double *t;
    double err;
    struct bench_stats s;
    char why[256];
};

/* Zero each weight with probability sp (seeded per layer and sparsity). */
static void prune(const float *w, int64_t n, double sp, uint64_t seed, float *out)
{
    struct dlas_rng r;
    dlas_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++)
        out[i] = dlas_rng_uniform(&r) < sp ? 0.0f : w[i];
}

/* Least-squares t = a + b * density over the measured points; the density
 * where it meets t_dense, as a sparsity in [0, 1] (1: never). */
static double break_even(const double *sp, const double *t, int n, double t_dense, double *a,
                         double *b)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (t[i] <= 0)
            continue;
        double x = 1.0 - sp[i];
        sx += x, sy += t[i], sxx += x * x, sxy += x * t[i];
        m++;
    }
    *a = *b = 0;
    if (m < 2)
        return NAN;
    double den = m * sxx - sx * sx;
    *b = den != 0 ? (m * sxy - sx * sy) / den : 0;
    *a = (sy - *b * sx) / m;
    if (*b <= 0)
        return *a < t_dense ? 0.0 : 1.0;
    double density = (t_dense - *a) / *b;
    if (density >= 1)
        return 0.0;
    if (density <= 0)
        return 1.0;
    return 1.0 - density;
}

int main(int argc, char **argv)
{
    int threads = 1, repeat = 21, warmup = 3, cpu_time = 0;
    long long batch = 1;
    const char *layers_arg = "resnet18-3x3", *csv = NULL;
    const char *dense_arg = "direct,spatial-pack,winograd,im2col-gemm";
    const char *sparse_arg = "sparse-direct,sparse-gemm";
    double sps[MAX_SP] = {0.5, 0.7, 0.8, 0.9, 0.95};
    int n_sp = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(a, "--repeat") && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (!strcmp(a, "--warmup") && i + 1 < argc)
            warmup = atoi(argv[++i]);
        else if (!strcmp(a, "--batch") && i + 1 < argc)
            batch = atoll(argv[++i]);
        else if (!strcmp(a, "--cpu-time"))
            cpu_time = 1;
        else if (!strcmp(a, "--csv") && i + 1 < argc)
            csv = argv[++i];
        else if (!strcmp(a, "--layers") && i + 1 < argc)
            layers_arg = argv[++i];
        else if (!strcmp(a, "--dense") && i + 1 < argc)
            dense_arg = argv[++i];
        else if (!strcmp(a, "--sparse") && i + 1 < argc)
            sparse_arg = argv[++i];
        else if (!strcmp(a, "--sparsity") && i + 1 < argc) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", argv[++i]);
            n_sp = 0;
            for (char *t = strtok(buf, ","); t && n_sp < MAX_SP; t = strtok(NULL, ","))
                sps[n_sp++] = atof(t);
        } else {
            fprintf(stderr, "usage: see the comment at the top of bench/bench_sparse.c\n");
            return 2;
        }
    }
    for (int k = 0; k < n_sp; k++)
        if (!(sps[k] >= 0 && sps[k] < 1)) {
            fprintf(stderr, "bench_sparse: a sparsity must be in [0, 1)\n");
            return 2;
        }
    if (threads < 1 || repeat < 1 || warmup < 0 || batch < 1 || n_sp < 1) {
        fprintf(stderr, "bench_sparse: bad --threads, --repeat, --warmup, --batch or "
                        "--sparsity\n");
        return 2;
    }
    struct dlas_registry *reg = dlas_registry_new();
    if (!reg || dlas_registry_discover(reg, NULL)) {
        fprintf(stderr, "bench_sparse: %s\n", dlas_last_error());
        return 2;
    }
    struct bench_prim dense[MAX_PRIMS], sparse[MAX_PRIMS];
    int n_dense = parse_prims(reg, dense_arg, dense, MAX_PRIMS);
    int n_sparse = parse_prims(reg, sparse_arg, sparse, MAX_PRIMS);
    if (n_dense < 1 || n_sparse < 1)
        return 2;
    struct bench_layer layers[MAX_LAYERS];
    int n_layers = bench_layer_set(layers_arg, layers, MAX_LAYERS);
    if (n_layers <= 0) {
        fprintf(stderr, "bench_sparse: bad --layers '%s'\n", layers_arg);
        return 2;
    }
    struct dlas_host host;
    struct dlas_rng rng;
    dlas_rng_seed(&rng, 1);
    dlas_host_init(&host, &rng, 1);
    struct dlas_backend be;
    if (bench_backend(reg, threads, &host, &be)) {
        fprintf(stderr, "bench_sparse: backend: %s\n", dlas_last_error());
        return 2;
    }
    FILE *cf = csv ? fopen(csv, "w") : NULL;
    if (csv && !cf) {
        perror(csv);
        return 2;
    }
    if (cf)
        fprintf(cf, "layer,shape,count,batch,threads,primitive,kind,sparsity,ms_median,ms_min,"
                    "ms_max,speedup_vs_best_dense,max_rel_err,break_even_sparsity\n");
    char load[128];
    bench_loadavg(load, sizeof load);
    printf("# threads %d, batch %lld, %d timed runs after %d warm-up, interleaved, %s clock; "
           "%s\n",
           threads, batch, repeat, warmup, cpu_time ? "process CPU" : "wall", load);

    /* totals over the layers, each weighted by its count in the network */
    double tot_dense = 0, tot_sparse[MAX_PRIMS][MAX_SP] = {{0}};
    int tot_refused[MAX_PRIMS][MAX_SP] = {{0}}; /* layers a total lacks */
    /* per layer, for the summary: best dense (name, ms), sparse medians, break-even */
    static char sum_best[MAX_LAYERS][128];
    static double sum_dense[MAX_LAYERS], sum_t[MAX_LAYERS][MAX_PRIMS][MAX_SP];
    static double sum_be[MAX_LAYERS][MAX_PRIMS];
    const int n_slots = n_dense + n_sparse * n_sp;
    struct slot *slots = calloc((size_t)n_slots, sizeof *slots);
    if (!slots)
        return 2;
    for (int li = 0; li < n_layers; li++) {
        struct dlas_conv_desc d = layers[li].d;
        d.batch = batch;
        d.has_bias = 1;
        if (dlas_conv_desc_finish(&d)) {
            fprintf(stderr, "%s: %s\n", layers[li].name, dlas_last_error());
            continue;
        }
        char shape[160];
        dlas_conv_desc_format(&d, shape, sizeof shape);
        const int64_t in_n = batch * d.in_c * d.in_h * d.in_w;
        const int64_t out_n = batch * d.out_c * d.out_h * d.out_w;
        const int64_t wn = d.out_c * (d.in_c / d.groups) * d.kh * d.kw;
        float *in = dlas_aligned_alloc((size_t)in_n * 4), *w = dlas_aligned_alloc((size_t)wn * 4);
        float *wp = dlas_aligned_alloc((size_t)wn * 4), *bias = dlas_aligned_alloc((size_t)d.out_c * 4);
        float *ref = dlas_aligned_alloc((size_t)out_n * 4), *out = dlas_aligned_alloc((size_t)out_n * 4);
        if (!in || !w || !wp || !bias || !ref || !out) {
            fprintf(stderr, "bench_sparse: out of memory\n");
            return 2;
        }
        for (int64_t i = 0; i < in_n; i++)
            in[i] = dlas_rng_normal(&rng);
        for (int64_t i = 0; i < wn; i++)
            w[i] = dlas_rng_normal(&rng) * 0.1f;
        for (int64_t i = 0; i < d.out_c; i++)
            bias[i] = dlas_rng_normal(&rng);

        /* prepare every slot, checking each once */
        for (int sl = 0; sl < n_slots; sl++) {
            struct slot *s = &slots[sl];
            memset(s, 0, sizeof *s);
            const int is_dense = sl < n_dense;
            s->p = is_dense ? &dense[sl] : &sparse[(sl - n_dense) / n_sp];
            s->sparse_idx = is_dense ? -1 : (sl - n_dense) % n_sp;
            const double sp = is_dense ? 0.0 : sps[s->sparse_idx];
            prune(w, wn, sp, 1000003u * (uint64_t)li + (uint64_t)(sp * 1e6), wp);
            const struct dlas_primitive_ops *ops = s->p->comp->ops;
            /* as the plan does: the layer carries its weights' sparsity
             * (a primitive's min_sparsity refuses below it) */
            struct dlas_conv_desc ds = d;
            int64_t zeros = 0;
            for (int64_t i = 0; i < wn; i++)
                zeros += wp[i] == 0.0f;
            ds.weight_sparsity = (float)((double)zeros / (double)wn);
            if (ops->supports(&ds, s->p->params, s->why, sizeof s->why))
                continue;
            if (ops->prepare(&host, &be, &ds, wp, bias, s->p->params, &s->st)) {
                snprintf(s->why, sizeof s->why, "prepare: %s", dlas_last_error());
                s->st = NULL;
                continue;
            }
            size_t wsb = ops->workspace(s->st, batch);
            s->ws = wsb ? dlas_aligned_alloc(wsb) : NULL;
            s->t = malloc((size_t)repeat * sizeof(double));
            dlas_ref_conv2d(&d, batch, in, wp, bias, ref);
            for (int64_t i = 0; i < out_n; i++)
                out[i] = NAN;
            ops->run(s->st, batch, in, out, s->ws, NULL);
            s->err = dlas_rel_error(out, ref, out_n);
            if (!(s->err < 1e-3))
                printf("# %s on %s, sparsity %.2f: relative error %.3g\n", s->p->label, shape,
                       sp, s->err);
        }
        for (int r = -warmup; r < repeat; r++)
            for (int sl = 0; sl < n_slots; sl++) {
                struct slot *s = &slots[sl];
                if (!s->st)
                    continue;
                const struct dlas_primitive_ops *ops = s->p->comp->ops;
                double t0 = cpu_time ? bench_cpu_now() : bench_now();
                ops->run(s->st, batch, in, out, s->ws, NULL);
                double t1 = cpu_time ? bench_cpu_now() : bench_now();
                if (r >= 0)
                    s->t[r] = (t1 - t0) * 1e3;
            }
        int best = -1;
        for (int sl = 0; sl < n_slots; sl++)
            if (slots[sl].st) {
                slots[sl].s = bench_stats(slots[sl].t, repeat);
                if (sl < n_dense && (best < 0 || slots[sl].s.median < slots[best].s.median))
                    best = sl;
            }
        printf("\n%s (x%d): %s, %.1f MFLOP\n", layers[li].name, layers[li].count, shape,
               2e-6 * (double)dlas_conv_desc_macs(&d) * (double)batch);
        for (int sl = 0; sl < n_dense; sl++) {
            const struct slot *s = &slots[sl];
            if (!s->st)
                printf("  %-28s dense         refused: %s\n", s->p->label, s->why);
            else
                printf("  %-28s dense     %9.4f ms (%.4f .. %.4f)%s\n", s->p->label,
                       s->s.median, s->s.min, s->s.max, sl == best ? "  <- best dense" : "");
        }
        const double t_dense = best >= 0 ? slots[best].s.median : 0;
        tot_dense += layers[li].count * t_dense;
        sum_dense[li] = t_dense;
        snprintf(sum_best[li], sizeof sum_best[li], "%s", best >= 0 ? slots[best].p->label : "-");
        for (int k = 0; k < n_sparse; k++) {
            double sp_t[MAX_SP];
            for (int j = 0; j < n_sp; j++) {
                const struct slot *s = &slots[n_dense + k * n_sp + j];
                sp_t[j] = s->st ? s->s.median : 0;
                tot_sparse[k][j] += layers[li].count * sp_t[j];
                tot_refused[k][j] += !s->st;
                if (!s->st) {
                    printf("  %-28s %4.0f%%      refused: %s\n", sparse[k].label, 100 * sps[j],
                           s->why);
                    continue;
                }
                printf("  %-28s %4.0f%%     %9.4f ms (%.4f .. %.4f)  %5.2fx best dense\n",
                       sparse[k].label, 100 * sps[j], s->s.median, s->s.min, s->s.max,
                       t_dense / s->s.median);
            }
            double a, b, be_sp = break_even(sps, sp_t, n_sp, t_dense, &a, &b);
            for (int j = 0; j < n_sp; j++)
                sum_t[li][k][j] = sp_t[j];
            sum_be[li][k] = be_sp;
            printf("  %-28s break-even sparsity %.2f (fit %.4f + %.4f x density ms)\n",
                   sparse[k].label, be_sp, a, b);
            if (cf)
                for (int j = 0; j < n_sp; j++) {
                    const struct slot *s = &slots[n_dense + k * n_sp + j];
                    if (s->st)
                        fprintf(cf, "%s,%s,%d,%lld,%d,%s,sparse,%.4f,%.5f,%.5f,%.5f,%.4f,%.3g,%.4f\n",
                                layers[li].name, shape, layers[li].count, batch, threads,
                                sparse[k].label, sps[j], s->s.median, s->s.min, s->s.max,
                                t_dense / s->s.median, s->err, be_sp);
                }
        }
        if (cf)
            for (int sl = 0; sl < n_dense; sl++) {
                const struct slot *s = &slots[sl];
                if (s->st)
                    fprintf(cf, "%s,%s,%d,%lld,%d,%s,dense,0,%.5f,%.5f,%.5f,%.4f,%.3g,\n",
                            layers[li].name, shape, layers[li].count, batch, threads, s->p->label,
                            s->s.median, s->s.min, s->s.max, t_dense / s->s.median, s->err);
            }
        for (int sl = 0; sl < n_slots; sl++) {
            struct slot *s = &slots[sl];
            if (s->st) {
                const struct dlas_primitive_ops *ops = s->p->comp->ops;
                ops->release(s->st);
            }
            dlas_aligned_free(s->ws);
            free(s->t);
            s->st = s->ws = NULL;
            s->t = NULL;
        }
        dlas_aligned_free(in);
        dlas_aligned_free(w);
        dlas_aligned_free(wp);
        dlas_aligned_free(bias);
        dlas_aligned_free(ref);
        dlas_aligned_free(out);
    }
    printf("\nall layers (each x its count): best dense %.3f ms\n", tot_dense);
    for (int k = 0; k < n_sparse; k++) {
        for (int j = 0; j < n_sp; j++)
            if (tot_refused[k][j])
                printf("  %-28s %4.0f%%  refused on %d layer(s): no total\n", sparse[k].label,
                       100 * sps[j], tot_refused[k][j]);
            else if (tot_sparse[k][j] > 0)
                printf("  %-28s %4.0f%%  %9.3f ms  %5.2fx best dense\n", sparse[k].label,
                       100 * sps[j], tot_sparse[k][j], tot_dense / tot_sparse[k][j]);
        double whole[MAX_SP]; /* the totals over every layer; 0 (skipped) otherwise */
        for (int j = 0; j < n_sp; j++)
            whole[j] = tot_refused[k][j] ? 0 : tot_sparse[k][j];
        double a, b, be_sp = break_even(sps, whole, n_sp, tot_dense, &a, &b);
        printf("  %-28s break-even sparsity of the total %.2f\n", sparse[k].label, be_sp);
    }
    /* one table: per layer, each sparse primitive's speed-up over the best
     * dense one of the same run at each sparsity, and its break-even */
    printf("\nsummary: speed-up over the best dense primitive of this run (x), break-even "
           "sparsity (be)\n");
    for (int k = 0; k < n_sparse; k++) {
        printf("%-12s %5s %-16s %9s", sparse[k].label, "count", "best dense", "ms");
        for (int j = 0; j < n_sp; j++)
            printf(" %6.0f%%", 100 * sps[j]);
        printf("     be\n");
        for (int li = 0; li < n_layers; li++) {
            printf("%-12s %5d %-16.16s %9.4f", layers[li].name, layers[li].count, sum_best[li],
                   sum_dense[li]);
            for (int j = 0; j < n_sp; j++)
                if (sum_t[li][k][j] > 0)
                    printf(" %6.2fx", sum_dense[li] / sum_t[li][k][j]);
                else
                    printf(" %7s", "-");
            if (isnan(sum_be[li][k]))
                printf(" %6s\n", "-");
            else
                printf(" %6.2f\n", sum_be[li][k]);
        }
        printf("%-12s %5s %-16s %9.4f", "total", "", "", tot_dense);
        for (int j = 0; j < n_sp; j++)
            if (tot_sparse[k][j] > 0 && !tot_refused[k][j])
                printf(" %6.2fx", tot_dense / tot_sparse[k][j]);
            else
                printf(" %7s", "-");
        double whole[MAX_SP];
        for (int j = 0; j < n_sp; j++)
            whole[j] = tot_refused[k][j] ? 0 : tot_sparse[k][j];
        double a, b, be_tot = break_even(sps, whole, n_sp, tot_dense, &a, &b);
        if (isnan(be_tot))
            printf(" %6s\n", "-");
        else
            printf(" %6.2f\n", be_tot);
    }
    bench_loadavg(load, sizeof load);
    printf("# after: %s\n", load);
    if (cf)
        fclose(cf);
    be.ops->release(be.ctx);
    dlas_registry_free(reg);
    return 0;
}
