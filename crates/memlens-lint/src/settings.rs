//! Configuration: `[tool.memlens.lint]` in `pyproject.toml`, merged with command-line choices.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;

#[cfg(test)]
use crate::registry::Rule;
use crate::registry::RuleSet;
use crate::{Error, Result};

/// The `[tool.memlens.lint]` table of a `pyproject.toml`, as written.
///
/// ```toml
/// [tool.memlens.lint]
/// select = ["ML1"]              # codes, prefixes, names or "ALL"; default: every rule
/// extend-select = []
/// ignore = ["ML108"]
/// exclude = ["legacy/", "*_pb2.py"]
/// per-file-ignores = { "tests/**" = ["ML104"] }
/// respect-gitignore = true
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// Rules to check; every rule when absent.
    pub select: Option<Vec<String>>,
    /// Rules added to `select`.
    #[serde(default)]
    pub extend_select: Vec<String>,
    /// Rules not to check.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Glob patterns of paths not to check (on top of the defaults such as `.venv`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Glob pattern -> rules not to check in the matching files.
    #[serde(default)]
    pub per_file_ignores: std::collections::BTreeMap<String, Vec<String>>,
    /// Whether `.gitignore` and `.ignore` files are honoured (default: true).
    pub respect_gitignore: Option<bool>,
    /// The directory patterns are relative to (the `pyproject.toml`'s directory).
    #[serde(skip)]
    pub root: Option<PathBuf>,
}

#[derive(Deserialize)]
struct PyProject {
    tool: Option<Tool>,
}

#[derive(Deserialize)]
struct Tool {
    memlens: Option<MemlensTool>,
}

#[derive(Deserialize)]
struct MemlensTool {
    lint: Option<toml::Value>,
}

impl Config {
    /// Reads `[tool.memlens.lint]` from a `pyproject.toml`; `Ok(None)` when the file has no such
    /// table.
    pub fn from_pyproject(path: &Path) -> Result<Option<Config>> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadConfig {
            path: path.to_owned(),
            source,
        })?;
        let bad = |message: String| Error::Config {
            path: path.to_owned(),
            message,
        };
        let doc: PyProject = toml::from_str(&text).map_err(|e| bad(one_line(&e.to_string())))?;
        let Some(value) = doc.tool.and_then(|t| t.memlens).and_then(|m| m.lint) else {
            return Ok(None);
        };
        let mut config: Config = value.try_into().map_err(|e: toml::de::Error| {
            bad(format!("[tool.memlens.lint]: {}", one_line(&e.to_string())))
        })?;
        config.root = Some(
            path.parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
        );
        // Validate selectors now, so a typo fails the run with the file named.
        let all = config
            .select
            .iter()
            .flatten()
            .chain(&config.extend_select)
            .chain(&config.ignore)
            .chain(config.per_file_ignores.values().flatten());
        for selector in all {
            RuleSet::parse_selector(selector).map_err(|e| bad(e.to_string()))?;
        }
        Ok(Some(config))
    }

    /// Finds the nearest `pyproject.toml` with a `[tool.memlens.lint]` table in `start` or its
    /// ancestors, and reads it.
    pub fn discover(start: &Path) -> Result<Option<(PathBuf, Config)>> {
        let start = std::path::absolute(start).unwrap_or_else(|_| start.to_owned());
        for dir in start.ancestors() {
            let candidate = dir.join("pyproject.toml");
            if candidate.is_file()
                && let Some(config) = Config::from_pyproject(&candidate)?
            {
                return Ok(Some((candidate, config)));
            }
        }
        Ok(None)
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Directory names never descended into unless named on the command line.
pub(crate) const DEFAULT_EXCLUDES: &[&str] = &[
    ".bzr",
    ".direnv",
    ".eggs",
    ".git",
    ".hg",
    ".mypy_cache",
    ".nox",
    ".pytest_cache",
    ".ruff_cache",
    ".svn",
    ".tox",
    ".venv",
    "__pycache__",
    "__pypackages__",
    "_build",
    "buck-out",
    "build",
    "dist",
    "node_modules",
    "site-packages",
    "venv",
];

/// The frozen settings of a lint run.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) rules: RuleSet,
    pub(crate) per_file_ignores: Vec<(GlobSet, RuleSet)>,
    pub(crate) exclude: GlobSet,
    pub(crate) root: PathBuf,
    pub(crate) respect_gitignore: bool,
    pub(crate) threads: usize,
}

impl Settings {
    pub(crate) fn new(
        config: &Config,
        cli_select: Option<&[String]>,
        cli_ignore: &[String],
        threads: usize,
    ) -> Result<Settings> {
        let base = match (cli_select, &config.select) {
            (Some(sel), _) => RuleSet::parse_selectors(sel)?,
            (None, Some(sel)) => RuleSet::parse_selectors(sel)?,
            (None, None) => RuleSet::all(),
        };
        let mut rules = base.union(RuleSet::parse_selectors(&config.extend_select)?);
        if cli_select.is_none() {
            rules = rules.difference(RuleSet::parse_selectors(&config.ignore)?);
        }
        rules = rules.difference(RuleSet::parse_selectors(cli_ignore)?);
        let mut per_file_ignores = Vec::new();
        for (pattern, selectors) in &config.per_file_ignores {
            per_file_ignores.push((
                glob_set([pattern.as_str()])?,
                RuleSet::parse_selectors(selectors)?,
            ));
        }
        let exclude = glob_set(config.exclude.iter().map(String::as_str))?;
        let root = config.root.clone().unwrap_or_else(|| PathBuf::from("."));
        let root = std::path::absolute(&root).unwrap_or(root);
        Ok(Settings {
            rules,
            per_file_ignores,
            exclude,
            root,
            respect_gitignore: config.respect_gitignore.unwrap_or(true),
            threads,
        })
    }

    /// The rules to check in `path`.
    pub(crate) fn rules_for(&self, path: &Path) -> RuleSet {
        if self.per_file_ignores.is_empty() {
            return self.rules;
        }
        let mut rules = self.rules;
        for (glob, ignored) in &self.per_file_ignores {
            if self.matches(glob, path) {
                rules = rules.difference(*ignored);
            }
        }
        rules
    }

    /// Whether a glob set matches `path`: by its path relative to the configuration's
    /// directory, or by its file name alone.
    pub(crate) fn matches(&self, glob: &GlobSet, path: &Path) -> bool {
        if glob.is_empty() {
            return false;
        }
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let relative = absolute.strip_prefix(&self.root).unwrap_or(&absolute);
        glob.is_match(relative)
            || path
                .file_name()
                .is_some_and(|n| glob.is_match(Path::new(n)))
            || glob.is_match(&absolute)
    }

    /// Whether a path found while walking is excluded by configuration.
    pub(crate) fn is_excluded(&self, path: &Path) -> bool {
        self.matches(&self.exclude, path)
    }
}

fn glob_set<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<GlobSet> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let trimmed = pattern.trim_end_matches('/');
        let compile = |p: &str| -> Result<Glob> {
            GlobBuilder::new(p)
                .literal_separator(false)
                .build()
                .map_err(|e| Error::Glob {
                    pattern: pattern.to_owned(),
                    message: e.kind().to_string(),
                })
        };
        builder.add(compile(trimmed)?);
        // `dir` and `dir/` also exclude everything under the directory.
        if !trimmed.ends_with("**") {
            builder.add(compile(&format!("{trimmed}/**"))?);
        }
    }
    builder.build().map_err(|e| Error::Glob {
        pattern: String::new(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("pyproject.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn reads_the_lint_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "[project]\nname='x'\n[tool.memlens.lint]\nselect=['ML1']\nignore=['ML108']\nper-file-ignores={'tests/**'=['ML104']}\n",
        );
        let config = Config::from_pyproject(&path).unwrap().unwrap();
        let settings = Settings::new(&config, None, &[], 1).unwrap();
        assert!(!settings.rules.contains(Rule::StringConcatInLoop));
        assert!(settings.rules.contains(Rule::ListAsQueue));
        let in_tests = settings.rules_for(&dir.path().join("tests/unit/test_a.py"));
        assert!(!in_tests.contains(Rule::UnclosedResource));
        let elsewhere = settings.rules_for(&dir.path().join("src/a.py"));
        assert!(elsewhere.contains(Rule::UnclosedResource));
    }

    #[test]
    fn command_line_select_overrides_config() {
        let config = Config {
            select: Some(vec!["ML101".into()]),
            ignore: vec!["ML102".into()],
            ..Config::default()
        };
        let s = Settings::new(&config, Some(&["ML102".into()]), &[], 1).unwrap();
        assert_eq!(
            s.rules.iter().collect::<Vec<_>>(),
            vec![Rule::CacheOnMethod]
        );
        let s = Settings::new(&config, None, &["ML101".into()], 1).unwrap();
        assert!(s.rules.is_empty());
    }

    #[test]
    fn missing_table_is_none_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "[tool.black]\nline-length = 100\n");
        assert!(Config::from_pyproject(&path).unwrap().is_none());
        let path = write(dir.path(), "[tool.memlens.lint]\nselekt = ['ML1']\n");
        let err = Config::from_pyproject(&path).unwrap_err().to_string();
        assert!(
            err.contains("pyproject.toml") && err.contains("selekt"),
            "{err}"
        );
        let path = write(dir.path(), "[tool.memlens.lint]\nselect = ['XX9']\n");
        let err = Config::from_pyproject(&path).unwrap_err().to_string();
        assert!(err.contains("XX9"), "{err}");
        let path = write(dir.path(), "[tool.memlens.lint\n");
        assert!(matches!(
            Config::from_pyproject(&path),
            Err(Error::Config { .. })
        ));
    }

    #[test]
    fn discover_walks_up() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "[tool.memlens.lint]\nignore = ['ML101']\n");
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        let (path, config) = Config::discover(&sub).unwrap().unwrap();
        assert_eq!(path, dir.path().join("pyproject.toml"));
        assert_eq!(config.ignore, vec!["ML101".to_owned()]);
    }
}
