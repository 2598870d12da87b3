/* Building blocks for model plugins (<dlas/build.h>). Errors stay in the
 * graph (its status is sticky), so the pieces chain like the graph's own
 * builders and a model checks dlas_graph_status once at the end. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <dlas/build.h>

const char *dlas_name(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, DLAS_NAME_MAX, fmt, ap);
    va_end(ap);
    return buf;
}

int dlas_model_with_defaults(const struct dlas_param_spec *spec, const struct dlas_params *p,
                             dlas_model_graph_fn fn, int c, int h, int w, int classes,
                             struct dlas_graph *g)
{
    struct dlas_params *own = NULL;
    int rc;
    if (!p) {
        if ((rc = dlas_params_defaults(spec, &own)))
            return rc;
        p = own;
    }
    rc = fn(p, c, h, w, classes, g);
    dlas_params_free(own);
    return rc;
}

int dlas_style_imagenet(const char *style, int h, int w)
{
    return !strcmp(style, "imagenet") || (!strcmp(style, "auto") && h >= 64 && w >= 64);
}

int dlas_depth_blocks(int depth, int per_block, int fixed)
{
    if (per_block < 1 || depth < per_block + fixed || (depth - fixed) % per_block)
        return 0;
    return (depth - fixed) / per_block;
}

int dlas_conv_bn(struct dlas_graph *g, const char *conv, const char *bn, int x,
                 struct dlas_conv_attr a)
{
    return dlas_graph_batchnorm(g, bn, dlas_graph_conv2d(g, conv, x, &a), DLAS_BN_EPS);
}

int dlas_conv_bn_relu(struct dlas_graph *g, const char *conv, const char *bn, const char *relu,
                      int x, struct dlas_conv_attr a)
{
    return dlas_graph_relu(g, relu, dlas_conv_bn(g, conv, bn, x, a));
}

int dlas_imagenet_stem(struct dlas_graph *g, int x, int out_c, const char *const names[4])
{
    struct dlas_pool_attr mp = dlas_pool(3, 2, 1);
    x = dlas_conv_bn_relu(g, names[0], names[1], names[2], x, dlas_conv(out_c, 7, 2, 3));
    return dlas_graph_maxpool(g, names[3], x, &mp);
}

int dlas_pooled_head(struct dlas_graph *g, int x, const char *fc, int classes)
{
    x = dlas_graph_global_avgpool(g, "avgpool", x);
    x = dlas_graph_flatten(g, "flatten", x);
    return dlas_graph_linear(g, fc, x, classes, 1);
}
