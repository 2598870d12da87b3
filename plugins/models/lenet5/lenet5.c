/* Model "lenet5": the LeNet-5 layout of LeCun et al. (1998) with today's
 * substitutions (ReLU for the scaled tanh, max pooling for the trainable
 * subsampling, a plain linear classifier for the RBF output layer), as used
 * in most framework tutorials. Padding on the first convolution lets one
 * layout serve 28x28 (MNIST, Fashion-MNIST) and 32x32 inputs. */
#include <math.h>

#include <dlas/plugin.h>

/* Channel and feature counts of the paper's C1, C3, F5(C5), F6. */
enum { C1 = 6, C3 = 16, F5 = 120, F6 = 84 };

static int scaled(int base, double width)
{
    long v = lround(base * width);
    return v < 1 ? 1 : (int)v;
}

static int lenet5_build(const struct dlas_host *host, const struct dlas_params *p, int c, int h,
                        int w, int classes, struct dlas_graph *g)
{
    int64_t pad = p ? dlas_param_int(p, "padding") : 2;
    double width = p ? dlas_param_float(p, "width") : 1.0;
    if (pad < 0 || pad > 3)
        return dlas_error(DLAS_ERR_INVALID, "lenet5: padding = %lld is outside 0..3",
                          (long long)pad);
    if (!(width >= 0.25 && width <= 4.0))
        return dlas_error(DLAS_ERR_INVALID, "lenet5: width = %g is outside 0.25..4", width);
    if (classes < 1)
        return dlas_error(DLAS_ERR_INVALID, "lenet5: %d classes", classes);

    struct dlas_conv_attr conv1 = dlas_conv(scaled(C1, width), 5, 1, (int)pad);
    struct dlas_conv_attr conv2 = dlas_conv(scaled(C3, width), 5, 1, 0);
    struct dlas_pool_attr pool = dlas_pool(2, 2, 0);
    conv1.bias = conv2.bias = 1;

    int x = dlas_graph_input(g, "input", c, h, w);
    x = dlas_graph_conv2d(g, "conv1", x, &conv1);
    x = dlas_graph_relu(g, "relu1", x);
    x = dlas_graph_maxpool(g, "pool1", x, &pool);
    x = dlas_graph_conv2d(g, "conv2", x, &conv2);
    x = dlas_graph_relu(g, "relu2", x);
    x = dlas_graph_maxpool(g, "pool2", x, &pool);
    x = dlas_graph_flatten(g, "flatten", x);
    x = dlas_graph_linear(g, "fc1", x, scaled(F5, width), 1);
    x = dlas_graph_relu(g, "relu3", x);
    x = dlas_graph_linear(g, "fc2", x, scaled(F6, width), 1);
    x = dlas_graph_relu(g, "relu4", x);
    dlas_graph_linear(g, "fc3", x, classes, 1);

    int rc = dlas_graph_status(g);
    if (rc) {
        dlas_error_context("lenet5 on %dx%dx%d (padding %lld)", c, h, w, (long long)pad);
        return rc;
    }
    return DLAS_OK;
}

static const struct dlas_param_spec lenet5_params[] = {
    {"padding", DLAS_PARAM_INT, 0, "2", 0, 3, NULL,
     "zero padding of conv1; 2 keeps 28x28 inputs at the paper's 32x32 geometry"},
    {"width", DLAS_PARAM_FLOAT, 0, "1.0", 0.25, 4.0, NULL,
     "multiplier on every layer width (6, 16 channels; 120, 84 features)"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_model_ops lenet5_ops = {
    sizeof(struct dlas_model_ops),
    lenet5_build,
};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_MODEL, "lenet5",
     "LeNet-5: two 5x5 convolutions with max pooling, three fully connected layers",
     "Y. LeCun, L. Bottou, Y. Bengio, P. Haffner: Gradient-based learning applied to "
     "document recognition. Proc. IEEE 86(11):2278-2324, 1998",
     lenet5_params, &lenet5_ops},
};

DLAS_PLUGIN("lenet5", "0.1.0", "LeNet-5 convolutional network", components)
