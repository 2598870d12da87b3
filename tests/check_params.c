/* Parameter specs, values, and the validation of config groups against them.
 * Messages are asserted on because they are the user interface of a config
 * mistake: file:line, the key, what was expected, and a hint. */
#include <check.h>
#include <libconfig.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dlas/params.h>
#include <dlas/status.h>

#include "../core/plugin/cfgparams.h"
#include "testutil.h"

static const struct dlas_param_spec spec[] = {
    {"threads", DLAS_PARAM_INT, 0, "4", 1, 64, NULL, "worker threads"},
    {"offset", DLAS_PARAM_INT, 0, "-2", 0, 0, NULL, "unbounded"},
    {"mask", DLAS_PARAM_INT, 0, "0x10", 0, 0, NULL, "hex default"},
    {"sparsity", DLAS_PARAM_FLOAT, DLAS_PARAM_TUNABLE, "0.5", 0, 1, NULL, "fraction pruned"},
    {"lr", DLAS_PARAM_FLOAT, 0, "1e-3", 0, 0, NULL, "learning rate"},
    {"scale", DLAS_PARAM_FLOAT, 0, "2", 0, 0, NULL, "an int literal for a float"},
    {"verbose", DLAS_PARAM_BOOL, 0, "TRUE", 0, 0, NULL, "chatty"},
    {"quiet", DLAS_PARAM_BOOL, 0, "false", 0, 0, NULL, "not chatty"},
    {"name", DLAS_PARAM_STRING, 0, "\"hello world\"", 0, 0, NULL, "a quoted default"},
    {"tag", DLAS_PARAM_STRING, 0, "bare", 0, 0, NULL, "a bare-word default"},
    {"schedule", DLAS_PARAM_ENUM, 0, "cosine", 0, 0, "step|cosine|none", "lr schedule"},
    {"tile", DLAS_PARAM_ENUM, 0, "4", 0, 0, "2|4|6", "numeric choices"},
    {"seeds", DLAS_PARAM_INT, DLAS_PARAM_LIST, "[1, 2, 3]", 0, 100, NULL, "seeds"},
    {"weights", DLAS_PARAM_FLOAT, DLAS_PARAM_LIST, "(0.5, 1, 2.5)", 0, 0, NULL, "weights"},
    {"names", DLAS_PARAM_STRING, DLAS_PARAM_LIST, "[\"a\", b]", 0, 0, NULL, "names"},
    {"flags", DLAS_PARAM_BOOL, DLAS_PARAM_LIST, "[true, false]", 0, 0, NULL, "flags"},
    {"modes", DLAS_PARAM_ENUM, DLAS_PARAM_LIST, "[]", 0, 0, "x|y", "modes"},
    {"path", DLAS_PARAM_STRING, DLAS_PARAM_REQUIRED, NULL, 0, 0, NULL, "dataset directory"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

/* The same without the required key, for tests about other things. */
static const struct dlas_param_spec *opt_spec(void)
{
    static struct dlas_param_spec s[sizeof spec / sizeof *spec];
    size_t j = 0;
    for (size_t i = 0; i < sizeof spec / sizeof *spec; i++)
        if (!spec[i].name || !(spec[i].flags & DLAS_PARAM_REQUIRED))
            s[j++] = spec[i];
    return s;
}

#define ck_err(expr, sub)                                                                     \
    do {                                                                                      \
        int rc_ = (expr);                                                                     \
        ck_assert_msg(rc_ == DLAS_ERR_INVALID, "%s: status %d, wanted DLAS_ERR_INVALID",      \
                      #expr, rc_);                                                            \
        ck_assert_msg(strstr(dlas_last_error(), (sub)) != NULL, "message \"%s\" lacks \"%s\"", \
                      dlas_last_error(), (sub));                                              \
    } while (0)

#define ck_ok(expr)                                                                           \
    do {                                                                                      \
        int rc_ = (expr);                                                                     \
        ck_assert_msg(rc_ == DLAS_OK, "%s failed (%d): %s", #expr, rc_, dlas_last_error());   \
    } while (0)

static struct dlas_params *defaults(void)
{
    struct dlas_params *p = NULL;
    ck_ok(dlas_params_defaults(spec, &p));
    ck_assert_ptr_nonnull(p);
    return p;
}

static char *fmt(const struct dlas_params *p, const char *name)
{
    static char buf[512];
    for (size_t i = 0; i < dlas_params_count(p); i++)
        if (!strcmp(dlas_params_name(p, i), name)) {
            dlas_params_format(p, i, buf, sizeof buf);
            return buf;
        }
    ck_abort_msg("no parameter %s", name);
    return NULL;
}

/* ---- config files --------------------------------------------------------- */

static char tmpdir[512];
static char cfgpath[600];
static config_t cfg;

static void tmp_setup(void)
{
    dlas_test_mkdtemp(tmpdir, sizeof tmpdir, "params");
    snprintf(cfgpath, sizeof cfgpath, "%s/exp.cfg", tmpdir);
    config_init(&cfg);
}

static void tmp_teardown(void)
{
    config_destroy(&cfg);
    dlas_test_rmtree(tmpdir);
}

/* Write `text` as exp.cfg and read it; the returned setting is `path`. */
static const config_setting_t *load(const char *text, const char *path)
{
    FILE *f = fopen(cfgpath, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    config_destroy(&cfg);
    config_init(&cfg);
    ck_assert_msg(config_read_file(&cfg, cfgpath), "libconfig: %s:%d: %s", cfgpath,
                  config_error_line(&cfg), config_error_text(&cfg));
    const config_setting_t *s = config_lookup(&cfg, path);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* ---- edit distance ------------------------------------------------------ */

START_TEST(test_edit_distance)
{
    ck_assert_uint_eq(dlas_edit_distance("kitten", "sitting"), 3);
    ck_assert_uint_eq(dlas_edit_distance("flaw", "lawn"), 2);
    ck_assert_uint_eq(dlas_edit_distance("", "abc"), 3);
    ck_assert_uint_eq(dlas_edit_distance("abc", ""), 3);
    ck_assert_uint_eq(dlas_edit_distance("abc", "abc"), 0);
    ck_assert_uint_eq(dlas_edit_distance("sparsty", "sparsity"), 1);
    ck_assert_uint_eq(dlas_edit_distance("Abc", "abc"), 1); /* case counts here */
    char a[200], b[200];                                    /* longer than any stack row */
    memset(a, 'a', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    memcpy(b, a, sizeof b);
    b[50] = 'b';
    b[150] = 'c';
    ck_assert_uint_eq(dlas_edit_distance(a, b), 2);
}
END_TEST

START_TEST(test_nearest)
{
    const char *const c[] = {"sparsity", "threads", "schedule", "lr"};
    ck_assert_str_eq(dlas_nearest("sparsty", c, 4), "sparsity");
    ck_assert_str_eq(dlas_nearest("THREADS", c, 4), "threads");
    ck_assert_str_eq(dlas_nearest("shedule", c, 4), "schedule");
    ck_assert_str_eq(dlas_nearest("shedul", c, 4), "schedule"); /* 2 edits: just within */
    ck_assert_ptr_null(dlas_nearest("shdul", c, 4));             /* 3 edits: too far */
    ck_assert_ptr_null(dlas_nearest("banana", c, 4));
    ck_assert_ptr_null(dlas_nearest("xy", c, 4)); /* 2 edits from "lr", but that is all of it */
    ck_assert_ptr_null(dlas_nearest("x", c, 0));
    /* A long word tolerates len/3 edits. */
    const char *const l[] = {"prune_every_steps"};
    ck_assert_str_eq(dlas_nearest("prun_evry_stps", l, 1), "prune_every_steps");
}
END_TEST

/* ---- defaults and accessors --------------------------------------------- */

START_TEST(test_defaults)
{
    struct dlas_params *p = defaults();
    ck_assert_ptr_eq(dlas_params_spec(p), spec);
    ck_assert_uint_eq(dlas_params_count(p), sizeof spec / sizeof *spec - 1);
    ck_assert_int_eq(dlas_param_int(p, "threads"), 4);
    ck_assert_int_eq(dlas_param_int(p, "offset"), -2);
    ck_assert_int_eq(dlas_param_int(p, "mask"), 16);
    ck_assert_double_eq(dlas_param_float(p, "sparsity"), 0.5);
    ck_assert_double_eq(dlas_param_float(p, "lr"), 1e-3);
    ck_assert_double_eq(dlas_param_float(p, "scale"), 2.0);
    ck_assert_int_eq(dlas_param_bool(p, "verbose"), 1);
    ck_assert_int_eq(dlas_param_bool(p, "quiet"), 0);
    ck_assert_str_eq(dlas_param_str(p, "name"), "hello world");
    ck_assert_str_eq(dlas_param_str(p, "tag"), "bare");
    ck_assert_str_eq(dlas_param_str(p, "schedule"), "cosine");
    ck_assert_str_eq(dlas_param_str(p, "tile"), "4");
    ck_assert_int_eq(dlas_param_list_len(p, "seeds"), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(dlas_param_list_int(p, "seeds", i), i + 1);
    ck_assert_int_eq(dlas_param_list_len(p, "weights"), 3);
    ck_assert_double_eq(dlas_param_list_float(p, "weights", 0), 0.5);
    ck_assert_double_eq(dlas_param_list_float(p, "weights", 1), 1.0);
    ck_assert_double_eq(dlas_param_list_float(p, "weights", 2), 2.5);
    ck_assert_int_eq(dlas_param_list_len(p, "names"), 2);
    ck_assert_str_eq(dlas_param_list_str(p, "names", 0), "a");
    ck_assert_str_eq(dlas_param_list_str(p, "names", 1), "b");
    ck_assert_int_eq(dlas_param_list_len(p, "flags"), 2);
    ck_assert_int_eq(dlas_param_list_int(p, "flags", 0), 1);
    ck_assert_int_eq(dlas_param_list_int(p, "flags", 1), 0);
    ck_assert_int_eq(dlas_param_list_len(p, "modes"), 0);
    /* Required: no default, so unset until given. */
    ck_assert_ptr_null(dlas_param_str(p, "path"));
    for (size_t i = 0; i < dlas_params_count(p); i++)
        ck_assert_int_eq(dlas_param_given(p, dlas_params_name(p, i)), 0);
    dlas_params_free(p);
}
END_TEST

START_TEST(test_accessor_mismatch)
{
    struct dlas_params *p = defaults();
    ck_assert_int_eq(dlas_param_int(p, "nope"), 0);
    ck_assert_int_eq(dlas_param_int(p, "sparsity"), 0);     /* wrong type */
    ck_assert_double_eq(dlas_param_float(p, "threads"), 0); /* no silent conversion */
    ck_assert_ptr_null(dlas_param_str(p, "threads"));
    ck_assert_int_eq(dlas_param_bool(p, "name"), 0);
    ck_assert_int_eq(dlas_param_int(p, "seeds"), 0); /* a list is read element-wise */
    ck_assert_int_eq(dlas_param_list_len(p, "threads"), 0);
    ck_assert_int_eq(dlas_param_list_int(p, "seeds", 3), 0);
    ck_assert_int_eq(dlas_param_list_int(p, "seeds", -1), 0);
    ck_assert_ptr_null(dlas_param_list_str(p, "names", 2));
    ck_assert_double_eq(dlas_param_list_float(p, "seeds", 0), 0);
    ck_assert_int_eq(dlas_param_given(p, "nope"), 0);
    ck_assert_ptr_null(dlas_params_name(p, 1000));
    ck_assert_int_eq(dlas_param_int(NULL, "threads"), 0);
    dlas_params_free(p);
    dlas_params_free(NULL);
}
END_TEST

START_TEST(test_bad_specs)
{
    struct dlas_params *p = (struct dlas_params *)1;
    const struct dlas_param_spec dup[] = {{"a", DLAS_PARAM_INT, 0, "1", 0, 0, NULL, NULL},
                                          {"a", DLAS_PARAM_INT, 0, "1", 0, 0, NULL, NULL},
                                          {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
    ck_err(dlas_params_defaults(dup, &p), "'a': declared twice");
    ck_assert_ptr_null(p);
    const struct dlas_param_spec nochoice[] = {{"e", DLAS_PARAM_ENUM, 0, "x", 0, 0, NULL, NULL},
                                               {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
    ck_err(dlas_params_defaults(nochoice, &p), "needs choices");
    const struct dlas_param_spec range[] = {{"r", DLAS_PARAM_INT, 0, "7", 0, 5, NULL, NULL},
                                            {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
    ck_err(dlas_params_defaults(range, &p), "key 'r' = 7 is out of range [0, 5]");
    const struct dlas_param_spec nodef[] = {{"d", DLAS_PARAM_FLOAT, 0, NULL, 0, 0, NULL, NULL},
                                            {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
    ck_err(dlas_params_defaults(nodef, &p), "neither a default nor DLAS_PARAM_REQUIRED");
    const struct dlas_param_spec badenum[] = {{"e", DLAS_PARAM_ENUM, 0, "z", 0, 0, "x|y", NULL},
                                              {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
    ck_err(dlas_params_defaults(badenum, &p), "\"z\" is not one of x|y");
    /* An empty spec is a valid one: a plugin without parameters. */
    const struct dlas_param_spec none[] = {{NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
    ck_ok(dlas_params_defaults(none, &p));
    ck_assert_uint_eq(dlas_params_count(p), 0);
    char *d = dlas_params_describe(p);
    ck_assert_str_eq(d, "");
    free(d);
    dlas_params_free(p);
}
END_TEST

START_TEST(test_required)
{
    struct dlas_params *p = defaults();
    ck_err(dlas_params_check_required(p, "exp.cfg:3"),
           "exp.cfg:3: missing required key 'path' (dataset directory)");
    ck_ok(dlas_params_set(p, "path", "/data/x", NULL));
    ck_ok(dlas_params_check_required(p, "exp.cfg:3"));
    ck_assert_str_eq(dlas_param_str(p, "path"), "/data/x");
    ck_assert_int_eq(dlas_param_given(p, "path"), 1);
    dlas_params_free(p);
}
END_TEST

/* ---- setting values from text ------------------------------------------- */

START_TEST(test_set_every_type)
{
    struct dlas_params *p = defaults();
    ck_ok(dlas_params_set(p, "threads", "8", "cli"));
    ck_assert_int_eq(dlas_param_int(p, "threads"), 8);
    ck_assert_int_eq(dlas_param_given(p, "threads"), 1);
    ck_assert_int_eq(dlas_param_given(p, "offset"), 0);
    ck_ok(dlas_params_set(p, "offset", " -0x20 ", NULL));
    ck_assert_int_eq(dlas_param_int(p, "offset"), -32);
    ck_ok(dlas_params_set(p, "offset", "5000000000L", NULL));
    ck_assert_int_eq(dlas_param_int(p, "offset"), 5000000000LL);
    ck_ok(dlas_params_set(p, "offset", "-9223372036854775808", NULL));
    ck_assert_int_eq(dlas_param_int(p, "offset"), INT64_MIN);
    ck_ok(dlas_params_set(p, "sparsity", "0.75", NULL));
    ck_assert_double_eq(dlas_param_float(p, "sparsity"), 0.75);
    ck_ok(dlas_params_set(p, "sparsity", "1", NULL)); /* an int literal is a number */
    ck_assert_double_eq(dlas_param_float(p, "sparsity"), 1.0);
    ck_ok(dlas_params_set(p, "lr", "-2.5e-4", NULL));
    ck_assert_double_eq(dlas_param_float(p, "lr"), -2.5e-4);
    ck_ok(dlas_params_set(p, "lr", ".5", NULL));
    ck_assert_double_eq(dlas_param_float(p, "lr"), 0.5);
    ck_ok(dlas_params_set(p, "verbose", "False", NULL));
    ck_assert_int_eq(dlas_param_bool(p, "verbose"), 0);
    ck_ok(dlas_params_set(p, "quiet", "true", NULL));
    ck_assert_int_eq(dlas_param_bool(p, "quiet"), 1);
    ck_ok(dlas_params_set(p, "name", "\"a \\\"b\\\"\\n\\x41\" \"c\"", NULL));
    ck_assert_str_eq(dlas_param_str(p, "name"), "a \"b\"\nAc");
    ck_ok(dlas_params_set(p, "name", "\"\"", NULL));
    ck_assert_str_eq(dlas_param_str(p, "name"), "");
    ck_ok(dlas_params_set(p, "tag", "results/run 1", NULL));
    ck_assert_str_eq(dlas_param_str(p, "tag"), "results/run 1");
    ck_ok(dlas_params_set(p, "schedule", "step", NULL));
    ck_assert_str_eq(dlas_param_str(p, "schedule"), "step");
    ck_ok(dlas_params_set(p, "schedule", "\"none\"", NULL));
    ck_assert_str_eq(dlas_param_str(p, "schedule"), "none");
    ck_ok(dlas_params_set(p, "tile", "6", NULL));
    ck_assert_str_eq(dlas_param_str(p, "tile"), "6");
    ck_ok(dlas_params_set(p, "seeds", "[ 7 , 8 ]", NULL));
    ck_assert_int_eq(dlas_param_list_len(p, "seeds"), 2);
    ck_assert_int_eq(dlas_param_list_int(p, "seeds", 1), 8);
    ck_ok(dlas_params_set(p, "seeds", "()", NULL));
    ck_assert_int_eq(dlas_param_list_len(p, "seeds"), 0);
    ck_ok(dlas_params_set(p, "seeds", "9", NULL)); /* a scalar is a one-element list */
    ck_assert_int_eq(dlas_param_list_len(p, "seeds"), 1);
    ck_assert_int_eq(dlas_param_list_int(p, "seeds", 0), 9);
    ck_ok(dlas_params_set(p, "weights", "[1, 2.5e1]", NULL));
    ck_assert_double_eq(dlas_param_list_float(p, "weights", 1), 25.0);
    ck_ok(dlas_params_set(p, "names", "[\"x, y\", z ]", NULL));
    ck_assert_str_eq(dlas_param_list_str(p, "names", 0), "x, y");
    ck_assert_str_eq(dlas_param_list_str(p, "names", 1), "z");
    ck_ok(dlas_params_set(p, "flags", "[false, TRUE, true]", NULL));
    ck_assert_int_eq(dlas_param_list_int(p, "flags", 1), 1);
    ck_ok(dlas_params_set(p, "modes", "[y, x, y]", NULL));
    ck_assert_str_eq(dlas_param_list_str(p, "modes", 2), "y");
    dlas_params_free(p);
}
END_TEST

START_TEST(test_range_errors)
{
    struct dlas_params *p = defaults();
    /* The message is exactly the documented one. */
    ck_assert_int_eq(dlas_params_set(p, "sparsity", "1.5", "exp.cfg:12"), DLAS_ERR_INVALID);
    ck_assert_str_eq(dlas_last_error(), "exp.cfg:12: key 'sparsity' = 1.5 is out of range [0, 1]");
    ck_err(dlas_params_set(p, "sparsity", "-0.01", NULL), "= -0.01 is out of range [0, 1]");
    ck_err(dlas_params_set(p, "threads", "0", "x:1"), "x:1: key 'threads' = 0 is out of range [1, 64]");
    ck_err(dlas_params_set(p, "threads", "65", NULL), "out of range [1, 64]");
    ck_ok(dlas_params_set(p, "threads", "64", NULL)); /* inclusive */
    ck_ok(dlas_params_set(p, "threads", "1", NULL));
    ck_ok(dlas_params_set(p, "sparsity", "1", NULL));
    ck_err(dlas_params_set(p, "seeds", "[1, 200, 3]", "exp.cfg:4"),
           "exp.cfg:4: key 'seeds' element 2 = 200 is out of range [0, 100]");
    ck_err(dlas_params_set(p, "threads", "99999999999999999999", NULL),
           "beyond the 64-bit integer range");
    ck_err(dlas_params_set(p, "lr", "1e999", NULL), "beyond the range of a double");
    /* Integer bounds are exact beyond 2^53, where doubles have gaps. */
    const struct dlas_param_spec big[] = {
        {"seed", DLAS_PARAM_INT, 0, "0", 0, 9007199254740992.0, NULL, NULL},
        {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
    struct dlas_params *b = NULL;
    ck_ok(dlas_params_defaults(big, &b));
    ck_ok(dlas_params_set(b, "seed", "9007199254740992", NULL));
    ck_err(dlas_params_set(b, "seed", "9007199254740993", NULL),
           "= 9007199254740993 is out of range [0, 9007199254740992]");
    dlas_params_free(b);
    /* A refused value leaves the old one in place and not "given". */
    ck_assert_int_eq(dlas_param_int(p, "threads"), 1);
    ck_assert_int_eq(dlas_param_list_len(p, "seeds"), 3);
    ck_assert_int_eq(dlas_param_given(p, "seeds"), 0);
    ck_assert_double_eq(dlas_param_float(p, "lr"), 1e-3);
    dlas_params_free(p);
}
END_TEST

START_TEST(test_type_errors)
{
    struct dlas_params *p = defaults();
    ck_assert_int_eq(dlas_params_set(p, "threads", "two", "exp.cfg:7"), DLAS_ERR_INVALID);
    ck_assert_str_eq(dlas_last_error(), "exp.cfg:7: key 'threads' expects an integer, got \"two\"");
    ck_err(dlas_params_set(p, "threads", "0.5", NULL), "key 'threads' expects an integer, got 0.5");
    ck_err(dlas_params_set(p, "threads", "2.0", NULL), "expects an integer, got 2.0");
    ck_err(dlas_params_set(p, "threads", "\"3\"", NULL), "expects an integer, got \"3\"");
    ck_err(dlas_params_set(p, "threads", "true", NULL), "expects an integer, got true");
    ck_err(dlas_params_set(p, "threads", "", NULL), "expects an integer, got nothing");
    ck_err(dlas_params_set(p, "threads", "[1, 2]", NULL), "key 'threads' expects a single value");
    ck_err(dlas_params_set(p, "sparsity", "half", NULL), "key 'sparsity' expects a number, got \"half\"");
    ck_err(dlas_params_set(p, "sparsity", "inf", NULL), "expects a number, got \"inf\"");
    ck_err(dlas_params_set(p, "verbose", "yes", NULL), "key 'verbose' expects true or false, got \"yes\"");
    ck_err(dlas_params_set(p, "verbose", "1", NULL), "expects true or false, got 1");
    ck_err(dlas_params_set(p, "name", "3", NULL), "key 'name' expects a string, got 3");
    ck_err(dlas_params_set(p, "name", "{ a = 1; }", NULL), "expects a string, got a group");
    ck_err(dlas_params_set(p, "seeds", "[1, x]", NULL), "key 'seeds' element 2 expects an integer, got \"x\"");
    ck_err(dlas_params_set(p, "seeds", "[1, [2]]", NULL), "element 2 expects an integer, got a list [2]");
    ck_err(dlas_params_set(p, "weights", "[0.5, true]", NULL), "element 2 expects a number, got true");
    /* Syntax */
    ck_err(dlas_params_set(p, "name", "\"abc", NULL), "unterminated string");
    ck_err(dlas_params_set(p, "name", "\"a\\qb\"", NULL), "unknown escape");
    ck_err(dlas_params_set(p, "seeds", "[1, 2", NULL), "missing ']'");
    ck_err(dlas_params_set(p, "seeds", "[1, 2)", NULL), "expected ',' or ']'");
    ck_err(dlas_params_set(p, "seeds", "[1,,2]", NULL), "empty list element");
    ck_err(dlas_params_set(p, "threads", "3;", NULL), "unexpected ';'");
    ck_err(dlas_params_set(p, "name", "\"a\" b", NULL), "unexpected 'b' after the value");
    ck_err(dlas_params_set(p, "tag", "a,b", NULL), "unexpected ','");
    /* Unknown key */
    ck_err(dlas_params_set(p, "sparsty", "0.1", "cli"), "cli: unknown key 'sparsty' (did you mean 'sparsity'?)");
    ck_err(dlas_params_set(p, "zzzzzzzz", "0.1", NULL), "unknown key 'zzzzzzzz'");
    ck_assert_ptr_null(strstr(dlas_last_error(), "did you mean"));
    ck_assert_int_eq(dlas_param_int(p, "threads"), 4);
    ck_assert_str_eq(dlas_param_str(p, "name"), "hello world");
    dlas_params_free(p);
}
END_TEST

START_TEST(test_enum_errors)
{
    struct dlas_params *p = defaults();
    ck_assert_int_eq(dlas_params_set(p, "schedule", "\"cosin\"", "exp.cfg:9"), DLAS_ERR_INVALID);
    ck_assert_str_eq(dlas_last_error(),
                     "exp.cfg:9: key 'schedule' = \"cosin\" is not one of step|cosine|none "
                     "(did you mean 'cosine'?)");
    ck_err(dlas_params_set(p, "schedule", "Step", NULL), "(did you mean 'step'?)");
    ck_err(dlas_params_set(p, "schedule", "exponential", NULL),
           "= \"exponential\" is not one of step|cosine|none");
    ck_assert_ptr_null(strstr(dlas_last_error(), "did you mean"));
    ck_err(dlas_params_set(p, "schedule", "3", NULL), "= 3 is not one of");
    ck_err(dlas_params_set(p, "tile", "5", NULL), "= 5 is not one of 2|4|6");
    ck_err(dlas_params_set(p, "modes", "[x, z]", NULL), "key 'modes' element 2 = \"z\" is not one of x|y");
    ck_err(dlas_params_set(p, "schedule", "[step]", NULL), "expects a single value");
    ck_assert_str_eq(dlas_param_str(p, "schedule"), "cosine");
    dlas_params_free(p);
}
END_TEST

/* ---- formatting ----------------------------------------------------------- */

START_TEST(test_format)
{
    struct dlas_params *p = defaults();
    ck_assert_str_eq(fmt(p, "threads"), "4");
    ck_assert_str_eq(fmt(p, "mask"), "16");
    ck_assert_str_eq(fmt(p, "sparsity"), "0.5");
    ck_assert_str_eq(fmt(p, "lr"), "0.001");
    ck_assert_str_eq(fmt(p, "scale"), "2.0"); /* stays a float when read back by libconfig */
    ck_assert_str_eq(fmt(p, "verbose"), "true");
    ck_assert_str_eq(fmt(p, "name"), "\"hello world\"");
    ck_assert_str_eq(fmt(p, "schedule"), "\"cosine\"");
    ck_assert_str_eq(fmt(p, "seeds"), "[1, 2, 3]");
    ck_assert_str_eq(fmt(p, "weights"), "[0.5, 1.0, 2.5]");
    ck_assert_str_eq(fmt(p, "names"), "[\"a\", \"b\"]");
    ck_assert_str_eq(fmt(p, "flags"), "[true, false]");
    ck_assert_str_eq(fmt(p, "modes"), "[]");
    ck_ok(dlas_params_set(p, "lr", "0.1", NULL));
    ck_assert_str_eq(fmt(p, "lr"), "0.1");
    ck_ok(dlas_params_set(p, "lr", "1e-7", NULL));
    ck_assert_str_eq(fmt(p, "lr"), "1e-07");
    ck_ok(dlas_params_set(p, "lr", "0.30000000000000004", NULL)); /* needs 17 digits */
    ck_assert_str_eq(fmt(p, "lr"), "0.30000000000000004");
    ck_ok(dlas_params_set(p, "offset", "5000000000", NULL));
    ck_assert_str_eq(fmt(p, "offset"), "5000000000L"); /* libconfig needs the suffix */
    ck_ok(dlas_params_set(p, "name", "\"tab\\there \\\"q\\\" \\\\ \\x01\"", NULL));
    ck_assert_str_eq(fmt(p, "name"), "\"tab\\there \\\"q\\\" \\\\ \\x01\"");
    /* Truncation */
    char small[4];
    ck_ok(dlas_params_format(p, 0, small, sizeof small));
    ck_assert_str_eq(small, "4");
    ck_ok(dlas_params_set(p, "seeds", "[10, 20, 30]", NULL));
    for (size_t i = 0; i < dlas_params_count(p); i++)
        if (!strcmp(dlas_params_name(p, i), "seeds")) {
            ck_ok(dlas_params_format(p, i, small, sizeof small));
            ck_assert_str_eq(small, "[10");
        }
    /* The unset required key cannot be formatted. */
    char buf[64];
    ck_err(dlas_params_format(p, dlas_params_count(p) - 1, buf, sizeof buf), "'path' is unset");
    ck_assert_int_eq(dlas_params_format(p, 999, buf, sizeof buf), DLAS_ERR_INVALID);
    dlas_params_free(p);
}
END_TEST

/* format, then set the text into a fresh set: the same value and the same text. */
START_TEST(test_format_round_trip)
{
    struct dlas_params *p = defaults();
    ck_ok(dlas_params_set(p, "path", "\"/a \\\"b\\\"\"", NULL));
    ck_ok(dlas_params_set(p, "lr", "0.1", NULL));
    ck_ok(dlas_params_set(p, "sparsity", "0.30000000000000004", NULL));
    ck_ok(dlas_params_set(p, "offset", "-5000000000", NULL));
    ck_ok(dlas_params_set(p, "weights", "[1e-300, 3.14159, 1]", NULL));
    ck_ok(dlas_params_set(p, "names", "[\"\", \"x\\ny\", \"a, b\"]", NULL));
    ck_ok(dlas_params_set(p, "modes", "[y]", NULL));
    struct dlas_params *q = defaults();
    for (size_t i = 0; i < dlas_params_count(p); i++) {
        char a[512], b[512];
        ck_ok(dlas_params_format(p, i, a, sizeof a));
        ck_ok(dlas_params_set(q, dlas_params_name(p, i), a, NULL));
        ck_ok(dlas_params_format(q, i, b, sizeof b));
        ck_assert_str_eq(a, b);
    }
    ck_assert_double_eq(dlas_param_float(q, "sparsity"), 0.30000000000000004);
    ck_assert_double_eq(dlas_param_list_float(q, "weights", 0), 1e-300);
    ck_assert_int_eq(dlas_param_int(q, "offset"), -5000000000LL);
    ck_assert_str_eq(dlas_param_str(q, "path"), "/a \"b\"");
    ck_assert_str_eq(dlas_param_list_str(q, "names", 1), "x\ny");
    char *dp = dlas_params_describe(p), *dq = dlas_params_describe(q);
    ck_assert_str_eq(dp, dq);
    free(dp);
    free(dq);
    dlas_params_free(p);
    dlas_params_free(q);
}
END_TEST

START_TEST(test_describe_clone)
{
    struct dlas_params *p = NULL;
    const struct dlas_param_spec s[] = {
        {"k", DLAS_PARAM_INT, 0, "3", 0, 0, NULL, NULL},
        {"f", DLAS_PARAM_FLOAT, 0, "0.5", 0, 0, NULL, NULL},
        {"e", DLAS_PARAM_ENUM, 0, "b", 0, 0, "a|b", NULL},
        {"l", DLAS_PARAM_INT, DLAS_PARAM_LIST, "[1, 2]", 0, 0, NULL, NULL},
        {"r", DLAS_PARAM_STRING, DLAS_PARAM_REQUIRED, NULL, 0, 0, NULL, NULL},
        {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
    ck_ok(dlas_params_defaults(s, &p));
    char *d = dlas_params_describe(p);
    ck_assert_str_eq(d, "k=3; f=0.5; e=\"b\"; l=[1, 2]; r=<unset>");
    free(d);
    ck_ok(dlas_params_set(p, "r", "x", NULL));
    struct dlas_params *c = dlas_params_clone(p);
    ck_assert_ptr_nonnull(c);
    ck_ok(dlas_params_set(c, "k", "4", NULL));
    ck_ok(dlas_params_set(c, "l", "[9]", NULL));
    ck_ok(dlas_params_set(c, "r", "y", NULL));
    d = dlas_params_describe(p);
    ck_assert_str_eq(d, "k=3; f=0.5; e=\"b\"; l=[1, 2]; r=\"x\"");
    free(d);
    d = dlas_params_describe(c);
    ck_assert_str_eq(d, "k=4; f=0.5; e=\"b\"; l=[9]; r=\"y\"");
    free(d);
    ck_assert_int_eq(dlas_param_given(c, "k"), 1);
    ck_assert_int_eq(dlas_param_given(p, "k"), 0);
    ck_assert_int_eq(dlas_param_given(c, "r"), 1);
    dlas_params_free(p);
    ck_assert_str_eq(dlas_param_str(c, "r"), "y"); /* the clone owns its strings */
    dlas_params_free(c);
    ck_assert_ptr_null(dlas_params_clone(NULL));
}
END_TEST

/* ---- config groups -------------------------------------------------------- */

static const char *const plugin_key[] = {"plugin", NULL};

static void ck_where_line(int line)
{
    char want[700];
    snprintf(want, sizeof want, "%s:%d: ", cfgpath, line);
    ck_assert_msg(strncmp(dlas_last_error(), want, strlen(want)) == 0,
                  "message \"%s\" does not start with \"%s\"", dlas_last_error(), want);
}

START_TEST(test_cfg_valid)
{
    const config_setting_t *g = load("# a comment\n"
                                     "c = {\n"
                                     "  plugin = \"magnitude\";\n"
                                     "  threads = 8;\n"
                                     "  sparsity = 1;\n"          /* int for a float: fine */
                                     "  offset = 5000000000L;\n"  /* int64 */
                                     "  lr = 2e-2;\n"
                                     "  verbose = false;\n"
                                     "  name = \"n\";\n"
                                     "  schedule = \"step\";\n"
                                     "  tile = 2;\n"              /* a numeric enum choice */
                                     "  seeds = [4, 5];\n"
                                     "  weights = (1, 0.25);\n"   /* mixed list */
                                     "  names = [\"p\", \"q\"];\n"
                                     "  flags = true;\n"          /* scalar for a list */
                                     "  path = \"/data\";\n"
                                     "};\n",
                                     "c");
    struct dlas_params *p = NULL;
    struct dlas_axis *ax = (struct dlas_axis *)1;
    int nax = -1;
    ck_ok(dlas_cfg_params(g, "compressor 'magnitude'", spec, plugin_key, 1, &p, &ax, &nax));
    ck_assert_ptr_null(ax);
    ck_assert_int_eq(nax, 0);
    ck_assert_int_eq(dlas_param_int(p, "threads"), 8);
    ck_assert_double_eq(dlas_param_float(p, "sparsity"), 1.0);
    ck_assert_int_eq(dlas_param_int(p, "offset"), 5000000000LL);
    ck_assert_double_eq(dlas_param_float(p, "lr"), 2e-2);
    ck_assert_int_eq(dlas_param_bool(p, "verbose"), 0);
    ck_assert_str_eq(dlas_param_str(p, "name"), "n");
    ck_assert_str_eq(dlas_param_str(p, "schedule"), "step");
    ck_assert_str_eq(dlas_param_str(p, "tile"), "2");
    ck_assert_int_eq(dlas_param_list_len(p, "seeds"), 2);
    ck_assert_int_eq(dlas_param_list_int(p, "seeds", 1), 5);
    ck_assert_double_eq(dlas_param_list_float(p, "weights", 0), 1.0);
    ck_assert_double_eq(dlas_param_list_float(p, "weights", 1), 0.25);
    ck_assert_str_eq(dlas_param_list_str(p, "names", 1), "q");
    ck_assert_int_eq(dlas_param_list_len(p, "flags"), 1);
    ck_assert_int_eq(dlas_param_list_int(p, "flags", 0), 1);
    ck_assert_str_eq(dlas_param_str(p, "path"), "/data");
    ck_assert_int_eq(dlas_param_given(p, "threads"), 1);
    ck_assert_int_eq(dlas_param_given(p, "mask"), 0);
    ck_assert_int_eq(dlas_param_int(p, "mask"), 16);
    dlas_params_free(p);
}
END_TEST

START_TEST(test_cfg_unknown_key)
{
    const config_setting_t *g = load("c = {\n"
                                     "  plugin = \"magnitude\";\n"
                                     "\n"
                                     "  sparsty = 0.5;\n"
                                     "};\n",
                                     "c");
    struct dlas_params *p = (struct dlas_params *)1;
    ck_err(dlas_cfg_params(g, "compressor 'magnitude'", opt_spec(), plugin_key, 0, &p, NULL, NULL),
           "exp.cfg:4: unknown key 'sparsty' in compressor 'magnitude' (did you mean 'sparsity'?)");
    ck_where_line(4);
    ck_assert_ptr_null(p);

    g = load("c = { plugn = \"x\"; };\n", "c");
    ck_err(dlas_cfg_params(g, "dataset 'd'", opt_spec(), plugin_key, 0, &p, NULL, NULL),
           "unknown key 'plugn' in dataset 'd' (did you mean 'plugin'?)");

    const struct dlas_param_spec two[] = {{"alpha", DLAS_PARAM_INT, 0, "1", 0, 0, NULL, NULL},
                                          {"beta", DLAS_PARAM_INT, 0, "1", 0, 0, NULL, NULL},
                                          {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
    g = load("c = {\n  zzzzzz = 1;\n};\n", "c");
    ck_err(dlas_cfg_params(g, "model 'm'", two, plugin_key, 0, &p, NULL, NULL),
           "exp.cfg:2: unknown key 'zzzzzz' in model 'm' (valid keys: plugin, alpha, beta)");

    const struct dlas_param_spec none[] = {{NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
    ck_err(dlas_cfg_params(g, "backend 'b'", none, NULL, 0, &p, NULL, NULL),
           "unknown key 'zzzzzz' in backend 'b' (it takes no parameters)");
}
END_TEST

START_TEST(test_cfg_type_and_range)
{
    struct dlas_params *p = NULL;
    const config_setting_t *g = load("c = {\n  threads = \"two\";\n};\n", "c");
    ck_err(dlas_cfg_params(g, "x", spec, NULL, 0, &p, NULL, NULL),
           "exp.cfg:2: key 'threads' expects an integer, got \"two\"");
    g = load("c = {\n\n  threads = 2.0;\n};\n", "c");
    ck_err(dlas_cfg_params(g, "x", spec, NULL, 0, &p, NULL, NULL),
           "exp.cfg:3: key 'threads' expects an integer, got 2.0");
    g = load("c = {\n  sparsity = 1.5;\n};\n", "c");
    ck_err(dlas_cfg_params(g, "x", spec, NULL, 0, &p, NULL, NULL),
           "exp.cfg:2: key 'sparsity' = 1.5 is out of range [0, 1]");
    g = load("c = {\n  threads = 100L;\n};\n", "c");
    ck_err(dlas_cfg_params(g, "x", spec, NULL, 0, &p, NULL, NULL),
           "key 'threads' = 100 is out of range [1, 64]");
    g = load("c = {\n  schedule = \"cosin\";\n};\n", "c");
    ck_err(dlas_cfg_params(g, "x", spec, NULL, 0, &p, NULL, NULL),
           "exp.cfg:2: key 'schedule' = \"cosin\" is not one of step|cosine|none (did you mean 'cosine'?)");
    g = load("c = {\n  verbose = 1;\n};\n", "c");
    ck_err(dlas_cfg_params(g, "x", spec, NULL, 0, &p, NULL, NULL),
           "key 'verbose' expects true or false, got 1");
    g = load("c = {\n  name = { a = 1; };\n};\n", "c");
    ck_err(dlas_cfg_params(g, "x", spec, NULL, 0, &p, NULL, NULL),
           "key 'name' expects a string, got a group { a = 1; }");
    g = load("c = {\n  seeds = [1,\n    500];\n};\n", "c");
    ck_err(dlas_cfg_params(g, "x", spec, NULL, 0, &p, NULL, NULL),
           "exp.cfg:2: key 'seeds' element 2 = 500 is out of range [0, 100]");
    g = load("c = {\n  names = (\"a\", 1);\n};\n", "c");
    ck_err(dlas_cfg_params(g, "x", spec, NULL, 0, &p, NULL, NULL),
           "key 'names' element 2 expects a string, got 1");
    g = load("c = ( 1, 2 );\n", "c");
    ck_err(dlas_cfg_params(g, "model 'm'", spec, NULL, 0, &p, NULL, NULL),
           "exp.cfg:1: model 'm' must be a group");
    ck_assert_ptr_null(p);
}
END_TEST

START_TEST(test_cfg_required)
{
    struct dlas_params *p = NULL;
    const config_setting_t *g = load("a = 1;\n\nd = {\n  plugin = \"imagefolder\";\n};\n", "d");
    ck_err(dlas_cfg_params(g, "dataset 'imgs'", spec, plugin_key, 1, &p, NULL, NULL),
           "exp.cfg:3: missing required key 'path' for dataset 'imgs' (dataset directory)");
    ck_assert_ptr_null(p);
    const struct dlas_param_spec two[] = {
        {"a", DLAS_PARAM_INT, DLAS_PARAM_REQUIRED, NULL, 0, 0, NULL, NULL},
        {"b", DLAS_PARAM_INT, DLAS_PARAM_REQUIRED, NULL, 0, 0, NULL, NULL},
        {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
    ck_err(dlas_cfg_params(g, "dataset 'imgs'", two, plugin_key, 0, &p, NULL, NULL),
           "missing required keys 'a', 'b' for dataset 'imgs'");
    /* No group at all: the defaults, unless something is required. */
    ck_err(dlas_cfg_params(NULL, "group 'train'", spec, NULL, 0, &p, NULL, NULL),
           "missing required key 'path' for group 'train'");
    ck_ok(dlas_cfg_params(NULL, "group 'train'", opt_spec(), NULL, 0, &p, NULL, NULL));
    ck_assert_int_eq(dlas_param_int(p, "threads"), 4);
    dlas_params_free(p);
}
END_TEST

START_TEST(test_cfg_axes)
{
    const config_setting_t *g = load("b = {\n"
                                     "  plugin = \"openmp\";\n"
                                     "  threads = [1, 2, 4];\n"
                                     "  schedule = [\"step\", \"none\"];\n"
                                     "  seeds = [5, 6];\n" /* a list parameter: not an axis */
                                     "  path = \"p\";\n"
                                     "};\n",
                                     "b");
    struct dlas_params *p = NULL;
    struct dlas_axis *ax = NULL;
    int nax = 0;
    ck_ok(dlas_cfg_params(g, "backend 'omp'", spec, plugin_key, 1, &p, &ax, &nax));
    ck_assert_int_eq(nax, 2);
    ck_assert_str_eq(ax[0].key, "threads");
    ck_assert_int_eq(ax[0].n, 3);
    ck_assert_str_eq(ax[0].values[0], "1");
    ck_assert_str_eq(ax[0].values[2], "4");
    ck_assert(strstr(ax[0].origin, "exp.cfg:3") != NULL);
    ck_assert_str_eq(ax[1].key, "schedule");
    ck_assert_int_eq(ax[1].n, 2);
    ck_assert_str_eq(ax[1].values[1], "\"none\"");
    /* The parameter holds the first value; each value can be set back. */
    ck_assert_int_eq(dlas_param_int(p, "threads"), 1);
    ck_assert_str_eq(dlas_param_str(p, "schedule"), "step");
    ck_assert_int_eq(dlas_param_list_len(p, "seeds"), 2);
    struct dlas_params *q = dlas_params_clone(p);
    ck_ok(dlas_params_set(q, ax[0].key, ax[0].values[2], ax[0].origin));
    ck_ok(dlas_params_set(q, ax[1].key, ax[1].values[1], ax[1].origin));
    ck_assert_int_eq(dlas_param_int(q, "threads"), 4);
    ck_assert_str_eq(dlas_param_str(q, "schedule"), "none");
    dlas_params_free(q);
    dlas_params_free(p);
    dlas_axes_free(ax, nax);

    /* Every swept value is validated, with the element's line. */
    g = load("b = {\n  schedule = [\"step\",\n     \"cosin\"];\n};\n", "b");
    ck_err(dlas_cfg_params(g, "backend 'omp'", opt_spec(), plugin_key, 1, &p, &ax, &nax),
           "exp.cfg:3: key 'schedule' = \"cosin\" is not one of step|cosine|none (did you mean 'cosine'?)");
    ck_assert_ptr_null(ax);
    ck_assert_int_eq(nax, 0);
    g = load("b = {\n  threads = [1, 2, 128];\n};\n", "b");
    ck_err(dlas_cfg_params(g, "backend 'omp'", opt_spec(), plugin_key, 1, &p, &ax, &nax),
           "exp.cfg:2: key 'threads' = 128 is out of range [1, 64]");
    g = load("b = {\n  threads = [];\n};\n", "b");
    ck_err(dlas_cfg_params(g, "backend 'omp'", opt_spec(), plugin_key, 1, &p, &ax, &nax),
           "key 'threads' is given an empty list");
    g = load("b = {\n  threads = ( 1, ( 2, 3 ) );\n};\n", "b");
    ck_err(dlas_cfg_params(g, "backend 'omp'", opt_spec(), plugin_key, 1, &p, &ax, &nax),
           "a swept value must be a single value, element 2 is a list");

    /* Without axes, a list for a scalar is an error. */
    g = load("e = {\n  name = \"x\";\n  threads = [1, 2];\n};\n", "e");
    ck_err(dlas_cfg_params(g, "group 'experiment'", opt_spec(), NULL, 0, &p, NULL, NULL),
           "exp.cfg:3: key 'threads' expects a single value, got [1, 2]");
    ck_assert_ptr_null(p);
    /* allow_axes with nowhere to put them is the same. */
    ck_err(dlas_cfg_params(g, "group 'experiment'", opt_spec(), NULL, 1, &p, NULL, NULL),
           "expects a single value");
}
END_TEST

START_TEST(test_cfg_text_where)
{
    const config_setting_t *g =
        load("g = {\n  i = -3;\n  w = 9000000000L;\n  f = 1.0;\n  e = 2.5e-8;\n  b = true;\n"
             "  s = \"q\\\"\\n\";\n  a = [1, 2];\n  l = (\"x\", 0.5, { k = 1; });\n  n = ();\n};\n",
             "g");
    const char *want[][2] = {{"i", "-3"},
                             {"w", "9000000000L"},
                             {"f", "1.0"},
                             {"e", "2.5e-08"},
                             {"b", "true"},
                             {"s", "\"q\\\"\\n\""},
                             {"a", "[1, 2]"},
                             {"l", "(\"x\", 0.5, { k = 1; })"},
                             {"n", "()"}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        char *t = dlas_cfg_text(config_setting_get_member(g, want[i][0]));
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(t, want[i][1]);
        free(t);
    }
    char *t = dlas_cfg_text(g);
    ck_assert(strncmp(t, "{ i = -3; w = 9000000000L;", 26) == 0);
    free(t);
    ck_assert_ptr_null(dlas_cfg_text(NULL));
    char at[700], want_at[700];
    dlas_cfg_where(config_setting_get_member(g, "b"), at, sizeof at);
    snprintf(want_at, sizeof want_at, "%s:6", cfgpath);
    ck_assert_str_eq(at, want_at);

    /* Read from a string: no file name, only the line. */
    config_t c;
    config_init(&c);
    ck_assert(config_read_string(&c, "\nx = 1;\n"));
    dlas_cfg_where(config_lookup(&c, "x"), at, sizeof at);
    ck_assert_str_eq(at, "line 2");
    config_destroy(&c);
}
END_TEST

/* A knob renamed to the shared vocabulary keeps its old name: the alias
 * reads and sets the one value, is listed nowhere else, sweeps, and a group
 * giving both names is refused with file:line. */
static const struct dlas_param_spec aliased[] = {
    {"reg_w", DLAS_PARAM_INT, DLAS_PARAM_TUNABLE, "0", 0, 16, NULL, "columns per block"},
    {"order", DLAS_PARAM_ENUM, 0, "auto", 0, 0, "auto|rows", "loop order"},
    {"ow_block", DLAS_PARAM_INT, DLAS_PARAM_ALIAS, "reg_w", 0, 0, NULL, NULL},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};

START_TEST(test_alias)
{
    struct dlas_params *p = NULL;
    ck_ok(dlas_params_defaults(aliased, &p));
    ck_assert_uint_eq(dlas_params_count(p), 2); /* the alias is not a parameter */
    ck_assert_str_eq(dlas_params_name(p, 0), "reg_w");
    ck_assert_str_eq(dlas_params_name(p, 1), "order");
    ck_assert_ptr_null(dlas_params_name(p, 2));
    ck_ok(dlas_params_set(p, "ow_block", "7", "x.cfg:3"));
    ck_assert_int_eq(dlas_param_int(p, "reg_w"), 7);
    ck_assert_int_eq(dlas_param_int(p, "ow_block"), 7);
    ck_assert_int_eq(dlas_param_given(p, "reg_w"), 1);
    ck_err(dlas_params_set(p, "ow_block", "17", "x.cfg:4"), "x.cfg:4"); /* the target's range */
    char *d = dlas_params_describe(p);
    ck_assert_str_eq(d, "reg_w=7; order=\"auto\"");
    free(d);
    char buf[64];
    ck_ok(dlas_params_format(p, 1, buf, sizeof buf));
    ck_assert_str_eq(buf, "\"auto\"");
    ck_assert_int_eq(dlas_params_format(p, 2, buf, sizeof buf), DLAS_ERR_INVALID);
    dlas_params_free(p);

    const config_setting_t *g = load("c = { ow_block = [2, 4]; };\n", "c");
    struct dlas_axis *ax = NULL;
    int nax = 0;
    ck_ok(dlas_cfg_params(g, "primitive 'direct'", aliased, NULL, 1, &p, &ax, &nax));
    ck_assert_int_eq(nax, 1);
    ck_assert_int_eq(ax[0].n, 2);
    ck_assert_int_eq(dlas_param_int(p, "reg_w"), 2);
    dlas_axes_free(ax, nax);
    dlas_params_free(p);

    g = load("c = {\n  reg_w = 2;\n  ow_block = 4;\n};\n", "c");
    ck_err(dlas_cfg_params(g, "primitive 'direct'", aliased, NULL, 1, &p, NULL, NULL),
           "exp.cfg:3: 'reg_w' and 'ow_block' in primitive 'direct' name one parameter ('reg_w')");
    g = load("c = {\n  ow_block = 4;\n  reg_w = 2;\n};\n", "c");
    ck_err(dlas_cfg_params(g, "primitive 'direct'", aliased, NULL, 1, &p, NULL, NULL),
           "exp.cfg:3: 'ow_block' and 'reg_w' in primitive 'direct' name one parameter ('reg_w')");

    /* a broken alias is a broken spec */
    static const struct dlas_param_spec dangling[] = {
        {"a", DLAS_PARAM_INT, 0, "1", 0, 0, NULL, NULL},
        {"b", DLAS_PARAM_INT, DLAS_PARAM_ALIAS, "nope", 0, 0, NULL, NULL},
        {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
    ck_err(dlas_params_defaults(dangling, &p), "'b': is an alias of 'nope', which is not declared");
    static const struct dlas_param_spec retyped[] = {
        {"a", DLAS_PARAM_INT, 0, "1", 0, 0, NULL, NULL},
        {"b", DLAS_PARAM_FLOAT, DLAS_PARAM_ALIAS, "a", 0, 0, NULL, NULL},
        {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
    ck_err(dlas_params_defaults(retyped, &p), "of another type");
    static const struct dlas_param_spec flagged[] = {
        {"a", DLAS_PARAM_INT, 0, "1", 0, 0, NULL, NULL},
        {"b", DLAS_PARAM_INT, DLAS_PARAM_ALIAS | DLAS_PARAM_TUNABLE, "a", 0, 0, NULL, NULL},
        {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
    ck_err(dlas_params_defaults(flagged, &p), "takes no other flag");
}
END_TEST

static Suite *params_suite(void)
{
    Suite *s = suite_create("params");
    TCase *t = dlas_test_case(s, "values", NULL, NULL, 0);
    tcase_add_test(t, test_edit_distance);
    tcase_add_test(t, test_nearest);
    tcase_add_test(t, test_defaults);
    tcase_add_test(t, test_accessor_mismatch);
    tcase_add_test(t, test_bad_specs);
    tcase_add_test(t, test_required);
    tcase_add_test(t, test_set_every_type);
    tcase_add_test(t, test_range_errors);
    tcase_add_test(t, test_type_errors);
    tcase_add_test(t, test_enum_errors);
    tcase_add_test(t, test_format);
    tcase_add_test(t, test_format_round_trip);
    tcase_add_test(t, test_describe_clone);
    TCase *c = dlas_test_case(s, "config", tmp_setup, tmp_teardown, 0);
    tcase_add_test(c, test_cfg_valid);
    tcase_add_test(c, test_cfg_unknown_key);
    tcase_add_test(c, test_cfg_type_and_range);
    tcase_add_test(c, test_cfg_required);
    tcase_add_test(c, test_cfg_axes);
    tcase_add_test(c, test_cfg_text_where);
    tcase_add_test(c, test_alias);
    return s;
}

int main(void)
{
    return dlas_test_run(params_suite());
}
