/* Opening input files safely: the one rule every reader of a file (dataset
 * plugins, checkpoints, tuning logs, configs) follows.
 *
 * Only a regular file is read. A FIFO in place of a dataset file would block
 * the reader forever, and a device (/dev/zero) never ends; both are refused
 * with a message before a byte is read. The size returned is the file's real
 * length, against which a reader checks every size its header claims before
 * allocating anything. */
#ifndef DLAS_FILE_H
#define DLAS_FILE_H

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Open `path` read-only if it is a regular file (symbolic links are followed
 * to their target, which must be one). On success *fd is an open descriptor
 * (close-on-exec) and *size the file's length; otherwise a status with a
 * message naming the path and what it is ("is a FIFO"). */
int dlas_file_open(const char *path, int *fd, int64_t *size);

/* The same, as a stdio stream opened "rb". */
int dlas_file_fopen(const char *path, FILE **f, int64_t *size);

/* Deflate expands at most 1032:1, so a gzip file of n bytes holds at most
 * this many bytes of data: a bound on any size its content may claim. */
#define DLAS_GZIP_MAX_RATIO 1032

#ifdef __cplusplus
}
#endif
#endif
