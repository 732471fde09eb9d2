//! One module per subcommand.
pub mod grad;
