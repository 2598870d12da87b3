/* Losses on logits and activations: softmax cross-entropy with label
 * smoothing, knowledge distillation and attention transfer. Per-sample work
 * runs in double (a batch is small next to the network), so the losses and
 * their gradients do not depend on the thread count. */
#include <math.h>
#include <stdlib.h>

#include <dlas/train.h>

/* log sum exp of x / t, and softmax(x / t) into p (double, `classes` long). */
static double log_softmax(const float *x, int64_t classes, double t, double *p)
{
    double m = -INFINITY;
    for (int64_t c = 0; c < classes; c++)
        if (x[c] / t > m)
            m = x[c] / t;
    double s = 0.0;
    for (int64_t c = 0; c < classes; c++) {
        p[c] = exp(x[c] / t - m);
        s += p[c];
    }
    for (int64_t c = 0; c < classes; c++)
        p[c] /= s;
    return m + log(s);
}

/* Scratch for one sample's probabilities: classes are few (10..1000) in
 * every dataset dlas knows; more take the slow path through the heap. */
#define STACK_CLASSES 1024

static double *probs(int64_t classes, double *stack)
{
    return classes <= STACK_CLASSES ? stack : malloc((size_t)classes * 2 * sizeof(double));
}

static void probs_free(double *p, const double *stack)
{
    if (p != stack)
        free(p);
}

double dlas_loss_xent(const float *logits, const int32_t *labels, int64_t n, int64_t classes,
                      double smoothing, float *grad, double scale)
{
    double stack[2 * STACK_CLASSES];
    double *p = probs(classes, stack);
    if (!p || n < 1)
        return NAN;
    double total = 0.0;
    const double off = smoothing / (double)classes;
    for (int64_t i = 0; i < n; i++) {
        const float *x = logits + i * classes;
        const int64_t y = labels[i];
        double lse = log_softmax(x, classes, 1.0, p);
        /* -sum_c q_c log p_c with q = (1 - eps) onehot + eps / C */
        double xs = 0.0;
        if (smoothing > 0.0)
            for (int64_t c = 0; c < classes; c++)
                xs += x[c];
        total += lse - (1.0 - smoothing) * x[y] - off * xs;
        if (!grad)
            continue;
        float *g = grad + i * classes;
        const double k = scale / (double)n;
        for (int64_t c = 0; c < classes; c++) {
            double q = off + (c == y ? 1.0 - smoothing : 0.0);
            g[c] += (float)(k * (p[c] - q));
        }
    }
    probs_free(p, stack);
    return total / (double)n;
}

double dlas_loss_kd(const float *student, const float *teacher, int64_t n, int64_t classes,
                    double temperature, float *grad, double scale)
{
    double stack[2 * STACK_CLASSES];
    double *ps = probs(classes, stack), *pt = ps ? ps + classes : NULL;
    if (!ps || n < 1 || !(temperature > 0.0))
        return NAN;
    const double T = temperature;
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *s = student + i * classes, *t = teacher + i * classes;
        double lse_s = log_softmax(s, classes, T, ps);
        double lse_t = log_softmax(t, classes, T, pt);
        double kl = 0.0;
        for (int64_t c = 0; c < classes; c++)
            if (pt[c] > 0.0) /* 0 log 0 = 0 */
                kl += pt[c] * ((t[c] / T - lse_t) - (s[c] / T - lse_s));
        total += kl;
        if (!grad)
            continue;
        /* d(T^2 KL)/ds = T (p_s - p_t) */
        float *g = grad + i * classes;
        const double k = scale * T / (double)n;
        for (int64_t c = 0; c < classes; c++)
            g[c] += (float)(k * (ps[c] - pt[c]));
    }
    probs_free(ps, stack);
    return T * T * total / (double)n;
}

/* F.normalize's floor on the norm. */
#define AT_EPS 1e-12

/* q = Q / max(||Q||, eps) with Q = mean over channels of a^2; returns the
 * norm used. */
static double attention(const float *a, int64_t ch, int64_t hw, double *q)
{
    double norm2 = 0.0;
    for (int64_t j = 0; j < hw; j++) {
        double s = 0.0;
        for (int64_t c = 0; c < ch; c++) {
            double v = a[c * hw + j];
            s += v * v;
        }
        q[j] = s / (double)ch;
        norm2 += q[j] * q[j];
    }
    double norm = sqrt(norm2);
    if (norm < AT_EPS)
        norm = AT_EPS;
    for (int64_t j = 0; j < hw; j++)
        q[j] /= norm;
    return norm;
}

double dlas_loss_at(const float *student, int64_t cs, const float *teacher, int64_t ct,
                    int64_t n, int64_t hw, float *grad, double scale)
{
    if (n < 1 || hw < 1 || cs < 1 || ct < 1)
        return NAN;
    double *qs = malloc((size_t)hw * 3 * sizeof(double));
    if (!qs)
        return NAN;
    double *qt = qs + hw, *g = qt + hw;
    double total = 0.0;
    const double inv = 1.0 / ((double)n * (double)hw);
    for (int64_t i = 0; i < n; i++) {
        const float *as = student + i * cs * hw;
        double norm = attention(as, cs, hw, qs);
        attention(teacher + i * ct * hw, ct, hw, qt);
        double gq = 0.0;
        for (int64_t j = 0; j < hw; j++) {
            double d = qs[j] - qt[j];
            total += d * d;
            g[j] = 2.0 * d * inv * scale; /* dL/dq_j */
            gq += g[j] * qs[j];
        }
        if (!grad)
            continue;
        /* dL/dQ_k = (g_k - q_k sum_j g_j q_j) / ||Q|| (the second term only
         * while the norm is above the floor), dQ_k/da_ck = 2 a_ck / cs */
        const int floored = norm <= AT_EPS;
        float *ga = grad + i * cs * hw;
        for (int64_t j = 0; j < hw; j++) {
            double dQ = (g[j] - (floored ? 0.0 : qs[j] * gq)) / norm;
            double k = 2.0 * dQ / (double)cs;
            for (int64_t c = 0; c < cs; c++)
                ga[c * hw + j] += (float)(k * as[c * hw + j]);
        }
    }
    free(qs);
    return total * inv;
}

void dlas_topk_hits(const float *logits, const int32_t *labels, int64_t n, int64_t classes,
                    int64_t *top1, int64_t *top5)
{
    int64_t h1 = 0, h5 = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *x = logits + i * classes;
        const int64_t y = labels[i];
        if (y < 0 || y >= classes)
            continue;
        /* rank of the true class: how many score strictly higher (ties in
         * its favour); NaN scores count as higher */
        int64_t above = 0;
        for (int64_t c = 0; c < classes; c++)
            if (c != y && (x[c] > x[y] || isnan(x[c])))
                above++;
        h1 += above == 0;
        h5 += above < 5;
    }
    if (top1)
        *top1 = h1;
    if (top5)
        *top5 = h5;
}
