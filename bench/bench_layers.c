/* bench_layers: time convolution primitives on single layers, side by side.
 *
 * Every primitive named is prepared on every layer, checked once against the
 * core's reference convolution, then timed with the runs interleaved
 * (primitive A, B, C, A, B, C, ...) so that a change in machine load hits
 * them all alike; the median of the timed runs is reported with min and max,
 * as ms and GFLOP/s (2 FLOPs per MAC), and optionally as a fraction of a
 * given peak. --cpu-time times with the process's CPU clock instead of the
 * wall clock: with one thread on a busy machine it measures the work without
 * the time other processes hold the core (a development aid; reported
 * figures use the wall clock).
 *
 *   bench_layers [--threads T[,T...]] [--repeat N] [--warmup W] [--batch B]
 *                [--peak GFLOPS] [--csv FILE] [--profile] [--cpu-time]
 *                [--layers SET|SHAPE[,SHAPE...]]
 *                PRIM[:key=value[,key=value...]] ...
 *
 * With several thread counts every primitive runs at each (one backend per
 * count), interleaved with the others, and the table adds each one's
 * speed-up over the first count.
 *
 * SHAPE is CxHxW-O:kK[sS][pP][dD][gG], e.g. 64x56x56-64:k3p1 (3x3, stride 1,
 * padding 1); SET is one of resnet18, resnet18-3x3, cifar-resnet18,
 * mobilenetv2, mobilenetv2-dw, key. Primitives are found with the registry
 * (DLAS_PLUGIN_PATH or the build tree). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/dlas.h>

#include "bench_common.h"

static const char usage[] =
    "usage: bench_layers [--threads T[,T...]] [--repeat N] [--warmup W] [--batch B]\n"
    "                    [--peak GFLOPS] [--csv FILE] [--profile] [--cpu-time] [--cold MB]\n"
    "                    [--layers SET|SHAPE[,SHAPE...]] PRIM[:key=value[,key=value...]] ...\n"
    "\n"
    "Times convolution primitives on single layers, side by side: each is checked\n"
    "once against the reference convolution, then the runs are interleaved (A, B,\n"
    "C, A, B, C, ...) and the median, min and max are reported as ms and GFLOP/s.\n"
    "\n"
    "  --threads T,...  thread counts, each primitive at each (default 1)\n"
    "  --repeat N       timed runs (21); --warmup W untimed runs first (3)\n"
    "  --batch B        images per run (1)\n"
    "  --peak GFLOPS    also report each median as a fraction of this peak\n"
    "  --csv FILE       the table as CSV too (pandas reads it as is)\n"
    "  --profile        each primitive's own phases (pack, compute, ...)\n"
    "  --cpu-time       the process's CPU clock instead of the wall clock\n"
    "  --cold MB        before every run, write MB megabytes elsewhere: the layer\n"
    "                   then finds its weights and input in memory, not in the\n"
    "                   caches, as in a network larger than L3 (e.g. --cold 128)\n"
    "  --layers         SHAPE is CxHxW-O:kK[sS][pP][dD][gG], e.g. 64x56x56-64:k3p1;\n"
    "                   SET is resnet18, resnet18-3x3, cifar-resnet18, mobilenetv2,\n"
    "                   mobilenetv2-dw or key (the default)\n"
    "  PRIM             a primitive (dlas plugins --kind primitive), with parameters\n"
    "                   after a colon, e.g. direct:reg_w=7,oc_vectors=1\n"
    "\n"
    "e.g. bench_layers --threads 2 --layers 512x7x7-512:k3p1 direct winograd im2col-gemm\n";

#define MAX_PRIMS 16
#define MAX_THREADS 4
#define MAX_SLOTS (MAX_PRIMS * MAX_THREADS)
#define MAX_LAYERS 128

/* --cold: every thread writes its share of buf, so that each core's L2, and
 * the L3 they share, hold the sweep instead of the layer's data. */
static void sweep(unsigned char *buf, size_t bytes, int nt, int r)
{
    const size_t share = bytes / (size_t)nt;
#pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (int t = 0; t < nt; t++)
        memset(buf + (size_t)t * share, r & 0xff, share);
}

int main(int argc, char **argv)
{
    int threads[MAX_THREADS] = {1}, n_threads = 1, repeat = 21, warmup = 3, profile = 0,
        cpu_time = 0, cold_mb = 0;
    long long batch = 1;
    double peak = 0;
    const char *layers_arg = "key", *csv = NULL;
    struct dlas_registry *reg = dlas_registry_new();
    if (!reg || dlas_registry_discover(reg, NULL)) {
        fprintf(stderr, "bench_layers: %s\n", dlas_last_error());
        return 2;
    }
    struct bench_prim prims[MAX_PRIMS];
    int n_prims = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--threads") && i + 1 < argc) {
            char buf[64];
            snprintf(buf, sizeof buf, "%s", argv[++i]);
            n_threads = 0;
            for (char *t = strtok(buf, ","); t && n_threads < MAX_THREADS; t = strtok(NULL, ","))
                threads[n_threads++] = atoi(t);
        }
        else if (!strcmp(a, "--repeat") && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (!strcmp(a, "--warmup") && i + 1 < argc)
            warmup = atoi(argv[++i]);
        else if (!strcmp(a, "--batch") && i + 1 < argc)
            batch = atoll(argv[++i]);
        else if (!strcmp(a, "--peak") && i + 1 < argc)
            peak = atof(argv[++i]);
        else if (!strcmp(a, "--profile"))
            profile = 1;
        else if (!strcmp(a, "--cpu-time"))
            cpu_time = 1;
        else if (!strcmp(a, "--cold") && i + 1 < argc)
            cold_mb = atoi(argv[++i]);
        else if (!strcmp(a, "--csv") && i + 1 < argc)
            csv = argv[++i];
        else if (!strcmp(a, "--layers") && i + 1 < argc)
            layers_arg = argv[++i];
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (a[0] == '-') {
            fprintf(stderr, "bench_layers: unknown option or missing value: %s\n%s", a, usage);
            return 2;
        } else if (n_prims < MAX_PRIMS) {
            if (bench_prim_parse(reg, a, &prims[n_prims])) {
                fprintf(stderr, "bench_layers: %s\n", dlas_last_error());
                return 2;
            }
            n_prims++;
        }
    }
    int bad_threads = n_threads < 1;
    for (int t = 0; t < n_threads; t++)
        bad_threads |= threads[t] < 1;
    if (cold_mb < 0 || cold_mb > 4096) {
        fprintf(stderr, "bench_layers: --cold takes 0 to 4096 (MB), not %d\n", cold_mb);
        return 2;
    }
    if (!n_prims || repeat < 1 || bad_threads || batch < 1) {
        fprintf(stderr, "bench_layers: name at least one primitive (e.g. direct im2col-gemm)\n");
        return 2;
    }
    struct bench_layer layers[MAX_LAYERS];
    int n_layers = bench_layer_set(layers_arg, layers, MAX_LAYERS);
    if (n_layers <= 0) {
        fprintf(stderr, "bench_layers: bad --layers '%s'\n", layers_arg);
        return 2;
    }

    struct dlas_backend bes[MAX_THREADS];
    struct dlas_host host;
    struct dlas_rng rng;
    dlas_rng_seed(&rng, 1);
    dlas_host_init(&host, &rng, 1);
    for (int t = 0; t < n_threads; t++)
        if (bench_backend(reg, threads[t], &host, &bes[t])) {
            fprintf(stderr, "bench_layers: backend: %s\n", dlas_last_error());
            return 2;
        }
    /* slots: every primitive at every thread count */
    const int n_slots = n_prims * n_threads;

    FILE *cf = csv ? fopen(csv, "w") : NULL;
    if (csv && !cf) {
        perror(csv);
        return 2;
    }
    if (cf)
        fprintf(cf, "layer,shape,batch,threads,primitive,macs,ms_median,ms_min,ms_max,gflops,"
                    "peak_fraction,max_rel_err\n");
    const size_t cold_bytes = (size_t)cold_mb << 20;
    unsigned char *cold = cold_bytes ? malloc(cold_bytes) : NULL;
    if (cold_bytes && !cold) {
        fprintf(stderr, "bench_layers: --cold %d: out of memory\n", cold_mb);
        return 2;
    }
    char load[128];
    bench_loadavg(load, sizeof load);
    printf("# threads");
    for (int t = 0; t < n_threads; t++)
        printf("%s%d", t ? "," : " ", threads[t]);
    printf(", batch %lld, %d timed runs after %d warm-up, interleaved%s; %s\n", batch, repeat,
           warmup, cold ? ", caches swept before each" : "", load);
    printf("%-14s %-40s %-28s %3s %9s %9s %9s %8s %6s %9s %7s\n", "layer", "shape", "primitive",
           "thr", "ms", "min", "max", "GFLOP/s", "%peak", "rel.err", "speedup");

    for (int li = 0; li < n_layers; li++) {
        struct dlas_conv_desc d = layers[li].d;
        d.batch = batch;
        if (dlas_conv_desc_finish(&d)) {
            fprintf(stderr, "%s: %s\n", layers[li].name, dlas_last_error());
            continue;
        }
        char shape[160];
        dlas_conv_desc_format(&d, shape, sizeof shape);
        int64_t in_n = batch * d.in_c * d.in_h * d.in_w;
        int64_t out_n = batch * d.out_c * d.out_h * d.out_w;
        int64_t wn = d.out_c * (d.in_c / d.groups) * d.kh * d.kw;
        float *in = dlas_aligned_alloc((size_t)in_n * 4), *w = dlas_aligned_alloc((size_t)wn * 4);
        float *bias = dlas_aligned_alloc((size_t)d.out_c * 4);
        float *ref = dlas_aligned_alloc((size_t)out_n * 4);
        float *out = dlas_aligned_alloc((size_t)out_n * 4);
        for (int64_t i = 0; i < in_n; i++)
            in[i] = dlas_rng_normal(&rng);
        for (int64_t i = 0; i < wn; i++)
            w[i] = dlas_rng_normal(&rng) * 0.1f;
        for (int64_t i = 0; i < d.out_c; i++)
            bias[i] = dlas_rng_normal(&rng);
        d.has_bias = 1;
        dlas_ref_conv2d(&d, batch, in, w, bias, ref);

        void *st[MAX_SLOTS] = {0}, *ws[MAX_SLOTS] = {0};
        double *times[MAX_SLOTS] = {0}, err[MAX_SLOTS], med[MAX_SLOTS];
        static char why[MAX_SLOTS][512];
        for (int sl = 0; sl < n_slots; sl++) {
            const int k = sl % n_prims;
            const struct dlas_backend *bep = &bes[sl / n_prims];
            const struct dlas_primitive_ops *ops = prims[k].comp->ops;
            why[sl][0] = '\0';
            if (ops->supports(&d, prims[k].params, why[sl], sizeof why[sl]))
                continue;
            if (ops->prepare(&host, bep, &d, w, bias, prims[k].params, &st[sl])) {
                snprintf(why[sl], sizeof why[sl], "prepare: %s", dlas_last_error());
                st[sl] = NULL;
                continue;
            }
            size_t wsb = ops->workspace(st[sl], batch);
            ws[sl] = wsb ? dlas_aligned_alloc(wsb) : NULL;
            for (int64_t i = 0; i < out_n; i++)
                out[i] = NAN;
            ops->run(st[sl], batch, in, out, ws[sl], NULL);
            err[sl] = dlas_rel_error(out, ref, out_n);
            times[sl] = malloc((size_t)repeat * sizeof(double));
        }
        for (int r = -warmup; r < repeat; r++)
            for (int sl = 0; sl < n_slots; sl++) {
                if (!st[sl])
                    continue;
                const struct dlas_primitive_ops *ops = prims[sl % n_prims].comp->ops;
                if (cold)
                    sweep(cold, cold_bytes, threads[sl / n_prims], r);
                double t0 = cpu_time ? bench_cpu_now() : bench_now();
                ops->run(st[sl], batch, in, out, ws[sl], NULL);
                double t1 = cpu_time ? bench_cpu_now() : bench_now();
                if (r >= 0)
                    times[sl][r] = (t1 - t0) * 1e3;
            }
        double macs = (double)dlas_conv_desc_macs(&d) * (double)batch;
        for (int sl = 0; sl < n_slots; sl++) {
            const int k = sl % n_prims, thr = threads[sl / n_prims];
            med[sl] = 0;
            if (!st[sl]) {
                printf("%-14s %-40s %-28s %3d   refused: %s\n", layers[li].name, shape,
                       prims[k].label, thr, why[sl]);
                continue;
            }
            struct bench_stats s = bench_stats(times[sl], repeat);
            med[sl] = s.median;
            double gf = 2.0 * macs / (s.median * 1e6);
            printf("%-14s %-40s %-28s %3d %9.4f %9.4f %9.4f %8.1f %6.1f %9.2g", layers[li].name,
                   shape, prims[k].label, thr, s.median, s.min, s.max, gf,
                   peak > 0 ? 100.0 * gf / peak : 0.0, err[sl]);
            if (sl >= n_prims && med[k] > 0)
                printf(" %6.2fx", med[k] / s.median);
            printf("\n");
            if (profile) {
                /* phases as the primitive reports them, summed over `repeat` runs */
                struct dlas_profile pr;
                memset(&pr, 0, sizeof pr);
                const struct dlas_primitive_ops *ops = prims[k].comp->ops;
                for (int r = 0; r < repeat; r++)
                    ops->run(st[sl], batch, in, out, ws[sl], &pr);
                printf("%-14s %-40s   phases:", "", "");
                for (int q = 0; q < pr.n; q++)
                    printf(" %s %.4f ms", pr.phase[q], pr.seconds[q] * 1e3 / repeat);
                printf("\n");
            }
            if (cf)
                fprintf(cf, "%s,\"%s\",%lld,%d,\"%s\",%.0f,%.5f,%.5f,%.5f,%.2f,%.4f,%.3g\n",
                        layers[li].name, shape, batch, thr, prims[k].label, macs, s.median,
                        s.min, s.max, gf, peak > 0 ? gf / peak : 0.0, err[sl]);
            ((const struct dlas_primitive_ops *)prims[k].comp->ops)->release(st[sl]);
            dlas_aligned_free(ws[sl]);
            free(times[sl]);
        }
        fflush(stdout);
        dlas_aligned_free(in);
        dlas_aligned_free(w);
        dlas_aligned_free(bias);
        dlas_aligned_free(ref);
        dlas_aligned_free(out);
    }
    if (cf)
        fclose(cf);
    for (int t = 0; t < n_threads; t++)
        bes[t].ops->release(bes[t].ctx);
    for (int k = 0; k < n_prims; k++)
        dlas_params_free(prims[k].params);
    free(cold);
    dlas_registry_free(reg);
    return 0;
}
