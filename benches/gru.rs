//! Criterion bench of the `gru` family: the cases of `aural_runtime::ops::gru::bench_cases` on the CPU
//! and, when usable, CUDA — ids `gru/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "gru", aural::runtime::ops::gru::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
