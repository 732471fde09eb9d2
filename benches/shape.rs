//! Criterion bench of the `shape` family: the cases of `aural_runtime::ops::shape::bench_cases` on the CPU
//! and, when usable, CUDA — ids `shape/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "shape", aural::runtime::ops::shape::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
