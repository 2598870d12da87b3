/* Directory scanning. Entries are sorted so that sample i is the same file
 * on every machine and every run, whatever order readdir() gives. */
#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <dlas/status.h>

#include "scan.h"

/* Symbolic links to folders are not followed unless opts->follow_links, and
 * then only to folders outside the tree, each folder once (by device and
 * inode): a link to "." would otherwise multiply the tree, and a link from
 * one class folder into another would give its images a second label. */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in dir, hidden ones left out. */
static int list_dir(const char *dir, char ***names, int *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return dlas_error(errno == ENOENT ? DLAS_ERR_NOTFOUND : DLAS_ERR_IO,
                          "imagefolder: cannot read folder %s: %s", dir, strerror(errno));
    int cap = 0, rc = DLAS_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **g = realloc(*names, (size_t)cap * sizeof *g);
            if (!g) {
                rc = DLAS_ERR_NOMEM;
                break;
            }
            *names = g;
        }
        if (!((*names)[*n] = strdup(e->d_name))) {
            rc = DLAS_ERR_NOMEM;
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (rc) {
        for (int i = 0; i < *n; i++)
            free((*names)[i]);
        free(*names);
        *names = NULL;
        *n = 0;
        return dlas_error(rc, "imagefolder: out of memory listing %s", dir);
    }
    if (*n)
        qsort(*names, (size_t)*n, sizeof **names, cmp_str);
    return DLAS_OK;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

/* Folders already walked, by device and inode. */
static int visited(struct scan_opts *o, dev_t dev, ino_t ino, int mark)
{
    for (size_t i = 0; i < o->n_seen; i++)
        if (o->seen[i].dev == dev && o->seen[i].ino == ino)
            return 1;
    if (!mark)
        return 0;
    if (o->n_seen == o->cap_seen) {
        size_t cap = o->cap_seen ? 2 * o->cap_seen : 64;
        void *g = realloc(o->seen, cap * sizeof *o->seen);
        if (!g)
            return -1;
        o->seen = g;
        o->cap_seen = cap;
    }
    o->seen[o->n_seen].dev = dev;
    o->seen[o->n_seen].ino = ino;
    o->n_seen++;
    return 0;
}

/* Whether real path t lies in the tree whose real path is root. */
static int inside(const char *root, const char *t)
{
    size_t n = strlen(root);
    return !strncmp(t, root, n) && (t[n] == '/' || t[n] == '\0' || (n == 1 && root[0] == '/'));
}

enum entry { E_OTHER, E_DIR, E_SKIP };

/* What the walk does with `path`: descend (a folder, or a followed link to
 * one, not seen before), skip (a link not followed: counted), or treat it as
 * a file. `mark`: record the folder as seen (the walk), or only look. */
static int classify(const char *path, struct scan_opts *o, int mark, enum entry *e)
{
    struct stat lst, st;
    *e = E_OTHER;
    if (lstat(path, &lst) != 0 || stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return DLAS_OK;
    if (S_ISLNK(lst.st_mode)) {
        char real[PATH_MAX];
        if (!o->follow_links || !realpath(path, real) || inside(o->root_real, real)) {
            o->links_skipped += mark;
            *e = E_SKIP;
            return DLAS_OK;
        }
    }
    int v = visited(o, st.st_dev, st.st_ino, mark);
    if (v < 0)
        return dlas_error(DLAS_ERR_NOMEM, "imagefolder: out of memory listing %s", path);
    *e = v ? E_SKIP : E_DIR;
    if (v)
        o->links_skipped += mark;
    return DLAS_OK;
}

int scan_opts_init(struct scan_opts *o, const char *root, int follow_links)
{
    memset(o, 0, sizeof *o);
    o->follow_links = follow_links;
    if (!realpath(root, o->root_real))
        return dlas_error(DLAS_ERR_IO, "imagefolder: %s: %s", root, strerror(errno));
    return DLAS_OK;
}

void scan_opts_free(struct scan_opts *o)
{
    free(o->seen);
    o->seen = NULL;
    o->n_seen = o->cap_seen = 0;
}

/* dst = a/b, refusing a path that does not fit rather than cutting it. */
static int join(char *dst, size_t len, const char *a, const char *b)
{
    if (snprintf(dst, len, "%s/%s", a, b) >= (int)len)
        return dlas_error(DLAS_ERR_INVALID, "imagefolder: path %s/%s is too long (%zu bytes at most)",
                          a, b, len - 1);
    return DLAS_OK;
}

int scan_classes(const char *dir, struct scan_opts *o, struct classes *out)
{
    memset(out, 0, sizeof *out);
    char **names;
    int n;
    int rc = list_dir(dir, &names, &n);
    if (rc)
        return rc;
    int k = 0;
    for (int i = 0; i < n; i++) {
        char path[8192];
        enum entry e = E_OTHER;
        if (!rc)
            rc = join(path, sizeof path, dir, names[i]);
        if (!rc)
            rc = classify(path, o, 0, &e);
        if (!rc && e == E_DIR)
            names[k++] = names[i];
        else
            free(names[i]);
    }
    if (rc) {
        free_names(names, k);
        return rc;
    }
    if (k == 0) {
        free(names);
        return dlas_error(DLAS_ERR_NOTFOUND,
                          "imagefolder: %s has no class folders (expected %s/<class>/<image>)", dir,
                          dir);
    }
    out->n = k;
    out->names = names;
    return DLAS_OK;
}

void classes_free(struct classes *c)
{
    free_names(c->names, c->n);
    memset(c, 0, sizeof *c);
}

static int add(struct filelist *f, const char *rel, int32_t label)
{
    size_t len = strlen(rel) + 1;
    if (f->n == f->cap) {
        int64_t cap = f->cap ? 2 * f->cap : 1024;
        int64_t *off = realloc(f->off, (size_t)cap * sizeof *off);
        if (off)
            f->off = off;
        int32_t *lab = realloc(f->label, (size_t)cap * sizeof *lab);
        if (lab)
            f->label = lab;
        if (!off || !lab)
            return DLAS_ERR_NOMEM;
        f->cap = cap;
    }
    if (f->len + len > f->names_cap) {
        size_t cap = f->names_cap ? 2 * f->names_cap : 65536;
        while (cap < f->len + len)
            cap *= 2;
        char *g = realloc(f->names, cap);
        if (!g)
            return DLAS_ERR_NOMEM;
        f->names = g;
        f->names_cap = cap;
    }
    memcpy(f->names + f->len, rel, len);
    f->off[f->n] = (int64_t)f->len;
    f->label[f->n] = label;
    f->len += len;
    f->n++;
    return DLAS_OK;
}

/* Images under root/rel, recursively. */
static int walk(const char *root, const char *rel, struct scan_opts *o, int32_t label,
                struct filelist *f)
{
    char dir[8192];
    int rc = join(dir, sizeof dir, root, rel);
    if (rc)
        return rc;
    char **names;
    int n;
    rc = list_dir(dir, &names, &n);
    for (int i = 0; !rc && i < n; i++) {
        char sub[8192], full[16384];
        enum entry e;
        if ((rc = join(sub, sizeof sub, rel, names[i])) || (rc = join(full, sizeof full, root, sub)) ||
            (rc = classify(full, o, 1, &e)))
            break;
        if (e == E_DIR)
            rc = walk(root, sub, o, label, f);
        else if (e == E_OTHER && is_image_name(names[i])) {
            if (add(f, sub, label))
                rc = dlas_error(DLAS_ERR_NOMEM, "imagefolder: out of memory listing %s", dir);
        }
    }
    free_names(names, n);
    return rc;
}

int scan_split(const char *dir, const struct classes *cls, struct scan_opts *o,
               struct filelist *out)
{
    memset(out, 0, sizeof *out);
    struct classes here;
    int rc = scan_classes(dir, o, &here);
    for (int i = 0; !rc && i < here.n; i++) {
        char **hit = bsearch(&here.names[i], cls->names, (size_t)cls->n, sizeof *cls->names, cmp_str);
        if (!hit) {
            rc = dlas_error(DLAS_ERR_INVALID,
                            "imagefolder: %s/%s: class '%s' is not among the %d train classes",
                            dir, here.names[i], here.names[i], cls->n);
            break;
        }
        int64_t before = out->n;
        char cdir[8192];
        enum entry e = E_OTHER;
        if (!(rc = join(cdir, sizeof cdir, dir, here.names[i])))
            rc = classify(cdir, o, 1, &e);
        if (!rc && e == E_DIR)
            rc = walk(dir, here.names[i], o, (int32_t)(hit - cls->names), out);
        if (!rc && out->n == before)
            rc = dlas_error(DLAS_ERR_NOTFOUND,
                            "imagefolder: class folder %s/%s holds no images (.jpg, .jpeg, .png)",
                            dir, here.names[i]);
    }
    classes_free(&here);
    if (rc)
        filelist_free(out);
    return rc;
}

const char *filelist_name(const struct filelist *f, int64_t i) { return f->names + f->off[i]; }

void filelist_filter(struct filelist *f, const unsigned char *keep)
{
    int64_t k = 0;
    for (int64_t i = 0; i < f->n; i++)
        if (keep[i]) {
            f->off[k] = f->off[i];
            f->label[k] = f->label[i];
            k++;
        }
    f->n = k;
}

void filelist_free(struct filelist *f)
{
    free(f->names);
    free(f->off);
    free(f->label);
    memset(f, 0, sizeof *f);
}

