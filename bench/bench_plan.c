/* bench_plan: one model's inference plan, kept prepared and timed on demand;
 * the dlas side of bench/vs_ort.py.
 *
 * Builds a model from the zoo, loads its weights from a dlas checkpoint
 * (tools/dlas-torch writes one from the PyTorch state_dict the peer's ONNX
 * file was exported from), binds every conv layer with `auto`
 * (dlas_plan_auto_select: each layer on the primitive that ran it fastest in
 * context) or with a single primitive, and then answers commands, one a
 * line on stdin, with one JSON object a line on stdout:
 *
 *   run IN OUT       forward on IN (batch x C x H x W float32, raw), write
 *                    the output (raw float32) to OUT
 *   time W R         W untimed runs, then R timed ones:
 *                    {"ms": median, "min", "max", "times": [...], "load"}
 *   profile W R      W untimed runs, then R runs timed node by node
 *                    (dlas_plan_run_timed): {"nodes": [{"name", "op",
 *                    "binding", "ms": median, "min", "fused": [names of
 *                    the nodes fused into it]}, ...], "total_ms",
 *                    "load"};
 *                    a fused block's time is on its first conv
 *   probe            the machine's fp32 FMA rate and memory read rate right
 *                    now on the plan's thread count, and (2 threads or
 *                    more) a cache line's round trip between two threads:
 *                    {"gflops", "gbps", "line_ns", "threads"}. A VM can
 *                    lose half of its FMA rate (two virtual CPUs on one
 *                    core) or of its memory bandwidth for seconds, and
 *                    moves its vCPUs nearer or further apart (line_ns
 *                    ~55 or 300-700 ns here: plans up to 37% apart); a driver
 *                    probes around every timed run to say which rounds
 *                    ran on the whole machine, and where
 *   quit
 *
 * so that a driver can interleave it with another engine's runs without
 * preparing the plan again. The first line it prints describes the plan.
 *
 *   bench_plan --model NAME [--param key=value ...] --input CxHxW
 *              [--classes N] [--weights FILE] [--batch B] [--threads T]
 *              [--primitives a,b,c | --primitive NAME] [--fallback NAME]
 *              [--blocks 1|0|all] [--block-layout chain|nchw] [--concat view|copy]
 *              [--block-schedule auto|groups|rows] [--head fused|layers]
 *              [--stem fused|layers] [--pool first|after] [--prologue fused|separate]
 *              [--layout c16|nchw] [--cpu-time]
 *
 * With auto, the fused mobile blocks (dlas_plan_options.blocks) race their
 * layers too, and those that win are kept (--blocks 0: never fused; --blocks
 * all: every block fused, no race, with --primitive too: a plan that does
 * not depend on timings, for comparing kernels).
 * Consecutive fused blocks pass their activations in the channel-blocked
 * layout (--block-layout nchw: each block converts from and to NCHW).
 * --block-schedule: how fused blocks split their work over the threads
 * (dlas_plan_options.block_schedule; default: the kernel's rule).
 * --head layers: a network's head (1x1 conv, global pool, linear) runs layer
 * by layer instead of as one kernel (dlas_plan_options.block_no_head).
 * --stem layers: a network's stem (conv, max pool) likewise
 * (dlas_plan_options.block_no_stem).
 * --pool after: an average pool that alone reads a 1x1 conv runs after the
 * conv, as the graph has it, instead of before it on the conv's input
 * (dlas_plan_options.no_pool_first; DenseNet's transitions).
 * --prologue separate: a batchnorm that alone feeds a conv runs as a pass
 * of its own even where the conv's primitive could apply it as it reads its
 * input (dlas_plan_options.no_prologue; DenseNet's norm1 before conv1).
 * --layout nchw: every activation stays NCHW, even between convs that take
 * channel blocks of 16 (dlas_plan_options.no_c16); the first line counts
 * the nodes whose output the plan keeps in C16 ("c16").
 * A concat read only by batchnorms is read in place (--concat copy: every
 * concat copies its inputs, as before views).
 * --cpu-time: `time` and `profile` report process CPU time (all threads,
 * spinning included) instead of wall time. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/checkpoint.h>
#include <dlas/dlas.h>
#include <dlas/tune.h>

#include "bench_common.h"
#include "../core/base/fma_loop.h"
#include "../core/base/line_trip.h"

#define MAX_PRIMS 8
#define MAX_PARAMS 16

static const char usage[] =
    "usage: bench_plan --model NAME [--param key=value ...] --input CxHxW [--classes N]\n"
    "                  [--weights FILE] [--batch B] [--threads T]\n"
    "                  [--primitives a,b:k=v,c | --primitive NAME[:k=v,...]]\n"
    "                  [--fallback NAME]\n"
    "                  [--blocks 1|0|all] [--block-layout chain|nchw] [--concat view|copy]\n"
    "                  [--block-schedule auto|groups|rows] [--head fused|layers]\n"
    "                  [--stem fused|layers] [--pool first|after] [--residual fused|separate]\n"
    "                  [--prologue fused|separate] [--layout c16|nchw] [--cpu-time]\n"
    "Binds the model's conv layers with auto (by measurement) over --primitives,\n"
    "or to one --primitive (auto also races fused mobile blocks against their layers\n"
    "unless --blocks 0; --blocks all: every block fused, no race). A primitive may\n"
    "carry parameters after a colon (winograd:tile=2); several of one primitive\n"
    "are rival candidates (winograd,winograd:tile=2). --residual separate: residual\n"
    "adds run as their own pass even where a conv's primitive could add them.\n"
    "--pool after: an average pool that alone reads a 1x1 conv runs after it (as\n"
    "the graph has it) instead of first, on the conv's input. --prologue separate: a\n"
    "batchnorm that alone feeds a conv runs as its own pass even where the conv's\n"
    "primitive could apply it as it reads its input. --layout nchw: every activation\n"
    "stays NCHW, even between convs that could pass channel blocks of 16.\n"
    "Then it reads\n"
    "commands on stdin:\n"
    "run IN OUT | time W R | profile W R | probe | quit.\n";

static void quiet_log(enum dlas_log_level l, const char *fmt, ...)
{
    (void)l;
    (void)fmt;
}

static int die(const char *what)
{
    printf("{\"error\": \"%s: ", what);
    for (const char *s = dlas_last_error(); *s; s++)
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s >= 0x20)
            putchar(*s);
    printf("\"}\n");
    fprintf(stderr, "bench_plan: %s: %s\n", what, dlas_last_error());
    return 1;
}

struct opts {
    const char *model, *weights, *fallback, *single;
    const char *params[MAX_PARAMS];
    int n_params, c, h, w, classes, threads, blocks, nchw, concat_copy, cpu_time, schedule;
    int no_residual;
    int no_head;
    int no_stem;
    int no_pool_first;
    int no_prologue;
    int no_c16;
    int64_t batch;
    char prims[512];
};

static int parse(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->classes = 1000;
    o->threads = 2;
    o->batch = 1;
    o->blocks = 1;
    o->fallback = "im2col-gemm";
    snprintf(o->prims, sizeof o->prims, "direct,spatial-pack,winograd,grouped-spatial-pack,"
                                        "pointwise,im2col-gemm");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (!strcmp(a, "--cpu-time")) { /* a development aid on a loaded machine */
            o->cpu_time = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_plan: %s needs a value\n%s", a, usage);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--param") && o->n_params < MAX_PARAMS && strchr(v, '='))
            o->params[o->n_params++] = v;
        else if (!strcmp(a, "--input") && sscanf(v, "%dx%dx%d", &o->c, &o->h, &o->w) == 3)
            ;
        else if (!strcmp(a, "--classes"))
            o->classes = atoi(v);
        else if (!strcmp(a, "--weights"))
            o->weights = v;
        else if (!strcmp(a, "--batch"))
            o->batch = atoll(v);
        else if (!strcmp(a, "--threads"))
            o->threads = atoi(v);
        else if (!strcmp(a, "--primitives"))
            snprintf(o->prims, sizeof o->prims, "%s", v);
        else if (!strcmp(a, "--primitive"))
            o->single = v;
        else if (!strcmp(a, "--fallback"))
            o->fallback = v;
        else if (!strcmp(a, "--blocks") &&
                 (!strcmp(v, "0") || !strcmp(v, "1") || !strcmp(v, "all")))
            o->blocks = !strcmp(v, "all") ? 2 : v[0] - '0';
        else if (!strcmp(a, "--block-layout") && (!strcmp(v, "nchw") || !strcmp(v, "chain")))
            o->nchw = !strcmp(v, "nchw");
        else if (!strcmp(a, "--block-schedule") &&
                 (!strcmp(v, "auto") || !strcmp(v, "groups") || !strcmp(v, "rows")))
            o->schedule = !strcmp(v, "groups") ? 1 : !strcmp(v, "rows") ? 2 : 0;
        else if (!strcmp(a, "--head") && (!strcmp(v, "fused") || !strcmp(v, "layers")))
            o->no_head = !strcmp(v, "layers");
        else if (!strcmp(a, "--stem") && (!strcmp(v, "fused") || !strcmp(v, "layers")))
            o->no_stem = !strcmp(v, "layers");
        else if (!strcmp(a, "--pool") && (!strcmp(v, "first") || !strcmp(v, "after")))
            o->no_pool_first = !strcmp(v, "after");
        else if (!strcmp(a, "--concat") && (!strcmp(v, "view") || !strcmp(v, "copy")))
            o->concat_copy = !strcmp(v, "copy");
        else if (!strcmp(a, "--residual") && (!strcmp(v, "fused") || !strcmp(v, "separate")))
            o->no_residual = !strcmp(v, "separate");
        else if (!strcmp(a, "--prologue") && (!strcmp(v, "fused") || !strcmp(v, "separate")))
            o->no_prologue = !strcmp(v, "separate");
        else if (!strcmp(a, "--layout") && (!strcmp(v, "c16") || !strcmp(v, "nchw")))
            o->no_c16 = !strcmp(v, "nchw");
        else {
            fprintf(stderr, "bench_plan: bad option %s %s\n%s", a, v, usage);
            return 2;
        }
    }
    if (!o->model || o->c < 1 || o->h < 1 || o->w < 1 || o->classes < 1 || o->threads < 1 ||
        o->batch < 1) {
        fprintf(stderr, "bench_plan: --model and a positive --input, --classes, --threads and "
                        "--batch are needed\n%s", usage);
        return 2;
    }
    return 0;
}

struct prim_set {
    int n;
    struct dlas_primitive_choice c[MAX_PRIMS];
    struct dlas_params *p[MAX_PRIMS];
    char names[MAX_PRIMS][128];
};

/* A primitive, with parameters after a colon (winograd:tile=2,chunk=64). */
static int add_prim(struct dlas_registry *reg, struct prim_set *s, const char *arg)
{
    if (s->n == MAX_PRIMS)
        return dlas_error(DLAS_ERR_INVALID, "at most %d primitives", MAX_PRIMS);
    struct bench_prim bp;
    if (bench_prim_parse(reg, arg, &bp)) {
        char why[512];
        snprintf(why, sizeof why, "%s", dlas_last_error());
        return dlas_error(dlas_last_status(), "'%s': %s", arg, why);
    }
    int k = s->n++;
    snprintf(s->names[k], sizeof s->names[k], "%s", bp.label);
    s->p[k] = bp.params;
    s->c[k].label = s->names[k];
    s->c[k].comp = bp.comp;
    s->c[k].params = bp.params;
    return DLAS_OK;
}

/* --primitives: primitives separated by commas, each as add_prim takes it;
 * a piece with '=' and no ':' after one with parameters continues them
 * (direct:reg_w=7,oc_vectors=1,winograd is two primitives), since no
 * primitive's name has an '='. */
static int add_prims(struct dlas_registry *reg, struct prim_set *s, const char *list)
{
    char item[512] = "";
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        const int n = e ? (int)(e - p) : (int)strlen(p);
        const int more = memchr(p, '=', (size_t)n) && !memchr(p, ':', (size_t)n) &&
                         strchr(item, ':');
        if (!more && item[0] && add_prim(reg, s, item))
            return dlas_last_status();
        const size_t at = more ? strlen(item) : 0;
        if (at + (size_t)n + 2 > sizeof item)
            return dlas_error(DLAS_ERR_INVALID, "--primitives: an entry is too long");
        snprintf(item + at, sizeof item - at, "%s%.*s", more ? "," : "", n, p);
        p = e ? e + 1 : p + n;
    }
    return item[0] ? add_prim(reg, s, item) : DLAS_OK;
}

static int read_exact(const char *path, void *buf, size_t len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return dlas_error(DLAS_ERR_IO, "%s: cannot open", path);
    size_t got = fread(buf, 1, len, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != len || extra)
        return dlas_error(DLAS_ERR_CORRUPT, "%s: expected %zu bytes", path, len);
    return DLAS_OK;
}

static int write_all(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return dlas_error(DLAS_ERR_IO, "%s: cannot create", path);
    size_t put = fwrite(buf, 1, len, f);
    if (fclose(f) || put != len)
        return dlas_error(DLAS_ERR_IO, "%s: write failed", path);
    return DLAS_OK;
}

static void describe(struct dlas_plan *plan, const struct dlas_graph *g,
                     const struct prim_set *ps, const struct dlas_plan_auto_report *rep,
                     double prep_s)
{
    int count[MAX_PRIMS + 2] = {0};
    int convs = 0, residual = 0, c16 = 0;
    for (int id = 0; id < dlas_graph_n_nodes(g); id++) {
        const int fused = dlas_plan_fused_into(plan, id);
        c16 += fused < 0 && dlas_plan_layout(plan, id) == DLAS_LAYOUT_C16;
        residual += dlas_graph_node(g, id)->op == DLAS_OP_ADD && fused >= 0 &&
                    dlas_graph_node(g, fused)->op == DLAS_OP_CONV2D &&
                    dlas_plan_binding_index(plan, fused) != -3; /* not a fused block's */
        if (dlas_graph_node(g, id)->op != DLAS_OP_CONV2D)
            continue;
        convs++;
        int b = dlas_plan_binding_index(plan, id);
        count[b == -3 ? ps->n + 1 : b >= 0 && b < ps->n ? b : ps->n]++;
    }
    printf("{\"ready\": 1, \"convs\": %d, \"prepare_s\": %.3f, \"bindings\": {", convs, prep_s);
    for (int k = 0; k < ps->n; k++)
        printf("\"%s\": %d, ", ps->names[k], count[k]);
    printf("\"fallback\": %d, \"block\": %d}, \"blocks\": %d, \"conversions\": %d, "
           "\"residual_adds\": %d, \"c16\": %d",
           count[ps->n], count[ps->n + 1], dlas_plan_n_blocks(plan),
           dlas_plan_n_conversions(plan), residual, c16);
    if (rep)
        printf(", \"auto_runs\": %d, \"auto_unclear\": %d, \"auto_blocks\": %d", rep->runs,
               rep->unclear, rep->blocks);
    printf("}\n");
    fflush(stdout);
}

static int cpu_clock;

static double now(void) { return cpu_clock ? bench_cpu_now() : bench_now(); }

static void time_runs(struct dlas_plan *plan, int64_t batch, const float *x, float *y, int warmup,
                      int repeat)
{
    double *t = malloc((size_t)repeat * sizeof *t);
    int rc = t ? DLAS_OK : dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (int r = 0; !rc && r < warmup; r++)
        rc = dlas_plan_run(plan, batch, x, y);
    for (int r = 0; !rc && r < repeat; r++) {
        double t0 = now();
        rc = dlas_plan_run(plan, batch, x, y);
        t[r] = (now() - t0) * 1e3;
    }
    if (rc) {
        die("run");
        free(t);
        return;
    }
    printf("{\"times\": [");
    for (int r = 0; r < repeat; r++)
        printf("%s%.4f", r ? ", " : "", t[r]);
    struct bench_stats s = bench_stats(t, repeat);
    char load[64];
    bench_loadavg(load, sizeof load);
    printf("], \"ms\": %.4f, \"min\": %.4f, \"max\": %.4f, \"load\": \"%s\"}\n", s.median, s.min,
           s.max, load);
    fflush(stdout);
    free(t);
}

/* s as a JSON string: quotes, backslashes and control characters escaped
 * (node names come from the graph, which a model plugin names). */
static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        const unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void profile_runs(struct dlas_plan *plan, const struct dlas_graph *g, int64_t batch,
                         const float *x, float *y, int warmup, int repeat)
{
    const int n = dlas_graph_n_nodes(g);
    double *sec = calloc((size_t)n, sizeof *sec);
    double *t = malloc((size_t)n * repeat * sizeof *t), *v = malloc((size_t)repeat * sizeof *v);
    int rc = sec && t && v ? DLAS_OK : dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (int r = 0; !rc && r < warmup; r++)
        rc = dlas_plan_run(plan, batch, x, y);
    for (int r = 0; !rc && r < repeat; r++) {
        memset(sec, 0, (size_t)n * sizeof *sec);
        rc = dlas_plan_run_timed(plan, batch, x, y, sec);
        for (int i = 0; i < n; i++)
            t[(size_t)i * repeat + r] = sec[i] * 1e3;
    }
    if (rc) {
        die("profile");
        free(sec), free(t), free(v);
        return;
    }
    printf("{\"nodes\": [");
    double total = 0;
    int first = 1;
    for (int i = 0; i < n; i++) {
        const struct dlas_node *nd = dlas_graph_node(g, i);
        if (nd->op == DLAS_OP_INPUT || dlas_plan_fused_into(plan, i) >= 0)
            continue;
        memcpy(v, t + (size_t)i * repeat, (size_t)repeat * sizeof *v);
        struct bench_stats s = bench_stats(v, repeat);
        total += s.median;
        printf("%s{\"name\": ", first ? "" : ", ");
        print_json_string(nd->name);
        printf(", \"op\": \"%s\", \"binding\": \"%s\", \"ms\": %.4f, \"min\": %.4f, "
               "\"fused\": [",
               dlas_op_name(nd->op), dlas_plan_binding(plan, i), s.median, s.min);
        for (int j = 0, k = 0; j < n; j++)
            if (dlas_plan_fused_into(plan, j) == i) {
                printf("%s", k++ ? ", " : "");
                print_json_string(dlas_graph_node(g, j)->name);
            }
        printf("]}");
        first = 0;
    }
    char load[64];
    bench_loadavg(load, sizeof load);
    printf("], \"total_ms\": %.4f, \"load\": \"%s\"}\n", total, load);
    fflush(stdout);
    free(sec), free(t), free(v);
}

static volatile float probe_sink;

/* The FMA rate of `threads` threads now, wall clock: what the machine gives
 * the plan at this moment, whatever the plan's own efficiency. */
/* Bytes the bandwidth probe reads: well past the last-level cache (32 MiB
 * here), so it measures memory, where the larger models' weights come from. */
#define PROBE_BYTES ((size_t)128 << 20)

/* Memory read rate of `threads` threads now, GB/s: each sums its part of a
 * buffer far larger than the caches. NULL buffer: 0. */
static double probe_bandwidth(int threads, const float *buf)
{
    if (!buf)
        return 0;
    const int64_t n = (int64_t)(PROBE_BYTES / sizeof(float));
    double t0 = bench_now();
#pragma omp parallel num_threads(threads)
    {
        int id = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t b = n * id / nt, e = n * (id + 1) / nt;
        float acc[16] = {0};
        for (int64_t i = b; i + 16 <= e; i += 16)
            for (int l = 0; l < 16; l++)
                acc[l] += buf[i + l];
        float s = 0;
        for (int l = 0; l < 16; l++)
            s += acc[l];
#pragma omp atomic
        probe_sink += s;
    }
    return (double)PROBE_BYTES / (bench_now() - t0) / 1e9;
}

/* What the machine gives the plan's thread count at this moment, whatever
 * the plan's own efficiency: the FMA rate (median of 3 loops of ~3 ms at
 * full speed), the memory read rate (median of 3 reads of 128 MiB) and,
 * with 2 threads or more, how far apart two threads are (median of 3 runs
 * of 2000 round trips of a cache line, ~1 ms at 500 ns). A VM can lose half
 * of its FMA rate (two vCPUs on one core) or of its memory bandwidth (a
 * neighbour streaming) for seconds, and moves its vCPUs apart and back. */
static void probe_machine(int threads)
{
    static float *buf; /* allocated and touched on the first probe */
    if (!buf && (buf = dlas_aligned_alloc(PROBE_BYTES)))
        memset(buf, 1, PROBE_BYTES);
    const long iters = 1000000; /* ~3.3 ms on a 115 GFLOP/s core */
    double r[3], m[3], l[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        r[k] = fma_loop_rate(threads, iters);
        m[k] = probe_bandwidth(threads, buf);
        if (threads >= 2)
            l[k] = line_trip_ns(2000);
    }
    struct bench_stats st = bench_stats(r, 3), sm = bench_stats(m, 3), sl = bench_stats(l, 3);
    printf("{\"gflops\": %.1f, \"gbps\": %.2f, \"line_ns\": %.1f, \"threads\": %d}\n",
           st.median, sm.median, sl.median, threads);
    fflush(stdout);
}

static int serve(struct dlas_plan *plan, const struct dlas_graph *g, const struct opts *o, int64_t in_n, int64_t out_n)
{
    float *x = dlas_aligned_alloc((size_t)in_n * sizeof *x);
    float *y = dlas_aligned_alloc((size_t)out_n * sizeof *y);
    if (!x || !y)
        return dlas_error(DLAS_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < in_n; i++)
        x[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
    char line[4096], a[2048], b[2048];
    while (fgets(line, sizeof line, stdin)) {
        int warmup, repeat;
        if (sscanf(line, "run %2047s %2047s", a, b) == 2) {
            if (read_exact(a, x, (size_t)in_n * sizeof *x) ||
                dlas_plan_run(plan, o->batch, x, y) ||
                write_all(b, y, (size_t)out_n * sizeof *y))
                die("run");
            else {
                printf("{\"ok\": 1}\n");
                fflush(stdout);
            }
        } else if (sscanf(line, "time %d %d", &warmup, &repeat) == 2 && warmup >= 0 &&
                   repeat > 0 && repeat <= 100000)
            time_runs(plan, o->batch, x, y, warmup, repeat);
        else if (sscanf(line, "profile %d %d", &warmup, &repeat) == 2 && warmup >= 0 &&
                   repeat > 0 && repeat <= 10000)
            profile_runs(plan, g, o->batch, x, y, warmup, repeat);
        else if (!strncmp(line, "probe", 5))
            probe_machine(o->threads);
        else if (!strncmp(line, "quit", 4))
            break;
        else {
            printf("{\"error\": \"unknown command\"}\n");
            fflush(stdout);
        }
    }
    dlas_aligned_free(x);
    dlas_aligned_free(y);
    return DLAS_OK;
}

int main(int argc, char **argv)
{
    struct opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc;
    cpu_clock = o.cpu_time;
    struct dlas_registry *reg = dlas_registry_new();
    if (!reg || dlas_registry_discover(reg, NULL))
        return die("plugins");
    struct dlas_rng rng;
    dlas_rng_seed(&rng, 1);
    struct dlas_host host = {sizeof host, quiet_log, dlas_aligned_alloc, dlas_aligned_free, &rng, 1};
    struct dlas_graph *g = NULL;
    if (bench_build_model(reg, o.model, o.params, o.n_params, o.c, o.h, o.w, o.classes, &host,
                          &rng, &g))
        return die("model");
    if (o.weights && dlas_checkpoint_load_graph(g, o.weights, DLAS_CKPT_STRICT))
        return die("weights");
    struct prim_set ps = {0}, fb = {0};
    if (o.single) {
        if (add_prim(reg, &ps, o.single))
            return die("--primitive");
    } else {
        if (add_prims(reg, &ps, o.prims))
            return die("--primitives");
    }
    if (o.fallback[0] && add_prim(reg, &fb, o.fallback))
        return die("--fallback");
    struct dlas_backend be;
    if (bench_backend(reg, o.threads, &host, &be))
        return die("backend");
    double t0 = bench_now();
    int *layer_prim = calloc((size_t)dlas_graph_n_nodes(g), sizeof *layer_prim);
    int *block_mask = calloc((size_t)dlas_graph_n_nodes(g), sizeof *block_mask);
    struct dlas_plan_auto_report rep = {0};
    struct dlas_plan_options po;
    dlas_plan_options_default(&po);
    if (!o.single) {
        struct dlas_plan_auto_options ao;
        dlas_plan_auto_options_default(&ao);
        ao.batch = o.batch;
        if (!layer_prim || !block_mask ||
            dlas_plan_auto_select(g, &host, &be, ps.c, ps.n, fb.n ? fb.c : NULL, &ao, layer_prim,
                                  o.blocks == 1 ? block_mask : NULL, &rep))
            return die("auto");
        po.layer_prim = layer_prim;
        po.block_mask = o.blocks == 1 ? block_mask : NULL;
    }
    po.blocks = o.blocks != 0 && (!o.single || o.blocks == 2);
    po.block_nchw = o.nchw;
    po.block_schedule = o.schedule;
    po.block_no_head = o.no_head;
    po.block_no_stem = o.no_stem;
    po.no_pool_first = o.no_pool_first;
    po.concat_copy = o.concat_copy;
    po.no_residual = o.no_residual;
    po.no_prologue = o.no_prologue;
    po.no_c16 = o.no_c16;
    struct dlas_plan *plan = NULL;
    if (dlas_plan_create_ex(g, &host, &be, ps.c, ps.n, fb.n ? fb.c : NULL, o.batch, &po, &plan))
        return die("plan");
    describe(plan, g, &ps, o.single ? NULL : &rep, bench_now() - t0);
    if (rep.text)
        fprintf(stderr, "auto: %s\n", rep.text);
    if (dlas_plan_n_conversions(plan))
        fprintf(stderr, "layout conversions: %s\n", dlas_plan_conversions(plan));
    int64_t in_n = o.batch * o.c * o.h * o.w, out_n = o.batch * dlas_plan_output_numel(plan);
    if (serve(plan, g, &o, in_n, out_n))
        return die("serve");
    free(rep.text);
    free(layer_prim);
    free(block_mask);
    dlas_plan_free(plan);
    be.ops->release(be.ctx);
    dlas_graph_free(g);
    for (int k = 0; k < ps.n; k++)
        dlas_params_free(ps.p[k]);
    for (int k = 0; k < fb.n; k++)
        dlas_params_free(fb.p[k]);
    dlas_registry_free(reg);
    return 0;
}
