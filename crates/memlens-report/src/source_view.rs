//! `memlens report CAPTURE --source FILE[:FUNCTION]`: a function's source with, per line, the
//! memory of everything that line did (itself and what it called), as memory_profiler's
//! `@profile` shows it, from a capture instead of a re-run.
//!
//! A line's figures are inclusive: every allocation whose call stack passes through the line
//! counts for it once (a recursive call through the same line is not counted twice), so a line
//! that calls `json.dumps` carries what `json.dumps` allocated. Columns: bytes allocated over
//! the run, bytes live at the program's peak, bytes still live at exit (the net the line left
//! behind), and the number of allocations. A module's (or a comprehension's) recorded lines are
//! listed alone, with `...` for the gaps.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use memlens_analysis::{Location, Report, View, human_bytes, is_memlens_file};

use crate::text::{escape_terminal, frame_matches};

/// Functions shown when no target is named.
pub const DEFAULT_FUNCTIONS: usize = 5;
/// A function longer than this shows only its lines with figures.
const MAX_LINES: u32 = 400;

/// One line's inclusive figures.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LineFigures {
    /// Bytes allocated over the run by the line and what it called.
    pub allocated: u64,
    /// Allocations made by it and what it called.
    pub allocations: u64,
    /// Bytes live at the program's peak.
    pub peak: u64,
    /// Bytes still live at exit.
    pub leaked: u64,
}

/// A function's source lines with their figures.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionView {
    /// Its file.
    pub file: String,
    /// Its (qualified) name.
    pub function: String,
    /// `(line number, figures, source text)` from its `def` to its end (see [`line_range`]).
    pub lines: Vec<(u32, LineFigures, String)>,
}

/// The views of `functions` (`(file, function)` pairs), reading each file once.
pub fn function_views(report: &Report, functions: &[(String, String)]) -> Vec<FunctionView> {
    let figures = per_frame(report);
    let mut files: HashMap<String, String> = HashMap::new();
    functions
        .iter()
        .map(|(file, function)| {
            let mut by_line: HashMap<u32, LineFigures> = HashMap::new();
            for (i, f) in report.calls.frames.iter().enumerate() {
                if &f.file == file && &f.function == function {
                    let fig = figures.get(&(i as u32)).copied().unwrap_or_default();
                    let e = by_line.entry(f.line).or_default();
                    e.allocated = e.allocated.saturating_add(fig.allocated);
                    e.allocations = e.allocations.saturating_add(fig.allocations);
                    e.peak = e.peak.saturating_add(fig.peak);
                    e.leaked = e.leaked.saturating_add(fig.leaked);
                }
            }
            let mut recorded: Vec<u32> = by_line.keys().copied().filter(|&l| l > 0).collect();
            recorded.sort_unstable();
            let text = files.entry(file.clone()).or_insert_with(|| {
                std::fs::read(file)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            });
            let source: Vec<&str> = text.lines().collect();
            let lines = line_range(&source, function, &recorded)
                .into_iter()
                .map(|line| {
                    let src = source.get(line as usize - 1).copied().unwrap_or("");
                    let fig = by_line.get(&line).copied().unwrap_or_default();
                    (line, fig, src.trim_end().to_owned())
                })
                .collect();
            FunctionView {
                file: file.clone(),
                function: function.clone(),
                lines,
            }
        })
        .collect()
}

/// What `--source` asks for: a file (full path or last components) and maybe a function
/// (its name or qualified name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTarget {
    /// The file.
    pub file: String,
    /// The function, or all of the file's functions.
    pub function: Option<String>,
}

impl SourceTarget {
    /// `FILE[:FUNCTION]`.
    pub fn parse(spec: &str) -> SourceTarget {
        match spec.rsplit_once(':') {
            Some((file, function))
                if !file.is_empty() && !function.is_empty() && !function.contains('/') =>
            {
                SourceTarget {
                    file: file.to_owned(),
                    function: Some(function.to_owned()),
                }
            }
            _ => SourceTarget {
                file: spec.to_owned(),
                function: None,
            },
        }
    }
}

fn function_matches(location: &Location, function: &str) -> bool {
    location.function == function
        || location
            .function
            .rsplit_once('.')
            .is_some_and(|(_, name)| name == function)
}

fn file_matches(file: &str, wanted: &str) -> bool {
    frame_matches(
        &Location {
            file: file.to_owned(),
            line: 1,
            function: String::new(),
        },
        wanted,
        1,
    )
}

/// Inclusive figures per frame of the call tree (per `tree.frames` index).
fn per_frame(report: &Report) -> HashMap<u32, LineFigures> {
    let tree = &report.calls;
    let mut paths: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut path_of = |node: u32| -> Vec<u32> {
        paths
            .entry(node)
            .or_insert_with(|| {
                let mut seen = HashSet::new();
                let mut frames = Vec::new();
                let mut n = node;
                while n != 0 && frames.len() < 10_000 {
                    let cn = tree.nodes[n as usize];
                    if seen.insert(cn.frame) {
                        frames.push(cn.frame);
                    }
                    n = cn.parent;
                }
                frames
            })
            .clone()
    };
    let mut out: HashMap<u32, LineFigures> = HashMap::new();
    for view in [View::Allocations, View::Peak, View::Leaks] {
        let Some(flame) = report.flame(view) else {
            continue;
        };
        for v in &flame.values {
            for f in path_of(v.node) {
                let e = out.entry(f).or_default();
                match view {
                    View::Allocations => {
                        e.allocated = e.allocated.saturating_add(v.bytes);
                        e.allocations = e.allocations.saturating_add(v.count);
                    }
                    View::Peak => e.peak = e.peak.saturating_add(v.bytes),
                    View::Leaks => e.leaked = e.leaked.saturating_add(v.bytes),
                    View::Temporary => {}
                }
            }
        }
    }
    out
}

/// The functions to show: those `target` names, or the [`DEFAULT_FUNCTIONS`] of the program's
/// own code that allocated the most at their own lines.
fn chosen(report: &Report, target: Option<&SourceTarget>) -> Vec<(String, String)> {
    let mut functions: Vec<(String, String)> = Vec::new();
    match target {
        Some(t) => {
            for f in &report.calls.frames {
                let key = (f.file.clone(), f.function.clone());
                if file_matches(&f.file, &t.file)
                    && t.function
                        .as_deref()
                        .is_none_or(|name| function_matches(f, name))
                    && !functions.contains(&key)
                {
                    functions.push(key);
                }
            }
            functions.sort();
        }
        None => {
            let mut by_function: HashMap<(String, String), u64> = HashMap::new();
            for s in &report.sites {
                let l = &s.location;
                if is_memlens_file(&l.file) || l.file.starts_with('<') && l.file != "<string>" {
                    continue;
                }
                *by_function
                    .entry((l.file.clone(), l.function.clone()))
                    .or_default() += s.allocated_bytes;
            }
            let mut ranked: Vec<_> = by_function.into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            functions = ranked
                .into_iter()
                .take(DEFAULT_FUNCTIONS)
                .map(|(k, _)| k)
                .collect();
        }
    }
    functions
}

/// The lines to print of a function whose recorded lines are `lines` (sorted): from its `def`
/// (found above the first recorded line) to the end of its indented block, or only the
/// recorded lines when the source is unavailable or very long.
fn line_range(source: &[&str], function: &str, lines: &[u32]) -> Vec<u32> {
    let (Some(&first), Some(&last)) = (lines.first(), lines.last()) else {
        return Vec::new();
    };
    let name = function.rsplit('.').next().unwrap_or(function);
    let text = |l: u32| source.get(l as usize - 1).copied().unwrap_or("");
    let indent = |s: &str| s.len() - s.trim_start().len();
    // A module's or a comprehension's lines interleave with other functions': only the
    // recorded ones.
    if name.starts_with('<') {
        return lines.to_vec();
    }
    let mut start = first;
    let mut end = last;
    {
        let def = (first.saturating_sub(200).max(1)..=first).rev().find(|&l| {
            let t = text(l).trim_start();
            t.starts_with(&format!("def {name}(")) || t.starts_with(&format!("async def {name}("))
        });
        if let Some(def) = def {
            start = def;
            let body = indent(text(def));
            end = last;
            let mut l = last + 1;
            while (l as usize) <= source.len() {
                let t = text(l);
                if !t.trim().is_empty() && indent(t) <= body {
                    break;
                }
                end = l;
                l += 1;
            }
            // Trailing blank lines are not the function's.
            while end > last && text(end).trim().is_empty() {
                end -= 1;
            }
        }
    }
    if source.is_empty() || end - start >= MAX_LINES {
        return lines.to_vec();
    }
    (start..=end).collect()
}

/// Writes the source view; returns false when no function matched.
pub fn render(
    report: &Report,
    target: Option<&SourceTarget>,
    out: &mut dyn Write,
) -> io::Result<bool> {
    let functions = chosen(report, target);
    if functions.is_empty() {
        return Ok(false);
    }
    let mark = if report.meta.sites_estimated { "~" } else { "" };
    let cell = |bytes: u64| {
        if bytes == 0 {
            String::new()
        } else {
            format!("{mark}{}", human_bytes(bytes))
        }
    };
    if report.meta.sites_estimated {
        writeln!(
            out,
            "(sampling capture: per-line figures are estimates, marked ~; --exact for exact ones)"
        )?;
    }
    for view in function_views(report, &functions) {
        writeln!(
            out,
            "\n{} in {}",
            escape_terminal(&view.function),
            escape_terminal(&view.file)
        )?;
        writeln!(
            out,
            "{:>6}  {:>11}  {:>11}  {:>11}  {:>10}  SOURCE",
            "LINE", "ALLOCATED", "AT PEAK", "AT EXIT", "ALLOCS"
        )?;
        let mut previous = None;
        for (line, f, src) in &view.lines {
            if previous.is_some_and(|p: u32| *line > p + 1) {
                writeln!(out, "{:>6}", "...")?;
            }
            previous = Some(*line);
            let allocs = if f.allocations == 0 {
                String::new()
            } else {
                format!("{mark}{}", f.allocations)
            };
            writeln!(
                out,
                "{line:>6}  {:>11}  {:>11}  {:>11}  {:>10}  {}",
                cell(f.allocated),
                cell(f.peak),
                cell(f.leaked),
                allocs,
                escape_terminal(src)
            )?;
        }
    }
    writeln!(
        out,
        "\nA line's figures include what it called (each allocation counts once per line of its \
         call stack)."
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_as_file_and_function() {
        assert_eq!(
            SourceTarget::parse("app.py:load"),
            SourceTarget {
                file: "app.py".into(),
                function: Some("load".into())
            }
        );
        assert_eq!(SourceTarget::parse("pkg/app.py").function, None);
    }

    #[test]
    fn a_function_s_lines_run_from_its_def_to_the_end_of_its_block() {
        let src = "import x\n\ndef load(n):\n    a = 1\n\n    return a\n\nload(3)\n";
        let lines: Vec<&str> = src.lines().collect();
        assert_eq!(line_range(&lines, "load", &[4]), vec![3, 4, 5, 6]);
        assert_eq!(line_range(&lines, "<module>", &[1, 8]), vec![1, 8]);
    }
}
