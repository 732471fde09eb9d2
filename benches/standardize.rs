//! Criterion bench of the `standardize` family: the cases of `aural_runtime::ops::standardize::bench_cases` on the CPU
//! and, when usable, CUDA — ids `standardize/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "standardize", aural::runtime::ops::standardize::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
