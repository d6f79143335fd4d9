//! `memlens gc`: the collector's report as text and as JSON (`"format": "memlens-gc"`,
//! `"version": 1`; fields are only ever added).

use std::io::{self, Write};

use memlens_analysis::{GcReport, human_bytes, thousands};
use serde_json::{Value, json};

use crate::text::escape_terminal;

/// Sites listed in the text report.
const TEXT_SITES: usize = 10;

/// The report as the JSON contract.
pub fn to_value(report: &GcReport) -> Value {
    let p = &report.pauses;
    let g = &report.cyclic_garbage;
    json!({
        "format": "memlens-gc",
        "version": 1,
        "recorded": report.recorded,
        "mode": report.mode,
        "duration_s": report.duration_s,
        "generations": report.generations.iter().map(|g| json!({
            "generation": g.generation,
            "collections": g.collections,
            "collected": g.collected,
            "uncollectable": g.uncollectable,
            "freed_bytes": g.freed_bytes,
            "pause_total_s": g.pause_total_s,
            "pause_max_s": g.pause_max_s,
        })).collect::<Vec<_>>(),
        "pauses": {
            "count": p.count,
            "total_s": p.total_s,
            "max_s": p.max_s,
            "p50_s": p.p50_s,
            "p99_s": p.p99_s,
        },
        "cyclic_garbage": {
            "bytes": g.bytes,
            "objects": g.objects,
            "sites_estimated": g.sites_estimated,
            "sites": g.sites.iter().map(|s| json!({
                "file": s.location.file,
                "line": s.location.line,
                "function": s.location.function,
                "bytes": s.bytes,
                "blocks": s.blocks,
            })).collect::<Vec<_>>(),
        },
        "disabled_s": report.disabled_s,
        "enabled_at_end": report.enabled_at_end,
        "garbage": report.garbage,
        "frozen": report.frozen,
    })
}

/// The JSON contract, pretty-printed, with a final newline.
pub fn render_json(report: &GcReport, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(report))?;
    writeln!(out)
}

/// `seconds` as a person reads a pause: `0.42 ms`, `12.1 ms`, `1.23 s`.
pub fn duration(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.2} s")
    } else if seconds >= 0.01 {
        format!("{:.1} ms", seconds * 1e3)
    } else {
        format!("{:.2} ms", seconds * 1e3)
    }
}

fn share(part: f64, whole: f64) -> String {
    if whole <= 0.0 {
        return "of an instant run".into();
    }
    format!(
        "{:.1}% of the {} run",
        100.0 * part / whole,
        duration(whole)
    )
}

/// The terminal report.
pub fn render_text(report: &GcReport, out: &mut dyn Write) -> io::Result<()> {
    if !report.recorded {
        writeln!(
            out,
            "No garbage-collector activity in this capture (it was written by a memlens that \
             did not record the collector, or tracking stopped before anything was recorded)."
        )?;
        return Ok(());
    }
    let p = &report.pauses;
    if p.count == 0 {
        writeln!(out, "Garbage collector: no collection ran while tracking.")?;
    } else {
        writeln!(
            out,
            "Garbage collector: {} {} paused the program {} in all ({}); worst {}, median {}, \
             99th percentile {}",
            thousands(p.count),
            if p.count == 1 {
                "collection"
            } else {
                "collections"
            },
            duration(p.total_s),
            share(p.total_s, report.duration_s),
            duration(p.max_s),
            duration(p.p50_s),
            duration(p.p99_s),
        )?;
        writeln!(
            out,
            "  {:>10}  {:>11}  {:>10}  {:>13}  {:>10}  {:>10}  {:>9}",
            "GENERATION", "COLLECTIONS", "COLLECTED", "UNCOLLECTABLE", "FREED", "PAUSED", "WORST"
        )?;
        for g in &report.generations {
            writeln!(
                out,
                "  {:>10}  {:>11}  {:>10}  {:>13}  {:>10}  {:>10}  {:>9}",
                g.generation,
                thousands(g.collections),
                thousands(g.collected),
                thousands(g.uncollectable),
                human_bytes(g.freed_bytes),
                duration(g.pause_total_s),
                duration(g.pause_max_s),
            )?;
        }
    }
    let garbage = &report.cyclic_garbage;
    if garbage.bytes > 0 || garbage.objects > 0 {
        writeln!(out)?;
        writeln!(
            out,
            "Cyclic garbage: {} in {} objects was freed only by the collector (reference \
             counting cannot free objects in a reference cycle)",
            human_bytes(garbage.bytes),
            thousands(garbage.objects),
        )?;
        if !garbage.sites.is_empty() {
            let (mark, how) = if garbage.sites_estimated {
                ("~", " (estimated from samples; --exact for exact figures)")
            } else {
                ("", "")
            };
            writeln!(out, "  lines that allocated it{how}:")?;
            for s in garbage.sites.iter().take(TEXT_SITES) {
                writeln!(
                    out,
                    "  {:>11}  {:>9} {}  {}:{} in {}",
                    format!("{mark}{}", human_bytes(s.bytes)),
                    format!("{mark}{}", thousands(s.blocks)),
                    if s.blocks == 1 { "block " } else { "blocks" },
                    escape_terminal(&s.location.file),
                    s.location.line,
                    escape_terminal(&s.location.function),
                )?;
            }
            if garbage.sites.len() > TEXT_SITES {
                writeln!(
                    out,
                    "  ... {} more lines (--format json lists all)",
                    garbage.sites.len() - TEXT_SITES
                )?;
            }
            writeln!(
                out,
                "  fix: objects made at these lines refer back to each other (a parent and its \
                 children, a closure and its frame, an exception and its traceback); hold the \
                 back-reference with `weakref.ref` or clear it when done, and reference counting \
                 frees them at once, with no pause"
            )?;
        }
    } else if p.count > 0 {
        writeln!(
            out,
            "\nNo cyclic garbage: the collections freed nothing (reference counting freed \
             everything)."
        )?;
    }
    if report.disabled_s > 0.0 {
        writeln!(
            out,
            "\nAutomatic collection was off (gc.disable()) for {} ({}){}: cycles made \
             meanwhile stay in memory until gc.enable() or gc.collect()",
            duration(report.disabled_s),
            share(report.disabled_s, report.duration_s),
            if report.enabled_at_end == Some(false) {
                ", still off when tracking stopped"
            } else {
                ""
            },
        )?;
    }
    if let Some(n) = report.garbage.filter(|&n| n > 0) {
        writeln!(
            out,
            "\ngc.garbage holds {} uncollectable objects at the end (finalizers in cycles, or \
             gc.DEBUG_SAVEALL): inspect them with gc.garbage",
            thousands(n)
        )?;
    }
    if let Some(n) = report.frozen.filter(|&n| n > 0) {
        writeln!(
            out,
            "\n{} objects are frozen (gc.freeze()): the collector skips them",
            thousands(n)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_pauses() {
        assert_eq!(duration(0.000_42), "0.42 ms");
        assert_eq!(duration(0.0121), "12.1 ms");
        assert_eq!(duration(1.234), "1.23 s");
    }
}
