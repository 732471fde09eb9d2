//! Criterion bench of the `matmul` family: the cases of `aural_runtime::ops::matmul::bench_cases` on the CPU
//! and, when usable, CUDA — ids `matmul/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "matmul", aural::runtime::ops::matmul::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
