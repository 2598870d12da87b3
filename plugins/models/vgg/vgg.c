/* Model "vgg": the VGG networks of Simonyan & Zisserman (2015), configurations
 * A, B, D, E (11, 13, 16, 19 weight layers), optionally with batch
 * normalisation after each convolution as torchvision's vgg*_bn. Node names
 * are torchvision's module names: "features.<index>" in the order of
 * torchvision's nn.Sequential, then "classifier.<index>".
 *
 * Two heads. The ImageNet head is the paper's three fully connected layers on
 * the 512x7x7 map; torchvision reaches 7x7 through AdaptiveAvgPool2d((7, 7)),
 * which is exactly an average pool when the final map is a multiple of 7 (an
 * identity at 224x224) but replicates and overlaps windows otherwise, which
 * the graph has no operator for, so other sizes are refused rather than
 * approximated. The CIFAR head (as in the many CIFAR re-implementations, e.g.
 * kuangliu/pytorch-cifar) averages the final map globally into one linear
 * layer of 512 inputs. */
#include <string.h>

#include <dlas/build.h>
#include <dlas/plugin.h>

#define M (-1) /* max pool in a configuration */

static const int cfg_a[] = {64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M, 0};
static const int cfg_b[] = {64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M, 0};
static const int cfg_d[] = {64,  64,  M,   128, 128, M,   256, 256, 256, M,
                            512, 512, 512, M,   512, 512, 512, M,   0};
static const int cfg_e[] = {64,  64,  M,   128, 128, M,   256, 256, 256, 256, M,
                            512, 512, 512, 512, M,   512, 512, 512, 512, M,   0};

static const int *config(int depth)
{
    switch (depth) {
    case 11: return cfg_a;
    case 13: return cfg_b;
    case 16: return cfg_d;
    case 19: return cfg_e;
    default: return NULL;
    }
}

/* Side of the final map: every max pool halves, rounding down. */
static int final_side(const int *cfg, int side)
{
    for (; *cfg; cfg++)
        if (*cfg == M)
            side /= 2;
    return side;
}

static int vgg_graph(const struct dlas_params *p, int c, int h, int w, int classes,
                     struct dlas_graph *g)
{
    int depth = (int)dlas_param_int(p, "depth");
    int bn = dlas_param_bool(p, "batchnorm");
    const char *style = dlas_param_str(p, "style");
    float drop = (float)dlas_param_float(p, "dropout");
    const int *cfg = config(depth);
    if (!cfg)
        return dlas_error(DLAS_ERR_INVALID, "vgg: depth %d is not one of 11, 13, 16, 19", depth);
    if (classes < 1)
        return dlas_error(DLAS_ERR_INVALID, "vgg: %d classes", classes);
    int fh = final_side(cfg, h), fw = final_side(cfg, w);
    if (fh < 1 || fw < 1)
        return dlas_error(DLAS_ERR_INVALID,
                          "vgg: its five 2x2 max pools need an input of at least 32x32, not "
                          "%dx%d",
                          h, w);
    int fits7 = fh >= 7 && fw >= 7 && fh % 7 == 0 && fw % 7 == 0;
    int imagenet;
    if (!strcmp(style, "imagenet")) {
        if (!fits7)
            return dlas_error(DLAS_ERR_INVALID,
                              "vgg: the ImageNet head needs a final map that is a multiple of "
                              "7x7 (input 224x224, 448x448, ...); %dx%d gives %dx%d, for which "
                              "torchvision's adaptive pooling has no exact equivalent here "
                              "(use style = \"cifar\")",
                              h, w, fh, fw);
        imagenet = 1;
    } else {
        imagenet = !strcmp(style, "auto") && fits7;
    }

    char b[DLAS_NAME_MAX];
    int x = dlas_graph_input(g, "input", c, h, w), idx = 0;
    struct dlas_pool_attr mp = dlas_pool(2, 2, 0);
    for (; *cfg; cfg++) {
        if (*cfg == M) {
            x = dlas_graph_maxpool(g, dlas_name(b, "features.%d", idx++), x, &mp);
            continue;
        }
        struct dlas_conv_attr a = dlas_conv(*cfg, 3, 1, 1);
        a.bias = 1;
        x = dlas_graph_conv2d(g, dlas_name(b, "features.%d", idx++), x, &a);
        if (bn)
            x = dlas_graph_batchnorm(g, dlas_name(b, "features.%d", idx++), x,
                                     DLAS_BN_EPS);
        x = dlas_graph_relu(g, dlas_name(b, "features.%d", idx++), x);
    }
    if (imagenet) {
        if (fh != 7 || fw != 7) {
            struct dlas_pool_attr ap = dlas_pool(fh / 7, fh / 7, 0);
            ap.kw = ap.stride_w = fw / 7;
            x = dlas_graph_avgpool(g, "avgpool", x, &ap);
        }
        x = dlas_graph_flatten(g, "flatten", x);
        x = dlas_graph_linear(g, "classifier.0", x, 4096, 1);
        x = dlas_graph_relu(g, "classifier.1", x);
        if (drop > 0)
            x = dlas_graph_dropout(g, "classifier.2", x, drop);
        x = dlas_graph_linear(g, "classifier.3", x, 4096, 1);
        x = dlas_graph_relu(g, "classifier.4", x);
        if (drop > 0)
            x = dlas_graph_dropout(g, "classifier.5", x, drop);
        dlas_graph_linear(g, "classifier.6", x, classes, 1);
    } else {
        dlas_pooled_head(g, x, "classifier", classes);
    }

    int rc = dlas_graph_status(g);
    if (rc)
        return dlas_error_context("vgg%d%s on %dx%dx%d", depth, bn ? "_bn" : "", c, h, w);
    return DLAS_OK;
}

static const struct dlas_param_spec vgg_params[] = {
    {"depth", DLAS_PARAM_INT, 0, "16", 11, 19, NULL,
     "weight layers: 11, 13, 16 or 19 (configurations A, B, D, E)"},
    {"batchnorm", DLAS_PARAM_BOOL, 0, "false", 0, 0, NULL,
     "batch normalisation after every convolution (torchvision's vgg*_bn)"},
    {"style", DLAS_PARAM_ENUM, 0, "auto", 0, 0, "auto|imagenet|cifar",
     "head: imagenet = 3 fully connected layers on the 512x7x7 map (inputs of 224x224, "
     "448x448, ...), cifar = global average pool and one linear layer; auto = imagenet "
     "when the final map is a multiple of 7x7"},
    {"dropout", DLAS_PARAM_FLOAT, 0, "0.5", 0, 1, NULL,
     "dropout probability before each hidden fully connected layer (ImageNet head); 0 "
     "leaves the dropout nodes out"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static int vgg_build(const struct dlas_host *host, const struct dlas_params *p, int c, int h,
                     int w, int classes, struct dlas_graph *g)
{
    return dlas_model_with_defaults(vgg_params, p, vgg_graph, c, h, w, classes, g);
}

static const struct dlas_model_ops vgg_ops = {sizeof(struct dlas_model_ops), vgg_build};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_MODEL, "vgg",
     "VGG 11/13/16/19, with or without batch normalisation, ImageNet or CIFAR head "
     "(torchvision layout and names)",
     "K. Simonyan, A. Zisserman: Very deep convolutional networks for large-scale image "
     "recognition. ICLR 2015",
     vgg_params, &vgg_ops},
};

DLAS_PLUGIN("vgg", "0.1.0", "VGG networks (Simonyan & Zisserman 2015)", components)
