/* `dlas checkpoint info|save|load`: inspect and verify checkpoint files, and
 * save or load a model plugin's weights by tensor name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: dlas checkpoint info FILE [--no-verify]\n"
    "       dlas checkpoint save --model NAME [model options] -o FILE\n"
    "       dlas checkpoint load FILE --model NAME [model options] [--allow-missing]\n"
    "                            [--allow-unexpected]\n"
    "  info  lists the tensors of FILE (name, dtype, shape, bytes, CRC) and checks\n"
    "        every checksum (--no-verify: the header and index only)\n"
    "  save  builds the model, initialises its weights from --seed and writes them\n"
    "  load  builds the model and loads FILE into it by name; by default every\n"
    "        tensor of the model must be in FILE and nothing else\n"
    "model options:\n";

static int failed(void)
{
    fprintf(stderr, "dlas: %s\n", dlas_last_error());
    return EXIT_RUN_FAILED;
}

static int info(const char *file, int verify)
{
    struct dlas_ckpt *c;
    if (dlas_ckpt_open(file, &c))
        return failed();
    size_t n = dlas_ckpt_count(c), wname = 4;
    for (size_t i = 0; i < n; i++)
        if (strlen(dlas_ckpt_entry_at(c, i)->name) > wname)
            wname = strlen(dlas_ckpt_entry_at(c, i)->name);
    printf("%s: dlas checkpoint version %d, %zu tensor%s\n", file, DLAS_CKPT_VERSION, n,
           n == 1 ? "" : "s");
    printf("  %-*s  %-5s  %-18s  %12s  %-8s%s\n", (int)wname, "name", "dtype", "shape", "bytes",
           "crc32", verify ? "  check" : "");
    unsigned long long total = 0;
    size_t bad = 0;
    void *buf = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        const struct dlas_ckpt_entry *e = dlas_ckpt_entry_at(c, i);
        char shape[96] = "scalar";
        size_t used = 0;
        for (int d = 0; d < e->ndim && used < sizeof shape; d++)
            used += (size_t)snprintf(shape + used, sizeof shape - used, "%s%lld", d ? "x" : "",
                                     (long long)e->dims[d]);
        const char *check = "";
        if (verify) {
            if (e->nbytes > cap) {
                free(buf);
                cap = (size_t)e->nbytes;
                if (!(buf = malloc(cap))) {
                    dlas_ckpt_close(c);
                    fprintf(stderr, "dlas: out of memory\n");
                    return EXIT_RUN_FAILED;
                }
            }
            check = "ok";
            size_t first;
            if (dlas_ckpt_read(c, e, buf, (size_t)e->nbytes)) {
                fprintf(stderr, "dlas: %s\n", dlas_last_error());
                check = "BAD";
                bad++;
            } else if (dlas_ckpt_count_nonfinite(e, buf, &first)) {
                /* intact, but not usable as weights: said, not hidden */
                fprintf(stderr, "dlas: warning: %s: tensor '%s' holds %zu non-finite values "
                                "(first at element %zu)\n",
                        file, e->name, dlas_ckpt_count_nonfinite(e, buf, &first), first);
                check = "NONFINITE";
            }
        }
        printf("  %-*s  %-5s  %-18s  %12llu  %08x%s%s\n", (int)wname, e->name,
               dlas_dtype_name(e->dtype), shape, (unsigned long long)e->nbytes, e->crc,
               verify ? "  " : "", check);
        total += e->nbytes;
    }
    free(buf);
    dlas_ckpt_close(c);
    printf("  total %llu data bytes%s\n", total,
           !verify ? " (data not verified)" : bad ? "" : ", every checksum ok");
    if (bad) {
        fprintf(stderr, "dlas: %s: %zu tensor%s failed the checksum\n", file, bad,
                bad == 1 ? "" : "s");
        return EXIT_RUN_FAILED;
    }
    return EXIT_OK;
}

int cmd_checkpoint(struct cli *c, int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        printf("%s%s", usage_text, cli_model_help);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    const char *sub = argv[1], *file = NULL;
    struct cli_model m;
    cli_model_init(&m);
    int verify = 1;
    unsigned flags = DLAS_CKPT_STRICT;
    if (strcmp(sub, "info") && strcmp(sub, "save") && strcmp(sub, "load")) {
        fprintf(stderr, "dlas checkpoint: unknown subcommand '%s' (info, save or load)\n", sub);
        return EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int r = strcmp(sub, "info") ? cli_model_arg(&m, "checkpoint", argc, argv, &i) : 0;
        if (r < 0)
            return -r;
        if (r)
            continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s%s", usage_text, cli_model_help);
            return EXIT_OK;
        } else if (!strcmp(sub, "info") && !strcmp(a, "--no-verify"))
            verify = 0;
        else if (!strcmp(sub, "load") && !strcmp(a, "--allow-missing"))
            flags |= DLAS_CKPT_ALLOW_MISSING;
        else if (!strcmp(sub, "load") && !strcmp(a, "--allow-unexpected"))
            flags |= DLAS_CKPT_ALLOW_UNEXPECTED;
        else if (!strcmp(sub, "save") && (!strcmp(a, "-o") || !strcmp(a, "--output")) &&
                 i + 1 < argc && !file)
            file = argv[++i];
        else if (strcmp(sub, "save") && !file && a[0] != '-')
            file = a;
        else {
            fprintf(stderr, "dlas checkpoint %s: unexpected argument '%s' (see 'dlas "
                            "checkpoint --help')\n", sub, a);
            return EXIT_USAGE;
        }
    }
    if (!file || (strcmp(sub, "info") && !m.name)) {
        fprintf(stderr, "dlas checkpoint %s: %s (see 'dlas checkpoint --help')\n", sub,
                !file ? (strcmp(sub, "save") ? "which FILE?" : "-o FILE is required")
                      : "--model NAME is required");
        return EXIT_USAGE;
    }
    if (!strcmp(sub, "info"))
        return info(file, verify);

    struct dlas_graph *g;
    int rc = cli_model_build(c, &m, &g);
    if (rc)
        return rc;
    struct dlas_graph_stats st;
    if (!strcmp(sub, "save")) {
        if (dlas_checkpoint_save_graph(g, file))
            rc = failed();
        else if (!dlas_graph_stats(g, &st))
            printf("%s: saved model '%s' (%lld parameters, %lld bytes of weights)\n", file,
                   m.name, (long long)st.params, (long long)st.weight_bytes);
    } else {
        if (dlas_checkpoint_load_graph(g, file, flags))
            rc = failed();
        else if (!dlas_graph_stats(g, &st))
            printf("%s: loaded into model '%s' (%lld parameters, %lld non-zero)\n", file,
                   m.name, (long long)st.params, (long long)st.nonzero);
    }
    dlas_graph_free(g);
    return rc;
}
