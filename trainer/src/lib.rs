//! # aural-trainer
//!
//! Data sets, augmentation, mean teacher, metrics and checkpoints. The `trainer` binary's subcommands
//! arrive with the training issues.
pub use aural_models as models;
