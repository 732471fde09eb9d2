//! `aural doctor`: what this machine offers and what aural will use.

use anyhow::{anyhow, Result};
use aural::runtime::gpu::{self, libs, nvrtc};
use aural::runtime::Device;

#[derive(clap::Args)]
pub struct Args {
    /// Device to check: auto, cpu, cuda or cuda:N. A device that cannot be used exits with status 2.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Compile every kernel family with NVRTC (for the GPU's arch, else compute_80 and compute_90).
    #[arg(long)]
    compile: bool,
    /// Print ptxas's resource table (registers, shared memory, stack, spills) for sm_90 beside the
    /// committed budget (kernels/ptxas-budget.toml).
    #[arg(long)]
    kernels: bool,
    /// Check that every kernel of kernels/cuda was launched under the emulator by a test run that
    /// recorded its launches in DIR (AURAL_EMU_COVERAGE_DIR); exits 2 listing the kernels never run.
    #[arg(long, value_name = "DIR")]
    emu_coverage: Option<std::path::PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    if let Some(dir) = &a.emu_coverage {
        return emu_coverage(dir);
    }
    let (dev, why) = Device::parse(&a.device)?;
    if let Device::Cuda(n) = dev {
        gpu::probe(n).map_err(|e| anyhow!("CUDA device {n} is not usable: {e}"))?;
    }
    match libs::driver_version() {
        Some((ma, mi)) => println!("CUDA driver:   libcuda found, supports CUDA {ma}.{mi}"),
        None => println!("CUDA driver:   not found (no libcuda.so)"),
    }
    if libs::driver_present() {
        let count = cudarc::driver::CudaContext::device_count().unwrap_or(0);
        println!("GPUs:          {count}");
        for i in 0..count.max(0) as usize {
            match gpu::probe(i) {
                Ok(g) => println!("  cuda:{i}  {}  compute capability {}.{}  {:.1} GiB", g.name, g.cc.0, g.cc.1, g.total_mem as f64 / (1u64 << 30) as f64),
                Err(e) => println!("  cuda:{i}  unusable: {e}"),
            }
        }
    } else {
        println!("GPUs:          none visible");
    }
    match (libs::nvrtc(), libs::nvrtc_version()) {
        (Ok(at), Some((ma, mi))) => println!("NVRTC:         {ma}.{mi} from {at}"),
        (Ok(at), None) => println!("NVRTC:         found at {at} (version unknown)"),
        (Err(e), _) => println!("NVRTC:         {e}"),
    }
    let inc = libs::include_dirs();
    println!(
        "CUDA headers:  {}",
        if inc.is_empty() { "not found".to_string() } else { inc.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ") }
    );
    println!("ptxas:         {}", libs::ptxas().map(|p| p.display().to_string()).unwrap_or_else(|| "not found".into()));
    println!("kernel cache:  {}", nvrtc::cache_dir().display());
    println!("kernels:       {} families: {}", aural::kernels::SOURCES.len(), aural::kernels::SOURCES.iter().map(|s| s.family).collect::<Vec<_>>().join(", "));
    let (auto, auto_why) = Device::auto();
    println!("auto picks:    {auto} ({auto_why})");
    if a.device != "auto" {
        println!("asked for:     {dev} ({why})");
    }
    if a.kernels {
        let report = gpu::ptxas::report_all(90)?;
        let budget = gpu::ptxas::read_budget().unwrap_or_default();
        println!("{:<34} {:>5} {:>8} {:>6} {:>6}   budget (regs/smem)", "kernel (sm_90)", "regs", "smem B", "stack", "spill");
        for (k, u) in &report {
            let b = budget.get(k).map(|b| format!("{}/{}", b.registers, b.smem)).unwrap_or_else(|| "missing".into());
            println!("{k:<34} {:>5} {:>8} {:>6} {:>6}   {b}", u.registers, u.smem, u.stack, u.spill_stores + u.spill_loads);
        }
    }
    if a.compile {
        let archs: Vec<u32> = match gpu::probe(0) {
            Ok(g) => vec![(g.cc.0 * 10 + g.cc.1) as u32],
            Err(_) => vec![80, 90],
        };
        for s in aural::kernels::SOURCES {
            for &arch in &archs {
                let t = std::time::Instant::now();
                let (_, cached) = nvrtc::ptx_cached(s.family, s.src, arch)?;
                println!("compiled {:<12} compute_{arch}  {:>7.1} ms{}", s.family, t.elapsed().as_secs_f64() * 1e3, if cached { " (cache)" } else { "" });
            }
        }
    }
    Ok(())
}

/// Kernels of kernels/cuda that no recorded emulator launch ran.
fn emu_coverage(dir: &std::path::Path) -> Result<()> {
    let mut ran = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(dir).map_err(|e| anyhow!("{}: {e}", dir.display()))?.flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        ran.extend(text.lines().map(str::to_string));
    }
    let all: Vec<&str> =
        gpu::emu::kernel_names().into_iter().filter(|k| aural::kernels::emu::kernel_info(k).is_some_and(|i| i.file.contains("cuda/"))).collect();
    let missing: Vec<&str> = all.iter().copied().filter(|k| !ran.contains(*k)).collect();
    println!("emulator coverage: {} of {} kernels of kernels/cuda ran under the emulator", all.len() - missing.len(), all.len());
    if !missing.is_empty() {
        return Err(anyhow!("{} kernel(s) have no emulator test: {}", missing.len(), missing.join(", ")));
    }
    Ok(())
}
