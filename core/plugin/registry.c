/* Plugin discovery: dlopen every *.so on the search path, check its ABI and
 * tables, and index its components by (kind, name). Load failures are kept
 * with their reason, so that they can be repeated when a name is asked for. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dlas/registry.h>

#include "../base/util.h"

struct loaded {
    char *path;
    char *real; /* realpath, so a file reached twice loads once */
    void *handle;
    const struct dlas_plugin *plugin;
};

struct comp_ref {
    const struct dlas_component *comp;
    size_t plugin; /* index into loaded */
};

struct failure {
    char *path;
    char *reason;
    char *dup_kind_name; /* "kind:name" for a refused duplicate, else NULL */
};

struct dlas_registry {
    struct loaded *plugins;
    size_t n_plugins;
    struct comp_ref *comps;
    size_t n_comps;
    struct failure *fails;
    size_t n_fails;
};

const char *dlas_plugin_install_dir(void) { return DLAS_PLUGIN_DIR; }

const char *dlas_kind_name(enum dlas_kind k)
{
    static const char *const names[] = {NULL, "dataset", "model", "compressor", "primitive",
                                        "backend"};
    return (k >= DLAS_KIND_DATASET && k < DLAS_KIND__END) ? names[k] : "unknown";
}

int dlas_kind_parse(const char *s, enum dlas_kind *out)
{
    for (int k = DLAS_KIND_DATASET; k < DLAS_KIND__END; k++) {
        const char *n = dlas_kind_name((enum dlas_kind)k);
        size_t len = strlen(n);
        /* accept the plural too: "primitives" */
        if (!strcmp(s, n) || (!strncmp(s, n, len) && !strcmp(s + len, "s"))) {
            *out = (enum dlas_kind)k;
            return DLAS_OK;
        }
    }
    const char *names[DLAS_KIND__END];
    size_t n = 0;
    for (int k = DLAS_KIND_DATASET; k < DLAS_KIND__END; k++)
        names[n++] = dlas_kind_name((enum dlas_kind)k);
    const char *near = dlas_nearest(s, names, n);
    return dlas_error(DLAS_ERR_INVALID,
                      "unknown kind '%s'%s%s%s (kinds: dataset, model, compressor, primitive, "
                      "backend)",
                      s, near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
}

struct dlas_registry *dlas_registry_new(void) { return calloc(1, sizeof(struct dlas_registry)); }

void dlas_registry_free(struct dlas_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_plugins; i++) {
        free(r->plugins[i].path);
        free(r->plugins[i].real);
        if (r->plugins[i].handle)
            dlclose(r->plugins[i].handle);
    }
    for (size_t i = 0; i < r->n_fails; i++) {
        free(r->fails[i].path);
        free(r->fails[i].reason);
        free(r->fails[i].dup_kind_name);
    }
    free(r->plugins);
    free(r->comps);
    free(r->fails);
    free(r);
}

static int record_failure(struct dlas_registry *r, const char *path, const char *dup, int status)
{
    struct failure *f = realloc(r->fails, (r->n_fails + 1) * sizeof *f);
    if (!f)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    r->fails = f;
    f[r->n_fails].path = strdup(path);
    f[r->n_fails].reason = strdup(dlas_last_error());
    f[r->n_fails].dup_kind_name = dup ? strdup(dup) : NULL;
    r->n_fails++;
    dlas_log(DLAS_LOG_DEBUG, "plugin %s not loaded: %s", path, dlas_last_error());
    return status;
}

/* Smallest ops table a 1.0 plugin may present for each kind. */
static size_t min_ops_size(enum dlas_kind k)
{
    switch (k) {
    case DLAS_KIND_DATASET: return sizeof(struct dlas_dataset_ops);
    case DLAS_KIND_MODEL: return sizeof(struct dlas_model_ops);
    case DLAS_KIND_COMPRESSOR: return sizeof(struct dlas_compressor_ops);
    case DLAS_KIND_PRIMITIVE: return sizeof(struct dlas_primitive_ops);
    case DLAS_KIND_BACKEND: return sizeof(struct dlas_backend_ops);
    default: return 0;
    }
}

static int check_ops(const struct dlas_component *c)
{
    if (!c->ops)
        return dlas_error(DLAS_ERR_INVALID, "component '%s' has no operations table", c->name);
    uint32_t size = *(const uint32_t *)c->ops;
    if (size < min_ops_size(c->kind))
        return dlas_error(DLAS_ERR_ABI, "component '%s': %s operations table has size %u, expected %zu",
                          c->name, dlas_kind_name(c->kind), size, min_ops_size(c->kind));
    int missing = 0;
    switch (c->kind) {
    case DLAS_KIND_DATASET: {
        const struct dlas_dataset_ops *o = c->ops;
        missing = !o->open || !o->info || !o->read || !o->close;
        break;
    }
    case DLAS_KIND_MODEL: missing = !((const struct dlas_model_ops *)c->ops)->build; break;
    case DLAS_KIND_COMPRESSOR:
        missing = !((const struct dlas_compressor_ops *)c->ops)->apply;
        break;
    case DLAS_KIND_PRIMITIVE: {
        const struct dlas_primitive_ops *o = c->ops;
        missing = !o->op || !o->device || !o->supports || !o->prepare || !o->workspace ||
                  !o->run || !o->release;
        break;
    }
    case DLAS_KIND_BACKEND: {
        const struct dlas_backend_ops *o = c->ops;
        missing = !o->device || !o->init || !o->threads || !o->parallel_for || !o->alloc ||
                  !o->free || !o->sync || !o->now || !o->release;
        break;
    }
    default: break;
    }
    if (missing)
        return dlas_error(DLAS_ERR_INVALID, "component '%s': %s operations table lacks a required function",
                          c->name, dlas_kind_name(c->kind));
    return DLAS_OK;
}

static const struct comp_ref *find_comp(const struct dlas_registry *r, enum dlas_kind kind,
                                        const char *name)
{
    for (size_t i = 0; i < r->n_comps; i++)
        if (r->comps[i].comp->kind == kind && !strcmp(r->comps[i].comp->name, name))
            return &r->comps[i];
    return NULL;
}

/* Validate everything the entry point returned before anything is indexed, so
 * a bad plugin leaves the registry unchanged. */
static int check_plugin(const struct dlas_registry *r, const char *path,
                        const struct dlas_plugin *p, char *dup, size_t duplen)
{
    if (p->abi_major != DLAS_ABI_MAJOR || p->abi_minor > DLAS_ABI_MINOR)
        return dlas_error(DLAS_ERR_ABI,
                          "plugin '%s' built for ABI %u.%u, this dlas supports %d.0-%d.%d",
                          p->name ? p->name : "?", p->abi_major, p->abi_minor, DLAS_ABI_MAJOR,
                          DLAS_ABI_MAJOR, DLAS_ABI_MINOR);
    if (p->size < sizeof(struct dlas_plugin))
        return dlas_error(DLAS_ERR_ABI, "plugin descriptor has size %u, expected at least %zu",
                          p->size, sizeof(struct dlas_plugin));
    if (!p->name || !*p->name)
        return dlas_error(DLAS_ERR_INVALID, "plugin has no name");
    if (!p->n_components || !p->components)
        return dlas_error(DLAS_ERR_INVALID, "plugin '%s' offers no components", p->name);
    for (size_t i = 0; i < r->n_plugins; i++)
        if (!strcmp(r->plugins[i].plugin->name, p->name)) {
            snprintf(dup, duplen, "plugin:%s", p->name);
            return dlas_error(DLAS_ERR_INVALID, "duplicate plugin name '%s': %s and %s", p->name,
                              r->plugins[i].path, path);
        }
    for (size_t i = 0; i < p->n_components; i++) {
        const struct dlas_component *c = &p->components[i];
        if (c->size < sizeof(struct dlas_component))
            return dlas_error(DLAS_ERR_ABI, "plugin '%s': component %zu has size %u, expected %zu",
                              p->name, i, c->size, sizeof(struct dlas_component));
        if (!c->name || !*c->name)
            return dlas_error(DLAS_ERR_INVALID, "plugin '%s': component %zu has no name", p->name, i);
        if (c->kind < DLAS_KIND_DATASET || c->kind >= DLAS_KIND__END)
            return dlas_error(DLAS_ERR_INVALID,
                              "plugin '%s': component '%s' has unknown kind %d (known: 1-%d)",
                              p->name, c->name, (int)c->kind, DLAS_KIND__END - 1);
        int rc = check_ops(c);
        if (rc)
            return dlas_error_context("plugin '%s'", p->name);
        const struct comp_ref *prev = find_comp(r, c->kind, c->name);
        for (size_t j = 0; !prev && j < i; j++)
            if (p->components[j].kind == c->kind && !strcmp(p->components[j].name, c->name))
                return dlas_error(DLAS_ERR_INVALID, "plugin '%s' offers %s '%s' twice", p->name,
                                  dlas_kind_name(c->kind), c->name);
        if (prev) {
            snprintf(dup, duplen, "%s:%s", dlas_kind_name(c->kind), c->name);
            return dlas_error(DLAS_ERR_INVALID, "duplicate %s name '%s': %s and %s",
                              dlas_kind_name(c->kind), c->name, r->plugins[prev->plugin].path,
                              path);
        }
    }
    return DLAS_OK;
}

static int is_elf(const char *path)
{
    unsigned char magic[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t n = fread(magic, 1, 4, f);
    fclose(f);
    return n == 4 && !memcmp(magic, "\177ELF", 4);
}

int dlas_registry_load_file(struct dlas_registry *r, const char *path)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return record_failure(r, path, NULL,
                              dlas_error(DLAS_ERR_IO, "cannot open: %s", strerror(errno)));
    for (size_t i = 0; i < r->n_plugins; i++)
        if (!strcmp(r->plugins[i].real, real))
            return DLAS_OK; /* the same file reached through two search paths */

    int elf = is_elf(real);
    if (elf < 0)
        return record_failure(r, path, NULL,
                              dlas_error(DLAS_ERR_IO, "cannot read: %s", strerror(errno)));
    if (!elf)
        return record_failure(r, path, NULL,
                              dlas_error(DLAS_ERR_INVALID, "not a shared object (no ELF header)"));

    dlerror();
    /* RTLD_NODELETE: a plugin stays mapped after dlclose. The libraries some
     * plugins bring (the CUDA runtime, cuBLAS, cuDNN) keep process-lifetime
     * state from their constructors; unmapping them would strand it (leak
     * checkers report it) and gains nothing, as a process loads its plugins
     * once. */
    void *h = dlopen(real, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!h) {
        const char *why = dlerror();
        return record_failure(r, path, NULL,
                              dlas_error(DLAS_ERR_INVALID, "dlopen failed: %s", why ? why : "?"));
    }
    const struct dlas_plugin *(*entry)(void);
    *(void **)&entry = dlsym(h, DLAS_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        dlclose(h);
        return record_failure(r, path, NULL,
                              dlas_error(DLAS_ERR_INVALID,
                                         "no '%s' symbol: not a dlas plugin",
                                         DLAS_PLUGIN_ENTRY_SYMBOL));
    }
    const struct dlas_plugin *p = entry();
    char dup[256] = "";
    int rc = p ? check_plugin(r, path, p, dup, sizeof dup)
               : dlas_error(DLAS_ERR_INVALID, "%s() returned NULL", DLAS_PLUGIN_ENTRY_SYMBOL);
    if (rc) {
        dlclose(h);
        return record_failure(r, path, dup[0] ? dup : NULL, rc);
    }

    struct loaded *pl = realloc(r->plugins, (r->n_plugins + 1) * sizeof *pl);
    if (!pl)
        goto nomem;
    r->plugins = pl;
    struct comp_ref *cr = realloc(r->comps, (r->n_comps + p->n_components) * sizeof *cr);
    if (!cr)
        goto nomem;
    r->comps = cr;
    pl[r->n_plugins] = (struct loaded){strdup(path), strdup(real), h, p};
    for (size_t i = 0; i < p->n_components; i++)
        cr[r->n_comps++] = (struct comp_ref){&p->components[i], r->n_plugins};
    r->n_plugins++;
    dlas_log(DLAS_LOG_DEBUG, "loaded plugin '%s' %s from %s", p->name, p->version ? p->version : "",
             path);
    return DLAS_OK;
nomem:
    dlclose(h);
    return dlas_error(DLAS_ERR_NOMEM, "out of memory");
}

static int filter_so(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 3 && !strcmp(d->d_name + n - 3, ".so") && d->d_name[0] != '.';
}

int dlas_registry_scan_dir(struct dlas_registry *r, const char *dir, int required)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, filter_so, alphasort);
    if (n < 0) {
        int rc = dlas_error(errno == ENOENT ? DLAS_ERR_NOTFOUND : DLAS_ERR_IO,
                            "cannot read plugin directory %s: %s", dir, strerror(errno));
        if (required)
            return rc;
        record_failure(r, dir, NULL, rc);
        return DLAS_OK;
    }
    for (int i = 0; i < n; i++) {
        size_t len = strlen(dir) + strlen(list[i]->d_name) + 2;
        char *path = malloc(len);
        if (path) {
            snprintf(path, len, "%s/%s", dir, list[i]->d_name);
            struct stat st;
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
                dlas_registry_load_file(r, path); /* failures are recorded */
            else if (stat(path, &st) != 0)
                record_failure(r, path, NULL,
                               dlas_error(DLAS_ERR_IO, "cannot stat: %s", strerror(errno)));
            free(path);
        }
        free(list[i]);
    }
    free(list);
    dlas_clear_error();
    return DLAS_OK;
}

static int scan_list(struct dlas_registry *r, const char *list, int required)
{
    char *copy = strdup(list), *save = NULL;
    if (!copy)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    int rc = DLAS_OK;
    for (char *d = strtok_r(copy, ":", &save); d && !rc; d = strtok_r(NULL, ":", &save))
        if (*d)
            rc = dlas_registry_scan_dir(r, d, required);
    free(copy);
    return rc;
}

/* True when this process's executable lives in the build tree. */
static int running_from_build_tree(void)
{
    char exe[PATH_MAX], build[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || !realpath(DLAS_BUILD_DIR, build))
        return 0;
    exe[n] = '\0';
    size_t bl = strlen(build);
    return !strncmp(exe, build, bl) && exe[bl] == '/';
}

int dlas_registry_discover(struct dlas_registry *r, const char *extra)
{
    int rc;
    if (extra && (rc = scan_list(r, extra, 1)))
        return rc;
    const char *env = getenv("DLAS_PLUGIN_PATH");
    if (env && (rc = scan_list(r, env, 0)))
        return rc;
    /* The build tree's plugins replace the installed ones: mixing the two
     * would report every plugin as a duplicate. */
    if (running_from_build_tree())
        return dlas_registry_scan_dir(r, DLAS_BUILD_PLUGIN_DIR, 0);
    struct stat st;
    if (stat(DLAS_PLUGIN_DIR, &st) == 0)
        return dlas_registry_scan_dir(r, DLAS_PLUGIN_DIR, 0);
    return DLAS_OK;
}

size_t dlas_registry_count(const struct dlas_registry *r) { return r->n_comps; }

const struct dlas_component *dlas_registry_at(const struct dlas_registry *r, size_t i,
                                              const struct dlas_plugin **plugin,
                                              const char **path)
{
    if (i >= r->n_comps)
        return NULL;
    if (plugin)
        *plugin = r->plugins[r->comps[i].plugin].plugin;
    if (path)
        *path = r->plugins[r->comps[i].plugin].path;
    return r->comps[i].comp;
}

size_t dlas_registry_n_failures(const struct dlas_registry *r) { return r->n_fails; }

void dlas_registry_failure(const struct dlas_registry *r, size_t i, const char **path,
                           const char **reason)
{
    if (i >= r->n_fails)
        return;
    if (path)
        *path = r->fails[i].path;
    if (reason)
        *reason = r->fails[i].reason;
}

/* Does a file name look like it would have provided `name`? Plugin files are
 * named <kind>_<name>.so with '-' as '_'. */
static int file_suggests(const char *path, const char *name)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char want[256];
    size_t i = 0;
    for (; name[i] && i < sizeof want - 1; i++)
        want[i] = name[i] == '-' ? '_' : name[i];
    want[i] = '\0';
    char have[256];
    for (i = 0; base[i] && i < sizeof have - 1; i++)
        have[i] = base[i] == '-' ? '_' : base[i];
    have[i] = '\0';
    return strstr(have, want) != NULL;
}

const struct dlas_component *dlas_registry_find(const struct dlas_registry *r,
                                                enum dlas_kind kind, const char *name)
{
    char key[256];
    snprintf(key, sizeof key, "%s:%s", dlas_kind_name(kind), name);
    for (size_t i = 0; i < r->n_fails; i++)
        if (r->fails[i].dup_kind_name && !strcmp(r->fails[i].dup_kind_name, key)) {
            dlas_error(DLAS_ERR_INVALID, "%s", r->fails[i].reason);
            return NULL;
        }
    const struct comp_ref *c = find_comp(r, kind, name);
    if (c)
        return c->comp;

    struct dlas_buf msg = {0};
    dlas_buf_printf(&msg, "no %s plugin named '%s'", dlas_kind_name(kind), name);
    const char **names = calloc(r->n_comps + 1, sizeof *names);
    size_t n = 0;
    for (size_t i = 0; names && i < r->n_comps; i++)
        if (r->comps[i].comp->kind == kind)
            names[n++] = r->comps[i].comp->name;
    const char *near = names ? dlas_nearest(name, names, n) : NULL;
    if (near)
        dlas_buf_printf(&msg, " (did you mean '%s'?)", near);
    else if (n) {
        dlas_buf_printf(&msg, "; available:");
        for (size_t i = 0; i < n; i++)
            dlas_buf_printf(&msg, "%s %s", i ? "," : "", names[i]);
    }
    free(names);
    /* Repeat why plugins that may have provided it did not load. */
    int shown = 0;
    for (size_t i = 0; i < r->n_fails; i++)
        if (file_suggests(r->fails[i].path, name)) {
            dlas_buf_printf(&msg, "; %s failed to load: %s", r->fails[i].path, r->fails[i].reason);
            shown = 1;
        }
    if (!shown && r->n_fails)
        dlas_buf_printf(&msg, "; %zu plugin file(s) failed to load (see 'dlas plugins --verbose')",
                        r->n_fails);
    dlas_error(DLAS_ERR_NOTFOUND, "%s", msg.s ? msg.s : "not found");
    dlas_buf_free(&msg);
    return NULL;
}
