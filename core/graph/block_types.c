/* Cheap block types: their names (the papers' notation and their code's),
 * which channel counts they fit, and their parameter counts. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/blocks.h>
#include <dlas/status.h>

#define FORMS "S, G(g), G(N/s), G(N), DW, B(b), BG(b,g), BG(b,N/s) or the papers' code names " \
              "(Conv, DConv, DConvA<g>, DConvG<s>, ConvB<b>, A<g>B<b>, G<s>B<b>)"

/* A positive decimal at *s (at most 6 digits), advancing s; 0 if none. */
static int number(const char **s)
{
    int v = 0, n = 0;
    while (isdigit((unsigned char)**s) && n < 6) {
        v = v * 10 + (**s - '0');
        (*s)++;
        n++;
    }
    return isdigit((unsigned char)**s) ? 0 : v;
}

/* "g", "N" or "N/s" at *s: groups or a group size. */
static int group_arg(const char **s, int *groups, int *group_size)
{
    *groups = *group_size = 0;
    if (**s == 'N') {
        (*s)++;
        if (**s != '/') {
            *group_size = 1;
            return 1;
        }
        (*s)++;
        return (*group_size = number(s)) > 0;
    }
    return (*groups = number(s)) > 0;
}

static int parse_paper(const char *s, struct dlas_block_type *t)
{
    memset(t, 0, sizeof *t);
    if (!strcmp(s, "S"))
        return 1;
    if (!strcmp(s, "DW")) {
        t->kind = DLAS_BLOCK_GROUPED;
        t->group_size = 1;
        return 1;
    }
    if (!strncmp(s, "G(", 2)) {
        s += 2;
        t->kind = DLAS_BLOCK_GROUPED;
        return group_arg(&s, &t->groups, &t->group_size) && !strcmp(s, ")");
    }
    if (!strncmp(s, "B(", 2)) {
        s += 2;
        t->kind = DLAS_BLOCK_BOTTLENECK;
        return (t->bottleneck = number(&s)) > 0 && !strcmp(s, ")");
    }
    if (!strncmp(s, "BG(", 3)) {
        s += 3;
        t->kind = DLAS_BLOCK_GROUPED_BOTTLENECK;
        if ((t->bottleneck = number(&s)) <= 0 || *s++ != ',')
            return 0;
        return group_arg(&s, &t->groups, &t->group_size) && !strcmp(s, ")");
    }
    return 0;
}

static int parse_code(const char *s, struct dlas_block_type *t)
{
    memset(t, 0, sizeof *t);
    if (!strcmp(s, "Conv"))
        return 1;
    if (!strcmp(s, "DConv")) {
        t->kind = DLAS_BLOCK_GROUPED;
        t->group_size = 1;
        return 1;
    }
    if (!strncmp(s, "DConvA", 6) || !strncmp(s, "DConvG", 6)) {
        const char *p = s + 6;
        int v = number(&p);
        t->kind = DLAS_BLOCK_GROUPED;
        if (s[5] == 'A')
            t->groups = v;
        else
            t->group_size = v;
        return v > 0 && !*p;
    }
    if (!strncmp(s, "ConvB", 5)) {
        const char *p = s + 5;
        t->kind = DLAS_BLOCK_BOTTLENECK;
        return (t->bottleneck = number(&p)) > 0 && !*p;
    }
    if (s[0] == 'A' || s[0] == 'G') { /* A<g>B<b>: g groups; G<s>B<b>: groups of s */
        const char *p = s + 1;
        int v = number(&p);
        if (v <= 0 || *p++ != 'B')
            return 0;
        t->kind = DLAS_BLOCK_GROUPED_BOTTLENECK;
        if (s[0] == 'A')
            t->groups = v;
        else
            t->group_size = v;
        return (t->bottleneck = number(&p)) > 0 && !*p;
    }
    return 0;
}

int dlas_block_type_parse(const char *text, struct dlas_block_type *out)
{
    char s[64];
    size_t n = 0;
    for (const char *p = text ? text : ""; *p && n + 1 < sizeof s; p++)
        if (!isspace((unsigned char)*p))
            s[n++] = *p;
    s[n] = '\0';
    struct dlas_block_type t;
    if (!n || !(parse_paper(s, &t) || parse_code(s, &t)))
        return dlas_error(DLAS_ERR_INVALID, "unknown block type '%s' (use %s)", text ? text : "",
                          FORMS);
    if (out)
        *out = t;
    return DLAS_OK;
}

const char *dlas_block_type_name(const struct dlas_block_type *t, char *buf, size_t len)
{
    char g[32];
    if (t->group_size > 1)
        snprintf(g, sizeof g, "N/%d", t->group_size);
    else if (t->group_size == 1)
        snprintf(g, sizeof g, "N");
    else
        snprintf(g, sizeof g, "%d", t->groups);
    switch (t->kind) {
    case DLAS_BLOCK_STANDARD: snprintf(buf, len, "S"); break;
    case DLAS_BLOCK_GROUPED:
        if (t->group_size == 1)
            snprintf(buf, len, "DW");
        else
            snprintf(buf, len, "G(%s)", g);
        break;
    case DLAS_BLOCK_BOTTLENECK: snprintf(buf, len, "B(%d)", t->bottleneck); break;
    case DLAS_BLOCK_GROUPED_BOTTLENECK: snprintf(buf, len, "BG(%d,%s)", t->bottleneck, g); break;
    default: snprintf(buf, len, "?"); break;
    }
    return buf;
}

int dlas_block_type_groups(const struct dlas_block_type *t, int channels)
{
    if (t->kind == DLAS_BLOCK_STANDARD || t->kind == DLAS_BLOCK_BOTTLENECK)
        return 1;
    if (channels < 1)
        return 0;
    int g = t->group_size > 0 ? channels / t->group_size : t->groups;
    if (t->group_size > 0 && channels % t->group_size)
        return 0;
    return g >= 1 && channels % g == 0 ? g : 0;
}

static int mid_channels(const struct dlas_block_type *t, int out_c)
{
    return t->bottleneck >= 1 ? out_c / t->bottleneck : 0;
}

/* Whether t fits in_c -> out_c, without a message. */
static int fits(const struct dlas_block_type *t, int in_c, int out_c)
{
    switch (t->kind) {
    case DLAS_BLOCK_STANDARD:
        return in_c >= 1 && out_c >= 1;
    case DLAS_BLOCK_GROUPED:
        return dlas_block_type_groups(t, in_c) && dlas_block_type_groups(t, out_c);
    case DLAS_BLOCK_BOTTLENECK:
    case DLAS_BLOCK_GROUPED_BOTTLENECK:
        return mid_channels(t, out_c) >= 1 && dlas_block_type_groups(t, mid_channels(t, out_c));
    }
    return 0;
}

int dlas_block_type_check(const struct dlas_block_type *t, int in_c, int out_c)
{
    char name[32];
    if (fits(t, in_c, out_c))
        return DLAS_OK;
    dlas_block_type_name(t, name, sizeof name);
    switch (t->kind) {
    case DLAS_BLOCK_STANDARD:
        return DLAS_OK;
    case DLAS_BLOCK_GROUPED:
        if (!dlas_block_type_groups(t, in_c) || !dlas_block_type_groups(t, out_c))
            return dlas_error(DLAS_ERR_INVALID,
                              "block type %s does not fit a block of %d -> %d channels: its "
                              "groups do not divide %d channels",
                              name, in_c, out_c, dlas_block_type_groups(t, in_c) ? out_c : in_c);
        return DLAS_OK;
    case DLAS_BLOCK_BOTTLENECK:
    case DLAS_BLOCK_GROUPED_BOTTLENECK: {
        int m = mid_channels(t, out_c);
        if (m < 1)
            return dlas_error(DLAS_ERR_INVALID, "block type %s leaves no channels of %d", name,
                              out_c);
        if (!dlas_block_type_groups(t, m))
            return dlas_error(DLAS_ERR_INVALID,
                              "block type %s does not fit a block of %d channels: its groups "
                              "do not divide the bottleneck's %d channels",
                              name, out_c, m);
        return DLAS_OK;
    }
    }
    return dlas_error(DLAS_ERR_INVALID, "unknown block kind %d", (int)t->kind);
}

/* A grouped k x k on c channels, BN, ReLU, 1x1 to o channels. */
static int64_t grouped_module(int64_t c, int64_t o, int64_t g, int64_t k2, int bn)
{
    return c * (c / g) * k2 + (bn ? 2 * c : 0) + c * o;
}

int64_t dlas_block_type_params(const struct dlas_block_type *t, int in_c, int out_c, int k,
                               int with_bn)
{
    if (in_c < 1 || out_c < 1 || k < 1 || !fits(t, in_c, out_c))
        return -1;
    const int64_t k2 = (int64_t)k * k, in = in_c, out = out_c, bn = with_bn ? 1 : 0;
    switch (t->kind) {
    case DLAS_BLOCK_STANDARD:
        return in * out * k2 + 2 * bn * out + out * out * k2;
    case DLAS_BLOCK_GROUPED:
        return grouped_module(in, out, dlas_block_type_groups(t, in_c), k2, with_bn) +
               2 * bn * out + grouped_module(out, out, dlas_block_type_groups(t, out_c), k2, with_bn);
    case DLAS_BLOCK_BOTTLENECK:
    case DLAS_BLOCK_GROUPED_BOTTLENECK: {
        const int64_t m = mid_channels(t, out_c), g = dlas_block_type_groups(t, (int)m);
        return in * m + 2 * bn * m + m * (m / g) * k2 + 2 * bn * m + m * out;
    }
    }
    return -1;
}
