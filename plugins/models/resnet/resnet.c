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
#include <string.h>

#include <dlas/build.h>
#include <dlas/plugin.h>


/* torchvision's downsample: a strided 1x1 projection and its BN ("option B"
 * of the paper), wherever the block changes the shape. */
static int shortcut(struct dlas_graph *g, const char *pre, int x, int in_c, int out_c, int stride)
{
    char b1[DLAS_NAME_MAX], b2[DLAS_NAME_MAX];
    if (stride == 1 && in_c == out_c)
        return x;
    return dlas_conv_bn(g, dlas_name(b1, "%s.downsample.0", pre),
                        dlas_name(b2, "%s.downsample.1", pre), x, dlas_conv(out_c, 1, stride, 0));
}

/* "<pre>.conv<i>" and "<pre>.bn<i>": the i-th convolution of a block. */
static int block_conv(struct dlas_graph *g, const char *pre, int i, int x,
                      struct dlas_conv_attr a)
{
    char b1[DLAS_NAME_MAX], b2[DLAS_NAME_MAX];
    return dlas_conv_bn(g, dlas_name(b1, "%s.conv%d", pre, i), dlas_name(b2, "%s.bn%d", pre, i),
                        x, a);
}

static int block_relu(struct dlas_graph *g, const char *pre, int i, int x)
{
    char b[DLAS_NAME_MAX];
    return dlas_graph_relu(g, dlas_name(b, "%s.relu%d", pre, i), x);
}

/* The residual sum of a block's last BN output y and its shortcut s, then
 * the block's closing ReLU (the i-th). */
static int block_add_relu(struct dlas_graph *g, const char *pre, int i, int y, int s)
{
    char b[DLAS_NAME_MAX];
    return block_relu(g, pre, i, dlas_graph_add(g, dlas_name(b, "%s.add", pre), y, s));
}

static int basic_block(struct dlas_graph *g, const char *pre, int x, int in_c, int planes,
                       int stride)
{
    int y = block_relu(g, pre, 1, block_conv(g, pre, 1, x, dlas_conv(planes, 3, stride, 1)));
    y = block_conv(g, pre, 2, y, dlas_conv(planes, 3, 1, 1));
    return block_add_relu(g, pre, 2, y, shortcut(g, pre, x, in_c, planes, stride));
}

/* torchvision's Bottleneck ("ResNet v1.5"): the stride sits on the 3x3
 * convolution, not on the first 1x1 as in the paper; the parameter count is
 * the same, the arithmetic is not. Its inner width is planes * (width per
 * group / 64) * groups: ResNeXt's (Xie et al. 2017: 32 groups of 4 in the
 * first stage, "32x4d") and the wide ResNets' (width per group 128: twice
 * the inner channels) are the same block. */
static int bottleneck_block(struct dlas_graph *g, const char *pre, int x, int in_c, int planes,
                            int stride, int groups, int width_per_group)
{
    const int width = planes * width_per_group / 64 * groups;
    struct dlas_conv_attr c2 = dlas_conv(width, 3, stride, 1);
    c2.groups = groups;
    int y = block_relu(g, pre, 1, block_conv(g, pre, 1, x, dlas_conv(width, 1, 1, 0)));
    y = block_relu(g, pre, 2, block_conv(g, pre, 2, y, c2));
    y = block_conv(g, pre, 3, y, dlas_conv(4 * planes, 1, 1, 0));
    return block_add_relu(g, pre, 3, y, shortcut(g, pre, x, in_c, 4 * planes, stride));
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
    int n = dlas_depth_blocks(depth, 6, 2);
    if (!n)
        return 0;
    L->n_stages = 3;
    L->bottleneck = 0;
    for (int s = 0; s < 3; s++) {
        L->blocks[s] = n;
        L->planes[s] = 16 << s;
    }
    return 1;
}

static int resnet_graph(const struct dlas_params *p, int c, int h, int w, int classes,
                        struct dlas_graph *g)
{
    int depth = (int)dlas_param_int(p, "depth");
    const int groups = (int)dlas_param_int(p, "groups"),
              width_per_group = (int)dlas_param_int(p, "width_per_group");
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
    if (!L.bottleneck && (groups != 1 || width_per_group != 64))
        return dlas_error(DLAS_ERR_INVALID,
                          "resnet-%d: groups = %d and width_per_group = %d need bottleneck "
                          "blocks (depth 50, 101 or 152), as torchvision's BasicBlock refuses "
                          "them",
                          depth, groups, width_per_group);
    /* the last stage's inner width, bounded before anything is allocated */
    const int64_t inner = (int64_t)L.planes[L.n_stages - 1] * width_per_group / 64 * groups;
    if (L.bottleneck && inner > 4096)
        return dlas_error(DLAS_ERR_INVALID,
                          "resnet-%d: groups = %d x width_per_group = %d makes the last stage's "
                          "3x3 convolutions %lld channels wide (at most 4096; ResNeXt-101 64x4d "
                          "has 2048)",
                          depth, groups, width_per_group, (long long)inner);
    int big_stem = dlas_style_imagenet(style, h, w);

    static const char *const stem[4] = {"conv1", "bn1", "relu", "maxpool"};
    char pre[DLAS_NAME_MAX];
    int x = dlas_graph_input(g, "input", c, h, w);
    if (big_stem)
        x = dlas_imagenet_stem(g, x, L.planes[0], stem);
    else
        x = dlas_conv_bn_relu(g, stem[0], stem[1], stem[2], x, dlas_conv(L.planes[0], 3, 1, 1));
    int in_c = L.planes[0];
    for (int s = 0; s < L.n_stages; s++)
        for (int i = 0; i < L.blocks[s]; i++) {
            int stride = (s > 0 && i == 0) ? 2 : 1;
            dlas_name(pre, "layer%d.%d", s + 1, i);
            if (L.bottleneck) {
                x = bottleneck_block(g, pre, x, in_c, L.planes[s], stride, groups,
                                     width_per_group);
                in_c = 4 * L.planes[s];
            } else {
                x = basic_block(g, pre, x, in_c, L.planes[s], stride);
                in_c = L.planes[s];
            }
        }
    dlas_pooled_head(g, x, "fc", classes);

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
    {"groups", DLAS_PARAM_INT, 0, "1", 1, 512, NULL,
     "groups of each bottleneck's 3x3 convolution (ResNeXt: 32; bottleneck depths only)"},
    {"width_per_group", DLAS_PARAM_INT, 0, "64", 1, 512, NULL,
     "channels a group of the first stage's 3x3 convolutions, x2 each stage (ResNeXt-50 "
     "32x4d: 4; wide_resnet50_2: 128; bottleneck depths only)"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static int resnet_build(const struct dlas_host *host, const struct dlas_params *p, int c, int h,
                        int w, int classes, struct dlas_graph *g)
{
    return dlas_model_with_defaults(resnet_params, p, resnet_graph, c, h, w, classes, g);
}

static const struct dlas_model_ops resnet_ops = {sizeof(struct dlas_model_ops), resnet_build};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_MODEL, "resnet",
     "ResNet: ImageNet networks 18/34/50/101/152 (torchvision layout and names; ResNeXt and "
     "wide bottlenecks through groups and width_per_group) and the CIFAR networks "
     "20/32/44/56/110",
     "K. He, X. Zhang, S. Ren, J. Sun: Deep residual learning for image recognition. "
     "CVPR 2016",
     resnet_params, &resnet_ops},
};

DLAS_PLUGIN("resnet", "0.1.0", "residual networks (He et al. 2016)", components)
