//! The `memlens-heap` JSON contract (design.md §3), version 1; later additions are additive.
//!
//! Keys are written in the contract's order (a small ordered writer: serde_json's map sorts
//! keys unless its `preserve_order` feature, and another dependency, is enabled).

use std::io::{self, Write};

use crate::analysis::{Site, SuspectKind};
use crate::report::HeapReport;

/// A JSON value with ordered object keys.
enum J {
    Null,
    Bool(bool),
    U(u64),
    F(f64),
    S(String),
    A(Vec<J>),
    O(Vec<(&'static str, J)>),
}

impl From<&str> for J {
    fn from(s: &str) -> J {
        J::S(s.to_string())
    }
}
impl From<&String> for J {
    fn from(s: &String) -> J {
        J::S(s.clone())
    }
}
impl From<u64> for J {
    fn from(v: u64) -> J {
        J::U(v)
    }
}
impl From<u32> for J {
    fn from(v: u32) -> J {
        J::U(u64::from(v))
    }
}
impl From<usize> for J {
    fn from(v: usize) -> J {
        J::U(v as u64)
    }
}
impl From<f64> for J {
    fn from(v: f64) -> J {
        J::F(v)
    }
}
impl From<bool> for J {
    fn from(v: bool) -> J {
        J::Bool(v)
    }
}
impl<T: Into<J>> From<Option<T>> for J {
    fn from(v: Option<T>) -> J {
        v.map_or(J::Null, Into::into)
    }
}
impl<T: Into<J> + Copy> From<&Vec<T>> for J {
    fn from(v: &Vec<T>) -> J {
        J::A(v.iter().map(|&x| x.into()).collect())
    }
}

macro_rules! obj {
    ($($k:literal : $v:expr),* $(,)?) => { J::O(vec![$(($k, J::from($v))),*]) };
}

fn site(s: &Option<Site>) -> J {
    match s {
        Some(s) => obj! {"file": &s.file, "line": s.line},
        None => J::Null,
    }
}

fn put(out: &mut Vec<u8>, v: &J, indent: usize) {
    let pad = |out: &mut Vec<u8>, n: usize| out.extend(std::iter::repeat_n(b' ', n));
    match v {
        J::Null => out.extend_from_slice(b"null"),
        J::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        J::U(n) => out.extend_from_slice(n.to_string().as_bytes()),
        J::F(f) if f.is_finite() => out.extend_from_slice(format!("{f}").as_bytes()),
        J::F(_) => out.extend_from_slice(b"null"),
        J::S(s) => {
            // serde_json escapes quotes, backslashes and control characters.
            let _ = serde_json::to_writer(&mut *out, s.as_str());
        }
        J::A(items) if items.is_empty() => out.extend_from_slice(b"[]"),
        J::O(items) if items.is_empty() => out.extend_from_slice(b"{}"),
        J::A(items) => {
            out.extend_from_slice(b"[\n");
            for (i, x) in items.iter().enumerate() {
                pad(out, indent + 2);
                put(out, x, indent + 2);
                out.extend_from_slice(if i + 1 < items.len() { b",\n" } else { b"\n" });
            }
            pad(out, indent);
            out.push(b']');
        }
        J::O(items) => {
            out.extend_from_slice(b"{\n");
            for (i, (k, x)) in items.iter().enumerate() {
                pad(out, indent + 2);
                let _ = serde_json::to_writer(&mut *out, k);
                out.extend_from_slice(b": ");
                put(out, x, indent + 2);
                out.extend_from_slice(if i + 1 < items.len() { b",\n" } else { b"\n" });
            }
            pad(out, indent);
            out.push(b'}');
        }
    }
}

fn value(r: &HeapReport) -> J {
    let types = J::A(
        r.types
            .iter()
            .map(|t| {
                obj! {"type": &t.type_name, "count": t.count, "shallow_bytes": t.shallow_bytes,
                "retained_bytes": t.retained_bytes}
            })
            .collect(),
    );
    let dominators = J::A(
        r.dominators
            .iter()
            .map(|d| {
                obj! {"type": &d.type_name, "retained_bytes": d.retained_bytes, "path": &d.path,
                "alloc_site": site(&d.alloc_site), "shallow_bytes": d.shallow_bytes,
                "retained_objects": d.retained_objects, "address": d.address}
            })
            .collect(),
    );
    let suspects = J::A(
        r.suspects
            .iter()
            .map(|s| {
                let kind = match s.kind {
                    SuspectKind::Holder => "holder",
                    SuspectKind::Accumulation => "accumulation",
                };
                let composition = J::A(
                    s.composition
                        .iter()
                        .map(|c| obj! {"type": &c.type_name, "count": c.count, "bytes": c.bytes})
                        .collect(),
                );
                obj! {"kind": kind, "type": &s.type_name, "retained_bytes": s.retained_bytes,
                "share": s.share, "objects": s.objects, "path": &s.path,
                "alloc_site": site(&s.alloc_site), "message": &s.message,
                "composition": composition}
            })
            .collect(),
    );
    let findings = J::A(
        r.findings
            .iter()
            .map(|f| {
                obj! {"rule": f.rule, "title": &f.title, "severity": f.severity,
                "file": f.file.as_ref(), "line": f.line, "bytes": f.bytes, "message": &f.message,
                "fix": &f.fix, "evidence": &f.evidence}
            })
            .collect(),
    );
    let duplicates = J::A(
        r.duplicates
            .iter()
            .map(|d| {
                obj! {"type": &d.type_name, "value": d.value.as_ref(), "value_cut": d.value_cut,
                "count": d.count, "size": d.size, "wasted_bytes": d.wasted_bytes,
                "truncated": d.truncated}
            })
            .collect(),
    );
    let meta = J::A(
        r.meta
            .iter()
            .map(|(k, v)| obj! {"key": k, "value": v})
            .collect(),
    );
    let mut top = vec![
        ("format", J::from("memlens-heap")),
        ("version", J::U(1)),
        ("objects", J::U(r.objects)),
        ("bytes", J::U(r.bytes)),
        ("types", types),
        ("dominators", dominators),
        ("suspects", suspects),
        ("findings", findings),
        ("reachable_objects", J::U(r.reachable_objects)),
        ("reachable_bytes", J::U(r.reachable_bytes)),
        ("edges", J::U(r.edges)),
        ("roots", J::U(r.roots)),
        ("meta", meta),
        ("duplicate_strings", duplicates),
    ];
    if let Some(w) = &r.why {
        let groups = J::A(
            w.groups
                .iter()
                .map(|g| {
                    obj! {"type": &g.type_name, "count": g.count, "shallow_bytes": g.shallow_bytes,
                    "retained_bytes": g.retained_bytes, "path": &g.path, "example": &g.example}
                })
                .collect(),
        );
        top.push((
            "why",
            obj! {"pattern": &w.pattern, "matched": w.matched, "shallow_bytes": w.shallow_bytes,
            "retained_bytes": w.retained_bytes, "unreachable": w.unreachable, "groups": groups},
        ));
    }
    if let Some(d) = &r.diff {
        let types = J::A(
            d.types
                .iter()
                .map(|t| {
                    obj! {"type": &t.type_name, "counts": &t.counts, "bytes": &t.bytes,
                    "grew_every_time": t.grew_every_time}
                })
                .collect(),
        );
        let paths = J::A(
            d.paths
                .iter()
                .map(|p| {
                    obj! {"path": &p.path, "type": &p.type_name, "counts": &p.counts,
                    "bytes": &p.bytes}
                })
                .collect(),
        );
        let holders = J::A(
            d.holders
                .iter()
                .map(|h| {
                    obj! {"path": &h.path, "type": &h.type_name, "retained_bytes": &h.retained,
                    "references": &h.references}
                })
                .collect(),
        );
        top.push((
            "diff",
            obj! {"snapshots": d.snapshots, "objects": &d.objects, "bytes": &d.bytes,
            "types": types, "paths": paths, "holders": holders},
        ));
    }
    J::O(top)
}

/// Writes the report as pretty JSON with a trailing newline.
pub(crate) fn write(r: &HeapReport, out: &mut dyn Write) -> io::Result<()> {
    let mut buf = Vec::new();
    put(&mut buf, &value(r), 0);
    buf.push(b'\n');
    out.write_all(&buf)
}
