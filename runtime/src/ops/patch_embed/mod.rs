//! The `patch_embed` op family (placeholder: being written).
use crate::{bench::BenchCase, Device, Result};

/// Benchmark cases of this family.
pub fn bench_cases(_device: Device) -> Result<Vec<BenchCase>> {
    Ok(Vec::new())
}
