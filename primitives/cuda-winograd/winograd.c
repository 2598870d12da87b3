/* Primitive "cuda-winograd": Winograd minimal filtering F(2x2,3x3) and
 * F(4x4,3x3) (A. Lavin, S. Gray, Fast Algorithms for Convolutional Neural
 * Networks, CVPR 2016) on the GPU, for 3x3, stride-1, undilated, ungrouped
 * layers. The filter transform U = G g G^T is done once at prepare (in
 * double on the host); per run, own kernels transform the input tiles
 * (V = B^T d B) and the outputs (A^T M A, bias and activation), and the
 * alpha^2 channel reductions M = U V are one strided-batched cuBLAS SGEMM
 * (as in the paper's own GPU implementation, where they are batched GEMMs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>

#include <dlas/plugin.h>

#include "../common/cuda_prim.h"
#include "kernels.h"

#define NAME "cuda-winograd"

struct state {
    struct cp_conv c; /* c.w: the transformed weights U[xi][k][c] */
    cublasHandle_t blas;
    struct cwg_geom G;
    int alpha;
    int64_t chunk; /* images per pass */
};

static int tile_of(const struct dlas_params *p) { return p ? (int)dlas_param_int(p, "tile") : 4; }

static int supports(const struct dlas_conv_desc *d, const struct dlas_params *p, char *why,
                    size_t len)
{
    int rc = cp_check_desc(d, why, len);
    if (rc)
        return rc;
    int m = tile_of(p);
    if (m != 2 && m != 4) {
        snprintf(why, len, "tile = %d is not 2 or 4", m);
        return DLAS_ERR_INVALID;
    }
    if (d->kh != 3 || d->kw != 3 || d->stride_h != 1 || d->stride_w != 1 || d->dil_h != 1 ||
        d->dil_w != 1 || d->groups != 1) {
        snprintf(why, len, "Winograd F(%dx%d,3x3) needs 3x3, stride 1, no dilation, no groups", m,
                 m);
        return DLAS_ERR_UNSUPPORTED;
    }
    if (d->in_c > INT32_MAX || d->out_c > INT32_MAX) {
        snprintf(why, len, "channels beyond cuBLAS's int range");
        return DLAS_ERR_UNSUPPORTED;
    }
    return DLAS_OK;
}

/* U = G g G^T for every (k, c), laid out U[xi][k][c] for the GEMMs. */
static void filter_transform(const float *w, int64_t K, int64_t C, int m, float *u)
{
    static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    static const double G4[6][3] = {{1.0 / 4, 0, 0},
                                    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                    {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                    {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                    {0, 0, 1}};
    const int A = m + 2;
    for (int64_t k = 0; k < K; k++)
        for (int64_t c = 0; c < C; c++) {
            const float *g = w + (k * C + c) * 9;
            double t[6][3];
            for (int r = 0; r < A; r++)
                for (int j = 0; j < 3; j++) {
                    double s = 0;
                    for (int i = 0; i < 3; i++)
                        s += (m == 2 ? G2[r][i] : G4[r][i]) * g[i * 3 + j];
                    t[r][j] = s;
                }
            for (int r = 0; r < A; r++)
                for (int q = 0; q < A; q++) {
                    double s = 0;
                    for (int j = 0; j < 3; j++)
                        s += t[r][j] * (m == 2 ? G2[q][j] : G4[q][j]);
                    u[((int64_t)(r * A + q) * K + k) * C + c] = (float)s;
                }
        }
}

static int prepare(const struct dlas_host *host, const struct dlas_backend *be,
                   const struct dlas_conv_desc *d, const float *weight, const float *bias,
                   const struct dlas_params *p, void **out)
{
    *out = NULL;
    struct state *s;
    int rc = cp_conv_new(NAME, supports, be, d, p, sizeof *s, (void **)&s);
    if (rc)
        return rc;
    cublasHandle_t h = cp_handle(be, NAME, DLAS_NATIVE_CUBLAS, "cuBLAS");
    if (!h)
        return cp_conv_finish(DLAS_ERR_UNAVAILABLE, s, cp_conv_release, out);
    const int m = tile_of(p);
    s->blas = h;
    s->alpha = m + 2;
    s->G = (struct cwg_geom){d->in_c, d->in_h, d->in_w, d->out_c, d->out_h, d->out_w,
                             d->pad_h, d->pad_w, m, (d->out_h + m - 1) / m,
                             (d->out_w + m - 1) / m, d->activation};
    int64_t per_img = (int64_t)s->alpha * s->alpha * (d->in_c + d->out_c) * s->G.tiles_h *
                      s->G.tiles_w * (int64_t)sizeof(float);
    int64_t chunk = p ? dlas_param_int(p, "images") : 0;
    if (chunk <= 0)
        chunk = ((p ? dlas_param_int(p, "workspace_mb") : 1024) << 20) / per_img;
    s->chunk = chunk < 1 ? 1 : chunk > d->batch ? d->batch : chunk;
    const size_t un = (size_t)(s->alpha * s->alpha * d->out_c * d->in_c);
    float *u = malloc(un * sizeof *u);
    if (!u)
        rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
    if (!rc) {
        filter_transform(weight, d->out_c, d->in_c, m, u);
        rc = cp_conv_upload(&s->c, NAME, u, un, bias);
    }
    free(u);
    return cp_conv_finish(rc, s, cp_conv_release, out);
}

static size_t workspace(void *st, int64_t batch)
{
    struct state *s = st;
    int64_t imgs = batch < s->chunk ? batch : s->chunk;
    return (size_t)((int64_t)s->alpha * s->alpha * (s->c.d.in_c + s->c.d.out_c) * imgs *
                    s->G.tiles_h * s->G.tiles_w) *
           sizeof(float);
}

static int run(void *st, int64_t batch, const float *in, float *out, void *ws,
               struct dlas_profile *prof)
{
    struct state *s = st;
    const struct dlas_conv_desc *d = &s->c.d;
    int rc = cp_conv_batch(&s->c, NAME, batch);
    if (rc)
        return rc;
    const int64_t A2 = (int64_t)s->alpha * s->alpha, C = d->in_c, K = d->out_c;
    const int64_t tiles = s->G.tiles_h * s->G.tiles_w;
    const float one = 1.0f, zero = 0.0f;
    for (int64_t i0 = 0; !rc && i0 < batch; i0 += s->chunk) {
        int64_t imgs = batch - i0 < s->chunk ? batch - i0 : s->chunk, P = imgs * tiles;
        float *V = ws, *M = (float *)ws + A2 * C * P;
        if (P > INT32_MAX)
            return dlas_error(DLAS_ERR_UNSUPPORTED, NAME ": %lld tiles in one GEMM",
                              (long long)P);
        rc = cp_cuda(cwg_input(s->c.stream, &s->G, imgs, in + i0 * C * d->in_h * d->in_w, V), NAME,
                     "input transform");
        /* M[xi] (K x P) = U[xi] (K x C) V[xi] (C x P), row-major; column-major
         * M^T (P x K) = V^T (P x C) U^T (C x K) */
        cublasStatus_t bs =
            rc ? CUBLAS_STATUS_SUCCESS
               : cublasSgemmStridedBatched(s->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)P, (int)K,
                                           (int)C, &one, V, (int)P, C * P, s->c.w, (int)C, K * C,
                                           &zero, M, (int)P, K * P, (int)A2);
        if (!rc && bs != CUBLAS_STATUS_SUCCESS)
            rc = dlas_error(DLAS_ERR_INTERNAL, NAME ": batched GEMM: %s",
                            cublasGetStatusString(bs));
        if (!rc)
            rc = cp_cuda(cwg_output(s->c.stream, &s->G, imgs, M, s->c.b,
                                    out + i0 * K * d->out_h * d->out_w),
                         NAME, "output transform");
    }
    return rc;
}

static const struct dlas_param_spec params[] = {
    {"tile", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "4", 2, 4, NULL,
     "output tile m of F(m x m, 3x3): 2 or 4 (4: 4x fewer multiplications than direct, more "
     "rounding)"},
    {"images", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, 256, NULL,
     "images per transform + GEMM pass; 0 = as many as workspace_mb holds"},
    {"workspace_mb", DLAS_PARAM_INT, 0, "1024", 1, 65536, NULL,
     "transformed-tile workspace when images = 0, MiB"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_primitive_ops ops =
    PRIM_CONV_OPS("cuda", supports, prepare, workspace, run, cp_conv_release);

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_PRIMITIVE, NAME,
     "Winograd F(2x2,3x3) / F(4x4,3x3): own transform kernels, cuBLAS batched GEMMs",
     "A. Lavin, S. Gray, Fast Algorithms for Convolutional Neural Networks, CVPR 2016", params,
     &ops},
};

DLAS_PLUGIN(NAME, "0.1.0", "Winograd convolution on the GPU", components)
