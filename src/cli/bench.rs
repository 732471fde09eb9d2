//! `aural bench`: throughput per op, device and kernel version, as a table or JSON lines.

use std::time::Duration;

use anyhow::{bail, Result};
use aural::runtime::bench::{default_devices, families, measure};

#[derive(clap::Args)]
pub struct Args {
    /// Only this op family (e.g. matmul, binary). Default: all.
    #[arg(long)]
    op: Option<String>,
    /// Device: cpu, cuda[:N], emu, or all usable (default).
    #[arg(long)]
    device: Option<String>,
    /// Print one JSON object per measurement instead of a table.
    #[arg(long)]
    json: bool,
    /// Seconds to spend per case (after validation and warm-up).
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Instead of timing: run the GEMM, softmax and elementwise kernels under the CUDA emulator, print
    /// their counted global-memory bytes beside the analytic minimum, and what that traffic costs on
    /// an H100 (3.35 TB/s HBM3).
    #[arg(long)]
    model_gpu: bool,
}

pub fn run(a: Args) -> Result<()> {
    if a.model_gpu {
        return model_gpu(a.json);
    }
    let devices = match &a.device {
        None => default_devices(),
        Some(d) => vec![super::resolve_device(d)?],
    };
    let fams: Vec<_> = families().into_iter().filter(|(n, _)| a.op.as_deref().is_none_or(|o| o == *n)).collect();
    if fams.is_empty() {
        bail!("no op family named '{}' (known: {})", a.op.unwrap_or_default(), families().iter().map(|f| f.0).collect::<Vec<_>>().join(", "));
    }
    if !a.json {
        println!("{:<56} {:>12} {:>14}", "op/backend/version/dtype/case", "median", "throughput");
    }
    for dev in devices {
        for (_, cases) in &fams {
            for mut c in cases(dev)? {
                let m = measure(&mut c, Duration::from_secs_f64(a.seconds))?;
                if a.json {
                    println!(
                        "{}",
                        serde_json::json!({"id": m.id, "op": c.op, "device": dev.to_string(), "version": c.version,
                            "dtype": c.dtype.to_string(), "case": c.case, "median_s": m.median_s, "min_s": m.min_s,
                            "reps": m.reps, "throughput": m.throughput, "unit": m.unit})
                    );
                } else {
                    println!("{:<56} {:>9.3} ms {:>9.2} {}", m.id, m.median_s * 1e3, m.throughput, m.unit);
                }
            }
        }
    }
    Ok(())
}

fn model_gpu(json: bool) -> Result<()> {
    let rows = aural::runtime::bench::gpu_model()?;
    if !json {
        println!("bytes counted by the CUDA emulator (every global load and store), H100 model at {:.2} TB/s", aural::runtime::bench::H100_BYTES_PER_S / 1e12);
        println!("{:<22} {:>12} {:>11} {:>11} {:>11} {:>8} {:>10} {:>9}", "kernel", "case", "read B", "written B", "minimum B", "re-read", "HBM µs", "FLOP/B");
    }
    for r in rows {
        if json {
            println!(
                "{}",
                serde_json::json!({"kernel": r.kernel, "case": r.case, "bytes_read": r.bytes_read, "bytes_written": r.bytes_written,
                    "min_bytes": r.min_bytes, "documented_bytes": r.documented_bytes, "reread_factor": r.reread_factor(),
                    "h100_hbm_time_s": r.hbm_time_s(), "flops": r.flops})
            );
        } else {
            println!(
                "{:<22} {:>12} {:>11} {:>11} {:>11.0} {:>7.2}x {:>10.4} {:>9.2}",
                r.kernel,
                r.case,
                r.bytes_read,
                r.bytes_written,
                r.min_bytes,
                r.reread_factor(),
                r.hbm_time_s() * 1e6,
                r.flops / r.counted()
            );
        }
    }
    Ok(())
}
