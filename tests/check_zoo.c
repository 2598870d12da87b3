/* The model zoo, through the registry as an experiment finds it.
 *
 * Parameter counts are those of the reference implementations, never of this
 * code: torchvision's for the ImageNet networks (sum of p.numel() over
 * model.parameters(), so BN running statistics are excluded, as in
 * dlas_graph_stats), the papers' own code for the rest, recomputed from
 * their definitions: the CIFAR ResNets with torchvision's projection
 * shortcuts (He et al.'s option B), WRN-d-k as in Zagoruyko & Komodakis'
 * and Moonshine's code, DenseNet-BC as torchvision's DenseNet class with a
 * 3x3 stem, MobileNet v1 as the paper's Table 1 (4.2M; Keras: 4,231,976
 * trainable). Numerical agreement with PyTorch is check_parity's job. */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/dlas.h>

#include "testutil.h"

static struct dlas_registry *reg;

/* Build model `name` for c x h x w and `classes`, with name/value overrides
 * ending in NULL. Returns the graph, or NULL with the message left in
 * dlas_last_error() (the build status in *status). */
static struct dlas_graph *build_v(const char *name, int c, int h, int w, int classes,
                                  int *status, va_list ap)
{
    const struct dlas_component *comp = dlas_registry_find(reg, DLAS_KIND_MODEL, name);
    ck_assert_msg(comp != NULL, "model '%s' not found through the registry (DLAS_PLUGIN_PATH=%s): %s",
                  name, getenv("DLAS_PLUGIN_PATH") ? getenv("DLAS_PLUGIN_PATH") : "(unset)",
                  dlas_last_error());
    struct dlas_params *p = NULL;
    ck_assert_msg(dlas_params_defaults(comp->params, &p) == 0, "%s", dlas_last_error());
    const char *k;
    while ((k = va_arg(ap, const char *))) {
        const char *v = va_arg(ap, const char *);
        ck_assert_msg(dlas_params_set(p, k, v, "check_zoo") == 0, "%s: %s = %s: %s", name, k, v,
                      dlas_last_error());
    }
    struct dlas_rng rng;
    struct dlas_host host;
    dlas_rng_seed(&rng, 7);
    dlas_host_init(&host, &rng, 7);
    struct dlas_graph *g = dlas_graph_new();
    ck_assert_ptr_nonnull(g);
    dlas_clear_error();
    const struct dlas_model_ops *ops = comp->ops;
    int rc = ops->build(&host, p, c, h, w, classes, g);
    if (!rc)
        rc = dlas_graph_status(g);
    if (!rc)
        rc = dlas_graph_validate(g);
    dlas_params_free(p);
    *status = rc;
    if (rc) {
        dlas_graph_free(g);
        return NULL;
    }
    return g;
}

static struct dlas_graph *build(const char *name, int c, int h, int w, int classes, ...)
{
    va_list ap;
    int rc;
    va_start(ap, classes);
    struct dlas_graph *g = build_v(name, c, h, w, classes, &rc, ap);
    va_end(ap);
    ck_assert_msg(g != NULL, "building %s: %s", name, dlas_last_error());
    return g;
}

/* Build must fail, with a message containing `needle`. */
static void build_fails(const char *needle, const char *name, int c, int h, int w, int classes,
                        ...)
{
    va_list ap;
    int rc;
    va_start(ap, classes);
    struct dlas_graph *g = build_v(name, c, h, w, classes, &rc, ap);
    va_end(ap);
    ck_assert_msg(g == NULL, "%s built, but should have been refused (%s)", name, needle);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(dlas_last_error(), needle) != NULL, "message \"%s\" lacks \"%s\"",
                  dlas_last_error(), needle);
}

static int64_t params_of(const struct dlas_graph *g)
{
    struct dlas_graph_stats s;
    ck_assert_int_eq(dlas_graph_stats(g, &s), 0);
    return s.params;
}

/* The node called name, which must exist. */
static const struct dlas_node *node_of(const struct dlas_graph *g, const char *name)
{
    int id = dlas_graph_find(g, name);
    ck_assert_msg(id >= 0, "no node '%s'", name);
    return dlas_graph_node(g, id);
}

static void assert_node(const struct dlas_graph *g, const char *name, enum dlas_op op)
{
    const struct dlas_node *n = node_of(g, name);
    ck_assert_msg(n->op == op, "'%s' is %s, expected %s", name, dlas_op_name(n->op),
                  dlas_op_name(op));
}

static void assert_output(const struct dlas_graph *g, int64_t classes)
{
    const struct dlas_node *out = dlas_graph_node(g, dlas_graph_output(g));
    ck_assert_int_eq(out->out_ndim, 1);
    ck_assert_int_eq(out->out_shape[0], classes);
}

/* ---- exact parameter counts at the reference shapes ----------------------- */

/* Build a table case: `model` with the name/value pairs of kv (ending in
 * NULL), its host drawing from rng seeded with seed. The build must succeed. */
static struct dlas_graph *build_case(const char *label, const char *model,
                                     const char *const *kv, int c, int h, int w, int classes,
                                     uint64_t seed, struct dlas_rng *rng)
{
    const struct dlas_component *comp = dlas_registry_find(reg, DLAS_KIND_MODEL, model);
    ck_assert_msg(comp != NULL, "%s: %s", label, dlas_last_error());
    struct dlas_params *p = NULL;
    ck_assert_int_eq(dlas_params_defaults(comp->params, &p), 0);
    for (int k = 0; kv[k]; k += 2)
        ck_assert_msg(dlas_params_set(p, kv[k], kv[k + 1], "check_zoo") == 0, "%s: %s", label,
                      dlas_last_error());
    struct dlas_host host;
    dlas_rng_seed(rng, seed);
    dlas_host_init(&host, rng, seed);
    struct dlas_graph *g = dlas_graph_new();
    const struct dlas_model_ops *ops = comp->ops;
    ck_assert_msg(ops->build(&host, p, c, h, w, classes, g) == 0, "%s: %s", label,
                  dlas_last_error());
    dlas_params_free(p);
    return g;
}

struct count_case {
    const char *label, *model;
    const char *kv[8]; /* name, value pairs, NULL-terminated */
    int c, h, w, classes;
    int64_t params;
};

static const struct count_case counts[] = {
    /* torchvision, 3x224x224, 1000 classes */
    {"resnet18", "resnet", {"depth", "18"}, 3, 224, 224, 1000, 11689512},
    {"resnet34", "resnet", {"depth", "34"}, 3, 224, 224, 1000, 21797672},
    {"resnet50", "resnet", {"depth", "50"}, 3, 224, 224, 1000, 25557032},
    {"resnet101", "resnet", {"depth", "101"}, 3, 224, 224, 1000, 44549160},
    {"resnet152", "resnet", {"depth", "152"}, 3, 224, 224, 1000, 60192808},
    {"resnext50_32x4d", "resnet", {"depth", "50", "groups", "32", "width_per_group", "4"}, 3,
     224, 224, 1000, 25028904},
    {"resnext101_32x8d", "resnet", {"depth", "101", "groups", "32", "width_per_group", "8"}, 3,
     224, 224, 1000, 88791336},
    {"resnext101_64x4d", "resnet", {"depth", "101", "groups", "64", "width_per_group", "4"}, 3,
     224, 224, 1000, 83455272},
    {"wide_resnet50_2", "resnet", {"depth", "50", "width_per_group", "128"}, 3, 224, 224, 1000,
     68883240},
    {"wide_resnet101_2", "resnet", {"depth", "101", "width_per_group", "128"}, 3, 224, 224, 1000,
     126886696},
    {"vgg11", "vgg", {"depth", "11"}, 3, 224, 224, 1000, 132863336},
    {"vgg13", "vgg", {"depth", "13"}, 3, 224, 224, 1000, 133047848},
    {"vgg16", "vgg", {"depth", "16"}, 3, 224, 224, 1000, 138357544},
    {"vgg19", "vgg", {"depth", "19"}, 3, 224, 224, 1000, 143667240},
    {"vgg11_bn", "vgg", {"depth", "11", "batchnorm", "true"}, 3, 224, 224, 1000, 132868840},
    {"vgg13_bn", "vgg", {"depth", "13", "batchnorm", "true"}, 3, 224, 224, 1000, 133053736},
    {"vgg16_bn", "vgg", {"depth", "16", "batchnorm", "true"}, 3, 224, 224, 1000, 138365992},
    {"vgg19_bn", "vgg", {"depth", "19", "batchnorm", "true"}, 3, 224, 224, 1000, 143678248},
    {"mobilenet_v2", "mobilenet", {"version", "2"}, 3, 224, 224, 1000, 3504872},
    {"mobilenet_v2 x0.5", "mobilenet", {"version", "2", "width", "0.5"}, 3, 224, 224, 1000,
     1968680},
    {"mobilenet_v2 x1.4", "mobilenet", {"version", "2", "width", "1.4"}, 3, 224, 224, 1000,
     6108776},
    {"densenet121", "densenet", {"depth", "121"}, 3, 224, 224, 1000, 7978856},
    {"densenet161", "densenet", {"depth", "161"}, 3, 224, 224, 1000, 28681000},
    {"densenet169", "densenet", {"depth", "169"}, 3, 224, 224, 1000, 14149480},
    {"densenet201", "densenet", {"depth", "201"}, 3, 224, 224, 1000, 20013928},
    /* MobileNet v1 (paper: 4.2M at width 1.0) */
    {"mobilenet_v1", "mobilenet", {"version", "1"}, 3, 224, 224, 1000, 4231976},
    /* CIFAR-10 shapes, 3x32x32, 10 classes */
    {"resnet20", "resnet", {"depth", "20"}, 3, 32, 32, 10, 272474},
    {"resnet32", "resnet", {"depth", "32"}, 3, 32, 32, 10, 466906},
    {"resnet44", "resnet", {"depth", "44"}, 3, 32, 32, 10, 661338},
    {"resnet56", "resnet", {"depth", "56"}, 3, 32, 32, 10, 855770},
    {"resnet110", "resnet", {"depth", "110"}, 3, 32, 32, 10, 1730714},
    {"wrn-16-1", "wrn", {"depth", "16", "width", "1"}, 3, 32, 32, 10, 175066},
    {"wrn-16-2", "wrn", {"depth", "16", "width", "2"}, 3, 32, 32, 10, 691674},
    {"wrn-16-8", "wrn", {"depth", "16", "width", "8"}, 3, 32, 32, 10, 10961370},
    {"wrn-28-10", "wrn", {"depth", "28", "width", "10"}, 3, 32, 32, 10, 36479194},
    {"wrn-40-1", "wrn", {"depth", "40", "width", "1"}, 3, 32, 32, 10, 563930},
    {"wrn-40-2", "wrn", {"depth", "40", "width", "2"}, 3, 32, 32, 10, 2243546},
    {"wrn-40-4", "wrn", {"depth", "40", "width", "4"}, 3, 32, 32, 10, 8949210},
    /* Moonshine / BlockSwap cheap blocks on WRN-40-2 and WRN-16-2 */
    {"wrn-40-2 G(4)", "wrn", {"block", "grouped", "groups", "4"}, 3, 32, 32, 10, 814650},
    {"wrn-40-2 D", "wrn", {"block", "dwsep"}, 3, 32, 32, 10, 293514},
    {"wrn-40-2 B(2)", "wrn", {"block", "bottleneck", "bottleneck", "2"}, 3, 32, 32, 10, 431834},
    {"wrn-40-2 BG(2,4)", "wrn", {"block", "grouped_bottleneck", "bottleneck", "2", "groups", "4"},
     3, 32, 32, 10, 214106},
    {"wrn-16-2 G(4)", "wrn", {"depth", "16", "block", "grouped"}, 3, 32, 32, 10, 248378},
    {"wrn-16-2 D", "wrn", {"depth", "16", "block", "dwsep"}, 3, 32, 32, 10, 98186},
    {"wrn-16-2 B(2)", "wrn", {"depth", "16", "block", "bottleneck"}, 3, 32, 32, 10, 148698},
    {"wrn-16-2 BG(2,4)", "wrn", {"depth", "16", "block", "grouped_bottleneck"}, 3, 32, 32, 10,
     76122},
    {"densenet-bc-100 k=12", "densenet", {"depth", "100"}, 3, 32, 32, 10, 769162},
};

START_TEST(test_counts)
{
    const struct count_case *t = &counts[_i];
    struct dlas_rng rng;
    struct dlas_graph *g =
        build_case(t->label, t->model, t->kv, t->c, t->h, t->w, t->classes, 1, &rng);
    ck_assert_msg(dlas_graph_validate(g) == 0, "%s: %s", t->label, dlas_last_error());
    int64_t n = params_of(g);
    fprintf(stderr, "  %-22s %3dx%3dx%3d  %12lld parameters\n", t->label, t->c, t->h, t->w,
            (long long)n);
    ck_assert_msg(n == t->params, "%s: %lld parameters, the reference has %lld", t->label,
                  (long long)n, (long long)t->params);
    assert_output(g, t->classes);
    dlas_graph_free(g);
}
END_TEST

/* ---- structure and names ---------------------------------------------------- */

START_TEST(test_resnet_structure)
{
    struct dlas_graph *g = build("resnet", 3, 224, 224, 1000, "depth", "50", NULL);
    assert_node(g, "conv1", DLAS_OP_CONV2D);
    assert_node(g, "maxpool", DLAS_OP_MAXPOOL);
    assert_node(g, "layer1.0.downsample.0", DLAS_OP_CONV2D);
    assert_node(g, "layer1.0.downsample.1", DLAS_OP_BATCHNORM);
    assert_node(g, "layer4.2.conv3", DLAS_OP_CONV2D);
    assert_node(g, "layer4.2.add", DLAS_OP_ADD);
    assert_node(g, "fc", DLAS_OP_LINEAR);
    ck_assert_int_lt(dlas_graph_find(g, "layer1.1.downsample.0"), 0);
    /* v1.5: the stride is on the 3x3 */
    const struct dlas_node *c2 = node_of(g, "layer2.0.conv2");
    ck_assert_int_eq(c2->attr.conv.stride_h, 2);
    const struct dlas_node *l4 = node_of(g, "layer4.2.relu3");
    ck_assert_int_eq(l4->out_shape[0], 2048);
    ck_assert_int_eq(l4->out_shape[1], 7);
    dlas_graph_free(g);

    /* a small input gets the CIFAR stem; the depth keeps the ImageNet layout */
    g = build("resnet", 3, 32, 32, 10, "depth", "18", NULL);
    ck_assert_int_lt(dlas_graph_find(g, "maxpool"), 0);
    ck_assert_int_eq(node_of(g, "conv1")->attr.conv.kh, 3);
    ck_assert_int_eq(params_of(g), 11689512 - 1000 * 513 + 10 * 513 - 64 * 3 * (49 - 9));
    dlas_graph_free(g);

    /* and 6n+2 the CIFAR layout, even on a large input with layout forced */
    g = build("resnet", 3, 32, 32, 10, "depth", "20", NULL);
    ck_assert_int_lt(dlas_graph_find(g, "layer4.0.conv1"), 0);
    const struct dlas_node *l3 = node_of(g, "layer3.2.relu2");
    ck_assert_int_eq(l3->out_shape[0], 64);
    ck_assert_int_eq(l3->out_shape[1], 8);
    dlas_graph_free(g);
    g = build("resnet", 3, 224, 224, 10, "depth", "50", "layout", "cifar", NULL);
    ck_assert_int_lt(dlas_graph_find(g, "layer4.0.conv1"), 0);
    ck_assert_int_ge(dlas_graph_find(g, "layer3.7.add"), 0);
    dlas_graph_free(g);
    g = build("resnet", 1, 28, 28, 10, "depth", "20", "style", "imagenet", NULL);
    ck_assert_int_ge(dlas_graph_find(g, "maxpool"), 0);
    dlas_graph_free(g);

    /* ResNeXt: the 3x3 grouped, 32 groups of 4 channels in the first stage */
    g = build("resnet", 3, 224, 224, 1000, "depth", "50", "groups", "32", "width_per_group", "4",
              NULL);
    ck_assert_int_eq(node_of(g, "layer1.0.conv2")->attr.conv.groups, 32);
    ck_assert_int_eq(node_of(g, "layer1.0.conv2")->out_shape[0], 128);
    ck_assert_int_eq(node_of(g, "layer4.2.conv2")->out_shape[0], 1024);
    ck_assert_int_eq(node_of(g, "layer4.2.relu3")->out_shape[0], 2048);
    dlas_graph_free(g);
    build_fails("need bottleneck blocks", "resnet", 3, 32, 32, 10, "depth", "18", "groups", "2",
                NULL);
    build_fails("need bottleneck blocks", "resnet", 3, 32, 32, 10, "depth", "20", "width_per_group",
                "128", NULL);
    build_fails("at most 4096", "resnet", 3, 32, 32, 10, "depth", "50",
                "groups", "512", "width_per_group", "512", NULL);
    build_fails("depth 19", "resnet", 3, 32, 32, 10, "depth", "19", NULL);
    build_fails("imagenet layout", "resnet", 3, 32, 32, 10, "depth", "20", "layout", "imagenet",
                NULL);
}
END_TEST

START_TEST(test_vgg_structure)
{
    struct dlas_graph *g = build("vgg", 3, 224, 224, 1000, "depth", "16", "batchnorm", "true",
                                 NULL);
    assert_node(g, "features.0", DLAS_OP_CONV2D);
    assert_node(g, "features.1", DLAS_OP_BATCHNORM);
    assert_node(g, "features.2", DLAS_OP_RELU);
    assert_node(g, "features.43", DLAS_OP_MAXPOOL);
    assert_node(g, "classifier.0", DLAS_OP_LINEAR);
    assert_node(g, "classifier.2", DLAS_OP_DROPOUT);
    assert_node(g, "classifier.6", DLAS_OP_LINEAR);
    ck_assert_int_lt(dlas_graph_find(g, "avgpool"), 0); /* 7x7 already: identity */
    dlas_graph_free(g);

    g = build("vgg", 3, 224, 224, 1000, "depth", "16", "dropout", "0", NULL);
    ck_assert_int_lt(dlas_graph_find(g, "classifier.2"), 0);
    assert_node(g, "features.30", DLAS_OP_MAXPOOL);
    dlas_graph_free(g);

    /* 448x448 ends at 14x14: torchvision's adaptive pool is a 2x2 average */
    g = build("vgg", 3, 448, 448, 1000, "depth", "11", NULL);
    const struct dlas_node *ap = node_of(g, "avgpool");
    ck_assert_int_eq(ap->op, DLAS_OP_AVGPOOL);
    ck_assert_int_eq(ap->attr.pool.kh, 2);
    ck_assert_int_eq(params_of(g), 132863336);
    dlas_graph_free(g);

    /* CIFAR head: 512 -> classes */
    g = build("vgg", 3, 32, 32, 10, "depth", "16", "batchnorm", "true", NULL);
    assert_node(g, "classifier", DLAS_OP_LINEAR);
    ck_assert_int_eq(params_of(g), 14728266); /* kuangliu/pytorch-cifar VGG16 */
    dlas_graph_free(g);
    g = build("vgg", 3, 96, 96, 10, "depth", "11", NULL); /* 3x3 final map: CIFAR head */
    assert_node(g, "classifier", DLAS_OP_LINEAR);
    dlas_graph_free(g);

    build_fails("multiple of 7x7", "vgg", 3, 96, 96, 10, "style", "imagenet", NULL);
    build_fails("depth 15", "vgg", 3, 32, 32, 10, "depth", "15", NULL);
    build_fails("at least 32x32", "vgg", 1, 28, 28, 10, NULL);
}
END_TEST

START_TEST(test_mobilenet_structure)
{
    struct dlas_graph *g = build("mobilenet", 3, 224, 224, 1000, NULL);
    assert_node(g, "features.0.0", DLAS_OP_CONV2D);
    assert_node(g, "features.0.2", DLAS_OP_RELU6);
    assert_node(g, "features.1.conv.0.0", DLAS_OP_CONV2D); /* t = 1: no expansion */
    assert_node(g, "features.1.conv.1", DLAS_OP_CONV2D);
    assert_node(g, "features.1.conv.2", DLAS_OP_BATCHNORM);
    assert_node(g, "features.2.conv.3", DLAS_OP_BATCHNORM);
    assert_node(g, "features.3.add", DLAS_OP_ADD);
    ck_assert_int_lt(dlas_graph_find(g, "features.2.add"), 0);
    assert_node(g, "features.18.0", DLAS_OP_CONV2D);
    assert_node(g, "classifier.1", DLAS_OP_LINEAR);
    const struct dlas_node *dw = node_of(g, "features.2.conv.1.0");
    ck_assert_int_eq(dw->attr.conv.groups, 96);
    ck_assert_int_eq(node_of(g, "features.18.2")->out_shape[1], 7);
    dlas_graph_free(g);

    g = build("mobilenet", 3, 32, 32, 10, NULL); /* CIFAR strides: 32 -> 4 */
    ck_assert_int_eq(node_of(g, "features.18.2")->out_shape[1], 4);
    dlas_graph_free(g);

    g = build("mobilenet", 3, 224, 224, 1000, "version", "1", "width", "0.5", NULL);
    assert_node(g, "features.13.0.0", DLAS_OP_CONV2D);
    assert_node(g, "features.13.1.2", DLAS_OP_RELU);
    ck_assert_int_eq(node_of(g, "features.13.1.0")->out_shape[0], 512);
    ck_assert_int_eq(node_of(g, "features.13.1.2")->out_shape[1], 7);
    /* the paper's Table 6: 1.3M parameters at width 0.5 */
    ck_assert_int_eq(params_of(g) / 100000, 13);
    dlas_graph_free(g);
}
END_TEST

START_TEST(test_densenet_structure)
{
    struct dlas_graph *g = build("densenet", 3, 224, 224, 1000, NULL);
    assert_node(g, "features.conv0", DLAS_OP_CONV2D);
    assert_node(g, "features.pool0", DLAS_OP_MAXPOOL);
    assert_node(g, "features.denseblock1.denselayer1.norm1", DLAS_OP_BATCHNORM);
    assert_node(g, "features.denseblock1.denselayer2.cat", DLAS_OP_CONCAT);
    assert_node(g, "features.denseblock4.denselayer16.conv2", DLAS_OP_CONV2D);
    assert_node(g, "features.transition3.pool", DLAS_OP_AVGPOOL);
    assert_node(g, "features.norm5", DLAS_OP_BATCHNORM);
    assert_node(g, "classifier", DLAS_OP_LINEAR);
    ck_assert_int_lt(dlas_graph_find(g, "features.denseblock1.denselayer1.cat"), 0);
    const struct dlas_node *n5 = node_of(g, "features.norm5");
    ck_assert_int_eq(n5->out_shape[0], 1024);
    ck_assert_int_eq(n5->out_shape[1], 7);
    dlas_graph_free(g);

    g = build("densenet", 3, 32, 32, 10, "depth", "100", NULL);
    ck_assert_int_lt(dlas_graph_find(g, "features.pool0"), 0);
    ck_assert_int_lt(dlas_graph_find(g, "features.denseblock4.cat"), 0);
    n5 = node_of(g, "features.norm5");
    ck_assert_int_eq(n5->out_shape[0], 342); /* (24+192)/2=108, (108+192)/2=150, 150+192 */
    ck_assert_int_eq(n5->out_shape[1], 8);
    dlas_graph_free(g);

    build_fails("depth 122", "densenet", 3, 32, 32, 10, "depth", "122", NULL);
}
END_TEST

START_TEST(test_wrn_structure)
{
    struct dlas_graph *g = build("wrn", 3, 32, 32, 10, "depth", "16", "width", "2", NULL);
    assert_node(g, "conv1", DLAS_OP_CONV2D);
    assert_node(g, "block1.0.layer.0.bn1", DLAS_OP_BATCHNORM);
    assert_node(g, "block1.0.layer.0.conv1.conv", DLAS_OP_CONV2D);
    assert_node(g, "block1.0.layer.0.convShortcut", DLAS_OP_CONV2D);
    assert_node(g, "block1.0.layer.1.add", DLAS_OP_ADD);
    ck_assert_int_lt(dlas_graph_find(g, "block1.0.layer.1.convShortcut"), 0);
    assert_node(g, "block3.0.layer.1.conv2.conv", DLAS_OP_CONV2D);
    assert_node(g, "bn1", DLAS_OP_BATCHNORM);
    assert_node(g, "fc", DLAS_OP_LINEAR);
    /* the shortcut reads the activated input when the width changes, the raw
     * input otherwise */
    const struct dlas_node *sc = node_of(g, "block2.0.layer.0.convShortcut");
    ck_assert_int_eq(sc->inputs[0], dlas_graph_find(g, "block2.0.layer.0.relu1"));
    ck_assert_int_eq(sc->attr.conv.stride_h, 2);
    const struct dlas_node *add = node_of(g, "block2.0.layer.1.add");
    ck_assert_int_eq(add->inputs[0], dlas_graph_find(g, "block2.0.layer.0.add"));
    const struct dlas_node *bn = node_of(g, "bn1");
    ck_assert_int_eq(bn->out_shape[0], 128);
    ck_assert_int_eq(bn->out_shape[1], 8);
    dlas_graph_free(g);

    g = build("wrn", 3, 32, 32, 10, "depth", "16", "block", "grouped", "groups", "8", NULL);
    const struct dlas_node *dw = node_of(g, "block2.0.layer.0.conv1.convdw");
    ck_assert_int_eq(dw->attr.conv.groups, 8);
    ck_assert_int_eq(dw->attr.conv.stride_h, 2);
    assert_node(g, "block2.0.layer.0.conv1.conv1x1", DLAS_OP_CONV2D);
    dlas_graph_free(g);

    /* BlockSwap's G<s>: channels per group */
    g = build("wrn", 3, 32, 32, 10, "depth", "16", "block", "grouped", "group_size", "16", NULL);
    dw = node_of(g, "block3.0.layer.1.conv2.convdw");
    ck_assert_int_eq(dw->attr.conv.groups, 128 / 16);
    dlas_graph_free(g);

    g = build("wrn", 3, 32, 32, 10, "depth", "16", "block", "dwsep", NULL);
    dw = node_of(g, "block3.0.layer.0.conv1.convdw");
    ck_assert_int_eq(dw->attr.conv.groups, 64); /* its input: 32k channels */
    dlas_graph_free(g);

    g = build("wrn", 3, 32, 32, 10, "depth", "16", "block", "grouped_bottleneck", "bottleneck",
              "4", "groups", "2", "dropout", "0.3", NULL);
    const struct dlas_node *mid = node_of(g, "block3.0.layer.0.conv1.conv");
    ck_assert_int_eq(mid->out_shape[0], 32); /* 128 / 4 */
    ck_assert_int_eq(mid->attr.conv.groups, 2);
    ck_assert_int_eq(mid->attr.conv.stride_h, 2);
    assert_node(g, "block3.0.layer.0.conv1.conv1x1_up", DLAS_OP_CONV2D);
    assert_node(g, "block3.0.layer.0.dropout", DLAS_OP_DROPOUT);
    ck_assert_int_lt(dlas_graph_find(g, "block3.0.layer.0.conv2.conv"), 0);
    dlas_graph_free(g);

    build_fails("block1.0.layer.0.conv1.convdw", "wrn", 3, 32, 32, 10, "block", "grouped",
                "groups", "3", NULL);
    build_fails("6n+4", "wrn", 3, 32, 32, 10, "depth", "20", NULL);
}
END_TEST

/* ---- every model runs the reference forward at a small shape --------------- */

struct run_case {
    const char *label, *model;
    const char *kv[10];
    int c, h, w, classes;
};

static const struct run_case runs[] = {
    {"resnet20", "resnet", {"depth", "20"}, 3, 32, 32, 10},
    {"resnet18 cifar", "resnet", {"depth", "18"}, 3, 32, 32, 10},
    {"resnet50 small", "resnet", {"depth", "50"}, 3, 64, 64, 7},
    {"wrn-16-2", "wrn", {"depth", "16"}, 3, 32, 32, 10},
    {"wrn-16-2 G(4) dropout", "wrn", {"depth", "16", "block", "grouped", "dropout", "0.3"},
     3, 32, 32, 10},
    {"wrn-16-2 D", "wrn", {"depth", "16", "block", "dwsep"}, 3, 32, 32, 10},
    {"wrn-16-2 B(2)", "wrn", {"depth", "16", "block", "bottleneck"}, 3, 32, 32, 10},
    {"wrn-16-2 BG(2,4)", "wrn", {"depth", "16", "block", "grouped_bottleneck"}, 3, 32, 32, 10},
    {"vgg11 cifar", "vgg", {"depth", "11", "batchnorm", "true"}, 3, 32, 32, 10},
    {"mobilenet_v1 cifar", "mobilenet", {"version", "1", "width", "0.25"}, 3, 32, 32, 10},
    {"mobilenet_v2 cifar", "mobilenet", {"width", "0.5"}, 3, 32, 32, 10},
    {"mobilenet_v2 mono", "mobilenet", {"width", "0.35"}, 1, 28, 28, 10},
    {"densenet-bc-40", "densenet", {"depth", "40"}, 3, 32, 32, 10},
    {"densenet k=8 fmnist", "densenet", {"depth", "121", "growth", "8"}, 1, 28, 28, 10},
};

START_TEST(test_forward)
{
    const struct run_case *t = &runs[_i];
    struct dlas_rng rng;
    struct dlas_graph *g =
        build_case(t->label, t->model, t->kv, t->c, t->h, t->w, t->classes, 3, &rng);
    ck_assert_int_eq(dlas_graph_init_weights(g, &rng), 0);

    struct dlas_tensor in, out;
    memset(&in, 0, sizeof in);
    memset(&out, 0, sizeof out);
    int64_t dims[4] = {2, t->c, t->h, t->w};
    ck_assert_int_eq(dlas_tensor_alloc(&in, DLAS_F32, 4, dims), 0);
    for (int64_t i = 0; i < dlas_tensor_numel(&in); i++)
        dlas_f32(&in)[i] = dlas_rng_uniform(&rng);
    ck_assert_msg(dlas_graph_forward_ref(g, &in, &out) == 0, "%s: %s", t->label,
                  dlas_last_error());
    ck_assert_int_eq(out.ndim, 2);
    ck_assert_int_eq(out.dims[0], 2);
    ck_assert_int_eq(out.dims[1], t->classes);
    double spread = 0;
    for (int64_t i = 0; i < dlas_tensor_numel(&out); i++) {
        ck_assert_msg(isfinite(dlas_f32(&out)[i]), "%s: output %lld is %g", t->label,
                      (long long)i, (double)dlas_f32(&out)[i]);
        spread += fabs(dlas_f32(&out)[i] - dlas_f32(&out)[0]);
    }
    ck_assert_msg(spread > 0, "%s: every output is %g", t->label, (double)dlas_f32(&out)[0]);
    dlas_tensor_free(&in);
    dlas_tensor_free(&out);
    dlas_graph_free(g);
}
END_TEST

/* Building with params == NULL means the defaults (as lenet5 does). */
START_TEST(test_null_params)
{
    static const char *const models[] = {"resnet", "wrn", "vgg", "mobilenet", "densenet"};
    struct dlas_rng rng;
    struct dlas_host host;
    dlas_rng_seed(&rng, 1);
    dlas_host_init(&host, &rng, 1);
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        const struct dlas_component *comp = dlas_registry_find(reg, DLAS_KIND_MODEL, models[i]);
        ck_assert_msg(comp != NULL, "%s", dlas_last_error());
        ck_assert_ptr_nonnull(comp->reference);
        struct dlas_graph *g = dlas_graph_new();
        const struct dlas_model_ops *ops = comp->ops;
        ck_assert_msg(ops->build(&host, NULL, 3, 32, 32, 10, g) == 0, "%s: %s", models[i],
                      dlas_last_error());
        ck_assert_int_eq(dlas_graph_validate(g), 0);
        assert_output(g, 10);
        dlas_graph_free(g);
    }
}
END_TEST

int main(void)
{
    if (!(reg = dlas_test_registry("check_zoo")))
        return 1;
    Suite *s = suite_create("zoo");
    TCase *tc = dlas_test_case(s, "counts", NULL, NULL, 300);
    tcase_add_loop_test(tc, test_counts, 0, (int)(sizeof counts / sizeof counts[0]));

    tc = dlas_test_case(s, "structure", NULL, NULL, 120);
    tcase_add_test(tc, test_resnet_structure);
    tcase_add_test(tc, test_vgg_structure);
    tcase_add_test(tc, test_mobilenet_structure);
    tcase_add_test(tc, test_densenet_structure);
    tcase_add_test(tc, test_wrn_structure);
    tcase_add_test(tc, test_null_params);

    tc = dlas_test_case(s, "forward", NULL, NULL, 300);
    tcase_add_loop_test(tc, test_forward, 0, (int)(sizeof runs / sizeof runs[0]));

    int failed = dlas_test_run(s);
    dlas_registry_free(reg);
    return failed;
}
