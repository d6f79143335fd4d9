//! Static checks for memory anti-patterns in Python source: the engine of `memlens lint`.
//!
//! Source is parsed with tree-sitter-python; each rule is one module holding its documentation,
//! its violation and its check, and one registry of never-reused codes (`ML1xx`) feeds rule
//! selection, [`explain`] and the generated pages under `docs/rules/`.
//!
//! The main types:
//! - [`Linter`] (built by [`LinterBuilder`]): finds Python files (honouring `.gitignore`),
//!   checks them in parallel, and returns a [`Report`].
//! - [`Report`]: the [`Diagnostic`]s found and the [`FileProblem`]s (files that could not be
//!   checked: unreadable, binary, not UTF-8, syntax errors, Python 2), sorted.
//! - [`Rule`] and [`RuleSet`]: the registry and selections of it.
//! - [`OutputFormat`] and [`render`]: text, JSON, SARIF and GitHub renderers of a report.
//!
//! Configuration comes from `[tool.memlens.lint]` in `pyproject.toml` ([`Config`]), and single
//! lines are silenced with `# memlens: ignore[ML101]`.
//!
//! ```
//! use memlens_lint::{Linter, OutputFormat, Rule};
//!
//! let linter = Linter::builder().select(["ML101"]).build()?;
//! let source = "queue = []\nwhile queue:\n    job = queue.pop(0)\n";
//! let found = linter.check_source("jobs.py".as_ref(), source).expect("parses");
//! assert_eq!(found[0].rule, Rule::ListAsQueue);
//! assert_eq!((found[0].line, found[0].column), (3, 11));
//!
//! let report = memlens_lint::Report { diagnostics: found, ..Default::default() };
//! let mut out = Vec::new();
//! memlens_lint::render(OutputFormat::Json, &report, &mut out)?;
//! assert!(String::from_utf8(out)?.contains("\"rule\": \"ML101\""));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod checker;
mod diagnostic;
mod docs;
mod error;
mod linter;
mod prescan;
mod registry;
mod render;
mod rules;
mod settings;
mod source;
mod suppression;

pub use diagnostic::{Diagnostic, FileProblem, ProblemKind, Report};
pub use docs::{rule_page, rules_table};
pub use error::{Error, Result};
pub use linter::{Linter, LinterBuilder, lint_source};
pub use registry::{Rule, RuleDoc, RuleSet, explain};
pub use render::{OutputFormat, render, render_problems};
pub use settings::Config;
