//! `memlens monitor`: memory of a process tree over time (a thin front end over
//! `memlens-monitor`).

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use memlens_monitor::{
    CsvStream, Format, LiveView, Monitor, Recording, StopReason, Target, format_size, parse_size,
};

/// Exit status when the tree's RSS reached `--threshold` (and the command itself succeeded).
const THRESHOLD_EXCEEDED: u8 = 3;

/// Arguments of `memlens monitor`.
#[derive(Debug, clap::Args)]
#[command(
    override_usage = "memlens monitor [OPTIONS] (--pid <PID> | -- <CMD> [ARGS]...)",
    after_help = "Exit status: the command's own (128+N if killed by signal N); 3 if --threshold \
                  was exceeded and the command succeeded; 127 if the command was not found; 2 for \
                  other memlens errors. With --pid: 0, or 3 if --threshold was exceeded."
)]
pub struct Args {
    /// Seconds between samples.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.1)]
    interval: f64,
    /// Stop recording after this many seconds (a launched command keeps running; memlens waits
    /// for it after writing its outputs).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Write the samples to FILE: `.csv` (one row per sample, written as it goes) or `.json`
    /// (everything, per process too). Repeatable.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Vec<PathBuf>,
    /// Write a self-contained HTML page with the memory chart and the process table.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Write an SVG plot of the tree's memory over time.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Warn when the tree's total RSS reaches SIZE (e.g. 500MB, 1.5GiB, 1048576), or the
    /// kernel's peak RSS for the command does (so a peak between two samples counts), and exit
    /// with status 3 at the end.
    #[arg(long, value_name = "SIZE", value_parser = parse_threshold)]
    threshold: Option<u64>,
    /// Read PSS and USS at most every SECONDS (0: at every sample). They need a walk of each
    /// process's page tables, costly for large processes; by default memlens reads them as often
    /// as keeps that walk under 0.3% of a core (every sample for small trees). RSS and swap are
    /// read at every sample regardless.
    #[arg(long, value_name = "SECONDS")]
    pss_interval: Option<f64>,
    /// No live view, warnings or summary on stderr (errors are still printed).
    #[arg(short, long)]
    quiet: bool,
    /// Monitor this running process and its descendants.
    #[arg(long, value_name = "PID", conflicts_with = "command")]
    pid: Option<u32>,
    /// The command to launch and monitor, after `--`.
    #[arg(
        value_name = "CMD",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required_unless_present = "pid"
    )]
    command: Vec<OsString>,
}

fn parse_threshold(text: &str) -> Result<u64, String> {
    parse_size(text).map_err(|e| e.to_string())
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    if !value.is_finite() || value <= 0.0 || value > 1e9 {
        bail!("{flag} must be a positive number of seconds, not {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

/// An output file opened before monitoring starts, so a bad path fails at once, not after an
/// hour of recording.
struct Output {
    path: PathBuf,
    format: Format,
    file: Option<BufWriter<File>>,
}

fn open_output(path: &Path, format: Format) -> anyhow::Result<Output> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(Output {
        path: path.to_owned(),
        format,
        file: Some(BufWriter::new(file)),
    })
}

/// Monitors the process tree and writes what was measured, whatever stopped it.
pub fn exec(args: Args) -> anyhow::Result<u8> {
    let mut builder = Monitor::builder();
    builder
        .interval(seconds(args.interval, "--interval")?)
        .duration(
            args.duration
                .map(|d| seconds(d, "--duration"))
                .transpose()?,
        )
        .threshold(args.threshold)
        .pss_interval(
            args.pss_interval
                .map(|s| match s {
                    0.0 => Ok(Duration::ZERO),
                    s => seconds(s, "--pss-interval"),
                })
                .transpose()?,
        )
        .adopt_orphans(true);
    let monitor = builder.build()?;
    let target = match args.pid {
        Some(pid) => Target::Pid(pid),
        None => Target::Command(args.command.clone()),
    };

    let mut outputs = Vec::new();
    for path in &args.output {
        let format = match Format::from_path(path) {
            Some(format) => format,
            None => bail!(
                "cannot tell the format of -o {}: name it .csv or .json",
                path.display()
            ),
        };
        outputs.push(open_output(path, format)?);
    }
    if let Some(path) = &args.html {
        outputs.push(open_output(path, Format::Html)?);
    }
    if let Some(path) = &args.plot {
        outputs.push(open_output(path, Format::Svg)?);
    }
    // The first CSV output is streamed while monitoring runs.
    let mut stream = match outputs.iter_mut().find(|o| o.format == Format::Csv) {
        Some(out) => {
            let file = out.file.take().expect("opened above");
            Some((out.path.clone(), CsvStream::new(file)?))
        }
        None => None,
    };

    let mut live = LiveView::stderr(args.quiet);
    let outcome = match stream.as_mut() {
        Some((_, csv)) => monitor.run(&target, &mut (&mut live, csv)),
        None => monitor.run(&target, &mut live),
    };
    live.clear();
    let rec = &outcome.recording;

    // Write everything, then report.
    let mut write_errors = Vec::new();
    let mut written = Vec::new();
    if let Some((path, csv)) = stream {
        match csv.finish(rec) {
            Ok(()) => written.push(path),
            Err(e) => write_errors.push(format!("cannot write {}: {e}", path.display())),
        }
    }
    for out in outputs {
        let Some(mut file) = out.file else { continue };
        match out.format.write(rec, &mut file).and_then(|()| file.flush()) {
            Ok(()) => written.push(out.path),
            Err(e) => write_errors.push(format!("cannot write {}: {e}", out.path.display())),
        }
    }

    if let Some(err) = &outcome.error {
        eprintln!("memlens: error: {err}");
    }
    if !args.quiet {
        summarise(rec, &written);
    }
    for e in &write_errors {
        eprintln!("memlens: error: {e}");
    }

    let mut exit = rec.exit;
    if let Some(running) = outcome.running {
        if !args.quiet {
            eprintln!(
                "memlens: recording stopped ({}); waiting for the command (pid {}) to exit; \
                 Ctrl-C to kill it",
                match rec.stop {
                    StopReason::Duration => "--duration reached",
                    _ => "interrupted",
                },
                running.pid()
            );
        }
        exit = Some(running.wait()?);
    }

    if let Some(err) = &outcome.error {
        return Ok(err.exit_status());
    }
    if !write_errors.is_empty() {
        return Ok(2);
    }
    // The samples can miss a short peak between them; the kernel's own high-water mark for
    // the command (wait4's ru_maxrss: the largest RSS of it or of a descendant it waited for)
    // cannot, so either exceeds the threshold.
    let kernel_peak = exit.map_or(0, |e| e.max_rss);
    let kernel_over = rec.threshold.is_some_and(|t| kernel_peak >= t.bytes);
    if kernel_over && !rec.threshold.is_some_and(|t| t.exceeded()) && !args.quiet {
        eprintln!(
            "memlens: threshold {} exceeded: the kernel's peak RSS for the command was {} \
             (between two samples)",
            format_size(rec.threshold.map_or(0, |t| t.bytes)),
            format_size(kernel_peak)
        );
    }
    let exceeded = kernel_over || rec.threshold.is_some_and(|t| t.exceeded());
    Ok(match exit {
        Some(exit) if exit.status() != 0 => exit.status(),
        _ if exceeded => THRESHOLD_EXCEEDED,
        _ => 0,
    })
}

/// Prints the peak, what limited the measurement and the files written, on stderr.
fn summarise(rec: &Recording, written: &[PathBuf]) {
    let mut err = std::io::stderr().lock();
    match rec.peak_sample() {
        Some(peak) => {
            let peaks = rec.peaks();
            let detail = if rec.has_pss() {
                format!(
                    " (peak PSS {}, peak USS {})",
                    format_size(peaks.pss),
                    format_size(peaks.uss)
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                err,
                "memlens: peak RSS {} at {:.1} s{detail}; {} samples over {:.1} s, {} process{} seen",
                format_size(peak.rss),
                peak.t,
                rec.samples.len(),
                rec.duration_s,
                rec.processes.len(),
                if rec.processes.len() == 1 { "" } else { "es" }
            );
        }
        None if rec.error.is_none() => {
            let _ = writeln!(
                err,
                "memlens: the process exited before the first sample (interval {} s)",
                rec.interval_s
            );
        }
        None => {}
    }
    if let Some(exit) = &rec.exit
        && exit.max_rss > 0
    {
        let _ = writeln!(
            err,
            "memlens: the kernel's peak RSS for the command: {}",
            format_size(exit.max_rss)
        );
    }
    if let Some(th) = &rec.threshold
        && let Some(t) = th.first_crossed
    {
        let _ = writeln!(
            err,
            "memlens: threshold {} exceeded (first at {t:.1} s, {} samples above)",
            format_size(th.bytes),
            th.samples_above
        );
    }
    if !written.is_empty() {
        let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        let _ = writeln!(err, "memlens: wrote {}", names.join(", "));
    }
}
