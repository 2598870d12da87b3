/* `dlas run` over the ranks of an MPI job: a work queue on rank 0.
 *
 * Every rank loads the same experiment file. Rank 0 opens the results,
 * decides which points to run (resume) and serves the others: a rank asks
 * for a point, runs it (in a child process, as a local run does), sends the
 * row back and so asks for the next. Rank 0 writes each row as it arrives
 * through the library's one results writer, so a rerun resumes whatever a
 * killed job finished, and no row is written twice. Rank 0 only serves
 * (it sleeps between messages rather than spin); the others share the cores
 * of their node.
 *
 * Points that start from one trained model (the model cache) go to the rank
 * that trained it while it has more of them, and no other rank starts one
 * of them before the model is trained: the others would train it again. */
#define _GNU_SOURCE /* sched_getaffinity */
#include <mpi.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_mpi.h"

enum { TAG_READY = 1, TAG_ROW = 2, TAG_WORK = 3 };

static void bind_share(struct cli_mpi *m);

const char *cli_mpi_library(void)
{
    static char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(v, &len);
    v[strcspn(v, ",\n")] = '\0'; /* its first line is long */
    return v;
}

int cli_mpi_start(struct cli_mpi *m, int *leave)
{
    m->rank = 0;
    m->size = 1;
    m->joined = 0;
    *leave = 0;
    int rank, size;
    if (!cli_launched(&rank, &size))
        return EXIT_OK; /* started on its own: no MPI at all */
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "dlas: MPI_Init failed\n");
        return EXIT_RUN_FAILED;
    }
    m->joined = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &m->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &m->size);
    if (m->size == 1 && size > 1) {
        /* srun without an MPI plugin: every task would run the whole sweep */
        fprintf(stderr, "dlas: the launcher started %d tasks, but MPI sees only this one (with "
                        "Slurm: srun --mpi=pmix, or mpirun inside the allocation)\n", size);
        return EXIT_USAGE;
    }
    if (m->size > 1)
        bind_share(m); /* collective: every rank takes part */
    return EXIT_OK;
}

static int serving; /* every rank loaded the experiment: the others will ask for points */

int cli_mpi_agree(struct cli_mpi *m, int status)
{
    if (m->size < 2)
        return status;
    int worst = 0;
    MPI_Allreduce(&status, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    serving = worst == 0;
    return worst;
}

/* ---- rank 0: the queue ------------------------------------------------------ */

struct queue {
    struct cli_mpi *m;
    size_t n;             /* points to run */
    const size_t *points; /* grid indices */
    size_t *gid;          /* each point's group, 0..n_groups-1 */
    char *taken;
    size_t first_free;    /* no free point before it */
    size_t *g_taken, *g_done, *g_size;
    size_t n_groups;
    int *solo;            /* group of points that share no trained model */
    long *last;           /* per rank: group of the last point it ran, -1 none */
    char *idle;           /* per rank: waiting for a point to become free */
    int active;           /* ranks not yet told to stop */
    int stopping;         /* no more points will be handed out */
    int status;           /* the first failure writing results */
};

struct pair {
    uint64_t group;
    size_t k;
};

static int by_group(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    return x->k < y->k ? -1 : x->k > y->k;
}

/* Number the groups of the points to run (dlas_experiment_point_group). */
static int queue_init(struct queue *q, struct cli_mpi *m, struct dlas_experiment *e,
                      const size_t *points, size_t n)
{
    memset(q, 0, sizeof *q);
    q->m = m;
    q->n = n;
    q->points = points;
    q->active = m->size - 1;
    struct pair *p = malloc(n * sizeof *p);
    q->gid = malloc(n * sizeof *q->gid);
    q->taken = calloc(n, 1);
    q->g_taken = calloc(n, sizeof *q->g_taken);
    q->g_done = calloc(n, sizeof *q->g_done);
    q->g_size = calloc(n, sizeof *q->g_size);
    q->solo = calloc(n, sizeof *q->solo);
    q->last = malloc((size_t)m->size * sizeof *q->last);
    q->idle = calloc((size_t)m->size, 1);
    if (!p || !q->gid || !q->taken || !q->g_taken || !q->g_done || !q->g_size || !q->solo ||
        !q->last || !q->idle) {
        free(p);
        return dlas_error(DLAS_ERR_NOMEM, "out of memory for the work queue");
    }
    for (int r = 0; r < m->size; r++)
        q->last[r] = -1;
    for (size_t k = 0; k < n; k++)
        p[k] = (struct pair){dlas_experiment_point_group(e, points[k]), k};
    qsort(p, n, sizeof *p, by_group);
    for (size_t k = 0; k < n; k++) {
        if (k == 0 || p[k].group != p[k - 1].group || p[k].group == 0) {
            q->solo[q->n_groups] = p[k].group == 0;
            q->n_groups++;
        }
        q->gid[p[k].k] = q->n_groups - 1;
        q->g_size[q->n_groups - 1]++;
    }
    free(p);
    return DLAS_OK;
}

static void queue_free(struct queue *q)
{
    free(q->gid);
    free(q->taken);
    free(q->g_taken);
    free(q->g_done);
    free(q->g_size);
    free(q->solo);
    free(q->last);
    free(q->idle);
}

static long first_free_where(struct queue *q, int (*ok)(const struct queue *, size_t, long),
                             long arg)
{
    while (q->first_free < q->n && q->taken[q->first_free])
        q->first_free++;
    for (size_t k = q->first_free; k < q->n; k++)
        if (!q->taken[k] && ok(q, q->gid[k], arg))
            return (long)k;
    return -1;
}

static int same_group(const struct queue *q, size_t g, long want) { return (long)g == want; }
static int untouched(const struct queue *q, size_t g, long u) { return !q->g_taken[g]; }
static int trained(const struct queue *q, size_t g, long u) { return q->g_done[g] > 0; }
static int any(const struct queue *q, size_t g, long u) { return 1; }

/* The next point for rank r: more of the model it trained last; else a
 * model nobody started; else a model already trained (the cache has it).
 * -1: none now (another rank is training the rest's model), -2: none left. */
static long queue_pick(struct queue *q, int r)
{
    long k = -1;
    if (q->last[r] >= 0 && !q->solo[q->last[r]])
        k = first_free_where(q, same_group, q->last[r]);
    if (k < 0)
        k = first_free_where(q, untouched, 0);
    if (k < 0)
        k = first_free_where(q, trained, 0);
    if (k >= 0)
        return k;
    return first_free_where(q, any, 0) >= 0 ? -1 : -2;
}

static void send_text(const char *text, int to, int tag)
{
    MPI_Send(text, (int)strlen(text), MPI_CHAR, to, tag, MPI_COMM_WORLD);
}

/* Give rank r its next point, or stop it, or let it wait. */
static void serve(struct queue *q, struct dlas_experiment *e, struct dlas_run_sink *sink, int r)
{
    long k = q->stopping ? -2 : queue_pick(q, r);
    q->idle[r] = k == -1;
    if (k == -1)
        return;
    if (k == -2) {
        send_text("stop", r, TAG_WORK);
        q->active--;
        return;
    }
    size_t i = q->points[k];
    q->taken[k] = 1;
    q->g_taken[q->gid[k]]++;
    q->last[r] = (long)q->gid[k];
    char msg[256], where[32];
    snprintf(msg, sizeof msg, "%zu %s", i, dlas_experiment_point_hash(e, i));
    snprintf(where, sizeof where, "rank %d", r);
    if (sink)
        dlas_run_started(sink, i, where);
    send_text(msg, r, TAG_WORK);
}

/* Receive the next message from any rank, without spinning on a core that
 * the ranks running points need: probe, and sleep a little between probes. */
static char *receive(int *from, int *tag)
{
    MPI_Status st;
    int flag = 0;
    long nap = 1000000; /* 1 ms, growing to 50 ms while nothing comes */
    for (;;) {
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (flag)
            break;
        struct timespec ts = {0, nap};
        nanosleep(&ts, NULL);
        if (nap < 50000000)
            nap *= 2;
    }
    int len = 0;
    MPI_Get_count(&st, MPI_CHAR, &len);
    char *buf = malloc((size_t)len + 1);
    MPI_Recv(buf ? buf : (char[1]){0}, buf ? len : 0, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG,
             MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (buf)
        buf[len] = '\0';
    *from = st.MPI_SOURCE;
    *tag = st.MPI_TAG;
    return buf;
}

/* A row from rank r: "INDEX\nROW", or "INDEX\n!WHY" when it has none. */
static void take_row(struct queue *q, struct dlas_run_sink *sink, int r, const char *msg)
{
    char *end;
    unsigned long long i = strtoull(msg, &end, 10);
    if (*end != '\n')
        return;
    const char *row = end + 1;
    char why[512] = "";
    if (*row == '!') {
        snprintf(why, sizeof why, "rank %d: %s", r, row + 1);
        row = NULL;
    }
    for (size_t k = 0; k < q->n; k++)
        if (q->points[k] == i) {
            q->g_done[q->gid[k]]++;
            break;
        }
    if (!sink)
        return;
    int rc = dlas_run_finished(sink, (size_t)i, row, *why ? why : NULL);
    if (rc && !q->status) {
        q->status = rc; /* the results cannot be written: hand out nothing more */
        q->stopping = 1;
    }
}

/* Serve every rank until all are stopped. sink NULL: only stop them (the
 * run failed before it could dispatch). */
static void queue_run(struct queue *q, struct dlas_experiment *e, struct dlas_run_sink *sink)
{
    while (q->active > 0) {
        int from, tag;
        char *msg = receive(&from, &tag);
        if (tag == TAG_ROW && msg)
            take_row(q, sink, from, msg);
        free(msg);
        serve(q, e, sink, from);
        /* a finished point may have trained the model idle ranks wait for */
        for (int r = 1; r < q->m->size; r++)
            if (q->idle[r])
                serve(q, e, sink, r);
    }
}

static int dispatched; /* the queue ran: every rank has been stopped */

static int dispatch_run(void *ctx, struct dlas_experiment *e, const struct dlas_run_options *o,
                        const size_t *points, size_t n, struct dlas_run_sink *sink)
{
    struct cli_mpi *m = ctx;
    struct queue q;
    int rc = queue_init(&q, m, e, points, n);
    if (rc) {
        queue_free(&q);
        return rc;
    }
    queue_run(&q, e, sink);
    dispatched = 1;
    queue_free(&q);
    return q.status;
}

const struct dlas_run_dispatch *cli_mpi_dispatch(struct cli_mpi *m)
{
    static struct dlas_run_dispatch d;
    if (m->size < 2 || m->rank != 0)
        return NULL;
    d.ctx = m;
    d.run = dispatch_run;
    return &d;
}

void cli_mpi_end(struct cli_mpi *m)
{
    if (m->size > 1 && m->rank == 0 && serving && !dispatched) {
        /* nothing was dispatched (all done, or the run could not start):
         * answer each rank's request with stop */
        struct queue q;
        memset(&q, 0, sizeof q);
        q.m = m;
        q.active = m->size - 1;
        q.stopping = 1;
        long last[1];
        char idle[1];
        q.last = last;
        q.idle = idle;
        while (q.active > 0) {
            int from, tag;
            free(receive(&from, &tag));
            send_text("stop", from, TAG_WORK);
            q.active--;
        }
    }
    if (m->joined)
        MPI_Finalize();
    m->joined = 0;
}

/* ---- the other ranks -------------------------------------------------------- */

/* This rank's share of its node's cores: the ranks that run points on a node
 * split the CPUs they may use, unless the launcher bound them already
 * (mpirun --bind-to core, srun --cpu-bind). */
static void bind_share(struct cli_mpi *m)
{
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    int lsize, lrank;
    MPI_Comm_size(node, &lsize);
    MPI_Comm_rank(node, &lrank);
    int *world = malloc((size_t)lsize * sizeof *world);
    if (!world) {
        MPI_Comm_free(&node);
        return;
    }
    MPI_Allgather(&m->rank, 1, MPI_INT, world, 1, MPI_INT, node);
    MPI_Comm_free(&node);
    int workers = 0, me = 0;
    for (int i = 0; i < lsize; i++)
        if (world[i] != 0) { /* rank 0 only serves */
            me += i < lrank;
            workers++;
        }
    free(world);
    cpu_set_t avail;
    if (m->rank == 0 || workers < 1 || sched_getaffinity(0, sizeof avail, &avail))
        return;
    int cpus[CPU_SETSIZE], n = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &avail))
            cpus[n++] = c;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1 || n < online) {
        dlas_log(DLAS_LOG_INFO, "rank %d: bound by the launcher to %d CPUs", m->rank, n);
        omp_set_num_threads(n > 0 ? n : 1);
        return;
    }
    int share = n / workers > 0 ? n / workers : 1;
    int first = (me * share) % n;
    cpu_set_t mine;
    CPU_ZERO(&mine);
    for (int c = 0; c < share; c++)
        CPU_SET(cpus[(first + c) % n], &mine);
    if (sched_setaffinity(0, sizeof mine, &mine) == 0) {
        /* what a point's threads = 0 means: this rank's share */
        omp_set_num_threads(share);
        dlas_log(DLAS_LOG_INFO, "rank %d: %d of %d CPUs (from CPU %d), %d ranks running "
                 "points on this node", m->rank, share, n, cpus[first], workers);
    }
}

int cli_mpi_work(struct cli_mpi *m, struct dlas_experiment *e, const struct dlas_run_options *o)
{
    MPI_Send("", 0, MPI_CHAR, 0, TAG_READY, MPI_COMM_WORLD);
    for (;;) {
        MPI_Status st;
        MPI_Probe(0, TAG_WORK, MPI_COMM_WORLD, &st);
        int len = 0;
        MPI_Get_count(&st, MPI_CHAR, &len);
        char msg[256] = "";
        if (len >= (int)sizeof msg)
            len = (int)sizeof msg - 1;
        MPI_Recv(msg, len, MPI_CHAR, 0, TAG_WORK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        msg[len] = '\0';
        if (!strcmp(msg, "stop"))
            return EXIT_OK;
        char *end;
        unsigned long long i = strtoull(msg, &end, 10);
        char *row = NULL, *out = NULL;
        const char *why = NULL;
        if (*end != ' ' || i >= dlas_experiment_n_points(e) ||
            strcmp(end + 1, dlas_experiment_point_hash(e, (size_t)i)))
            why = "this rank loaded a different configuration (the point's hash differs)";
        else if (dlas_experiment_run_point(e, o, (size_t)i, &row))
            why = dlas_last_error();
        size_t need = 32 + (row ? strlen(row) : strlen(why));
        if ((out = malloc(need)))
            snprintf(out, need, "%llu\n%s%s", i, row ? "" : "!", row ? row : why);
        send_text(out ? out : "", 0, TAG_ROW);
        free(out);
        free(row);
    }
}
