/* Side-by-side comparison of convolution primitives on one model: every
 * listed primitive timed on every conv layer, and end to end (each
 * primitive with the fallback where it refuses a layer, and "auto": the
 * fastest primitive per layer). Medians of timed runs after a warm-up, in
 * interleaved rounds of a few runs each, with min and max; tables, CSV and
 * JSON. `dlas compare` is a thin
 * front end over this. */
#ifndef DLAS_COMPARE_H
#define DLAS_COMPARE_H

#include <stdio.h>

#include <dlas/plan.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dlas_tunelog;

struct dlas_compare_options {
    uint32_t size;  /* sizeof(struct dlas_compare_options) */
    int64_t batch;  /* 1 */
    int warmup;     /* runs discarded per primitive (3) */
    int repeat;     /* timed runs per primitive, interleaved (20) */
    int layers;     /* time every conv layer on its own (1) */
    int end_to_end; /* time whole plans, one per primitive and auto (1) */
    int check;      /* compare every output with the reference (1) */
    const struct dlas_tunelog *tunelog; /* NULL: untuned defaults */
    uint64_t seed;  /* inputs */
    /* Timed runs in a row per primitive or plan within a round (3), after
     * one untimed run: so every run is timed with its own data in the
     * caches, not the previous primitive's, while rounds stay interleaved. */
    int burst;
    /* Time with the process's CPU clock instead of the backend's wall
     * clock (0): with one thread on a shared, oversubscribed machine it
     * measures the work without the time other processes hold the core. */
    int cpu_time;
};
void dlas_compare_options_default(struct dlas_compare_options *o);

/* One primitive on one layer. status: 0 timed; DLAS_ERR_UNSUPPORTED refused
 * (why says so); another status: it failed (why). */
struct dlas_compare_cell {
    int status;
    char why[256];
    double ms, min, max, gflops, err;
    char settings[512]; /* tuned settings used, "" for the configured ones */
};

struct dlas_compare_layer {
    int node;
    char name[96];
    char shape[160];   /* dlas_conv_desc_format */
    int64_t macs;      /* at the compared batch */
    int same_as;       /* index of an earlier layer of identical shape, -1 */
    struct dlas_compare_cell *cells; /* n_prims */
    int best;          /* index of the fastest primitive, -1 if none ran */
    /* index of the primitive whose end-to-end plan ran this layer fastest
     * in its breakdown (what "auto" binds it to on a device or the CPU
     * clock), -1 if none (auto then uses `best`) */
    int best_in_plan;
    /* "fp32", or "int8" for a layer a compressor quantised (int8 primitives
     * run it from uint8; fp32 ones fake-quantised) */
    char precision[8];
    /* fraction of the layer's weights that are zero (pruned), as the plan
     * counted them (dlas_conv_desc.weight_sparsity) */
    double sparsity;
};

/* "auto" on the CPU is the plan's own choice (dlas_plan_auto_select: each
 * conv layer on the primitive that ran it fastest inside whole plans, timed
 * until the decision is clear, and fused blocks kept where they beat their
 * layers), the plan a deployment and bench/vs_ort.py run. On a device, or
 * on the CPU clock, it binds each conv layer to the primitive whose own
 * plan ran it fastest in the breakdown (timed inside the plan, where the
 * caches hold what a whole network leaves in them), or, when no plan ran
 * it, to the per-layer table's best. */
struct dlas_compare_e2e {
    char label[128];   /* a primitive's label, or "auto" */
    int status;
    char why[256];
    double ms, min, max;
    double conv_ms, other_ms; /* the median `ms` split between conv layers (with what is
                                 fused into them) and everything else, in the proportions
                                 of per-node timed runs: conv_ms + other_ms == ms */
    double err;        /* against the reference forward (check) */
    int n_fallbacks;
    char *fallbacks;   /* "layer (reasons) -> prim; ..." */
    char *fallbacks_grouped; /* "layer, layer (reasons) -> prim; ..." */
    int *layer_count;  /* auto only: conv layers bound to each primitive (n_prims) */
    double op_ms[DLAS_OP__COUNT]; /* time by operator (fused nodes count as their root) */
    /* auto only: conv layers run inside fused blocks (a mobile block, the
     * stem with its max pool, the head: dlas_plan_blocks), which layer_count
     * leaves out, and those blocks ("first > conv > ...; ..."), or NULL */
    int block_layers;
    char *blocks;
    /* auto only: how it was chosen: dlas_plan_auto_select's candidate runs
     * and the layers still unclear after them (0 and 0 where each layer
     * took the primitive fastest in one breakdown of each plan: on a device,
     * or on the CPU clock) */
    int auto_runs, auto_unclear;
};

struct dlas_compare {
    int n_prims;
    char (*labels)[128];
    char fallback[128]; /* "" if none */
    int64_t batch;
    int threads, warmup, repeat, burst;
    char load_before[64], load_after[64]; /* /proc/loadavg */
    int n_layers;
    struct dlas_compare_layer *layers;
    int n_e2e;                     /* n_prims + 1 (auto), 0 if not run */
    struct dlas_compare_e2e *e2e;
    int layers_timed;              /* the layers' cells hold timings */
    int cpu_time;                  /* timed with the process CPU clock */
};

int dlas_compare_run(const struct dlas_graph *g, const struct dlas_host *host,
                     const struct dlas_backend *be, const struct dlas_primitive_choice *prims,
                     int n_prims, const struct dlas_primitive_choice *fallback,
                     const struct dlas_compare_options *o, struct dlas_compare **out);
void dlas_compare_free(struct dlas_compare *c);

/* The per-layer table and the end-to-end table, for a terminal. */
void dlas_compare_print(const struct dlas_compare *c, FILE *f);
/* One row per (layer, primitive); one row per end-to-end plan. */
int dlas_compare_write_csv(const struct dlas_compare *c, const char *layers_path,
                           const char *e2e_path);
/* Everything, with `meta` ("key": "value" pairs, may be NULL) at the top. */
int dlas_compare_write_json(const struct dlas_compare *c, const char *path,
                            const char *const *meta, int n_meta);

#ifdef __cplusplus
}
#endif
#endif
