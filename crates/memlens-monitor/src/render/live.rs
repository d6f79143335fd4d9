//! What the monitor says on stderr while it runs: a live status line on a terminal (current,
//! peak, a sparkline), and warnings as they happen.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::record::Recording;
use crate::session::{Event, Observer};
use crate::size::format_size;

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const SPARK_WIDTH: usize = 32;
/// Redraw at most this often: the line is for eyes, and each redraw costs a write.
const REDRAW: Duration = Duration::from_millis(250);

/// Reports to a terminal: a status line redrawn in place (only when `live`), and warnings (unless
/// `quiet`). Nothing is drawn when stderr is not a terminal.
#[derive(Debug)]
pub struct LiveView {
    live: bool,
    quiet: bool,
    drawn: bool,
    last_draw: Option<Instant>,
}

impl LiveView {
    /// Writes to stderr; the status line is shown only when stderr is a terminal and not `quiet`.
    pub fn stderr(quiet: bool) -> Self {
        LiveView {
            live: !quiet && io::stderr().is_terminal(),
            quiet,
            drawn: false,
            last_draw: None,
        }
    }

    /// Erases the status line (call before printing the final summary).
    pub fn clear(&mut self) {
        if self.drawn {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }

    fn message(&mut self, text: &str) {
        if self.quiet {
            return;
        }
        self.clear();
        let _ = writeln!(io::stderr().lock(), "memlens: {text}");
    }
}

/// The status line for `recording`: `rss 312.4 MiB  peak 314.0 MiB  pss …  3 procs  12.3 s  ▁▃▇█▅`.
pub(crate) fn status_line(recording: &Recording, width: usize) -> Option<String> {
    let last = recording.samples.last()?;
    let peak = recording.peak_sample().map_or(0, |p| p.rss);
    let mut line = format!("rss {}  peak {}", format_size(last.rss), format_size(peak));
    if let Some(pss) = recording.samples.iter().rev().find_map(|s| s.pss) {
        line.push_str(&format!("  pss {}", format_size(pss)));
    }
    line.push_str(&format!(
        "  {} proc{}  {:.1} s  ",
        last.processes,
        if last.processes == 1 { "" } else { "s" },
        last.t
    ));
    line.push_str(&sparkline(recording, width));
    Some(line)
}

/// The last `width` samples' RSS as block characters, scaled from zero to the highest of them.
pub(crate) fn sparkline(recording: &Recording, width: usize) -> String {
    let tail = &recording.samples[recording.samples.len().saturating_sub(width)..];
    let max = tail.iter().map(|s| s.rss).max().unwrap_or(0).max(1);
    tail.iter()
        .map(|s| SPARK[((s.rss as f64 / max as f64) * 7.0).round() as usize])
        .collect()
}

impl Observer for LiveView {
    fn on_sample(&mut self, recording: &Recording) {
        if !self.live || self.last_draw.is_some_and(|t| t.elapsed() < REDRAW) {
            return;
        }
        self.last_draw = Some(Instant::now());
        if let Some(line) = status_line(recording, SPARK_WIDTH) {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
            self.drawn = true;
        }
    }

    fn on_event(&mut self, event: &Event) {
        match event {
            Event::ThresholdCrossed { t, rss, threshold } => self.message(&format!(
                "warning: the tree's RSS reached {} at {t:.1} s, over the threshold of {}",
                format_size(*rss),
                format_size(*threshold)
            )),
            Event::Limited { pid, source } => self.message(&format!(
                "warning: cannot read /proc/{pid}/smaps_rollup (permission denied): PSS and USS \
                 of process {pid} are unknown; RSS and swap come from /proc/{pid}/{}",
                source.file_name()
            )),
            Event::CommandExited { exit, remaining } => self.message(&format!(
                "the command exited with status {}; still following {remaining} process{} it started \
                 (Ctrl-C to stop)",
                exit.status(),
                if *remaining == 1 { "" } else { "es" }
            )),
            Event::Stopping { .. } => {
                self.message("interrupted: waiting up to 2 s for the command to exit")
            }
        }
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::fixture;

    #[test]
    fn sparkline_scales_from_zero() {
        let rec = fixture();
        assert_eq!(sparkline(&rec, 32), "▃▆█▆");
        assert_eq!(sparkline(&rec, 2), "█▆");
    }

    #[test]
    fn status_line_shows_current_and_peak() {
        let line = status_line(&fixture(), 8).unwrap();
        assert!(
            line.starts_with("rss 2.0 MiB  peak 3.0 MiB  pss 2.0 MiB  2 procs  0.3 s  "),
            "{line}"
        );
    }
}
