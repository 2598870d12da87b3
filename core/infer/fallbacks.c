#include <stdlib.h>
#include <string.h>

#include <dlas/status.h>

#include "fallbacks.h"

struct fallback_group {
    char *key; /* "(why) -> target" */
    struct dlas_buf names;
};

int fallbacks_add(struct fallbacks *f, const char *layer, const char *why, const char *target)
{
    struct dlas_buf key = {0};
    if (dlas_buf_printf(&key, "(%s) -> %s", why, target) ||
        dlas_buf_printf(&f->layers, "%s%s %s", f->n ? "; " : "", layer, key.s)) {
        dlas_buf_free(&key);
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    f->n++;
    int g = 0;
    while (g < f->n_groups && strcmp(f->group[g].key, key.s))
        g++;
    if (g == f->n_groups) {
        struct fallback_group *grown = realloc(f->group, (size_t)(g + 1) * sizeof *grown);
        if (!grown) {
            dlas_buf_free(&key);
            return dlas_error(DLAS_ERR_NOMEM, "out of memory");
        }
        f->group = grown;
        f->group[g] = (struct fallback_group){key.s, {0}};
        f->n_groups++;
    } else
        dlas_buf_free(&key);
    struct dlas_buf *names = &f->group[g].names;
    if (dlas_buf_printf(names, "%s%s", names->len ? ", " : "", layer))
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    /* rebuilt whole: a plan has at most a few hundred conv layers */
    f->groups.len = 0;
    for (int i = 0; i < f->n_groups; i++)
        if (dlas_buf_printf(&f->groups, "%s%s %s", i ? "; " : "", f->group[i].names.s,
                            f->group[i].key))
            return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    return DLAS_OK;
}

void fallbacks_free(struct fallbacks *f)
{
    for (int i = 0; i < f->n_groups; i++) {
        free(f->group[i].key);
        dlas_buf_free(&f->group[i].names);
    }
    free(f->group);
    dlas_buf_free(&f->layers);
    dlas_buf_free(&f->groups);
    memset(f, 0, sizeof *f);
}
