/* Compressor "moonshine": Moonshine students (Crowley, Gray and Storkey,
 * NeurIPS 2018). Every residual block of the teacher gets one cheap block
 * type, keeping the teacher's depth and widths, and the student is trained
 * from the teacher with attention transfer at the end of each stage. */
#include <stdio.h>
#include <stdlib.h>

#include <dlas/distil.h>
#include <dlas/plugin.h>

static int report_student(struct dlas_compress_ctx *ctx, const char *type, int64_t teacher_params)
{
    struct dlas_graph_stats st;
    int rc = dlas_graph_stats(ctx->graph, &st);
    if (!rc)
        rc = dlas_report_str(ctx->report, "moonshine.block", type);
    if (!rc)
        rc = dlas_report_num(ctx->report, "moonshine.params", (double)st.params);
    if (!rc)
        rc = dlas_report_num(ctx->report, "moonshine.macs", (double)st.macs);
    if (!rc)
        rc = dlas_report_num(ctx->report, "moonshine.teacher_params", (double)teacher_params);
    return rc;
}

static int moonshine_apply(struct dlas_compress_ctx *ctx, const struct dlas_params *p)
{
    if (!ctx || !ctx->graph || !ctx->host || !p)
        return dlas_error(DLAS_ERR_INVALID, "moonshine: no graph, host or parameters");
    struct dlas_graph *g = ctx->graph;
    struct dlas_block_type t;
    char name[32];
    int rc = dlas_block_type_parse(dlas_param_str(p, "block"), &t);
    if (rc)
        return dlas_error_context("moonshine: block");
    dlas_block_type_name(&t, name, sizeof name);

    struct dlas_residual_block *b = NULL;
    int n = 0;
    if ((rc = dlas_graph_residual_blocks(g, &b, &n)))
        return rc;
    if (n == 0) {
        free(b);
        return dlas_error(DLAS_ERR_INVALID,
                          "moonshine: the model has no residual blocks of two k x k "
                          "convolutions to replace (WRN and basic-block ResNets have)");
    }
    /* every block must take the type before anything changes */
    for (int i = 0; i < n && !rc; i++)
        if ((rc = dlas_block_type_check(&t, b[i].in_c, b[i].out_c)))
            dlas_error_context("moonshine: block '%s' (%d -> %d channels)", b[i].prefix,
                               b[i].in_c, b[i].out_c);
    struct dlas_graph_stats before;
    if (!rc)
        rc = dlas_graph_stats(g, &before);
    const int scratch = dlas_distil_from_scratch(p);
    for (int i = 0; i < n && !rc; i++)
        rc = dlas_graph_substitute_block(g, &b[i], &t, scratch ? NULL : ctx->host->rng);
    if (!rc && scratch)
        rc = dlas_graph_init_weights(g, ctx->host->rng);
    if (!rc) {
        ctx->host->log(DLAS_LOG_INFO, "moonshine: %d blocks -> %s", n, name);
        rc = report_student(ctx, name, before.params);
    }
    if (!rc)
        rc = dlas_distil_student(ctx, p, "moonshine", b, n);
    free(b);
    return rc;
}

static const struct dlas_param_spec moonshine_params[] = {
    {"block", DLAS_PARAM_STRING, 0, "\"G(4)\"", 0, 0, NULL,
     "the cheap block every residual block becomes: S, G(g), G(N/s), DW, B(b), BG(b,g), "
     "BG(b,N/s), or the papers' code names (DConvA4, DConvG16, ConvB2, A2B2, G16B2, DConv)"},
    DLAS_DISTIL_PARAMS,
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

static const struct dlas_compressor_ops moonshine_ops = {sizeof(struct dlas_compressor_ops),
                                                         moonshine_apply};

static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_COMPRESSOR, "moonshine",
     "replace every residual block by one cheap block type (grouped, bottleneck, grouped "
     "bottleneck, depthwise-separable) and train the student with attention transfer",
     "E. J. Crowley, G. Gray, A. Storkey. Moonshine: Distilling with cheap convolutions. "
     "NeurIPS 2018 (arXiv:1711.02613)",
     moonshine_params, &moonshine_ops},
};

DLAS_PLUGIN("moonshine", "0.1.0", "Moonshine students: cheap blocks distilled by attention "
            "transfer", components)
