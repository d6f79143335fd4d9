//! The registry of lint rules: one [`Rule`] per code, never reused.
//!
//! Selection (`--select`, `[tool.memlens.lint]`), `memlens explain` and the generated pages under
//! `docs/rules/` all read this one table. Lint codes are `ML1xx`; other code ranges are left to
//! the run-time findings, which keep their own registry beside this one.

use std::fmt;

use crate::rules;

/// The documentation of a rule, in the four sections every rule page has.
#[derive(Debug, Clone, Copy)]
pub struct RuleDoc {
    /// What the rule finds, in a paragraph.
    pub what: &'static str,
    /// Why the pattern costs memory (or time), in a paragraph or two.
    pub why: &'static str,
    /// Python code that the rule flags.
    pub example: &'static str,
    /// The same code, fixed.
    pub use_instead: &'static str,
}

macro_rules! rules {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $module:ident; )+) => {
        /// A lint rule. Codes are stable and never reused.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Rule {
            $( $(#[$doc])* $variant, )+
        }

        impl Rule {
            /// Every rule, in code order.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant),+];

            /// The rule's code, such as `ML101`.
            pub const fn code(self) -> &'static str {
                match self { $(Rule::$variant => $code,)+ }
            }

            /// The rule's name in kebab case, such as `list-as-queue`.
            pub const fn name(self) -> &'static str {
                match self { $(Rule::$variant => $name,)+ }
            }

            /// The rule's documentation.
            pub fn doc(self) -> &'static RuleDoc {
                match self { $(Rule::$variant => &rules::$module::DOC,)+ }
            }

            pub(crate) const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

rules! {
    /// `.pop(0)` / `.insert(0, x)` on a list used as a queue.
    ListAsQueue = "ML101", "list-as-queue", ml101_list_as_queue;
    /// `functools.lru_cache` / `functools.cache` on a method.
    CacheOnMethod = "ML102", "cache-on-method", ml102_cache_on_method;
    /// An unbounded cache on a function called with many distinct arguments.
    UnboundedCache = "ML103", "unbounded-cache", ml103_unbounded_cache;
    /// A file, socket or temporary file opened without `with` and never closed.
    UnclosedResource = "ML104", "unclosed-resource", ml104_unclosed_resource;
    /// A whole file read into memory only to be iterated line by line.
    ReadWholeFile = "ML105", "read-whole-file", ml105_read_whole_file;
    /// A module-level container that functions grow and nothing shrinks.
    GrowingModuleContainer = "ML106", "growing-module-container", ml106_growing_module_container;
    /// A mutable class attribute mutated through an instance.
    SharedClassContainer = "ML107", "shared-class-container", ml107_shared_class_container;
    /// A string built with `+=` in a loop.
    StringConcatInLoop = "ML108", "string-concat-in-loop", ml108_string_concat_in_loop;
    /// A list built only to be consumed once.
    ListConsumedOnce = "ML109", "list-consumed-once", ml109_list_consumed_once;
    /// A copy made in a loop that is never modified.
    UnmodifiedCopyInLoop = "ML110", "unmodified-copy-in-loop", ml110_unmodified_copy_in_loop;
}

impl Rule {
    /// Finds a rule by its code (`ML101`, any case) or its name (`list-as-queue`).
    pub fn from_code(code: &str) -> Option<Rule> {
        let code = code.trim();
        Rule::ALL
            .iter()
            .copied()
            .find(|r| r.code().eq_ignore_ascii_case(code) || r.name() == code)
    }

    /// The one-line summary of the rule: the first sentence of its "what it does" section.
    pub fn summary(self) -> &'static str {
        let what = self.doc().what;
        match what.find(". ") {
            Some(end) => &what[..=end],
            None => what.trim_end(),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A set of rules, as selected by configuration and the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleSet(u64);

impl RuleSet {
    /// The empty set.
    pub const fn empty() -> RuleSet {
        RuleSet(0)
    }

    /// Every rule.
    pub fn all() -> RuleSet {
        Rule::ALL.iter().copied().collect()
    }

    /// Whether `rule` is in the set.
    pub const fn contains(self, rule: Rule) -> bool {
        self.0 & (1 << rule.index()) != 0
    }

    /// Adds `rule`.
    pub fn insert(&mut self, rule: Rule) {
        self.0 |= 1 << rule.index();
    }

    /// Adds every rule of `other`.
    pub fn union(self, other: RuleSet) -> RuleSet {
        RuleSet(self.0 | other.0)
    }

    /// Removes every rule of `other`.
    pub fn difference(self, other: RuleSet) -> RuleSet {
        RuleSet(self.0 & !other.0)
    }

    /// Whether the set holds no rule.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The rules in the set, in code order.
    pub fn iter(self) -> impl Iterator<Item = Rule> {
        Rule::ALL.iter().copied().filter(move |r| self.contains(*r))
    }

    /// Parses one selector: `ALL`, a full code, a code prefix (`ML1`, `ML10`) or a rule name.
    pub fn parse_selector(selector: &str) -> crate::Result<RuleSet> {
        let s = selector.trim();
        if s.eq_ignore_ascii_case("ALL") {
            return Ok(RuleSet::all());
        }
        if let Some(rule) = Rule::from_code(s) {
            let mut set = RuleSet::empty();
            set.insert(rule);
            return Ok(set);
        }
        let upper = s.to_ascii_uppercase();
        let set: RuleSet = Rule::ALL
            .iter()
            .copied()
            .filter(|r| upper.len() >= 2 && r.code().starts_with(&upper))
            .collect();
        if set.is_empty() {
            return Err(crate::Error::UnknownSelector {
                selector: selector.to_owned(),
            });
        }
        Ok(set)
    }

    /// Parses a list of selectors and returns the union of what they select.
    pub fn parse_selectors<I, S>(selectors: I) -> crate::Result<RuleSet>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = RuleSet::empty();
        for s in selectors {
            set = set.union(RuleSet::parse_selector(s.as_ref())?);
        }
        Ok(set)
    }
}

impl FromIterator<Rule> for RuleSet {
    fn from_iter<T: IntoIterator<Item = Rule>>(iter: T) -> Self {
        let mut set = RuleSet::empty();
        for r in iter {
            set.insert(r);
        }
        set
    }
}

/// The documentation of a rule as Markdown, looked up by code or name; `None` for no such rule.
///
/// This is what `memlens explain` prints for lint rules; run-time rules have their own lookup,
/// and the command line asks each registry in turn.
pub fn explain(code: &str) -> Option<String> {
    Rule::from_code(code).map(crate::docs::rule_page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_ordered() {
        let codes: Vec<_> = Rule::ALL.iter().map(|r| r.code()).collect();
        let mut sorted = codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(codes, sorted);
        assert_eq!(codes.first(), Some(&"ML101"));
    }

    #[test]
    fn selectors_parse_codes_prefixes_and_names() {
        let one = RuleSet::parse_selector("ml101").unwrap();
        assert_eq!(one.iter().collect::<Vec<_>>(), vec![Rule::ListAsQueue]);
        let by_name = RuleSet::parse_selector("read-whole-file").unwrap();
        assert_eq!(
            by_name.iter().collect::<Vec<_>>(),
            vec![Rule::ReadWholeFile]
        );
        let prefix = RuleSet::parse_selector("ML10").unwrap();
        assert!(prefix.contains(Rule::ListAsQueue) && prefix.contains(Rule::ListConsumedOnce));
        assert!(!prefix.contains(Rule::UnmodifiedCopyInLoop));
        assert_eq!(RuleSet::parse_selector("ALL").unwrap(), RuleSet::all());
        assert!(matches!(
            RuleSet::parse_selector("E501"),
            Err(crate::Error::UnknownSelector { .. })
        ));
        assert!(RuleSet::parse_selector("M").is_err());
    }

    #[test]
    fn summaries_are_one_sentence() {
        for rule in Rule::ALL {
            let s = rule.summary();
            assert!(s.ends_with('.'), "{rule}: {s}");
            assert!(!s.contains('\n') || s.len() < 200, "{rule}");
        }
    }
}
