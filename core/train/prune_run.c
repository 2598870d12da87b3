/* The structured pruning loop shared by every channel-pruning criterion (see
 * <dlas/prune.h>): train a little, score, mask the lowest, measure the cost
 * against the target, repeat; then remove what was masked, evaluate and
 * report. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dlas/checkpoint.h>
#include <dlas/log.h>
#include <dlas/prune.h>
#include <dlas/status.h>
#include <dlas/train.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct run {
    struct dlas_compress_ctx *ctx;
    const struct dlas_pruner *p;
    const struct dlas_prune_options *o;
    struct dlas_prune_units units;
    struct dlas_prune_wholes wholes;
    double *scores;     /* per unit: the pruner's */
    double *whole_score; /* per whole: the mean of its parts' */
    uint8_t *refused;   /* per whole: surgery refused it, never tried again */
    int64_t *live;      /* per node: live output channels of sources */
    /* per group of a whole's first part: MACs one whole of one part (saves)
     * or of several (saves_many) saves (beta > 0) */
    double *saves, *saves_many;
    struct dlas_prune_target target;
    int64_t prune_steps, removed, train_steps;
    int met, rc;
    FILE *hist;
    double t0;
};

static int64_t n_parts(const struct run *r, int64_t k)
{
    return r->wholes.first[k + 1] - r->wholes.first[k];
}

static const struct dlas_prune_unit *part(const struct run *r, int64_t k, int64_t p)
{
    return &r->units.u[r->wholes.part[r->wholes.first[k] + p]];
}

/* How many parts of whole k have `source` among their sources. */
static int64_t parts_from(const struct run *r, int64_t k, int source)
{
    int64_t n = 0;
    for (int64_t p = 0; p < n_parts(r, k); p++) {
        const struct dlas_prune_unit *u = part(r, k, p);
        for (int a = 0; a < u->n_acts; a++)
            n += u->sources[a] == source;
    }
    return n;
}

/* A whole may go when surgery has not refused it, it is live and no source
 * of a part would be left without channels (surgery refuses the rest, such
 * as a group left with none). */
static int can_prune(const struct run *r, int64_t k)
{
    if (r->refused[k] || !dlas_prune_whole_live(r->ctx->graph, &r->units, &r->wholes, k))
        return 0;
    for (int64_t p = 0; p < n_parts(r, k); p++) {
        const struct dlas_prune_unit *u = part(r, k, p);
        for (int a = 0; a < u->n_acts; a++) {
            const int s = u->sources[a];
            if (r->live[s] <= (n_parts(r, k) == 1 ? 1 : parts_from(r, k, s)))
                return 0;
        }
    }
    return 1;
}

/* MACs saved by removing one whole of one part and one of several from each
 * group (of their first parts), on copies. */
static int measure_saves(struct run *r)
{
    struct dlas_graph_stats now;
    int rc = dlas_prune_cost(r->ctx->graph, &now, NULL);
    int64_t done_one = -1, done_many = -1;
    for (int64_t k = 0; !rc && k < r->wholes.n; k++) {
        const int group = part(r, k, 0)->group, many = n_parts(r, k) > 1;
        if (group == (many ? done_many : done_one) || !can_prune(r, k))
            continue;
        struct dlas_graph *c = dlas_graph_clone(r->ctx->graph);
        if (!c)
            return dlas_error(DLAS_ERR_NOMEM, "out of memory");
        struct dlas_graph_stats after;
        rc = dlas_prune_mask_whole(c, &r->units, &r->wholes, k);
        if (!rc)
            rc = dlas_prune_cost(c, &after, NULL);
        dlas_graph_free(c);
        if (rc == DLAS_ERR_INVALID || rc == DLAS_ERR_UNSUPPORTED) {
            dlas_clear_error(); /* refused: measured on another of the group */
            rc = DLAS_OK;
            continue;
        }
        if (!rc)
            (many ? r->saves_many : r->saves)[group] = (double)(now.macs - after.macs);
        *(many ? &done_many : &done_one) = group;
    }
    return rc;
}

static int mask_whole(struct run *r, int64_t k)
{
    int rc = dlas_prune_mask_whole(r->ctx->graph, &r->units, &r->wholes, k);
    for (int64_t p = 0; !rc && p < n_parts(r, k); p++) {
        const struct dlas_prune_unit *u = part(r, k, p);
        for (int a = 0; a < u->n_acts; a++)
            r->live[u->sources[a]]--;
    }
    return rc;
}

/* Mask whole k, or mark it refused when surgery refuses it (e.g. a tied
 * tensor's last channel): never tried again. *masked = whether it went. */
static int try_mask(struct run *r, int64_t k, int *masked)
{
    *masked = 0;
    int rc = mask_whole(r, k);
    if (rc == DLAS_ERR_INVALID || rc == DLAS_ERR_UNSUPPORTED) {
        const struct dlas_prune_unit *u = part(r, k, 0);
        dlas_log(DLAS_LOG_DEBUG, "%s: %s channel %lld%s cannot go: %s", r->p->name,
                 dlas_graph_node(r->ctx->graph, u->node)->name, (long long)u->channel,
                 n_parts(r, k) > 1 ? " and the channels of its other groups" : "",
                 dlas_last_error());
        dlas_clear_error();
        r->refused[k] = 1;
        return DLAS_OK;
    }
    *masked = !rc;
    return rc;
}

/* One history row per channel of whole k. */
static void log_whole(struct run *r, int64_t k)
{
    for (int64_t p = 0; r->hist && p < n_parts(r, k); p++) {
        const struct dlas_prune_unit *u = part(r, k, p);
        fprintf(r->hist, "%lld,%lld,%s,%lld,%.9g\n", (long long)r->prune_steps + 1,
                (long long)r->train_steps, dlas_graph_node(r->ctx->graph, u->node)->name,
                (long long)u->channel, r->whole_score[k]);
    }
}

/* Mask the lowest-scoring prunable wholes until n channels or more went;
 * *done = how many channels. */
static int prune_lowest(struct run *r, int64_t n, int64_t *done)
{
    *done = 0;
    const double beta = r->o->beta;
    while (*done < n) {
        int64_t best = -1;
        double best_s = 0;
        for (int64_t k = 0; k < r->wholes.n; k++) {
            if (!can_prune(r, k))
                continue;
            const int group = part(r, k, 0)->group;
            const double saves = n_parts(r, k) > 1 ? r->saves_many[group] / (double)n_parts(r, k)
                                                   : r->saves[group];
            double s = r->whole_score[k] - (beta > 0 ? beta * saves : 0.0);
            if (best < 0 || s < best_s) {
                best = k;
                best_s = s;
            }
        }
        if (best < 0)
            return DLAS_OK; /* nothing left that may go */
        int masked, rc = try_mask(r, best, &masked);
        if (rc)
            return rc;
        if (masked) {
            log_whole(r, best);
            *done += n_parts(r, best);
        }
    }
    return DLAS_OK;
}

static int score_all(struct run *r)
{
    for (int64_t i = 0; i < r->units.n; i++)
        r->scores[i] = 0.0;
    int rc = r->p->score(r->p->state, r->ctx, &r->units, r->scores);
    if (rc)
        return dlas_error_context("%s: scoring", r->p->name);
    for (int64_t k = 0; k < r->wholes.n; k++)
        r->whole_score[k] = dlas_prune_whole_score(&r->wholes, r->scores, k);
    if (r->o->beta > 0 && (rc = measure_saves(r)))
        return rc;
    return DLAS_OK;
}

/* One pruning step: score, mask, measure. */
static int prune_step(struct run *r)
{
    int rc = score_all(r);
    int64_t done = 0;
    if (!rc)
        rc = prune_lowest(r, r->o->per_step, &done);
    if (rc)
        return rc;
    if (done == 0)
        return dlas_error(DLAS_ERR_INVALID,
                          "%s: nothing left to prune at %s %.6g (goal %.6g) after %lld channels",
                          r->p->name, dlas_prune_metric_name(r->target.metric), r->target.now,
                          r->target.goal, (long long)r->removed);
    r->removed += done;
    r->prune_steps++;
    if (r->p->after_prune && (rc = r->p->after_prune(r->p->state, r->ctx)))
        return rc;
    if ((rc = dlas_prune_target_measure(&r->target, r->ctx, &r->met)))
        return rc;
    char c[64], gl[64];
    dlas_prune_cost_format(r->target.metric, r->target.now, c, sizeof c);
    dlas_prune_cost_format(r->target.metric, r->target.goal, gl, sizeof gl);
    dlas_log(DLAS_LOG_INFO, "%s: step %lld: %lld channels removed, %s (goal %s)%s%s", r->p->name,
             (long long)r->prune_steps, (long long)r->removed, c, gl,
             r->target.metric == DLAS_PRUNE_LATENCY ? " on " : "",
             r->target.metric == DLAS_PRUNE_LATENCY ? r->target.last.binding : "");
    if (r->hist)
        fprintf(r->hist, "%lld,%lld,,,,%.9g\n", (long long)r->prune_steps,
                (long long)r->train_steps, r->target.now);
    return DLAS_OK;
}

/* The trainer's hook: count steps, prune every `interval`, stop at the goal. */
static int after_step(void *ctx, struct dlas_trainer *t, const struct dlas_train_step *s)
{
    (void)s;
    struct run *r = ctx;
    r->train_steps++;
    if (r->train_steps % r->o->interval)
        return DLAS_OK;
    int rc = prune_step(r);
    if (rc)
        return rc;
    if (r->met || (r->o->max_prune_steps > 0 && r->prune_steps >= r->o->max_prune_steps))
        dlas_trainer_stop(t);
    return DLAS_OK;
}

static int prune_while_training(struct run *r)
{
    struct dlas_trainer *t = r->ctx->trainer;
    int64_t spe = dlas_data_batches(dlas_trainer_data(t), DLAS_DATA_TRAIN);
    if (spe < 1)
        return dlas_error(DLAS_ERR_INVALID, "%s: no training batches", r->p->name);
    /* enough epochs to prune every unit; the hook stops at the goal */
    int64_t most = (r->units.n / r->o->per_step + 1) * r->o->interval;
    if (r->o->max_prune_steps > 0 && r->o->max_prune_steps * r->o->interval < most)
        most = r->o->max_prune_steps * r->o->interval;
    int rc = dlas_trainer_fit_steps(t, r->p->name, r->o->lr, most, after_step, r);
    if (!rc && !r->met && !(r->o->max_prune_steps > 0 && r->prune_steps >= r->o->max_prune_steps))
        rc = dlas_error(DLAS_ERR_INTERNAL, "%s: training ended before the goal", r->p->name);
    return rc;
}

/* Round every plain layer's live channels down to a multiple of round_to
 * (a layer whose channels are tied, or go a whole of several at a time,
 * is left as it is). */
static int round_layers(struct run *r)
{
    const int q = r->o->round_to;
    struct dlas_graph *g = r->ctx->graph;
    int rc = score_all(r);
    for (int id = 0; !rc && id < dlas_graph_n_nodes(g); id++) {
        int64_t live = r->live[id];
        if (live <= q || live % q == 0)
            continue;
        int64_t extra = live % q;
        while (!rc && extra > 0) {
            int64_t best = -1;
            for (int64_t k = 0; k < r->wholes.n; k++) {
                const struct dlas_prune_unit *u = part(r, k, 0);
                if (n_parts(r, k) == 1 && u->node == id && !u->tied && can_prune(r, k) &&
                    (best < 0 || r->whole_score[k] < r->whole_score[best]))
                    best = k;
            }
            if (best < 0)
                break;
            int masked;
            if (!(rc = try_mask(r, best, &masked)) && masked) {
                r->removed++;
                extra--;
            }
        }
    }
    return rc;
}

static int report(struct run *r, const char *key, double v)
{
    char k[160];
    snprintf(k, sizeof k, "%s.%s", r->p->name, key);
    return r->ctx->report ? dlas_report_num(r->ctx->report, k, v) : DLAS_OK;
}

static int report_s(struct run *r, const char *key, const char *v)
{
    char k[160];
    snprintf(k, sizeof k, "%s.%s", r->p->name, key);
    return r->ctx->report ? dlas_report_str(r->ctx->report, k, v) : DLAS_OK;
}

static int evaluate(struct run *r, const char *key)
{
    if (!r->o->evaluate || !r->ctx->trainer)
        return DLAS_OK;
    struct dlas_eval e;
    int rc = dlas_trainer_evaluate(r->ctx->trainer, DLAS_DATA_TEST, &e);
    return rc ? rc : report(r, key, e.top1);
}

/* The pruned network's tensors, and its architecture: per conv and linear
 * an int32 tensor "prune.arch.<layer>" = {channels kept, channels before},
 * so that it can be rebuilt (and trained from scratch). Loading the weights
 * into a graph of that shape ignores them with DLAS_CKPT_ALLOW_UNEXPECTED. */
static int save_pruned(const struct dlas_graph *g, const struct dlas_graph *before,
                       const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.weights", path);
    int rc = dlas_checkpoint_save_graph(g, tmp);
    struct dlas_ckpt *in = NULL;
    struct dlas_ckpt_writer *w = NULL;
    void *buf = NULL;
    if (!rc)
        rc = dlas_ckpt_open(tmp, &in);
    if (!rc)
        rc = dlas_ckpt_writer_open(path, &w);
    for (size_t i = 0; !rc; i++) {
        const struct dlas_ckpt_entry *e = dlas_ckpt_entry_at(in, i);
        if (!e)
            break;
        void *b = realloc(buf, e->nbytes ? (size_t)e->nbytes : 1);
        if (!b) {
            rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
            break;
        }
        buf = b;
        if (!(rc = dlas_ckpt_read(in, e, buf, (size_t)e->nbytes)))
            rc = dlas_ckpt_writer_add(w, e->name, e->dtype, e->ndim, e->dims, buf);
    }
    for (int i = 0; !rc && i < dlas_graph_n_nodes(g); i++) {
        const struct dlas_node *n = dlas_graph_node(g, i);
        if (n->op != DLAS_OP_CONV2D && n->op != DLAS_OP_LINEAR)
            continue;
        int j = dlas_graph_find(before, n->name);
        int32_t v[2] = {(int32_t)n->out_shape[0],
                        j >= 0 ? (int32_t)dlas_graph_node(before, j)->out_shape[0] : -1};
        int64_t dims[1] = {2};
        char name[DLAS_NAME_MAX + 16];
        snprintf(name, sizeof name, "prune.arch.%s", n->name);
        rc = dlas_ckpt_writer_add(w, name, DLAS_I32, 1, dims, v);
    }
    if (w) {
        int rc2 = dlas_ckpt_writer_commit(w);
        if (!rc)
            rc = rc2;
    }
    free(buf);
    if (in)
        dlas_ckpt_close(in);
    remove(tmp);
    return rc ? dlas_error_context("saving the pruned network to '%s'", path) : DLAS_OK;
}

static int check_options(const struct dlas_compress_ctx *ctx, const struct dlas_pruner *p,
                         const struct dlas_prune_options *o)
{
    if (!ctx || !ctx->graph || !p || !p->score || !p->name || !o || o->size < sizeof *o)
        return dlas_error(DLAS_ERR_INVALID, "prune: needs a context, a pruner and options");
    if (o->per_step < 1)
        return dlas_error(DLAS_ERR_INVALID, "%s: channels per step must be >= 1", p->name);
    if (o->interval > 0 && (ctx->size < offsetof(struct dlas_compress_ctx, trainer) +
                                            sizeof ctx->trainer || !ctx->trainer))
        return dlas_error(DLAS_ERR_INVALID,
                          "%s: trains between pruning steps, but the experiment does not train "
                          "(set train.epochs > 0, or prune_every = 0)",
                          p->name);
    if (o->interval < 0 || o->beta < 0 || o->round_to < 0)
        return dlas_error(DLAS_ERR_INVALID, "%s: negative interval, beta or round_to", p->name);
    return DLAS_OK;
}

int dlas_prune_run(struct dlas_compress_ctx *ctx, const struct dlas_pruner *p,
                   const struct dlas_prune_options *o)
{
    int rc = check_options(ctx, p, o);
    if (rc)
        return rc;
    struct run r;
    memset(&r, 0, sizeof r);
    r.ctx = ctx;
    r.p = p;
    r.o = o;
    r.t0 = now_s();
    struct dlas_graph *g = ctx->graph;
    struct dlas_graph *before = dlas_graph_clone(g);
    struct dlas_graph_stats s0, s1;
    int began = 0;
    if (!before)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    if ((rc = dlas_prune_cost(g, &s0, NULL)))
        goto out;
    if ((rc = dlas_prune_units_find_wholes(g, o->scope, o->include_linear, &r.units, &r.wholes)))
        goto out;
    const int nn = dlas_graph_n_nodes(g);
    r.scores = calloc((size_t)(r.units.n ? r.units.n : 1), sizeof *r.scores);
    r.whole_score = calloc((size_t)(r.wholes.n ? r.wholes.n : 1), sizeof *r.whole_score);
    r.refused = calloc((size_t)(r.wholes.n ? r.wholes.n : 1), 1);
    r.live = calloc((size_t)nn, sizeof *r.live);
    r.saves = calloc((size_t)nn + 1, sizeof *r.saves);
    r.saves_many = calloc((size_t)nn + 1, sizeof *r.saves_many);
    if (!r.scores || !r.whole_score || !r.refused || !r.live || !r.saves || !r.saves_many) {
        rc = dlas_error(DLAS_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < nn; i++)
        r.live[i] = dlas_prune_live_channels(g, i);
    if (o->history_csv && o->history_csv[0]) {
        if (!(r.hist = fopen(o->history_csv, "w"))) {
            rc = dlas_error(DLAS_ERR_IO, "%s: cannot write history_csv '%s'", p->name,
                            o->history_csv);
            goto out;
        }
        fprintf(r.hist, "prune_step,train_step,layer,channel,score,cost\n");
    }
    if ((rc = evaluate(&r, "top1_before")))
        goto out;
    if ((rc = dlas_prune_target_init(&r.target, ctx, o->metric, o->ratio, o->absolute,
                                     o->latency_flags)))
        goto out;
    r.met = r.target.start <= r.target.goal;
    {
        char c[64], gl[64];
        dlas_prune_cost_format(o->metric, r.target.start, c, sizeof c);
        dlas_prune_cost_format(o->metric, r.target.goal, gl, sizeof gl);
        dlas_log(DLAS_LOG_INFO, "%s: %lld prunable channels (%s scope); %s now, goal %s",
                 p->name, (long long)r.units.n,
                 o->scope == DLAS_PRUNE_ALL ? "all" : "internal", c, gl);
    }
    if (p->begin && (rc = p->begin(p->state, ctx, &r.units)))
        goto out;
    began = 1;
    if (!r.met && o->interval > 0)
        rc = prune_while_training(&r);
    while (!rc && !r.met && o->interval == 0 &&
           !(o->max_prune_steps > 0 && r.prune_steps >= o->max_prune_steps))
        rc = prune_step(&r);
    if (!rc && o->round_to > 1)
        rc = round_layers(&r);
out:
    if (began && p->end)
        p->end(p->state, ctx);
    if (r.hist)
        fclose(r.hist);
    /* the network as it will run: masked channels gone */
    int64_t gone = 0;
    if (!rc && (rc = dlas_graph_remove_masked_channels(g, &gone)))
        dlas_error_context("%s", p->name);
    if (!rc)
        rc = dlas_graph_stats(g, &s1);
    if (!rc)
        rc = evaluate(&r, "top1_after");
    /* cost_after is the measurement that met the goal (a latency measured
     * again would differ by the timing noise alone) */
    if (!rc) {
        char *arch = dlas_prune_arch_string(g, before);
        double ms = o->metric == DLAS_PRUNE_LATENCY ? 1e3 : 1.0;
        (void)((rc = report(&r, "params_before", (double)s0.params)) ||
            (rc = report(&r, "params_after", (double)s1.params)) ||
            (rc = report(&r, "nonzero_before", (double)s0.nonzero)) ||
            (rc = report(&r, "nonzero_after", (double)s1.nonzero)) ||
            (rc = report(&r, "macs_before", (double)s0.macs)) ||
            (rc = report(&r, "macs_after", (double)s1.macs)) ||
            (rc = report_s(&r, "target", dlas_prune_metric_name(o->metric))) ||
            (rc = report(&r, "goal", r.target.goal * ms)) ||
            (rc = report(&r, "cost_before", r.target.start * ms)) ||
            (rc = report(&r, "cost_after", r.target.now * ms)) ||
            (rc = report(&r, "channels_removed", (double)gone)) ||
            (rc = report(&r, "prune_steps", (double)r.prune_steps)) ||
            (rc = report(&r, "train_steps", (double)r.train_steps)) ||
            (rc = report(&r, "seconds", now_s() - r.t0)) ||
            (rc = report_s(&r, "arch", arch ? arch : "")));
        if (!rc && o->metric == DLAS_PRUNE_LATENCY)
            rc = report_s(&r, "latency_binding", r.target.last.binding);
        if (!rc && o->round_to > 1) /* say that channel counts were rounded */
            rc = report(&r, "round_to", (double)o->round_to);
        if (!rc && o->save_path && o->save_path[0] && !(rc = save_pruned(g, before, o->save_path)))
            rc = report_s(&r, "saved", o->save_path);
        free(arch);
        dlas_log(DLAS_LOG_INFO, "%s: %lld channels removed in %lld steps; params %lld -> %lld, "
                 "MACs %lld -> %lld", p->name, (long long)gone, (long long)r.prune_steps,
                 (long long)s0.params, (long long)s1.params, (long long)s0.macs,
                 (long long)s1.macs);
    }
    dlas_prune_units_free(&r.units);
    dlas_prune_wholes_free(&r.wholes);
    free(r.scores);
    free(r.whole_score);
    free(r.refused);
    free(r.live);
    free(r.saves);
    free(r.saves_many);
    dlas_graph_free(before);
    return rc;
}
