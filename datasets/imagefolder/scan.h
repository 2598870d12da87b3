/* Finding the images of an ImageNet-style tree: one folder per class. */
#ifndef IMGF_SCAN_H
#define IMGF_SCAN_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* How the tree is walked: whether links to folders outside it are followed
 * (links to folders are never followed by default), the folders seen so far
 * (by device and inode: each is walked once) and the links left out. */
struct scan_opts {
    int follow_links;
    char root_real[PATH_MAX]; /* the tree's real path: links into it are not followed */
    struct { dev_t dev; ino_t ino; } *seen;
    size_t n_seen, cap_seen;
    int64_t links_skipped;
};
int scan_opts_init(struct scan_opts *o, const char *root, int follow_links);
void scan_opts_free(struct scan_opts *o);

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
int scan_classes(const char *dir, struct scan_opts *o, struct classes *out);
void classes_free(struct classes *c);

/* Every .jpg/.jpeg/.png (any case) under each class folder of dir,
 * recursively, in sorted order. A folder that is not one of `cls` or that
 * holds no image is refused. */
int scan_split(const char *dir, const struct classes *cls, struct scan_opts *o,
               struct filelist *out);
const char *filelist_name(const struct filelist *f, int64_t i);
/* Keep only the entries with keep[i] != 0. */
void filelist_filter(struct filelist *f, const unsigned char *keep);
void filelist_free(struct filelist *f);

#endif
