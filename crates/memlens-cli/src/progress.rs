//! A progress bar on stderr for long work, drawn only when stderr is a terminal (nothing when
//! piped or redirected), redrawn at most every 100 ms and only after the first half second, so
//! quick runs never show one.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const WIDTH: usize = 30;

/// A bar for one task.
pub(crate) struct Bar {
    label: &'static str,
    enabled: bool,
    start: Instant,
    last_draw: Option<Instant>,
    drawn: bool,
}

impl Bar {
    /// A bar labelled `label`, live only when stderr is a terminal.
    pub(crate) fn on_stderr(label: &'static str) -> Self {
        Bar {
            label,
            enabled: std::io::stderr().is_terminal(),
            start: Instant::now(),
            last_draw: None,
            drawn: false,
        }
    }

    /// Shows `done` out of `total`.
    pub(crate) fn set(&mut self, done: u64, total: u64) {
        if !self.enabled || self.start.elapsed() < Duration::from_millis(500) {
            return;
        }
        if self
            .last_draw
            .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last_draw = Some(Instant::now());
        let fraction = if total == 0 {
            1.0
        } else {
            (done as f64 / total as f64).clamp(0.0, 1.0)
        };
        let filled = (fraction * WIDTH as f64).round() as usize;
        let _ = write!(
            std::io::stderr(),
            "\r{} [{}{}] {:>3.0}%",
            self.label,
            "#".repeat(filled),
            " ".repeat(WIDTH - filled),
            fraction * 100.0
        );
        self.drawn = true;
    }

    /// Erases the bar, if one was drawn.
    pub(crate) fn clear(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            self.drawn = false;
        }
    }
}
