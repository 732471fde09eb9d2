//! One CPU training step of a pre-LN transformer block (forward + backward + AdamW), the same step as
//! `scripts/bench_torch_train_step.py` times in PyTorch (2 threads): B = 4, T = 128, D = 256, 4 heads,
//! MLP 1024, MSE loss, AdamW (lr 1e-4, wd 0.01) over the block's 16 parameters.
//!
//! Run: `cargo bench -p aural-autograd --bench train_step` (criterion id
//! `train_step/cpu/v1/f32/block_b4_t128_d256`).

use aural_autograd::optim::{AdamW, ParamGroup};
use aural_autograd::testing::{block_forward, block_params};
use aural_autograd::{ops, Tape};
use aural_runtime::testing::rand_tensor;
use aural_runtime::Device;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const B: usize = 4;
const T: usize = 128;
const D: usize = 256;
const HEADS: usize = 4;
const M: usize = 1024;

fn bench(c: &mut Criterion) {
    let mut store = block_params(D, M, 1, Device::Cpu).unwrap();
    let mut opt = AdamW::new(vec![ParamGroup::new(store.names(), 1e-4, 0.01)]);
    let x = rand_tensor(&[B, T, D], 2);
    let target = rand_tensor(&[B, T, D], 3);
    // Forward+backward FLOPs ≈ 3 × forward (GEMMs only): forward = 2·B·T·(4·D² + 2·D·M) + 4·B·T²·D.
    let fwd = 2.0 * (B * T) as f64 * (4.0 * (D * D) as f64 + 2.0 * (D * M) as f64) + 4.0 * (B * T * T * D) as f64;
    let mut g = c.benchmark_group("train_step");
    g.sample_size(10).measurement_time(std::time::Duration::from_secs(8));
    g.throughput(Throughput::Elements((3.0 * fwd) as u64));
    g.bench_function(format!("cpu/v1/f32/block_b{B}_t{T}_d{D}"), |bch| {
        bch.iter(|| {
            let tape = Tape::new();
            let y = block_forward(&store, &tape.constant(x.clone()), HEADS).unwrap();
            let loss = ops::mse(&y, &tape.constant(target.clone())).unwrap();
            let grads = tape.backward(&loss).unwrap();
            opt.step(&mut store, &grads).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
