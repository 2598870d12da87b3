/* Evaluation: a whole split in eval mode (running statistics, no dropout),
 * forward only, batch by batch. */
#include <dlas/status.h>
#include <dlas/train.h>

int dlas_evaluate(struct dlas_autograd *a, struct dlas_data *d, enum dlas_data_split s,
                  struct dlas_eval *out)
{
    if (!a || !d || !out)
        return dlas_error(DLAS_ERR_INVALID, "evaluate: NULL argument");
    out->n = 0;
    out->loss = out->top1 = out->top5 = 0.0;
    const int64_t classes = dlas_data_info(d)->classes, max = dlas_autograd_max_batch(a);
    struct dlas_data_iter *it;
    int rc = dlas_data_iter_new(d, s, 0, 1, &it);
    if (rc)
        return rc;
    double loss = 0.0;
    int64_t n = 0, h1 = 0, h5 = 0;
    const struct dlas_batch *b;
    while (!(rc = dlas_data_iter_next(it, &b)) && b) {
        const int64_t per = b->images.dims[1] * b->images.dims[2] * b->images.dims[3];
        for (int64_t off = 0; !rc && off < b->n; off += max) {
            int64_t k = b->n - off < max ? b->n - off : max;
            if ((rc = dlas_autograd_forward(a, k, dlas_f32(&b->images) + off * per,
                                            DLAS_AG_NO_GRAD)))
                break;
            const float *logits = dlas_autograd_act(a, dlas_autograd_logits_node(a));
            loss += dlas_loss_xent(logits, b->labels + off, k, classes, 0.0, NULL, 0.0) *
                    (double)k;
            int64_t t1, t5;
            dlas_topk_hits(logits, b->labels + off, k, classes, &t1, &t5);
            h1 += t1;
            h5 += t5;
            n += k;
        }
        if (rc)
            break;
    }
    dlas_data_iter_free(it);
    if (rc)
        return dlas_error_context("evaluate (%s split)", dlas_data_split_name(s));
    out->n = n;
    if (n) {
        out->loss = loss / (double)n;
        out->top1 = (double)h1 / (double)n;
        out->top5 = (double)h5 / (double)n;
    }
    return DLAS_OK;
}
