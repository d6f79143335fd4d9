//! ML103 `unbounded-cache`: `cache` / `lru_cache(maxsize=None)` on a function called with
//! values from a loop.

use tree_sitter::Node;

use super::ml102_cache_on_method::cache_decorator;
use crate::checker::{Checker, NodeExt, Violation, class_of_method, contains, unparen};
use crate::registry::{Rule, RuleDoc};

pub(crate) const DOC: RuleDoc = RuleDoc {
    what: "Checks for functions decorated with `functools.cache` or \
`functools.lru_cache(maxsize=None)` that the same module calls inside a loop or comprehension \
with an argument taken from the loop variable. Functions that are only called with a few fixed \
values, or only recursively (memoised recursion), are not flagged.",
    why: "An unbounded cache never forgets: every distinct argument tuple it is called with, and \
the result computed for it, stays in memory for the life of the process. Called once per item of \
an input (file lines, request ids, records), the cache grows with all the input the program has \
ever seen, which looks exactly like a leak in a long-running process.",
    example: "import functools\n\n@functools.cache\ndef parse(line):\n    return line.split(',')\n\nfor line in open_log():\n    handle(parse(line))\n",
    use_instead: "import functools\n\n@functools.lru_cache(maxsize=4096)\ndef parse(line):\n    return line.split(',')\n\nfor line in open_log():\n    handle(parse(line))\n",
};

struct UnboundedCache {
    decorator: &'static str,
    function: String,
    call_line: usize,
}

impl Violation for UnboundedCache {
    const RULE: Rule = Rule::UnboundedCache;

    fn message(&self) -> String {
        format!(
            "`@functools.{}` on `{}` never evicts, and it is called with loop values (line {})",
            self.decorator, self.function, self.call_line
        )
    }

    fn fix(&self) -> String {
        "Bound the cache: `@functools.lru_cache(maxsize=N)`".to_owned()
    }
}

pub(crate) fn check(cx: &mut Checker<'_>) {
    if !cx.enabled(Rule::UnboundedCache) {
        return;
    }
    for i in 0..cx.index.decorated_functions.len() {
        let decorated = cx.index.decorated_functions[i];
        let Some(function) = decorated.field("definition") else {
            continue;
        };
        if class_of_method(function).is_some() {
            continue; // ML102's business.
        }
        let Some(deco) = cache_decorator(cx, function) else {
            continue;
        };
        if !deco.unbounded {
            continue;
        }
        let Some(name_node) = function.field("name") else {
            continue;
        };
        let name = cx.text(name_node);
        let Some(call) = loop_call(cx, name, function) else {
            continue;
        };
        let call_line = call.start_position().row + 1;
        cx.report(
            deco.node,
            UnboundedCache {
                decorator: deco.name,
                function: name.to_owned(),
                call_line,
            },
        );
    }
}

/// A call of `name(...)`, outside `function` itself, whose arguments use a loop variable of an
/// enclosing `for` or comprehension (other than a small literal `range`).
fn loop_call<'t>(cx: &Checker<'t>, name: &str, function: Node<'t>) -> Option<Node<'t>> {
    cx.index.calls.iter().copied().find(|&call| {
        if contains(function, call) {
            return false;
        }
        let Some(func) = call.field("function").map(unparen) else {
            return false;
        };
        if func.kind_str() != "identifier" || cx.text(func) != name {
            return false;
        }
        let Some(args) = call.field("arguments") else {
            return false;
        };
        let loop_vars = enclosing_loop_vars(cx, call);
        !loop_vars.is_empty() && uses_any(cx, args, &loop_vars)
    })
}

/// The names bound by the `for` statements and comprehension clauses around `node`, in its
/// scope, leaving out loops over literal `range(...)` calls.
fn enclosing_loop_vars<'t>(cx: &Checker<'t>, node: Node<'t>) -> Vec<&'t str> {
    let mut names = Vec::new();
    let mut current = node;
    while let Some(parent) = current.parent() {
        if matches!(
            parent.kind_str(),
            "function_definition" | "lambda" | "class_definition" | "module"
        ) {
            break;
        }
        let loops: Vec<Node<'t>> = match parent.kind_str() {
            "for_statement" if crate::checker::is_field(parent, "body", current) => vec![parent],
            "list_comprehension"
            | "set_comprehension"
            | "dictionary_comprehension"
            | "generator_expression" => {
                let mut c = parent.walk();
                parent
                    .named_children(&mut c)
                    .filter(|n| n.kind_str() == "for_in_clause")
                    .collect()
            }
            _ => Vec::new(),
        };
        for l in loops {
            if l.field("right").is_some_and(|r| is_literal_range(cx, r)) {
                continue;
            }
            if let Some(left) = l.field("left") {
                collect_names(cx, left, &mut names);
            }
        }
        current = parent;
    }
    names
}

fn is_literal_range<'t>(cx: &Checker<'t>, node: Node<'t>) -> bool {
    let node = unparen(node);
    cx.calls(node, &["builtins.range"])
        && node.field("arguments").is_some_and(|a| {
            let mut c = a.walk();
            a.named_children(&mut c).all(|x| x.kind_str() == "integer")
        })
}

fn collect_names<'t>(cx: &Checker<'t>, node: Node<'t>, out: &mut Vec<&'t str>) {
    if node.kind_str() == "identifier" {
        out.push(cx.text(node));
        return;
    }
    let mut c = node.walk();
    for child in node.named_children(&mut c) {
        collect_names(cx, child, out);
    }
}

fn uses_any<'t>(cx: &Checker<'t>, node: Node<'t>, names: &[&str]) -> bool {
    if node.kind_str() == "identifier" {
        return names.contains(&cx.text(node));
    }
    if node.kind_str() == "keyword_argument" {
        return node.field("value").is_some_and(|v| uses_any(cx, v, names));
    }
    let mut c = node.walk();

    node.named_children(&mut c).any(|child| {
        !(node.kind_str() == "attribute" && crate::checker::is_field(node, "attribute", child))
            && uses_any(cx, child, names)
    })
}

#[cfg(test)]
mod tests {
    use crate::Rule;
    use crate::rules::test_support::{hits, messages};

    #[test]
    fn flags_unbounded_cache_called_with_loop_values() {
        let src = "import functools\n\n@functools.cache\ndef parse(line):\n    return line.split()\n\ndef main(lines):\n    for line in lines:\n        parse(line.strip())\n";
        assert_eq!(hits(Rule::UnboundedCache, src), vec![(3, 2)]);
        assert_eq!(
            messages(Rule::UnboundedCache, src),
            vec![
                "`@functools.cache` on `parse` never evicts, and it is called with loop values (line 9)"
            ]
        );
    }

    #[test]
    fn flags_lru_cache_none_in_comprehensions() {
        let src = "from functools import lru_cache\n\n@lru_cache(maxsize=None)\ndef norm(k):\n    return k.lower()\n\nkeys = [norm(k) for k in load()]\n\n@lru_cache(None)\ndef g(a, b): ...\n\nfor a, b in pairs():\n    g(1, b)\n";
        assert_eq!(hits(Rule::UnboundedCache, src), vec![(3, 2), (9, 2)]);
    }

    #[test]
    fn ignores_bounded_caches_fixed_arguments_and_memoised_recursion() {
        // Bounded.
        let src = "import functools\n@functools.lru_cache(maxsize=256)\ndef f(x): ...\nfor x in xs:\n    f(x)\n@functools.lru_cache\ndef g(x): ...\nfor x in xs:\n    g(x)\n";
        assert!(hits(Rule::UnboundedCache, src).is_empty());
        // Called in a loop, but never with the loop's values.
        let src = "import functools\n@functools.cache\ndef config(name): ...\nfor item in items:\n    config('main')\n";
        assert!(hits(Rule::UnboundedCache, src).is_empty());
        // Memoised recursion: the only call inside a loop is in the function itself.
        let src = "import functools\n@functools.cache\ndef ways(n):\n    return sum(ways(n - k) for k in (1, 2) if k <= n) or 1\nprint(ways(30))\n";
        assert!(hits(Rule::UnboundedCache, src).is_empty());
        // A small literal range bounds the arguments.
        let src = "import functools\n@functools.cache\ndef fib(n): ...\nfor i in range(10):\n    fib(i)\n";
        assert!(hits(Rule::UnboundedCache, src).is_empty());
        // Methods are ML102's.
        let src = "import functools\nclass A:\n    @functools.cache\n    def m(self, x): ...\n    def run(self, xs):\n        for x in xs:\n            self.m(x)\n";
        assert!(hits(Rule::UnboundedCache, src).is_empty());
    }
}
