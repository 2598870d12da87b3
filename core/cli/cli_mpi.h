/* `dlas run` over the ranks of an MPI job (mpirun, srun). Rank 0 loads the
 * results, hands out points one at a time (a work queue) and writes every
 * row; the other ranks run the points they are given. Built with MPI only
 * when configure finds it (--with-mpi); without it, a run started by an MPI
 * launcher runs on rank 0 alone. mpi.h is included by cli_mpi.c only. */
#ifndef DLAS_CLI_MPI_H
#define DLAS_CLI_MPI_H

#include <dlas/dlas.h>

struct cli_mpi {
    int rank, size;
    int joined; /* MPI_Init was called: cli_mpi_end must finalise */
};

/* The rank and size an MPI launcher gave this process through its
 * environment (Open MPI, PMI, PMIx, Slurm): 1 when started by one (then
 * *rank and *size are set), 0 otherwise (cli_ranks.c). */
int cli_launched(int *rank, int *size);

/* "Open MPI v4.1.4, ..." or why there is none (for dlas --version). */
const char *cli_mpi_library(void);

/* Join the MPI job this process was started in, if any; else (or without
 * MPI support) rank 0 of 1. Ranks above 0 of a build without MPI are told to
 * leave: *leave = 1. Returns an exit status (EXIT_OK). */
int cli_mpi_start(struct cli_mpi *m, int *leave);
/* All ranks, after each loaded the experiment: whether every rank did
 * (the worst status, so that all stop together rather than wait). */
int cli_mpi_agree(struct cli_mpi *m, int status);
/* Rank 0 of several: the dispatcher that spreads points over the others. */
const struct dlas_run_dispatch *cli_mpi_dispatch(struct cli_mpi *m);
/* Ranks above 0: run the points rank 0 hands out until it says stop. */
int cli_mpi_work(struct cli_mpi *m, struct dlas_experiment *e, const struct dlas_run_options *o);
/* Every rank, at the end: rank 0 first tells every rank still waiting for a
 * point that there is none (a run that failed before or while dispatching);
 * then leave the job. */
void cli_mpi_end(struct cli_mpi *m);

#endif
