//! # aural-runtime
//!
//! Tensors, devices, the CPU backend (rayon; the reference and the fallback), the CUDA backend
//! (cudarc with dynamic loading + NVRTC; kernels in `aural-kernels`), and the op API, one module per
//! op family under [`ops`]. An op's `mod.rs` checks shapes and dtypes and dispatches on the device;
//! `cpu.rs` holds the reference implementation; `cuda.rs` the launcher of `kernels/cuda/<family>.cu`.
//!
//! Choice of crates: `cudarc` (maintained, dynamic loading so builds need no CUDA toolkit — `cust`
//! needs one at build time), `gemm` (pure-Rust, runtime-dispatched AVX2/AVX-512/NEON micro-kernels at
//! BLAS speed with no system BLAS to install), `half` for f16, `rayon` for CPU parallelism,
//! `safetensors` for weights (the format HF checkpoints ship in).

pub mod bench;
pub mod device;
pub mod dtype;
pub mod error;
pub mod gpu;
pub mod malloc;
pub mod ops;
pub(crate) mod power_pair;
pub mod safetensors_io;
pub mod tensor;
pub mod testing;

pub use device::Device;
pub use dtype::DType;
pub use error::{Error, Result};
pub use half::f16;
pub use tensor::{numel, CpuStorage, Tensor};
