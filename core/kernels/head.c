/* The fused head of head.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "head.h"
#include "pc_kernels.h"
#include "pw_kernels.h"

/* Outputs of the linear layer a register block covers: 8 vectors. */
#define LB 8

struct hd_kernel {
    struct hd_desc d;
    int b, vw;             /* the conv's register block: b vectors x vw pixels */
    int64_t nblk_in, lanes, n_groups, mid_v;
    int64_t out_v, out_pad; /* the linear outputs in vectors, padded */
    int64_t x_img;          /* packed input floats per image */
    int in_blocked;         /* the input comes packed (hd_set_in_blocked) */
    float *wc, *bc;         /* [group][in_c][lanes], [group * lanes] */
    float *wl, *bl;         /* [group][out_v / LB][lanes][<= LB * 16], [out_pad] */
};

void hd_free(struct hd_kernel *k)
{
    if (!k)
        return;
    pc_free_floats(k->wc);
    pc_free_floats(k->bc);
    pc_free_floats(k->wl);
    pc_free_floats(k->bl);
    free(k);
}

static struct hd_kernel *fail(struct hd_kernel *k, char *why, size_t len, const char *msg)
{
    hd_free(k);
    if (why && len)
        snprintf(why, len, "%s", msg);
    return NULL;
}

/* Vectors of the linear layer's block j (the last may be short). */
static int64_t block_vectors(const struct hd_kernel *k, int64_t j)
{
    return k->out_v - j * LB < LB ? k->out_v - j * LB : LB;
}

/* The linear weights of group g, block j, as [lane][nv * 16]. */
static float *wl_block(const struct hd_kernel *k, int64_t g, int64_t j)
{
    return k->wl + (g * k->out_pad + j * LB * PC_VL) * k->lanes;
}

struct hd_kernel *hd_prepare(const struct hd_desc *d, const struct hd_weights *w, char *why,
                             size_t why_len)
{
    if (d->in_c < 1 || d->hw < 1 || d->mid_c < 1 || d->out_c < 1)
        return fail(NULL, why, why_len, "empty shape");
    if (d->in_c > (1 << 20) || d->hw > (1 << 24) || d->mid_c > (1 << 20) || d->out_c > (1 << 20))
        return fail(NULL, why, why_len, "shape too large");
    if (!w->wc || !w->wl)
        return fail(NULL, why, why_len, "missing weights");
    struct hd_kernel *k = calloc(1, sizeof *k);
    if (!k)
        return fail(NULL, why, why_len, "out of memory");
    k->d = *d;
    k->mid_v = pc_ceil_div(d->mid_c, PC_VL);
    /* the widest register block that wastes no lanes: every broadcast input
     * feeds b multiply-adds */
    k->b = PC_AUTO_MAX_B;
    while (k->b > 1 && k->mid_v % k->b)
        k->b--;
    k->vw = pw_max_vw(k->b);
    k->lanes = (int64_t)k->b * PC_VL;
    k->n_groups = pc_ceil_div(d->mid_c, k->lanes);
    k->nblk_in = pc_ceil_div(d->in_c, PC_VL);
    k->x_img = k->nblk_in * d->hw * PC_VL;
    k->out_v = pc_ceil_div(d->out_c, PC_VL);
    k->out_pad = k->out_v * PC_VL;
    if (!(k->wc = pc_alloc_floats(pc_packed_weights_floats(d->mid_c, d->in_c, 1, 1, k->b))) ||
        !(k->bc = pc_alloc_floats(k->n_groups * k->lanes)) ||
        !(k->wl = pc_alloc_floats(k->n_groups * k->lanes * k->out_pad)) ||
        !(k->bl = pc_alloc_floats(k->out_pad)))
        return fail(k, why, why_len, "out of memory");
    pc_pack_weights(w->wc, d->mid_c, d->in_c, 1, 1, k->b, k->wc);
    if (w->bc)
        memcpy(k->bc, w->bc, (size_t)d->mid_c * sizeof(float));
    for (int64_t m = 0; m < d->mid_c; m++) {
        const int64_t g = m / k->lanes, c = m % k->lanes;
        for (int64_t o = 0; o < d->out_c; o++) {
            const int64_t j = o / (LB * PC_VL);
            wl_block(k, g, j)[c * block_vectors(k, j) * PC_VL + o % (LB * PC_VL)] =
                w->wl[o * d->mid_c + m];
        }
    }
    if (w->bl)
        memcpy(k->bl, w->bl, (size_t)d->out_c * sizeof(float));
    return k;
}

size_t hd_workspace_floats(const struct hd_kernel *k, int64_t batch)
{
    return (size_t)(batch * k->x_img + batch * k->n_groups * k->out_pad + PC_VL);
}

void hd_set_in_blocked(struct hd_kernel *k, int on) { k->in_blocked = on != 0; }

int64_t hd_items(const struct hd_kernel *k, enum hd_phase ph, int64_t batch)
{
    switch (ph) {
    case HD_PACK: return k->in_blocked ? 0 : batch * k->nblk_in;
    case HD_MAIN: return k->n_groups;
    case HD_SUM: return batch * pc_ceil_div(k->out_v, 4);
    default: return 0;
    }
}

static void pack_items(const struct hd_kernel *k, const float *in, float *x, int64_t i0,
                       int64_t i1)
{
    const struct hd_desc *d = &k->d;
    for (int64_t it = i0; it < i1; it++) {
        const int64_t n = it / k->nblk_in, blk = it % k->nblk_in;
        const int64_t c0 = blk * PC_VL, nc = d->in_c - c0 < PC_VL ? d->in_c - c0 : PC_VL;
        float *dst = x + (n * k->nblk_in + blk) * d->hw * PC_VL;
        const float *src = in + (n * d->in_c + c0) * d->hw;
        for (int64_t p = 0; p < d->hw; p++) {
            int64_t c = 0;
            for (; c < nc; c++)
                dst[p * PC_VL + c] = src[c * d->hw + p];
            for (; c < PC_VL; c++)
                dst[p * PC_VL + c] = 0.0f;
        }
    }
}

/* NN native vectors (pc_kernels.h) of output channels, rows of the weights
 * ws floats apart: dst = sum over c < nc of pooled[c] * w[c]. */
static inline __attribute__((always_inline)) void linear_part(const float *w, int64_t ws,
                                                              const float *pooled, int64_t nc,
                                                              float *dst, const int NN)
{
    pc_vn acc[LB];
#pragma GCC unroll 8
    for (int v = 0; v < NN; v++)
        acc[v] = (pc_vn){0};
    for (int64_t c = 0; c < nc; c++, w += ws) {
        const pc_vn x = pc_splatn(pooled[c]);
#pragma GCC unroll 8
        for (int v = 0; v < NN; v++)
            acc[v] += pc_loadn(w + v * PC_NL) * x;
    }
#pragma GCC unroll 8
    for (int v = 0; v < NN; v++)
        pc_storen(dst + v * PC_NL, acc[v]);
}

/* Channels [0, nc) of group g (pooled features pooled[c]) times the linear
 * weights of block j: NV output vectors into dst, in parts of at most LB
 * native vectors (as many accumulators as AVX-512 or AVX2 registers hold
 * beside the broadcast). */
static inline __attribute__((always_inline)) void linear_block(const float *w,
                                                               const float *pooled, int64_t nc,
                                                               float *dst, const int NV)
{
    const int nn = NV * PC_NH;
#pragma GCC unroll 2
    for (int i = 0; i < nn; i += LB)
        linear_part(w + i * PC_NL, NV * PC_VL, pooled, nc, dst + i * PC_NL,
                    nn - i < LB ? nn - i : LB);
}

static void linear_group(const struct hd_kernel *k, int64_t g, const float *pooled, int64_t nc,
                         float *dst)
{
    for (int64_t j = 0; j * LB < k->out_v; j++) {
        const float *w = wl_block(k, g, j);
        float *o = dst + j * LB * PC_VL;
        switch (block_vectors(k, j)) {
        case 8: linear_block(w, pooled, nc, o, 8); break;
        case 7: linear_block(w, pooled, nc, o, 7); break;
        case 6: linear_block(w, pooled, nc, o, 6); break;
        case 5: linear_block(w, pooled, nc, o, 5); break;
        case 4: linear_block(w, pooled, nc, o, 4); break;
        case 3: linear_block(w, pooled, nc, o, 3); break;
        case 2: linear_block(w, pooled, nc, o, 2); break;
        default: linear_block(w, pooled, nc, o, 1); break;
        }
    }
}

/* Group g for every image: the conv's channels of the group over all
 * pixels, activated and pooled, then their share of the linear layer into
 * the group's row of partial sums. */
static void main_items(const struct hd_kernel *k, int64_t batch, const float *x, float *part,
                       int64_t i0, int64_t i1)
{
    const struct hd_desc *d = &k->d;
    float tile[PC_MAX_ACC * PC_VL] __attribute__((aligned(64)));
    float pooled[PC_MAX_B * PC_VL] __attribute__((aligned(64)));
    const float inv = 1.0f / (float)d->hw;
    for (int64_t g = i0; g < i1; g++) {
        const int64_t c0 = g * k->lanes;
        const int64_t nc = d->mid_c - c0 < k->lanes ? d->mid_c - c0 : k->lanes;
        const int nb = (int)pc_ceil_div(nc, PC_VL);
        struct pw_args a = {0};
        a.in_bs = d->hw * PC_VL;
        a.nblk = (int)k->nblk_in;
        a.cb_last = (int)(d->in_c - (k->nblk_in - 1) * PC_VL);
        a.w = k->wc + g * d->in_c * k->lanes;
        a.bias = k->bc + c0;
        a.out = tile;
        a.out_bs = (int64_t)k->vw * PC_VL;
        a.nb = nb;
        a.act = d->act;
        /* the group's linear weights asked for into L2 while its conv
         * runs on the first image, evenly over the conv's input blocks
         * (rounded up: the last requests may reach a few lines past them,
         * and a prefetch never faults) */
        const char *lw = (const char *)wl_block(k, g, 0);
        const int64_t l_lines = k->lanes * k->out_pad * (int64_t)sizeof(float) / 64;
        const int per = (int)pc_ceil_div(l_lines, pc_ceil_div(d->hw, k->vw) * k->nblk_in);
        for (int64_t n = 0; n < batch; n++) {
            pc_vn sum[PC_MAX_B * PC_NH] = {{0}};
            for (int64_t p0 = 0; p0 < d->hw; p0 += k->vw) {
                const int nv = (int)(d->hw - p0 < k->vw ? d->hw - p0 : k->vw);
                a.side = n == 0 ? lw + p0 / k->vw * k->nblk_in * per * 64 : NULL;
                a.side_lines = per;
                a.in = x + n * k->x_img + p0 * PC_VL;
                pw_kernel(nv, k->b)(&a);
                for (int i = 0; i < nb * PC_NH; i++)
                    for (int p = 0; p < nv; p++)
                        sum[i] += pc_loadn(tile + i / PC_NH * a.out_bs + p * PC_VL +
                                           i % PC_NH * PC_NL);
            }
            for (int i = 0; i < nb * PC_NH; i++)
                pc_storen(pooled + i * PC_NL, sum[i] * pc_splatn(inv));
            linear_group(k, g, pooled, nc, part + (n * k->n_groups + g) * k->out_pad);
        }
    }
}

static void sum_items(const struct hd_kernel *k, const float *part, float *out, int64_t i0,
                      int64_t i1)
{
    const int64_t per = pc_ceil_div(k->out_v, 4), out_c = k->d.out_c;
    for (int64_t it = i0; it < i1; it++) {
        const int64_t n = it / per, v0 = it % per * 4;
        const int64_t v1 = v0 + 4 < k->out_v ? v0 + 4 : k->out_v;
        for (int64_t v = v0 * PC_NH; v < v1 * PC_NH; v++) { /* native vectors */
            pc_vn s = pc_loadn(k->bl + v * PC_NL);
            for (int64_t g = 0; g < k->n_groups; g++)
                s += pc_loadn(part + (n * k->n_groups + g) * k->out_pad + v * PC_NL);
            float *o = out + n * out_c + v * PC_NL;
            if ((v + 1) * PC_NL <= out_c) {
                pc_storen(o, s);
            } else {
                for (int64_t l = 0; l < out_c - v * PC_NL; l++)
                    o[l] = s[l];
            }
        }
    }
}

void hd_run(const struct hd_kernel *k, enum hd_phase ph, int64_t batch, const float *in,
            float *out, float *ws, int64_t i0, int64_t i1)
{
    float *x = ws, *part = ws + batch * k->x_img;
    const float *xin = k->in_blocked ? in : x;
    switch (ph) {
    case HD_PACK: pack_items(k, in, x, i0, i1); break;
    case HD_MAIN: main_items(k, batch, xin, part, i0, i1); break;
    case HD_SUM: sum_items(k, part, out, i0, i1); break;
    default: break;
    }
}
