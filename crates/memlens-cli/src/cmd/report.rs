//! `memlens report`: render a capture.

use std::path::PathBuf;

/// Arguments of `memlens report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The capture file.
    capture: PathBuf,
}

/// Runs `memlens report`.
pub fn exec(args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("cannot report on {}: not built yet", args.capture.display())
}
