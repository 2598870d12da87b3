/* CIFAR-10 / CIFAR-100 binary files held in memory. */
#ifndef CIFAR_H
#define CIFAR_H

#include <stdint.h>

#include <dlas/plugin.h>

#define CIFAR_SIDE 32
#define CIFAR_PIX (3 * CIFAR_SIDE * CIFAR_SIDE) /* R, G, B planes, rows of 32 */

struct cifar_split {
    int64_t n;
    uint8_t *pixels; /* n x CIFAR_PIX: already channel-major, as in the files */
    uint8_t *labels; /* n, the chosen label kind */
};

struct cifar {
    const struct dlas_host *host;
    int version;  /* 10 or 100 */
    int coarse;   /* CIFAR-100: the 20 superclasses */
    int classes;
    char dir[4096];
    struct cifar_split s[2]; /* by enum dlas_split */
    float mean[3], std[3];
    float lut[256];
};

/* Find the files under c->dir (or its cifar-10-batches-bin/ or
 * cifar-100-binary/ folder), given version 0 (detect), 10 or 100; load and
 * validate both splits. */
int cifar_load(struct cifar *c, int version);
void cifar_free_splits(struct cifar *c);

#endif
