//! Brendan Gregg's folded stacks, as read by `flamegraph.pl`, inferno and speedscope: one line
//! per stack, frames from the outermost caller inwards separated by `;`, then a space and the
//! view's bytes.
//!
//! A frame is `function (file:line)`. With more than one thread, the thread's name is the
//! outermost frame, so a flame graph splits by thread. The format has no escapes, so names
//! from the profiled program are made safe by substitution: `;` becomes `⁏` (U+204F) and
//! control characters (newlines, escape sequences) are written as `\u{..}`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use memlens_analysis::{Location, Report, View};

/// Makes a name safe inside a folded line.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ';' => out.push('\u{204f}'),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn frame_label(l: &Location) -> String {
    format!("{} ({}:{})", l.function, l.file, l.line)
}

/// Writes the folded stacks of `view` (nothing at all when the view is empty).
pub fn render(report: &Report, view: View, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let Some(flame) = report.flame(view) else {
        return Ok(());
    };
    let by_thread = report.threads.len() > 1;
    // Equal lines (a stack whose frames print alike) are summed; sorted for stable output.
    let mut lines: BTreeMap<String, u64> = BTreeMap::new();
    for v in &flame.values {
        let mut parts = Vec::new();
        if by_thread && let Some(t) = report.threads.get(v.thread as usize) {
            parts.push(escape(&t.name));
        }
        parts.extend(
            report
                .calls
                .path(v.node)
                .into_iter()
                .map(|l| escape(&frame_label(l))),
        );
        if parts.is_empty() {
            parts.push("<no Python frame>".to_owned());
        }
        let sum = lines.entry(parts.join(";")).or_default();
        *sum = sum.saturating_add(v.bytes);
    }
    for (stack, bytes) in lines {
        writeln!(out, "{stack} {bytes}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn separators_and_control_characters_cannot_break_a_line() {
        assert_eq!(super::escape("a;b\nc d"), "a\u{204f}b\\u{a}c d");
    }
}
