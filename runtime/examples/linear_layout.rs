//! Times the AST-base linear layers (M = 1214 tokens) on the CPU with the weight read transposed
//! (torch's (N, K) layout, trans_b) and pre-transposed (K, N): the measurement behind `ops::matmul::Linear`.
//! Run: `cargo run --release -p aural-runtime --example linear_layout`.
use aural_runtime::ops::matmul::{matmul_opts, MatmulOpts};
use aural_runtime::testing::rand_tensor;
fn main() {
    let x = rand_tensor(&[1214, 3072], 1);
    let w = rand_tensor(&[768, 3072], 2); // (N, K): x·Wᵀ
    let wt = aural_runtime::ops::shape::transpose(&w, 0, 1).unwrap(); // (K, N)
    let xq = rand_tensor(&[1214, 768], 5);
    let wq = rand_tensor(&[2304, 768], 6);
    let wqt = aural_runtime::ops::shape::transpose(&wq, 0, 1).unwrap();
    let wo = rand_tensor(&[768, 768], 7);
    let wot = aural_runtime::ops::shape::transpose(&wo, 0, 1).unwrap();
    let x1 = rand_tensor(&[1214, 768], 3);
    let w1 = rand_tensor(&[3072, 768], 4);
    let w1t = aural_runtime::ops::shape::transpose(&w1, 0, 1).unwrap();
    for (name, a, b, tb) in [
        ("fc2 trans_b", &x, &w, true),
        ("fc2 kxn", &x, &wt, false),
        ("fc1 trans_b", &x1, &w1, true),
        ("fc1 kxn", &x1, &w1t, false),
        ("qkv trans_b", &xq, &wq, true),
        ("qkv kxn", &xq, &wqt, false),
        ("o trans_b", &xq, &wo, true),
        ("o kxn", &xq, &wot, false),
    ] {
        let o = MatmulOpts { trans_b: tb, ..Default::default() };
        let _ = matmul_opts(a, b, &o).unwrap();
        let mut ts = vec![];
        for _ in 0..7 {
            let t = std::time::Instant::now();
            let _ = matmul_opts(a, b, &o).unwrap();
            ts.push(t.elapsed().as_secs_f64());
        }
        ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let fl = 2.0 * a.shape()[0] as f64 * a.shape()[1] as f64 * (b.numel() / a.shape()[1]) as f64;
        println!("{name}: median {:.2} ms, {:.0} GFLOP/s", ts[3] * 1e3, fl / ts[3] / 1e9);
    }
}
