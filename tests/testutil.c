/* The helpers of testutil.h. */
#define _GNU_SOURCE
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dlas/quant.h>

int dlas_test_subset(void)
{
    const char *e = getenv("DLAS_TEST_SUBSET");
    return e && *e && strcmp(e, "0") != 0;
}

int dlas_test_subset_skips(const char *fmt, ...)
{
    if (!dlas_test_subset())
        return 0;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " not run (DLAS_TEST_SUBSET)\n");
    return 1;
}

int dlas_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

TCase *dlas_test_case(Suite *s, const char *name, void (*setup)(void), void (*teardown)(void),
                      double timeout)
{
    TCase *tc = tcase_create(name);
    if (setup || teardown)
        tcase_add_checked_fixture(tc, setup, teardown);
    if (timeout > 0)
        tcase_set_timeout(tc, timeout);
    suite_add_tcase(s, tc);
    return tc;
}

struct dlas_registry *dlas_test_registry_at(const char *suite, const char *path)
{
    struct dlas_registry *reg = dlas_registry_new();
    if (!reg || dlas_registry_discover(reg, path)) {
        fprintf(stderr, "%s: plugin discovery failed: %s\n", suite, dlas_last_error());
        dlas_registry_free(reg);
        return NULL;
    }
    return reg;
}

struct dlas_registry *dlas_test_registry(const char *suite)
{
    return dlas_test_registry_at(suite, NULL);
}

void dlas_test_mkdtemp(char *dir, size_t size, const char *tag)
{
    const char *t = getenv("TMPDIR");
    int n = snprintf(dir, size, "%s/dlas-%s-XXXXXX", t && *t ? t : "/tmp", tag);
    ck_assert_msg(n > 0 && (size_t)n < size, "temporary directory name too long");
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
}

/* 0, or -1 with errno set by the first step that failed. */
static int remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st))
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    if ((st.st_mode & S_IRWXU) != S_IRWXU && chmod(path, st.st_mode | S_IRWXU))
        return -1;
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int rc = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub) {
            errno = ENAMETOOLONG;
            rc = -1;
        } else if (remove_tree(sub)) {
            rc = -1;
        }
    }
    closedir(d);
    return rc ? rc : rmdir(path);
}

void dlas_test_rmtree(const char *dir)
{
    ck_assert_msg(remove_tree(dir) == 0, "cannot remove %s: %s", dir, strerror(errno));
}

const char *dlas_test_path(const char *dir, const char *name)
{
    static char buf[64][PATH_MAX];
    static int k;
    k = (k + 1) % 64;
    int n = snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    ck_assert_msg(n > 0 && (size_t)n < sizeof buf[k], "path too long: %s/%s", dir, name);
    return buf[k];
}

void dlas_test_spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_msg(fclose(f) == 0, "cannot write %s: %s", path, strerror(errno));
}

const char *dlas_test_writef(const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    ck_assert_msg(n >= 0, "cannot format %s", path);
    dlas_test_spit(path, text, (size_t)n);
    free(text);
    return path;
}

char *dlas_test_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    ck_assert_msg(n >= 0, "cannot size %s", path);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return s;
}

struct dlas_experiment *dlas_test_experiment(const char *cfg, struct dlas_registry *reg,
                                             const struct dlas_run_options *o,
                                             struct dlas_run_summary *sum)
{
    struct dlas_experiment *e;
    ck_assert_msg(dlas_experiment_load(cfg, reg, &e) == DLAS_OK, "%s", dlas_last_error());
    struct dlas_run_options quiet;
    if (!o) {
        dlas_run_options_default(&quiet);
        quiet.progress = 0;
        o = &quiet;
    }
    ck_assert_msg(dlas_experiment_run(e, o, sum) == DLAS_OK, "%s", dlas_last_error());
    return e;
}

struct dlas_data *dlas_test_data_open(struct dlas_test_data *s, struct dlas_registry *reg,
                                      const char *plugin, const char *const *kv,
                                      const struct dlas_data_options *o)
{
    const struct dlas_component *c = dlas_registry_find(reg, DLAS_KIND_DATASET, plugin);
    ck_assert_msg(c != NULL, "dataset '%s': %s", plugin, dlas_last_error());
    dlas_rng_seed(&s->rng, 1);
    dlas_host_init(&s->host, &s->rng, 1);
    ck_assert_int_eq(dlas_params_defaults(c->params, &s->p), 0);
    for (int k = 0; kv && kv[k]; k += 2)
        ck_assert_msg(dlas_params_set(s->p, kv[k], kv[k + 1], NULL) == 0, "%s = %s: %s", kv[k],
                      kv[k + 1], dlas_last_error());
    ck_assert_msg(dlas_data_open_component(c, &s->host, s->p, o, &s->data) == 0, "%s",
                  dlas_last_error());
    return s->data;
}

void dlas_test_data_close(struct dlas_test_data *s)
{
    dlas_data_close(s->data);
    dlas_params_free(s->p);
}

void dlas_test_fill_uniform(struct dlas_tensor *t, struct dlas_rng *r, double lo, double hi)
{
    float *d = dlas_f32(t);
    for (int64_t i = 0, n = dlas_tensor_numel(t); i < n; i++)
        d[i] = (float)(lo + (hi - lo) * dlas_rng_uniform(r));
}

void dlas_test_fill_normal(struct dlas_tensor *t, struct dlas_rng *r)
{
    float *d = dlas_f32(t);
    for (int64_t i = 0, n = dlas_tensor_numel(t); i < n; i++)
        d[i] = dlas_rng_normal(r);
}

void dlas_test_randomize(struct dlas_graph *g, uint64_t seed)
{
    struct dlas_rng r;
    dlas_rng_seed(&r, seed);
    ck_assert_msg(dlas_graph_status(g) == 0, "%s", dlas_last_error());
    for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
        struct dlas_node *n = dlas_graph_node(g, i);
        if (n->op == DLAS_OP_BATCHNORM) {
            dlas_test_fill_uniform(&n->weight, &r, 0.5, 1.5);
            dlas_test_fill_uniform(&n->bias, &r, -0.5, 0.5);
            dlas_test_fill_uniform(&n->running_mean, &r, -0.3, 0.3);
            dlas_test_fill_uniform(&n->running_var, &r, 0.5, 1.5);
        } else if (n->weight.data) {
            dlas_test_fill_uniform(&n->weight, &r, -0.5, 0.5);
            if (n->bias.data)
                dlas_test_fill_uniform(&n->bias, &r, -0.2, 0.2);
        }
    }
}

int64_t dlas_test_remove_masked_exact(struct dlas_graph *g, uint64_t seed, const char *what)
{
    const struct dlas_node *in = dlas_graph_node(g, 0);
    struct dlas_tensor x = {0}, a = {0}, b = {0};
    int64_t dims[4] = {2, in->out_shape[0], in->out_shape[1], in->out_shape[2]};
    ck_assert_int_eq(dlas_tensor_alloc(&x, DLAS_F32, 4, dims), 0);
    struct dlas_rng r;
    dlas_rng_seed(&r, seed);
    dlas_test_fill_normal(&x, &r);
    ck_assert_msg(dlas_graph_forward_ref(g, &x, &a) == 0, "%s: %s", what, dlas_last_error());
    int64_t removed = -1;
    ck_assert_msg(dlas_graph_remove_masked_channels(g, &removed) == 0, "%s: %s", what,
                  dlas_last_error());
    ck_assert_msg(dlas_graph_validate(g) == 0, "%s: %s", what, dlas_last_error());
    ck_assert_msg(dlas_graph_forward_ref(g, &x, &b) == 0, "%s: %s", what, dlas_last_error());
    ck_assert_int_eq(dlas_tensor_numel(&a), dlas_tensor_numel(&b));
    for (int64_t i = 0; i < dlas_tensor_numel(&a); i++)
        ck_assert_msg(dlas_f32(&a)[i] == dlas_f32(&b)[i],
                      "%s: %lld channels removed, output %lld %.9g, masked %.9g", what,
                      (long long)removed, (long long)i, dlas_f32(&b)[i], dlas_f32(&a)[i]);
    dlas_tensor_free(&x);
    dlas_tensor_free(&a);
    dlas_tensor_free(&b);
    return removed;
}

void dlas_test_train_options(struct dlas_train_options *o, int batch, double lr)
{
    dlas_train_options_default(o);
    o->epochs = 1;
    o->batch = batch;
    o->lr = lr;
    o->threads = 1;
    o->progress = 0;
    o->eval_every = 0;
}

static int test_verbosity = -1;

static void test_log(enum dlas_log_level level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if ((int)level > test_verbosity)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%s] ", (unsigned)level < 4 ? names[level] : "?");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void dlas_test_host(struct dlas_host *h, struct dlas_rng *rng, uint64_t seed, int verbosity)
{
    test_verbosity = verbosity;
    dlas_rng_seed(rng, seed);
    dlas_host_init(h, rng, seed);
    /* plain aligned blocks (no byte accounting), as plugins get from a
     * host that does not count */
    h->log = test_log;
    h->alloc = dlas_aligned_alloc;
    h->free = dlas_aligned_free;
}

int dlas_test_compress(struct dlas_registry *reg, struct dlas_compress_ctx *ctx, const char *name,
                       const char *const *sets)
{
    const struct dlas_component *c = dlas_registry_find(reg, DLAS_KIND_COMPRESSOR, name);
    ck_assert_msg(c != NULL, "no compressor '%s': %s", name, dlas_last_error());
    struct dlas_params *p = NULL;
    ck_assert_int_eq(dlas_params_defaults(c->params, &p), 0);
    for (int k = 0; sets && sets[k]; k++) {
        char key[64];
        const char *eq = strchr(sets[k], '=');
        ck_assert_msg(eq != NULL, "%s: not key=value", sets[k]);
        snprintf(key, sizeof key, "%.*s", (int)(eq - sets[k]), sets[k]);
        ck_assert_msg(dlas_params_set(p, key, eq + 1, "test") == 0, "%s: %s: %s", name, sets[k],
                      dlas_last_error());
    }
    const int rc = ((const struct dlas_compressor_ops *)c->ops)->apply(ctx, p);
    dlas_params_free(p);
    return rc;
}

void dlas_test_quantise(struct dlas_registry *reg, const struct dlas_host *host,
                        struct dlas_graph *g, const char *calibration, int batches, int skip_first,
                        int skip_last)
{
    char set[5][48];
    snprintf(set[0], sizeof set[0], "calibration=%s", calibration);
    snprintf(set[1], sizeof set[1], "batches=%d", batches);
    snprintf(set[2], sizeof set[2], "skip_first=%s", skip_first ? "true" : "false");
    snprintf(set[3], sizeof set[3], "skip_last=%s", skip_last ? "true" : "false");
    const char *const sets[] = {"data=gaussian", set[0], set[1], "batch=4", set[2], set[3], NULL};
    struct dlas_compress_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.size = sizeof ctx;
    ctx.host = host;
    ctx.graph = g;
    ck_assert_msg(dlas_test_compress(reg, &ctx, "quant-int8", sets) == 0, "quant-int8: %s",
                  dlas_last_error());
}

int dlas_test_int8_runs(const struct dlas_component *c, char *why, size_t why_size)
{
    struct dlas_conv_quant q = {sizeof q, {1.0f, 0}, (const float[]){1.0f}, 0, {1.0f, 0}};
    struct dlas_conv_desc d = {.batch = 1, .in_c = 1, .in_h = 1, .in_w = 1, .out_c = 1, .kh = 1,
                               .kw = 1, .stride_h = 1, .stride_w = 1, .dil_h = 1, .dil_w = 1,
                               .groups = 1, .quant = &q};
    dlas_conv_desc_finish(&d);
    const struct dlas_primitive_ops *ops = c->ops;
    return ops->supports(&d, NULL, why, why_size) != DLAS_ERR_UNAVAILABLE;
}
