/* The element-wise forward shared by the inference plan and the trainer:
 * activations, residual adds, batchnorm's per-channel affine map and the
 * global average. One implementation, so that a network evaluated by the
 * trainer and by the plan computes these nodes the same way (the reference
 * operators in core/graph stay apart, as the oracle both are tested
 * against). Each kernel works on one contiguous range; the caller splits
 * the work over its threads (the plan over the backend's, the trainer over
 * its OpenMP team). `act` is an enum dlas_activation; NaN passes through
 * every activation, as torch.relu and torch.nn.functional.relu6 do. Not
 * installed. */
#ifndef DLAS_KERNELS_ELTWISE_H
#define DLAS_KERNELS_ELTWISE_H

#include <stdint.h>

/* y[i] = act(x[i]), i in [0, n); y may be x. */
void ew_act(float *y, const float *x, int64_t n, int act);

/* y[i] = act(a[i] + b[i]); y may be a or b. */
void ew_add(float *y, const float *a, const float *b, int64_t n, int act);

/* y[i] = act(x[i] * scale + shift): one channel plane of a batchnorm with
 * fixed statistics; y may be x. */
void ew_affine(float *y, const float *x, int64_t n, float scale, float shift, int act);

/* ew_affine over one range of many channels at once, with the same
 * arithmetic: y + c * y_stride gets act(x * scale[c] + shift[c]) of the n
 * floats at x[c] + img * x_stride[c] + at, for c in [0, channels). A
 * conv's prologue transforms one input row of every channel so (direct,
 * run_prologue): rows of 7 to 56 floats, where a call per channel spent
 * its time in the scalar remainder. */
void ew_affine_channels(float *y, int64_t y_stride, const float *const *x,
                        const int64_t *x_stride, int64_t img, int64_t at, int64_t channels,
                        int64_t n, const float *scale, const float *shift, int act);

/* out[i] = clamp(rint(x[i] * inv_scale) + zero_point, 0, 255), NaN to the
 * zero point: the uint8 quantisation of <dlas/quant.h> (dlas_quantize1, the
 * definition this must match bit for bit; rint under the default rounding
 * mode, half to even), 16 at a time where AVX-512 is built. The inference
 * plan quantises every f32 input of an int8 layer with it. */
void ew_quantize_u8(uint8_t *out, const float *x, int64_t n, float inv_scale, int32_t zero_point);

/* The mean of x[0, n), accumulated in double (a 56 x 56 plane summed in
 * float loses about 12 bits). n > 0. */
float ew_mean(const float *x, int64_t n);

/* Batchnorm's affine map from its statistics: scale = gamma / sqrt(var + eps)
 * and shift = beta - mean * scale, in double, then rounded once each. */
void ew_bn_coeffs(float gamma, float beta, double mean, double inv_std, float *scale,
                  float *shift);

#endif
