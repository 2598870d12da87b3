/* Helpers shared by the bench programs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "conv_shape.h"
#include <dlas/dlas.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double bench_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct bench_stats bench_stats(double *v, int n)
{
    struct bench_stats s = {0, 0, 0};
    if (n < 1)
        return s;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    s.min = v[0];
    s.max = v[n - 1];
    s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    return s;
}

void bench_loadavg(char *buf, size_t len)
{
    double a[3];
    dlas_sys_loadavg(a);
    snprintf(buf, len, "load average %.2f %.2f %.2f", a[0], a[1], a[2]);
}

int bench_backend(struct dlas_registry *reg, int threads, const struct dlas_host *host,
                  struct dlas_backend *be)
{
    const struct dlas_component *c = dlas_registry_find(reg, DLAS_KIND_BACKEND, "openmp");
    if (!c)
        return DLAS_ERR_NOTFOUND;
    struct dlas_params *p = NULL;
    char t[16];
    snprintf(t, sizeof t, "%d", threads);
    int rc = dlas_params_defaults(c->params, &p);
    if (!rc)
        rc = dlas_params_set(p, "threads", t, "bench");
    be->ops = c->ops;
    be->ctx = NULL;
    if (!rc)
        rc = be->ops->init(host, p, &be->ctx);
    dlas_params_free(p);
    return rc;
}

struct named {
    const char *name;
    int count;
    const char *shape;
};

/* torchvision resnet18 at 224x224 */
static const struct named resnet18[] = {
    {"conv1", 1, "3x224x224-64:k7s2p3"},      {"l1.conv", 4, "64x56x56-64:k3p1"},
    {"l2.0.conv1", 1, "64x56x56-128:k3s2p1"}, {"l2.conv", 3, "128x28x28-128:k3p1"},
    {"l2.0.down", 1, "64x56x56-128:k1s2"},    {"l3.0.conv1", 1, "128x28x28-256:k3s2p1"},
    {"l3.conv", 3, "256x14x14-256:k3p1"},     {"l3.0.down", 1, "128x28x28-256:k1s2"},
    {"l4.0.conv1", 1, "256x14x14-512:k3s2p1"}, {"l4.conv", 3, "512x7x7-512:k3p1"},
    {"l4.0.down", 1, "256x14x14-512:k1s2"},   {NULL, 0, NULL}};
static const struct named resnet18_3x3[] = {
    {"l1.conv", 4, "64x56x56-64:k3p1"},   {"l2.conv", 3, "128x28x28-128:k3p1"},
    {"l3.conv", 3, "256x14x14-256:k3p1"}, {"l4.conv", 3, "512x7x7-512:k3p1"},
    {NULL, 0, NULL}};
/* ResNet-18 for 32x32 inputs (3x3 stem, no pool: kuangliu/pytorch-cifar) */
static const struct named cifar_resnet18[] = {
    {"conv1", 1, "3x32x32-64:k3p1"},         {"l1.conv", 4, "64x32x32-64:k3p1"},
    {"l2.0.conv1", 1, "64x32x32-128:k3s2p1"}, {"l2.conv", 3, "128x16x16-128:k3p1"},
    {"l2.0.down", 1, "64x32x32-128:k1s2"},   {"l3.0.conv1", 1, "128x16x16-256:k3s2p1"},
    {"l3.conv", 3, "256x8x8-256:k3p1"},      {"l3.0.down", 1, "128x16x16-256:k1s2"},
    {"l4.0.conv1", 1, "256x8x8-512:k3s2p1"}, {"l4.conv", 3, "512x4x4-512:k3p1"},
    {"l4.0.down", 1, "256x8x8-512:k1s2"},    {NULL, 0, NULL}};
/* torchvision mobilenet_v2 at 224x224: depthwise layers */
#define MBV2_DW                                                                            \
    {"dw32@112", 1, "32x112x112-32:k3p1g32"}, {"dw96@112s2", 1, "96x112x112-96:k3s2p1g96"},   \
        {"dw144@56", 1, "144x56x56-144:k3p1g144"},                                          \
        {"dw144@56s2", 1, "144x56x56-144:k3s2p1g144"},                                      \
        {"dw192@28", 2, "192x28x28-192:k3p1g192"},                                          \
        {"dw192@28s2", 1, "192x28x28-192:k3s2p1g192"},                                      \
        {"dw384@14", 4, "384x14x14-384:k3p1g384"}, {"dw576@14", 2, "576x14x14-576:k3p1g576"}, \
        {"dw576@14s2", 1, "576x14x14-576:k3s2p1g576"},                                      \
        {"dw960@7", 3, "960x7x7-960:k3p1g960"}
static const struct named mbv2_dw[] = {MBV2_DW, {NULL, 0, NULL}};
static const struct named mbv2[] = {
    {"stem", 1, "3x224x224-32:k3s2p1"}, MBV2_DW,
    {"pw32-16@112", 1, "32x112x112-16"}, {"pw16-96@112", 1, "16x112x112-96"},
    {"pw96-24@56", 1, "96x56x56-24"},    {"pw24-144@56", 2, "24x56x56-144"},
    {"pw144-24@56", 1, "144x56x56-24"},  {"pw144-32@28", 1, "144x28x28-32"},
    {"pw32-192@28", 3, "32x28x28-192"},  {"pw192-32@28", 2, "192x28x28-32"},
    {"pw192-64@14", 1, "192x14x14-64"},  {"pw64-384@14", 4, "64x14x14-384"},
    {"pw384-64@14", 3, "384x14x14-64"},  {"pw384-96@14", 1, "384x14x14-96"},
    {"pw96-576@14", 3, "96x14x14-576"},  {"pw576-96@14", 2, "576x14x14-96"},
    {"pw576-160@7", 1, "576x7x7-160"},   {"pw160-960@7", 3, "160x7x7-960"},
    {"pw960-160@7", 2, "960x7x7-160"},   {"pw960-320@7", 1, "960x7x7-320"},
    {"pw320-1280@7", 1, "320x7x7-1280"}, {NULL, 0, NULL}};
/* ResNeXt-50 32x4d's grouped 3x3 convolutions */
static const struct named grouped[] = {
    {"rx.l1", 3, "128x56x56-128:k3p1g32"},  {"rx.l2", 4, "256x28x28-256:k3p1g32"},
    {"rx.l3", 6, "512x14x14-512:k3p1g32"},  {"rx.l4", 3, "1024x7x7-1024:k3p1g32"},
    {NULL, 0, NULL}};
static const struct named key[] = {{"key", 1, "64x56x56-64:k3p1"}, {NULL, 0, NULL}};

static const struct {
    const char *name;
    const struct named *set;
} sets[] = {{"resnet18", resnet18},       {"resnet18-3x3", resnet18_3x3},
            {"cifar-resnet18", cifar_resnet18}, {"mobilenetv2", mbv2},
            {"mobilenetv2-dw", mbv2_dw},  {"grouped", grouped},
            {"key", key}};

int bench_layer_set(const char *spec, struct bench_layer *out, int max)
{
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        if (!strcmp(spec, sets[i].name)) {
            int n = 0;
            for (const struct named *l = sets[i].set; l->name && n < max; l++, n++) {
                snprintf(out[n].name, sizeof out[n].name, "%s", l->name);
                out[n].count = l->count;
                if (cli_conv_shape_parse(l->shape, &out[n].d))
                    return -1;
            }
            return n;
        }
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", spec);
    int n = 0;
    for (char *tok = strtok(buf, ","); tok && n < max; tok = strtok(NULL, ","), n++) {
        snprintf(out[n].name, sizeof out[n].name, "layer%d", n);
        out[n].count = 1;
        if (cli_conv_shape_parse(tok, &out[n].d))
            return -1;
    }
    return n;
}

int bench_prim_parse(struct dlas_registry *reg, const char *arg, struct bench_prim *p)
{
    snprintf(p->label, sizeof p->label, "%s", arg);
    char name[128];
    const char *colon = strchr(arg, ':');
    snprintf(name, sizeof name, "%.*s", colon ? (int)(colon - arg) : (int)strlen(arg), arg);
    p->comp = dlas_registry_find(reg, DLAS_KIND_PRIMITIVE, name);
    if (!p->comp)
        return -1;
    p->params = NULL;
    if (p->comp->params && dlas_params_defaults(p->comp->params, &p->params))
        return -1;
    if (!colon)
        return 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", colon + 1);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '=');
        if (!eq || !p->params)
            return dlas_error(DLAS_ERR_INVALID, "'%s': expected key=value", tok), -1;
        *eq = '\0';
        if (dlas_params_set(p->params, tok, eq + 1, "command line"))
            return -1;
    }
    return 0;
}

int bench_build_model(struct dlas_registry *reg, const char *model, const char *const *settings,
                      int n, int c, int h, int w, int classes, const struct dlas_host *host,
                      struct dlas_rng *rng, struct dlas_graph **out)
{
    *out = NULL;
    const struct dlas_component *mc = dlas_registry_find(reg, DLAS_KIND_MODEL, model);
    if (!mc)
        return -1; /* the registry said which models there are */
    struct dlas_params *mp = NULL;
    if (dlas_params_defaults(mc->params, &mp))
        return -1;
    for (int i = 0; i < n; i++)
        if (dlas_params_apply(mp, settings[i], "command line")) {
            dlas_params_free(mp);
            return -1;
        }
    struct dlas_graph *g = dlas_graph_new();
    int rc = !g || ((const struct dlas_model_ops *)mc->ops)->build(host, mp, c, h, w, classes, g) ||
             dlas_graph_status(g) || dlas_graph_init_weights(g, rng);
    dlas_params_free(mp);
    if (rc) {
        if (!g)
            dlas_error(DLAS_ERR_NOMEM, "out of memory");
        dlas_graph_free(g);
        return -1;
    }
    *out = g;
    return 0;
}
