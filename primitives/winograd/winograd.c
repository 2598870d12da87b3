/* Primitive "winograd": Winograd minimal filtering F(2x2, 3x3) and F(4x4,
 * 3x3) for 3x3 stride-1 convolutions (Lavin and Gray, CVPR 2016).
 *
 * prepare() transforms every 3x3 kernel once (U = G g G^T, in double) and
 * packs the alpha^2 matrices U[xi] (out x in channels) for the register-
 * blocked micro-kernel of prim_common.h. run() packs the padded input into
 * the channel-blocked layout, then works through the output tiles in chunks
 * (sized for L2, or larger where the weights do not stay in cache: enum
 * order): each chunk's tiles are transformed 16 channels at a time
 * (V = B^T d B), multiplied by U as alpha^2 independent GEMMs
 * (M[xi] = U[xi] V[xi], the batched GEMM), and transformed back (Y = A^T M
 * A) straight into the NCHW output, bias included.
 *
 * Threading: one OpenMP region per run(). Each thread takes a contiguous
 * range of tiles (all output channels), packing the input rows they read
 * into a copy of its own (band packing: no barrier); or, when there are few
 * tiles a thread (split_of), the input is packed split by rows and each
 * thread takes a range of output-channel blocks over all tiles
 * (transforming the input tiles itself). */
#include <string.h>

#include "wino_transform.h"

#define NAME "winograd"
/* Bytes of transformed tiles and products a chunk may hold, by loop order:
 * ORDER_BLOCKS keeps a chunk in L2 (1 MiB on the AVX-512 parts, 512 KiB
 * on Zen 3); ORDER_XI streams every weight matrix U once a chunk (9.4 MB
 * for F(4x4) on 256 channels), so its chunks are as large as L3 allows. */
#define CHUNK_BYTES_BLOCKS (384 * 1024)
#define CHUNK_BYTES_XI (2 * 1024 * 1024)

/* The GEMMs' loop order: each output-channel block's alpha^2 products in
 * turn (its U slices and the chunk's V stay in L2 while the weights are
 * small), or each xi in turn over every block (U[xi] read once a chunk
 * when the weights are too large to stay in cache). */
enum order { ORDER_BLOCKS, ORDER_XI };
#define WINO_U_CACHED (1024 * 1024)
#define WINO_F4_CACHED (4 * 1024 * 1024)

enum split { SPLIT_TILES, SPLIT_CHANNELS };

struct wino_state {
    struct pc_conv conv; /* host, be, d, cpg, opg */
    int m, a, a2;
    int64_t nblk, n_ob, ob_floats;
    int b, p;          /* oc vectors, tiles per GEMM block */
    int64_t ct;        /* tiles per chunk */
    enum split split;  /* as configured; SPLIT_TILES also means "auto" below */
    enum order order;
    int split_auto;
    int64_t tiles_h, tiles_w, tiles; /* per image */
    struct pc_window win;
    int64_t img_floats;
    int threads;
    int64_t v_xi, v_tb;    /* V's strides: one xi of a GEMM block, one block */
    int64_t v_floats;      /* V of one thread */
    int64_t thread_floats; /* V + M of one thread */
    int64_t u_bytes;       /* the transformed weights of one group */
    float *u;    /* [g][xi][ob][blk][c][B*16] */
    float *bias; /* [g][n_ob*B*16] or NULL */
    int in_c16, out_c16, res_c16; /* layouts (set_layouts): DLAS_LAYOUT_C16 */
};

static const struct dlas_param_spec wino_params[] = {
    {"tile", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, 4, NULL,
     "output tile m of F(m x m, 3 x 3): 4 (4x fewer multiplications than direct), 2 (2.25x "
     "fewer, 2.25x smaller transformed weights, less rounding), or 0: 4 where it multiplies "
     "less and its transformed weights stay in cache (<= 4 MiB) or serve >= 32 tiles, else 2"},
    {"oc_vectors", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, 4, NULL,
     "output-channel vectors of 16 per GEMM register block; 0 = chosen from the layer"},
    {"tile_block", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, 16, NULL,
     "tiles per GEMM register block; 0 = chosen; tile_block * oc_vectors <= 28"},
    {"chunk", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, 512, NULL,
     "tiles transformed and multiplied together; 0 = chosen from the layer (sized for L2 in "
     "the blocks order, for 2 MiB in the xi order)"},
    {"order", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "auto", 0, 0, "auto|blocks|xi",
     "GEMM loop order: each output-channel block over the alpha^2 products (chunks sized "
     "for L2), or each product over every block (U read once a chunk, larger chunks); "
     "auto: xi when the transformed weights exceed 1 MiB"},
    {"split", DLAS_PARAM_ENUM, DLAS_PARAM_TUNABLE, "auto", 0, 0, "auto|tiles|channels",
     "what the threads divide: output tiles, or output-channel blocks (for layers with few "
     "tiles)"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

struct config {
    int m, b, p;
    int64_t ct;
    enum order order;
    enum split split;
    int split_auto;
};

/* F(4x4) where it multiplies less than F(2x2) (not on 2x2 maps) and its
 * 36 weight matrices are either small enough to stay in cache (4 MiB: up
 * to ~160 channels) or shared by at least 32 tiles; else F(2x2), whose 16
 * are 2.25x smaller. Measured on Zen 3 (2 threads, batch 1): F(2x2) took
 * 0.80 of F(4x4)'s time on 256x14x14 and 0.90 on 192x14x14; F(4x4) 0.70-0.90
 * of F(2x2)'s on 64-160 channels down to 7x7 maps and on 256x28x28. */
static int default_tile(const struct dlas_conv_desc *d)
{
    const int64_t t4 = pc_ceil_div(d->out_h, 4) * pc_ceil_div(d->out_w, 4);
    const int64_t t2 = pc_ceil_div(d->out_h, 2) * pc_ceil_div(d->out_w, 2);
    const int64_t batch = d->batch > 0 ? d->batch : 1;
    const int64_t u4 = 36 * 4 * d->in_c * (d->out_c / d->groups);
    if (36 * t4 >= 16 * t2)
        return 2;
    return u4 <= WINO_F4_CACHED || t4 * batch >= 32 ? 4 : 2;
}

static int configure(const struct dlas_conv_desc *d, const struct dlas_params *p,
                     struct config *c, char *why, size_t len)
{
    memset(c, 0, sizeof *c);
    c->m = p ? (int)dlas_param_int(p, "tile") : 0;
    if (!c->m)
        c->m = default_tile(d);
    if (c->m != 2 && c->m != 4)
        return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED,
                       "tile = %d: only F(2x2,3x3) and F(4x4,3x3) are implemented", c->m);
    const int64_t opg = d->out_c / d->groups, cpg = d->in_c / d->groups;
    c->b = p ? (int)dlas_param_int(p, "oc_vectors") : 0;
    c->p = p ? (int)dlas_param_int(p, "tile_block") : 0;
    if (!c->b) {
        c->b = opg >= 64 ? 2 : (int)pc_ceil_div(opg, PC_VL);
        c->b = c->b < PC_AUTO_MAX_B ? c->b : PC_AUTO_MAX_B;
    }
    if (c->b > PC_MAX_B)
        c->b = PC_MAX_B;
    int maxp = pc_kernel_max_vw(1, c->b);
    int64_t tiles = pc_ceil_div(d->out_h, c->m) * pc_ceil_div(d->out_w, c->m) *
                    (d->batch > 0 ? d->batch : 1);
    if (!c->p) {
        int64_t n = pc_ceil_div(tiles, maxp);
        c->p = (int)pc_ceil_div(tiles, n);
    }
    if (!pc_kernel(1, c->p, c->b))
        return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED,
                       "no GEMM kernel for %d tiles x %d channel vectors (tile_block * "
                       "oc_vectors <= 28)",
                       c->p, c->b);
    const int a2 = (c->m + 2) * (c->m + 2);
    c->ct = p ? dlas_param_int(p, "chunk") : 0;
    const char *ord = p ? dlas_param_str(p, "order") : NULL;
    const int64_t u_bytes = (int64_t)a2 * cpg * pc_round_up(opg, c->b * PC_VL) * 4;
    if (ord && strcmp(ord, "auto"))
        c->order = !strcmp(ord, "xi") ? ORDER_XI : ORDER_BLOCKS;
    else
        c->order = u_bytes > WINO_U_CACHED ? ORDER_XI : ORDER_BLOCKS;
    if (!c->ct) {
        /* a chunk's V, and M of one output block or of all */
        const int64_t m_lanes = c->order == ORDER_XI ? pc_round_up(opg, c->b * PC_VL)
                                                     : c->b * PC_VL;
        const int64_t per_tile = (int64_t)a2 * (pc_round_up(cpg, PC_VL) + m_lanes) * 4;
        c->ct = (c->order == ORDER_XI ? CHUNK_BYTES_XI : CHUNK_BYTES_BLOCKS) / per_tile;
        c->ct = c->ct < c->p ? c->p : c->ct / c->p * c->p;
    }
    /* the transformed tiles are laid out in whole GEMM blocks */
    c->ct = pc_round_up(c->ct, c->p);
    const char *sp = p ? dlas_param_str(p, "split") : NULL;
    c->split_auto = !sp || !strcmp(sp, "auto");
    c->split = sp && !strcmp(sp, "channels") ? SPLIT_CHANNELS : SPLIT_TILES;
    return DLAS_OK;
}

static int wino_supports(const struct dlas_conv_desc *d, const struct dlas_params *p,
                         char *why, size_t len)
{
    int rc = pc_check_desc(NAME, d, why, len);
    if (rc)
        return rc;
    if (d->kh != 3 || d->kw != 3)
        return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED,
                       "a %dx%d kernel: only 3x3 kernels have a Winograd transform here",
                       d->kh, d->kw);
    if (d->stride_h != 1 || d->stride_w != 1)
        return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED,
                       "stride %dx%d: Winograd tiles need stride 1", d->stride_h, d->stride_w);
    if (d->dil_h != 1 || d->dil_w != 1)
        return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED,
                       "dilation %dx%d: Winograd tiles need dilation 1", d->dil_h, d->dil_w);
    if (d->groups > 1 && d->in_c == d->groups)
        return pc_fail(NAME, why, len, DLAS_ERR_UNSUPPORTED,
                       "depthwise: one input channel per group leaves the transforms "
                       "costing more than they save; grouped-spatial-pack handles it");
    struct config c;
    return configure(d, p, &c, why, len);
}

static void wino_release(void *state)
{
    struct wino_state *s = state;
    if (!s)
        return;
    s->conv.host->free(s->u);
    s->conv.host->free(s->bias);
    pc_conv_free(&s->conv);
}

/* A stride of an odd number of cache lines (floats rounded up to one): the
 * alpha^2 vectors that a tile transform writes, or an output transform
 * reads, one stride apart then fall in alpha^2 different sets of L1 and L2.
 * At a power-of-two stride they share a few sets: 128 channels in blocks of
 * 8 tiles put V's 36 at 4 KiB apart, in one L1 set. */
static int64_t odd_lines(int64_t floats)
{
    return (pc_ceil_div(floats, PC_VL) | 1) * PC_VL;
}

/* Where U[xi] of output block ob of group g starts: the blocks lie in the
 * order the GEMMs read them (each xi over every block, or each block's
 * alpha^2 products), so that the kernel's weight prefetch, which runs ahead
 * of the block it reads, lands on the block read next. */
static int64_t u_block(const struct wino_state *s, int64_t g, int xi, int64_t ob)
{
    const int64_t blocks = s->order == ORDER_XI ? (g * s->a2 + xi) * s->n_ob + ob
                                                : (g * s->n_ob + ob) * s->a2 + xi;
    return blocks * s->ob_floats;
}

static int wino_prepare(const struct dlas_host *host, const struct dlas_backend *be,
                        const struct dlas_conv_desc *d, const float *weight, const float *bias,
                        const struct dlas_params *p, void **state)
{
    *state = NULL;
    int rc = pc_check_prepare(NAME, be, d, weight, bias);
    struct config cf;
    if (rc || (rc = wino_supports(d, p, NULL, 0)) || (rc = configure(d, p, &cf, NULL, 0)))
        return rc;
    struct wino_state *s = pc_conv_alloc(NAME, host, be, d, sizeof *s);
    if (!s)
        return DLAS_ERR_NOMEM;
    s->m = cf.m;
    s->a = cf.m + 2;
    s->a2 = s->a * s->a;
    s->b = cf.b;
    s->p = cf.p;
    s->ct = cf.ct;
    s->order = cf.order;
    s->split = cf.split;
    s->split_auto = cf.split_auto;
    s->nblk = pc_ceil_div(s->conv.cpg, PC_VL);
    s->n_ob = pc_ceil_div(s->conv.opg, (int64_t)s->b * PC_VL);
    s->tiles_h = pc_ceil_div(d->out_h, s->m);
    s->tiles_w = pc_ceil_div(d->out_w, s->m);
    s->tiles = s->tiles_h * s->tiles_w;
    struct pc_window *w = &s->win;
    w->rows = s->tiles_h * s->m + 2;
    w->cols = s->tiles_w * s->m + 2;
    w->sw = 1;
    w->q = w->cols;
    s->img_floats = s->nblk * pc_window_block(w);
    s->threads = pc_threads(be);
    s->v_xi = odd_lines(s->nblk * s->p * PC_VL);
    s->v_tb = s->a2 * s->v_xi;
    s->v_floats = s->ct / s->p * s->v_tb;
    s->thread_floats = s->v_floats + (s->order == ORDER_XI ? s->n_ob : 1) * (int64_t)s->a2 *
                                         (s->ct * s->b * PC_VL + PC_VL);

    s->ob_floats = s->conv.cpg * s->b * PC_VL;
    const int64_t per_g = s->a2 * s->n_ob * s->ob_floats;
    s->u_bytes = per_g * (int64_t)sizeof(float);
    s->u = host->alloc((size_t)(d->groups * per_g) * sizeof(float));
    if (!s->u) {
        wino_release(s);
        return dlas_error(DLAS_ERR_NOMEM, NAME ": cannot allocate the transformed weights");
    }
    if ((rc = pc_conv_bias(&s->conv, NAME, bias, s->n_ob * s->b * PC_VL, &s->bias))) {
        wino_release(s);
        return rc;
    }
    /* U[xi] straight into the micro-kernel's order ([ob][in channel][lanes],
     * pc_pack_weights' layout for a 1x1 kernel); padded lanes stay 0 (the
     * host's memory comes zeroed) */
    const int64_t lanes = (int64_t)s->b * PC_VL;
    for (int g = 0; g < d->groups; g++)
        for (int64_t o = 0; o < s->conv.opg; o++)
            for (int64_t i = 0; i < s->conv.cpg; i++) {
                double u[WINO_MAX_ALPHA * WINO_MAX_ALPHA];
                wino_weight_transform(s->m,
                                      weight + ((g * s->conv.opg + o) * s->conv.cpg + i) * 9, u);
                for (int xi = 0; xi < s->a2; xi++)
                    s->u[u_block(s, g, xi, o / lanes) + i * lanes + o % lanes] = (float)u[xi];
            }
    *state = s;
    return DLAS_OK;
}

static enum split split_of(const struct wino_state *s, int64_t batch, int nt);

/* The images a thread's band copy holds in a run of `batch` images, or 0
 * where the run packs the input once, shared (split_of, pc_band_images). */
static int64_t band_images(const struct wino_state *s, int64_t batch)
{
    const int64_t b = pc_band_images(s->threads, s->conv.d.groups * s->img_floats);
    if (b < 1 || split_of(s, batch, s->threads) != SPLIT_TILES)
        return 0;
    return b < batch ? b : batch;
}

/* Where the slabs start in a run of `batch` images that packs `band`
 * images a thread: after the shared packed input, or at the start where
 * each thread packs its own band (band > 0). */
static int64_t slabs_at(const struct wino_state *s, int64_t batch, int64_t band)
{
    if (band)
        return 0;
    return pc_round_up(pc_pack_ws_floats(s->threads, batch, s->conv.d.groups * s->img_floats),
                       PC_PAGE_FLOATS);
}

/* The floats of one thread's slab in a run that packs `band` images a
 * thread: its band copy, V and M lie together in one slab (pc_slab_floats).
 * Where one thread's buffers bordered the other's (its M on the next
 * thread's V, its band copy on the next one's), the layer ran up to 1.4x
 * slower when the VM put the two vCPUs apart and 1.05x when near
 * (bench/README-ort.md, twenty-first stop). */
static int64_t slab_of(const struct wino_state *s, int64_t band)
{
    return pc_slab_floats(band * s->conv.d.groups * s->img_floats + s->thread_floats);
}

static int64_t run_floats(const struct wino_state *s, int64_t batch, int64_t band)
{
    return slabs_at(s, batch, band) + s->threads * slab_of(s, band);
}

static size_t wino_workspace(void *state, int64_t batch)
{
    const struct wino_state *s = state;
    if (batch <= 0)
        return 0;
    /* Any run of up to `batch` images fits: each layout grows with the
     * batch, and a run band-packs only if a run of `batch` does (split_of
     * splits the tiles from some batch on). */
    const int64_t band = band_images(s, batch), shared = run_floats(s, batch, 0);
    const int64_t banded = band ? run_floats(s, batch, band) : 0;
    return (size_t)(shared > banded ? shared : banded) * sizeof(float);
}

struct run_ctx {
    const struct wino_state *s;
    int64_t batch;
    const float *in;
    const float *res; /* a residual laid out as out, or NULL */
    float *out;
    float *slabs; /* the threads' slabs: band copy (if any), V and M */
    int64_t slab_floats;
    int64_t band_images; /* band packing: the images a thread's copy holds, else 0 */
};

static void pack_rows(const void *ctx, float *packed, int64_t r0, int64_t r1)
{
    const struct run_ctx *c = ctx;
    const struct wino_state *s = c->s;
    pc_pack_batch_rows(c->in, s->in_c16, &s->conv.d, s->conv.cpg, &s->win, s->img_floats, packed, r0, r1);
}

/* M[xi] of output block ob (m_xi: where it goes, a tile's B*16 after
 * another) = U[xi] V[xi] for the chunk's nt tiles, in GEMM blocks of p tiles
 * (v_xi: V[xi] of the first block; each next block's alpha^2 matrices
 * follow, as transform_tiles lays V). */
static void gemm(const struct wino_state *s, struct pc_kargs *ka, int64_t g, int xi, int64_t ob,
                 const float *v_xi, float *m_xi, int64_t nt)
{
    const int lanes = s->b * PC_VL;
    ka->w = s->u + u_block(s, g, xi, ob);
    for (int64_t t = 0; t < nt; t += s->p) {
        int np = nt - t < s->p ? (int)(nt - t) : s->p;
        ka->in = v_xi + (t / s->p) * s->v_tb;
        ka->out = m_xi + t * lanes;
        pc_kernel(1, np, s->b)(ka);
    }
}

/* Where tile t (over images x tiles) lies: its image, first output row
 * and column, and the rows and columns of it inside the output. */
struct tile_pos {
    int64_t n, oh0, ow0;
    int nr, nw;
};

static struct tile_pos tile_at(const struct wino_state *s, int64_t t, int m)
{
    const struct dlas_conv_desc *d = &s->conv.d;
    const int64_t tt = t % s->tiles;
    struct tile_pos p = {t / s->tiles, tt / s->tiles_w * m, tt % s->tiles_w * m, m, m};
    if (d->out_h - p.oh0 < m)
        p.nr = (int)(d->out_h - p.oh0);
    if (d->out_w - p.ow0 < m)
        p.nw = (int)(d->out_w - p.ow0);
    return p;
}

/* Asks for the residual of tile t and the ncols columns right of it (its
 * pixels of the channel block at oc0 of group g) one step before the
 * scatter reads it: see pc_prefetch_tile. */
static void prefetch_residual(const struct wino_state *s, const float *res, int64_t g,
                              int64_t oc0, int64_t t, int m, int ncols)
{
    const struct dlas_conv_desc *d = &s->conv.d;
    const struct tile_pos p = tile_at(s, t, m);
    const int64_t ohw = d->out_h * d->out_w;
    const int64_t left = s->conv.opg - oc0, lanes = (int64_t)s->b * PC_VL;
    const int64_t cols = d->out_w - p.ow0 < ncols ? d->out_w - p.ow0 : ncols;
    pc_prefetch_tile(res + (p.n * d->out_c + g * s->conv.opg + oc0) * ohw + p.oh0 * d->out_w +
                         p.ow0,
                     left < lanes ? left : lanes, p.nr, (int)cols, ohw, d->out_w);
}

/* How many tiles from tile t on lie side by side in one row of
 * tiles, whole (no edge cut off), up to 16 output columns: their rows are
 * then scattered together, a full 16-column row per store. */
static int tiles_side_by_side(const struct wino_state *s, int64_t t, int64_t left, int m)
{
    const int64_t tt = t % s->tiles, tw = tt % s->tiles_w;
    const struct dlas_conv_desc *d = &s->conv.d;
    int64_t k = 16 / m;
    if ((tt / s->tiles_w + 1) * m > d->out_h)
        return 1; /* the bottom row of tiles is cut off */
    k = k < left ? k : left;
    k = k < s->tiles_w - tw ? k : s->tiles_w - tw;
    while (k > 1 && (tw + k) * m > d->out_w)
        k--; /* the last tile of the row is cut off */
    return (int)k;
}

/* Y of the chunk's nt tiles (from tile c0) for output-channel block ob of
 * group g, from its products mob (xi stride m_xi), into the output. */
static void output_block(const struct run_ctx *c, int64_t g, int64_t ob, int64_t c0, int64_t nt,
                         const float *mob, int64_t m_xi)
{
    const struct wino_state *s = c->s;
    const struct dlas_conv_desc *d = &s->conv.d;
    const int m = s->m, lanes = s->b * PC_VL;
    const int64_t ohw = d->out_h * d->out_w, oc0 = ob * lanes;
    float rows[4 * 16 * PC_VL] __attribute__((aligned(64))); /* m rows x 16 columns */
    int k = tiles_side_by_side(s, c0, nt, m);
    const int pf_res = c->res && !s->res_c16; /* a C16 residual is a line a pixel */
    if (pf_res)
        prefetch_residual(s, c->res, g, oc0, c0, m, k * m);
    for (int64_t j = 0; j < nt;) {
        const struct tile_pos tp = tile_at(s, c0 + j, m);
        const int w = k * m;
        const int nk = j + k < nt ? tiles_side_by_side(s, c0 + j + k, nt - j - k, m) : 0;
        if (pf_res && nk)
            prefetch_residual(s, c->res, g, oc0, c0 + j + k, m, nk * m);
        for (int64_t cb = 0; cb < lanes && oc0 + cb < s->conv.opg; cb += PC_VL) {
            const float *bias = s->bias ? s->bias + (g * s->n_ob + ob) * lanes + cb : NULL;
            for (int i = 0; i < k; i++)
                wino_output_transform(m, mob + (j + i) * lanes + cb, m_xi, bias,
                                      rows + i * m * PC_VL, (int64_t)w * PC_VL);
            int64_t left = s->conv.opg - (oc0 + cb), nc = left < PC_VL ? left : PC_VL;
            const int64_t at = (tp.n * d->out_c + g * s->conv.opg + oc0 + cb) * ohw +
                               tp.oh0 * d->out_w + tp.ow0;
            /* C16: the rows hold a pixel's 16 channels as one vector (a group
             * is whole blocks, pc_c16_groups) */
            const int64_t at16 = pc_c16_at(tp.n, d->out_c, g * s->conv.opg + oc0 + cb, ohw) +
                                 (tp.oh0 * d->out_w + tp.ow0) * PC_VL;
            const int layouts = (s->out_c16 ? PC_OUT_C16 : 0) | (s->res_c16 ? PC_RES_C16 : 0);
            pc_finish_tile(rows, PC_VL, m, w, tp.nr, k > 1 ? w : tp.nw, nc,
                           c->out + (s->out_c16 ? at16 : at),
                           c->res ? c->res + (s->res_c16 ? at16 : at) : NULL, ohw, d->out_w,
                           d->activation, layouts);
        }
        j += k;
        k = nk;
    }
}

/* The GEMM kernel's arguments that stay the same over a run. */
static void gemm_kargs(const struct wino_state *s, struct pc_kargs *ka)
{
    static const int64_t zero_tap = 0;
    memset(ka, 0, sizeof *ka);
    ka->tap_off = &zero_tap;
    ka->ntaps = 1;
    ka->nblk = (int)s->nblk;
    ka->cb_last = (int)(s->conv.cpg - (s->nblk - 1) * PC_VL);
    ka->blk_stride = (int64_t)s->p * PC_VL;
    ka->out_ps = s->b * PC_VL;
}

/* V of chunk tiles [j0, j1) (tile c0 + j over images x tiles) of group g.
 * V: [tb][xi][blk][p][16]: a GEMM block of p tiles keeps its alpha^2
 * matrices together, so the transform of a tile writes its 36 vectors a
 * block apart (v_xi) within one region instead of across all of V. Laid
 * out [xi][tb] (v_xi = the whole chunk), the 36 streams ran the transform
 * 2.6x slower on two threads than on one (64x32x32); this layout took
 * 0.86-0.96 of the time on 2 threads (64-256 channels) and the same on one. */
static void transform_tiles(const struct wino_state *s, const float *packed, int64_t n0,
                            int64_t g, int64_t c0, int64_t j0, int64_t j1, float *v)
{
    const struct dlas_conv_desc *d = &s->conv.d;
    const int m = s->m;
    const int64_t blk = pc_window_block(&s->win), rowlen = pc_window_rowlen(&s->win);
    for (int64_t j = j0; j < j1; j++) {
        int64_t t = c0 + j, n = t / s->tiles, tt = t % s->tiles;
        int64_t th = tt / s->tiles_w, tw = tt % s->tiles_w;
        const float *img = packed + ((n - n0) * d->groups + g) * s->img_floats +
                           (th * m * s->win.q + tw * m) * PC_VL;
        float *dst = v + (j / s->p) * s->v_tb + (j % s->p) * PC_VL;
        for (int64_t bk = 0; bk < s->nblk; bk++)
            wino_input_transform(m, img + bk * blk, rowlen, dst + bk * s->p * PC_VL, s->v_xi);
    }
}

/* Tiles [t0, t1) of group g (t runs over images x tiles), output-channel
 * blocks [ob0, ob1), in chunks, from the input packed from image n0 on;
 * v and mm are this thread's buffers. */
static void process(const struct run_ctx *c, const float *packed, int64_t n0, int64_t g,
                    int64_t t0, int64_t t1, int64_t ob0, int64_t ob1, float *v, float *mm)
{
    const struct wino_state *s = c->s;
    const int a2 = s->a2, lanes = s->b * PC_VL;
    const int64_t v_xi = s->v_xi;
    struct pc_kargs ka;
    gemm_kargs(s, &ka);
    for (int64_t c0 = t0; c0 < t1; c0 += s->ct) {
        const int64_t nt = t1 - c0 < s->ct ? t1 - c0 : s->ct;
        transform_tiles(s, packed, n0, g, c0, 0, nt, v);
        /* M: [ob][xi][tile][B*16], all blocks (ORDER_XI) or one at a time */
        const int64_t m_xi = odd_lines(nt * lanes), m_ob = a2 * m_xi;
        if (s->order == ORDER_XI) {
            for (int xi = 0; xi < a2; xi++)
                for (int64_t ob = ob0; ob < ob1; ob++)
                    gemm(s, &ka, g, xi, ob, v + xi * v_xi, mm + (ob - ob0) * m_ob + xi * m_xi,
                         nt);
        }
        for (int64_t ob = ob0; ob < ob1; ob++) {
            const float *mob = mm;
            if (s->order == ORDER_XI)
                mob += (ob - ob0) * m_ob;
            else
                for (int xi = 0; xi < a2; xi++)
                    gemm(s, &ka, g, xi, ob, v + xi * v_xi, mm + xi * m_xi, nt);
            output_block(c, g, ob, c0, nt, mob, m_xi);
        }
    }
}

static enum split split_of(const struct wino_state *s, int64_t batch, int nt)
{
    if (!s->split_auto)
        return s->split;
    /* tiles, while each thread gets a few: sharing the output channels
     * instead makes every thread transform every input tile, which measured
     * slower down to 8 tiles a thread (7x7 maps) where the weights stay in
     * cache. Where they do not (the xi order), threads that split the tiles
     * each stream all of U; that costs more than transforming every tile
     * from 2 tiles a thread down, and up to 8 a thread once U reaches 4 MiB.
     * Zen 5, 2 threads, channels/tiles: 0.57-0.72 at 2 tiles a thread (U
     * 2.4-17 MB); at 8 a thread 0.89 on 512x7x7 F(2x2) (U 17 MB), 0.95 on
     * 384x8x8 (9.4 MB), 0.98-1.01 at 4-4.7 MB, but 1.19 on 128x16x16 F(4x4)
     * (2.4 MB) and 1.30 on 160x14x14 (3.7 MB); at 24 a thread 1.05. Zen 3:
     * 0.82-0.97 on 256x14x14 F(4x4), 512x7x7 and 256x8x8 F(2x2) at 8. */
    const int64_t tiles = batch * s->tiles;
    int channels;
    if (s->order == ORDER_XI)
        channels = tiles <= 2LL * nt || (tiles <= 8LL * nt && s->u_bytes >= WINO_F4_CACHED);
    else
        channels = tiles < 4LL * nt;
    return channels && s->n_ob >= nt ? SPLIT_CHANNELS : SPLIT_TILES;
}

/* Band packing: the window rows that tiles [t0, t1) read, into own (laid
 * out as the shared packed input from image n0 on, the other rows left as
 * they are). */
static void pack_band(const struct run_ctx *c, float *own, int64_t n0, int64_t t0, int64_t t1)
{
    const struct wino_state *s = c->s;
    const int64_t groups = s->conv.d.groups;
    for (int64_t n = t0 / s->tiles; n * s->tiles < t1; n++) {
        const int64_t a = (t0 > n * s->tiles ? t0 : n * s->tiles) - n * s->tiles;
        const int64_t b = (t1 < (n + 1) * s->tiles ? t1 : (n + 1) * s->tiles) - n * s->tiles;
        const int64_t r0 = a / s->tiles_w * s->m, r1 = (b - 1) / s->tiles_w * s->m + s->a;
        for (int64_t g = 0; g < groups; g++)
            pc_pack_image_rows(c->in, s->in_c16, &s->conv.d, s->conv.cpg, &s->win, n * groups + g,
                               own + ((n - n0) * groups + g) * s->img_floats, r0, r1);
    }
}

/* Band packing: tiles [t0, t1), a window of the images own holds at a
 * time, each packed just before its tiles are computed (at batch 16 on
 * 56x56 maps, the batch's packed input would not stay in L3 between its
 * packing and its reading). */
static void band_work(const struct run_ctx *c, float *own, int64_t t0, int64_t t1, float *v,
                      float *mm)
{
    const struct wino_state *s = c->s;
    while (t0 < t1) {
        const int64_t n0 = t0 / s->tiles, end = (n0 + c->band_images) * s->tiles;
        const int64_t w1 = t1 < end ? t1 : end;
        pack_band(c, own, n0, t0, w1);
        for (int64_t g = 0; g < s->conv.d.groups; g++)
            process(c, own, n0, g, t0, w1, 0, s->n_ob, v, mm);
        t0 = w1;
    }
}

static void work(const void *ctx, const float *packed, int id, int nt)
{
    const struct run_ctx *c = ctx;
    const struct wino_state *s = c->s;
    float *own = c->slabs + id * c->slab_floats;
    float *v = own + c->band_images * s->conv.d.groups * s->img_floats;
    float *mm = v + s->v_floats;
    const int64_t tt = c->batch * s->tiles;
    if (c->band_images) {
        /* tiles, each thread on the rows it packs itself */
        int64_t b, e;
        pc_split(tt, id, nt, &b, &e);
        band_work(c, own, b, e, v, mm);
        return;
    }
    enum split sp = split_of(s, c->batch, nt);
    for (int64_t g = 0; g < s->conv.d.groups; g++) {
        int64_t b, e;
        if (sp == SPLIT_TILES) {
            pc_split(tt, id, nt, &b, &e);
            if (b < e)
                process(c, packed, 0, g, b, e, 0, s->n_ob, v, mm);
        } else {
            pc_split(s->n_ob, id, nt, &b, &e);
            if (b < e)
                process(c, packed, 0, g, 0, tt, b, e, v, mm);
        }
    }
}

static int wino_run_residual(void *state, int64_t batch, const float *in, const float *res,
                             float *out, void *ws, struct dlas_profile *prof)
{
    const struct wino_state *s = state;
    int rc = pc_check_run(NAME, s, batch, in, out, ws);
    if (rc || !batch)
        return rc;
    const int64_t per = s->conv.d.groups * s->img_floats;
    /* the workspace holds the shared packed input, where there is one,
     * then the threads' slabs (slab_of) */
    const int64_t band = band_images(s, batch);
    struct run_ctx c = {s, batch, in, res, out, (float *)ws + slabs_at(s, batch, band),
                        slab_of(s, band), band};
    struct pc_phases ph = {&c,   ws,   batch * per, batch * s->conv.d.groups * s->win.rows,
                           0,    pack_rows, NULL, work,
                           "transform+gemm"};
    if (band) {
        ph.pack_n = 0; /* each thread packs its own rows in work() */
        ph.work_phase = "pack+transform+gemm";
    }
    pc_run_phases(&s->conv.be, s->threads, &ph, prof);
    return DLAS_OK;
}

static int wino_run(void *state, int64_t batch, const float *in, float *out, void *ws,
                    struct dlas_profile *prof)
{
    return wino_run_residual(state, batch, in, NULL, out, ws, prof);
}

/* Layouts: the input is packed into the window either way (from C16 a
 * pixel vector at a time), and the output transform's rows are a line a
 * pixel, stored as they are in C16 or transposed into NCHW, where a C16
 * residual is added before the transposition (an NCHW one, before a C16
 * store, across its planes). One group only. */
static int wino_set_layouts(void *state, int in_layout, int out_layout, int res_layout)
{
    struct wino_state *s = state;
    int c16[3];
    int rc = pc_layouts(NAME, &s->conv.d, in_layout, out_layout, res_layout, c16);
    if (rc)
        return rc;
    s->in_c16 = c16[0];
    s->out_c16 = c16[1];
    s->res_c16 = c16[2];
    return DLAS_OK;
}

static const struct dlas_primitive_ops wino_ops = {
    .size = sizeof(struct dlas_primitive_ops),
    .op = "conv2d",
    .device = "cpu",
    .supports = wino_supports,
    .prepare = wino_prepare,
    .workspace = wino_workspace,
    .run = wino_run,
    .release = wino_release,
    .flags = DLAS_PRIM_ACTIVATION | DLAS_PRIM_RESIDUAL | DLAS_PRIM_C16,
    .run_residual = wino_run_residual,
    .set_layouts = wino_set_layouts,
};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_PRIMITIVE, NAME,
     "Winograd F(2x2,3x3) / F(4x4,3x3) for 3x3 stride-1 convolutions: weights transformed "
     "once, tile transforms vectorised over channels, batched GEMM",
     "A. Lavin, S. Gray. Fast Algorithms for Convolutional Neural Networks. CVPR 2016",
     wino_params, &wino_ops},
};

DLAS_PLUGIN(NAME, "0.1.0", "Winograd convolution F(2x2,3x3) and F(4x4,3x3)", components)
