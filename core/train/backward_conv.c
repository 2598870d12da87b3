/* Convolution for training: forward, input gradient and weight gradient,
 * each by the cheapest of three means the layer allows:
 *   - direct kernels over a padded copy of the input (conv_direct.c; AVX-512,
 *     enough channels to fill their blocks): forward and weight gradient at
 *     any stride, input gradient at stride 1;
 *   - for a stride-1 input gradient, the stride-1 convolution of dy with the
 *     flipped, transposed weights, by im2col of dy + GEMM; the same columns
 *     then give the weight gradient by one more GEMM;
 *   - im2col + OpenBLAS GEMM (Chellapilla et al. 2006), with col2im for the
 *     input gradient of a strided layer.
 * Per image and group g, K = in_c/groups kh kw, N = out_h out_w, col the
 * K x N receptive fields: y = W col; dW += dy col^T; dcol = W^T dy.
 * Columns are rebuilt in backward rather than kept: they are kh kw times the
 * input.
 *
 * Images are dealt out in chunks (autograd_impl.h): each chunk sums its
 * images' weight gradients in its own buffer, and the buffers are added in
 * chunk order, so the result is the same for any thread count. */
#include <omp.h>
#include <string.h>

#include <cblas.h>

#include "ag_gemm.h"
#include "autograd_impl.h"
#include "../kernels/conv_cols.h"

enum { DW_IM2COL, DW_COLT, DW_DIRECT };
enum { DX_GEMM1X1, DX_COL2IM, DX_COLT, DX_DIRECT };

/* The direct kernels pay for blocks of 8 output and 16 input channels and
 * at least a 2x2 kernel; below these sizes GEMM wins. */
#define DIRECT_MIN_OUT 4
#define DIRECT_MIN_IN_DW 8
#define DIRECT_MIN_TAPS 4

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

int64_t ag_conv_setup(struct ag_node *x, int dx_needed, int64_t *wpack_floats,
                      int64_t *wflip_floats)
{
    const struct dlas_conv_desc *d = &x->cd;
    const int64_t G = d->groups, cpg = d->in_c / G, opg = d->out_c / G, T = d->kh * d->kw;
    const int s1 = d->stride_h == 1 && d->stride_w == 1;
    const int is1x1 = d->kh == 1 && d->kw == 1 && s1 && d->pad_h == 0 && d->pad_w == 0;
    x->col_floats = is1x1 ? 0 : cpg * T * d->out_h * d->out_w;
    *wpack_floats = *wflip_floats = 0;
    int64_t scratch = x->col_floats;

    /* forward */
    x->fwd_direct = T >= DIRECT_MIN_TAPS && opg >= DIRECT_MIN_OUT &&
                    cd_geom_init(&x->gf, cpg, opg, d->in_h, d->in_w, d->kh, d->kw, d->pad_h,
                                 d->pad_w, d->dil_h, d->dil_w, d->stride_h, d->stride_w);
    if (x->fwd_direct) {
        *wpack_floats = G * cd_pack_floats(&x->gf);
        scratch = max64(scratch, cd_forward_scratch(&x->gf));
    }
    /* (gf still serves the weight gradient) */
    x->fwd_cv = x->fwd_direct &&
                cv_geom_init(&x->cf, cpg, opg, d->in_h, d->in_w, d->kh, d->kw, d->pad_h,
                             d->pad_w, d->dil_h, d->dil_w, d->stride_h, d->stride_w);
    if (x->fwd_cv) {
        *wpack_floats = G * cv_pack_floats(&x->cf);
        scratch = max64(scratch, cv_forward_scratch(&x->cf));
    }

    /* the input gradient as a stride-1 convolution of dy */
    int64_t ph = (int64_t)d->dil_h * (d->kh - 1) - d->pad_h;
    int64_t pw = (int64_t)d->dil_w * (d->kw - 1) - d->pad_w;
    int gather = !is1x1 && s1 && ph >= 0 && pw >= 0;
    if (gather) {
        struct dlas_conv_desc t = *d;
        t.in_c = d->out_c;
        t.in_h = d->out_h;
        t.in_w = d->out_w;
        t.out_c = d->in_c;
        t.pad_h = (int)ph;
        t.pad_w = (int)pw;
        t.has_bias = 0;
        gather = dlas_conv_desc_finish(&t) == DLAS_OK && t.out_h == d->in_h && t.out_w == d->in_w;
        x->cdt = t;
    }
    if (is1x1)
        x->dx_mode = DX_GEMM1X1;
    else if (gather && T >= DIRECT_MIN_TAPS && cpg >= DIRECT_MIN_OUT &&
             cd_geom_init(&x->gt, opg, cpg, d->out_h, d->out_w, d->kh, d->kw, (int)ph, (int)pw,
                          d->dil_h, d->dil_w, 1, 1))
        x->dx_mode = DX_DIRECT;
    else
        x->dx_mode = gather ? DX_COLT : DX_COL2IM;
    x->dx_cv = x->dx_mode == DX_DIRECT &&
               cv_geom_init(&x->ct, opg, cpg, d->out_h, d->out_w, d->kh, d->kw, (int)ph, (int)pw,
                            d->dil_h, d->dil_w, 1, 1);
    if (dx_needed && x->dx_cv) { /* flipped weights, then packed */
        *wflip_floats = G * (cpg * opg * T + cv_pack_floats(&x->ct));
        scratch = max64(scratch, cv_forward_scratch(&x->ct));
    } else if (dx_needed && x->dx_mode == DX_DIRECT) {
        *wflip_floats = G * cd_pack_floats(&x->gt);
        scratch = max64(scratch, cd_forward_scratch(&x->gt));
    }

    /* the weight gradient */
    const int64_t wn = d->out_c * cpg * T;
    if (x->fwd_direct && cpg >= DIRECT_MIN_IN_DW) {
        x->dw_mode = DW_DIRECT;
        x->part_floats = G * cd_dw_floats(&x->gf);
        scratch = max64(scratch, cd_dw_scratch(&x->gf));
    } else if (dx_needed && x->dx_mode == DX_COLT) {
        /* the columns of dy are made for dx anyway */
        x->dw_mode = DW_COLT;
        x->part_floats = wn;
    } else {
        x->dw_mode = DW_IM2COL;
        x->part_floats = wn;
    }
    if (dx_needed && x->dx_mode == DX_COLT) {
        x->colt_floats = opg * T * d->in_h * d->in_w;
        *wflip_floats = wn;
        scratch = max64(scratch, x->colt_floats);
    }
    return scratch;
}

/* ---- forward ------------------------------------------------------------- */

static void forward_image(const struct ag_node *nd, const float *x, const float *w,
                          const float *bias, float *y, float *ws)
{
    const struct dlas_conv_desc *d = &nd->cd;
    const int64_t G = d->groups, cpg = d->in_c / G, opg = d->out_c / G;
    const int64_t K = cpg * d->kh * d->kw, N = d->out_h * d->out_w;
    for (int64_t g = 0; g < G; g++) {
        const float *src = x + g * cpg * d->in_h * d->in_w;
        float *dst = y + g * opg * N;
        const float *bg = bias ? bias + g * opg : NULL;
        if (nd->fwd_cv) {
            cv_forward(&nd->cf, src, nd->wpack + g * cv_pack_floats(&nd->cf), bg, dst, 0, ws);
            continue;
        }
        if (nd->fwd_direct) {
            cd_forward(&nd->gf, src, nd->wpack + g * cd_pack_floats(&nd->gf), bg, dst, 0, ws);
            continue;
        }
        const float *cols = src;
        if (nd->col_floats) {
            ag_im2col(d, cpg, src, ws);
            cols = ws;
        }
        float beta = 0.0f;
        if (bg) {
            for (int64_t o = 0; o < opg; o++)
                for (int64_t j = 0; j < N; j++)
                    dst[o * N + j] = bg[o];
            beta = 1.0f;
        }
        ag_sgemm(CblasNoTrans, CblasNoTrans, (int)opg, (int)N, (int)K, 1.0f,
                    w + g * opg * K, (int)K, cols, (int)N, beta, dst, (int)N);
    }
}

int ag_conv_forward(struct dlas_autograd *a, int id)
{
    struct ag_node *nd = &a->nd[id];
    const struct dlas_conv_desc *d = &nd->cd;
    const float *x = a->nd[nd->n->inputs[0]].act, *w = dlas_f32(&nd->n->weight);
    const float *bias = d->has_bias ? dlas_f32(&nd->n->bias) : NULL;
    const int64_t in_n = d->in_c * d->in_h * d->in_w, out_n = d->out_c * d->out_h * d->out_w;
    const int64_t B = a->batch, G = d->groups, cpg = d->in_c / G, opg = d->out_c / G;
    /* the weights change every step: pack them once per pass */
    if (nd->fwd_cv)
        for (int64_t g = 0; g < G; g++)
            cv_pack(&nd->cf, w + g * opg * cpg * d->kh * d->kw,
                    nd->wpack + g * cv_pack_floats(&nd->cf));
    else if (nd->fwd_direct)
        for (int64_t g = 0; g < G; g++)
            cd_pack(&nd->gf, w + g * opg * cpg * d->kh * d->kw, 0,
                    nd->wpack + g * cd_pack_floats(&nd->gf));
#pragma omp parallel num_threads(a->threads)
    {
        float *ws = a->ws + (int64_t)omp_get_thread_num() * a->ws_floats;
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < B; b++)
            forward_image(nd, x + b * in_n, w, bias, nd->act + b * out_n, ws);
    }
    return DLAS_OK;
}

/* ---- backward ------------------------------------------------------------ */

/* W'[g][ci][co][t] = W[g*opg + co][ci][T-1-t]: the weights of the stride-1
 * convolution that maps dy to dx, for the GEMM on dy's columns. */
static void flip_weights(const struct ag_node *nd, const float *w)
{
    const struct dlas_conv_desc *d = &nd->cd;
    const int64_t G = d->groups, cpg = d->in_c / G, opg = d->out_c / G, kk = d->kh * d->kw;
    for (int64_t g = 0; g < G; g++)
        for (int64_t ci = 0; ci < cpg; ci++)
            for (int64_t co = 0; co < opg; co++) {
                const float *src = w + ((g * opg + co) * cpg + ci) * kk;
                float *dst = nd->wflip + ((g * cpg + ci) * opg + co) * kk;
                for (int64_t k = 0; k < kk; k++)
                    dst[k] = src[kk - 1 - k];
            }
}

/* One image's part: dW (in the chunk's layout) and db added into dw/db
 * (dw NULL: no parameter gradients), dx written or added.
 *
 * DW_COLT: with colT the columns of dy for the stride-1 convolution giving
 * dx, colT[co, kh-1-ky, kw-1-kx][p] is dy where input position p meets tap
 * (ky, kx), so
 *     dx[g]   = W'[g] colT       dW'[g] += x[g] colT^T
 * with dW' the flipped, transposed dW, put back in order in the reduction. */
static void backward_image(const struct ag_node *nd, const float *x, const float *w,
                           const float *dy, float *dx, int acc, float *dw, float *db, float *ws)
{
    const struct dlas_conv_desc *d = &nd->cd;
    const int64_t G = d->groups, cpg = d->in_c / G, opg = d->out_c / G;
    const int64_t T = d->kh * d->kw, K = cpg * T, N = d->out_h * d->out_w;
    const int64_t in_hw = d->in_h * d->in_w;
    for (int64_t g = 0; g < G; g++) {
        const float *src = x + g * cpg * in_hw;
        const float *dyg = dy + g * opg * N;
        float *dxg = dx ? dx + g * cpg * in_hw : NULL;
        const float beta = acc ? 1.0f : 0.0f;
        /* weight gradient (and, on the colT path, dx with it) */
        if (!dw) {
            /* activation gradients only: dx below (DX_COLT serves DW_COLT's layers) */
        } else if (nd->dw_mode == DW_DIRECT) {
            cd_dw(&nd->gf, src, dyg, dw + g * cd_dw_floats(&nd->gf), ws);
        } else if (nd->dw_mode == DW_COLT) {
            const int64_t Kt = opg * T;
            ag_im2col(&nd->cdt, opg, dyg, ws);
            ag_sgemm(CblasNoTrans, CblasTrans, (int)cpg, (int)Kt, (int)in_hw,
                        1.0f, src, (int)in_hw, ws, (int)in_hw, 1.0f, dw + g * cpg * Kt, (int)Kt);
            if (dxg)
                ag_sgemm(CblasNoTrans, CblasNoTrans, (int)cpg, (int)in_hw,
                            (int)Kt, 1.0f, nd->wflip + g * cpg * Kt, (int)Kt, ws, (int)in_hw,
                            beta, dxg, (int)in_hw);
            continue;
        } else {
            const float *cols = src;
            if (nd->col_floats) {
                ag_im2col(d, cpg, src, ws);
                cols = ws;
            }
            ag_sgemm(CblasNoTrans, CblasTrans, (int)opg, (int)K, (int)N, 1.0f,
                        dyg, (int)N, cols, (int)N, 1.0f, dw + g * opg * K, (int)K);
        }
        if (!dxg)
            continue;
        switch (nd->dx_mode) {
        case DX_DIRECT:
            if (nd->dx_cv)
                cv_forward(&nd->ct, dyg, nd->wflip + G * cpg * opg * T + g * cv_pack_floats(&nd->ct),
                           NULL, dxg, acc, ws);
            else
                cd_forward(&nd->gt, dyg, nd->wflip + g * cd_pack_floats(&nd->gt), NULL, dxg, acc,
                           ws);
            break;
        case DX_GEMM1X1: /* dx = W^T dy */
            ag_sgemm(CblasTrans, CblasNoTrans, (int)K, (int)N, (int)opg, 1.0f,
                        w + g * opg * K, (int)K, dyg, (int)N, beta, dxg, (int)N);
            break;
        case DX_COLT: { /* dW came another way (or none); the columns of dy give dx */
            const int64_t Kt = opg * T;
            ag_im2col(&nd->cdt, opg, dyg, ws);
            ag_sgemm(CblasNoTrans, CblasNoTrans, (int)cpg, (int)in_hw, (int)Kt,
                        1.0f, nd->wflip + g * cpg * Kt, (int)Kt, ws, (int)in_hw, beta, dxg,
                        (int)in_hw);
            break;
        }
        default:
            ag_sgemm(CblasTrans, CblasNoTrans, (int)K, (int)N, (int)opg, 1.0f,
                        w + g * opg * K, (int)K, dyg, (int)N, 0.0f, ws, (int)N);
            if (!acc)
                memset(dxg, 0, (size_t)(cpg * in_hw) * sizeof(float));
            ag_col2im(d, cpg, ws, dxg);
            break;
        }
    }
    if (db)
        for (int64_t o = 0; o < d->out_c; o++) {
            const float *row = dy + o * N;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (int64_t j = 0; j < N; j++)
                s += row[j];
            db[o] += s;
        }
}

int ag_conv_needs_map(const struct ag_node *x) { return x->dw_mode != DW_IM2COL; }

/* Where each element of a chunk's weight-gradient buffer goes in dW. */
void ag_conv_fill_map(const struct ag_node *x, int32_t *map)
{
    const struct dlas_conv_desc *d = &x->cd;
    const int64_t G = d->groups, cpg = d->in_c / G, opg = d->out_c / G, T = d->kh * d->kw;
    for (int64_t i = 0; i < x->part_floats; i++) {
        int64_t to = i;
        if (x->dw_mode == DW_COLT) { /* [g][ci][co][T-1-t] */
            int64_t k = i % T, r = i / T;
            int64_t co = r % opg;
            r /= opg;
            int64_t ci = r % cpg, g = r / cpg;
            to = ((g * opg + co) * cpg + ci) * T + (T - 1 - k);
        } else if (x->dw_mode == DW_DIRECT) { /* [g][co][t of T9][ci of C16] */
            const struct cd_geom *gf = &x->gf;
            const int64_t per = cd_dw_floats(gf);
            int64_t g = i / per, r = i % per;
            int64_t ci = r % gf->C16, t = (r / gf->C16) % gf->T9, co = r / (gf->C16 * gf->T9);
            to = ci >= cpg || t >= T ? -1 : ((g * opg + co) * cpg + ci) * T + t;
        }
        map[i] = (int32_t)to;
    }
}

int ag_conv_backward(struct dlas_autograd *a, int id)
{
    struct ag_node *nd = &a->nd[id];
    const struct dlas_conv_desc *d = &nd->cd;
    const int in = nd->n->inputs[0];
    const float *x = a->nd[in].act, *w = dlas_f32(&nd->n->weight);
    int acc = 0;
    float *dx = ag_grad_dst(a, in, &acc);
    const int64_t G = d->groups, cpg = d->in_c / G, opg = d->out_c / G, T = d->kh * d->kw;
    const int64_t in_n = d->in_c * d->in_h * d->in_w, out_n = d->out_c * d->out_h * d->out_w;
    const int64_t pn = nd->part_floats, bn = d->has_bias ? d->out_c : 0;
    const int64_t B = a->batch, chunks = ag_chunks(B);
    const int want_dw = !(a->flags & DLAS_AG_ACT_GRAD_ONLY);
    if (nd->wflip && nd->dx_cv) {
        flip_weights(nd, w);
        for (int64_t g = 0; g < G; g++)
            cv_pack(&nd->ct, nd->wflip + g * cpg * opg * T,
                    nd->wflip + G * cpg * opg * T + g * cv_pack_floats(&nd->ct));
    } else if (nd->wflip && nd->dx_mode == DX_DIRECT)
        for (int64_t g = 0; g < G; g++)
            cd_pack(&nd->gt, w + g * opg * cpg * T, 1, nd->wflip + g * cd_pack_floats(&nd->gt));
    else if (nd->wflip)
        flip_weights(nd, w);
#pragma omp parallel num_threads(a->threads)
    {
        float *ws = a->ws + (int64_t)omp_get_thread_num() * a->ws_floats;
#pragma omp for schedule(dynamic, 1)
        for (int64_t c = 0; c < chunks; c++) {
            float *dw = want_dw ? a->pg + c * a->pg_floats : NULL, *db = dw && bn ? dw + pn : NULL;
            if (dw)
                memset(dw, 0, (size_t)(pn + bn) * sizeof(float));
            int64_t b0, b1;
            ag_range(B, (int)chunks, (int)c, &b0, &b1);
            for (int64_t b = b0; b < b1; b++)
                backward_image(nd, x + b * in_n, w, nd->grad + b * out_n,
                               dx ? dx + b * in_n : NULL, acc, dw, db, ws);
        }
        /* the chunks' parts, added in chunk order */
        float *gw = dlas_f32(&nd->gw), *gb = bn ? dlas_f32(&nd->gb) : NULL;
        const float *pg = a->pg;
        const int64_t stride = a->pg_floats;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < (want_dw ? pn + bn : 0); i++) {
            int64_t to = i >= pn ? -2 : nd->dw_map ? nd->dw_map[i] : i;
            if (to == -1)
                continue;
            float s = 0.0f;
            for (int64_t c = 0; c < chunks; c++)
                s += pg[c * stride + i];
            if (to >= 0)
                gw[to] += s;
            else
                gb[i - pn] += s;
        }
    }
    if (dx)
        ag_grad_done(a, in);
    return DLAS_OK;
}
