//! Criterion bench of the `adamw` family: the cases of `aural_runtime::ops::adamw::bench_cases` on the CPU
//! and, when usable, CUDA — ids `adamw/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "adamw", aural::runtime::ops::adamw::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
