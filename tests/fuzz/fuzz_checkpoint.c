/* The checkpoint reader: header, records, CRCs, trailer; every tensor read
 * and checked; and the same file loaded into a small graph by name. */
#include "fuzz_common.h"

static struct dlas_graph *small_graph(void)
{
    struct dlas_graph *g = dlas_graph_new();
    int x = dlas_graph_input(g, "input", 3, 6, 6);
    struct dlas_conv_attr a = dlas_conv(4, 3, 1, 1);
    a.bias = 1;
    x = dlas_graph_conv2d(g, "conv", x, &a);
    x = dlas_graph_batchnorm(g, "bn", x, 1e-5f);
    x = dlas_graph_relu(g, "relu", x);
    x = dlas_graph_global_avgpool(g, "gap", x);
    x = dlas_graph_flatten(g, "flatten", x);
    dlas_graph_linear(g, "fc", x, 3, 1);
    return g;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_write("x.ckpt", data, size);
    struct dlas_ckpt *c = NULL;
    if (dlas_ckpt_open(path, &c) == DLAS_OK) {
        dlas_ckpt_verify(c);
        for (size_t i = 0; i < dlas_ckpt_count(c); i++) {
            struct dlas_tensor t;
            memset(&t, 0, sizeof t);
            if (dlas_ckpt_read_tensor(c, dlas_ckpt_entry_at(c, i)->name, &t) == DLAS_OK)
                dlas_tensor_free(&t);
        }
        dlas_ckpt_close(c);
    }
    struct dlas_graph *g = small_graph();
    if (g && dlas_graph_status(g) == DLAS_OK)
        dlas_checkpoint_load_graph(g, path, DLAS_CKPT_ALLOW_UNEXPECTED);
    dlas_graph_free(g);
    return 0;
}
