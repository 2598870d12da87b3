/* Scaffolding shared by the Check suites (tests/testutil.c, linked into
 * every suite through TEST_LDADD), so that each suite says only what is
 * particular to it: running the suite, its plugins, a private temporary
 * directory, whole files in and out, an experiment run from a config, a
 * dataset plugin opened through the data pipeline, random graph values.
 * Each helper that can fail fails the calling test with a message. */
#ifndef DLAS_TESTUTIL_H
#define DLAS_TESTUTIL_H

#include <check.h>
#include <stddef.h>

#include <dlas/dlas.h>

/* A passing assertion costs nothing. Check's own ck_assert_msg reports every
 * passing assertion to the runner (_mark_point: a message written to a
 * temporary file, which the runner then parses in time quadratic in their
 * number), so that a test that crashes can name the last assertion passed.
 * Assertions in loops over a layer's outputs made that the suites' main
 * cost: 78% of check_conformance's time under ASan, and 57 s for one test
 * that checked 7 MB byte by byte. A failure is reported as before (file,
 * line, message); a crash names the test, and the sanitizer build or a core
 * file names the line. Every ck_assert_* macro expands to this one. */
#undef ck_assert_msg
#define ck_assert_msg(expr, ...)                                                                 \
    ((expr) ? (void)0                                                                            \
            : _ck_assert_failed(__FILE__, __LINE__, "Assertion '" #expr "' failed", ##__VA_ARGS__))

/* Run the suite with Check's defaults (forked tests, normal output) and
 * return the process's exit status: 0 when every test passed. */
int dlas_test_run(Suite *s);

/* 1 when DLAS_TEST_SUBSET is set (and not "0"): a slow build (CI's sanitizer
 * stage) runs the small cases of the suites' sweeps only. The plain run
 * covers them all; a test that skips a case under it says which. */
int dlas_test_subset(void);
/* Under DLAS_TEST_SUBSET: says "<printf of fmt> not run (DLAS_TEST_SUBSET)"
 * on stderr and returns 1, for a sweep to skip a large case; else 0. */
int dlas_test_subset_skips(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A new test case of the suite, with a checked fixture (setup and teardown
 * may be NULL) and a timeout in seconds (0: Check's default, which make
 * check sets with CK_DEFAULT_TIMEOUT). */
TCase *dlas_test_case(Suite *s, const char *name, void (*setup)(void), void (*teardown)(void),
                      double timeout);

/* Every plugin on DLAS_PLUGIN_PATH, for suites that share one registry
 * across their tests; NULL, after a message naming the suite, when
 * discovery fails (the suite cannot run at all). */
struct dlas_registry *dlas_test_registry(const char *suite);
/* The same, and the plugins of the folder PATH too (e.g. DLAS_FIXTURES). */
struct dlas_registry *dlas_test_registry_at(const char *suite, const char *path);

/* A new private directory $TMPDIR/dlas-TAG-XXXXXX (TMPDIR unset or empty:
 * /tmp), its path written to dir (size bytes). */
void dlas_test_mkdtemp(char *dir, size_t size, const char *tag);
/* Remove dir and everything below it, without a shell; folders a test made
 * unreadable or unwritable are opened up first, links are not followed. */
void dlas_test_rmtree(const char *dir);

/* dir/name, in one of 64 static buffers used in turn (so that several can be
 * alive at once). */
const char *dlas_test_path(const char *dir, const char *name);
/* Write len bytes to path (created or truncated). */
void dlas_test_spit(const char *path, const void *data, size_t len);
/* Write printf-formatted text to path; returns path. */
const char *dlas_test_writef(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The whole file, with a NUL byte after it (free() it); its length to *len
 * when len is not NULL. */
char *dlas_test_slurp(const char *path, size_t *len);

/* Load the experiment file cfg with reg's plugins and run it with o (NULL:
 * the defaults, without progress output); both must succeed. The summary
 * goes to *sum; the caller frees the experiment. */
struct dlas_experiment *dlas_test_experiment(const char *cfg, struct dlas_registry *reg,
                                             const struct dlas_run_options *o,
                                             struct dlas_run_summary *sum);

/* A dataset plugin opened through the data pipeline, on a host of its own
 * whose RNG is seeded with 1. */
struct dlas_test_data {
    struct dlas_rng rng;
    struct dlas_host host;
    struct dlas_params *p;
    struct dlas_data *data;
};
/* Open the dataset plugin of reg with the name/value pairs of kv (ending in
 * NULL; NULL: none) set on its defaults and the pipeline options o; returns
 * s->data. dlas_test_data_close frees what it opened. */
struct dlas_data *dlas_test_data_open(struct dlas_test_data *s, struct dlas_registry *reg,
                                      const char *plugin, const char *const *kv,
                                      const struct dlas_data_options *o);
void dlas_test_data_close(struct dlas_test_data *s);

/* A host for plugins under test: aligned allocation, the RNG rng seeded
 * with seed, and a log that writes messages of level <= verbosity to stderr
 * (-1: none; DLAS_LOG_DEBUG: all). The log level is one for the process. */
void dlas_test_host(struct dlas_host *h, struct dlas_rng *rng, uint64_t seed, int verbosity);

/* Training options for a test: the defaults, one epoch of batch-size
 * minibatches at learning rate lr on one thread, with no progress output and
 * no evaluation (tests evaluate when they mean to). */
void dlas_test_train_options(struct dlas_train_options *o, int batch, double lr);

/* Every value of the float tensor t drawn uniformly from [lo, hi). */
void dlas_test_fill_uniform(struct dlas_tensor *t, struct dlas_rng *r, double lo, double hi);
/* Every value of the float tensor t drawn from N(0, 1). */
void dlas_test_fill_normal(struct dlas_tensor *t, struct dlas_rng *r);
/* Weights and biases of g uniform in [-0.5, 0.5] and [-0.2, 0.2], batchnorm
 * scales and variances in [0.5, 1.5], shifts in [-0.5, 0.5] and means in
 * [-0.3, 0.3] (away from identity, so that a wrong slice or an unmasked
 * channel shows in the output), drawn from an RNG seeded with seed. g must
 * be valid. */
void dlas_test_randomize(struct dlas_graph *g, uint64_t seed);

/* Removing the masked channels of g changes nothing: g's reference output
 * on a batch of 2 Gaussian inputs (drawn from seed), before and after
 * dlas_graph_remove_masked_channels, bit for bit (a removed channel added
 * exact zeros to the reference's sums). Returns how many channels went;
 * `what` names g in the failure messages. */
int64_t dlas_test_remove_masked_exact(struct dlas_graph *g, uint64_t seed, const char *what);

/* Compressor `name` of reg applied in ctx with the "key=value" settings of
 * sets (NULL ended; NULL: the defaults) over its defaults; returns its
 * status (a setting the compressor does not declare fails the test). */
int dlas_test_compress(struct dlas_registry *reg, struct dlas_compress_ctx *ctx, const char *name,
                       const char *const *sets);
/* The quant-int8 compressor of reg on g, as an experiment runs it, with
 * calibration on Gaussian inputs (one batch of 4, or `batches` x 4; the
 * rule `calibration`), skip_first and skip_last as given. */
void dlas_test_quantise(struct dlas_registry *reg, const struct dlas_host *host,
                        struct dlas_graph *g, const char *calibration, int batches, int skip_first,
                        int skip_last);
/* 0 when int8 primitive c cannot run on this CPU (no VNNI), its reason in
 * why; asked with a 1x1 layer, which every int8 primitive takes where it
 * runs at all. */
int dlas_test_int8_runs(const struct dlas_component *c, char *why, size_t why_size);

#endif
