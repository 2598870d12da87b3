/* JPEG (libjpeg) and PNG (libpng) decoding to 8-bit RGB or grey. */
#ifndef IMGF_DECODE_H
#define IMGF_DECODE_H

#include <stddef.h>
#include <stdint.h>

enum img_format { IMG_UNKNOWN = 0, IMG_JPEG, IMG_PNG };

struct image {
    int w, h;      /* as decoded (a JPEG may come out shrunk) */
    int src_w, src_h; /* as stored */
    int channels;  /* 1 or 3 */
    uint8_t *px;   /* h rows of w x channels bytes; malloc'd */
};

/* Dimensions from the header only; the format is told by the first bytes,
 * not the file name. 0 on success, else a non-zero status with why filled. */
int img_probe(const char *path, int *w, int *h, char *why, size_t why_len);

/* Decode the image. choose(arg, src_w, src_h), if given, is called once the
 * dimensions are known (for every format) and returns the largest factor (1,
 * 2, 4 or 8) by which a JPEG may be shrunk while decoding; PNGs ignore it. */
typedef int (*img_shrink_fn)(void *arg, int src_w, int src_h);
int img_decode(const char *path, int channels, img_shrink_fn choose, void *arg, struct image *out,
               char *why, size_t why_len);
void img_free(struct image *im);

#endif
