/* The trainer: epochs of SGD steps over a dlas_data pipeline, with
 * distillation, hooks, evaluation, checkpoints and progress.
 *
 * Reproducibility: everything random is a function of the seed and the
 * step (the data order and augmentation of the data's own seed and the
 * epoch, dropout of one RNG draw per step), and every kernel gives the same
 * bits for any thread count. So the same seed gives the same loss curve,
 * and a run resumed from a checkpoint (which holds weights,
 * running statistics, velocities, the RNG, the step and the epoch's running
 * sums) continues exactly as the uninterrupted run would have. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <dlas/log.h>
#include <dlas/status.h>

#include "train_impl.h"
#include "../base/util.h"

static char *dup_or_null(const char *s) { return s && *s ? strdup(s) : NULL; }

static int check_options(const struct dlas_train_options *o)
{
    if (o->epochs < 0 || o->batch < 1)
        return dlas_error(DLAS_ERR_INVALID, "train: epochs must be >= 0 and batch >= 1");
    if (!(o->lr >= 0) || !(o->momentum >= 0) || !(o->weight_decay >= 0) || !(o->lr_min >= 0))
        return dlas_error(DLAS_ERR_INVALID,
                          "train: lr, lr_min, momentum and weight_decay must be >= 0");
    if (!(o->label_smoothing >= 0 && o->label_smoothing <= 1))
        return dlas_error(DLAS_ERR_INVALID, "train: label_smoothing %g is outside [0, 1]",
                          o->label_smoothing);
    if (o->n_milestones < 0 || o->n_milestones > DLAS_LR_MAX_MILESTONES)
        return dlas_error(DLAS_ERR_INVALID, "train: %d milestones", o->n_milestones);
    if (o->nesterov && !(o->momentum > 0))
        return dlas_error(DLAS_ERR_INVALID, "train: Nesterov momentum needs momentum > 0");
    return DLAS_OK;
}

/* Options and everything derived from them; the caller frees the old ones. */
static int apply_options(struct dlas_trainer *t, const struct dlas_train_options *o)
{
    int rc = check_options(o);
    if (rc)
        return rc;
    struct dlas_train_options c;
    dlas_train_options_default(&c);
    memcpy(&c, o, o->size && o->size < sizeof c ? o->size : sizeof c);
    c.size = sizeof c;
    /* o's strings may be the trainer's own (a recipe read back through
     * dlas_trainer_options): copy before freeing */
    char *ckpt = dup_or_null(c.checkpoint_path), *csv = dup_or_null(c.csv_path);
    char *label = dup_or_null(c.label);
    free(t->ckpt_path);
    free(t->csv_path);
    free(t->label);
    t->ckpt_path = ckpt;
    t->csv_path = csv;
    t->label = label;
    c.checkpoint_path = t->ckpt_path;
    c.csv_path = t->csv_path;
    c.label = t->label;
    t->o = c;
    struct dlas_sgd_options so = {c.momentum, c.weight_decay, c.nesterov, c.decay_bn_bias};
    dlas_sgd_free(t->sgd);
    t->sgd = NULL;
    if ((rc = dlas_sgd_new(&so, &t->sgd)))
        return rc;
    dlas_rng_seed(&t->rng, c.seed ^ dlas_rng_hash("trainer"));
    t->epoch = t->step = 0;
    memset(&t->acc, 0, sizeof t->acc);
    t->n_hist = 0;
    int64_t batches = dlas_data_batches(t->data, DLAS_DATA_TRAIN);
    t->spe = c.max_steps > 0 && c.max_steps < batches ? c.max_steps : batches;
    trainer_schedule(t);
    return DLAS_OK;
}

void trainer_schedule(struct dlas_trainer *t)
{
    struct dlas_lr_schedule *s = &t->sched;
    memset(s, 0, sizeof *s);
    s->kind = t->o.schedule;
    s->lr = t->o.lr;
    s->lr_min = t->o.lr_min;
    s->gamma = t->o.gamma;
    s->steps_per_epoch = t->spe;
    s->total_steps = t->o.epochs * t->spe;
    s->warmup_steps = t->o.warmup * t->spe;
    s->step_size = t->o.step_size;
    s->n_milestones = t->o.n_milestones;
    memcpy(s->milestones, t->o.milestones, sizeof s->milestones);
}

uint64_t trainer_recipe_sig(const struct dlas_trainer *t)
{
    const struct dlas_train_options *o = &t->o;
    char buf[1024];
    int len = snprintf(buf, sizeof buf,
                       "e%lld b%lld lr%.17g m%.17g n%d wd%.17g dbb%d s%d lm%.17g g%.17g ss%lld "
                       "w%lld ls%.17g seed%llu ms%lld spe%lld",
                       (long long)o->epochs, (long long)o->batch, o->lr, o->momentum, o->nesterov,
                       o->weight_decay, o->decay_bn_bias, (int)o->schedule, o->lr_min, o->gamma,
                       (long long)o->step_size, (long long)o->warmup, o->label_smoothing,
                       (unsigned long long)o->seed, (long long)o->max_steps, (long long)t->spe);
    for (int i = 0; i < o->n_milestones && len > 0 && (size_t)len < sizeof buf; i++)
        len += snprintf(buf + len, sizeof buf - (size_t)len, " %lld", (long long)o->milestones[i]);
    return dlas_rng_hash(buf);
}

int trainer_push_history(struct dlas_trainer *t, const struct dlas_epoch_metrics *m)
{
    if (t->n_hist == t->cap_hist) {
        int64_t cap = t->cap_hist ? 2 * t->cap_hist : 16;
        struct dlas_epoch_metrics *h = realloc(t->hist, (size_t)cap * sizeof *h);
        if (!h)
            return dlas_error(DLAS_ERR_NOMEM, "train: out of memory");
        t->hist = h;
        t->cap_hist = cap;
    }
    t->hist[t->n_hist++] = *m;
    return DLAS_OK;
}

int dlas_trainer_new(struct dlas_graph *g, struct dlas_data *data,
                     const struct dlas_train_options *o, struct dlas_trainer **out)
{
    *out = NULL;
    if (!g || !data || !o)
        return dlas_error(DLAS_ERR_INVALID, "train: NULL %s",
                          !g ? "graph" : !data ? "data" : "options");
    const struct dlas_data_options *dop = dlas_data_options(data);
    if (dop->batch != o->batch)
        return dlas_error(DLAS_ERR_INVALID,
                          "train: the data pipeline delivers batches of %lld, the recipe asks "
                          "for %lld",
                          (long long)dop->batch, (long long)o->batch);
    struct dlas_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return dlas_error(DLAS_ERR_NOMEM, "train: out of memory");
    t->g = g;
    t->data = data;
    t->classes = dlas_data_info(data)->classes;
    int rc = apply_options(t, o);
    int threads = t->o.threads > 0 ? t->o.threads : omp_get_max_threads();
    if (!rc)
        rc = dlas_autograd_new(g, o->batch, threads, &t->ag);
    if (!rc) {
        int lid = dlas_autograd_logits_node(t->ag);
        const struct dlas_node *ln = dlas_graph_node(g, lid);
        int64_t m = 1;
        for (int i = 0; i < ln->out_ndim; i++)
            m *= ln->out_shape[i];
        if (m != t->classes)
            rc = dlas_error(DLAS_ERR_INVALID,
                            "train: the model's output '%s' has %lld values per sample, the "
                            "dataset %lld classes",
                            ln->name, (long long)m, (long long)t->classes);
    }
    if (!rc && t->spe < 1)
        rc = dlas_error(DLAS_ERR_INVALID, "train: the training split yields no batch");
    if (rc) {
        dlas_trainer_free(t);
        return rc;
    }
    *out = t;
    return DLAS_OK;
}

void dlas_trainer_free(struct dlas_trainer *t)
{
    if (!t)
        return;
    dlas_autograd_free(t->ag);
    dlas_autograd_free(t->tag);
    dlas_sgd_free(t->sgd);
    free(t->hist);
    free(t->hooks);
    free(t->ckpt_path);
    free(t->csv_path);
    free(t->label);
    free(t);
}

int dlas_trainer_add_hook(struct dlas_trainer *t, const struct dlas_train_hook *h)
{
    if (!t || !h)
        return dlas_error(DLAS_ERR_INVALID, "train: NULL hook");
    struct dlas_train_hook *hs = realloc(t->hooks, (size_t)(t->n_hooks + 1) * sizeof *hs);
    if (!hs)
        return dlas_error(DLAS_ERR_NOMEM, "train: out of memory");
    t->hooks = hs;
    struct dlas_train_hook *d = &hs[t->n_hooks++];
    memset(d, 0, sizeof *d);
    memcpy(d, h, h->size && h->size < sizeof *d ? h->size : sizeof *d);
    return DLAS_OK;
}

void dlas_trainer_stop(struct dlas_trainer *t)
{
    if (t)
        t->stop = 1;
}

int dlas_trainer_remove_hooks(struct dlas_trainer *t, const void *ctx)
{
    if (!t)
        return 0;
    int kept = 0, removed = 0;
    for (int i = 0; i < t->n_hooks; i++) {
        if (t->hooks[i].ctx == ctx)
            removed++;
        else
            t->hooks[kept++] = t->hooks[i];
    }
    t->n_hooks = kept;
    return removed;
}

static int64_t numel_of(const struct dlas_node *n)
{
    int64_t m = 1;
    for (int i = 0; i < n->out_ndim; i++)
        m *= n->out_shape[i];
    return m;
}

/* Attention pair i as node ids, looked up by name at every step: a
 * compressor may rewrite the student between steps. */
static int at_pair(const struct dlas_trainer *t, int i, int *s, int *k)
{
    const struct dlas_distill *d = &t->dist;
    *s = dlas_graph_find(t->g, d->student[i]);
    *k = dlas_graph_find(t->teacher, d->teacher[i]);
    const struct dlas_node *sn = dlas_graph_node(t->g, *s), *kn = dlas_graph_node(t->teacher, *k);
    if (!sn || !kn || sn->out_ndim != 3 || kn->out_ndim != 3 ||
        sn->out_shape[1] != kn->out_shape[1] || sn->out_shape[2] != kn->out_shape[2])
        return dlas_error(DLAS_ERR_INVALID,
                          "train: attention pair %d: student '%s' and teacher '%s' must be "
                          "feature maps of the same height and width",
                          i, d->student[i], d->teacher[i]);
    return DLAS_OK;
}

int dlas_trainer_set_teacher(struct dlas_trainer *t, const struct dlas_graph *teacher,
                             const struct dlas_distill *d)
{
    if (!t)
        return dlas_error(DLAS_ERR_INVALID, "train: NULL trainer");
    dlas_autograd_free(t->tag);
    t->tag = NULL;
    t->teacher = NULL;
    if (!teacher)
        return DLAS_OK;
    if (!d || d->n_pairs < 0 || d->n_pairs > DLAS_MAX_AT_PAIRS || !(d->temperature > 0) ||
        !(d->alpha >= 0 && d->alpha <= 1) || !(d->beta >= 0))
        return dlas_error(DLAS_ERR_INVALID,
                          "train: distillation needs 0 <= alpha <= 1, temperature > 0, beta >= 0 "
                          "and at most %d attention pairs",
                          DLAS_MAX_AT_PAIRS);
    /* The teacher runs forward only, in eval mode: it is never written. */
    struct dlas_graph *tg = (struct dlas_graph *)teacher;
    int rc = dlas_autograd_new(tg, t->o.batch, dlas_autograd_threads(t->ag), &t->tag);
    if (rc)
        return dlas_error_context("train: teacher");
    int tl = dlas_autograd_logits_node(t->tag);
    if (numel_of(dlas_graph_node(tg, tl)) != t->classes) {
        dlas_autograd_free(t->tag);
        t->tag = NULL;
        return dlas_error(DLAS_ERR_INVALID, "train: the teacher's output has %lld values, not %lld",
                          (long long)numel_of(dlas_graph_node(tg, tl)), (long long)t->classes);
    }
    t->dist = *d;
    for (int i = 0; i < d->n_pairs; i++) {
        snprintf(t->at_names[2 * i], DLAS_NAME_MAX, "%s", d->student[i] ? d->student[i] : "");
        snprintf(t->at_names[2 * i + 1], DLAS_NAME_MAX, "%s", d->teacher[i] ? d->teacher[i] : "");
        t->dist.student[i] = t->at_names[2 * i];
        t->dist.teacher[i] = t->at_names[2 * i + 1];
    }
    t->teacher = tg;
    int s, k;
    for (int i = 0; i < d->n_pairs; i++)
        if ((rc = at_pair(t, i, &s, &k))) {
            dlas_trainer_set_teacher(t, NULL, NULL);
            return rc;
        }
    return DLAS_OK;
}

int dlas_trainer_reset(struct dlas_trainer *t, const struct dlas_train_options *o)
{
    if (!t || !o)
        return dlas_error(DLAS_ERR_INVALID, "train: NULL %s", t ? "options" : "trainer");
    if (o->batch != t->o.batch)
        return dlas_error(DLAS_ERR_INVALID,
                          "train: a new recipe must keep the batch size (%lld) of the data "
                          "pipeline",
                          (long long)t->o.batch);
    return apply_options(t, o);
}

struct dlas_autograd *dlas_trainer_autograd(struct dlas_trainer *t) { return t ? t->ag : NULL; }
struct dlas_graph *dlas_trainer_graph(struct dlas_trainer *t) { return t ? t->g : NULL; }
struct dlas_data *dlas_trainer_data(struct dlas_trainer *t) { return t ? t->data : NULL; }
const struct dlas_train_options *dlas_trainer_options(const struct dlas_trainer *t)
{
    return t ? &t->o : NULL;
}
int64_t dlas_trainer_epoch(const struct dlas_trainer *t) { return t ? t->epoch : 0; }
int64_t dlas_trainer_step(const struct dlas_trainer *t) { return t ? t->step : 0; }

const struct dlas_epoch_metrics *dlas_trainer_history(const struct dlas_trainer *t, int64_t *n)
{
    if (n)
        *n = t ? t->n_hist : 0;
    return t ? t->hist : NULL;
}

/* The losses of one forward, their gradients put into the autograd. */
static int losses(struct dlas_trainer *t, const struct dlas_batch *b, double *loss)
{
    struct dlas_autograd *a = t->ag;
    const int lid = dlas_autograd_logits_node(a);
    const float *logits = dlas_autograd_act(a, lid);
    float *dl = dlas_autograd_grad(a, lid);
    if (!dl)
        return dlas_error_context("train");
    if (!t->teacher) {
        *loss = dlas_loss_xent(logits, b->labels, b->n, t->classes, t->o.label_smoothing, dl, 1.0);
        return DLAS_OK;
    }
    int rc = dlas_autograd_forward(t->tag, b->n, dlas_f32(&b->images), DLAS_AG_NO_GRAD);
    if (rc)
        return dlas_error_context("train: teacher forward");
    const struct dlas_distill *d = &t->dist;
    const float *tl = dlas_autograd_act(t->tag, dlas_autograd_logits_node(t->tag));
    double l = 0.0;
    if (d->alpha < 1.0)
        l += (1.0 - d->alpha) * dlas_loss_xent(logits, b->labels, b->n, t->classes,
                                               t->o.label_smoothing, dl, 1.0 - d->alpha);
    if (d->alpha > 0.0)
        l += d->alpha * dlas_loss_kd(logits, tl, b->n, t->classes, d->temperature, dl, d->alpha);
    for (int i = 0; i < d->n_pairs && d->beta > 0; i++) {
        int si, ki;
        if ((rc = at_pair(t, i, &si, &ki)))
            return rc;
        const struct dlas_node *sn = dlas_graph_node(t->g, si);
        const struct dlas_node *kn = dlas_graph_node(t->teacher, ki);
        float *ds = dlas_autograd_grad(a, si);
        if (!ds)
            return dlas_error_context("train: attention pair %d", i);
        const double w = d->beta / 2.0;
        l += w * dlas_loss_at(dlas_autograd_act(a, si), sn->out_shape[0],
                              dlas_autograd_act(t->tag, ki), kn->out_shape[0], b->n,
                              sn->out_shape[1] * sn->out_shape[2], ds, w);
    }
    *loss = l;
    return DLAS_OK;
}

static int train_step(struct dlas_trainer *t, const struct dlas_batch *b, double *loss,
                      int64_t *correct)
{
    struct dlas_autograd *a = t->ag;
    struct dlas_train_step s = {t->epoch, t->step, t->acc.steps, b->n,
                                dlas_lr_at(&t->sched, t->step), 0.0, dlas_f32(&b->images),
                                b->labels};
    dlas_autograd_set_seed(a, dlas_rng_u64(&t->rng));
    int rc = dlas_autograd_forward(a, b->n, dlas_f32(&b->images), DLAS_AG_TRAIN);
    if (rc)
        return rc;
    if ((rc = losses(t, b, &s.loss)))
        return rc;
    const int lid = dlas_autograd_logits_node(a);
    dlas_topk_hits(dlas_autograd_act(a, lid), b->labels, b->n, t->classes, correct, NULL);
    for (int i = 0; i < t->n_hooks; i++)
        if (t->hooks[i].extra_loss && (rc = t->hooks[i].extra_loss(t->hooks[i].ctx, t, &s, &s.loss)))
            return rc;
    if (!isfinite(s.loss))
        return dlas_error(DLAS_ERR_INVALID,
                          "train: the loss is %g at epoch %lld, step %lld (diverged: try a lower "
                          "learning rate)",
                          s.loss, (long long)t->epoch + 1, (long long)t->step);
    dlas_autograd_zero_grad(a);
    if ((rc = dlas_autograd_backward(a)))
        return rc;
    for (int i = 0; i < t->n_hooks; i++)
        if (t->hooks[i].after_backward && (rc = t->hooks[i].after_backward(t->hooks[i].ctx, t, &s)))
            return rc;
    if ((rc = dlas_sgd_step(t->sgd, a, s.lr)))
        return rc;
    for (int i = 0; i < t->n_hooks; i++)
        if (t->hooks[i].after_step && (rc = t->hooks[i].after_step(t->hooks[i].ctx, t, &s)))
            return rc;
    *loss = s.loss;
    return DLAS_OK;
}

static int file_exists(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0;
}

int dlas_trainer_evaluate(struct dlas_trainer *t, enum dlas_data_split s, struct dlas_eval *out)
{
    if (!t)
        return dlas_error(DLAS_ERR_INVALID, "train: NULL trainer");
    return dlas_evaluate(t->ag, t->data, s, out);
}

static enum dlas_data_split eval_split(const struct dlas_trainer *t)
{
    if (t->o.eval_split >= 0)
        return (enum dlas_data_split)t->o.eval_split;
    return dlas_data_size(t->data, DLAS_DATA_VAL) > 0 ? DLAS_DATA_VAL : DLAS_DATA_TEST;
}

/* Close the epoch: metrics, evaluation, history, hooks, CSV, checkpoint. */
static int end_epoch(struct dlas_trainer *t, double lr)
{
    struct dlas_epoch_metrics m;
    memset(&m, 0, sizeof m);
    const struct epoch_acc *e = &t->acc;
    m.epoch = t->epoch + 1;
    m.steps = e->steps;
    m.samples = e->samples;
    m.lr = lr;
    m.train_loss = e->samples ? e->loss_sum / (double)e->samples : 0.0;
    m.train_top1 = e->samples ? (double)e->correct / (double)e->samples : 0.0;
    m.seconds = e->seconds;
    m.images_per_s = e->seconds > 0 ? (double)e->samples / e->seconds : 0.0;
    int last = m.epoch == t->o.epochs;
    int rc = DLAS_OK;
    if (last || (t->o.eval_every > 0 && m.epoch % t->o.eval_every == 0)) {
        struct dlas_eval ev;
        enum dlas_data_split s = eval_split(t);
        if (dlas_data_size(t->data, s) > 0) {
            if ((rc = dlas_evaluate(t->ag, t->data, s, &ev)))
                return dlas_error_context("train: evaluating epoch %lld", (long long)m.epoch);
            m.evaluated = 1;
            m.eval_split = (int)s;
            m.eval_loss = ev.loss;
            m.eval_top1 = ev.top1;
            m.eval_top5 = ev.top5;
        }
    }
    if ((rc = trainer_push_history(t, &m)))
        return rc;
    t->epoch++;
    memset(&t->acc, 0, sizeof t->acc);
    for (int i = 0; i < t->n_hooks; i++)
        if (t->hooks[i].end_epoch && (rc = t->hooks[i].end_epoch(t->hooks[i].ctx, t, &m)))
            return rc;
    if (t->csv_path && (rc = tlog_write_csv(t->csv_path, t->hist, t->n_hist)))
        return dlas_error_context("train: metrics CSV");
    if (t->ckpt_path && t->o.checkpoint_every > 0 &&
        (last || t->epoch % t->o.checkpoint_every == 0))
        rc = dlas_trainer_save(t, t->ckpt_path);
    return rc;
}

int dlas_trainer_fit(struct dlas_trainer *t)
{
    if (!t)
        return dlas_error(DLAS_ERR_INVALID, "train: NULL trainer");
    int rc = DLAS_OK;
    if (t->ckpt_path && file_exists(t->ckpt_path)) {
        if ((rc = dlas_trainer_load(t, t->ckpt_path)))
            return rc;
        dlas_log(DLAS_LOG_INFO, "train: resuming %s at epoch %lld, step %lld", t->ckpt_path,
                 (long long)t->epoch + 1, (long long)t->step);
    }
    struct tlog lg;
    tlog_start(&lg, t->o.progress, t->o.log_interval, t->label, t->o.epochs, t->spe);
    const double session0 = dlas_now();
    const int64_t step0 = t->step;
    while (!rc && t->epoch < t->o.epochs) {
        struct dlas_data_iter *it = NULL;
        if ((rc = dlas_data_iter_new(t->data, DLAS_DATA_TRAIN, t->epoch, 1, &it)))
            break;
        const struct dlas_batch *b = NULL;
        /* A resumed epoch: the batches already trained on come again in the
         * same order (a function of seed and epoch); pass over them. */
        for (int64_t k = 0; !rc && k < t->acc.steps; k++)
            rc = dlas_data_iter_next(it, &b);
        double lr = dlas_lr_at(&t->sched, t->step > 0 ? t->step - 1 : 0);
        while (!rc && t->acc.steps < t->spe) {
            double t0 = dlas_now();
            if ((rc = dlas_data_iter_next(it, &b)) || !b)
                break;
            double loss = 0.0;
            int64_t correct = 0;
            lr = dlas_lr_at(&t->sched, t->step);
            if ((rc = train_step(t, b, &loss, &correct)))
                break;
            t->step++;
            t->acc.steps++;
            t->acc.loss_sum += loss * (double)b->n;
            t->acc.correct += correct;
            t->acc.samples += b->n;
            t->acc.seconds += dlas_now() - t0;
            double el = dlas_now() - session0;
            int64_t done = t->step - step0, left = t->o.epochs * t->spe - t->step;
            tlog_step(&lg, t->epoch, t->acc.steps - 1, t->acc.loss_sum / (double)t->acc.samples,
                      (double)t->acc.correct / (double)t->acc.samples,
                      t->acc.seconds > 0 ? (double)t->acc.samples / t->acc.seconds : 0.0,
                      done ? el / (double)done * (double)left : -1.0);
            if (t->ckpt_path && t->o.checkpoint_steps > 0 &&
                t->step % t->o.checkpoint_steps == 0 && t->acc.steps < t->spe)
                rc = dlas_trainer_save(t, t->ckpt_path);
            if (t->stop)
                break;
        }
        dlas_data_iter_free(it);
        if (t->stop) { /* asked to stop: the epoch stays unfinished */
            t->stop = 0;
            break;
        }
        if (!rc && t->acc.steps < t->spe)
            rc = dlas_error(DLAS_ERR_INTERNAL, "train: epoch %lld ended after %lld of %lld steps",
                            (long long)t->epoch + 1, (long long)t->acc.steps,
                            (long long)t->spe);
        if (!rc && !(rc = end_epoch(t, lr)))
            tlog_epoch(&lg, &t->hist[t->n_hist - 1]);
    }
    tlog_end(&lg);
    return rc;
}
