//! `memlens run`: track a Python program and report on it.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

/// `memlens run --help`: what the command does, for a user who has not read the docs.
pub const LONG_ABOUT: &str = "\
Run a Python program under the memory tracker and report on it.

The program runs in this Python interpreter, as `python SCRIPT` would run it: same sys.argv, \
same exit status, same output. memlens hooks Python's allocators and the native malloc family, \
and records where memory is allocated. When the program ends, memlens prints a summary on \
stderr (the peak, what was still alive at exit, the lines responsible and findings with \
fixes) and writes two files in the current directory:

  memlens-<program>-<pid>.mlens   the capture: `memlens report`, `memlens heap` read it
  memlens-<program>-<pid>.html    the HTML report: flame graphs, top lines, memory over time

Modes: by default allocations are sampled (a byte-weighted sample, mean --sample-rate bytes \
apart): the program runs at nearly full speed, totals (peak, live, allocated) are exact and \
per-line figures are estimates, marked `~`. --exact records every allocation and free: exact \
per-line figures, at some cost in speed.

memlens's own options go before the program: everything after SCRIPT, `-m MODULE` or \
`-c CODE` is the program's own command line.";

/// Examples shown at the end of `memlens run --help`.
pub const EXAMPLES: &str = "\
Examples:
  memlens run app.py --input data.csv        app.py sees ['app.py', '--input', 'data.csv']
  memlens run --exact -m mypkg.cli serve -v  a module, like `python -m mypkg.cli serve -v`
  memlens run -c 'import app; app.main()'
  memlens run -o build.mlens build.py        capture in build.mlens, report in build.html
  memlens run --follow-fork train.py         also track forked and multiprocessing children
  memlens report build.mlens --view leaks    what was still alive at exit, by line";

/// Arguments of `memlens run`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["module", "code", "script"]))]
pub struct Args {
    /// Capture file to write [default: memlens-<program>-<pid>.mlens in the current
    /// directory]; the HTML report goes next to it, with the extension .html.
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
    /// Store the first 64 characters of every str and bytes in heap snapshots (off: values may
    /// be secrets; duplicates are found by a hash of each value either way).
    #[arg(long)]
    heap_values: bool,
    /// Write the HTML report here [default: next to the capture, as CAPTURE.html].
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Print no summary and write no HTML report (unless --html asks for one); only the
    /// capture.
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
    /// The script to run.
    #[arg(value_name = "SCRIPT")]
    script: Option<PathBuf>,
    /// The program's own arguments: everything after SCRIPT, `-m MODULE` or `-c CODE` becomes
    /// its `sys.argv[1:]`, as with `python` (memlens's options go before the program).
    #[arg(value_name = "ARGS")]
    args: Vec<OsString>,
}

impl Args {
    /// Sets the program's arguments, split off by [`split_program_args`] before parsing.
    pub(crate) fn set_program_args(&mut self, args: Vec<OsString>) {
        self.args = args;
    }
}

/// Splits `memlens run`'s arguments (those after `run`) at the program: what comes after
/// SCRIPT, `-m MODULE` or `-c CODE` belongs to the program and is returned, and `args` keeps
/// memlens's options and the target. Split by hand because clap would otherwise read the
/// program's own options (`app.py -o out.csv`, `app.py --help`) as memlens's. As with
/// `python`, `--` ends memlens's options (the next argument is the script) and a `--` after
/// the target is the program's. Which options take a value is read from clap's definition,
/// so the two cannot disagree.
pub(crate) fn split_program_args(args: &mut Vec<OsString>) -> Vec<OsString> {
    use clap::Args as _;
    let command = Args::augment_args(clap::Command::new("run"));
    let takes_value = |arg: &clap::Arg| arg.get_action().takes_values();
    let valued_long: Vec<String> = command
        .get_arguments()
        .filter(|a| !a.is_positional() && takes_value(a))
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    let valued_short: Vec<char> = command
        .get_arguments()
        .filter(|a| !a.is_positional() && takes_value(a))
        .filter_map(|a| a.get_short())
        .collect();
    let mut i = 0;
    while i < args.len() {
        let Some(arg) = args[i].to_str() else {
            // Not UTF-8: not one of memlens's options, so it is the script.
            return args.split_off(i + 1);
        };
        if arg == "--" {
            // `memlens run -- app.py ...`: clap reads the marker and the script after it.
            return args.split_off((i + 2).min(args.len()));
        }
        if arg.starts_with("--") {
            let takes = !arg.contains('=') && valued_long.iter().any(|l| l == arg);
            i += if takes { 2 } else { 1 };
            continue;
        }
        if let Some(flags) = arg.strip_prefix('-')
            && !flags.is_empty()
        {
            // A cluster of short flags (`-qo FILE`, `-mpkg.mod`): the first that takes a value
            // takes the rest of the cluster, or the next argument.
            for (at, flag) in flags.char_indices() {
                if valued_short.contains(&flag) {
                    let attached = at + flag.len_utf8() < flags.len();
                    let end = if attached { i + 1 } else { i + 2 };
                    if flag == 'm' || flag == 'c' {
                        return args.split_off(end.min(args.len()));
                    }
                    i = end;
                    break;
                }
                if at + flag.len_utf8() == flags.len() {
                    i += 1;
                }
            }
            continue;
        }
        // The first positional argument is the script.
        return args.split_off(i + 1);
    }
    Vec::new()
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
    /// Store str/bytes value previews in heap snapshots.
    pub heap_values: bool,
    /// Show live memory while running.
    pub live: bool,
}

/// How a program run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// The program's exit status.
    pub status: u8,
    /// Whether it ran under tracking (and left a capture).
    pub tracked: bool,
    /// Why writing the capture failed (a full disk, say): the capture holds what was written
    /// before.
    pub write_error: Option<String>,
}

/// Runs a Python program under the tracker; implemented by the Python extension.
pub trait ProgramRunner {
    /// Runs the program to completion and returns its exit status, and whether it ran under
    /// tracking (a program that cannot start, such as one with a syntax error, fails as python
    /// fails: its status, no capture).
    ///
    /// An `Err` means memlens itself failed (the program may not have run).
    fn run(&self, options: &RunOptions) -> anyhow::Result<Ran>;

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
    // The capture and the report are named as the user gave them (their shell stays where it
    // was), but opened by absolute path: the program may change directory before memlens
    // reads the capture back.
    let shown_output = args.output.unwrap_or_else(|| default_output(&target));
    let output = absolute(shown_output.clone());
    // The HTML report goes next to the capture unless --html puts it elsewhere or --quiet
    // asks for the capture alone.
    let shown_html = match &args.html {
        Some(path) => Some(path.clone()),
        None if !args.quiet => Some(super::report::html_next_to(&shown_output)),
        None => None,
    };
    let html = shown_html.clone().map(absolute);
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
        heap_values: args.heap_values,
        live: args.live,
    };
    let pid = std::process::id();
    let Ran {
        status,
        tracked,
        write_error,
    } = if options.live {
        let python = runner.interpreter()?;
        let status = runner.without_interrupts(&mut || super::live::exec(&options, &python))?;
        Ran {
            status,
            tracked: true,
            write_error: None,
        }
    } else {
        runner.run(&options)?
    };
    if args.quiet
        && let Some(why) = &write_error
    {
        // Quiet means no summary, not silence about a capture that is incomplete.
        eprintln!("memlens: {why}");
    }
    // A forked child returns here too: only the original process summarizes.
    if !tracked || std::process::id() != pid || (args.quiet && html.is_none()) {
        return Ok(status);
    }
    // From here on the program has run: memlens's own trouble is a warning, and the exit
    // status stays the program's.
    let mut report = match super::report::load(&output) {
        Ok(r) => r,
        Err(_) if write_error.is_some() => {
            eprintln!("memlens: {}", write_error.unwrap_or_default());
            return Ok(status);
        }
        Err(e) => {
            eprintln!(
                "memlens: cannot summarize {}: {e:#}",
                shown_output.display()
            );
            return Ok(status);
        }
    };
    if let Some(why) = write_error {
        // The capture ends early because writing failed, not because the process was killed.
        report.meta.warning = Some(why);
    }
    let mut html_written = None;
    if let (Some(path), Some(shown)) = (&html, &shown_html) {
        let heap = super::heap::html_panel_or_warn(&output);
        match super::report::write_output(
            &report,
            heap.as_ref(),
            memlens_report::Format::Html,
            memlens_analysis::View::Peak,
            Some(path),
        ) {
            Ok(()) => html_written = Some(shown.as_path()),
            Err(e) => eprintln!(
                "memlens: cannot write the HTML report {}: {e:#}",
                shown.display()
            ),
        }
    }
    if !args.quiet {
        summarize(&report, &shown_output, html_written);
        if args.heap_snapshot == HeapSnapshotWhen::Exit {
            eprintln!("Heap:    memlens heap {}", shown_output.display());
        }
        if args.follow_fork {
            summarize_children(&report, &output, &shown_output);
        }
    }
    Ok(status)
}

/// `path` made absolute against the current directory (unchanged if that cannot be read).
fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
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

/// With --follow-fork: every child capture (pid, command, peak) and the process tree's
/// combined peak.
fn summarize_children(
    report: &memlens_analysis::Report,
    output: &std::path::Path,
    shown: &std::path::Path,
) {
    let children = super::report::child_captures(output);
    if children.is_empty() {
        return;
    }
    let mut out = Vec::new();
    let _ = writeln!(out, "\nChild processes ({}):", children.len());
    let mut reports = vec![report.clone()];
    for child in &children {
        let shown_child = shown.with_file_name(child.file_name().unwrap_or_default());
        match super::report::load(child) {
            Ok(r) => {
                let _ = writeln!(
                    out,
                    "  pid {:<7}  peak {:>10}  {}  {}",
                    r.meta.pid,
                    memlens_analysis::human_bytes(r.totals.peak_bytes),
                    memlens_report::text::escape_terminal(&r.meta.command.join(" ")),
                    shown_child.display()
                );
                reports.push(r);
            }
            Err(e) => {
                let _ = writeln!(out, "  {}: {e:#}", shown_child.display());
            }
        }
    }
    let refs: Vec<&memlens_analysis::Report> = reports.iter().collect();
    let _ = super::report::write_tree_totals(&refs, &mut out);
    let _ = writeln!(
        out,
        "All:     memlens report {} --children --merge",
        shown.display()
    );
    let _ = std::io::stderr().write_all(&out);
}

#[cfg(test)]
mod tests {
    use super::split_program_args;
    use std::ffi::OsString;

    fn split(args: &[&str]) -> (Vec<String>, Vec<String>) {
        let mut ours: Vec<OsString> = args.iter().map(OsString::from).collect();
        let program = split_program_args(&mut ours);
        let text = |v: Vec<OsString>| v.into_iter().map(|a| a.into_string().unwrap()).collect();
        (text(ours), text(program))
    }

    #[test]
    fn everything_after_the_script_is_the_programs() {
        assert_eq!(
            split(&[
                "-q",
                "-o",
                "x.mlens",
                "app.py",
                "-o",
                "results.csv",
                "--help"
            ]),
            (
                vec!["-q".into(), "-o".into(), "x.mlens".into(), "app.py".into()],
                vec!["-o".into(), "results.csv".into(), "--help".into()]
            )
        );
    }

    #[test]
    fn module_and_code_targets_end_memlens_options() {
        assert_eq!(
            split(&["--exact", "-m", "json.tool", "--indent", "1", "in.json"]).1,
            ["--indent", "1", "in.json"]
        );
        assert_eq!(split(&["-mjson.tool", "-h"]).1, ["-h"]);
        assert_eq!(split(&["-c", "print(1)", "a", "-b"]).1, ["a", "-b"]);
        assert_eq!(
            split(&["-qc", "print(1)", "a"]),
            (vec!["-qc".into(), "print(1)".into()], vec!["a".into()])
        );
    }

    #[test]
    fn options_with_values_are_skipped_whole() {
        assert_eq!(
            split(&[
                "--sample-rate",
                "1024",
                "--html=r.html",
                "--heap-snapshot",
                "exit",
                "a.py",
                "b"
            ])
            .1,
            ["b"]
        );
        assert_eq!(split(&["-oout.mlens", "a.py", "b"]).1, ["b"]);
    }

    #[test]
    fn a_double_dash_ends_memlens_options_and_a_later_one_is_the_programs() {
        assert_eq!(
            split(&["-q", "--", "-weird.py", "--", "x"]),
            (
                vec!["-q".into(), "--".into(), "-weird.py".into()],
                vec!["--".into(), "x".into()]
            )
        );
        assert_eq!(split(&["--"]).1, Vec::<String>::new());
    }
}
