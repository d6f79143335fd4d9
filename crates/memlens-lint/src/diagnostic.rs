//! The finding model: every renderer formats these and nothing else.

use std::path::{Path, PathBuf};

use crate::Rule;

/// One finding: a rule matched at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The rule that matched.
    pub rule: Rule,
    /// The file, as found (relative paths stay relative).
    pub path: PathBuf,
    /// 1-based line of the start of the flagged code.
    pub line: usize,
    /// 1-based column, in characters, of the start of the flagged code.
    pub column: usize,
    /// 1-based line of the end of the flagged code.
    pub end_line: usize,
    /// 1-based column, in characters, just past the flagged code.
    pub end_column: usize,
    /// What is wrong here, naming the code involved.
    pub message: String,
    /// How to fix it, in one sentence.
    pub fix: String,
    /// The source line of `line`, without its line ending.
    pub source_line: String,
}

/// What kind of trouble kept a file from being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The path could not be read (missing, permissions, a directory loop...).
    Io,
    /// The file holds NUL bytes.
    Binary,
    /// The file is not UTF-8 and declares no encoding that can be decoded.
    Encoding,
    /// The file does not parse as Python 3.
    Syntax,
    /// The file is Python 2 (print or exec statements, backticks...).
    Python2,
}

impl ProblemKind {
    /// A short stable name for the kind, used in machine-readable output.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Io => "io-error",
            ProblemKind::Binary => "binary-file",
            ProblemKind::Encoding => "encoding-error",
            ProblemKind::Syntax => "syntax-error",
            ProblemKind::Python2 => "python2-syntax",
        }
    }
}

/// A file (or path) that could not be checked, reported once; the other files are still checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    /// The path.
    pub path: PathBuf,
    /// What kind of trouble.
    pub kind: ProblemKind,
    /// 1-based line where the trouble is, when known.
    pub line: Option<usize>,
    /// 1-based character column, when known.
    pub column: Option<usize>,
    /// What went wrong, in one line.
    pub message: String,
}

/// The outcome of a lint run: findings sorted by file and position, and problem files.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Findings, sorted by path, line, column and rule.
    pub diagnostics: Vec<Diagnostic>,
    /// Paths that could not be checked, sorted by path.
    pub problems: Vec<FileProblem>,
    /// How many files were read and parsed (including those with problems).
    pub files_checked: usize,
}

impl Report {
    /// Whether the run found nothing to report: no finding and no problem file.
    pub fn is_clean(&self) -> bool {
        self.diagnostics.is_empty() && self.problems.is_empty()
    }

    pub(crate) fn sort(&mut self) {
        self.diagnostics.sort_by(|a, b| {
            (&a.path, a.line, a.column, a.rule).cmp(&(&b.path, b.line, b.column, b.rule))
        });
        self.problems
            .sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    }
}

/// The path as shown to people: relative paths lose a leading `./`.
pub(crate) fn display_path(path: &Path) -> String {
    let shown = path.strip_prefix(".").unwrap_or(path);
    let text = shown.to_string_lossy();
    if text.is_empty() {
        path.to_string_lossy().into_owned()
    } else {
        text.into_owned()
    }
}
