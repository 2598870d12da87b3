/* Paths a plugin will read (parameters marked DLAS_PARAM_PATH: a dataset's
 * folder) are checked when the experiment loads, so that `dlas validate`
 * says "no such folder" with the config's file:line instead of every point
 * failing later. Relative paths are taken as the plugins take them: from the
 * working directory. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dlas/dlas.h>

#include "exp_internal.h"

static int check_one(const config_setting_t *at, const char *what, const char *key,
                     const char *path)
{
    if (!path || !*path)
        return DLAS_OK; /* the plugin's own default applies */
    char where[512];
    dlas_cfg_where(at, where, sizeof where);
    struct stat st;
    if (stat(path, &st))
        return dlas_error(DLAS_ERR_INVALID, "%s: %s: %s '%s' %s", where, what, key, path,
                          errno == ENOENT || errno == ENOTDIR ? "does not exist"
                                                              : strerror(errno));
    int dir = S_ISDIR(st.st_mode);
    if (access(path, dir ? R_OK | X_OK : R_OK))
        return dlas_error(DLAS_ERR_INVALID, "%s: %s: %s '%s' is a %s that cannot be read (%s)",
                          where, what, key, path, dir ? "folder" : "file", strerror(errno));
    return DLAS_OK;
}

int exp_check_paths(const config_setting_t *group, const char *what,
                    const struct dlas_param_spec *spec, const struct dlas_params *p)
{
    for (size_t i = 0; spec && spec[i].name; i++) {
        if (!(spec[i].flags & DLAS_PARAM_PATH))
            continue;
        const config_setting_t *m = config_setting_get_member(group, spec[i].name);
        int rc = DLAS_OK;
        if (m && (config_setting_is_list(m) || config_setting_is_array(m))) {
            /* a swept path: every value */
            for (int k = 0; !rc && k < config_setting_length(m); k++) {
                const config_setting_t *v = config_setting_get_elem(m, (unsigned)k);
                if (config_setting_type(v) == CONFIG_TYPE_STRING)
                    rc = check_one(v, what, spec[i].name, config_setting_get_string(v));
            }
        } else
            rc = check_one(m ? m : group, what, spec[i].name, dlas_param_str(p, spec[i].name));
        if (rc)
            return rc;
    }
    return DLAS_OK;
}
