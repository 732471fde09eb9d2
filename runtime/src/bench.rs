//! The benchmark harness shared by `aural bench` and the criterion benches (`benches/<family>.rs`).
//!
//! Each op family exposes `bench_cases(device) -> Result<Vec<BenchCase>>` in its `mod.rs`: the real
//! model shapes it is used at, per kernel version. Both front ends time the same closures, so the
//! criterion ids (`<op>/<backend>/v<N>/<dtype>/<case>`) and `aural bench` rows name the same work.
//! On a GPU the closure synchronises the stream, inputs are created and kernels compiled outside the
//! timed region, and results are validated against the CPU once before timing (`check`).

use std::time::{Duration, Instant};

use crate::{DType, Device, Result};

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
