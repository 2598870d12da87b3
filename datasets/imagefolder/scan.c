/* Directory scanning. Entries are sorted so that sample i is the same file
 * on every machine and every run, whatever order readdir() gives. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <dlas/status.h>

#include "scan.h"

#define MAX_DEPTH 8 /* class/sub/.../file; guards against symlink loops */

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

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int scan_classes(const char *dir, struct classes *out)
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
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (is_dir(path))
            names[k++] = names[i];
        else
            free(names[i]);
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
static int walk(const char *root, const char *rel, int depth, int32_t label, struct filelist *f)
{
    char dir[8192];
    snprintf(dir, sizeof dir, "%s/%s", root, rel);
    char **names;
    int n;
    int rc = list_dir(dir, &names, &n);
    for (int i = 0; !rc && i < n; i++) {
        char sub[8192];
        snprintf(sub, sizeof sub, "%s/%s", rel, names[i]);
        char full[16384];
        snprintf(full, sizeof full, "%s/%s", root, sub);
        if (is_dir(full)) {
            if (depth < MAX_DEPTH)
                rc = walk(root, sub, depth + 1, label, f);
        } else if (is_image_name(names[i])) {
            if (add(f, sub, label))
                rc = dlas_error(DLAS_ERR_NOMEM, "imagefolder: out of memory listing %s", dir);
        }
    }
    free_names(names, n);
    return rc;
}

int scan_split(const char *dir, const struct classes *cls, struct filelist *out)
{
    memset(out, 0, sizeof *out);
    struct classes here;
    int rc = scan_classes(dir, &here);
    for (int i = 0; !rc && i < here.n; i++) {
        char **hit = bsearch(&here.names[i], cls->names, (size_t)cls->n, sizeof *cls->names, cmp_str);
        if (!hit) {
            rc = dlas_error(DLAS_ERR_INVALID,
                            "imagefolder: %s/%s: class '%s' is not among the %d train classes",
                            dir, here.names[i], here.names[i], cls->n);
            break;
        }
        int64_t before = out->n;
        rc = walk(dir, here.names[i], 1, (int32_t)(hit - cls->names), out);
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

