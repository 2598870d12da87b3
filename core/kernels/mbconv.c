/* The fused mobile block of mbconv.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbconv.h"
#include "pc_kernels.h"
#include "pw_kernels.h"

struct mb_block {
    struct mb_desc d;
    int64_t oh, ow, ohw;
    int64_t nblk_in, nblk_hid;
    /* hidden phase: G hidden blocks a group (the expansion's B), vw pixels a call */
    int g_b, g_vw;
    int64_t n_groups;
    int64_t n_bands; /* of output rows a (image, group), set by mb_items */
    int rows; /* the row schedule (mbconv.h): hidden and projection a row at a time */
    int ek, es;       /* the expansion's kernel size (1 or 3) and stride */
    int64_t eh, ew;   /* the expanded (depthwise input) map */
    int64_t *e_off;   /* ek 3: each (input block, tap, channel)'s offset in the padded input */
    /* projection: B vectors of output channels, vw pixels a call, pixels an item */
    int p_b, p_vw;
    int64_t n_obp, pix_chunk, n_chunks;
    float *we, *be; /* [group][blk_in][c][G*16], [group][G*16] */
    float *wd, *bd; /* [blk_hid][9][16], [blk_hid][16] */
    float *wp, *bp; /* [ob][blk_hid][c][B*16], [ob][B*16] */
    /* workspace geometry (floats) */
    int64_t x_rows, x_cols; /* the packed input's window: padded without expansion */
    int64_t x_img, d_img, ring; /* ring: a thread's scratch (rows: + one D row) */
    /* layouts (mb_set_io) */
    int in_blocked, out_pad; /* out_pad -1: NCHW output */
    int64_t nblk_out, o_rows, o_cols, o_img;
};

void mb_free(struct mb_block *b)
{
    if (!b)
        return;
    pc_free_floats(b->we);
    pc_free_floats(b->be);
    pc_free_floats(b->wd);
    pc_free_floats(b->bd);
    pc_free_floats(b->wp);
    pc_free_floats(b->bp);
    free(b->e_off);
    free(b);
}

int64_t mb_out_h(const struct mb_block *b) { return b->oh; }
int64_t mb_out_w(const struct mb_block *b) { return b->ow; }

/* B vectors for oc channels: the fewest wasted lanes, then the most vectors
 * (each broadcast input feeds B FMAs), up to PC_AUTO_MAX_B. */
static int choose_b(int64_t oc)
{
    int64_t nv = pc_ceil_div(oc, PC_VL);
    int best = 1;
    int64_t best_waste = -1;
    for (int b = 1; b <= PC_AUTO_MAX_B; b++) {
        int64_t waste = pc_ceil_div(nv, b) * b - nv;
        if (best_waste < 0 || waste <= best_waste) {
            best = b;
            best_waste = waste;
        }
    }
    return best;
}

/* The 1x1 kernel for nv pixels of a block of B vectors holding nb of them,
 * the last block of `channels` outputs when `last`: the half kernel where
 * that block ends in 1..8 channels (pw_kernels.h), as MobileNet v2's 24. */
static pw_fn pw_for(int nv, int B, int nb, int64_t channels, int last)
{
    return last && nb == B && pw_half_tail(channels) ? pw_kernel_half(nv, B) : pw_kernel(nv, B);
}

/* slack after the packed input and D: none is read (every kernel call has
 * its exact width), but a vector of room keeps the last one honest */
#define SLACK (PC_VL * PC_VL)

/* The row schedule pays when an image's depthwise output would not stay in
 * a core's L2 beside everything else (the group schedule writes it all
 * before projecting it, and the other core reads half of it) and there are
 * rows enough for a band of four per thread, two at least (with fewer
 * rows, threads would idle at batch 1). (Measured on MobileNet-v2, 2
 * threads, batch 1, inside the whole plan: the 112x112 to 14x14 blocks gain
 * 3-20%; the 7x7 ones, D 113-188 KiB, would lose up to 2x. Split into two
 * bands of 3 and 4 rows once bands shared their edge rows, the 7x7 blocks
 * still ran 2-10% slower than by channel groups.) */
#define ROWS_MIN_D_BYTES (256 << 10)
static int rows_pay(const struct mb_desc *d, int64_t oh, int64_t nblk_hid, int64_t ohw)
{
    const int64_t t = d->threads > 2 ? d->threads : 2;
    return nblk_hid * ohw * PC_VL * (int64_t)sizeof(float) >= ROWS_MIN_D_BYTES && oh >= 4 * t;
}

static int fail(char *why, size_t len, const char *msg)
{
    if (why && len)
        snprintf(why, len, "%s", msg);
    return -1;
}

static int check(const struct mb_desc *d, char *why, size_t len)
{
    if (d->in_c < 1 || d->h < 1 || d->w < 1 || d->hid_c < 1 || d->out_c < 1)
        return fail(why, len, "empty shape");
    if (d->stride != 1 && d->stride != 2)
        return fail(why, len, "depthwise stride is not 1 or 2");
    if (d->schedule < MB_SCHED_AUTO || d->schedule > MB_SCHED_ROWS || d->threads < 0)
        return fail(why, len, "unknown schedule");
    const int ek = d->expand_k ? d->expand_k : 1, es = d->expand_stride ? d->expand_stride : 1;
    if ((ek != 1 && ek != 3) || (es != 1 && es != 2) || (ek == 1 && es != 1))
        return fail(why, len, "the expansion is neither 1x1 (stride 1) nor 3x3 (stride 1 or 2)");
    if (ek == 3 && (!d->expand || d->in_c > PC_VL))
        return fail(why, len, "a 3x3 expansion needs at most 16 input channels");
    if (d->residual && es != 1)
        return fail(why, len, "a residual needs stride 1 and as many outputs as inputs");
    if (!d->expand && d->hid_c != d->in_c)
        return fail(why, len, "without expansion the depthwise width must be the input's");
    if (d->residual && (d->stride != 1 || d->out_c != d->in_c))
        return fail(why, len, "a residual needs stride 1 and as many outputs as inputs");
    if (d->h > (1 << 20) || d->w > (1 << 20) || d->hid_c > (1 << 20) || d->in_c > (1 << 20) ||
        d->out_c > (1 << 20))
        return fail(why, len, "shape too large");
    return 0;
}

static void pack_depthwise(struct mb_block *b, const float *wd, const float *bd)
{
    for (int64_t c = 0; c < b->d.hid_c; c++) {
        int64_t blk = c / PC_VL, lane = c % PC_VL;
        for (int t = 0; t < 9; t++)
            b->wd[(blk * 9 + t) * PC_VL + lane] = wd[c * 9 + t];
        if (bd)
            b->bd[blk * PC_VL + lane] = bd[c];
    }
}

struct mb_block *mb_prepare(const struct mb_desc *d, const struct mb_weights *w, char *why,
                            size_t why_len)
{
    if (check(d, why, why_len))
        return NULL;
    if (!w->wd || !w->wp || (d->expand && !w->we)) {
        fail(why, why_len, "missing weights");
        return NULL;
    }
    struct mb_block *b = calloc(1, sizeof *b);
    if (!b) {
        fail(why, why_len, "out of memory");
        return NULL;
    }
    b->d = *d;
    b->ek = d->expand_k ? d->expand_k : 1;
    b->es = d->expand_stride ? d->expand_stride : 1;
    b->eh = (d->h - 1) / b->es + 1; /* 1x1, or 3x3 with padding 1 */
    b->ew = (d->w - 1) / b->es + 1;
    b->oh = (b->eh - 1) / d->stride + 1; /* 3x3, padding 1 */
    b->ow = (b->ew - 1) / d->stride + 1;
    b->ohw = b->oh * b->ow;
    b->nblk_in = pc_ceil_div(d->in_c, PC_VL);
    b->nblk_hid = pc_ceil_div(d->hid_c, PC_VL);
    /* wide hidden layers: two blocks a group (the expansion's broadcasts
     * feed two FMAs); narrow ones: one, so that there are groups enough to
     * keep every thread busy at batch 1 */
    b->rows = d->schedule == MB_SCHED_ROWS ||
              (d->schedule == MB_SCHED_AUTO && rows_pay(d, b->oh, b->nblk_hid, b->ohw));
    b->g_b = d->expand && b->nblk_hid >= 16 && PC_AUTO_MAX_B >= 2 ? 2 : 1;
    if (b->rows) /* parallel over rows: the widest register block */
        b->g_b = choose_b(d->hid_c);
    b->g_vw = pw_max_vw(b->g_b);
    b->n_groups = pc_ceil_div(b->nblk_hid, b->g_b);
    b->p_b = choose_b(d->out_c);
    b->p_vw = pc_kernel_max_vw(1, b->p_b);
    b->n_obp = pc_ceil_div(d->out_c, (int64_t)b->p_b * PC_VL);
    b->pix_chunk = b->p_vw * (b->ohw >= 64 * b->p_vw ? 4 : 1);
    b->n_chunks = pc_ceil_div(b->ohw, b->pix_chunk);
    /* the packed input: blocked, padded without expansion; with a 3x3
     * expansion the padded NCHW image, channels apart */
    b->x_rows = d->expand && b->ek == 1 ? d->h : d->h + 2;
    b->x_cols = d->expand && b->ek == 1 ? d->w : d->w + 2;
    b->x_img = b->ek == 3 ? d->in_c * b->x_rows * b->x_cols
                          : b->nblk_in * b->x_rows * b->x_cols * PC_VL;
    b->d_img = b->rows ? 0 : b->nblk_hid * b->ohw * PC_VL;
    b->ring = d->expand ? 3 * (b->rows ? b->nblk_hid : b->g_b) * (b->ew + 2) * PC_VL : 0;
    if (b->rows)
        b->ring += b->nblk_hid * b->ow * PC_VL + SLACK;
    b->nblk_out = pc_ceil_div(d->out_c, PC_VL);
    mb_set_io(b, 0, -1);

    const int64_t glanes = (int64_t)b->g_b * PC_VL, plane = (int64_t)b->p_b * PC_VL;
    int ok = 1;
    if (d->expand) {
        ok &= (b->we = pc_alloc_floats(b->n_groups * d->in_c * b->ek * b->ek * glanes)) != NULL;
        ok &= (b->be = pc_alloc_floats(b->n_groups * glanes)) != NULL;
    }
    ok &= (b->wd = pc_alloc_floats(b->nblk_hid * 9 * PC_VL)) != NULL;
    ok &= (b->bd = pc_alloc_floats(b->nblk_hid * PC_VL)) != NULL;
    ok &= (b->wp = pc_alloc_floats(b->n_obp * d->hid_c * plane)) != NULL;
    ok &= (b->bp = pc_alloc_floats(b->n_obp * plane)) != NULL;
    if (b->ek == 3)
        ok &= (b->e_off = malloc((size_t)d->in_c * 9 * sizeof *b->e_off)) != NULL;
    if (!ok) {
        mb_free(b);
        fail(why, why_len, "out of memory");
        return NULL;
    }
    if (d->expand) {
        pc_pack_weights(w->we, d->hid_c, d->in_c, b->ek, b->ek, b->g_b, b->we);
        if (w->be)
            memcpy(b->be, w->be, (size_t)d->hid_c * sizeof(float));
    }
    if (b->ek == 3) /* in the weights' order: one block of at most 16 channels */
        for (int t = 0, i = 0; t < 9; t++)
            for (int64_t c = 0; c < d->in_c; c++)
                b->e_off[i++] = (c * b->x_rows + t / 3) * b->x_cols + t % 3;
    pack_depthwise(b, w->wd, w->bd);
    pc_pack_weights(w->wp, d->out_c, d->hid_c, 1, 1, b->p_b, b->wp);
    if (w->bp)
        memcpy(b->bp, w->bp, (size_t)d->out_c * sizeof(float));
    return b;
}

void mb_set_io(struct mb_block *b, int in_blocked, int out_pad)
{
    b->in_blocked = in_blocked != 0 && b->ek == 1;
    b->out_pad = out_pad < 0 ? -1 : out_pad > 0 ? 1 : 0;
    const int64_t p = b->out_pad < 0 ? 0 : b->out_pad;
    b->o_rows = b->oh + 2 * p;
    b->o_cols = b->ow + 2 * p;
    b->o_img = b->out_pad < 0 ? b->d.out_c * b->ohw : b->nblk_out * b->o_rows * b->o_cols * PC_VL;
}

int mb_in_pad(const struct mb_block *b) { return b->d.expand ? 0 : 1; }
int mb_takes_blocked(const struct mb_block *b) { return b->ek == 1; }
int mb_schedule_of(const struct mb_block *b) { return b->rows ? MB_SCHED_ROWS : MB_SCHED_GROUPS; }
int64_t mb_out_floats(const struct mb_block *b) { return b->o_img; }


static int64_t row_bands(const struct mb_block *b, int64_t batch, int threads);

/* The row schedule's shared expanded rows (edge_items): per (image, band)
 * its first and its last expanded row, every hidden block; none when an
 * image is one band or there is no expansion. */
static int64_t edge_floats(const struct mb_block *b, int64_t batch, int threads)
{
    const int64_t bands = b->rows && b->d.expand ? row_bands(b, batch, threads) : 1;
    return bands > 1 ? batch * bands * 2 * b->nblk_hid * (b->ew + 2) * PC_VL : 0;
}

/* The threads a workspace is laid out for: 0 means 1. */
static int64_t n_threads(int threads) { return threads > 0 ? threads : 1; }

/* Floats of the packed input: an image's a batch, or with a 3x3 expansion
 * a copy of the padded image a thread (x_source). */
static int64_t x_floats(const struct mb_block *b, int64_t batch, int threads)
{
    return (b->ek == 3 ? n_threads(threads) : batch) * b->x_img;
}

/* Every term but the edges grows with the batch; the edges exist only for
 * a batch the threads do not divide, so they are counted for the most bands
 * any batch up to this one takes (row_bands of a single image). */
size_t mb_workspace_floats(const struct mb_block *b, int64_t batch, int threads)
{
    return (size_t)(x_floats(b, batch, threads) + SLACK + batch * b->d_img + SLACK +
                    n_threads(threads) * b->ring +
                    batch * edge_floats(b, 1, threads));
}

/* Bands of output rows the hidden phase splits each (image, group) into:
 * one when the items already divide evenly over the threads (or are many),
 * else the fewest bands (up to 4, each >= 4 rows) that do. A band recomputes
 * the expanded rows its neighbour computed too (two at stride 1, one at
 * stride 2): a few percent, against a thread idle for up to a whole item. */
static int64_t hidden_bands(const struct mb_block *b, int64_t batch, int threads)
{
    const int64_t items = batch * b->n_groups;
    if (threads <= 1 || items % threads == 0 || items >= 8 * threads)
        return 1;
    int64_t best = 1;
    double best_eff = (double)items / (double)(pc_ceil_div(items, threads) * threads);
    for (int64_t k = 2; k <= 4 && b->oh >= 4 * k; k++) {
        double eff = (double)(items * k) / (double)(pc_ceil_div(items * k, threads) * threads);
        if (eff > best_eff + 0.02) {
            best = k;
            best_eff = eff;
        }
    }
    return best;
}

/* Bands of output rows an image is split into by the row schedule: enough
 * that the (image, band) items divide evenly over the threads, each band at
 * least 4 rows. */
static int64_t row_bands(const struct mb_block *b, int64_t batch, int threads)
{
    if (threads <= 1 || batch % threads == 0)
        return 1;
    int64_t k = threads;
    while (k > 1 && b->oh < 4 * k)
        k--;
    return k;
}

int64_t mb_items(const struct mb_block *b, enum mb_phase ph, int64_t batch, int threads)
{
    switch (ph) {
    case MB_PACK: return b->in_blocked || b->ek == 3 ? 0 : batch * b->x_rows;
    case MB_HIDDEN:
        if (b->rows)
            return edge_floats(b, batch, threads) ? batch * row_bands(b, batch, threads) : 0;
        return batch * b->n_groups * hidden_bands(b, batch, threads);
    case MB_PROJECT:
        return b->rows ? batch * row_bands(b, batch, threads) : batch * b->n_obp * b->n_chunks;
    default: return 0;
    }
}

/* ---- the phases ------------------------------------------------------------------ */

/* Row r of every channel of the zero-padded NCHW image n (a 3x3 expansion's
 * input). */
static void pack_padded_row(const struct mb_block *b, const float *in, float *x_img, int64_t n,
                            int64_t r)
{
    const struct mb_desc *d = &b->d;
    for (int64_t c = 0; c < d->in_c; c++) {
        float *dst = x_img + (c * b->x_rows + r) * b->x_cols;
        if (r == 0 || r == b->x_rows - 1) {
            memset(dst, 0, (size_t)b->x_cols * sizeof(float));
            continue;
        }
        dst[0] = dst[b->x_cols - 1] = 0.0f;
        memcpy(dst + 1, in + ((n * d->in_c + c) * d->h + r - 1) * d->w, (size_t)d->w * sizeof(float));
    }
}

static void pack_items(const struct mb_block *b, const float *in, float *x, int64_t i0,
                       int64_t i1)
{
    const struct mb_desc *d = &b->d;
    const int pad = d->expand ? 0 : 1;
    struct pc_window win = {0, b->x_rows, 0, b->x_cols, 1, b->x_cols};
    for (int64_t it = i0; it < i1; it++) {
        int64_t n = it / b->x_rows, r = it % b->x_rows;
        pc_pack_window_rows(in + n * d->in_c * d->h * d->w, d->in_c, d->h, d->w, pad, pad, &win,
                            x + n * b->x_img, r, r + 1);
    }
}

/* The depthwise 3x3 of output pixels x .. x+X-1 of one row (X a literal),
 * for native vector h (pc_kernels.h) of the block's 16 channels: each
 * pixel's nine taps in the same order, with independent accumulators, and
 * every input column loaded once for the pixels that share it (stride 1:
 * X+2 columns of each input row for 9X multiply-adds instead of 3X). */
static inline __attribute__((always_inline)) void depthwise_px(
    const float *r0, const float *r1, const float *r2, const pc_vn *w, pc_vn b, int64_t x,
    const int S, int act, float *dst, const int X)
{
    enum { MAXC = 2 * 4 + 1 }; /* columns of X = 4 pixels at stride 2 */
    const int cols = (X - 1) * S + 3;
    pc_vn acc[4], c[MAXC];
    const float *rows[3] = {r0 + x * S * PC_VL, r1 + x * S * PC_VL, r2 + x * S * PC_VL};
#pragma GCC unroll 4
    for (int p = 0; p < X; p++)
        acc[p] = b;
#pragma GCC unroll 3
    for (int i = 0; i < 3; i++) {
#pragma GCC unroll 9
        for (int k = 0; k < cols; k++)
            c[k] = pc_loadn(rows[i] + k * PC_VL);
#pragma GCC unroll 4
        for (int p = 0; p < X; p++)
#pragma GCC unroll 3
            for (int j = 0; j < 3; j++)
                acc[p] += c[p * S + j] * w[i * 3 + j];
    }
#pragma GCC unroll 4
    for (int p = 0; p < X; p++)
        pc_storen(dst + (x + p) * PC_VL, pc_actn(acc[p], act));
}

/* One output row of the depthwise 3x3 for one block of 16 channels: rows
 * r0..r2 are the three padded input rows ([W+2][16]), dst the row's ow
 * pixels in D. Four pixels at a time, then one by one; each native vector
 * of the block on its own. */
static inline __attribute__((always_inline)) void depthwise_row_s(
    const float *r0, const float *r1, const float *r2, const float *wd, const float *bias,
    int64_t ow, const int S, int act, float *dst)
{
#pragma GCC unroll 1
    for (int h = 0; h < PC_NH; h++) {
        const int off = h * PC_NL;
        pc_vn w[9];
        for (int t = 0; t < 9; t++)
            w[t] = pc_loadn(wd + t * PC_VL + off);
        const pc_vn b = pc_loadn(bias + off);
        int64_t x = 0;
        for (; x + 4 <= ow; x += 4)
            depthwise_px(r0 + off, r1 + off, r2 + off, w, b, x, S, act, dst + off, 4);
        for (; x < ow; x++)
            depthwise_px(r0 + off, r1 + off, r2 + off, w, b, x, S, act, dst + off, 1);
    }
}

static void depthwise_row(const float *r0, const float *r1, const float *r2, const float *wd,
                          const float *bias, int64_t ow, int s, int act, float *dst)
{
    if (s == 1)
        depthwise_row_s(r0, r1, r2, wd, bias, ow, 1, act, dst);
    else
        depthwise_row_s(r0, r1, r2, wd, bias, ow, 2, act, dst);
}

/* Padded row pr (0 .. H+1) of hidden group g expanded into ring slot
 * [b][W+2][16]: zeros outside the image, else the expansion of image row
 * pr - 1 with its bias and activation. */
static void expand_row(const struct mb_block *b, const float *x_img, int64_t g, int64_t pr,
                       float *slot)
{
    const struct mb_desc *d = &b->d;
    const int64_t rowf = (b->ew + 2) * PC_VL;
    const int nb = (int)(b->nblk_hid - g * b->g_b < b->g_b ? b->nblk_hid - g * b->g_b : b->g_b);
    if (pr == 0 || pr == b->eh + 1) {
        memset(slot, 0, (size_t)(nb * rowf) * sizeof(float));
        return;
    }
    const int64_t y = pr - 1, lanes = (int64_t)b->g_b * PC_VL;
    struct pw_args a = {0};
    a.in_bs = d->h * d->w * PC_VL;
    a.nblk = (int)b->nblk_in;
    a.cb_last = (int)(d->in_c - (b->nblk_in - 1) * PC_VL);
    a.w = b->we + g * d->in_c * b->ek * b->ek * lanes;
    a.bias = b->be + g * lanes;
    a.out_bs = rowf;
    a.nb = nb;
    a.act = d->act_e;
    a.tap_off = b->e_off;
    a.ntaps = (int)d->in_c * 9;
    for (int64_t p0 = 0; p0 < b->ew; p0 += b->g_vw) {
        int nv = (int)(b->ew - p0 < b->g_vw ? b->ew - p0 : b->g_vw);
        a.out = slot + (p0 + 1) * PC_VL;
        if (b->ek == 3) { /* the padded image's top-left input of pixel (y, p0) */
            a.in = x_img + y * b->es * b->x_cols + p0 * b->es;
            pw_conv_kernel(nv, b->g_b, b->es)(&a);
        } else {
            a.in = x_img + (y * d->w + p0) * PC_VL;
            pw_for(nv, b->g_b, nb, d->hid_c, g == b->n_groups - 1)(&a);
        }
    }
    for (int k = 0; k < nb; k++) { /* the padding columns */
        pc_store(slot + k * rowf, (pc_v16){0});
        pc_store(slot + k * rowf + (b->ew + 1) * PC_VL, (pc_v16){0});
    }
}

/* Where an item's expansion reads its input: image n's packed input, or
 * with a 3x3 expansion the thread's own copy of the zero-padded image,
 * whose rows the item packs as its expanded rows first reach them (rows
 * below hi are there). The image is then read from memory as the
 * multiply-adds go, row by row in each channel's plane, where a pack phase
 * of its own waited for all of it (600 KB for a 224x224 RGB image) and
 * then a barrier. */
struct x_source {
    const float *img;
    float *copy;       /* 3x3 expansion: the thread's padded image */
    const float *in;   /* 3x3 expansion: the NCHW batch */
    int64_t n, hi;
};

static struct x_source x_source(const struct mb_block *b, const float *x, const float *in,
                                int thread, int64_t n)
{
    struct x_source xs = {NULL, NULL, in, n, 0};
    if (b->ek == 3) /* the workspace's packed input is the threads' copies */
        xs.img = xs.copy = (float *)x + (int64_t)thread * b->x_img;
    else
        xs.img = x + n * b->x_img;
    return xs;
}

/* expand_row of padded row pr, from xs, its input rows packed first. */
static void expand_from(const struct mb_block *b, struct x_source *xs, int64_t g, int64_t pr,
                        float *slot)
{
    if (xs->copy && pr >= 1 && pr <= b->eh) {
        const int64_t first = (pr - 1) * b->es, end = first + 3; /* padded input rows */
        for (int64_t r = xs->hi > first ? xs->hi : first; r < end; r++)
            pack_padded_row(b, xs->in, xs->copy, xs->n, r);
        xs->hi = xs->hi > end ? xs->hi : end;
    }
    expand_row(b, xs->img, g, pr, slot);
}

static void hidden_items(const struct mb_block *b, const float *x, const float *in, float *dbuf,
                         float *ring, int thread, int64_t bands, int64_t i0, int64_t i1)
{
    const struct mb_desc *d = &b->d;
    const int s = d->stride;
    const int64_t rowf = (b->ew + 2) * PC_VL;
    for (int64_t it = i0; it < i1; it++) {
        const int64_t n = it / (b->n_groups * bands), g = it / bands % b->n_groups;
        const int64_t band = it % bands;
        const int64_t r0 = b->oh * band / bands, r1 = b->oh * (band + 1) / bands;
        struct x_source xs = x_source(b, x, in, thread, n);
        float *d_img = dbuf + n * b->d_img;
        const int64_t blk0 = g * b->g_b;
        const int nb = (int)(b->nblk_hid - blk0 < b->g_b ? b->nblk_hid - blk0 : b->g_b);
        if (!d->expand) { /* the packed, padded input is the depthwise input */
            for (int k = 0; k < nb; k++) {
                const int64_t hb = blk0 + k;
                const float *xb = xs.img + hb * b->x_rows * rowf;
                for (int64_t r = r0; r < r1; r++)
                    depthwise_row(xb + (r * s) * rowf, xb + (r * s + 1) * rowf,
                                  xb + (r * s + 2) * rowf, b->wd + hb * 9 * PC_VL,
                                  b->bd + hb * PC_VL, b->ow, s, d->act_d,
                                  d_img + (hb * b->ohw + r * b->ow) * PC_VL);
            }
            continue;
        }
        /* expanded rows in a ring of three, each computed once */
        const int64_t slotf = (int64_t)b->g_b * rowf;
        int64_t next = r0 * s;
        for (int64_t r = r0; r < r1; r++) {
            for (; next <= r * s + 2; next++)
                expand_from(b, &xs, g, next, ring + (next % 3) * slotf);
            const float *s0 = ring + ((r * s) % 3) * slotf, *s1 = ring + ((r * s + 1) % 3) * slotf;
            const float *s2 = ring + ((r * s + 2) % 3) * slotf;
            for (int k = 0; k < nb; k++) {
                const int64_t hb = blk0 + k;
                depthwise_row(s0 + k * rowf, s1 + k * rowf, s2 + k * rowf,
                              b->wd + hb * 9 * PC_VL, b->bd + hb * PC_VL, b->ow, s, d->act_d,
                              d_img + (hb * b->ohw + r * b->ow) * PC_VL);
            }
        }
    }
}

/* The output's zero borders (padded blocked output) of output blocks
 * [blk0, blk1) of one image. */
static void zero_borders(const struct mb_block *b, float *o_img, int64_t blk0, int64_t blk1)
{
    const int64_t rowf = b->o_cols * PC_VL;
    for (int64_t k = blk0; k < blk1; k++) {
        float *ob = o_img + k * b->o_rows * rowf;
        memset(ob, 0, (size_t)rowf * sizeof(float));
        memset(ob + (b->o_rows - 1) * rowf, 0, (size_t)rowf * sizeof(float));
        for (int64_t r = 1; r < b->o_rows - 1; r++) {
            pc_store(ob + r * rowf, (pc_v16){0});
            pc_store(ob + r * rowf + (b->o_cols - 1) * PC_VL, (pc_v16){0});
        }
    }
}

/* A 3x3 expansion's block input is not packed blocked (its pack keeps the
 * image's layout, padded): the residual of output channels [oc0, oc0 + nc)
 * at row y, columns xx .. xx + nv - 1 comes from the NCHW input, added to
 * the blocked output at o (channel blocks out_bs apart) with act_r, as
 * the NCHW path adds it. */
static void add_nchw_residual(const struct mb_block *b, const float *in, int64_t n, int64_t oc0,
                              int64_t nc, int64_t y, int64_t xx, int nv, float *o, int64_t out_bs)
{
    const struct mb_desc *d = &b->d;
    for (int64_t c = 0; c < nc; c++) {
        const float *r = in + ((n * d->in_c + oc0 + c) * d->h + y) * d->w + xx;
        float *oc = o + c / PC_VL * out_bs + c % PC_VL;
        for (int i = 0; i < nv; i++)
            oc[i * PC_VL] = pc_act1(oc[i * PC_VL] + r[i], d->act_r);
    }
}

/* The projection's kernel arguments every call shares; D's channel blocks
 * lie blk_stride floats apart. */
static void project_kargs(const struct mb_block *b, int64_t blk_stride, float *tile,
                          const int64_t *zero_off, struct pc_kargs *a)
{
    a->tap_off = zero_off;
    a->ntaps = 1;
    a->nblk = (int)b->nblk_hid;
    a->cb_last = (int)(b->d.hid_c - (b->nblk_hid - 1) * PC_VL);
    a->blk_stride = blk_stride;
    a->row_stride = 0;
    a->out = tile;
    a->out_ps = (int64_t)b->p_b * PC_VL;
    a->pf_blocks = 0;
}

/* Output pixels [q0, q1) of image n, output channel vectors ob (p_b of
 * them), from D at dq (D of pixel q0; a from project_kargs): the 1x1
 * projection with its bias and activation, the residual added, into the
 * output layout set. */
static void project_span(const struct mb_block *b, struct pc_kargs *a, int64_t n, int64_t ob,
                         int64_t q0, int64_t q1, const float *dq, const float *in,
                         const float *x, float *out)
{
    const struct mb_desc *d = &b->d;
    const int64_t lanes = (int64_t)b->p_b * PC_VL;
    const int64_t oc0 = ob * lanes, nc = d->out_c - oc0 < lanes ? d->out_c - oc0 : lanes;
    const int64_t ob0 = ob * b->p_b; /* first output block */
    const int nb = (int)pc_ceil_div(nc, PC_VL);
    const int last = ob == b->n_obp - 1;
    float *tile = a->out;
    a->w = b->wp + ob * d->hid_c * lanes;
    a->bias = b->bp + ob * lanes;
    if (b->out_pad >= 0) { /* straight into the blocked output, a row's run at a time */
        const int64_t p = b->out_pad, xp = mb_in_pad(b);
        float *o_blk = out + n * b->o_img + ob0 * b->o_rows * b->o_cols * PC_VL;
        const float *xb = /* the residual, where the packed input is blocked */
            b->ek == 1 ? x + n * b->x_img + ob0 * b->x_rows * b->x_cols * PC_VL : NULL;
        struct pw_args pa = {0};
        pa.in_bs = a->blk_stride;
        pa.nblk = a->nblk;
        pa.cb_last = a->cb_last;
        pa.w = a->w;
        pa.bias = a->bias;
        pa.out_bs = b->o_rows * b->o_cols * PC_VL;
        pa.nb = nb;
        pa.act = d->act_p;
        pa.res_bs = b->x_rows * b->x_cols * PC_VL;
        pa.act_r = d->act_r;
        for (int64_t p0 = q0; p0 < q1;) {
            const int64_t y = p0 / b->ow, xx = p0 % b->ow;
            const int64_t end = q1 < (y + 1) * b->ow ? q1 : (y + 1) * b->ow;
            const int nv = (int)(end - p0 < b->p_vw ? end - p0 : b->p_vw);
            pa.in = dq + (p0 - q0) * PC_VL;
            pa.out = o_blk + ((y + p) * b->o_cols + xx + p) * PC_VL;
            if (d->residual && b->ek == 1)
                pa.res = xb + ((y + xp) * b->x_cols + xx + xp) * PC_VL;
            pw_for(nv, b->p_b, nb, d->out_c, last)(&pa);
            if (d->residual && b->ek == 3)
                add_nchw_residual(b, in, n, oc0, nc, y, xx, nv, pa.out, pa.out_bs);
            p0 += nv;
        }
        return;
    }
    float *o_img = out + (n * d->out_c + oc0) * b->ohw;
    const float *x_img = in + (n * d->in_c + oc0) * d->h * d->w;
    const int64_t xp = mb_in_pad(b);
    for (int64_t p0 = q0; p0 < q1; p0 += b->p_vw) {
        int nv = (int)(q1 - p0 < b->p_vw ? q1 - p0 : b->p_vw);
        a->in = dq + (p0 - q0) * PC_VL;
        pc_kernel(1, nv, b->p_b)(a);
        if (d->residual && b->in_blocked) { /* the residual is in the tile's layout */
            for (int k = 0; k < nb; k++)
                for (int i = 0; i < nv; i++) {
                    const int64_t y = (p0 + i) / b->ow, xx = (p0 + i) % b->ow;
                    const float *r =
                        x + n * b->x_img +
                        (((ob0 + k) * b->x_rows + y + xp) * b->x_cols + xx + xp) * PC_VL;
                    float *t = tile + i * lanes + k * PC_VL;
                    for (int h = 0; h < PC_NH; h++)
                        pc_storen(t + h * PC_NL, pc_actn(pc_loadn(t + h * PC_NL), d->act_p) +
                                                     pc_loadn(r + h * PC_NL));
                }
            pc_scatter_tile(tile, lanes, 1, nv, 1, nv, nc, o_img + p0, NULL, b->ohw, 0, d->act_r);
            continue;
        }
        pc_scatter_tile(tile, lanes, 1, nv, 1, nv, nc, o_img + p0, NULL, b->ohw, 0, d->act_p);
        if (!d->residual)
            continue;
        for (int64_t c = 0; c < nc; c++) {
            float *o = o_img + c * b->ohw + p0;
            const float *xr = x_img + c * b->ohw + p0;
            for (int p = 0; p < nv; p++)
                o[p] = pc_act1(o[p] + xr[p], d->act_r);
        }
    }
}

static void project_items(const struct mb_block *b, const float *in, const float *x,
                          const float *dbuf, float *out, int64_t i0, int64_t i1)
{
    const int64_t zero_off = 0;
    float tile[PC_MAX_ACC * PC_VL] __attribute__((aligned(64)));
    struct pc_kargs a;
    project_kargs(b, b->ohw * PC_VL, tile, &zero_off, &a);
    for (int64_t it = i0; it < i1; it++) {
        const int64_t per_img = b->n_obp * b->n_chunks;
        const int64_t n = it / per_img, ob = (it % per_img) / b->n_chunks;
        const int64_t ch = it % b->n_chunks;
        const int64_t q0 = ch * b->pix_chunk;
        const int64_t q1 = q0 + b->pix_chunk < b->ohw ? q0 + b->pix_chunk : b->ohw;
        if (b->out_pad > 0 && ch == 0) {
            const int64_t ob0 = ob * b->p_b;
            const int64_t ob1 = ob0 + b->p_b < b->nblk_out ? ob0 + b->p_b : b->nblk_out;
            zero_borders(b, out + n * b->o_img, ob0, ob1);
        }
        project_span(b, &a, n, ob, q0, q1, dbuf + n * b->d_img + q0 * PC_VL, in, x, out);
    }
}

/* The padded output's zero borders that belong to output row r: the
 * row's first and last pixel, and the top (bottom) border row with the
 * first (last) row, in every output block of one image. */
static void zero_border_row(const struct mb_block *b, float *o_img, int64_t r)
{
    const int64_t rowf = b->o_cols * PC_VL;
    for (int64_t k = 0; k < b->nblk_out; k++) {
        float *ob = o_img + k * b->o_rows * rowf;
        if (r == 0)
            memset(ob, 0, (size_t)rowf * sizeof(float));
        if (r == b->oh - 1)
            memset(ob + (b->o_rows - 1) * rowf, 0, (size_t)rowf * sizeof(float));
        pc_store(ob + (r + 1) * rowf, (pc_v16){0});
        pc_store(ob + (r + 1) * rowf + (b->o_cols - 1) * PC_VL, (pc_v16){0});
    }
}

/* The expanded rows (image rows of the depthwise input) band j of `bands`
 * owns: [*y0, *y1), the rows its own output rows start on (r0*s ..
 * r1*s - 1), the last band to the map's end. */
static void owned_rows(const struct mb_block *b, int64_t bands, int64_t j, int64_t *y0,
                       int64_t *y1)
{
    const int s = b->d.stride;
    *y0 = b->oh * j / bands * s;
    *y1 = j == bands - 1 ? b->eh : b->oh * (j + 1) / bands * s;
}

/* Band j's edge row k (0: its first owned row, 1: its last) of image n:
 * every hidden block, [blk][W+2][16] as a ring slot. */
static float *edge_row(const struct mb_block *b, float *edges, int64_t bands, int64_t n,
                       int64_t j, int k)
{
    const int64_t slotf = b->nblk_hid * (b->ew + 2) * PC_VL;
    return edges + ((n * bands + j) * 2 + k) * slotf;
}

/* Per (image, band), before the bands run (rows_items): the band's first
 * and last owned expanded rows into the edges. A band's depthwise reads
 * one expanded row past each end of the rows it owns, which its neighbour
 * owns; a band that computed those rows itself would recompute, on
 * MobileNet v2's 14x14 maps in two bands, 1 row in 7 of the block's
 * largest layer. Each row is computed once, by its owner; the neighbour
 * reads it where it lies. */
static void edge_items(const struct mb_block *b, const float *x, const float *in, float *edges,
                       int thread, int64_t bands, int64_t i0, int64_t i1)
{
    const int64_t rowf = (b->ew + 2) * PC_VL;
    for (int64_t it = i0; it < i1; it++) {
        const int64_t n = it / bands, j = it % bands;
        int64_t y0, y1;
        owned_rows(b, bands, j, &y0, &y1);
        struct x_source xs = x_source(b, x, in, thread, n);
        for (int k = 0; k < 2; k++) {
            float *slot = edge_row(b, edges, bands, n, j, k);
            for (int64_t g = 0; g < b->n_groups; g++)
                expand_from(b, &xs, g, (k ? y1 - 1 : y0) + 1, slot + g * b->g_b * rowf);
        }
    }
}

/* The edge row that holds image row y for band j (its own first or last,
 * or its neighbours' last or first), or NULL: the band computes it. */
static const float *edge_for(const struct mb_block *b, float *edges, int64_t bands, int64_t n,
                             int64_t j, int64_t y)
{
    if (!edges)
        return NULL;
    for (int64_t i = j - 1; i <= j + 1; i++) {
        if (i < 0 || i >= bands)
            continue;
        int64_t y0, y1;
        owned_rows(b, bands, i, &y0, &y1);
        if (y == y0)
            return edge_row(b, edges, bands, n, i, 0);
        if (y == y1 - 1)
            return edge_row(b, edges, bands, n, i, 1);
    }
    return NULL;
}

/* The row schedule: per (image, band of output rows), each row's expanded
 * input rows (every hidden block, into the ring, each computed once in the
 * band, or read from the edges), its depthwise row (into one row of D in
 * the thread's scratch) and at once that row's projection. */
static void rows_items(const struct mb_block *b, const float *in, const float *x, float *out,
                       float *scratch, float *edges, int thread, int64_t bands, int64_t i0,
                       int64_t i1)
{
    const struct mb_desc *d = &b->d;
    const int s = d->stride;
    const int64_t rowf = (b->ew + 2) * PC_VL, slotf = b->nblk_hid * rowf;
    float *ring = scratch, *drow = scratch + (d->expand ? 3 * slotf : 0);
    const int64_t zero_off = 0;
    float tile[PC_MAX_ACC * PC_VL] __attribute__((aligned(64)));
    struct pc_kargs a;
    project_kargs(b, b->ow * PC_VL, tile, &zero_off, &a);
    for (int64_t it = i0; it < i1; it++) {
        const int64_t n = it / bands, band = it % bands;
        const int64_t r0 = b->oh * band / bands, r1 = b->oh * (band + 1) / bands;
        struct x_source xs = x_source(b, x, in, thread, n);
        const float *slot[3] = {ring, ring + slotf, ring + 2 * slotf};
        int64_t next = r0 * s;
        for (int64_t r = r0; r < r1; r++) {
            const float *s0, *s1, *s2;
            int64_t bstride; /* between hidden blocks of s0..s2 */
            if (d->expand) {
                for (; next <= r * s + 2; next++) { /* padded row next: image row next - 1 */
                    float *mine = ring + (next % 3) * slotf;
                    const float *e = next >= 1 && next <= b->eh
                                         ? edge_for(b, edges, bands, n, band, next - 1)
                                         : NULL;
                    slot[next % 3] = e ? e : mine;
                    if (!e)
                        for (int64_t g = 0; g < b->n_groups; g++)
                            expand_from(b, &xs, g, next, mine + g * b->g_b * rowf);
                }
                s0 = slot[(r * s) % 3];
                s1 = slot[(r * s + 1) % 3];
                s2 = slot[(r * s + 2) % 3];
                bstride = rowf;
            } else { /* the packed, padded input is the depthwise input */
                s0 = xs.img + (r * s) * rowf;
                s1 = s0 + rowf;
                s2 = s1 + rowf;
                bstride = b->x_rows * rowf;
            }
            for (int64_t hb = 0; hb < b->nblk_hid; hb++)
                depthwise_row(s0 + hb * bstride, s1 + hb * bstride, s2 + hb * bstride,
                              b->wd + hb * 9 * PC_VL, b->bd + hb * PC_VL, b->ow, s, d->act_d,
                              drow + hb * b->ow * PC_VL);
            if (b->out_pad > 0)
                zero_border_row(b, out + n * b->o_img, r);
            for (int64_t ob = 0; ob < b->n_obp; ob++)
                project_span(b, &a, n, ob, r * b->ow, (r + 1) * b->ow, drow, in, x, out);
        }
    }
}

void mb_run(const struct mb_block *b, enum mb_phase ph, int64_t batch, const float *in,
            float *out, float *ws, int threads, int64_t i0, int64_t i1, int thread)
{
    float *x = ws;
    float *dbuf = x + x_floats(b, batch, threads) + SLACK;
    const float *xin = b->in_blocked ? in : x; /* the packed input */
    float *rings = dbuf + batch * b->d_img + SLACK, *ring = rings + (int64_t)thread * b->ring;
    float *edges = edge_floats(b, batch, threads) ? rings + n_threads(threads) * b->ring : NULL;
    switch (ph) {
    case MB_PACK: pack_items(b, in, x, i0, i1); break;
    case MB_HIDDEN:
        if (b->rows)
            edge_items(b, xin, in, edges, thread, row_bands(b, batch, threads), i0, i1);
        else
            hidden_items(b, xin, in, dbuf, ring, thread, hidden_bands(b, batch, threads), i0,
                         i1);
        break;
    case MB_PROJECT:
        if (b->rows)
            rows_items(b, in, xin, out, ring, edges, thread, row_bands(b, batch, threads), i0,
                       i1);
        else
            project_items(b, in, xin, dbuf, out, i0, i1);
        break;
    default: break;
    }
}
