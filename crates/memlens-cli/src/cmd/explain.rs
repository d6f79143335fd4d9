//! `memlens explain` (not built yet).

/// Arguments of `memlens explain`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Arguments, not yet interpreted.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<std::ffi::OsString>,
}

/// Fails: this command is not built yet.
pub fn exec(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("`memlens explain` is not available in this build yet")
}
