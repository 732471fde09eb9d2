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
}

pub fn run(a: Args) -> Result<()> {
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
