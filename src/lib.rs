//! # aural
//!
//! A compute engine for audio deep learning: hand-written CUDA C kernels compiled at run time by NVRTC
//! and launched through cudarc, with a fast CPU implementation of every op (rayon) as the reference
//! and the fallback. This facade re-exports the workspace crates; the `aural` binary is the CLI.
//!
//! Where things are:
//! - [`runtime`]: devices, tensors, every op (CPU and CUDA), safetensors I/O;
//! - [`models`]: audio I/O (`models::audio`), AST (`models::ast`), AST-SED (`models::ast_sed`),
//!   the SED post-processing and DCASE metrics (`models::sed`), the separator (`models::separator`),
//!   the S5 system (`models::s5`);
//! - [`autograd`]: the tape autograd the trainer uses;
//! - [`demo`]: the builtin demo detector.
//!
//! Runnable examples: `examples/detect.rs` (sound event detection on a WAV) and `examples/embed.rs`
//! (AST embeddings); the Python package (`python/`) and the C ABI (`capi/`) sit on this crate.
//!
//! ```no_run
//! use aural::runtime::{Device, Tensor, ops};
//! let (dev, why) = Device::auto();
//! println!("running on {dev}: {why}");
//! let a = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]).unwrap().to_device(dev).unwrap();
//! let b = ops::binary::add(&a, &a).unwrap();
//! assert_eq!(b.to_vec().unwrap(), vec![2.0, 4.0, 6.0]);
//! ```

#![deny(missing_docs)]

pub mod demo;

/// The tape autograd (parameters, ops with backward rules, optimizers).
pub use aural_autograd as autograd;
/// The CUDA C kernel sources and the CUDA-on-CPU emulator.
pub use aural_kernels as kernels;
/// The models, audio I/O, SED post-processing and metrics.
pub use aural_models as models;
/// Devices, tensors, ops, safetensors.
pub use aural_runtime as runtime;
pub use aural_runtime::{DType, Device, Tensor};
