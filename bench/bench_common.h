/* Helpers shared by the bench programs: timing statistics, the backend,
 * machine load, and the layer shapes of the networks benchmarked. */
#ifndef DLAS_BENCH_COMMON_H
#define DLAS_BENCH_COMMON_H

#include <stddef.h>

#include <dlas/dlas.h>

struct bench_stats {
    double median, min, max;
};
double bench_now(void); /* seconds, monotonic */
double bench_cpu_now(void); /* seconds of CPU time of this process */
/* Sorts v in place. */
struct bench_stats bench_stats(double *v, int n);
/* "load 0.52 0.61 0.70" from /proc/loadavg */
void bench_loadavg(char *buf, size_t len);
/* An "openmp" backend with this many threads. */
int bench_backend(struct dlas_registry *reg, int threads, const struct dlas_host *host,
                  struct dlas_backend *be);

struct bench_layer {
    char name[32];
    int count; /* occurrences in the network */
    struct dlas_conv_desc d;
};
/* A named set (resnet18, resnet18-3x3, cifar-resnet18, mobilenetv2,
 * mobilenetv2-dw, grouped, key) or a comma-separated list of shapes. Returns
 * the number of layers, or -1. */
int bench_layer_set(const char *spec, struct bench_layer *out, int max);

/* A primitive named on the command line, "NAME[:key=value[,key=value...]]":
 * the component found in the registry and its parameters (defaults, then the
 * settings given). */
struct bench_prim {
    char label[128];
    const struct dlas_component *comp;
    struct dlas_params *params;
};
/* 0, or -1 with the reason in dlas_last_error(). */
int bench_prim_parse(struct dlas_registry *reg, const char *arg, struct bench_prim *p);

/* A zoo model built as an experiment builds it: the model plugin's
 * parameter defaults, then the n "key=value" settings (from the command
 * line), for c x h x w inputs and `classes` outputs, its weights drawn from
 * rng. 0 and *out (the caller's to free), or -1 with the reason in
 * dlas_last_error(). */
int bench_build_model(struct dlas_registry *reg, const char *model, const char *const *settings,
                      int n, int c, int h, int w, int classes, const struct dlas_host *host,
                      struct dlas_rng *rng, struct dlas_graph **out);

#endif
