/* What channel masking costs a pruner, on a zoo model: the model is built,
 * then one channel at a time is masked (dlas_graph_mask_channels, as the
 * core's pruning loop does every pruning step), cycling over the groups of
 * tied channels so that every layer soon has some masked; each call is
 * timed, and every `--every` calls so are the two things a pruning step
 * does besides: the cost of the network with the masked channels removed
 * (dlas_prune_cost: a copy, then dlas_graph_remove_masked_channels) and
 * the removal itself on a copy. One CSV row per checkpoint; pandas reads it
 * as is.
 *
 *   bench_mask --model mobilenet --param version=2 --input 3x32x32 --calls 400
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/dlas.h>
#include <dlas/prune.h>
#include <dlas/surgery.h>

#include "bench_common.h"

#define MAX_PARAMS 16

struct opts {
    const char *model;
    const char *params[MAX_PARAMS];
    int n_params, c, h, w, classes, calls, every;
};

static int usage(FILE *f, int rc)
{
    fprintf(f,
            "usage: bench_mask --model NAME [--param key=value ...] [--input CxHxW]\n"
            "                  [--classes N] [--calls N] [--every K]\n\n"
            "Times channel masking on a zoo model, one channel a call, cycling over\n"
            "the groups of tied channels (dlas_graph_channel_groups), and every K\n"
            "calls the pruned cost (dlas_prune_cost) and the removal of the masked\n"
            "channels on a copy. Prints CSV: masked, the median and max ms of the\n"
            "last K mask calls, prune_cost_ms, remove_ms.\n\n"
            "  --input CxHxW  the input (3x32x32)     --classes N  outputs (10)\n"
            "  --calls N      mask calls (400)         --every K    calls a row (50)\n\n"
            "e.g. bench_mask --model mobilenet --param version=2 --calls 400\n");
    return rc;
}

static int parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.c = 3, .h = 32, .w = 32, .classes = 10, .calls = 400, .every = 50};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            exit(usage(stdout, 0));
        if (!v)
            return usage(stderr, 2);
        i++;
        if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--param") && o->n_params < MAX_PARAMS && strchr(v, '='))
            o->params[o->n_params++] = v;
        else if (!strcmp(a, "--input") && sscanf(v, "%dx%dx%d", &o->c, &o->h, &o->w) == 3)
            ;
        else if (!strcmp(a, "--classes") && (o->classes = atoi(v)) > 0)
            ;
        else if (!strcmp(a, "--calls") && (o->calls = atoi(v)) > 0)
            ;
        else if (!strcmp(a, "--every") && (o->every = atoi(v)) > 0)
            ;
        else
            return usage(stderr, 2);
    }
    return o->model && o->c > 0 && o->h > 0 && o->w > 0 ? 0 : usage(stderr, 2);
}

static int die(const char *what)
{
    fprintf(stderr, "bench_mask: %s: %s\n", what, dlas_last_error());
    return 1;
}

static struct dlas_graph *build(const struct opts *o, struct dlas_registry *reg)
{
    struct dlas_rng rng;
    dlas_rng_seed(&rng, 1);
    struct dlas_host host;
    dlas_host_init(&host, &rng, 1);
    struct dlas_graph *g = NULL;
    bench_build_model(reg, o->model, o->params, o->n_params, o->c, o->h, o->w, o->classes, &host,
                      &rng, &g);
    return g;
}

/* Mask the next maskable channel, cycling over the groups; 0 when one was
 * masked, 1 when none is left. */
static int mask_next(struct dlas_graph *g, const struct dlas_channel_group *gr, int ng,
                     int *k, int64_t *cursor)
{
    for (int tried = 0; tried < ng; tried++, *k = (*k + 1) % ng) {
        const struct dlas_channel_group *G = &gr[*k];
        for (int64_t c = cursor[*k]; c < G->n_channels; c++) {
            const int id = G->node[c];
            if (!G->prunable[c] || dlas_graph_channel_masked(g, id, G->channel[c]))
                continue;
            const int64_t w = dlas_graph_node(g, id)->out_shape[0];
            uint8_t *keep = malloc((size_t)w);
            if (!keep)
                return 1;
            memset(keep, 1, (size_t)w);
            keep[G->channel[c]] = 0;
            int rc = dlas_graph_mask_channels(g, id, keep);
            free(keep);
            if (rc == 0) {
                cursor[*k] = c + 1;
                *k = (*k + 1) % ng;
                return 0;
            }
        }
        cursor[*k] = G->n_channels;
    }
    return 1;
}

int main(int argc, char **argv)
{
    struct opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc;
    struct dlas_registry *reg = dlas_registry_new();
    if (!reg || dlas_registry_discover(reg, NULL))
        return die("plugins");
    struct dlas_graph *g = build(&o, reg);
    if (!g)
        return die("model");
    struct dlas_channel_group *gr;
    int ng;
    if (dlas_graph_channel_groups(g, &gr, &ng) || ng < 1)
        return die("channel groups");
    int64_t *cursor = calloc((size_t)ng, sizeof *cursor);
    double *t = malloc((size_t)o.every * sizeof *t);
    if (!cursor || !t)
        return die("out of memory");
    struct dlas_graph_stats s0;
    if (dlas_graph_stats(g, &s0))
        return die("stats");
    char load[64];
    bench_loadavg(load, sizeof load);
    printf("# %s, %lld parameters, %d groups of tied channels; %s\n", o.model,
           (long long)s0.params, ng, load);
    printf("masked,mask_ms_median,mask_ms_max,prune_cost_ms,remove_ms\n");
    int k = 0, n = 0, done = 0;
    for (int call = 0; call < o.calls && !done; call++) {
        const double a = bench_now();
        done = mask_next(g, gr, ng, &k, cursor);
        t[n++] = (bench_now() - a) * 1e3;
        if (n < o.every && !done && call + 1 < o.calls)
            continue;
        struct dlas_graph_stats s;
        double b = bench_now();
        if (dlas_prune_cost(g, &s, NULL))
            return die("prune cost");
        const double cost_ms = (bench_now() - b) * 1e3;
        struct dlas_graph *c = dlas_graph_clone(g);
        int64_t removed = 0;
        if (!c)
            return die("clone");
        b = bench_now();
        if (dlas_graph_remove_masked_channels(c, &removed))
            return die("remove");
        const double remove_ms = (bench_now() - b) * 1e3;
        dlas_graph_free(c);
        const struct bench_stats st = bench_stats(t, n);
        printf("%lld,%.3f,%.3f,%.3f,%.3f\n", (long long)removed, st.median, st.max, cost_ms,
               remove_ms);
        fflush(stdout);
        n = 0;
    }
    free(t);
    free(cursor);
    dlas_channel_groups_free(gr, ng);
    dlas_graph_free(g);
    dlas_registry_free(reg);
    return 0;
}
