//! Criterion bench of the `groupnorm` family: the cases of `aural_runtime::ops::groupnorm::bench_cases` on the CPU
//! and, when usable, CUDA — ids `groupnorm/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "groupnorm", aural::runtime::ops::groupnorm::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
