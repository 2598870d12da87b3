/* dlas: the Deep Learning Acceleration Stack research framework.
 * Umbrella header: everything a plugin or tool may use. */
#ifndef DLAS_DLAS_H
#define DLAS_DLAS_H

#include <dlas/status.h>
#include <dlas/log.h>
#include <dlas/rng.h>
#include <dlas/params.h>
#include <dlas/tensor.h>
#include <dlas/graph.h>
#include <dlas/build.h>
#include <dlas/conv.h>
#include <dlas/ops.h>
#include <dlas/plugin.h>
#include <dlas/registry.h>
#include <dlas/plan.h>
#include <dlas/tune.h>
#include <dlas/compare.h>
#include <dlas/experiment.h>
#include <dlas/surgery.h>
#include <dlas/checkpoint.h>
#include <dlas/data.h>
#include <dlas/train.h>
#include <dlas/blocks.h>
#include <dlas/distil.h>
#include <dlas/file.h>
#include <dlas/results.h>
#include <dlas/saliency.h>
#include <dlas/prune.h>

const char *dlas_version(void);  /* "0.1.0" */
const char *dlas_revision(void); /* git revision the library was built from */
const char *dlas_blas_info(void); /* the BLAS build in use, e.g. "OpenBLAS 0.3.21 ... (openmp, core Zen)" */
/* The 1, 5 and 15 minute load averages (-1 where unknown). Public on purpose:
 * benchmarks record how busy the machine was beside every timing. */
void dlas_sys_loadavg(double avg[3]);

#endif
