/* Primitive "pointwise": 1x1 convolutions (any stride, groups, batch) as a
 * GEMM that reads the NCHW input where it lies, without im2col and without
 * a BLAS: per image and group, out (M x N) = W (M x K) * x (K x N), where
 * the K input channels' planes are the rows of x. pw_gemm.h holds the
 * compute (BLIS-style panels, strips and micro-kernel); this file divides
 * the work and loops over the blocks.
 *
 * Why not im2col-gemm: for a 1x1 layer its column matrix is the input
 * itself, but OpenBLAS still packs both operands on every call and runs the
 * activation as a second pass; its kernels also suit square matrices better
 * than ResNet-50's (M = 64..2048 output channels, N = 49..3136 pixels).
 * Here the weights are packed once, at prepare(), each strip of pixels once
 * per channel block, and the bias and activation are applied in registers.
 *
 * Threading: the pixels of the batch (strips of PG_NR, never across an
 * image) are cut into chunks that differ by one strip at most, as many as
 * the threads or a multiple. When a layer has few pixels and many output
 * channels (ResNet-50's last stage: 49 pixels, 2048 channels) the output
 * channels are split instead, so that each thread streams only its share
 * of the weights. */
#include <string.h>

#include "../common/prim_common.h"
#include "pw_gemm.h"

#define NAME "pointwise"
/* Strips per chunk at most: a chunk's packed strips (PG_KC x 16 x PG_NR
 * floats, 256 KB with AVX2) stay in L2 while the weights pass over them. */
#define CHUNK_MAX 16

enum split { SPLIT_AUTO, SPLIT_PIXELS, SPLIT_CHANNELS };

struct pw_state {
    struct pc_conv conv;
    int64_t K, M, Mp, N; /* per group: inputs, outputs, outputs padded to panels; pixels */
    int64_t strips;      /* of one image */
    int strided;         /* stride > 1: a strip gathers its pixels */
    enum split split;
    float *a;            /* [group] panels (pw_gemm.h) */
    float *bias;         /* [group][Mp], or NULL */
};

static const struct dlas_param_spec pw_params[] = {
    {"split", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "auto", 0, 0, "auto|pixels|channels",
     "how threads share a layer: chunks of pixels, or output channels (each thread then "
     "reads only its share of the weights); auto = channels where the batch has fewer than "
     "8 strips of pixels a thread and the layer at least 4 weight panels a thread"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static int pw_supports(const struct dlas_conv_desc *d, const struct dlas_params *p, char *why,
                       size_t len)
{
    int rc = pc_check_desc(NAME, d, why, len);
    if (rc)
        return rc;
    if (d->kh != 1 || d->kw != 1)
        return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED, "takes 1x1 kernels only, not %dx%d",
                       d->kh, d->kw);
    if (d->pad_h || d->pad_w)
        return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED, "takes unpadded layers only");
    return DLAS_OK;
}

/* ---- how the threads share a run ------------------------------------------ */

struct share {
    int64_t total;         /* strips of the batch */
    int64_t n_chunks;      /* of total / n_chunks strips, or one more */
    int64_t rows, n_parts; /* output channels per part (whole panels), parts */
};

static int split_channels(const struct pw_state *s, int t, int64_t total)
{
    if (s->split != SPLIT_AUTO)
        return s->split == SPLIT_CHANNELS;
    return t > 1 && total < 8 * t && s->M >= 4 * PG_MR * t;
}

static void share_of(const struct pw_state *s, int64_t batch, struct share *sh)
{
    const int t = pc_threads(&s->conv.be);
    sh->total = batch * s->strips;
    int64_t chunks = pc_ceil_div(sh->total, CHUNK_MAX);
    sh->rows = s->Mp;
    if (split_channels(s, t, sh->total))
        sh->rows = pc_round_up(pc_ceil_div(s->M, t), PG_MR);
    else /* a multiple of the threads, so that each gets as many */
        chunks = pc_round_up(chunks, t);
    if (chunks > sh->total)
        chunks = sh->total;
    if (chunks < 1)
        chunks = 1;
    sh->n_chunks = chunks;
    sh->n_parts = pc_ceil_div(s->M, sh->rows);
}

static int64_t kc_max(const struct pw_state *s) { return s->K < PG_KC ? s->K : PG_KC; }

/* floats of one worker's packed strips: as many as the largest chunk of any
 * batch holds (a smaller batch can have larger chunks: 32 strips on two
 * threads are two chunks of 16, 33 four of 9) */
static int64_t slab_floats(const struct pw_state *s)
{
    return CHUNK_MAX * kc_max(s) * PG_NR;
}

/* ---- prepare --------------------------------------------------------------- */

static void pw_release(void *state)
{
    struct pw_state *s = state;
    if (!s)
        return;
    s->conv.host->free(s->a);
    s->conv.host->free(s->bias);
    pc_conv_free(&s->conv);
}

static int pw_prepare(const struct dlas_host *host, const struct dlas_backend *be,
                      const struct dlas_conv_desc *d, const float *weight, const float *bias,
                      const struct dlas_params *p, void **state)
{
    *state = NULL;
    int rc = pc_check_prepare(NAME, be, d, weight, bias);
    if (!rc)
        rc = pw_supports(d, p, NULL, 0);
    if (rc)
        return rc;
    struct pw_state *s = pc_conv_alloc(NAME, host, be, d, sizeof *s);
    if (!s)
        return DLAS_ERR_NOMEM;
    s->K = s->conv.cpg;
    s->M = s->conv.opg;
    s->Mp = pc_round_up(s->M, PG_MR);
    s->N = d->out_h * d->out_w;
    s->strips = pc_ceil_div(s->N, PG_NR);
    s->strided = d->stride_h != 1 || d->stride_w != 1;
    const char *sp = p ? dlas_param_str(p, "split") : NULL;
    s->split = !sp || !strcmp(sp, "auto") ? SPLIT_AUTO
               : !strcmp(sp, "pixels")    ? SPLIT_PIXELS
                                          : SPLIT_CHANNELS;
    const int64_t panels = pg_panel_floats(s->M, s->K);
    s->a = host->alloc((size_t)(d->groups * panels) * sizeof(float));
    if (!s->a) {
        pw_release(s);
        return dlas_error(DLAS_ERR_NOMEM, "%s: cannot allocate the packed weights", NAME);
    }
    for (int g = 0; g < d->groups; g++)
        pg_pack_panels(weight + g * s->M * s->K, s->M, s->K, s->a + g * panels);
    if ((rc = pc_conv_bias(&s->conv, NAME, bias, s->Mp, &s->bias))) {
        pw_release(s);
        return rc;
    }
    *state = s;
    return DLAS_OK;
}

static size_t pw_workspace(void *state, int64_t batch)
{
    const struct pw_state *s = state;
    if (!s || batch <= 0)
        return 0;
    return (size_t)pc_threads(&s->conv.be) * (size_t)slab_floats(s) * sizeof(float);
}

/* ---- run --------------------------------------------------------------------- */

struct job {
    const struct pw_state *s;
    const float *in;
    const float *res; /* NULL, or added before the activation */
    float *out;
    float *ws;
    struct share sh;
};

/* Strip st of the batch: image n, its pixels [p0, p0 + nr). */
struct strip {
    int64_t n, p0;
    int nr;
};

static struct strip strip_of(const struct pw_state *s, int64_t st)
{
    struct strip r = {st / s->strips, st % s->strips * PG_NR, 0};
    r.nr = (int)(s->N - r.p0 < PG_NR ? s->N - r.p0 : PG_NR);
    return r;
}

/* Strip `st` of the batch (k0.., kc channels of group g) into b. */
static void pack_strip(const struct job *j, int64_t st, int g, int64_t k0, int64_t kc, float *b)
{
    const struct pw_state *s = j->s;
    const struct dlas_conv_desc *d = &s->conv.d;
    const struct strip sp = strip_of(s, st);
    const int64_t in_hw = d->in_h * d->in_w;
    const float *x = j->in + sp.n * d->in_c * in_hw + (g * s->K + k0) * in_hw;
    if (!s->strided) {
        pg_pack_strip(x + sp.p0, in_hw, NULL, sp.nr, kc, b);
        return;
    }
    int64_t off[PG_NR];
    for (int q = 0; q < sp.nr; q++) {
        const int64_t oh = (sp.p0 + q) / d->out_w, ow = (sp.p0 + q) % d->out_w;
        off[q] = oh * d->stride_h * d->in_w + ow * d->stride_w;
    }
    pg_pack_strip(x, in_hw, off, sp.nr, kc, b);
}

/* The tile of strip st (packed at b) and the panel at output channel mb. */
static void tile_at(const struct job *j, int g, int64_t st, int64_t mb, int64_t k0, int64_t kc,
                    const float *b)
{
    const struct pw_state *s = j->s;
    const struct dlas_conv_desc *d = &s->conv.d;
    const struct strip sp = strip_of(s, st);
    const int64_t at = sp.n * d->out_c * s->N + (g * s->M + mb) * s->N + sp.p0;
    const struct pg_tile t = {
        .a = s->a + g * pg_panel_floats(s->M, s->K) + mb * s->K + k0 * PG_MR,
        .b = b,
        .kc = kc,
        .c = j->out + at,
        .res = j->res ? j->res + at : NULL,
        .ldc = s->N,
        .mr = (int)(s->M - mb < PG_MR ? s->M - mb : PG_MR),
        .nr = sp.nr,
        .bias = s->bias ? s->bias + g * s->Mp + mb : NULL,
        .first = k0 == 0,
        .last = k0 + kc == s->K,
        .act = d->activation,
    };
    pg_tile(&t);
}

/* Strips [s0, s1) x output channels [m0, m1) of group g. */
static void block(const struct job *j, int g, int64_t s0, int64_t s1, int64_t m0, int64_t m1,
                  float *slab)
{
    const struct pw_state *s = j->s;
    const int64_t sfl = kc_max(s) * PG_NR;
    for (int64_t k0 = 0; k0 < s->K; k0 += PG_KC) {
        const int64_t kc = s->K - k0 < PG_KC ? s->K - k0 : PG_KC;
        for (int64_t mc = m0; mc < m1; mc += PG_MC) {
            const int64_t mc1 = mc + PG_MC < m1 ? mc + PG_MC : m1;
            for (int64_t st = s0; st < s1; st++) {
                /* packed as the first block of channels reaches it, so that
                 * its tiles find it in L1; the later blocks reread it */
                if (mc == m0)
                    pack_strip(j, st, g, k0, kc, slab + (st - s0) * sfl);
                for (int64_t mb = mc; mb < mc1; mb += PG_MR)
                    tile_at(j, g, st, mb, k0, kc, slab + (st - s0) * sfl);
            }
        }
    }
}

static void run_tasks(const void *ctx, int64_t b, int64_t e, int id)
{
    const struct job *j = ctx;
    const struct pw_state *s = j->s;
    float *slab = j->ws + id * slab_floats(s);
    for (int64_t task = b; task < e; task++) {
        const int64_t c = task / j->sh.n_parts, part = task % j->sh.n_parts;
        int64_t s0, s1; /* chunks differ by one strip at most */
        pc_split(j->sh.total, (int)c, (int)j->sh.n_chunks, &s0, &s1);
        const int64_t m0 = part * j->sh.rows;
        const int64_t m1 = m0 + j->sh.rows < s->M ? m0 + j->sh.rows : s->M;
        for (int g = 0; g < s->conv.d.groups; g++)
            block(j, g, s0, s1, m0, m1, slab);
    }
}

static int pw_run_residual(void *state, int64_t batch, const float *in, const float *res,
                           float *out, void *ws, struct dlas_profile *prof)
{
    int rc = pc_check_run(NAME, state, batch, in, out, ws);
    if (rc || !batch)
        return rc;
    const struct pw_state *s = state;
    struct job j = {s, in, res, out, ws, {0}};
    share_of(s, batch, &j.sh);
    double t0 = prof ? pc_now(&s->conv.be) : 0.0;
    pc_run_items(&s->conv.be, pc_threads(&s->conv.be), j.sh.n_chunks * j.sh.n_parts, run_tasks,
                 &j);
    if (prof)
        pc_prof_add(prof, "gemm", pc_now(&s->conv.be) - t0);
    return DLAS_OK;
}

static int pw_run(void *state, int64_t batch, const float *in, float *out, void *ws,
                  struct dlas_profile *prof)
{
    return pw_run_residual(state, batch, in, NULL, out, ws, prof);
}

static const struct dlas_primitive_ops pw_ops = {
    sizeof(struct dlas_primitive_ops),
    "conv2d",
    "cpu",
    pw_supports,
    pw_prepare,
    pw_workspace,
    pw_run,
    pw_release,
    DLAS_PRIM_ACTIVATION | DLAS_PRIM_RESIDUAL,
    NULL, /* run_int8: fp32 only */
    pw_run_residual,
    NULL, /* takes_prologue */
    NULL, /* run_prologue: the plan runs a batchnorm before it as a pass */
    NULL, /* set_layouts: NCHW only */
};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_PRIMITIVE, NAME,
     "1x1 convolution as a GEMM over the NCHW input: weights packed once, no im2col, bias "
     "and activation in registers; any stride, groups",
     "F. G. Van Zee, R. A. van de Geijn. BLIS: A Framework for Rapidly Instantiating BLAS "
     "Functionality. ACM TOMS 41(3), 2015; T. M. Low et al. Analytical Modeling Is Enough "
     "for High-Performance BLIS. ACM TOMS 43(2), 2016",
     pw_params, &pw_ops},
};

DLAS_PLUGIN(NAME, "0.1.0", "1x1 convolution as a packed-weight GEMM (no im2col, no BLAS)",
            components)
