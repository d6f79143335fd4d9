//! `memlens report`: render a capture.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use memlens_analysis::{Report, View};
use memlens_report::Format;

/// Arguments of `memlens report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The capture file (`.mlens`).
    capture: PathBuf,
    /// Which memory to rank lines by.
    #[arg(long, value_enum, default_value = "peak")]
    view: ViewArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: FormatArg,
    /// Write here instead of standard output (`-` for standard output) [html: default
    /// `CAPTURE` with the extension `.html`].
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
}

/// `--view`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ViewArg {
    /// Live at the high-water mark.
    Peak,
    /// Still live at exit.
    Leaks,
    /// Everything allocated.
    Allocations,
}

impl From<ViewArg> for View {
    fn from(v: ViewArg) -> View {
        match v {
            ViewArg::Peak => View::Peak,
            ViewArg::Leaks => View::Leaks,
            ViewArg::Allocations => View::Allocations,
        }
    }
}

/// `--format`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    /// Terminal summary.
    Text,
    /// JSON (the `memlens-report` contract).
    Json,
    /// One self-contained HTML page (every view; opens on `--view`).
    Html,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
            FormatArg::Html => Format::Html,
        }
    }
}

/// Reads and analyses a capture; every failure is one line naming the file.
pub fn load(path: &Path) -> anyhow::Result<Report> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // A plain read rather than a map: a capture may still be growing (or be truncated) while
    // we read it, which a map would turn into SIGBUS.
    let bytes = {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut v)
            .with_context(|| format!("cannot read {}", path.display()))?;
        v
    };
    memlens_analysis::analyze(&bytes, &memlens_analysis::Options::default())
        .with_context(|| format!("cannot read capture {}", path.display()))
}

/// Runs `memlens report`.
pub fn exec(args: Args) -> anyhow::Result<u8> {
    let report = load(&args.capture)?;
    // A page is a file to open, not text for a terminal: by default it goes next to the capture.
    let output = match (args.output, args.format) {
        (Some(path), _) if path.as_os_str() == "-" => None,
        (None, FormatArg::Html) => Some(args.capture.with_extension("html")),
        (output, _) => output,
    };
    write_output(
        &report,
        args.format.into(),
        args.view.into(),
        output.as_deref(),
    )?;
    if let (FormatArg::Html, Some(path)) = (args.format, &output) {
        eprintln!("HTML report: {}", path.display());
    }
    Ok(0)
}

pub(crate) fn write_output(
    report: &Report,
    format: Format,
    view: View,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot write {}", path.display()))?,
            );
            memlens_report::render(report, format, view, &mut file)?;
            file.flush()?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            memlens_report::render(report, format, view, &mut lock)?;
            lock.flush()?;
        }
    }
    Ok(())
}
