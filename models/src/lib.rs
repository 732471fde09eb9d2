//! # aural-models
//!
//! Audio front end, AST, AST-SED and the S5 separator, built on `aural-runtime` ops.
pub use aural_runtime as runtime;
pub mod ast;
pub mod ast_sed;
pub mod audio;
pub mod m2d;
pub(crate) mod params;
pub mod plot;
pub mod s5;
pub mod sed;
pub mod separator;
