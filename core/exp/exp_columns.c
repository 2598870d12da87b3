/* A point's own result columns: every swept parameter as a column of its own,
 * named after where it sits in the experiment (dataset.KEY,
 * model.LABEL.KEY, compressor.CHAIN[.STEP].KEY, primitive.LABEL.KEY,
 * backend.LABEL.KEY), so results group in pandas without string splitting;
 * and the id of the dense baseline its ratios are computed against. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp_internal.h"

static void column_name(const struct dlas_experiment *e, const struct instance *inst,
                        const char *key, char *out, size_t len)
{
    if (inst == &e->dataset) {
        snprintf(out, len, "dataset.%s", key);
        return;
    }
    for (int i = 0; i < e->n_models; i++)
        if (inst == &e->models[i]) {
            snprintf(out, len, "model.%s.%s", inst->label, key);
            return;
        }
    for (int i = 0; i < e->n_prims; i++)
        if (inst == &e->prims[i]) {
            snprintf(out, len, "primitive.%s.%s", inst->label, key);
            return;
        }
    for (int i = 0; i < e->n_backends; i++)
        if (inst == &e->backends[i]) {
            snprintf(out, len, "backend.%s.%s", inst->label, key);
            return;
        }
    for (int c = 0; c < e->n_chains; c++)
        for (int s = 0; s < e->chains[c].n; s++)
            if (inst == &e->chains[c].steps[s]) {
                if (e->chains[c].n > 1)
                    snprintf(out, len, "compressor.%s.%d.%s", e->chains[c].label, s, key);
                else
                    snprintf(out, len, "compressor.%s.%s", e->chains[c].label, key);
                return;
            }
    snprintf(out, len, "%s.%s", inst->label, key);
}

/* A value in config syntax as plain data: strings unquoted, "L" dropped. */
static void plain(const char *v, char *out, size_t len)
{
    size_t n = strlen(v), o = 0;
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        for (size_t i = 1; i + 1 < n && o + 1 < len; i++) {
            if (v[i] == '\\' && i + 2 < n)
                i++;
            out[o++] = v[i];
        }
        out[o] = '\0';
        return;
    }
    snprintf(out, len, "%s", v);
    if (n > 1 && v[n - 1] == 'L' && n - 1 < len)
        out[n - 1] = '\0';
}

void exp_point_columns(const struct dlas_experiment *e, const struct point *pt,
                       struct dlas_row *row)
{
    for (int i = 0; i < pt->n_picks; i++) {
        const struct instance *inst = pt->picks[i].inst;
        const struct dlas_axis *ax = &inst->axes[pt->picks[i].axis];
        char name[512];
        column_name(e, inst, ax->key, name, sizeof name);
        char val[1024];
        plain(ax->values[pt->picks[i].value], val, sizeof val);
        dlas_row_set(row, name, val);
    }
    dlas_row_set(row, "baseline_id", pt->baseline);
}
