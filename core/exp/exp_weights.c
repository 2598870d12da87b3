/* Weights in and out of an experiment: a model may start from a checkpoint
 * (models.X.weights = "file.ckpt", checked against the built graph by name
 * and shape), and every point may keep its compressed model
 * (experiment.save_models = true) for later comparison, re-timing or
 * fine-tuning. */
#include <errno.h>
#include <libconfig.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dlas/checkpoint.h>
#include <dlas/status.h>

#include "exp_internal.h"
#include "../base/util.h"

int exp_parse_weights(const config_setting_t *s, const char *label, char **out)
{
    *out = NULL;
    const config_setting_t *w = config_setting_get_member(s, "weights");
    if (!w)
        return DLAS_OK;
    char at[512];
    dlas_cfg_where(w, at, sizeof at);
    const char *path = config_setting_get_string(w);
    if (!path || !*path)
        return dlas_error(DLAS_ERR_INVALID,
                          "%s: key 'weights' of model '%s' must be a checkpoint's path (a string)",
                          at, label);
    /* checked now, so `dlas validate` says so before a long run starts */
    struct stat st;
    if (stat(path, &st) || !S_ISREG(st.st_mode) || access(path, R_OK))
        return dlas_error(DLAS_ERR_INVALID, "%s: model '%s': weights '%s' %s", at, label, path,
                          errno == ENOENT ? "do not exist"
                          : !S_ISREG(st.st_mode) ? "are not a regular file"
                                                 : "cannot be read");
    if (!(*out = strdup(path)))
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    return DLAS_OK;
}

void exp_describe_weights(struct dlas_buf *key, const struct instance *model)
{
    struct stat st;
    if (!model->weights)
        return;
    if (stat(model->weights, &st))
        memset(&st, 0, sizeof st);
    dlas_buf_printf(key, "weights=%s@%lld:%lld", model->weights, (long long)st.st_size,
                    (long long)st.st_mtime);
}

int exp_load_weights(const struct instance *model, struct dlas_graph *g, struct dlas_row *row)
{
    if (!model->weights)
        return DLAS_OK;
    int rc = dlas_checkpoint_load_graph(g, model->weights, DLAS_CKPT_STRICT);
    if (rc)
        return dlas_error_context("model '%s': weights", model->label);
    dlas_row_set(row, "weights", model->weights);
    return DLAS_OK;
}

/* the cell id as a file name: '/' becomes '~', anything unusual '_' */
static void file_name(const char *id, char *out, size_t len)
{
    size_t o = 0;
    for (; *id && o + 1 < len; id++) {
        char c = *id;
        out[o++] = c == '/' ? '~'
                   : ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      strchr("._=-+,", c))
                       ? c
                       : '_';
    }
    out[o] = '\0';
}

int exp_save_model(const struct dlas_experiment *e, const struct point *pt,
                   const struct dlas_graph *g, struct dlas_row *row)
{
    if (!dlas_param_bool(e->exp, "save_models"))
        return DLAS_OK;
    char dir[4200], name[1024], path[5300];
    snprintf(dir, sizeof dir, "%s/models/compressed", e->run_dir);
    int rc = dlas_mkdirs(dir);
    if (rc)
        return rc;
    file_name(pt->id, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s.ckpt", dir, name);
    if ((rc = dlas_checkpoint_save_graph(g, path)))
        return dlas_error_context("saving the compressed model");
    dlas_row_set(row, "saved_model", path);
    return DLAS_OK;
}
