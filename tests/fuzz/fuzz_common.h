/* What every harness shares: a private scratch folder, writing the fuzzer's
 * bytes to a file there, and a registry of the build's plugins (found once,
 * through DLAS_PLUGIN_PATH, which run.sh points at the fuzz build). */
#ifndef DLAS_FUZZ_COMMON_H
#define DLAS_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dlas/dlas.h>

static char fz_dir[512];

static const char *fz_scratch(void)
{
    if (!fz_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fz_dir, sizeof fz_dir, "%s/dlas-fuzz-XXXXXX", t ? t : "/tmp");
        if (!mkdtemp(fz_dir))
            abort();
        dlas_log_set_level(DLAS_LOG_ERROR);
    }
    return fz_dir;
}

/* fz_dir/name, made of bytes. */
static const char *fz_write(const char *name, const uint8_t *data, size_t size)
{
    static char path[8][2048];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", fz_scratch(), name);
    FILE *f = fopen(p, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    return p;
}

/* (unused by the harnesses that read no plugin's file) */
__attribute__((unused)) static struct dlas_registry *fz_registry(void)
{
    static struct dlas_registry *reg;
    if (!reg) {
        reg = dlas_registry_new();
        if (!reg || dlas_registry_discover(reg, NULL))
            abort();
    }
    return reg;
}

#endif
