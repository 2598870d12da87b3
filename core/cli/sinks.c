/* Where the library's log lines and progress go when the dlas command runs:
 * stderr, with a bar redrawn in place on a terminal (or when asked for) and
 * plain "dlas: ..." lines otherwise. The library itself never prints. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int bar_shown; /* a bar is on the current line of stderr */

static void clear_bar(void)
{
    if (bar_shown) {
        fputs("\r\033[K", stderr);
        bar_shown = 0;
    }
}

static void log_line(void *ctx, enum dlas_log_level level, const char *line)
{
    static const char *const tag[] = {"error", "warning", "info", "debug"};
    char out[4200];
    snprintf(out, sizeof out, "dlas: %s: %s\n",
             tag[level <= DLAS_LOG_DEBUG ? level : DLAS_LOG_DEBUG], line);
    pthread_mutex_lock(&lock);
    clear_bar();
    fputs(out, stderr); /* one write per line keeps lines from threads whole */
    pthread_mutex_unlock(&lock);
}

static void draw(const struct dlas_progress_event *ev)
{
    enum { WIDTH = 24 };
    char bar[WIDTH + 1];
    size_t fill = ev->total ? ev->done * WIDTH / ev->total : 0;
    for (size_t i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\r\033[K%s%s[%s] %zu/%zu %s", ev->prefix ? ev->prefix : "",
            ev->prefix && *ev->prefix ? " " : "", bar, ev->done, ev->total,
            ev->text ? ev->text : "");
    bar_shown = 1;
}

static void progress(void *ctx, const struct dlas_progress_event *ev)
{
    int bar = ev->mode > 0 || (ev->mode < 0 && isatty(STDERR_FILENO));
    pthread_mutex_lock(&lock);
    switch (ev->kind) {
    case DLAS_PROGRESS_UPDATE:
        if (bar)
            draw(ev);
        break;
    case DLAS_PROGRESS_TICK:
        if (!bar)
            fprintf(stderr, "dlas: %s\n", ev->text);
        break;
    case DLAS_PROGRESS_LINE:
        if (bar) {
            clear_bar();
            fprintf(stderr, "%s\n", ev->text);
        } else
            fprintf(stderr, "dlas: %s\n", ev->text);
        break;
    case DLAS_PROGRESS_END:
        clear_bar();
        break;
    }
    fflush(stderr);
    pthread_mutex_unlock(&lock);
}

void cli_install_sinks(void)
{
    dlas_log_set_sink(log_line, NULL);
    dlas_progress_set_sink(progress, NULL);
}
