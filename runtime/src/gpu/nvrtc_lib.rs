//! A minimal binding to NVRTC, loaded by absolute path.
//!
//! cudarc's own NVRTC loader finds the library only by bare names for the CUDA major version it was
//! built for (`libnvrtc.so.12`, …) and panics when none is found; machines carry NVRTC in many
//! places (a pip wheel folder, `/usr/local/cuda/lib64`, a CUDA 13 toolkit's `libnvrtc.so.13`). The
//! seven entry points aural uses have had the same C ABI since CUDA 11, so we load them ourselves
//! from whichever library is found first; kernels' PTX is then loaded by cudarc's driver API.

use std::ffi::{c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libloading::Library;

type Prog = *mut c_void;
type Res = c_int;

/// The loaded NVRTC entry points.
pub struct Nvrtc {
    _lib: Library,
    pub path: PathBuf,
    create: unsafe extern "C" fn(*mut Prog, *const c_char, *const c_char, c_int, *const *const c_char, *const *const c_char) -> Res,
    compile: unsafe extern "C" fn(Prog, c_int, *const *const c_char) -> Res,
    destroy: unsafe extern "C" fn(*mut Prog) -> Res,
    log_size: unsafe extern "C" fn(Prog, *mut usize) -> Res,
    log: unsafe extern "C" fn(Prog, *mut c_char) -> Res,
    ptx_size: unsafe extern "C" fn(Prog, *mut usize) -> Res,
    ptx: unsafe extern "C" fn(Prog, *mut c_char) -> Res,
    cubin_size: unsafe extern "C" fn(Prog, *mut usize) -> Res,
    cubin: unsafe extern "C" fn(Prog, *mut c_char) -> Res,
    version: unsafe extern "C" fn(*mut c_int, *mut c_int) -> Res,
    error_string: unsafe extern "C" fn(Res) -> *const c_char,
}

// SAFETY: NVRTC's API is thread-safe for distinct programs; the struct holds only fn pointers.
unsafe impl Send for Nvrtc {}
unsafe impl Sync for Nvrtc {}

impl Nvrtc {
    fn open(path: &Path) -> Result<Nvrtc, String> {
        // SAFETY: loading libnvrtc runs its initialisers, which are benign.
        let lib = unsafe { Library::new(path) }.map_err(|e| format!("{}: {e}", path.display()))?;
        macro_rules! sym {
            ($name:literal) => {
                // SAFETY: the signature matches NVRTC's C declaration of this entry point.
                *unsafe { lib.get(concat!($name, "\0").as_bytes()) }.map_err(|e| format!("{}: {}: {e}", path.display(), $name))?
            };
        }
        Ok(Nvrtc {
            create: sym!("nvrtcCreateProgram"),
            compile: sym!("nvrtcCompileProgram"),
            destroy: sym!("nvrtcDestroyProgram"),
            log_size: sym!("nvrtcGetProgramLogSize"),
            log: sym!("nvrtcGetProgramLog"),
            ptx_size: sym!("nvrtcGetPTXSize"),
            ptx: sym!("nvrtcGetPTX"),
            cubin_size: sym!("nvrtcGetCUBINSize"),
            cubin: sym!("nvrtcGetCUBIN"),
            version: sym!("nvrtcVersion"),
            error_string: sym!("nvrtcGetErrorString"),
            path: path.to_path_buf(),
            _lib: lib,
        })
    }

    /// NVRTC's (major, minor) version.
    pub fn version(&self) -> (i32, i32) {
        let (mut a, mut b) = (0, 0);
        // SAFETY: writes two ints.
        unsafe { (self.version)(&mut a, &mut b) };
        (a, b)
    }

    fn err(&self, r: Res) -> String {
        // SAFETY: NVRTC returns a static C string for every result code.
        unsafe { std::ffi::CStr::from_ptr((self.error_string)(r)) }.to_string_lossy().into_owned()
    }

    /// Compiles `src` with `opts`; `headers` are (include name, text) pairs the source may
    /// `#include`. Returns (image, log) — PTX text or cubin bytes — or (error, log).
    pub fn compile(&self, name: &str, src: &str, headers: &[(&str, &str)], opts: &[String], cubin: bool) -> Result<(Vec<u8>, String), (String, String)> {
        let cstr = |s: &str, what: &str| std::ffi::CString::new(s).map_err(|_| (format!("{what} contains NUL"), String::new()));
        let csrc = cstr(src, "source")?;
        let cname = std::ffi::CString::new(name).unwrap();
        let hsrc: Vec<std::ffi::CString> = headers.iter().map(|(n, t)| cstr(t, n)).collect::<Result<_, _>>()?;
        let hname: Vec<std::ffi::CString> = headers.iter().map(|(n, _)| cstr(n, "header name")).collect::<Result<_, _>>()?;
        let (phsrc, phname): (Vec<*const c_char>, Vec<*const c_char>) = (hsrc.iter().map(|c| c.as_ptr()).collect(), hname.iter().map(|c| c.as_ptr()).collect());
        let copts: Vec<std::ffi::CString> = opts.iter().map(|o| std::ffi::CString::new(o.as_str()).unwrap()).collect();
        let popts: Vec<*const c_char> = copts.iter().map(|c| c.as_ptr()).collect();
        let mut prog: Prog = std::ptr::null_mut();
        // SAFETY: all pointers are valid C strings alive for the calls (the header arrays hold
        // `headers.len()` each); `prog` is destroyed once.
        unsafe {
            let r = (self.create)(&mut prog, csrc.as_ptr(), cname.as_ptr(), headers.len() as c_int, phsrc.as_ptr(), phname.as_ptr());
            if r != 0 {
                return Err((format!("nvrtcCreateProgram: {}", self.err(r)), String::new()));
            }
            let rc = (self.compile)(prog, popts.len() as c_int, popts.as_ptr());
            let mut n = 0usize;
            (self.log_size)(prog, &mut n);
            let mut log = vec![0u8; n.max(1)];
            (self.log)(prog, log.as_mut_ptr() as *mut c_char);
            let log = String::from_utf8_lossy(&log).trim_end_matches('\0').to_string();
            let out = if rc != 0 {
                Err((self.err(rc), log))
            } else {
                let (size_f, get_f) = if cubin { (self.cubin_size, self.cubin) } else { (self.ptx_size, self.ptx) };
                let mut n = 0usize;
                size_f(prog, &mut n);
                let mut img = vec![0u8; n];
                get_f(prog, img.as_mut_ptr() as *mut c_char);
                if !cubin {
                    while img.last() == Some(&0) {
                        img.pop();
                    }
                }
                Ok((img, log))
            };
            (self.destroy)(&mut prog);
            out
        }
    }
}

/// Candidate NVRTC libraries, most specific first.
fn candidates() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(p) = std::env::var("AURAL_NVRTC") {
        v.push(PathBuf::from(p));
    }
    for r in super::libs::wheel_roots() {
        for lib in ["nvidia/cuda_nvrtc/lib/libnvrtc.so.12", "nvidia/cuda_nvrtc/lib/libnvrtc.so.13", "nvidia/cu13/lib/libnvrtc.so.13"] {
            v.push(r.join(lib));
        }
    }
    let mut homes: Vec<PathBuf> = ["CUDA_HOME", "CUDA_PATH"].iter().filter_map(|k| std::env::var(k).ok()).map(PathBuf::from).collect();
    homes.push(PathBuf::from("/usr/local/cuda"));
    if let Ok(rd) = std::fs::read_dir("/usr/local") {
        let mut more: Vec<PathBuf> =
            rd.flatten().map(|e| e.path()).filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("cuda-"))).collect();
        more.sort();
        more.reverse();
        homes.extend(more);
    }
    for h in homes {
        for sub in ["lib64", "lib", "targets/x86_64-linux/lib"] {
            for ver in ["12", "13"] {
                v.push(h.join(sub).join(format!("libnvrtc.so.{ver}")));
            }
            v.push(h.join(sub).join("libnvrtc.so"));
        }
    }
    v.retain(|p| p.exists());
    // Bare names last: whatever the dynamic loader's search path holds.
    for bare in ["libnvrtc.so.12", "libnvrtc.so.13", "libnvrtc.so"] {
        v.push(PathBuf::from(bare));
    }
    v
}

/// NVRTC, loaded once, or why not.
pub fn get() -> Result<&'static Nvrtc, String> {
    static LIB: OnceLock<Result<Nvrtc, String>> = OnceLock::new();
    LIB.get_or_init(|| {
        let mut tried = Vec::new();
        for c in candidates() {
            match Nvrtc::open(&c) {
                Ok(n) => return Ok(n),
                Err(e) => tried.push(e),
            }
        }
        Err("NVRTC (libnvrtc.so) was not found: install it with `pip install --target .cache/cuda nvidia-cuda-nvrtc-cu12`, set AURAL_CUDA_WHEELS to such a folder, or AURAL_NVRTC to the library".to_string())
    })
    .as_ref()
    .map_err(|e| e.clone())
}
