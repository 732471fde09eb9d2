//! Criterion bench of the `melspec` family: the cases of `aural_runtime::ops::melspec::bench_cases` on the
//! CPU and, when usable, CUDA — ids `melspec/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "melspec", aural::runtime::ops::melspec::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
