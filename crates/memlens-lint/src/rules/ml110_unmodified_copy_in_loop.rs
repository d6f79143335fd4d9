//! ML110 `unmodified-copy-in-loop`: `copy.deepcopy(x)` / `list(x)` / `x[:]` / `x.copy()` in a
//! loop where the copy is never modified.

use tree_sitter::Node;

use super::{is_mutating_method, is_read_only_use, method_call, positional_args};
use crate::checker::{
    Checker, NodeExt, OccKind, Violation, enclosing_loop, enclosing_scope, is_field, unparen,
};
use crate::registry::{Rule, RuleDoc};

pub(crate) const DOC: RuleDoc = RuleDoc {
    what: "Checks for copies made inside a loop and assigned to a name that is then only read: \
`copy.deepcopy(x)`, `copy.copy(x)`, `x.copy()`, and `list(x)` / `x[:]` of a known list. The copy \
must never be changed, stored, returned or passed to code that might keep or change it, and the \
original must not be changed in the loop either (then the copy would be a needed snapshot).",
    why: "Each iteration allocates a full copy (for `deepcopy`, of the whole object graph) only to \
read it and throw it away: the loop's allocation volume, garbage and time grow with the size of \
the copied object times the number of iterations, and `deepcopy` is one of the slowest \
functions in the standard library. Reading the original gives the same values.",
    example: "import copy\n\nfor request in requests:\n    settings = copy.deepcopy(DEFAULTS)\n    if settings['verbose']:\n        log(request)\n",
    use_instead: "for request in requests:\n    if DEFAULTS['verbose']:\n        log(request)\n",
};

struct UnmodifiedCopy {
    copy: String,
    name: String,
    original: String,
}

impl Violation for UnmodifiedCopy {
    const RULE: Rule = Rule::UnmodifiedCopyInLoop;

    fn message(&self) -> String {
        format!(
            "`{}` copies on every iteration, but the copy `{}` is never modified",
            self.copy, self.name
        )
    }

    fn fix(&self) -> String {
        format!(
            "Read `{}` directly, or copy it once before the loop",
            self.original
        )
    }
}

pub(crate) fn check(cx: &mut Checker<'_>) {
    for i in 0..cx.index.assignments.len() {
        let assign = cx.index.assignments[i];
        let (Some(left), Some(value)) = (assign.field("left"), assign.field("right")) else {
            continue;
        };
        if left.kind_str() != "identifier" {
            continue;
        }
        let value = unparen(value);
        let Some(original) = copied_value(cx, value) else {
            continue;
        };
        let Some(the_loop) = enclosing_loop(assign) else {
            continue;
        };
        if !copy_is_only_read(cx, left) || original_changes_in(cx, the_loop, original) {
            continue;
        }
        cx.report(
            value,
            UnmodifiedCopy {
                copy: cx.snippet(value),
                name: cx.snippet(left),
                original: cx.snippet(original),
            },
        );
    }
}

/// For a copying expression, the value it copies.
fn copied_value<'t>(cx: &Checker<'t>, value: Node<'t>) -> Option<Node<'t>> {
    let copyable = |n: Node<'t>| matches!(unparen(n).kind_str(), "identifier" | "attribute");
    match value.kind_str() {
        "call" => {
            let args = value.field("arguments")?;
            let positional = positional_args(args);
            if cx.calls(value, &["copy.deepcopy", "copy.copy"]) {
                let [only] = positional.as_slice() else {
                    return None;
                };
                return copyable(*only).then_some(unparen(*only));
            }
            if cx.calls(value, &["builtins.list"]) {
                let [only] = positional.as_slice() else {
                    return None;
                };
                let only = unparen(*only);
                return (copyable(only) && cx.is_known_list(only)).then_some(only);
            }
            let (receiver, method, _) = method_call(cx, value)?;
            (method == "copy" && positional.is_empty() && copyable(receiver)).then_some(receiver)
        }
        "subscript" => {
            let sub = value.field("subscript")?;
            if sub.kind_str() != "slice" || sub.named_child_count() != 0 {
                return None;
            }
            let original = unparen(value.field("value")?);
            (copyable(original) && cx.is_known_list(original)).then_some(original)
        }
        _ => None,
    }
}

/// Whether the name bound at `target` is bound only there and every use only reads it.
fn copy_is_only_read<'t>(cx: &Checker<'t>, target: Node<'t>) -> bool {
    let info = cx.scope_info(enclosing_scope(target));
    let occs = info.occurrences(cx.text(target));
    let mut binds = 0;
    for occ in occs {
        if occ.nested {
            return false;
        }
        match occ.kind {
            OccKind::Bind { .. } => binds += 1,
            OccKind::Load => {
                if !is_read_only_use(cx, occ.node) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    binds == 1
}

/// Whether anything in `the_loop` changes `original` (by its source text): a mutating method
/// call, an item or attribute assignment, `del`, `+=`, or passing it to a call.
fn original_changes_in<'t>(cx: &Checker<'t>, the_loop: Node<'t>, original: Node<'t>) -> bool {
    let text = cx.text(original);
    let Some(body) = the_loop.field("body") else {
        return true;
    };
    changes(cx, body, text)
}

fn changes<'t>(cx: &Checker<'t>, node: Node<'t>, text: &str) -> bool {
    let is_original = |n: Node<'t>| {
        let mut n = unparen(n);
        loop {
            if cx.text(n) == text {
                return true;
            }
            match n.kind_str() {
                "attribute" => n = unparen(n.field("object").unwrap_or(n)),
                "subscript" => n = unparen(n.field("value").unwrap_or(n)),
                _ => return false,
            }
        }
    };
    match node.kind_str() {
        "call" => {
            if let Some((receiver, method, _)) = method_call(cx, node)
                && is_mutating_method(method)
                && is_original(receiver)
            {
                return true;
            }
            let copies = cx.calls(node, &["copy.deepcopy", "copy.copy", "builtins.list"]);
            if !copies && let Some(args) = node.field("arguments") {
                let mut c = args.walk();
                let passes = args.named_children(&mut c).any(|a| {
                    let a = if a.kind_str() == "keyword_argument" {
                        a.field("value").unwrap_or(a)
                    } else {
                        a
                    };
                    cx.text(unparen(a)) == text && !is_read_only_use(cx, a)
                });
                if passes {
                    return true;
                }
            }
        }
        "assignment" | "augmented_assignment" => {
            if let Some(left) = node.field("left")
                && is_original(left)
                && (left.kind_str() != "identifier" || node.kind_str() == "augmented_assignment")
            {
                return true;
            }
            // Rebinding the original name itself is fine: the copy would not see it.
            let _ = is_field;
        }
        "delete_statement" => {
            let mut c = node.walk();
            if node
                .named_children(&mut c)
                .any(|t| is_original(t) && t.kind_str() != "identifier")
            {
                return true;
            }
        }
        _ => {}
    }
    let mut c = node.walk();

    node.named_children(&mut c)
        .any(|child| changes(cx, child, text))
}

#[cfg(test)]
mod tests {
    use crate::Rule;
    use crate::rules::test_support::{hits, messages};

    #[test]
    fn flags_copies_that_are_only_read() {
        let src = "import copy\n\ndef f(reqs, base: list):\n    for r in reqs:\n        s = copy.deepcopy(CONFIG)\n        if s['debug']:\n            print(r)\n        b = base[:]\n        for x in b:\n            print(x)\n        c = list(base)\n        n = len(c)\n        d = CONFIG.copy()\n        print(d.get('x'))\n";
        assert_eq!(
            hits(Rule::UnmodifiedCopyInLoop, src),
            vec![(5, 13), (8, 13), (11, 13), (13, 13)]
        );
        assert_eq!(
            messages(Rule::UnmodifiedCopyInLoop, src)[0],
            "`copy.deepcopy(CONFIG)` copies on every iteration, but the copy `s` is never modified"
        );
    }

    #[test]
    fn ignores_copies_that_are_changed_kept_or_snapshots() {
        let src = "import copy\n\ndef f(reqs, base: list, out):\n    for r in reqs:\n        s = copy.deepcopy(CONFIG)\n        s['user'] = r\n        use(s)\n    for r in reqs:\n        b = base[:]\n        b.append(r)\n    for r in reqs:\n        c = list(base)\n        out.append(c)\n    for r in reqs:\n        snap = base[:]\n        base.append(r)\n        print(snap)\n    for r in reqs:\n        t = copy.deepcopy(CONFIG)\n        t['a']['b'] = 1\n    for r in reqs:\n        g = list(r)\n        print(g)\n";
        assert!(
            hits(Rule::UnmodifiedCopyInLoop, src).is_empty(),
            "{:?}",
            hits(Rule::UnmodifiedCopyInLoop, src)
        );
        // Not in a loop.
        let src = "import copy\ns = copy.deepcopy(CONFIG)\nprint(s['x'])\n";
        assert!(hits(Rule::UnmodifiedCopyInLoop, src).is_empty());
        // Returned from inside the loop: the caller may change it.
        let src = "import copy\ndef f(xs):\n    for x in xs:\n        s = copy.copy(x)\n        return s\n";
        assert!(hits(Rule::UnmodifiedCopyInLoop, src).is_empty());
    }
}
