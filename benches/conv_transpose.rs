//! Criterion bench of the `conv_transpose` family: the cases of `aural_runtime::ops::conv_transpose::bench_cases` on the CPU
//! and, when usable, CUDA — ids `conv_transpose/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "conv_transpose", aural::runtime::ops::conv_transpose::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
