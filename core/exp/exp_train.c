/* Training an experiment point's model, through the model cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <dlas/log.h>
#include <dlas/status.h>

#include "exp_train.h"
#include "../base/util.h"

/* Train keys that cannot change the trained weights: results do not
 * depend on threads, and the rest say when to write or evaluate. */
static int neutral(const char *key)
{
    static const char *const keys[] = {"threads", "workers", "checkpoint_every",
                                       "checkpoint_steps", "eval_every", "cache"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(key, keys[i]))
            return 1;
    return 0;
}

/* The cache key: everything that determines the trained weights. */
static uint64_t model_key(const struct dlas_experiment *e, const struct point *pt,
                          const struct dlas_params *p_data, const struct dlas_params *p_model)
{
    char *d = dlas_params_describe(p_data), *m = dlas_params_describe(p_model);
    struct dlas_buf b = {0};
    dlas_buf_printf(&b, "dataset=%s{%s} model=%s{%s} train{", e->dataset.comp->name,
                    d ? d : "", e->models[pt->model].comp->name, m ? m : "");
    char v[512];
    for (size_t i = 0; i < dlas_params_count(e->train); i++) {
        const char *k = dlas_params_name(e->train, i);
        if (neutral(k))
            continue;
        dlas_params_format(e->train, i, v, sizeof v);
        dlas_buf_printf(&b, "%s=%s;", k, v);
    }
    dlas_buf_printf(&b, "} seed=%lld", (long long)pt->seed);
    exp_describe_weights(&b, &e->models[pt->model]); /* training from given weights */
    uint64_t h = dlas_rng_hash(b.s ? b.s : "");
    free(d);
    free(m);
    dlas_buf_free(&b);
    return h;
}

uint64_t exp_point_model_key(const struct dlas_experiment *e, const struct point *pt)
{
    if (dlas_param_int(e->train, "epochs") <= 0)
        return 0;
    struct dlas_params *d = dlas_point_params(pt, &e->dataset);
    struct dlas_params *m = dlas_point_params(pt, &e->models[pt->model]);
    uint64_t key = d && m ? model_key(e, pt, d, m) : 0;
    dlas_params_free(d);
    dlas_params_free(m);
    return key ? key : 1;
}

/* A label usable in a file name. */
static void safe_name(const char *s, char *out, size_t len)
{
    size_t i = 0;
    for (; s && *s && i + 1 < len; s++)
        out[i++] = (char)((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                                  (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'
                              ? *s
                              : '_');
    out[i] = '\0';
}

void exp_training_free(struct exp_training *t)
{
    dlas_trainer_free(t->trainer);
    dlas_data_close(t->data);
    dlas_graph_free(t->teacher);
    memset(t, 0, sizeof *t);
}

static int open_data(const struct dlas_experiment *e, const struct dlas_dataset_ops *dops,
                     void *dataset, const struct dlas_rng *root, struct dlas_data **out)
{
    struct dlas_dataset_info info;
    int rc = dops->info(dataset, &info);
    if (rc)
        return rc;
    struct dlas_data_options o;
    dlas_data_options_default(&o);
    struct dlas_rng r = dlas_rng_derive(root, dlas_rng_hash("data"));
    o.seed = dlas_rng_u64(&r);
    o.batch = dlas_param_int(e->train, "batch");
    o.val_fraction = dlas_param_float(e->train, "val_fraction");
    o.crop_padding = (int)dlas_param_int(e->train, "crop_padding");
    o.hflip = dlas_param_bool(e->train, "hflip");
    o.workers = (int)dlas_param_int(e->train, "workers");
    o.train_subset = dlas_param_float(e->train, "subset");
    /* The runner's evaluation normalises by the dataset's statistics when it
     * reports them and not at all otherwise; training must see the same. */
    o.normalise = info.std[0] > 0 ? DLAS_NORM_AUTO : DLAS_NORM_NONE;
    /* BN cannot train on a last batch of one; a dropped partial batch
     * costs nothing (the next epoch reshuffles). */
    o.drop_last = 1;
    return dlas_data_open(dops, dataset, &o, out);
}

static void report(struct dlas_row *row, const struct dlas_trainer *t, int cached)
{
    int64_t n;
    const struct dlas_epoch_metrics *h = dlas_trainer_history(t, &n);
    dlas_row_setf(row, "train_epochs", "%lld", (long long)dlas_trainer_epoch(t));
    dlas_row_setf(row, "train_cached", "%d", cached);
    if (!n)
        return;
    const struct dlas_epoch_metrics *m = &h[n - 1];
    double sec = 0;
    int64_t samples = 0, steps = 0;
    for (int64_t i = 0; i < n; i++) {
        sec += h[i].seconds;
        samples += h[i].samples;
        steps += h[i].steps;
    }
    /* how much it trained: train.max_steps and train.subset shorten it */
    dlas_row_setf(row, "train_steps", "%lld", (long long)steps);
    dlas_row_setf(row, "train_samples", "%lld", (long long)samples);
    dlas_row_setf(row, "train_loss", "%.6g", m->train_loss);
    dlas_row_setf(row, "train_top1", "%.6g", m->train_top1);
    if (m->evaluated) {
        dlas_row_set(row, "train_eval_split",
                     dlas_data_split_name((enum dlas_data_split)m->eval_split));
        dlas_row_setf(row, "train_eval_loss", "%.6g", m->eval_loss);
        dlas_row_setf(row, "train_eval_top1", "%.6g", m->eval_top1);
        dlas_row_setf(row, "train_eval_top5", "%.6g", m->eval_top5);
    }
    dlas_row_setf(row, "train_seconds", "%.6g", sec);
    dlas_row_setf(row, "train_images_per_s", "%.6g", sec > 0 ? (double)samples / sec : 0.0);
}

int exp_train_point(const struct dlas_experiment *e, const struct point *pt, const char *dir,
                    const struct dlas_dataset_ops *dops, void *dataset,
                    const struct dlas_params *p_data, const struct dlas_params *p_model,
                    const struct dlas_rng *root, struct dlas_graph *g, struct dlas_row *row,
                    struct exp_training *out)
{
    memset(out, 0, sizeof *out);
    struct dlas_train_options o;
    int rc = dlas_train_options_from_params(e->train, &o);
    if (rc)
        return rc;
    if (!o.seed)
        o.seed = (uint64_t)pt->seed;
    char label[128], base[4096], ckpt[4200], csv[4200];
    safe_name(e->models[pt->model].label, label, sizeof label);
    uint64_t key = model_key(e, pt, p_data, p_model);
    if (dlas_param_bool(e->train, "cache"))
        snprintf(base, sizeof base, "%s/models/%s-%016llx", dir, label, (unsigned long long)key);
    else
        snprintf(base, sizeof base, "%s/models/%s-%s", dir, label, pt->hash);
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", base);
    snprintf(csv, sizeof csv, "%s.csv", base);
    char mdir[4200];
    snprintf(mdir, sizeof mdir, "%s/models", dir);
    if ((rc = dlas_mkdirs(mdir)))
        return rc;
    o.checkpoint_path = ckpt;
    o.csv_path = csv;
    o.label = pt->id;
    o.progress = -1;
    if ((rc = open_data(e, dops, dataset, root, &out->data)))
        return dlas_error_context("training data");
    if ((rc = dlas_trainer_new(g, out->data, &o, &out->trainer)))
        return rc;
    struct stat st;
    int cached = 0;
    if (stat(ckpt, &st) == 0) {
        /* Refused, not overwritten: checkpoints are written atomically, so a
         * bad one was damaged from outside, and may be all a long run has. */
        if ((rc = dlas_trainer_load(out->trainer, ckpt))) {
            char why[1024];
            snprintf(why, sizeof why, "%s", dlas_last_error());
            return dlas_error(rc, "%s; move or delete it to train from scratch", why);
        }
        cached = dlas_trainer_epoch(out->trainer) >= o.epochs;
    }
    if (!cached) {
        dlas_log(DLAS_LOG_INFO, "%s: training %lld epochs on %d threads", pt->id,
                 (long long)o.epochs,
                 dlas_autograd_threads(dlas_trainer_autograd(out->trainer)));
        if ((rc = dlas_trainer_fit(out->trainer)))
            return rc;
    }
    report(row, out->trainer, cached);
    dlas_row_set(row, "train_checkpoint", ckpt);
    /* Compressors get the recipe afresh (epoch 0), without the cache's
     * checkpoint and CSV, so that their fine-tuning never overwrites the
     * trained model other points will load. */
    o.checkpoint_path = o.csv_path = NULL;
    if ((rc = dlas_trainer_reset(out->trainer, &o)))
        return rc;
    if (!(out->teacher = dlas_graph_clone(g)))
        return dlas_last_status() ? dlas_last_status() : DLAS_ERR_NOMEM;
    return DLAS_OK;
}
