//! # aural-trainer
//!
//! The `trainer` binary's library: the run directory and shared loop machinery ([`run`]), the TOML
//! configuration ([`config`]), DESED-format data sets and the batch loader ([`data`]), augmentations
//! ([`augment`]), the SED fine-tuning with mean teacher ([`sed`]), the separator's fine-tuning
//! ([`separator`]) and the soundscape synthesiser ([`synth`]).
pub use aural_models as models;

pub mod augment;
pub mod config;
pub mod data;
pub mod mixing;
pub mod run;
pub mod sed;
pub mod separator;
pub mod synth;
pub mod toy;
