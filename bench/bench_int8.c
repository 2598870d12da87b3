/* bench_int8: int8 primitives against an fp32 baseline on single layers.
 *
 * Each layer gets random weights; the int8 primitives get them quantised
 * (per-channel steps, a uint8 input with zero point 3, uint8 output: the case
 * of a layer between two int8 layers, which is what a quantised network runs)
 * and are checked once bit for bit against the integer reference. Runs are
 * interleaved (baseline, int8 A, int8 B, baseline, ...) so that load changes
 * hit all alike; medians with min and max over the timed runs, GOP/s (2 per
 * MAC) and each one's speed-up over the baseline, per layer and summed over
 * the layer set weighted by each layer's count in the network.
 *
 *   bench_int8 [--threads T] [--repeat N] [--warmup W] [--batch B]
 *              [--layers SET|SHAPE,...] [--baseline PRIM] [--csv FILE]
 *              [INT8PRIM[:key=value,...] ...]   (default: int8-direct int8-gemm) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/dlas.h>
#include <dlas/quant.h>

#include "bench_common.h"

#define MAX_PRIMS 6
#define MAX_LAYERS 64

static void quiet_log(enum dlas_log_level l, const char *fmt, ...)
{
    (void)l;
    (void)fmt;
}

struct slot {
    char label[128]; /* NAME[:key=value,...] as given */
    const struct dlas_component *comp;
    struct dlas_params *params;
    void *state, *ws;
    int int8;
    double *t;
};

int main(int argc, char **argv)
{
    int threads = 1, repeat = 21, warmup = 3, cpu_time = 0;
    int64_t batch = 1;
    const char *layers_spec = "resnet18-3x3", *baseline = "im2col-gemm", *csv = NULL;
    const char *names[MAX_PRIMS];
    int n_names = 0;
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
        else if (!strcmp(a, "--layers") && i + 1 < argc)
            layers_spec = argv[++i];
        else if (!strcmp(a, "--baseline") && i + 1 < argc)
            baseline = argv[++i];
        else if (!strcmp(a, "--cpu-time"))
            cpu_time = 1;
        else if (!strcmp(a, "--csv") && i + 1 < argc)
            csv = argv[++i];
        else if (!strcmp(a, "--help") || a[0] == '-') {
            fprintf(stderr,
                    "usage: bench_int8 [--threads T] [--repeat N] [--warmup W] [--batch B]\n"
                    "                  [--layers SET|SHAPE,...] [--baseline PRIM] [--csv FILE]\n"
                    "                  [--cpu-time]  (this process's CPU clock: a development\n"
                    "                  aid on a busy machine, 1 thread; figures use the wall clock)\n"
                    "                  [INT8PRIM[:key=value,...] ...]\n");
            return strcmp(a, "--help") ? 2 : 0;
        } else if (n_names < MAX_PRIMS - 1)
            names[n_names++] = a;
    }
    if (!n_names) {
        names[n_names++] = "int8-direct";
        names[n_names++] = "int8-gemm";
    }
    if (threads < 1 || repeat < 1 || warmup < 0 || batch < 1) {
        fprintf(stderr, "bench_int8: bad --threads/--repeat/--warmup/--batch\n");
        return 2;
    }
    struct bench_layer layers[MAX_LAYERS];
    int nl = bench_layer_set(layers_spec, layers, MAX_LAYERS);
    if (nl < 1) {
        fprintf(stderr, "bench_int8: no layers in '%s'\n", layers_spec);
        return 2;
    }
    struct dlas_registry *reg = dlas_registry_new();
    if (!reg || dlas_registry_discover(reg, NULL)) {
        fprintf(stderr, "bench_int8: %s\n", dlas_last_error());
        return 1;
    }
    struct dlas_rng rng;
    dlas_rng_seed(&rng, 1);
    struct dlas_host host = {sizeof host, quiet_log, dlas_aligned_alloc, dlas_aligned_free, &rng, 1};
    struct dlas_backend be;
    if (bench_backend(reg, threads, &host, &be)) {
        fprintf(stderr, "bench_int8: %s\n", dlas_last_error());
        return 1;
    }
    const int np = n_names + 1;
    struct slot s[MAX_PRIMS];
    memset(s, 0, sizeof s);
    for (int k = 0; k < np; k++) {
        const char *nm = k == 0 ? baseline : names[k - 1];
        struct bench_prim bp;
        if (bench_prim_parse(reg, nm, &bp)) {
            fprintf(stderr, "bench_int8: %s: %s\n", nm, dlas_last_error());
            return 1;
        }
        snprintf(s[k].label, sizeof s[k].label, "%s", bp.label);
        s[k].comp = bp.comp;
        s[k].params = bp.params;
        s[k].int8 = dlas_prim_runs_int8(s[k].comp->ops);
        s[k].t = malloc((size_t)repeat * sizeof(double));
    }
    char load[64];
    bench_loadavg(load, sizeof load);
    printf("bench_int8: %d thread(s), batch %lld, %d timed runs after %d warm-up, interleaved, "
           "%s clock; %s\n",
           threads, (long long)batch, repeat, warmup, cpu_time ? "CPU" : "wall", load);
    printf("%-10s %-6s %-22s %10s %10s %10s %8s %8s\n", "layer", "count", "primitive",
           "median_ms", "min_ms", "max_ms", "GOP/s", "speedup");
    FILE *out = csv ? fopen(csv, "w") : NULL;
    if (out)
        fprintf(out, "layer,count,primitive,threads,batch,median_ms,min_ms,max_ms,gops,"
                     "speedup\n");
    double total[MAX_PRIMS] = {0};
    for (int l = 0; l < nl; l++) {
        struct dlas_conv_desc d = layers[l].d;
        d.batch = batch;
        const int64_t K = d.in_c / d.groups * d.kh * d.kw;
        const int64_t nw = d.out_c * K, nin = batch * d.in_c * d.in_h * d.in_w,
                      nout = batch * d.out_c * d.out_h * d.out_w;
        float *w = malloc((size_t)nw * sizeof *w), *b = malloc((size_t)d.out_c * sizeof *b);
        float *step = malloc((size_t)d.out_c * sizeof *step);
        float *xf = dlas_aligned_alloc((size_t)nin * sizeof *xf);
        float *yf = dlas_aligned_alloc((size_t)nout * sizeof *yf);
        uint8_t *xq = dlas_aligned_alloc((size_t)nin), *yq = dlas_aligned_alloc((size_t)nout * 4);
        for (int64_t i = 0; i < nw; i++)
            w[i] = 0.05f * dlas_rng_normal(&rng);
        for (int64_t o = 0; o < d.out_c; o++)
            b[o] = 0.1f * dlas_rng_normal(&rng);
        dlas_weight_steps(w, d.out_c, K, step);
        dlas_weight_round(w, d.out_c, K, step);
        struct dlas_conv_quant q = {sizeof q, {0.02f, 3}, step, 1, {0.05f, 0}};
        for (int64_t i = 0; i < nin; i++) {
            xq[i] = (uint8_t)dlas_rng_below(&rng, 256);
            xf[i] = q.in.scale * (float)(xq[i] - q.in.zero_point);
        }
        d.has_bias = 1;
        int ok = 1;
        for (int k = 0; k < np && ok; k++) {
            const struct dlas_primitive_ops *ops = s[k].comp->ops;
            struct dlas_conv_desc dk = d;
            dk.quant = s[k].int8 ? &q : NULL;
            char why[256] = "";
            if (ops->supports(&dk, s[k].params, why, sizeof why) ||
                ops->prepare(&host, &be, &dk, w, b, s[k].params, &s[k].state)) {
                printf("%-10s %s refused: %s %s\n", layers[l].name, s[k].label, why,
                       dlas_last_error());
                ok = 0;
                break;
            }
            size_t wsz = ops->workspace(s[k].state, batch);
            s[k].ws = wsz ? dlas_aligned_alloc(wsz) : NULL;
            if (s[k].int8) { /* checked once against the integer reference */
                struct dlas_int8_layer L;
                uint8_t *want = malloc((size_t)nout);
                dlas_int8_layer_init(&L, &dk, w, b, &q);
                dlas_ref_conv2d_int8(&L, batch, xq, want);
                ops->run_int8(s[k].state, batch, xq, yq, s[k].ws, NULL);
                int64_t bad = 0;
                for (int64_t i = 0; i < nout; i++)
                    bad += yq[i] != want[i];
                if (bad) {
                    fprintf(stderr, "bench_int8: %s on %s: %lld outputs differ from the "
                                    "reference\n",
                            s[k].label, layers[l].name, (long long)bad);
                    return 1;
                }
                dlas_int8_layer_free(&L);
                free(want);
            }
        }
        for (int r = -warmup; r < repeat && ok; r++)
            for (int k = 0; k < np; k++) {
                const struct dlas_primitive_ops *ops = s[k].comp->ops;
                double t0 = cpu_time ? bench_cpu_now() : bench_now();
                if (s[k].int8)
                    ops->run_int8(s[k].state, batch, xq, yq, s[k].ws, NULL);
                else
                    ops->run(s[k].state, batch, xf, yf, s[k].ws, NULL);
                double t1 = cpu_time ? bench_cpu_now() : bench_now();
                if (r >= 0)
                    s[k].t[r] = t1 - t0;
            }
        double base = 0;
        for (int k = 0; k < np && ok; k++) {
            struct bench_stats st = bench_stats(s[k].t, repeat);
            if (k == 0)
                base = st.median;
            double gops = 2.0 * (double)dlas_conv_desc_macs(&d) * batch / st.median * 1e-9;
            printf("%-10s %-6d %-22s %10.3f %10.3f %10.3f %8.1f %8.2f\n", layers[l].name,
                   layers[l].count, s[k].label, st.median * 1e3, st.min * 1e3,
                   st.max * 1e3, gops, base / st.median);
            if (out)
                fprintf(out, "%s,%d,%s,%d,%lld,%.6f,%.6f,%.6f,%.2f,%.4f\n", layers[l].name,
                        layers[l].count, s[k].label, threads, (long long)batch,
                        st.median * 1e3, st.min * 1e3, st.max * 1e3, gops, base / st.median);
            total[k] += st.median * layers[l].count;
        }
        for (int k = 0; k < np; k++) {
            if (s[k].state)
                ((const struct dlas_primitive_ops *)s[k].comp->ops)->release(s[k].state);
            dlas_aligned_free(s[k].ws);
            s[k].state = s[k].ws = NULL;
        }
        free(w);
        free(b);
        free(step);
        dlas_aligned_free(xf);
        dlas_aligned_free(yf);
        dlas_aligned_free(xq);
        dlas_aligned_free(yq);
    }
    bench_loadavg(load, sizeof load);
    printf("total (layers x count):");
    for (int k = 0; k < np; k++)
        printf("  %s %.3f ms (%.2fx)", s[k].label, total[k] * 1e3, total[0] / total[k]);
    printf("\n%s\n", load);
    if (out)
        fclose(out);
    for (int k = 0; k < np; k++) {
        dlas_params_free(s[k].params);
        free(s[k].t);
    }
    be.ops->release(be.ctx);
    dlas_registry_free(reg);
    return 0;
}
