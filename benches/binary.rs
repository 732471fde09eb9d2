//! Criterion bench of the `binary` family: the cases of `aural_runtime::ops::binary::bench_cases` on
//! the CPU and, when usable, CUDA — ids `binary/<backend>/<version>/f32/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "binary", aural::runtime::ops::binary::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
