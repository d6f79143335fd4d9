//! Memory of a process tree over time, read from `/proc`: the engine of `memlens monitor`.
//!
//! - [`sample_process`] reads RSS, PSS, USS and swap of one process (from `smaps_rollup`, falling
//!   back to `status` and `statm`) into a [`ProcessMemory`]. It keeps no state and starts no
//!   thread, so the tracker can call it in-process; [`sample_process_fast`] (RSS, swap, high-water
//!   mark) and [`sample_process_rss`] are the constant-cost variants.
//! - [`Monitor`] (built with [`Monitor::builder`]) launches a command or attaches to a pid, follows
//!   the descendants that come and go, and samples the tree at a fixed interval into a
//!   [`Recording`] until the tree exits, a duration elapses or a stop signal arrives.
//! - [`Format`] writes a recording as CSV, JSON, a self-contained HTML page or an SVG plot;
//!   [`CsvStream`] and [`LiveView`] are [`Observer`]s that stream rows and draw a terminal line
//!   while monitoring runs.
//!
//! ```no_run
//! use std::time::Duration;
//! use memlens_monitor::{Format, Monitor, Target};
//!
//! let monitor = Monitor::builder().interval(Duration::from_millis(100)).build()?;
//! let argv = vec!["python3".into(), "-c".into(), "x = bytearray(10**8)".into()];
//! let outcome = monitor.run(&Target::Command(argv), &mut ());
//! let peak = outcome.recording.peak_sample().map_or(0, |s| s.rss);
//! println!("peak RSS: {}", memlens_monitor::format_size(peak));
//! Format::Json.write(&outcome.recording, std::io::stdout())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod error;
mod probe;
mod record;
mod render;
mod session;
mod size;
mod sys;
mod tree;

pub use error::{Error, Result};
pub use probe::{ProcessMemory, Source, sample_process, sample_process_fast, sample_process_rss};
pub use record::{
    CommandExit, Peaks, ProcessRecord, ProcessSample, Recording, Sample, StopReason,
    ThresholdReport,
};
pub use render::{CsvStream, Format, LiveView, write_csv, write_html, write_json, write_svg};
pub use session::{Event, Monitor, MonitorBuilder, Observer, Outcome, RunningCommand, Target};
pub use size::{format_size, parse_size};
