/* Compressed sparse rows of convolution weights and the sparse-row x
 * dense-panel micro-kernel of sparse.h. */
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "sparse.h"

int sc_check_sparsity(const char *prim, const struct dlas_conv_desc *d,
                      const struct dlas_params *p, char *why, size_t len)
{
    int rc = pc_check_desc(prim, d, why, len);
    if (rc)
        return rc;
    const double min_sp = p ? dlas_param_float(p, "min_sparsity") : 0.0;
    if (d->weight_sparsity < min_sp)
        return pc_fail(prim, why, len, DLAS_ERR_UNSUPPORTED,
                       "weights %.1f%% zero, below min_sparsity %.1f%%: a dense primitive is "
                       "faster here",
                       100.0 * d->weight_sparsity, 100.0 * min_sp);
    return DLAS_OK;
}

int64_t sc_count_zeros(const float *w, int64_t n)
{
    int64_t z = 0;
    for (int64_t i = 0; i < n; i++)
        z += w[i] == 0.0f;
    return z;
}

int sc_csr_build(const struct dlas_host *host, const float *weight, int64_t out_c, int64_t cpg,
                 int kh, int kw, sc_offset_fn off, const void *ctx, struct sc_csr *csr)
{
    memset(csr, 0, sizeof *csr);
    const int64_t row_len = cpg * kh * kw;
    const int64_t nnz = out_c * row_len - sc_count_zeros(weight, out_c * row_len);
    csr->rows = out_c;
    csr->nnz = nnz;
    csr->ptr = host->alloc((size_t)(out_c + 1) * sizeof *csr->ptr);
    csr->nz = host->alloc((size_t)(nnz ? nnz : 1) * sizeof *csr->nz);
    if (!csr->ptr || !csr->nz) {
        sc_csr_free(host, csr);
        return dlas_error(DLAS_ERR_NOMEM, "cannot allocate %lld sparse weights",
                          (long long)nnz);
    }
    int64_t k = 0;
    for (int64_t oc = 0; oc < out_c; oc++) {
        csr->ptr[oc] = k;
        const float *w = weight + oc * row_len;
        for (int64_t ic = 0; ic < cpg; ic++)
            for (int ky = 0; ky < kh; ky++)
                for (int kx = 0; kx < kw; kx++, w++)
                    if (*w != 0.0f) {
                        csr->nz[k].off = off(ctx, oc, ic, ky, kx);
                        csr->nz[k].val = *w;
                        k++;
                    }
    }
    csr->ptr[out_c] = k;
    return DLAS_OK;
}

void sc_csr_free(const struct dlas_host *host, struct sc_csr *csr)
{
    host->free(csr->ptr);
    host->free(csr->nz);
    csr->ptr = NULL;
    csr->nz = NULL;
}

int sc_even_block(int64_t n_vec, int max_v)
{
    if (n_vec <= 0)
        return 1;
    int64_t blocks = pc_ceil_div(n_vec, max_v);
    return (int)pc_ceil_div(n_vec, blocks);
}

/* ---- the micro-kernel ----------------------------------------------------------
 *
 * One body, compiled twice: for AVX-512F (a target attribute, so the
 * instance exists whatever -march the build uses) and for the build's own
 * target. The accumulators are an array of compile-time length, fully
 * unrolled, so they stay in registers; the panel loads become the memory
 * operands of the FMAs. */

#define SC_LOAD(p) (*(const pc_v16u *)(p))
#define SC_SPLAT(x) ((pc_v16){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x})

#define SC_BODY(V)                                                                          \
    do {                                                                                    \
        pc_v16 acc[V];                                                                      \
        const float b0 = a->bias;                                                           \
        _Pragma("GCC unroll 28") for (int v = 0; v < V; v++) acc[v] = SC_SPLAT(b0);         \
        const float *x = a->x;                                                              \
        const struct sc_nz *nz = a->nz, *end = a->nz + a->nnz;                              \
        for (; nz < end; nz++) {                                                            \
            const float *xk = x + nz->off;                                                  \
            const float wk = nz->val;                                                       \
            const pc_v16 w = SC_SPLAT(wk);                                                  \
            _Pragma("GCC unroll 28") for (int v = 0; v < V; v++) acc[v] +=                  \
                w * SC_LOAD(xk + v * PC_VL);                                                \
        }                                                                                   \
        SC_ACT(acc, V);                                                                     \
        float *o = a->dst;                                                                  \
        _Pragma("GCC unroll 28") for (int v = 0; v < V; v++) *(pc_v16u *)(o + v * PC_VL) =  \
            acc[v];                                                                         \
    } while (0)

/* the layer's activation on V vectors acc[] (SC_CLAMP, below) */
#define SC_ACT(acc, V)                                                                      \
    do {                                                                                    \
        if (a->act != DLAS_ACT_NONE)                                                        \
            _Pragma("GCC unroll 28") for (int v = 0; v < V; v++)                            \
                SC_CLAMP(pc_v16, pc_v16i, SC_SPLAT, acc[v]);                                \
    } while (0)

/* one row's non-zeros [from, to) into acc, and EXTRA (a statement, may be
 * empty) for each with its input xk and weight wk */
#define SC_ROWX(acc, from, to, V, EXTRA)                                                    \
    for (const struct sc_nz *nz_ = (from); nz_ < (to); nz_++) {                            \
        const float *xk = x + nz_->off;                                                     \
        const float wk = nz_->val;                                                          \
        const pc_v16 w = SC_SPLAT(wk);                                                      \
        _Pragma("GCC unroll 28") for (int v = 0; v < V; v++) acc[v] +=                      \
            w * SC_LOAD(xk + v * PC_VL);                                                    \
        EXTRA                                                                               \
    }
#define SC_ROW(acc, from, to, V) SC_ROWX(acc, from, to, V, )

#define SC_BODY2(V)                                                                         \
    do {                                                                                    \
        pc_v16 acc[V], acc2[V];                                                             \
        const float b0 = a->bias, b1 = a->bias2;                                            \
        _Pragma("GCC unroll 28") for (int v = 0; v < V; v++)                                \
        {                                                                                   \
            acc[v] = SC_SPLAT(b0);                                                          \
            acc2[v] = SC_SPLAT(b1);                                                         \
        }                                                                                   \
        const float *x = a->x;                                                              \
        const int64_t n = a->nnz < a->nnz2 ? a->nnz : a->nnz2;                              \
        const struct sc_nz *p = a->nz, *q = a->nz2;                                         \
        for (int64_t k = 0; k < n; k++) {                                                   \
            const float *xp = x + p[k].off, *xq = x + q[k].off;                             \
            const float wpk = p[k].val, wqk = q[k].val;                                     \
            const pc_v16 wp = SC_SPLAT(wpk), wq = SC_SPLAT(wqk);                            \
            _Pragma("GCC unroll 28") for (int v = 0; v < V; v++)                            \
            {                                                                               \
                acc[v] += wp * SC_LOAD(xp + v * PC_VL);                                     \
                acc2[v] += wq * SC_LOAD(xq + v * PC_VL);                                    \
            }                                                                               \
        }                                                                                   \
        SC_ROW(acc, p + n, p + a->nnz, V)                                                   \
        SC_ROW(acc2, q + n, q + a->nnz2, V)                                                 \
        SC_ACT(acc, V);                                                                     \
        SC_ACT(acc2, V);                                                                    \
        float *o = a->dst;                                                                  \
        _Pragma("GCC unroll 28") for (int v = 0; v < V; v++)                                \
        {                                                                                   \
            *(pc_v16u *)(o + v * PC_VL) = acc[v];                                           \
            *(pc_v16u *)(o + (V + v) * PC_VL) = acc2[v];                                    \
        }                                                                                   \
    } while (0)

typedef float sc_v8 __attribute__((vector_size(32), aligned(32)));
typedef float sc_v8u __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32_t sc_v8i __attribute__((vector_size(32), aligned(32)));
#define SC_LOAD8(p) (*(const sc_v8u *)(p))
#define SC_SPLAT8(x) ((sc_v8){x, x, x, x, x, x, x, x})

/* The layer's activation on one vector x of type T (integer twin TI, SPLAT
 * its broadcast): the steps of pc_actn on the build's native vector, NaN
 * passing through as torch.relu does. A macro, not a function: the AVX-512
 * kernels (target attribute) may not pass a 64-byte vector to a function
 * compiled without AVX-512 (clang refuses: the ABI differs). Callers skip it
 * for DLAS_ACT_NONE. */
#define SC_CLAMP(T, TI, SPLAT, x)                                                           \
    do {                                                                                    \
        const T zero_ = {0}, six_ = SPLAT(6.0f);                                            \
        x = (T)((TI)(x) & ~(TI)((x) < zero_));                                              \
        if (a->act == DLAS_ACT_RELU6) {                                                     \
            TI big_ = (TI)((x) > six_);                                                     \
            x = (T)(((TI)(x) & ~big_) | ((TI)six_ & big_));                                 \
        }                                                                                   \
    } while (0)
#define SC_ACT8(h)                                                                          \
    do {                                                                                    \
        if (a->act != DLAS_ACT_NONE)                                                        \
            SC_CLAMP(sc_v8, sc_v8i, SC_SPLAT8, h);                                          \
    } while (0)

/* one row's non-zeros [from, to) into acc and, when H, the half vector h */
#define SC_ROWH(acc, h, from, to, V, H)                                                     \
    SC_ROWX(acc, from, to, V, if (H) h += SC_SPLAT8(wk) * SC_LOAD8(xk + V * PC_VL);)

/* The four-row kernel, with V full vectors and, when H is 1, a half one
 * (8 positions) after them: where a plane's last vector holds at most 8
 * positions (a 7x7 map at width 8: 56 = 3 x 16 + 8), half of that vector's
 * FMAs and loads are spared; with the plane width a multiple of 8 its loads
 * never cross a cache line. Results at dst + r * 16(V + H), the half
 * vector's 8 floats last. H is a literal, so the half-vector lines compile
 * away where it is 0. */
#define SC_BODY4X(V, H)                                                                     \
    do {                                                                                    \
        pc_v16 r0[V], r1[V], r2[V], r3[V];                                                  \
        const float b0 = a->bias, b1 = a->bias2, b2 = a->bias3, b3 = a->bias4;              \
        _Pragma("GCC unroll 28") for (int v = 0; v < V; v++)                                \
        {                                                                                   \
            r0[v] = SC_SPLAT(b0);                                                           \
            r1[v] = SC_SPLAT(b1);                                                           \
            r2[v] = SC_SPLAT(b2);                                                           \
            r3[v] = SC_SPLAT(b3);                                                           \
        }                                                                                   \
        sc_v8 h0 = SC_SPLAT8(b0), h1 = SC_SPLAT8(b1), h2 = SC_SPLAT8(b2), h3 = SC_SPLAT8(b3); \
        const float *x = a->x;                                                              \
        int64_t n = a->nnz < a->nnz2 ? a->nnz : a->nnz2;                                    \
        n = n < a->nnz3 ? n : a->nnz3;                                                      \
        n = n < a->nnz4 ? n : a->nnz4;                                                      \
        const struct sc_nz *p0 = a->nz, *p1 = a->nz2, *p2 = a->nz3, *p3 = a->nz4;           \
        for (int64_t k = 0; k < n; k++) {                                                   \
            const float *x0 = x + p0[k].off, *x1 = x + p1[k].off;                           \
            const float *x2 = x + p2[k].off, *x3 = x + p3[k].off;                           \
            const float w0k = p0[k].val, w1k = p1[k].val, w2k = p2[k].val, w3k = p3[k].val; \
            const pc_v16 w0 = SC_SPLAT(w0k), w1 = SC_SPLAT(w1k);                            \
            const pc_v16 w2 = SC_SPLAT(w2k), w3 = SC_SPLAT(w3k);                            \
            _Pragma("GCC unroll 28") for (int v = 0; v < V; v++)                            \
            {                                                                               \
                r0[v] += w0 * SC_LOAD(x0 + v * PC_VL);                                      \
                r1[v] += w1 * SC_LOAD(x1 + v * PC_VL);                                      \
                r2[v] += w2 * SC_LOAD(x2 + v * PC_VL);                                      \
                r3[v] += w3 * SC_LOAD(x3 + v * PC_VL);                                      \
            }                                                                               \
            if (H) {                                                                        \
                h0 += SC_SPLAT8(w0k) * SC_LOAD8(x0 + V * PC_VL);                            \
                h1 += SC_SPLAT8(w1k) * SC_LOAD8(x1 + V * PC_VL);                            \
                h2 += SC_SPLAT8(w2k) * SC_LOAD8(x2 + V * PC_VL);                            \
                h3 += SC_SPLAT8(w3k) * SC_LOAD8(x3 + V * PC_VL);                            \
            }                                                                               \
        }                                                                                   \
        SC_ROWH(r0, h0, p0 + n, p0 + a->nnz, V, H)                                          \
        SC_ROWH(r1, h1, p1 + n, p1 + a->nnz2, V, H)                                         \
        SC_ROWH(r2, h2, p2 + n, p2 + a->nnz3, V, H)                                         \
        SC_ROWH(r3, h3, p3 + n, p3 + a->nnz4, V, H)                                         \
        SC_ACT(r0, V);                                                                      \
        SC_ACT(r1, V);                                                                      \
        SC_ACT(r2, V);                                                                      \
        SC_ACT(r3, V);                                                                      \
        if (H) {                                                                            \
            SC_ACT8(h0);                                                                    \
            SC_ACT8(h1);                                                                    \
            SC_ACT8(h2);                                                                    \
            SC_ACT8(h3);                                                                    \
        }                                                                                   \
        float *o = a->dst;                                                                  \
        const int64_t rs = (V + H) * PC_VL;                                                 \
        _Pragma("GCC unroll 28") for (int v = 0; v < V; v++)                                \
        {                                                                                   \
            *(pc_v16u *)(o + v * PC_VL) = r0[v];                                            \
            *(pc_v16u *)(o + rs + v * PC_VL) = r1[v];                                       \
            *(pc_v16u *)(o + 2 * rs + v * PC_VL) = r2[v];                                   \
            *(pc_v16u *)(o + 3 * rs + v * PC_VL) = r3[v];                                   \
        }                                                                                   \
        if (H) {                                                                            \
            *(sc_v8u *)(o + V * PC_VL) = h0;                                                \
            *(sc_v8u *)(o + rs + V * PC_VL) = h1;                                           \
            *(sc_v8u *)(o + 2 * rs + V * PC_VL) = h2;                                       \
            *(sc_v8u *)(o + 3 * rs + V * PC_VL) = h3;                                       \
        }                                                                                   \
    } while (0)
#define SC_BODY4(V) SC_BODY4X(V, 0)
#define SC_BODY4H(V) SC_BODY4X(V, 1)

#if defined(__x86_64__) && defined(__GNUC__)
#define SC_HAVE_AVX512_CLONE 1
#define SC_AVX512 __attribute__((target("avx512f")))
#endif

#define SC_DEFINE(V)                                                                        \
    static void sc_portable_##V(const struct sc_kargs *a) { SC_BODY(V); }                   \
    SC_AVX512_DEFINE(V)
#define SC_DEFINE2(V)                                                                       \
    static void sc_portable2_##V(const struct sc_kargs *a) { SC_BODY2(V); }                 \
    SC_AVX512_DEFINE2(V)
#define SC_DEFINE4(V)                                                                       \
    static void sc_portable4_##V(const struct sc_kargs *a) { SC_BODY4(V); }                 \
    SC_AVX512_DEFINE4(V)

#define SC_DEFINE4H(V)                                                                      \
    static void sc_portable4h_##V(const struct sc_kargs *a) { SC_BODY4H(V); }               \
    SC_AVX512_DEFINE4H(V)

#ifdef SC_HAVE_AVX512_CLONE
#define SC_AVX512_DEFINE4H(V)                                                               \
    __attribute__((target("avx512f,avx512vl"))) static void sc_avx512_4h_##V(               \
        const struct sc_kargs *a) { SC_BODY4H(V); }
#else
#define SC_AVX512_DEFINE4H(V)
#endif

#ifdef SC_HAVE_AVX512_CLONE
#define SC_AVX512_DEFINE(V)                                                                 \
    SC_AVX512 static void sc_avx512_##V(const struct sc_kargs *a) { SC_BODY(V); }
#define SC_AVX512_DEFINE2(V)                                                                \
    SC_AVX512 static void sc_avx512_2_##V(const struct sc_kargs *a) { SC_BODY2(V); }
#define SC_AVX512_DEFINE4(V)                                                                \
    SC_AVX512 static void sc_avx512_4_##V(const struct sc_kargs *a) { SC_BODY4(V); }
#else
#define SC_AVX512_DEFINE(V)
#define SC_AVX512_DEFINE2(V)
#define SC_AVX512_DEFINE4(V)
#endif

SC_DEFINE(1) SC_DEFINE(2) SC_DEFINE(3) SC_DEFINE(4) SC_DEFINE(5) SC_DEFINE(6) SC_DEFINE(7)
SC_DEFINE(8) SC_DEFINE(9) SC_DEFINE(10) SC_DEFINE(11) SC_DEFINE(12) SC_DEFINE(13)
SC_DEFINE(14) SC_DEFINE(15) SC_DEFINE(16) SC_DEFINE(17) SC_DEFINE(18) SC_DEFINE(19)
SC_DEFINE(20) SC_DEFINE(21) SC_DEFINE(22) SC_DEFINE(23) SC_DEFINE(24) SC_DEFINE(25)
SC_DEFINE(26) SC_DEFINE(27) SC_DEFINE(28)
SC_DEFINE2(1) SC_DEFINE2(2) SC_DEFINE2(3) SC_DEFINE2(4) SC_DEFINE2(5) SC_DEFINE2(6)
SC_DEFINE2(7) SC_DEFINE2(8) SC_DEFINE2(9) SC_DEFINE2(10) SC_DEFINE2(11) SC_DEFINE2(12)
SC_DEFINE2(13) SC_DEFINE2(14)
SC_DEFINE4(1) SC_DEFINE4(2) SC_DEFINE4(3) SC_DEFINE4(4) SC_DEFINE4(5) SC_DEFINE4(6)
SC_DEFINE4(7)
SC_DEFINE4H(1) SC_DEFINE4H(2) SC_DEFINE4H(3) SC_DEFINE4H(4) SC_DEFINE4H(5) SC_DEFINE4H(6)

#define SC_TABLE(P)                                                                         \
    {P##1, P##2, P##3, P##4, P##5, P##6, P##7, P##8, P##9, P##10, P##11, P##12, P##13,      \
     P##14, P##15, P##16, P##17, P##18, P##19, P##20, P##21, P##22, P##23, P##24, P##25,    \
     P##26, P##27, P##28}

#define SC_TABLE2(P)                                                                        \
    {P##1, P##2, P##3, P##4, P##5, P##6, P##7, P##8, P##9, P##10, P##11, P##12, P##13, P##14}

static const sc_kernel_fn portable[SC_MAX_V] = SC_TABLE(sc_portable_);
#define SC_TABLE4(P) {P##1, P##2, P##3, P##4, P##5, P##6, P##7}

static const sc_kernel_fn portable2[SC_MAX_V2] = SC_TABLE2(sc_portable2_);
static const sc_kernel_fn portable4[SC_MAX_V4] = SC_TABLE4(sc_portable4_);
#define SC_TABLE4H(P) {P##1, P##2, P##3, P##4, P##5, P##6}
static const sc_kernel_fn portable4h[SC_MAX_V4 - 1] = SC_TABLE4H(sc_portable4h_);
#ifdef SC_HAVE_AVX512_CLONE
static const sc_kernel_fn avx512[SC_MAX_V] = SC_TABLE(sc_avx512_);
static const sc_kernel_fn avx512_2[SC_MAX_V2] = SC_TABLE2(sc_avx512_2_);
static const sc_kernel_fn avx512_4[SC_MAX_V4] = SC_TABLE4(sc_avx512_4_);
static const sc_kernel_fn avx512_4h[SC_MAX_V4 - 1] = SC_TABLE4H(sc_avx512_4h_);
#endif

/* AVX-512F in the CPU and its register state enabled by the OS (XCR0: SSE,
 * AVX, opmask, upper ZMM halves, ZMM16-31). cpuid rather than
 * __builtin_cpu_supports, whose libgcc initialiser is a constructor, which
 * plugins do not have. */
static int cpu_has_avx512f(void)
{
#ifdef SC_HAVE_AVX512_CLONE
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) /* OSXSAVE */
        return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xe6u) != 0xe6u)
        return 0;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 16) & 1u;
#else
    return 0;
#endif
}

/* AVX-512VL (EVEX-encoded 256-bit operations, 32 ymm registers): the half
 * vector of sc_kernel4h. Only asked once AVX-512F is known present. */
static int cpu_has_avx512vl(void)
{
#ifdef SC_HAVE_AVX512_CLONE
    static int state; /* 0 unknown, 1 no, 2 yes */
    int s = __atomic_load_n(&state, __ATOMIC_RELAXED);
    if (!s) {
        unsigned a, b, c, d;
        __cpuid_count(7, 0, a, b, c, d);
        s = (b >> 31) & 1u ? 2 : 1;
        __atomic_store_n(&state, s, __ATOMIC_RELAXED);
    }
    return s == 2;
#else
    return 0;
#endif
}

static const sc_kernel_fn *table(void)
{
#ifdef SC_HAVE_AVX512_CLONE
    static int state; /* 0 unknown, 1 portable, 2 avx512: racing writers agree */
    int s = __atomic_load_n(&state, __ATOMIC_RELAXED);
    if (!s) {
        s = cpu_has_avx512f() ? 2 : 1;
        __atomic_store_n(&state, s, __ATOMIC_RELAXED);
    }
    return s == 2 ? avx512 : portable;
#else
    return portable;
#endif
}

sc_kernel_fn sc_kernel(int v)
{
    if (v < 1 || v > SC_MAX_V)
        return NULL;
    return table()[v - 1];
}

sc_kernel_fn sc_kernel2(int v)
{
    if (v < 1 || v > SC_MAX_V2)
        return NULL;
#ifdef SC_HAVE_AVX512_CLONE
    if (table() == avx512)
        return avx512_2[v - 1];
#endif
    return portable2[v - 1];
}

sc_kernel_fn sc_kernel4(int v)
{
    if (v < 1 || v > SC_MAX_V4)
        return NULL;
#ifdef SC_HAVE_AVX512_CLONE
    if (table() == avx512)
        return avx512_4[v - 1];
#endif
    return portable4[v - 1];
}

sc_kernel_fn sc_kernel4h(int v)
{
    if (v < 1 || v > SC_MAX_V4 - 1)
        return NULL;
#ifdef SC_HAVE_AVX512_CLONE
    if (table() == avx512 && cpu_has_avx512vl())
        return avx512_4h[v - 1];
#endif
    return portable4h[v - 1];
}

const char *sc_kernel_isa(void)
{
#ifdef SC_HAVE_AVX512_CLONE
    return table() == avx512 ? "avx512" : "portable";
#else
    return "portable";
#endif
}
