/* Model "mobilenet": MobileNet v1 (Howard et al. 2017) and v2 (Sandler et al.
 * 2018). v2 follows torchvision's mobilenet_v2 layer for layer, names
 * included ("features.3.conv.1.0", "classifier.1"), so its weights map by
 * name; v1, which torchvision lacks, is named in the same scheme.
 *
 * For small inputs (style "cifar") the first strides are removed, as the
 * common CIFAR adaptations do (kuangliu/pytorch-cifar): v1's stem runs at
 * stride 1; v2's stem and its first stride-2 stage (24 channels) run at
 * stride 1, so a 32x32 image ends at 4x4 instead of 1x1. */
#include <dlas/build.h>
#include <dlas/plugin.h>


/* torchvision's _make_divisible: the nearest multiple of 8, never below 8
 * nor more than 10% below v. */
static int divisible8(double v)
{
    int n = (int)(v + 4.0) / 8 * 8;
    if (n < 8)
        n = 8;
    if (n < 0.9 * v)
        n += 8;
    return n;
}

/* Conv2dNormActivation: "<pre>.0" conv, "<pre>.1" BN, "<pre>.2" activation. */
static int conv_bn_act(struct dlas_graph *g, const char *pre, int x, int out_c, int k, int stride,
                       int groups, int relu6)
{
    char b0[DLAS_NAME_MAX], b1[DLAS_NAME_MAX], b2[DLAS_NAME_MAX];
    struct dlas_conv_attr a = dlas_conv(out_c, k, stride, (k - 1) / 2);
    a.groups = groups;
    x = dlas_conv_bn(g, dlas_name(b0, "%s.0", pre), dlas_name(b1, "%s.1", pre), x, a);
    dlas_name(b2, "%s.2", pre);
    return relu6 ? dlas_graph_relu6(g, b2, x) : dlas_graph_relu(g, b2, x);
}

/* torchvision's InvertedResidual: [1x1 expansion,] 3x3 depthwise, linear 1x1
 * projection; the input is added back when stride and width allow. */
static int inverted_residual(struct dlas_graph *g, int idx, int x, int in_c, int out_c,
                             int stride, int t)
{
    char b[DLAS_NAME_MAX], b2[DLAS_NAME_MAX];
    int hidden = in_c * t, k = 0, y = x;
    if (t != 1)
        y = conv_bn_act(g, dlas_name(b, "features.%d.conv.%d", idx, k++), y, hidden, 1, 1, 1,
                        1);
    y = conv_bn_act(g, dlas_name(b, "features.%d.conv.%d", idx, k++), y, hidden, 3, stride,
                    hidden, 1);
    dlas_name(b, "features.%d.conv.%d", idx, k);
    dlas_name(b2, "features.%d.conv.%d", idx, k + 1);
    y = dlas_conv_bn(g, b, b2, y, dlas_conv(out_c, 1, 1, 0));
    if (stride == 1 && in_c == out_c)
        y = dlas_graph_add(g, dlas_name(b, "features.%d.add", idx), x, y);
    return y;
}

static int v2_features(struct dlas_graph *g, int x, double width, int small, int *out_c)
{
    static const int setting[7][4] = {/* expansion t, channels c, repeats n, stride s */
                                      {1, 16, 1, 1},  {6, 24, 2, 2},  {6, 32, 3, 2},
                                      {6, 64, 4, 2},  {6, 96, 3, 1},  {6, 160, 3, 2},
                                      {6, 320, 1, 1}};
    char b[DLAS_NAME_MAX];
    int in_c = divisible8(32 * width), idx = 0;
    x = conv_bn_act(g, dlas_name(b, "features.%d", idx++), x, in_c, 3, small ? 1 : 2, 1, 1);
    for (int s = 0; s < 7; s++) {
        int oc = divisible8(setting[s][1] * width);
        for (int i = 0; i < setting[s][2]; i++) {
            int stride = i ? 1 : setting[s][3];
            if (small && s == 1)
                stride = 1;
            x = inverted_residual(g, idx++, x, in_c, oc, stride, setting[s][0]);
            in_c = oc;
        }
    }
    *out_c = divisible8(1280 * (width > 1.0 ? width : 1.0));
    return conv_bn_act(g, dlas_name(b, "features.%d", idx), x, *out_c, 1, 1, 1, 1);
}

/* v1: a 3x3 convolution, then 13 depthwise-separable layers ("features.<i>.0"
 * depthwise, "features.<i>.1" pointwise), each with BN and ReLU (the paper's
 * Figure 3; TensorFlow's release uses ReLU6 instead). */
static int v1_features(struct dlas_graph *g, int x, double width, int small, int *out_c)
{
    static const int layers[13][2] = {{64, 1},  {128, 2}, {128, 1}, {256, 2}, {256, 1},
                                      {512, 2}, {512, 1}, {512, 1}, {512, 1}, {512, 1},
                                      {512, 1}, {1024, 2}, {1024, 1}};
    char b[DLAS_NAME_MAX];
    int in_c = divisible8(32 * width);
    x = conv_bn_act(g, "features.0", x, in_c, 3, small ? 1 : 2, 1, 0);
    for (int i = 0; i < 13; i++) {
        int oc = divisible8(layers[i][0] * width);
        x = conv_bn_act(g, dlas_name(b, "features.%d.0", i + 1), x, in_c, 3, layers[i][1], in_c,
                        0);
        x = conv_bn_act(g, dlas_name(b, "features.%d.1", i + 1), x, oc, 1, 1, 1, 0);
        in_c = oc;
    }
    *out_c = in_c;
    return x;
}

static int mobilenet_graph(const struct dlas_params *p, int c, int h, int w, int classes,
                           struct dlas_graph *g)
{
    int version = (int)dlas_param_int(p, "version");
    double width = dlas_param_float(p, "width");
    const char *style = dlas_param_str(p, "style");
    float drop = (float)dlas_param_float(p, "dropout");
    if (version != 1 && version != 2)
        return dlas_error(DLAS_ERR_INVALID, "mobilenet: version %d is not 1 or 2", version);
    if (!(width >= 0.1 && width <= 4.0))
        return dlas_error(DLAS_ERR_INVALID, "mobilenet: width %g is outside 0.1..4", width);
    if (classes < 1)
        return dlas_error(DLAS_ERR_INVALID, "mobilenet: %d classes", classes);
    int small = !dlas_style_imagenet(style, h, w);

    int x = dlas_graph_input(g, "input", c, h, w), feat = 0;
    x = version == 1 ? v1_features(g, x, width, small, &feat)
                     : v2_features(g, x, width, small, &feat);
    x = dlas_graph_global_avgpool(g, "avgpool", x);
    x = dlas_graph_flatten(g, "flatten", x);
    if (drop > 0)
        x = dlas_graph_dropout(g, "classifier.0", x, drop);
    dlas_graph_linear(g, "classifier.1", x, classes, 1);

    int rc = dlas_graph_status(g);
    if (rc)
        return dlas_error_context("mobilenet v%d (width %g) on %dx%dx%d", version, width, c, h,
                                  w);
    return DLAS_OK;
}

static const struct dlas_param_spec mobilenet_params[] = {
    {"version", DLAS_PARAM_INT, 0, "2", 1, 2, NULL,
     "1: Howard et al. 2017 (depthwise separable); 2: Sandler et al. 2018 (inverted "
     "residuals, torchvision's mobilenet_v2)"},
    {"width", DLAS_PARAM_FLOAT, 0, "1.0", 0.1, 4.0, NULL,
     "width multiplier (alpha) on every layer's channels, rounded to a multiple of 8"},
    {"style", DLAS_PARAM_ENUM, 0, "auto", 0, 0, "auto|imagenet|cifar",
     "cifar removes the first strides (stem; v2 also the first stride-2 stage) for small "
     "inputs; auto = imagenet when the input is at least 64x64"},
    {"dropout", DLAS_PARAM_FLOAT, 0, "0.2", 0, 1, NULL,
     "dropout probability before the classifier; 0 leaves the node out"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static int mobilenet_build(const struct dlas_host *host, const struct dlas_params *p, int c,
                           int h, int w, int classes, struct dlas_graph *g)
{
    return dlas_model_with_defaults(mobilenet_params, p, mobilenet_graph, c, h, w, classes, g);
}

static const struct dlas_model_ops mobilenet_ops = {sizeof(struct dlas_model_ops),
                                                    mobilenet_build};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_MODEL, "mobilenet",
     "MobileNet v1 (width multiplier) and v2 (torchvision layout and names)",
     "A. G. Howard et al.: MobileNets: Efficient convolutional neural networks for mobile "
     "vision applications. arXiv:1704.04861, 2017; M. Sandler, A. Howard, M. Zhu, "
     "A. Zhmoginov, L.-C. Chen: MobileNetV2: Inverted residuals and linear bottlenecks. "
     "CVPR 2018",
     mobilenet_params, &mobilenet_ops},
};

DLAS_PLUGIN("mobilenet", "0.1.0", "MobileNet v1 and v2", components)
