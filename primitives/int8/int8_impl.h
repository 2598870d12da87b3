/* Shared by the int8 primitive's files: the state of a prepared layer. */
#ifndef DLAS_INT8_IMPL_H
#define DLAS_INT8_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include <immintrin.h>

#include <dlas/plugin.h>
#include <dlas/quant.h>

#define MR 8            /* output channels per micro-tile */
#define NV_MAX 3        /* vectors of 16 positions per micro-tile: 1..3, per layer */
#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

enum variant { DIRECT = 0, GEMM = 1 };

struct i8_state {
    const struct dlas_host *host;
    struct dlas_backend be;
    enum variant v;
    struct dlas_int8_layer L;
    int64_t cpg, opg, C4;  /* per group: input channels, output channels, quads */
    int S, taps;           /* stride (equal both ways), kh * kw */
    int64_t Hp, Wp;        /* padded input */
    int64_t Hq, Wq;        /* a phase plane */
    int nv, nt;            /* vectors and positions per micro-tile */
    int64_t F, Fr;         /* flat output positions, and rounded up to nt */
    __mmask16 *vmask;      /* per vector of the flat grid: lanes that are outputs */
    int64_t *vfirst;       /* and the output index of its first such lane */
    int64_t plane_pos;     /* positions per (plane, quad) block, slack included */
    int64_t col_pos;       /* gemm: positions per quad row of the column matrix */
    int64_t K4;            /* gemm: quads of K */
    int64_t *tapoff;       /* direct: taps x 1, position offset of each tap (plane included) */
    uint8_t *plane_used;   /* direct: S x S, 1 where some tap reads the phase plane */
    int64_t OB;            /* output-channel blocks per group */
    int8_t *wp;            /* packed weights: [group][OB][steps][MR][4] */
    int64_t steps;         /* quads x taps (direct) or K4 (gemm) */
    /* direct with output channels in lanes (int8_oc.c), when oc_lanes */
    int oc_lanes;
    int R;                 /* output positions per micro-tile */
    int64_t OBc, chunks;   /* blocks of 64 output channels per group; tiles of R positions */
    int64_t pix;           /* bytes of one packed pixel: C4 quads */
    int64_t *posoff;       /* chunks x R: byte offset of each position's window (the last
                            * position repeated past the end) */
    int64_t *tapoff_oc;    /* taps: byte offset of each tap in a window */
    int8_t *wpo;           /* [group][OBc][tap][C4][64][4] */
    struct oc_lane16 *lp;  /* [group][OBc][4]: the store's per-channel constants */
};

/* What the store of 16 output channels needs per lane (padding channels get
 * harmless values and are never stored). Requantisation runs in 64-bit
 * lanes: the even channels in one vector, the odd ones in another. */
struct oc_lane16 {
    int32_t off[16], mult[16];
    float scale[16], bias[16];
    int64_t sh_ev[8], sh_od[8], rnd_ev[8], rnd_od[8];
};


/* ---- output channels in lanes (int8_oc.c) --------------------------------------- */

/* Positions per micro-tile that compute the fewest repeated positions. */
int oc_pick_r(int64_t positions);
/* Estimated cycles of the layer (one image, one group) in each layout, for
 * the automatic choice. */
double oc_cost(const struct i8_state *s);
double pos_cost(const struct i8_state *s);
/* Tables, packed weights and store constants; DLAS_ERR_NOMEM. */
int oc_prepare(struct i8_state *s);
void oc_release(struct i8_state *s);
size_t oc_pack_bytes(const struct i8_state *s);
/* Quads [cq0, cq1) of group g of image `in` into the padded pixel-major buffer. */
void oc_pack(const struct i8_state *s, const uint8_t *in, int64_t g, uint8_t *buf, int64_t cq0,
             int64_t cq1);
int64_t oc_units(const struct i8_state *s);
/* Micro-tile u (block of 64 channels x R positions) of group g, stored into the image. */
void oc_run_unit(const struct i8_state *s, int64_t g, int64_t u, const uint8_t *buf, void *out_img);

#endif
