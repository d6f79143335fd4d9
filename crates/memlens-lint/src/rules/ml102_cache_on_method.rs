//! ML102 `cache-on-method`: `functools.lru_cache` / `functools.cache` on a method.

use tree_sitter::Node;

use super::{keyword_arg, positional_args};
use crate::checker::{
    Checker, NodeExt, Violation, class_of_method, decorators, first_parameter, has_decorator,
};
use crate::registry::{Rule, RuleDoc};

pub(crate) const DOC: RuleDoc = RuleDoc {
    what: "Checks for methods decorated with `functools.lru_cache` or `functools.cache`. Static \
methods and class methods are not flagged.",
    why: "The cache belongs to the function, which lives as long as the class, usually for the \
whole life of the program. Every call stores its arguments in the cache, and the first argument \
is `self`: each instance the method was ever called on stays reachable from the cache, with \
everything it references, after the rest of the program has dropped it. With `cache` or \
`maxsize=None` nothing is ever evicted; with a bounded `lru_cache`, up to `maxsize` dead \
instances are kept, and one instance's entries can evict another's.",
    example: "import functools\n\nclass Report:\n    def __init__(self, rows):\n        self.rows = rows\n\n    @functools.lru_cache(maxsize=None)\n    def total(self):\n        return sum(r.amount for r in self.rows)\n",
    use_instead: "import functools\n\nclass Report:\n    def __init__(self, rows):\n        self.rows = rows\n\n    @functools.cached_property\n    def total(self):\n        return sum(r.amount for r in self.rows)\n",
};

/// A `functools` cache decorator found on a function.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CacheDecorator<'t> {
    /// The decorator expression.
    pub(crate) node: Node<'t>,
    /// `cache` or `lru_cache`.
    pub(crate) name: &'static str,
    /// Whether nothing is ever evicted (`cache`, `maxsize=None`).
    pub(crate) unbounded: bool,
}

/// The `functools.cache` / `functools.lru_cache` decorator of `function`, if it has one.
pub(crate) fn cache_decorator<'t>(
    cx: &Checker<'t>,
    function: Node<'t>,
) -> Option<CacheDecorator<'t>> {
    for deco in decorators(function) {
        let (target, args) = if deco.kind_str() == "call" {
            (deco.field("function")?, deco.field("arguments"))
        } else {
            (deco, None)
        };
        let Some(q) = cx.qualified_name(target) else {
            continue;
        };
        match q.as_str() {
            "functools.cache" => {
                return Some(CacheDecorator {
                    node: deco,
                    name: "cache",
                    unbounded: true,
                });
            }
            "functools.lru_cache" => {
                let maxsize = args.and_then(|a| {
                    keyword_arg(cx, a, "maxsize").or_else(|| positional_args(a).first().copied())
                });
                let unbounded = maxsize.is_some_and(|m| m.kind_str() == "none");
                return Some(CacheDecorator {
                    node: deco,
                    name: "lru_cache",
                    unbounded,
                });
            }
            _ => {}
        }
    }
    None
}

struct CacheOnMethod {
    decorator: &'static str,
    method: String,
}

impl Violation for CacheOnMethod {
    const RULE: Rule = Rule::CacheOnMethod;

    fn message(&self) -> String {
        format!(
            "`@functools.{}` on method `{}` keeps every instance it is called on alive",
            self.decorator, self.method
        )
    }

    fn fix(&self) -> String {
        "Cache per instance (`functools.cached_property`, or a dict on `self`), or cache a \
module-level function of hashable values"
            .to_owned()
    }
}

pub(crate) fn check(cx: &mut Checker<'_>) {
    if !cx.enabled(Rule::CacheOnMethod) {
        return;
    }
    for i in 0..cx.index.decorated_functions.len() {
        let decorated = cx.index.decorated_functions[i];
        let Some(function) = decorated.field("definition") else {
            continue;
        };
        if class_of_method(function).is_none()
            || has_decorator(function, cx.src, &["staticmethod", "classmethod"])
            || first_parameter(function).is_none()
        {
            continue;
        }
        let Some(deco) = cache_decorator(cx, function) else {
            continue;
        };
        let method = function
            .field("name")
            .map(|n| cx.snippet(n))
            .unwrap_or_default();
        cx.report(
            deco.node,
            CacheOnMethod {
                decorator: deco.name,
                method,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Rule;
    use crate::rules::test_support::{hits, messages};

    #[test]
    fn flags_every_spelling_on_methods() {
        let src = "import functools\nfrom functools import lru_cache, cache as memo\n\nclass A:\n    @functools.lru_cache(maxsize=None)\n    def a(self, x): ...\n    @lru_cache\n    def b(self): ...\n    @memo\n    def c(self): ...\n    @functools.lru_cache(maxsize=32)\n    def d(self, k): ...\n";
        assert_eq!(
            hits(Rule::CacheOnMethod, src),
            vec![(5, 6), (7, 6), (9, 6), (11, 6)]
        );
        assert_eq!(
            messages(Rule::CacheOnMethod, src)[0],
            "`@functools.lru_cache` on method `a` keeps every instance it is called on alive"
        );
    }

    #[test]
    fn ignores_functions_static_and_class_methods_and_other_caches() {
        let src = "import functools\n\n@functools.cache\ndef f(x): ...\n\nclass A:\n    @staticmethod\n    @functools.cache\n    def s(x): ...\n    @classmethod\n    @functools.lru_cache\n    def c(cls): ...\n    @functools.cached_property\n    def p(self): ...\n    def m(self):\n        @functools.cache\n        def inner(y): ...\n";
        assert!(hits(Rule::CacheOnMethod, src).is_empty());
        // A local decorator that happens to be called `cache`.
        let src = "def cache(f):\n    return f\n\nclass A:\n    @cache\n    def m(self): ...\n";
        assert!(hits(Rule::CacheOnMethod, src).is_empty());
    }
}
