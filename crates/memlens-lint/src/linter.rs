//! The linter: finds files, checks them in parallel, and collects one [`Report`].

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tree_sitter::{Node, Parser, Tree};

use crate::Result;
use crate::checker::NodeExt;
use crate::checker::{Checker, RawDiagnostic};
use crate::diagnostic::{Diagnostic, FileProblem, ProblemKind, Report};
use crate::registry::RuleSet;
use crate::settings::{Config, DEFAULT_EXCLUDES, Settings};
use crate::source::{self, LineIndex};
use crate::suppression::Suppressions;

/// Builds a [`Linter`]: configuration first, then command-line choices on top.
#[derive(Debug, Clone, Default)]
pub struct LinterBuilder {
    config: Config,
    select: Option<Vec<String>>,
    ignore: Vec<String>,
    threads: usize,
    full_parse: bool,
}

impl LinterBuilder {
    /// Parses every statement of every file instead of only those that can hold a finding:
    /// slower, but every syntax error is reported.
    pub fn full_parse(mut self, yes: bool) -> Self {
        self.full_parse = yes;
        self
    }

    /// Uses `config` (from `pyproject.toml`) as the base settings.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Checks only the rules these selectors name (codes, prefixes, names or `ALL`),
    /// overriding the configuration's `select` and `ignore`.
    pub fn select<I, S>(mut self, selectors: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.select = Some(selectors.into_iter().map(Into::into).collect());
        self
    }

    /// Does not check the rules these selectors name.
    pub fn ignore<I, S>(mut self, selectors: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ignore.extend(selectors.into_iter().map(Into::into));
        self
    }

    /// Checks files on `n` threads (0, the default: one per available core).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n;
        self
    }

    /// Freezes the settings; fails on unknown rule selectors or bad glob patterns.
    pub fn build(self) -> Result<Linter> {
        let threads = if self.threads == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            self.threads
        };
        let settings = Settings::new(&self.config, self.select.as_deref(), &self.ignore, threads)?;
        Ok(Linter {
            settings,
            full_parse: self.full_parse,
        })
    }
}

/// Checks Python files for memory anti-patterns.
///
/// Build one with [`Linter::builder`], then call [`Linter::check_paths`] (files and
/// directories, walked in parallel, honouring `.gitignore`) or [`Linter::check_source`].
#[derive(Debug, Clone)]
pub struct Linter {
    settings: Settings,
    full_parse: bool,
}

impl Linter {
    /// A builder with every rule selected and no configuration.
    pub fn builder() -> LinterBuilder {
        LinterBuilder::default()
    }

    /// The rules this linter checks (before per-file ignores).
    pub fn rules(&self) -> RuleSet {
        self.settings.rules
    }

    /// Checks every Python file under `paths` (files named explicitly are checked whatever
    /// their extension) and returns the findings and problems, sorted.
    pub fn check_paths<P: AsRef<Path>>(&self, paths: &[P]) -> Report {
        let results = Mutex::new(Vec::<FileOutcome>::new());
        let mut walk_roots = Vec::new();
        for path in paths {
            let path = path.as_ref();
            match std::fs::metadata(path) {
                Ok(meta) if meta.is_dir() => walk_roots.push(path.to_owned()),
                Ok(_) => walk_roots.push(path.to_owned()),
                Err(err) => push(
                    &results,
                    FileOutcome::problem(path, ProblemKind::Io, io_message(&err)),
                ),
            }
        }
        if let Some((first, rest)) = walk_roots.split_first() {
            let mut builder = ignore::WalkBuilder::new(first);
            for root in rest {
                builder.add(root);
            }
            let settings = &self.settings;
            let filter_settings = std::sync::Arc::new(self.settings.clone());
            builder
                .threads(settings.threads)
                .hidden(true)
                .parents(true)
                .git_ignore(settings.respect_gitignore)
                .git_global(settings.respect_gitignore)
                .git_exclude(settings.respect_gitignore)
                .ignore(settings.respect_gitignore)
                .require_git(false)
                .filter_entry(move |entry| {
                    // Roots are always walked; below them, skip default and configured excludes.
                    if entry.depth() == 0 {
                        return true;
                    }
                    let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
                    let name = entry.file_name().to_string_lossy();
                    let default_excluded = is_dir && DEFAULT_EXCLUDES.contains(&name.as_ref());
                    !(default_excluded || filter_settings.is_excluded(entry.path()))
                });
            builder.build_parallel().run(|| {
                let mut parser = new_parser();
                let results = &results;
                Box::new(move |entry| {
                    match entry {
                        Ok(entry) => {
                            let is_file = entry
                                .file_type()
                                .is_some_and(|t| t.is_file() || t.is_symlink());
                            let explicit = entry.depth() == 0;
                            let is_py = entry.path().extension().is_some_and(|e| e == "py");
                            if is_file && (explicit || is_py) && !entry.path().is_dir() {
                                push(results, self.check_file(&mut parser, entry.path()));
                            }
                        }
                        Err(err) => {
                            let path = error_path(&err).unwrap_or_default();
                            push(
                                results,
                                FileOutcome::problem(&path, ProblemKind::Io, walk_message(&err)),
                            );
                        }
                    }
                    ignore::WalkState::Continue
                })
            });
        }
        let mut report = Report::default();
        for outcome in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
            report.files_checked += usize::from(outcome.checked);
            report.diagnostics.extend(outcome.diagnostics);
            report.problems.extend(outcome.problem);
        }
        report.sort();
        report
    }

    /// Checks one file's source given as text (for editors and standard input).
    pub fn check_source(
        &self,
        path: &Path,
        source: &str,
    ) -> std::result::Result<Vec<Diagnostic>, FileProblem> {
        let mut parser = new_parser();
        check_text(
            &mut parser,
            path,
            source,
            self.settings.rules_for(path),
            self.full_parse,
        )
    }

    fn check_file(&self, parser: &mut Parser, path: &Path) -> FileOutcome {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) => return FileOutcome::problem(path, ProblemKind::Io, io_message(&err)),
        };
        let text = match source::decode(&bytes) {
            Ok(text) => text,
            Err(err) => {
                let kind = match err {
                    source::DecodeError::Binary => ProblemKind::Binary,
                    _ => ProblemKind::Encoding,
                };
                let line = match err {
                    source::DecodeError::NotUtf8 { line } => Some(line),
                    _ => None,
                };
                let mut outcome = FileOutcome::problem(path, kind, err.to_string());
                if let Some(p) = outcome.problem.as_mut() {
                    p.line = line;
                }
                outcome.checked = true;
                return outcome;
            }
        };
        let rules = self.settings.rules_for(path);
        match check_text(parser, path, &text, rules, self.full_parse) {
            Ok(diagnostics) => FileOutcome {
                checked: true,
                diagnostics,
                problem: None,
            },
            Err(problem) => FileOutcome {
                checked: true,
                diagnostics: Vec::new(),
                problem: Some(problem),
            },
        }
    }
}

struct FileOutcome {
    checked: bool,
    diagnostics: Vec<Diagnostic>,
    problem: Option<FileProblem>,
}

impl FileOutcome {
    fn problem(path: &Path, kind: ProblemKind, message: String) -> FileOutcome {
        FileOutcome {
            checked: false,
            diagnostics: Vec::new(),
            problem: Some(FileProblem {
                path: path.to_owned(),
                kind,
                line: None,
                column: None,
                message,
            }),
        }
    }
}

fn push(results: &Mutex<Vec<FileOutcome>>, outcome: FileOutcome) {
    results
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(outcome);
}

fn io_message(err: &std::io::Error) -> String {
    let text = err.to_string();
    // "No such file or directory (os error 2)" -> "no such file or directory"
    let text = text.split(" (os error").next().unwrap_or(&text).to_owned();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("cannot read: {}{}", first.to_lowercase(), chars.as_str()),
        None => "cannot read".to_owned(),
    }
}

fn walk_message(err: &ignore::Error) -> String {
    match err {
        ignore::Error::WithPath { err, .. } | ignore::Error::WithDepth { err, .. } => {
            walk_message(err)
        }
        ignore::Error::Io(io) => io_message(io),
        ignore::Error::Loop { child, .. } => format!("file system loop at {}", child.display()),
        other => format!("cannot read: {}", other.to_string().to_lowercase()),
    }
}

fn error_path(err: &ignore::Error) -> Option<PathBuf> {
    match err {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        ignore::Error::Loop { child, .. } => Some(child.clone()),
        ignore::Error::Partial(errs) => errs.iter().find_map(error_path),
        _ => None,
    }
}

pub(crate) fn new_parser() -> Parser {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .expect("the bundled tree-sitter-python grammar matches the tree-sitter runtime");
    parser
}

/// Checks one decoded file.
pub(crate) fn check_text(
    parser: &mut Parser,
    path: &Path,
    text: &str,
    rules: RuleSet,
    full_parse: bool,
) -> std::result::Result<Vec<Diagnostic>, FileProblem> {
    let selected = if full_parse || rules.is_empty() {
        None
    } else {
        crate::prescan::select(text)
    };
    if selected.as_ref().is_some_and(Vec::is_empty) {
        // Nothing in the file can hold a finding.
        return Ok(Vec::new());
    }
    let lines = LineIndex::new(text);
    let (tree, gaps) = match selected {
        Some(ranges) => match parse_ranges(parser, text, &lines, &ranges) {
            Some(tree) => (Some(tree), complement(&ranges, text.len())),
            None => (parser.parse(text, None), Vec::new()),
        },
        None => (parser.parse(text, None), Vec::new()),
    };
    let Some(tree) = tree else {
        return Err(FileProblem {
            path: path.to_owned(),
            kind: ProblemKind::Syntax,
            line: None,
            column: None,
            message: "the parser gave up on this file".to_owned(),
        });
    };
    if let Some(problem) = syntax_problem(&tree, path, text, &lines) {
        return Err(problem);
    }
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let raw = Checker::new(text, tree.root_node(), rules, gaps).run();
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    let suppressions = Suppressions::parse(text);
    Ok(raw
        .into_iter()
        .filter(|d| !suppressions.silences(d.rule, d.start.row, d.end.row))
        .map(|d| to_diagnostic(d, path, text, &lines))
        .collect())
}

/// Parses only `ranges` of `text`; `None` when that fails or the result has errors (the
/// caller then parses everything, to report real errors and to be safe).
fn parse_ranges(
    parser: &mut Parser,
    text: &str,
    lines: &LineIndex,
    ranges: &[std::ops::Range<usize>],
) -> Option<Tree> {
    let ts_ranges: Vec<tree_sitter::Range> = ranges
        .iter()
        .map(|r| tree_sitter::Range {
            start_byte: r.start,
            end_byte: r.end,
            start_point: lines.point(r.start),
            end_point: lines.point(r.end),
        })
        .collect();
    parser.set_included_ranges(&ts_ranges).ok()?;
    let tree = parser.parse(text, None);
    // An empty list of ranges means the whole document again.
    let _ = parser.set_included_ranges(&[]);
    tree.filter(|t| !t.root_node().has_error())
}

/// The parts of `0..len` outside `ranges` (sorted, disjoint).
fn complement(ranges: &[std::ops::Range<usize>], len: usize) -> Vec<std::ops::Range<usize>> {
    let mut gaps = Vec::new();
    let mut at = 0;
    for r in ranges {
        if r.start > at {
            gaps.push(at..r.start);
        }
        at = r.end;
    }
    if at < len {
        gaps.push(at..len);
    }
    gaps
}

fn to_diagnostic(d: RawDiagnostic, path: &Path, text: &str, lines: &LineIndex) -> Diagnostic {
    Diagnostic {
        rule: d.rule,
        path: path.to_owned(),
        line: d.start.row + 1,
        column: lines.column(text, d.start.row, d.start.column),
        end_line: d.end.row + 1,
        end_column: lines.column(text, d.end.row, d.end.column),
        message: d.message,
        fix: d.fix,
        source_line: lines.line(text, d.start.row).to_owned(),
    }
}

/// The first syntax error of a tree, or Python 2 syntax, as a problem.
fn syntax_problem(tree: &Tree, path: &Path, text: &str, lines: &LineIndex) -> Option<FileProblem> {
    let root = tree.root_node();
    let python2 = find_python2(root);
    if !root.has_error() && python2.is_none() {
        return None;
    }
    let (node, kind, message) = if let Some(node) = python2 {
        let what = match node.kind_str() {
            "print_statement" => "a print statement",
            _ => "an exec statement",
        };
        (
            node,
            ProblemKind::Python2,
            format!("Python 2 syntax ({what}): not checked"),
        )
    } else {
        let node = first_error(root)?;
        let message = if node.is_missing() {
            format!("invalid syntax: missing `{}`", node.kind_str())
        } else {
            let snippet = crate::checker::shorten(&text[node.byte_range()]);
            if snippet.is_empty() {
                "invalid syntax".to_owned()
            } else {
                format!("invalid syntax near `{snippet}`")
            }
        };
        (node, ProblemKind::Syntax, message)
    };
    let start = node.start_position();
    Some(FileProblem {
        path: path.to_owned(),
        kind,
        line: Some(start.row + 1),
        column: Some(lines.column(text, start.row, start.column)),
        message,
    })
}

fn first_error(node: Node<'_>) -> Option<Node<'_>> {
    if node.is_missing() {
        return Some(node);
    }
    if node.is_error() {
        // Point at the innermost error inside a large ERROR node when there is one.
        let mut cursor = node.walk();
        let inner = node
            .children(&mut cursor)
            .filter(|c| c.has_error() || c.is_missing())
            .find_map(first_error);
        return Some(inner.unwrap_or(node));
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        if (child.has_error() || child.is_missing())
            && let Some(found) = first_error(child)
        {
            return Some(found);
        }
    }
    None
}

fn has_chevron(node: Node<'_>) -> bool {
    let mut cursor = node.walk();

    node.named_children(&mut cursor)
        .any(|c| c.kind_str() == "chevron")
}

/// Finds a `print` or `exec` statement (Python 2) near the top of the tree.
fn find_python2(root: Node<'_>) -> Option<Node<'_>> {
    let mut cursor = root.walk();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        match node.kind_str() {
            // `print >> f` is also a valid Python 3 expression: only plain `print x` counts.
            "print_statement" if !has_chevron(node) => return Some(node),
            "exec_statement" => return Some(node),
            "string" | "comment" | "expression_statement" | "call" => continue,
            _ => {}
        }
        // Statements only: skip into blocks and compound statements, not expressions.
        for child in node.children(&mut cursor) {
            if child.is_named() {
                stack.push(child);
            }
        }
    }
    None
}

/// Checks `source` with `rules` and returns the findings; the path is shown as `<source>`.
///
/// A convenience for tests, editors and embedding; see [`Linter::check_source`] for the same
/// with settings.
pub fn lint_source(
    source: &str,
    rules: RuleSet,
) -> std::result::Result<Vec<Diagnostic>, FileProblem> {
    let mut parser = new_parser();
    check_text(&mut parser, Path::new("<source>"), source, rules, false)
}
