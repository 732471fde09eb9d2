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
}

pub fn run(a: Args) -> Result<()> {
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
    println!("CUDA headers:  {}", if inc.is_empty() { "not found".to_string() } else { inc.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ") });
    println!("ptxas:         {}", libs::ptxas().map(|p| p.display().to_string()).unwrap_or_else(|| "not found".into()));
    println!("kernel cache:  {}", nvrtc::cache_dir().display());
    println!("kernels:       {} families: {}", aural::kernels::SOURCES.len(), aural::kernels::SOURCES.iter().map(|s| s.family).collect::<Vec<_>>().join(", "));
    let (auto, auto_why) = Device::auto();
    println!("auto picks:    {auto} ({auto_why})");
    if a.device != "auto" {
        println!("asked for:     {dev} ({why})");
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
