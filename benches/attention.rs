//! Criterion bench of the `attention` family: the cases of `aural_runtime::ops::attention::bench_cases` on the CPU
//! and, when usable, CUDA — ids `attention/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "attention", aural::runtime::ops::attention::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
