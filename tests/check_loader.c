/* Plugin loader: good plugins, and every kind of bad one refused with a
 * message that says why. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dlas/dlas.h>

#include "testutil.h"

static char tmpdir[256];

static const char *fixture(const char *name)
{
    static char path[4096];
    const char *dir = getenv("DLAS_FIXTURES");
    ck_assert_msg(dir != NULL, "DLAS_FIXTURES is not set (run through make check)");
    snprintf(path, sizeof path, "%s/%s.so", dir, name);
    return path;
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    ck_assert_msg(in && out, "copy %s -> %s", from, to);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
}

static void setup(void)
{
    dlas_test_mkdtemp(tmpdir, sizeof tmpdir, "loader");
    dlas_clear_error();
}

static void teardown(void)
{
    dlas_test_rmtree(tmpdir);
}

#define ASSERT_MSG_HAS(s) \
    ck_assert_msg(strstr(dlas_last_error(), (s)) != NULL, "message '%s' lacks '%s'", dlas_last_error(), (s))

START_TEST(good_plugin_loads)
{
    struct dlas_registry *r = dlas_registry_new();
    ck_assert_int_eq(dlas_registry_load_file(r, fixture("fx_good")), DLAS_OK);
    ck_assert_uint_eq(dlas_registry_count(r), 1);
    const struct dlas_component *c = dlas_registry_find(r, DLAS_KIND_COMPRESSOR, "fx-noop");
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->params[0].name, "strength");
    const struct dlas_plugin *p;
    const char *path;
    ck_assert_ptr_eq(dlas_registry_at(r, 0, &p, &path), c);
    ck_assert_str_eq(p->name, "fx-good");
    /* the same file again is not a duplicate of itself */
    ck_assert_int_eq(dlas_registry_load_file(r, fixture("fx_good")), DLAS_OK);
    ck_assert_uint_eq(dlas_registry_count(r), 1);
    ck_assert_uint_eq(dlas_registry_n_failures(r), 0);
    /* a kind it does not offer */
    ck_assert_ptr_null(dlas_registry_find(r, DLAS_KIND_MODEL, "fx-noop"));
    ASSERT_MSG_HAS("no model plugin named 'fx-noop'");
    dlas_registry_free(r);
}
END_TEST

START_TEST(missing_symbol_refused)
{
    struct dlas_registry *r = dlas_registry_new();
    ck_assert_int_eq(dlas_registry_load_file(r, fixture("fx_nosym")), DLAS_ERR_INVALID);
    ASSERT_MSG_HAS("dlas_plugin_entry");
    ASSERT_MSG_HAS("not a dlas plugin");
    ck_assert_uint_eq(dlas_registry_count(r), 0);
    ck_assert_uint_eq(dlas_registry_n_failures(r), 1);
    const char *path, *why;
    dlas_registry_failure(r, 0, &path, &why);
    ck_assert_str_eq(path, fixture("fx_nosym"));
    ck_assert_ptr_nonnull(strstr(why, "dlas_plugin_entry"));
    dlas_registry_free(r);
}
END_TEST

/* A primitive whose operations table is the ABI 1.0 one (it ends after
 * release): it loads, and every later capability reads as absent. */
START_TEST(old_primitive_table_loads)
{
    struct dlas_registry *r = dlas_registry_new();
    ck_assert_msg(dlas_registry_load_file(r, fixture("fx_oldprim")) == DLAS_OK, "%s",
                  dlas_last_error());
    const struct dlas_component *c = dlas_registry_find(r, DLAS_KIND_PRIMITIVE, "fx-oldprim");
    ck_assert_ptr_nonnull(c);
    const struct dlas_primitive_ops *ops = c->ops;
    ck_assert_uint_eq(ops->size, offsetof(struct dlas_primitive_ops, flags));
    ck_assert_int_eq(dlas_prim_applies_activation(ops), 0);
    ck_assert_int_eq(dlas_prim_runs_int8(ops), 0);
    ck_assert_int_eq(dlas_prim_runs_residual(ops), 0);
    dlas_registry_free(r);
}
END_TEST

START_TEST(abi_mismatch_refused)
{
    struct dlas_registry *r = dlas_registry_new();
    ck_assert_int_eq(dlas_registry_load_file(r, fixture("fx_abi")), DLAS_ERR_ABI);
    ASSERT_MSG_HAS("plugin 'fx-abi' built for ABI 2.1");
    char want[64];
    snprintf(want, sizeof want, "supports %d.0-%d.%d", DLAS_ABI_MAJOR, DLAS_ABI_MAJOR, DLAS_ABI_MINOR);
    ASSERT_MSG_HAS(want);
    ck_assert_uint_eq(dlas_registry_count(r), 0);
    dlas_registry_free(r);
}
END_TEST

START_TEST(duplicate_names_both_files)
{
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/a_good.so", tmpdir);
    snprintf(b, sizeof b, "%s/b_dup.so", tmpdir);
    copy_file(fixture("fx_good"), a);
    copy_file(fixture("fx_dup"), b);
    struct dlas_registry *r = dlas_registry_new();
    ck_assert_int_eq(dlas_registry_scan_dir(r, tmpdir, 1), DLAS_OK);
    ck_assert_uint_eq(dlas_registry_count(r), 1);
    ck_assert_uint_eq(dlas_registry_n_failures(r), 1);
    const char *path, *why;
    dlas_registry_failure(r, 0, &path, &why);
    ck_assert_ptr_nonnull(strstr(why, "duplicate compressor name 'fx-noop'"));
    ck_assert_ptr_nonnull(strstr(why, a));
    ck_assert_ptr_nonnull(strstr(why, b));
    /* the name itself is refused, repeating both files */
    ck_assert_ptr_null(dlas_registry_find(r, DLAS_KIND_COMPRESSOR, "fx-noop"));
    ASSERT_MSG_HAS(a);
    ASSERT_MSG_HAS(b);
    dlas_registry_free(r);
}
END_TEST

START_TEST(non_elf_refused)
{
    char p[512];
    snprintf(p, sizeof p, "%s/fake.so", tmpdir);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs("this is not an ELF file\n", f);
    fclose(f);
    struct dlas_registry *r = dlas_registry_new();
    ck_assert_int_eq(dlas_registry_load_file(r, p), DLAS_ERR_INVALID);
    ASSERT_MSG_HAS("not a shared object");
    /* an empty file too */
    snprintf(p, sizeof p, "%s/empty.so", tmpdir);
    f = fopen(p, "w");
    fclose(f);
    ck_assert_int_eq(dlas_registry_load_file(r, p), DLAS_ERR_INVALID);
    ASSERT_MSG_HAS("not a shared object");
    ck_assert_uint_eq(dlas_registry_count(r), 0);
    /* a FIFO named like a plugin is refused at once, not read (which would
     * wait for a writer forever; alarm: a hang fails the test) */
    snprintf(p, sizeof p, "%s/fifo.so", tmpdir);
    ck_assert_int_eq(mkfifo(p, 0600), 0);
    alarm(20);
    ck_assert_int_ne(dlas_registry_load_file(r, p), DLAS_OK);
    alarm(0);
    ASSERT_MSG_HAS("FIFO");
    ck_assert_uint_eq(dlas_registry_count(r), 0);
    dlas_registry_free(r);
}
END_TEST

/* The trust rule: a plugin file, or a folder above it, that others can
 * write is refused before dlopen runs any of its code (ssh's StrictModes). */
START_TEST(writable_by_others_refused)
{
    char dir[512], p[600];
    snprintf(dir, sizeof dir, "%s/open", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(p, sizeof p, "%s/fx_good.so", dir);
    copy_file(fixture("fx_good"), p);
    chmod(p, 0644);
    struct dlas_registry *r = dlas_registry_new();
    ck_assert_int_eq(dlas_registry_load_file(r, p), DLAS_OK);
    dlas_registry_free(r);

    /* the file writable by every user */
    chmod(p, 0666);
    r = dlas_registry_new();
    ck_assert_int_eq(dlas_registry_load_file(r, p), DLAS_ERR_INVALID);
    ASSERT_MSG_HAS("refused");
    ASSERT_MSG_HAS("writable by every user");
    ASSERT_MSG_HAS(p);
    ck_assert_uint_eq(dlas_registry_count(r), 0);
    dlas_registry_free(r);
    /* ... or by its group */
    chmod(p, 0664);
    r = dlas_registry_new();
    ck_assert_int_eq(dlas_registry_load_file(r, p), DLAS_ERR_INVALID);
    ASSERT_MSG_HAS("writable by its group");
    dlas_registry_free(r);
    chmod(p, 0644);

    /* the folder writable by others (not sticky): they could swap the file */
    chmod(dir, 0777);
    r = dlas_registry_new();
    ck_assert_int_eq(dlas_registry_load_file(r, p), DLAS_ERR_INVALID);
    ASSERT_MSG_HAS(dir);
    dlas_registry_free(r);
    /* the same through discovery: reported, not loaded */
    r = dlas_registry_new();
    ck_assert_int_eq(dlas_registry_scan_dir(r, dir, 1), DLAS_OK);
    ck_assert_uint_eq(dlas_registry_count(r), 0);
    dlas_registry_free(r);
    /* DLAS_ALLOW_INSECURE_PLUGINS=1 loads it anyway */
    setenv("DLAS_ALLOW_INSECURE_PLUGINS", "1", 1);
    r = dlas_registry_new();
    ck_assert_int_eq(dlas_registry_load_file(r, p), DLAS_OK);
    dlas_registry_free(r);
    unsetenv("DLAS_ALLOW_INSECURE_PLUGINS");
    /* a sticky folder writable by all (as /tmp) is fine for a file that
     * only its owner can change */
    chmod(dir, 01777);
    r = dlas_registry_new();
    ck_assert_int_eq(dlas_registry_load_file(r, p), DLAS_OK);
    dlas_registry_free(r);
    chmod(dir, 0755);
}
END_TEST

START_TEST(truncated_elf_refused)
{
    /* ELF magic but cut short: dlopen must fail, with its reason */
    char p[512];
    snprintf(p, sizeof p, "%s/trunc.so", tmpdir);
    FILE *in = fopen(fixture("fx_good"), "rb"), *out = fopen(p, "wb");
    char buf[200];
    ck_assert_uint_eq(fread(buf, 1, sizeof buf, in), sizeof buf);
    fwrite(buf, 1, sizeof buf, out);
    fclose(in);
    fclose(out);
    struct dlas_registry *r = dlas_registry_new();
    ck_assert_int_eq(dlas_registry_load_file(r, p), DLAS_ERR_INVALID);
    ASSERT_MSG_HAS("dlopen failed");
    dlas_registry_free(r);
}
END_TEST

START_TEST(unknown_kind_refused)
{
    struct dlas_registry *r = dlas_registry_new();
    ck_assert_int_eq(dlas_registry_load_file(r, fixture("fx_badkind")), DLAS_ERR_INVALID);
    ASSERT_MSG_HAS("unknown kind 42");
    ASSERT_MSG_HAS("fx-weird");
    dlas_registry_free(r);
}
END_TEST

START_TEST(unreadable_directories)
{
    struct dlas_registry *r = dlas_registry_new();
    char p[512];
    snprintf(p, sizeof p, "%s/does-not-exist", tmpdir);
    ck_assert_int_eq(dlas_registry_scan_dir(r, p, 1), DLAS_ERR_NOTFOUND);
    ASSERT_MSG_HAS(p);
    /* not required: recorded, not fatal */
    ck_assert_int_eq(dlas_registry_scan_dir(r, p, 0), DLAS_OK);
    ck_assert_uint_eq(dlas_registry_n_failures(r), 1);
    /* a file where a directory is expected */
    snprintf(p, sizeof p, "%s/file", tmpdir);
    FILE *f = fopen(p, "w");
    fclose(f);
    ck_assert_int_ne(dlas_registry_scan_dir(r, p, 1), DLAS_OK);
    ASSERT_MSG_HAS("Not a directory");
    /* permissions only bind when not running as root */
    if (geteuid() != 0) {
        snprintf(p, sizeof p, "%s/locked", tmpdir);
        ck_assert_int_eq(mkdir(p, 0), 0);
        ck_assert_int_eq(dlas_registry_scan_dir(r, p, 1), DLAS_ERR_IO);
        ASSERT_MSG_HAS("Permission denied");
    }
    dlas_registry_free(r);
}
END_TEST

START_TEST(failure_repeated_when_name_used)
{
    char p[512];
    snprintf(p, sizeof p, "%s/primitive_winograd.so", tmpdir);
    copy_file(fixture("fx_nosym"), p);
    struct dlas_registry *r = dlas_registry_new();
    ck_assert_int_eq(dlas_registry_scan_dir(r, tmpdir, 1), DLAS_OK);
    ck_assert_ptr_null(dlas_registry_find(r, DLAS_KIND_PRIMITIVE, "winograd"));
    ASSERT_MSG_HAS("no primitive plugin named 'winograd'");
    ASSERT_MSG_HAS("primitive_winograd.so failed to load");
    ASSERT_MSG_HAS("dlas_plugin_entry");
    dlas_registry_free(r);
}
END_TEST

START_TEST(discovery_finds_every_kind)
{
    struct dlas_registry *r = dlas_registry_new();
    ck_assert_int_eq(dlas_registry_discover(r, NULL), DLAS_OK);
    static const struct {
        enum dlas_kind kind;
        const char *name;
    } want[] = {{DLAS_KIND_DATASET, "synthetic"},
                {DLAS_KIND_MODEL, "lenet5"},
                {DLAS_KIND_COMPRESSOR, "magnitude"},
                {DLAS_KIND_PRIMITIVE, "im2col-gemm"},
                {DLAS_KIND_BACKEND, "openmp"}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        ck_assert_msg(dlas_registry_find(r, want[i].kind, want[i].name) != NULL, "%s",
                      dlas_last_error());
    /* nearest-name hint */
    ck_assert_ptr_null(dlas_registry_find(r, DLAS_KIND_PRIMITIVE, "im2col-gem"));
    ASSERT_MSG_HAS("did you mean 'im2col-gemm'?");
    for (size_t i = 0; i < dlas_registry_n_failures(r); i++) {
        const char *path, *why;
        dlas_registry_failure(r, i, &path, &why);
        ck_abort_msg("%s failed to load: %s", path, why);
    }
    dlas_registry_free(r);
}
END_TEST

START_TEST(extra_path_must_exist)
{
    struct dlas_registry *r = dlas_registry_new();
    ck_assert_int_ne(dlas_registry_discover(r, "/nonexistent/dlas/plugins"), DLAS_OK);
    ASSERT_MSG_HAS("/nonexistent/dlas/plugins");
    dlas_registry_free(r);
}
END_TEST

START_TEST(kind_names)
{
    enum dlas_kind k;
    ck_assert_int_eq(dlas_kind_parse("primitives", &k), DLAS_OK);
    ck_assert_int_eq(k, DLAS_KIND_PRIMITIVE);
    ck_assert_int_eq(dlas_kind_parse("backend", &k), DLAS_OK);
    ck_assert_int_eq(k, DLAS_KIND_BACKEND);
    ck_assert_int_eq(dlas_kind_parse("compresor", &k), DLAS_ERR_INVALID);
    ASSERT_MSG_HAS("did you mean 'compressor'");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = dlas_test_case(s, "loader", setup, teardown, 0);
    tcase_add_test(tc, good_plugin_loads);
    tcase_add_test(tc, missing_symbol_refused);
    tcase_add_test(tc, abi_mismatch_refused);
    tcase_add_test(tc, old_primitive_table_loads);
    tcase_add_test(tc, duplicate_names_both_files);
    tcase_add_test(tc, non_elf_refused);
    tcase_add_test(tc, truncated_elf_refused);
    tcase_add_test(tc, writable_by_others_refused);
    tcase_add_test(tc, unknown_kind_refused);
    tcase_add_test(tc, unreadable_directories);
    tcase_add_test(tc, failure_repeated_when_name_used);
    tcase_add_test(tc, discovery_finds_every_kind);
    tcase_add_test(tc, extra_path_must_exist);
    tcase_add_test(tc, kind_names);
    return dlas_test_run(s);
}
