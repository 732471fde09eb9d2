//! Finding the CUDA driver and NVRTC at run time.
//!
//! cudarc (with `dynamic-loading`) looks for `libcuda` by bare names through the dynamic loader and
//! *panics* when none is found, so every cudarc driver call is preceded by `is_culib_present()`.
//! NVRTC is loaded by aural itself (`nvrtc_lib`), by absolute path, from a pip wheel folder, a CUDA
//! toolkit (12 or 13) or the loader's path. The same wheel roots give the CUDA headers
//! (`cuda_fp16.h`, `mma.h`) that kernels include; a system toolkit's `include/` is the fallback.
//!
//! Search order for wheel roots (each is a `pip install --target` folder holding `nvidia/…`):
//! `$AURAL_CUDA_WHEELS`, `$AURAL_CACHE_DIR/cuda`, the repository's `.cache/cuda` (the test script
//! installs the wheels there), the user cache dir's `aural/cuda`, then the active Python's
//! site-packages when `$VIRTUAL_ENV` is set. System toolkits (`/usr/local/cuda`) are used as they are.

use std::path::PathBuf;

/// Folders that may hold `nvidia/cuda_nvrtc/lib`, `nvidia/cuda_runtime/include`, ….
pub fn wheel_roots() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(p) = std::env::var("AURAL_CUDA_WHEELS") {
        v.push(PathBuf::from(p));
    }
    if let Ok(p) = std::env::var("AURAL_CACHE_DIR") {
        v.push(PathBuf::from(p).join("cuda"));
    }
    v.push(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.cache/cuda")));
    if let Ok(exe) = std::env::current_exe() {
        for a in exe.ancestors().skip(1).take(5) {
            v.push(a.join(".cache/cuda"));
        }
    }
    if let Some(c) = dirs::cache_dir() {
        v.push(c.join("aural/cuda"));
    }
    if let Ok(venv) = std::env::var("VIRTUAL_ENV") {
        if let Ok(rd) = std::fs::read_dir(PathBuf::from(venv).join("lib")) {
            for e in rd.flatten() {
                v.push(e.path().join("site-packages"));
            }
        }
    }
    v.retain(|p| p.join("nvidia").is_dir());
    let mut seen = std::collections::HashSet::new();
    v.retain(|p| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())));
    v
}

/// Include directories for NVRTC: the wheels' headers, else a system toolkit's.
pub fn include_dirs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for r in wheel_roots() {
        for sub in ["nvidia/cuda_runtime/include", "nvidia/cuda_nvcc/include", "nvidia/cuda_nvrtc/include"] {
            let p = r.join(sub);
            if p.is_dir() {
                v.push(p);
            }
        }
        if !v.is_empty() {
            break;
        }
    }
    let mut sys: Vec<PathBuf> = ["CUDA_HOME", "CUDA_PATH"].iter().filter_map(|k| std::env::var(k).ok()).map(|h| PathBuf::from(h).join("include")).collect();
    sys.push(PathBuf::from("/usr/local/cuda/include"));
    sys.push(PathBuf::from("/opt/cuda/include"));
    for p in sys {
        if v.is_empty() && p.join("cuda_fp16.h").exists() {
            v.push(p);
        }
    }
    v
}

/// `ptxas` from the nvcc wheel or a system toolkit, if any.
pub fn ptxas() -> Option<PathBuf> {
    for r in wheel_roots() {
        let p = r.join("nvidia/cuda_nvcc/bin/ptxas");
        if p.exists() {
            return Some(p);
        }
    }
    ["/usr/local/cuda/bin/ptxas"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// Whether the CUDA driver library can be loaded.
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen candidate names; never panics.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Where NVRTC was found, or why it was not (see `nvrtc_lib`).
pub fn nvrtc() -> Result<String, String> {
    super::nvrtc_lib::get().map(|n| n.path.display().to_string())
}

/// NVRTC's version as (major, minor), when NVRTC is usable.
pub fn nvrtc_version() -> Option<(i32, i32)> {
    super::nvrtc_lib::get().ok().map(|n| n.version())
}

/// The CUDA driver's version as (major, minor), when the driver is present.
pub fn driver_version() -> Option<(i32, i32)> {
    if !driver_present() {
        return None;
    }
    let mut v = 0;
    // SAFETY: the driver library is present; the call writes one int.
    let r = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) };
    (r == cudarc::driver::sys::CUresult::CUDA_SUCCESS).then_some((v / 1000, (v % 1000) / 10))
}
