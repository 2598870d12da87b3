/* The tuning-log reader: tab-separated lines, numbers, the key index. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_write("x.log", data, size);
    struct dlas_tunelog *t = NULL;
    if (dlas_tunelog_load(path, 0, &t) == DLAS_OK)
        dlas_tunelog_free(t);
    return 0;
}
