/* A scatter plot of two figures of a study's configurations: facets (one
 * panel per value of a column, e.g. the model), colour and marker by two
 * other columns, error bars, log axes where values span decades, and the
 * Pareto front of each panel. Written as BASE.gp plus data files into a
 * folder and drawn to BASE.png, BASE.pdf and BASE.svg. */
#ifndef DLAS_CLI_SCATTER_H
#define DLAS_CLI_SCATTER_H

#include <stdio.h>

#include "study.h"

enum { FRONT_NONE, FRONT_MAX_Y, FRONT_MIN_Y };

struct scatter {
    const char *x, *y;                   /* result columns */
    const char *colour, *shape, *facet;  /* columns, or NULL */
    int logx, logy;                      /* 1 on, 0 off, -1 when values span decades */
    int front;                           /* FRONT_* (minimising x) */
    const char *dir, *base;              /* output folder and file base name */
    const char *note;                    /* extra x-label text, e.g. the bars' meaning */
    FILE *list;                          /* if set, each panel's Pareto set is listed here */
};

/* Writes the files and runs gnuplot; returns an exit status (reports on
 * stderr). *drawn is set to the number of configurations plotted. */
int scatter_plot(const struct study *s, const struct scatter *p, size_t *drawn);

#endif
