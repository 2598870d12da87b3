/* The layer-shape syntax that `dlas tune --layers` and the bench programs
 * share, so that a shape copied from one works in the other. */
#ifndef DLAS_CLI_CONV_SHAPE_H
#define DLAS_CLI_CONV_SHAPE_H

#include <dlas/ops.h>

/* Parse "CxHxW-OUT[:]kK[sS][pP][dD][gG]" (k3 = 3x3; absent keys are 1, pad
 * 0) into a finished descriptor of batch 1 without bias; 0 on success, -1
 * on bad syntax or a shape dlas_conv_desc_finish refuses. */
int cli_conv_shape_parse(const char *s, struct dlas_conv_desc *d);

#endif
