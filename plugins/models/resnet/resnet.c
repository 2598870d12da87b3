/* Model "resnet": the residual networks of He et al. (2016) in the two forms
 * papers use them, with node names equal to torchvision's state_dict module
 * names so that weights map by name ("layer1.0.conv1", "layer2.0.downsample.0").
 *
 * Two independent choices: the layout of the stages, which the depth usually
 * settles (18/34/50/101/152: four stages of 64..512 channels, the ImageNet
 * networks; 6n+2: three stages of 16/32/64 channels, the CIFAR networks of
 * the paper's section 4.2), and the stem, which depends on the input size (a
 * 7x7/2 convolution and a 3x3/2 max pool for ImageNet-sized inputs, a 3x3/1
 * convolution for small ones). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <dlas/plugin.h>

#define BN_EPS 1e-5f /* torch.nn.BatchNorm2d's default */

static const char *nm(char *b, const char *fmt, ...) DLAS_PRINTF(2, 3);
static const char *nm(char *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, DLAS_NAME_MAX, fmt, ap);
    va_end(ap);
    return b;
}

static int conv_bn(struct dlas_graph *g, const char *conv, const char *bn, int x, int out_c,
                   int k, int stride, int pad)
{
    struct dlas_conv_attr a = dlas_conv(out_c, k, stride, pad);
    return dlas_graph_batchnorm(g, bn, dlas_graph_conv2d(g, conv, x, &a), BN_EPS);
}

/* torchvision's downsample: a strided 1x1 projection and its BN ("option B"
 * of the paper), wherever the block changes the shape. */
static int shortcut(struct dlas_graph *g, const char *pre, int x, int in_c, int out_c, int stride)
{
    char b1[DLAS_NAME_MAX], b2[DLAS_NAME_MAX];
    if (stride == 1 && in_c == out_c)
        return x;
    return conv_bn(g, nm(b1, "%s.downsample.0", pre), nm(b2, "%s.downsample.1", pre), x, out_c,
                   1, stride, 0);
}

static int basic_block(struct dlas_graph *g, const char *pre, int x, int in_c, int planes,
                       int stride)
{
    char b1[DLAS_NAME_MAX], b2[DLAS_NAME_MAX];
    int y = conv_bn(g, nm(b1, "%s.conv1", pre), nm(b2, "%s.bn1", pre), x, planes, 3, stride, 1);
    y = dlas_graph_relu(g, nm(b1, "%s.relu1", pre), y);
    y = conv_bn(g, nm(b1, "%s.conv2", pre), nm(b2, "%s.bn2", pre), y, planes, 3, 1, 1);
    int s = shortcut(g, pre, x, in_c, planes, stride);
    y = dlas_graph_add(g, nm(b1, "%s.add", pre), y, s);
    return dlas_graph_relu(g, nm(b1, "%s.relu2", pre), y);
}

/* torchvision's Bottleneck ("ResNet v1.5"): the stride sits on the 3x3
 * convolution, not on the first 1x1 as in the paper; the parameter count is
 * the same, the arithmetic is not. */
static int bottleneck_block(struct dlas_graph *g, const char *pre, int x, int in_c, int planes,
                            int stride)
{
    char b1[DLAS_NAME_MAX], b2[DLAS_NAME_MAX];
    int y = conv_bn(g, nm(b1, "%s.conv1", pre), nm(b2, "%s.bn1", pre), x, planes, 1, 1, 0);
    y = dlas_graph_relu(g, nm(b1, "%s.relu1", pre), y);
    y = conv_bn(g, nm(b1, "%s.conv2", pre), nm(b2, "%s.bn2", pre), y, planes, 3, stride, 1);
    y = dlas_graph_relu(g, nm(b1, "%s.relu2", pre), y);
    y = conv_bn(g, nm(b1, "%s.conv3", pre), nm(b2, "%s.bn3", pre), y, 4 * planes, 1, 1, 0);
    int s = shortcut(g, pre, x, in_c, 4 * planes, stride);
    y = dlas_graph_add(g, nm(b1, "%s.add", pre), y, s);
    return dlas_graph_relu(g, nm(b1, "%s.relu3", pre), y);
}

struct layout {
    int n_stages, bottleneck;
    int blocks[4], planes[4];
};

static int imagenet_layout(int depth, struct layout *L)
{
    static const struct {
        int depth, bottleneck, blocks[4];
    } table[] = {{18, 0, {2, 2, 2, 2}},
                 {34, 0, {3, 4, 6, 3}},
                 {50, 1, {3, 4, 6, 3}},
                 {101, 1, {3, 4, 23, 3}},
                 {152, 1, {3, 8, 36, 3}}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].depth == depth) {
            L->n_stages = 4;
            L->bottleneck = table[i].bottleneck;
            for (int s = 0; s < 4; s++) {
                L->blocks[s] = table[i].blocks[s];
                L->planes[s] = 64 << s;
            }
            return 1;
        }
    return 0;
}

static int cifar_layout(int depth, struct layout *L)
{
    if (depth < 8 || (depth - 2) % 6)
        return 0;
    L->n_stages = 3;
    L->bottleneck = 0;
    for (int s = 0; s < 3; s++) {
        L->blocks[s] = (depth - 2) / 6;
        L->planes[s] = 16 << s;
    }
    return 1;
}

static int resnet_graph(const struct dlas_params *p, int c, int h, int w, int classes,
                        struct dlas_graph *g)
{
    int depth = (int)dlas_param_int(p, "depth");
    const char *style = dlas_param_str(p, "style"), *layout = dlas_param_str(p, "layout");
    struct layout L;
    memset(&L, 0, sizeof L);

    int ok;
    if (!strcmp(layout, "imagenet"))
        ok = imagenet_layout(depth, &L);
    else if (!strcmp(layout, "cifar"))
        ok = cifar_layout(depth, &L);
    else
        ok = imagenet_layout(depth, &L) || cifar_layout(depth, &L);
    if (!ok)
        return dlas_error(DLAS_ERR_INVALID,
                          "resnet: depth %d has no %s layout (ImageNet layout: 18, 34, 50, 101, "
                          "152; CIFAR layout: 6n+2, e.g. 20, 32, 44, 56, 110)",
                          depth, layout);
    if (classes < 1)
        return dlas_error(DLAS_ERR_INVALID, "resnet: %d classes", classes);
    int big_stem = !strcmp(style, "imagenet") || (!strcmp(style, "auto") && h >= 64 && w >= 64);

    char pre[DLAS_NAME_MAX];
    int x = dlas_graph_input(g, "input", c, h, w);
    if (big_stem) {
        struct dlas_pool_attr mp = dlas_pool(3, 2, 1);
        x = conv_bn(g, "conv1", "bn1", x, L.planes[0], 7, 2, 3);
        x = dlas_graph_relu(g, "relu", x);
        x = dlas_graph_maxpool(g, "maxpool", x, &mp);
    } else {
        x = conv_bn(g, "conv1", "bn1", x, L.planes[0], 3, 1, 1);
        x = dlas_graph_relu(g, "relu", x);
    }
    int in_c = L.planes[0];
    for (int s = 0; s < L.n_stages; s++)
        for (int i = 0; i < L.blocks[s]; i++) {
            int stride = (s > 0 && i == 0) ? 2 : 1;
            nm(pre, "layer%d.%d", s + 1, i);
            if (L.bottleneck) {
                x = bottleneck_block(g, pre, x, in_c, L.planes[s], stride);
                in_c = 4 * L.planes[s];
            } else {
                x = basic_block(g, pre, x, in_c, L.planes[s], stride);
                in_c = L.planes[s];
            }
        }
    x = dlas_graph_global_avgpool(g, "avgpool", x);
    x = dlas_graph_flatten(g, "flatten", x);
    dlas_graph_linear(g, "fc", x, classes, 1);

    int rc = dlas_graph_status(g);
    if (rc)
        return dlas_error_context("resnet-%d on %dx%dx%d (%s stem)", depth, c, h, w,
                                  big_stem ? "imagenet" : "cifar");
    return DLAS_OK;
}

static const struct dlas_param_spec resnet_params[] = {
    {"depth", DLAS_PARAM_INT, 0, "18", 8, 1202, NULL,
     "layers: 18, 34, 50, 101, 152 (ImageNet layout) or 6n+2 such as 20, 32, 44, 56, 110 "
     "(CIFAR layout)"},
    {"style", DLAS_PARAM_ENUM, 0, "auto", 0, 0, "auto|imagenet|cifar",
     "stem: imagenet = 7x7/2 conv + 3x3/2 max pool, cifar = 3x3/1 conv; auto = imagenet when "
     "the input is at least 64x64"},
    {"layout", DLAS_PARAM_ENUM, 0, "auto", 0, 0, "auto|imagenet|cifar",
     "stages: imagenet = 4 stages of 64..512 channels, cifar = 3 stages of 16/32/64; auto = "
     "imagenet for depths 18/34/50/101/152, else cifar"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static int resnet_build(const struct dlas_host *host, const struct dlas_params *p, int c, int h,
                        int w, int classes, struct dlas_graph *g)
{
    struct dlas_params *own = NULL;
    int rc;
    if (!p) {
        if ((rc = dlas_params_defaults(resnet_params, &own)))
            return rc;
        p = own;
    }
    rc = resnet_graph(p, c, h, w, classes, g);
    dlas_params_free(own);
    return rc;
}

static const struct dlas_model_ops resnet_ops = {sizeof(struct dlas_model_ops), resnet_build};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_MODEL, "resnet",
     "ResNet: ImageNet networks 18/34/50/101/152 (torchvision layout and names) and the CIFAR "
     "networks 20/32/44/56/110",
     "K. He, X. Zhang, S. Ren, J. Sun: Deep residual learning for image recognition. "
     "CVPR 2016",
     resnet_params, &resnet_ops},
};

DLAS_PLUGIN("resnet", "0.1.0", "residual networks (He et al. 2016)", components)
