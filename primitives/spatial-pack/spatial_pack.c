/* Primitive "spatial-pack": the spatial-pack convolution schedule of TVM
 * (Chen et al., OSDI'18; topi conv2d_spatial_pack), on the CPU.
 *
 * The output is cut into TH x TW tiles. run() first packs, for every tile,
 * the input window that tile reads (its halo included) into a contiguous
 * channel-blocked buffer ("data_vec"), then computes each tile in VH x VW
 * register blocks for B vectors of 16 output channels with the micro-kernel
 * of prim_common.h, reading weights packed once in prepare() ("kernel_vec",
 * [co/VC][ci][kh][kw][VC]), and unpacks each block into NCHW as it
 * finishes. Against `direct` (one padded copy of the whole input), every
 * tile here reads one contiguous buffer sized to stay in L2, at the price of
 * its halo packed twice; the tile and register-block sizes are TVM's knobs.
 *
 * Threading: one OpenMP region per run(); tiles are packed in parallel,
 * then (after a barrier) the (tile, channel block) items are split
 * contiguously over the threads in the configured order. */
#include <string.h>

#include "../common/prim_common.h"

#define NAME "spatial-pack"
#define TILES_ORDER_MAX_WEIGHTS (512 * 1024)

enum order { ORDER_TILES, ORDER_CHANNELS };

struct sp_state {
    struct pc_conv conv;  /* host, be, d, cpg, opg */
    struct pc_blocked pk; /* b, n_ob, packed weights and bias, tap offsets */
    int vh, vw;
    int64_t th, tw;       /* tile: output rows x columns (multiples of vh, vw) */
    enum order order;
    int64_t th_n, tw_n;   /* tiles down and across */
    struct pc_window win; /* one tile's window (row0/col0 per tile) */
    int64_t tile_floats;  /* packed floats of one tile, all channel blocks */
};

static const struct dlas_param_spec sp_params[] = {
    {"oc_vectors", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, 4, NULL,
     "output-channel vectors of 16 per register block (VC = 16 * this); 0 = from the layer"},
    {"reg_h", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "auto", 0, 0, "auto|1|2|4",
     "output rows per register block (VH)"},
    {"reg_w", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, 16, NULL,
     "output columns per register block (VW); 0 = from the layer; VH * VW * VC/16 <= 28"},
    {"tile_h", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, 64, NULL,
     "output rows per packed tile, a multiple of reg_h; 0 = sized for L2"},
    {"tile_w", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, 256, NULL,
     "output columns per packed tile, a multiple of reg_w; 0 = the whole row"},
    {"order", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "auto", 0, 0, "auto|tiles|channels",
     "work order: every channel block of a tile before the next tile, or every tile of a "
     "channel block before the next block; auto picks by weight size"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

/* Bytes of a packed tile (all channel blocks) the automatic size aims at. */
#define TILE_BYTES (160 * 1024)

struct blocking {
    int vh, vw, b;
    int64_t th, tw;
    enum order order;
};

static int choose_blocking(const struct dlas_conv_desc *d, const struct dlas_params *p,
                           struct blocking *bl, char *why, size_t len)
{
    const int64_t opg = d->out_c / d->groups;
    int b = p ? (int)dlas_param_int(p, "oc_vectors") : 0;
    int vw = p ? (int)dlas_param_int(p, "reg_w") : 0;
    const char *vhs = p ? dlas_param_str(p, "reg_h") : NULL;
    if (!vhs)
        vhs = "auto";
    int vh = strcmp(vhs, "auto") ? vhs[0] - '0' : 0;
    if (!b)
        b = pc_auto_b(opg, d->out_w);
    if (b > PC_MAX_B)
        b = PC_MAX_B;
    if (!vh || !vw) {
        /* the block that wastes least on the edges, favouring full registers */
        static const int vhs_try[] = {1, 2, 4};
        double best = -1;
        int bh = 0, bw = 0;
        for (int i = 0; i < 3; i++) {
            int h = vhs_try[i];
            if (vh && h != vh)
                continue;
            for (int w = 1; w <= PC_MAX_VW; w++) {
                if (vw && w != vw)
                    continue;
                if (!pc_kernel(h, w, b) || h * w * b > PC_ACC_REGS)
                    continue;
                double useful = (double)(d->out_h * d->out_w) /
                                (double)(pc_round_up(d->out_h, h) * pc_round_up(d->out_w, w));
                double fill = (double)(h * w * b) / (PC_ACC_REGS < 24 ? PC_ACC_REGS : 24.0);
                double score = useful * (fill < 1 ? fill : 1) + 1e-3 * w;
                if (score > best) {
                    best = score;
                    bh = h;
                    bw = w;
                }
            }
        }
        vh = bh;
        vw = bw;
    }
    if (!vh || !pc_kernel(vh, vw, b))
        return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED,
                       "no kernel for a %dx%d register block with %d channel vectors "
                       "(reg_h in 1,2,4, reg_h * reg_w * oc_vectors <= 28, reg_h * reg_w "
                       "<= 16)",
                       vh, vw, b);
    int64_t th = p ? dlas_param_int(p, "tile_h") : 0, tw = p ? dlas_param_int(p, "tile_w") : 0;
    if ((th && th % vh) || (tw && tw % vw))
        return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED,
                       "a %lldx%lld tile is not made of %dx%d register blocks", (long long)th,
                       (long long)tw, vh, vw);
    if (!tw)
        tw = pc_round_up(d->out_w, vw);
    if (!th) {
        /* rows of register blocks while the packed window stays near TILE_BYTES */
        int64_t cpg = d->in_c / d->groups;
        int64_t cols = (tw - 1) * d->stride_w + (int64_t)(d->kw - 1) * d->dil_w + 1;
        int64_t per_row = pc_round_up(cpg, PC_VL) * (cols + d->stride_w) * 4;
        int64_t halo = (int64_t)(d->kh - 1) * d->dil_h;
        int64_t rows = TILE_BYTES / (per_row > 0 ? per_row : 1);
        th = (rows - halo) / d->stride_h;
        th = th < vh ? vh : th / vh * vh;
        if (th > pc_round_up(d->out_h, vh))
            th = pc_round_up(d->out_h, vh);
    }
    const char *ord = p ? dlas_param_str(p, "order") : NULL;
    if (ord && !strcmp(ord, "tiles"))
        bl->order = ORDER_TILES;
    else if (ord && !strcmp(ord, "channels"))
        bl->order = ORDER_CHANNELS;
    else {
        int64_t wbytes = d->out_c * (d->in_c / d->groups) * d->kh * d->kw * 4;
        bl->order = wbytes <= TILES_ORDER_MAX_WEIGHTS ? ORDER_TILES : ORDER_CHANNELS;
    }
    bl->vh = vh;
    bl->vw = vw;
    bl->b = b;
    bl->th = th;
    bl->tw = tw;
    return DLAS_OK;
}

static int sp_supports(const struct dlas_conv_desc *d, const struct dlas_params *p, char *why,
                       size_t len)
{
    int rc = pc_check_not_depthwise(NAME, d, why, len);
    if (rc)
        return rc;
    struct blocking bl;
    return choose_blocking(d, p, &bl, why, len);
}

static void sp_release(void *state)
{
    struct sp_state *s = state;
    if (!s)
        return;
    pc_blocked_free(&s->conv, &s->pk);
    pc_conv_free(&s->conv);
}

static int sp_prepare(const struct dlas_host *host, const struct dlas_backend *be,
                      const struct dlas_conv_desc *d, const float *weight, const float *bias,
                      const struct dlas_params *p, void **state)
{
    *state = NULL;
    int rc = pc_check_prepare(NAME, be, d, weight, bias);
    struct blocking bl;
    if (rc || (rc = sp_supports(d, p, NULL, 0)) || (rc = choose_blocking(d, p, &bl, NULL, 0)))
        return rc;
    struct sp_state *s = pc_conv_alloc(NAME, host, be, d, sizeof *s);
    if (!s)
        return DLAS_ERR_NOMEM;
    s->vh = bl.vh;
    s->vw = bl.vw;
    s->th = bl.th;
    s->tw = bl.tw;
    s->order = bl.order;
    if ((rc = pc_blocked_new(&s->conv, NAME, weight, bias, bl.b, &s->pk))) {
        sp_release(s);
        return rc;
    }
    s->th_n = pc_ceil_div(d->out_h, s->th);
    s->tw_n = pc_ceil_div(d->out_w, s->tw);

    const int sw = d->stride_w;
    struct pc_window *w = &s->win;
    w->rows = (s->th - 1) * d->stride_h + (int64_t)(d->kh - 1) * d->dil_h + 1;
    w->cols = (s->tw - 1) * sw + (int64_t)(d->kw - 1) * d->dil_w + 1;
    w->sw = sw;
    w->q = s->tw + (int64_t)(d->kw - 1) * d->dil_w / sw;
    if (pc_ceil_div(w->cols, sw) > w->q)
        w->q = pc_ceil_div(w->cols, sw);
    s->tile_floats = s->pk.nblk * pc_window_block(w);
    pc_tap_offsets(d, w, s->pk.tap_off);
    *state = s;
    return DLAS_OK;
}

static size_t sp_workspace(void *state, int64_t batch)
{
    const struct sp_state *s = state;
    if (batch <= 0)
        return 0;
    /* the packed tiles: a copy a thread while small (pc_run_phases) */
    const int64_t per = s->conv.d.groups * s->th_n * s->tw_n * s->tile_floats;
    return (size_t)pc_pack_ws_floats(pc_threads(&s->conv.be), batch, per) * sizeof(float);
}

struct run_ctx {
    const struct sp_state *s;
    const float *in;
    const float *res; /* a residual laid out as out, or NULL */
    float *out;
};

/* Tiles [t0, t1) of the global tile space (image, group, tile row, tile col). */
static void pack_tiles(const void *ctx, float *ws, int64_t t0, int64_t t1)
{
    const struct run_ctx *c = ctx;
    const struct sp_state *s = c->s;
    const struct dlas_conv_desc *d = &s->conv.d;
    const int64_t per_ig = s->th_n * s->tw_n;
    for (int64_t t = t0; t < t1; t++) {
        int64_t ig = t / per_ig, k = t % per_ig;
        int64_t n = ig / d->groups, g = ig % d->groups;
        struct pc_window w = s->win;
        w.row0 = k / s->tw_n * s->th * d->stride_h;
        w.col0 = k % s->tw_n * s->tw * d->stride_w;
        const float *src = c->in + (n * d->in_c + g * s->conv.cpg) * d->in_h * d->in_w;
        pc_pack_window(src, s->conv.cpg, d->in_h, d->in_w, d->pad_h, d->pad_w, &w,
                       ws + t * s->tile_floats, 0, s->pk.nblk);
    }
}

static void compute_items(const void *ctx, const float *ws, int64_t i0, int64_t i1)
{
    const struct run_ctx *c = ctx;
    const struct sp_state *s = c->s;
    const struct dlas_conv_desc *d = &s->conv.d;
    const int64_t per_ig_tiles = s->th_n * s->tw_n, per_ig = per_ig_tiles * s->pk.n_ob;
    const int lanes = s->pk.b * PC_VL;
    const int64_t ohw = d->out_h * d->out_w;
    float tile[PC_MAX_ACC * PC_VL] __attribute__((aligned(64)));
    struct pc_kargs a;
    pc_kargs_init(&a, d, s->conv.cpg, s->pk.tap_off, &s->win, tile, lanes);
    const pc_kernel_fn kern = pc_kernel(s->vh, s->vw, s->pk.b);
    for (int64_t it = i0; it < i1; it++) {
        int64_t ig = it / per_ig, k = it % per_ig, ob, tk;
        if (s->order == ORDER_TILES) {
            tk = k / s->pk.n_ob;
            ob = k % s->pk.n_ob;
        } else {
            ob = k / per_ig_tiles;
            tk = k % per_ig_tiles;
        }
        int64_t n = ig / d->groups, g = ig % d->groups;
        const float *packed = ws + (ig * per_ig_tiles + tk) * s->tile_floats;
        a.w = s->pk.w + (g * s->pk.n_ob + ob) * s->pk.ob_floats;
        a.bias = s->pk.bias ? s->pk.bias + (g * s->pk.n_ob + ob) * lanes : NULL;
        int64_t oc0 = ob * lanes, nc = s->conv.opg - oc0 < lanes ? s->conv.opg - oc0 : lanes;
        const int64_t at_c = (n * d->out_c + g * s->conv.opg + oc0) * ohw;
        const int64_t toh = tk / s->tw_n * s->th, tow = tk % s->tw_n * s->tw;
        /* the register blocks of the tile that hold output pixels */
        for (int64_t r = 0; r < s->th && toh + r < d->out_h; r += s->vh)
            for (int64_t q = 0; q < s->tw && tow + q < d->out_w; q += s->vw) {
                a.in = packed + r * a.row_stride + q * PC_VL;
                int64_t oh0 = toh + r, ow0 = tow + q;
                int nr = d->out_h - oh0 < s->vh ? (int)(d->out_h - oh0) : s->vh;
                int nw = d->out_w - ow0 < s->vw ? (int)(d->out_w - ow0) : s->vw;
                const int64_t at = at_c + oh0 * d->out_w + ow0;
                if (c->res)
                    pc_prefetch_tile(c->res + at, nc, nr, nw, ohw, d->out_w);
                kern(&a);
                pc_scatter_tile(tile, lanes, s->vh, s->vw, nr, nw, nc, c->out + at,
                                c->res ? c->res + at : NULL, ohw, d->out_w, d->activation);
            }
    }
}

static int sp_run_residual(void *state, int64_t batch, const float *in, const float *res,
                           float *out, void *ws, struct dlas_profile *prof)
{
    const struct sp_state *s = state;
    int rc = pc_check_run(NAME, s, batch, in, out, ws);
    if (rc || !batch)
        return rc;
    struct run_ctx c = {s, in, res, out};
    const int64_t tiles = batch * s->conv.d.groups * s->th_n * s->tw_n;
    struct pc_phases ph = {&c,    ws,           tiles * s->tile_floats, tiles, tiles * s->pk.n_ob,
                           pack_tiles, compute_items, NULL,           "compute"};
    pc_run_phases(&s->conv.be, 0, &ph, prof);
    return DLAS_OK;
}

static int sp_run(void *state, int64_t batch, const float *in, float *out, void *ws,
                  struct dlas_profile *prof)
{
    return sp_run_residual(state, batch, in, NULL, out, ws, prof);
}

static const struct dlas_primitive_ops sp_ops =
    PRIM_CONV_OPS_RESIDUAL("cpu", sp_supports, sp_prepare, sp_workspace, sp_run, sp_release,
                           sp_run_residual);

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_PRIMITIVE, NAME,
     "TVM-style spatial pack: input tiles with their halo packed contiguously, weights "
     "packed once, a VH x VW x VC register-blocked micro-kernel; any stride, padding, "
     "dilation, groups",
     "T. Chen, T. Moreau, Z. Jiang, L. Zheng, E. Yan, M. Cowan, H. Shen, L. Wang, Y. Hu, "
     "L. Ceze, C. Guestrin, A. Krishnamurthy. TVM: An Automated End-to-End Optimizing "
     "Compiler for Deep Learning. OSDI'18 (topi conv2d_spatial_pack schedule)",
     sp_params, &sp_ops},
};

DLAS_PLUGIN(NAME, "0.1.0", "TVM-style spatial-pack convolution", components)
