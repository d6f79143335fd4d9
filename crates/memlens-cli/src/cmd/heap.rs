//! `memlens heap`: who keeps memory alive in a heap snapshot, and what grew between snapshots.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use memlens_heap::{Analysis, Format, HeapReport, ReportOptions, Snapshot};

/// Arguments of `memlens heap`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The heap snapshot to analyse (with --diff: the newest one).
    snapshot: PathBuf,
    /// An older snapshot of the same program to compare with. Repeat it, oldest first, for
    /// growth across three or more snapshots: then only what grew every time is shown.
    #[arg(long = "diff", value_name = "OLDER")]
    diff: Vec<PathBuf>,
    /// Explain why objects are alive: a type name (`Record`, `app.models.Record`, `app.*`) or an
    /// allocation site (`app/cache.py:12`).
    #[arg(long, value_name = "PATTERN")]
    why: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: FormatArg,
    /// Rows per view.
    #[arg(long, value_name = "N", default_value_t = 20)]
    top: usize,
    /// Write here instead of standard output.
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Readable summary.
    Text,
    /// JSON (the `memlens-heap` contract).
    Json,
    /// Chrome DevTools / MemLab `.heapsnapshot` of the snapshot's graph.
    Heapsnapshot,
}

/// The magic of memlens capture files (`memlens-format`), to say what they are.
const CAPTURE_MAGIC: &[u8] = b"MLENS\0\r\n";

/// Reads a heap snapshot; every failure is one line naming the file.
fn load(path: &Path) -> anyhow::Result<Snapshot> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.starts_with(CAPTURE_MAGIC) {
        anyhow::bail!(
            "{} is a capture file; this build reads heap snapshot files only \
             (write one with memlens.snapshot(path))",
            path.display()
        );
    }
    Snapshot::read_from(&bytes).with_context(|| format!("cannot read {}", path.display()))
}

/// Runs `memlens heap`.
pub fn exec(args: Args) -> anyhow::Result<u8> {
    if args.format == FormatArg::Heapsnapshot && (!args.diff.is_empty() || args.why.is_some()) {
        anyhow::bail!(
            "--format heapsnapshot exports one snapshot's graph; --diff and --why do not apply \
             (DevTools compares two exported snapshots itself)"
        );
    }
    let newest = load(&args.snapshot)?;
    let output = |write: &mut dyn FnMut(&mut dyn Write) -> anyhow::Result<()>| match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            write(&mut out)?;
            out.flush()
                .with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            write(&mut out)?;
            Ok(out.flush()?)
        }
    };
    if args.format == FormatArg::Heapsnapshot {
        return output(&mut |out| Ok(newest.write_heapsnapshot(out)?)).map(|()| 0);
    }
    let older: Vec<Snapshot> = args
        .diff
        .iter()
        .map(|p| load(p))
        .collect::<Result<_, _>>()?;
    let analyses: Vec<Analysis<'_>> = older
        .iter()
        .chain(std::iter::once(&newest))
        .map(Analysis::new)
        .collect();
    let series: Vec<&Analysis<'_>> = analyses.iter().collect();
    let options = ReportOptions::new().top(args.top).why(args.why.clone());
    let report = HeapReport::new(&series, &options);
    let format = match args.format {
        FormatArg::Json => Format::Json,
        _ => Format::Text,
    };
    output(&mut |out| Ok(report.write(format, out)?))?;
    Ok(0)
}
