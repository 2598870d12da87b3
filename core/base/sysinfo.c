#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include <dlas/dlas.h>

#include "config.h"
#include "sysinfo.h"

const char *dlas_version(void) { return PACKAGE_VERSION; }
const char *dlas_revision(void) { return DLAS_GIT_REVISION; }

const char *dlas_sys_cpu_model(void)
{
    static char model[256];
    if (model[0])
        return model;
    snprintf(model, sizeof model, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return model;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ' || *c == '\t')
                    c++;
                c[strcspn(c, "\n")] = '\0';
                snprintf(model, sizeof model, "%s", c);
            }
            break;
        }
    }
    fclose(f);
    return model;
}

const char *dlas_sys_blas(void)
{
    static char blas[512];
    if (blas[0])
        return blas;
    int par = openblas_get_parallel();
    snprintf(blas, sizeof blas, "%s (%s, core %s)", openblas_get_config(),
             par == 2 ? "openmp" : par == 1 ? "pthreads" : "sequential", openblas_get_corename());
    return blas;
}

const char *dlas_sys_hostname(void)
{
    static char host[256];
    if (!host[0] && gethostname(host, sizeof host - 1))
        snprintf(host, sizeof host, "unknown");
    return host;
}

void dlas_sys_timestamp(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

const char *dlas_blas_info(void) { return dlas_sys_blas(); }

void dlas_sys_loadavg(double avg[3])
{
    avg[0] = avg[1] = avg[2] = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f)
        return;
    if (fscanf(f, "%lf %lf %lf", &avg[0], &avg[1], &avg[2]) != 3)
        avg[0] = avg[1] = avg[2] = -1;
    fclose(f);
}
