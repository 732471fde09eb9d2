//! Matrix multiplication with a fused bias + GELU epilogue: `act(op(A)·op(B) + bias)`.
//!
//! Shapes: `a` is (…, M, K) — or (…, K, M) with `trans_a`; `b` is (…, K, N) — or (…, N, K) with
//! `trans_b`, which is `nn.Linear`'s weight layout, so [`linear`] is a matmul with `trans_b`. The
//! leading (batch) dims of `a` and `b` must be equal, or `b` is 2-D and shared by every batch. The
//! result is (…, M, N), f32. `bias` is a length-N f32 vector added to every row, then the activation.
//!
//! dtypes: f32 × f32 everywhere. f16 × f16 on GPU devices runs the tensor-core kernel (f32
//! accumulation) and returns f32; on the CPU f16 inputs are converted to f32 and multiplied in f32
//! (see `cpu.rs`), returning f32 too, so a caller gets the same dtype on every device.
//!
//! CPU: `cpu.rs` (the `gemm` crate — pure Rust, runtime SIMD dispatch, BLAS-class speed, no system
//! BLAS — then the epilogue with rayon over rows). CUDA: `cuda.rs` launching `kernels/cuda/matmul.cu`
//! (`matmul_fwd_f32_v1` naive, `matmul_fwd_f32_v2` shared-memory tiled with register micro-tiles,
//! `matmul_fwd_f16_v3` WMMA tensor cores). The dispatcher picks v2 for f32 and v3 for f16.

pub(crate) mod cpu;
mod cuda;

use crate::tensor::same_device;
use crate::{DType, Device, Error, Result, Tensor};

/// Activation applied after the bias (the fused epilogue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    #[default]
    None,
    /// Exact GELU, `0.5·x·(1 + erf(x/√2))` (PyTorch's default `approximate='none'`).
    Gelu,
}

impl Activation {
    /// Code passed to the kernels (`MatmulParams::act`).
    fn code(self) -> i32 {
        match self {
            Activation::None => 0,
            Activation::Gelu => 1,
        }
    }
}

/// Options of [`matmul_opts`]. `Default` is a plain `a·b`.
#[derive(Debug, Clone, Default)]
pub struct MatmulOpts {
    /// `a` is stored (…, K, M): multiply by its transpose.
    pub trans_a: bool,
    /// `b` is stored (…, N, K) (the `nn.Linear` weight layout): multiply by its transpose.
    pub trans_b: bool,
    /// Length-N f32 vector added to every output row.
    pub bias: Option<Tensor>,
    pub act: Activation,
}

/// The resolved geometry of one call (shared by the CPU and CUDA paths).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Geometry {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub batch: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    /// Elements between consecutive matrices (0 for a shared 2-D `b`).
    pub a_batch_stride: usize,
    pub b_batch_stride: usize,
    /// Output shape: a's batch dims, then (M, N).
    pub out_shape: Vec<usize>,
}

const OP: &str = "matmul";

/// Checks shapes, dtypes and devices; returns the geometry.
fn geometry(a: &Tensor, b: &Tensor, opts: &MatmulOpts) -> Result<Geometry> {
    let (sa, sb) = (a.shape(), b.shape());
    let both = || format!("a {sa:?}{} and b {sb:?}{}", if opts.trans_a { " (trans_a)" } else { "" }, if opts.trans_b { " (trans_b)" } else { "" });
    if sa.len() < 2 || sb.len() < 2 {
        return Err(Error::shape(OP, format!("both operands need rank ≥ 2, got {}", both())));
    }
    let (ra, rb) = (sa.len(), sb.len());
    let (m, ka) = if opts.trans_a { (sa[ra - 1], sa[ra - 2]) } else { (sa[ra - 2], sa[ra - 1]) };
    let (kb, n) = if opts.trans_b { (sb[rb - 1], sb[rb - 2]) } else { (sb[rb - 2], sb[rb - 1]) };
    if ka != kb {
        return Err(Error::shape(OP, format!("inner dimensions differ ({ka} vs {kb}) for {}", both())));
    }
    let (ba, bb) = (&sa[..ra - 2], &sb[..rb - 2]);
    if !bb.is_empty() && ba != bb {
        return Err(Error::shape(OP, format!("batch dimensions {ba:?} and {bb:?} differ (b may also be 2-D, shared by every batch) for {}", both())));
    }
    let batch: usize = ba.iter().product();
    let mut out_shape = ba.to_vec();
    out_shape.extend([m, n]);
    match (a.dtype(), b.dtype()) {
        (DType::F32, DType::F32) | (DType::F16, DType::F16) => {}
        (x, y) => {
            return Err(Error::DType { op: OP, got: if x == DType::F32 { y } else { x }, msg: format!("a is {x} and b is {y}: both must be f32, or both f16") })
        }
    }
    if let Some(bias) = &opts.bias {
        if bias.shape() != [n] {
            return Err(Error::shape(OP, format!("bias {:?} must be [{n}] (N) for {}", bias.shape(), both())));
        }
        if bias.dtype() != DType::F32 {
            return Err(Error::DType { op: OP, got: bias.dtype(), msg: "bias must be f32".into() });
        }
    }
    Ok(Geometry {
        m,
        n,
        k: ka,
        batch,
        trans_a: opts.trans_a,
        trans_b: opts.trans_b,
        a_batch_stride: m * ka,
        b_batch_stride: if bb.is_empty() { 0 } else { ka * n },
        out_shape,
    })
}

/// `a · b` (no transposes, no epilogue).
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    matmul_opts(a, b, &MatmulOpts::default())
}

/// `act(op(a) · op(b) + bias)`; see the module doc for shapes and dtypes.
pub fn matmul_opts(a: &Tensor, b: &Tensor, opts: &MatmulOpts) -> Result<Tensor> {
    run(a, b, opts, None)
}

/// Like [`matmul_opts`] on a GPU device, but forcing kernel version `version` (1 or 2 for f32, 3 for
/// f16); benches and tests. On the CPU the version is ignored.
pub fn matmul_version(a: &Tensor, b: &Tensor, opts: &MatmulOpts, version: u32) -> Result<Tensor> {
    run(a, b, opts, Some(version))
}

fn run(a: &Tensor, b: &Tensor, opts: &MatmulOpts, version: Option<u32>) -> Result<Tensor> {
    let mut ts = vec![a, b];
    if let Some(bias) = &opts.bias {
        ts.push(bias);
    }
    let dev = same_device(OP, &ts)?;
    let g = geometry(a, b, opts)?;
    match dev {
        Device::Cpu => {
            let bias = opts.bias.as_ref().map(|t| t.cpu_f32()).transpose()?;
            let out = match a.dtype() {
                DType::F32 => cpu::matmul(a.cpu_f32()?, b.cpu_f32()?, bias, opts.act, &g),
                DType::F16 => {
                    let up = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.cpu_f16()?.iter().map(|x| x.to_f32()).collect()) };
                    cpu::matmul(&up(a)?, &up(b)?, bias, opts.act, &g)
                }
            };
            Tensor::from_vec(out, &g.out_shape)
        }
        Device::Cuda(_) | Device::Emu => cuda::matmul(a, b, opts.bias.as_ref(), opts.act, &g, version),
    }
}

/// `nn.Linear`: `x · wᵀ + bias` with `w` of shape (N, K) and `x` of shape (…, K), any rank ≥ 1
/// (leading dims are flattened into rows, then restored). Returns (…, N).
pub fn linear(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    linear_act(x, w, bias, Activation::None)
}

/// [`linear`] followed by `act` (fused): `act(x · wᵀ + bias)`.
pub fn linear_act(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, act: Activation) -> Result<Tensor> {
    let sx = x.shape();
    if sx.is_empty() || w.rank() != 2 {
        return Err(Error::shape("linear", format!("x {sx:?} needs rank ≥ 1 and w {:?} must be 2-D (N, K)", w.shape())));
    }
    let k = sx[sx.len() - 1];
    if w.shape()[1] != k {
        return Err(Error::shape("linear", format!("x {sx:?} has K = {k} but w {:?} is (N, K) with K = {}", w.shape(), w.shape()[1])));
    }
    let rows = x.numel() / k.max(1);
    let rows = if k == 0 { sx[..sx.len() - 1].iter().product() } else { rows };
    let x2 = x.reshape(&[rows, k])?;
    let n = w.shape()[0];
    // On the CPU an up-projection (N ≥ 4K) over many rows is faster with the weight transposed once
    // than read transposed by gemm: AST-base fc1 at 4856 rows 202 → 174 ms, the copy ~2 ms
    // (`examples/linear_train_layout.rs`); other shapes measured equal, so they keep the strided read.
    let y = if x.device() == Device::Cpu && rows >= 512 && n >= 4 * k && w.dtype() == DType::F32 {
        let wt = crate::ops::shape::transpose(w, 0, 1)?;
        matmul_opts(&x2, &wt, &MatmulOpts { trans_a: false, trans_b: false, bias: bias.cloned(), act })?
    } else {
        matmul_opts(&x2, w, &MatmulOpts { trans_a: false, trans_b: true, bias: bias.cloned(), act })?
    };
    let mut out_shape = sx[..sx.len() - 1].to_vec();
    out_shape.push(n);
    y.reshape(&out_shape)
}

/// An `nn.Linear` layer whose weight is laid out for its device once, at construction: on the CPU
/// the (N, K) weight is stored transposed, (K, N) row-major, and multiplied without a transpose — the
/// `gemm` crate packs that layout faster. Measured on the 2-core dev box (AST-base shapes, M = 1214
/// tokens, `cargo run --release -p aural-runtime --example linear_layout`): MLP down-projection K = 3072 → N = 768 42–52 ms with the
/// transposed read vs 27–30 ms pre-transposed; up-projection 31–34 vs 28–37 ms; QKV and out-projection
/// within noise. GPU devices keep torch's (N, K) layout, which their kernels read as trans_b.
#[derive(Debug, Clone)]
pub struct Linear {
    /// (K, N) on the CPU, (N, K) elsewhere.
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    kn: bool,
    n: usize,
}

impl Linear {
    /// From torch's weight (N, K) and optional bias (N), on the weight's device.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Linear> {
        if weight.rank() != 2 {
            return Err(Error::shape("linear", format!("weight {:?} must be 2-D (N, K)", weight.shape())));
        }
        let n = weight.shape()[0];
        if let Some(b) = &bias {
            if b.shape() != [n] {
                return Err(Error::shape("linear", format!("bias {:?} must be [{n}] for weight {:?}", b.shape(), weight.shape())));
            }
        }
        let kn = weight.device().is_cpu() && weight.dtype() == DType::F32;
        let weight = if kn { crate::ops::shape::transpose(&weight, 0, 1)? } else { weight };
        Ok(Linear { weight, bias, kn, n })
    }

    pub fn out_features(&self) -> usize {
        self.n
    }

    /// `act(x · wᵀ + bias)` for x (…, K) → (…, N).
    pub fn forward(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        if !self.kn {
            return linear_act(x, &self.weight, self.bias.as_ref(), act);
        }
        let sx = x.shape();
        let k = self.weight.shape()[0];
        if sx.is_empty() || sx[sx.len() - 1] != k {
            return Err(Error::shape("linear", format!("x {sx:?} must end in K = {k} (weight is {} × {k})", self.n)));
        }
        let rows: usize = sx[..sx.len() - 1].iter().product();
        let opts = MatmulOpts { trans_a: false, trans_b: false, bias: self.bias.clone(), act };
        let y = matmul_opts(&x.reshape(&[rows, k])?, &self.weight, &opts)?;
        let mut out_shape = sx[..sx.len() - 1].to_vec();
        out_shape.push(self.n);
        y.reshape(&out_shape)
    }
}

/// Benchmark cases: the AST QKV-sized GEMM (M = 1210 tokens, K = 768, N = 768) and the MLP
/// up-projection (M = 1210, K = 768, N = 3072); f32 on the CPU; on a real GPU each kernel version for
/// f32 and v3 for f16. `Work::Flops(2·M·N·K)`.
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    use crate::testing::rand_tensor;
    let mut out = Vec::new();
    for (case, m, k, n) in [("768x768x1210", 1210usize, 768usize, 768usize), ("1210x768x3072", 1210, 768, 3072)] {
        let (a, b) = (rand_tensor(&[m, k], 1), rand_tensor(&[k, n], 2));
        let work = Work::Flops(2.0 * (m * n * k) as f64);
        let run = |t: &[Tensor], v: Option<u32>| match v {
            None => matmul(&t[0], &t[1]),
            Some(v) => matmul_version(&t[0], &t[1], &MatmulOpts::default(), v),
        };
        // f32 accumulation over K: rounding grows like sqrt(K); f16 inputs are compared with the CPU
        // product of the same f16-rounded inputs.
        let tol = 1e-4 * (k as f32).sqrt();
        out.extend(version_cases(OP, case, device, DType::F32, work, &[1, 2], (tol, tol), vec![a.clone(), b.clone()], run)?);
        if !device.is_cpu() {
            let half = vec![crate::ops::unary::to_f16(&a)?, crate::ops::unary::to_f16(&b)?];
            out.extend(version_cases(OP, case, device, DType::F16, work, &[3], (10.0 * tol, 10.0 * tol), half, run)?);
        }
    }
    Ok(out)
}
