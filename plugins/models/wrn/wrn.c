/* Model "wrn": wide residual networks (Zagoruyko & Komodakis 2016), WRN-d-k
 * for CIFAR-sized inputs: a 3x3 convolution of 16 channels, three groups of
 * n = (d-4)/6 pre-activation blocks of 16k, 32k, 64k channels (the second and
 * third start with stride 2), BN-ReLU, global average pool, linear.
 *
 * Every block can be one of the cheap substitutes of Moonshine (Crowley et
 * al. 2018) and BlockSwap (Turner et al. 2020); see wrn_block.c. Blocks are
 * named "block<g>.0.layer.<i>" as in those papers' code; a block reads the
 * previous block's "<...>.add" ("conv1" for the first) and ends in its own
 * "<pre>.add", the two names the core's block replacement takes. */
#include <string.h>

#include "wrn.h"

static const char *const block_names[] = {"basic", "grouped", "bottleneck",
                                          "grouped_bottleneck", "dwsep"};

static int wrn_graph(const struct dlas_params *p, int c, int h, int w, int classes,
                     struct dlas_graph *g)
{
    int depth = (int)dlas_param_int(p, "depth"), k = (int)dlas_param_int(p, "width");
    const char *block = dlas_param_str(p, "block");
    struct wrn_block_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.groups = (int)dlas_param_int(p, "groups");
    spec.group_size = (int)dlas_param_int(p, "group_size");
    spec.bottleneck = (int)dlas_param_int(p, "bottleneck");
    spec.dropout = (float)dlas_param_float(p, "dropout");
    spec.type = (enum wrn_block_type)-1;
    for (size_t i = 0; i < sizeof block_names / sizeof block_names[0]; i++)
        if (block && !strcmp(block, block_names[i]))
            spec.type = (enum wrn_block_type)i;
    if ((int)spec.type < 0)
        return dlas_error(DLAS_ERR_INVALID, "wrn: unknown block type '%s'", block ? block : "");
    const int n = dlas_depth_blocks(depth, 6, 4);
    if (!n)
        return dlas_error(DLAS_ERR_INVALID,
                          "wrn: depth %d is not 6n+4 (e.g. 16, 22, 28, 40)", depth);
    if (k < 1)
        return dlas_error(DLAS_ERR_INVALID, "wrn: width %d is not positive", k);
    if (classes < 1)
        return dlas_error(DLAS_ERR_INVALID, "wrn: %d classes", classes);

    const int widths[4] = {16, 16 * k, 32 * k, 64 * k};
    char pre[DLAS_NAME_MAX];
    int rc;
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < n; i++) {
            dlas_name(pre, "block%d.0.layer.%d", s + 1, i);
            if ((rc = wrn_block_check(pre, i ? widths[s + 1] : widths[s], widths[s + 1], &spec)))
                return rc;
        }

    struct dlas_conv_attr stem = dlas_conv(widths[0], 3, 1, 1);
    int x = dlas_graph_input(g, "input", c, h, w);
    x = dlas_graph_conv2d(g, "conv1", x, &stem);
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < n; i++) {
            dlas_name(pre, "block%d.0.layer.%d", s + 1, i);
            x = wrn_block(g, pre, x, i ? widths[s + 1] : widths[s], widths[s + 1],
                          (s > 0 && i == 0) ? 2 : 1, &spec);
        }
    x = dlas_graph_batchnorm(g, "bn1", x, DLAS_BN_EPS);
    x = dlas_graph_relu(g, "relu", x);
    dlas_pooled_head(g, x, "fc", classes);

    if ((rc = dlas_graph_status(g)))
        return dlas_error_context("wrn-%d-%d (%s blocks) on %dx%dx%d", depth, k, block, c, h, w);
    return DLAS_OK;
}

static const struct dlas_param_spec wrn_params[] = {
    {"depth", DLAS_PARAM_INT, 0, "40", 10, 1000, NULL,
     "d: 6n+4 layers (16, 22, 28, 40, ...), n blocks per group"},
    {"width", DLAS_PARAM_INT, 0, "2", 1, 64, NULL,
     "k: widening factor; the groups have 16k, 32k, 64k channels"},
    {"block", DLAS_PARAM_ENUM, 0, "basic", 0, 0,
     "basic|grouped|bottleneck|grouped_bottleneck|dwsep",
     "every block: basic = S (two 3x3 convs), grouped = G(g), bottleneck = B(b), "
     "grouped_bottleneck = BG(b,g), dwsep = depthwise-separable G(N) (Moonshine, BlockSwap)"},
    {"groups", DLAS_PARAM_INT, 0, "4", 1, 4096, NULL,
     "g: groups of the grouped 3x3 convolutions (grouped, grouped_bottleneck)"},
    {"group_size", DLAS_PARAM_INT, 0, "0", 0, 4096, NULL,
     "channels per group instead of a group count (BlockSwap's DConvG<s>, G<s>B<b>); "
     "0 = use groups"},
    {"bottleneck", DLAS_PARAM_INT, 0, "2", 1, 64, NULL,
     "b: contraction of the bottleneck blocks, which run at floor(N/b) channels"},
    {"dropout", DLAS_PARAM_FLOAT, 0, "0", 0, 1, NULL,
     "dropout inside each block (before conv2; after the bottleneck module in bottleneck "
     "blocks), WRN's dropRate; 0 leaves the nodes out"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static int wrn_build(const struct dlas_host *host, const struct dlas_params *p, int c, int h,
                     int w, int classes, struct dlas_graph *g)
{
    return dlas_model_with_defaults(wrn_params, p, wrn_graph, c, h, w, classes, g);
}

static const struct dlas_model_ops wrn_ops = {sizeof(struct dlas_model_ops), wrn_build};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_MODEL, "wrn",
     "wide residual network WRN-d-k; blocks standard or the cheap blocks of Moonshine and "
     "BlockSwap (grouped, bottleneck, grouped bottleneck, depthwise-separable)",
     "S. Zagoruyko, N. Komodakis: Wide residual networks. BMVC 2016; E. J. Crowley, G. Gray, "
     "A. Storkey: Moonshine: Distilling with cheap convolutions. NeurIPS 2018; J. Turner, "
     "E. J. Crowley, M. O'Boyle, A. Storkey, G. Gray: BlockSwap: Fisher-guided block "
     "substitution for network compression on a budget. ICLR 2020",
     wrn_params, &wrn_ops},
};

DLAS_PLUGIN("wrn", "0.1.0", "wide residual networks and their cheap-block variants", components)
