//! Criterion bench of the `patch_embed` family: the cases of `aural_runtime::ops::patch_embed::bench_cases` on the CPU
//! and, when usable, CUDA — ids `patch_embed/<backend>/<version>/<dtype>/<case>`.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::criterion_family(c, "patch_embed", aural::runtime::ops::patch_embed::bench_cases);
}

criterion_group!(benches, bench);
criterion_main!(benches);
