//! # aural
//!
//! A compute engine for audio deep learning: hand-written CUDA C kernels compiled at run time by NVRTC
//! and launched through cudarc, with a fast CPU implementation of every op (rayon) as the reference
//! and the fallback. This facade re-exports the workspace crates; the `aural` binary is the CLI
//! (`doctor`, `bench`, and the model commands as they land).
//!
//! ```no_run
//! use aural::runtime::{Device, Tensor, ops};
//! let (dev, why) = Device::auto();
//! println!("running on {dev}: {why}");
//! let a = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]).unwrap().to_device(dev).unwrap();
//! let b = ops::binary::add(&a, &a).unwrap();
//! assert_eq!(b.to_vec().unwrap(), vec![2.0, 4.0, 6.0]);
//! ```

pub use aural_autograd as autograd;
pub use aural_kernels as kernels;
pub use aural_models as models;
pub use aural_runtime as runtime;
pub use aural_runtime::{DType, Device, Tensor};
