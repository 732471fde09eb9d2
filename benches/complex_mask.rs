//! Criterion bench of the `complex_mask` family: the cases of `aural_runtime::ops::complex_mask::bench_cases` on the CPU
//! and, when usable, CUDA — ids `complex_mask/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "complex_mask", aural::runtime::ops::complex_mask::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
