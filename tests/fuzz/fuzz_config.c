/* The experiment loader and validation: libconfig's parser, the pre-scan
 * (integers, @include), every group checked against the plugins' specs, and
 * the sweep's expansion. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_write("x.cfg", data, size);
    struct dlas_experiment *e = NULL;
    if (dlas_experiment_load(path, fz_registry(), &e) == DLAS_OK) {
        char *r = dlas_experiment_resolved(e);
        free(r);
        dlas_experiment_free(e);
    }
    return 0;
}
