#include <oneapi/dnnl/dnnl.h>

/* Debian's oneDNN runs its kernels on OpenMP threads; the engine calls it from its own workers,
   one thread per call, and sets that with OpenMP's per-thread control (libgomp, which libdnnl
   links). Declared here because Swift's clang does not see gcc's <omp.h>. */
void omp_set_num_threads(int num_threads);
