//! ML106 `growing-module-container`: a module-level container that functions add to and
//! nothing in the module ever removes from.

use tree_sitter::Node;

use super::{GROWTH_METHODS, REMOVAL_METHODS, is_read_only_use, method_call};
use crate::checker::{
    Checker, NodeExt, OccKind, Violation, assignment_value, decorators, is_field, parent_unparen,
    unparen,
};
use crate::registry::{Rule, RuleDoc};

pub(crate) const DOC: RuleDoc = RuleDoc {
    what: "Checks for module-level lists, dicts, sets, `defaultdict`s, `OrderedDict`s, \
`Counter`s and unbounded `deque`s that start empty, are added to from inside functions \
(`append`, `add`, `update`, `setdefault`, `cache[key] = value`, ...), and are never removed \
from anywhere in the module: no `pop`, `remove`, `discard`, `clear`, `del`, rebinding, or \
`len(...)` check that could bound them, and never handed to other code. Registration \
functions (decorators, and functions whose name contains `register`) are not flagged: they run \
a bounded number of times, at import.",
    why: "A module-level object lives as long as the module, which is normally until the process \
exits. Every item a function adds to it stays reachable, with everything the item references, \
for the rest of the program: a cache keyed by request ids, a list of results kept for \
debugging or a set of seen objects grows with the work the process has done. In a server or a \
worker this is the most common shape of a Python memory leak.",
    example: "_seen = {}\n\ndef handle(request):\n    _seen[request.id] = request\n    return process(request)\n",
    use_instead: "import functools\n\n@functools.lru_cache(maxsize=10_000)\ndef lookup(key):\n    return compute(key)\n\n# or evict explicitly:\n_seen = {}\nMAX_SEEN = 10_000\n\ndef handle(request):\n    if len(_seen) >= MAX_SEEN:\n        _seen.pop(next(iter(_seen)))\n    _seen[request.id] = request\n    return process(request)\n",
};

struct GrowingModuleContainer {
    name: String,
    function: String,
    defined_line: usize,
}

impl Violation for GrowingModuleContainer {
    const RULE: Rule = Rule::GrowingModuleContainer;

    fn message(&self) -> String {
        format!(
            "module-level `{}` (line {}) grows in `{}()` and nothing in the module removes from it",
            self.name, self.defined_line, self.function
        )
    }

    fn fix(&self) -> String {
        "Bound it (evict old entries, `functools.lru_cache`, `deque(maxlen=N)`) or keep it on an \
object with a shorter life"
            .to_owned()
    }
}

pub(crate) fn check(cx: &mut Checker<'_>) {
    let root = cx.root;
    let mut c = root.walk();
    let statements: Vec<Node<'_>> = root.named_children(&mut c).collect();
    for stmt in statements {
        if stmt.kind_str() != "expression_statement" {
            continue;
        }
        let Some(assign) = stmt.named_child(0).filter(|a| a.kind_str() == "assignment") else {
            continue;
        };
        let Some(left) = assign.field("left") else {
            continue;
        };
        let (Some(value), "identifier") = (assignment_value(assign), left.kind_str()) else {
            continue;
        };
        let name = cx.text(left);
        if name.starts_with("__") || !is_empty_container(cx, value) {
            continue;
        }
        if let Some((site, function)) = unbounded_growth(cx, name) {
            let function = function
                .field("name")
                .map(|n| cx.snippet(n))
                .unwrap_or_default();
            cx.report(
                site,
                GrowingModuleContainer {
                    name: name.to_owned(),
                    function,
                    defined_line: left.start_position().row + 1,
                },
            );
        }
    }
}

/// Whether `value` builds an empty, unbounded container.
fn is_empty_container<'t>(cx: &Checker<'t>, value: Node<'t>) -> bool {
    let value = unparen(value);
    match value.kind_str() {
        "list" | "dictionary" => value.named_child_count() == 0,
        "call" => {
            let Some(args) = value.field("arguments") else {
                return false;
            };
            let q = value.field("function").and_then(|f| cx.qualified_name(f));
            let plain_args = super::positional_args(args).len() + keyword_count(args);
            match q.as_deref() {
                Some("builtins.list" | "builtins.set" | "builtins.dict") => plain_args == 0,
                Some("collections.OrderedDict" | "collections.Counter") => plain_args == 0,
                Some("collections.defaultdict") => keyword_count(args) == 0,
                Some("collections.deque") => plain_args == 0,
                _ => {
                    // `set()` / `dict()` / `list()` resolve through the builtin list only when
                    // unshadowed; `set` is not in the resolver's list, so check it here.
                    let f = value.field("function").map(unparen);
                    plain_args == 0
                        && f.is_some_and(|f| {
                            f.kind_str() == "identifier"
                                && cx.text(f) == "set"
                                && !cx.is_bound("set")
                        })
                }
            }
        }
        _ => false,
    }
}

fn keyword_count(args: Node<'_>) -> usize {
    let mut c = args.walk();
    args.named_children(&mut c)
        .filter(|a| a.kind_str() == "keyword_argument")
        .count()
}

/// The first place a function adds to module-level `name`, with that function, when nothing
/// in the module removes from, rebinds, measures or hands out `name`.
fn unbounded_growth<'t>(cx: &Checker<'t>, name: &str) -> Option<(Node<'t>, Node<'t>)> {
    let info = cx.scope_info(cx.root);
    let mut bindings = 0;
    let mut growth: Option<(Node<'t>, Node<'t>)> = None;
    for occ in info.occurrences(name) {
        match occ.kind {
            OccKind::Bind { .. }
            | OccKind::AugAssign
            | OccKind::Del
            | OccKind::Opaque
            | OccKind::Param { .. }
            | OccKind::Global => {
                if occ.nested {
                    // Bound inside a function: local there unless declared global, and then a
                    // rebinding of the module's container. Either way, too unclear to flag.
                    return None;
                }
                bindings += 1;
                if bindings > 1 {
                    return None;
                }
            }
            OccKind::Load => match use_kind(cx, occ.node) {
                Use::Read => {}
                Use::Grow => {
                    if occ.nested && growth.is_none() {
                        let function = enclosing_function(occ.node)?;
                        if !is_registration(cx, function) {
                            growth = Some((occ_site(occ.node), function));
                        }
                    }
                }
                Use::Shrink => return None,
            },
        }
    }
    growth
}

/// The statement-level node to flag for a growth at `node`.
fn occ_site(node: Node<'_>) -> Node<'_> {
    let mut site = node;
    while let Some(parent) = site.parent() {
        if matches!(
            parent.kind_str(),
            "call" | "assignment" | "subscript" | "augmented_assignment" | "attribute"
        ) {
            site = parent;
        } else {
            break;
        }
    }
    site
}

enum Use {
    Read,
    Grow,
    Shrink,
}

/// What a read of the container's name does to it.
fn use_kind<'t>(cx: &Checker<'t>, node: Node<'t>) -> Use {
    let Some((parent, child)) = parent_unparen(node) else {
        return Use::Shrink;
    };
    match parent.kind_str() {
        "attribute" if is_field(parent, "object", child) => {
            let Some((call, fchild)) = parent_unparen(parent) else {
                return Use::Shrink;
            };
            if call.kind_str() != "call" || !is_field(call, "function", fchild) {
                return Use::Shrink;
            }
            let Some((_, method, _)) = method_call(cx, call) else {
                return Use::Shrink;
            };
            if GROWTH_METHODS.contains(&method) {
                Use::Grow
            } else if REMOVAL_METHODS.contains(&method) {
                Use::Shrink
            } else if matches!(
                method,
                "get" | "keys" | "values" | "items" | "count" | "index" | "copy" | "most_common"
            ) {
                Use::Read
            } else {
                Use::Shrink
            }
        }
        "subscript" if is_field(parent, "value", child) => {
            let Some((grand, sub)) = parent_unparen(parent) else {
                return Use::Read;
            };
            let is_slice = parent
                .field("subscript")
                .is_some_and(|s| s.kind_str() == "slice");
            match grand.kind_str() {
                "assignment" if is_field(grand, "left", sub) => {
                    if is_slice {
                        Use::Shrink
                    } else {
                        Use::Grow
                    }
                }
                "augmented_assignment" if is_field(grand, "left", sub) => Use::Grow,
                "delete_statement" | "expression_list" => Use::Shrink,
                _ if is_read_only_use(cx, parent) => Use::Read,
                // `cache[k].append(...)` and similar: the container itself does not grow.
                "attribute" => Use::Read,
                _ => Use::Read,
            }
        }
        "comparison_operator"
        | "for_statement"
        | "for_in_clause"
        | "if_statement"
        | "boolean_operator"
        | "not_operator"
        | "interpolation" => Use::Read,
        "argument_list" => {
            // `len(x)` suggests a bound is checked; anything else may keep or change it.
            Use::Shrink
        }
        _ => {
            if is_read_only_use(cx, node) {
                Use::Read
            } else {
                Use::Shrink
            }
        }
    }
}

fn enclosing_function(node: Node<'_>) -> Option<Node<'_>> {
    let mut current = node.parent();
    while let Some(n) = current {
        if n.kind_str() == "function_definition" {
            return Some(n);
        }
        current = n.parent();
    }
    None
}

/// Whether `function` looks like a registration function, run a bounded number of times.
fn is_registration<'t>(cx: &Checker<'t>, function: Node<'t>) -> bool {
    // A function nested in a decorator (its wrapper) counts as the decorator.
    let mut f = Some(function);
    while let Some(func) = f {
        let name = func.field("name").map(|n| cx.text(n)).unwrap_or("");
        if name.to_ascii_lowercase().contains("register") || used_as_decorator(cx, name) {
            return true;
        }
        if returns_a_parameter(cx, func) {
            return true;
        }
        f = enclosing_function(func);
    }
    false
}

fn used_as_decorator<'t>(cx: &Checker<'t>, name: &str) -> bool {
    let check = |def: &Node<'_>| {
        decorators(*def).iter().any(|d| {
            let target = if d.kind_str() == "call" {
                d.field("function").unwrap_or(*d)
            } else {
                *d
            };
            cx.text(target) == name
        })
    };
    cx.index
        .decorated_functions
        .iter()
        .filter_map(|d| d.field("definition"))
        .any(|d| check(&d))
        || cx.index.classes.iter().any(check)
}

/// Whether the function returns one of its own parameters unchanged (a decorator's shape).
fn returns_a_parameter<'t>(cx: &Checker<'t>, function: Node<'t>) -> bool {
    let info = cx.scope_info(function);
    info.names.values().any(|occs| {
        occs.iter().any(|o| matches!(o.kind, OccKind::Param { .. }))
            && occs.iter().any(|o| {
                !o.nested
                    && matches!(o.kind, OccKind::Load)
                    && o.node
                        .parent()
                        .is_some_and(|p| p.kind_str() == "return_statement")
            })
    })
}

#[cfg(test)]
mod tests {
    use crate::Rule;
    use crate::rules::test_support::{hits, messages};

    #[test]
    fn flags_caches_and_logs_grown_from_functions() {
        let src = "import collections\n_cache = {}\nresults = []\nseen = set()\ncounts = collections.defaultdict(int)\n\ndef get(k):\n    if k in _cache:\n        return _cache[k]\n    _cache[k] = v = compute(k)\n    return v\n\ndef run(x):\n    results.append(x)\n    seen.add(x)\n    counts[x] += 1\n";
        assert_eq!(
            hits(Rule::GrowingModuleContainer, src),
            vec![(10, 5), (14, 5), (15, 5), (16, 5)]
        );
        assert_eq!(
            messages(Rule::GrowingModuleContainer, src)[0],
            "module-level `_cache` (line 2) grows in `get()` and nothing in the module removes from it"
        );
    }

    #[test]
    fn ignores_bounded_evicted_and_registries() {
        // Evicted.
        let src = "_cache = {}\ndef get(k):\n    _cache[k] = 1\ndef reset():\n    _cache.clear()\n";
        assert!(hits(Rule::GrowingModuleContainer, src).is_empty());
        // Bounded by a length check.
        let src = "_cache = {}\ndef get(k):\n    if len(_cache) > 100:\n        _cache.popitem()\n    _cache[k] = 1\n";
        assert!(hits(Rule::GrowingModuleContainer, src).is_empty());
        // A registry filled by a decorator at import time.
        let src = "HANDLERS = {}\ndef handler(func):\n    HANDLERS[func.__name__] = func\n    return func\n@handler\ndef a(): ...\nPLUGINS = []\ndef register_plugin(p):\n    PLUGINS.append(p)\n";
        assert!(hits(Rule::GrowingModuleContainer, src).is_empty());
        // Only grown at module level (import time), bounded deque, non-empty, dunder.
        let src = "import collections\nX = []\nX.append(1)\nQ = collections.deque(maxlen=10)\ndef f(x):\n    Q.append(x)\n__all__ = []\ndef g(n):\n    __all__.append(n)\n";
        assert!(hits(Rule::GrowingModuleContainer, src).is_empty());
        // Rebound from a function (`global`), or handed to other code.
        let src = "items = []\ndef add(x):\n    items.append(x)\ndef flush():\n    global items\n    send(items)\n    items = []\n";
        assert!(hits(Rule::GrowingModuleContainer, src).is_empty());
        // A local of the same name inside the function.
        let src = "items = []\ndef f():\n    items = []\n    items.append(1)\n";
        assert!(hits(Rule::GrowingModuleContainer, src).is_empty());
    }
}
