/// MPI for Swift: Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, …) are macros that take
/// the address of a global, which Swift does not import; these functions hand them over.
#include <mpi.h>

static inline MPI_Comm ssmamba_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype ssmamba_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype ssmamba_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype ssmamba_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype ssmamba_mpi_int(void) { return MPI_INT; }
static inline MPI_Op ssmamba_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op ssmamba_mpi_max(void) { return MPI_MAX; }
static inline MPI_Errhandler ssmamba_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline void *ssmamba_mpi_in_place(void) { return MPI_IN_PLACE; }
