/* A pass over an experiment file's text before libconfig reads it. */
#ifndef DLAS_CFGSCAN_H
#define DLAS_CFGSCAN_H

/* Check what libconfig 1.5 would get silently wrong, or die on:
 * - an integer literal without the L suffix that does not fit in 32 bits
 *   (libconfig wraps it: batch = 4294967297 would become 1);
 * - an @include of something that is not a regular file (a directory makes
 *   libconfig's scanner call exit()), followed recursively.
 * `include_dir` is where relative @include paths are looked up (NULL: the
 * current directory). Errors name file, line and key. */
int dlas_cfg_prescan(const char *path, const char *include_dir);

#endif
