#include <malloc.h>

/// Keeps freed memory in the process for reuse: glibc serves blocks above its mmap threshold
/// (128 KiB by default) with fresh mmaps and returns them on free, so every large buffer would be
/// page-faulted in again. 32 MiB is the largest threshold glibc accepts on 64-bit.
static inline void ssmamba_keep_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
}
