/* Model "densenet": densely connected networks (Huang et al. 2017), the
 * ImageNet DenseNet-BC 121/161/169/201 as torchvision builds them, names
 * included ("features.denseblock1.denselayer1.conv1", "features.transition1.
 * conv", "classifier"), and the CIFAR DenseNet-BC (depth 6n+4: three blocks
 * of n bottleneck layers, growth 12 by default).
 *
 * Each dense layer reads the concatenation of its block's input and of every
 * earlier layer's output; that concatenation is an explicit node
 * "<layer>.cat" (torchvision concatenates inside the layer's forward), and a
 * block's output is "<block>.cat". */
#include <stdlib.h>
#include <string.h>

#include <dlas/build.h>
#include <dlas/plugin.h>

#define MAX_BLOCKS 4

struct layout {
    int n_blocks, layers[MAX_BLOCKS], growth;
};

static int imagenet_layout(int depth, struct layout *L)
{
    static const struct {
        int depth, growth, layers[4];
    } table[] = {{121, 32, {6, 12, 24, 16}},
                 {161, 48, {6, 12, 36, 24}},
                 {169, 32, {6, 12, 32, 32}},
                 {201, 32, {6, 12, 48, 32}}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].depth == depth) {
            L->n_blocks = 4;
            L->growth = table[i].growth;
            memcpy(L->layers, table[i].layers, sizeof L->layers);
            return 1;
        }
    return 0;
}

/* Each bottleneck layer holds two convolutions; with the stem, two
 * transitions and the classifier that makes 6n+4 weight layers. */
static int cifar_layout(int depth, struct layout *L)
{
    int n = dlas_depth_blocks(depth, 6, 4);
    if (!n)
        return 0;
    L->n_blocks = 3;
    L->growth = 12;
    for (int b = 0; b < 3; b++)
        L->layers[b] = n;
    return 1;
}

/* DenseNet's pre-activation unit: "<pre>.norm<tag>", "<pre>.relu<tag>",
 * "<pre>.conv<tag>" (a dense layer's tags are "1" and "2", a transition's
 * is empty). */
static int bn_relu_conv(struct dlas_graph *g, const char *pre, const char *tag, int x,
                        struct dlas_conv_attr a)
{
    char b[DLAS_NAME_MAX];
    x = dlas_graph_batchnorm(g, dlas_name(b, "%s.norm%s", pre, tag), x, DLAS_BN_EPS);
    x = dlas_graph_relu(g, dlas_name(b, "%s.relu%s", pre, tag), x);
    return dlas_graph_conv2d(g, dlas_name(b, "%s.conv%s", pre, tag), x, &a);
}

/* One block: returns the concatenation of its input and every new layer;
 * *channels is updated to its width. */
static int dense_block(struct dlas_graph *g, int bi, int x, int n_layers, int growth,
                       int bn_size, float drop, int *channels)
{
    char pre[DLAS_NAME_MAX], b[DLAS_NAME_MAX];
    int *parts = malloc((size_t)(n_layers + 1) * sizeof *parts);
    if (!parts) {
        dlas_error(DLAS_ERR_NOMEM, "densenet: out of memory");
        return -DLAS_ERR_NOMEM;
    }
    parts[0] = x;
    for (int l = 0; l < n_layers; l++) {
        dlas_name(pre, "features.denseblock%d.denselayer%d", bi, l + 1);
        int y = l ? dlas_graph_concat(g, dlas_name(b, "%s.cat", pre), l + 1, parts) : x;
        y = bn_relu_conv(g, pre, "1", y, dlas_conv(bn_size * growth, 1, 1, 0));
        y = bn_relu_conv(g, pre, "2", y, dlas_conv(growth, 3, 1, 1));
        if (drop > 0)
            y = dlas_graph_dropout(g, dlas_name(b, "%s.dropout", pre), y, drop);
        parts[l + 1] = y;
    }
    int out = dlas_graph_concat(g, dlas_name(b, "features.denseblock%d.cat", bi), n_layers + 1,
                                parts);
    free(parts);
    *channels += n_layers * growth;
    return out;
}

static int transition(struct dlas_graph *g, int bi, int x, int out_c)
{
    char pre[DLAS_NAME_MAX], b[DLAS_NAME_MAX];
    struct dlas_pool_attr ap = dlas_pool(2, 2, 0);
    dlas_name(pre, "features.transition%d", bi);
    x = bn_relu_conv(g, pre, "", x, dlas_conv(out_c, 1, 1, 0));
    return dlas_graph_avgpool(g, dlas_name(b, "%s.pool", pre), x, &ap);
}

static int densenet_graph(const struct dlas_params *p, int c, int h, int w, int classes,
                          struct dlas_graph *g)
{
    int depth = (int)dlas_param_int(p, "depth");
    int growth = (int)dlas_param_int(p, "growth");
    int bn_size = (int)dlas_param_int(p, "bn_size");
    double compression = dlas_param_float(p, "compression");
    float drop = (float)dlas_param_float(p, "dropout");
    const char *style = dlas_param_str(p, "style");
    struct layout L;
    memset(&L, 0, sizeof L);
    if (!imagenet_layout(depth, &L) && !cifar_layout(depth, &L))
        return dlas_error(DLAS_ERR_INVALID,
                          "densenet: depth %d is neither 121, 161, 169, 201 (ImageNet) nor "
                          "6n+4 (CIFAR DenseNet-BC, e.g. 100, 250)",
                          depth);
    if (growth > 0)
        L.growth = growth;
    if (bn_size < 1 || !(compression > 0 && compression <= 1))
        return dlas_error(DLAS_ERR_INVALID,
                          "densenet: bn_size %d must be positive, compression %g in (0, 1]",
                          bn_size, compression);
    if (classes < 1)
        return dlas_error(DLAS_ERR_INVALID, "densenet: %d classes", classes);
    int big_stem = dlas_style_imagenet(style, h, w);

    int channels = 2 * L.growth;
    int x = dlas_graph_input(g, "input", c, h, w);
    if (big_stem) {
        static const char *const stem[4] = {"features.conv0", "features.norm0",
                                            "features.relu0", "features.pool0"};
        x = dlas_imagenet_stem(g, x, channels, stem);
    } else {
        /* Huang et al.'s CIFAR stem: the first layer's BN-ReLU follows */
        struct dlas_conv_attr a = dlas_conv(channels, 3, 1, 1);
        x = dlas_graph_conv2d(g, "features.conv0", x, &a);
    }
    for (int bi = 0; bi < L.n_blocks; bi++) {
        x = dense_block(g, bi + 1, x, L.layers[bi], L.growth, bn_size, drop, &channels);
        if (bi + 1 < L.n_blocks) {
            channels = (int)(channels * compression); /* floor: both are positive */
            if (channels < 1)
                channels = 1;
            x = transition(g, bi + 1, x, channels);
        }
    }
    x = dlas_graph_batchnorm(g, "features.norm5", x, DLAS_BN_EPS);
    x = dlas_graph_relu(g, "relu", x);
    dlas_pooled_head(g, x, "classifier", classes);

    int rc = dlas_graph_status(g);
    if (rc)
        return dlas_error_context("densenet-%d (growth %d) on %dx%dx%d", depth, L.growth, c, h,
                                  w);
    return DLAS_OK;
}

static const struct dlas_param_spec densenet_params[] = {
    {"depth", DLAS_PARAM_INT, 0, "121", 10, 1000, NULL,
     "121, 161, 169, 201 (ImageNet DenseNet-BC, four blocks) or 6n+4 such as 100 "
     "(CIFAR DenseNet-BC, three blocks of n layers)"},
    {"growth", DLAS_PARAM_INT, 0, "0", 0, 512, NULL,
     "growth rate k; 0 = the variant's own (32; 48 for 161; 12 for CIFAR)"},
    {"bn_size", DLAS_PARAM_INT, 0, "4", 1, 16, NULL,
     "bottleneck width: each layer's 1x1 convolution gives bn_size * k channels"},
    {"compression", DLAS_PARAM_FLOAT, 0, "0.5", 0.01, 1, NULL,
     "transition layers keep floor(compression * channels) channels"},
    {"dropout", DLAS_PARAM_FLOAT, 0, "0", 0, 1, NULL,
     "dropout after each dense layer; 0 leaves the nodes out"},
    {"style", DLAS_PARAM_ENUM, 0, "auto", 0, 0, "auto|imagenet|cifar",
     "stem: imagenet = 7x7/2 conv, BN, ReLU, 3x3/2 max pool; cifar = 3x3/1 conv; auto = "
     "imagenet when the input is at least 64x64"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static int densenet_build(const struct dlas_host *host, const struct dlas_params *p, int c,
                          int h, int w, int classes, struct dlas_graph *g)
{
    return dlas_model_with_defaults(densenet_params, p, densenet_graph, c, h, w, classes, g);
}

static const struct dlas_model_ops densenet_ops = {sizeof(struct dlas_model_ops),
                                                   densenet_build};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_MODEL, "densenet",
     "DenseNet-BC: ImageNet 121/161/169/201 (torchvision layout and names) and CIFAR 6n+4",
     "G. Huang, Z. Liu, L. van der Maaten, K. Q. Weinberger: Densely connected "
     "convolutional networks. CVPR 2017",
     densenet_params, &densenet_ops},
};

DLAS_PLUGIN("densenet", "0.1.0", "densely connected networks (Huang et al. 2017)", components)
