/* Finding the images of an ImageNet-style tree: one folder per class. */
#ifndef IMGF_SCAN_H
#define IMGF_SCAN_H

#include <stddef.h>
#include <stdint.h>

struct classes {
    int n;
    char **names; /* sorted */
};

struct filelist {
    int64_t n, cap;
    char *names;    /* NUL-terminated paths relative to the split folder */
    size_t len, names_cap;
    int64_t *off;   /* n offsets into names */
    int32_t *label; /* n */
};

/* The class folders of dir, sorted by name (hidden ones ignored); refuses a
 * folder with none. */
int scan_classes(const char *dir, struct classes *out);
void classes_free(struct classes *c);

/* Every .jpg/.jpeg/.png (any case) under each class folder of dir,
 * recursively, in sorted order. A folder that is not one of `cls` or that
 * holds no image is refused. */
int scan_split(const char *dir, const struct classes *cls, struct filelist *out);
const char *filelist_name(const struct filelist *f, int64_t i);
/* Keep only the entries with keep[i] != 0. */
void filelist_filter(struct filelist *f, const unsigned char *keep);
void filelist_free(struct filelist *f);

#endif
