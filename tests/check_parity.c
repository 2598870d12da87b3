/* Parity with PyTorch, a real peer: torchvision models with random weights
 * (tests/torch_export.py) are loaded by name into the dlas model of the same
 * architecture and the reference forward is compared with PyTorch's eval-mode
 * output. Largest relative error (dlas_rel_error) must stay below 1e-4
 * against PyTorch's float32 output and against the same model run in float64.
 *
 * Needs /usr/bin/python3 with torch and torchvision (Debian's python3-torch,
 * python3-torchvision; the python3 first on PATH may be another one). Without
 * them the program prints "SKIP: <reason>" and exits 77, which automake
 * reports as SKIP, never as PASS.
 *
 * Environment: DLAS_PYTHON overrides the interpreter; DLAS_PARITY_MODELS (a
 * space-separated subset of the names below) chooses the models. By default
 * all run, except that a sanitizer build leaves out vgg16: its 15 GMACs
 * through the double-accumulating reference convolution take ~100 s under
 * ASan and reach no code that the other models and check_graph leave
 * unexercised (the plain build runs it). */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dlas/checkpoint.h>
#include <dlas/dlas.h>

#include "testutil.h"

#define TOL 1e-4

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

struct parity_case {
    const char *name; /* torchvision's (or torch_export.py's) model name */
    const char *model;
    const char *kv[10];
    int heavy; /* left out of sanitizer builds unless asked for */
};

static const struct parity_case cases[] = {
    {"resnet18", "resnet", {"depth", "18"}, 0},
    {"resnet50", "resnet", {"depth", "50"}, 0},
    {"resnext50_32x4d", "resnet", {"depth", "50", "groups", "32", "width_per_group", "4"}, 0},
    {"wide_resnet50_2", "resnet", {"depth", "50", "width_per_group", "128"}, 1},
    {"vgg16", "vgg", {"depth", "16"}, 1},
    {"mobilenet_v2", "mobilenet", {"version", "2"}, 0},
    {"densenet121", "densenet", {"depth", "121"}, 0},
    /* Moonshine / BlockSwap blocks; the script defines them after the papers' code */
    {"wrn16_2", "wrn", {"depth", "16", "width", "2"}, 0},
    {"wrn16_2_g4", "wrn", {"depth", "16", "block", "grouped", "groups", "4"}, 0},
    {"wrn16_2_dw", "wrn", {"depth", "16", "block", "dwsep"}, 0},
    {"wrn16_2_b2", "wrn", {"depth", "16", "block", "bottleneck", "bottleneck", "2"}, 0},
    {"wrn16_2_bg2_4", "wrn",
     {"depth", "16", "block", "grouped_bottleneck", "bottleneck", "2", "groups", "4"}, 0},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static struct dlas_registry *reg;
static char dir[4096];
static int selected[N_CASES], n_selected; /* indices into cases */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Make the model wrong where it shows: the last batchnorm's running
 * variance doubled, or (no batchnorm) the last conv or linear layer's
 * weights scaled by 1.5. */
static void perturb_last_layer(struct dlas_graph *g)
{
    int last_bn = -1, last_w = -1;
    for (int id = 0; id < dlas_graph_n_nodes(g); id++) {
        const struct dlas_node *nd = dlas_graph_node(g, id);
        if (nd->op == DLAS_OP_BATCHNORM)
            last_bn = id;
        if ((nd->op == DLAS_OP_CONV2D || nd->op == DLAS_OP_LINEAR) && nd->weight.data)
            last_w = id;
    }
    struct dlas_tensor *t = last_bn >= 0 ? &dlas_graph_node(g, last_bn)->running_var
                                         : &dlas_graph_node(g, last_w)->weight;
    ck_assert_int_ge(last_bn >= 0 ? last_bn : last_w, 0);
    for (int64_t i = 0; i < dlas_tensor_numel(t); i++)
        dlas_f32(t)[i] *= last_bn >= 0 ? 2.0f : 1.5f;
}

/* Relative error of g's output, run as a plan (primitive `prim` on two
 * OpenMP threads, im2col-gemm where it refuses a layer, batchnorm folded),
 * against want. */
static double plan_error_on(const struct dlas_graph *g, const struct dlas_tensor *in,
                            const struct dlas_tensor *want, int64_t n, const char *prim)
{
    struct dlas_rng rng;
    struct dlas_host host;
    dlas_rng_seed(&rng, 1);
    dlas_host_init(&host, &rng, 1);
    const struct dlas_component *bc = dlas_registry_find(reg, DLAS_KIND_BACKEND, "openmp");
    const struct dlas_component *pc = dlas_registry_find(reg, DLAS_KIND_PRIMITIVE, prim);
    const struct dlas_component *fc = dlas_registry_find(reg, DLAS_KIND_PRIMITIVE, "im2col-gemm");
    ck_assert_msg(bc && pc && fc, "openmp, %s or im2col-gemm not found: %s", prim,
                  dlas_last_error());
    struct dlas_params *bp = NULL, *pp = NULL, *fp = NULL;
    ck_assert_int_eq(dlas_params_defaults(bc->params, &bp), 0);
    ck_assert_int_eq(dlas_params_set(bp, "threads", "2", "check_parity"), 0);
    if (pc->params)
        ck_assert_int_eq(dlas_params_defaults(pc->params, &pp), 0);
    if (fc->params)
        ck_assert_int_eq(dlas_params_defaults(fc->params, &fp), 0);
    struct dlas_backend be = {bc->ops, NULL};
    ck_assert_int_eq(be.ops->init(&host, bp, &be.ctx), 0);
    struct dlas_primitive_choice choice = {pc->name, pc, pp}, fallback = {fc->name, fc, fp};
    struct dlas_plan *plan = NULL;
    ck_assert_msg(dlas_plan_create(g, &host, &be, &choice, 1, &fallback, 1, &plan) == 0, "%s",
                  dlas_last_error());
    float *out = malloc((size_t)n * sizeof *out);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(dlas_plan_run(plan, 1, dlas_f32(in), out), 0);
    double e = dlas_rel_error(out, dlas_f32(want), n);
    free(out);
    dlas_plan_free(plan);
    be.ops->release(be.ctx);
    dlas_params_free(bp);
    dlas_params_free(pp);
    dlas_params_free(fp);
    return e;
}

static double plan_error(const struct dlas_graph *g, const struct dlas_tensor *in,
                         const struct dlas_tensor *want, int64_t n)
{
    return plan_error_on(g, in, want, n, "im2col-gemm");
}

/* Read a tensor as f32 (the float64 reference is rounded once, which costs
 * far less than the tolerance). */
static void read_tensor(struct dlas_ckpt *c, const char *name, struct dlas_tensor *t)
{
    struct dlas_tensor raw;
    memset(t, 0, sizeof *t);
    memset(&raw, 0, sizeof raw);
    ck_assert_msg(dlas_ckpt_read_tensor(c, name, &raw) == 0, "%s", dlas_last_error());
    if (raw.dtype == DLAS_F32) {
        *t = raw;
        return;
    }
    ck_assert_int_eq(raw.dtype, DLAS_F64);
    ck_assert_int_eq(dlas_tensor_alloc(t, DLAS_F32, raw.ndim, raw.dims), 0);
    for (int64_t i = 0; i < dlas_tensor_numel(&raw); i++)
        dlas_f32(t)[i] = (float)((const double *)raw.data)[i];
    dlas_tensor_free(&raw);
}

START_TEST(test_parity)
{
    const struct parity_case *t = &cases[selected[_i]];
    char wpath[4200], iopath[4200];
    snprintf(wpath, sizeof wpath, "%s/%s.ckpt", dir, t->name);
    snprintf(iopath, sizeof iopath, "%s/%s.io.ckpt", dir, t->name);

    struct dlas_ckpt *io = NULL;
    ck_assert_msg(dlas_ckpt_open(iopath, &io) == 0, "%s", dlas_last_error());
    struct dlas_tensor in, want, want64, got;
    read_tensor(io, "input", &in);
    read_tensor(io, "output", &want);
    read_tensor(io, "output_f64", &want64);
    dlas_ckpt_close(io);
    ck_assert_int_eq(in.ndim, 4);
    ck_assert_int_eq(want.ndim, 2);

    const struct dlas_component *comp = dlas_registry_find(reg, DLAS_KIND_MODEL, t->model);
    ck_assert_msg(comp != NULL, "%s", dlas_last_error());
    struct dlas_params *p = NULL;
    ck_assert_int_eq(dlas_params_defaults(comp->params, &p), 0);
    for (int k = 0; t->kv[k]; k += 2)
        ck_assert_msg(dlas_params_set(p, t->kv[k], t->kv[k + 1], "check_parity") == 0, "%s",
                      dlas_last_error());
    struct dlas_rng rng;
    struct dlas_host host;
    dlas_rng_seed(&rng, 1);
    dlas_host_init(&host, &rng, 1);
    struct dlas_graph *g = dlas_graph_new();
    const struct dlas_model_ops *ops = comp->ops;
    ck_assert_msg(ops->build(&host, p, (int)in.dims[1], (int)in.dims[2], (int)in.dims[3],
                             (int)want.dims[1], g) == 0,
                  "%s: %s", t->name, dlas_last_error());
    /* strict: every graph tensor comes from PyTorch and every PyTorch tensor
     * has a node, so the names and shapes agree one to one */
    double t0 = now();
    ck_assert_msg(dlas_checkpoint_load_graph(g, wpath, DLAS_CKPT_STRICT) == 0, "%s: %s",
                  t->name, dlas_last_error());
    double t1 = now();
    ck_assert_msg(dlas_graph_forward_ref(g, &in, &got) == 0, "%s: %s", t->name,
                  dlas_last_error());
    double t2 = now();
    ck_assert_int_eq(dlas_tensor_numel(&got), dlas_tensor_numel(&want));
    int64_t n = dlas_tensor_numel(&want);
    double e32 = dlas_rel_error(dlas_f32(&got), dlas_f32(&want), n);
    double e64 = dlas_rel_error(dlas_f32(&got), dlas_f32(&want64), n);
    double torch_gap = dlas_rel_error(dlas_f32(&want), dlas_f32(&want64), n);
    struct dlas_graph_stats s;
    dlas_graph_stats(g, &s);
    fprintf(stderr,
            "parity %-14s %3lldx%lld  %11lld params  rel.err %.2e vs torch f32, %.2e vs f64 "
            "(torch f32 vs f64 %.2e)  load %.1f s, forward %.1f s\n",
            t->name, (long long)in.dims[2], (long long)in.dims[3], (long long)s.params, e32,
            e64, torch_gap, t1 - t0, t2 - t1);
    ck_assert_msg(e32 < TOL, "%s: relative error %.3g against PyTorch (float32)", t->name, e32);
    ck_assert_msg(e64 < TOL, "%s: relative error %.3g against PyTorch (float64)", t->name, e64);

    /* The comparison must be able to fail: the output is not flat, and a
     * deliberately wrong model (the last batchnorm's running variance
     * doubled; the last layer's weights scaled, where there is no
     * batchnorm) is far outside the tolerance, on every model. */
    float lo = dlas_f32(&want64)[0], hi = lo, big = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = dlas_f32(&want64)[i];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        big = fabsf(v) > big ? fabsf(v) : big;
    }
    ck_assert_msg(hi - lo > 0.01f * big, "%s: PyTorch's output is nearly constant", t->name);
    /* on the large models the control runs as a plan: it must first agree
     * as loaded, so that its failure below is the perturbation's doing */
    int large = in.dims[2] * in.dims[3] > 64 * 64;
    if (large) {
        double e_plan = plan_error(g, &in, &want64, n);
        ck_assert_msg(e_plan < 10 * TOL, "%s: the plan disagrees as loaded (%.3g)", t->name,
                      e_plan);
    }
    /* the 1x1 layers on `pointwise`, which also runs the residual adds that
     * follow them (ResNet-50's bottlenecks, MobileNet-v2's projections) */
    double e_pw = plan_error_on(g, &in, &want64, n, "pointwise");
    ck_assert_msg(e_pw < 10 * TOL, "%s: the plan on pointwise disagrees (%.3g)", t->name, e_pw);
    perturb_last_layer(g);
    double e_bad;
    if (!large) {
        dlas_tensor_free(&got);
        ck_assert_int_eq(dlas_graph_forward_ref(g, &in, &got), 0);
        e_bad = dlas_rel_error(dlas_f32(&got), dlas_f32(&want64), n);
    } else
        /* the reference forward takes minutes at 224x224: the wrong model
         * runs as a compiled plan, which takes a second */
        e_bad = plan_error(g, &in, &want64, n);
    ck_assert_msg(e_bad > 100 * TOL, "%s: a deliberately wrong model still agrees (%.3g)",
                  t->name, e_bad);

    dlas_tensor_free(&in);
    dlas_tensor_free(&want);
    dlas_tensor_free(&want64);
    dlas_tensor_free(&got);
    dlas_params_free(p);
    dlas_graph_free(g);
    unlink(wpath); /* vgg16's weights alone are 553 MB */
    unlink(iopath);
}
END_TEST

/* Run a shell command, keep its output's last line in why. */
static int run_capture(const char *cmd, char *why, size_t len)
{
    FILE *f = popen(cmd, "r");
    if (!f) {
        snprintf(why, len, "cannot run: %.200s", cmd);
        return -1;
    }
    char line[1024];
    why[0] = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (line[0])
            snprintf(why, len, "%s", line);
    }
    int st = pclose(f);
    return st == -1 ? -1 : (WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* Whether `name` is one of the space-separated words of `list`. */
static int listed(const char *list, const char *name)
{
    size_t l = strlen(name);
    for (const char *w = list; *w;) {
        size_t n = strcspn(w, " ");
        if (n == l && !strncmp(w, name, l))
            return 1;
        w += n;
        w += strspn(w, " ");
    }
    return 0;
}

static void remove_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    char f[8192];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(f, sizeof f, "%s/%s", path, e->d_name);
            unlink(f);
        }
    closedir(d);
    rmdir(path);
}

int main(void)
{
    const char *py = getenv("DLAS_PYTHON") ? getenv("DLAS_PYTHON") : "/usr/bin/python3";
    const char *src = getenv("DLAS_SRCDIR") ? getenv("DLAS_SRCDIR") : ".";
    char script[4096], cmd[16384], why[1024];
    snprintf(script, sizeof script, "%s/tests/torch_export.py", src);
    if (access(script, R_OK)) {
        fprintf(stderr, "check_parity: %s not found (set DLAS_SRCDIR)\n", script);
        return 1;
    }
    snprintf(cmd, sizeof cmd, "'%s' '%s' --check 2>&1", py, script);
    int rc = run_capture(cmd, why, sizeof why);
    if (rc != 0) {
        printf("SKIP: check_parity: %s cannot import torch and torchvision (%s); install "
               "python3-torch python3-torchvision\n",
               py, why[0] ? why : "no output");
        return 77;
    }
    fprintf(stderr, "check_parity: %s: %s\n", py, why);

    const char *only = getenv("DLAS_PARITY_MODELS");
    char names[2048] = "";
    for (int i = 0; i < N_CASES; i++) {
        if (!only && SANITIZED && cases[i].heavy) {
            fprintf(stderr, "check_parity: %s left out of this sanitizer build (too slow "
                            "there; the plain build runs it, or set DLAS_PARITY_MODELS)\n",
                    cases[i].name);
            continue;
        }
        if (!only || listed(only, cases[i].name)) {
            selected[n_selected++] = i;
            snprintf(names + strlen(names), sizeof names - strlen(names), " %s", cases[i].name);
        }
    }
    if (!names[0]) {
        fprintf(stderr, "check_parity: DLAS_PARITY_MODELS='%s' names no model\n", only);
        return 1;
    }

    const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%s/dlas-parity-XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        perror("check_parity: mkdtemp");
        return 1;
    }
    double t0 = now();
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s'%s >&2", py, script, dir, names);
    rc = system(cmd);
    fprintf(stderr, "check_parity: export took %.1f s\n", now() - t0);
    if (rc != 0) {
        fprintf(stderr, "check_parity: the export failed (status %d): %s\n", rc, cmd);
        remove_dir(dir);
        return 1;
    }

    if (!(reg = dlas_test_registry("check_parity"))) {
        remove_dir(dir);
        return 1;
    }
    Suite *s = suite_create("parity");
    TCase *tc = dlas_test_case(s, "torch", NULL, NULL, 600);
    tcase_add_loop_test(tc, test_parity, 0, n_selected);
    int failed = dlas_test_run(s);
    dlas_registry_free(reg);
    remove_dir(dir);
    return failed;
}
