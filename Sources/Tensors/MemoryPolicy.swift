import CMalloc

/// Process-wide allocator settings for numeric work.
public enum MemoryPolicy {
    /// Keeps freed tensor memory in the process for reuse. By default glibc serves large blocks
    /// with fresh `mmap`s and returns them on free, so every activation tensor of every step
    /// page-faults its memory in again (measured: ~10 % of a model step zeroing new pages).
    /// The one process-wide policy: each program's `main` sets it before any work (the `ssmamba`
    /// command, the benchmarks). Idempotent.
    public static func keepFreedMemory() {
        _ = configured
    }

    private static let configured: Void = ssmamba_keep_freed_memory()
}
