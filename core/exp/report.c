/* Extra figures a compressor (or other plugin) adds to its result row. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlas/plugin.h>

#include "results.h"

int dlas_report_num(struct dlas_report *r, const char *key, double value)
{
    char text[64];
    snprintf(text, sizeof text, "%.10g", value);
    return dlas_report_str(r, key, text);
}

int dlas_report_str(struct dlas_report *r, const char *key, const char *value)
{
    if (!r)
        return DLAS_OK;
    return dlas_row_set(&r->row, key, value);
}
