//! The heap panel's input: a small summary of one heap snapshot, in plain strings and numbers.
//!
//! The caller (the CLI, which reads snapshots with `memlens-heap`) fills it; this crate only
//! embeds it, bounded to [`MAX_HEAP_ROWS`] rows per list and with long names cut, so the report
//! crate does not depend on the heap analysis.

use serde_json::{Value, json};

use super::data::cut;

/// Most rows embedded per list (suspects, dominators, types).
pub const MAX_HEAP_ROWS: usize = 20;
/// Longest type name, file name or message embedded, in characters.
const MAX_NAME_CHARS: usize = 300;
/// Longest retainer path embedded, in characters.
const MAX_PATH_CHARS: usize = 2000;

/// A summary of one heap snapshot for the report's heap panel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeapPanel {
    /// Objects in the snapshot.
    pub objects: u64,
    /// Their total shallow size, in bytes.
    pub bytes: u64,
    /// Objects reachable from the roots through strong references.
    pub reachable_objects: u64,
    /// Their total shallow size, in bytes.
    pub reachable_bytes: u64,
    /// Leak suspects, largest first.
    pub suspects: Vec<HeapSuspect>,
    /// Top dominators (disjoint), largest first.
    pub dominators: Vec<HeapDominator>,
    /// Types by retained size, largest first.
    pub types: Vec<HeapType>,
}

/// Where an object was allocated (`--exact` captures only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapSite {
    /// Source file.
    pub file: String,
    /// Line number (1-based).
    pub line: u32,
}

/// A leak suspect: one holder, or many instances of one type, keeping much memory alive.
#[derive(Debug, Clone, PartialEq)]
pub struct HeapSuspect {
    /// `holder` or `accumulation`.
    pub kind: String,
    /// Type of the holder or of the accumulating instances.
    pub type_name: String,
    /// Bytes kept alive.
    pub retained_bytes: u64,
    /// Share of all reachable bytes, 0 to 1.
    pub share: f64,
    /// Objects kept alive (holder) or instances (accumulation).
    pub objects: u64,
    /// One readable sentence.
    pub message: String,
    /// Retainer path of the holder.
    pub path: String,
    /// Allocation site of the holder (or of the first instance), if known.
    pub alloc_site: Option<HeapSite>,
}

/// An object that alone keeps memory alive.
#[derive(Debug, Clone, PartialEq)]
pub struct HeapDominator {
    /// Its type name.
    pub type_name: String,
    /// What it alone keeps alive, in bytes.
    pub retained_bytes: u64,
    /// How many objects it alone keeps alive (itself included).
    pub retained_objects: u64,
    /// Its shortest strong retainer path, rendered.
    pub path: String,
    /// Where it was allocated, if known.
    pub alloc_site: Option<HeapSite>,
}

/// One row of the types histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct HeapType {
    /// Qualified type name.
    pub type_name: String,
    /// Number of instances.
    pub count: u64,
    /// Their total shallow size, in bytes.
    pub shallow_bytes: u64,
    /// What they keep alive together, in bytes.
    pub retained_bytes: u64,
    /// The line that allocated most of their bytes (`--exact` captures only), if known.
    pub alloc_site: Option<HeapSite>,
}

/// The panel as embedded JSON (not yet escaped for the page), with at most [`MAX_HEAP_ROWS`]
/// rows per list and long names cut; `cuts` counts the names cut.
pub(super) fn to_json(panel: &HeapPanel, cuts: &mut usize) -> Value {
    let mut c = |s: &str, max: usize| cut(s, max, cuts);
    let site = |s: &Option<HeapSite>, c: &mut dyn FnMut(&str, usize) -> String| {
        s.as_ref()
            .map(|s| json!({"file": c(&s.file, MAX_NAME_CHARS), "line": s.line}))
    };
    let mut suspects = Vec::new();
    for s in panel.suspects.iter().take(MAX_HEAP_ROWS) {
        suspects.push(json!({
            "kind": c(&s.kind, MAX_NAME_CHARS),
            "type": c(&s.type_name, MAX_NAME_CHARS),
            "retained_bytes": s.retained_bytes,
            "share": if s.share.is_finite() { s.share } else { 0.0 },
            "objects": s.objects,
            "message": c(&s.message, MAX_PATH_CHARS),
            "path": c(&s.path, MAX_PATH_CHARS),
            "alloc_site": site(&s.alloc_site, &mut c),
        }));
    }
    let mut dominators = Vec::new();
    for d in panel.dominators.iter().take(MAX_HEAP_ROWS) {
        dominators.push(json!({
            "type": c(&d.type_name, MAX_NAME_CHARS),
            "retained_bytes": d.retained_bytes,
            "retained_objects": d.retained_objects,
            "path": c(&d.path, MAX_PATH_CHARS),
            "alloc_site": site(&d.alloc_site, &mut c),
        }));
    }
    let mut types = Vec::new();
    for t in panel.types.iter().take(MAX_HEAP_ROWS) {
        types.push(json!({
            "type": c(&t.type_name, MAX_NAME_CHARS),
            "count": t.count,
            "shallow_bytes": t.shallow_bytes,
            "retained_bytes": t.retained_bytes,
            "alloc_site": site(&t.alloc_site, &mut c),
        }));
    }
    let rows_cut = [
        panel.suspects.len(),
        panel.dominators.len(),
        panel.types.len(),
    ]
    .iter()
    .map(|n| n.saturating_sub(MAX_HEAP_ROWS))
    .sum::<usize>();
    json!({
        "objects": panel.objects,
        "bytes": panel.bytes,
        "reachable_objects": panel.reachable_objects,
        "reachable_bytes": panel.reachable_bytes,
        "suspects": suspects,
        "dominators": dominators,
        "types": types,
        "rows_cut": rows_cut,
        "max_rows": MAX_HEAP_ROWS,
    })
}
