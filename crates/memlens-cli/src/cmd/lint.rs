//! `memlens lint`: check Python source for memory anti-patterns (a front end over
//! `memlens_lint`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use memlens_lint::{Config, Linter, OutputFormat, Report};

/// Arguments of `memlens lint`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories to check; `-` reads standard input [default: .].
    #[arg(value_name = "PATHS")]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    format: Format,
    /// Check only these rules: codes, prefixes (`ML1`), names or `ALL`, comma-separated.
    /// Overrides `select` and `ignore` from pyproject.toml.
    #[arg(long, value_delimiter = ',', value_name = "RULES")]
    select: Option<Vec<String>>,
    /// Do not check these rules (comma-separated), on top of the configuration.
    #[arg(long, value_delimiter = ',', value_name = "RULES")]
    ignore: Vec<String>,
    /// Read `[tool.memlens.lint]` from this pyproject.toml instead of the nearest one.
    #[arg(long, value_name = "FILE", conflicts_with = "isolated")]
    config: Option<PathBuf>,
    /// Ignore every configuration file.
    #[arg(long)]
    isolated: bool,
    /// Write the findings to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Exit 0 even when there are findings.
    #[arg(long)]
    exit_zero: bool,
    /// The file name to report for source read from standard input.
    #[arg(long, value_name = "PATH")]
    stdin_filename: Option<PathBuf>,
    /// Parse every statement, not only those that can hold a finding: slower, but every syntax
    /// error is reported.
    #[arg(long)]
    full_parse: bool,
    /// Check files on this many threads [default: one per core].
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
}

/// The output formats, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// Human-readable, like ruff.
    Text,
    /// A JSON list of findings.
    Json,
    /// SARIF 2.1.0.
    Sarif,
    /// GitHub Actions annotations.
    Github,
}

impl From<Format> for OutputFormat {
    fn from(f: Format) -> OutputFormat {
        match f {
            Format::Text => OutputFormat::Text,
            Format::Json => OutputFormat::Json,
            Format::Sarif => OutputFormat::Sarif,
            Format::Github => OutputFormat::Github,
        }
    }
}

/// Runs `memlens lint`: exit 1 when there are findings or files that could not be checked,
/// 0 when clean; errors (bad configuration, unknown rules) become exit status 2 in the caller.
pub fn exec(args: Args) -> anyhow::Result<u8> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let config = load_config(&args, &paths)?;
    let mut builder = Linter::builder()
        .config(config)
        .ignore(args.ignore.iter().cloned())
        .threads(args.threads)
        .full_parse(args.full_parse);
    if let Some(select) = &args.select {
        builder = builder.select(select.iter().cloned());
    }
    let linter = builder.build()?;

    let report = if paths.iter().any(|p| p == Path::new("-")) {
        if paths.len() > 1 {
            anyhow::bail!("`-` (standard input) cannot be combined with other paths");
        }
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        let name = args
            .stdin_filename
            .clone()
            .unwrap_or_else(|| PathBuf::from("<stdin>"));
        let mut report = Report {
            files_checked: 1,
            ..Report::default()
        };
        match linter.check_source(&name, &text) {
            Ok(diagnostics) => report.diagnostics = diagnostics,
            Err(problem) => report.problems.push(problem),
        }
        report
    } else {
        linter.check_paths(&paths)
    };

    let format = OutputFormat::from(args.format);
    if !format.includes_problems() {
        let stderr = std::io::stderr();
        memlens_lint::render_problems(&report, &mut stderr.lock())?;
    }
    match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            memlens_lint::render(format, &report, &mut out)?;
            out.flush()
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            memlens_lint::render(format, &report, &mut out)?;
            out.flush()?;
        }
    }
    Ok(if report.is_clean() || args.exit_zero {
        0
    } else {
        1
    })
}

fn load_config(args: &Args, paths: &[PathBuf]) -> anyhow::Result<Config> {
    if args.isolated {
        return Ok(Config::default());
    }
    if let Some(path) = &args.config {
        return Ok(Config::from_pyproject(path)?.unwrap_or_else(|| Config {
            root: path.parent().map(Path::to_path_buf),
            ..Config::default()
        }));
    }
    // The nearest pyproject.toml above the first path (or the file given on stdin).
    let start = args
        .stdin_filename
        .as_ref()
        .filter(|_| paths.iter().any(|p| p == Path::new("-")))
        .or_else(|| paths.first())
        .cloned()
        .unwrap_or_else(|| PathBuf::from("."));
    let start = if start.is_dir() {
        start
    } else {
        start.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let start = if start.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        start
    };
    Ok(Config::discover(&start)?
        .map(|(_, c)| c)
        .unwrap_or_default())
}
