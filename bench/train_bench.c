/* Training throughput of dlas: forward, cross-entropy, backward and an SGD
 * step over batches of synthetic tensors made once, so that only the
 * training engine is timed (data loading has its own benchmark). The same
 * measurement as bench/train_torch.py, for bench/train_throughput.sh.
 *
 *   bench/train_bench --model resnet20 --threads 2 --batch 128 [--profile]
 *
 * Prints one line (or JSON with --json); --profile adds where the time goes,
 * per op kind and per node. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dlas/dlas.h>

static double clock_of(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double now(void) { return clock_of(CLOCK_MONOTONIC); }

static int die(const char *what)
{
    fprintf(stderr, "train_bench: %s: %s\n", what, dlas_last_error());
    return 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: train_bench [--model lenet5|resnet20|resnetN] [--threads N] "
                    "[--batch B] [--input CxHxW] [--classes K] [--warmup N] [--steps N] "
                    "[--profile] [--json]\n");
}

/* The model through its plugin, as an experiment builds it. */
static int build(struct dlas_registry *reg, const char *model, int c, int h, int w, int classes,
                 struct dlas_graph **out)
{
    const char *plugin = !strcmp(model, "lenet5") ? "lenet5" : "resnet";
    const struct dlas_component *comp = dlas_registry_find(reg, DLAS_KIND_MODEL, plugin);
    if (!comp)
        return die("model plugin");
    struct dlas_params *p;
    if (dlas_params_defaults(comp->params, &p))
        return die("model parameters");
    if (strcmp(plugin, "lenet5")) {
        int depth = atoi(model + strlen("resnet"));
        char v[16];
        snprintf(v, sizeof v, "%d", depth);
        if (dlas_params_set(p, "depth", v, NULL) || dlas_params_set(p, "layout", "cifar", NULL) ||
            dlas_params_set(p, "style", "cifar", NULL)) {
            dlas_params_free(p);
            return die("resnet parameters");
        }
    }
    struct dlas_rng rng;
    dlas_rng_seed(&rng, 1);
    struct dlas_host host;
    dlas_host_init(&host, &rng, 1);
    struct dlas_graph *g = dlas_graph_new();
    const struct dlas_model_ops *ops = comp->ops;
    int rc = ops->build(&host, p, c, h, w, classes, g);
    dlas_params_free(p);
    if (rc || dlas_graph_validate(g) || dlas_graph_init_weights(g, &rng)) {
        dlas_graph_free(g);
        return die("building the model");
    }
    *out = g;
    return 0;
}

int main(int argc, char **argv)
{
    const char *model = "resnet20", *input = "1x28x28";
    int threads = 2, batch = 128, classes = 10, warmup = 3, steps = 20, profile = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--model") && v)
            model = argv[++i];
        else if (!strcmp(a, "--threads") && v)
            threads = atoi(argv[++i]);
        else if (!strcmp(a, "--batch") && v)
            batch = atoi(argv[++i]);
        else if (!strcmp(a, "--input") && v)
            input = argv[++i];
        else if (!strcmp(a, "--classes") && v)
            classes = atoi(argv[++i]);
        else if (!strcmp(a, "--warmup") && v)
            warmup = atoi(argv[++i]);
        else if (!strcmp(a, "--steps") && v)
            steps = atoi(argv[++i]);
        else if (!strcmp(a, "--profile"))
            profile = 1;
        else if (!strcmp(a, "--json"))
            json = 1;
        else {
            usage();
            return 2;
        }
    }
    int c, h, w;
    if (sscanf(input, "%dx%dx%d", &c, &h, &w) != 3 || threads < 1 || batch < 2 || steps < 1) {
        usage();
        return 2;
    }
    struct dlas_registry *reg = dlas_registry_new();
    if (!reg || dlas_registry_discover(reg, NULL))
        return die("plugins");
    struct dlas_graph *g = NULL;
    if (build(reg, model, c, h, w, classes, &g))
        return 1;

    /* The OpenBLAS threads used outside parallel regions follow this too. */
    omp_set_num_threads(threads);
    struct dlas_autograd *a;
    if (dlas_autograd_new(g, batch, threads, &a))
        return die("autograd");
    struct dlas_sgd_options so = {0.9, 5e-4, 0, 1};
    struct dlas_sgd *sgd;
    if (dlas_sgd_new(&so, &sgd))
        return die("sgd");
    const int64_t per = (int64_t)c * h * w;
    float *x = malloc((size_t)(batch * per) * sizeof *x);
    int32_t *y = malloc((size_t)batch * sizeof *y);
    struct dlas_rng r;
    dlas_rng_seed(&r, 2);
    for (int64_t i = 0; i < batch * per; i++)
        x[i] = (float)dlas_rng_uniform(&r);
    for (int i = 0; i < batch; i++)
        y[i] = (int32_t)dlas_rng_below(&r, (uint64_t)classes);
    const int lid = dlas_autograd_logits_node(a);
    double loss = 0;
    double t0 = 0, c0 = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) {
            if (profile)
                dlas_autograd_profile(a, 1);
            t0 = now();
            c0 = clock_of(CLOCK_PROCESS_CPUTIME_ID);
        }
        if (dlas_autograd_forward(a, batch, x, DLAS_AG_TRAIN))
            return die("forward");
        float *dl = dlas_autograd_grad(a, lid);
        loss = dlas_loss_xent(dlas_autograd_act(a, lid), y, batch, classes, 0.0, dl, 1.0);
        dlas_autograd_zero_grad(a);
        if (dlas_autograd_backward(a) || dlas_sgd_step(sgd, a, 0.05))
            return die("backward");
    }
    double dt = now() - t0, ips = (double)batch * steps / dt;
    /* On a shared machine the wall clock also counts other programs' time;
     * images per CPU-second per thread tells what the code itself does. */
    double cpu = clock_of(CLOCK_PROCESS_CPUTIME_ID) - c0;
    double cips = cpu > 0 ? (double)batch * steps / (cpu / threads) : 0.0;
    if (json)
        printf("{\"framework\": \"dlas\", \"version\": \"%s\", \"model\": \"%s\", \"input\": "
               "\"%s\", \"batch\": %d, \"threads\": %d, \"steps\": %d, \"seconds\": %.6f, "
               "\"images_per_s\": %.3f, \"cpu_seconds\": %.6f, \"images_per_cpu_s\": %.3f, "
               "\"blas\": \"%s\"}\n",
               dlas_version(), model, input, batch, threads, steps, dt, ips, cpu, cips,
               dlas_blas_info());
    else
        printf("dlas %s %s %s batch %d threads %d: %.1f images/s (%.1f per CPU-second per "
               "thread; %d steps, %.2f s, last loss %.3f)\n",
               dlas_version(), model, input, batch, threads, ips, cips, steps, dt, loss);
    if (profile) {
        const double *fw = dlas_autograd_profile_seconds(a, 0), *bw = dlas_autograd_profile_seconds(a, 1);
        double by_op[2][DLAS_OP__COUNT] = {{0}}, total = 0;
        for (int i = 0; i < dlas_graph_n_nodes(g); i++) {
            enum dlas_op op = dlas_graph_node(g, i)->op;
            by_op[0][op] += fw[i];
            by_op[1][op] += bw[i];
            total += fw[i] + bw[i];
        }
        printf("kernel time per step %.2f ms of %.2f ms (rest: loss, optimiser, overhead)\n",
               1e3 * total / steps, 1e3 * dt / steps);
        printf("%-16s %10s %10s %7s\n", "op", "fwd ms", "bwd ms", "share");
        for (int op = 0; op < DLAS_OP__COUNT; op++)
            if (by_op[0][op] + by_op[1][op] > 0)
                printf("%-16s %10.3f %10.3f %6.1f%%\n", dlas_op_name((enum dlas_op)op),
                       1e3 * by_op[0][op] / steps, 1e3 * by_op[1][op] / steps,
                       100.0 * (by_op[0][op] + by_op[1][op]) / total);
        printf("%-28s %10s %10s\n", "node", "fwd ms", "bwd ms");
        for (int i = 1; i < dlas_graph_n_nodes(g); i++)
            printf("%-28s %10.3f %10.3f\n", dlas_graph_node(g, i)->name, 1e3 * fw[i] / steps,
                   1e3 * bw[i] / steps);
    }
    free(x);
    free(y);
    dlas_sgd_free(sgd);
    dlas_autograd_free(a);
    dlas_graph_free(g);
    dlas_registry_free(reg);
    return 0;
}
