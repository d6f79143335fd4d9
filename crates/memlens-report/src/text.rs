//! The terminal summary: totals, then the top lines of the user's code with their source.

use std::fmt::Write as _;

use memlens_analysis::{Report, View};

use crate::human_bytes;

/// Text rendering settings.
#[derive(Debug, Clone)]
pub struct TextOptions {
    /// How many sites to list.
    pub top: usize,
    /// Show the source line of each site when the file is readable.
    pub show_source: bool,
    /// Colour with ANSI escapes (the CLI sets it on a terminal unless `NO_COLOR` is set).
    pub color: bool,
}

impl Default for TextOptions {
    fn default() -> Self {
        TextOptions {
            top: 10,
            show_source: true,
            color: false,
        }
    }
}

/// Makes a name from the profiled program safe to print: control characters (escape
/// sequences, carriage returns) are shown as `\u{..}` instead of acting on the terminal.
pub fn escape_terminal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Wraps `text` in an SGR colour code when `on`.
fn paint(text: &str, code: &str, on: bool) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

fn source_line(file: &str, line: u32) -> Option<String> {
    if line == 0 || file.starts_with('<') {
        return None;
    }
    let text = std::fs::read(file).ok()?;
    let text = String::from_utf8_lossy(&text);
    let l = text.lines().nth(line as usize - 1)?.trim();
    let mut l: String = l.chars().take(80).collect();
    if l.len() < text.lines().nth(line as usize - 1)?.trim().len() {
        l.push('…');
    }
    Some(l)
}

fn view_title(view: View) -> &'static str {
    match view {
        View::Peak => "Top lines at the peak (live when memory use was highest)",
        View::Leaks => "Top lines still holding memory at exit (leaks)",
        View::Allocations => "Top lines by bytes allocated over the run",
        View::Temporary => "Top lines by bytes allocated and freed soon after (temporaries)",
    }
}

/// Writes the summary.
pub fn render(
    report: &Report,
    view: View,
    options: &TextOptions,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let m = &report.meta;
    let t = &report.totals;
    let command = escape_terminal(&m.command.join(" "));
    let mode = if m.mode == "exact" {
        "exact".to_owned()
    } else {
        format!("sampling every {} on average", human_bytes(m.sample_rate))
    };
    writeln!(
        out,
        "{}",
        paint(&format!("memlens report: {command}"), "1", options.color)
    )?;
    writeln!(
        out,
        "  Python {}, pid {}, {mode}, {:.2} s",
        escape_terminal(&m.python),
        m.pid,
        m.duration_s
    )?;
    for w in m.warning.iter().cloned().chain(m.dropped_warning()) {
        writeln!(
            out,
            "  {} {}",
            paint("warning:", "33", options.color),
            escape_terminal(&w)
        )?;
    }
    if !report.checkpoints.is_empty() {
        let marks: Vec<String> = report
            .checkpoints
            .iter()
            .map(|c| format!("{} at {:.0} ms", escape_terminal(&c.label), c.time_s * 1e3))
            .collect();
        writeln!(out, "  checkpoints: {}", marks.join(", "))?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "  peak {} at {:.2} s · still live at exit {} · allocated {} in {} allocations · peak RSS {}",
        human_bytes(t.peak_bytes),
        t.peak_time_s,
        human_bytes(t.leaked_bytes),
        human_bytes(t.allocated_bytes),
        t.allocations,
        human_bytes(t.rss_peak_bytes),
    )?;
    writeln!(out)?;
    render_sites(report, view, options, out)?;
    if !report.findings.is_empty() {
        writeln!(out)?;
        render_findings(report, out)?;
    }
    Ok(())
}

/// Writes the findings, if any.
pub fn render_findings(report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    if report.findings.is_empty() {
        return Ok(());
    }
    writeln!(out, "Findings:")?;
    for f in &report.findings {
        let at = f
            .location
            .as_ref()
            .map(|l| format!("{}:{}: ", escape_terminal(&l.file), l.line))
            .unwrap_or_default();
        writeln!(
            out,
            "  {at}{} {} [{}]",
            f.rule,
            escape_terminal(&f.message),
            f.title
        )?;
        writeln!(out, "      fix: {}", f.fix)?;
        writeln!(out, "      evidence: {}", escape_terminal(&f.evidence))?;
    }
    writeln!(out, "  (memlens explain RULE tells more)")
}

/// Writes only the ranked lines of `view`.
pub fn render_sites(
    report: &Report,
    view: View,
    options: &TextOptions,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let t = &report.totals;
    let title = match (&report.leak_window, view) {
        (Some(w), View::Leaks) => format!(
            "Top lines allocated after {} and still live at {}",
            w.from
                .as_deref()
                .map_or("the start".to_owned(), |l| format!(
                    "checkpoint {:?}",
                    escape_terminal(l)
                )),
            w.to.as_deref().map_or("exit".to_owned(), |l| format!(
                "checkpoint {:?}",
                escape_terminal(l)
            )),
        ),
        _ => view_title(view).to_owned(),
    };
    writeln!(out, "{}:", paint(&title, "1", options.color))?;
    // Sampled site figures are estimates and may sum past the exact total: share them out of
    // whichever is larger, so no line shows more than 100%.
    let estimated = report
        .sites
        .iter()
        .fold(0u64, |sum, s| sum.saturating_add(s.bytes(view)));
    let total = match view {
        View::Peak => t.peak_bytes,
        // A checkpoint window has no exact counter either.
        View::Leaks if report.leak_window.is_some() => 0,
        View::Leaks => t.leaked_bytes,
        View::Allocations => t.allocated_bytes,
        // No exact counter: the estimates are the total.
        View::Temporary => 0,
    }
    .max(estimated)
    .max(1);
    // Estimates from samples are marked as such.
    let mark = if report.meta.sites_estimated { "~" } else { "" };
    let mut any = false;
    // memlens's own lines (its start and stop) are not the program's.
    let sites = report
        .top_sites(view)
        .filter(|s| !memlens_analysis::is_memlens_file(&s.location.file));
    for site in sites.take(options.top) {
        any = true;
        let bytes = site.bytes(view);
        let l = &site.location;
        writeln!(
            out,
            "  {} {:>5.1}%  {}  {}",
            paint(
                &format!("{:>11}", format!("{mark}{}", human_bytes(bytes))),
                "33",
                options.color
            ),
            bytes as f64 * 100.0 / total as f64,
            paint(
                &format!("{}:{}", escape_terminal(&l.file), l.line),
                "36",
                options.color
            ),
            escape_terminal(&l.function),
        )?;
        if options.show_source
            && let Some(src) = source_line(&l.file, l.line)
        {
            let src = format!("│ {}", escape_terminal(&src));
            writeln!(out, "  {:>18}  {}", "", paint(&src, "2", options.color))?;
        }
    }
    if !any {
        writeln!(out, "  (nothing recorded)")?;
    }
    render_threads(report, view, out)
}

/// Which frames `--stack FILE:LINE` picks: a file given in full, or by its trailing path
/// components (`app.py`, `pkg/app.py`), and a line.
pub fn frame_matches(frame: &memlens_analysis::Location, file: &str, line: u32) -> bool {
    frame.line == line
        && (frame.file == file
            || frame
                .file
                .strip_suffix(file)
                .is_some_and(|head| head.ends_with('/')))
}

/// The call stacks that reach `file:line` in `view`, heaviest first, with their bytes: what
/// `memlens report --stack FILE:LINE` prints. Returns false when no stack reaches the line.
pub fn render_stacks_through(
    report: &Report,
    view: View,
    file: &str,
    line: u32,
    top: usize,
    out: &mut dyn std::io::Write,
) -> std::io::Result<bool> {
    let tree = &report.calls;
    let Some(flame) = report.flame(view) else {
        return Ok(false);
    };
    // Path of a node, outermost frame first.
    let path = |mut node: u32| {
        let mut frames = Vec::new();
        while node != 0 && frames.len() < 10_000 {
            let n = tree.nodes[node as usize];
            frames.push(n.frame);
            node = n.parent;
        }
        frames.reverse();
        frames
    };
    let mut stacks: std::collections::HashMap<Vec<u32>, (u64, u64)> =
        std::collections::HashMap::new();
    for v in &flame.values {
        let frames = path(v.node);
        if frames
            .iter()
            .any(|&f| frame_matches(&tree.frames[f as usize], file, line))
        {
            let e = stacks.entry(frames).or_default();
            e.0 = e.0.saturating_add(v.bytes);
            e.1 = e.1.saturating_add(v.count);
        }
    }
    if stacks.is_empty() {
        return Ok(false);
    }
    let mut stacks: Vec<_> = stacks.into_iter().collect();
    stacks.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
    let total: u64 = stacks.iter().map(|s| s.1.0).fold(0, u64::saturating_add);
    let mark = if report.meta.sites_estimated { "~" } else { "" };
    writeln!(
        out,
        "{} call {} {}:{} ({}: {mark}{} in all)",
        stacks.len(),
        if stacks.len() == 1 {
            "stack reaches"
        } else {
            "stacks reach"
        },
        escape_terminal(file),
        line,
        view.name(),
        human_bytes(total)
    )?;
    for (frames, (bytes, count)) in stacks.iter().take(top) {
        let unit = match view {
            View::Allocations | View::Temporary => "allocations",
            View::Peak | View::Leaks => "blocks",
        };
        writeln!(out, "\n  {mark}{} in {count} {unit}:", human_bytes(*bytes))?;
        for &f in frames {
            let l = &tree.frames[f as usize];
            let here = if frame_matches(l, file, line) {
                "  <-"
            } else {
                ""
            };
            writeln!(
                out,
                "    {}:{}  {}{here}",
                escape_terminal(&l.file),
                l.line,
                escape_terminal(&l.function)
            )?;
        }
    }
    if stacks.len() > top {
        writeln!(
            out,
            "\n  ... {} more (--top N shows more)",
            stacks.len() - top
        )?;
    }
    Ok(true)
}

/// With more than one thread, the view's bytes per thread on one line.
fn render_threads(
    report: &Report,
    view: View,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let Some(flame) = report.flame(view) else {
        return Ok(());
    };
    if report.threads.len() < 2 {
        return Ok(());
    }
    let mut per_thread = vec![0u64; report.threads.len()];
    for v in &flame.values {
        if let Some(b) = per_thread.get_mut(v.thread as usize) {
            *b = b.saturating_add(v.bytes);
        }
    }
    let mut order: Vec<usize> = (0..per_thread.len())
        .filter(|&i| per_thread[i] > 0)
        .collect();
    order.sort_by_key(|&i| std::cmp::Reverse(per_thread[i]));
    let parts: Vec<String> = order
        .iter()
        .map(|&i| {
            format!(
                "{} {}",
                escape_terminal(&report.threads[i].name),
                human_bytes(per_thread[i])
            )
        })
        .collect();
    writeln!(out, "  by thread: {}", parts.join(" · "))
}

#[cfg(test)]
mod tests {
    use super::escape_terminal;
    use memlens_analysis::{Location, Report, Site, View};

    #[test]
    fn shares_never_exceed_100_percent_when_estimates_pass_the_exact_total() {
        let mut report = Report::default();
        report.totals.leaked_bytes = 100;
        report.sites.push(Site {
            location: Location {
                file: "<string>".into(),
                line: 1,
                function: "f".into(),
            },
            peak_bytes: 0,
            leaked_bytes: 150,
            allocated_bytes: 150,
            allocations: 1,
            temporary_bytes: 0,
            high_water_bytes: 150,
            stack: Vec::new(),
        });
        let mut out = Vec::new();
        super::render_sites(
            &report,
            View::Leaks,
            &super::TextOptions::default(),
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("100.0%"), "{text}");
    }

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(escape_terminal("a\x1b[31mb\r"), "a\\u{1b}[31mb\\u{d}");
        assert_eq!(escape_terminal("<script>é"), "<script>é");
    }
}
