/* Image decoding. The format is told by the magic bytes, not the extension
 * (ImageNet has a PNG named .JPEG). Neither library may print or exit: libjpeg
 * errors longjmp back here and its warnings are counted, libpng's simplified
 * API reports through image.message. A JPEG cut short is an error, although
 * libjpeg would pad it with grey and only warn. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include <dlas/file.h>
#include <dlas/status.h>

#include "decode.h"

/* Refuse absurd headers before allocating for them (a 1.6 GB RGB buffer). */
#define MAX_PIXELS ((size_t)1 << 29)
/* What libjpeg may allocate for itself (a progressive JPEG keeps every
 * coefficient of the image): past it, the decode fails instead of paging. */
#define JPEG_MAX_MEMORY ((long)1 << 30)
/* The output buffer starts at this many rows and doubles as rows arrive. */
#define FIRST_ROWS 64

/* What a file of `size` bytes can hold, so that a header's claim is checked
 * against the file before anything is allocated for it:
 * - a Huffman-coded JPEG spends at least one bit on the DC difference of
 *   every 8x8 block of its full-resolution component (progressive or not),
 *   so it holds at most 8 * size blocks of 64 pixels;
 * - a PNG's deflate stream expands at most 1032:1 and a pixel takes at least
 *   one bit, so it holds at most 1032 * 8 * size pixels. */
static int claim_fits(enum img_format fmt, int arith, int64_t size, uint64_t w, uint64_t h,
                      char *why, size_t why_len)
{
    uint64_t pixels = w * h, most;
    if (fmt == IMG_JPEG && !arith)
        most = (uint64_t)size * 8 * 64;
    else if (fmt == IMG_PNG)
        most = (uint64_t)size * 1032 * 8;
    else
        return 1; /* arithmetic coding has no such bound: decoding is incremental */
    if (pixels <= most)
        return 1;
    snprintf(why, why_len,
             "%s: the header claims %llux%llu pixels, more than a %lld-byte file can hold "
             "(at most %llu pixels)",
             fmt == IMG_JPEG ? "JPEG" : "PNG", (unsigned long long)w, (unsigned long long)h,
             (long long)size, (unsigned long long)most);
    return 0;
}

static enum img_format sniff(FILE *f, char *why, size_t why_len)
{
    unsigned char m[8] = {0};
    size_t n = fread(m, 1, sizeof m, f);
    rewind(f);
    if (n >= 3 && m[0] == 0xFF && m[1] == 0xD8 && m[2] == 0xFF)
        return IMG_JPEG;
    if (n >= 8 && !memcmp(m, "\x89PNG\r\n\x1a\n", 8))
        return IMG_PNG;
    if (n == 0)
        snprintf(why, why_len, "empty file");
    else
        snprintf(why, why_len, "not a JPEG or PNG file (offset 0: %02x %02x %02x %02x)", m[0], m[1],
                 m[2], m[3]);
    return IMG_UNKNOWN;
}

/* ---- JPEG ------------------------------------------------------------------ */

struct jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    int eof;
    int bad;                   /* a warning about the data: the pixels are not the file's */
    char warn[JMSG_LENGTH_MAX]; /* the first such warning */
};

/* Warnings about metadata only; every other libjpeg warning says that the
 * compressed data is corrupt or cut short, and the pixels libjpeg returns
 * are then partly invented (grey padding, resynchronised garbage). */
static int benign_warning(int code)
{
    return code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM
#ifdef JWRN_BOGUS_ICC
           || code == JWRN_BOGUS_ICC
#endif
        ;
}

static void j_error_exit(j_common_ptr c)
{
    struct jerr *e = (struct jerr *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jump, 1);
}

static void j_emit(j_common_ptr c, int level)
{
    struct jerr *e = (struct jerr *)c->err;
    if (level < 0) {
        c->err->num_warnings++;
        if (c->err->msg_code == JWRN_JPEG_EOF)
            e->eof = 1;
        else if (!benign_warning(c->err->msg_code) && !e->bad) {
            e->bad = 1;
            c->err->format_message(c, e->warn);
        }
    }
}

static void j_output(j_common_ptr c) { (void)c; }

static void cmyk_row(const uint8_t *in, uint8_t *out, int w, int channels, int inverted)
{
    for (int x = 0; x < w; x++, in += 4) {
        int c = in[0], m = in[1], y = in[2], k = in[3];
        if (!inverted) {
            c = 255 - c;
            m = 255 - m;
            y = 255 - y;
            k = 255 - k;
        }
        int r = (c * k + 127) / 255, g = (m * k + 127) / 255, b = (y * k + 127) / 255;
        if (channels == 1)
            out[x] = (uint8_t)((299 * r + 587 * g + 114 * b + 500) / 1000);
        else {
            out[3 * x] = (uint8_t)r;
            out[3 * x + 1] = (uint8_t)g;
            out[3 * x + 2] = (uint8_t)b;
        }
    }
}

/* Grow the pixel buffer to hold `rows` rows of `row` bytes. */
static int grow_rows(uint8_t *volatile *px, size_t *cap_rows, size_t rows, size_t row)
{
    if (rows <= *cap_rows)
        return 1;
    size_t cap = *cap_rows ? *cap_rows : FIRST_ROWS;
    while (cap < rows)
        cap *= 2;
    uint8_t *g = realloc(*px, cap * row);
    if (!g)
        return 0;
    *px = g;
    *cap_rows = cap;
    return 1;
}

static int jpeg_run(FILE *f, int64_t size, int probe_only, int channels, img_shrink_fn choose,
                    void *arg, struct image *out, char *why, size_t why_len)
{
    struct jpeg_decompress_struct ci;
    struct jerr je;
    uint8_t *volatile px = NULL;
    uint8_t *volatile cmyk = NULL;
    memset(&je, 0, sizeof je);
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = j_error_exit;
    je.pub.emit_message = j_emit;
    je.pub.output_message = j_output;
    if (setjmp(je.jump)) {
        jpeg_destroy_decompress(&ci);
        free(px);
        free(cmyk);
        snprintf(why, why_len, "JPEG: %s", je.msg);
        return DLAS_ERR_CORRUPT;
    }
    jpeg_create_decompress(&ci);
    ci.mem->max_memory_to_use = JPEG_MAX_MEMORY;
    jpeg_stdio_src(&ci, f);
    jpeg_read_header(&ci, TRUE);
    out->src_w = (int)ci.image_width;
    out->src_h = (int)ci.image_height;
    if (!claim_fits(IMG_JPEG, ci.arith_code, size, ci.image_width, ci.image_height, why,
                    why_len)) {
        jpeg_destroy_decompress(&ci);
        return DLAS_ERR_CORRUPT;
    }
    if (probe_only) {
        jpeg_destroy_decompress(&ci);
        return DLAS_OK;
    }
    int is_cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
    ci.out_color_space = is_cmyk ? JCS_CMYK : channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    ci.scale_num = 1;
    ci.scale_denom = choose ? (unsigned)choose(arg, out->src_w, out->src_h) : 1;
    jpeg_start_decompress(&ci);
    const int w = (int)ci.output_width, h = (int)ci.output_height;
    if ((size_t)w * h > MAX_PIXELS) {
        snprintf(je.msg, sizeof je.msg, "%dx%d pixels is too large", w, h);
        longjmp(je.jump, 1);
    }
    const size_t row = (size_t)w * channels;
    size_t cap_rows = 0;
    if (is_cmyk)
        cmyk = malloc((size_t)w * 4);
    if (is_cmyk && !cmyk) {
        snprintf(je.msg, sizeof je.msg, "out of memory for %dx%d pixels", w, h);
        longjmp(je.jump, 1);
    }
    /* Rows are stored as they are decoded, and decoding stops at the first
     * sign that the data ran out or is corrupt, so a header that claims more
     * than the file holds costs no more memory than the file backs. */
    while (ci.output_scanline < ci.output_height && !je.eof && !je.bad) {
        if (!grow_rows(&px, &cap_rows, (size_t)ci.output_scanline + 1, row)) {
            snprintf(je.msg, sizeof je.msg, "out of memory for %dx%d pixels", w, h);
            longjmp(je.jump, 1);
        }
        uint8_t *dst = px + (size_t)ci.output_scanline * row;
        JSAMPROW r = is_cmyk ? cmyk : dst;
        if (jpeg_read_scanlines(&ci, &r, 1) != 1)
            break;
        if (is_cmyk)
            cmyk_row(cmyk, dst, w, channels, ci.saw_Adobe_marker);
    }
    if (!je.eof && !je.bad)
        jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    free(cmyk);
    if (je.eof || je.bad) {
        free(px);
        if (je.eof)
            snprintf(why, why_len, "JPEG: truncated (the data ends before the image does)");
        else
            snprintf(why, why_len, "JPEG: corrupt data (%s)", je.warn);
        return DLAS_ERR_CORRUPT;
    }
    out->w = w;
    out->h = h;
    out->channels = channels;
    out->px = px;
    return DLAS_OK;
}

/* ---- PNG ------------------------------------------------------------------- */

static int png_run(FILE *f, int64_t size, int probe_only, int channels, img_shrink_fn choose, void *arg,
                   struct image *out, char *why, size_t why_len)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_stdio(&im, f)) {
        snprintf(why, why_len, "PNG: %s", im.message);
        png_image_free(&im);
        return DLAS_ERR_CORRUPT;
    }
    out->src_w = out->w = (int)im.width;
    out->src_h = out->h = (int)im.height;
    if (!claim_fits(IMG_PNG, 0, size, im.width, im.height, why, why_len)) {
        png_image_free(&im);
        return DLAS_ERR_CORRUPT;
    }
    if (probe_only) {
        png_image_free(&im);
        return DLAS_OK;
    }
    if (choose)
        choose(arg, out->src_w, out->src_h); /* PNG cannot shrink, but the caller learns the size */
    if ((size_t)im.width * im.height > MAX_PIXELS) {
        snprintf(why, why_len, "PNG: %ux%u pixels is too large", im.width, im.height);
        png_image_free(&im);
        return DLAS_ERR_CORRUPT;
    }
    /* Alpha is read and then dropped, as PIL's convert("RGB") does, rather
     * than composited onto some background. */
    int alpha = (im.format & PNG_FORMAT_FLAG_ALPHA) != 0;
    im.format = channels == 1 ? (alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY)
                              : (alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB);
    uint8_t *px = malloc(PNG_IMAGE_SIZE(im));
    if (!px) {
        png_image_free(&im);
        snprintf(why, why_len, "PNG: out of memory for %ux%u pixels", im.width, im.height);
        return DLAS_ERR_NOMEM;
    }
    if (!png_image_finish_read(&im, NULL, px, 0, NULL)) {
        snprintf(why, why_len, "PNG: %s", im.message);
        png_image_free(&im);
        free(px);
        return DLAS_ERR_CORRUPT;
    }
    /* libpng's "benign" errors about the image data (too little or too much
     * of it, a damaged deflate stream) come back as warnings: the pixels may
     * be garbage. Warnings about metadata (an iCCP profile, a text chunk)
     * leave the pixels alone and are not counted. */
    if ((im.warning_or_error & PNG_IMAGE_WARNING) &&
        (strstr(im.message, "IDAT") || strstr(im.message, "image data") ||
         strstr(im.message, "compressed data"))) {
        snprintf(why, why_len, "PNG: corrupt data (%s)", im.message);
        png_image_free(&im);
        free(px);
        return DLAS_ERR_CORRUPT;
    }
    if (alpha) {
        size_t n = (size_t)im.width * im.height;
        for (size_t i = 0; i < n; i++)
            memmove(px + i * channels, px + i * (channels + 1), (size_t)channels);
    }
    out->channels = channels;
    out->px = px;
    return DLAS_OK;
}

/* ---- entry points -------------------------------------------------------------- */

static int run(const char *path, int probe_only, int channels, img_shrink_fn choose, void *arg,
               struct image *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof *out);
    FILE *f;
    int64_t size;
    int rc = dlas_file_fopen(path, &f, &size);
    if (rc) {
        /* The message names the path first; the caller adds it again. */
        const char *m = dlas_last_error();
        size_t n = strlen(path);
        snprintf(why, why_len, "%s", !strncmp(m, path, n) && m[n] == ':' ? m + n + 2 : m);
        return rc;
    }
    switch (sniff(f, why, why_len)) {
    case IMG_JPEG: rc = jpeg_run(f, size, probe_only, channels, choose, arg, out, why, why_len); break;
    case IMG_PNG: rc = png_run(f, size, probe_only, channels, choose, arg, out, why, why_len); break;
    default: rc = DLAS_ERR_CORRUPT; break;
    }
    fclose(f);
    if (!rc && (out->src_w < 1 || out->src_h < 1)) {
        snprintf(why, why_len, "image has no pixels (%dx%d)", out->src_w, out->src_h);
        img_free(out);
        rc = DLAS_ERR_CORRUPT;
    }
    return rc;
}

int img_probe(const char *path, int *w, int *h, char *why, size_t why_len)
{
    struct image im;
    int rc = run(path, 1, 3, NULL, NULL, &im, why, why_len);
    *w = im.src_w;
    *h = im.src_h;
    return rc;
}

int img_decode(const char *path, int channels, img_shrink_fn choose, void *arg, struct image *out,
               char *why, size_t why_len)
{
    return run(path, 0, channels, choose, arg, out, why, why_len);
}

void img_free(struct image *im)
{
    free(im->px);
    im->px = NULL;
}
