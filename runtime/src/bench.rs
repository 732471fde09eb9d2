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
    Ok(rows)
}
