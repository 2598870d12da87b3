/* Drawing with gnuplot without letting a results file program it: gnuplot is
 * run with an argument vector (no shell) in the plot's folder, the script
 * names only files dlas chose, and text from the results reaches the script
 * only through an allow-list of characters (titles) or as quoted strings in
 * data files (legend entries), which gnuplot never evaluates. */
#ifndef DLAS_CLI_GNUPLOT_H
#define DLAS_CLI_GNUPLOT_H

#include <stdio.h>

/* s with every character outside [A-Za-z0-9 _.,:;=+()/%-] and UTF-8 letters
 * replaced by '_', for single-quoted script strings. */
void gp_script_text(char *out, size_t len, const char *s);
/* A file-name part: [A-Za-z0-9._-] only. */
void gp_file_name(char *out, size_t len, const char *s);
/* s as a double-quoted data-file string (quotes and control characters
 * replaced), for `title columnheader`. */
void gp_data_text(FILE *f, const char *s);
/* Run `gnuplot SCRIPT` in DIR; 0 when it succeeded. Reports on stderr. */
int gp_run(const char *dir, const char *script);

#endif
