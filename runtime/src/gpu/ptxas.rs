//! The ptxas resource report: registers, shared memory, stack and spills per kernel.
//!
//! The family's PTX (from NVRTC) is assembled by `ptxas -arch=sm_XX -v` (the nvcc wheel's or a
//! toolkit's) and its report parsed here. Without a ptxas binary, NVRTC compiles for `sm_XX` with
//! `--ptxas-options=-v` (ptxas inside NVRTC) and its program log is parsed instead. `kernels/ptxas-budget.toml` holds the
//! accepted ceiling per kernel; the gate test (`runtime/tests/nvrtc_gate.rs`) fails on any spill, on a
//! kernel above its budget, and on a kernel missing from the table. `aural doctor --kernels` prints it.

use std::collections::BTreeMap;

use super::nvrtc;
use crate::{Error, Result};

/// ptxas's numbers for one kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KernelUsage {
    pub registers: u32,
    /// Static shared memory in bytes.
    pub smem: u32,
    /// Stack frame in bytes.
    #[serde(default)]
    pub stack: u32,
    #[serde(default)]
    pub spill_stores: u32,
    #[serde(default)]
    pub spill_loads: u32,
}

/// Compiles `family` for `sm_<arch>` and returns ptxas's report per kernel (by name).
pub fn report(family: &str, src: &str, arch: u32) -> Result<BTreeMap<String, KernelUsage>> {
    let log = match super::libs::ptxas() {
        Some(ptxas) => run_ptxas(&ptxas, family, src, arch)?,
        None => {
            let mut opts = nvrtc::options(&format!("sm_{arch}"));
            opts.push("--ptxas-options=-v".into());
            nvrtc::compile_raw(family, src, &opts, true)?.log
        }
    };
    let r = parse(&log);
    if r.is_empty() && src.contains("__global__") {
        return Err(Error::Msg(format!("no ptxas report for {family}.cu:\n{log}")));
    }
    Ok(r)
}

/// `ptxas -arch=sm_<arch> -v` on the family's PTX; returns its report (stderr and stdout).
fn run_ptxas(ptxas: &std::path::Path, family: &str, src: &str, arch: u32) -> Result<String> {
    let ptx = nvrtc::compile_raw(family, src, &nvrtc::options(&format!("compute_{arch}")), false)?.image;
    let dir = std::env::temp_dir().join(format!("aural-ptxas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::Msg(format!("{}: {e}", dir.display())))?;
    let file = dir.join(format!("{family}-{arch}.ptx"));
    std::fs::write(&file, &ptx).map_err(|e| Error::Msg(format!("{}: {e}", file.display())))?;
    let out = std::process::Command::new(ptxas)
        .arg(format!("-arch=sm_{arch}"))
        .arg("-v")
        .arg(&file)
        .arg("-o")
        .arg(dir.join(format!("{family}-{arch}.cubin")))
        .output()
        .map_err(|e| Error::Msg(format!("running {}: {e}", ptxas.display())))?;
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        return Err(Error::Msg(format!("ptxas failed on {family}.cu (sm_{arch}):\n{text}")));
    }
    Ok(text)
}

/// Parses ptxas `-v` output.
pub fn parse(log: &str) -> BTreeMap<String, KernelUsage> {
    let mut out: BTreeMap<String, KernelUsage> = BTreeMap::new();
    let mut cur: Option<String> = None;
    let num_before = |line: &str, key: &str| -> Option<u32> {
        let i = line.find(key)?;
        line[..i].split_whitespace().last()?.parse().ok()
    };
    for line in log.lines() {
        if let Some(i) = line.find("Compiling entry function '").or_else(|| line.find("Function properties for ")) {
            let rest = &line[i..];
            let name = if let Some(r) = rest.strip_prefix("Compiling entry function '") {
                r.split('\'').next().unwrap_or("")
            } else {
                rest.trim_start_matches("Function properties for ").trim()
            };
            cur = Some(name.to_string());
            out.entry(name.to_string()).or_default();
            continue;
        }
        let Some(name) = &cur else { continue };
        let u = out.get_mut(name).unwrap();
        if line.contains("bytes stack frame") {
            u.stack = num_before(line, "bytes stack frame").unwrap_or(0);
            u.spill_stores = num_before(line, "bytes spill stores").unwrap_or(0);
            u.spill_loads = num_before(line, "bytes spill loads").unwrap_or(0);
        }
        if line.contains("Used") && line.contains("registers") {
            u.registers = num_before(line, "registers").unwrap_or(0);
            u.smem = num_before(line, "bytes smem").unwrap_or(0);
        }
    }
    // Device functions also get "Function properties" lines; keep entry kernels only.
    out.retain(|_, u| u.registers > 0 || u.smem > 0 || u.stack > 0);
    out
}

/// Path of the committed budget table.
pub fn budget_path() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../kernels/ptxas-budget.toml"))
}

/// Reads the budget table (kernel name → ceiling).
pub fn read_budget() -> Result<BTreeMap<String, KernelUsage>> {
    let p = budget_path();
    let text = std::fs::read_to_string(&p).map_err(|e| Error::File { path: p.display().to_string(), msg: e.to_string() })?;
    toml::from_str(&text).map_err(|e| Error::File { path: p.display().to_string(), msg: e.to_string() })
}

/// The NVRTC version the budget was measured with (its `# nvrtc X.Y` line): register counts are
/// compared only under that version, since another compiler allocates registers differently.
pub fn budget_nvrtc_version() -> Option<(i32, i32)> {
    let text = std::fs::read_to_string(budget_path()).ok()?;
    let v = text.lines().find_map(|l| l.strip_prefix("# nvrtc "))?;
    let (a, b) = v.trim().split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The whole sm_<arch> report of every kernel family.
pub fn report_all(arch: u32) -> Result<BTreeMap<String, KernelUsage>> {
    let mut all = BTreeMap::new();
    for s in aural_kernels::SOURCES {
        all.extend(report(s.family, s.src, arch)?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_ptxas_report() {
        let log = "ptxas info    : 0 bytes gmem\n\
ptxas info    : Compiling entry function 'add_fwd_f32_v1' for 'sm_90'\n\
ptxas info    : Function properties for add_fwd_f32_v1\n\
    8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads\n\
ptxas info    : Used 18 registers, 1024 bytes smem, 448 bytes cmem[0]\n";
        let r = super::parse(log);
        let u = &r["add_fwd_f32_v1"];
        assert_eq!((u.registers, u.smem, u.stack, u.spill_stores, u.spill_loads), (18, 1024, 8, 4, 4));
    }
}
