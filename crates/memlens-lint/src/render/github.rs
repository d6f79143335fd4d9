//! GitHub Actions workflow commands: one `::warning` per finding, one `::error` per problem.

use std::io::{self, Write};

use crate::diagnostic::{Report, display_path};

/// Escapes a workflow command's message (percent, CR, LF).
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value (also `:` and `,`).
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

pub(super) fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for d in &report.diagnostics {
        writeln!(
            out,
            "::warning file={},line={},col={},endLine={},endColumn={},title={}::{}",
            escape_property(&display_path(&d.path)),
            d.line,
            d.column,
            d.end_line,
            d.end_column,
            escape_property(&format!("memlens {} ({})", d.rule.code(), d.rule.name())),
            escape_data(&format!("{} {}. Fix: {}", d.rule.code(), d.message, d.fix)),
        )?;
    }
    for p in &report.problems {
        let mut props = format!("file={}", escape_property(&display_path(&p.path)));
        if let Some(line) = p.line {
            props.push_str(&format!(",line={line}"));
        }
        if let Some(col) = p.column {
            props.push_str(&format!(",col={col}"));
        }
        writeln!(
            out,
            "::error {props},title={}::{}",
            escape_property(&format!("memlens: {}", p.kind.as_str())),
            escape_data(&p.message)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::render::OutputFormat;
    use crate::render::fixtures::{empty, hostile, normal, render};

    #[test]
    fn normal_report() {
        insta::assert_snapshot!(render(OutputFormat::Github, &normal()));
    }

    #[test]
    fn empty_report_prints_nothing() {
        assert_eq!(render(OutputFormat::Github, &empty()), "");
    }

    #[test]
    fn hostile_names_cannot_inject_commands() {
        let out = render(OutputFormat::Github, &hostile());
        // Two commands, two lines: nothing from the source starts a line of its own.
        assert_eq!(out.lines().count(), 2);
        assert!(
            out.lines()
                .all(|l| l.starts_with("::warning ") || l.starts_with("::error "))
        );
        assert!(out.contains("file=we ird/a%25b%2Cc%3Ad%0A%3A%3Aerror%3A%3Ax.py,"));
        assert!(out.contains("in a loop%0D%0A::error::pwned %250A"));
        insta::assert_snapshot!(out);
    }
}
