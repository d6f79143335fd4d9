//! The lint rules, one file each: documentation, violation type and check.

use tree_sitter::Node;

use crate::checker::{Checker, NodeExt, is_field, parent_unparen, unparen};
use crate::registry::Rule;

pub(crate) mod ml101_list_as_queue;
pub(crate) mod ml102_cache_on_method;
pub(crate) mod ml103_unbounded_cache;
pub(crate) mod ml104_unclosed_resource;
pub(crate) mod ml105_read_whole_file;
pub(crate) mod ml106_growing_module_container;
pub(crate) mod ml107_shared_class_container;
pub(crate) mod ml108_string_concat_in_loop;
pub(crate) mod ml109_list_consumed_once;
pub(crate) mod ml110_unmodified_copy_in_loop;

/// Runs every selected rule over the checker's index.
pub(crate) fn run_all(cx: &mut Checker<'_>) {
    if cx.enabled(Rule::ListAsQueue) {
        ml101_list_as_queue::check(cx);
    }
    if cx.enabled(Rule::CacheOnMethod) || cx.enabled(Rule::UnboundedCache) {
        ml102_cache_on_method::check(cx);
        ml103_unbounded_cache::check(cx);
    }
    if cx.enabled(Rule::UnclosedResource) {
        ml104_unclosed_resource::check(cx);
    }
    if cx.enabled(Rule::ReadWholeFile) {
        ml105_read_whole_file::check(cx);
    }
    if cx.enabled(Rule::GrowingModuleContainer) {
        ml106_growing_module_container::check(cx);
    }
    if cx.enabled(Rule::SharedClassContainer) {
        ml107_shared_class_container::check(cx);
    }
    if cx.enabled(Rule::StringConcatInLoop) {
        ml108_string_concat_in_loop::check(cx);
    }
    if cx.enabled(Rule::ListConsumedOnce) {
        ml109_list_consumed_once::check(cx);
    }
    if cx.enabled(Rule::UnmodifiedCopyInLoop) {
        ml110_unmodified_copy_in_loop::check(cx);
    }
}

/// Methods that add to a container.
pub(crate) const GROWTH_METHODS: &[&str] = &[
    "append",
    "extend",
    "insert",
    "add",
    "update",
    "setdefault",
    "appendleft",
    "extendleft",
    "__setitem__",
];

/// Methods that take from a container (or bound it).
pub(crate) const REMOVAL_METHODS: &[&str] = &[
    "pop",
    "popitem",
    "popleft",
    "remove",
    "discard",
    "clear",
    "difference_update",
    "intersection_update",
    "__delitem__",
];

/// Methods that change a container in place.
pub(crate) fn is_mutating_method(name: &str) -> bool {
    GROWTH_METHODS.contains(&name)
        || REMOVAL_METHODS.contains(&name)
        || matches!(
            name,
            "sort" | "reverse" | "rotate" | "symmetric_difference_update" | "__iadd__"
        )
}

/// Methods that neither change their receiver nor hand it out.
const READ_METHODS: &[&str] = &[
    "get",
    "keys",
    "values",
    "items",
    "count",
    "index",
    "copy",
    "union",
    "intersection",
    "difference",
    "symmetric_difference",
    "issubset",
    "issuperset",
    "isdisjoint",
    "most_common",
    "startswith",
    "endswith",
    "find",
    "rfind",
    "split",
    "rsplit",
    "splitlines",
    "strip",
    "lstrip",
    "rstrip",
    "lower",
    "upper",
    "encode",
    "decode",
    "format",
    "hex",
    "tolist",
];

/// Builtins that read their arguments without changing or keeping them.
const PURE_BUILTINS: &[&str] = &[
    "builtins.len",
    "builtins.sum",
    "builtins.min",
    "builtins.max",
    "builtins.sorted",
    "builtins.any",
    "builtins.all",
    "builtins.set",
    "builtins.frozenset",
    "builtins.tuple",
    "builtins.list",
    "builtins.dict",
    "builtins.enumerate",
    "builtins.zip",
    "builtins.reversed",
];

/// Builtins outside the resolver's list that are read-only too (resolved by name, unshadowed).
const PURE_NAMES: &[&str] = &[
    "print",
    "str",
    "repr",
    "int",
    "float",
    "bool",
    "isinstance",
    "hash",
    "abs",
    "round",
    "id",
    "type",
    "ascii",
    "format",
];

/// Whether the value at `node` (a name or expression) is only read where it stands: not
/// changed, not stored, not passed to code that might keep or change it.
pub(crate) fn is_read_only_use<'t>(cx: &Checker<'t>, node: Node<'t>) -> bool {
    let Some((parent, child)) = parent_unparen(node) else {
        return false;
    };
    match parent.kind_str() {
        "binary_operator"
        | "comparison_operator"
        | "boolean_operator"
        | "not_operator"
        | "unary_operator"
        | "interpolation"
        | "expression_statement" => true,
        "conditional_expression" => {
            // `a if y else b`: the condition is read; a branch flows on.
            let mut c = parent.walk();
            let first = parent.named_children(&mut c).next();
            if first.is_some_and(|f| f.id() == child.id()) {
                return is_read_only_use(cx, parent);
            }
            let mut c = parent.walk();
            let cond = parent.named_children(&mut c).nth(1);
            if cond.is_some_and(|f| f.id() == child.id()) {
                return true;
            }
            is_read_only_use(cx, parent)
        }
        "if_statement" | "elif_clause" | "while_statement" | "assert_statement" => {
            is_field(parent, "condition", child) || parent.kind_str() == "assert_statement"
        }
        "for_statement" | "for_in_clause" => is_field(parent, "right", child),
        "if_clause" => true,
        "attribute" => {
            if !is_field(parent, "object", child) {
                return false;
            }
            let Some((grand, _)) = parent_unparen(parent) else {
                return false;
            };
            let method = parent.field("attribute").map(|a| cx.text(a)).unwrap_or("");
            if grand.kind_str() == "call" && is_field(grand, "function", parent) {
                READ_METHODS.contains(&method)
            } else {
                // `y.attr`: fine if that value is itself only read.
                is_read_only_use(cx, parent)
            }
        }
        "subscript" => {
            if !is_field(parent, "value", child) {
                // Used as an index: read.
                return true;
            }
            is_read_only_use(cx, parent)
        }
        "argument_list" => {
            let Some(call) = parent.parent() else {
                return false;
            };
            let Some(func) = call.field("function") else {
                return false;
            };
            if cx.refers_to(func, PURE_BUILTINS) {
                return true;
            }
            let func = unparen(func);
            if func.kind_str() == "identifier" {
                let name = cx.text(func);
                return PURE_NAMES
                    .iter()
                    .find(|n| **n == name)
                    .is_some_and(|n| !cx.is_bound(n));
            }
            // `", ".join(y)`
            func.kind_str() == "attribute"
                && func
                    .field("attribute")
                    .is_some_and(|a| cx.text(a) == "join")
                && func
                    .field("object")
                    .is_some_and(|o| unparen(o).kind_str() == "string")
        }
        "keyword_argument" => {
            // print(..., sep=y) and friends.
            parent
                .parent()
                .and_then(|args| args.parent())
                .and_then(|call| call.field("function"))
                .is_some_and(|f| {
                    unparen(f).kind_str() == "identifier"
                        && cx.text(unparen(f)) == "print"
                        && !cx.is_bound("print")
                })
        }
        _ => false,
    }
}

/// The attribute name of a method call `recv.name(...)`, with the receiver and the arguments.
pub(crate) fn method_call<'t>(
    cx: &Checker<'t>,
    call: Node<'t>,
) -> Option<(Node<'t>, &'t str, Node<'t>)> {
    let func = unparen(call.field("function")?);
    if func.kind_str() != "attribute" {
        return None;
    }
    let receiver = unparen(func.field("object")?);
    let name = cx.text(func.field("attribute")?);
    let args = call.field("arguments")?;
    Some((receiver, name, args))
}

/// The positional arguments of a call (empty for `f(x for x in y)`'s lone generator).
pub(crate) fn positional_args<'t>(args: Node<'t>) -> Vec<Node<'t>> {
    if args.kind_str() != "argument_list" {
        return vec![args];
    }
    let mut c = args.walk();
    args.named_children(&mut c)
        .filter(|a| !matches!(a.kind_str(), "keyword_argument" | "comment"))
        .collect()
}

/// The value of keyword argument `name` in a call's arguments.
pub(crate) fn keyword_arg<'t>(cx: &Checker<'t>, args: Node<'t>, name: &str) -> Option<Node<'t>> {
    let mut c = args.walk();
    args.named_children(&mut c)
        .filter(|a| a.kind_str() == "keyword_argument")
        .find(|a| a.field("name").is_some_and(|n| cx.text(n) == name))
        .and_then(|a| a.field("value"))
}

/// Whether `node` is the integer literal zero.
pub(crate) fn is_zero<'t>(cx: &Checker<'t>, node: Node<'t>) -> bool {
    let node = unparen(node);
    node.kind_str() == "integer" && cx.text(node) == "0"
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers for the rule tests: check a snippet with one rule and list (line, column).

    use crate::{Rule, RuleSet};

    /// The (line, column) of every finding of `rule` in `source`; selective and full parsing
    /// must agree.
    pub(crate) fn hits(rule: Rule, source: &str) -> Vec<(usize, usize)> {
        let mut rules = RuleSet::empty();
        rules.insert(rule);
        let diags = crate::lint_source(source, rules).expect("snippet parses");
        let mut parser = crate::linter::new_parser();
        let full = crate::linter::check_text(&mut parser, "<source>".as_ref(), source, rules, true)
            .expect("snippet parses");
        assert_eq!(diags, full, "selective and full parses disagree");
        assert!(diags.iter().all(|d| d.rule == rule));
        diags.iter().map(|d| (d.line, d.column)).collect()
    }

    /// The messages of every finding of `rule` in `source`.
    pub(crate) fn messages(rule: Rule, source: &str) -> Vec<String> {
        let mut rules = RuleSet::empty();
        rules.insert(rule);
        crate::lint_source(source, rules)
            .expect("snippet parses")
            .into_iter()
            .map(|d| d.message)
            .collect()
    }
}
