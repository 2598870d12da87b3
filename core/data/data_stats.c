/* Per-channel mean and standard deviation measured on the TRAIN split.
 *
 * The samples are read in fixed chunks whose partial sums are combined in
 * chunk order, so the result does not depend on how many threads read them.
 * Sums are in double: 10^8 pixels of [0,1] values lose nothing that matters. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data_impl.h"

#define CHUNK 64

struct stats_job {
    struct dlas_data *d;
    int64_t n_pick, n_chunks;
    double *partial; /* n_chunks x channels x 2 (sum, sum of squares) */
    int threads;
};

struct stats_worker {
    struct stats_job *job;
    int id;
    int status;
    char msg[1024];
};

static int64_t pick(const struct stats_job *j, int64_t k)
{
    /* k-th of n_pick samples spread evenly over the train split. */
    return (int64_t)((__int128)k * j->d->n[DLAS_DATA_TRAIN] / j->n_pick);
}

static void *stats_run(void *arg)
{
    struct stats_worker *w = arg;
    struct stats_job *j = w->job;
    struct dlas_data *d = j->d;
    const int C = d->info.channels;
    const int64_t plane = (int64_t)d->info.height * d->info.width;
    float *buf = malloc((size_t)CHUNK * (size_t)d->pix * sizeof(float));
    int64_t idx[CHUNK];
    if (!buf) {
        w->status = dlas_error(DLAS_ERR_NOMEM, "data: cannot allocate a statistics buffer");
        goto out;
    }
    for (int64_t ch = w->id; ch < j->n_chunks; ch += j->threads) {
        int64_t k0 = ch * CHUNK, n = j->n_pick - k0 < CHUNK ? j->n_pick - k0 : CHUNK;
        for (int64_t i = 0; i < n; i++)
            idx[i] = dlas_data_index(d, DLAS_DATA_TRAIN, pick(j, k0 + i));
        int rc = d->ops->read(d->handle, DLAS_SPLIT_TRAIN, idx, n, buf, NULL);
        if (rc) {
            w->status = dlas_error_context("computing normalisation statistics");
            break;
        }
        double *acc = j->partial + ch * C * 2;
        for (int64_t i = 0; i < n; i++)
            for (int c = 0; c < C; c++) {
                const float *p = buf + i * d->pix + c * plane;
                double s = 0.0, q = 0.0;
                for (int64_t t = 0; t < plane; t++) {
                    s += p[t];
                    q += (double)p[t] * p[t];
                }
                acc[2 * c] += s;
                acc[2 * c + 1] += q;
            }
    }
out:
    if (w->status)
        strncpy(w->msg, dlas_last_error(), sizeof w->msg - 1);
    free(buf);
    return NULL;
}

int dlas_data_compute_stats(struct dlas_data *d)
{
    struct stats_job j;
    memset(&j, 0, sizeof j);
    j.d = d;
    int64_t n = d->n[DLAS_DATA_TRAIN];
    j.n_pick = d->opt.stats_samples > 0 && d->opt.stats_samples < n ? d->opt.stats_samples : n;
    j.n_chunks = (j.n_pick + CHUNK - 1) / CHUNK;
    j.threads = d->opt.workers > 1 ? d->opt.workers : 1;
    if (j.threads > j.n_chunks)
        j.threads = (int)j.n_chunks;
    const int C = d->info.channels;
    j.partial = calloc((size_t)j.n_chunks * C * 2, sizeof(double));
    struct stats_worker *w = calloc((size_t)j.threads, sizeof *w);
    pthread_t *tid = calloc((size_t)j.threads, sizeof *tid);
    if (!j.partial || !w || !tid) {
        free(j.partial);
        free(w);
        free(tid);
        return dlas_error(DLAS_ERR_NOMEM, "data: cannot allocate statistics");
    }
    int started = 0;
    for (int t = 0; t < j.threads; t++) {
        w[t].job = &j;
        w[t].id = t;
    }
    /* Thread 0's share runs here; the others in helpers. */
    for (int t = 1; t < j.threads; t++, started++)
        if (pthread_create(&tid[t], NULL, stats_run, &w[t]))
            break;
    int rc = DLAS_OK;
    if (started < j.threads - 1) {
        /* Could not start all helpers: do their shares in this thread. */
        for (int t = started + 1; t < j.threads; t++)
            stats_run(&w[t]);
    }
    stats_run(&w[0]);
    for (int t = 1; t <= started; t++)
        pthread_join(tid[t], NULL);
    for (int t = 0; t < j.threads && !rc; t++)
        if (w[t].status)
            rc = dlas_error(w[t].status, "%s", w[t].msg);
    if (!rc) {
        double sum[4] = {0}, sq[4] = {0};
        for (int64_t ch = 0; ch < j.n_chunks; ch++)
            for (int c = 0; c < C; c++) {
                sum[c] += j.partial[(ch * C + c) * 2];
                sq[c] += j.partial[(ch * C + c) * 2 + 1];
            }
        double count = (double)j.n_pick * d->info.height * d->info.width;
        for (int c = 0; c < C; c++) {
            double m = sum[c] / count, var = sq[c] / count - m * m;
            d->info.mean[c] = (float)m;
            /* A constant channel would divide by zero: leave its scale alone. */
            d->info.std[c] = var > 1e-12 ? (float)sqrt(var) : 1.0f;
        }
        for (int c = C; c < 4; c++) {
            d->info.mean[c] = 0.0f;
            d->info.std[c] = 1.0f;
        }
    }
    free(j.partial);
    free(w);
    free(tid);
    return rc;
}
