/* A network's stem as one kernel: a dense convolution of a few input
 * channels (the image) with its activation, then the max pool that reads
 * it, as ResNet and DenseNet begin (7x7 stride-2 conv 3 -> 64 with batchnorm
 * and ReLU, then a 3x3 stride-2 max pool; He et al., "Deep Residual
 * Learning for Image Recognition", CVPR 2016; Huang et al., "Densely
 * Connected Convolutional Networks", CVPR 2017).
 *
 * Layer by layer, the conv writes its whole output (64x112x112, 3.2 MB an
 * image: more than L2) in NCHW, for the pool to read back from L3 or
 * memory. Here a thread computes the conv's rows a band at a time into a
 * ring of as many rows as the pool's window is tall, channel-blocked as
 * the micro-kernel leaves them (no transposition), and pools each output
 * row from the ring while it is in L2: only the pooled output (a quarter)
 * is written, once, in NCHW. The conv's rows are those of `direct`'s
 * planes path (the register-blocked micro-kernel of pw_kernels.h over
 * zero-padded input planes); a band recomputes the conv rows its window
 * shares with the band before it (one row of 112 for ResNet's stem).
 *
 * One phase, a parallel range over independent items (as mbconv.h's):
 *   main  per (image, band of pooled rows): the input rows the band reads,
 *         NCHW -> zero-padded planes in the thread's own copy; then conv
 *         rows, activation, pool.
 * The band packs its own rows rather than a phase before it packing the
 * whole image: on 2 threads the pack phase's barrier, and half the rows
 * coming from the other core's cache, cost 0.03 ms of ResNet's 0.7.
 * Pure compute (no graph, no plugin): core/infer/plan_blocks.c finds stems. */
#ifndef DLAS_STEM_H
#define DLAS_STEM_H

#include <stddef.h>
#include <stdint.h>

/* The most input channels a stem takes: each tap reads one plane, so a
 * conv of many channels is better served by the channel-blocked layers. */
#define ST_MAX_IN_C 4

struct st_desc {
    int64_t in_c, in_h, in_w;                     /* one image, NCHW */
    int64_t out_c;                                /* the conv's outputs */
    int kh, kw, stride_h, stride_w, pad_h, pad_w; /* one group, no dilation */
    int act;                                      /* enum dlas_activation after the conv */
    int pkh, pkw, psh, psw, pph, ppw;             /* the max pool */
    int64_t ph, pw; /* the pool's output (the graph's: ceil mode included) */
};

struct st_kernel;

/* w: out_c x in_c x kh x kw as the graph holds them; bias may be NULL.
 * NULL with *why set when the stem cannot be fused (malloc failure
 * included: "out of memory"). */
struct st_kernel *st_prepare(const struct st_desc *d, const float *w, const float *bias,
                             char *why, size_t why_len);
void st_free(struct st_kernel *k);
size_t st_workspace_floats(const struct st_kernel *k, int64_t batch, int threads);

enum st_phase { ST_MAIN, ST_N_PHASES };
int64_t st_items(const struct st_kernel *k, enum st_phase ph, int64_t batch, int threads);
/* in: the conv's NCHW input batch; out: the pool's NCHW output batch; ws:
 * the workspace; thread: the caller's thread (< threads), whose planes and
 * ring it uses. */
void st_run(const struct st_kernel *k, enum st_phase ph, int64_t batch, const float *in,
            float *out, float *ws, int threads, int64_t i0, int64_t i1, int thread);

#endif
