/* Levelled logging to the application's sink; DLAS_LOG=debug|info|warn|error
 * sets the start level. */
#include <stdarg.h>
#include <stdio.h> /* vsnprintf */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <dlas/log.h>

static int level = -1;
static dlas_log_sink sink;
static void *sink_ctx;

void dlas_log_set_sink(dlas_log_sink s, void *ctx)
{
    sink = s;
    sink_ctx = ctx;
}

static void init_level(void)
{
    const char *env = getenv("DLAS_LOG");
    level = DLAS_LOG_WARN;
    if (!env)
        return;
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (!strcasecmp(env, names[i]))
            level = i;
}

void dlas_log_set_level(enum dlas_log_level l) { level = (int)l; }

enum dlas_log_level dlas_log_get_level(void)
{
    if (level < 0)
        init_level();
    return (enum dlas_log_level)level;
}

void dlas_log(enum dlas_log_level l, const char *fmt, ...)
{
    if ((int)l > (int)dlas_log_get_level() || !sink)
        return;
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    sink(sink_ctx, l, line);
}
