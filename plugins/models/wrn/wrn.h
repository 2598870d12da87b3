/* Internal to the wrn plugin: the residual blocks and their cheap variants. */
#ifndef WRN_H
#define WRN_H

#include <dlas/build.h>
#include <dlas/plugin.h>

enum wrn_block_type {
    WRN_BASIC = 0,          /* S: two full 3x3 convolutions */
    WRN_GROUPED,            /* G(g): each 3x3 -> grouped 3x3 + BN-ReLU + pointwise */
    WRN_BOTTLENECK,         /* B(b): one bottleneck 1x1 -> 3x3 -> 1x1 at N/b channels */
    WRN_GROUPED_BOTTLENECK, /* BG(b, g): the bottleneck's 3x3 grouped */
    WRN_DWSEP               /* D: G(g) with one group per channel */
};

struct wrn_block_spec {
    enum wrn_block_type type;
    int groups;     /* G, BG: number of groups (when group_size is 0) */
    int group_size; /* G, BG: channels per group instead, as BlockSwap's DConvG<s>, G<s>B<b> */
    int bottleneck; /* B, BG: contraction b; the bottleneck has floor(N/b) channels */
    float dropout;  /* WRN's dropRate: before conv2, or after the bottleneck module */
};

/* Whether the block can be built (groups divide their channels, the
 * bottleneck leaves channels); a message names the block otherwise. */
int wrn_block_check(const char *pre, int in_c, int out_c, const struct wrn_block_spec *s);

/* Append one pre-activation block named `pre` reading x (in_c channels) and
 * return its output node ("<pre>.add"); errors are the graph's (sticky). */
int wrn_block(struct dlas_graph *g, const char *pre, int x, int in_c, int out_c, int stride,
              const struct wrn_block_spec *s);

#endif
