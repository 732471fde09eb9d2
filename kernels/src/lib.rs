//! # aural-kernels
//!
//! The hand-written CUDA C sources of every op family (`kernels/cuda/<family>.cu`), embedded with
//! `include_str!` so the runtime can compile them with NVRTC on first use, and [`emu`], the
//! CUDA-on-CPU emulator that runs the very same sources as C++ so every kernel is verified on machines
//! without a GPU.
//!
//! Adding a family: put `cuda/<family>.cu` here, add one line to [`SOURCES`], and the NVRTC gate, the
//! ptxas report and the emulator pick it up.

pub mod emu;

/// One CUDA C source file: an op family.
#[derive(Debug, Clone, Copy)]
pub struct KernelSource {
    /// Op family, also the NVRTC program / module name (e.g. `"binary"`).
    pub family: &'static str,
    /// Path relative to the crate root (for messages).
    pub file: &'static str,
    /// The CUDA C text.
    pub src: &'static str,
}

macro_rules! sources {
    ($($family:literal),* $(,)?) => {
        /// Every kernel family, in build order.
        pub const SOURCES: &[KernelSource] = &[
            $(KernelSource { family: $family, file: concat!("cuda/", $family, ".cu"),
                             src: include_str!(concat!("../cuda/", $family, ".cu")) },)*
        ];
    };
}

sources!["binary"];

/// The source of one family, if it exists.
pub fn source(family: &str) -> Option<&'static KernelSource> {
    SOURCES.iter().find(|s| s.family == family)
}

/// Names of all `__global__` functions defined in `src` (the `extern "C"` kernel names).
/// Used by the NVRTC gate and the "every kernel has an emulator test" check.
pub fn kernel_names(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = src;
    let mut rest = bytes;
    while let Some(pos) = rest.find("__global__") {
        rest = &rest[pos + "__global__".len()..];
        // Skip attributes such as __launch_bounds__(256) and the return type; the name is the
        // identifier immediately before the first '(' that is not part of __launch_bounds__.
        let mut scan = rest;
        loop {
            let Some(p) = scan.find('(') else { break };
            let head = &scan[..p];
            let ident: String = head
                .trim_end()
                .chars()
                .rev()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if ident == "__launch_bounds__" {
                let close = scan[p..].find(')').map(|c| p + c + 1).unwrap_or(scan.len());
                scan = &scan[close..];
                continue;
            }
            if !ident.is_empty() {
                out.push(ident);
            }
            break;
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn finds_kernel_names() {
        let src = "extern \"C\" __global__ void __launch_bounds__(256) foo_fwd_f32(const float* x) {}\n\
                   template<int N> __device__ void helper() {}\n\
                   extern \"C\" __global__ void bar(int n) {}";
        assert_eq!(kernel_names(src), vec!["bar".to_string(), "foo_fwd_f32".to_string()]);
    }
    #[test]
    fn every_source_has_kernels() {
        for s in SOURCES {
            assert!(!kernel_names(s.src).is_empty(), "{} has no __global__ kernel", s.file);
        }
    }
}
