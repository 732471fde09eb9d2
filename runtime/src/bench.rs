//! The benchmark harness shared by `aural bench` and the criterion benches (`benches/<family>.rs`).
//!
//! Each op family exposes `bench_cases(device) -> Result<Vec<BenchCase>>` in its `mod.rs`: the real
//! model shapes it is used at, per kernel version. Both front ends time the same closures, so the
//! criterion ids (`<op>/<backend>/v<N>/<dtype>/<case>`) and `aural bench` rows name the same work.
//! On a GPU the closure synchronises the stream, inputs are created and kernels compiled outside the
//! timed region, and results are validated against the CPU once before timing (`check`).

use std::time::{Duration, Instant};

use crate::{DType, Device, Error, Result, Tensor};

/// What one repetition of a case does, for throughput.
#[derive(Debug, Clone, Copy)]
pub enum Work {
    /// Floating-point operations (GEMM, attention, conv): reported as GFLOP/s.
    Flops(f64),
    /// Bytes that must move at minimum (memory-bound ops): reported as GB/s.
    Bytes(f64),
}

/// One benchmark case.
pub struct BenchCase {
    /// Op family (e.g. `matmul`).
    pub op: &'static str,
    /// Shape description (e.g. `768x768x1210`).
    pub case: String,
    pub device: Device,
    /// Kernel version (`v1`, `v2`, …; `cpu` for the CPU backend).
    pub version: String,
    pub dtype: DType,
    pub work: Work,
    /// Runs one repetition (and waits for the GPU).
    pub run: Box<dyn FnMut() -> Result<()>>,
    /// Optional validation against the CPU reference, run once before timing.
    pub check: Option<Box<dyn FnMut() -> Result<()>>>,
}

impl BenchCase {
    /// The criterion id `<op>/<backend>/<version>/<dtype>/<case>`.
    pub fn id(&self) -> String {
        let backend = match self.device {
            Device::Cpu => "cpu".to_string(),
            Device::Cuda(n) => format!("cuda{n}"),
            Device::Emu => "emu".to_string(),
        };
        format!("{}/{}/{}/{}/{}", self.op, backend, self.version, self.dtype, self.case)
    }
}

/// The usual cases of one shape: on the CPU one case (the dispatching op, version `cpu`); on a GPU
/// one case per kernel version in `versions`, each validated once against the CPU reference
/// (|got − want| ≤ atol + rtol·|want|) before timing, the stream synchronised after every repetition.
/// The emulator is for correctness, not timing: no cases there.
///
/// `inputs` are CPU tensors; they are moved to `device` once, outside the timed region.
/// `run(inputs, None)` is the op's default dispatch, `run(inputs, Some(v))` forces kernel version v.
#[allow(clippy::too_many_arguments)]
pub fn version_cases<F>(
    op: &'static str,
    case: impl Into<String>,
    device: Device,
    dtype: DType,
    work: Work,
    versions: &[u32],
    (atol, rtol): (f32, f32),
    inputs: Vec<Tensor>,
    run: F,
) -> Result<Vec<BenchCase>>
where
    F: Fn(&[Tensor], Option<u32>) -> Result<Tensor> + Clone + 'static,
{
    if device == Device::Emu {
        return Ok(Vec::new());
    }
    let case = case.into();
    let dev_inputs = inputs.iter().map(|t| t.to_device(device)).collect::<Result<Vec<_>>>()?;
    let be = if device.is_cpu() { None } else { Some(crate::gpu::backend(device)?) };
    let chosen: Vec<Option<u32>> = if device.is_cpu() { vec![None] } else { versions.iter().map(|&v| Some(v)).collect() };
    let mut out = Vec::new();
    for v in chosen {
        let check = v.map(|v| {
            let (cpu_in, dev_in, f) = (inputs.clone(), dev_inputs.clone(), run.clone());
            Box::new(move || {
                let want = f(&cpu_in, None)?.to_vec()?;
                let got = f(&dev_in, Some(v))?.to_vec()?;
                check_close(&format!("{op} v{v}"), &got, &want, atol, rtol)
            }) as Box<dyn FnMut() -> Result<()>>
        });
        let (dev_in, f, be) = (dev_inputs.clone(), run.clone(), be.clone());
        out.push(BenchCase {
            op,
            case: case.clone(),
            device,
            version: v.map(|v| format!("v{v}")).unwrap_or_else(|| "cpu".into()),
            dtype,
            work,
            run: Box::new(move || {
                f(&dev_in, v)?;
                if let Some(be) = &be {
                    be.synchronize()?;
                }
                Ok(())
            }),
            check,
        });
    }
    Ok(out)
}

/// A bench validation: |got − want| ≤ atol + rtol·|want| everywhere (NaN matches NaN), else an error
/// naming the first mismatch.
pub fn check_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) -> Result<()> {
    if got.len() != want.len() {
        return Err(Error::Msg(format!("{what}: {} values vs the CPU's {}", got.len(), want.len())));
    }
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= atol + rtol * w.abs();
        if !ok {
            return Err(Error::Msg(format!("{what}: differs from the CPU at {i}: got {g}, want {w}")));
        }
    }
    Ok(())
}

/// The result of timing one case.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub id: String,
    pub median_s: f64,
    pub min_s: f64,
    pub reps: usize,
    /// GFLOP/s or GB/s, by `unit`.
    pub throughput: f64,
    pub unit: &'static str,
}

/// Times a case: validates it, warms up, then repeats until `budget` has passed (at least 3 reps).
pub fn measure(case: &mut BenchCase, budget: Duration) -> Result<Measurement> {
    if let Some(check) = case.check.as_mut() {
        check()?;
    }
    (case.run)()?; // warm-up (first-use compilation, caches)
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || (start.elapsed() < budget && times.len() < 1000) {
        let t = Instant::now();
        (case.run)()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median_s = times[times.len() / 2];
    let (throughput, unit) = match case.work {
        Work::Flops(f) => (f / median_s / 1e9, "GFLOP/s"),
        Work::Bytes(b) => (b / median_s / 1e9, "GB/s"),
    };
    Ok(Measurement { id: case.id(), median_s, min_s: times[0], reps: times.len(), throughput, unit })
}

/// Every op family with benchmark cases, by name.
pub fn families() -> Vec<(&'static str, fn(Device) -> Result<Vec<BenchCase>>)> {
    use crate::ops::*;
    vec![
        ("binary", binary::bench_cases),
        ("unary", unary::bench_cases),
        ("matmul", matmul::bench_cases),
        ("softmax", softmax::bench_cases),
        ("layernorm", layernorm::bench_cases),
        ("reduce", reduce::bench_cases),
        ("shape", shape::bench_cases),
        ("fbank", fbank::bench_cases),
        ("stft", stft::bench_cases),
        ("attention", attention::bench_cases),
        ("patch_embed", patch_embed::bench_cases),
        ("gru", gru::bench_cases),
        ("adamw", adamw::bench_cases),
        ("conv2d", conv2d::bench_cases),
        ("conv_transpose", conv_transpose::bench_cases),
        ("pool", pool::bench_cases),
        ("complex_mask", complex_mask::bench_cases),
        ("melspec", melspec::bench_cases),
        ("resize", resize::bench_cases),
        ("groupnorm", groupnorm::bench_cases),
        ("standardize", standardize::bench_cases),
    ]
}

/// Devices to time on by default: the CPU, and CUDA device 0 when usable.
pub fn default_devices() -> Vec<Device> {
    let mut v = vec![Device::Cpu];
    if crate::gpu::probe(0).is_ok() {
        v.push(Device::Cuda(0));
    }
    v
}

/// One row of the GPU performance model: a kernel run under the emulator, its counted global-memory
/// traffic, the analytic minimum, and what both mean on an H100 at 3.35 TB/s.
#[derive(Debug, Clone)]
pub struct ModelRow {
    pub kernel: String,
    pub case: String,
    /// Counted by the emulator (every load and store of the launch).
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// The minimum any kernel must move (each input once, each output once).
    pub min_bytes: f64,
    /// The kernel's documented traffic (its re-read factor applied), which the count must equal.
    pub documented_bytes: f64,
    pub flops: f64,
}

/// H100 SXM HBM3 bandwidth used by the model.
pub const H100_BYTES_PER_S: f64 = 3.35e12;

impl ModelRow {
    pub fn counted(&self) -> f64 {
        (self.bytes_read + self.bytes_written) as f64
    }
    /// Counted / minimum: how many times the kernel moves the data it must move once.
    pub fn reread_factor(&self) -> f64 {
        self.counted() / self.min_bytes
    }
    /// Time if every counted byte came from HBM at full bandwidth (an upper bound on memory time:
    /// re-reads that hit L1/L2 cost less).
    pub fn hbm_time_s(&self) -> f64 {
        self.counted() / H100_BYTES_PER_S
    }
}

/// Runs the modelled kernels (GEMM, softmax, elementwise) under the emulator on small shapes that
/// exercise partial tiles, and returns their counted traffic beside the documented formulas.
pub fn gpu_model() -> Result<Vec<ModelRow>> {
    use crate::ops::{binary, matmul, softmax};
    use crate::testing::rand_tensor;
    let dev = Device::Emu;
    let be = crate::gpu::backend(dev)?;
    let bytes = |k: &str| be.emu_bytes(k).ok_or_else(|| crate::Error::Msg(format!("no emulated launch of {k} recorded")));
    let mut rows = Vec::new();

    // GEMM (M, K, N) with partial 64-tiles: v1 reads A and B once per output element (K each),
    // v2/v3 re-read A once per 64-column tile of C and B once per 64-row tile.
    let (m, k, n) = (70usize, 40usize, 90usize);
    let a = rand_tensor(&[m, k], 1).to_device(dev)?;
    let b = rand_tensor(&[k, n], 2).to_device(dev)?;
    let (mf, kf, nf) = (m as f64, k as f64, n as f64);
    let flops = 2.0 * mf * nf * kf;
    let tiles = |x: usize| x.div_ceil(64) as f64;
    for (v, elt) in [(1u32, 4.0), (2, 4.0), (3, 2.0)] {
        let (a, b) = if v == 3 { (crate::ops::unary::to_f16(&a)?, crate::ops::unary::to_f16(&b)?) } else { (a.clone(), b.clone()) };
        matmul::matmul_version(&a, &b, &matmul::MatmulOpts::default(), v)?;
        let kernel = format!("matmul_fwd_{}_v{v}", if v == 3 { "f16" } else { "f32" });
        let (r, w) = bytes(&kernel)?;
        let documented = match v {
            1 => elt * 2.0 * mf * nf * kf + 4.0 * mf * nf,
            _ => elt * (mf * kf * tiles(n) + kf * nf * tiles(m)) + 4.0 * mf * nf,
        };
        rows.push(ModelRow {
            kernel,
            case: format!("{m}x{k}x{n}"),
            bytes_read: r,
            bytes_written: w,
            min_bytes: elt * (mf * kf + kf * nf) + 4.0 * mf * nf,
            documented_bytes: documented,
            flops,
        });
    }

    // Softmax rows: every version reads each row three times (max, Σexp, write) and writes it once.
    for (rows_n, len) in [(37usize, 13usize), (5, 1214)] {
        let x = rand_tensor(&[rows_n, len], 3).to_device(dev)?;
        let nel = (rows_n * len) as f64;
        for v in [1u32, 2, 3] {
            softmax::softmax_version(&x, v)?;
            let kernel = format!("softmax_fwd_f32_v{v}");
            let (r, w) = bytes(&kernel)?;
            rows.push(ModelRow {
                kernel,
                case: format!("{rows_n}x{len}"),
                bytes_read: r,
                bytes_written: w,
                min_bytes: 8.0 * nel,
                documented_bytes: 16.0 * nel,
                flops: 5.0 * nel,
            });
        }
    }

    // Elementwise add with a broadcast bias (v2): full operand once, the bias once per row from cache.
    let (r_, c_) = (33usize, 70usize);
    let x = rand_tensor(&[r_, c_], 4).to_device(dev)?;
    let bias = rand_tensor(&[c_], 5).to_device(dev)?;
    binary::binary_version(binary::BinaryOp::Add, &x, &bias, 2)?;
    let (r, w) = bytes("add_fwd_f32_v2")?;
    let nel = (r_ * c_) as f64;
    rows.push(ModelRow {
        kernel: "add_fwd_f32_v2".into(),
        case: format!("{r_}x{c_}+{c_}"),
        bytes_read: r,
        bytes_written: w,
        min_bytes: 8.0 * nel + 4.0 * c_ as f64,
        documented_bytes: 12.0 * nel,
        flops: nel,
    });
    // The separator's spectral ends (kernels/cuda/complex_mask.cu), on small shapes with partial
    // 32 × 32 tiles. mag_input: spec (re, im of every bin < F − 1 of every frame < T) once, scale
    // and shift once per block (P·⌈T′/32⌉ blocks per bin tile), the output once.
    use crate::ops::complex_mask::{self as cm, OutConv};
    let (mb, mc, mf, mt, mtp) = (1usize, 3usize, 37usize, 35usize, 40usize);
    let spec = rand_tensor(&[mb, mc, 2, mf, mt], 6);
    let (sc, sh) = (rand_tensor(&[mf], 7).to_device(dev)?, rand_tensor(&[mf], 8).to_device(dev)?);
    cm::magnitude_input_version(&spec.to_device(dev)?, &sc, &sh, mtp, Some(1))?;
    let (r, w) = bytes("mag_input_fwd_f32_v1")?;
    let (planes, fo) = ((mb * mc) as f64, (mf - 1) as f64);
    rows.push(ModelRow {
        kernel: "mag_input_fwd_f32_v1".into(),
        case: format!("{mc}x{mf}x{mt}p{mtp}"),
        bytes_read: r,
        bytes_written: w,
        min_bytes: 8.0 * planes * mt as f64 * fo + 8.0 * fo + 4.0 * planes * mtp as f64 * fo,
        documented_bytes: 8.0 * planes * mt as f64 * fo + 8.0 * fo * planes * mtp.div_ceil(32) as f64 + 4.0 * planes * mtp as f64 * fo,
        flops: 5.0 * planes * mt as f64 * fo,
    });

    // complex_mask (fused mask + out_conv + gate). Per (b, s): each of the K = O out_conv outputs
    // (one per block, CM_OCHUNK = 1; K = 1 without out_conv) reads x (3·C maps, frames < T, bins
    // < F − 1) and spec (2·C planes) once; W[o, ·] and bias[o] once per block (nblk = ⌈T/32⌉·⌈F/32⌉
    // blocks per output: the out_conv weights are re-read nblk times), the gate once per block; the
    // output once. See the .cu header.
    struct MaskCase {
        b: usize,
        s: usize,
        c: usize,
        o: Option<usize>,
        f: usize,
        t: usize,
        gate: bool,
    }
    impl MaskCase {
        fn o_n(&self) -> usize {
            self.o.unwrap_or(self.c)
        }
        /// (read, written) bytes as complex_mask_fwd_*_v1 moves them; `elt` = bytes per spec/x value.
        fn kernel_bytes(&self, elt: f64) -> (f64, f64) {
            let (b, s, c, o, f, t) = (self.b as f64, self.s as f64, self.c as f64, self.o_n() as f64, self.f as f64, self.t as f64);
            let k = self.o.unwrap_or(1) as f64; // ⌈O / CM_OCHUNK⌉ with CM_OCHUNK = 1
            let nblk = (self.t.div_ceil(32) * self.f.div_ceil(32)) as f64;
            let oc = if self.o.is_some() { 4.0 * (c + 1.0) * o * nblk } else { 0.0 };
            let gate = if self.gate { 4.0 * k * nblk } else { 0.0 };
            (b * s * (k * elt * (3.0 * c * t * (f - 1.0) + 2.0 * c * f * t) + oc + gate), b * s * 8.0 * o * f * t)
        }
        fn min_bytes(&self, elt: f64) -> f64 {
            let (b, s, c, o, f, t) = (self.b as f64, self.s as f64, self.c as f64, self.o_n() as f64, self.f as f64, self.t as f64);
            let oc = if self.o.is_some() { 4.0 * (o * c + o) } else { 0.0 };
            let gate = if self.gate { 4.0 * b * s } else { 0.0 };
            elt * (2.0 * b * c * f * t + 3.0 * b * s * c * t * (f - 1.0)) + oc + gate + 8.0 * b * s * o * f * t
        }
        /// ≈ 30 flops per (b, s, c, f, t) (a transcendental, sqrt or division counted as one) + 4·O
        /// for out_conv (a multiply-add on re and im per output).
        fn flops(&self) -> f64 {
            let per = 30.0 + if self.o.is_some() { 4.0 * self.o_n() as f64 } else { 0.0 };
            per * (self.b * self.s * self.c * self.f * self.t) as f64
        }
    }
    let small = [
        // out_conv 3 → 5 (five blocks per tile along z), a gate, 2 targets, T′ > T, partial tiles.
        (MaskCase { b: 1, s: 2, c: 3, o: Some(5), f: 37, t: 35, gate: true }, 40usize, "s2c3o5_37x35"),
        // AudioSep-like: 1 channel, no out_conv, no gate.
        (MaskCase { b: 1, s: 1, c: 1, o: None, f: 33, t: 34, gate: false }, 34, "s1c1_33x34"),
    ];
    for (i, (mc_, tp, name)) in small.iter().enumerate() {
        let seed = 10 + 10 * i as u64;
        let spec = rand_tensor(&[mc_.b, mc_.c, 2, mc_.f, mc_.t], seed);
        let x = rand_tensor(&[mc_.b, mc_.s * mc_.c * 3, *tp, mc_.f - 1], seed + 1);
        let wt = rand_tensor(&[mc_.o_n(), mc_.c], seed + 2).to_device(dev)?;
        let bias = rand_tensor(&[mc_.o_n()], seed + 3).to_device(dev)?;
        let gate = rand_tensor(&[mc_.b, mc_.s], seed + 4).to_device(dev)?;
        for (dt, elt) in [(DType::F32, 4.0), (DType::F16, 2.0)] {
            let (sd, xd) = match dt {
                DType::F32 => (spec.to_device(dev)?, x.to_device(dev)?),
                DType::F16 => (crate::ops::unary::to_f16(&spec)?.to_device(dev)?, crate::ops::unary::to_f16(&x)?.to_device(dev)?),
            };
            let oc = OutConv { weight: &wt, bias: &bias };
            cm::complex_mask_version(&sd, &xd, mc_.s, mc_.o.map(|_| &oc), mc_.gate.then_some(&gate), Some(1))?;
            let kernel = format!("complex_mask_fwd_{dt}_v1");
            let (r, w) = bytes(&kernel)?;
            let (dr, dw) = mc_.kernel_bytes(elt);
            rows.push(ModelRow {
                kernel,
                case: name.to_string(),
                bytes_read: r,
                bytes_written: w,
                min_bytes: mc_.min_bytes(elt),
                documented_bytes: dr + dw,
                flops: mc_.flops(),
            });
        }
    }

    // The full-size case the kernel header discusses (DCASE baseline, one 10 s 4-channel clip, n_fft
    // 1024, hop 160: C = 4, O = 1, F = 513, T = 2001; T′ = 2016 is not read past T), analytic rows
    // (too large for the emulator; the formula is the one the small rows above verify): the fused
    // kernels, and the unfused PyTorch chain they replace — sigmoid, 2 × tanh, magphase of the mask,
    // out_cos, out_sin, out_mag (mul + relu_), out_real, out_imag, 2 × out_conv, and the mixture's
    // |X|, cos, sin kept from the STFT — each op reading and writing full (C, T, F) tensors:
    // 24·N elements read + 15.5·N written, N = C·F·T (see complex_mask.cu). documented = counted.
    let full = MaskCase { b: 1, s: 1, c: 4, o: Some(1), f: 513, t: 2001, gate: false };
    let n = (full.c * full.f * full.t) as f64;
    for (dt, elt) in [(DType::F32, 4.0), (DType::F16, 2.0)] {
        let (dr, dw) = full.kernel_bytes(elt);
        rows.push(ModelRow {
            kernel: format!("complex_mask_fwd_{dt}_v1"),
            case: "10s_analytic".into(),
            bytes_read: dr as u64,
            bytes_written: dw as u64,
            min_bytes: full.min_bytes(elt),
            documented_bytes: dr + dw,
            flops: full.flops(),
        });
        let (ur, uw) = (24.0 * n * elt, 15.5 * n * elt);
        rows.push(ModelRow {
            kernel: format!("complex_mask_unfused_{dt}"),
            case: "10s_analytic".into(),
            bytes_read: ur as u64,
            bytes_written: uw as u64,
            min_bytes: full.min_bytes(elt),
            documented_bytes: ur + uw,
            flops: full.flops(),
        });
    }
    Ok(rows)
}
