/* Scaffolding shared by the Check suites (tests/testutil.c, linked into
 * every suite through TEST_LDADD), so that each suite says only what is
 * particular to it: running the suite, its plugins, a private temporary
 * directory, whole files in and out, and an experiment run from a config.
 * Each helper that can fail fails the calling test with a message. */
#ifndef DLAS_TESTUTIL_H
#define DLAS_TESTUTIL_H

#include <check.h>
#include <stddef.h>

#include <dlas/dlas.h>

/* Run the suite with Check's defaults (forked tests, normal output) and
 * return the process's exit status: 0 when every test passed. */
int dlas_test_run(Suite *s);

/* A test case of the suite, with a checked fixture (either may be NULL) and
 * a timeout in seconds. */
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

#endif
