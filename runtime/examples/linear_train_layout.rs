//! Times the three GEMMs of a training step's linear layer on the CPU for the AST-base MLP down-
//! projection at batch 4 (M = 4856 tokens, K = 3072 → N = 768) in each operand layout: the forward
//! y = x·Wᵀ (W read transposed, or transposed first), dX = dY·W, and dW = dYᵀ·X (dY read transposed,
//! transposed first, or dWᵀ = Xᵀ·dY then transposed), and the bias gradient Σ_rows dY — the measurement behind `ops::matmul::linear_act`
//! and the autograd linear backward. Run: `cargo run --release -p aural-runtime --example linear_train_layout`.
use aural_runtime::ops::matmul::{matmul_opts, MatmulOpts};
use aural_runtime::ops::shape::transpose;
use aural_runtime::testing::rand_tensor;
use aural_runtime::Tensor;

fn time(name: &str, flops: f64, f: impl Fn() -> Tensor) {
    let _ = f();
    let mut ts = vec![];
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let _ = f();
        ts.push(t.elapsed().as_secs_f64());
    }
    ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("{name}: median {:.1} ms, {:.0} GFLOP/s", ts[2] * 1e3, flops / ts[2] / 1e9);
}

fn main() {
    for (m, k, n) in [(4856usize, 3072usize, 768usize), (4856, 768, 3072), (4856, 768, 2304)] {
        println!("M = {m}, K = {k}, N = {n}");
        let x = rand_tensor(&[m, k], 1);
        let w = rand_tensor(&[n, k], 2);
        let g = rand_tensor(&[m, n], 3);
        let fl = 2.0 * (m * n * k) as f64;
        let mm = |a: &Tensor, b: &Tensor, ta: bool, tb: bool| matmul_opts(a, b, &MatmulOpts { trans_a: ta, trans_b: tb, ..Default::default() }).unwrap();
        time("  forward x·Wᵀ (trans_b)", fl, || mm(&x, &w, false, true));
        time("  forward x·(Wᵀ) transposed first", fl, || mm(&x, &transpose(&w, 0, 1).unwrap(), false, false));
        time("  dX = dY·W", fl, || mm(&g, &w, false, false));
        time("  dW = dYᵀ·X (trans_a)", fl, || mm(&g, &x, true, false));
        time("  dW = (dY transposed first)·X", fl, || mm(&transpose(&g, 0, 1).unwrap(), &x, false, false));
        time("  dW = (Xᵀ·dY)ᵀ", fl, || transpose(&mm(&x, &g, true, false), 0, 1).unwrap());
        time("  db = Σ_rows dY (reduce::sum over dim 0)", (m * n) as f64, || aural_runtime::ops::reduce::sum(&g, 0, false).unwrap());
    }
}
