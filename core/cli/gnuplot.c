#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gnuplot.h"

void gp_script_text(char *out, size_t len, const char *s)
{
    size_t o = 0;
    for (; s && *s && o + 1 < len; s++) {
        unsigned char c = (unsigned char)*s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 strchr(" _.,:;=+()/%-", c) || c >= 0x80;
        out[o++] = ok ? (char)c : '_';
    }
    out[o] = '\0';
}

void gp_file_name(char *out, size_t len, const char *s)
{
    size_t o = 0;
    for (; s && *s && o + 1 < len; s++) {
        unsigned char c = (unsigned char)*s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        int hidden = o == 0 && c == '.';
        out[o++] = ok && !hidden ? (char)c : '_';
    }
    out[o] = '\0';
}

void gp_data_text(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        fputc(c < 0x20 || c == 0x7f ? ' ' : c == '"' ? '\'' : c == '\\' ? '/' : (int)c, f);
    }
    fputc('"', f);
}

int gp_run(const char *dir, const char *script)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "dlas: cannot start gnuplot: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        if (chdir(dir)) {
            fprintf(stderr, "dlas: %s: %s\n", dir, strerror(errno));
            _exit(126);
        }
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) /* gnuplot must never wait for input */
            dup2(null, STDIN_FILENO);
        char *argv[] = {"gnuplot", (char *)script, NULL};
        execvp(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
        fprintf(stderr, "dlas: gnuplot is not installed (Debian package: gnuplot-nox)\n");
        return -1;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st)) {
        fprintf(stderr, "dlas: gnuplot failed on %s/%s\n", dir, script);
        return -1;
    }
    return 0;
}
