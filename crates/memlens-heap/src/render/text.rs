//! Readable text for a terminal.

use std::io::{self, Write};

use crate::analysis::WhyReport;
use crate::escape::{count, human_bytes, human_delta, name};
use crate::report::HeapReport;

const TYPE_ROWS: usize = 25;

fn series(values: &[u64], f: impl Fn(u64) -> String) -> String {
    values
        .iter()
        .map(|&v| f(v))
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// Writes the report as text.
pub(crate) fn write(r: &HeapReport, out: &mut dyn Write) -> io::Result<()> {
    // `--why` alone asks one question: the answer is all that is printed.
    if let (Some(w), None) = (&r.why, &r.diff) {
        return write_why(w, out);
    }
    writeln!(
        out,
        "Heap snapshot: {} objects, {} in {} references from {} roots",
        count(r.objects),
        human_bytes(r.bytes),
        count(r.edges),
        count(r.roots)
    )?;
    let lost_objects = r.objects - r.reachable_objects;
    writeln!(
        out,
        "Reachable: {} objects, {}{}",
        count(r.reachable_objects),
        human_bytes(r.reachable_bytes),
        if lost_objects > 0 {
            format!(
                " ({} objects, {} not held by any strong reference: weakly held or garbage)",
                count(lost_objects),
                human_bytes(r.bytes - r.reachable_bytes)
            )
        } else {
            String::new()
        }
    )?;

    if !r.suspects.is_empty() {
        writeln!(out, "\nLeak suspects")?;
        for (i, s) in r.suspects.iter().enumerate() {
            writeln!(out, "  {}. {}", i + 1, s.message)?;
            writeln!(out, "     path: {}", s.path)?;
            if let Some(site) = &s.alloc_site {
                writeln!(out, "     allocated at {}:{}", name(&site.file), site.line)?;
            }
        }
    }

    if !r.dominators.is_empty() {
        writeln!(out, "\nTop dominators (what each object alone keeps alive)")?;
        writeln!(
            out,
            "  {:>10}  {:>10}  {:<24}  PATH",
            "RETAINED", "OBJECTS", "TYPE"
        )?;
        for d in &r.dominators {
            writeln!(
                out,
                "  {:>10}  {:>10}  {:<24}  {}{}",
                human_bytes(d.retained_bytes),
                count(d.retained_objects),
                name(&d.type_name),
                d.path,
                d.alloc_site
                    .as_ref()
                    .map(|s| format!("  (allocated at {}:{})", name(&s.file), s.line))
                    .unwrap_or_default()
            )?;
        }
    }

    if !r.types.is_empty() {
        writeln!(out, "\nTypes (by retained size)")?;
        writeln!(
            out,
            "  {:>10}  {:>10}  {:>10}  TYPE",
            "COUNT", "SHALLOW", "RETAINED"
        )?;
        for t in r.types.iter().take(TYPE_ROWS) {
            writeln!(
                out,
                "  {:>10}  {:>10}  {:>10}  {}",
                count(t.count),
                human_bytes(t.shallow_bytes),
                human_bytes(t.retained_bytes),
                name(&t.type_name)
            )?;
        }
        if r.types.len() > TYPE_ROWS {
            writeln!(
                out,
                "  ... {} more types (--format json lists all)",
                r.types.len() - TYPE_ROWS
            )?;
        }
    }

    if !r.duplicates.is_empty() {
        let stored = r.duplicates.iter().any(|d| d.value.is_some());
        writeln!(out, "\nDuplicate strings")?;
        writeln!(
            out,
            "  {:>8}  {:>10}  {:>10}  {}",
            "COPIES",
            "EACH",
            "WASTED",
            if stored { "VALUE" } else { "TYPE" }
        )?;
        for d in &r.duplicates {
            let shown = match &d.value {
                Some(_) => d.described(),
                None => name(&d.type_name),
            };
            writeln!(
                out,
                "  {:>8}  {:>10}  {:>10}  {shown}{}",
                count(d.count),
                human_bytes(d.size),
                human_bytes(d.wasted_bytes),
                if d.truncated {
                    " (preview cut; probably equal)"
                } else {
                    ""
                }
            )?;
        }
        if !stored {
            writeln!(
                out,
                "  (values not stored in the snapshot: copies are equal in full, by hash; \
                 `memlens run --heap-values` stores the first 64 characters)"
            )?;
        }
    }

    if let Some(w) = &r.why {
        writeln!(out)?;
        write_why(w, out)?;
    }

    if let Some(d) = &r.diff {
        let m = d.snapshots;
        writeln!(
            out,
            "\nGrowth over {m} snapshots (oldest first): {} objects, {}",
            series(&d.objects, count),
            series(&d.bytes, human_bytes)
        )?;
        let every = if m >= 3 { " every time" } else { "" };
        writeln!(
            out,
            "  Holders that grew{every} (matched by retainer path; what each alone keeps)"
        )?;
        if d.holders.is_empty() {
            writeln!(out, "    none")?;
        }
        for h in &d.holders {
            writeln!(
                out,
                "    {} ({} refs) `{}`: {}",
                series(&h.retained, human_bytes),
                series(&h.references, count),
                name(&h.type_name),
                h.path
            )?;
        }
        writeln!(out, "  By type")?;
        if d.types.is_empty() {
            writeln!(out, "    none")?;
        }
        for t in &d.types {
            writeln!(
                out,
                "    {:>10}  {:>12} objects  {}",
                human_delta(t.bytes[m - 1] as i64 - t.bytes[0] as i64),
                format!("{:+}", t.counts[m - 1] as i64 - t.counts[0] as i64),
                name(&t.type_name)
            )?;
        }
        writeln!(out, "  By retainer path")?;
        if d.paths.is_empty() {
            writeln!(out, "    none")?;
        }
        for p in &d.paths {
            writeln!(
                out,
                "    {:>10}  {:>12} objects  {}",
                human_delta(p.bytes[m - 1] as i64 - p.bytes[0] as i64),
                format!("{:+}", p.counts[m - 1] as i64 - p.counts[0] as i64),
                p.path
            )?;
        }
    }

    if !r.findings.is_empty() {
        writeln!(out, "\nFindings")?;
        for f in &r.findings {
            writeln!(out, "  {} [{}] {}", f.severity, f.rule, f.title)?;
            writeln!(out, "      {}", f.message)?;
            writeln!(out, "      evidence: {}", f.evidence)?;
            writeln!(out, "      fix: {}", f.fix)?;
        }
    }
    Ok(())
}

/// The answer to `--why`: what matched, and the retainer paths that hold it.
fn write_why(w: &WhyReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "Why `{}` is alive: {} objects, {} shallow, {} retained",
        name(&w.pattern),
        count(w.matched),
        human_bytes(w.shallow_bytes),
        human_bytes(w.retained_bytes)
    )?;
    if w.matched == 0 {
        writeln!(
            out,
            "  no object matches (a type name, a glob such as `app.*`, or file.py:LINE)"
        )?;
    }
    if w.unreachable > 0 {
        writeln!(
            out,
            "  {} of them are not held by any strong reference (weakly held or garbage)",
            count(w.unreachable)
        )?;
    }
    for g in &w.groups {
        writeln!(
            out,
            "  {} x `{}`, {} retained: {}",
            count(g.count),
            name(&g.type_name),
            human_bytes(g.retained_bytes),
            g.path
        )?;
        if g.example != g.path {
            writeln!(out, "      e.g. {}", g.example)?;
        }
    }
    Ok(())
}
