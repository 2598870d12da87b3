/* Progress signals from a point's child process to the sweep that watches
 * it, so that a point that hangs can be told from one that is slow. */
#ifndef DLAS_HEARTBEAT_H
#define DLAS_HEARTBEAT_H

#include <stdint.h>

/* Count one unit of progress (a training or evaluation batch, an inference
 * run, a log line). A relaxed atomic increment of a counter in memory shared
 * with the parent; nothing when no one watches. */
void dlas_heartbeat(void);

/* The parent: map a counter shared with children forked afterwards and
 * start counting on it (NULL on failure: then nothing is watched). */
volatile uint64_t *dlas_heartbeat_share(void);
void dlas_heartbeat_unshare(volatile uint64_t *counter);

#endif
