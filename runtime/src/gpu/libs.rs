//! Finding the CUDA driver and NVRTC at run time.
//!
//! cudarc (with `dynamic-loading`) looks for `libcuda`/`libnvrtc` by bare names through the dynamic
//! loader and *panics* when none is found, so every cudarc call is preceded by
//! `is_culib_present()`. NVRTC often comes from the `nvidia-cuda-nvrtc-cu12` wheel rather than a
//! system toolkit: we preload it by absolute path (RTLD_GLOBAL), after which the loader resolves the
//! bare name to the already loaded object. The same wheel roots give the CUDA headers
//! (`cuda_fp16.h`, `mma.h`) that kernels include.
//!
//! Search order for wheel roots (each is a `pip install --target` folder holding `nvidia/…`):
//! `$AURAL_CUDA_WHEELS`, `$AURAL_CACHE_DIR/cuda`, the repository's `.cache/cuda` (the test script
//! installs the wheels there), the user cache dir's `aural/cuda`, then the active Python's
//! site-packages when `$VIRTUAL_ENV` is set. System toolkits (`/usr/local/cuda`) are used as they are.

use std::path::PathBuf;
use std::sync::OnceLock;

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
    for sys in ["/usr/local/cuda/include", "/opt/cuda/include"] {
        let p = PathBuf::from(sys);
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

/// Where NVRTC was found, or why it was not. Computed once.
pub fn nvrtc() -> Result<&'static str, String> {
    static FOUND: OnceLock<Result<String, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            // SAFETY: dlopen probes only.
            if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
                return Ok("the dynamic loader's search path".to_string());
            }
            for r in wheel_roots() {
                let lib = r.join("nvidia/cuda_nvrtc/lib/libnvrtc.so.12");
                if !lib.exists() {
                    continue;
                }
                // SAFETY: loading a shared library runs its initialisers; libnvrtc's are benign.
                let loaded = unsafe {
                    libloading::os::unix::Library::open(
                        Some(&lib),
                        libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL,
                    )
                };
                if let Ok(l) = loaded {
                    std::mem::forget(l); // keep it loaded for the life of the process
                    if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
                        return Ok(lib.display().to_string());
                    }
                }
            }
            Err("NVRTC (libnvrtc.so.12) was not found: install it with `pip install --target .cache/cuda nvidia-cuda-nvrtc-cu12` or set AURAL_CUDA_WHEELS".to_string())
        })
        .as_ref()
        .map(|s| s.as_str())
        .map_err(|e| e.clone())
}

/// NVRTC's version as (major, minor), when NVRTC is usable.
pub fn nvrtc_version() -> Option<(i32, i32)> {
    nvrtc().ok()?;
    let (mut a, mut b) = (0, 0);
    // SAFETY: NVRTC is loaded (checked above); the call writes two ints.
    let r = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut a, &mut b) };
    (r == cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS).then_some((a, b))
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
