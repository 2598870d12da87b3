/* Cropping and resizing a decoded image into the network's input. */
#ifndef IMGF_RESAMPLE_H
#define IMGF_RESAMPLE_H

#include <stdint.h>

#include "decode.h"

/* A region of an image, in pixels of the image as stored (not as decoded). */
struct box {
    double x, y, w, h;
};

/* Evaluation view: the shorter side scaled to `resize`, then the centred
 * size x size square, expressed as the source region it covers. */
struct box box_center(int src_w, int src_h, int size, int resize);

/* Training view: torchvision's RandomResizedCrop (Szegedy et al. 2015): a
 * region of scale_min..scale_max of the area and aspect ratio (log-uniform)
 * ratio_min..ratio_max, placed uniformly; after 10 misses, the centred region
 * of the clamped ratio. Drawn from `seed` alone. */
struct box box_random_resized(int src_w, int src_h, uint64_t seed, double scale_min,
                              double scale_max, double ratio_min, double ratio_max);

/* The largest JPEG shrink factor (1, 2, 4, 8) that keeps the region at least
 * `size` pixels on both sides, so that shrinking never loses resolution the
 * output needs. */
int box_shrink(struct box b, int size);

/* Resample region b of im (b in source pixels; im may be a shrunk decode) to
 * an out_size x out_size float image, channel-major, in [0,1], with a
 * triangle filter widened by the downscale factor (antialiased like PIL's
 * bilinear). Returns non-zero only when out of memory. */
int resample(const struct image *im, struct box b, int out_size, float *out);

#endif
