/* Layer shapes on the command line (conv_shape.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_shape.h"

int cli_conv_shape_parse(const char *s, struct dlas_conv_desc *d)
{
    memset(d, 0, sizeof *d);
    long long c, h, w, o;
    int used = 0;
    if (sscanf(s, "%lldx%lldx%lld-%lld%n", &c, &h, &w, &o, &used) != 4)
        return -1;
    *d = (struct dlas_conv_desc){.in_c = c, .in_h = h, .in_w = w, .out_c = o, .kh = 1, .kw = 1,
                                 .stride_h = 1, .stride_w = 1, .dil_h = 1, .dil_w = 1,
                                 .groups = 1, .batch = 1};
    const char *p = s + used;
    if (*p == ':')
        p++;
    while (*p) {
        char key = *p++, *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0)
            return -1;
        p = end;
        switch (key) {
        case 'k': d->kh = d->kw = (int)v; break;
        case 's': d->stride_h = d->stride_w = (int)v; break;
        case 'p': d->pad_h = d->pad_w = (int)v; break;
        case 'd': d->dil_h = d->dil_w = (int)v; break;
        case 'g': d->groups = (int)v; break;
        default: return -1;
        }
    }
    return dlas_conv_desc_finish(d) ? -1 : 0;
}
