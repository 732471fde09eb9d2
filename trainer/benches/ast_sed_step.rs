//! One CPU training step (forward + backward + AdamW) of the small AST-SED of the golden fixtures
//! (tests/golden/fixtures/ast_sed_small: AST 64 wide, 2 blocks, 48 mel × 128 frames, FTE 2 × 4 heads,
//! ×3 upsampling, BiGRU 24, 5 classes), batch 2 with the fixture's targets, loss = BCE(strong) +
//! 0.5·BCE(weak), AdamW(lr 1e-4, wd 0.01) over every parameter — the step
//! `scripts/bench_torch_ast_sed_step.py` times in PyTorch on the same machine.
//!
//! Run: `cargo bench -p aural-trainer --bench ast_sed_step` (criterion id
//! `train_step/cpu/v1/f32/ast_sed_small_b2`).

use aural_autograd::optim::{AdamW, ParamGroup};
use aural_autograd::Tape;
use aural_models::ast_sed::train::TrainableAstSed;
use aural_runtime::testing::{fixture, fixture_path};
use aural_runtime::Device;
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let mut m = TrainableAstSed::load(fixture_path("ast_sed_small"), Device::Cpu).unwrap();
    let f = fixture("ast_sed_grads.safetensors");
    let (x, ts, tw) = (f["input_values"].clone(), f["targets/strong"].clone(), f["targets/weak"].clone());
    let mut opt = AdamW::new(vec![ParamGroup::new(m.store.names(), 1e-4, 0.01)]);
    let mut g = c.benchmark_group("train_step");
    g.sample_size(20).measurement_time(std::time::Duration::from_secs(6));
    g.bench_function("cpu/v1/f32/ast_sed_small_b2", |b| {
        b.iter(|| {
            let tape = Tape::new();
            let out = m.forward(&tape, x.clone()).unwrap();
            let loss = m.supervised_loss(&tape, &out, ts.clone(), tw.clone()).unwrap();
            let grads = tape.backward(&loss).unwrap();
            opt.step(&mut m.store, &grads).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
