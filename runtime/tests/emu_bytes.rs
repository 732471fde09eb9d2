//! The emulator's counted global-memory bytes for the GEMM, softmax and elementwise kernels equal
//! the traffic each kernel documents (its analytic minimum times its stated re-read factor) — the
//! numbers `aural bench --model-gpu` prints.

#[test]
fn counted_bytes_match_documented_traffic() {
    let rows = aural_runtime::bench::gpu_model().unwrap();
    assert!(rows.len() >= 10);
    for r in &rows {
        assert_eq!(
            r.counted(),
            r.documented_bytes,
            "{} {}: counted {} read + {} written, documented {}",
            r.kernel,
            r.case,
            r.bytes_read,
            r.bytes_written,
            r.documented_bytes
        );
        assert!(r.counted() >= r.min_bytes, "{} moves less than the minimum?", r.kernel);
    }
}
