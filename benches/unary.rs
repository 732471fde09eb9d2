//! Criterion bench of the `unary` family: the cases of `aural_runtime::ops::unary::bench_cases` on the CPU
//! and, when usable, CUDA — ids `unary/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "unary", aural::runtime::ops::unary::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
