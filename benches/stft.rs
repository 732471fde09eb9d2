//! Criterion bench of the `stft` family: the cases of `aural_runtime::ops::stft::bench_cases` on the CPU
//! and, when usable, CUDA — ids `stft/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "stft", aural::runtime::ops::stft::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
