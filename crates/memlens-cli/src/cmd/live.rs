//! `memlens run --live`: watch memory while the program runs.
//!
//! The program runs in a child process (`python -m memlens run` without `--live`), so nothing
//! of the live view runs inside the profiled program: its timing, its memory and its threads
//! stay its own. The parent reads the capture as the child's writer flushes it (at least once
//! a second), replays it with the same analysis as `memlens report`, and redraws a panel on
//! the terminal's alternate screen: tracked memory now and at the peak, RSS, a sparkline of
//! memory over time and the lines holding the most memory now. The program's standard output
//! and error go to a log file next to the capture (they would otherwise scribble over the
//! panel); its last lines are shown in the panel and the path is printed at the end. Standard
//! input is passed through.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use memlens_analysis::{Report, View, human_bytes};
use memlens_report::text::escape_terminal;

use super::run::{RunOptions, RunTarget};

/// How often the panel is redrawn; the capture is flushed at least once a second.
const REFRESH: Duration = Duration::from_millis(500);
/// Lines listed in the panel.
const TOP_LINES: usize = 10;
/// Program output lines shown at the bottom of the panel.
const LOG_LINES: usize = 5;

/// The command line of the child that runs the program and writes the capture (reports,
/// HTML included, are made by this process once the child is done).
pub(crate) fn child_args(options: &RunOptions) -> Vec<OsString> {
    let mut argv: Vec<OsString> = ["-m", "memlens", "run", "-q", "-o"]
        .iter()
        .map(OsString::from)
        .collect();
    argv.push(options.output.clone().into_os_string());
    if options.exact {
        argv.push("--exact".into());
    } else {
        argv.push("--sample-rate".into());
        argv.push(options.sample_rate.to_string().into());
    }
    if options.native_stacks {
        argv.push("--native-stacks".into());
    }
    if options.follow_fork {
        argv.push("--follow-fork".into());
    }
    if options.heap_snapshot_at_exit {
        argv.push("--heap-snapshot".into());
        argv.push("exit".into());
    }
    if options.heap_values {
        argv.push("--heap-values".into());
    }
    match &options.target {
        RunTarget::Script(path) => argv.push(path.clone().into_os_string()),
        RunTarget::Module(module) => {
            argv.push("-m".into());
            argv.push(module.into());
        }
        RunTarget::Code(code) => {
            argv.push("-c".into());
            argv.push(code.into());
        }
    }
    argv.extend(options.args.iter().cloned());
    argv
}

/// Where the program's output goes: the capture's name with `.log`.
pub(crate) fn log_path(capture: &Path) -> PathBuf {
    capture.with_extension("log")
}

/// Runs the program in a child process and shows the live panel until it exits; returns the
/// program's exit status (128 + signal number when a signal ended it).
pub(crate) fn exec(options: &RunOptions, python: &Path) -> anyhow::Result<u8> {
    let mut terminal = std::io::stderr();
    if !terminal.is_terminal() {
        anyhow::bail!("--live needs a terminal on standard error (it draws a live panel there)");
    }
    let log = log_path(&options.output);
    let log_file = std::fs::File::create(&log)
        .map_err(|e| anyhow::anyhow!("cannot write program output {}: {e}", log.display()))?;
    let mut child = Command::new(python)
        .args(child_args(options))
        .stdin(Stdio::inherit())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", python.display()))?;

    let title = program_title(options);
    let started = Instant::now();
    let _screen = AlternateScreen::enter(&mut terminal);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let panel = match read_report(&options.output) {
            Some(report) => draw(&title, started.elapsed(), &report, &log),
            None => format!("{title}\n\nwaiting for the first data...\n"),
        };
        let _ = write!(terminal, "\x1b[H\x1b[2J{panel}");
        let _ = terminal.flush();
        std::thread::sleep(REFRESH);
    };
    drop(_screen);
    eprintln!("memlens: program output: {}", log.display());
    Ok(exit_code(status))
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return code as u8;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return (128 + signal) as u8;
        }
    }
    1
}

fn program_title(options: &RunOptions) -> String {
    let target = match &options.target {
        RunTarget::Script(p) => p.display().to_string(),
        RunTarget::Module(m) => format!("-m {m}"),
        RunTarget::Code(_) => "-c ...".to_owned(),
    };
    let args: Vec<String> = options
        .args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    escape_terminal(&format!("memlens live: {target} {}", args.join(" ")))
}

/// The report of what the capture holds so far (`None` until its header is written).
fn read_report(capture: &Path) -> Option<Report> {
    let bytes = std::fs::read(capture).ok()?;
    memlens_analysis::analyze(&bytes, &memlens_analysis::Options::default()).ok()
}

/// The panel's text.
pub(crate) fn draw(title: &str, elapsed: Duration, report: &Report, log: &Path) -> String {
    let mut out = String::new();
    let t = &report.totals;
    let now = report.timeline.last().map_or(0, |p| p.live_bytes);
    let rss = report.timeline.last().map_or(0, |p| p.rss_bytes);
    out.push_str(&format!(
        "{title}\n{:.1} s   tracked now {}   peak {}   RSS {}   ({} mode)\n",
        elapsed.as_secs_f64(),
        human_bytes(now),
        human_bytes(t.peak_bytes),
        human_bytes(rss),
        report.meta.mode,
    ));
    out.push_str(&sparkline(report, 60));
    out.push_str("\n\nLines holding the most memory now:\n");
    let total = now.max(1);
    let mut any = false;
    for site in report.top_sites(View::Leaks).take(TOP_LINES) {
        any = true;
        let l = &site.location;
        out.push_str(&format!(
            "  {:>10} {:>4.0}%  {}:{} in {}\n",
            human_bytes(site.leaked_bytes),
            (site.leaked_bytes as f64 * 100.0 / total as f64).min(100.0),
            escape_terminal(&l.file),
            l.line,
            escape_terminal(&l.function),
        ));
    }
    if !any {
        out.push_str("  (nothing recorded yet)\n");
    }
    out.push_str(&format!(
        "\nProgram output ({}), last lines:\n",
        escape_terminal(&log.display().to_string())
    ));
    for line in last_lines(log, LOG_LINES) {
        out.push_str(&format!("  {}\n", escape_terminal(&line)));
    }
    out
}

/// Tracked memory over time in one row of block characters, scaled from zero to the peak.
fn sparkline(report: &Report, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let points = &report.timeline;
    if points.is_empty() {
        return String::new();
    }
    let max = points
        .iter()
        .map(|p| p.live_bytes)
        .max()
        .unwrap_or(0)
        .max(1);
    let per = points.len().div_ceil(width).max(1);
    points
        .chunks(per)
        .map(|c| {
            let v = c.iter().map(|p| p.live_bytes).max().unwrap_or(0);
            BARS[((v as f64 / max as f64) * 7.0).round() as usize]
        })
        .collect()
}

/// The last `n` lines of the log (reading at most its last 64 KiB).
fn last_lines(path: &Path, n: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 << 10)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.chars().take(200).collect())
        .collect()
}

/// Switches the terminal to its alternate screen and back (also on an early return).
struct AlternateScreen;

impl AlternateScreen {
    fn enter(terminal: &mut std::io::Stderr) -> Self {
        let _ = write!(terminal, "\x1b[?1049h\x1b[?25l");
        let _ = terminal.flush();
        AlternateScreen
    }
}

impl Drop for AlternateScreen {
    fn drop(&mut self) {
        let mut terminal = std::io::stderr();
        let _ = write!(terminal, "\x1b[?25h\x1b[?1049l");
        let _ = terminal.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memlens_analysis::{Location, Site, TimelinePoint};

    fn options(target: RunTarget) -> RunOptions {
        RunOptions {
            target,
            args: vec!["--flag".into(), "x y".into()],
            output: PathBuf::from("out.mlens"),
            exact: false,
            sample_rate: 4096,
            native_stacks: false,
            follow_fork: true,
            heap_snapshot_at_exit: false,
            heap_values: false,
            live: true,
        }
    }

    #[test]
    fn child_runs_the_same_program_without_live_and_quietly() {
        let argv = child_args(&options(RunTarget::Script("app.py".into())));
        let argv: Vec<String> = argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            argv,
            [
                "-m",
                "memlens",
                "run",
                "-q",
                "-o",
                "out.mlens",
                "--sample-rate",
                "4096",
                "--follow-fork",
                "app.py",
                "--flag",
                "x y"
            ]
        );
        let module = child_args(&options(RunTarget::Module("pkg.mod".into())));
        assert!(module.windows(2).any(|w| w[0] == "-m" && w[1] == "pkg.mod"));
        assert!(!module.iter().any(|a| a == "--live"));
    }

    #[test]
    fn panel_lists_lines_held_now_and_escapes_names() {
        let mut report = Report::default();
        report.totals.peak_bytes = 200 << 20;
        report.timeline = vec![
            TimelinePoint {
                time_s: 0.5,
                live_bytes: 10 << 20,
                rss_bytes: 50 << 20,
            },
            TimelinePoint {
                time_s: 1.0,
                live_bytes: 100 << 20,
                rss_bytes: 150 << 20,
            },
        ];
        report.sites.push(Site {
            location: Location {
                file: "evil\x1b[2J.py".into(),
                line: 12,
                function: "load".into(),
            },
            peak_bytes: 0,
            leaked_bytes: 60 << 20,
            allocated_bytes: 60 << 20,
            allocations: 1,
            temporary_bytes: 0,
            high_water_bytes: 60 << 20,
            stack: Vec::new(),
        });
        let panel = draw(
            "title",
            Duration::from_secs(2),
            &report,
            Path::new("/nonexistent.log"),
        );
        assert!(panel.contains("tracked now 100.0 MiB"), "{panel}");
        assert!(panel.contains("peak 200.0 MiB"), "{panel}");
        assert!(panel.contains("60.0 MiB   60%"), "{panel}");
        assert!(panel.contains(":12 in load"), "{panel}");
        assert!(
            !panel.contains('\x1b'),
            "escape sequences must not pass: {panel:?}"
        );
    }
}
