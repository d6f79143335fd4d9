//! One module per subcommand: its clap arguments and its `exec`.
pub mod explain;
pub mod gc;
pub mod heap;
pub mod lint;
pub mod monitor;
pub mod report;
pub mod run;
