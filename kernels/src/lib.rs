//! # aural-kernels
//!
//! The hand-written CUDA C sources of every op family (`kernels/cuda/<family>.cu`), embedded with
//! `include_str!` so the runtime can compile them with NVRTC on first use, and [`emu`], the
//! CUDA-on-CPU emulator that runs the very same sources as C++ so every kernel is verified on machines
//! without a GPU.
//!
//! Adding a family: put `cuda/<family>.cu` here, add one line to [`SOURCES`], and the NVRTC gate, the
//! ptxas report and the emulator pick it up.
//!
//! Device code used by several families lives in headers (`cuda/<name>.cuh`, listed in [`HEADERS`]),
//! included with `#include "<name>.cuh"`: NVRTC gets them as in-memory headers (no include path to
//! find at run time) and the emulator's g++ finds them in `cuda/`. Header functions are `inline` or
//! templates, so one definition per translation unit links in the emulator's single library.

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

sources![
    "binary",
    "matmul",
    "unary",
    "shape",
    "fbank",
    "stft",
    "softmax",
    "layernorm",
    "reduce",
    "adamw",
    "gru",
    "attention",
    "patch_embed",
    "conv2d",
    "conv_transpose",
    "pool",
    "complex_mask",
    "melspec",
    "resize",
    "groupnorm",
    "standardize"
];

/// A header shared by several families (see the crate doc).
#[derive(Debug, Clone, Copy)]
pub struct KernelHeader {
    /// The name `.cu` files include it by (e.g. `"common.cuh"`).
    pub name: &'static str,
    /// The CUDA C text.
    pub src: &'static str,
}

/// Every shared header.
pub const HEADERS: &[KernelHeader] = &[KernelHeader { name: "common.cuh", src: include_str!("../cuda/common.cuh") }];

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
            let ident: String = head.trim_end().chars().rev().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<Vec<_>>().into_iter().rev().collect();
            if ident == "__launch_bounds__" {
                let close = scan[p..].find(')').map(|c| p + c + 1).unwrap_or(scan.len());
                scan = &scan[close..];
                continue;
            }
            // `name##_fwd_f32` inside a macro is a name template, not a kernel: macro-generated
            // kernels are found in the compiled PTX (`ptx_entries`) or by the emulator's preprocessor.
            let pasted = head.trim_end().strip_suffix(ident.as_str()).is_some_and(|h| h.ends_with("##"));
            if !ident.is_empty() && !pasted {
                out.push(ident);
            }
            break;
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Names of the kernels (`.entry`) in PTX text — the ground truth after the preprocessor.
pub fn ptx_entries(ptx: &str) -> Vec<String> {
    let mut v: Vec<String> = ptx
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix(".visible .entry ").or_else(|| l.trim_start().strip_prefix(".entry ")))
        .map(|r| r.split(|c: char| c == '(' || c.is_whitespace()).next().unwrap_or("").to_string())
        .filter(|n| !n.is_empty())
        .collect();
    v.sort();
    v.dedup();
    v
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
        let m = "#define K(name) extern \"C\" __global__ void name##_fwd_f32(const float* x) {}";
        assert!(kernel_names(m).is_empty());
        let ptx = ".visible .entry add_fwd_f32_v1(\n.param .u64 p\n.visible .entry mul_fwd_f32_v2(";
        assert_eq!(ptx_entries(ptx), vec!["add_fwd_f32_v1".to_string(), "mul_fwd_f32_v2".to_string()]);
    }
    #[test]
    fn every_source_has_kernels() {
        for s in SOURCES {
            assert!(s.src.contains("__global__"), "{} has no __global__ kernel", s.file);
        }
    }
}
