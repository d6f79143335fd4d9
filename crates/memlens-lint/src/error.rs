//! The one error type of this crate.

use std::path::PathBuf;

/// What can stop a lint run before any file is checked: bad configuration or bad rule selectors.
///
/// Problems with single files (unreadable, not UTF-8, syntax errors) are not errors: they are
/// [`FileProblem`](crate::FileProblem)s, reported once each while the other files are checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A rule selector names no rule and no prefix of a rule code.
    #[error("unknown rule selector `{selector}` (see `memlens explain --list`)")]
    UnknownSelector {
        /// The selector as written.
        selector: String,
    },
    /// A configuration file could not be read.
    #[error("cannot read {}", path.display())]
    ReadConfig {
        /// The configuration file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file is not valid TOML or has a bad `[tool.memlens.lint]` table.
    #[error("invalid configuration in {}: {message}", path.display())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong, in one line.
        message: String,
    },
    /// A glob pattern (per-file-ignores, exclude) does not compile.
    #[error("invalid glob pattern `{pattern}`: {message}")]
    Glob {
        /// The pattern as written.
        pattern: String,
        /// Why it does not compile.
        message: String,
    },
    /// Writing the output failed.
    #[error("cannot write output")]
    Write(#[from] std::io::Error),
}

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
