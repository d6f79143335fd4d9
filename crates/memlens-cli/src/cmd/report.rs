//! `memlens report`: render a capture.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use memlens_analysis::{Report, View};
use memlens_report::Format;

/// Arguments of `memlens report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The capture file (`.mlens`); several for several processes (see --merge).
    #[arg(required = true, num_args = 1..)]
    captures: Vec<PathBuf>,
    /// Add the captures of each capture's child processes (`NAME.<pid>.mlens` beside
    /// `NAME.mlens`, written by `memlens run --follow-fork`).
    #[arg(long)]
    children: bool,
    /// Several captures as one report: each process becomes a root frame above its own
    /// stacks, totals add up, and the peak is the process tree's combined peak.
    #[arg(long)]
    merge: bool,
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
    /// Temporary view: freed within N further allocations (default 1000 when neither
    /// --temporary-allocs nor --temporary-ms is given; with both, both must hold).
    #[arg(long, value_name = "N")]
    temporary_allocs: Option<u64>,
    /// Temporary view: freed within T milliseconds (20 ms resolution).
    #[arg(long, value_name = "T")]
    temporary_ms: Option<f64>,
    /// Leaks view: count blocks allocated after the first `memlens.checkpoint(LABEL)`.
    #[arg(long, value_name = "LABEL")]
    from: Option<String>,
    /// Leaks view: count blocks still live at the first checkpoint LABEL after --from
    /// (default: at exit).
    #[arg(long, value_name = "LABEL")]
    to: Option<String>,
    /// Lines listed in the text report (and call stacks with --stack).
    #[arg(long, value_name = "N", default_value_t = 10)]
    top: usize,
    /// Show the call stacks that reach one line, with their bytes in the view (FILE may be
    /// the file's full path or its last components: `app.py:12`, `pkg/app.py:12`).
    #[arg(long, value_name = "FILE:LINE")]
    stack: Option<String>,
    /// A function's source with each line's memory (allocated, live at the peak, live at exit,
    /// allocations), as memory_profiler's @profile shows it: FILE for all its functions,
    /// FILE:FUNCTION for one, nothing for the five functions that allocated the most.
    #[arg(long, value_name = "FILE[:FUNCTION]", num_args = 0..=1, default_missing_value = "")]
    source: Option<String>,
}

impl Args {
    fn options(&self) -> anyhow::Result<memlens_analysis::Options> {
        if let Some(ms) = self.temporary_ms
            && !(ms >= 0.0 && ms.is_finite())
        {
            anyhow::bail!("--temporary-ms must be a non-negative number of milliseconds");
        }
        let temporary = match (self.temporary_allocs, self.temporary_ms) {
            (None, None) => memlens_analysis::TemporaryRule::default(),
            (n, ms) => memlens_analysis::TemporaryRule {
                max_allocations: n,
                max_ms: ms,
            },
        };
        Ok(memlens_analysis::Options {
            temporary,
            leaks_from: self.from.clone(),
            leaks_to: self.to.clone(),
            ..memlens_analysis::Options::default()
        })
    }
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
    /// Allocated and freed soon after (see --temporary-allocs, --temporary-ms).
    Temporary,
}

impl From<ViewArg> for View {
    fn from(v: ViewArg) -> View {
        match v {
            ViewArg::Peak => View::Peak,
            ViewArg::Leaks => View::Leaks,
            ViewArg::Allocations => View::Allocations,
            ViewArg::Temporary => View::Temporary,
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
    /// Gzipped pprof protobuf (`go tool pprof`).
    Pprof,
    /// speedscope JSON (<https://www.speedscope.app>).
    Speedscope,
    /// Folded stacks (`flamegraph.pl`, inferno).
    Collapsed,
    /// One self-contained HTML page (every view; opens on `--view`).
    Html,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
            FormatArg::Pprof => Format::Pprof,
            FormatArg::Speedscope => Format::Speedscope,
            FormatArg::Collapsed => Format::Collapsed,
            FormatArg::Html => Format::Html,
        }
    }
}

/// Reads and analyses a capture; every failure is one line naming the file.
pub fn load(path: &Path) -> anyhow::Result<Report> {
    load_with(path, &memlens_analysis::Options::default())
}

/// [`load`] with analysis options, drawing a progress bar on a terminal.
pub fn load_with(path: &Path, options: &memlens_analysis::Options) -> anyhow::Result<Report> {
    // Mapped only when large and quiet; a capture still being written is read (no SIGBUS).
    let bytes = memlens_analysis::CaptureBytes::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut bar = crate::progress::Bar::on_stderr("reading capture");
    let report = memlens_analysis::analyze_with_progress(&bytes, options, &mut |p| {
        bar.set(p.done_bytes, p.total_bytes)
    });
    bar.clear();
    report.with_context(|| format!("cannot read capture {}", path.display()))
}

/// `capture` with the extension `.html`, or with `.html` appended when that would be the
/// capture itself.
pub(crate) fn html_next_to(capture: &Path) -> PathBuf {
    let page = capture.with_extension("html");
    if page != capture {
        return page;
    }
    let mut name = capture.as_os_str().to_owned();
    name.push(".html");
    PathBuf::from(name)
}

/// Runs `memlens report`.
pub fn exec(mut args: Args) -> anyhow::Result<u8> {
    let stack = args.stack.as_deref().map(parse_file_line).transpose()?;
    if args.children {
        // A capture given and also found as another's child is read once.
        let mut all: Vec<PathBuf> = Vec::new();
        for c in &args.captures {
            for capture in std::iter::once(c.clone()).chain(child_captures(c)) {
                if !all.contains(&capture) {
                    all.push(capture);
                }
            }
        }
        args.captures = all;
    }
    let capture = args.captures[0].clone();
    let report = if args.captures.len() == 1 {
        load_with(&capture, &args.options()?)?
    } else if args.merge {
        let mut reports = Vec::new();
        for c in &args.captures {
            reports.push(load_with(c, &args.options()?)?);
        }
        memlens_analysis::merge(&reports.iter().collect::<Vec<_>>())
    } else if matches!(args.format, FormatArg::Text) && stack.is_none() && args.source.is_none() {
        return text_per_process(&args);
    } else {
        anyhow::bail!(
            "{} captures: --merge combines them into one report (or give one capture)",
            args.captures.len()
        );
    };
    if let Some(spec) = &args.source {
        let target =
            (!spec.is_empty()).then(|| memlens_report::source_view::SourceTarget::parse(spec));
        let mut buf = Vec::new();
        if !memlens_report::source_view::render(&report, target.as_ref(), &mut buf)? {
            eprintln!("memlens: no function of the capture matches {spec}");
            return Ok(1);
        }
        return write_buf(&buf, args.output.as_deref()).map(|()| 0);
    }
    if let Some((file, line)) = stack {
        let mut buf = Vec::new();
        let found = memlens_report::text::render_stacks_through(
            &report,
            args.view.into(),
            &file,
            line,
            args.top,
            &mut buf,
        )?;
        if !found {
            eprintln!(
                "memlens: no call stack reaches {file}:{line} in the {} view",
                View::from(args.view).name()
            );
            return Ok(1);
        }
        return write_buf(&buf, args.output.as_deref()).map(|()| 0);
    }
    // A page is a file to open, not text for a terminal: by default it goes next to the capture.
    let output = match (args.output, args.format) {
        (Some(path), _) if path.as_os_str() == "-" => None,
        (None, FormatArg::Html) if args.captures.len() > 1 => {
            Some(capture.with_extension("processes.html"))
        }
        (None, FormatArg::Html) => Some(html_next_to(&capture)),
        (output, _) => output,
    };
    if matches!(args.format, FormatArg::Text) {
        return write_text(&report, args.view.into(), args.top, output.as_deref()).map(|()| 0);
    }
    if matches!(args.format, FormatArg::Pprof) && output.is_none() {
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() {
            anyhow::bail!("pprof output is binary: give -o FILE.pb.gz or redirect it");
        }
    }
    let heap = match args.format {
        FormatArg::Html if args.captures.len() == 1 => super::heap::html_panel_or_warn(&capture),
        _ => None,
    };
    write_output(
        &report,
        heap.as_ref(),
        args.format.into(),
        args.view.into(),
        output.as_deref(),
    )?;
    if let (FormatArg::Html, Some(path)) = (args.format, &output) {
        eprintln!("HTML report: {}", path.display());
    }
    Ok(0)
}

/// The terminal summary, coloured when it goes to a terminal and `NO_COLOR` is not set.
/// The captures of `parent`'s child processes, and theirs: `STEM.<pid>[.<pid>...].mlens`
/// beside `STEM.mlens`, by pid.
pub(crate) fn child_captures(parent: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(stem), Some(ext)) = (
        parent.parent(),
        parent.file_stem().and_then(|s| s.to_str()),
        parent.extension().and_then(|e| e.to_str()),
    ) else {
        return Vec::new();
    };
    // Named as the parent is (`pool.mlens` gives `pool.123.mlens`, not `./pool.123.mlens`),
    // so a child also given by name is read once.
    let listed = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(listed) else {
        return Vec::new();
    };
    let mut children: Vec<(Vec<u64>, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let middle = name
                .strip_prefix(stem)?
                .strip_prefix('.')?
                .strip_suffix(ext)?;
            let pids = middle
                .strip_suffix('.')?
                .split('.')
                .map(|p| p.parse::<u64>().ok());
            let pids: Option<Vec<u64>> = pids.collect();
            Some((pids?, dir.join(&name)))
        })
        .collect();
    children.sort();
    children.into_iter().map(|(_, p)| p).collect()
}

/// Several captures without --merge: each process's summary, then the tree's totals.
fn text_per_process(args: &Args) -> anyhow::Result<u8> {
    let mut reports = Vec::new();
    for c in &args.captures {
        reports.push(load_with(c, &args.options()?)?);
    }
    let mut buf = Vec::new();
    for (c, r) in args.captures.iter().zip(&reports) {
        writeln!(buf, "== {} (pid {})\n", c.display(), r.meta.pid)?;
        let options = memlens_report::text::TextOptions {
            top: args.top,
            ..Default::default()
        };
        memlens_report::text::render(r, args.view.into(), &options, &mut buf)?;
        writeln!(buf)?;
    }
    let refs: Vec<&Report> = reports.iter().collect();
    write_tree_totals(&refs, &mut buf)?;
    write_buf(&buf, args.output.as_deref())?;
    Ok(0)
}

/// The process tree's totals: how many processes, the combined peak and the bound.
pub(crate) fn write_tree_totals(reports: &[&Report], out: &mut dyn Write) -> std::io::Result<()> {
    let (peak, sum) = memlens_analysis::combined_peak(reports);
    writeln!(
        out,
        "Process tree: {} processes, combined peak {} (their live memory on one clock, to \
         within 20 ms; the sum of their peaks, {}, is an upper bound); {} still live at exit",
        reports.len(),
        memlens_analysis::human_bytes(peak),
        memlens_analysis::human_bytes(sum),
        memlens_analysis::human_bytes(reports.iter().map(|r| r.totals.leaked_bytes).sum()),
    )
}

/// `FILE:LINE` as `--stack` takes it (the last colon splits, so a path may hold colons).
fn parse_file_line(spec: &str) -> anyhow::Result<(String, u32)> {
    spec.rsplit_once(':')
        .and_then(|(file, line)| Some((file, line.parse::<u32>().ok()?)))
        .filter(|(file, line)| !file.is_empty() && *line > 0)
        .map(|(file, line)| (file.to_owned(), line))
        .ok_or_else(|| anyhow::anyhow!("--stack takes FILE:LINE (app.py:12), not {spec:?}"))
}

fn write_buf(buf: &[u8], output: Option<&Path>) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            std::fs::write(path, buf).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let mut lock = std::io::stdout().lock();
            lock.write_all(buf)?;
            lock.flush()?;
            Ok(())
        }
    }
}

fn write_text(
    report: &Report,
    view: View,
    top: usize,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let color = output.is_none()
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let options = memlens_report::text::TextOptions {
        color,
        top,
        ..Default::default()
    };
    let mut buf = Vec::new();
    memlens_report::text::render(report, view, &options, &mut buf)?;
    match output {
        Some(path) => {
            std::fs::write(path, buf).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let mut lock = std::io::stdout().lock();
            lock.write_all(&buf)?;
            lock.flush()?;
            Ok(())
        }
    }
}

/// Writes `report` in `format`; an HTML page gets `heap` in its heap panel.
pub(crate) fn write_output(
    report: &Report,
    heap: Option<&memlens_report::html::HeapPanel>,
    format: Format,
    view: View,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    let render = |out: &mut dyn Write| match format {
        Format::Html => memlens_report::html::render_with_heap(
            report,
            heap,
            view,
            &memlens_report::html::HtmlOptions::default(),
            out,
        ),
        _ => memlens_report::render(report, format, view, out),
    };
    match output {
        Some(path) => {
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot write {}", path.display()))?,
            );
            render(&mut file)?;
            file.flush()?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            render(&mut lock)?;
            lock.flush()?;
        }
    }
    Ok(())
}
