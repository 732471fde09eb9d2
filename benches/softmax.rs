//! Criterion bench of the `softmax` family: the cases of `aural_runtime::ops::softmax::bench_cases` on the CPU
//! and, when usable, CUDA — ids `softmax/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "softmax", aural::runtime::ops::softmax::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
