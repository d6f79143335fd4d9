//! Renderers of the memlens report model: one module per format, each only formatting a
//! [`memlens_analysis::Report`].
//!
//! [`Format`] selects a renderer; [`render`] writes it. Every name that came from the profiled
//! program (files, functions) is escaped for the target: JSON by serde_json, the terminal by
//! [`text::escape_terminal`], folded stacks by [`collapsed::escape`]; pprof and speedscope hold
//! them as data (protobuf and JSON strings); HTML embeds them as escaped JSON that the page
//! shows as text only ([`html::escape_script_json`]).
//!
//! ```no_run
//! # let report = memlens_analysis::Report::default();
//! let mut out = Vec::new();
//! memlens_report::render(&report, memlens_report::Format::Json, memlens_analysis::View::Peak, &mut out).unwrap();
//! ```
#![deny(missing_docs)]

pub mod collapsed;
pub mod gc;
pub mod html;
pub mod json;
pub mod pprof;
pub mod source_view;
pub mod speedscope;
pub mod text;
pub use memlens_analysis::human_bytes;

use memlens_analysis::{Report, View};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Terminal summary.
    Text,
    /// The JSON contract (`memlens-report`, version 1).
    Json,
    /// Gzipped pprof `profile.proto` (`go tool pprof`).
    Pprof,
    /// speedscope's JSON file format.
    Speedscope,
    /// Folded stacks (`flamegraph.pl`, inferno).
    Collapsed,
    /// One self-contained HTML page (flame graphs, top lines, memory over time), at most 5 MB.
    Html,
}

/// Renders `report` in `format`, ranking sites by `view`.
pub fn render(
    report: &Report,
    format: Format,
    view: View,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    match format {
        Format::Text => text::render(report, view, &text::TextOptions::default(), out),
        Format::Json => json::render(report, view, out),
        Format::Pprof => pprof::render(report, view, out),
        Format::Speedscope => speedscope::render(report, view, out),
        Format::Collapsed => collapsed::render(report, view, out),
        Format::Html => html::render(report, view, &html::HtmlOptions::default(), out),
    }
}
