/* The conv layers an inference plan could not bind to the primitive it was
 * asked for, kept two ways: one entry per layer, for the results files, and
 * grouped by reason and replacement, for terminals, where twenty layers
 * refused for one reason read better as one line than as twenty. */
#ifndef DLAS_FALLBACKS_H
#define DLAS_FALLBACKS_H

#include "../base/util.h"

struct fallback_group;

struct fallbacks {
    int n;                  /* layers */
    struct dlas_buf layers; /* "layer (why) -> target; ..." */
    struct dlas_buf groups; /* "l1, l2 (why) -> target; ..." */
    struct fallback_group *group;
    int n_groups;
};

int fallbacks_add(struct fallbacks *f, const char *layer, const char *why, const char *target);
void fallbacks_free(struct fallbacks *f);

#endif
