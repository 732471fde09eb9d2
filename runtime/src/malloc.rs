//! Process-level allocator tuning for programs that run models on the CPU (the `aural` and
//! `trainer` binaries call [`keep_freed_memory`] first thing; an embedding program may too).
//!
//! Every op returns a new tensor, and an AST-base forward allocates and frees ~70 MB of 3–15 MB
//! activations per clip. glibc serves blocks that large with fresh `mmap`s and returns them on free,
//! so each one page-faults again, 4 KiB at a time, with the kernel zeroing every page: ~18,000
//! faults per AST-base forward on the dev box (`perf stat -e page-faults`). Raising the mmap
//! threshold to its maximum (32 MiB on 64-bit glibc) and the trim threshold keeps those blocks in
//! the heap for reuse. Measured (`aural embed --profile 5` on AST-base, 2 threads, dev box): page
//! faults per forward ~18,000 → ~0 (a 1-forward and a 7-forward run now fault equally often: the
//! rest is loading), system time of the run 0.95–1.01 s → 0.65–0.76 s, CPU time per forward
//! 2.62–2.72 → 2.59–2.62 s; the wall-clock difference (~1–2%) is inside this box's noise. Cost:
//! freed memory stays with the process instead of returning to the OS.

/// Keeps freed large blocks in the process heap (glibc on Linux; a no-op elsewhere).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any other thread exists
    // in the binaries (and is thread-safe in glibc anyway). Failure leaves the defaults.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// For training loops: [`keep_freed_memory`], and no block gets its own `mmap` at all
/// (`M_MMAP_MAX` = 0). A training step allocates activations far above glibc's 32 MiB mmap ceiling
/// (an AST-base batch of 4: 60 MB MLP activations, kept until the backward), so every step faulted
/// them in again; from the heap they are reused. Measured (`trainer` bench `sed_train_step`, AST-base
/// AST-SED, batch 4, 2 threads, dev box): 37.0 s → 32.9 s per step, the forward of the teacher
/// 8.8 → 7.8 s. Cost: the heap keeps its peak size (trimmed only above 1 GiB free at the top).
pub fn keep_all_freed_memory() {
    keep_freed_memory();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: as in keep_freed_memory.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
    }
}
