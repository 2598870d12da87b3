/* The plugin ABI.
 *
 * A plugin is a shared object exporting exactly one symbol,
 *
 *     const struct dlas_plugin *dlas_plugin_entry(void);
 *
 * found with dlsym() after dlopen(RTLD_NOW | RTLD_LOCAL). Calling it has no
 * side effects. The core accepts the plugin when abi_major equals
 * DLAS_ABI_MAJOR and abi_minor is not newer than DLAS_ABI_MINOR. Structures
 * here are append-only: fields are never reordered or removed, and every
 * table starts with its size so that an older plugin's shorter table is still
 * read correctly. */
#ifndef DLAS_PLUGIN_H
#define DLAS_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include <dlas/graph.h>
#include <dlas/log.h>
#include <dlas/ops.h>
#include <dlas/params.h>
#include <dlas/rng.h>
#include <dlas/status.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DLAS_ABI_MAJOR 1
#define DLAS_ABI_MINOR 9 /* 4: DLAS_PARAM_ALIAS and DLAS_PARAM_PATH in parameter specs;
                            5: dlas_prune_options_from_params and the shared pruning
                            parameter rows DLAS_PRUNE_PARAMS_* (<dlas/prune.h>),
                            dlas_trainer_fit_steps (<dlas/train.h>);
                            6: run_residual and DLAS_PRIM_RESIDUAL for primitives;
                            7: wholes of pruning units: grouped convs' channels
                            (dlas_prune_units_find_wholes, <dlas/prune.h>);
                            8: run_prologue and DLAS_PRIM_PROLOGUE for primitives;
                            9: set_layouts and DLAS_PRIM_C16 for primitives */

enum dlas_kind {
    DLAS_KIND_DATASET = 1,
    DLAS_KIND_MODEL,
    DLAS_KIND_COMPRESSOR,
    DLAS_KIND_PRIMITIVE,
    DLAS_KIND_BACKEND,
    DLAS_KIND__END
};
const char *dlas_kind_name(enum dlas_kind k); /* "dataset", ... */
int dlas_kind_parse(const char *s, enum dlas_kind *out);

/* What the core lends to plugins. Allocation goes through the host so that
 * memory can be measured; randomness comes from the experiment's seeded RNG. */
struct dlas_host {
    uint32_t size;
    void (*log)(enum dlas_log_level level, const char *fmt, ...) DLAS_PRINTF(2, 3);
    void *(*alloc)(size_t bytes); /* 64-byte aligned, zeroed */
    void (*free)(void *p);
    struct dlas_rng *rng;         /* this component's own stream */
    uint64_t seed;                /* the experiment seed */
};

/* A host table backed by the core: stderr logging, a counting allocator (so
 * the memory a plugin holds can be measured) and the given RNG. */
void dlas_host_init(struct dlas_host *h, struct dlas_rng *rng, uint64_t seed);
int64_t dlas_host_bytes_in_use(void);
int64_t dlas_host_bytes_peak(void);
void dlas_host_reset_peak(void);

/* ---- datasets ---------------------------------------------------------- */
enum dlas_split { DLAS_SPLIT_TRAIN = 0, DLAS_SPLIT_TEST = 1 };

struct dlas_dataset_info {
    int channels, height, width;
    int classes;
    int64_t n_train, n_test;
    float mean[4], std[4]; /* per channel, in [0,1] units; std 0 = unknown */
};

struct dlas_dataset_ops {
    uint32_t size;
    int (*open)(const struct dlas_host *host, const struct dlas_params *p, void **handle);
    int (*info)(void *handle, struct dlas_dataset_info *info);
    /* n images as float NCHW in [0,1] and their labels (either may be NULL).
     * Must be safe to call concurrently on one handle from several threads
     * (the core's data loader reads from background workers), and alongside
     * info(). */
    int (*read)(void *handle, enum dlas_split split, const int64_t *indices, int64_t n,
                float *images, int32_t *labels);
    void (*close)(void *handle);
    /* ABI 1.1, optional (NULL, or beyond `size` in older plugins). Like read(),
     * but views[i] != 0 asks for a random training view of sample i that the
     * plugin draws from that seed alone (e.g. a random-resized crop of the
     * original image, which the core cannot do on an already resized one);
     * views[i] == 0 gives exactly what read() gives. Same thread safety. */
    int (*read_views)(void *handle, enum dlas_split split, const int64_t *indices, int64_t n,
                      const uint64_t *views, float *images, int32_t *labels);
};

/* ---- models ------------------------------------------------------------ */
struct dlas_model_ops {
    uint32_t size;
    /* Append the network for inputs of c x h x w and `classes` outputs to g
     * (which is empty). Weights are initialised by the core afterwards. */
    int (*build)(const struct dlas_host *host, const struct dlas_params *p, int c, int h,
                 int w, int classes, struct dlas_graph *g);
};

/* ---- compressors ------------------------------------------------------- */
struct dlas_report;
struct dlas_trainer;
struct dlas_data;
struct dlas_latency;
struct dlas_compress_ctx;
/* Add a named figure to the result row of the current experiment point. */
int dlas_report_num(struct dlas_report *r, const char *key, double value);
int dlas_report_str(struct dlas_report *r, const char *key, const char *value);

struct dlas_compress_ctx {
    uint32_t size;
    const struct dlas_host *host;
    struct dlas_graph *graph;     /* rewrite in place */
    struct dlas_report *report;
    void *reserved[8];            /* kept for the layout of ABI 1.0 and 1.1 */
    /* ABI 1.2: training (<dlas/train.h>), when the experiment trains
     * (train.epochs > 0), else NULL. The trainer works on `graph` (already
     * trained) and follows its rewrites; it holds the experiment's recipe at
     * epoch 0, so dlas_trainer_fit trains that many epochs more (or
     * dlas_trainer_reset sets another recipe), and writes no checkpoint.
     * data is its pipeline (train, val and test batches); teacher is a copy
     * of the trained model before compression, for distillation. Read them
     * only when `size` covers them. */
    struct dlas_trainer *trainer;
    struct dlas_data *data;
    const struct dlas_graph *teacher;
    /* ABI 1.3: the inference latency of a graph as the experiment will time
     * it, so that a compressor can stop at (or choose by) a measured latency
     * on the experiment's primitive and backend. NULL when the core cannot
     * time (read it only when `size` covers it). See dlas_compress_latency. */
    int (*latency)(struct dlas_compress_ctx *ctx, const struct dlas_graph *g, unsigned flags,
                   struct dlas_latency *out, double *node_seconds);
    void *latency_state; /* the core's, for latency() alone */
};

/* ABI 1.3: latency() of the compress context.
 *
 * g is any valid graph: ctx->graph, or a candidate built by the compressor
 * (a copy with a block replaced, with channels removed, ...); it is not
 * changed. It is planned exactly as the experiment point will be after the
 * chain: its conv layers bound to the point's primitive (those it refuses to
 * the experiment's fallback), with the tuning log if the experiment uses one,
 * batchnorm folded and relu fused, on a backend configured as the point's,
 * at the experiment's batch; then run `warmup` times untimed and `repeat`
 * times timed on seeded random input (the experiment group's settings).
 *
 * flags: DLAS_LATENCY_AUTO binds every conv layer instead to the fastest of
 * all the experiment's primitives (those its `sweep` selects), as `dlas
 * compare` chooses "auto": on the CPU as a deployed plan does
 * (dlas_plan_auto_select: each primitive's own plan timed, until each
 * layer's decision is clear, and the one that ran the layer fastest there
 * takes it; fused blocks kept where they beat their layers), on a device
 * by one timed breakdown of each primitive's plan. Slower to measure (a
 * plan per primitive), and the choice is re-made on every call.
 *
 * node_seconds: NULL, or dlas_graph_n_nodes(g) doubles that receive each
 * node's mean seconds per run over the timed runs (0 for a node fused into
 * another: see dlas_plan_fused_into).
 *
 * Costs a plan (weights prepared) per call: measure every few pruning steps,
 * not every step. Returns a status; on failure the message says why. */
#define DLAS_LATENCY_AUTO 0x1u
struct dlas_latency {
    double median_s, min_s, max_s; /* of the timed runs, seconds per batch */
    int runs;                      /* timed runs */
    int64_t batch;
    int threads;                   /* the backend's */
    char binding[256];             /* e.g. "im2col", "auto: winograd 7, im2col 12" */
};
/* ctx->latency(ctx, g, flags, out, node_seconds), or DLAS_ERR_UNAVAILABLE
 * with a message when the context offers no latency (an older core, or no
 * backend in the experiment). */
static inline int dlas_compress_latency(struct dlas_compress_ctx *ctx, const struct dlas_graph *g,
                                        unsigned flags, struct dlas_latency *out,
                                        double *node_seconds)
{
    if (!ctx || ctx->size < offsetof(struct dlas_compress_ctx, latency_state) +
                                sizeof ctx->latency_state || !ctx->latency)
        return dlas_error(DLAS_ERR_UNAVAILABLE,
                          "this experiment cannot measure latency while compressing");
    return ctx->latency(ctx, g, flags, out, node_seconds);
}

struct dlas_compressor_ops {
    uint32_t size;
    int (*apply)(struct dlas_compress_ctx *ctx, const struct dlas_params *p);
};

/* ---- backends ---------------------------------------------------------- */
/* fn(arg, begin, end, thread): items [begin, end) on thread `thread` (0 to
 * threads - 1, for per-thread scratch). A thread may be called for several
 * ranges in one parallel_for; every item is in exactly one range. */
typedef void (*dlas_range_fn)(void *arg, int64_t begin, int64_t end, int thread);

/* Shares of [0, n) for the nt threads of a parallel region, which a thread
 * that has finished its own takes from: thread i owns the contiguous share
 * a static split would give it and claims it a quarter at a time; once it
 * is done it claims the chunks of the others' that nobody has started.
 * Items keep their ranges' order within a chunk and run once each, on
 * whichever thread claims them, so results do not change where items are
 * independent. Why: a thread of a VM, or of a machine others are using, can
 * be descheduled for milliseconds; with fixed shares the whole region waited
 * for it to come back and do its part (dlas ran 10x slower than ONNX
 * Runtime, which shares work this way, on a loaded 2-vCPU machine).
 * dlas_share_init (one thread, before the region; s holds nt entries), then
 * in the region while (dlas_share_next(s, nt, id, &b, &e)) work(b, e). */
struct dlas_share {
    int64_t next, end, chunk;
    char pad[64 - 3 * sizeof(int64_t)]; /* one cache line per thread's share */
};

static inline void dlas_share_init(struct dlas_share *s, int64_t n, int nt)
{
    const int64_t q = n / nt, r = n % nt;
    int64_t b = 0;
    for (int i = 0; i < nt; i++) {
        const int64_t len = q + (i < r ? 1 : 0);
        s[i].next = b;
        s[i].end = b + len;
        s[i].chunk = len >= 4 ? (len + 3) / 4 : 1;
        b += len;
    }
}

static inline int dlas_share_next(struct dlas_share *s, int nt, int id, int64_t *begin,
                                  int64_t *end)
{
    for (int k = 0; k < nt; k++) {
        struct dlas_share *v = &s[(id + k) % nt];
        if (__atomic_load_n(&v->next, __ATOMIC_RELAXED) >= v->end)
            continue;
        const int64_t at = __atomic_fetch_add(&v->next, v->chunk, __ATOMIC_RELAXED);
        if (at < v->end) {
            *begin = at;
            *end = v->end - at < v->chunk ? v->end : at + v->chunk;
            return 1;
        }
    }
    return 0;
}

struct dlas_backend_ops {
    uint32_t size;
    const char *device; /* "cpu", "cuda" */
    int (*init)(const struct dlas_host *host, const struct dlas_params *p, void **ctx);
    int (*threads)(void *ctx);
    /* Run fn over [0, n) split into ranges over the backend's threads (see
     * dlas_range_fn). Must not be called from inside another parallel_for. */
    void (*parallel_for)(void *ctx, int64_t n, dlas_range_fn fn, void *arg);
    void *(*alloc)(void *ctx, size_t bytes); /* device memory, 64-byte aligned */
    void (*free)(void *ctx, void *p);
    int (*sync)(void *ctx);
    double (*now)(void *ctx); /* seconds, monotonic */
    void (*release)(void *ctx);

    /* ---- ABI 1.3: device backends (read only when `size` covers them;
     * dlas_backend_device_ops() does that). A backend whose memory the host
     * cannot address (a GPU) sets DLAS_BACKEND_DEVICE_MEMORY and provides the
     * copies and the node operators; a CPU backend leaves all of this zero.
     * Everything a device backend does is ordered on one stream of its own:
     * primitives that take the stream from native() queue their work behind
     * the node before them, and sync() waits for all of it. */
    uint32_t flags; /* DLAS_BACKEND_* */
    /* host -> backend memory, backend memory -> host (returns once the data
     * is on the host), and within backend memory; ordered on the stream. */
    int (*copy_in)(void *ctx, void *dst, const void *src, size_t bytes);
    int (*copy_out)(void *ctx, void *dst, const void *src, size_t bytes);
    int (*copy)(void *ctx, void *dst, const void *src, size_t bytes);
    /* The graph's other operators on the device: prepare node id of g (not a
     * conv, not the input; weights copied to the device here, once) followed
     * by `activation` (enum dlas_activation, a relu fused into it), or
     * DLAS_ERR_UNSUPPORTED with the reason. node_run reads the node's inputs
     * (n_inputs pointers in backend memory, batch x its input's shape) and
     * writes batch x its output shape. */
    int (*node_prepare)(void *ctx, const struct dlas_graph *g, int id, int activation,
                        void **state);
    int (*node_run)(void *state, int64_t batch, const float *const *in, float *out);
    void (*node_release)(void *state);
    /* Device timing: marks recorded on the stream (events), read back once
     * completed. marks_reserve(ctx, n) makes marks 0..n-1 available;
     * elapsed(ctx, i, j) waits for mark j and returns the seconds between
     * marks i and j (negative on error). May be NULL: the core then times
     * with now() after sync(). */
    int (*marks_reserve)(void *ctx, int n);
    int (*mark)(void *ctx, int i);
    double (*elapsed)(void *ctx, int i, int j);
    /* Optional capture of a sequence of stream work into a replayable graph
     * (CUDA graphs): begin, end -> an executable handle, launch, free. A
     * plan captures its forward once per batch size and replays it;
     * capture_begin may refuse with DLAS_ERR_UNSUPPORTED (e.g. an instance
     * configured not to capture), and the plan then launches node by node. */
    int (*capture_begin)(void *ctx);
    int (*capture_end)(void *ctx, void **graph);
    int (*graph_launch)(void *ctx, void *graph);
    void (*graph_free)(void *ctx, void *graph);
    /* A native handle by name (DLAS_NATIVE_*), or NULL if the backend has
     * none: what a device primitive needs to queue its work on the
     * backend's stream and share the backend's library handles. */
    void *(*native)(void *ctx, const char *name);
    /* One line for the results' provenance: device model, driver and
     * library versions ("NVIDIA H200; driver 580.95; CUDA runtime 13.0; ..."). */
    int (*describe)(void *ctx, char *buf, size_t len);
};
/* alloc() returns memory the host cannot read or write: the core moves data
 * with copy_in / copy_out, and runs every node on the device. */
#define DLAS_BACKEND_DEVICE_MEMORY 0x1u

/* Native handles of a "cuda" backend: cudaStream_t of the backend instance,
 * and cuBLAS / cuDNN handles bound to that stream (math mode as the backend
 * was configured: TF32 off unless asked for). */
#define DLAS_NATIVE_CUDA_STREAM "cuda.stream"
#define DLAS_NATIVE_CUBLAS "cuda.cublas"
#define DLAS_NATIVE_CUDNN "cuda.cudnn"
/* int: 1 when TF32 tensor-core math is allowed for fp32 (pointer to it). */
#define DLAS_NATIVE_CUDA_TF32 "cuda.tf32"

/* A backend instance as handed to primitives. */
struct dlas_backend {
    const struct dlas_backend_ops *ops;
    void *ctx;
};

/* The ABI 1.3 part of a backend's ops, NULL for an older, shorter table or
 * a backend without device memory. */
static inline const struct dlas_backend_ops *
dlas_backend_device_ops(const struct dlas_backend *be)
{
    if (!be || !be->ops ||
        be->ops->size < offsetof(struct dlas_backend_ops, describe) + sizeof be->ops->describe ||
        !(be->ops->flags & DLAS_BACKEND_DEVICE_MEMORY))
        return NULL;
    return be->ops;
}
/* A native handle (DLAS_NATIVE_*) of the backend, or NULL. */
static inline void *dlas_backend_native(const struct dlas_backend *be, const char *name)
{
    const struct dlas_backend_ops *o = dlas_backend_device_ops(be);
    return o && o->native ? o->native(be->ctx, name) : NULL;
}

/* ---- primitives -------------------------------------------------------- */
#define DLAS_PROFILE_MAX 8
struct dlas_profile { /* optional per-phase seconds, accumulated by run() */
    int n;
    const char *phase[DLAS_PROFILE_MAX];
    double seconds[DLAS_PROFILE_MAX];
};

/* A conv's input given channel by channel, with an affine map and an
 * activation to apply to it first (run_prologue). */
struct dlas_conv_prologue {
    const float *const *chan; /* in_c entries: channel c's plane in image 0 */
    const int64_t *bstride;   /* in_c entries: floats from one image's plane to the next */
    const float *scale, *shift; /* in_c entries each */
    int act;                    /* enum dlas_activation */
};

struct dlas_primitive_ops {
    uint32_t size;
    const char *op;     /* "conv2d" */
    const char *device; /* the backend device it runs on: "cpu" */
    /* 0 if it can run d; otherwise DLAS_ERR_UNSUPPORTED with a reason in why. */
    int (*supports)(const struct dlas_conv_desc *d, const struct dlas_params *p, char *why,
                    size_t why_len);
    /* Transform weights once (pack, Winograd-transform, CSR, quantise).
     * weight: out_c x in_c/groups x kh x kw, pruned entries already zero. */
    int (*prepare)(const struct dlas_host *host, const struct dlas_backend *be,
                   const struct dlas_conv_desc *d, const float *weight, const float *bias,
                   const struct dlas_params *p, void **state);
    size_t (*workspace)(void *state, int64_t batch);
    /* in: batch x in_c x in_h x in_w; out: batch x out_c x out_h x out_w,
     * every element written. ws has workspace(B) bytes for the largest batch
     * B the caller runs (a plan sizes it once, for its batch, and runs its
     * last partial batch in it): a run of any batch up to B must fit in
     * workspace(B) (the conformance suite runs B and B - 1 so). prof may be NULL.
     * in, out and ws are the backend's memory (be->ops->alloc): device
     * memory on a device backend, where run() queues its work on the
     * backend's stream and may return before it completes. */
    int (*run)(void *state, int64_t batch, const float *in, float *out, void *ws,
               struct dlas_profile *prof);
    void (*release)(void *state);
    /* ABI 1.2: DLAS_PRIM_* capabilities (read only when `size` covers it). */
    uint32_t flags;
    /* ABI 1.3, with DLAS_PRIM_INT8: run a layer whose desc->quant was set at
     * prepare(): in is batch x in_c x in_h x in_w uint8 (quantised with
     * desc->quant->in), out is uint8 or f32 as desc->quant->out_u8 says, the
     * layer's activation applied. run() on such a state is not called. */
    int (*run_int8)(void *state, int64_t batch, const uint8_t *in, void *out, void *ws,
                    struct dlas_profile *prof);
    /* ABI 1.6, with DLAS_PRIM_RESIDUAL: run() with a residual added before
     * the activation, out = act(conv(in) + bias + res), as a residual block
     * ends (ResNet: relu(bn3(conv3(x)) + shortcut)). res is shaped like out
     * and may be out itself; desc->activation is the one after the add. */
    int (*run_residual)(void *state, int64_t batch, const float *in, const float *res,
                        float *out, void *ws, struct dlas_profile *prof);
    /* ABI 1.8, with DLAS_PRIM_PROLOGUE: run() on an input given channel by
     * channel (in->chan, in->bstride), each value x of input channel c taken
     * as act(x * scale[c] + shift[c]): a batchnorm and activation that only
     * this conv reads, applied as the conv reads its input instead of as a
     * pass of their own (DenseNet's norm1 and relu1 before each conv1, over
     * a concatenation read in place). Only on a state for which
     * takes_prologue() says 1; ws as for run(). */
    int (*takes_prologue)(const void *state);
    int (*run_prologue)(void *state, int64_t batch, const struct dlas_conv_prologue *in,
                        float *out, void *ws, struct dlas_profile *prof);
    /* ABI 1.9, with DLAS_PRIM_C16: the layouts (enum dlas_layout) in which
     * run() and run_residual() of this state read their input, write their
     * output and read the residual from now on; DLAS_LAYOUT_NCHW for all
     * three is what prepare() leaves (a caller that adds no residual passes
     * the output's layout as res_layout). 0, DLAS_ERR_UNSUPPORTED where the
     * state cannot, or DLAS_ERR_INVALID for a value that is no dlas_layout
     * (the state is then as before, either way). The caller asks workspace()
     * again afterwards. Not for states that run int8 or a prologue. */
    int (*set_layouts)(void *state, int in_layout, int out_layout, int res_layout);
};
/* Activation layouts a conv can read and write (set_layouts). C16: channels
 * in blocks of 16, each pixel's 16 channels one vector: image n, channel c,
 * pixel (y, x) at ((n * ceil(C / 16) + c / 16) * H * W + y * W + x) * 16 +
 * c % 16. The lanes of the last block past C are never read, and what is
 * written there is unspecified. A plan keeps a tensor in it where its
 * producer and every reader take it, so that the two threads of a layer
 * split by rows meet at two boundaries a block of 16 channels instead of two
 * a channel. */
enum dlas_layout { DLAS_LAYOUT_NCHW = 0, DLAS_LAYOUT_C16 = 1 };
/* The primitive applies dlas_conv_desc.activation itself. A primitive for
 * a device backend must (the core has no pass of its own there). */
#define DLAS_PRIM_ACTIVATION 0x1u
/* The primitive runs int8 layers (dlas_conv_desc.quant, run_int8) and
 * refuses fp32 ones; it applies the activation of an int8 layer itself. */
#define DLAS_PRIM_INT8 0x2u
/* The primitive adds a residual as it stores its results (run_residual),
 * so that the plan runs a conv and the add that alone reads it as one pass
 * over the output. Needs DLAS_PRIM_ACTIVATION too (the add's relu). */
#define DLAS_PRIM_RESIDUAL 0x4u
/* 1 when a primitive's ops declare DLAS_PRIM_RESIDUAL (ABI 1.6) with
 * run_residual, and apply activations. */
static inline int dlas_prim_runs_residual(const struct dlas_primitive_ops *ops)
{
    return ops &&
           ops->size >= offsetof(struct dlas_primitive_ops, run_residual) + sizeof ops->run_residual &&
           (ops->flags & DLAS_PRIM_RESIDUAL) && (ops->flags & DLAS_PRIM_ACTIVATION) &&
           ops->run_residual;
}
/* The primitive can take its input through run_prologue (ABI 1.8) on the
 * states whose takes_prologue() says so. */
#define DLAS_PRIM_PROLOGUE 0x8u
/* 1 when a primitive's ops declare DLAS_PRIM_PROLOGUE (ABI 1.8) with
 * takes_prologue and run_prologue. */
static inline int dlas_prim_runs_prologue(const struct dlas_primitive_ops *ops)
{
    return ops &&
           ops->size >= offsetof(struct dlas_primitive_ops, run_prologue) + sizeof ops->run_prologue &&
           (ops->flags & DLAS_PRIM_PROLOGUE) && ops->takes_prologue && ops->run_prologue;
}
/* The primitive can read and write DLAS_LAYOUT_C16 (set_layouts, ABI 1.9)
 * on the states whose set_layouts() accepts it. */
#define DLAS_PRIM_C16 0x10u
/* 1 when a primitive's ops declare DLAS_PRIM_C16 (ABI 1.9) with set_layouts. */
static inline int dlas_prim_sets_layouts(const struct dlas_primitive_ops *ops)
{
    return ops &&
           ops->size >= offsetof(struct dlas_primitive_ops, set_layouts) + sizeof ops->set_layouts &&
           (ops->flags & DLAS_PRIM_C16) && ops->set_layouts;
}
/* 1 when a primitive's ops declare DLAS_PRIM_INT8 (ABI 1.3) with run_int8. */
static inline int dlas_prim_runs_int8(const struct dlas_primitive_ops *ops)
{
    return ops && ops->size >= offsetof(struct dlas_primitive_ops, run_int8) + sizeof ops->run_int8 &&
           (ops->flags & DLAS_PRIM_INT8) && ops->run_int8;
}
/* 1 when a primitive's ops declare DLAS_PRIM_ACTIVATION (an ops table
 * built for ABI 1.1 is too short to say so). */
static inline int dlas_prim_applies_activation(const struct dlas_primitive_ops *ops)
{
    return ops && ops->size >= offsetof(struct dlas_primitive_ops, flags) + sizeof ops->flags &&
           (ops->flags & DLAS_PRIM_ACTIVATION);
}

/* ---- the entry point --------------------------------------------------- */
struct dlas_component {
    uint32_t size;
    enum dlas_kind kind;
    const char *name, *summary;
    const char *reference; /* the paper or document it implements */
    const struct dlas_param_spec *params; /* terminated by a NULL name; may be NULL */
    const void *ops;       /* struct dlas_<kind>_ops */
};

struct dlas_plugin {
    uint16_t abi_major, abi_minor;
    uint32_t size;
    const char *name, *version, *summary;
    size_t n_components;
    const struct dlas_component *components;
};

#define DLAS_PLUGIN_ENTRY_SYMBOL "dlas_plugin_entry"

#if defined(__GNUC__)
#define DLAS_EXPORT __attribute__((visibility("default")))
#else
#define DLAS_EXPORT
#endif

/* Define the entry point of a plugin offering the given components. */
#define DLAS_PLUGIN(name_, version_, summary_, components_)                          \
    DLAS_EXPORT const struct dlas_plugin *dlas_plugin_entry(void);                   \
    const struct dlas_plugin *dlas_plugin_entry(void)                                \
    {                                                                                \
        static const struct dlas_plugin p = {                                        \
            DLAS_ABI_MAJOR, DLAS_ABI_MINOR, sizeof(struct dlas_plugin), name_,       \
            version_, summary_, sizeof(components_) / sizeof((components_)[0]),      \
            components_};                                                            \
        return &p;                                                                   \
    }

#ifdef __cplusplus
}
#endif
#endif
