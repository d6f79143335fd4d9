//! The `memlens-heap` JSON contract (design.md §3), version 1; later additions are additive.

use std::io::{self, Write};

use serde_json::{Value, json};

use crate::analysis::{Site, SuspectKind};
use crate::report::HeapReport;

fn site(s: &Option<Site>) -> Value {
    match s {
        Some(s) => json!({"file": s.file, "line": s.line}),
        None => Value::Null,
    }
}

/// Builds the JSON value of a report.
pub(crate) fn value(r: &HeapReport) -> Value {
    let types: Vec<Value> = r
        .types
        .iter()
        .map(|t| {
            json!({"type": t.type_name, "count": t.count, "shallow_bytes": t.shallow_bytes,
                   "retained_bytes": t.retained_bytes})
        })
        .collect();
    let dominators: Vec<Value> = r
        .dominators
        .iter()
        .map(|d| {
            json!({"type": d.type_name, "retained_bytes": d.retained_bytes, "path": d.path,
                   "alloc_site": site(&d.alloc_site), "shallow_bytes": d.shallow_bytes,
                   "retained_objects": d.retained_objects, "address": d.address})
        })
        .collect();
    let suspects: Vec<Value> = r
        .suspects
        .iter()
        .map(|s| {
            json!({
                "kind": match s.kind { SuspectKind::Holder => "holder", SuspectKind::Accumulation => "accumulation" },
                "type": s.type_name, "retained_bytes": s.retained_bytes, "share": s.share,
                "objects": s.objects, "path": s.path, "alloc_site": site(&s.alloc_site),
                "message": s.message,
                "composition": s.composition.iter().map(|c| json!({"type": c.type_name, "count": c.count, "bytes": c.bytes})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let findings: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            json!({"rule": f.rule, "title": f.title, "severity": f.severity, "file": f.file,
                   "line": f.line, "bytes": f.bytes, "message": f.message, "fix": f.fix,
                   "evidence": f.evidence})
        })
        .collect();
    let duplicates: Vec<Value> = r
        .duplicates
        .iter()
        .map(|d| {
            json!({"type": d.type_name, "value": d.value, "count": d.count, "size": d.size,
                   "wasted_bytes": d.wasted_bytes, "truncated": d.truncated})
        })
        .collect();
    let mut v = json!({
        "format": "memlens-heap",
        "version": 1,
        "objects": r.objects,
        "bytes": r.bytes,
        "reachable_objects": r.reachable_objects,
        "reachable_bytes": r.reachable_bytes,
        "edges": r.edges,
        "roots": r.roots,
        "meta": r.meta.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
        "types": types,
        "dominators": dominators,
        "suspects": suspects,
        "findings": findings,
        "duplicate_strings": duplicates,
    });
    if let Some(w) = &r.why {
        v["why"] = json!({
            "pattern": w.pattern, "matched": w.matched, "shallow_bytes": w.shallow_bytes,
            "retained_bytes": w.retained_bytes, "unreachable": w.unreachable,
            "groups": w.groups.iter().map(|g| json!({
                "type": g.type_name, "count": g.count, "shallow_bytes": g.shallow_bytes,
                "retained_bytes": g.retained_bytes, "path": g.path, "example": g.example,
            })).collect::<Vec<_>>(),
        });
    }
    if let Some(d) = &r.diff {
        v["diff"] = json!({
            "snapshots": d.snapshots, "objects": d.objects, "bytes": d.bytes,
            "types": d.types.iter().map(|t| json!({
                "type": t.type_name, "counts": t.counts, "bytes": t.bytes,
                "grew_every_time": t.grew_every_time,
            })).collect::<Vec<_>>(),
            "paths": d.paths.iter().map(|p| json!({
                "path": p.path, "type": p.type_name, "counts": p.counts, "bytes": p.bytes,
            })).collect::<Vec<_>>(),
            "holders": d.holders.iter().map(|h| json!({
                "path": h.path, "type": h.type_name, "retained_bytes": h.retained,
                "references": h.references,
            })).collect::<Vec<_>>(),
        });
    }
    v
}

/// Writes the report as pretty JSON with a trailing newline.
pub(crate) fn write(r: &HeapReport, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &value(r))?;
    writeln!(out)
}
