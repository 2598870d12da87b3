/* `dlas run` under an MPI launcher, in a build without MPI (configure found
 * no libopenmpi-dev, or --without-mpi): rank 0 runs the whole sweep here,
 * the other ranks leave it to rank 0 rather than run it again. */
#include <stdio.h>

#include "cli.h"
#include "cli_mpi.h"

const char *cli_mpi_library(void) { return "none (configure found no MPI: --with-mpi)"; }

int cli_mpi_start(struct cli_mpi *m, int *leave)
{
    m->rank = 0;
    m->size = 1;
    m->joined = 0;
    *leave = 0;
    int rank, size;
    if (!cli_launched(&rank, &size) || size < 2)
        return EXIT_OK;
    if (rank > 0) {
        fprintf(stderr, "dlas: rank %d: this dlas was built without MPI (configure "
                        "--with-mpi); rank 0 runs the whole sweep\n", rank);
        *leave = 1;
    } else
        fprintf(stderr, "dlas: warning: started as one of %d ranks, but this dlas was built "
                        "without MPI (configure --with-mpi): running every point here\n", size);
    return EXIT_OK;
}

int cli_mpi_agree(struct cli_mpi *m, int status) { return status; }

const struct dlas_run_dispatch *cli_mpi_dispatch(struct cli_mpi *m) { return NULL; }

int cli_mpi_work(struct cli_mpi *m, struct dlas_experiment *e, const struct dlas_run_options *o)
{
    return EXIT_OK;
}

void cli_mpi_end(struct cli_mpi *m) {}
