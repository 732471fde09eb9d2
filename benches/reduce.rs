//! Criterion bench of the `reduce` family: the cases of `aural_runtime::ops::reduce::bench_cases` on the CPU
//! and, when usable, CUDA — ids `reduce/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "reduce", aural::runtime::ops::reduce::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
