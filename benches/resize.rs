//! Criterion bench of the `resize` family: the cases of `aural_runtime::ops::resize::bench_cases` on the CPU
//! and, when usable, CUDA — ids `resize/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "resize", aural::runtime::ops::resize::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
