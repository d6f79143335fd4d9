//! Renderers of a [`Report`](crate::Report): one file per format, selected by [`OutputFormat`].

use std::io::{self, Write};

use crate::diagnostic::Report;

mod github;
mod json;
mod sarif;
mod text;

/// An output format of `memlens lint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Human-readable, like ruff: `path:line:col: CODE message`, the source line, the fix.
    #[default]
    Text,
    /// A JSON list of `{"rule", "file", "line", "column", "message", "fix"}`.
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
    /// GitHub Actions workflow commands (`::warning file=...::message`).
    Github,
}

impl OutputFormat {
    /// Every format with its command-line name.
    pub const ALL: &'static [(&'static str, OutputFormat)] = &[
        ("text", OutputFormat::Text),
        ("json", OutputFormat::Json),
        ("sarif", OutputFormat::Sarif),
        ("github", OutputFormat::Github),
    ];

    /// Whether the format carries file problems itself; otherwise they go to standard error
    /// (see [`render_problems`]).
    pub fn includes_problems(self) -> bool {
        matches!(self, OutputFormat::Sarif | OutputFormat::Github)
    }
}

/// Writes `report` to `out` in `format`.
pub fn render(format: OutputFormat, report: &Report, out: &mut dyn Write) -> io::Result<()> {
    match format {
        OutputFormat::Text => text::render(report, out),
        OutputFormat::Json => json::render(report, out),
        OutputFormat::Sarif => sarif::render(report, out),
        OutputFormat::Github => github::render(report, out),
    }
}

/// Writes the problems of `report` one line each (`path:line:col: error: message`), for
/// standard error.
pub fn render_problems(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    text::render_problems(report, out)
}

/// Replaces control characters, which could drive a terminal, with visible escapes.
pub(crate) fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! The shared report fixtures of the renderer tests: a normal, an empty and a hostile one.

    use std::path::PathBuf;

    use crate::Rule;
    use crate::diagnostic::{Diagnostic, FileProblem, ProblemKind, Report};

    pub(crate) fn normal() -> Report {
        Report {
            diagnostics: vec![
                Diagnostic {
                    rule: Rule::ListAsQueue,
                    path: PathBuf::from("app/queue.py"),
                    line: 3,
                    column: 12,
                    end_line: 3,
                    end_column: 24,
                    message: "`queue.pop(0)` on a list moves every item: the list is used as a queue".into(),
                    fix: "Use `collections.deque` and `popleft()`".into(),
                    source_line: "    item = queue.pop(0)".into(),
                },
                Diagnostic {
                    rule: Rule::ReadWholeFile,
                    path: PathBuf::from("app/io.py"),
                    line: 2,
                    column: 17,
                    end_line: 2,
                    end_column: 30,
                    message: "`f.readlines()` reads the whole file into memory only to iterate over its lines".into(),
                    fix: "Iterate over the file directly: `for line in f:`".into(),
                    source_line: "\tfor line in f.readlines():".into(),
                },
            ],
            problems: vec![FileProblem {
                path: PathBuf::from("legacy/old.py"),
                kind: ProblemKind::Python2,
                line: Some(1),
                column: Some(1),
                message: "Python 2 syntax (a print statement): not checked".into(),
            }],
            files_checked: 3,
        }
    }

    pub(crate) fn empty() -> Report {
        Report {
            files_checked: 2,
            ..Report::default()
        }
    }

    pub(crate) fn hostile() -> Report {
        Report {
            diagnostics: vec![Diagnostic {
                rule: Rule::StringConcatInLoop,
                path: PathBuf::from("we ird/a%b,c:d\n::error::x.py"),
                line: 1,
                column: 1,
                end_line: 2,
                end_column: 3,
                message: "`s\u{1b}[31m += ...` in a loop\r\n::error::pwned %0A".into(),
                fix: "fix \"quoted\" <b>".into(),
                source_line: "s\u{1b}[31m += \"\u{e9}\"".into(),
            }],
            problems: vec![FileProblem {
                path: PathBuf::from("bad\nname.py"),
                kind: ProblemKind::Encoding,
                line: None,
                column: None,
                message: "not valid UTF-8 (line 1) and no coding declaration".into(),
            }],
            files_checked: 2,
        }
    }

    pub(crate) fn render(format: super::OutputFormat, report: &Report) -> String {
        let mut out = Vec::new();
        super::render(format, report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }
}
