/* Code shared by the CPU convolution primitives (direct, spatial-pack,
 * winograd, grouped-spatial-pack, im2col-gemm, sparse-*) beyond the
 * kernels: layer checks, the backend's threads and clock, profiling, and
 * the OpenMP phase runner. Not a plugin: compiled into each primitive's
 * module separately (see each local.mk), so that the plugins still never
 * link against one another. The kernels themselves (packing,
 * micro-kernel, scatter) are core/kernels. */
#ifndef DLAS_PRIM_COMMON_H
#define DLAS_PRIM_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <dlas/plugin.h>

#include "../../core/kernels/pc_kernels.h"
#include "conv_ops.h"

/* ---- layer checks ------------------------------------------------------ */

/* Record a refusal: formats into why (if given) and the error message,
 * prefixed with the primitive's name, and returns status. */
int pc_fail(const char *prim, char *why, size_t len, int status, const char *fmt, ...)
    DLAS_PRINTF(5, 6);
/* The well-formedness checks every primitive makes (sizes, divisibility,
 * geometry agreeing with out_h/out_w); DLAS_ERR_INVALID with the reason. */
int pc_check_desc(const char *prim, const struct dlas_conv_desc *d, char *why, size_t len);
/* pc_check_desc, and DLAS_ERR_UNSUPPORTED for a depthwise layer (one input
 * channel per group): for the primitives whose vectors span a group's
 * output channels, which would be nearly empty there. */
int pc_check_not_depthwise(const char *prim, const struct dlas_conv_desc *d, char *why,
                           size_t len);
/* set_layouts' arguments (ABI 1.9): c16[0..2] = input, output, residual in
 * DLAS_LAYOUT_C16. DLAS_ERR_INVALID for a value that is no dlas_layout,
 * DLAS_ERR_UNSUPPORTED for C16 anywhere on a layer of several groups
 * unless each group's input and output channels are whole blocks of 16
 * (pc_c16_groups). */
int pc_layouts(const char *prim, const struct dlas_conv_desc *d, int in_layout, int out_layout,
               int res_layout, int c16[3]);
/* Common prepare() argument checks (weights, bias, cpu backend). */
int pc_check_prepare(const char *prim, const struct dlas_backend *be,
                     const struct dlas_conv_desc *d, const float *weight, const float *bias);

/* ---- the state every CPU convolution starts with -------------------------- */

/* Who lent the memory, where a prepared convolution runs, and its layer.
 * Each primitive's state begins with one (member `conv`), so that prepare's
 * first steps, run()'s argument checks and the state's release are written
 * once. */
struct pc_conv {
    const struct dlas_host *host;
    struct dlas_backend be; /* a copy; zeroed when prepare() had none */
    struct dlas_conv_desc d;
    int64_t cpg, opg; /* input and output channels of a group */
};

/* A zeroed state of `size` bytes (a struct that begins with struct
 * pc_conv) from the host, its pc_conv filled in; NULL, with DLAS_ERR_NOMEM
 * set, when out of memory. prepare() checks the layer first
 * (pc_check_prepare, then the primitive's supports). */
void *pc_conv_alloc(const char *prim, const struct dlas_host *host,
                    const struct dlas_backend *be, const struct dlas_conv_desc *d, size_t size);
/* The state itself (after the primitive released what it added). */
void pc_conv_free(struct pc_conv *c);
/* The bias of every group into *out, groups `stride` floats apart (stride
 * >= opg: whole blocks of output channels; the padding stays zero). *out
 * stays NULL when the layer has no bias. DLAS_ERR_NOMEM. */
int pc_conv_bias(const struct pc_conv *c, const char *prim, const float *bias, int64_t stride,
                 float **out);
/* The operands of the register-blocked micro-kernel besides the packed
 * input (direct, spatial-pack; primitives/common/blocked.c): each group's
 * output channels in n_ob blocks of b vectors of 16, their weights and bias
 * laid out for it, and the offsets of the kernel taps in the packed input
 * window. */
struct pc_blocked {
    int b;
    int64_t nblk;      /* blocks of 16 input channels of a group */
    int64_t n_ob;      /* output-channel blocks of a group */
    int64_t ob_floats; /* packed weights of one block */
    int64_t *tap_off;  /* kh*kw: left for the caller to fill once the window is known */
    float *w;          /* [g][ob][blk][tap][c][B*16] (pc_pack_weights) */
    float *bias;       /* [g][n_ob*B*16], zero-padded; NULL without a bias */
};
/* k for blocks of b vectors: every buffer allocated, weights and bias
 * packed. DLAS_ERR_NOMEM (pc_blocked_free releases what was made). */
int pc_blocked_new(const struct pc_conv *c, const char *prim, const float *weight,
                   const float *bias, int b, struct pc_blocked *k);
void pc_blocked_free(const struct pc_conv *c, struct pc_blocked *k);
/* run()'s arguments: a state, and input, output and workspace unless the
 * batch is empty. DLAS_ERR_INVALID. */
int pc_check_run(const char *prim, const void *state, int64_t batch, const float *in,
                 const float *out, const void *ws);

/* ---- backend ----------------------------------------------------------- */

/* Threads of the backend (1 without one). Primitives parallelise with their
 * own OpenMP region: one region per run() holds packing and compute phases
 * separated by barriers, which parallel_for (one region per call) cannot;
 * the backend is OpenMP, so both share one pool. */
int pc_threads(const struct dlas_backend *be);
/* Every region runs either one thread or the backend's whole count,
 * `omp parallel num_threads(pc_threads(be))`, however little work it has:
 * libgomp ends the pool threads that a smaller team leaves out and creates
 * them again (pthread_create) for the next larger one. With teams sized by
 * each layer's work, a plan on 4-16 threads paid thread creation in most of
 * its layers (MobileNet-v2 at batch 1 ran slower on 16 threads than on 8).
 * pc_workers(team, want) is how many threads of the team take work (ids
 * below it); the others go straight to the region's closing barrier. */
static inline int pc_workers(int team, int want) { return want < team ? want : team; }
/* fn(ctx, b, e, id) over the items [0, n) on t workers (ids below t, for
 * per-thread buffers) of one region of the backend's whole team, the items
 * shared (dlas_share: a worker that is done takes what another has not
 * started); on this thread alone when t <= 1. */
typedef void (*pc_items_fn)(const void *ctx, int64_t b, int64_t e, int id);
void pc_run_items(const struct dlas_backend *be, int t, int64_t n, pc_items_fn fn,
                  const void *ctx);
double pc_now(const struct dlas_backend *be);
void pc_prof_add(struct dlas_profile *p, const char *phase, double seconds);

/* The shape of every run() here: a packing phase and a compute phase in one
 * OpenMP region (one fork per call), with a barrier between them. pack gets
 * an even share of pack_n items, packed into dst; the compute phase either
 * gets an even share of work_n items (work) or divides its work itself
 * (work_team), reading the packed input at packed. Timed as the profile
 * phases "pack" and work_phase. With pack_n = 0 there is no barrier.
 *
 * A packed input of at most PC_PRIVATE_PACK_MAX_BYTES (copy_floats, when
 * the caller's workspace has room for a copy a thread: pc_pack_ws_floats)
 * is instead packed by every worker into a copy of its own, and nobody
 * waits: on a 2-vCPU VM the barrier and the input rows the other core wrote
 * cost more than packing a small input twice over (128x16x16: 5.6 us packed
 * by one thread, 19 us by two with the barrier); "pack" is then the time
 * thread 0 took for its copy. At most PC_MAX_PRIVATE_COPIES workers do so. */
#define PC_PRIVATE_PACK_MAX_BYTES (192 * 1024)
#define PC_MAX_PRIVATE_COPIES 16

/* Copies of the packed input (per floats an image) of `batch` images that
 * run() on t threads makes: t while small, else 1 (shared). */
static inline int pc_pack_copies(int t, int64_t batch, int64_t per)
{
    const int64_t bytes = batch * per * (int64_t)sizeof(float);
    return t > 1 && t <= PC_MAX_PRIVATE_COPIES && per > 0 && bytes <= PC_PRIVATE_PACK_MAX_BYTES
               ? t
               : 1;
}

/* Floats of workspace for the packed input of any run of at most `batch`
 * images on t threads: a smaller run may take a copy a thread. */
static inline int64_t pc_pack_ws_floats(int t, int64_t batch, int64_t per)
{
    int64_t floats = batch * per;
    int64_t b = per > 0 ? PC_PRIVATE_PACK_MAX_BYTES / (per * (int64_t)sizeof(float)) : 0;
    if (b > batch)
        b = batch; /* the most images a run packs a copy a thread of */
    if (b >= 1 && b * per * pc_pack_copies(t, b, per) > floats)
        floats = b * per * pc_pack_copies(t, b, per);
    return floats;
}

/* Floats in a page. */
#define PC_PAGE_FLOATS 1024

/* Floats from one thread's buffer (`floats` of its own) to the next
 * thread's in a workspace: whole pages, and a page between. A core writing
 * up to the end of its buffer fetches the next two or three lines too
 * (bench_handoff --gap); where those are the other thread's, each run
 * moves them between the cores, 300+ ns a line when the VM puts the two
 * vCPUs apart (bench/README-ort.md, twenty-first stop). */
static inline int64_t pc_slab_floats(int64_t floats)
{
    return (floats + 2 * PC_PAGE_FLOATS - 1) / PC_PAGE_FLOATS * PC_PAGE_FLOATS;
}

/* Band packing: where each thread's work covers a band of output rows (a
 * tile split, rows outermost), each thread packs the input rows its band
 * reads, halo included, into a copy of its own, and starts at once: no
 * packing phase, no barrier, and no packed row that another core wrote (on
 * this project's 2-vCPU VM a cache line's round trip between the two takes
 * 410-420 ns: bench_peak). Up to PC_BAND_MAX_BYTES of packed input a copy. */
#define PC_BAND_MAX_BYTES (4 * 1024 * 1024)

/* The most images (per floats each) a band copy holds: a thread band-packs
 * a window of that many at a time (direct: one); 0 on one thread, or where
 * one image outgrows a copy (then the input is packed whole, shared). */
static inline int64_t pc_band_images(int t, int64_t per)
{
    return t > 1 && per > 0 ? PC_BAND_MAX_BYTES / (per * (int64_t)sizeof(float)) : 0;
}

/* Floats of workspace for the packed input of any run of at most `batch`
 * images on t threads, band-packed (a copy a thread) where it may be, else
 * as pc_pack_ws_floats. */
static inline int64_t pc_band_ws_floats(int t, int64_t batch, int64_t per)
{
    int64_t f = pc_pack_ws_floats(t, batch, per), b = pc_band_images(t, per);
    b = b < batch ? b : batch;
    return b * per * t > f ? b * per * t : f;
}

struct pc_phases {
    const void *ctx;
    float *packed;       /* where the input is packed: the workspace */
    int64_t copy_floats; /* floats of the packed input (0: never a copy a thread) */
    int64_t pack_n, work_n;
    void (*pack)(const void *ctx, float *dst, int64_t b, int64_t e);
    void (*work)(const void *ctx, const float *packed, int64_t b, int64_t e);
    void (*work_team)(const void *ctx, const float *packed, int id, int nt);
    const char *work_phase;
};
/* max_threads > 0 caps the team (e.g. at the per-thread buffers that
 * prepare() sized); a team is never larger than work_n when work is used. */
void pc_run_phases(const struct dlas_backend *be, int max_threads, const struct pc_phases *ph,
                   struct dlas_profile *prof);

#endif
