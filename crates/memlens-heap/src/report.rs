//! `HeapReport`: the one model every renderer formats.

use std::io::Write;

use crate::analysis::{
    Analysis, DominatorRow, DuplicateString, Site, Suspect, SuspectKind, TypeRow, WhyReport,
};
use crate::diff::{Diff, diff};
use crate::error::{HeapError, Result};
use crate::escape;

/// What to put in a report. Build with [`ReportOptions::new`] and the setters.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub(crate) top: usize,
    pub(crate) why: Option<String>,
    pub(crate) suspect_share: f64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            top: 20,
            why: None,
            suspect_share: 0.1,
        }
    }
}

impl ReportOptions {
    /// Defaults: 20 rows per view, suspects from 10% of reachable memory, no `why`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rows per view.
    pub fn top(mut self, top: usize) -> Self {
        self.top = top.max(1);
        self
    }

    /// Adds the `why` view for a pattern (type name, glob, or `file:line`).
    pub fn why(mut self, pattern: Option<String>) -> Self {
        self.why = pattern;
        self
    }

    /// Share of reachable memory (0 to 1) from which an object or a type is a leak suspect.
    pub fn suspect_share(mut self, share: f64) -> Self {
        self.suspect_share = share.clamp(0.0, 1.0);
        self
    }
}

/// A finding: a rule that fired, with evidence and a fix (the `findings` of the JSON contract).
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Rule name.
    pub rule: &'static str,
    /// Short title.
    pub title: String,
    /// `info`, `warning` or `error`.
    pub severity: &'static str,
    /// Source file, when an allocation site is known.
    pub file: Option<String>,
    /// Source line, when an allocation site is known.
    pub line: Option<u32>,
    /// Bytes at stake.
    pub bytes: u64,
    /// What was found.
    pub message: String,
    /// How to fix it.
    pub fix: String,
    /// The retainer path or values backing the finding.
    pub evidence: String,
}

/// Everything `memlens heap` shows about a snapshot (and its older snapshots, for growth).
#[derive(Debug, Clone, PartialEq)]
pub struct HeapReport {
    /// Objects in the snapshot.
    pub objects: u64,
    /// Their total shallow size, in bytes.
    pub bytes: u64,
    /// Objects reachable through strong references from the roots.
    pub reachable_objects: u64,
    /// Their total shallow size, in bytes.
    pub reachable_bytes: u64,
    /// Number of references.
    pub edges: u64,
    /// Number of roots.
    pub roots: u64,
    /// Walker metadata (key, value).
    pub meta: Vec<(String, String)>,
    /// Types histogram, largest retained first.
    pub types: Vec<TypeRow>,
    /// Top disjoint dominators.
    pub dominators: Vec<DominatorRow>,
    /// Leak suspects.
    pub suspects: Vec<Suspect>,
    /// Duplicate strings.
    pub duplicates: Vec<DuplicateString>,
    /// The `why` view, if a pattern was given.
    pub why: Option<WhyReport>,
    /// Growth against older snapshots, if any were given.
    pub diff: Option<Diff>,
    /// Findings.
    pub findings: Vec<Finding>,
}

/// Output formats of a [`HeapReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Readable text for a terminal.
    Text,
    /// The `memlens-heap` JSON contract, version 1.
    Json,
}

impl HeapReport {
    /// Builds the report of the last analysis of `series` (oldest first); with two or more,
    /// adds growth.
    ///
    /// # Panics
    /// Never: an empty series gives an empty report.
    pub fn new(series: &[&Analysis<'_>], options: &ReportOptions) -> HeapReport {
        let Some(a) = series.last() else {
            return HeapReport::empty();
        };
        let s = a.snapshot();
        let (reachable_objects, reachable_bytes) = a.reachable();
        let k = options.top;
        // The views are independent: the histogram, duplicates and `why` on a second thread,
        // dominators and suspects (which share the top dominators) on this one.
        let ((types, duplicates, why), (top, suspects)) = std::thread::scope(|scope| {
            let side = scope.spawn(|| {
                (
                    a.types(),
                    a.duplicate_strings(k),
                    options.why.as_deref().map(|p| a.why(p, k)),
                )
            });
            let top = a.top_dominator_nodes(k.max(10));
            let suspects = a.suspects_among(&top, options.suspect_share);
            (
                side.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                (top, suspects),
            )
        });
        let mut report = HeapReport {
            objects: s.node_count() as u64,
            bytes: s.total_size(),
            reachable_objects,
            reachable_bytes,
            edges: s.edge_count() as u64,
            roots: s.roots().len() as u64,
            meta: s
                .meta()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            types,
            dominators: a.dominator_rows(&top[..top.len().min(k)]),
            suspects,
            duplicates,
            why,
            diff: (series.len() >= 2).then(|| diff(series, k)),
            findings: Vec::new(),
        };
        report.findings = findings(&report);
        report
    }

    fn empty() -> HeapReport {
        HeapReport {
            objects: 0,
            bytes: 0,
            reachable_objects: 0,
            reachable_bytes: 0,
            edges: 0,
            roots: 0,
            meta: Vec::new(),
            types: Vec::new(),
            dominators: Vec::new(),
            suspects: Vec::new(),
            duplicates: Vec::new(),
            why: None,
            diff: None,
            findings: Vec::new(),
        }
    }

    /// Renders the report in `format` to `out`.
    pub fn write(&self, format: Format, out: &mut dyn Write) -> Result<()> {
        let r = match format {
            Format::Text => crate::render::text::write(self, out),
            Format::Json => crate::render::json::write(self, out),
        };
        r.map_err(HeapError::io("writing the heap report"))
    }
}

fn site_parts(site: &Option<Site>) -> (Option<String>, Option<u32>) {
    match site {
        Some(s) => (Some(s.file.clone()), Some(s.line)),
        None => (None, None),
    }
}

fn findings(r: &HeapReport) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in &r.suspects {
        let (file, line) = site_parts(&s.alloc_site);
        let (title, fix) = match s.kind {
            SuspectKind::Holder => (
                format!("one `{}` keeps {:.0}% of the heap alive", escape::name(&s.type_name), s.share * 100.0),
                "if this container is a cache or registry, bound it (functools.lru_cache(maxsize=...), \
                 an LRU dict) or clear it when entries are no longer needed; if it should not hold \
                 these objects at all, remove the reference shown in the path"
                    .to_string(),
            ),
            SuspectKind::Accumulation => (
                format!("instances of `{}` accumulate", escape::name(&s.type_name)),
                "find the holder in the path and release instances when done with them (or use \
                 weakref.WeakValueDictionary / WeakSet for registries of live objects)"
                    .to_string(),
            ),
        };
        out.push(Finding {
            rule: "heap-leak-suspect",
            title,
            severity: "warning",
            file,
            line,
            bytes: s.retained_bytes,
            message: s.message.clone(),
            fix,
            evidence: s.path.clone(),
        });
    }
    if let Some(d) = &r.diff {
        for h in d.holders.iter().take(5) {
            let m = h.retained.len();
            let grew = h.retained[m - 1].saturating_sub(h.retained[0]);
            out.push(Finding {
                rule: "heap-growth",
                title: format!("a `{}` grew in every snapshot", escape::name(&h.type_name)),
                severity: if d.snapshots >= 3 { "error" } else { "warning" },
                file: None,
                line: None,
                bytes: grew,
                message: format!(
                    "`{}` grew from {} to {} references and from {} to {} retained across {} snapshots",
                    escape::name(&h.type_name),
                    escape::count(h.references[0]),
                    escape::count(h.references[m - 1]),
                    escape::human_bytes(h.retained[0]),
                    escape::human_bytes(h.retained[m - 1]),
                    m
                ),
                fix: "entries are added to this container and never removed: bound it, evict old \
                      entries, or stop keeping them after use"
                    .to_string(),
                evidence: h.path.clone(),
            });
        }
    }
    let wasted: u64 = r.duplicates.iter().map(|d| d.wasted_bytes).sum();
    if wasted > 0 && (wasted >= 1 << 20 || wasted * 100 >= r.reachable_bytes.max(1)) {
        let top = &r.duplicates[0];
        out.push(Finding {
            rule: "heap-duplicate-strings",
            title: "duplicate strings waste memory".to_string(),
            severity: "info",
            file: None,
            line: None,
            bytes: wasted,
            message: format!(
                "{} bytes are held by duplicate string values; the largest group is {} copies of {}",
                escape::human_bytes(wasted),
                escape::count(top.count),
                top.described()
            ),
            fix: "intern repeated values (sys.intern) or share one object (e.g. when parsing \
                  records, map field values through a dict)"
                .to_string(),
            evidence: r
                .duplicates
                .iter()
                .take(3)
                .map(|d| format!("{} x {}", escape::count(d.count), d.described()))
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    out
}
