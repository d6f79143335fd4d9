//! `# memlens: ignore[RULE, ...]` comments on a line, and `# memlens: ignore-file[...]`.

use std::collections::HashMap;

use crate::registry::{Rule, RuleSet};

/// What the suppression comments of one file silence.
#[derive(Debug, Default)]
pub(crate) struct Suppressions {
    /// 0-based line -> rules silenced on it.
    lines: HashMap<usize, RuleSet>,
    /// Rules silenced in the whole file.
    file: RuleSet,
}

const MARKER: &str = "memlens:";

impl Suppressions {
    /// Finds the suppression comments in `text`.
    ///
    /// A bare `# memlens: ignore` silences every rule on its line; `ignore[ML101, ML105]` only
    /// the rules it lists (codes, prefixes or names). `# memlens: ignore-file[...]` applies to
    /// the whole file. Unknown codes are ignored rather than silencing everything.
    pub(crate) fn parse(text: &str) -> Suppressions {
        let mut out = Suppressions::default();
        if !text.contains(MARKER) {
            return out;
        }
        for (row, line) in text.lines().enumerate() {
            let Some(pos) = line.find(MARKER) else {
                continue;
            };
            let Some(hash) = line[..pos].rfind('#') else {
                continue;
            };
            if !line[hash + 1..pos].trim().is_empty() {
                continue;
            }
            let rest = line[pos + MARKER.len()..].trim_start();
            let (file_wide, rest) = if let Some(r) = rest.strip_prefix("ignore-file") {
                (true, r)
            } else if let Some(r) = rest.strip_prefix("ignore") {
                (false, r)
            } else {
                continue;
            };
            let rules = if let Some(list) = rest.strip_prefix('[') {
                let Some(end) = list.find(']') else {
                    continue;
                };
                list[..end]
                    .split(',')
                    .filter_map(|s| RuleSet::parse_selector(s).ok())
                    .fold(RuleSet::empty(), RuleSet::union)
            } else if rest.is_empty()
                || rest.starts_with(char::is_whitespace)
                || rest.starts_with('#')
            {
                RuleSet::all()
            } else {
                continue;
            };
            if file_wide {
                out.file = out.file.union(rules);
            } else {
                let entry = out.lines.entry(row).or_default();
                *entry = entry.union(rules);
            }
        }
        out
    }

    /// Whether `rule` is silenced for a finding spanning 0-based lines `first..=last`.
    pub(crate) fn silences(&self, rule: Rule, first: usize, last: usize) -> bool {
        if self.file.contains(rule) {
            return true;
        }
        if self.lines.is_empty() {
            return false;
        }
        (first..=last).any(|row| self.lines.get(&row).is_some_and(|s| s.contains(rule)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_line_and_file_comments() {
        let s = Suppressions::parse(
            "a  # memlens: ignore[ML101, read-whole-file]\nb # memlens: ignore\nc # memlens:ignore[ML9]\n# memlens: ignore-file[ML108]\nd = '# memlens: ignore'\n",
        );
        assert!(s.silences(Rule::ListAsQueue, 0, 0));
        assert!(s.silences(Rule::ReadWholeFile, 0, 0));
        assert!(!s.silences(Rule::CacheOnMethod, 0, 0));
        assert!(s.silences(Rule::CacheOnMethod, 1, 1));
        assert!(
            !s.silences(Rule::ListAsQueue, 2, 2),
            "unknown codes silence nothing"
        );
        assert!(s.silences(Rule::StringConcatInLoop, 40, 40));
        // A multi-line finding is silenced by a comment on any of its lines.
        assert!(s.silences(Rule::CacheOnMethod, 0, 1));
    }

    #[test]
    fn ignores_look_alikes() {
        let s = Suppressions::parse("x = 1  # see memlens: ignore\ny = 2  # memlens: ignored\n");
        assert!(!s.silences(Rule::ListAsQueue, 0, 1));
    }
}
