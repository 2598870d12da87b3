/* The residual blocks of the wrn plugin, standard and cheap. Layouts and
 * module names follow the Moonshine / BlockSwap code (BayesWatch/pytorch-
 * moonshine, BayesWatch/pytorch-blockswap, models/blocks.py) so that their
 * checkpoints map by name: a block is "block<g>.0.layer.<i>" with "bn1",
 * "relu1", "conv1", [bn2, relu2, conv2], "convShortcut", and each of its
 * convolutions is a small module of its own ("conv1.conv" for a plain one,
 * "conv1.convdw/bn/conv1x1" for grouped + pointwise, "conv1.conv1x1_down/
 * bn1/conv/bn2/conv1x1_up" for a bottleneck). */
#include "wrn.h"

static int groups_for(const struct wrn_block_spec *s, int channels)
{
    if (s->type == WRN_DWSEP)
        return channels;
    if (s->group_size > 0)
        return channels / s->group_size;
    return s->groups;
}

static int check_groups(const char *pre, const char *where, int channels,
                        const struct wrn_block_spec *s)
{
    int groups = groups_for(s, channels);
    if (s->group_size > 0 && (channels % s->group_size || groups < 1))
        return dlas_error(DLAS_ERR_INVALID,
                          "wrn: %s.%s: group_size %d does not divide its %d channels", pre,
                          where, s->group_size, channels);
    if (groups < 1 || channels % groups)
        return dlas_error(DLAS_ERR_INVALID, "wrn: %s.%s: %d groups do not divide its %d channels",
                          pre, where, groups, channels);
    return DLAS_OK;
}

int wrn_block_check(const char *pre, int in_c, int out_c, const struct wrn_block_spec *s)
{
    switch (s->type) {
    case WRN_BASIC:
        return DLAS_OK;
    case WRN_GROUPED:
    case WRN_DWSEP: {
        int rc = check_groups(pre, "conv1.convdw", in_c, s);
        return rc ? rc : check_groups(pre, "conv2.convdw", out_c, s);
    }
    case WRN_BOTTLENECK:
    case WRN_GROUPED_BOTTLENECK:
        if (s->bottleneck < 1 || out_c / s->bottleneck < 1)
            return dlas_error(DLAS_ERR_INVALID,
                              "wrn: %s: bottleneck %d leaves no channels of %d", pre,
                              s->bottleneck, out_c);
        if (s->type == WRN_BOTTLENECK)
            return DLAS_OK;
        return check_groups(pre, "conv1.conv", out_c / s->bottleneck, s);
    }
    return dlas_error(DLAS_ERR_INVALID, "wrn: %s: unknown block type %d", pre, (int)s->type);
}

/* Moonshine's Conv / DConv: one full 3x3, or a grouped 3x3 over the input
 * channels, BN, ReLU and a pointwise convolution to out_c. */
static int cheap_conv(struct dlas_graph *g, const char *pre, const char *conv, int x, int in_c,
                      int out_c, int stride, const struct wrn_block_spec *s)
{
    char b[DLAS_NAME_MAX];
    if (s->type == WRN_BASIC) {
        struct dlas_conv_attr a = dlas_conv(out_c, 3, stride, 1);
        return dlas_graph_conv2d(g, dlas_name(b, "%s.%s.conv", pre, conv), x, &a);
    }
    struct dlas_conv_attr dw = dlas_conv(in_c, 3, stride, 1), pw = dlas_conv(out_c, 1, 1, 0);
    dw.groups = groups_for(s, in_c);
    x = dlas_graph_conv2d(g, dlas_name(b, "%s.%s.convdw", pre, conv), x, &dw);
    x = dlas_graph_batchnorm(g, dlas_name(b, "%s.%s.bn", pre, conv), x, DLAS_BN_EPS);
    x = dlas_graph_relu(g, dlas_name(b, "%s.%s.relu", pre, conv), x);
    return dlas_graph_conv2d(g, dlas_name(b, "%s.%s.conv1x1", pre, conv), x, &pw);
}

/* Moonshine's ConvBottleneck / GConvBottleneck: 1x1 down to floor(out/b),
 * BN-ReLU, 3x3 (grouped for BG), BN-ReLU, 1x1 up to out_c. */
static int bottleneck_conv(struct dlas_graph *g, const char *pre, int x, int out_c, int stride,
                           const struct wrn_block_spec *s)
{
    char b[DLAS_NAME_MAX];
    int mid = out_c / s->bottleneck;
    struct dlas_conv_attr down = dlas_conv(mid, 1, 1, 0), mid3 = dlas_conv(mid, 3, stride, 1);
    struct dlas_conv_attr up = dlas_conv(out_c, 1, 1, 0);
    if (s->type == WRN_GROUPED_BOTTLENECK)
        mid3.groups = groups_for(s, mid);
    x = dlas_graph_conv2d(g, dlas_name(b, "%s.conv1.conv1x1_down", pre), x, &down);
    x = dlas_graph_batchnorm(g, dlas_name(b, "%s.conv1.bn1", pre), x, DLAS_BN_EPS);
    x = dlas_graph_relu(g, dlas_name(b, "%s.conv1.relu1", pre), x);
    x = dlas_graph_conv2d(g, dlas_name(b, "%s.conv1.conv", pre), x, &mid3);
    x = dlas_graph_batchnorm(g, dlas_name(b, "%s.conv1.bn2", pre), x, DLAS_BN_EPS);
    x = dlas_graph_relu(g, dlas_name(b, "%s.conv1.relu2", pre), x);
    return dlas_graph_conv2d(g, dlas_name(b, "%s.conv1.conv1x1_up", pre), x, &up);
}

int wrn_block(struct dlas_graph *g, const char *pre, int x, int in_c, int out_c, int stride,
              const struct wrn_block_spec *s)
{
    char b[DLAS_NAME_MAX];
    /* Pre-activation: BN-ReLU opens the block. When the width changes the
     * projection shortcut reads the activated input too (WRN's convShortcut);
     * otherwise the shortcut is the raw input. */
    int a = dlas_graph_batchnorm(g, dlas_name(b, "%s.bn1", pre), x, DLAS_BN_EPS);
    a = dlas_graph_relu(g, dlas_name(b, "%s.relu1", pre), a);
    int y;
    if (s->type == WRN_BOTTLENECK || s->type == WRN_GROUPED_BOTTLENECK) {
        y = bottleneck_conv(g, pre, a, out_c, stride, s);
        if (s->dropout > 0)
            y = dlas_graph_dropout(g, dlas_name(b, "%s.dropout", pre), y, s->dropout);
    } else {
        y = cheap_conv(g, pre, "conv1", a, in_c, out_c, stride, s);
        y = dlas_graph_batchnorm(g, dlas_name(b, "%s.bn2", pre), y, DLAS_BN_EPS);
        y = dlas_graph_relu(g, dlas_name(b, "%s.relu2", pre), y);
        if (s->dropout > 0)
            y = dlas_graph_dropout(g, dlas_name(b, "%s.dropout", pre), y, s->dropout);
        y = cheap_conv(g, pre, "conv2", y, out_c, out_c, 1, s);
    }
    int sc = x;
    if (in_c != out_c) {
        struct dlas_conv_attr p = dlas_conv(out_c, 1, stride, 0);
        sc = dlas_graph_conv2d(g, dlas_name(b, "%s.convShortcut", pre), a, &p);
    }
    return dlas_graph_add(g, dlas_name(b, "%s.add", pre), sc, y);
}
