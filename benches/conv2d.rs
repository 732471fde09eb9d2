//! Criterion bench of the `conv2d` family: the cases of `aural_runtime::ops::conv2d::bench_cases` on the CPU
//! and, when usable, CUDA — ids `conv2d/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "conv2d", aural::runtime::ops::conv2d::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
