/* bench_data: images per second that each dataset loader delivers through the
 * core's pipeline (dlas/data.h), with training augmentation, on 1 and 2
 * background loader threads, to set against training throughput (the loader
 * must be several times faster so that training never waits for data).
 *
 *   bench/bench_data [-r REPEATS] [-t SECONDS] [-b BATCH] [-w 1,2]
 *                    [--cifar DIR] [--imagefolder DIR] [--only NAME] [--keep]
 *
 * Loaders: synthetic (28x28x1), fashion-mnist (Debian's package, if
 * installed), cifar (the given folder, else a generated CIFAR-10 binary set)
 * and imagefolder (the given tree, else generated 500x375 JPEGs, ImageNet's
 * typical size, read at 224 with random-resized crops). Each figure is the
 * median of REPEATS runs of at least SECONDS each, from a fresh iterator whose
 * first batches (the prefetch filling up) are not counted. The consumer does
 * nothing but touch each batch, so this is the loader's ceiling. */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jpeglib.h>

#include <dlas/dlas.h>

#include <dlas/dlas.h>

#define MAX_REPEATS 64

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- generated data ------------------------------------------------------------ */

static char scratch[4096];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static unsigned lcg(unsigned *s) { return *s = *s * 1664525u + 1013904223u; }

/* CIFAR-10 binary files of random records. */
static int make_cifar(const char *dir, int per_file)
{
    mkdir(dir, 0755);
    unsigned seed = 1;
    unsigned char *rec = malloc(3073);
    for (int f = 0; f < 6; f++) {
        char path[4400];
        if (f < 5)
            snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, f + 1);
        else
            snprintf(path, sizeof path, "%s/test_batch.bin", dir);
        FILE *out = fopen(path, "wb");
        if (!out) {
            free(rec);
            return -1;
        }
        for (int r = 0; r < per_file; r++) {
            rec[0] = (unsigned char)(lcg(&seed) >> 16) % 10;
            for (int k = 1; k < 3073; k++)
                rec[k] = (unsigned char)(lcg(&seed) >> 24);
            fwrite(rec, 1, 3073, out);
        }
        fclose(out);
    }
    free(rec);
    return 0;
}

/* Smooth colour gradients with noise: compresses like a photograph (about
 * 2-3 bits per pixel at quality 90), unlike flat or pure-noise images. */
static int write_photo_jpeg(const char *path, int w, int h, unsigned seed)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr je;
    ci.err = jpeg_std_error(&je);
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 90, TRUE);
    jpeg_start_compress(&ci, TRUE);
    unsigned char *row = malloc((size_t)w * 3);
    int a = (int)(seed % 97), b = (int)(seed % 89);
    while (ci.next_scanline < ci.image_height) {
        int y = (int)ci.next_scanline;
        for (int x = 0; x < w; x++) {
            int n = (int)(lcg(&seed) >> 27); /* 0..31 */
            row[3 * x] = (unsigned char)((x * 255 / w + a + n) & 255);
            row[3 * x + 1] = (unsigned char)((y * 255 / h + b + n) & 255);
            row[3 * x + 2] = (unsigned char)(((x + y) * 127 / (w + h) + n * 2) & 255);
        }
        JSAMPROW r = row;
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(row);
    fclose(f);
    return 0;
}

static int make_imagefolder(const char *root, int classes, int per_class)
{
    char path[4400];
    mkdir(root, 0755);
    snprintf(path, sizeof path, "%s/train", root);
    mkdir(path, 0755);
    for (int c = 0; c < classes; c++) {
        snprintf(path, sizeof path, "%s/train/class%02d", root, c);
        mkdir(path, 0755);
        for (int i = 0; i < per_class; i++) {
            snprintf(path, sizeof path, "%s/train/class%02d/img%03d.jpg", root, c, i);
            if (write_photo_jpeg(path, 500, 375, (unsigned)(c * 1000 + i + 1)))
                return -1;
        }
    }
    return 0;
}

/* ---- measuring ------------------------------------------------------------------ */

struct loader {
    const char *name;     /* shown */
    const char *component;
    const char *params[8][2];
    int n_params;
    int crop_padding, hflip;
    int64_t batch;
};

static void print_row(const struct loader *l, const struct dlas_dataset_info *in, int workers,
                      double *rates, int n)
{
    qsort(rates, (size_t)n, sizeof *rates, cmp_double);
    char shape[64], aug[64];
    snprintf(shape, sizeof shape, "%dx%dx%d", in->channels, in->height, in->width);
    if (!strcmp(l->component, "imagefolder"))
        snprintf(aug, sizeof aug, "rrc%s", l->hflip ? " + hflip" : "");
    else
        snprintf(aug, sizeof aug, "pad %d crop%s", l->crop_padding, l->hflip ? " + hflip" : "");
    printf("%-14s %-10s %-18s %7d %14.0f %14.0f %14.0f\n", l->name, shape, aug, workers,
           rates[n / 2], rates[0], rates[n - 1]);
    fflush(stdout);
}

static int bench(struct dlas_registry *reg, const struct loader *l, const int *workers,
                 int n_workers, int repeats, double seconds)
{
    const struct dlas_component *c = dlas_registry_find(reg, DLAS_KIND_DATASET, l->component);
    if (!c) {
        fprintf(stderr, "bench_data: %s\n", dlas_last_error());
        return 1;
    }
    struct dlas_params *p = NULL;
    if (dlas_params_defaults(c->params, &p))
        return 1;
    for (int i = 0; i < l->n_params; i++)
        if (dlas_params_set(p, l->params[i][0], l->params[i][1], "bench_data")) {
            fprintf(stderr, "bench_data: %s\n", dlas_last_error());
            dlas_params_free(p);
            return 1;
        }
    struct dlas_rng rng;
    struct dlas_host host;
    dlas_rng_seed(&rng, 1);
    dlas_host_init(&host, &rng, 1);
    int rc = 0;
    for (int w = 0; w < n_workers && !rc; w++) {
        struct dlas_data_options o;
        dlas_data_options_default(&o);
        o.seed = 1;
        o.batch = l->batch;
        o.crop_padding = l->crop_padding;
        o.hflip = l->hflip;
        o.workers = workers[w];
        o.prefetch = 2 * workers[w];
        struct dlas_data *d;
        double t0 = now();
        if ((rc = dlas_data_open_component(c, &host, p, &o, &d))) {
            fprintf(stderr, "bench_data: %s: %s\n", l->name, dlas_last_error());
            break;
        }
        double t_open = now() - t0;
        const struct dlas_dataset_info *in = dlas_data_info(d);
        double rates[MAX_REPEATS];
        volatile float sink = 0.0f;
        for (int r = 0; r < repeats && !rc; r++) {
            struct dlas_data_iter *it;
            const struct dlas_batch *b;
            if ((rc = dlas_data_iter_new(d, DLAS_DATA_TRAIN, 1000 * r, 0, &it)))
                break;
            /* Not counted: the first batches, made while the queue fills. */
            for (int k = 0; k < o.prefetch + 1 && !rc; k++)
                rc = dlas_data_iter_next(it, &b);
            int64_t images = 0;
            double start = now(), el = 0.0;
            while (!rc && el < seconds) {
                if ((rc = dlas_data_iter_next(it, &b)) || !b)
                    break;
                sink += dlas_f32(&b->images)[b->n - 1];
                images += b->n;
                el = now() - start;
            }
            if (rc)
                fprintf(stderr, "bench_data: %s: %s\n", l->name, dlas_last_error());
            rates[r] = (double)images / el;
            dlas_data_iter_free(it);
        }
        (void)sink;
        if (!rc) {
            print_row(l, in, workers[w], rates, repeats);
            if (w == 0)
                fprintf(stderr, "  (%s: %lld train images, opened in %.2f s)\n", l->name,
                        (long long)in->n_train, t_open);
        }
        dlas_data_close(d);
    }
    dlas_params_free(p);
    return rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_data [-r REPEATS] [-t SECONDS] [-b BATCH] [-w 1,2] [--cifar DIR] "
                    "[--imagefolder DIR] [--only NAME] [--keep]\n");
}

int main(int argc, char **argv)
{
    int repeats = 5, keep = 0;
    double seconds = 1.0;
    int64_t batch = 128;
    int workers[8] = {1, 2}, n_workers = 2;
    const char *cifar_dir = NULL, *imgf_dir = NULL, *only = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-r") && v)
            repeats = atoi(argv[++i]);
        else if (!strcmp(a, "-t") && v)
            seconds = atof(argv[++i]);
        else if (!strcmp(a, "-b") && v)
            batch = atoll(argv[++i]);
        else if (!strcmp(a, "-w") && v) {
            n_workers = 0;
            for (char *s = argv[++i]; *s && n_workers < 8;) {
                workers[n_workers++] = (int)strtol(s, &s, 10);
                if (*s == ',')
                    s++;
                else
                    break;
            }
        } else if (!strcmp(a, "--cifar") && v)
            cifar_dir = argv[++i];
        else if (!strcmp(a, "--imagefolder") && v)
            imgf_dir = argv[++i];
        else if (!strcmp(a, "--only") && v)
            only = argv[++i];
        else if (!strcmp(a, "--keep"))
            keep = 1;
        else {
            usage();
            return 2;
        }
    }
    if (repeats < 1 || repeats > MAX_REPEATS || seconds <= 0 || batch < 1 || n_workers < 1) {
        usage();
        return 2;
    }

    struct dlas_registry *reg = dlas_registry_new();
    if (!reg || dlas_registry_discover(reg, NULL)) {
        fprintf(stderr, "bench_data: plugin discovery failed: %s\n", dlas_last_error());
        return 1;
    }
    const char *tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(scratch, sizeof scratch, "%s/bench_data-XXXXXX", tmpdir);
    if (!mkdtemp(scratch)) {
        fprintf(stderr, "bench_data: mkdtemp %s: %s\n", scratch, strerror(errno));
        return 1;
    }
    char gen_cifar[4200], gen_imgf[4200], q_cifar[4300], q_imgf[4300];
    snprintf(gen_cifar, sizeof gen_cifar, "%s/cifar", scratch);
    snprintf(gen_imgf, sizeof gen_imgf, "%s/imagefolder", scratch);
    int want_cifar = !only || !strcmp(only, "cifar"), want_imgf = !only || !strcmp(only, "imagefolder");
    if (want_cifar && !cifar_dir) {
        fprintf(stderr, "bench_data: generating CIFAR-10 binary files (5 x 2000 records) in %s\n",
                gen_cifar);
        if (make_cifar(gen_cifar, 2000))
            return 1;
        cifar_dir = gen_cifar;
    }
    if (want_imgf && !imgf_dir) {
        fprintf(stderr, "bench_data: generating 4 classes x 16 JPEGs of 500x375 in %s\n", gen_imgf);
        if (make_imagefolder(gen_imgf, 4, 16))
            return 1;
        imgf_dir = gen_imgf;
    }
    snprintf(q_cifar, sizeof q_cifar, "\"%s\"", cifar_dir ? cifar_dir : "");
    snprintf(q_imgf, sizeof q_imgf, "\"%s\"", imgf_dir ? imgf_dir : "");

    struct loader loaders[] = {
        {"synthetic", "synthetic", {{"train_size", "60000"}}, 1, 4, 1, batch},
        {"fashion-mnist", "fashion-mnist", {{NULL, NULL}}, 0, 4, 1, batch},
        {"cifar", "cifar", {{"path", q_cifar}}, 1, 4, 1, batch},
        /* Smaller batches: one batch of 224x224 RGB floats is 77 MB at 128. */
        {"imagefolder", "imagefolder", {{"path", q_imgf}}, 1, 0, 1, batch < 32 ? batch : 32},
    };
    double load[3];
    dlas_sys_loadavg(load);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("# bench_data: images/s through dlas_data (training split, augmentation on), "
           "median of %d x >= %.1f s; %ld CPUs, load average %.2f %.2f %.2f\n",
           repeats, seconds, cpus, load[0], load[1], load[2]);
    printf("%-14s %-10s %-18s %7s %14s %14s %14s\n", "loader", "CxHxW", "augmentation", "threads",
           "images/s", "min", "max");
    int rc = 0;
    for (size_t k = 0; k < sizeof loaders / sizeof loaders[0]; k++) {
        const struct loader *l = &loaders[k];
        if (only && strcmp(only, l->name))
            continue;
        if (!strcmp(l->name, "fashion-mnist") &&
            access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK)) {
            printf("%-14s SKIP: Debian package dataset-fashion-mnist not installed\n", l->name);
            continue;
        }
        rc |= bench(reg, l, workers, n_workers, repeats, seconds);
    }
    if (!keep)
        nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
        fprintf(stderr, "bench_data: generated data kept in %s\n", scratch);
    dlas_registry_free(reg);
    return rc ? 1 : 0;
}
