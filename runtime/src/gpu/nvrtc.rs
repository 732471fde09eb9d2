//! Run-time compilation of `kernels/cuda/<family>.cu` with NVRTC, and the on-disk PTX cache.
//!
//! Every program gets the shared headers of `aural_kernels::HEADERS` (`#include "common.cuh"`).
//! The cache key is SHA-256 over (source text, header texts, target arch, NVRTC version, options), so
//! editing a kernel or a header, changing GPU or upgrading NVRTC each compile afresh. Files are written to a temporary name
//! and renamed, so a crash never leaves a truncated PTX behind. Location: `$AURAL_CACHE_DIR/kernels`,
//! else the user cache dir's `aural/kernels`.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::libs;
use crate::{Error, Result};

/// The directory holding cached PTX.
pub fn cache_dir() -> PathBuf {
    if let Ok(p) = std::env::var("AURAL_CACHE_DIR") {
        return PathBuf::from(p).join("kernels");
    }
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("aural/kernels")
}

/// Options every kernel is compiled with. `target` is `compute_XX` (PTX) or `sm_XX` (cubin, which
/// also makes ptxas run and report).
pub fn options(target: &str) -> Vec<String> {
    let mut o = vec![
        format!("--gpu-architecture={target}"),
        "--std=c++17".to_string(),
        "--device-as-default-execution-space".to_string(),
        "-DAURAL_NVRTC=1".to_string(),
    ];
    for inc in libs::include_dirs() {
        o.push(format!("--include-path={}", inc.display()));
    }
    o
}

/// The result of one NVRTC compilation.
pub struct Compiled {
    /// PTX text (for `compute_XX`) or cubin bytes (for `sm_XX`).
    pub image: Vec<u8>,
    /// NVRTC's program log (warnings; with `-v` ptxas options, the resource report).
    pub log: String,
}

/// Compiles one source with the given options. Errors carry the whole program log.
pub fn compile_raw(family: &str, src: &str, opts: &[String], cubin: bool) -> Result<Compiled> {
    let lib = super::nvrtc_lib::get().map_err(Error::CudaUnavailable)?;
    let arch = opts.iter().find_map(|o| o.strip_prefix("--gpu-architecture=")).unwrap_or("?").to_string();
    let headers: Vec<(&str, &str)> = aural_kernels::HEADERS.iter().map(|h| (h.name, h.src)).collect();
    match lib.compile(&format!("{family}.cu"), src, &headers, opts, cubin) {
        Ok((image, log)) => Ok(Compiled { image, log }),
        Err((err, log)) => Err(Error::Nvrtc { family: family.into(), arch, log: format!("{err}\n{log}") }),
    }
}

/// PTX for `family` targeting `compute_<arch>`, from the disk cache or freshly compiled.
/// Returns the PTX and whether it came from the cache.
pub fn ptx_cached(family: &str, src: &str, arch: u32) -> Result<(String, bool)> {
    let opts = options(&format!("compute_{arch}"));
    let ver = libs::nvrtc_version().unwrap_or((0, 0));
    let mut h = Sha256::new();
    h.update(src.as_bytes());
    for hd in aural_kernels::HEADERS {
        h.update(format!("|{}|", hd.name).as_bytes());
        h.update(hd.src.as_bytes());
    }
    h.update(format!("|{arch}|{}.{}|", ver.0, ver.1).as_bytes());
    for o in &opts {
        if !o.starts_with("--include-path") {
            h.update(o.as_bytes());
        }
    }
    let key: String = h.finalize().iter().take(10).map(|b| format!("{b:02x}")).collect();
    let dir = cache_dir();
    let path = dir.join(format!("{family}-sm{arch}-{key}.ptx"));
    if let Ok(ptx) = std::fs::read_to_string(&path) {
        return Ok((ptx, true));
    }
    let c = compile_raw(family, src, &opts, false)?;
    let ptx = String::from_utf8_lossy(&c.image).into_owned();
    if std::fs::create_dir_all(&dir).is_ok() {
        let tmp = dir.join(format!(".{family}-{key}.{}.tmp", std::process::id()));
        if std::fs::write(&tmp, &ptx).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    Ok((ptx, false))
}
