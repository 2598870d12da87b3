/* Training: gradients of every op, losses, SGD, schedules, determinism,
 * resume after SIGKILL, hooks, and short training runs.
 *
 * Gradient checks. The autograd computes in float32; it is checked against
 * central finite differences of an independent float64 forward written in
 * this file (straight from each op's definition), with step h = 1e-5. In
 * double the difference quotient is exact to about 1e-9 relative (h^2
 * truncation and 1e-16 / h rounding), so what remains is the float32
 * rounding of the kernels under test: sums of at most a few thousand
 * products, each rounded to 2^-24 relative, stay below 1e-4 of the largest
 * gradient entry. The checks use tolerance 1e-3 of that entry (plus 1e-6
 * absolute): ten times the rounding bound, and far below the O(1) error of
 * any wrong formula, index or missing term. Inputs are random with fixed
 * seeds, so no relu or max-pool decision sits within h of its kink. */
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dlas/dlas.h>

#include "random_graph.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------- */

static int64_t numel(const struct dlas_node *n)
{
    int64_t m = 1;
    for (int i = 0; i < n->out_ndim; i++)
        m *= n->out_shape[i];
    return m;
}

static void fill_uniform(float *x, int64_t n, uint64_t seed, double lo, double hi)
{
    struct dlas_rng r;
    dlas_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * dlas_rng_uniform(&r));
}

static void randomise(struct dlas_graph *g, uint64_t seed)
{
    /* Non-trivial BN parameters and running statistics, so every term of
     * their gradients matters. */
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        struct dlas_node *n = dlas_graph_node(g, i);
        if (n->weight.data)
            fill_uniform(dlas_f32(&n->weight), dlas_tensor_numel(&n->weight), seed + 10 * i,
                         n->op == DLAS_OP_BATCHNORM ? 0.5 : -0.5,
                         n->op == DLAS_OP_BATCHNORM ? 1.5 : 0.5);
        if (n->bias.data)
            fill_uniform(dlas_f32(&n->bias), dlas_tensor_numel(&n->bias), seed + 10 * i + 1,
                         -0.5, 0.5);
        if (n->running_mean.data)
            fill_uniform(dlas_f32(&n->running_mean), dlas_tensor_numel(&n->running_mean),
                         seed + 10 * i + 2, -0.3, 0.3);
        if (n->running_var.data)
            fill_uniform(dlas_f32(&n->running_var), dlas_tensor_numel(&n->running_var),
                         seed + 10 * i + 3, 0.5, 2.0);
    }
}

static struct dlas_graph *new_graph(void)
{
    struct dlas_graph *g = dlas_graph_new();
    ck_assert_ptr_nonnull(g);
    return g;
}

static void finish(struct dlas_graph *g)
{
    ck_assert_msg(dlas_graph_status(g) == 0, "graph: %s", dlas_last_error());
    ck_assert_msg(dlas_graph_validate(g) == 0, "graph: %s", dlas_last_error());
}

/* ---- the float64 reference forward ----------------------------------------- */

struct p64 {
    double *w, *b, *rm, *rv;
    const uint8_t *drop; /* dropout keep mask of the f32 pass */
};

static double *dup64(const struct dlas_tensor *t)
{
    int64_t n = dlas_tensor_numel(t);
    if (!n)
        return NULL;
    double *d = malloc((size_t)n * sizeof *d);
    for (int64_t i = 0; i < n; i++)
        d[i] = dlas_f32(t)[i];
    return d;
}

static void conv64(const struct dlas_node *n, const struct dlas_node *x, const struct p64 *p,
                   int64_t B, const double *in, double *out)
{
    const struct dlas_conv_attr *a = &n->attr.conv;
    const int64_t IC = x->out_shape[0], IH = x->out_shape[1], IW = x->out_shape[2];
    const int64_t OC = n->out_shape[0], OH = n->out_shape[1], OW = n->out_shape[2];
    const int64_t icg = IC / a->groups, ocg = OC / a->groups;
    for (int64_t b = 0; b < B; b++)
        for (int64_t oc = 0; oc < OC; oc++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double s = a->bias ? p->b[oc] : 0.0;
                    int64_t g = oc / ocg;
                    for (int64_t ic = 0; ic < icg; ic++)
                        for (int ky = 0; ky < a->kh; ky++)
                            for (int kx = 0; kx < a->kw; kx++) {
                                int64_t ih = oh * a->stride_h - a->pad_h + ky * a->dil_h;
                                int64_t iw = ow * a->stride_w - a->pad_w + kx * a->dil_w;
                                if (ih < 0 || ih >= IH || iw < 0 || iw >= IW)
                                    continue;
                                s += in[((b * IC + g * icg + ic) * IH + ih) * IW + iw] *
                                     p->w[((oc * icg + ic) * a->kh + ky) * a->kw + kx];
                            }
                    out[((b * OC + oc) * OH + oh) * OW + ow] = s;
                }
}

static void pool64(const struct dlas_node *n, const struct dlas_node *x, int64_t B,
                   const double *in, double *out)
{
    const struct dlas_pool_attr *a = &n->attr.pool;
    const int64_t C = x->out_shape[0], IH = x->out_shape[1], IW = x->out_shape[2];
    const int64_t OH = n->out_shape[1], OW = n->out_shape[2];
    for (int64_t pl = 0; pl < B * C; pl++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t h0 = oh * a->stride_h - a->pad_h, w0 = ow * a->stride_w - a->pad_w;
                int64_t h1 = h0 + a->kh, w1 = w0 + a->kw;
                double r;
                if (n->op == DLAS_OP_MAXPOOL) {
                    r = -INFINITY;
                    for (int64_t ih = h0; ih < h1; ih++)
                        for (int64_t iw = w0; iw < w1; iw++)
                            if (ih >= 0 && ih < IH && iw >= 0 && iw < IW &&
                                in[(pl * IH + ih) * IW + iw] > r)
                                r = in[(pl * IH + ih) * IW + iw];
                } else {
                    /* PyTorch: the divisor counts the window up to the far
                     * padding edge (count_include_pad) or the input cells */
                    int64_t hp = h1 < IH + a->pad_h ? h1 : IH + a->pad_h;
                    int64_t wp = w1 < IW + a->pad_w ? w1 : IW + a->pad_w;
                    int64_t cells = 0;
                    double s = 0.0;
                    for (int64_t ih = h0; ih < hp; ih++)
                        for (int64_t iw = w0; iw < wp; iw++)
                            if (ih >= 0 && ih < IH && iw >= 0 && iw < IW) {
                                s += in[(pl * IH + ih) * IW + iw];
                                cells++;
                            }
                    int64_t div = a->count_include_pad ? (hp - h0) * (wp - w0) : cells;
                    r = cells ? s / (double)div : 0.0;
                }
                out[(pl * OH + oh) * OW + ow] = r;
            }
}

static void node64(const struct dlas_graph *g, int id, const struct p64 *P, int64_t B,
                   double *const *act, int train)
{
    const struct dlas_node *n = dlas_graph_node(g, id);
    const struct dlas_node *x = n->n_inputs ? dlas_graph_node(g, n->inputs[0]) : NULL;
    const double *in = x ? act[n->inputs[0]] : NULL;
    double *out = act[id];
    const struct p64 *p = &P[id];
    const int64_t m = numel(n), T = B * m;
    switch (n->op) {
    case DLAS_OP_CONV2D:
        conv64(n, x, p, B, in, out);
        break;
    case DLAS_OP_BATCHNORM: {
        const int64_t C = n->out_shape[0], S = m / C;
        for (int64_t c = 0; c < C; c++) {
            double mean = p->rm[c], var = p->rv[c];
            if (train) {
                double s = 0, s2 = 0;
                for (int64_t b = 0; b < B; b++)
                    for (int64_t i = 0; i < S; i++)
                        s += in[(b * C + c) * S + i];
                mean = s / (double)(B * S);
                for (int64_t b = 0; b < B; b++)
                    for (int64_t i = 0; i < S; i++) {
                        double d = in[(b * C + c) * S + i] - mean;
                        s2 += d * d;
                    }
                var = s2 / (double)(B * S);
            }
            for (int64_t b = 0; b < B; b++)
                for (int64_t i = 0; i < S; i++)
                    out[(b * C + c) * S + i] =
                        (in[(b * C + c) * S + i] - mean) / sqrt(var + n->attr.bn.eps) * p->w[c] +
                        p->b[c];
        }
        break;
    }
    case DLAS_OP_RELU:
        for (int64_t i = 0; i < T; i++)
            out[i] = in[i] > 0 ? in[i] : 0;
        break;
    case DLAS_OP_RELU6:
        for (int64_t i = 0; i < T; i++)
            out[i] = in[i] < 0 ? 0 : in[i] > 6 ? 6 : in[i];
        break;
    case DLAS_OP_MAXPOOL:
    case DLAS_OP_AVGPOOL:
        pool64(n, x, B, in, out);
        break;
    case DLAS_OP_GLOBAL_AVGPOOL: {
        const int64_t S = x->out_shape[1] * x->out_shape[2];
        for (int64_t pl = 0; pl < B * x->out_shape[0]; pl++) {
            double s = 0;
            for (int64_t i = 0; i < S; i++)
                s += in[pl * S + i];
            out[pl] = s / (double)S;
        }
        break;
    }
    case DLAS_OP_LINEAR: {
        const int64_t F = numel(x);
        for (int64_t b = 0; b < B; b++)
            for (int64_t o = 0; o < m; o++) {
                double s = n->attr.linear.bias ? p->b[o] : 0.0;
                for (int64_t f = 0; f < F; f++)
                    s += p->w[o * F + f] * in[b * F + f];
                out[b * m + o] = s;
            }
        break;
    }
    case DLAS_OP_ADD:
        for (int64_t i = 0; i < T; i++)
            out[i] = in[i] + act[n->inputs[1]][i];
        break;
    case DLAS_OP_CONCAT:
        for (int64_t b = 0; b < B; b++) {
            double *y = out + b * m;
            for (int k = 0; k < n->n_inputs; k++) {
                int64_t mk = numel(dlas_graph_node(g, n->inputs[k]));
                memcpy(y, act[n->inputs[k]] + b * mk, (size_t)mk * sizeof *y);
                y += mk;
            }
        }
        break;
    case DLAS_OP_FLATTEN:
        memcpy(out, in, (size_t)T * sizeof *out);
        break;
    case DLAS_OP_DROPOUT: {
        double keep = 1.0 - n->attr.dropout.p;
        for (int64_t i = 0; i < T; i++)
            out[i] = !train ? in[i] : p->drop[i] ? in[i] / keep : 0.0;
        break;
    }
    case DLAS_OP_SOFTMAX: {
        const int64_t C = n->out_shape[0], S = m / C;
        for (int64_t b = 0; b < B; b++)
            for (int64_t s = 0; s < S; s++) {
                double mx = -INFINITY, sum = 0;
                for (int64_t c = 0; c < C; c++)
                    mx = fmax(mx, in[(b * C + c) * S + s]);
                for (int64_t c = 0; c < C; c++)
                    sum += exp(in[(b * C + c) * S + s] - mx);
                for (int64_t c = 0; c < C; c++)
                    out[(b * C + c) * S + s] = exp(in[(b * C + c) * S + s] - mx) / sum;
            }
        break;
    }
    default:
        ck_abort_msg("no float64 reference for %s", dlas_op_name(n->op));
    }
}

struct ref64 {
    const struct dlas_graph *g;
    int n;
    int64_t B;
    int train;
    struct p64 *P;
    double **act;
    const double *r; /* loss weights of the output */
};

static double loss64(struct ref64 *R)
{
    for (int i = 1; i < R->n; i++)
        node64(R->g, i, R->P, R->B, R->act, R->train);
    const struct dlas_node *last = dlas_graph_node(R->g, R->n - 1);
    double L = 0;
    for (int64_t i = 0; i < R->B * numel(last); i++)
        L += R->r[i] * R->act[R->n - 1][i];
    return L;
}

/* Analytic (f32) against central differences (f64) at up to 48 entries of
 * v, spread over the tensor; see the tolerance note at the top. */
/* What a failure names before the tensor: the random network under test. */
static char grad_context[700];
/* The absolute part of the tolerance. A gradient that is zero by the maths
 * (a conv's bias before a batchnorm in training mode, which subtracts the
 * batch mean) is computed as a float sum of terms that cancel: about u
 * times the sum of their sizes, e.g. 200 upstream gradients of order 1
 * (batch 2, 10x10 maps) leave 1e-5. The op-by-op checks' small maps stay
 * under 1e-6. */
static double grad_abs_tol = 1e-6;
/* How far the float training forward may be from the float64 one, of its
 * largest output. A batchnorm in training mode over as few as 2 values
 * (batch 2, a 1x1 map) divides by sqrt(var + eps), which multiplies the
 * rounding before it by up to 1 / sqrt(eps), about 316: random networks
 * have such layers, the op-by-op checks do not. */
static double grad_fwd_tol = 1e-5;

/* With grad_kinks, compare_fd takes each difference at two steps and skips
 * (counting in grad_kinked) an entry where they disagree. Random networks
 * have many relu, relu6 and max pool switches, and some lie within a step
 * of 1e-5 of an entry. */
static int grad_kinks;
static int64_t grad_kinked, grad_entries;

/* (f(v + h) - f(v - h)) / 2h of the float64 loss. */
static double central_difference(struct ref64 *R, double *v, double h)
{
    const double save = *v;
    *v = save + h;
    const double lp = loss64(R);
    *v = save - h;
    const double lm = loss64(R);
    *v = save;
    return (lp - lm) / (2 * h);
}

static void compare_fd(struct ref64 *R, double *v, int64_t n, const float *analytic,
                       const char *what)
{
    ck_assert_msg(analytic != NULL, "%s: no analytic gradient", what);
    /* 48 entries spread over the tensor; 12 under DLAS_TEST_SUBSET (each
     * is two float64 reference forwards, slow under the sanitizers) */
    const int64_t most = dlas_test_subset() ? 12 : 48;
    const int64_t K = n < most ? n : most;
    double *num = malloc((size_t)K * sizeof *num);
    int64_t *idx = malloc((size_t)K * sizeof *idx);
    uint8_t *kink = calloc((size_t)K, 1);
    double maxn = 0;
    for (int64_t k = 0; k < K; k++) {
        idx[k] = n <= most ? k : (k * n) / K + (k * 7) % (n / K > 0 ? n / K : 1);
        num[k] = central_difference(R, v + idx[k], 1e-5);
        if (grad_kinks) {
            /* a relu, relu6 or max pool switching inside the step: the
             * difference quotient then depends on the step, the derivative
             * of the side autograd took does not */
            const double fine = central_difference(R, v + idx[k], 1e-7);
            kink[k] = fabs(fine - num[k]) > 1e-4 * fmax(fabs(fine), 1e-3);
            grad_kinked += kink[k];
            grad_entries++;
        }
        maxn = fmax(maxn, fabs(num[k]));
    }
    for (int64_t k = 0; k < K; k++)
        ck_assert_msg(kink[k] || fabs(analytic[idx[k]] - num[k]) <= 1e-3 * maxn + grad_abs_tol,
                      "%s%s[%lld]: autograd %.9g, finite differences %.9g (largest %.3g)",
                      grad_context, what, (long long)idx[k], (double)analytic[idx[k]], num[k],
                      maxn);
    free(kink);
    free(num);
    free(idx);
}

/* How far the input's gradient moves, of its largest entry, when each input
 * moves by about one rounding (1.2e-7 of itself): a clone of g, so that
 * training mode's running statistics stay as they were. */
static double input_grad_sensitivity(const struct dlas_graph *g, int64_t B, const float *x,
                                     const float *dy, unsigned flags, uint64_t seed)
{
    const int n = dlas_graph_n_nodes(g);
    const int64_t nin = B * numel(dlas_graph_node(g, 0)), nout = B * numel(dlas_graph_node(g, n - 1));
    float *grad[2], *xp = malloc((size_t)nin * sizeof *xp);
    for (int64_t i = 0; i < nin; i++)
        xp[i] = x[i] * (1.0f + (float)(i % 3 - 1) * 1.2e-7f);
    for (int k = 0; k < 2; k++) {
        struct dlas_graph *c = dlas_graph_clone(g);
        struct dlas_autograd *a;
        ck_assert_msg(c && dlas_autograd_new(c, B, 2, &a) == 0, "%s", dlas_last_error());
        dlas_autograd_want_input_grad(a, 1);
        dlas_autograd_set_seed(a, seed);
        ck_assert_int_eq(dlas_autograd_forward(a, B, k ? xp : x, flags), 0);
        memcpy(dlas_autograd_grad(a, n - 1), dy, (size_t)nout * sizeof *dy);
        dlas_autograd_zero_grad(a);
        ck_assert_int_eq(dlas_autograd_backward(a), 0);
        grad[k] = malloc((size_t)nin * sizeof *grad[k]);
        memcpy(grad[k], dlas_autograd_grad(a, 0), (size_t)nin * sizeof *grad[k]);
        dlas_autograd_free(a);
        dlas_graph_free(c);
    }
    double moved = 0, largest = 0;
    for (int64_t i = 0; i < nin; i++) {
        moved = fmax(moved, fabs((double)grad[1][i] - grad[0][i]));
        largest = fmax(largest, fabs(grad[0][i]));
    }
    free(grad[0]);
    free(grad[1]);
    free(xp);
    return largest > 0 ? moved / largest : 0;
}

/* With grad_max_sensitivity > 0, gradcheck skips (and counts here) a
 * network whose input gradient moves by more than that when its input
 * moves by one rounding: a float computation of it is then only as good as
 * that times the roundings it makes, and no tolerance would tell a bug
 * from the conditioning. */
static double grad_max_sensitivity;
static int grad_skipped;

/* The largest, over node id's channels, sum of the absolute values of the
 * gradients at its output: the terms its bias's gradient adds up. Where
 * they cancel by the maths (a conv's bias before a batchnorm in training
 * mode, which subtracts the batch mean), the float sum keeps a few
 * roundings of this, however small the result should be. */
static double bias_terms(struct dlas_autograd *a, const struct dlas_graph *g, int id, int64_t B)
{
    const struct dlas_node *d = dlas_graph_node(g, id);
    const float *dy = dlas_autograd_grad(a, id);
    if (!dy)
        return 0;
    const int64_t C = d->out_shape[0], P = numel(d) / C;
    double most = 0;
    for (int64_t c = 0; c < C; c++) {
        double sum = 0;
        for (int64_t b = 0; b < B; b++)
            for (int64_t p = 0; p < P; p++)
                sum += fabs(dy[(b * C + c) * P + p]);
        most = fmax(most, sum);
    }
    return most;
}

/* The largest absolute value of node id's output: with bias_terms, what
 * bounds the terms of a conv's or linear layer's weight gradient (each
 * output's gradient times an input), which cancel as the bias's do where
 * a batchnorm in training mode follows (the output is then unchanged by
 * scaling the weights: their gradient is orthogonal to them). */
static double largest_act(struct dlas_autograd *a, const struct dlas_graph *g, int id, int64_t B)
{
    const float *x = dlas_autograd_act(a, id);
    const int64_t n = B * numel(dlas_graph_node(g, id));
    double most = 0;
    for (int64_t i = 0; x && i < n; i++)
        most = fmax(most, fabs(x[i]));
    return most;
}

/* Check d(sum r * output)/d(input and every parameter) of g. */
static void gradcheck(struct dlas_graph *g, int64_t B, int train, double in_scale, uint64_t seed)
{
    finish(g);
    randomise(g, seed);
    const int n = dlas_graph_n_nodes(g);
    const struct dlas_node *in0 = dlas_graph_node(g, 0), *last = dlas_graph_node(g, n - 1);
    const int64_t nin = B * numel(in0), nout = B * numel(last);
    float *x = malloc((size_t)nin * sizeof *x);
    fill_uniform(x, nin, seed + 1, -in_scale, in_scale);
    double *r = malloc((size_t)nout * sizeof *r);
    float *rf = malloc((size_t)nout * sizeof *rf);
    fill_uniform(rf, nout, seed + 2, -1, 1);
    for (int64_t i = 0; i < nout; i++)
        r[i] = rf[i];
    unsigned flags = train ? DLAS_AG_TRAIN | DLAS_AG_KEEP_STATS : 0;
    if (grad_max_sensitivity > 0 &&
        input_grad_sensitivity(g, B, x, rf, flags, seed + 3) > grad_max_sensitivity) {
        grad_skipped++;
        free(x);
        free(r);
        free(rf);
        dlas_graph_free(g);
        return;
    }

    struct dlas_autograd *a;
    ck_assert_msg(dlas_autograd_new(g, B, 2, &a) == 0, "%s", dlas_last_error());
    dlas_autograd_want_input_grad(a, 1);
    dlas_autograd_set_seed(a, seed + 3);
    ck_assert_msg(dlas_autograd_forward(a, B, x, flags) == 0, "%s", dlas_last_error());
    float *dy = dlas_autograd_grad(a, n - 1);
    ck_assert_ptr_nonnull(dy);
    memcpy(dy, rf, (size_t)nout * sizeof *dy);
    dlas_autograd_zero_grad(a);
    ck_assert_msg(dlas_autograd_backward(a) == 0, "%s", dlas_last_error());

    struct ref64 R = {g, n, B, train, calloc((size_t)n, sizeof(struct p64)),
                      calloc((size_t)n, sizeof(double *)), r};
    for (int i = 0; i < n; i++) {
        const struct dlas_node *d = dlas_graph_node(g, i);
        R.act[i] = malloc((size_t)(B * numel(d)) * sizeof(double));
        R.P[i].w = dup64(&d->weight);
        R.P[i].b = dup64(&d->bias);
        R.P[i].rm = dup64(&d->running_mean);
        R.P[i].rv = dup64(&d->running_var);
        R.P[i].drop = dlas_autograd_dropout_mask(a, i);
        if (d->op == DLAS_OP_DROPOUT && train)
            ck_assert_ptr_nonnull(R.P[i].drop);
    }
    for (int64_t i = 0; i < nin; i++)
        R.act[0][i] = x[i];
    loss64(&R);
    /* the f32 training forward agrees with the f64 definition */
    const float *out = dlas_autograd_act(a, n - 1);
    double maxo = 0, maxd = 0;
    for (int64_t i = 0; i < nout; i++) {
        maxo = fmax(maxo, fabs(R.act[n - 1][i]));
        maxd = fmax(maxd, fabs(out[i] - R.act[n - 1][i]));
    }
    ck_assert_msg(maxd <= grad_fwd_tol * maxo + 1e-6, "%sforward differs from float64 by %.3g (of %.3g)",
                  grad_context, maxd, maxo);

    char what[160];
    compare_fd(&R, R.act[0], nin, dlas_autograd_grad(a, 0), "input");
    for (int i = 1; i < n; i++) {
        const struct dlas_node *d = dlas_graph_node(g, i);
        if (R.P[i].w) {
            snprintf(what, sizeof what, "%s.weight", d->name);
            const double abs_tol = grad_abs_tol;
            if (grad_max_sensitivity > 0 && d->op != DLAS_OP_BATCHNORM) /* a conv, a linear */
                grad_abs_tol = fmax(abs_tol, 1e-5 * bias_terms(a, g, i, B) *
                                                 largest_act(a, g, d->inputs[0], B));
            compare_fd(&R, R.P[i].w, dlas_tensor_numel(&d->weight),
                       dlas_f32(dlas_autograd_param_grad(a, i, 0)), what);
            grad_abs_tol = abs_tol;
        }
        if (R.P[i].b) {
            snprintf(what, sizeof what, "%s.bias", d->name);
            const double abs_tol = grad_abs_tol;
            if (grad_max_sensitivity > 0) /* random networks: see bias_terms */
                grad_abs_tol = fmax(abs_tol, 1e-5 * bias_terms(a, g, i, B));
            compare_fd(&R, R.P[i].b, dlas_tensor_numel(&d->bias),
                       dlas_f32(dlas_autograd_param_grad(a, i, 1)), what);
            grad_abs_tol = abs_tol;
        }
    }
    for (int i = 0; i < n; i++) {
        free(R.act[i]);
        free(R.P[i].w);
        free(R.P[i].b);
        free(R.P[i].rm);
        free(R.P[i].rv);
    }
    free(R.act);
    free(R.P);
    dlas_autograd_free(a);
    free(x);
    free(r);
    free(rf);
    dlas_graph_free(g);
}

/* ---- gradient checks, op by op ---------------------------------------------- */

static struct dlas_graph *conv_graph(int c, int h, int w, struct dlas_conv_attr a)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", c, h, w);
    dlas_graph_conv2d(g, "conv", x, &a);
    return g;
}

START_TEST(grad_conv_plain)
{
    struct dlas_conv_attr a = dlas_conv(5, 3, 1, 1);
    a.bias = 1;
    gradcheck(conv_graph(3, 6, 6, a), 2, 1, 1.0, 11);
}
END_TEST

START_TEST(grad_conv_groups_stride_pad_dilation)
{
    struct dlas_conv_attr a = {6, 3, 3, 2, 2, 2, 1, 2, 2, 2, 1};
    gradcheck(conv_graph(4, 9, 8, a), 3, 1, 1.0, 12);
}
END_TEST

START_TEST(grad_conv_asymmetric)
{
    /* kernel 3x2, stride 2x1, padding 1x0, dilation 1x2, no bias */
    struct dlas_conv_attr a = {4, 3, 2, 2, 1, 1, 0, 1, 2, 1, 0};
    gradcheck(conv_graph(2, 7, 9, a), 2, 1, 1.0, 13);
}
END_TEST

START_TEST(grad_conv_depthwise)
{
    struct dlas_conv_attr a = dlas_conv(8, 3, 1, 1);
    a.groups = 4; /* channel multiplier 2 */
    gradcheck(conv_graph(4, 5, 5, a), 2, 1, 1.0, 14);
}
END_TEST

/* 1x1 convs in groups: one input channel a group with a multiplier of 2
 * (MobileNet-style channel expansion by groups), and two a group. */
START_TEST(grad_conv_grouped_1x1)
{
    struct dlas_conv_attr a = dlas_conv(12, 1, 1, 0);
    a.groups = 6;
    gradcheck(conv_graph(6, 9, 9, a), 2, 1, 1.0, 18);
    struct dlas_conv_attr b = dlas_conv(6, 1, 1, 0);
    b.groups = 3;
    b.bias = 1;
    gradcheck(conv_graph(6, 5, 7, b), 2, 1, 1.0, 19);
}
END_TEST

START_TEST(grad_conv_1x1)
{
    struct dlas_conv_attr a = dlas_conv(6, 1, 1, 0); /* the input is the column matrix */
    a.bias = 1;
    gradcheck(conv_graph(3, 4, 5, a), 2, 1, 1.0, 15);
    struct dlas_conv_attr s = dlas_conv(6, 1, 2, 0); /* a downsampling shortcut */
    gradcheck(conv_graph(3, 5, 5, s), 2, 1, 1.0, 16);
}
END_TEST

/* Shapes that take the direct kernels (AVX-512 builds): enough channels
 * per group, odd output counts, input counts off the 16-lane vectors, taps
 * beyond 9, dilation, no padding, groups. */
START_TEST(grad_conv_direct)
{
    struct dlas_conv_attr a = dlas_conv(7, 3, 1, 1);
    gradcheck(conv_graph(10, 6, 7, a), 3, 1, 1.0, 17);
    struct dlas_conv_attr b = dlas_conv(9, 5, 1, 2);
    b.bias = 1;
    gradcheck(conv_graph(20, 6, 6, b), 2, 1, 1.0, 18);
    struct dlas_conv_attr c = {8, 3, 3, 1, 1, 2, 2, 2, 2, 2, 0};
    gradcheck(conv_graph(16, 7, 6, c), 2, 1, 1.0, 19);
    struct dlas_conv_attr e = dlas_conv(8, 3, 1, 0);
    gradcheck(conv_graph(8, 6, 6, e), 2, 1, 1.0, 20);
    struct dlas_conv_attr f = {12, 2, 3, 1, 1, 1, 0, 1, 1, 1, 1};
    gradcheck(conv_graph(9, 5, 6, f), 2, 1, 1.0, 24);
    /* strided: phase planes forward, strided positions for dW */
    struct dlas_conv_attr s2 = dlas_conv(8, 3, 2, 1);
    gradcheck(conv_graph(16, 7, 6, s2), 2, 1, 1.0, 26);
    struct dlas_conv_attr s12 = {5, 3, 3, 1, 2, 0, 1, 2, 1, 1, 1};
    gradcheck(conv_graph(8, 9, 8, s12), 2, 1, 1.0, 27);
    /* stride-2 rows longer than one vector (the permuted copy's tail and
     * both phases), wider padding, and stride 3 (the scalar copy) */
    struct dlas_conv_attr w2 = dlas_conv(8, 3, 2, 1);
    gradcheck(conv_graph(16, 5, 37, w2), 2, 1, 1.0, 28);
    struct dlas_conv_attr p2 = {8, 5, 5, 2, 2, 2, 2, 1, 1, 1, 0};
    gradcheck(conv_graph(16, 6, 35, p2), 2, 1, 1.0, 29);
    struct dlas_conv_attr s3 = {8, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1};
    gradcheck(conv_graph(16, 7, 20, s3), 2, 1, 1.0, 30);
    /* channels filling whole vectors, two layouts sharing the scratch */
    struct dlas_graph *g = new_graph();
    struct dlas_conv_attr p1 = dlas_conv(16, 3, 1, 1), d2 = {16, 3, 3, 1, 1, 2, 2, 2, 2, 1, 0};
    int x = dlas_graph_input(g, "in", 16, 6, 5);
    x = dlas_graph_conv2d(g, "ca", x, &p1);
    x = dlas_graph_relu(g, "relu", x);
    dlas_graph_conv2d(g, "cb", x, &d2);
    gradcheck(g, 2, 1, 1.0, 25);
}
END_TEST

/* Small maps with 32+ output channels take conv_cvec.c (vectors over
 * output channels) for the forward and, at stride 1, the input gradient:
 * 7x7 and 64 channels (four vectors), odd counts, stride 2, dilation, 5x5,
 * and an input whose gradient two convolutions add into. */
START_TEST(grad_conv_small_maps)
{
    gradcheck(conv_graph(32, 7, 7, dlas_conv(64, 3, 1, 1)), 2, 1, 1.0, 31);
    struct dlas_conv_attr s2 = {33, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1};
    gradcheck(conv_graph(20, 9, 11, s2), 2, 1, 1.0, 32);
    struct dlas_conv_attr dil = {32, 3, 3, 1, 1, 2, 2, 2, 2, 1, 0};
    gradcheck(conv_graph(40, 6, 5, dil), 2, 1, 1.0, 33);
    struct dlas_conv_attr k5 = {48, 5, 5, 1, 1, 2, 2, 1, 1, 1, 1};
    gradcheck(conv_graph(35, 8, 8, k5), 2, 1, 1.0, 34);
    struct dlas_graph *g = new_graph();
    struct dlas_conv_attr a = dlas_conv(32, 3, 1, 1);
    int x = dlas_graph_input(g, "in", 32, 6, 7);
    int l = dlas_graph_conv2d(g, "ca", x, &a), r = dlas_graph_conv2d(g, "cb", x, &a);
    dlas_graph_add(g, "sum", l, r);
    gradcheck(g, 3, 1, 1.0, 35);
}
END_TEST

START_TEST(grad_batchnorm_train)
{
    struct dlas_graph *g = new_graph();
    struct dlas_conv_attr a = dlas_conv(4, 3, 1, 1);
    int x = dlas_graph_input(g, "in", 2, 5, 5);
    x = dlas_graph_conv2d(g, "conv", x, &a);
    dlas_graph_batchnorm(g, "bn", x, 1e-5f);
    gradcheck(g, 3, 1, 1.0, 21);
}
END_TEST

START_TEST(grad_batchnorm_eval)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", 3, 4, 4);
    dlas_graph_batchnorm(g, "bn", x, 1e-5f);
    gradcheck(g, 2, 0, 1.0, 22);
}
END_TEST

START_TEST(grad_batchnorm_flat)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", 2, 3, 3);
    x = dlas_graph_flatten(g, "flat", x);
    x = dlas_graph_linear(g, "fc", x, 5, 1);
    dlas_graph_batchnorm(g, "bn", x, 1e-5f);
    gradcheck(g, 4, 1, 1.0, 23);
}
END_TEST

START_TEST(grad_relu_relu6)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", 2, 4, 4);
    dlas_graph_relu(g, "relu", x);
    gradcheck(g, 2, 1, 1.0, 31);
    g = new_graph();
    x = dlas_graph_input(g, "in", 2, 4, 4);
    dlas_graph_relu6(g, "relu6", x);
    gradcheck(g, 2, 1, 8.0, 32); /* inputs in [-8, 8] cross both ends */
}
END_TEST

START_TEST(grad_maxpool)
{
    struct dlas_pool_attr p = dlas_pool(3, 2, 1);
    struct dlas_graph *g = new_graph();
    dlas_graph_maxpool(g, "pool", dlas_graph_input(g, "in", 2, 7, 7), &p);
    gradcheck(g, 2, 1, 1.0, 41);
    p = dlas_pool(2, 2, 0);
    p.ceil_mode = 1; /* the last window hangs over the edge */
    g = new_graph();
    dlas_graph_maxpool(g, "pool", dlas_graph_input(g, "in", 2, 5, 5), &p);
    gradcheck(g, 2, 1, 1.0, 42);
}
END_TEST

START_TEST(grad_avgpool)
{
    struct dlas_pool_attr p = dlas_pool(3, 2, 1);
    struct dlas_graph *g = new_graph();
    dlas_graph_avgpool(g, "pool", dlas_graph_input(g, "in", 2, 6, 6), &p);
    gradcheck(g, 2, 1, 1.0, 43);
    p.count_include_pad = 0;
    p.ceil_mode = 1;
    g = new_graph();
    dlas_graph_avgpool(g, "pool", dlas_graph_input(g, "in", 2, 6, 6), &p);
    gradcheck(g, 2, 1, 1.0, 44);
    g = new_graph();
    dlas_graph_global_avgpool(g, "gap", dlas_graph_input(g, "in", 3, 4, 5));
    gradcheck(g, 2, 1, 1.0, 45);
}
END_TEST

START_TEST(grad_linear_flatten)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", 2, 3, 4);
    x = dlas_graph_flatten(g, "flat", x);
    dlas_graph_linear(g, "fc", x, 7, 1);
    gradcheck(g, 5, 1, 1.0, 51);
    g = new_graph();
    x = dlas_graph_flatten(g, "flat", dlas_graph_input(g, "in", 6, 1, 1));
    dlas_graph_linear(g, "fc", x, 3, 0);
    gradcheck(g, 3, 1, 1.0, 52);
}
END_TEST

START_TEST(grad_add)
{
    /* a residual block: the input feeds a conv and the add */
    struct dlas_graph *g = new_graph();
    struct dlas_conv_attr a = dlas_conv(3, 3, 1, 1);
    int x = dlas_graph_input(g, "in", 3, 5, 5);
    int y = dlas_graph_conv2d(g, "conv", x, &a);
    dlas_graph_add(g, "add", y, x);
    gradcheck(g, 2, 1, 1.0, 61);
    /* one tensor on both sides */
    g = new_graph();
    x = dlas_graph_input(g, "in", 2, 3, 3);
    y = dlas_graph_conv2d(g, "conv", x, &(struct dlas_conv_attr){2, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0});
    dlas_graph_add(g, "add", y, y);
    gradcheck(g, 2, 1, 1.0, 62);
}
END_TEST

START_TEST(grad_concat)
{
    struct dlas_graph *g = new_graph();
    struct dlas_conv_attr a = dlas_conv(2, 3, 1, 1), b = dlas_conv(3, 1, 1, 0);
    int x = dlas_graph_input(g, "in", 2, 4, 4);
    int p = dlas_graph_conv2d(g, "ca", x, &a);
    int q = dlas_graph_conv2d(g, "cb", x, &b);
    int ins[4] = {p, x, q, p}; /* the input itself and a repeated tensor too */
    dlas_graph_concat(g, "cat", 4, ins);
    gradcheck(g, 2, 1, 1.0, 71);
}
END_TEST

START_TEST(grad_dropout_fixed_mask)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", 3, 4, 4);
    x = dlas_graph_flatten(g, "flat", x);
    x = dlas_graph_linear(g, "fc", x, 20, 1);
    dlas_graph_dropout(g, "drop", x, 0.3f);
    gradcheck(g, 4, 1, 1.0, 81);
    /* eval: the identity */
    g = new_graph();
    x = dlas_graph_input(g, "in", 2, 2, 2);
    dlas_graph_dropout(g, "drop", x, 0.5f);
    gradcheck(g, 2, 0, 1.0, 82);
}
END_TEST

START_TEST(grad_softmax)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", 4, 2, 3);
    dlas_graph_softmax(g, "sm", x);
    gradcheck(g, 2, 1, 2.0, 91);
}
END_TEST

START_TEST(grad_network)
{
    /* many ops together, and gradients meeting at a node with several
     * consumers */
    struct dlas_graph *g = new_graph();
    struct dlas_conv_attr c1 = dlas_conv(6, 3, 1, 1), c2 = {6, 3, 3, 1, 1, 1, 1, 1, 1, 3, 0};
    struct dlas_pool_attr mp = dlas_pool(2, 2, 0);
    int x = dlas_graph_input(g, "in", 2, 8, 8);
    x = dlas_graph_conv2d(g, "conv1", x, &c1);
    x = dlas_graph_batchnorm(g, "bn1", x, 1e-5f);
    x = dlas_graph_relu(g, "relu1", x);
    int y = dlas_graph_conv2d(g, "conv2", x, &c2);
    y = dlas_graph_batchnorm(g, "bn2", y, 1e-5f);
    y = dlas_graph_add(g, "add", y, x);
    y = dlas_graph_relu6(g, "relu2", y);
    y = dlas_graph_maxpool(g, "pool", y, &mp);
    int z = dlas_graph_global_avgpool(g, "gap", y);
    int ins[2] = {z, z};
    z = dlas_graph_concat(g, "cat", 2, ins);
    z = dlas_graph_flatten(g, "flat", z);
    z = dlas_graph_dropout(g, "drop", z, 0.25f);
    dlas_graph_linear(g, "fc", z, 4, 1);
    gradcheck(g, 4, 1, 1.0, 101);
}
END_TEST

/* Network k of the sweep, in training mode where k is odd. */
static void grad_random_network(uint64_t k)
{
    struct rg_gen r;
    struct dlas_graph *g = rg_graph(k, 1, &r);
    snprintf(grad_context, sizeof grad_context, "network %llu (%s), %s mode: ",
             (unsigned long long)k, r.log, k % 2 ? "training" : "evaluation");
    gradcheck(g, 2, (int)(k % 2), 1.0, 1000 + k);
}

/* Random small networks (tests/random_graph.h: the zoo's motifs and their
 * near misses, 1-10 pixels a side), in training mode and in evaluation
 * mode, batch 2: every parameter's gradient and the input's against
 * finite differences of the float64 forward, where the network is well
 * enough conditioned for a float check (grad_max_sensitivity).
 * DLAS_RANDOM_GRADS=N checks N networks (default 16; 4 under
 * DLAS_TEST_SUBSET) from DLAS_RANDOM_FIRST (0): FIRST=K with N=1 reruns
 * the network a failure names. */
START_TEST(grad_random_networks)
{
    grad_abs_tol = 2e-5; /* maps up to 10x10 and 2 images: up to 200 cancelling terms */
    grad_fwd_tol = 3e-4;
    grad_max_sensitivity = 1e-5;
    grad_skipped = 0;
    grad_kinks = 1;
    grad_kinked = grad_entries = 0;
    const long n = rg_sweep(grad_random_network, NULL, "DLAS_RANDOM_GRADS",
                            dlas_test_subset() ? 4 : 16);
    grad_context[0] = 0;
    grad_abs_tol = 1e-6;
    grad_fwd_tol = 1e-5;
    grad_max_sensitivity = 0;
    grad_kinks = 0;
    /* the well-conditioned are most: measured 1 in 18 skipped (a
     * batchnorm in training mode over 2 values, on 1x1 maps) */
    ck_assert_msg(grad_skipped <= n / 4, "%d of %ld networks too ill-conditioned to check",
                  grad_skipped, n);
    ck_assert_msg(grad_kinked <= grad_entries / 20, "%lld of %lld entries by a kink",
                  (long long)grad_kinked, (long long)grad_entries);
}
END_TEST

/* ---- BN running statistics, and autograd errors ----------------------------- */

/* Channel c's mean and biased variance over B images of C channels of S
 * values each, in float64, in two passes. */
static void channel_moments(const float *in, int64_t B, int64_t C, int64_t S, int64_t c,
                            double *mean, double *var)
{
    double s = 0, s2 = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < S; i++)
            s += in[(b * C + c) * S + i];
    *mean = s / (double)(B * S);
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < S; i++)
            s2 += pow(in[(b * C + c) * S + i] - *mean, 2);
    *var = s2 / (double)(B * S);
}

/* Training-mode statistics where the batch mean lies far from the running
 * mean, in standard deviations: a channel of mean 10 and spread 0.01 (1000
 * of them) after a running mean of 0, and of mean 0 and spread 1e-3 after
 * one of 0.3 (300). The output, normalised, against the float64 two-pass
 * statistics of the same floats; moments about the running mean left
 * 0.2-25% of the variance to rounding there. */
START_TEST(bn_statistics_far_from_the_running_mean)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", 2, 5, 7);
    int id = dlas_graph_batchnorm(g, "bn", x, 1e-8f);
    finish(g);
    struct dlas_node *n = dlas_graph_node(g, id);
    const double centre[2] = {10, 0}, spread[2] = {0.01, 1e-3}, running[2] = {0, 0.3};
    for (int c = 0; c < 2; c++) {
        dlas_f32(&n->weight)[c] = 1;
        dlas_f32(&n->running_mean)[c] = (float)running[c];
        dlas_f32(&n->running_var)[c] = 1;
    }
    const int64_t B = 3, S = 35, C = 2;
    float in[210], u[210];
    fill_uniform(u, 210, 8, -1, 1);
    for (int64_t b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int64_t i = 0; i < S; i++)
                in[(b * C + c) * S + i] = (float)(centre[c] + spread[c] * u[(b * C + c) * S + i]);
    struct dlas_autograd *a;
    ck_assert_int_eq(dlas_autograd_new(g, B, 1, &a), 0);
    ck_assert_int_eq(dlas_autograd_forward(a, B, in, DLAS_AG_TRAIN | DLAS_AG_KEEP_STATS), 0);
    const float *y = dlas_autograd_act(a, id);
    for (int c = 0; c < C; c++) {
        double mean, var;
        channel_moments(in, B, C, S, c, &mean, &var);
        const double inv = 1 / sqrt(var + 1e-8);
        for (int64_t b = 0; b < B; b++)
            for (int64_t i = 0; i < S; i++) {
                const int64_t k = (b * C + c) * S + i;
                ck_assert_msg(fabs(y[k] - (in[k] - mean) * inv) < 1e-3,
                              "channel %d, value %lld: %.6g, not %.6g", c, (long long)k, y[k],
                              (in[k] - mean) * inv);
            }
    }
    dlas_autograd_free(a);
    dlas_graph_free(g);
}
END_TEST

START_TEST(bn_running_stats)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_input(g, "in", 2, 3, 3);
    int id = dlas_graph_batchnorm(g, "bn", x, 1e-5f);
    finish(g);
    struct dlas_node *n = dlas_graph_node(g, id);
    for (int c = 0; c < 2; c++) {
        dlas_f32(&n->weight)[c] = 1;
        dlas_f32(&n->running_var)[c] = 1;
    }
    const int64_t B = 4, S = 9;
    float in[72];
    fill_uniform(in, 72, 5, -2, 3);
    struct dlas_autograd *a;
    ck_assert_int_eq(dlas_autograd_new(g, B, 1, &a), 0);
    ck_assert_int_eq(dlas_autograd_forward(a, B, in, DLAS_AG_TRAIN), 0);
    for (int c = 0; c < 2; c++) {
        double mean, var;
        channel_moments(in, B, 2, S, c, &mean, &var);
        const double unbiased = var * (double)(B * S) / (double)(B * S - 1);
        ck_assert_double_eq_tol(dlas_f32(&n->running_mean)[c], 0.1 * mean, 1e-6);
        ck_assert_double_eq_tol(dlas_f32(&n->running_var)[c], 0.9 + 0.1 * unbiased, 1e-6);
    }
    /* KEEP_STATS and eval leave them alone */
    float rm0 = dlas_f32(&n->running_mean)[0];
    ck_assert_int_eq(dlas_autograd_forward(a, B, in, DLAS_AG_TRAIN | DLAS_AG_KEEP_STATS), 0);
    ck_assert_int_eq(dlas_autograd_forward(a, B, in, 0), 0);
    ck_assert(dlas_f32(&n->running_mean)[0] == rm0);
    /* a batch of one has no variance to train on, as in PyTorch */
    struct dlas_graph *g1 = new_graph();
    dlas_graph_batchnorm(g1, "bn", dlas_graph_flatten(g1, "f", dlas_graph_input(g1, "in", 2, 1, 1)),
                         1e-5f);
    finish(g1);
    struct dlas_autograd *a1;
    ck_assert_int_eq(dlas_autograd_new(g1, 1, 1, &a1), 0);
    ck_assert_int_eq(dlas_autograd_forward(a1, 1, in, DLAS_AG_TRAIN), DLAS_ERR_INVALID);
    ck_assert(strstr(dlas_last_error(), "more than one value") != NULL);
    dlas_autograd_free(a1);
    dlas_graph_free(g1);
    /* backward needs a forward that kept what it needs */
    ck_assert_int_eq(dlas_autograd_forward(a, B, in, DLAS_AG_NO_GRAD), 0);
    ck_assert_int_eq(dlas_autograd_backward(a), DLAS_ERR_INVALID);
    ck_assert_int_eq(dlas_autograd_forward(a, B + 1, in, 0), DLAS_ERR_INVALID);
    dlas_autograd_free(a);
    dlas_graph_free(g);
}
END_TEST

START_TEST(dropout_masks)
{
    struct dlas_graph *g = new_graph();
    dlas_graph_dropout(g, "drop", dlas_graph_input(g, "in", 1, 100, 100), 0.3f);
    finish(g);
    float *in = malloc(20000 * sizeof *in);
    for (int i = 0; i < 20000; i++)
        in[i] = 1.0f;
    struct dlas_autograd *a, *b;
    ck_assert_int_eq(dlas_autograd_new(g, 2, 2, &a), 0);
    ck_assert_int_eq(dlas_autograd_new(g, 2, 1, &b), 0);
    dlas_autograd_set_seed(a, 9);
    dlas_autograd_set_seed(b, 9);
    ck_assert_int_eq(dlas_autograd_forward(a, 2, in, DLAS_AG_TRAIN), 0);
    ck_assert_int_eq(dlas_autograd_forward(b, 2, in, DLAS_AG_TRAIN), 0);
    /* the same mask whatever the thread count, dropping about p */
    ck_assert_int_eq(memcmp(dlas_autograd_dropout_mask(a, 1), dlas_autograd_dropout_mask(b, 1), 20000), 0);
    int kept = 0;
    for (int i = 0; i < 20000; i++) {
        kept += dlas_autograd_dropout_mask(a, 1)[i];
        float y = dlas_autograd_act(a, 1)[i];
        ck_assert(y == 0.0f || fabsf(y - 1.0f / 0.7f) < 1e-6f);
    }
    ck_assert_msg(abs(kept - 14000) < 300, "kept %d of 20000 at p = 0.3", kept);
    dlas_autograd_set_seed(b, 10);
    ck_assert_int_eq(dlas_autograd_forward(b, 2, in, DLAS_AG_TRAIN), 0);
    ck_assert_int_ne(memcmp(dlas_autograd_dropout_mask(a, 1), dlas_autograd_dropout_mask(b, 1), 20000), 0);
    ck_assert_int_eq(dlas_autograd_forward(b, 2, in, 0), 0);
    ck_assert_ptr_null(dlas_autograd_dropout_mask(b, 1));
    dlas_autograd_free(a);
    dlas_autograd_free(b);
    free(in);
    dlas_graph_free(g);
}
END_TEST

/* ---- losses ----------------------------------------------------------------- */

static double xent64(const double *x, int y, int C, double eps)
{
    double m = -INFINITY, s = 0, xs = 0;
    for (int c = 0; c < C; c++)
        m = fmax(m, x[c]);
    for (int c = 0; c < C; c++) {
        s += exp(x[c] - m);
        xs += x[c];
    }
    double lse = m + log(s);
    return lse - (1 - eps) * x[y] - eps / C * xs;
}

static void softmax64(const double *x, int C, double T, double *p)
{
    double m = -INFINITY, s = 0;
    for (int c = 0; c < C; c++)
        m = fmax(m, x[c] / T);
    for (int c = 0; c < C; c++)
        s += (p[c] = exp(x[c] / T - m));
    for (int c = 0; c < C; c++)
        p[c] /= s;
}

static double kd64(const double *s, const double *t, int C, double T)
{
    double ps[16], pt[16], kl = 0;
    softmax64(s, C, T, ps);
    softmax64(t, C, T, pt);
    for (int c = 0; c < C; c++)
        kl += pt[c] * log(pt[c] / ps[c]);
    return T * T * kl;
}

START_TEST(loss_xent)
{
    enum { N = 3, C = 5 };
    float x[N * C], g[N * C];
    int32_t y[N] = {0, 4, 2};
    fill_uniform(x, N * C, 3, -3, 3);
    for (int k = 0; k < 2; k++) {
        double eps = k ? 0.1 : 0.0;
        memset(g, 0, sizeof g);
        double L = dlas_loss_xent(x, y, N, C, eps, g, 2.0);
        double x64[N * C], want = 0;
        for (int i = 0; i < N * C; i++)
            x64[i] = x[i];
        for (int i = 0; i < N; i++)
            want += xent64(x64 + i * C, y[i], C, eps) / N;
        ck_assert_double_eq_tol(L, want, 1e-12);
        for (int i = 0; i < N * C; i++) {
            double s = x64[i], h = 1e-6, lp = 0, lm = 0;
            x64[i] = s + h;
            for (int j = 0; j < N; j++)
                lp += xent64(x64 + j * C, y[j], C, eps) / N;
            x64[i] = s - h;
            for (int j = 0; j < N; j++)
                lm += xent64(x64 + j * C, y[j], C, eps) / N;
            x64[i] = s;
            ck_assert_double_eq_tol(g[i], 2.0 * (lp - lm) / (2 * h), 1e-6);
        }
    }
    /* equal logits: log C */
    float z[C] = {0};
    int32_t y0 = 1;
    ck_assert_double_eq_tol(dlas_loss_xent(z, &y0, 1, C, 0, NULL, 1), log(C), 1e-12);
}
END_TEST

START_TEST(loss_kd)
{
    enum { N = 2, C = 6 };
    float s[N * C], t[N * C], g[N * C] = {0};
    fill_uniform(s, N * C, 4, -2, 2);
    fill_uniform(t, N * C, 5, -2, 2);
    const double T = 4.0;
    double L = dlas_loss_kd(s, t, N, C, T, g, 1.0);
    double s64[N * C], t64[N * C], want = 0;
    for (int i = 0; i < N * C; i++) {
        s64[i] = s[i];
        t64[i] = t[i];
    }
    for (int i = 0; i < N; i++)
        want += kd64(s64 + i * C, t64 + i * C, C, T) / N;
    ck_assert_double_eq_tol(L, want, 1e-12);
    for (int i = 0; i < N * C; i++) {
        double v = s64[i], h = 1e-6, lp = 0, lm = 0;
        s64[i] = v + h;
        for (int j = 0; j < N; j++)
            lp += kd64(s64 + j * C, t64 + j * C, C, T) / N;
        s64[i] = v - h;
        for (int j = 0; j < N; j++)
            lm += kd64(s64 + j * C, t64 + j * C, C, T) / N;
        s64[i] = v;
        ck_assert_double_eq_tol(g[i], (lp - lm) / (2 * h), 1e-6);
    }
    /* a student equal to its teacher has nothing to learn */
    ck_assert_double_eq_tol(dlas_loss_kd(t, t, N, C, T, NULL, 1), 0.0, 1e-12);
}
END_TEST

/* Zagoruyko & Komodakis' at(x) = normalize(x.pow(2).mean(1)), at_loss =
 * (at(s) - at(t)).pow(2).mean(), in double. */
static double at64(const double *s, int cs, const double *t, int ct, int n, int hw)
{
    double L = 0;
    for (int i = 0; i < n; i++) {
        double qs[64], qt[64], ns = 0, nt = 0;
        for (int j = 0; j < hw; j++) {
            qs[j] = qt[j] = 0;
            for (int c = 0; c < cs; c++)
                qs[j] += pow(s[(i * cs + c) * hw + j], 2) / cs;
            for (int c = 0; c < ct; c++)
                qt[j] += pow(t[(i * ct + c) * hw + j], 2) / ct;
            ns += qs[j] * qs[j];
            nt += qt[j] * qt[j];
        }
        for (int j = 0; j < hw; j++)
            L += pow(qs[j] / sqrt(ns) - qt[j] / sqrt(nt), 2);
    }
    return L / (n * hw);
}

START_TEST(loss_at)
{
    enum { N = 2, CS = 3, CT = 5, HW = 6 };
    float s[N * CS * HW], t[N * CT * HW], g[N * CS * HW] = {0};
    fill_uniform(s, N * CS * HW, 6, -1, 1);
    fill_uniform(t, N * CT * HW, 7, -1, 1);
    double L = dlas_loss_at(s, CS, t, CT, N, HW, g, 3.0);
    double s64[N * CS * HW], t64[N * CT * HW];
    for (int i = 0; i < N * CS * HW; i++)
        s64[i] = s[i];
    for (int i = 0; i < N * CT * HW; i++)
        t64[i] = t[i];
    ck_assert_double_eq_tol(L, at64(s64, CS, t64, CT, N, HW), 1e-12);
    double maxg = 0;
    for (int i = 0; i < N * CS * HW; i++)
        maxg = fmax(maxg, fabs(g[i]));
    ck_assert(maxg > 1e-4);
    for (int i = 0; i < N * CS * HW; i++) {
        double v = s64[i], h = 1e-6;
        s64[i] = v + h;
        double lp = at64(s64, CS, t64, CT, N, HW);
        s64[i] = v - h;
        double lm = at64(s64, CS, t64, CT, N, HW);
        s64[i] = v;
        ck_assert_double_eq_tol(g[i], 3.0 * (lp - lm) / (2 * h), 1e-6 + 1e-4 * maxg);
    }
}
END_TEST

START_TEST(topk)
{
    float x[2 * 7] = {0, 1, 2, 3, 4, 5, 6, /**/ 6, 5, 4, 3, 2, 1, 0};
    int32_t y[2] = {6, 5};
    int64_t t1, t5;
    dlas_topk_hits(x, y, 2, 7, &t1, &t5);
    ck_assert_int_eq(t1, 1);
    ck_assert_int_eq(t5, 1); /* class 5 of sample 2 ranks sixth */
    y[1] = 4;
    dlas_topk_hits(x, y, 2, 7, &t1, &t5);
    ck_assert_int_eq(t5, 2);
}
END_TEST

/* ---- SGD and schedules ---------------------------------------------------------- */

/* A one-linear-layer graph whose gradients the test sets by hand. */
static struct dlas_graph *fc_graph(int in, int out)
{
    struct dlas_graph *g = new_graph();
    int x = dlas_graph_flatten(g, "flat", dlas_graph_input(g, "in", in, 1, 1));
    dlas_graph_linear(g, "fc", x, out, 1);
    finish(g);
    return g;
}

static void sgd_case(int nesterov, int decay_bn_bias)
{
    struct dlas_graph *g = fc_graph(2, 2);
    struct dlas_node *n = dlas_graph_node(g, 2);
    float w0[4] = {0.5f, -1.0f, 2.0f, 0.25f}, b0[2] = {1.0f, -0.5f};
    memcpy(n->weight.data, w0, sizeof w0);
    memcpy(n->bias.data, b0, sizeof b0);
    struct dlas_autograd *a;
    ck_assert_int_eq(dlas_autograd_new(g, 1, 1, &a), 0);
    struct dlas_sgd_options o = {0.9, 0.01, nesterov, decay_bn_bias};
    struct dlas_sgd *s;
    ck_assert_int_eq(dlas_sgd_new(&o, &s), 0);
    double w[6] = {0.5, -1.0, 2.0, 0.25, 1.0, -0.5}, v[6] = {0};
    const double lr[3] = {0.1, 0.05, 0.2};
    for (int k = 0; k < 3; k++) {
        float *gw = dlas_f32(dlas_autograd_param_grad(a, 2, 0));
        float *gb = dlas_f32(dlas_autograd_param_grad(a, 2, 1));
        double gr[6];
        for (int i = 0; i < 6; i++) {
            gr[i] = 0.1 * (i + 1) * (k % 2 ? -1 : 1);
            if (i < 4)
                gw[i] = (float)gr[i];
            else
                gb[i - 4] = (float)gr[i];
        }
        ck_assert_int_eq(dlas_sgd_step(s, a, lr[k]), 0);
        for (int i = 0; i < 6; i++) { /* torch.optim.SGD's update */
            double d = gr[i] + (i < 4 || decay_bn_bias ? 0.01 * w[i] : 0.0);
            v[i] = k ? 0.9 * v[i] + d : d;
            d = nesterov ? d + 0.9 * v[i] : v[i];
            w[i] -= lr[k] * d;
        }
        for (int i = 0; i < 6; i++) {
            float got = i < 4 ? dlas_f32(&n->weight)[i] : dlas_f32(&n->bias)[i - 4];
            ck_assert_msg(fabs(got - w[i]) < 1e-6, "step %d, parameter %d: %.9g vs %.9g", k, i,
                          (double)got, w[i]);
        }
    }
    ck_assert_int_eq(dlas_sgd_n_states(s), 2);
    dlas_sgd_free(s);
    dlas_autograd_free(a);
    dlas_graph_free(g);
}

START_TEST(sgd_matches_pytorch)
{
    sgd_case(0, 1);
    sgd_case(1, 1);
    sgd_case(0, 0);
}
END_TEST

START_TEST(sgd_respects_masks)
{
    struct dlas_graph *g = fc_graph(4, 3);
    struct dlas_node *n = dlas_graph_node(g, 2);
    fill_uniform(dlas_f32(&n->weight), 12, 3, -1, 1);
    ck_assert_int_eq(dlas_tensor_mask_ensure(&n->weight), 0);
    for (int i = 0; i < 12; i += 3)
        n->weight.mask[i] = 0;
    dlas_tensor_mask_apply(&n->weight);
    struct dlas_autograd *a;
    ck_assert_int_eq(dlas_autograd_new(g, 4, 2, &a), 0);
    struct dlas_sgd_options o = {0.9, 5e-4, 1, 1};
    struct dlas_sgd *s;
    ck_assert_int_eq(dlas_sgd_new(&o, &s), 0);
    float x[16];
    fill_uniform(x, 16, 4, -1, 1);
    for (int step = 0; step < 5; step++) {
        ck_assert_int_eq(dlas_autograd_forward(a, 4, x, DLAS_AG_TRAIN), 0);
        float *dy = dlas_autograd_grad(a, 2);
        for (int i = 0; i < 12; i++)
            dy[i] = 1.0f;
        dlas_autograd_zero_grad(a);
        ck_assert_int_eq(dlas_autograd_backward(a), 0);
        ck_assert_int_eq(dlas_sgd_step(s, a, 0.1), 0);
    }
    for (int i = 0; i < 12; i++) {
        if (i % 3 == 0)
            ck_assert_msg(dlas_f32(&n->weight)[i] == 0.0f, "pruned weight %d is %g", i,
                          (double)dlas_f32(&n->weight)[i]);
        else
            ck_assert(dlas_f32(&n->weight)[i] != 0.0f);
    }
    dlas_sgd_free(s);
    dlas_autograd_free(a);
    dlas_graph_free(g);
}
END_TEST

START_TEST(schedules)
{
    struct dlas_lr_schedule s = {.kind = DLAS_LR_STEP, .lr = 1.0, .gamma = 0.1,
                                 .steps_per_epoch = 10, .total_steps = 100, .step_size = 3};
    ck_assert_double_eq_tol(dlas_lr_at(&s, 29), 1.0, 1e-12);
    ck_assert_double_eq_tol(dlas_lr_at(&s, 30), 0.1, 1e-12);
    ck_assert_double_eq_tol(dlas_lr_at(&s, 65), 0.01, 1e-12);
    s.kind = DLAS_LR_MULTISTEP;
    s.n_milestones = 2;
    s.milestones[0] = 2;
    s.milestones[1] = 5;
    ck_assert_double_eq_tol(dlas_lr_at(&s, 19), 1.0, 1e-12);
    ck_assert_double_eq_tol(dlas_lr_at(&s, 20), 0.1, 1e-12);
    ck_assert_double_eq_tol(dlas_lr_at(&s, 50), 0.01, 1e-12);
    s.kind = DLAS_LR_COSINE;
    s.lr_min = 0.1;
    ck_assert_double_eq_tol(dlas_lr_at(&s, 0), 1.0, 1e-12);
    ck_assert_double_eq_tol(dlas_lr_at(&s, 50), 0.55, 1e-12);
    ck_assert_double_eq_tol(dlas_lr_at(&s, 100), 0.1, 1e-12);
    s.warmup_steps = 20; /* ramps per step, then cosine over the rest */
    ck_assert_double_eq_tol(dlas_lr_at(&s, 0), 1.0 / 20, 1e-12);
    ck_assert_double_eq_tol(dlas_lr_at(&s, 9), 0.5, 1e-12);
    ck_assert_double_eq_tol(dlas_lr_at(&s, 20), 1.0, 1e-12);
    ck_assert_double_eq_tol(dlas_lr_at(&s, 60), 0.55, 1e-12);
    s.kind = DLAS_LR_CONSTANT;
    ck_assert_double_eq_tol(dlas_lr_at(&s, 99), 1.0, 1e-12);
    enum dlas_lr_kind k;
    ck_assert_int_eq(dlas_lr_kind_parse("multistep", &k), 0);
    ck_assert_int_eq(k, DLAS_LR_MULTISTEP);
    ck_assert_int_eq(dlas_lr_kind_parse("cosin", &k), DLAS_ERR_INVALID);
}
END_TEST

/* ---- training runs ---------------------------------------------------------- */

static struct dlas_registry *reg;
static char tmpdir[256];

static void setup(void)
{
    dlas_test_mkdtemp(tmpdir, sizeof tmpdir, "train");
    reg = dlas_test_registry("check_train");
    ck_assert_ptr_nonnull(reg);
}

static void teardown(void)
{
    dlas_registry_free(reg);
    dlas_test_rmtree(tmpdir);
}

/* The synthetic dataset: 4 classes of 1 x 12 x 12 images. */
/* Image side and channels of the synthetic set (the strided network's
 * test asks for CIFAR-sized images). */
static const char *syn_side = "12", *syn_channels = NULL;

static struct dlas_data *synthetic(struct dlas_test_data *f, int64_t n_train, int64_t batch,
                                   int workers)
{
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)n_train);
    const char *kv[13] = {"train_size", v,       "test_size", "128", "height", syn_side,
                          "width",      syn_side, "classes",  "4",   NULL};
    if (syn_channels) {
        kv[10] = "channels";
        kv[11] = syn_channels;
    }
    struct dlas_data_options o;
    dlas_data_options_default(&o);
    o.seed = 7;
    o.batch = batch;
    o.workers = workers;
    return dlas_test_data_open(f, reg, "synthetic", kv, &o);
}

/* conv-bn-relu-pool, conv-relu, dropout, linear: every kind of state the
 * trainer must carry (running statistics, dropout RNG, velocities). */
static struct dlas_graph *small_net(uint64_t seed)
{
    struct dlas_graph *g = new_graph();
    struct dlas_conv_attr c1 = dlas_conv(8, 3, 1, 1), c2 = dlas_conv(16, 3, 1, 1);
    struct dlas_pool_attr mp = dlas_pool(2, 2, 0);
    int x = dlas_graph_input(g, "in", 1, 12, 12);
    x = dlas_graph_conv2d(g, "conv1", x, &c1);
    x = dlas_graph_batchnorm(g, "bn1", x, 1e-5f);
    x = dlas_graph_relu(g, "relu1", x);
    x = dlas_graph_maxpool(g, "pool1", x, &mp);
    x = dlas_graph_conv2d(g, "conv2", x, &c2);
    x = dlas_graph_relu(g, "relu2", x);
    x = dlas_graph_global_avgpool(g, "gap", x);
    x = dlas_graph_flatten(g, "flat", x);
    x = dlas_graph_dropout(g, "drop", x, 0.1f);
    dlas_graph_linear(g, "fc", x, 4, 1);
    finish(g);
    struct dlas_rng r;
    dlas_rng_seed(&r, seed);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
    return g;
}

static void recipe(struct dlas_train_options *o, int64_t epochs, int threads)
{
    dlas_train_options_default(o);
    o->epochs = epochs;
    o->batch = 32;
    o->lr = 0.05;
    o->seed = 3;
    o->threads = threads;
    o->progress = 0;
    o->nesterov = 1;
}

START_TEST(tiny_training_learns)
{
    struct dlas_test_data f;
    struct dlas_data *d = synthetic(&f, 512, 32, 1);
    struct dlas_graph *g = small_net(1);
    struct dlas_train_options o;
    recipe(&o, 4, 2);
    char csv[512];
    snprintf(csv, sizeof csv, "%s/metrics.csv", tmpdir);
    o.csv_path = csv;
    struct dlas_trainer *t;
    ck_assert_msg(dlas_trainer_new(g, d, &o, &t) == 0, "%s", dlas_last_error());
    struct dlas_eval before;
    ck_assert_int_eq(dlas_trainer_evaluate(t, DLAS_DATA_TEST, &before), 0);
    ck_assert_msg(dlas_trainer_fit(t) == 0, "%s", dlas_last_error());
    int64_t n;
    const struct dlas_epoch_metrics *h = dlas_trainer_history(t, &n);
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(dlas_trainer_step(t), 4 * 16);
    ck_assert_msg(h[3].train_loss < 0.8 * h[0].train_loss, "loss %g -> %g", h[0].train_loss,
                  h[3].train_loss);
    ck_assert(h[3].evaluated && h[3].eval_split == DLAS_DATA_TEST);
    ck_assert_msg(h[3].eval_top1 > 0.6, "test accuracy %g (chance 0.25, before %g)",
                  h[3].eval_top1, before.top1);
    ck_assert(h[3].eval_loss < before.loss);
    ck_assert_double_eq_tol(h[3].eval_top5, 1.0, 1e-12); /* 4 classes */
    /* one CSV row per epoch */
    FILE *fp = fopen(csv, "r");
    ck_assert_ptr_nonnull(fp);
    char line[1024];
    int rows = 0;
    while (fgets(line, sizeof line, fp))
        rows++;
    fclose(fp);
    ck_assert_int_eq(rows, 5);
    dlas_trainer_free(t);
    dlas_graph_free(g);
    dlas_test_data_close(&f);
}
END_TEST

static int same_weights(const struct dlas_graph *a, const struct dlas_graph *b)
{
    for (int i = 0; i < dlas_graph_n_nodes(a); i++) {
        const struct dlas_node *x = dlas_graph_node(a, i), *y = dlas_graph_node(b, i);
        const struct dlas_tensor *tx[4] = {&x->weight, &x->bias, &x->running_mean, &x->running_var};
        const struct dlas_tensor *ty[4] = {&y->weight, &y->bias, &y->running_mean, &y->running_var};
        for (int k = 0; k < 4; k++)
            if (tx[k]->data && memcmp(tx[k]->data, ty[k]->data, dlas_tensor_bytes(tx[k])))
                return 0;
    }
    return 1;
}

static struct dlas_graph *train_once(int threads, uint64_t seed, double *losses)
{
    struct dlas_test_data f;
    struct dlas_data *d = synthetic(&f, 256, 32, 2);
    struct dlas_graph *g = small_net(1);
    struct dlas_train_options o;
    recipe(&o, 2, threads);
    o.seed = seed;
    o.eval_every = 0;
    struct dlas_trainer *t;
    ck_assert_int_eq(dlas_trainer_new(g, d, &o, &t), 0);
    ck_assert_msg(dlas_trainer_fit(t) == 0, "%s", dlas_last_error());
    int64_t n;
    const struct dlas_epoch_metrics *h = dlas_trainer_history(t, &n);
    for (int64_t i = 0; i < n; i++)
        losses[i] = h[i].train_loss;
    dlas_trainer_free(t);
    dlas_test_data_close(&f);
    return g;
}

START_TEST(deterministic)
{
    double l1[2], l2[2], l3[2];
    struct dlas_graph *a = train_once(2, 3, l1), *b = train_once(2, 3, l2), *c = train_once(2, 4, l3);
    ck_assert_msg(memcmp(l1, l2, sizeof l1) == 0, "losses %.17g %.17g vs %.17g %.17g", l1[0],
                  l1[1], l2[0], l2[1]);
    ck_assert(same_weights(a, b));
    ck_assert(!same_weights(a, c)); /* the seed does matter (dropout) */
    /* nor does the thread count: every reduction has a fixed order */
    double l4[2];
    struct dlas_graph *d1 = train_once(1, 3, l4);
    ck_assert(same_weights(a, d1));
    ck_assert(memcmp(l1, l4, sizeof l1) == 0);
    dlas_graph_free(d1);
    dlas_graph_free(a);
    dlas_graph_free(b);
    dlas_graph_free(c);
}
END_TEST

/* A ResNet-20-like stack: stride-2 3x3 convolutions with 1x1 stride-2
 * shortcuts, batchnorm, residual adds; their backward passes reach the GEMM
 * paths (strided convolutions' dx, 1x1 convolutions, the linear layer). */
static struct dlas_graph *strided_resnet(uint64_t seed)
{
    struct dlas_graph *g = new_graph();
    struct dlas_conv_attr stem = dlas_conv(16, 3, 1, 1);
    int x = dlas_graph_input(g, "in", 3, 32, 32);
    x = dlas_graph_conv2d(g, "stem", x, &stem);
    x = dlas_graph_batchnorm(g, "stem_bn", x, 1e-5f);
    x = dlas_graph_relu(g, "stem_relu", x);
    int width = 16;
    for (int s = 0; s < 2; s++) {
        char n[64];
        width *= 2;
        struct dlas_conv_attr a = dlas_conv(width, 3, 2, 1), b = dlas_conv(width, 3, 1, 1),
                              sc = dlas_conv(width, 1, 2, 0);
        snprintf(n, sizeof n, "s%d_a", s);
        int y = dlas_graph_conv2d(g, n, x, &a);
        snprintf(n, sizeof n, "s%d_abn", s);
        y = dlas_graph_batchnorm(g, n, y, 1e-5f);
        snprintf(n, sizeof n, "s%d_arelu", s);
        y = dlas_graph_relu(g, n, y);
        snprintf(n, sizeof n, "s%d_b", s);
        y = dlas_graph_conv2d(g, n, y, &b);
        snprintf(n, sizeof n, "s%d_bbn", s);
        y = dlas_graph_batchnorm(g, n, y, 1e-5f);
        snprintf(n, sizeof n, "s%d_sc", s);
        int z = dlas_graph_conv2d(g, n, x, &sc);
        snprintf(n, sizeof n, "s%d_scbn", s);
        z = dlas_graph_batchnorm(g, n, z, 1e-5f);
        snprintf(n, sizeof n, "s%d_add", s);
        x = dlas_graph_add(g, n, y, z);
        snprintf(n, sizeof n, "s%d_relu", s);
        x = dlas_graph_relu(g, n, x);
    }
    x = dlas_graph_global_avgpool(g, "gap", x);
    x = dlas_graph_flatten(g, "flat", x);
    dlas_graph_linear(g, "fc", x, 4, 1);
    finish(g);
    struct dlas_rng r;
    dlas_rng_seed(&r, seed);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
    return g;
}

/* Bit for bit the same weights on 1 and 2 threads, on a network with
 * strided convolutions and a batch of 64 (OpenBLAS threads of its own in
 * the team of one made them differ from the first step). */
START_TEST(deterministic_strided_threads)
{
    struct dlas_graph *g[2];
    syn_side = "32";
    syn_channels = "3";
    for (int k = 0; k < 2; k++) {
        struct dlas_test_data f;
        struct dlas_data *d = synthetic(&f, 128, 64, 1);
        g[k] = strided_resnet(5);
        struct dlas_train_options o;
        recipe(&o, 1, k + 1);
        o.batch = 64;
        o.eval_every = 0;
        struct dlas_trainer *t;
        ck_assert_msg(dlas_trainer_new(g[k], d, &o, &t) == 0, "%s", dlas_last_error());
        ck_assert_msg(dlas_trainer_fit(t) == 0, "%s", dlas_last_error());
        ck_assert_int_eq(dlas_trainer_step(t), 2);
        dlas_trainer_free(t);
        dlas_test_data_close(&f);
    }
    syn_side = "12";
    syn_channels = NULL;
    ck_assert_msg(same_weights(g[0], g[1]), "weights differ between 1 and 2 threads");
    dlas_graph_free(g[0]);
    dlas_graph_free(g[1]);
}
END_TEST

/* A batchnorm folded into its relu trains exactly as one kept apart. */
START_TEST(batchnorm_relu_fusion)
{
    struct dlas_graph *g[2] = {small_net(1), small_net(1)};
    const int bn = dlas_graph_find(g[0], "bn1"), relu = dlas_graph_find(g[0], "relu1");
    float x[32 * 144];
    int32_t y[32];
    fill_uniform(x, 32 * 144, 8, 0, 1);
    for (int i = 0; i < 32; i++)
        y[i] = i % 4;
    struct dlas_autograd *a[2];
    struct dlas_sgd *s[2];
    struct dlas_sgd_options so = {0.9, 5e-4, 0, 1};
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(dlas_autograd_new(g[k], 32, 2, &a[k]), 0);
        ck_assert_int_eq(dlas_sgd_new(&so, &s[k]), 0);
    }
    ck_assert_int_eq(dlas_autograd_keep(a[1], bn), 0);
    for (int step = 0; step < 3; step++)
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(dlas_autograd_forward(a[k], 32, x, DLAS_AG_TRAIN), 0);
            ck_assert(k ? dlas_autograd_act(a[k], bn) != NULL : dlas_autograd_act(a[k], bn) == NULL);
            ck_assert_ptr_nonnull(dlas_autograd_act(a[k], relu));
            int lid = dlas_autograd_logits_node(a[k]);
            dlas_loss_xent(dlas_autograd_act(a[k], lid), y, 32, 4, 0, dlas_autograd_grad(a[k], lid), 1);
            dlas_autograd_zero_grad(a[k]);
            ck_assert_int_eq(dlas_autograd_backward(a[k]), 0);
            ck_assert(k ? dlas_autograd_grad(a[k], bn) != NULL : dlas_autograd_grad(a[k], bn) == NULL);
            ck_assert_int_eq(dlas_sgd_step(s[k], a[k], 0.1), 0);
        }
    ck_assert(same_weights(g[0], g[1]));
    /* a loss on the folded batchnorm's output unfolds that pass */
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(dlas_autograd_forward(a[k], 32, x, DLAS_AG_TRAIN | DLAS_AG_KEEP_STATS), 0);
        float *d = dlas_autograd_grad(a[k], bn);
        ck_assert_ptr_nonnull(d);
        d[7] = 1.0f;
        dlas_autograd_zero_grad(a[k]);
        ck_assert_int_eq(dlas_autograd_backward(a[k]), 0);
    }
    const struct dlas_tensor *g0 = dlas_autograd_param_grad(a[0], 1, 0), *g1 = dlas_autograd_param_grad(a[1], 1, 0);
    ck_assert_int_eq(memcmp(g0->data, g1->data, dlas_tensor_bytes(g0)), 0);
    for (int k = 0; k < 2; k++) {
        dlas_sgd_free(s[k]);
        dlas_autograd_free(a[k]);
        dlas_graph_free(g[k]);
    }
}
END_TEST

/* The child stops for good once it has checkpointed and gone two steps
 * further, so the kill always lands mid-run, between checkpoints. */
struct park {
    int fd;
    int64_t at;
};

static int park_hook(void *ctx, struct dlas_trainer *t, const struct dlas_train_step *s)
{
    struct park *p = ctx;
    if (s->step == p->at) {
        char c = 'k';
        if (write(p->fd, &c, 1) != 1)
            _exit(3);
        for (;;)
            pause();
    }
    return 0;
}

static void resume_case(int64_t ckpt_steps, int64_t ckpt_every, int64_t park_at)
{
    char ckpt[512];
    snprintf(ckpt, sizeof ckpt, "%s/run-%lld.ckpt", tmpdir, (long long)park_at);
    struct dlas_train_options o;
    recipe(&o, 3, 1);
    o.checkpoint_steps = ckpt_steps;
    o.checkpoint_every = ckpt_every;
    o.eval_every = 0;

    /* uninterrupted */
    struct dlas_test_data f;
    struct dlas_data *d = synthetic(&f, 256, 32, 1);
    struct dlas_graph *ref = small_net(1);
    struct dlas_trainer *t;
    ck_assert_int_eq(dlas_trainer_new(ref, d, &o, &t), 0);
    ck_assert_int_eq(dlas_trainer_fit(t), 0);
    int64_t nh;
    double ref_loss[3];
    const struct dlas_epoch_metrics *h = dlas_trainer_history(t, &nh);
    for (int i = 0; i < 3; i++)
        ref_loss[i] = h[i].train_loss;
    dlas_trainer_free(t);

    /* killed after its first checkpoint */
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fd[0]);
        struct dlas_graph *g = small_net(1);
        struct dlas_train_options oc = o;
        oc.checkpoint_path = ckpt;
        struct park p = {fd[1], park_at};
        struct dlas_train_hook hk = {sizeof hk, &p, NULL, NULL, park_hook, NULL};
        if (dlas_trainer_new(g, d, &oc, &t) || dlas_trainer_add_hook(t, &hk) ||
            dlas_trainer_fit(t))
            _exit(2);
        _exit(4); /* should have parked */
    }
    close(fd[1]);
    char c;
    ck_assert_int_eq(read(fd[0], &c, 1), 1);
    close(fd[0]);
    struct stat st;
    ck_assert_msg(stat(ckpt, &st) == 0, "no checkpoint at the kill");
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* started again, it resumes and ends where the uninterrupted run did */
    struct dlas_graph *g = small_net(1);
    o.checkpoint_path = ckpt;
    ck_assert_int_eq(dlas_trainer_new(g, d, &o, &t), 0);
    ck_assert_msg(dlas_trainer_fit(t) == 0, "%s", dlas_last_error());
    ck_assert(dlas_trainer_step(t) > park_at);
    h = dlas_trainer_history(t, &nh);
    ck_assert_int_eq(nh, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(h[i].train_loss == ref_loss[i], "epoch %d loss %.17g vs %.17g", i + 1,
                      h[i].train_loss, ref_loss[i]);
    ck_assert_msg(same_weights(g, ref), "weights differ from the uninterrupted run");
    dlas_trainer_free(t);
    /* a finished run, started again, does nothing more */
    ck_assert_int_eq(dlas_trainer_new(g, d, &o, &t), 0);
    ck_assert_int_eq(dlas_trainer_fit(t), 0);
    ck_assert(same_weights(g, ref));
    dlas_trainer_free(t);
    /* nor is it resumed under another recipe */
    o.lr = 0.01;
    ck_assert_int_eq(dlas_trainer_new(g, d, &o, &t), 0);
    ck_assert_int_eq(dlas_trainer_fit(t), DLAS_ERR_INVALID);
    ck_assert(strstr(dlas_last_error(), "another training recipe") != NULL);
    dlas_trainer_free(t);
    dlas_graph_free(g);
    dlas_graph_free(ref);
    dlas_test_data_close(&f);
}

START_TEST(resume_after_kill_mid_epoch)
{
    resume_case(5, 0, 12); /* checkpoint at step 5 and 10 of 8-step epochs, killed at 12 */
}
END_TEST

START_TEST(resume_after_kill_epoch)
{
    resume_case(0, 1, 11); /* checkpoint after epoch 1 (step 8), killed at step 11 */
}
END_TEST

/* ---- hooks and distillation ----------------------------------------------- */

struct fisher {
    int conv;     /* node whose output's channels are scored */
    double *score;
    int64_t batches;
    int extra_calls, pruned;
};

/* Theis et al.'s Fisher pruning signal: per channel, the squared batch mean
 * of sum over positions of activation x gradient. */
static int fisher_after_backward(void *ctx, struct dlas_trainer *t, const struct dlas_train_step *s)
{
    struct fisher *f = ctx;
    struct dlas_autograd *a = dlas_trainer_autograd(t);
    const struct dlas_node *n = dlas_graph_node(dlas_trainer_graph(t), f->conv);
    const int64_t C = n->out_shape[0], S = n->out_shape[1] * n->out_shape[2];
    const float *x = dlas_autograd_act(a, f->conv);
    const float *gr = dlas_autograd_grad(a, f->conv);
    ck_assert(dlas_autograd_has_grad(a, f->conv));
    for (int64_t c = 0; c < C; c++) {
        double sum = 0;
        for (int64_t b = 0; b < s->n; b++) {
            double v = 0;
            for (int64_t i = 0; i < S; i++)
                v += x[(b * C + c) * S + i] * gr[(b * C + c) * S + i];
            sum += v * v;
        }
        f->score[c] += sum / (double)s->n;
    }
    f->batches++;
    return 0;
}

static int l2_extra_loss(void *ctx, struct dlas_trainer *t, const struct dlas_train_step *s,
                         double *loss)
{
    struct fisher *f = ctx;
    f->extra_calls++;
    *loss += 0.0; /* a term that adds nothing keeps the run comparable */
    return 0;
}

/* Remove the lowest-scoring channel of conv1 once, mid-training. */
static int prune_after_step(void *ctx, struct dlas_trainer *t, const struct dlas_train_step *s)
{
    struct fisher *f = ctx;
    if (s->step != 5 || f->pruned)
        return 0;
    struct dlas_graph *g = dlas_trainer_graph(t);
    int64_t C = dlas_graph_node(g, f->conv)->out_shape[0], worst = 0;
    for (int64_t c = 1; c < C; c++)
        if (f->score[c] < f->score[worst])
            worst = c;
    uint8_t keep[64];
    memset(keep, 1, sizeof keep);
    keep[worst] = 0;
    int rc = dlas_graph_prune_channels(g, f->conv, keep);
    f->pruned = rc == 0;
    return rc;
}

START_TEST(hooks_fisher_and_prune)
{
    struct dlas_test_data fx;
    struct dlas_data *d = synthetic(&fx, 256, 32, 1);
    struct dlas_graph *g = small_net(1);
    struct dlas_train_options o;
    recipe(&o, 2, 2);
    struct dlas_trainer *t;
    ck_assert_int_eq(dlas_trainer_new(g, d, &o, &t), 0);
    double score[8] = {0};
    struct fisher f = {dlas_graph_find(g, "conv1"), score, 0, 0, 0};
    struct dlas_train_hook hk = {sizeof hk, &f, l2_extra_loss, fisher_after_backward,
                                 prune_after_step, NULL};
    ck_assert_int_eq(dlas_trainer_add_hook(t, &hk), 0);
    ck_assert_msg(dlas_trainer_fit(t) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(f.batches, 16);
    ck_assert_int_eq(f.extra_calls, 16);
    ck_assert(f.pruned);
    ck_assert_int_eq(dlas_graph_node(g, dlas_graph_find(g, "conv1"))->out_shape[0], 7);
    for (int c = 0; c < 8; c++)
        ck_assert(score[c] > 0);
    int64_t n;
    const struct dlas_epoch_metrics *h = dlas_trainer_history(t, &n);
    ck_assert(isfinite(h[1].train_loss) && h[1].eval_top1 > 0.25);
    dlas_trainer_free(t);
    dlas_graph_free(g);
    dlas_test_data_close(&fx);
}
END_TEST

START_TEST(distillation)
{
    struct dlas_test_data fx;
    struct dlas_data *d = synthetic(&fx, 512, 32, 1);
    struct dlas_graph *teacher = small_net(1);
    struct dlas_train_options o;
    recipe(&o, 4, 2);
    struct dlas_trainer *t;
    ck_assert_int_eq(dlas_trainer_new(teacher, d, &o, &t), 0);
    ck_assert_int_eq(dlas_trainer_fit(t), 0);
    struct dlas_eval te;
    ck_assert_int_eq(dlas_trainer_evaluate(t, DLAS_DATA_TEST, &te), 0);
    dlas_trainer_free(t);

    struct dlas_graph *student = small_net(2);
    ck_assert_int_eq(dlas_trainer_new(student, d, &o, &t), 0);
    struct dlas_distill dist = {0.9, 4.0, 1e3, 2, {"relu1", "relu2"}, {"relu1", "relu2"}};
    ck_assert_msg(dlas_trainer_set_teacher(t, teacher, &dist) == 0, "%s", dlas_last_error());
    ck_assert_msg(dlas_trainer_fit(t) == 0, "%s", dlas_last_error());
    int64_t n;
    const struct dlas_epoch_metrics *h = dlas_trainer_history(t, &n);
    ck_assert(h[3].train_loss < h[0].train_loss);
    ck_assert_msg(te.top1 > 0.6 && h[3].eval_top1 > 0.45, "student accuracy %g (teacher %g)",
                  h[3].eval_top1, te.top1);
    /* mismatched attention maps are refused */
    struct dlas_distill bad = {0.5, 4.0, 1e3, 1, {"relu1"}, {"relu2"}};
    ck_assert_int_eq(dlas_trainer_set_teacher(t, teacher, &bad), DLAS_ERR_INVALID);
    dlas_trainer_free(t);
    dlas_graph_free(student);
    dlas_graph_free(teacher);
    dlas_test_data_close(&fx);
}
END_TEST

/* ---- the experiment runner trains ----------------------------------------------- */

/* Index of the point whose id contains both parts. */
static size_t point_of(const struct dlas_experiment *e, const char *a, const char *b)
{
    for (size_t i = 0; i < dlas_experiment_n_points(e); i++) {
        const char *id = dlas_experiment_point_id(e, i);
        if (strstr(id, a) && strstr(id, b))
            return i;
    }
    ck_abort_msg("no point with %s and %s", a, b);
    return 0;
}

START_TEST(experiment_trains)
{
    const char *cfg = dlas_test_writef(
        dlas_test_path(tmpdir, "train.cfg"),
        "experiment = { seeds = [1]; eval_samples = 128; repeat = 2; warmup = 0;\n"
        "  output = { dir = \"%s\"; }; };\n"
        "dataset = { plugin = \"synthetic\"; classes = 4; height = 16; width = 16;\n"
        "  train_size = 1024; test_size = 128; };\n"
        "models = { lenet = { plugin = \"lenet5\"; }; };\n"
        "train = { epochs = 5; batch = 32; lr = 0.03; threads = 2; };\n"
        "compressors = { none = (); ft = ( { plugin = \"fx-finetune\"; } ); };\n"
        "primitives = { im2col = { plugin = \"im2col-gemm\"; }; };\n"
        "backends = { omp = { plugin = \"openmp\"; threads = [1, 2]; }; };\n",
        dlas_test_path(tmpdir, "results"));
    struct dlas_registry *r = dlas_test_registry_at("check_train", getenv("DLAS_FIXTURES"));
    ck_assert_ptr_nonnull(r);
    struct dlas_run_options ro;
    dlas_run_options_default(&ro);
    ro.progress = 0;
    struct dlas_run_summary sum;
    struct dlas_experiment *e = dlas_test_experiment(cfg, r, &ro, &sum);
    ck_assert_int_eq(sum.failed, 0);
    ck_assert_int_eq(sum.ran, 4);
    size_t n1 = point_of(e, "/none/", "threads=1"), n2 = point_of(e, "/none/", "threads=2");
    size_t f1 = point_of(e, "/ft/", "threads=1");
    for (size_t i = 0; i < 4; i++) {
        const char *acc = dlas_experiment_result(e, i, "accuracy_top1");
        ck_assert_msg(acc && atof(acc) > 0.5, "point %zu accuracy '%s' (%s)", i, acc ? acc : "",
                      dlas_experiment_result(e, i, "error"));
        ck_assert_str_eq(dlas_experiment_result(e, i, "train_epochs"), "5");
    }
    /* one point trained, the others reused its model... */
    int trained = 0;
    for (size_t i = 0; i < 4; i++)
        trained += !strcmp(dlas_experiment_result(e, i, "train_cached"), "0");
    ck_assert_int_eq(trained, 1);
    ck_assert_str_eq(dlas_experiment_result(e, n1, "accuracy_top1"),
                     dlas_experiment_result(e, n2, "accuracy_top1"));
    /* ...and the compressor got the trained model, its teacher copy and a
     * trainer to fine-tune with, which did not touch the cached model */
    ck_assert_str_eq(dlas_experiment_result(e, f1, "teacher_top1"),
                     dlas_experiment_result(e, n1, "train_eval_top1"));
    ck_assert(atof(dlas_experiment_result(e, f1, "finetuned_top1")) > 0.5);
    ck_assert(atoi(dlas_experiment_result(e, f1, "teacher_nodes")) > 10);

    /* A damaged trained model is refused by every point, and left as it was */
    char ckpt[1024];
    snprintf(ckpt, sizeof ckpt, "%s", dlas_experiment_result(e, n1, "train_checkpoint"));
    FILE *fp = fopen(ckpt, "r+b");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
    long size = ftell(fp);
    ck_assert_int_eq(fseek(fp, size / 2, SEEK_SET), 0);
    int byte = fgetc(fp);
    ck_assert_int_eq(fseek(fp, size / 2, SEEK_SET), 0);
    fputc(byte ^ 0x5a, fp);
    fclose(fp);
    ro.resume = 0;
    ck_assert_msg(dlas_experiment_run(e, &ro, &sum) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(sum.failed, 4);
    for (size_t i = 0; i < 4; i++)
        ck_assert_msg(strstr(dlas_experiment_result(e, i, "error"), "move or delete it"), "%s",
                      dlas_experiment_result(e, i, "error"));
    fp = fopen(ckpt, "rb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
    ck_assert_int_eq(ftell(fp), size);
    ck_assert_int_eq(fseek(fp, size / 2, SEEK_SET), 0);
    ck_assert_int_eq(fgetc(fp), byte ^ 0x5a);
    fclose(fp);
    dlas_experiment_free(e);
    dlas_registry_free(r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("train");
    TCase *tc = dlas_test_case(s, "gradients", NULL, NULL, 0);
    tcase_add_test(tc, grad_conv_plain);
    tcase_add_test(tc, grad_conv_groups_stride_pad_dilation);
    tcase_add_test(tc, grad_conv_small_maps);
    tcase_add_test(tc, grad_conv_asymmetric);
    tcase_add_test(tc, grad_conv_depthwise);
    tcase_add_test(tc, grad_conv_1x1);
    tcase_add_test(tc, grad_conv_direct);
    tcase_add_test(tc, grad_batchnorm_train);
    tcase_add_test(tc, grad_batchnorm_eval);
    tcase_add_test(tc, grad_batchnorm_flat);
    tcase_add_test(tc, grad_relu_relu6);
    tcase_add_test(tc, grad_maxpool);
    tcase_add_test(tc, grad_avgpool);
    tcase_add_test(tc, grad_linear_flatten);
    tcase_add_test(tc, grad_add);
    tcase_add_test(tc, grad_concat);
    tcase_add_test(tc, grad_dropout_fixed_mask);
    tcase_add_test(tc, grad_softmax);
    tcase_add_test(tc, grad_conv_grouped_1x1);
    tcase_add_test(tc, grad_network);
    tcase_add_test(tc, grad_random_networks);
    tcase_add_test(tc, bn_running_stats);
    tcase_add_test(tc, bn_statistics_far_from_the_running_mean);
    tcase_add_test(tc, dropout_masks);

    tc = dlas_test_case(s, "losses and optimiser", NULL, NULL, 0);
    tcase_add_test(tc, loss_xent);
    tcase_add_test(tc, loss_kd);
    tcase_add_test(tc, loss_at);
    tcase_add_test(tc, topk);
    tcase_add_test(tc, sgd_matches_pytorch);
    tcase_add_test(tc, sgd_respects_masks);
    tcase_add_test(tc, schedules);

    tc = dlas_test_case(s, "training", setup, teardown, 0);
    tcase_add_test(tc, tiny_training_learns);
    tcase_add_test(tc, deterministic);
    tcase_add_test(tc, deterministic_strided_threads);
    tcase_add_test(tc, batchnorm_relu_fusion);
    tcase_add_test(tc, resume_after_kill_mid_epoch);
    tcase_add_test(tc, resume_after_kill_epoch);
    tcase_add_test(tc, hooks_fisher_and_prune);
    tcase_add_test(tc, distillation);
    tcase_add_test(tc, experiment_trains);
    return s;
}

int main(void)
{
    return dlas_test_run(suite());
}
