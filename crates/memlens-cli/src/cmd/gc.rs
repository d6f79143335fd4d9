//! `memlens gc`: what the garbage collector did during a run.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Arguments of `memlens gc`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The capture file (`.mlens`) of `memlens run` or `memlens.track()`.
    capture: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: FormatArg,
    /// Write here instead of standard output.
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
}

/// `--format`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    /// Readable summary.
    Text,
    /// JSON (the `memlens-gc` contract).
    Json,
}

/// Reads the collector's records of a capture; every failure is one line naming the file.
pub fn load(path: &Path) -> anyhow::Result<memlens_analysis::GcReport> {
    let bytes = memlens_analysis::CaptureBytes::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    memlens_analysis::analyze_gc(&bytes)
        .with_context(|| format!("cannot read capture {}", path.display()))
}

/// Runs `memlens gc`.
pub fn exec(args: Args) -> anyhow::Result<u8> {
    let report = load(&args.capture)?;
    let mut buf = Vec::new();
    match args.format {
        FormatArg::Text => memlens_report::gc::render_text(&report, &mut buf)?,
        FormatArg::Json => memlens_report::gc::render_json(&report, &mut buf)?,
    }
    match &args.output {
        Some(path) => {
            std::fs::write(path, buf).with_context(|| format!("cannot write {}", path.display()))?
        }
        None => {
            let mut lock = std::io::stdout().lock();
            if let Err(e) = lock.write_all(&buf).and_then(|()| lock.flush())
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                return Err(e.into());
            }
        }
    }
    Ok(0)
}
