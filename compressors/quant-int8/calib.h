/* Activation range calibration for quant-int8: the observed range of one
 * tensor over the calibration batches, reduced to the [lo, hi] its uint8
 * parameters cover, by one of three rules (HAGO's choices, Jain et al.;
 * the entropy rule is TensorRT's, Migacz, "8-bit Inference with TensorRT",
 * GTC 2017):
 *   minmax      the observed minimum and maximum;
 *   percentile  the p-th and (100-p)-th percentiles of the values;
 *   entropy     the clipping threshold whose quantised histogram is closest
 *               (Kullback-Leibler) to the observed one.
 * Two passes over the data: the first finds the extremes (calib_observe_range),
 * the second fills a histogram over them (calib_observe_hist). */
#ifndef QUANT_INT8_CALIB_H
#define QUANT_INT8_CALIB_H

#include <stdint.h>

#define CALIB_BINS 2048

enum calib_method { CALIB_MINMAX = 0, CALIB_PERCENTILE, CALIB_ENTROPY };

struct calib {
    double min, max;        /* pass 1 (finite values only) */
    int64_t count;          /* values seen in pass 2 */
    double lo_edge, width;  /* pass 2: bins cover [lo_edge, lo_edge + CALIB_BINS * width) */
    int64_t hist[CALIB_BINS];
    int symmetric;          /* the histogram is of |x| over [0, max|x|] (entropy, signed data) */
};

void calib_init(struct calib *c);
void calib_observe_range(struct calib *c, const float *x, int64_t n);
/* Start pass 2 for `method` (after every calib_observe_range). */
void calib_begin_hist(struct calib *c, enum calib_method method);
void calib_observe_hist(struct calib *c, const float *x, int64_t n);
/* The range to quantise; percentile in (50, 100]. */
void calib_range(const struct calib *c, enum calib_method method, double percentile,
                 float *lo, float *hi);
/* The entropy rule's threshold on a histogram of magnitudes: the upper edge
 * (in bins) of the clipping range that minimises KL(P || Q) when `levels`
 * quantisation levels cover it. Exposed for tests. */
int calib_kl_threshold(const int64_t *hist, int bins, int levels);

#endif
