/* Reading a results table the way a study summarises it. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "study.h"

static int num(const char *s, double *v)
{
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return !*end && !errno && isfinite(*v);
}

static int keep(const struct dlas_row *r, const char *const *where)
{
    for (; where && *where; where++) {
        const char *eq = strchr(*where, '=');
        size_t kn = eq ? (size_t)(eq - *where) : strlen(*where);
        char key[512];
        snprintf(key, sizeof key, "%.*s", (int)(kn < 511 ? kn : 511), *where);
        const char *v = dlas_row_get(r, key);
        if (!v || strcmp(v, eq ? eq + 1 : ""))
            return 0;
    }
    return 1;
}

/* "m/c/p/b/seed=3" -> "m/c/p/b" */
static char *config_key(const char *id)
{
    char *k = strdup(id);
    char *slash = k ? strrchr(k, '/') : NULL;
    if (slash && !strncmp(slash, "/seed=", 6))
        *slash = '\0';
    return k;
}

static int add(struct study *s, const struct dlas_row *r)
{
    char *key = config_key(dlas_row_get(r, "cell_id"));
    if (!key)
        return -1;
    size_t i = 0;
    while (i < s->n && strcmp(s->cfgs[i].key, key))
        i++;
    if (i == s->n) {
        struct study_cfg *c = realloc(s->cfgs, (s->n + 1) * sizeof *c);
        if (!c) {
            free(key);
            return -1;
        }
        s->cfgs = c;
        memset(&c[s->n++], 0, sizeof *c);
        c[i].key = key;
    } else
        free(key);
    struct study_cfg *c = &s->cfgs[i];
    const struct dlas_row **rows = realloc(c->rows, (c->n + 1) * sizeof *rows);
    if (!rows)
        return -1;
    c->rows = rows;
    rows[c->n++] = r;
    return 0;
}

static int load(struct study *s, const char *path, const char *const *where, int keep_fallback)
{
    char dir[4096];
    struct stat st;
    snprintf(dir, sizeof dir, "%s", path);
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) { /* given results.csv itself */
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, ".");
    } else if (stat(path, &st) != 0) {
        fprintf(stderr, "dlas: %s: %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    if (dlas_results_open(&s->res, dir, DLAS_RESULTS_READONLY)) {
        fprintf(stderr, "dlas: %s\n", dlas_last_error());
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < s->res.n; i++) {
        const struct dlas_row *r = &s->res.rows[i];
        const char *stt = dlas_row_get(r, "status");
        if (!stt || strcmp(stt, "ok")) {
            s->skipped_failed++;
            continue;
        }
        if (!keep(r, where)) {
            s->skipped_filtered++;
            continue;
        }
        const char *pl = dlas_row_get(r, "primitive_layers");
        if (!keep_fallback && pl && !strcmp(pl, "0")) {
            s->skipped_fallback++;
            continue;
        }
        if (add(s, r)) {
            fprintf(stderr, "dlas: out of memory\n");
            return EXIT_RUN_FAILED;
        }
    }
    return EXIT_OK;
}

int study_load(struct study *s, const char *cmd, const char *path, const char *const *where,
               int keep_fallback)
{
    memset(s, 0, sizeof *s);
    int rc = load(s, path, where, keep_fallback);
    if (!rc && !s->n) {
        fprintf(stderr, "dlas %s: no ok rows in %s%s\n", cmd, s->res.csv_path,
                where && where[0] ? " that match the --where filters" : "");
        rc = EXIT_USAGE;
    }
    if (rc)
        study_free(s);
    return rc;
}

void study_free(struct study *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->cfgs[i].key);
        free(s->cfgs[i].rows);
    }
    free(s->cfgs);
    dlas_results_close(&s->res);
    memset(s, 0, sizeof *s);
}

const char *study_str(const struct study_cfg *c, const char *col)
{
    const char *v = c->n ? dlas_row_get(c->rows[0], col) : NULL;
    return v ? v : "";
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct study_val study_num(const struct study_cfg *c, const char *col)
{
    struct study_val v = {NAN, NAN, NAN, 0};
    double xs[256];
    size_t n = 0;
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    int latency = !strcmp(col, "latency_ms_median");
    for (size_t i = 0; i < c->n && n < 256; i++) {
        double x;
        if (!num(dlas_row_get(c->rows[i], col), &x))
            continue;
        xs[n++] = x;
        sum += x;
        double a = x, b = x;
        if (latency) { /* spread over the timing repeats: IQR if recorded */
            double q1, q3;
            if (num(dlas_row_get(c->rows[i], "latency_ms_q1"), &q1) &&
                num(dlas_row_get(c->rows[i], "latency_ms_q3"), &q3)) {
                a = q1;
                b = q3;
            } else {
                num(dlas_row_get(c->rows[i], "latency_ms_min"), &a);
                num(dlas_row_get(c->rows[i], "latency_ms_max"), &b);
            }
        }
        lo = fmin(lo, a);
        hi = fmax(hi, b);
    }
    if (!n)
        return v;
    if (latency) {
        qsort(xs, n, sizeof *xs, cmp_d);
        v.c = n % 2 ? xs[n / 2] : 0.5 * (xs[n / 2 - 1] + xs[n / 2]);
    } else
        v.c = sum / (double)n;
    v.lo = fmin(lo, v.c);
    v.hi = fmax(hi, v.c);
    v.ok = 1;
    return v;
}

size_t study_pareto(const double *x, const double *y, size_t n, int min_y, size_t *out)
{
    size_t *ord = malloc((n ? n : 1) * sizeof *ord), k = 0;
    if (!ord)
        return 0;
    for (size_t i = 0; i < n; i++)
        ord[i] = i;
    /* insertion sort by x, then by better y: n is a study's size */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            size_t a = ord[j - 1], b = ord[j];
            int swap = x[b] < x[a] || (x[b] == x[a] && (min_y ? y[b] < y[a] : y[b] > y[a]));
            if (!swap)
                break;
            ord[j - 1] = b;
            ord[j] = a;
        }
    double best = min_y ? INFINITY : -INFINITY;
    for (size_t i = 0; i < n; i++) {
        size_t p = ord[i];
        if (min_y ? y[p] < best : y[p] > best) {
            best = y[p];
            out[k++] = p;
        }
    }
    free(ord);
    return k;
}

static void ranks(const double *x, size_t n, double *r)
{
    for (size_t i = 0; i < n; i++) {
        size_t less = 0, equal = 0;
        for (size_t j = 0; j < n; j++) {
            less += x[j] < x[i];
            equal += x[j] == x[i];
        }
        r[i] = (double)less + 0.5 * (double)(equal - 1) + 1;
    }
}

double study_spearman(const double *x, const double *y, size_t n)
{
    if (n < 3)
        return NAN;
    double *rx = malloc(n * sizeof *rx), *ry = malloc(n * sizeof *ry);
    if (!rx || !ry) {
        free(rx);
        free(ry);
        return NAN;
    }
    ranks(x, n, rx);
    ranks(y, n, ry);
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++) {
        mx += rx[i];
        my += ry[i];
    }
    mx /= (double)n;
    my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        sxy += (rx[i] - mx) * (ry[i] - my);
        sxx += (rx[i] - mx) * (rx[i] - mx);
        syy += (ry[i] - my) * (ry[i] - my);
    }
    free(rx);
    free(ry);
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

const char *study_label(const char *col, double *scale)
{
    static const struct {
        const char *col, *label;
        double scale;
    } known[] = {
        {"accuracy_top1", "Top-1 accuracy (%)", 100},
        {"latency_ms_median", "Latency per batch (ms, median)", 1},
        {"latency_ms_min", "Latency per batch (ms, fastest run)", 1},
        {"params", "Parameters", 1},
        {"nonzero_params", "Non-zero parameters", 1},
        {"macs", "Multiply-accumulates per image", 1},
        {"weight_bytes", "Weight memory (bytes)", 1},
        {"peak_activation_bytes", "Peak activation memory (bytes)", 1},
        {"sparsity", "Sparsity (% of weights zero)", 100},
        {"images_per_s", "Throughput (images/s)", 1},
        {"speedup_vs_dense", "Speed-up over the dense model (x)", 1},
        {"compression_vs_dense", "Compression over the dense model (x, non-zero parameters)", 1},
        {"macs_reduction_vs_dense", "MAC reduction over the dense model (x)", 1},
        {"accuracy_delta_vs_dense", "Top-1 change from the dense model (points)", 100},
        {"threads", "Threads", 1},
    };
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(known[i].col, col)) {
            if (scale)
                *scale = known[i].scale;
            return known[i].label;
        }
    if (scale)
        *scale = 1;
    return col;
}
