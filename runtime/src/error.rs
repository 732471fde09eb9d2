//! The runtime's error type. Every message names the op (and for kernels the version and dtype) so a
//! user can tell which call failed without a backtrace.

use crate::DType;

/// Errors of the runtime. Library code returns these; binaries wrap them with `anyhow` context.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A shape precondition of an op does not hold.
    #[error("{op}: {msg}")]
    Shape { op: &'static str, msg: String },
    /// An op was called with a dtype it does not support.
    #[error("{op}: dtype {got:?} not supported ({msg})")]
    DType { op: &'static str, got: DType, msg: String },
    /// The operands live on different devices.
    #[error("{op}: operands are on different devices ({a} and {b}); move them with to_device first")]
    DeviceMismatch { op: &'static str, a: String, b: String },
    /// CUDA was asked for but cannot be used here (no driver, no GPU, no NVRTC). One sentence.
    #[error("{0}")]
    CudaUnavailable(String),
    /// A CUDA driver call failed.
    #[error("CUDA {what}: {msg}")]
    Cuda { what: String, msg: String },
    /// NVRTC rejected a kernel source; the whole program log is included.
    #[error("NVRTC could not compile kernels/cuda/{family}.cu for {arch}:\n{log}")]
    Nvrtc { family: String, arch: String, log: String },
    /// A kernel launch was refused (by the host checks or by the emulator).
    #[error("{op} kernel {kernel}: {msg}")]
    Launch { op: &'static str, kernel: String, msg: String },
    /// Reading or writing a tensor file failed.
    #[error("{path}: {msg}")]
    File { path: String, msg: String },
    /// Anything else, with a sentence saying what.
    #[error("{0}")]
    Msg(String),
}

/// The runtime's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn shape(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Shape { op, msg: msg.into() }
    }
}
