/* The optimised convolution kernels shared by the CPU primitives (linked
 * statically into each primitive module that uses them) and the trainer's
 * small-map convolutions (core/kernels/conv_cvec.c): channel-blocked packing,
 * the register-blocked micro-kernel, the scatter back to NCHW and the direct
 * convolution over a packed window. Pure compute: no graph, no plugin.
 *
 * Data layouts used here:
 *   NCHW            the framework's activations, in and out of every run().
 *   channel-blocked a window of the zero-padded input as [blk][row][phase][q][16]:
 *                   16 channels of one pixel form one vector, and for a
 *                   column stride s the columns are split into s phases
 *                   (column c -> phase c % s, position c / s), so that the
 *                   pixels a strided output row reads sit 16 floats apart.
 *                   The last block of a channel count that is not a multiple
 *                   of 16 keeps 16 slots per pixel, the unused ones zero. */
#ifndef DLAS_PC_KERNELS_H
#define DLAS_PC_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/conv.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif

/* GCC vector extensions: AVX-512 registers under -march=native on this
 * machine, split by the compiler into narrower ones elsewhere. (Without
 * AVX-512 GCC notes that passing 64-byte vectors by value has another ABI;
 * these helpers are static inline and internal, so that cannot matter.) */
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float pc_v16 __attribute__((vector_size(64), aligned(64)));
typedef float pc_v16u __attribute__((vector_size(64), aligned(4), may_alias));

static inline pc_v16 pc_load(const float *p) { return *(const pc_v16u *)p; }
static inline void pc_store(float *p, pc_v16 v) { *(pc_v16u *)p = v; }
static inline pc_v16 pc_splat(float x)
{
    /* spelled out: `(pc_v16){0} + x` costs an add (0 + x is not x for -0) */
    return (pc_v16){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
}

#define PC_VL 16 /* floats per vector */

/* The machine's own vector, which the hot kernels compute in: pc_v16
 * itself with AVX-512; without it, half of one (an AVX2 ymm), since GCC
 * keeps 64-byte vectors that no register holds in memory, moving them
 * through general registers at every operation (measured on Zen 3: the
 * micro-kernels ran 5-8x slower than OpenBLAS). Those kernels loop over
 * the PC_NH native vectors of each pc_v16; with AVX-512 the loop is one
 * step and the code is what it was. */
#if defined(__AVX512F__)
#define PC_NL 16
#else
#define PC_NL 8
#endif
#define PC_NH (PC_VL / PC_NL) /* native vectors per pc_v16 */
typedef float pc_vn __attribute__((vector_size(PC_NL * 4), aligned(PC_NL * 4)));
typedef float pc_vnu __attribute__((vector_size(PC_NL * 4), aligned(4), may_alias));
typedef int32_t pc_vni __attribute__((vector_size(PC_NL * 4), aligned(PC_NL * 4)));
static inline pc_vn pc_loadn(const float *p) { return *(const pc_vnu *)p; }
static inline void pc_storen(float *p, pc_vn v) { *(pc_vnu *)p = v; }
/* A broadcast, spelled with the intrinsic where there is one: at -O3 GCC's
 * SLP vectoriser turns the lane loop into 16 masked broadcasts per splat,
 * which ran `direct` 2-7x slower than at -O2. */
static inline pc_vn pc_splatn(float x)
{
#if defined(__AVX512F__)
    return (pc_vn)_mm512_set1_ps(x);
#elif defined(__AVX__)
    return (pc_vn)_mm256_set1_ps(x);
#else
    pc_vn v;
    for (int i = 0; i < PC_NL; i++)
        v[i] = x;
    return v;
#endif
}

typedef int32_t pc_v16i __attribute__((vector_size(64), aligned(64)));

/* The layer's activation (enum dlas_activation) on a native vector: NaN
 * passes through, as torch.relu does. x86's max and min return their second
 * operand when either is NaN (or both are zeros), so max(0, v) and
 * min(6, v) keep a NaN and -0.0 as they are: one instruction each, where
 * the compare-and-select below takes two. */
static inline pc_vn pc_actn(pc_vn v, int act)
{
    if (act == DLAS_ACT_NONE)
        return v;
    const pc_vn zero = {0}, six = pc_splatn(6.0f);
#if defined(__AVX512F__)
    v = (pc_vn)_mm512_max_ps((__m512)zero, (__m512)v);
    if (act == DLAS_ACT_RELU6)
        v = (pc_vn)_mm512_min_ps((__m512)six, (__m512)v);
#elif defined(__AVX__)
    v = (pc_vn)_mm256_max_ps((__m256)zero, (__m256)v);
    if (act == DLAS_ACT_RELU6)
        v = (pc_vn)_mm256_min_ps((__m256)six, (__m256)v);
#else
    v = (pc_vn)((pc_vni)v & ~(pc_vni)(v < zero));
    if (act == DLAS_ACT_RELU6) {
        pc_vni big = (pc_vni)(v > six);
        v = (pc_vn)(((pc_vni)v & ~big) | ((pc_vni)six & big));
    }
#endif
    return v;
}
static inline float pc_act1(float v, int act)
{
    if (act != DLAS_ACT_NONE && v < 0.0f)
        v = 0.0f;
    if (act == DLAS_ACT_RELU6 && v > 6.0f)
        v = 6.0f;
    return v;
}

/* ---- small helpers ------------------------------------------------------ */

/* Contiguous static share [*b, *e) of n items for thread id of nt. */
static inline void pc_split(int64_t n, int id, int nt, int64_t *b, int64_t *e)
{
    int64_t q = n / nt, r = n % nt;
    *b = id * q + (id < r ? id : r);
    *e = *b + q + (id < r ? 1 : 0);
}

static inline int64_t pc_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static inline int64_t pc_round_up(int64_t a, int64_t b) { return pc_ceil_div(a, b) * b; }

/* n floats (at least one), zeroed, 64-byte aligned; release with
 * pc_free_floats (NULL is ignored). 64 KiB or more share 2 MiB chunks
 * advised as huge pages (arena.c: packed weights streamed once an
 * inference). Thread-safe. */
float *pc_alloc_floats(int64_t n);
void pc_free_floats(float *p);
/* Chunks held now (a test's view of the arena). */
int64_t pc_arena_chunks(void);

/* [*lo, *hi): the j in [0, n) with first <= j*s < end (s > 0), possibly
 * empty. Every strided copy of an image row into a padded buffer splits the
 * row this way: zeros before the image, pixels, zeros after. */
static inline void pc_span(int64_t first, int64_t end, int64_t s, int64_t n, int64_t *lo,
                           int64_t *hi)
{
    int64_t a = first <= 0 ? 0 : pc_ceil_div(first, s);
    int64_t b = end <= 0 ? 0 : pc_ceil_div(end, s);
    a = a < n ? a : n;
    b = b < n ? b : n;
    *lo = a;
    *hi = b > a ? b : a;
}

/* ---- channel-blocked packing ------------------------------------------- */

/* A window of the padded input of one group of one image, in padded
 * coordinates: rows [row0, row0 + rows), columns [col0, col0 + cols) of the
 * image padded by pad_h/pad_w (anything outside the image is 0). Column
 * stride `sw` splits columns into phases of `q` positions each (q >=
 * ceil(cols / sw)). */
struct pc_window {
    int64_t row0, rows, col0, cols;
    int sw;
    int64_t q;
};

/* floats of one row (all phases) of one channel block of a packed window */
static inline int64_t pc_window_rowlen(const struct pc_window *w) { return w->sw * w->q * PC_VL; }

/* floats of one channel block of a packed window */
static inline int64_t pc_window_block(const struct pc_window *w)
{
    return w->rows * pc_window_rowlen(w);
}

/* Pack channel blocks [blk0, blk1) of `channels` channels (src: channels x
 * h x w, NCHW) into dst, which holds every block of the window. */
void pc_pack_window(const float *src, int64_t channels, int64_t h, int64_t w, int pad_h,
                    int pad_w, const struct pc_window *win, float *dst, int64_t blk0,
                    int64_t blk1);

/* Pack rows [r0, r1) of the whole window (all channel blocks), so that
 * threads can split one image's packing by rows. */
void pc_pack_window_rows(const float *src, int64_t channels, int64_t h, int64_t w, int pad_h,
                         int pad_w, const struct pc_window *win, float *dst, int64_t r0,
                         int64_t r1);

/* Each of layer d's kh*kw taps' offset, in a window packed like w, from
 * the first input of an output pixel. */
void pc_tap_offsets(const struct dlas_conv_desc *d, const struct pc_window *w, int64_t *tap_off);

/* The whole padded input of layer d as one window for a direct
 * convolution: rows and phase columns enough for every output pixel (w),
 * and the taps' offsets in it (tap_off). */
void pc_direct_window(const struct dlas_conv_desc *d, struct pc_window *w, int64_t *tap_off);

/* 1 where layer d's activations can lie in DLAS_LAYOUT_C16 for a kernel
 * that runs a group as an image of its own channels: one group, or groups
 * whose input and output channels are whole blocks of 16. Group g of image
 * n then starts at block g * cpg / 16 of image n, which is where it starts
 * in NCHW: ((n * groups + g) * cpg) * H * W floats in. */
static inline int pc_c16_groups(const struct dlas_conv_desc *d)
{
    return d->groups == 1 ||
           ((d->in_c / d->groups) % PC_VL == 0 && (d->out_c / d->groups) % PC_VL == 0);
}

/* Where channel c of image n (C channels of hw pixels) starts in
 * DLAS_LAYOUT_C16: the first pixel's vector of c's block of 16, in floats.
 * c at a block's start (a group's first channel, a block of outputs). */
static inline int64_t pc_c16_at(int64_t n, int64_t C, int64_t c, int64_t hw)
{
    return (n * pc_ceil_div(C, PC_VL) + c / PC_VL) * hw * PC_VL;
}

/* Window rows [r0, r1) of image-group ig (image ig / groups, group
 * ig % groups) of `in` (NCHW, layer d, cpg channels a group; or, in_c16,
 * DLAS_LAYOUT_C16 where pc_c16_groups) into dst, the start of that
 * image-group's packed window. */
void pc_pack_image_rows(const float *in, int in_c16, const struct dlas_conv_desc *d,
                        int64_t cpg, const struct pc_window *win, int64_t ig, float *dst,
                        int64_t r0, int64_t r1);

/* Rows [r0, r1) of the row space (image, group, window row) of a batch:
 * each (image, group) packs the group's cpg channels of `in` (laid out as
 * pc_pack_image_rows says) into its own img_floats slot of dst. */
void pc_pack_batch_rows(const float *in, int in_c16, const struct dlas_conv_desc *d,
                        int64_t cpg, const struct pc_window *win, int64_t img_floats,
                        float *dst, int64_t r0, int64_t r1);

/* ---- the register-blocked micro-kernel --------------------------------- */

/* One call computes a VH x VW block of output pixels for B vectors of 16
 * output channels (acc[pixel][b], VH*VW*B <= 28 registers):
 *
 *   for blk < nblk, tap < ntaps, c < (blk < nblk-1 ? 16 : cb_last):
 *       x(pixel) = in[blk*blk_stride + tap_off[tap] + vh*row_stride + vw*PS + c*CS]
 *       acc[pixel][b] += x(pixel) * w[...] (one vector per b, read in order)
 *
 * with PS = 16 and CS = 1: the channel-blocked layout, which Winograd's
 * transformed tiles also use ([blk][tile][16]). The weights are one stream
 * in [blk][tap][c][B*16] order. Results go to out[pixel * out_ps + b*16 +
 * lane], starting from bias (B*16) or 0. */
struct pc_kargs {
    const float *in;
    const float *w;
    float *out;
    const float *bias;
    const int64_t *tap_off;
    int ntaps, nblk, cb_last;
    int64_t blk_stride, row_stride, out_ps;
    /* blocks ahead whose input lines the kernel asks for as it starts a
     * block (0: none): for an input read in place rather than packed */
    int pf_blocks;
};
typedef void (*pc_kernel_fn)(const struct pc_kargs *a);

#define PC_MAX_VH 4
#define PC_MAX_VW 16
#define PC_MAX_B 4
#define PC_MAX_ACC 28
/* PC_ACC_REGS: the accumulators a default block keeps, which this build's
 * registers hold beside the B weight vectors and the broadcast input:
 * AVX-512's 32 zmm hold 28; without AVX-512 a pc_v16 is two of AVX2's 16
 * ymm, so 6 (12 ymm); a larger block would spill accumulators. */
/* PC_AUTO_MAX_B: the most channel vectors a default block takes. With
 * AVX2, B = 1 is the block whose weights (2 ymm) stay in registers beside 6
 * accumulators and the broadcast, as in MLAS's and OpenBLAS's 6x16 AVX2
 * kernels; with B = 2 the weights are reloaded for every multiply-add and
 * loads bound the kernel (measured on Zen 3, `direct` on ResNet-50's 1x1
 * layers: 15-30% slower). */
/* PC_NARROW_VW: without AVX-512, the columns a default block of one
 * channel vector takes on a narrow map (at most twice as many columns):
 * 14 accumulators, the broadcast and one weight half in registers, the
 * other half read by each multiply-add from L1. The 6-column cap splits a
 * 7- or 14-column row into blocks of 3 to 5 whose fewer accumulators and
 * more weight passes cost more than those loads (measured on Zen 3, direct,
 * 2 threads: 7x7 maps 0.66-0.75 of the time, 14x14 0.85-0.94, 28x28 no
 * gain). 0: no such rule (AVX-512 blocks already hold 28). */
#if defined(__AVX512F__)
#define PC_ACC_REGS 28
#define PC_AUTO_MAX_B 4
#define PC_NARROW_VW 0
#else
#define PC_ACC_REGS 6
#define PC_AUTO_MAX_B 1
#define PC_NARROW_VW 7
#endif

/* Output columns at most of a narrow map: the default block takes four
 * channel vectors on it, and `direct` fewest weight passes
 * (direct_block.c). */
#define PC_NARROW_MAP 7

/* The default channel vectors B of a register block over opg output
 * channels a group and out_w output columns (`direct`, `spatial-pack`):
 * with many channels two, four on narrow maps (a broadcast input feeds B
 * multiply-adds), else as many as the channels fill; at most
 * PC_AUTO_MAX_B. */
static inline int pc_auto_b(int64_t opg, int64_t out_w)
{
    const int b = (int)(opg >= 64 ? (out_w <= PC_NARROW_MAP ? 4 : 2) : pc_ceil_div(opg, PC_VL));
    return b < PC_AUTO_MAX_B ? b : PC_AUTO_MAX_B;
}
/* The kernel for (vh, vw, b), or NULL when that shape is not instantiated:
 * vh in {1, 2, 4}, vh*vw*b <= 28, and vh*vw <= 16 (one transposition
 * scatters a block). Every build has them all, so that an experiment's
 * explicit blocking means the same everywhere; the defaults keep to
 * PC_ACC_REGS. */
pc_kernel_fn pc_kernel(int vh, int vw, int b);
/* Largest vw with a kernel for (vh, vw, b) whose accumulators this build's
 * registers hold (vh*vw*b <= PC_ACC_REGS); 0 if none. */
int pc_kernel_max_vw(int vh, int b);

/* Row `row` of a zero-padded plane `cols` floats wide into dst: the input
 * plane's row row - pad_h (in_h x in_w) with pad_w zeros on its left and
 * zeros to the end, or zeros where that row is padding. */
void pc_pad_row(const float *plane, int64_t in_h, int64_t in_w, int pad_h, int pad_w,
                int64_t row, int64_t cols, float *dst);

/* Where each tap of a kernel over zero-padded planes (cpg planes of rows x
 * cols floats) reads, relative to its output pixel's first input: tap t =
 * (ky * kw + kx) * cpg + c, the order pc_pack_weights gives the weights of
 * a group of at most 16 channels. off holds cpg * kh * kw entries. */
void pc_plane_tap_offsets(int64_t cpg, int kh, int kw, int dil_h, int dil_w, int64_t rows,
                          int64_t cols, int64_t *off);

/* Weights of one group packed for the kernel: [ob][blk][tap][c][B*16], lanes
 * of output channels past `opg` zero. src: opg x cpg x kh x kw (the group's
 * slice of the usual layout). dst holds n_ob * cpg * taps * B*16 floats. */
void pc_pack_weights(const float *src, int64_t opg, int64_t cpg, int kh, int kw, int b,
                     float *dst);
static inline int64_t pc_packed_weights_floats(int64_t opg, int64_t cpg, int kh, int kw, int b)
{
    return pc_ceil_div(opg, (int64_t)b * PC_VL) * cpg * kh * kw * b * PC_VL;
}

/* How far ahead (floats) the kernels prefetch their weights: 1 KB. In CIFAR
 * ResNet-18's plan 4, 8 and 16 KB were no better (its 4x4 layers 0.32-0.39
 * ms against 0.32-0.34). -DPC_WPF_DIST=N to try others. */
#ifndef PC_WPF_DIST
#define PC_WPF_DIST 256
#endif
/* And 8 KB ahead into L2. A prefetch into L1 holds one of L1's few miss
 * buffers until its line arrives, so 1 KB ahead into L1 alone kept about a
 * dozen lines in flight a core: 13-15 GB/s from memory, where CIFAR
 * ResNet-18's 4x4 and 8x8 layers need their 2-9 MB of weights each. L2
 * tracks more misses. A/B against 1 KB alone (bench/plan_ab.py, batch 1):
 * CIFAR ResNet-18 0.932, 0.927 and 0.991 in three runs, ResNet-18 0.977,
 * ResNet-50 0.982, DenseNet-121 0.988, MobileNet-v2 0.995. 16 KB ahead:
 * CIFAR 1.002. -DPC_WPF2_DIST=0 turns it off. */
#ifndef PC_WPF2_DIST
#define PC_WPF2_DIST 2048
#endif

/* The B weight vectors PC_WPF_DIST floats ahead into L1 and PC_WPF2_DIST
 * ahead into L2, from a kernel that reads B vectors a step. */
static inline __attribute__((always_inline)) void pc_prefetch_weights(const float *w, const int B)
{
#pragma GCC unroll 8
    for (int i = 0; i < B; i++)
        __builtin_prefetch(w + PC_WPF_DIST + i * PC_VL, 0, 3);
#if PC_WPF2_DIST
#pragma GCC unroll 8
    for (int i = 0; i < B; i++)
        __builtin_prefetch(w + PC_WPF2_DIST + i * PC_VL, 0, 1);
#endif
}

/* ---- scattering results back to NCHW ----------------------------------- */

/* tile: np pixels x ps floats (channel c of pixel p at tile[p*ps + c]);
 * writes channels [0, nc) of pixels [0, np) to dst + c*cstride + pix_off(p),
 * where pixel p = (p / vw, p % vw) sits at row_stride * (p / vw) + p % vw,
 * with activation act (enum dlas_activation) applied. Only rows < nrows and
 * columns < ncols are written. res, unless NULL, is a residual laid out as
 * dst (res[x] is added to the value stored at dst[x], before the
 * activation); it may be dst itself. */
void pc_scatter_tile(const float *tile, int64_t ps, int vh, int vw, int nrows, int ncols,
                     int64_t nc, float *dst, const float *res, int64_t cstride,
                     int64_t row_stride, int act);

/* pc_scatter_tile's job for a DLAS_LAYOUT_C16 dst: channels [0, nc) of the
 * tile's pixels (row r, column k at dst + (r * row_stride + k) * 16 within
 * a block, bstride floats from one block of 16 channels to the next), each
 * pixel's 16 channels one store; res laid out as dst. The lanes of a last
 * block past nc get what the tile holds there. Bit for bit the values
 * pc_scatter_tile stores. */
void pc_store_tile_c16(const float *tile, int64_t ps, int vw, int nrows, int ncols, int64_t nc,
                       float *dst, const float *res, int64_t bstride, int64_t row_stride, int act);

/* tile += res, a DLAS_LAYOUT_C16 residual laid out as pc_store_tile_c16's
 * dst, over the tile's channels [0, nc) (whole vectors of 16): one add a
 * value, so that scattering the sum gives the bits of a scatter that adds
 * an NCHW residual. */
void pc_add_c16_to_tile(float *tile, int64_t ps, int vw, int nrows, int ncols, int64_t nc,
                        const float *res, int64_t bstride, int64_t row_stride);
/* The same for an NCHW residual (pc_scatter_tile's dst layout), before a
 * C16 store: a value at a time, across the channel planes. */
void pc_add_nchw_to_tile(float *tile, int64_t ps, int vw, int nrows, int ncols, int64_t nc,
                         const float *res, int64_t cstride, int64_t row_stride);

/* pc_direct_rows' layouts: dst, res in DLAS_LAYOUT_C16 (else NCHW; any
 * pair) */
#define PC_OUT_C16 1
#define PC_RES_C16 2

/* A finished tile to dst in the layouts given (PC_OUT_C16, PC_RES_C16):
 * pc_scatter_tile to NCHW or pc_store_tile_c16 to C16, adding res first
 * into the tile where it lies in the other layout. dst and res point at the
 * tile's first pixel and channel in their own layouts (NCHW: the channel's
 * plane at that pixel; C16: that pixel's vector of the channel's block);
 * ohw: pixels a plane. The tile's values change where res is added. */
void pc_finish_tile(float *tile, int64_t ps, int vh, int vw, int nrows, int ncols, int64_t nc,
                    float *dst, const float *res, int64_t ohw, int64_t row_stride, int act,
                    int layouts);

/* Asks for the lines of the nrows x ncols pixels of nc channels at p (laid
 * out as pc_scatter_tile's dst) to be brought into L1 for reading. A
 * block's residual, read by pc_scatter_tile when the block's multiply-adds
 * are done, is asked for before they begin: in a batch of 16 the residual
 * comes from memory, and a scatter that waited on each of its channel rows
 * (one short row each, many pages apart) made the fused add cost more than
 * an add of its own. */
static inline void pc_prefetch_tile(const float *p, int64_t nc, int nrows, int ncols,
                                    int64_t cstride, int64_t row_stride)
{
    for (int64_t c = 0; c < nc; c++)
        for (int r = 0; r < nrows; r++) {
            const float *q = p + c * cstride + r * row_stride;
            __builtin_prefetch(q, 0, 3);
            __builtin_prefetch(q + ncols - 1, 0, 3);
        }
}

/* Asks for every line of columns [0, ncols) of one row of nc channel
 * planes (p + c * cstride), to be written. An item that writes a row of
 * many planes, a tile's columns at a time, waits for each line's
 * read-for-ownership when the output is larger than the caches, unless it
 * asks first (measured where it is used: DP_PREFETCH_OUT_BYTES). */
static inline void pc_prefetch_out(float *p, int64_t nc, int64_t ncols, int64_t cstride)
{
    for (int64_t c = 0; c < nc; c++) {
        float *q = p + c * cstride;
        for (int64_t k = 0; k < ncols; k += 16)
            __builtin_prefetch(q + k, 1, 3);
        __builtin_prefetch(q + ncols - 1, 1, 3); /* the line a misaligned row ends in */
    }
}

/* ---- direct convolution over a packed window ------------------------------ */

/* The register block for layer d's output with opg output channels a group:
 * *vh rows x *vw columns x *b vectors of 16 channels. A zero asks for the
 * default: B from the channel count, as few (then as even) column blocks as
 * the registers allow, and, when rows and columns are both left to it, two
 * or four rows where narrow columns would leave registers idle. Returns 0;
 * 1 when no kernel takes *vh rows of *b vectors; 2 when none takes the
 * block. */
int pc_direct_blocking(const struct dlas_conv_desc *d, int64_t opg, int *vh, int *vw, int *b);

/* The kernel arguments every block of a layer shares: its taps, the blocks
 * of its cpg input channels a group in windows packed like win, and the
 * tile the kernel writes (lanes floats a pixel). Blocks then set in, w and
 * bias. */
void pc_kargs_init(struct pc_kargs *a, const struct dlas_conv_desc *d, int64_t cpg,
                   const int64_t *tap_off, const struct pc_window *win, float *tile, int lanes);

/* Output rows [oh0, oh0 + vh) of one block of nc output channels from img,
 * an image's window packed like win: VH x VW register blocks, a short last
 * row block one row at a time, each scattered to dst (the block's first
 * channel plane of out_h x out_w; PC_OUT_C16 in layouts: its first block
 * of 16 channels in DLAS_LAYOUT_C16) with activation act, after adding res
 * (the block's first plane, or with PC_RES_C16 its first block of 16
 * channels; NULL: none). a: from pc_kargs_init, with w and bias set. */
void pc_direct_rows(struct pc_kargs *a, const struct dlas_conv_desc *d, const struct pc_window *win,
                    const float *img, int64_t oh0, int vh, int vw, int b, int64_t nc, float *dst,
                    const float *res, int act, int layouts);

#endif
