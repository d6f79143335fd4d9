//! speedscope's file format (<https://www.speedscope.app/file-format-schema.json>): one
//! `sampled` profile per view, in bytes, whose samples are the allocating stacks weighted by
//! the view's bytes; the requested view is the one speedscope opens.
//!
//! With more than one thread, each stack starts with a frame naming its thread. Names are
//! JSON strings (serde_json escapes them); speedscope shows them as text.

use memlens_analysis::{Report, View};
use serde_json::{Value, json};

fn title(view: View) -> &'static str {
    match view {
        View::Peak => "peak: live at the high-water mark",
        View::Leaks => "leaks: still live at the end",
        View::Allocations => "allocations: everything allocated",
        View::Temporary => "temporary: freed soon after allocation",
    }
}

/// The speedscope document as a JSON value.
pub fn to_value(report: &Report, view: View) -> Value {
    let by_thread = report.threads.len() > 1;
    let mut frames: Vec<Value> = report
        .calls
        .frames
        .iter()
        .map(|l| json!({"name": l.function, "file": l.file, "line": l.line}))
        .collect();
    let thread_frame_base = frames.len();
    if by_thread {
        frames.extend(
            report
                .threads
                .iter()
                .map(|t| json!({"name": format!("thread {}", t.name)})),
        );
    }
    // Every view with data, and always the requested one (possibly empty).
    let views: Vec<View> = View::ALL
        .into_iter()
        .filter(|&v| v == view || report.flame(v).is_some())
        .collect();
    let profiles: Vec<Value> = views
        .iter()
        .map(|&v| {
            let values = report.flame(v).map(|f| f.values.as_slice()).unwrap_or(&[]);
            let mut samples = Vec::with_capacity(values.len());
            let mut weights = Vec::with_capacity(values.len());
            let mut total = 0u64;
            for sv in values {
                let mut stack: Vec<usize> = Vec::new();
                if by_thread {
                    stack.push(thread_frame_base + sv.thread as usize);
                }
                stack.extend(path_frames(report, sv.node));
                samples.push(stack);
                weights.push(sv.bytes);
                total = total.saturating_add(sv.bytes);
            }
            json!({
                "type": "sampled",
                "name": title(v),
                "unit": "bytes",
                "startValue": 0,
                "endValue": total,
                "samples": samples,
                "weights": weights,
            })
        })
        .collect();
    let active = views.iter().position(|&v| v == view).unwrap_or(0);
    json!({
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": frames},
        "profiles": profiles,
        "name": format!("memlens: {}", report.meta.command.join(" ")),
        "activeProfileIndex": active,
        "exporter": concat!("memlens ", env!("CARGO_PKG_VERSION")),
    })
}

/// Frame indices of `node`'s path, outermost first.
fn path_frames(report: &Report, node: u32) -> Vec<usize> {
    let nodes = &report.calls.nodes;
    let mut out = Vec::new();
    let mut n = node as usize;
    while n != 0 && n < nodes.len() && out.len() < nodes.len() {
        out.push(nodes[n].frame as usize);
        n = nodes[n].parent as usize;
    }
    out.reverse();
    out
}

/// Writes the speedscope JSON.
pub fn render(report: &Report, view: View, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, &to_value(report, view))?;
    writeln!(out)
}
