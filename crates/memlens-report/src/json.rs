//! The JSON contract of design.md §3: `{"format": "memlens-report", "version": 1, ...}`.
//! Fields are only ever added: beyond design.md's list, `view` (the view sites are ranked by),
//! `meta.events`/`meta.warning`/`meta.dropped_events`/`meta.sites_estimated` (sampled site figures,
//! scaled to the exact totals), each site's `temporary_bytes` and `high_water_bytes`, `threads`, `checkpoints` and
//! `leak_window` (`null` unless the leaks view is bounded by checkpoints).

use memlens_analysis::{Location, Report, View};
use serde_json::{Value, json};

fn location(l: &Location) -> Value {
    json!({"file": l.file, "line": l.line, "function": l.function})
}

/// The report as a JSON value, sites ranked by `view` (all sites with any figure are listed).
pub fn to_value(report: &Report, view: View) -> Value {
    let m = &report.meta;
    let t = &report.totals;
    let mut sites: Vec<_> = report.sites.iter().collect();
    sites.sort_by(|a, b| {
        b.bytes(view)
            .cmp(&a.bytes(view))
            .then_with(|| a.location.cmp(&b.location))
    });
    json!({
        "format": "memlens-report",
        "version": 1,
        "view": view.name(),
        "meta": {
            "command": m.command,
            "python": m.python,
            "pid": m.pid,
            "mode": m.mode,
            "sample_rate": m.sample_rate,
            "duration_s": m.duration_s,
            "events": m.events,
            "warning": m.warning,
            "dropped_events": m.dropped_events,
            "sites_estimated": m.sites_estimated,
            "start_unix_ns": m.start_unix_ns,
            "processes": m.processes,
        },
        "totals": totals(t),
        "sites": sites.iter().map(|s| json!({
            "file": s.location.file,
            "line": s.location.line,
            "function": s.location.function,
            "peak_bytes": s.peak_bytes,
            "leaked_bytes": s.leaked_bytes,
            "allocated_bytes": s.allocated_bytes,
            "allocations": s.allocations,
            "temporary_bytes": s.temporary_bytes,
            "high_water_bytes": s.high_water_bytes,
            "stack": s.stack.iter().map(location).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "findings": report.findings.iter().map(|f| json!({
            "rule": f.rule,
            "title": f.title,
            "severity": f.severity.name(),
            "file": f.location.as_ref().map(|l| l.file.as_str()),
            "line": f.location.as_ref().map(|l| l.line),
            "function": f.location.as_ref().map(|l| l.function.as_str()),
            "bytes": f.bytes,
            "message": f.message,
            "fix": f.fix,
            "evidence": f.evidence,
        })).collect::<Vec<_>>(),
        "threads": report.threads.iter().map(|t| json!({
            "id": t.id, "native_id": t.native_id, "name": t.name,
        })).collect::<Vec<_>>(),
        "checkpoints": report.checkpoints.iter().map(|c| json!({
            "t": c.time_s, "label": c.label,
        })).collect::<Vec<_>>(),
        "leak_window": report.leak_window.as_ref().map(|w| json!({
            "from": w.from, "to": w.to, "from_t": w.from_time_s, "to_t": w.to_time_s,
        })),
        "timeline": report.timeline.iter().map(|p| json!({
            "t": p.time_s, "live_bytes": p.live_bytes, "rss_bytes": p.rss_bytes,
        })).collect::<Vec<_>>(),
    })
}

/// Writes the report as pretty-printed JSON.
pub fn render(report: &Report, view: View, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(report, view))?;
    writeln!(out)
}

/// The contract's `totals` object (the HTML report embeds the same one).
pub(crate) fn totals(t: &memlens_analysis::Totals) -> serde_json::Value {
    json!({
        "peak_bytes": t.peak_bytes,
        "peak_time_s": t.peak_time_s,
        "leaked_bytes": t.leaked_bytes,
        "allocated_bytes": t.allocated_bytes,
        "allocations": t.allocations,
        "rss_peak_bytes": t.rss_peak_bytes,
    })
}
