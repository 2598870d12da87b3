/* Iterating batches, with background workers filling a ring of slots.
 *
 * Batches are numbered globally (epoch after epoch) and batch b always lives
 * in slot b % n_slots. Workers claim numbers in order and fill them in any
 * order; the consumer takes them strictly in order, so what it sees depends
 * only on the batch numbers, never on timing. A slot is refilled only once
 * the consumer has moved past the batch it held, so a batch handed out stays
 * valid until the next call. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_impl.h"

#define MSG_MAX 2048

struct worker {
    struct dlas_data_iter *it;
    int id;
};

struct dlas_data_iter {
    struct dlas_data *d;
    enum dlas_data_split split;
    int64_t first_epoch, per_epoch, total; /* total batches; INT64_MAX: no end */
    int n_slots, n_workers, n_started;
    struct dlas_batch_slot *slots;
    int64_t *seq; /* the batch a slot holds once ready, else -1 */
    int *status;
    char (*msg)[MSG_MAX];
    struct dlas_batch_scratch *scratch; /* one per worker, or one for the caller */
    struct worker *workers;
    pthread_t *tid;

    pthread_mutex_t mu;
    pthread_cond_t ready, freed;
    int64_t claim;    /* next batch a worker will take */
    int64_t released; /* batches the consumer is done with */
    int stop, failed;

    /* consumer's side only */
    int64_t cur; /* next batch to hand out */
    int held;
    int sticky;
    char sticky_msg[MSG_MAX];
};

static int fill(struct dlas_data_iter *it, int64_t b, struct dlas_batch_scratch *sc)
{
    return dlas_data_fill(it->d, it->split, it->first_epoch + b / it->per_epoch,
                          b % it->per_epoch, &it->slots[b % it->n_slots], sc);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct dlas_data_iter *it = w->it;
    pthread_mutex_lock(&it->mu);
    while (!it->stop && !it->failed && it->claim < it->total) {
        int64_t b = it->claim++;
        while (!it->stop && b >= it->released + it->n_slots)
            pthread_cond_wait(&it->freed, &it->mu);
        if (it->stop)
            break;
        pthread_mutex_unlock(&it->mu);
        int k = (int)(b % it->n_slots);
        int rc = fill(it, b, &it->scratch[w->id]);
        if (rc) {
            strncpy(it->msg[k], dlas_last_error(), MSG_MAX - 1);
            it->msg[k][MSG_MAX - 1] = '\0';
        }
        pthread_mutex_lock(&it->mu);
        it->status[k] = rc;
        it->seq[k] = b;
        /* Stop claiming after a failure; the consumer gets the batches before
         * it, then the error. */
        if (rc)
            it->failed = 1;
        pthread_cond_broadcast(&it->ready);
    }
    pthread_mutex_unlock(&it->mu);
    return NULL;
}

static void iter_release(struct dlas_data_iter *it)
{
    if (it->n_started) {
        pthread_mutex_lock(&it->mu);
        it->stop = 1;
        pthread_cond_broadcast(&it->freed);
        pthread_cond_broadcast(&it->ready);
        pthread_mutex_unlock(&it->mu);
        for (int i = 0; i < it->n_started; i++)
            pthread_join(it->tid[i], NULL);
    }
    pthread_mutex_destroy(&it->mu);
    pthread_cond_destroy(&it->ready);
    pthread_cond_destroy(&it->freed);
    int n_scratch = it->n_workers ? it->n_workers : 1;
    for (int i = 0; it->scratch && i < n_scratch; i++)
        dlas_batch_scratch_free(&it->scratch[i]);
    for (int i = 0; it->slots && i < it->n_slots; i++)
        dlas_batch_slot_free(&it->slots[i]);
    free(it->scratch);
    free(it->slots);
    free(it->seq);
    free(it->status);
    free(it->msg);
    free(it->workers);
    free(it->tid);
    free(it);
}

int dlas_data_iter_new(struct dlas_data *d, enum dlas_data_split s, int64_t first_epoch,
                       int64_t n_epochs, struct dlas_data_iter **out)
{
    *out = NULL;
    if (!d || (unsigned)s > DLAS_DATA_TEST || first_epoch < 0)
        return dlas_error(DLAS_ERR_INVALID, "data: bad iterator arguments");
    struct dlas_data_iter *it = calloc(1, sizeof *it);
    if (!it)
        return dlas_error(DLAS_ERR_NOMEM, "data: out of memory");
    it->d = d;
    it->split = s;
    it->first_epoch = first_epoch;
    it->per_epoch = dlas_data_batches(d, s);
    if (it->per_epoch == 0)
        it->total = 0;
    else if (n_epochs <= 0 || n_epochs > INT64_MAX / it->per_epoch)
        it->total = INT64_MAX;
    else
        it->total = n_epochs * it->per_epoch;
    it->n_workers = d->opt.workers;
    /* One slot for the batch the consumer holds, the rest being filled or
     * waiting; at least one per worker so that none sits idle. */
    int ahead = d->opt.prefetch > it->n_workers ? d->opt.prefetch : it->n_workers;
    it->n_slots = it->n_workers ? ahead + 1 : 1;
    pthread_mutex_init(&it->mu, NULL);
    pthread_cond_init(&it->ready, NULL);
    pthread_cond_init(&it->freed, NULL);

    int n_scratch = it->n_workers ? it->n_workers : 1;
    it->slots = calloc((size_t)it->n_slots, sizeof *it->slots);
    it->seq = malloc((size_t)it->n_slots * sizeof *it->seq);
    it->status = calloc((size_t)it->n_slots, sizeof *it->status);
    it->msg = calloc((size_t)it->n_slots, sizeof *it->msg);
    it->scratch = calloc((size_t)n_scratch, sizeof *it->scratch);
    it->workers = calloc((size_t)n_scratch, sizeof *it->workers);
    it->tid = calloc((size_t)n_scratch, sizeof *it->tid);
    int rc = DLAS_OK;
    if (!it->slots || !it->seq || !it->status || !it->msg || !it->scratch || !it->workers ||
        !it->tid)
        rc = dlas_error(DLAS_ERR_NOMEM, "data: out of memory");
    for (int i = 0; !rc && i < it->n_slots; i++) {
        it->seq[i] = -1;
        rc = dlas_batch_slot_init(d, &it->slots[i]);
    }
    for (int i = 0; !rc && i < n_scratch; i++)
        rc = dlas_batch_scratch_init(d, &it->scratch[i]);
    if (!rc && it->n_workers && it->total) {
        /* Signals are the caller's business: keep them off the workers. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        for (int i = 0; i < it->n_workers; i++) {
            it->workers[i].it = it;
            it->workers[i].id = i;
            if (pthread_create(&it->tid[i], NULL, worker_main, &it->workers[i])) {
                rc = dlas_error(DLAS_ERR_UNAVAILABLE, "data: cannot start loader thread %d", i);
                break;
            }
            it->n_started++;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (rc) {
        iter_release(it);
        return rc;
    }
    *out = it;
    return DLAS_OK;
}

int dlas_data_iter_next(struct dlas_data_iter *it, const struct dlas_batch **batch)
{
    *batch = NULL;
    if (it->sticky)
        return dlas_error(it->sticky, "%s", it->sticky_msg);
    if (it->held) {
        it->held = 0;
        pthread_mutex_lock(&it->mu);
        it->released++;
        pthread_cond_broadcast(&it->freed);
        pthread_mutex_unlock(&it->mu);
    }
    if (it->cur >= it->total)
        return DLAS_OK;
    int64_t b = it->cur;
    int k = (int)(b % it->n_slots);
    int rc;
    if (!it->n_workers) {
        rc = fill(it, b, &it->scratch[0]);
        if (rc)
            snprintf(it->sticky_msg, sizeof it->sticky_msg, "%s", dlas_last_error());
    } else {
        pthread_mutex_lock(&it->mu);
        while (it->seq[k] != b)
            pthread_cond_wait(&it->ready, &it->mu);
        rc = it->status[k];
        pthread_mutex_unlock(&it->mu);
        if (rc)
            memcpy(it->sticky_msg, it->msg[k], sizeof it->sticky_msg);
    }
    if (rc) {
        it->sticky = rc;
        return dlas_error(rc, "%s", it->sticky_msg);
    }
    it->cur++;
    it->held = 1;
    *batch = &it->slots[k].b;
    return DLAS_OK;
}

void dlas_data_iter_free(struct dlas_data_iter *it)
{
    if (it)
        iter_release(it);
}
