//! Run-time findings: rules that read a [`Report`] and point at a line with evidence from this
//! run and a concrete fix. One file per rule holds its documentation, its code and its check;
//! [`RULES`] is the registry that `memlens explain` and the docs read.

mod mr001_held_at_exit;
mod mr002_repeated_temporaries;
mod mr003_dominant_peak_line;

use crate::model::{Location, Report};

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Likely costs memory.
    Warning,
}

impl Severity {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
        }
    }
}

/// One finding about this run.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Rule code, e.g. `MR001`.
    pub rule: &'static str,
    /// Short title of the rule.
    pub title: &'static str,
    /// Severity.
    pub severity: Severity,
    /// The line it is about.
    pub location: Option<Location>,
    /// The bytes at stake.
    pub bytes: u64,
    /// What was seen, in a sentence.
    pub message: String,
    /// What to do about it.
    pub fix: String,
    /// The figures behind it.
    pub evidence: String,
}

/// A run-time rule: its code, title, documentation and check.
pub struct Rule {
    /// Never-reused code.
    pub code: &'static str,
    /// Short title.
    pub title: &'static str,
    /// Markdown documentation: what it finds, why it matters, how to fix it.
    pub doc: &'static str,
    /// The check.
    pub check: fn(&Report) -> Vec<Finding>,
}

/// Every run-time rule.
pub static RULES: &[Rule] = &[
    mr001_held_at_exit::RULE,
    mr002_repeated_temporaries::RULE,
    mr003_dominant_peak_line::RULE,
];

/// `bytes` as a finding shows a line's figure: marked `~` when it is estimated from samples.
pub(crate) fn line_bytes(report: &Report, bytes: u64) -> String {
    let mark = if report.meta.sites_estimated { "~" } else { "" };
    format!("{mark}{}", crate::human_bytes(bytes))
}

/// Runs every rule; findings come out most bytes first.
pub fn check(report: &Report) -> Vec<Finding> {
    let mut findings: Vec<Finding> = RULES.iter().flat_map(|r| (r.check)(report)).collect();
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(b.bytes.cmp(&a.bytes)));
    findings
}

/// The documentation of a run-time rule, by code (case-insensitive).
pub fn explain(code: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.code.eq_ignore_ascii_case(code))
}

const MIB: u64 = 1 << 20;
