//! The JSON format: a list of `{"rule", "file", "line", "column", "message", "fix"}`.

use std::io::{self, Write};

use serde::Serialize;

use crate::diagnostic::{Report, display_path};

#[derive(Serialize)]
struct JsonFinding<'a> {
    rule: &'static str,
    file: String,
    line: usize,
    column: usize,
    message: &'a str,
    fix: &'a str,
}

pub(super) fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let findings: Vec<JsonFinding<'_>> = report
        .diagnostics
        .iter()
        .map(|d| JsonFinding {
            rule: d.rule.code(),
            file: display_path(&d.path),
            line: d.line,
            column: d.column,
            message: &d.message,
            fix: &d.fix,
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &findings)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use crate::render::OutputFormat;
    use crate::render::fixtures::{empty, hostile, normal, render};

    #[test]
    fn normal_report() {
        insta::assert_snapshot!(render(OutputFormat::Json, &normal()));
    }

    #[test]
    fn empty_report_is_an_empty_list() {
        assert_eq!(render(OutputFormat::Json, &empty()), "[]\n");
    }

    #[test]
    fn hostile_report_round_trips() {
        let out = render(OutputFormat::Json, &hostile());
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value[0]["file"], "we ird/a%b,c:d\n::error::x.py");
        assert_eq!(
            value[0]["message"],
            "`s\u{1b}[31m += ...` in a loop\r\n::error::pwned %0A"
        );
        assert_eq!(value[0]["rule"], "ML108");
        insta::assert_snapshot!(out);
    }
}
