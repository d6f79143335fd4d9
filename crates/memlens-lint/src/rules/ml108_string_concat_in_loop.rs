//! ML108 `string-concat-in-loop`: a string built with `+=` in a loop.

use tree_sitter::Node;

use crate::checker::{
    Checker, NodeExt, OccKind, Violation, contains, enclosing_loop, enclosing_scope, unparen,
};
use crate::registry::{Rule, RuleDoc};

pub(crate) const DOC: RuleDoc = RuleDoc {
    what: "Checks for `s += ...` inside a `for` or `while` loop where `s` is a local name that is \
only ever bound to string (or bytes) literals, at least once before the loop, and is not reset \
inside the loop.",
    why: "Strings and bytes are immutable: `s += piece` creates a new object and copies all of `s` \
into it, so building a result of n pieces copies O(n\u{b2}) bytes and leaves a trail of \
ever-larger garbage strings for the allocator. CPython sometimes resizes a string in place when \
nothing else refers to it, but that is an implementation detail that does not apply to bytes, \
to other interpreters, or as soon as another reference exists (a debugger, a closure, an \
attribute). Collecting the pieces and joining once copies each byte once.",
    example: "out = ''\nfor row in rows:\n    out += format_row(row) + '\\n'\n",
    use_instead: "parts = []\nfor row in rows:\n    parts.append(format_row(row) + '\\n')\nout = ''.join(parts)\n",
};

struct StringConcatInLoop {
    name: String,
    bytes: bool,
}

impl Violation for StringConcatInLoop {
    const RULE: Rule = Rule::StringConcatInLoop;

    fn message(&self) -> String {
        let what = if self.bytes { "bytes" } else { "string" };
        format!(
            "`{} += ...` in a loop copies the whole {what} on every iteration",
            self.name
        )
    }

    fn fix(&self) -> String {
        if self.bytes {
            "Append to a `bytearray`, or collect the pieces and `b''.join()` them after the loop"
                .to_owned()
        } else {
            "Collect the pieces in a list and `''.join()` them after the loop (or use `io.StringIO`)"
                .to_owned()
        }
    }
}

pub(crate) fn check(cx: &mut Checker<'_>) {
    for i in 0..cx.index.aug_assigns.len() {
        let aug = cx.index.aug_assigns[i];
        let op = aug.field("operator").map(|o| cx.text(o));
        if op != Some("+=") {
            continue;
        }
        let Some(left) = aug.field("left") else {
            continue;
        };
        if left.kind_str() != "identifier" {
            continue;
        }
        let Some(inner_loop) = enclosing_loop(aug) else {
            continue;
        };
        if let Some(bytes) = string_variable(cx, left, inner_loop) {
            cx.report(
                aug,
                StringConcatInLoop {
                    name: cx.snippet(left),
                    bytes,
                },
            );
        }
    }
}

/// For a name bound only to string literals in its scope, at least once before `inner_loop`
/// and never inside it: whether those literals are bytes.
fn string_variable<'t>(cx: &Checker<'t>, name: Node<'t>, inner_loop: Node<'t>) -> Option<bool> {
    let scope = enclosing_scope(name);
    let info = cx.scope_info(scope);
    let mut bytes = None;
    let mut before_loop = false;
    for occ in info.occurrences(cx.text(name)) {
        if occ.nested {
            // A closure reads or rebinds it: the string is referenced elsewhere.
            return None;
        }
        match occ.kind {
            OccKind::Bind { value, .. } => {
                let value = unparen(value?);
                let is_bytes = string_literal_kind(cx, value)?;
                if *bytes.get_or_insert(is_bytes) != is_bytes {
                    return None;
                }
                if contains(inner_loop, occ.node) {
                    return None;
                }
                if occ.node.start_byte() < inner_loop.start_byte() {
                    before_loop = true;
                }
            }
            OccKind::AugAssign | OccKind::Load => {}
            _ => return None,
        }
    }
    if before_loop { bytes } else { None }
}

/// For a string literal (or implicit concatenation), whether it is bytes.
fn string_literal_kind<'t>(cx: &Checker<'t>, node: Node<'t>) -> Option<bool> {
    let first = match node.kind_str() {
        "string" => node,
        "concatenated_string" => node.named_child(0)?,
        _ => return None,
    };
    let start = first.child(0)?;
    let prefix = cx.text(start).to_ascii_lowercase();
    Some(prefix.contains('b'))
}

#[cfg(test)]
mod tests {
    use crate::Rule;
    use crate::rules::test_support::{hits, messages};

    #[test]
    fn flags_string_and_bytes_building() {
        let src = "def f(rows, chunks):\n    out = ''\n    for r in rows:\n        out += str(r)\n    data = b''\n    while chunks:\n        data += chunks.pop()\n    return out, data\n";
        assert_eq!(hits(Rule::StringConcatInLoop, src), vec![(4, 9), (7, 9)]);
        let msgs = messages(Rule::StringConcatInLoop, src);
        assert_eq!(
            msgs[0],
            "`out += ...` in a loop copies the whole string on every iteration"
        );
        assert_eq!(
            msgs[1],
            "`data += ...` in a loop copies the whole bytes on every iteration"
        );
    }

    #[test]
    fn flags_inner_loop_when_reset_in_outer_loop() {
        let src = "for row in grid:\n    line = \"\"\n    for cell in row:\n        line += f\"{cell} \"\n    print(line)\n";
        assert_eq!(hits(Rule::StringConcatInLoop, src), vec![(4, 9)]);
    }

    #[test]
    fn ignores_numbers_lists_unknown_and_reset_strings() {
        let src = "def f(xs, s):\n    total = 0\n    acc = []\n    for x in xs:\n        total += x\n        acc += [x]\n        s += x\n    return total\n";
        assert!(hits(Rule::StringConcatInLoop, src).is_empty());
        // Reset on every iteration of the loop that holds the `+=`.
        let src = "for x in xs:\n    s = ''\n    s += x\n    print(s)\n";
        assert!(hits(Rule::StringConcatInLoop, src).is_empty());
        // Not in a loop; or rebound to a non-literal.
        let src = "s = ''\ns += 'a'\nt = ''\nt = t.strip()\nfor x in xs:\n    t += x\n";
        assert!(hits(Rule::StringConcatInLoop, src).is_empty());
    }
}
