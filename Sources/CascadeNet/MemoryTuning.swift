import CCascadeShims

/// Process-wide allocator settings for programs that move bulk data.
public enum MemoryTuning {
    /// Keeps glibc from returning freed buffers to the kernel after each message: bulk
    /// transfers allocate and free 256 KiB–4 MiB buffers continuously, and with the default
    /// dynamic thresholds every one of them costs an mmap/munmap (or a heap trim) and a page
    /// fault per 4 KiB on reuse. Costs at most ~128 MiB of retained free memory.
    public static func forBulkTransfers() {
        cascade_tune_malloc_for_bulk()
    }
}
