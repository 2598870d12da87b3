/* `dlas tune`: search primitives' tunable parameters per (layer shape,
 * primitive, backend, threads) and append the best to a tuning log that
 * `dlas compare --tuning-log` and plans given the log read. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "conv_shape.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char usage_text[] =
    "usage: dlas tune FILE [options]\n"
    "       dlas tune --model NAME [--input CxHxW] [--classes N] [--seed S]\n"
    "                 [KEY=VALUE ...] [options]\n"
    "       dlas tune --layers SHAPE[,SHAPE...] [options]\n"
    "  For every distinct conv layer of the model (or every SHAPE), every primitive\n"
    "  and every thread count, searches the primitive's tunable parameters within\n"
    "  the time budget (the defaults first, then candidates in a seeded random\n"
    "  order), checks each candidate's output against the reference convolution,\n"
    "  and appends the fastest to the tuning log. A later line for the same\n"
    "  (primitive, device, threads, layer) replaces an earlier one.\n"
    "  SHAPE is CxHxW-OUT:kK[sS][pP][dD][gG], e.g. 64x56x56-64:k3p1.\n\n"
    "options:\n"
    "  --primitives LIST   comma-separated NAME[:key=value...] or 'all' (default:\n"
    "                      FILE's primitives, else every cpu conv2d primitive)\n"
    "  --threads LIST      comma-separated thread counts (default: FILE's first\n"
    "                      backend, else all cores)\n"
    "  --batch B           batch size the layers are tuned for (default: FILE's, else 1)\n"
    "  --budget S          seconds per (layer, primitive, threads) (default 10)\n"
    "  --repeat N          timed runs per candidate, median (default 7)\n"
    "  --warmup W          discarded runs per candidate (default 2)\n"
    "  --max-candidates K  stop after K timed candidates (default: the budget decides)\n"
    "  --log PATH          tuning log to append to (default tuning.log)\n"
    "  --weights CKPT      --model: load these weights first (a pruned model's sparsity\n"
    "                      matters to the primitives that exploit it)\n"
    "  --tune-seed S       order of the random search (default 1)\n";

#define MAX_LAYERS 256

struct layer {
    struct dlas_conv_desc d;
    char name[96];
    const float *weight; /* the model's, or NULL: random */
};

struct opts {
    const char *file, *prims, *threads, *layers, *log, *weights;
    long long batch;
    struct dlas_tune_options to;
};

static void timestamp(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static float *random_floats(int64_t n, uint64_t seed)
{
    float *x = dlas_aligned_alloc((size_t)n * sizeof(float));
    uint64_t s = seed;
    for (int64_t i = 0; x && i < n; i++)
        x[i] = (float)((double)(mix(&s) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    return x;
}

static int tune_layers(struct cli *c, const struct opts *o, struct layer *layers, int n,
                       const struct cli_prims *prims, const struct dlas_params *be_params,
                       const char *be_name, const int *threads, int n_threads)
{
    struct dlas_rng rng;
    struct dlas_host host;
    dlas_rng_seed(&rng, 1);
    dlas_host_init(&host, &rng, 1);
    int failures = 0;
    printf("%-22s %-40s %-22s %3s %9s %9s %7s %5s %5s  %s\n", "layer", "shape", "primitive",
           "thr", "default", "tuned", "speedup", "tried", "space", "settings");
    /* progress on stderr, one line per tuned (layer, threads, primitive), so
     * a long search says where it is and when it will end */
    int jobs = n * n_threads * prims->n, job = 0;
    double t_begin = now_s();
    fprintf(stderr, "dlas tune: %d searches (%d layers x %d thread counts x %d primitives), "
                    "each within %.3g s: at most %.0f s\n",
            jobs, n, n_threads, prims->n, o->to.budget_s, jobs * o->to.budget_s);
    for (int l = 0; l < n; l++) {
        struct dlas_conv_desc *d = &layers[l].d;
        d->batch = o->batch;
        const int64_t wn = d->out_c * (d->in_c / d->groups) * d->kh * d->kw;
        const int64_t in_n = d->batch * d->in_c * d->in_h * d->in_w;
        const int64_t out_n = d->batch * d->out_c * d->out_h * d->out_w;
        float *w = layers[l].weight ? NULL : random_floats(wn, 11 + (uint64_t)l);
        float *bias = random_floats(d->out_c, 13);
        float *in = random_floats(in_n, 17 + (uint64_t)l);
        float *ref = dlas_aligned_alloc((size_t)out_n * sizeof(float));
        if ((!layers[l].weight && !w) || !bias || !in || !ref) {
            dlas_aligned_free(w);
            dlas_aligned_free(bias);
            dlas_aligned_free(in);
            dlas_aligned_free(ref);
            return cli_error("tune: out of memory");
        }
        const float *wt = layers[l].weight ? layers[l].weight : w;
        dlas_ref_conv2d(d, d->batch, in, wt, d->has_bias ? bias : NULL, ref);
        char shape[160];
        dlas_conv_desc_format(d, shape, sizeof shape);
        for (int ti = 0; ti < n_threads; ti++) {
            struct dlas_backend be;
            if (cli_backend_init(c, be_name, be_params, threads[ti], &host, &be)) {
                failures++;
                cli_error("backend");
                continue;
            }
            int nt = be.ops->threads(be.ctx);
            for (int k = 0; k < prims->n; k++) {
                struct dlas_tune_options to = o->to;
                to.weight = wt;
                to.bias = bias;
                to.input = in;
                to.reference = ref;
                struct dlas_tune_result r;
                int rc = dlas_tune_layer(prims->c[k].comp, prims->c[k].params, &host, &be, d, &to,
                                         &r);
                job++;
                double el = now_s() - t_begin;
                fprintf(stderr, "[%d/%d] %s %s %d thread(s): %s; %.0f s elapsed, ETA %.0f s\n",
                        job, jobs, layers[l].name, prims->c[k].label, nt,
                        rc == DLAS_ERR_UNSUPPORTED ? "refused" : rc ? "failed" : "tuned", el,
                        el / job * (jobs - job));
                if (rc == DLAS_ERR_UNSUPPORTED) {
                    printf("%-22.22s %-40.40s %-22.22s %3d   refused\n", layers[l].name, shape,
                           prims->c[k].label, nt);
                    continue;
                }
                if (rc) {
                    failures++;
                    fprintf(stderr, "dlas tune: %s, %s: %s\n", layers[l].name,
                            prims->c[k].label, dlas_last_error());
                    continue;
                }
                printf("%-22.22s %-40.40s %-22.22s %3d %9.4f %9.4f %6.2fx %5d %5d  %s\n",
                       layers[l].name, shape, prims->c[k].label, nt, r.default_ms, r.best_ms,
                       isfinite(r.default_ms) ? r.default_ms / r.best_ms : NAN, r.tried, r.space,
                       r.settings[0] ? r.settings : "(no tunables)");
                fflush(stdout);
                struct dlas_tune_entry e;
                memset(&e, 0, sizeof e);
                snprintf(e.primitive, sizeof e.primitive, "%s", prims->c[k].comp->name);
                snprintf(e.device, sizeof e.device, "%s", be.ops->device);
                e.threads = nt;
                dlas_tune_layer_key(d, e.layer, sizeof e.layer);
                snprintf(e.settings, sizeof e.settings, "%s", r.settings);
                e.ms = r.best_ms;
                e.gflops = 2.0 * (double)dlas_conv_desc_macs(d) * (double)d->batch /
                           (r.best_ms * 1e6);
                e.default_ms = r.default_ms;
                timestamp(e.timestamp, sizeof e.timestamp);
                if (dlas_tunelog_append(o->log, &e)) {
                    failures++;
                    cli_error("tuning log");
                }
            }
            be.ops->release(be.ctx);
        }
        dlas_aligned_free(w);
        dlas_aligned_free(bias);
        dlas_aligned_free(in);
        dlas_aligned_free(ref);
    }
    printf("tuning log: %s\n", o->log);
    return failures ? EXIT_RUN_FAILED : EXIT_OK;
}


/* Distinct conv layers of a graph, as its plan prepares them (batchnorm
 * folded in: with bias), with the model's weights. */
static int graph_layers(struct cli *c, const struct dlas_graph *g, struct layer *out, int max,
                        int *n)
{
    struct dlas_rng rng;
    struct dlas_host host;
    dlas_rng_seed(&rng, 1);
    dlas_host_init(&host, &rng, 1);
    struct dlas_backend be;
    if (cli_backend_init(c, NULL, NULL, 1, &host, &be))
        return cli_error("backend");
    struct dlas_plan *p;
    if (dlas_plan_create_ex(g, &host, &be, NULL, 0, NULL, 1, NULL, &p)) {
        be.ops->release(be.ctx);
        return cli_error("plan");
    }
    *n = 0;
    for (int i = 0; i < dlas_graph_n_nodes(g) && *n < max; i++) {
        const struct dlas_conv_desc *d = dlas_plan_conv_desc(p, i);
        if (!d)
            continue;
        int dup = 0;
        for (int k = 0; k < *n && !dup; k++) {
            struct dlas_conv_desc a = out[k].d, b = *d;
            a.batch = b.batch = 1;
            dup = !memcmp(&a, &b, sizeof a);
        }
        if (dup)
            continue;
        const struct dlas_node *nd = dlas_graph_node(g, i);
        out[*n].d = *d;
        snprintf(out[*n].name, sizeof out[*n].name, "%s", nd->name);
        out[*n].weight = nd->weight.dtype == DLAS_F32 ? dlas_f32(&nd->weight) : NULL;
        (*n)++;
    }
    dlas_plan_free(p);
    be.ops->release(be.ctx);
    return EXIT_OK;
}

static int parse_threads(const char *s, int *t, int max)
{
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save)) {
        char *end;
        long v = strtol(tok, &end, 10);
        if (*end || v < 1 || v > 1024)
            return -1;
        t[n++] = (int)v;
    }
    return n;
}

int cmd_tune(struct cli *c, int argc, char **argv)
{
    struct cli_model m;
    cli_model_init(&m);
    struct opts o;
    memset(&o, 0, sizeof o);
    dlas_tune_options_default(&o.to);
    o.log = "tuning.log";
    o.batch = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_arg(&m, "tune", argc, argv, &i);
        if (r < 0)
            return -r;
        if (r)
            continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s%s", usage_text, cli_model_help);
            return EXIT_OK;
        } else if (v && !strcmp(a, "--primitives"))
            o.prims = argv[++i];
        else if (v && !strcmp(a, "--threads"))
            o.threads = argv[++i];
        else if (v && !strcmp(a, "--layers"))
            o.layers = argv[++i];
        else if (v && !strcmp(a, "--log"))
            o.log = argv[++i];
        else if (v && !strcmp(a, "--weights"))
            o.weights = argv[++i];
        else if (v && !strcmp(a, "--batch") && (o.batch = strtoll(argv[++i], &end, 10)) >= 1 &&
                 !*end)
            ;
        else if (v && !strcmp(a, "--budget") && (o.to.budget_s = strtod(argv[++i], &end)) >= 0 &&
                 !*end)
            ;
        else if (v && !strcmp(a, "--repeat") &&
                 (o.to.repeat = (int)strtol(argv[++i], &end, 10)) >= 1 && !*end)
            ;
        else if (v && !strcmp(a, "--warmup") &&
                 (o.to.warmup = (int)strtol(argv[++i], &end, 10)) >= 0 && !*end)
            ;
        else if (v && !strcmp(a, "--max-candidates") &&
                 (o.to.max_candidates = (int)strtol(argv[++i], &end, 10)) >= 0 && !*end)
            ;
        else if (v && !strcmp(a, "--tune-seed") &&
                 ((o.to.seed = strtoull(argv[++i], &end, 10)), !*end))
            ;
        else if (!o.file && a[0] != '-' && !end)
            o.file = a;
        else {
            fprintf(stderr, "dlas tune: bad or unexpected argument '%s'%s (see 'dlas tune "
                            "--help')\n",
                    end ? argv[i] : a, end ? " (a value)" : "");
            return EXIT_USAGE;
        }
    }
    if ((o.file != NULL) + (m.name != NULL) + (o.layers != NULL) != 1) {
        fprintf(stderr, "dlas tune: give one of FILE, --model NAME or --layers SHAPES (see "
                        "'dlas tune --help')\n");
        return EXIT_USAGE;
    }
    int rc = cli_registry(c);
    if (rc)
        return rc;
    struct cli_prims prims = {0};
    int threads[16], n_threads = 1;
    threads[0] = 0;
    if (o.threads && (n_threads = parse_threads(o.threads, threads, 16)) < 1) {
        fprintf(stderr, "dlas tune: --threads takes a comma-separated list of counts\n");
        return EXIT_USAGE;
    }
    struct layer *layers = calloc(MAX_LAYERS, sizeof *layers);
    if (!layers)
        return cli_error("out of memory");
    int n = 0;
    const struct dlas_params *be_params = NULL;
    const char *be_name = NULL;
    struct dlas_experiment *e = NULL;
    struct dlas_graph *g = NULL;
    if (o.layers) {
        char buf[4096];
        snprintf(buf, sizeof buf, "%s", o.layers);
        char *save = NULL;
        for (char *tok = strtok_r(buf, ",", &save); tok && n < MAX_LAYERS;
             tok = strtok_r(NULL, ",", &save), n++) {
            if (cli_conv_shape_parse(tok, &layers[n].d)) {
                fprintf(stderr, "dlas tune: bad layer shape '%s'\n", tok);
                free(layers);
                return EXIT_USAGE;
            }
            layers[n].d.has_bias = 1;
            snprintf(layers[n].name, sizeof layers[n].name, "%s", tok);
        }
    } else if (o.file) {
        if (dlas_experiment_load(o.file, c->reg, &e)) {
            fprintf(stderr, "dlas: %s\n", dlas_last_error());
            free(layers);
            return EXIT_USAGE;
        }
        if (!o.batch)
            o.batch = dlas_experiment_setting_int(e, "batch");
        if (dlas_experiment_n_backends(e)) {
            const char *lb;
            const struct dlas_component *bc;
            dlas_experiment_backend(e, 0, &lb, &bc, &be_params);
            be_name = bc->name;
        }
        if (!o.prims)
            cli_prims_from_experiment(e, &prims);
        for (size_t i = 0; !rc && i < dlas_experiment_n_models(e); i++) {
            struct dlas_graph *gi;
            if (dlas_experiment_build_model(e, i, m.seed, &gi, NULL)) {
                rc = cli_error(o.file);
                break;
            }
            struct layer more[MAX_LAYERS];
            int nm = 0;
            rc = graph_layers(c, gi, more, MAX_LAYERS, &nm);
            /* each model's graph is freed before the tuning starts, so its
             * layers are tuned on random weights (timing does not depend on
             * them; with --model, --weights tunes on a checkpoint's) */
            for (int k = 0; !rc && k < nm && n < MAX_LAYERS; k++) {
                more[k].weight = NULL;
                layers[n++] = more[k];
            }
            dlas_graph_free(gi);
        }
    } else {
        rc = cli_model_build(c, &m, &g);
        if (!rc && o.weights && dlas_checkpoint_load_graph(g, o.weights, DLAS_CKPT_STRICT))
            rc = cli_error(o.weights);
        if (!rc)
            rc = graph_layers(c, g, layers, MAX_LAYERS, &n);
    }
    if (!o.batch)
        o.batch = 1;
    if (!rc && !prims.n && cli_prims_list(c, o.prims ? o.prims : "all", &prims))
        rc = cli_error("--primitives");
    if (!rc)
        rc = tune_layers(c, &o, layers, n, &prims, be_params, be_name, threads, n_threads);
    cli_prims_free(&prims);
    dlas_graph_free(g);
    dlas_experiment_free(e);
    free(layers);
    return rc;
}
