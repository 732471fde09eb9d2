//! Criterion bench of the `fbank` family: the cases of `aural_runtime::ops::fbank::bench_cases` on the CPU
//! and, when usable, CUDA — ids `fbank/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "fbank", aural::runtime::ops::fbank::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
