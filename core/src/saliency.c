/* Fisher saliency of channels, accumulated over minibatches (see
 * <dlas/saliency.h> for the definition and where it comes from). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/saliency.h>
#include <dlas/status.h>

void dlas_fisher_batch(const float *act, const float *grad, int64_t n, int64_t c, int64_t hw,
                       double *delta)
{
    if (n < 1)
        return;
    const double scale = 0.5 / (double)n;
    for (int64_t k = 0; k < c; k++) {
        double sum = 0.0;
        for (int64_t b = 0; b < n; b++) {
            const float *x = act + (b * c + k) * hw, *y = grad + (b * c + k) * hw;
            double s = 0.0;
            for (int64_t i = 0; i < hw; i++)
                s += (double)x[i] * (double)y[i];
            sum += s * s;
        }
        delta[k] += scale * sum;
    }
}

struct fisher_node {
    char name[DLAS_NAME_MAX];
    int id;           /* last known id, checked against the name before use */
    int64_t channels; /* size of sum; 0 before the first accumulate */
    double *sum;
};

struct dlas_fisher {
    int n;
    struct fisher_node *nodes;
    int64_t batches;
    struct dlas_trainer *trainer; /* attached to, or NULL */
};

static int shape_of(const struct dlas_node *nd, int64_t *c, int64_t *hw)
{
    if (nd->out_ndim == 3) {
        *c = nd->out_shape[0];
        *hw = nd->out_shape[1] * nd->out_shape[2];
    } else if (nd->out_ndim == 1) {
        *c = nd->out_shape[0];
        *hw = 1;
    } else
        return -1;
    return *c > 0 && *hw > 0 ? 0 : -1;
}

int dlas_fisher_new(const struct dlas_graph *g, const char *const *nodes, int n_nodes,
                    struct dlas_fisher **out)
{
    if (!out)
        return dlas_error(DLAS_ERR_INVALID, "fisher: NULL output");
    *out = NULL;
    if (!g || !nodes || n_nodes < 1)
        return dlas_error(DLAS_ERR_INVALID, "fisher: no graph or no nodes to watch");
    struct dlas_fisher *f = calloc(1, sizeof *f);
    if (!f || !(f->nodes = calloc((size_t)n_nodes, sizeof *f->nodes))) {
        free(f);
        return dlas_error(DLAS_ERR_NOMEM, "fisher: out of memory");
    }
    f->n = n_nodes;
    for (int i = 0; i < n_nodes; i++) {
        struct fisher_node *x = &f->nodes[i];
        int id = nodes[i] ? dlas_graph_find(g, nodes[i]) : -1;
        int64_t c, hw;
        int rc = DLAS_OK;
        if (id < 0)
            rc = dlas_error(DLAS_ERR_INVALID, "fisher: no node named '%s' in the graph",
                            nodes[i] ? nodes[i] : "(null)");
        else if (shape_of(dlas_graph_node(g, id), &c, &hw))
            rc = dlas_error(DLAS_ERR_INVALID, "fisher: node '%s' has no channels to score",
                            nodes[i]);
        if (rc) {
            dlas_fisher_free(f);
            return rc;
        }
        snprintf(x->name, sizeof x->name, "%s", nodes[i]);
        x->id = id;
    }
    *out = f;
    return DLAS_OK;
}

void dlas_fisher_free(struct dlas_fisher *f)
{
    if (!f)
        return;
    dlas_fisher_detach(f);
    for (int i = 0; i < f->n; i++)
        free(f->nodes[i].sum);
    free(f->nodes);
    free(f);
}

/* The node's current id: the cached one while its name still matches. */
static int node_id(const struct dlas_graph *g, struct fisher_node *x)
{
    if (x->id >= 0 && x->id < dlas_graph_n_nodes(g) &&
        !strcmp(dlas_graph_node(g, x->id)->name, x->name))
        return x->id;
    return x->id = dlas_graph_find(g, x->name);
}

int dlas_fisher_accumulate(struct dlas_fisher *f, struct dlas_autograd *a)
{
    if (!f || !a)
        return dlas_error(DLAS_ERR_INVALID, "fisher: NULL %s", f ? "autograd" : "accumulator");
    const struct dlas_graph *g = dlas_autograd_graph(a);
    int64_t n = dlas_autograd_batch(a);
    if (n < 1)
        return dlas_error(DLAS_ERR_INVALID, "fisher: no forward pass to score");
    for (int i = 0; i < f->n; i++) {
        struct fisher_node *x = &f->nodes[i];
        int id = node_id(g, x);
        int64_t c, hw;
        if (id < 0)
            return dlas_error(DLAS_ERR_INVALID, "fisher: node '%s' is no longer in the graph",
                              x->name);
        if (shape_of(dlas_graph_node(g, id), &c, &hw))
            return dlas_error(DLAS_ERR_INVALID, "fisher: node '%s' has no channels to score",
                              x->name);
        if (c != x->channels) { /* first time, or the node was pruned */
            double *s = calloc((size_t)c, sizeof *s);
            if (!s)
                return dlas_error(DLAS_ERR_NOMEM, "fisher: out of memory");
            free(x->sum);
            x->sum = s;
            x->channels = c;
        }
        if (!dlas_autograd_has_grad(a, id))
            continue; /* no gradient reached it: Delta = 0 */
        const float *act = dlas_autograd_act(a, id);
        if (!act)
            return dlas_error(DLAS_ERR_INVALID,
                              "fisher: the activation of '%s' is not kept (a batchnorm computed "
                              "with its relu: score the relu, or dlas_autograd_keep it before "
                              "the forward)",
                              x->name);
        const float *grad = dlas_autograd_grad(a, id);
        if (!grad)
            return dlas_error_context("fisher: node '%s'", x->name);
        dlas_fisher_batch(act, grad, n, c, hw, x->sum);
    }
    f->batches++;
    return DLAS_OK;
}

static int fisher_hook(void *ctx, struct dlas_trainer *t, const struct dlas_train_step *s)
{
    (void)s;
    return dlas_fisher_accumulate(ctx, dlas_trainer_autograd(t));
}

int dlas_fisher_attach(struct dlas_fisher *f, struct dlas_trainer *t)
{
    if (!f || !t)
        return dlas_error(DLAS_ERR_INVALID, "fisher: NULL %s", f ? "trainer" : "accumulator");
    if (f->trainer)
        return dlas_error(DLAS_ERR_INVALID, "fisher: already attached to a trainer");
    struct dlas_train_hook h;
    memset(&h, 0, sizeof h);
    h.size = sizeof h;
    h.ctx = f;
    h.after_backward = fisher_hook;
    int rc = dlas_trainer_add_hook(t, &h);
    if (!rc)
        f->trainer = t;
    return rc;
}

void dlas_fisher_detach(struct dlas_fisher *f)
{
    if (f && f->trainer) {
        dlas_trainer_remove_hooks(f->trainer, f);
        f->trainer = NULL;
    }
}

int dlas_fisher_n_nodes(const struct dlas_fisher *f) { return f ? f->n : 0; }

const char *dlas_fisher_node(const struct dlas_fisher *f, int i)
{
    return f && i >= 0 && i < f->n ? f->nodes[i].name : NULL;
}

const double *dlas_fisher_saliency(const struct dlas_fisher *f, int i, int64_t *channels)
{
    if (!f || i < 0 || i >= f->n) {
        if (channels)
            *channels = 0;
        return NULL;
    }
    if (channels)
        *channels = f->nodes[i].channels;
    return f->nodes[i].sum;
}

int64_t dlas_fisher_batches(const struct dlas_fisher *f) { return f ? f->batches : 0; }

void dlas_fisher_reset(struct dlas_fisher *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n; i++)
        if (f->nodes[i].sum)
            memset(f->nodes[i].sum, 0, (size_t)f->nodes[i].channels * sizeof(double));
    f->batches = 0;
}
