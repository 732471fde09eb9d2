//! Criterion bench of the `layernorm` family: the cases of `aural_runtime::ops::layernorm::bench_cases` on the CPU
//! and, when usable, CUDA — ids `layernorm/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "layernorm", aural::runtime::ops::layernorm::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
