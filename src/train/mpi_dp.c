/* Data parallelism over Open MPI: world/rank from MPI_COMM_WORLD and in-place sum
 * all-reduces of the flat gradient (in buckets, so no single message exceeds INT_MAX
 * elements). Compiled with MPI only when the Makefile found `pkg-config ompi-c`
 * (-DBM_HAVE_MPI); otherwise the functions say MPI is unavailable. MPI is initialised only
 * when the process was started by mpirun (OMPI_COMM_WORLD_SIZE is set), so a plain
 * `baimo train` never pays for MPI start-up. */
#include "baimo/train.h"

#include <stdlib.h>

#ifdef BM_HAVE_MPI
#include <mpi.h>

enum { BUCKET = 1 << 22 };

static void ar_f32(void *user, float *buf, size_t n) {
    for (size_t o = 0; o < n; o += BUCKET) {
        int k = (int)(n - o < BUCKET ? n - o : BUCKET);
        MPI_Allreduce(MPI_IN_PLACE, buf + o, k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
}

static void ar_f64(void *user, double *buf, size_t n) {
    for (size_t o = 0; o < n; o += BUCKET) {
        int k = (int)(n - o < BUCKET ? n - o : BUCKET);
        MPI_Allreduce(MPI_IN_PLACE, buf + o, k, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    }
}

bool bm_dist_mpi_available(void) { return true; }

bm_status bm_dist_mpi_init(bm_dist *d, int *argc, char ***argv, bm_err *err) {
    *d = (bm_dist){0, 1, NULL, NULL, NULL};
    if (!getenv("OMPI_COMM_WORLD_SIZE")) return BM_OK;
    if (MPI_Init(argc, argv) != MPI_SUCCESS)
        return bm_err_set(err, BM_EIO, "mpi: MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->world);
    d->user = d;
    d->allreduce_f32 = ar_f32;
    d->allreduce_f64 = ar_f64;
    return BM_OK;
}

void bm_dist_mpi_fini(bm_dist *d) {
    if (d && d->allreduce_f32) {
        MPI_Finalize();
        d->allreduce_f32 = NULL;
    }
}

#else

bool bm_dist_mpi_available(void) { return false; }

bm_status bm_dist_mpi_init(bm_dist *d, int *argc, char ***argv, bm_err *err) {
    *d = (bm_dist){0, 1, NULL, NULL, NULL};
    if (getenv("OMPI_COMM_WORLD_SIZE") && atoi(getenv("OMPI_COMM_WORLD_SIZE")) > 1)
        return bm_err_set(err, BM_EUNSUPPORTED, "mpi: this baimo was built without MPI "
                          "(install libopenmpi-dev and rebuild) but runs under mpirun with %s "
                          "ranks", getenv("OMPI_COMM_WORLD_SIZE"));
    return BM_OK;
}

void bm_dist_mpi_fini(bm_dist *d) { (void)d; }

#endif
