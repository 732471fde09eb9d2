//! Criterion bench of the `pool` family: the cases of `aural_runtime::ops::pool::bench_cases` on the CPU
//! and, when usable, CUDA — ids `pool/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "pool", aural::runtime::ops::pool::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
