/* `dlas summary`: a per-layer table of a model (name, op, output shape,
 * parameters, MACs) and its totals, for each model of an experiment file or
 * for one model plugin named on the command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: dlas summary FILE [--seed S] [--weights CKPT] [--totals]\n"
    "       dlas summary --model NAME [--input CxHxW] [--classes N] [--seed S]\n"
    "                    [--weights CKPT] [--totals] [KEY=VALUE ...]\n"
    "  Prints each layer of a model (name, op, output shape, parameters, MACs,\n"
    "  inputs where they are not the layer above) and the totals: parameters,\n"
    "  non-zeros, MACs, FLOPs, weight bytes per dtype and peak activation memory\n"
    "  at batch 1. With FILE, every model the experiment selects, built on its\n"
    "  dataset's input shape.\n\n"
    "  --weights CKPT     load weights from a checkpoint first (names must match)\n"
    "  --totals           totals only, no per-layer table\n";

/* 1234567 -> "1,234,567" */
static const char *grouped(long long v, char *buf, size_t len)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%lld", v < 0 ? -v : v);
    size_t nd = strlen(digits), o = 0;
    if (v < 0 && o + 1 < len)
        buf[o++] = '-';
    for (size_t i = 0; i < nd && o + 2 < len; i++) {
        if (i && (nd - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

static const char *short_num(double x, const char *unit, char *buf, size_t len)
{
    static const char *const pre[] = {"", "k", "M", "G", "T"};
    int k = 0;
    while (x >= 1000.0 && k < 4) {
        x /= 1000.0;
        k++;
    }
    snprintf(buf, len, k ? "%.2f %s%s" : "%.0f %s%s", x, pre[k], unit);
    return buf;
}

static const char *shape(const struct dlas_node *n, char *buf, size_t len)
{
    if (n->out_ndim == 3)
        snprintf(buf, len, "%lldx%lldx%lld", (long long)n->out_shape[0],
                 (long long)n->out_shape[1], (long long)n->out_shape[2]);
    else
        snprintf(buf, len, "%lld", (long long)n->out_shape[0]);
    return buf;
}

static void print_layers(const struct dlas_graph *g)
{
    int nn = dlas_graph_n_nodes(g), wname = 4;
    for (int i = 0; i < nn; i++) {
        int l = (int)strlen(dlas_graph_node(g, i)->name);
        if (l > wname)
            wname = l;
    }
    printf("  %4s  %-*s  %-14s  %-12s  %12s  %15s  %s\n", "#", wname, "name", "op", "output",
           "params", "MACs", "inputs");
    for (int i = 0; i < nn; i++) {
        const struct dlas_node *n = dlas_graph_node(g, i);
        char s[64], p[32], m[32], ins[512] = "";
        size_t used = 0;
        /* a plain chain reads the layer above; say so only when not */
        if (!(n->n_inputs == 1 && n->inputs[0] == i - 1))
            for (int k = 0; k < n->n_inputs && used < sizeof ins; k++)
                used += (size_t)snprintf(ins + used, sizeof ins - used, "%s%s", k ? ", " : "",
                                         dlas_graph_node(g, n->inputs[k])->name);
        printf("  %4d  %-*s  %-14s  %-12s  %12s  %15s%s%s\n", i, wname, n->name,
               dlas_op_name(n->op), shape(n, s, sizeof s),
               grouped(dlas_node_params(g, i), p, sizeof p),
               grouped(dlas_node_macs(g, i), m, sizeof m), ins[0] ? "  " : "", ins);
    }
}

static int print_totals(const struct dlas_graph *g)
{
    struct dlas_graph_stats st;
    if (dlas_graph_stats(g, &st))
        return cli_error("summary");
    char a[32], b[32], c[32], d[32], e[32], f[32];
    double sparsity = st.params ? 1.0 - (double)st.nonzero / (double)st.params : 0.0;
    printf("  parameters: %s (%s non-zero, sparsity %.2f%%)\n", grouped(st.params, a, sizeof a),
           grouped(st.nonzero, b, sizeof b), 100.0 * sparsity);
    int64_t flops = dlas_graph_flops(g);
    printf("  MACs: %s (%s), FLOPs: %s (%s) per sample\n", grouped(st.macs, c, sizeof c),
           short_num((double)st.macs, "MAC", d, sizeof d), grouped(flops, e, sizeof e),
           short_num((double)flops, "FLOP", f, sizeof f));
    printf("  weights: %s bytes (%s", grouped(st.weight_bytes, a, sizeof a),
           short_num((double)st.weight_bytes, "B", b, sizeof b));
    for (int t = DLAS_F32; t <= DLAS_I32; t++) {
        int64_t by = dlas_graph_weight_bytes_of(g, (enum dlas_dtype)t);
        if (by)
            printf("; %s %s", dlas_dtype_name((enum dlas_dtype)t), grouped(by, c, sizeof c));
    }
    printf(")\n  peak activation memory (batch 1): %s bytes (%s)\n",
           grouped(st.peak_activation_bytes, d, sizeof d),
           short_num((double)st.peak_activation_bytes, "B", e, sizeof e));
    return EXIT_OK;
}

static int summarise(struct dlas_graph *g, const char *weights, int totals_only)
{
    if (weights && dlas_checkpoint_load_graph(g, weights, DLAS_CKPT_STRICT))
        return cli_error("summary");
    if (!totals_only)
        print_layers(g);
    return print_totals(g);
}

static int summary_file(struct cli *c, const char *file, const struct cli_model *m,
                        const char *weights, int totals_only)
{
    int rc = cli_registry(c);
    if (rc)
        return rc;
    struct dlas_experiment *e;
    if (dlas_experiment_load(file, c->reg, &e)) {
        fprintf(stderr, "dlas: %s\n", dlas_last_error());
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < dlas_experiment_n_models(e) && !rc; i++) {
        struct dlas_graph *g;
        int shp[4];
        if (dlas_experiment_build_model(e, i, m->seed, &g, shp)) {
            rc = cli_error(file);
            break;
        }
        printf("%smodel '%s' on %dx%dx%d, %d classes\n", i ? "\n" : "",
               dlas_experiment_model_label(e, i), shp[0], shp[1], shp[2], shp[3]);
        rc = summarise(g, weights, totals_only);
        dlas_graph_free(g);
    }
    dlas_experiment_free(e);
    return rc;
}

int cmd_summary(struct cli *c, int argc, char **argv)
{
    struct cli_model m;
    cli_model_init(&m);
    const char *file = NULL, *weights = NULL;
    int totals_only = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_arg(&m, "summary", argc, argv, &i);
        if (r < 0)
            return -r;
        if (r)
            continue;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("%s%s", usage_text, cli_model_help);
            return EXIT_OK;
        } else if (!strcmp(argv[i], "--weights") && i + 1 < argc)
            weights = argv[++i];
        else if (!strcmp(argv[i], "--totals"))
            totals_only = 1;
        else if (!file && argv[i][0] != '-')
            file = argv[i];
        else {
            fprintf(stderr, "dlas summary: unexpected argument '%s' (see 'dlas summary "
                            "--help')\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!file == !m.name) {
        fprintf(stderr, "dlas summary: give an experiment FILE or --model NAME (see 'dlas "
                        "summary --help')\n");
        return EXIT_USAGE;
    }
    if (file) {
        if (m.n_sets) {
            fprintf(stderr, "dlas summary: KEY=VALUE settings apply to --model only\n");
            return EXIT_USAGE;
        }
        return summary_file(c, file, &m, weights, totals_only);
    }
    struct dlas_graph *g;
    int rc = cli_model_build(c, &m, &g);
    if (rc)
        return rc;
    printf("model '%s' on %dx%dx%d, %d classes\n", m.name, m.c, m.h, m.w, m.classes);
    rc = summarise(g, weights, totals_only);
    dlas_graph_free(g);
    return rc;
}
