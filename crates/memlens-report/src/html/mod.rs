//! The HTML report: one self-contained page (no network) with a flame graph of each view,
//! a top-lines table with source, memory over time with the live set at chosen moments,
//! the run's metadata and findings, and, when the caller passes a [`HeapPanel`], the heap
//! snapshot's suspects, dominators and types.
//!
//! The page is the template, stylesheet and script under `assets/html/` (embedded at build
//! time) plus the report's data as JSON in a `<script type="application/json">` element. The
//! data is pruned to fit [`HtmlOptions::max_bytes`] however large the capture (see
//! `data.rs`), and `<`, `>`, `&`, U+2028 and U+2029 are escaped inside it, so no name from the
//! profiled program can end the element; the script only ever puts names into the page as text.

mod data;
mod heap;

pub use heap::{HeapDominator, HeapPanel, HeapSite, HeapSuspect, HeapType, MAX_HEAP_ROWS};

use memlens_analysis::{Report, View};

const TEMPLATE: &str = include_str!("../../assets/html/report.html");
const STYLE: &str = include_str!("../../assets/html/report.css");
const SCRIPT: &str = include_str!("../../assets/html/report.js");

/// HTML rendering settings; the defaults keep any report under 5 MB.
#[derive(Debug, Clone)]
pub struct HtmlOptions {
    /// Largest page written, in bytes.
    pub max_bytes: usize,
    /// Most call-tree nodes embedded before pruning for size (smaller stacks fold into
    /// `(other)` nodes).
    pub max_nodes: usize,
    /// Most moments (live sets along the timeline) embedded.
    pub max_moments: usize,
    /// Most timeline points embedded.
    pub max_timeline_points: usize,
    /// Most lines per view in the top-lines table.
    pub max_lines: usize,
    /// Read each top line's source from its file (when it exists) while rendering.
    pub read_sources: bool,
}

impl Default for HtmlOptions {
    fn default() -> Self {
        HtmlOptions {
            max_bytes: 5_000_000,
            max_nodes: 20_000,
            max_moments: 64,
            max_timeline_points: 2000,
            max_lines: 100,
            read_sources: true,
        }
    }
}

/// Escapes JSON text for a `<script>` element: `<`, `>` and `&` (so `</script>` and `<!--`
/// cannot occur) and the line separators U+2028/U+2029. They only occur inside JSON strings,
/// where a `\u` escape means the same character.
pub fn escape_script_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + json.len() / 64);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for HTML element content and attribute values.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The page's data, escaped for embedding, within `budget` bytes when pruning can get there.
fn data_json(
    report: &Report,
    heap: Option<&HeapPanel>,
    view: View,
    options: &HtmlOptions,
    budget: usize,
) -> String {
    let prepared = data::Prepared::new(report).with_heap(heap);
    let mut options = options.clone();
    let mut max_nodes = options.max_nodes;
    loop {
        let value = prepared.build(view, &options, max_nodes);
        let json = escape_script_json(&value);
        if json.len() <= budget {
            return json;
        }
        // Shrink in proportion to the overshoot; once the tree is small, shrink the rest.
        if max_nodes > 64 {
            let scaled = (max_nodes as f64 * budget as f64 / json.len() as f64 * 0.9) as usize;
            max_nodes = scaled.clamp(64, max_nodes / 2 + 1);
        } else if options.max_moments > 1
            || options.max_lines > 1
            || options.max_timeline_points > 2
        {
            options.max_moments /= 2;
            options.max_lines /= 2;
            options.max_timeline_points /= 2;
            max_nodes /= 2;
        } else {
            // Nothing left to prune (a few enormous findings): write what there is.
            return json;
        }
    }
}

/// Writes the report page, opening on `view` (every view is in the page), with no heap panel.
pub fn render(
    report: &Report,
    view: View,
    options: &HtmlOptions,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    render_with_heap(report, None, view, options, out)
}

/// Writes the report page with `heap` in its heap panel (`None`: the panel says that the
/// capture holds no heap snapshot).
pub fn render_with_heap(
    report: &Report,
    heap: Option<&HeapPanel>,
    view: View,
    options: &HtmlOptions,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let title = format!("memlens: {}", report.meta.command.join(" "));
    let title: String = title.chars().take(200).collect();
    let fixed = TEMPLATE.len() + STYLE.len() + SCRIPT.len() + title.len() * 6;
    let budget = options.max_bytes.saturating_sub(fixed + 1024);
    let data = data_json(report, heap, view, options, budget);
    let page = TEMPLATE
        .replacen("{{title}}", &escape_html(&title), 1)
        .replacen("/*{{style}}*/", STYLE, 1)
        .replacen("/*{{script}}*/", SCRIPT, 1);
    // The data goes in last so that nothing inside it is ever taken for a placeholder.
    let (head, tail) = page
        .split_once("{{data}}")
        .expect("the template has a {{data}} placeholder");
    out.write_all(head.as_bytes())?;
    out.write_all(data.as_bytes())?;
    out.write_all(tail.as_bytes())
}

#[cfg(test)]
mod tests;
