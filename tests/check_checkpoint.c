/* Checkpoints: the byte format as documented in <dlas/checkpoint.h> (a file
 * built by hand here must read back), round trips, and refusal of every
 * truncation, every flipped byte, a wrong magic or version, and tensors that
 * do not fit the graph, with the file and tensor named. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zlib.h>

#include <dlas/dlas.h>

#include "testutil.h"

static char tmpdir[256];

static void setup(void)
{
    dlas_test_mkdtemp(tmpdir, sizeof tmpdir, "ckpt");
}

static void teardown(void)
{
    dlas_test_rmtree(tmpdir);
}

static const char *tmp(const char *name)
{
    return dlas_test_path(tmpdir, name);
}

static void assert_msg_has(const char *needle)
{
    ck_assert_msg(strstr(dlas_last_error(), needle) != NULL, "message \"%s\" lacks \"%s\"",
                  dlas_last_error(), needle);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    return (unsigned char *)dlas_test_slurp(path, len);
}

/* conv (with a mask) -> bn -> relu -> gap -> flatten -> fc, random values */
static struct dlas_graph *small_graph(int channels, int extra)
{
    struct dlas_graph *g = dlas_graph_new();
    int x = dlas_graph_input(g, "input", 3, 6, 6);
    struct dlas_conv_attr a = dlas_conv(channels, 3, 1, 1);
    a.bias = 1;
    x = dlas_graph_conv2d(g, "conv", x, &a);
    x = dlas_graph_batchnorm(g, "bn", x, 1e-5f);
    x = dlas_graph_relu(g, "relu", x);
    if (extra) {
        struct dlas_conv_attr e = dlas_conv(channels, 1, 1, 0);
        x = dlas_graph_conv2d(g, "extra", x, &e);
    }
    x = dlas_graph_global_avgpool(g, "gap", x);
    x = dlas_graph_flatten(g, "flatten", x);
    dlas_graph_linear(g, "fc", x, 3, 1);
    ck_assert_msg(dlas_graph_status(g) == 0, "%s", dlas_last_error());
    struct dlas_rng r;
    dlas_rng_seed(&r, 42);
    ck_assert_int_eq(dlas_graph_init_weights(g, &r), 0);
    struct dlas_node *bn = dlas_graph_node(g, dlas_graph_find(g, "bn"));
    for (int c = 0; c < channels; c++) {
        dlas_f32(&bn->running_mean)[c] = 0.1f * (float)c;
        dlas_f32(&bn->running_var)[c] = 1.0f + 0.5f * (float)c;
        dlas_f32(&bn->bias)[c] = -0.25f * (float)c;
    }
    struct dlas_node *conv = dlas_graph_node(g, dlas_graph_find(g, "conv"));
    ck_assert_int_eq(dlas_tensor_mask_ensure(&conv->weight), 0);
    for (int64_t i = 0; i < dlas_tensor_numel(&conv->weight); i += 3)
        conv->weight.mask[i] = 0;
    dlas_tensor_mask_apply(&conv->weight);
    return g;
}

static void assert_same_tensor(const struct dlas_tensor *a, const struct dlas_tensor *b)
{
    ck_assert_int_eq(!a->data, !b->data);
    if (!a->data)
        return;
    ck_assert_int_eq(a->dtype, b->dtype);
    ck_assert_int_eq(a->ndim, b->ndim);
    ck_assert_int_eq(memcmp(a->dims, b->dims, (size_t)a->ndim * sizeof *a->dims), 0);
    ck_assert_int_eq(memcmp(a->data, b->data, dlas_tensor_bytes(a)), 0);
    ck_assert_int_eq(!a->mask, !b->mask);
    if (a->mask)
        ck_assert_int_eq(memcmp(a->mask, b->mask, (size_t)dlas_tensor_numel(a)), 0);
}

static void assert_same_weights(const struct dlas_graph *a, const struct dlas_graph *b)
{
    ck_assert_int_eq(dlas_graph_n_nodes(a), dlas_graph_n_nodes(b));
    for (int i = 0; i < dlas_graph_n_nodes(a); i++) {
        const struct dlas_node *x = dlas_graph_node(a, i), *y = dlas_graph_node(b, i);
        assert_same_tensor(&x->weight, &y->weight);
        assert_same_tensor(&x->bias, &y->bias);
        assert_same_tensor(&x->running_mean, &y->running_mean);
        assert_same_tensor(&x->running_var, &y->running_var);
    }
}

/* ---- round trip --------------------------------------------------------- */

START_TEST(test_round_trip)
{
    struct dlas_graph *g = small_graph(4, 0), *h = small_graph(4, 0);
    const char *path = tmp("w.ckpt");
    ck_assert_msg(dlas_checkpoint_save_graph(g, path) == 0, "%s", dlas_last_error());
    /* h starts different: other weights and no mask */
    struct dlas_node *hc = dlas_graph_node(h, dlas_graph_find(h, "conv"));
    free(hc->weight.mask);
    hc->weight.mask = NULL;
    dlas_f32(&hc->weight)[0] = 123.0f;
    ck_assert_msg(dlas_checkpoint_load_graph(h, path, DLAS_CKPT_STRICT) == 0, "%s",
                  dlas_last_error());
    assert_same_weights(g, h);

    /* the reader sees every tensor, masks as u8 "<tensor>.mask" */
    struct dlas_ckpt *c;
    ck_assert_int_eq(dlas_ckpt_open(path, &c), 0);
    ck_assert_int_eq(dlas_ckpt_count(c), 2 + 4 + 2 + 1);
    ck_assert_str_eq(dlas_ckpt_entry_at(c, 0)->name, "conv.weight");
    ck_assert_str_eq(dlas_ckpt_entry_at(c, 1)->name, "conv.weight.mask");
    const struct dlas_ckpt_entry *e = dlas_ckpt_lookup(c, "bn.running_var");
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->dtype, DLAS_F32);
    ck_assert_int_eq(e->ndim, 1);
    ck_assert_int_eq(e->dims[0], 4);
    ck_assert_int_eq(e->nbytes, 16);
    ck_assert_ptr_null(dlas_ckpt_lookup(c, "bn.num_batches_tracked"));
    e = dlas_ckpt_lookup(c, "conv.weight.mask");
    ck_assert_int_eq(e->dtype, DLAS_U8);
    ck_assert_int_eq(e->ndim, 4);
    struct dlas_tensor t;
    ck_assert_int_eq(dlas_ckpt_read_tensor(c, "fc.bias", &t), 0);
    assert_same_tensor(&t, &dlas_graph_node(g, dlas_graph_find(g, "fc"))->bias);
    dlas_tensor_free(&t);
    ck_assert_int_eq(dlas_ckpt_verify(c), 0);
    ck_assert_int_ne(dlas_ckpt_read_tensor(c, "nope", &t), 0);
    assert_msg_has("no tensor 'nope'");
    dlas_ckpt_close(c);

    /* saving what was loaded gives the same bytes; overwriting is atomic */
    const char *again = tmp("again.ckpt");
    ck_assert_int_eq(dlas_checkpoint_save_graph(h, again), 0);
    size_t n1, n2;
    unsigned char *b1 = slurp(path, &n1), *b2 = slurp(again, &n2);
    ck_assert_int_eq(n1, n2);
    ck_assert_int_eq(memcmp(b1, b2, n1), 0);
    ck_assert_int_eq(dlas_checkpoint_save_graph(h, path), 0);
    free(b2);
    b2 = slurp(path, &n2);
    ck_assert_int_eq(memcmp(b1, b2, n1), 0);
    free(b1);
    free(b2);
    dlas_graph_free(g);
    dlas_graph_free(h);
}
END_TEST

/* ---- the format, by hand ------------------------------------------------ */

static size_t put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return 4;
}

static size_t put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return 8;
}

/* One record as the header documents it; returns its record CRC. */
static size_t record(unsigned char *p, const char *name, int dtype, int ndim,
                     const int64_t *dims, const void *data, size_t nbytes, uint32_t *rcrc)
{
    size_t o = put32(p, (uint32_t)strlen(name));
    memcpy(p + o, name, strlen(name));
    o += strlen(name);
    p[o++] = (unsigned char)dtype;
    p[o++] = (unsigned char)ndim;
    p[o++] = 0;
    p[o++] = 0;
    for (int i = 0; i < ndim; i++)
        o += put64(p + o, (uint64_t)dims[i]);
    o += put64(p + o, nbytes);
    o += put32(p + o, (uint32_t)crc32(0, data, (uInt)nbytes));
    *rcrc = (uint32_t)crc32(0, p, (uInt)o);
    o += put32(p + o, *rcrc);
    memcpy(p + o, data, nbytes);
    return o + nbytes;
}

START_TEST(test_handmade_file)
{
    unsigned char buf[512];
    float w[6] = {1.5f, -2.0f, 0.25f, 3.0f, 0.0f, -1.0f};
    int32_t s = -7;
    int64_t dims[2] = {2, 3};
    uint32_t r1, r2;
    size_t o = 0;
    memcpy(buf, "DLASCKPT", 8);
    o = 8;
    o += put32(buf + o, 1);
    o += put32(buf + o, 2);
    o += put32(buf + o, 0);
    o += put32(buf + o, (uint32_t)crc32(0, buf, 20));
    o += record(buf + o, "layer.weight", 0, 2, dims, w, sizeof w, &r1);
    o += record(buf + o, "step", 4, 0, NULL, &s, sizeof s, &r2);
    memcpy(buf + o, "DLASEND", 8);
    o += 8;
    o += put32(buf + o, 2);
    unsigned char rb[8];
    put32(rb, r1);
    put32(rb + 4, r2);
    o += put32(buf + o, (uint32_t)crc32(0, rb, 8));
    const char *path = tmp("hand.ckpt");
    dlas_test_spit(path, buf, o);

    struct dlas_ckpt *c;
    ck_assert_msg(dlas_ckpt_open(path, &c) == 0, "%s", dlas_last_error());
    ck_assert_int_eq(dlas_ckpt_count(c), 2);
    struct dlas_tensor t;
    ck_assert_int_eq(dlas_ckpt_read_tensor(c, "layer.weight", &t), 0);
    ck_assert_int_eq(t.ndim, 2);
    ck_assert_int_eq(t.dims[1], 3);
    ck_assert_int_eq(memcmp(t.data, w, sizeof w), 0);
    dlas_tensor_free(&t);
    const struct dlas_ckpt_entry *e = dlas_ckpt_lookup(c, "step");
    ck_assert_int_eq(e->ndim, 0);
    ck_assert_int_eq(e->dtype, DLAS_I32);
    ck_assert_int_eq(dlas_ckpt_read_tensor(c, "step", &t), 0);
    ck_assert_int_eq(*(int32_t *)t.data, -7);
    dlas_tensor_free(&t);
    dlas_ckpt_close(c);

    /* and the writer produces exactly these bytes */
    struct dlas_ckpt_writer *wr;
    const char *again = tmp("hand2.ckpt");
    ck_assert_int_eq(dlas_ckpt_writer_open(again, &wr), 0);
    ck_assert_int_eq(dlas_ckpt_writer_add(wr, "layer.weight", DLAS_F32, 2, dims, w), 0);
    ck_assert_int_eq(dlas_ckpt_writer_add(wr, "step", DLAS_I32, 0, NULL, &s), 0);
    ck_assert_int_eq(dlas_ckpt_writer_commit(wr), 0);
    size_t n;
    unsigned char *b = slurp(again, &n);
    ck_assert_int_eq(n, o);
    ck_assert_int_eq(memcmp(b, buf, n), 0);
    free(b);

    /* a later format version with a valid header CRC is refused as such */
    put32(buf + 8, 2);
    put32(buf + 20, (uint32_t)crc32(0, buf, 20));
    dlas_test_spit(path, buf, o);
    ck_assert_int_eq(dlas_ckpt_open(path, &c), DLAS_ERR_UNSUPPORTED);
    assert_msg_has(path);
    assert_msg_has("format version 2; this dlas reads version 1");
}
END_TEST

/* ---- corruption --------------------------------------------------------- */

START_TEST(test_truncated)
{
    struct dlas_graph *g = small_graph(4, 0), *h = small_graph(4, 0);
    const char *path = tmp("t.ckpt"), *cut = tmp("cut.ckpt");
    ck_assert_int_eq(dlas_checkpoint_save_graph(g, path), 0);
    size_t n;
    unsigned char *b = slurp(path, &n);
    struct dlas_node *hfc = dlas_graph_node(h, dlas_graph_find(h, "fc"));
    dlas_f32(&hfc->weight)[0] = 77.0f;
    struct dlas_graph *ref = dlas_graph_clone(h);
    /* every length short of the whole file */
    for (size_t len = 0; len < n; len++) {
        dlas_test_spit(cut, b, len);
        struct dlas_ckpt *c;
        dlas_clear_error();
        int rc = dlas_ckpt_open(cut, &c);
        ck_assert_msg(rc == DLAS_ERR_CORRUPT, "truncated at %zu: status %d (%s)", len, rc,
                      dlas_last_error());
        assert_msg_has(cut);
        if (len >= 24 + 4) /* inside a record or the trailer: a tensor is named */
            ck_assert_msg(strstr(dlas_last_error(), "tensor") != NULL,
                          "truncated at %zu: \"%s\" names no tensor", len, dlas_last_error());
        ck_assert_int_ne(dlas_checkpoint_load_graph(h, cut, DLAS_CKPT_STRICT), 0);
    }
    assert_same_weights(h, ref);
    /* some messages exactly */
    dlas_test_spit(cut, b, 30);
    ck_assert_int_ne(dlas_ckpt_open(cut, &(struct dlas_ckpt *){NULL}), 0);
    assert_msg_has("truncated in the header of tensor #1");
    dlas_test_spit(cut, b, 24 + 4 + 11 + 4 + 32 + 16 + 10); /* in conv.weight's data */
    ck_assert_int_ne(dlas_ckpt_open(cut, &(struct dlas_ckpt *){NULL}), 0);
    assert_msg_has("truncated in the data of tensor 'conv.weight'");
    dlas_test_spit(cut, b, n - 16);
    ck_assert_int_ne(dlas_ckpt_open(cut, &(struct dlas_ckpt *){NULL}), 0);
    assert_msg_has("end marker after tensor 'fc.bias' is missing");
    /* and a byte too many */
    unsigned char *longer = malloc(n + 1);
    memcpy(longer, b, n);
    longer[n] = 0;
    dlas_test_spit(cut, longer, n + 1);
    ck_assert_int_ne(dlas_ckpt_open(cut, &(struct dlas_ckpt *){NULL}), 0);
    assert_msg_has("1 unexpected bytes after the end marker");
    free(longer);
    free(b);
    dlas_graph_free(ref);
    dlas_graph_free(g);
    dlas_graph_free(h);
}
END_TEST

START_TEST(test_flipped_bytes)
{
    struct dlas_graph *g = small_graph(4, 0);
    const char *path = tmp("f.ckpt"), *bad = tmp("bad.ckpt");
    ck_assert_int_eq(dlas_checkpoint_save_graph(g, path), 0);
    size_t n;
    unsigned char *b = slurp(path, &n);
    /* every single flipped byte is caught, on open or when the data are read */
    for (size_t i = 0; i < n; i++) {
        b[i] ^= 0x20;
        dlas_test_spit(bad, b, n);
        b[i] ^= 0x20;
        struct dlas_ckpt *c;
        dlas_clear_error();
        int rc = dlas_ckpt_open(bad, &c);
        if (!rc) {
            rc = dlas_ckpt_verify(c);
            dlas_ckpt_close(c);
        }
        ck_assert_msg(rc != 0, "flipped byte %zu went unnoticed", i);
        assert_msg_has(bad);
    }
    /* in the data: the tensor is named; the graph is left as it was */
    struct dlas_graph *h = small_graph(4, 0), *ref;
    dlas_f32(&dlas_graph_node(h, dlas_graph_find(h, "bn"))->weight)[0] = 9.0f;
    ref = dlas_graph_clone(h);
    size_t data = 24 + 4 + 11 + 4 + 32 + 16 + 5; /* inside conv.weight's data */
    b[data] ^= 1;
    dlas_test_spit(bad, b, n);
    ck_assert_int_eq(dlas_checkpoint_load_graph(h, bad, DLAS_CKPT_STRICT), DLAS_ERR_CORRUPT);
    assert_msg_has(bad);
    assert_msg_has("tensor 'conv.weight': data CRC mismatch");
    assert_same_weights(h, ref);
    b[data] ^= 1;
    /* in a record header: the record is placed by the one before it */
    size_t rec2 = 24 + 4 + 11 + 4 + 32 + 16 + 4 * 108;
    b[rec2 + 6] ^= 1; /* a letter of "conv.weight.mask" */
    dlas_test_spit(bad, b, n);
    ck_assert_int_eq(dlas_checkpoint_load_graph(h, bad, DLAS_CKPT_STRICT), DLAS_ERR_CORRUPT);
    assert_msg_has("tensor #2 (after 'conv.weight')");
    assert_msg_has("record header CRC mismatch");
    b[rec2 + 6] ^= 1;
    /* in the file header */
    b[9] ^= 1;
    dlas_test_spit(bad, b, n);
    ck_assert_int_eq(dlas_checkpoint_load_graph(h, bad, DLAS_CKPT_STRICT), DLAS_ERR_CORRUPT);
    assert_msg_has("file header CRC mismatch");
    b[9] ^= 1;
    /* a wrong magic */
    memcpy(b, "PK\003\004XXXX", 8);
    dlas_test_spit(bad, b, n);
    ck_assert_int_eq(dlas_checkpoint_load_graph(h, bad, DLAS_CKPT_STRICT), DLAS_ERR_CORRUPT);
    assert_msg_has("is not a dlas checkpoint");
    assert_msg_has(bad);
    assert_same_weights(h, ref);
    ck_assert_int_eq(dlas_checkpoint_load_graph(h, tmp("absent.ckpt"), 0), DLAS_ERR_NOTFOUND);
    assert_msg_has("absent.ckpt");
    free(b);
    dlas_graph_free(ref);
    dlas_graph_free(h);
    dlas_graph_free(g);
}
END_TEST

/* ---- matching the graph ------------------------------------------------- */

START_TEST(test_graph_mismatch)
{
    struct dlas_graph *g = small_graph(4, 0);
    const char *path = tmp("m.ckpt");
    ck_assert_int_eq(dlas_checkpoint_save_graph(g, path), 0);

    struct dlas_graph *wide = small_graph(5, 0), *ref = dlas_graph_clone(wide);
    ck_assert_int_eq(dlas_checkpoint_load_graph(wide, path, DLAS_CKPT_STRICT), DLAS_ERR_INVALID);
    assert_msg_has(path);
    assert_msg_has("tensor 'conv.weight' is 4x3x3x3 in the file but 5x3x3x3 in the graph");
    assert_same_weights(wide, ref);
    dlas_graph_free(ref);
    dlas_graph_free(wide);

    /* the graph has a layer the file lacks */
    struct dlas_graph *more = small_graph(4, 1);
    ck_assert_int_eq(dlas_checkpoint_load_graph(more, path, DLAS_CKPT_STRICT),
                     DLAS_ERR_NOTFOUND);
    assert_msg_has(path);
    assert_msg_has("tensor 'extra.weight' is missing");
    struct dlas_node *ex = dlas_graph_node(more, dlas_graph_find(more, "extra"));
    float keep = dlas_f32(&ex->weight)[0];
    dlas_f32(&dlas_graph_node(more, dlas_graph_find(more, "fc"))->weight)[0] = 55.0f;
    ck_assert_msg(dlas_checkpoint_load_graph(more, path, DLAS_CKPT_ALLOW_MISSING) == 0, "%s",
                  dlas_last_error());
    ck_assert(dlas_f32(&ex->weight)[0] == keep);
    ck_assert(dlas_f32(&dlas_graph_node(more, dlas_graph_find(more, "fc"))->weight)[0] ==
              dlas_f32(&dlas_graph_node(g, dlas_graph_find(g, "fc"))->weight)[0]);

    /* the file has a layer the graph lacks */
    const char *big = tmp("big.ckpt");
    ck_assert_int_eq(dlas_checkpoint_save_graph(more, big), 0);
    struct dlas_graph *h = small_graph(4, 0);
    ck_assert_int_eq(dlas_checkpoint_load_graph(h, big, DLAS_CKPT_STRICT), DLAS_ERR_INVALID);
    assert_msg_has(big);
    assert_msg_has("tensor 'extra.weight' is not in the graph");
    ck_assert_int_eq(dlas_checkpoint_load_graph(h, big, DLAS_CKPT_ALLOW_UNEXPECTED), 0);
    assert_same_weights(h, g);

    /* a dtype the graph does not hold */
    struct dlas_ckpt_writer *w;
    const char *f64 = tmp("f64.ckpt");
    double d[3] = {1, 2, 3};
    int64_t three = 3;
    ck_assert_int_eq(dlas_ckpt_writer_open(f64, &w), 0);
    ck_assert_int_eq(dlas_ckpt_writer_add(w, "fc.bias", DLAS_F64, 1, &three, d), 0);
    ck_assert_int_eq(dlas_ckpt_writer_commit(w), 0);
    ck_assert_int_ne(dlas_checkpoint_load_graph(h, f64, DLAS_CKPT_ALLOW_MISSING), 0);
    assert_msg_has("tensor 'fc.bias' is f64 in the file but f32 in the graph");
    dlas_graph_free(h);
    dlas_graph_free(more);
    dlas_graph_free(g);
}
END_TEST

/* ---- atomic writes ------------------------------------------------------ */

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

START_TEST(test_atomic_write)
{
    struct dlas_graph *g = small_graph(4, 0);
    ck_assert_int_eq(dlas_checkpoint_save_graph(g, tmp("nodir/x.ckpt")), DLAS_ERR_IO);
    assert_msg_has("nodir/x.ckpt");
    ck_assert_int_eq(count_entries(tmpdir), 0);

    /* a failed write leaves the old file whole and no temporary behind */
    const char *path = tmp("keep.ckpt");
    ck_assert_int_eq(dlas_checkpoint_save_graph(g, path), 0);
    size_t n0, n1;
    unsigned char *b0 = slurp(path, &n0);
    struct dlas_ckpt_writer *w;
    float v = 1.0f;
    int64_t one = 1;
    ck_assert_int_eq(dlas_ckpt_writer_open(path, &w), 0);
    ck_assert_int_eq(count_entries(tmpdir), 2); /* the temporary exists meanwhile */
    ck_assert_int_eq(dlas_ckpt_writer_add(w, "a", DLAS_F32, 1, &one, &v), 0);
    ck_assert_int_ne(dlas_ckpt_writer_add(w, "a", DLAS_F32, 1, &one, &v), 0);
    assert_msg_has("tensor 'a': written twice");
    ck_assert_int_ne(dlas_ckpt_writer_add(w, "b", DLAS_F32, 1, &one, &v), 0);
    ck_assert_int_ne(dlas_ckpt_writer_commit(w), 0);
    ck_assert_int_eq(count_entries(tmpdir), 1);
    unsigned char *b1 = slurp(path, &n1);
    ck_assert_int_eq(n0, n1);
    ck_assert_int_eq(memcmp(b0, b1, n0), 0);
    free(b1);

    ck_assert_int_eq(dlas_ckpt_writer_open(path, &w), 0);
    ck_assert_int_eq(dlas_ckpt_writer_add(w, "a", DLAS_F32, 1, &one, &v), 0);
    dlas_ckpt_writer_abort(w);
    ck_assert_int_eq(count_entries(tmpdir), 1);
    b1 = slurp(path, &n1);
    ck_assert_int_eq(memcmp(b0, b1, n0), 0);
    free(b1);
    free(b0);

    /* bad arguments */
    ck_assert_int_eq(dlas_ckpt_writer_open(path, &w), 0);
    ck_assert_int_ne(dlas_ckpt_writer_add(w, "", DLAS_F32, 1, &one, &v), 0);
    dlas_ckpt_writer_abort(w);
    ck_assert_int_eq(dlas_ckpt_writer_open(path, &w), 0);
    ck_assert_int_ne(dlas_ckpt_writer_add(w, "x", (enum dlas_dtype)9, 1, &one, &v), 0);
    dlas_ckpt_writer_abort(w);
    ck_assert_int_eq(dlas_ckpt_writer_open(path, &w), 0);
    int64_t zero = 0;
    ck_assert_int_ne(dlas_ckpt_writer_add(w, "x", DLAS_F32, 1, &zero, &v), 0);
    dlas_ckpt_writer_abort(w);
    ck_assert_int_eq(count_entries(tmpdir), 1);
    dlas_graph_free(g);
}
END_TEST

/* ---- the command line --------------------------------------------------- */

static int sh(const char *fmt, const char *a, const char *b)
{
    char cmd[2048], inner[1536];
    snprintf(inner, sizeof inner, fmt, a, b);
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s/out.txt' 2>&1", getenv("DLAS_BIN"), inner, tmpdir);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void out_has(const char *needle)
{
    size_t n;
    char *s = dlas_test_slurp(tmp("out.txt"), &n);
    s[n] = '\0';
    ck_assert_msg(strstr(s, needle) != NULL, "output lacks \"%s\":\n%s", needle, s);
    free(s);
}

START_TEST(test_cli)
{
    if (!getenv("DLAS_BIN") || !getenv("DLAS_PLUGIN_PATH")) {
        fprintf(stderr, "check_checkpoint: DLAS_BIN or DLAS_PLUGIN_PATH unset; CLI not tested\n");
        return;
    }
    char f[512];
    snprintf(f, sizeof f, "%s", tmp("lenet.ckpt")); /* tmp() recycles its buffers */
    ck_assert_int_eq(sh("checkpoint save --model lenet5 --input 1x28x28 --seed 3 -o %s%s", f, ""),
                     0);
    out_has("saved model 'lenet5' (61706 parameters");
    ck_assert_int_eq(sh("checkpoint info %s%s", f, ""), 0);
    out_has("conv1.weight");
    out_has("6x1x5x5");
    out_has("every checksum ok");
    ck_assert_int_eq(sh("checkpoint load %s --model lenet5 --input 1x28x28%s", f, ""), 0);
    out_has("loaded into model 'lenet5'");
    ck_assert_int_eq(sh("summary --model lenet5 --input 1x28x28 --weights %s%s", f, ""), 0);
    out_has("conv2");
    out_has("parameters: 61,706 (61,684 non-zero");
    out_has("MACs: 416,520");
    /* another shape does not fit */
    ck_assert_int_eq(sh("checkpoint load %s --model lenet5 --input 1x28x28 width=2%s", f, ""), 1);
    out_has("tensor 'conv1.weight' is 6x1x5x5 in the file but 12x1x5x5 in the graph");
    /* a flipped byte is reported by info */
    size_t n;
    unsigned char *b = slurp(f, &n);
    b[n / 2] ^= 0x55;
    dlas_test_spit(f, b, n);
    free(b);
    ck_assert_int_eq(sh("checkpoint info %s%s", f, ""), 1);
    out_has("BAD");
    out_has("data CRC mismatch");
    /* an experiment's models, on its dataset's shape, in sweep order */
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s", tmp("s.cfg"));
    static const char text[] =
        "experiment = { name = \"s\"; output = { dir = \"out\"; }; };\n"
        "dataset = { plugin = \"synthetic\"; channels = 1; height = 28; width = 28; "
        "classes = 7; };\n"
        "models = { small = { plugin = \"lenet5\"; width = [0.5, 1.0]; };\n"
        "           big = { plugin = \"lenet5\"; width = 2.0; }; };\n"
        "compressors = { none = (); };\n"
        "primitives = { im2col = { plugin = \"im2col-gemm\"; }; };\n"
        "backends = { omp = { plugin = \"openmp\"; }; };\n"
        "sweep = { models = [\"big\", \"small\"]; };\n";
    dlas_test_spit(cfg, text, strlen(text));
    ck_assert_int_eq(sh("summary %s --totals%s", cfg, ""), 0);
    out_has("model 'big' on 1x28x28, 7 classes\n  parameters: 243,855");
    out_has("model 'small' on 1x28x28, 7 classes\n  parameters: 15,609"); /* width 0.5 */
    ck_assert_int_eq(sh("summary %s%s", cfg, ""), 0);
    out_has("fc3      linear          7");
    ck_assert_int_eq(sh("checkpoint bogus%s%s", "", ""), 2);
    ck_assert_int_eq(sh("summary%s%s", "", ""), 2);
}
END_TEST

/* A rank past DLAS_MAX_DIMS under valid CRCs is named as a rank, not as a
 * CRC mismatch; a FIFO is refused without blocking. */
START_TEST(test_real_fault_named)
{
    unsigned char buf[1024];
    float w[1] = {1.0f};
    int64_t dims[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    uint32_t r1;
    size_t o = 0;
    memcpy(buf, "DLASCKPT", 8);
    o = 8;
    o += put32(buf + o, 1);
    o += put32(buf + o, 1);
    o += put32(buf + o, 0);
    o += put32(buf + o, (uint32_t)crc32(0, buf, 20));
    o += record(buf + o, "deep", 0, 9, dims, w, sizeof w, &r1);
    memcpy(buf + o, "DLASEND", 8);
    o += 8;
    o += put32(buf + o, 1);
    unsigned char rb[4];
    put32(rb, r1);
    o += put32(buf + o, (uint32_t)crc32(0, rb, 4));
    const char *path = tmp("deep.ckpt");
    dlas_test_spit(path, buf, o);
    struct dlas_ckpt *c;
    ck_assert_int_eq(dlas_ckpt_open(path, &c), DLAS_ERR_UNSUPPORTED);
    assert_msg_has("rank 9");
    assert_msg_has("'deep'");
    ck_assert_ptr_null(strstr(dlas_last_error(), "CRC"));
    /* the same with a broken record CRC is a CRC mismatch */
    buf[8 + 16 + 4 + 4] ^= 1; /* the record's dtype byte */
    dlas_test_spit(path, buf, o);
    ck_assert_int_eq(dlas_ckpt_open(path, &c), DLAS_ERR_CORRUPT);
    assert_msg_has("CRC mismatch");

    const char *fifo = tmp("pipe.ckpt");
    ck_assert_int_eq(mkfifo(fifo, 0644), 0);
    ck_assert_int_eq(dlas_ckpt_open(fifo, &c), DLAS_ERR_INVALID);
    assert_msg_has(fifo);
    assert_msg_has("FIFO");
}
END_TEST

/* Weights that are NaN or Inf pass every CRC (the file is intact) but are
 * refused when loaded into a graph, naming tensor and element. */
START_TEST(test_nonfinite_refused)
{
    struct dlas_graph *g = small_graph(4, 0);
    struct dlas_node *fc = dlas_graph_node(g, dlas_graph_find(g, "fc"));
    const char *path = tmp("nan.ckpt");
    for (int k = 0; k < 3; k++) {
        float bad = k == 0 ? NAN : k == 1 ? INFINITY : -INFINITY;
        dlas_f32(&fc->weight)[5] = bad;
        ck_assert_int_eq(dlas_checkpoint_save_graph(g, path), 0);
        struct dlas_ckpt *c;
        ck_assert_int_eq(dlas_ckpt_open(path, &c), 0);
        ck_assert_int_eq(dlas_ckpt_verify(c), 0); /* intact */
        dlas_ckpt_close(c);
        struct dlas_graph *h = small_graph(4, 0);
        ck_assert_int_eq(dlas_checkpoint_load_graph(h, path, DLAS_CKPT_STRICT), DLAS_ERR_CORRUPT);
        assert_msg_has("fc.weight");
        assert_msg_has("element 5");
        assert_msg_has(k == 0 ? "NaN" : k == 1 ? "+Inf" : "-Inf");
        /* and the graph was left as it was */
        ck_assert(isfinite(dlas_f32(&dlas_graph_node(h, dlas_graph_find(h, "fc"))->weight)[5]));
        dlas_graph_free(h);
    }
    dlas_graph_free(g);
}
END_TEST

static Suite *checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *t = dlas_test_case(s, "format", setup, teardown, 0);
    tcase_add_test(t, test_round_trip);
    tcase_add_test(t, test_handmade_file);
    tcase_add_test(t, test_truncated);
    tcase_add_test(t, test_flipped_bytes);
    tcase_add_test(t, test_graph_mismatch);
    tcase_add_test(t, test_atomic_write);
    tcase_add_test(t, test_cli);
    tcase_add_test(t, test_real_fault_named);
    tcase_add_test(t, test_nonfinite_refused);
    return s;
}

int main(void)
{
    return dlas_test_run(checkpoint_suite());
}
