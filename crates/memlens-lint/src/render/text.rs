//! The text format, like ruff's: a header line, the source line with a marker, and the fix.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::sanitize;
use crate::diagnostic::{Report, display_path};

pub(super) fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for d in &report.diagnostics {
        let path = sanitize(&display_path(&d.path));
        writeln!(
            out,
            "{path}:{}:{}: {} {}",
            d.line,
            d.column,
            d.rule.code(),
            sanitize(&d.message)
        )?;
        let number = d.line.to_string();
        let gutter = " ".repeat(number.len());
        let (shown, start, width) =
            source_and_marker(&d.source_line, d.column, d.end_line == d.line, d.end_column);
        writeln!(out, "{gutter} |")?;
        writeln!(out, "{number} | {shown}")?;
        writeln!(
            out,
            "{gutter} | {}{} {}",
            " ".repeat(start),
            "^".repeat(width.max(1)),
            d.rule.code()
        )?;
        writeln!(out, "{gutter} |")?;
        writeln!(out, "{gutter} = fix: {}", sanitize(&d.fix))?;
        writeln!(out)?;
    }
    summary(report, out)
}

/// The source line as displayed (tabs expanded, controls escaped), the display column where
/// the marker starts, and its width.
fn source_and_marker(
    line: &str,
    column: usize,
    same_line: bool,
    end_column: usize,
) -> (String, usize, usize) {
    let mut shown = String::new();
    let mut start = None;
    let mut end = None;
    for (i, c) in line.chars().enumerate() {
        let col = i + 1;
        if col == column {
            start = Some(shown.chars().count());
        }
        if same_line && col == end_column {
            end = Some(shown.chars().count());
        }
        match c {
            '\t' => shown.push_str("    "),
            c if c.is_control() => shown.extend(c.escape_default()),
            c => shown.push(c),
        }
    }
    let len = shown.chars().count();
    let start = start.unwrap_or(len);
    let end = end.unwrap_or(len).max(start + 1);
    let shown = shown.trim_end().to_owned();
    (shown, start, end - start)
}

fn summary(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let n = report.diagnostics.len();
    if n == 0 {
        writeln!(
            out,
            "All checks passed ({} {} checked).",
            report.files_checked,
            plural(report.files_checked, "file", "files")
        )?;
    } else {
        let mut by_rule: BTreeMap<_, usize> = BTreeMap::new();
        for d in &report.diagnostics {
            *by_rule.entry(d.rule).or_default() += 1;
        }
        let counts: Vec<String> = by_rule
            .iter()
            .map(|(r, c)| format!("{c} \u{d7} {}", r.code()))
            .collect();
        writeln!(
            out,
            "Found {n} {} in {} {} checked ({}).",
            plural(n, "finding", "findings"),
            report.files_checked,
            plural(report.files_checked, "file", "files"),
            counts.join(", ")
        )?;
        writeln!(
            out,
            "Run `memlens explain CODE` for what a rule finds and why it matters."
        )?;
    }
    if !report.problems.is_empty() {
        let p = report.problems.len();
        writeln!(
            out,
            "{p} {} could not be checked.",
            plural(p, "file", "files")
        )?;
    }
    Ok(())
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

pub(super) fn render_problems(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for p in &report.problems {
        let path = sanitize(&display_path(&p.path));
        match (p.line, p.column) {
            (Some(line), Some(col)) => {
                writeln!(out, "{path}:{line}:{col}: error: {}", sanitize(&p.message))?
            }
            (Some(line), None) => writeln!(out, "{path}:{line}: error: {}", sanitize(&p.message))?,
            _ => writeln!(out, "{path}: error: {}", sanitize(&p.message))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::render::OutputFormat;
    use crate::render::fixtures::{empty, hostile, normal, render};

    #[test]
    fn normal_report() {
        insta::assert_snapshot!(render(OutputFormat::Text, &normal()));
    }

    #[test]
    fn empty_report() {
        insta::assert_snapshot!(render(OutputFormat::Text, &empty()));
    }

    #[test]
    fn hostile_report_has_no_raw_control_characters() {
        let out = render(OutputFormat::Text, &hostile());
        assert!(!out.contains('\u{1b}') && !out.contains('\r'));
        insta::assert_snapshot!(out);
    }

    #[test]
    fn problems_are_one_line_each() {
        let mut out = Vec::new();
        super::render_problems(&hostile(), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            "bad\\nname.py: error: not valid UTF-8 (line 1) and no coding declaration\n"
        );
        let mut out = Vec::new();
        super::render_problems(&normal(), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "legacy/old.py:1:1: error: Python 2 syntax (a print statement): not checked\n"
        );
    }
}
