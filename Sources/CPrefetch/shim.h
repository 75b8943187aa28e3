/// A software prefetch (the compiler's builtin; Swift has no spelling for it): asks for the cache
/// line holding `address` ahead of a load, for strided reads the hardware prefetcher misses.
static inline void ssmamba_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }
