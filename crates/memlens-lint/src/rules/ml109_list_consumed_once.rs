//! ML109 `list-consumed-once`: a list built only to be consumed once.

use tree_sitter::Node;

use super::{is_mutating_method, method_call, positional_args};
use crate::checker::{Checker, NodeExt, Violation, is_field, parent_unparen, unparen};
use crate::registry::{Rule, RuleDoc};

pub(crate) const DOC: RuleDoc = RuleDoc {
    what: "Checks for lists that are built only to be consumed once: a list comprehension passed \
to `sum`, `any`, `all`, `min` or `max`, and a `for` loop (or comprehension) over a list \
comprehension or over `list(...)` of a generator expression, `map`, `filter`, `zip`, \
`enumerate`, `reversed` or `range`. A `for` loop whose body changes a container that the \
iterable reads is not flagged: there, the copy protects the iteration.",
    why: "The list holds every element at once before the consumer sees the first one, so peak \
memory grows with the number of elements, and `any` / `all` cannot stop early because the \
whole list is built first. A generator expression produces one element at a time: memory stays \
constant and short-circuiting works.",
    example: "total = sum([len(line) for line in lines])\nif any([is_bad(x) for x in items]):\n    ...\nfor name in list(map(str.strip, names)):\n    print(name)\n",
    use_instead: "total = sum(len(line) for line in lines)\nif any(is_bad(x) for x in items):\n    ...\nfor name in map(str.strip, names):\n    print(name)\n",
};

struct ListConsumedOnce {
    consumer: String,
    generator_fix: bool,
}

impl Violation for ListConsumedOnce {
    const RULE: Rule = Rule::ListConsumedOnce;

    fn message(&self) -> String {
        format!(
            "a list is built only to be consumed once by {}",
            self.consumer
        )
    }

    fn fix(&self) -> String {
        if self.generator_fix {
            "Pass a generator expression: drop the square brackets".to_owned()
        } else {
            "Iterate over the generator directly instead of copying it into a list".to_owned()
        }
    }
}

const CONSUMERS: &[&str] = &[
    "builtins.sum",
    "builtins.any",
    "builtins.all",
    "builtins.min",
    "builtins.max",
];

const LAZY: &[&str] = &[
    "builtins.map",
    "builtins.filter",
    "builtins.zip",
    "builtins.enumerate",
    "builtins.reversed",
    "builtins.range",
];

pub(crate) fn check(cx: &mut Checker<'_>) {
    for i in 0..cx.index.calls.len() {
        let call = cx.index.calls[i];
        let Some(func) = call.field("function") else {
            continue;
        };
        if !cx.refers_to(func, CONSUMERS) {
            continue;
        }
        let Some(args) = call.field("arguments") else {
            continue;
        };
        let positional = positional_args(args);
        if let [only] = positional.as_slice()
            && only.kind_str() == "list_comprehension"
        {
            let name = cx.text(unparen(func)).to_owned();
            cx.report(
                *only,
                ListConsumedOnce {
                    consumer: format!("`{name}()`"),
                    generator_fix: true,
                },
            );
        }
    }
    let loops: Vec<Node<'_>> = cx
        .index
        .fors
        .iter()
        .chain(cx.index.comprehension_fors.iter())
        .copied()
        .collect();
    for l in loops {
        let Some(iterable) = l.field("right").map(unparen) else {
            continue;
        };
        let (listed, inputs) = if iterable.kind_str() == "list_comprehension" {
            (iterable, iterable)
        } else if cx.calls(iterable, &["builtins.list"]) {
            let Some(args) = iterable.field("arguments") else {
                continue;
            };
            let positional = positional_args(args);
            let [only] = positional.as_slice() else {
                continue;
            };
            let only = unparen(*only);
            if !(only.kind_str() == "generator_expression" || cx.calls(only, LAZY)) {
                continue;
            }
            (iterable, only)
        } else {
            continue;
        };
        if l.kind_str() == "for_statement" && body_mutates_inputs(cx, l, inputs) {
            continue;
        }
        let consumer = if l.kind_str() == "for_statement" {
            "a `for` loop"
        } else {
            "a comprehension"
        };
        cx.report(
            listed,
            ListConsumedOnce {
                consumer: consumer.to_owned(),
                generator_fix: iterable.kind_str() == "list_comprehension",
            },
        );
    }
}

/// Whether the loop body changes (or rebinds) any name that the iterable reads.
fn body_mutates_inputs<'t>(cx: &Checker<'t>, for_stmt: Node<'t>, inputs: Node<'t>) -> bool {
    let mut names = Vec::new();
    collect_names(cx, inputs, &mut names);
    let Some(body) = for_stmt.field("body") else {
        return false;
    };
    mutates_any(cx, body, &names)
}

fn collect_names<'t>(cx: &Checker<'t>, node: Node<'t>, out: &mut Vec<&'t str>) {
    if node.kind_str() == "identifier" {
        let is_attr_name = node
            .parent()
            .is_some_and(|p| p.kind_str() == "attribute" && is_field(p, "attribute", node));
        if !is_attr_name {
            out.push(cx.text(node));
        }
        return;
    }
    let mut c = node.walk();
    for child in node.named_children(&mut c) {
        collect_names(cx, child, out);
    }
}

fn root_name<'t>(cx: &Checker<'t>, mut node: Node<'t>) -> Option<&'t str> {
    loop {
        node = unparen(node);
        match node.kind_str() {
            "identifier" => return Some(cx.text(node)),
            "attribute" => node = node.field("object")?,
            "subscript" => node = node.field("value")?,
            _ => return None,
        }
    }
}

fn mutates_any<'t>(cx: &Checker<'t>, node: Node<'t>, names: &[&str]) -> bool {
    let hit = |n: Node<'t>| root_name(cx, n).is_some_and(|r| names.contains(&r));
    match node.kind_str() {
        "call" => {
            if let Some((receiver, method, _)) = method_call(cx, node)
                && is_mutating_method(method)
                && hit(receiver)
            {
                return true;
            }
        }
        "assignment" | "augmented_assignment" => {
            if let Some(left) = node.field("left")
                && left.kind_str() != "identifier"
                && hit(left)
            {
                return true;
            }
        }
        "delete_statement" => {
            let mut c = node.walk();
            if node.named_children(&mut c).any(|t| {
                if t.kind_str() == "expression_list" {
                    let mut c2 = t.walk();
                    t.named_children(&mut c2).any(&hit)
                } else {
                    hit(t)
                }
            }) {
                return true;
            }
        }
        _ => {}
    }
    let _ = parent_unparen;
    let mut c = node.walk();

    node.named_children(&mut c)
        .any(|child| mutates_any(cx, child, names))
}

#[cfg(test)]
mod tests {
    use crate::Rule;
    use crate::rules::test_support::{hits, messages};

    #[test]
    fn flags_consumers_of_list_comprehensions() {
        let src = "a = sum([x * 2 for x in xs])\nb = any([p(x) for x in xs])\nc = max([len(s) for s in ss], default=0)\n";
        assert_eq!(
            hits(Rule::ListConsumedOnce, src),
            vec![(1, 9), (2, 9), (3, 9)]
        );
        assert_eq!(
            messages(Rule::ListConsumedOnce, src)[1],
            "a list is built only to be consumed once by `any()`"
        );
    }

    #[test]
    fn flags_loops_over_listed_generators() {
        let src = "for x in list(y * 2 for y in ys):\n    print(x)\nfor k, v in list(zip(a, b)):\n    print(k)\nfor s in [t.strip() for t in ts]:\n    print(s)\nr = [z for z in list(map(f, zs))]\n";
        assert_eq!(
            hits(Rule::ListConsumedOnce, src),
            vec![(1, 10), (3, 13), (5, 10), (7, 17)]
        );
    }

    #[test]
    fn ignores_needed_lists() {
        // The body changes what the generator reads: the list is a snapshot.
        let src = "for k in list(k for k in d if k.startswith('_')):\n    del d[k]\nfor x in [y for y in items]:\n    items.remove(x)\n";
        assert!(hits(Rule::ListConsumedOnce, src).is_empty());
        // Lists of other things, list literals, kept lists, dict views copied for deletion.
        let src = "s = sum([a, b])\nfor k in list(d):\n    del d[k]\nfor k in list(d.keys()):\n    d.pop(k)\nxs = [f(x) for x in y]\nfor x in xs:\n    pass\nn = len([x for x in y])\n";
        assert!(hits(Rule::ListConsumedOnce, src).is_empty());
        // A shadowed builtin.
        let src = "def sum(xs): ...\nt = sum([x for x in y])\n";
        assert!(hits(Rule::ListConsumedOnce, src).is_empty());
    }
}
