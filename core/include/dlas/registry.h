/* Plugin discovery and lookup.
 *
 * Directories are scanned in the order added; entries in a directory are
 * sorted so that loading is deterministic. A plugin that fails to load is
 * remembered with its reason; it is fatal only if an experiment asks for one
 * of the names it would have provided (or, unknown, for any missing name, in
 * which case the failures are listed in the message). */
#ifndef DLAS_REGISTRY_H
#define DLAS_REGISTRY_H

#include <dlas/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dlas_registry;

struct dlas_registry *dlas_registry_new(void);
void dlas_registry_free(struct dlas_registry *r);

/* Load every "*.so" in dir. A missing or unreadable dir is recorded as a
 * failure, not returned as an error, unless `required` is set. */
int dlas_registry_scan_dir(struct dlas_registry *r, const char *dir, int required);
/* Load one file; on failure returns the status and also records it. */
int dlas_registry_load_file(struct dlas_registry *r, const char *path);
/* The standard search: each of `extra` (colon-separated, may be NULL), then
 * $DLAS_PLUGIN_PATH, then the build tree's plugin directory when this program
 * runs from the build tree, then the installed plugin directory. */
int dlas_registry_discover(struct dlas_registry *r, const char *extra);

size_t dlas_registry_count(const struct dlas_registry *r);
const struct dlas_component *dlas_registry_at(const struct dlas_registry *r, size_t i,
                                              const struct dlas_plugin **plugin,
                                              const char **path);
/* Find a component of a kind by name; on failure the message suggests the
 * nearest name and repeats the load failure of any plugin that did not load. */
const struct dlas_component *dlas_registry_find(const struct dlas_registry *r,
                                                enum dlas_kind kind, const char *name);

size_t dlas_registry_n_failures(const struct dlas_registry *r);
void dlas_registry_failure(const struct dlas_registry *r, size_t i, const char **path,
                           const char **reason);

/* The directory plugins are installed into, and the build tree's. */
const char *dlas_plugin_install_dir(void);

#ifdef __cplusplus
}
#endif
#endif
