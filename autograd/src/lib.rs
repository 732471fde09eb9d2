//! # aural-autograd
//!
//! The tape autograd (Wengert list), backward rules and optimizers. Empty until the autograd issue
//! lands; re-exports the runtime so downstream crates depend on one path.
pub use aural_runtime as runtime;
