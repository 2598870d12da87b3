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

/* One scored entry: a node, or a set of nodes whose channels are tied (one
 * mask on all of them). */
struct fisher_entry {
    int n_nodes;
    char (*name)[DLAS_NAME_MAX];
    int *id;          /* last known ids, checked against the names before use */
    int64_t channels; /* size of sum; 0 before the first accumulate */
    double *sum;
};

struct dlas_fisher {
    int n;
    struct fisher_entry *e;
    int64_t batches;
    double *tmp; /* per sample and channel: sum over the set of sum_hw a g */
    int64_t tmp_len;
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

int dlas_fisher_new_tied(const struct dlas_graph *g, int n_entries, const int *set_size,
                         const char *const *nodes, struct dlas_fisher **out)
{
    if (!out)
        return dlas_error(DLAS_ERR_INVALID, "fisher: NULL output");
    *out = NULL;
    if (!g || !nodes || n_entries < 1)
        return dlas_error(DLAS_ERR_INVALID, "fisher: no graph or no nodes to watch");
    struct dlas_fisher *f = calloc(1, sizeof *f);
    if (!f || !(f->e = calloc((size_t)n_entries, sizeof *f->e))) {
        free(f);
        return dlas_error(DLAS_ERR_NOMEM, "fisher: out of memory");
    }
    f->n = n_entries;
    int at = 0, rc = DLAS_OK;
    for (int i = 0; i < n_entries && !rc; i++) {
        struct fisher_entry *x = &f->e[i];
        int k = set_size ? set_size[i] : 1;
        if (k < 1) {
            rc = dlas_error(DLAS_ERR_INVALID, "fisher: entry %d has no nodes", i);
            break;
        }
        x->name = calloc((size_t)k, sizeof *x->name);
        x->id = calloc((size_t)k, sizeof *x->id);
        if (!x->name || !x->id) {
            rc = dlas_error(DLAS_ERR_NOMEM, "fisher: out of memory");
            break;
        }
        x->n_nodes = k;
        int64_t c0 = 0;
        for (int j = 0; j < k && !rc; j++, at++) {
            const char *nm = nodes[at];
            int id = nm ? dlas_graph_find(g, nm) : -1;
            int64_t c = 0, hw = 0;
            if (id < 0)
                rc = dlas_error(DLAS_ERR_INVALID, "fisher: no node named '%s' in the graph",
                                nm ? nm : "(null)");
            else if (shape_of(dlas_graph_node(g, id), &c, &hw))
                rc = dlas_error(DLAS_ERR_INVALID, "fisher: node '%s' has no channels to score",
                                nm);
            else if (j && c != c0)
                rc = dlas_error(DLAS_ERR_INVALID,
                                "fisher: tied nodes '%s' and '%s' have %lld and %lld channels",
                                x->name[0], nm, (long long)c0, (long long)c);
            if (rc)
                break;
            c0 = c;
            snprintf(x->name[j], DLAS_NAME_MAX, "%s", nm);
            x->id[j] = id;
        }
    }
    if (rc) {
        dlas_fisher_free(f);
        return rc;
    }
    *out = f;
    return DLAS_OK;
}

int dlas_fisher_new(const struct dlas_graph *g, const char *const *nodes, int n_nodes,
                    struct dlas_fisher **out)
{
    return dlas_fisher_new_tied(g, n_nodes, NULL, nodes, out);
}

void dlas_fisher_free(struct dlas_fisher *f)
{
    if (!f)
        return;
    dlas_fisher_detach(f);
    for (int i = 0; i < f->n; i++) {
        free(f->e[i].sum);
        free(f->e[i].name);
        free(f->e[i].id);
    }
    free(f->e);
    free(f->tmp);
    free(f);
}

/* A node's current id: the cached one while its name still matches. */
static int node_id(const struct dlas_graph *g, struct fisher_entry *x, int j)
{
    if (x->id[j] >= 0 && x->id[j] < dlas_graph_n_nodes(g) &&
        !strcmp(dlas_graph_node(g, x->id[j])->name, x->name[j]))
        return x->id[j];
    return x->id[j] = dlas_graph_find(g, x->name[j]);
}

/* Add sum_hw a g of every sample and channel of one node into tmp (n x c). */
static void add_products(const float *act, const float *grad, int64_t n, int64_t c, int64_t hw,
                         double *tmp)
{
    for (int64_t b = 0; b < n; b++)
        for (int64_t k = 0; k < c; k++) {
            const float *x = act + (b * c + k) * hw, *y = grad + (b * c + k) * hw;
            double s = 0.0;
            for (int64_t i = 0; i < hw; i++)
                s += (double)x[i] * (double)y[i];
            tmp[b * c + k] += s;
        }
}

static int accumulate_entry(struct dlas_fisher *f, struct fisher_entry *x,
                            struct dlas_autograd *a, const struct dlas_graph *g, int64_t n)
{
    int64_t c = 0;
    for (int j = 0; j < x->n_nodes; j++) {
        int id = node_id(g, x, j);
        int64_t cj, hw;
        if (id < 0)
            return dlas_error(DLAS_ERR_INVALID, "fisher: node '%s' is no longer in the graph",
                              x->name[j]);
        if (shape_of(dlas_graph_node(g, id), &cj, &hw))
            return dlas_error(DLAS_ERR_INVALID, "fisher: node '%s' has no channels to score",
                              x->name[j]);
        if (j && cj != c)
            return dlas_error(DLAS_ERR_INVALID, "fisher: tied nodes '%s' and '%s' differ in "
                              "channels", x->name[0], x->name[j]);
        c = cj;
    }
    if (c != x->channels) { /* first time, or the nodes were pruned */
        double *s = calloc((size_t)c, sizeof *s);
        if (!s)
            return dlas_error(DLAS_ERR_NOMEM, "fisher: out of memory");
        free(x->sum);
        x->sum = s;
        x->channels = c;
    }
    if (n * c > f->tmp_len) {
        double *t = realloc(f->tmp, (size_t)(n * c) * sizeof *t);
        if (!t)
            return dlas_error(DLAS_ERR_NOMEM, "fisher: out of memory");
        f->tmp = t;
        f->tmp_len = n * c;
    }
    memset(f->tmp, 0, (size_t)(n * c) * sizeof *f->tmp);
    int any = 0;
    for (int j = 0; j < x->n_nodes; j++) {
        int id = x->id[j];
        int64_t cj = 0, hw = 0;
        shape_of(dlas_graph_node(g, id), &cj, &hw);
        if (!dlas_autograd_has_grad(a, id))
            continue; /* no gradient reached it: it adds zero */
        const float *act = dlas_autograd_act(a, id);
        if (!act)
            return dlas_error(DLAS_ERR_INVALID,
                              "fisher: the activation of '%s' is not kept (a batchnorm computed "
                              "with its relu: score the relu, or dlas_autograd_keep it before "
                              "the forward)",
                              x->name[j]);
        const float *grad = dlas_autograd_grad(a, id);
        if (!grad)
            return dlas_error_context("fisher: node '%s'", x->name[j]);
        add_products(act, grad, n, c, hw, f->tmp);
        any = 1;
    }
    if (!any)
        return DLAS_OK;
    const double scale = 0.5 / (double)n;
    for (int64_t k = 0; k < c; k++) {
        double sum = 0.0;
        for (int64_t b = 0; b < n; b++)
            sum += f->tmp[b * c + k] * f->tmp[b * c + k];
        x->sum[k] += scale * sum;
    }
    return DLAS_OK;
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
        int rc = accumulate_entry(f, &f->e[i], a, g, n);
        if (rc)
            return rc;
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
    return f && i >= 0 && i < f->n ? f->e[i].name[0] : NULL;
}

const double *dlas_fisher_saliency(const struct dlas_fisher *f, int i, int64_t *channels)
{
    if (!f || i < 0 || i >= f->n) {
        if (channels)
            *channels = 0;
        return NULL;
    }
    if (channels)
        *channels = f->e[i].channels;
    return f->e[i].sum;
}

int64_t dlas_fisher_batches(const struct dlas_fisher *f) { return f ? f->batches : 0; }

void dlas_fisher_reset(struct dlas_fisher *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n; i++)
        if (f->e[i].sum)
            memset(f->e[i].sum, 0, (size_t)f->e[i].channels * sizeof(double));
    f->batches = 0;
}
