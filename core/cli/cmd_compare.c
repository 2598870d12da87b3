/* `dlas compare`: primitives side by side on a model, per conv layer and end
 * to end, with "auto" (the fastest primitive per layer, as the plan
 * chooses it: dlas_plan_auto_select). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char usage_text[] =
    "usage: dlas compare FILE [options]\n"
    "       dlas compare --model NAME [--input CxHxW] [--classes N] [--seed S]\n"
    "                    [KEY=VALUE ...] [options]\n"
    "  Times every listed primitive on every conv layer of the model (each layer on\n"
    "  its own) and end to end (one plan per primitive, with the fallback where it\n"
    "  refuses a layer, and 'auto': the fastest primitive per layer). Runs are\n"
    "  interleaved across primitives in rounds of a few; medians after a warm-up,\n"
    "  with min and max. On the CPU, 'auto' is the plan's own choice, as deployed:\n"
    "  each layer on the primitive that ran it fastest inside whole plans, timed\n"
    "  until the decision is clear, and fused blocks (mobile blocks, the stem and\n"
    "  its max pool, the head) kept where they beat their layers.\n"
    "  Prints both tables and writes compare-MODEL-layers.csv, compare-MODEL-e2e.csv\n"
    "  and compare-MODEL.json. With FILE: each model the experiment selects, with\n"
    "  its primitives, fallback, first backend, batch, warmup and repeat.\n\n"
    "options:\n"
    "  --primitives LIST   comma-separated NAME[:key=value[:key=value]] or 'all'\n"
    "                      (default: FILE's primitives, else every cpu conv2d primitive)\n"
    "  --fallback SPEC     for layers a primitive refuses, or 'none' (default: FILE's,\n"
    "                      else im2col-gemm)\n"
    "  --backend NAME      backend plugin, e.g. cuda (default: FILE's first backend,\n"
    "                      else openmp); 'all' primitives are those of its device, and\n"
    "                      on a GPU the end-to-end times are device times of the forward\n"
    "                      with its input already on the device (CUDA events)\n"
    "  --threads T         backend threads (default: FILE's backend, else all cores)\n"
    "  --batch B           batch size (default: FILE's, else 1)\n"
    "  --warmup W          warm-up runs per primitive (default: FILE's, else 3)\n"
    "  --repeat N          timed runs per primitive (default: FILE's, else 20)\n"
    "  --burst N           timed runs in a row per primitive in each interleaved round,\n"
    "                      after one untimed run that re-warms its caches (default 3)\n"
    "  --tuning-log PATH   prepare each primitive with its tuned settings from the log\n"
    "                      (default: untuned defaults)\n"
    "  --weights CKPT      load weights first (e.g. of a compressed model)\n"
    "  --chain LABEL       FILE: apply this compressor chain of the experiment first\n"
    "  --layers-only       skip the end-to-end plans\n"
    "  --e2e-only          skip the per-layer timing\n"
    "  --no-check          do not compare outputs with the reference operators\n"
    "  --out DIR           where the CSV and JSON files go (default: .)\n"
    "  --quiet             no tables on stdout\n"
    "  --cpu-time          time with the process CPU clock (1 thread on a busy machine)\n";

struct opts {
    const char *file, *prims, *fallback, *tuning_log, *weights, *chain, *out, *backend;
    int threads, quiet;
    long long batch;
    int warmup, repeat;
    struct dlas_compare_options co;
};

static int mkdir_p(const char *dir)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(buf, 0777) && errno != EEXIST ? -1 : 0;
}

static int compare_graph(struct cli *c, const struct opts *o, const char *label,
                         struct dlas_graph *g, const struct dlas_primitive_choice *prims,
                         int n_prims, const struct dlas_primitive_choice *fallback,
                         const struct dlas_params *be_params, const char *be_name,
                         const char *input_desc)
{
    struct dlas_rng rng;
    struct dlas_host host;
    dlas_rng_seed(&rng, 1);
    dlas_host_init(&host, &rng, 1);
    struct dlas_backend be;
    if (cli_backend_init(c, be_name, be_params, o->threads, &host, &be))
        return cli_error("backend");
    if (o->weights && dlas_checkpoint_load_graph(g, o->weights, DLAS_CKPT_STRICT)) {
        be.ops->release(be.ctx);
        return cli_error(o->weights);
    }
    struct dlas_tunelog *log = NULL;
    if (o->tuning_log && dlas_tunelog_load(o->tuning_log, 0, &log)) {
        be.ops->release(be.ctx);
        return cli_error("tuning log");
    }
    struct dlas_compare_options co = o->co;
    co.tunelog = log;
    if (!o->quiet)
        printf("model %s (%s), %s, %d thread(s), %s\n", label, input_desc, be.ops->device,
               be.ops->threads(be.ctx), log ? "tuned (tuning log)" : "untuned defaults");
    struct dlas_compare *res = NULL;
    int rc = dlas_compare_run(g, &host, &be, prims, n_prims, fallback, &co, &res);
    if (rc) {
        dlas_tunelog_free(log);
        be.ops->release(be.ctx);
        return cli_error("compare");
    }
    if (!o->quiet)
        dlas_compare_print(res, stdout);
    char lp[4096], ep[4096], jp[4096], thr[16], bat[24];
    const char *dir = o->out ? o->out : ".";
    snprintf(lp, sizeof lp, "%s/compare-%s-layers.csv", dir, label);
    snprintf(ep, sizeof ep, "%s/compare-%s-e2e.csv", dir, label);
    snprintf(jp, sizeof jp, "%s/compare-%s.json", dir, label);
    snprintf(thr, sizeof thr, "%d", res->threads);
    snprintf(bat, sizeof bat, "%lld", (long long)res->batch);
    char device_desc[512] = "cpu";
    const struct dlas_backend_ops *dev = dlas_backend_device_ops(&be);
    if (dev && dev->describe)
        dev->describe(be.ctx, device_desc, sizeof device_desc);
    const char *meta[] = {"model",      label,
                          "input",      input_desc,
                          "tuning",     log ? "tuning log" : "untuned",
                          "tuning_log", o->tuning_log ? o->tuning_log : "",
                          "weights",    o->weights ? o->weights : "",
                          "dlas",       dlas_version(),
                          "revision",   dlas_revision(),
                          "blas",       dlas_blas_info(),
                          "device",     device_desc};
    if (mkdir_p(dir))
        rc = dlas_error(DLAS_ERR_IO, "cannot create directory %s", dir);
    if (!rc)
        rc = dlas_compare_write_csv(res, res->layers_timed ? lp : NULL, res->n_e2e ? ep : NULL);
    if (!rc)
        rc = dlas_compare_write_json(res, jp, meta, (int)(sizeof meta / sizeof meta[0]) / 2);
    if (rc)
        cli_error("compare");
    else if (!o->quiet)
        printf("wrote %s%s%s%s, %s\n", res->layers_timed ? lp : "", res->layers_timed ? ", " : "",
               res->n_e2e ? ep : "", res->n_e2e ? "" : "", jp);
    dlas_compare_free(res);
    dlas_tunelog_free(log);
    be.ops->release(be.ctx);
    return rc ? EXIT_RUN_FAILED : EXIT_OK;
}

/* The device of backend `name` (NULL: openmp) becomes the one whose
 * primitives 'all' lists. */
static int set_device(struct cli *c, const char *name)
{
    const struct dlas_component *comp =
        dlas_registry_find(c->reg, DLAS_KIND_BACKEND, name ? name : "openmp");
    if (!comp)
        return name ? dlas_last_status() : (dlas_clear_error(), DLAS_OK);
    c->device = ((const struct dlas_backend_ops *)comp->ops)->device;
    return DLAS_OK;
}

/* fallback: "none", a spec, or the default when it exists: im2col-gemm on
 * the CPU, cuda-cudnn (which takes every layer) on a CUDA device */
static int pick_fallback(struct cli *c, const char *spec, struct cli_prims *fb)
{
    if (spec && !strcmp(spec, "none"))
        return DLAS_OK;
    if (spec)
        return cli_prim_parse(c, spec, fb);
    if (c->device && !strcmp(c->device, "cuda")) {
        if (dlas_registry_find(c->reg, DLAS_KIND_PRIMITIVE, "cuda-cudnn"))
            return cli_prim_parse(c, "cuda-cudnn", fb);
        dlas_clear_error();
        return DLAS_OK;
    }
    if (dlas_registry_find(c->reg, DLAS_KIND_PRIMITIVE, "im2col-gemm"))
        return cli_prim_parse(c, "im2col-gemm", fb);
    dlas_clear_error();
    return DLAS_OK;
}

static int compare_file(struct cli *c, struct opts *o, const struct cli_model *m)
{
    struct dlas_experiment *e;
    if (dlas_experiment_load(o->file, c->reg, &e)) {
        fprintf(stderr, "dlas: %s\n", dlas_last_error());
        return EXIT_USAGE;
    }
    struct cli_prims prims = {0}, fb = {0};
    const char *be_label = NULL;
    const struct dlas_component *be_comp = NULL;
    const struct dlas_params *be_params = NULL;
    if (!o->backend && dlas_experiment_n_backends(e))
        dlas_experiment_backend(e, 0, &be_label, &be_comp, &be_params);
    int rc = set_device(c, o->backend ? o->backend : be_comp ? be_comp->name : NULL)
                 ? cli_error("--backend")
                 : 0;
    if (rc)
        ;
    else if (o->prims)
        rc = cli_prims_list(c, o->prims, &prims) ? cli_error("--primitives") : 0;
    else
        cli_prims_from_experiment(e, &prims);
    if (!rc && !prims.n)
        rc = cli_prims_all(c, &prims) ? cli_error("primitives") : 0;
    const char *fl;
    const struct dlas_component *fc;
    const struct dlas_params *fp;
    if (!rc && !o->fallback && dlas_experiment_fallback(e, &fl, &fc, &fp) == DLAS_OK)
        cli_prims_copy(&fb, fl, fc, fp);
    else if (!rc)
        rc = pick_fallback(c, o->fallback, &fb) ? cli_error("--fallback") : 0;
    if (!o->batch)
        o->co.batch = dlas_experiment_setting_int(e, "batch");
    if (!o->warmup)
        o->co.warmup = (int)dlas_experiment_setting_int(e, "warmup");
    if (!o->repeat)
        o->co.repeat = (int)dlas_experiment_setting_int(e, "repeat");
    long chain = -1;
    if (!rc && o->chain) {
        for (size_t i = 0; i < dlas_experiment_n_chains(e); i++)
            if (!strcmp(dlas_experiment_chain_label(e, i), o->chain))
                chain = (long)i;
        if (chain < 0) {
            fprintf(stderr, "dlas compare: the experiment has no compressor chain '%s'\n",
                    o->chain);
            rc = EXIT_USAGE;
        }
    }
    for (size_t i = 0; !rc && i < dlas_experiment_n_models(e); i++) {
        struct dlas_graph *g;
        int shp[4];
        if (dlas_experiment_build_model(e, i, m->seed, &g, shp)) {
            rc = cli_error(o->file);
            break;
        }
        if (chain >= 0 && dlas_experiment_compress(e, (size_t)chain, m->seed, g)) {
            dlas_graph_free(g);
            rc = cli_error(o->file);
            break;
        }
        char label[160], input[64];
        snprintf(label, sizeof label, "%s%s%s", dlas_experiment_model_label(e, i),
                 chain >= 0 ? "-" : "", chain >= 0 ? o->chain : "");
        snprintf(input, sizeof input, "%dx%dx%d", shp[0], shp[1], shp[2]);
        rc = compare_graph(c, o, label, g, prims.c, prims.n, fb.n ? &fb.c[0] : NULL,
                           o->backend ? NULL : be_params,
                           o->backend ? o->backend : be_comp ? be_comp->name : NULL, input);
        dlas_graph_free(g);
    }
    cli_prims_free(&prims);
    cli_prims_free(&fb);
    dlas_experiment_free(e);
    return rc;
}

static int parse_int(const char *opt, const char *v, long long lo, long long *out)
{
    char *end;
    long long x = strtoll(v, &end, 10);
    if (*end || end == v || x < lo) {
        fprintf(stderr, "dlas compare: %s takes a number >= %lld, not '%s'\n", opt, lo, v);
        return -1;
    }
    *out = x;
    return 0;
}

int cmd_compare(struct cli *c, int argc, char **argv)
{
    struct cli_model m;
    cli_model_init(&m);
    struct opts o;
    memset(&o, 0, sizeof o);
    dlas_compare_options_default(&o.co);
    for (int i = 1; i < argc; i++) {
        int r = cli_model_arg(&m, "compare", argc, argv, &i);
        if (r < 0)
            return -r;
        if (r)
            continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long x;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s%s", usage_text, cli_model_help);
            return EXIT_OK;
        } else if (!strcmp(a, "--layers-only"))
            o.co.end_to_end = 0;
        else if (!strcmp(a, "--e2e-only"))
            o.co.layers = 0;
        else if (!strcmp(a, "--no-check"))
            o.co.check = 0;
        else if (!strcmp(a, "--cpu-time"))
            o.co.cpu_time = 1;
        else if (!strcmp(a, "--quiet"))
            o.quiet = 1;
        else if (v && !strcmp(a, "--primitives"))
            o.prims = argv[++i];
        else if (v && !strcmp(a, "--fallback"))
            o.fallback = argv[++i];
        else if (v && !strcmp(a, "--tuning-log"))
            o.tuning_log = argv[++i];
        else if (v && !strcmp(a, "--weights"))
            o.weights = argv[++i];
        else if (v && !strcmp(a, "--chain"))
            o.chain = argv[++i];
        else if (v && !strcmp(a, "--out"))
            o.out = argv[++i];
        else if (v && !strcmp(a, "--backend"))
            o.backend = argv[++i];
        else if (v && !strcmp(a, "--threads")) {
            if (parse_int(a, argv[++i], 1, &x))
                return EXIT_USAGE;
            o.threads = (int)x;
        } else if (v && !strcmp(a, "--batch")) {
            if (parse_int(a, argv[++i], 1, &x))
                return EXIT_USAGE;
            o.batch = x;
            o.co.batch = x;
        } else if (v && !strcmp(a, "--warmup")) {
            if (parse_int(a, argv[++i], 0, &x))
                return EXIT_USAGE;
            o.warmup = 1;
            o.co.warmup = (int)x;
        } else if (v && !strcmp(a, "--burst")) {
            if (parse_int(a, argv[++i], 1, &x))
                return EXIT_USAGE;
            o.co.burst = (int)x;
        } else if (v && !strcmp(a, "--repeat")) {
            if (parse_int(a, argv[++i], 1, &x))
                return EXIT_USAGE;
            o.repeat = 1;
            o.co.repeat = (int)x;
        } else if (!o.file && a[0] != '-')
            o.file = a;
        else {
            fprintf(stderr, "dlas compare: unexpected argument '%s' (see 'dlas compare --help')\n",
                    a);
            return EXIT_USAGE;
        }
    }
    if (!o.file == !m.name) {
        fprintf(stderr, "dlas compare: give an experiment FILE or --model NAME (see 'dlas "
                        "compare --help')\n");
        return EXIT_USAGE;
    }
    int rc = cli_registry(c);
    if (rc)
        return rc;
    if (o.file) {
        if (m.n_sets) {
            fprintf(stderr, "dlas compare: KEY=VALUE settings apply to --model only\n");
            return EXIT_USAGE;
        }
        return compare_file(c, &o, &m);
    }
    if (o.chain) {
        fprintf(stderr, "dlas compare: --chain needs an experiment FILE\n");
        return EXIT_USAGE;
    }
    struct cli_prims prims = {0}, fb = {0};
    if (set_device(c, o.backend))
        return cli_error("--backend");
    if (cli_prims_list(c, o.prims ? o.prims : "all", &prims)) {
        cli_prims_free(&prims);
        return cli_error("--primitives");
    }
    if (pick_fallback(c, o.fallback, &fb)) {
        cli_prims_free(&prims);
        return cli_error("--fallback");
    }
    struct dlas_graph *g;
    rc = cli_model_build(c, &m, &g);
    if (!rc) {
        char input[64];
        snprintf(input, sizeof input, "%dx%dx%d", m.c, m.h, m.w);
        rc = compare_graph(c, &o, m.name, g, prims.c, prims.n, fb.n ? &fb.c[0] : NULL, NULL,
                           o.backend, input);
        dlas_graph_free(g);
    }
    cli_prims_free(&prims);
    cli_prims_free(&fb);
    return rc;
}
