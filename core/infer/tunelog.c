/* The tuning log: best primitive parameters per (primitive, device,
 * threads, layer), kept as an append-only text file. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/file.h>
#include <dlas/tune.h>

#include "../base/util.h"

/* Entries in file order, and an open-addressing index over their keys so
 * that loading a log of n lines costs O(n), not O(n^2) (a log of a million
 * distinct lines would otherwise hang the reader). */
struct dlas_tunelog {
    struct dlas_tune_entry *e;
    size_t n, cap;
    size_t *slot; /* entry index + 1; 0 = empty */
    size_t n_slots;
};

/* A log file larger than this is refused rather than read. */
#define TUNELOG_MAX_BYTES ((int64_t)256 << 20)

struct dlas_tunelog *dlas_tunelog_new(void) { return calloc(1, sizeof(struct dlas_tunelog)); }

void dlas_tunelog_free(struct dlas_tunelog *t)
{
    if (!t)
        return;
    free(t->e);
    free(t->slot);
    free(t);
}

void dlas_tune_layer_key(const struct dlas_conv_desc *d, char *buf, size_t len)
{
    snprintf(buf, len, "%lldx%lldx%lld-%lld:k%dx%ds%dx%dp%dx%dd%dx%dg%db%lld",
             (long long)d->in_c, (long long)d->in_h, (long long)d->in_w, (long long)d->out_c,
             d->kh, d->kw, d->stride_h, d->stride_w, d->pad_h, d->pad_w, d->dil_h, d->dil_w,
             d->groups, (long long)(d->batch > 0 ? d->batch : 1));
    /* a pruned layer's schedule depends on its sparsity (5% steps): "...z90" */
    int z = (int)(d->weight_sparsity * 20.0f + 0.5f) * 5;
    size_t used = strlen(buf);
    if (z > 0 && used < len)
        snprintf(buf + used, len - used, "z%d", z);
}

static int same_key(const struct dlas_tune_entry *a, const struct dlas_tune_entry *b)
{
    return a->threads == b->threads && !strcmp(a->primitive, b->primitive) &&
           !strcmp(a->device, b->device) && !strcmp(a->layer, b->layer);
}

static uint64_t key_hash(const struct dlas_tune_entry *e)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)e->threads;
    const char *parts[3] = {e->primitive, e->device, e->layer};
    for (int k = 0; k < 3; k++) {
        for (const char *c = parts[k]; *c; c++)
            h = (h ^ (unsigned char)*c) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull; /* separator */
    }
    return h;
}

/* The slot holding e's key, or the empty slot where it would go. */
static size_t *find_slot(const struct dlas_tunelog *t, const struct dlas_tune_entry *e)
{
    size_t mask = t->n_slots - 1, i = (size_t)key_hash(e) & mask;
    while (t->slot[i] && !same_key(&t->e[t->slot[i] - 1], e))
        i = (i + 1) & mask;
    return &t->slot[i];
}

static int rehash(struct dlas_tunelog *t, size_t n_slots)
{
    size_t *old = t->slot, old_n = t->n_slots;
    if (!(t->slot = calloc(n_slots, sizeof *t->slot))) {
        t->slot = old;
        return dlas_error(DLAS_ERR_NOMEM, "tuning log: out of memory");
    }
    t->n_slots = n_slots;
    for (size_t i = 0; i < old_n; i++)
        if (old[i])
            *find_slot(t, &t->e[old[i] - 1]) = old[i];
    free(old);
    return DLAS_OK;
}

int dlas_tunelog_add(struct dlas_tunelog *t, const struct dlas_tune_entry *e)
{
    if (!t || !e)
        return dlas_error(DLAS_ERR_INVALID, "tuning log: no log or entry");
    if (2 * (t->n + 1) > t->n_slots && rehash(t, t->n_slots ? 2 * t->n_slots : 64))
        return DLAS_ERR_NOMEM;
    size_t *s = find_slot(t, e);
    if (*s) {
        t->e[*s - 1] = *e;
        return DLAS_OK;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        struct dlas_tune_entry *ne = realloc(t->e, cap * sizeof *ne);
        if (!ne)
            return dlas_error(DLAS_ERR_NOMEM, "tuning log: out of memory");
        t->e = ne;
        t->cap = cap;
    }
    t->e[t->n++] = *e;
    *s = t->n;
    return DLAS_OK;
}

size_t dlas_tunelog_count(const struct dlas_tunelog *t) { return t ? t->n : 0; }

const struct dlas_tune_entry *dlas_tunelog_at(const struct dlas_tunelog *t, size_t i)
{
    return t && i < t->n ? &t->e[i] : NULL;
}

const struct dlas_tune_entry *dlas_tunelog_find(const struct dlas_tunelog *t, const char *prim,
                                                const char *device, int threads,
                                                const struct dlas_conv_desc *d)
{
    if (!t || !prim || !d)
        return NULL;
    char key[128];
    dlas_tune_layer_key(d, key, sizeof key);
    for (size_t i = 0; i < t->n; i++) {
        const struct dlas_tune_entry *e = &t->e[i];
        if (e->threads == threads && !strcmp(e->primitive, prim) && !strcmp(e->layer, key) &&
            (!device || !strcmp(e->device, device)))
            return e;
    }
    return NULL;
}

/* Split s at tabs into at most max fields (in place). */
static int split_tabs(char *s, char **f, int max)
{
    int n = 0;
    while (n < max) {
        f[n++] = s;
        char *tab = strchr(s, '\t');
        if (!tab)
            break;
        *tab = '\0';
        s = tab + 1;
    }
    return n;
}

static int copy_field(char *dst, size_t len, const char *src)
{
    if (strlen(src) >= len)
        return -1;
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

int dlas_tunelog_load(const char *path, int missing_ok, struct dlas_tunelog **out)
{
    *out = NULL;
    FILE *f;
    int64_t size;
    int orc = dlas_file_fopen(path, &f, &size);
    if (orc == DLAS_ERR_NOTFOUND && missing_ok) {
        *out = dlas_tunelog_new();
        return *out ? DLAS_OK : dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    if (orc == DLAS_ERR_NOTFOUND) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", dlas_last_error());
        return dlas_error(DLAS_ERR_IO, "tuning log: %s", msg);
    }
    if (orc)
        return dlas_error_context("tuning log");
    if (size > TUNELOG_MAX_BYTES) {
        fclose(f);
        return dlas_error(DLAS_ERR_INVALID, "tuning log %s: %lld bytes is more than the %lld a "
                          "tuning log may hold (a wrong file?)",
                          path, (long long)size, (long long)TUNELOG_MAX_BYTES);
    }
    struct dlas_tunelog *t = dlas_tunelog_new();
    if (!t) {
        fclose(f);
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    }
    char line[2048];
    int lineno = 0, rc = DLAS_OK;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        size_t l = strlen(line);
        if (l + 1 < sizeof line && line[l ? l - 1 : 0] != '\n' && !feof(f)) {
            /* fgets stopped short of the newline: a NUL byte in the line */
            rc = dlas_error(DLAS_ERR_CORRUPT, "%s:%d: a NUL byte in the line", path, lineno);
            break;
        }
        if (l == sizeof line - 1 && line[l - 1] != '\n') {
            rc = dlas_error(DLAS_ERR_CORRUPT, "%s:%d: line too long", path, lineno);
            break;
        }
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
            line[--l] = '\0';
        if (!l || line[0] == '#')
            continue;
        char *fld[10];
        int nf = split_tabs(line, fld, 10);
        struct dlas_tune_entry e;
        memset(&e, 0, sizeof e);
        char *end;
        if (nf != 9 || copy_field(e.primitive, sizeof e.primitive, fld[0]) ||
            copy_field(e.device, sizeof e.device, fld[1]) ||
            copy_field(e.layer, sizeof e.layer, fld[3]) ||
            copy_field(e.settings, sizeof e.settings, fld[4]) ||
            copy_field(e.timestamp, sizeof e.timestamp, fld[8])) {
            rc = dlas_error(DLAS_ERR_CORRUPT,
                            "%s:%d: expected 9 tab-separated fields (primitive device threads "
                            "layer settings ms gflops default_ms timestamp)",
                            path, lineno);
            break;
        }
        errno = 0;
        long th = strtol(fld[2], &end, 10);
        e.threads = th >= 1 && th <= 65536 ? (int)th : 0;
        if (*end || end == fld[2] || errno || e.threads < 1) {
            rc = dlas_error(DLAS_ERR_CORRUPT, "%s:%d: bad thread count '%s'", path, lineno,
                            fld[2]);
            break;
        }
        double *nums[3] = {&e.ms, &e.gflops, &e.default_ms};
        for (int k = 0; k < 3 && !rc; k++) {
            *nums[k] = strtod(fld[5 + k], &end);
            /* times and rates are finite and not negative ("inf" would
             * corrupt every comparison made with them); default_ms is "nan"
             * when the untuned parameters could not run */
            int unknown_ok = k == 2 && isnan(*nums[k]);
            if (*end || end == fld[5 + k] ||
                (!unknown_ok && (!isfinite(*nums[k]) || *nums[k] < 0)))
                rc = dlas_error(DLAS_ERR_CORRUPT, "%s:%d: bad number '%s'", path, lineno,
                                fld[5 + k]);
        }
        if (!rc)
            rc = dlas_tunelog_add(t, &e);
    }
    if (!rc && ferror(f))
        rc = dlas_error(DLAS_ERR_IO, "tuning log %s: read error", path);
    fclose(f);
    if (rc) {
        dlas_tunelog_free(t);
        return rc;
    }
    *out = t;
    return DLAS_OK;
}

int dlas_tunelog_append(const char *path, const struct dlas_tune_entry *e)
{
    if (!path || !e)
        return dlas_error(DLAS_ERR_INVALID, "tuning log: no path or entry");
    for (const char *s = e->settings; *s; s++)
        if (*s == '\t' || *s == '\n')
            return dlas_error(DLAS_ERR_INVALID, "tuning log: settings contain a tab or newline");
    FILE *f = fopen(path, "a");
    if (!f)
        return dlas_error(DLAS_ERR_IO, "tuning log %s: %s", path, strerror(errno));
    int rc = 0;
    if (ftell(f) == 0)
        rc = fprintf(f, "# dlas tuning log: primitive\tdevice\tthreads\tlayer\tsettings\tms\t"
                        "gflops\tdefault_ms\ttimestamp (a later line replaces an earlier "
                        "one)\n") < 0;
    if (!rc)
        rc = fprintf(f, "%s\t%s\t%d\t%s\t%s\t%.6g\t%.6g\t%.6g\t%s\n", e->primitive, e->device,
                     e->threads, e->layer, e->settings, e->ms, e->gflops, e->default_ms,
                     e->timestamp[0] ? e->timestamp : "-") < 0;
    if (fclose(f) || rc)
        return dlas_error(DLAS_ERR_IO, "tuning log %s: write error", path);
    return DLAS_OK;
}

int dlas_params_apply(struct dlas_params *p, const char *settings, const char *origin)
{
    if (!settings || !*settings)
        return DLAS_OK;
    if (!p)
        return dlas_error(DLAS_ERR_INVALID, "%s: settings '%s' for a component without "
                                            "parameters",
                          origin ? origin : "settings", settings);
    char *buf = strdup(settings);
    if (!buf)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    int rc = DLAS_OK;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ";", &save); tok && !rc; tok = strtok_r(NULL, ";", &save)) {
        while (*tok == ' ')
            tok++;
        if (!*tok)
            continue;
        char *eq = strchr(tok, '=');
        if (!eq) {
            rc = dlas_error(DLAS_ERR_INVALID, "%s: '%s' is not key=value",
                            origin ? origin : "settings", tok);
            break;
        }
        *eq = '\0';
        char *k = tok, *v = eq + 1;
        for (char *z = eq - 1; z >= k && *z == ' '; z--)
            *z = '\0';
        while (*v == ' ')
            v++;
        rc = dlas_params_set(p, k, v, origin);
    }
    free(buf);
    return rc;
}

int dlas_params_tunables(const struct dlas_params *p, char *buf, size_t len)
{
    if (!buf || !len)
        return dlas_error(DLAS_ERR_INVALID, "no buffer");
    buf[0] = '\0';
    if (!p)
        return DLAS_OK;
    const struct dlas_param_spec *spec = dlas_params_spec(p);
    size_t used = 0;
    for (size_t i = 0; i < dlas_params_count(p); i++) {
        const char *name = dlas_params_name(p, i);
        const struct dlas_param_spec *s = spec;
        while (s && s->name && strcmp(s->name, name))
            s++;
        if (!s || !s->name || !(s->flags & DLAS_PARAM_TUNABLE))
            continue;
        char v[256];
        if (dlas_params_format(p, i, v, sizeof v))
            return dlas_last_status();
        /* bare words read back the same and keep the log readable */
        size_t vl = strlen(v);
        const char *val = v;
        if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
            v[vl - 1] = '\0';
            val = v + 1;
        }
        int k = snprintf(buf + used, len - used, "%s%s=%s", used ? ";" : "", name, val);
        if (k < 0 || (size_t)k >= len - used)
            return dlas_error(DLAS_ERR_INVALID, "tunable settings exceed %zu bytes", len);
        used += (size_t)k;
    }
    return DLAS_OK;
}
