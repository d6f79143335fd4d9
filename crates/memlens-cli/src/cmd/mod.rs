//! One module per subcommand: its clap arguments and its `exec`.
pub mod explain;
pub mod gc;
pub mod heap;
pub mod lint;
mod live;
pub mod monitor;
pub mod report;
pub mod run;
