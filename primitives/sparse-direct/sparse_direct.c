/* Primitive "sparse-direct": direct sparse convolution (Park et al., ICLR
 * 2017, "Faster CNNs with direct sparse convolutions and guided pruning").
 *
 * Each output channel's weights are one compressed sparse row whose column
 * indices are not (channel, tap) but the offset, in the zero-padded input,
 * of the first input that weight multiplies: the convolution is then, for
 * every output channel and output position p,
 *
 *     out[oc][p] = bias[oc] + sum over non-zeros k: val[k] * in_padded[off[k] + p]
 *
 * with no lowering of the input (no im2col) and no work for pruned weights.
 *
 * The padded input of an image is packed once per run() so that p can run
 * over a flattened output plane: each channel is split into stride phases
 * (row r -> phase r % stride_h, row r / stride_h; likewise for columns), each
 * phase a plane of R x Q, and output pixel (oh, ow) is position oh*Q + ow.
 * Columns ow >= out_w of that plane are computed and dropped (2 of 58 on a
 * 56-wide 3x3 layer). A block of up to 28 vectors of 16 positions stays in
 * registers while the row's (offset, value) pairs stream past: per non-zero,
 * one broadcast and one FMA per vector, reading the panel directly. */
#include <stdlib.h>
#include <string.h>

#include "../common/prim_common.h"
#include "../common/sparse.h"

#define NAME "sparse-direct"

/* ---- geometry ------------------------------------------------------------------
 *
 * A phase plane is R x Q (Q >= the padded width / stride_w), padded to a
 * multiple of 16 floats, so channels and planes start on vector
 * boundaries. A weight's panel offset is then 16-aligned but for its tap's
 * shift r (its offset mod 16). A misaligned load crosses a cache line: on
 * Zen 4 the kernel streams L2-resident panels at ~95 GFLOP/s aligned and
 * ~60 misaligned. So, where it fits, the packed input is kept once for each
 * distinct shift (copy j holds the input moved left by r_j floats) and
 * every load is aligned. Q is then picked among the 16 widths from the
 * smallest for few copies (Q a multiple of 16 leaves only the column taps'
 * shifts) against few garbage columns, with the copies of one block's
 * inputs kept within L2. */

#define MAX_COPIES 16
#define DEFAULT_MAX_V 24
#define BLOCK_BYTES (512 * 1024) /* one block's inputs, every copy: half of L2 */
#define MISALIGNED_COST 1.5      /* time per position, misaligned : aligned */

struct geom {
    int64_t R, Q, sub, cs, copy_floats, n_vec;
    int cols;    /* the column-tap layout: one copy per column tap (below) */
    int aligned; /* a copy per shift; else one copy, loads misaligned */
    int n_copies;
    int shift[MAX_COPIES]; /* r of copy j; shift[0] = 0 */
    int v;                 /* vectors a block */
};

/* Offset of tap (ky, kx) from the start of its channel. */
static int64_t tap_base(const struct dlas_conv_desc *d, int64_t Q, int64_t sub, int ky, int kx)
{
    const int64_t dy = (int64_t)ky * d->dil_h, dx = (int64_t)kx * d->dil_w;
    const int64_t phase = (dy % d->stride_h) * d->stride_w + dx % d->stride_w;
    return phase * sub + (dy / d->stride_h) * Q + dx / d->stride_w;
}

static void geometry_q(const struct dlas_conv_desc *d, int64_t Q, int aligned, struct geom *g)
{
    const int64_t hp = d->in_h + 2 * (int64_t)d->pad_h;
    g->R = pc_ceil_div(hp, d->stride_h);
    g->Q = Q;
    g->sub = pc_round_up(g->R * Q, PC_VL);
    g->cs = (int64_t)d->stride_h * d->stride_w * g->sub;
    /* A garbage column of the last block reads up to Q + 15 floats past the
     * last phase plane: the tail keeps that inside the copy. */
    g->copy_floats = pc_round_up(d->in_c * g->cs + Q + 2 * PC_VL, PC_VL);
    g->n_vec = pc_ceil_div(d->out_h * Q, PC_VL);
    g->cols = 0;
    unsigned seen = 1u; /* shift 0: tap (0, 0) */
    g->aligned = aligned;
    g->n_copies = 1;
    g->shift[0] = 0;
    for (int ky = 0; aligned && ky < d->kh; ky++)
        for (int kx = 0; kx < d->kw; kx++) {
            int r = (int)(tap_base(d, Q, g->sub, ky, kx) % PC_VL);
            if (!(seen & (1u << r))) {
                seen |= 1u << r;
                g->shift[g->n_copies++] = r;
            }
        }
}

/* Bytes of input one block of v vectors reads: per copy, channel and
 * stride phase, its positions plus the taps' reach. */
static double block_bytes(const struct dlas_conv_desc *d, const struct geom *g, int v)
{
    const int64_t col_reach = g->cols ? 0 : ((int64_t)d->kw - 1) * d->dil_w / d->stride_w;
    const int64_t reach = (((int64_t)d->kh - 1) * d->dil_h / d->stride_h) * g->Q + col_reach;
    return 4.0 * g->n_copies * (double)d->in_c * d->stride_h * (g->cols ? 1 : d->stride_w) *
           (double)(v * PC_VL + reach + PC_VL);
}

/* The narrowest plane for stride 1 (row_pad = shared): rows need not keep
 * their own right padding, since a tap that reads past the end of a row
 * lands in the next row's left padding, also zeros. A valid output reads
 * padded columns c <= in_w + 2 pad_w - 1; with Q >= in_w + pad_w those at
 * c >= Q are right padding, and land at column c - Q <= pad_w - 1 of the
 * next row: its left padding (after the last row: the zeros that end the
 * plane, or the next channel's top-left padding). And Q >= out_w. A
 * 56-wide 3x3 layer: 57 columns instead of 58 (200 vectors instead of
 * 203), 28-wide: 29 instead of 30 (51 instead of 53), 7x7: 8 instead of 9
 * (56 positions: three vectors and a half). */
static int64_t flat_qmin(const struct dlas_conv_desc *d)
{
    const int64_t q = d->in_w + (int64_t)d->pad_w;
    return q > d->out_w ? q : d->out_w;
}

/* The layout: `aligned` 1 or 0 forces it, -1 picks; v > 0 forces the
 * block. Misaligned: Q as small as it goes, one copy. Aligned: the (Q,
 * block) with the fewest positions whose block inputs fit BLOCK_BYTES (the
 * largest block among equals); auto takes it where an image's copies fit
 * in half of L2, unless the misaligned layout costs less at
 * MISALIGNED_COST a position. */
static void geometry(const struct dlas_conv_desc *d, int aligned, int shared_pad, int v,
                     int max_v0, struct geom *g)
{
    const int64_t wp = d->in_w + 2 * (int64_t)d->pad_w;
    const int64_t qmin =
        d->stride_w == 1 && shared_pad ? flat_qmin(d) : pc_ceil_div(wp, d->stride_w);
    geometry_q(d, qmin, 0, g);
    g->v = v > 0 ? (int)(v < g->n_vec ? v : g->n_vec) : sc_even_block(g->n_vec, max_v0);
    if (aligned == 0)
        return;
    struct geom best;
    best.v = 0;
    for (int64_t Q = qmin; Q < qmin + PC_VL; Q++) {
        struct geom c;
        geometry_q(d, Q, 1, &c);
        for (int max_v = v > 0 ? v : max_v0; max_v >= 1; max_v = v > 0 ? 0 : max_v - 4) {
            c.v = max_v < c.n_vec ? max_v : (int)c.n_vec;
            if (v <= 0)
                c.v = sc_even_block(c.n_vec, c.v);
            if (aligned < 0 && block_bytes(d, &c, c.v) > BLOCK_BYTES)
                continue;
            if (!best.v || c.n_vec < best.n_vec || (c.n_vec == best.n_vec && c.v > best.v))
                best = c;
            break;
        }
    }
    if (!best.v)
        return;
    if (aligned < 0 && (double)best.n_vec >= MISALIGNED_COST * (double)g->n_vec)
        return;
    /* auto also needs every copy of an image within half of L2, as the
     * column-tap layout does: the copies are packed whole every run, and
     * where they were not (ResNet-18's 3x3 layers: 3 to 9 copies of 0.2-0.9
     * MB), the aligned layout measured up to 2.3x slower than the
     * misaligned one (64@56 at 80%: 2.47 against 1.12 ms) */
    if (aligned < 0 && 4.0 * (double)best.n_copies * (double)best.copy_floats > BLOCK_BYTES)
        return;
    *g = best;
}

/* ---- the column-tap layout -------------------------------------------------------
 *
 * Small output planes waste lanes and misalign loads in the flat layout: a
 * 7x7 map padded to 9 columns is 63 positions in 4 vectors, and the taps'
 * offsets ky*9 + kx leave 8 of 9 loads crossing a cache line. Here each
 * column tap kx gets its own copy of the packed input, already moved by
 * the tap's column offset (copy kx, column q holds padded column q*sw +
 * kx*dil_w; stride rows split into phases as before), so a tap's offset is
 * only its channel, row phase and row: (dy / sh) * Q. The plane's width Q
 * is then free (>= out_w, no padding columns needed), and is picked so that
 * row offsets fall on vector boundaries with few garbage columns: 7x7 ->
 * Q = 8 (every other row tap aligned, 56 positions), 14x14 -> Q = 16 (all
 * aligned, the same 224 positions). The price is kw copies of the input,
 * so blocks are sized for their inputs, every copy, to stay in L2. */

#define COLS_BLOCK_BYTES (768 * 1024) /* one block's inputs, every copy: 3/4 of L2 */

static void geometry_cols_q(const struct dlas_conv_desc *d, int64_t Q, struct geom *g)
{
    memset(g, 0, sizeof *g);
    const int64_t hp = d->in_h + 2 * (int64_t)d->pad_h;
    g->R = pc_ceil_div(hp, d->stride_h);
    g->Q = Q;
    g->sub = pc_round_up(g->R * Q, PC_VL);
    g->cs = (int64_t)d->stride_h * g->sub;
    g->copy_floats = pc_round_up(d->in_c * g->cs + Q + 2 * PC_VL, PC_VL);
    g->n_vec = pc_ceil_div(d->out_h * Q, PC_VL);
    g->cols = 1;
    g->n_copies = d->kw;
}

/* Misaligned row taps a kernel call pays for at width Q. */
static double cols_misaligned(const struct dlas_conv_desc *d, int64_t Q)
{
    int bad = 0;
    for (int ky = 0; ky < d->kh; ky++)
        bad += (((int64_t)ky * d->dil_h / d->stride_h) * Q) % PC_VL != 0;
    return (double)bad / d->kh;
}

/* Q in [out_w, out_w rounded to 16] with the fewest positions, weighting
 * misaligned ones by MISALIGNED_COST; the block as in geometry(), its
 * inputs within COLS_BLOCK_BYTES. */
static void geometry_cols(const struct dlas_conv_desc *d, int v, int max_v0, struct geom *g)
{
    double best_cost = 0;
    const int64_t qmax = pc_round_up(d->out_w, PC_VL);
    for (int64_t Q = d->out_w; Q <= qmax; Q++) {
        struct geom c;
        geometry_cols_q(d, Q, &c);
        const double cost =
            (double)c.n_vec * (1.0 + (MISALIGNED_COST - 1.0) * cols_misaligned(d, Q));
        if (Q == d->out_w || cost < best_cost) {
            best_cost = cost;
            *g = c;
        }
    }
    if (v > 0) {
        g->v = (int)(v < g->n_vec ? v : g->n_vec);
        return;
    }
    for (int max_v = max_v0;; max_v--) {
        g->v = sc_even_block(g->n_vec, max_v);
        if (max_v == 1 || block_bytes(d, g, g->v) <= COLS_BLOCK_BYTES)
            return;
    }
}

/* Offsets are int32: the largest copy set either layout may pick must fit. */
static int cols_fits(const struct dlas_conv_desc *d)
{
    struct geom g;
    geometry_cols_q(d, pc_round_up(d->out_w, PC_VL), &g);
    return (double)d->kw * (double)g.copy_floats <= INT32_MAX;
}

/* Misaligned taps of the flat layout (none where every shift has a copy). */
static double flat_misaligned(const struct dlas_conv_desc *d, const struct geom *g)
{
    if (g->aligned)
        return 0.0;
    int bad = 0;
    for (int ky = 0; ky < d->kh; ky++)
        for (int kx = 0; kx < d->kw; kx++)
            bad += tap_base(d, g->Q, g->sub, ky, kx) % PC_VL != 0;
    return (double)bad / (d->kh * d->kw);
}

/* layout 0: flat; 1: columns; -1: auto (below). density: the weights'
 * fraction of non-zeros; rows: output channels a kernel call. */
static void pick_geometry(const struct dlas_conv_desc *d, int aligned, int shared_pad, int layout,
                          int v, int max_v0, double density, int rows, struct geom *g)
{
    geometry(d, aligned, shared_pad, v, max_v0, g);
    if (!layout || !cols_fits(d))
        return;
    struct geom c;
    geometry_cols(d, v, max_v0, &c);
    if (layout > 0) {
        *g = c;
        return;
    }
    /* auto: the kw copies of a whole image must stay within half of L2 (with
     * the weights streaming past): on larger planes the copies' traffic cost
     * more than the aligned loads gained (measured on ResNet-18's 14x14 to
     * 56x56 layers, where only 7x7 gained). And a kernel call must touch
     * each copy of a channel at least once on average (rows x kh x density
     * >= 1): sparser, a call brings in kw times the cache lines for the same
     * few non-zeros (7x7 at 95%: 10% slower; 70-90%: 3-20% faster). */
    const double k = MISALIGNED_COST - 1.0;
    if (4.0 * (double)c.n_copies * (double)c.copy_floats <= BLOCK_BYTES &&
        rows * d->kh * density >= 1.0 &&
        (double)c.n_vec * (1.0 + k * cols_misaligned(d, c.Q)) <
            (double)g->n_vec * (1.0 + k * flat_misaligned(d, g)))
        *g = c;
}

struct sd_state {
    struct pc_conv conv; /* host, be, d, cpg, opg */
    struct geom g;        /* the packed input's layout */
    int64_t img_floats;   /* packed floats of one image: every copy */
    int64_t n_vec, n_blk; /* vectors of the flattened output plane, blocks */
    int v;                      /* vectors a block */
    /* kernels for 1, 2, 4 output channels a call ([0], [1], [2]; NULL where
     * the block is too long), for full blocks and the last one */
    sc_kernel_fn kfull[3], klast[3];
    struct sc_csr csr;
    float *bias; /* out_c, NULL without bias */
};

static const struct dlas_param_spec sd_params[] = {
    {"vectors", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, SC_MAX_V, NULL,
     "vectors of 16 output positions held in registers per block and row (V); 0 = as even "
     "blocks as cover the output plane, of at most 14 (rows = 2) or 24; at most 14 with "
     "rows = 2"},
    {"aligned", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "off", 0, 0, "off|on|auto",
     "keep a copy of the packed input for each tap's shift mod 16 so that every load is "
     "aligned (more packing and cache: measured slower on ResNet-18's layers at 80-90% "
     "sparsity); auto: where an image's copies fit in half of L2 and the wider rows this "
     "may take cost less than misaligned loads"},
    {"rows", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "auto", 0, 0, "auto|1|2|4",
     "output channels per kernel call: 2 streams two sparse rows in step (twice the "
     "independent accumulators, and both rows read the same input channels at about the "
     "same time, so L1 serves the second; blocks of at most 14 vectors), 4 four (at most 7), "
     "1 one row (up to 28); auto: 4 where one block of at most 7 vectors covers the output "
     "plane, else 2"},
    {"layout", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "auto", 0, 0, "flat|columns|auto",
     "packed input: flat: one padded copy, positions along the padded width; columns: one "
     "copy per column tap, moved by the tap's offset, so the plane width is free (7x7 maps: "
     "56 positions, half the loads aligned; 14x14: every load aligned) at kw times the "
     "packing; auto: columns where its copies of an image fit in half of L2, a kernel call "
     "touches each copy of a channel at least once on average (rows x kh x density >= 1) and "
     "it needs fewer vectors, misaligned ones weighted"},
    {"half", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "auto", 0, 0, "auto|off",
     "auto: with rows = 4, where the plane's last vector holds at most 8 positions (7x7 maps "
     "at width 8), compute it as a half (256-bit) vector; off: a full one"},
    {"order", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "serpentine", 0, 0, "serpentine|channel",
     "order of a row's non-zeros: channel: by input channel (and tap) in every row; "
     "serpentine: every other kernel call's rows in reverse, so that a call starts on the "
     "input channels the call before it ended on, which are still in L1"},
    {"row_pad", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "shared", 0, 0, "shared|own",
     "flat layout, stride 1: shared: a row's right padding is the next row's left padding "
     "(plane width in_w + pad_w: 57 instead of 58 on a 56-wide 3x3 layer, 29 instead of 30 "
     "on a 28-wide one, 8 instead of 9 on 7x7); own: every row keeps both (in_w + 2 pad_w)"},
    SC_MIN_SPARSITY_PARAM,
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

struct off_ctx {
    const struct dlas_conv_desc *d;
    const struct geom *g;
    int64_t cpg;
};

/* Where weight (ic, ky, kx) of output channel oc reads output position 0:
 * the copy of its tap's shift, its channel, its tap (16-aligned). */
static int32_t sd_offset(const void *ctx, int64_t oc, int64_t ic, int ky, int kx)
{
    const struct off_ctx *c = ctx;
    const struct dlas_conv_desc *d = c->d;
    const struct geom *g = c->g;
    const int64_t grp = oc / (d->out_c / d->groups);
    if (g->cols) {
        const int64_t dy = (int64_t)ky * d->dil_h;
        return (int32_t)(kx * g->copy_floats + (grp * c->cpg + ic) * g->cs +
                         (dy % d->stride_h) * g->sub + (dy / d->stride_h) * g->Q);
    }
    const int64_t base = tap_base(d, g->Q, g->sub, ky, kx);
    if (!g->aligned)
        return (int32_t)((grp * c->cpg + ic) * g->cs + base);
    const int r = (int)(base % PC_VL);
    int j = 0;
    while (g->shift[j] != r)
        j++;
    return (int32_t)(j * g->copy_floats + (grp * c->cpg + ic) * g->cs + base - r);
}

/* Every block of output positions runs every output channel's row over
 * the block's inputs (all input channels: some 45-55 KB on ResNet-18's 3x3
 * layers, past a 32 KB L1), `rows` rows a kernel call, each row in input
 * channel order. Reversing every other call's rows makes a call start on
 * the channels the one before ended on, still in L1, instead of on the
 * channels it evicted longest ago. The sums are the same up to rounding
 * order. */
static void serpentine(struct sc_csr *csr, int rows)
{
    for (int64_t r = 0; r < csr->rows; r++) {
        if (!((r / rows) & 1))
            continue;
        struct sc_nz *a = csr->nz + csr->ptr[r], *b = csr->nz + csr->ptr[r + 1] - 1;
        for (; a < b; a++, b--) {
            struct sc_nz t = *a;
            *a = *b;
            *b = t;
        }
    }
}

/* ---- supports, prepare --------------------------------------------------------- */

static int sd_supports(const struct dlas_conv_desc *d, const struct dlas_params *p, char *why,
                       size_t len)
{
    int rc = sc_check_sparsity(NAME, d, p, why, len);
    if (rc)
        return rc;
    /* offsets are int32: the most copies at the widest plane must fit */
    struct geom g;
    const int64_t wp = d->in_w + 2 * (int64_t)d->pad_w;
    geometry_q(d, pc_ceil_div(wp, d->stride_w) + PC_VL - 1, 0, &g);
    if ((double)MAX_COPIES * (double)g.copy_floats > INT32_MAX)
        return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED,
                       "the padded input of one image (%lld floats a copy) exceeds the 32-bit "
                       "offsets of the sparse rows",
                       (long long)g.copy_floats);
    return DLAS_OK;
}

static void sd_release(void *state)
{
    struct sd_state *s = state;
    if (!s)
        return;
    sc_csr_free(s->conv.host, &s->csr);
    s->conv.host->free(s->bias);
    pc_conv_free(&s->conv);
}

static int sd_prepare(const struct dlas_host *host, const struct dlas_backend *be,
                      const struct dlas_conv_desc *d, const float *weight, const float *bias,
                      const struct dlas_params *p, void **state)
{
    *state = NULL;
    int rc = pc_check_prepare(NAME, be, d, weight, bias);
    if (rc || (rc = sd_supports(d, p, NULL, 0)))
        return rc;
    struct sd_state *s = pc_conv_alloc(NAME, host, be, d, sizeof *s);
    if (!s)
        return DLAS_ERR_NOMEM;
    const char *al = p ? dlas_param_str(p, "aligned") : NULL;
    const char *rows = p ? dlas_param_str(p, "rows") : NULL;
    const int aligned = !al || !strcmp(al, "off") ? 0 : !strcmp(al, "on") ? 1 : -1;
    const int vectors = p ? (int)dlas_param_int(p, "vectors") : 0;
    const char *lay = p ? dlas_param_str(p, "layout") : NULL;
    const char *rp = p ? dlas_param_str(p, "row_pad") : NULL;
    const int shared_pad = !rp || strcmp(rp, "own");
    const int layout = !lay || !strcmp(lay, "flat") ? 0 : !strcmp(lay, "columns") ? 1 : -1;
    int n_rows = rows && strcmp(rows, "auto") ? atoi(rows) : 2;
    const int64_t n_w = d->out_c * s->conv.cpg * d->kh * d->kw;
    const double density = n_w ? 1.0 - (double)sc_count_zeros(weight, n_w) / (double)n_w : 0.0;
    pick_geometry(d, aligned, shared_pad, layout, vectors,
                  n_rows == 4 ? SC_MAX_V4 : n_rows == 2 ? SC_MAX_V2 : DEFAULT_MAX_V, density,
                  n_rows, &s->g);
    /* auto: four rows where one block of at most 7 vectors covers the plane
     * (7x7 maps: measured 1.13x over two rows at 90% sparsity), else two */
    if ((!rows || !strcmp(rows, "auto")) && s->g.n_vec <= SC_MAX_V4) {
        n_rows = 4;
        pick_geometry(d, aligned, shared_pad, layout, vectors, SC_MAX_V4, density, n_rows, &s->g);
    }
    s->img_floats = s->g.n_copies * s->g.copy_floats;
    s->n_vec = s->g.n_vec;
    s->v = s->g.v;
    s->n_blk = pc_ceil_div(s->n_vec, s->v);
    const int v_last = (int)(s->n_vec - (s->n_blk - 1) * s->v);
    s->kfull[0] = sc_kernel(s->v);
    s->klast[0] = sc_kernel(v_last);
    if (n_rows >= 2) {
        s->kfull[1] = sc_kernel2(s->v);
        s->klast[1] = sc_kernel2(v_last);
    }
    if (n_rows >= 4) {
        s->kfull[2] = sc_kernel4(s->v);
        s->klast[2] = sc_kernel4(v_last);
        /* the last vector of the plane holding at most 8 positions (7x7 at
         * width 8: 56 = 3 x 16 + 8): a half vector for it */
        const char *half = p ? dlas_param_str(p, "half") : NULL;
        const int64_t in_last = d->out_h * s->g.Q - (s->n_vec - 1) * PC_VL;
        if ((!half || strcmp(half, "off")) && in_last <= PC_VL / 2 && v_last >= 2)
            s->klast[2] = sc_kernel4h(v_last - 1);
    }

    struct off_ctx oc = {d, &s->g, s->conv.cpg};
    if ((rc = sc_csr_build(host, weight, d->out_c, s->conv.cpg, d->kh, d->kw, sd_offset, &oc,
                           &s->csr))) {
        sd_release(s);
        return dlas_error(rc, NAME ": %s", dlas_last_error());
    }
    if ((rc = pc_conv_bias(&s->conv, NAME, bias, s->conv.opg, &s->bias))) {
        sd_release(s);
        return rc;
    }
    const char *order = p ? dlas_param_str(p, "order") : NULL;
    if (!order || strcmp(order, "channel"))
        serpentine(&s->csr, n_rows);
    *state = s;
    return DLAS_OK;
}

static size_t sd_workspace(void *state, int64_t batch)
{
    const struct sd_state *s = state;
    return batch > 0 ? (size_t)(batch * s->img_floats) * sizeof(float) : 0;
}

/* ---- run ------------------------------------------------------------------------- */

struct run_ctx {
    const struct sd_state *s;
    const float *in;
    float *out;
    int64_t n_occ, occ; /* output channels split into n_occ chunks of occ */
};

/* Short rows (7 to 58 floats on ResNet-18) are copied and cleared inline
 * rather than by a libc call per row segment: at 99.9% sparsity, where
 * packing and scattering are nearly all the work, ResNet-18's 13 3x3
 * layers took 1.1-1.5 ms against 1.3-2.0 with memcpy/memset (measured
 * interleaved, CPU clock). GCC turns such loops back into memset/memmove
 * calls (-ftree-loop-distribute-patterns, on at -O3), so this plugin is
 * built without that (local.mk): 13 layers at 99.9% 1.13-1.24 ms against
 * 1.40-1.64 with the calls (alternating runs, CPU clock, load 5.5). */
typedef float sd_v8u __attribute__((vector_size(32), aligned(4), may_alias));

/* Whole vectors, then a half one (rows of 56 or 28 floats end in 8 or 12). */
static inline void copy_f(float *restrict dst, const float *restrict src, int64_t n)
{
    int64_t i = 0;
    for (; i + PC_VL <= n; i += PC_VL)
        pc_store(dst + i, pc_load(src + i));
    if (i + PC_VL / 2 <= n) {
        *(sd_v8u *)(dst + i) = *(const sd_v8u *)(src + i);
        i += PC_VL / 2;
    }
    for (; i < n; i++)
        dst[i] = src[i];
}

static inline void zero_f(float *dst, int64_t n)
{
    const pc_v16 z = {0};
    int64_t i = 0;
    for (; i + PC_VL <= n; i += PC_VL)
        pc_store(dst + i, z);
    if (i + PC_VL / 2 <= n) {
        *(sd_v8u *)(dst + i) = (sd_v8u){0};
        i += PC_VL / 2;
    }
    for (; i < n; i++)
        dst[i] = 0.0f;
}

/* Stride 1: one plane, each image row at (ih + pad_h) * Q + pad_w, and
 * between two rows' data one run of Q - in_w zeros (the right padding of
 * one row, the garbage columns and the left padding of the next). */
static void pack_stride1(const struct sd_state *s, const float *src, float *plane)
{
    const struct dlas_conv_desc *d = &s->conv.d;
    const int64_t Q = s->g.Q, w = d->in_w;
    const int64_t first = (int64_t)d->pad_h * Q + d->pad_w;
    zero_f(plane, first);
    float *row = plane + first;
    for (int64_t ih = 0; ih < d->in_h; ih++, row += Q) {
        copy_f(row, src + ih * w, w);
        if (ih + 1 < d->in_h)
            zero_f(row + w, Q - w);
    }
    /* from the end of the last row's data to the end of the plane */
    const int64_t done = (int64_t)(row - plane) - Q + w;
    zero_f(plane + done, s->g.sub - done);
}

/* Channel src (in_h x in_w) padded and split into stride phases at dst. */
static void pack_plain(const struct sd_state *s, const float *src, float *dst)
{
    const struct dlas_conv_desc *d = &s->conv.d;
    const struct geom *g = &s->g;
    const int sh = d->stride_h, sw = d->stride_w;
    if (sh == 1 && sw == 1 && g->Q >= d->in_w + (int64_t)d->pad_w) {
        pack_stride1(s, src, dst);
        return;
    }
    for (int rph = 0; rph < sh; rph++)
        for (int cph = 0; cph < sw; cph++) {
            float *plane = dst + (rph * sw + cph) * g->sub;
            /* plane column q holds padded column q*sw + cph: image columns
             * [lo, hi) of it are inside the image */
            int64_t lo, hi;
            pc_span(d->pad_w - cph, d->in_w + d->pad_w - cph, sw, g->Q, &lo, &hi);
            for (int64_t r = 0; r < g->R; r++) {
                float *row = plane + r * g->Q;
                const int64_t ih = r * sh + rph - d->pad_h;
                if (ih < 0 || ih >= d->in_h || lo >= hi) {
                    memset(row, 0, (size_t)g->Q * sizeof(float));
                    continue;
                }
                const float *irow = src + ih * d->in_w;
                memset(row, 0, (size_t)lo * sizeof(float));
                if (sw == 1)
                    memcpy(row + lo, irow + lo - d->pad_w, (size_t)(hi - lo) * sizeof(float));
                else
                    for (int64_t q = lo; q < hi; q++)
                        row[q] = irow[q * sw + cph - d->pad_w];
                memset(row + hi, 0, (size_t)(g->Q - hi) * sizeof(float));
            }
            memset(plane + g->R * g->Q, 0, (size_t)(g->sub - g->R * g->Q) * sizeof(float));
        }
}

/* Items: (image, input channel): the channel padded into copy 0, then
 * moved left by each other copy's shift r (the channel's first r floats
 * land in the previous channel's slots, which that channel's item does not
 * write, so the items stay independent). */
/* Channel ch of one image (src: in_h x in_w) into every column-tap copy:
 * copy kx, row phase rph, row r, column q holds padded input (r*sh + rph,
 * q*sw + kx*dil_w), zero outside the image; past the last channel, the
 * tail is cleared. */
#define COLS_FAST_FLOATS 4096 /* one padded channel on the stack (16 KB) */

/* Stride 1 with a padded channel of at most COLS_FAST_FLOATS: the channel
 * padded once into a stack buffer, then each copy's rows taken from it by
 * whole vectors. A row's store runs past its Q floats into the next row,
 * which is written after it (the last row of a plane is copied exactly, so
 * nothing lands in the next channel, another item's). */
static int pack_cols_fast(const struct sd_state *s, const float *src, float *img, int64_t ch)
{
    const struct dlas_conv_desc *d = &s->conv.d;
    const struct geom *g = &s->g;
    const int64_t wp = d->in_w + 2 * (int64_t)d->pad_w, hp = d->in_h + 2 * (int64_t)d->pad_h;
    const int64_t reach = ((int64_t)d->kw - 1) * d->dil_w, nv = pc_ceil_div(g->Q, PC_VL);
    if (d->stride_h != 1 || d->stride_w != 1 || g->R != hp ||
        hp * wp + reach + nv * PC_VL > COLS_FAST_FLOATS)
        return 0;
    float buf[COLS_FAST_FLOATS] __attribute__((aligned(64)));
    const int64_t first = (int64_t)d->pad_h * wp + d->pad_w;
    zero_f(buf, first);
    float *row = buf + first;
    for (int64_t ih = 0; ih < d->in_h; ih++, row += wp) {
        copy_f(row, src + ih * d->in_w, d->in_w);
        zero_f(row + d->in_w, 2 * (int64_t)d->pad_w);
    }
    const int64_t done = (int64_t)(row - buf) - d->pad_w;
    zero_f(buf + done, hp * wp + reach + nv * PC_VL - done);
    for (int kx = 0; kx < d->kw; kx++) {
        const float *from = buf + (int64_t)kx * d->dil_w;
        float *plane = img + kx * g->copy_floats + ch * g->cs;
        /* rows by whole vectors while they end inside the plane (the last
         * one's overrun then fills the plane's padding with the buffer's
         * zeros or other finite inputs: only garbage positions read it),
         * the rest exactly */
        int64_t whole = (g->sub - nv * PC_VL) / g->Q + 1;
        whole = whole < g->R ? whole : g->R;
        for (int64_t r = 0; r < whole; r++)
            for (int64_t v = 0; v < nv; v++)
                pc_store(plane + r * g->Q + v * PC_VL, pc_load(from + r * wp + v * PC_VL));
        for (int64_t r = whole; r < g->R; r++)
            copy_f(plane + r * g->Q, from + r * wp, g->Q);
        const int64_t filled = whole < g->R ? g->R * g->Q : (whole - 1) * g->Q + nv * PC_VL;
        zero_f(plane + filled, g->sub - filled);
        if (ch == d->in_c - 1)
            zero_f(img + kx * g->copy_floats + d->in_c * g->cs,
                   g->copy_floats - d->in_c * g->cs);
    }
    return 1;
}

static void pack_cols(const struct sd_state *s, const float *src, float *img, int64_t ch)
{
    const struct dlas_conv_desc *d = &s->conv.d;
    const struct geom *g = &s->g;
    const int sh = d->stride_h, sw = d->stride_w;
    if (pack_cols_fast(s, src, img, ch))
        return;
    for (int kx = 0; kx < d->kw; kx++) {
        const int64_t dx = (int64_t)kx * d->dil_w;
        int64_t lo, hi;
        pc_span(d->pad_w - dx, d->in_w + d->pad_w - dx, sw, g->Q, &lo, &hi);
        float *copy = img + kx * g->copy_floats;
        for (int rph = 0; rph < sh; rph++) {
            float *plane = copy + ch * g->cs + rph * g->sub;
            for (int64_t r = 0; r < g->R; r++) {
                float *row = plane + r * g->Q;
                const int64_t ih = r * sh + rph - d->pad_h;
                if (ih < 0 || ih >= d->in_h || lo >= hi) {
                    zero_f(row, g->Q);
                    continue;
                }
                const float *irow = src + ih * d->in_w + dx - d->pad_w;
                zero_f(row, lo);
                if (sw == 1)
                    copy_f(row + lo, irow + lo, hi - lo);
                else
                    for (int64_t q = lo; q < hi; q++)
                        row[q] = irow[q * sw];
                zero_f(row + hi, g->Q - hi);
            }
            zero_f(plane + g->R * g->Q, g->sub - g->R * g->Q);
        }
        if (ch == d->in_c - 1)
            zero_f(copy + d->in_c * g->cs, g->copy_floats - d->in_c * g->cs);
    }
}

static void pack_channels(const void *ctx, float *ws, int64_t i0, int64_t i1)
{
    const struct run_ctx *c = ctx;
    const struct sd_state *s = c->s;
    const struct dlas_conv_desc *d = &s->conv.d;
    const struct geom *g = &s->g;
    for (int64_t it = i0; it < i1; it++) {
        const int64_t n = it / d->in_c, ch = it % d->in_c;
        float *img = ws + n * s->img_floats;
        if (g->cols) {
            pack_cols(s, c->in + (n * d->in_c + ch) * d->in_h * d->in_w, img, ch);
            continue;
        }
        const float *plain = img + ch * g->cs;
        pack_plain(s, c->in + (n * d->in_c + ch) * d->in_h * d->in_w, img + ch * g->cs);
        const int last = ch == d->in_c - 1;
        if (last) /* the tail past the last channel */
            memset(img + d->in_c * g->cs, 0,
                   (size_t)(g->copy_floats - d->in_c * g->cs) * sizeof(float));
        for (int j = 1; j < g->n_copies; j++) {
            const int64_t r = g->shift[j], skip = ch ? 0 : r;
            float *copy = img + j * g->copy_floats;
            memcpy(copy + ch * g->cs - r + skip, plain + skip,
                   (size_t)(g->cs - skip) * sizeof(float));
            if (last)
                memset(copy + d->in_c * g->cs - r, 0,
                       (size_t)(g->copy_floats - d->in_c * g->cs + r) * sizeof(float));
        }
    }
}

/* The flattened positions [p0, p0 + np) of tile into output plane dst
 * (out_h x out_w), dropping the columns >= out_w. */
static void scatter(const struct sd_state *s, const float *tile, int64_t p0, int64_t np,
                    float *dst)
{
    const int64_t Q = s->g.Q, ow_n = s->conv.d.out_w, end = p0 + np;
    for (int64_t oh = p0 / Q; oh * Q < end && oh < s->conv.d.out_h; oh++) {
        int64_t a = oh * Q > p0 ? oh * Q : p0, b = oh * Q + ow_n < end ? oh * Q + ow_n : end;
        if (a < b)
            copy_f(dst + oh * ow_n + (a - oh * Q), tile + (a - p0), b - a);
    }
}

/* Items: (image, block of output positions, chunk of output channels). */
static void compute_items(const void *ctx, const float *ws, int64_t i0, int64_t i1)
{
    const struct run_ctx *c = ctx;
    const struct sd_state *s = c->s;
    const struct dlas_conv_desc *d = &s->conv.d;
    float tile[SC_MAX_V * PC_VL] __attribute__((aligned(64)));
    const int64_t ohw = d->out_h * d->out_w, per_img = s->n_blk * c->n_occ;
    const int64_t *ptr = s->csr.ptr;
    for (int64_t it = i0; it < i1; it++) {
        const int64_t n = it / per_img, k = it % per_img, blk = k / c->n_occ, occ = k % c->n_occ;
        const int64_t p0 = blk * s->v * PC_VL;
        const int last = blk == s->n_blk - 1;
        const int64_t nv = last ? s->n_vec - blk * s->v : s->v;
        const sc_kernel_fn *kern = last ? s->klast : s->kfull;
        int64_t oc0 = occ * c->occ, oc1 = oc0 + c->occ < d->out_c ? oc0 + c->occ : d->out_c;
        struct sc_kargs a;
        memset(&a, 0, sizeof a);
        a.x = ws + n * s->img_floats + p0;
        a.act = d->activation;
        a.dst = tile;
        float *dst = c->out + n * d->out_c * ohw;
        for (int64_t oc = oc0; oc < oc1;) {
            /* as many rows a call as configured, fewer at the chunk's end */
            int lg = 2;
            while (lg > 0 && (!kern[lg] || oc + (1 << lg) > oc1))
                lg--;
            const struct sc_nz **nzp[4] = {&a.nz, &a.nz2, &a.nz3, &a.nz4};
            int64_t *nnzp[4] = {&a.nnz, &a.nnz2, &a.nnz3, &a.nnz4};
            float *biasp[4] = {&a.bias, &a.bias2, &a.bias3, &a.bias4};
            for (int r = 0; r < 1 << lg; r++) {
                *nzp[r] = s->csr.nz + ptr[oc + r];
                *nnzp[r] = ptr[oc + r + 1] - ptr[oc + r];
                *biasp[r] = s->bias ? s->bias[oc + r] : 0.0f;
            }
            kern[lg](&a);
            for (int r = 0; r < 1 << lg; r++)
                scatter(s, tile + r * nv * PC_VL, p0, nv * PC_VL, dst + (oc + r) * ohw);
            oc += 1 << lg;
        }
    }
}

static int sd_run(void *state, int64_t batch, const float *in, float *out, void *ws,
                  struct dlas_profile *prof)
{
    const struct sd_state *s = state;
    int rc = pc_check_run(NAME, s, batch, in, out, ws);
    if (rc || !batch)
        return rc;
    const struct dlas_conv_desc *d = &s->conv.d;
    /* enough items for every thread to get a few, splitting output
     * channels only when the blocks alone are too few */
    const int64_t want = 4 * (int64_t)pc_threads(&s->conv.be), have = batch * s->n_blk;
    int64_t n_occ = have >= want ? 1 : pc_ceil_div(want, have);
    if (n_occ > d->out_c)
        n_occ = d->out_c;
    const int64_t occ = pc_ceil_div(d->out_c, n_occ);
    struct run_ctx c = {s, in, out, pc_ceil_div(d->out_c, occ), occ};
    /* packed once, shared (copy_floats 0): its workspace holds one copy */
    struct pc_phases ph = {&c,           ws,       0,   batch * d->in_c, batch * s->n_blk * c.n_occ,
                           pack_channels, compute_items, NULL, "compute"};
    pc_run_phases(&s->conv.be, 0, &ph, prof);
    return DLAS_OK;
}

static const struct dlas_primitive_ops sd_ops =
    PRIM_CONV_OPS("cpu", sd_supports, sd_prepare, sd_workspace, sd_run, sd_release);

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_PRIMITIVE, NAME,
     "direct sparse convolution: CSR weights with offsets into the padded input, vectorised "
     "over the flattened output plane (AVX-512 when the CPU has it); any stride, padding, "
     "dilation, groups",
     "J. Park, S. Li, W. Wen, P. T. P. Tang, H. Li, Y. Chen, P. Dubey. Faster CNNs with "
     "Direct Sparse Convolutions and Guided Pruning. ICLR 2017",
     sd_params, &sd_ops},
};

DLAS_PLUGIN(NAME, "0.1.0", "direct sparse convolution (CSR)", components)
