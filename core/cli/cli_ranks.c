/* Which rank of a parallel launch this process is, from the environment the
 * launcher sets; read before (and without) MPI, so that a build without MPI
 * can still tell that it was started as one of several. */
#include <stdlib.h>

#include "cli.h"
#include "cli_mpi.h"

static int env_int(const char *name, int *out)
{
    const char *v = getenv(name);
    char *end;
    if (!v || !*v)
        return 0;
    long x = strtol(v, &end, 10);
    if (*end || x < 0 || x > 1 << 24)
        return 0;
    *out = (int)x;
    return 1;
}

int cli_launched(int *rank, int *size)
{
    /* Open MPI's mpirun, then PMI (MPICH's hydra, srun --mpi=pmi2), then
     * Slurm's own task variables (srun without an MPI plugin) */
    static const char *const vars[][2] = {{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
                                          {"PMI_RANK", "PMI_SIZE"},
                                          {"PMIX_RANK", "OMPI_COMM_WORLD_SIZE"},
                                          {"SLURM_PROCID", "SLURM_NTASKS"}};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        int r, s;
        if (env_int(vars[i][0], &r) && env_int(vars[i][1], &s) && s >= 1 && r < s) {
            *rank = r;
            *size = s;
            return 1;
        }
    }
    int r;
    if (env_int("PMIX_RANK", &r)) { /* PMIx alone says the rank, not the size */
        *rank = r;
        *size = r + 1;
        return 1;
    }
    return 0;
}
