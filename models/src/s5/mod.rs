//! The S5 system (seed 003, DCASE 2025 task 4): label selection from the tagger's probabilities, the
//! tagger → separator pipeline, and the task's metrics (label accuracy, CA-SDRi).

pub mod metrics;
pub mod pipeline;
pub mod select;

pub use pipeline::{S5Output, S5System};
