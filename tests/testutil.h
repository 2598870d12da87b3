/* Scaffolding shared by the Check suites, so that each suite's main() says
 * only what is particular to it. Header-only: every suite is one program
 * built from one source file. */
#ifndef DLAS_TESTUTIL_H
#define DLAS_TESTUTIL_H

#include <check.h>
#include <stdio.h>

#include <dlas/dlas.h>

/* Run the suite with Check's defaults (forked tests, normal output) and
 * return the process's exit status: 0 when every test passed. */
static inline int dlas_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

/* Every plugin on DLAS_PLUGIN_PATH, for suites that share one registry
 * across their tests; NULL, after a message naming the suite, when
 * discovery fails (the suite cannot run at all). */
static inline struct dlas_registry *dlas_test_registry(const char *suite)
{
    struct dlas_registry *reg = dlas_registry_new();
    if (!reg || dlas_registry_discover(reg, NULL)) {
        fprintf(stderr, "%s: plugin discovery failed: %s\n", suite, dlas_last_error());
        dlas_registry_free(reg);
        return NULL;
    }
    return reg;
}

#endif
