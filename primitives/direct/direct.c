/* Primitive "direct": direct convolution with a register-blocked,
 * vectorised micro-kernel over output channels and output width, in the
 * manner of Georganas et al. (SC'18) and oneDNN's AVX-512 direct kernels.
 *
 * run() packs the zero-padded input of each image and group once into the
 * channel-blocked layout of prim_common.h (16 channels of a pixel form a
 * vector; columns split into stride phases), then every VH x VW block of
 * output pixels is computed for B vectors of 16 output channels entirely in
 * registers: per input channel and kernel tap, B weight vectors are loaded
 * and each of the VH*VW input values is broadcast against them. Weights are
 * packed once in prepare() in exactly the order the kernel reads them. The
 * finished block is transposed back into NCHW on the way out.
 *
 * Threading: one OpenMP region per run(): the packing is split by rows,
 * then (after a barrier) the output blocks, ordered so that each thread
 * either sweeps whole rows for every channel block (weights stay in L2) or
 * whole channel blocks over every row (when the weights are too large to).
 * Rows outermost, each thread instead packs the rows of the row blocks it
 * takes into a copy of its own, with no barrier (band_rows). */
#include <omp.h>
#include <string.h>

#include "../../core/kernels/eltwise.h"
#include "../common/prim_common.h"
#include "planes.h"

#define NAME "direct"
/* Packed weights beyond this many bytes do not stay in L2 across a row, so
 * each thread then works through whole output-channel blocks instead. */
#define ROWS_ORDER_MAX_WEIGHTS (512 * 1024)

enum order { ORDER_ROWS, ORDER_CHANNELS };

struct direct_state {
    struct pc_conv conv;  /* host, be, d, cpg, opg */
    struct pc_blocked pk; /* b, n_ob, packed weights and bias, tap offsets */
    int vh, vw;
    enum order order;
    struct pc_window win;
    int64_t img_floats; /* packed floats of one group of one image */
    int planes;         /* input = planes (planes.h): pl replaces win */
    struct dp_planes pl;
    /* a view that takes a prologue (run_prologue): pl read from a thread's
     * scratch row (dp_planes_scratch); tap_off NULL where it does not */
    struct dp_planes pro;
    /* layouts (set_layouts): input, output and residual in
     * DLAS_LAYOUT_C16; in_view: the input is the packed window itself (a
     * 1x1 kernel, stride 1, no padding), nothing to pack. A C16 layout runs
     * on the window path, so a planes state keeps what prepare chose for
     * NCHW in nchw (planes, vh, vw, img_floats) to return to. */
    int in_c16, out_c16, res_c16, in_view;
    struct {
        int planes, vh, vw;
        int64_t img_floats;
    } nchw;
};

/* ---- parameters ---------------------------------------------------------- */

static const struct dlas_param_spec direct_params[] = {
    {"oc_vectors", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, 4, NULL,
     "output-channel vectors of 16 per register block (B); 0 = chosen from the layer"},
    {"reg_h", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "auto", 0, 0, "auto|1|2|4",
     "output rows per register block (VH)"},
    {"reg_w", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, 16, NULL,
     "output columns per register block (VW); 0 = chosen from the layer; "
     "VH * VW * B must not exceed 28"},
    {"input", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "auto", 0, 0, "auto|blocks|planes",
     "the packed input: channel blocks of 16 (any layer), or planes: zero-padded copies (at "
     "most 4 input channels a group: a network's first layer), or the input itself (a 1x1 "
     "kernel without padding, any channels); column stride 1 or 2, one row per block, reg_h "
     "does not apply; auto = planes where they apply"},
    {"prefetch", DLAS_PARAM_INT, 0, "-1", -1, 64, NULL,
     "input = planes: at each tap, ask for the input of the tap this many ahead; "
     "-1 = 32 on a 1x1 view, 0 (none) on padded planes"},
    {"order", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "auto", 0, 0, "auto|rows|channels",
     "loop order of the threads' work: rows outermost (weights reused from L2) or "
     "output-channel blocks outermost (input rows reused); auto picks by weight size"},
    /* the names these knobs had before primitives shared one vocabulary */
    {"oh_block", DLAS_PARAM_ENUM, DLAS_PARAM_ALIAS, "reg_h", 0, 0, NULL, NULL},
    {"ow_block", DLAS_PARAM_INT, DLAS_PARAM_ALIAS, "reg_w", 0, 0, NULL, NULL},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

struct blocking {
    int vh, vw, b;
    enum order order;
    int planes;
};

static int param_int(const struct dlas_params *p, const char *k)
{
    return p ? (int)dlas_param_int(p, k) : 0;
}

static const char *param_str(const struct dlas_params *p, const char *k, const char *def)
{
    const char *s = p ? dlas_param_str(p, k) : NULL;
    return s ? s : def;
}

/* The threads' work order: the configured one, or by what each order
 * streams. Rows outermost read a group's weights once per row block, from
 * L2 when they fit (ROWS_ORDER_MAX_WEIGHTS); channel blocks outermost read
 * the packed input once per channel block. A strided layer's input is
 * packed as stride phases, and a block of its rows reads from each phase:
 * with channel blocks outermost those streams ran the layer 6-11% slower
 * than rows (128x56x56 -> 128 stride 2: 0.67-0.70 ms against 0.62-0.65),
 * and 1.2-1.6x slower while the machine's L3 was contended (0.99 against
 * 0.62; 256x28x28 -> 256: 0.69 against 0.61), until the weights read per
 * row block outgrow the input read per channel block six times over
 * (256x14x14 -> 512 and 512x14x14 -> 512: the same either way). Unstrided
 * layers and views gain nothing from rows (1-3% slower) beyond the weight
 * bound. */
static enum order choose_order(const struct dlas_conv_desc *d, const struct dlas_params *p,
                               int vh, int b, int planes)
{
    const char *ord = param_str(p, "order", "auto");
    if (!strcmp(ord, "rows"))
        return ORDER_ROWS;
    if (!strcmp(ord, "channels"))
        return ORDER_CHANNELS;
    const int64_t cpg = d->in_c / d->groups, opg = d->out_c / d->groups;
    const int64_t wbytes = opg * cpg * d->kh * d->kw * 4;
    if (wbytes <= ROWS_ORDER_MAX_WEIGHTS)
        return ORDER_ROWS;
    if (planes || d->stride_h * d->stride_w == 1)
        return ORDER_CHANNELS;
    const int64_t in_bytes = cpg * (d->in_h + 2 * d->pad_h) * (d->in_w + 2 * d->pad_w) * 4;
    const int64_t weights_read = pc_ceil_div(d->out_h, vh) * wbytes;
    const int64_t input_read = pc_ceil_div(opg, (int64_t)b * PC_VL) * in_bytes;
    return weights_read <= 6 * input_read ? ORDER_ROWS : ORDER_CHANNELS;
}

/* The block shape for a layer: the configured one, with 0/auto filled in. */
static int choose_blocking(const struct dlas_conv_desc *d, const struct dlas_params *p,
                           struct blocking *bl, char *why, size_t len)
{
    int b = param_int(p, "oc_vectors");
    int vw = param_int(p, "reg_w");
    const char *vhs = param_str(p, "reg_h", "auto");
    int vh = strcmp(vhs, "auto") ? (int)(vhs[0] - '0') : 0;
    const char *input = param_str(p, "input", "auto");
    bl->planes = strcmp(input, "blocks") && dp_planes_apply(d);
    if (!strcmp(input, "planes") && !bl->planes)
        return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED,
                       "input = planes takes at most %d input channels a group, or a 1x1 "
                       "kernel without padding, and column stride 1 or 2",
                       DP_PLANES_MAX_C);
    if (bl->planes) { /* one row a block; B as for blocks; the columns the kernel's */
        if (!b)
            b = pc_auto_b(d->out_c / d->groups, d->out_w);
        if (dp_planes_block(d, b, &vw))
            return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED,
                           "no planes kernel for %d columns x %d channel vectors", vw, b);
        bl->vh = 1;
        bl->vw = vw;
        bl->b = b;
        bl->order = choose_order(d, p, 1, b, 1);
        return DLAS_OK;
    }
    int rc = pc_direct_blocking(d, d->out_c / d->groups, &vh, &vw, &b);
    if (rc == 1)
        return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED,
                       "no kernel for %d rows x %d channel vectors (VH*B must stay <= 28)", vh,
                       b);
    if (rc)
        return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED,
                       "no kernel for a %dx%d pixel block with %d channel vectors "
                       "(VH in 1,2,4 and VH*VW*B <= 28)",
                       vh, vw, b);
    bl->order = choose_order(d, p, vh, b, 0);
    bl->vh = vh;
    bl->vw = vw;
    bl->b = b;
    return DLAS_OK;
}

static int direct_supports(const struct dlas_conv_desc *d, const struct dlas_params *p,
                           char *why, size_t len)
{
    int rc = pc_check_not_depthwise(NAME, d, why, len);
    if (rc)
        return rc;
    struct blocking bl;
    return choose_blocking(d, p, &bl, why, len);
}

/* ---- prepare --------------------------------------------------------------- */

static void direct_release(void *state)
{
    struct direct_state *s = state;
    if (!s)
        return;
    pc_blocked_free(&s->conv, &s->pk);
    dp_planes_free(&s->pl);
    dp_planes_free(&s->pro);
    pc_conv_free(&s->conv);
}

static int direct_prepare(const struct dlas_host *host, const struct dlas_backend *be,
                          const struct dlas_conv_desc *d, const float *weight,
                          const float *bias, const struct dlas_params *p, void **state)
{
    *state = NULL;
    int rc = pc_check_prepare(NAME, be, d, weight, bias);
    if (rc)
        return rc;
    struct blocking bl;
    if ((rc = direct_supports(d, p, NULL, 0)) || (rc = choose_blocking(d, p, &bl, NULL, 0)))
        return rc;
    struct direct_state *s = pc_conv_alloc(NAME, host, be, d, sizeof *s);
    if (!s)
        return DLAS_ERR_NOMEM;
    s->vh = bl.vh;
    s->vw = bl.vw;
    s->order = bl.order;
    if ((rc = pc_blocked_new(&s->conv, NAME, weight, bias, bl.b, &s->pk))) {
        direct_release(s);
        return rc;
    }
    s->planes = bl.planes;
    if (s->planes) {
        const int pf = p ? (int)dlas_param_int(p, "prefetch") : -1;
        if ((rc = dp_planes_init(d, bl.b, bl.vw, pf, &s->pl))) {
            direct_release(s);
            return rc == DLAS_ERR_NOMEM ? dlas_error(rc, NAME ": out of memory") : rc;
        }
        s->img_floats = dp_planes_floats(&s->pl);
        /* a view whose threads sweep rows can take a prologue: each thread
         * transforms the input row it computes into a scratch of its own */
        if (s->pl.view && d->groups == 1 && s->order == ORDER_ROWS &&
            dp_planes_scratch(d, &s->pl, &s->pro)) {
            direct_release(s);
            return dlas_error(DLAS_ERR_NOMEM, NAME ": out of memory");
        }
    } else {
        pc_direct_window(d, &s->win, s->pk.tap_off);
        s->img_floats = s->pk.nblk * pc_window_block(&s->win);
    }
    s->nchw.planes = s->planes;
    s->nchw.vh = s->vh;
    s->nchw.vw = s->vw;
    s->nchw.img_floats = s->img_floats;
    *state = s;
    return DLAS_OK;
}

/* ---- layouts ----------------------------------------------------------------- */

/* 1 when layer d's whole padded input, packed as a window, is the C16
 * tensor itself: a 1x1 kernel at stride 1 without padding. */
static int window_is_input(const struct dlas_conv_desc *d, const struct pc_window *w)
{
    return d->kh == 1 && d->kw == 1 && d->stride_h == 1 && d->stride_w == 1 && !d->pad_h &&
           !d->pad_w && w->rows == d->in_h && w->cols == d->in_w && w->sw == 1 &&
           w->q == d->in_w;
}

/* A C16 input runs on the window path (the planes path reads NCHW): a
 * planes state takes a register block for the weights it packed (B
 * vectors) and the whole padded input as its window. The planes path
 * writes C16 where its residual is laid out as its output, and every other
 * state keeps the path prepare chose. One group, or groups of whole blocks
 * of 16 (pc_c16_groups). A residual of the other
 * layout than the output is added to the kernel's tile before it is
 * stored (a C16 one lies as the tile does; an NCHW one is read across its
 * planes). */
static int direct_set_layouts(void *state, int in_layout, int out_layout, int res_layout)
{
    struct direct_state *s = state;
    const struct dlas_conv_desc *d = &s->conv.d;
    int c16[3];
    int rc = pc_layouts(NAME, d, in_layout, out_layout, res_layout, c16);
    if (rc)
        return rc;
    const int window = s->nchw.planes && (c16[0] || c16[1] != c16[2]);
    int vh = s->nchw.vh, vw = s->nchw.vw, b = s->pk.b;
    if (window) {
        vh = vw = 0;
        if (pc_direct_blocking(d, s->conv.opg, &vh, &vw, &b) || b != s->pk.b)
            return dlas_error(DLAS_ERR_UNSUPPORTED,
                              NAME ": no window kernel for %d channel vectors", s->pk.b);
        pc_direct_window(d, &s->win, s->pk.tap_off);
    }
    s->planes = s->nchw.planes && !window;
    s->vh = vh;
    s->vw = vw;
    s->img_floats = window ? s->pk.nblk * pc_window_block(&s->win) : s->nchw.img_floats;
    s->in_c16 = c16[0];
    s->out_c16 = c16[1];
    s->res_c16 = c16[2];
    s->in_view = c16[0] && window_is_input(d, &s->win);
    return DLAS_OK;
}

/* The floats from one thread's prologue scratch to the next's: one input
 * row of every channel (dp_planes_scratch), in a slab of its own. */
static int64_t scratch_floats(const struct direct_state *s)
{
    return pc_slab_floats(s->pl.cpg * dp_scratch_row(&s->conv.d));
}

static size_t direct_workspace(void *state, int64_t batch)
{
    const struct direct_state *s = state;
    if (batch <= 0)
        return 0;
    /* the packed input (shared, or a copy a thread while small), or a band
     * copy of one image-group a thread; a view packs nothing, but run()
     * takes a workspace all the same */
    const int t = pc_threads(&s->conv.be);
    if (s->in_view)
        return 64;
    int64_t floats = pc_pack_ws_floats(t, batch, s->conv.d.groups * s->img_floats);
    if (pc_band_images(t, s->img_floats) >= 1 && t * s->img_floats > floats)
        floats = t * s->img_floats;
    if (s->pro.tap_off && t * scratch_floats(s) > floats) /* a view packs nothing */
        floats = t * scratch_floats(s);
    return floats ? (size_t)floats * sizeof(float) : 64;
}

/* ---- run -------------------------------------------------------------------- */

/* Band packing (rows outermost): the window rows of one image and group
 * that a thread's copy holds, [r0, r1). */
struct band {
    int64_t ig, r0, r1;
    char pad[64 - 3 * sizeof(int64_t)]; /* a cache line a thread */
};
#define DIRECT_MAX_BANDS 64

struct run_ctx {
    const struct direct_state *s;
    const float *in;
    const float *res; /* a residual laid out as out, or NULL */
    float *out;
    int pf_out; /* planes: ask for output rows first (DP_PREFETCH_OUT_BYTES) */
    float *copies;      /* band packing: the threads' copies of the input, or NULL */
    struct band *bands; /* and the rows each holds; run_prologue: the row a scratch holds */
    const struct dlas_conv_prologue *pro; /* run_prologue's input, or NULL */
    float *scratch;                       /* run_prologue: the threads' scratch rows */
};

/* Rows [r0, r1) of the row space (image, group, row), into ws. */
static void pack_rows(const void *ctx, float *ws, int64_t r0, int64_t r1)
{
    const struct run_ctx *c = ctx;
    const struct direct_state *s = c->s;
    if (s->planes) /* a view has no rows to pack (its range is empty) */
        dp_planes_pack_rows(c->in, &s->conv.d, &s->pl, ws, r0, r1);
    else
        pc_pack_batch_rows(c->in, s->in_c16, &s->conv.d, s->conv.cpg, &s->win, s->img_floats,
                           ws, r0, r1);
}

/* Band packing: the window rows that row block rb of image-group ig reads,
 * packed into this thread's copy unless it holds them; returns the copy.
 * A copy holds one image-group: a thread's items run through the images in
 * order, so it never returns to one it left, and at any batch the rows it
 * packs stay in its own caches until it reads them. */
static const float *band_rows(const struct run_ctx *c, int64_t ig, int64_t rb)
{
    const struct direct_state *s = c->s;
    const struct dlas_conv_desc *d = &s->conv.d;
    const int id = omp_get_thread_num();
    float *own = c->copies + (int64_t)id * s->img_floats;
    struct band *b = &c->bands[id];
    const int64_t oh0 = rb * s->vh, oh1 = oh0 + s->vh < d->out_h ? oh0 + s->vh : d->out_h;
    const int64_t r0 = oh0 * d->stride_h;
    int64_t r1 = (oh1 - 1) * d->stride_h + (int64_t)(d->kh - 1) * d->dil_h + 1;
    r1 = r1 < s->win.rows ? r1 : s->win.rows;
    if (b->ig != ig || r1 < b->r0 || r0 > b->r1) { /* none of them held */
        pc_pack_image_rows(c->in, s->in_c16, d, s->conv.cpg, &s->win, ig, own, r0, r1);
        b->ig = ig;
        b->r0 = r0;
        b->r1 = r1;
    } else { /* some: pack the rest, on either side */
        if (r0 < b->r0)
            pc_pack_image_rows(c->in, s->in_c16, d, s->conv.cpg, &s->win, ig, own, r0, b->r0);
        if (r1 > b->r1)
            pc_pack_image_rows(c->in, s->in_c16, d, s->conv.cpg, &s->win, ig, own, b->r1, r1);
        b->r0 = r0 < b->r0 ? r0 : b->r0;
        b->r1 = r1 > b->r1 ? r1 : b->r1;
    }
    return own;
}

/* run_prologue: the input row that output row rb of image n reads, every
 * channel transformed (act(x * scale + shift)) into this thread's scratch
 * unless it holds that row already; returns the scratch. A thread's items
 * sweep the output channels of one row before the next (order = rows), so
 * it transforms each row it computes once. */
static const float *prologue_row(const struct run_ctx *c, int64_t n, int64_t rb)
{
    const struct direct_state *s = c->s;
    const struct dlas_conv_desc *d = &s->conv.d;
    const int id = omp_get_thread_num();
    float *own = c->scratch + (int64_t)id * scratch_floats(s);
    struct band *b = &c->bands[id];
    if (b->ig != n || b->r0 != rb) {
        const struct dlas_conv_prologue *p = c->pro;
        const int64_t at = rb * d->stride_h * d->in_w, w = dp_scratch_row(d);
        ew_affine_channels(own, w, p->chan, p->bstride, n, at, s->pl.cpg, d->in_w, p->scale,
                           p->shift, p->act);
        b->ig = n;
        b->r0 = rb;
    }
    return own;
}

/* Items: (image, group, ob, row block), ordered per s->order, reading the
 * packed input ws (or, band packing, each thread's own copy). */
static void compute_items(const void *ctx, const float *ws, int64_t i0, int64_t i1)
{
    const struct run_ctx *c = ctx;
    const struct direct_state *s = c->s;
    const struct dlas_conv_desc *d = &s->conv.d;
    const int64_t n_rb = pc_ceil_div(d->out_h, s->vh), per_img = s->pk.n_ob * n_rb;
    const int lanes = s->pk.b * PC_VL;
    float tile[PC_MAX_ACC * PC_VL] __attribute__((aligned(64)));
    struct pc_kargs a;
    pc_kargs_init(&a, d, s->conv.cpg, s->pk.tap_off, &s->win, tile, lanes);
    a.pf_blocks = s->in_view ? 2 : 0;
    const int64_t ohw = d->out_h * d->out_w;
    for (int64_t it = i0; it < i1; it++) {
        int64_t ig = it / per_img, k = it % per_img, ob, rb;
        if (s->order == ORDER_ROWS) {
            rb = k / s->pk.n_ob;
            ob = k % s->pk.n_ob;
        } else {
            ob = k / n_rb;
            rb = k % n_rb;
        }
        int64_t n = ig / d->groups, g = ig % d->groups;
        if (c->pro) { /* a view with groups == 1: one row a block */
            dp_planes_row(&s->pro, d, prologue_row(c, n, rb), s->pk.w + ob * s->pk.ob_floats,
                          s->pk.bias ? s->pk.bias + ob * lanes : NULL, rb,
                          s->conv.opg - ob * lanes < lanes ? s->conv.opg - ob * lanes : lanes,
                          c->out + n * d->out_c * ohw + ob * lanes * ohw, NULL, c->pf_out, 0);
            continue;
        }
        const float *img = s->planes && s->pl.view
                               ? c->in + (n * d->in_c + g * s->conv.cpg) * d->in_h * d->in_w
                           : s->in_view ? c->in + ig * s->img_floats
                           : c->copies  ? band_rows(c, ig, rb)
                                        : ws + ig * s->img_floats;
        a.w = s->pk.w + (g * s->pk.n_ob + ob) * s->pk.ob_floats;
        a.bias = s->pk.bias ? s->pk.bias + (g * s->pk.n_ob + ob) * lanes : NULL;
        int64_t oc0 = ob * lanes, nc = s->conv.opg - oc0 < lanes ? s->conv.opg - oc0 : lanes;
        /* C16: the first of the block's vectors of 16 channels (a group is
         * whole blocks, pc_c16_groups) */
        const int64_t at16 = pc_c16_at(n, d->out_c, g * s->conv.opg + oc0, ohw);
        const int64_t at = (n * d->out_c + g * s->conv.opg + oc0) * ohw;
        float *dst_c = c->out + (s->out_c16 ? at16 : at);
        const float *res_c = c->res ? c->res + (s->res_c16 ? at16 : at) : NULL;
        if (s->planes) {
            dp_planes_row(&s->pl, d, img, a.w, a.bias, rb, nc, dst_c, res_c, c->pf_out,
                          s->out_c16);
            continue;
        }
        pc_direct_rows(&a, d, &s->win, img, rb * s->vh, s->vh, s->vw, s->pk.b, nc, dst_c, res_c,
                       d->activation,
                       (s->out_c16 ? PC_OUT_C16 : 0) | (s->res_c16 ? PC_RES_C16 : 0));
    }
}

static int direct_run_residual(void *state, int64_t batch, const float *in, const float *res,
                               float *out, void *ws, struct dlas_profile *prof)
{
    const struct direct_state *s = state;
    int rc = pc_check_run(NAME, s, batch, in, out, ws);
    if (rc || !batch)
        return rc;
    const struct dlas_conv_desc *d = &s->conv.d;
    const int64_t pack_rows_n = s->planes    ? (s->pl.view ? 0 : s->pl.cpg * s->pl.rows)
                                : s->in_view ? 0
                                             : s->win.rows;
    const int64_t items = batch * d->groups * s->pk.n_ob * pc_ceil_div(d->out_h, s->vh);
    const int64_t out_bytes = batch * d->out_c * d->out_h * d->out_w * (int64_t)sizeof(float);
    struct run_ctx c = {s, in, res, out, out_bytes > DP_PREFETCH_OUT_BYTES, NULL, NULL, NULL,
                        NULL};
    struct pc_phases ph = {&c,
                           ws,
                           batch * d->groups * s->img_floats,
                           batch * d->groups * pack_rows_n,
                           items,
                           pack_rows,
                           compute_items,
                           NULL,
                           "compute"};
    /* band packing: rows outermost, channel blocks, on several threads */
    struct band bands[DIRECT_MAX_BANDS];
    const int threads = pc_threads(&s->conv.be);
    if (s->order == ORDER_ROWS && !s->planes && !s->in_view && threads <= DIRECT_MAX_BANDS &&
        pc_band_images(threads, s->img_floats) >= 1) {
        for (int i = 0; i < threads; i++)
            bands[i].ig = -1;
        c.copies = ws;
        c.bands = bands;
        ph.pack_n = 0;
        ph.work_phase = "pack+compute";
    }
    pc_run_phases(&s->conv.be, 0, &ph, prof);
    return DLAS_OK;
}

static int direct_run(void *state, int64_t batch, const float *in, float *out, void *ws,
                      struct dlas_profile *prof)
{
    return direct_run_residual(state, batch, in, NULL, out, ws, prof);
}

static int direct_takes_prologue(const void *state)
{
    const struct direct_state *s = state;
    return s && s->pro.tap_off != NULL && !s->in_c16 && !s->out_c16 && !s->res_c16;
}

static int direct_run_prologue(void *state, int64_t batch, const struct dlas_conv_prologue *in,
                               float *out, void *ws, struct dlas_profile *prof)
{
    const struct direct_state *s = state;
    if (!direct_takes_prologue(s) ||
        (batch && (!in || !in->chan || !in->bstride || !in->scale || !in->shift)))
        return dlas_error(DLAS_ERR_INVALID, NAME ": run_prologue on a state that does not take "
                                                 "one, or without its input");
    int rc = pc_check_run(NAME, s, batch, batch ? in->chan[0] : NULL, out, ws);
    if (rc || !batch)
        return rc;
    const struct dlas_conv_desc *d = &s->conv.d;
    const int threads = pc_threads(&s->conv.be);
    struct band bands[DIRECT_MAX_BANDS];
    if (threads > DIRECT_MAX_BANDS)
        return dlas_error(DLAS_ERR_UNSUPPORTED, NAME ": run_prologue on more than %d threads",
                          DIRECT_MAX_BANDS);
    for (int i = 0; i < threads; i++)
        bands[i].ig = -1;
    const int64_t out_bytes = batch * d->out_c * d->out_h * d->out_w * (int64_t)sizeof(float);
    struct run_ctx c = {s,     NULL,  NULL, out, out_bytes > DP_PREFETCH_OUT_BYTES, NULL, bands,
                        in,    ws};
    struct pc_phases ph = {&c,   ws,   0, 0, batch * s->pk.n_ob * d->out_h, pack_rows,
                           compute_items, NULL, "prologue+compute"};
    pc_run_phases(&s->conv.be, 0, &ph, prof);
    return DLAS_OK;
}

static const struct dlas_primitive_ops direct_ops = {
    .size = sizeof(struct dlas_primitive_ops),
    .op = "conv2d",
    .device = "cpu",
    .supports = direct_supports,
    .prepare = direct_prepare,
    .workspace = direct_workspace,
    .run = direct_run,
    .release = direct_release,
    .flags = DLAS_PRIM_ACTIVATION | DLAS_PRIM_RESIDUAL | DLAS_PRIM_PROLOGUE | DLAS_PRIM_C16,
    .run_residual = direct_run_residual,
    .takes_prologue = direct_takes_prologue,
    .run_prologue = direct_run_prologue,
    .set_layouts = direct_set_layouts,
};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_PRIMITIVE, NAME,
     "direct convolution: register-blocked AVX-512 micro-kernel over output channels x "
     "output pixels on a channel-blocked input; any stride, padding, dilation, groups",
     "E. Georganas, S. Avancha, K. Banerjee, D. Kalamkar, G. Henry, H. Pabst, A. Heinecke. "
     "Anatomy of High-Performance Deep Learning Convolutions on SIMD Architectures. SC'18",
     direct_params, &direct_ops},
};

DLAS_PLUGIN(NAME, "0.1.0", "register-blocked direct convolution", components)
