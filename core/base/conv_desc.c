/* The convolution descriptor's one validator (dlas/conv.h): the graph, the
 * plan, the trainer and every primitive check geometry here, so that a layer
 * one of them accepts is a layer all of them agree on. */
#include <stdarg.h>
#include <stdio.h>

#include <dlas/conv.h>
#include <dlas/status.h>

static int bad(char *why, size_t len, const char *fmt, ...) DLAS_PRINTF(3, 4);
static int bad(char *why, size_t len, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (why && len)
        snprintf(why, len, "%s", msg);
    return dlas_error(DLAS_ERR_INVALID, "conv: %s", msg);
}

/* Everything but the output size; *oh, *ow: what the geometry gives. */
static int check_geometry(const struct dlas_conv_desc *d, int64_t *oh, int64_t *ow, char *why,
                          size_t len)
{
    if (why && len)
        why[0] = '\0';
    if (!d)
        return bad(why, len, "no descriptor");
    if (d->batch < 0 || d->in_c < 1 || d->in_h < 1 || d->in_w < 1 || d->out_c < 1)
        return bad(why, len,
                   "batch %lld, input %lldx%lldx%lld, %lld output channels: sizes must be "
                   "positive",
                   (long long)d->batch, (long long)d->in_c, (long long)d->in_h,
                   (long long)d->in_w, (long long)d->out_c);
    if (d->kh < 1 || d->kw < 1 || d->stride_h < 1 || d->stride_w < 1 || d->dil_h < 1 ||
        d->dil_w < 1 || d->pad_h < 0 || d->pad_w < 0)
        return bad(why, len,
                   "kernel %dx%d, stride %dx%d, dilation %dx%d must be positive and padding "
                   "%dx%d non-negative",
                   d->kh, d->kw, d->stride_h, d->stride_w, d->dil_h, d->dil_w, d->pad_h,
                   d->pad_w);
    if (d->groups < 1 || d->in_c % d->groups || d->out_c % d->groups)
        return bad(why, len, "%d groups must divide both %lld input and %lld output channels",
                   d->groups, (long long)d->in_c, (long long)d->out_c);
    /* extent of the dilated kernel must fit in the padded input */
    int64_t eh = d->in_h + 2 * (int64_t)d->pad_h - (int64_t)d->dil_h * (d->kh - 1) - 1;
    int64_t ew = d->in_w + 2 * (int64_t)d->pad_w - (int64_t)d->dil_w * (d->kw - 1) - 1;
    if (eh < 0 || ew < 0)
        return bad(why, len,
                   "kernel %dx%d (dilation %dx%d) is larger than the padded input %lldx%lld",
                   d->kh, d->kw, d->dil_h, d->dil_w,
                   (long long)(d->in_h + 2 * (int64_t)d->pad_h),
                   (long long)(d->in_w + 2 * (int64_t)d->pad_w));
    if (d->activation < DLAS_ACT_NONE || d->activation > DLAS_ACT_RELU6)
        return bad(why, len, "activation %d is not one of none, relu, relu6", d->activation);
    *oh = eh / d->stride_h + 1;
    *ow = ew / d->stride_w + 1;
    return DLAS_OK;
}

int dlas_conv_desc_check(const struct dlas_conv_desc *d, char *why, size_t len)
{
    int64_t oh = 0, ow = 0; /* set by check_geometry when it returns 0 */
    int rc = check_geometry(d, &oh, &ow, why, len);
    if (rc)
        return rc;
    if (d->out_h != oh || d->out_w != ow)
        return bad(why, len, "output %lldx%lld, but the geometry gives %lldx%lld",
                   (long long)d->out_h, (long long)d->out_w, (long long)oh, (long long)ow);
    return DLAS_OK;
}

int dlas_conv_desc_finish(struct dlas_conv_desc *d)
{
    int64_t oh = 0, ow = 0; /* set by check_geometry when it returns 0 */
    int rc = check_geometry(d, &oh, &ow, NULL, 0);
    if (rc)
        return rc;
    d->out_h = oh;
    d->out_w = ow;
    return DLAS_OK;
}

int64_t dlas_conv_desc_macs(const struct dlas_conv_desc *d)
{
    if (d->groups < 1)
        return 0;
    return d->out_c * d->out_h * d->out_w * (d->in_c / d->groups) * d->kh * d->kw;
}

static void pair(char *buf, size_t len, int a, int b)
{
    if (a == b)
        snprintf(buf, len, "%d", a);
    else
        snprintf(buf, len, "%dx%d", a, b);
}

void dlas_conv_desc_format(const struct dlas_conv_desc *d, char *buf, size_t len)
{
    char s[32], p[32], dl[32];
    if (!buf || !len)
        return;
    pair(s, sizeof s, d->stride_h, d->stride_w);
    pair(p, sizeof p, d->pad_h, d->pad_w);
    pair(dl, sizeof dl, d->dil_h, d->dil_w);
    snprintf(buf, len, "%lldx%lldx%lld -> %lldx%lldx%lld k%dx%d s%s p%s d%s g%d%s",
             (long long)d->in_c, (long long)d->in_h, (long long)d->in_w, (long long)d->out_c,
             (long long)d->out_h, (long long)d->out_w, d->kh, d->kw, s, p, dl, d->groups,
             d->activation == DLAS_ACT_RELU    ? " relu"
             : d->activation == DLAS_ACT_RELU6 ? " relu6"
                                               : "");
}
