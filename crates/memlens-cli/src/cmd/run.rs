//! `memlens run`: track a Python program and report on it.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `memlens run`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["module", "code", "script"]))]
pub struct Args {
    /// Capture file to write [default: memlens-<program>-<pid>.mlens in the current directory].
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Record every allocation and free instead of sampling.
    #[arg(long, conflicts_with = "sample_rate")]
    exact: bool,
    /// Mean number of bytes between samples (Poisson sampling by bytes).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_SAMPLE_RATE)]
    sample_rate: u64,
    /// Also record native (C) frames of sampled allocations [not available yet: native
    /// allocations are attributed to the Python line that called into native code].
    #[arg(long)]
    native_stacks: bool,
    /// Keep tracking in forked children; each writes its own capture.
    #[arg(long)]
    follow_fork: bool,
    /// Take a heap snapshot when the program exits (into the capture; `memlens heap CAPTURE`
    /// reads it). SIGUSR2 takes one at any time during the run.
    #[arg(long, value_enum, default_value = "never", value_name = "WHEN")]
    heap_snapshot: HeapSnapshotWhen,
    /// Write the HTML report here [default: next to the capture].
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Print no summary; only write the capture.
    #[arg(short, long)]
    quiet: bool,
    /// Show live memory while the program runs.
    #[arg(long)]
    live: bool,
    /// Run a library module as a script, like `python -m`.
    #[arg(short = 'm', value_name = "MODULE")]
    module: Option<String>,
    /// Run a program passed as a string, like `python -c`.
    #[arg(short = 'c', value_name = "CODE")]
    code: Option<String>,
    /// The script to run, then its arguments.
    #[arg(value_name = "SCRIPT")]
    script: Option<PathBuf>,
    /// Arguments passed to the program.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<OsString>,
}

/// The default mean sampling interval in bytes; see docs/performance.md for how it was chosen.
pub const DEFAULT_SAMPLE_RATE: u64 = 512 * 1024;

/// When `memlens run` takes a heap snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HeapSnapshotWhen {
    /// When the program exits.
    Exit,
    /// Never.
    Never,
}

/// What to run: a script, a module or a code string.
#[derive(Debug, Clone)]
pub enum RunTarget {
    /// A script path.
    Script(PathBuf),
    /// A module name, as with `python -m`.
    Module(String),
    /// Source code, as with `python -c`.
    Code(String),
}

/// Everything a [`ProgramRunner`] needs to run and track one program.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The program to run.
    pub target: RunTarget,
    /// Its arguments (`sys.argv[1:]`).
    pub args: Vec<OsString>,
    /// Capture file path.
    pub output: PathBuf,
    /// Record every event instead of sampling.
    pub exact: bool,
    /// Mean bytes between samples.
    pub sample_rate: u64,
    /// Record native frames too.
    pub native_stacks: bool,
    /// Keep tracking in forked children.
    pub follow_fork: bool,
    /// Take a heap snapshot at exit.
    pub heap_snapshot_at_exit: bool,
    /// Show live memory while running.
    pub live: bool,
}

/// Runs a Python program under the tracker; implemented by the Python extension.
pub trait ProgramRunner {
    /// Runs the program to completion and returns its exit status.
    ///
    /// An `Err` means memlens itself failed (the program may not have run).
    fn run(&self, options: &RunOptions) -> anyhow::Result<u8>;

    /// The Python interpreter to start a child `python -m memlens` with (`sys.executable`:
    /// a virtual environment's own, not the base interpreter its binary links to).
    fn interpreter(&self) -> anyhow::Result<std::path::PathBuf> {
        std::env::current_exe()
            .map_err(|e| anyhow::anyhow!("cannot find the Python interpreter to run: {e}"))
    }

    /// Runs `wait` with the interpreter's own Ctrl-C handling set aside: `--live` waits for a
    /// child process that receives Ctrl-C itself, and the interrupt must not surface as an
    /// exception in this process afterwards.
    fn without_interrupts(
        &self,
        wait: &mut dyn FnMut() -> anyhow::Result<u8>,
    ) -> anyhow::Result<u8> {
        wait()
    }
}

/// Runs `memlens run`.
pub fn exec(args: Args, runner: Option<&dyn ProgramRunner>) -> anyhow::Result<u8> {
    let runner = runner.ok_or_else(|| {
        anyhow::anyhow!("`memlens run` needs the Python package: install memlens with pip")
    })?;
    let target = match (args.module, args.code, args.script) {
        (Some(module), _, _) => RunTarget::Module(module),
        (_, Some(code), _) => RunTarget::Code(code),
        (_, _, Some(script)) => RunTarget::Script(script),
        _ => anyhow::bail!("nothing to run: give a script, -m MODULE or -c CODE"),
    };
    if let RunTarget::Script(script) = &target
        && !script.is_file()
    {
        anyhow::bail!("cannot run {}: no such file", script.display());
    }
    if args.native_stacks {
        // Refused rather than ignored: a user asking for C frames must not get a report that
        // silently lacks them.
        anyhow::bail!(
            "--native-stacks is not available yet: native allocations are attributed to the \
             Python line that called into native code"
        );
    }
    let output_given = args.output.is_some();
    let output = args.output.unwrap_or_else(|| default_output(&target));
    // With no output option, the HTML report goes next to the capture (unless --quiet).
    let html = match &args.html {
        Some(path) => Some(path.clone()),
        None if !output_given && !args.quiet => Some(super::report::html_next_to(&output)),
        None => None,
    };
    check_writable(&output)?;
    if let Some(path) = &args.html {
        check_writable(path)
            .map_err(|_| anyhow::anyhow!("cannot write HTML report {}", path.display()))?;
    }
    let options = RunOptions {
        output: output.clone(),
        target,
        args: args.args,
        exact: args.exact,
        sample_rate: args.sample_rate,
        native_stacks: args.native_stacks,
        follow_fork: args.follow_fork,
        heap_snapshot_at_exit: args.heap_snapshot == HeapSnapshotWhen::Exit,
        live: args.live,
    };
    let pid = std::process::id();
    let status = if options.live {
        let python = runner.interpreter()?;
        runner.without_interrupts(&mut || super::live::exec(&options, &python))?
    } else {
        runner.run(&options)?
    };
    // A forked child returns here too: only the original process summarizes.
    if std::process::id() != pid || (args.quiet && html.is_none()) {
        return Ok(status);
    }
    let report = match super::report::load(&output) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("memlens: cannot summarize {}: {e:#}", output.display());
            return Ok(status);
        }
    };
    if let Some(path) = &html {
        let heap = super::heap::html_panel_or_warn(&output);
        super::report::write_output(
            &report,
            heap.as_ref(),
            memlens_report::Format::Html,
            memlens_analysis::View::Peak,
            Some(path),
        )?;
    }
    if !args.quiet {
        summarize(&report, &output, html.as_deref());
        if args.heap_snapshot == HeapSnapshotWhen::Exit {
            eprintln!("Heap:    memlens heap {}", output.display());
        }
    }
    Ok(status)
}

/// `memlens-<program>-<pid>.mlens` in the current directory.
fn default_output(target: &RunTarget) -> PathBuf {
    let name = match target {
        RunTarget::Script(p) => p.file_stem().map(|s| s.to_string_lossy().into_owned()),
        RunTarget::Module(m) => Some(m.replace('.', "_")),
        RunTarget::Code(_) => Some("c".to_owned()),
    };
    let name: String = name
        .unwrap_or_else(|| "program".into())
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from(format!("memlens-{name}-{}.mlens", std::process::id()))
}

/// Fails early, before the program runs, when the capture cannot be created.
fn check_writable(path: &std::path::Path) -> anyhow::Result<()> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot write capture {}: {e}", path.display()))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Prints the end-of-run summary to stderr (stdout belongs to the program).
fn summarize(
    report: &memlens_analysis::Report,
    capture: &std::path::Path,
    html: Option<&std::path::Path>,
) {
    let mut out = Vec::new();
    let options = memlens_report::text::TextOptions {
        top: 5,
        show_source: true,
        ..Default::default()
    };
    // Peak lines, then leaks, then findings last, where they are read.
    let mut without_findings = report.clone();
    without_findings.findings.clear();
    let _ = memlens_report::text::render(
        &without_findings,
        memlens_analysis::View::Peak,
        &options,
        &mut out,
    );
    if report.totals.leaked_bytes > 0 {
        let _ = writeln!(out);
        let _ = memlens_report::text::render_sites(
            report,
            memlens_analysis::View::Leaks,
            &options,
            &mut out,
        );
    }
    if !report.findings.is_empty() {
        let _ = writeln!(out);
        let _ = memlens_report::text::render_findings(report, &mut out);
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Capture: {}", capture.display());
    if let Some(html) = html {
        let _ = writeln!(out, "Report:  {}", html.display());
    }
    let _ = writeln!(
        out,
        "More:    memlens report {} --view leaks|allocations --format json",
        capture.display()
    );
    let _ = std::io::stderr().write_all(&out);
}
