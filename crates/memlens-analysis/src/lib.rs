//! Turns a capture into answers: replays its events into a [`Report`] model that every
//! renderer formats.
//!
//! [`analyze`] reads a capture held in memory (a memory map, typically), replays allocations
//! and frees, weighs sampled blocks back to unbiased estimates, and aggregates per call site:
//! bytes live at the peak, bytes still live at the end (leaks), bytes and allocations over the
//! run. A site is the innermost frame of the user's own code; frames of the standard library,
//! installed packages and memlens itself are folded into it, and the full stack is kept.
//!
//! ```no_run
//! let bytes = std::fs::read("app.mlens").unwrap();
//! let report = memlens_analysis::analyze(&bytes, &memlens_analysis::Options::default()).unwrap();
//! for site in report.top_sites(memlens_analysis::View::Peak).take(5) {
//!     println!("{}:{} {} bytes", site.location.file, site.location.line, site.peak_bytes);
//! }
//! ```
#![deny(missing_docs)]

pub mod findings;
mod merge;
mod model;
mod replay;
mod source;
mod units;

pub use findings::{Finding, Severity};
pub use merge::{combined_peak, merge};
pub use model::{
    CallNode, CallTree, CheckpointMark, Flame, LeakWindow, Location, Meta, Moment, Report, Site,
    StackValue, ThreadInfo, Timeline, TimelinePoint, Totals, View,
};
pub use replay::gc::{CyclicGarbage, GcGeneration, GcPauses, GcReport, GcSite, analyze_gc};
pub use replay::{Options, Progress, TemporaryRule, analyze, analyze_with_progress};
pub use source::CaptureBytes;
pub use units::{human_bytes, thousands};

/// True for a file of memlens's own Python package (`.../memlens/_runner.py`): what it
/// allocates while tracking starts and stops is memlens's, never a line of the program's. The
/// one rule the text, JSON and HTML reports share.
pub fn is_memlens_file(file: &str) -> bool {
    let mut parts = file.rsplit('/');
    let (Some(name), Some(dir)) = (parts.next(), parts.next()) else {
        return false;
    };
    dir == "memlens" && name.ends_with(".py")
}

/// Why a capture could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The file is not a readable capture.
    #[error(transparent)]
    Format(#[from] memlens_format::FormatError),
    /// A checkpoint named on the command line is not in the capture (or not after the
    /// opening one).
    #[error("no checkpoint {label:?} in the capture{}", known_list(known))]
    NoCheckpoint {
        /// The label asked for.
        label: String,
        /// Labels the capture has, in order.
        known: Vec<String>,
    },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        " (it has no checkpoints)".to_owned()
    } else {
        let list: Vec<String> = known.iter().map(|k| format!("{k:?}")).collect();
        format!(
            " where the leak window needs it (checkpoints: {})",
            list.join(", ")
        )
    }
}
