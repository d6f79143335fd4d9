//! ML105 `read-whole-file`: `.read()` / `.readlines()` of a whole file whose result is only
//! iterated line by line.

use tree_sitter::Node;

use super::{method_call, ml104_unclosed_resource::opener_kind, positional_args};
use crate::checker::{
    Checker, NodeExt, OccKind, Violation, contains, enclosing_scope, is_field, parent_unparen,
    unparen,
};
use crate::registry::{Rule, RuleDoc};

pub(crate) const DOC: RuleDoc = RuleDoc {
    what: "Checks for a whole file read into memory only to be iterated line by line: \
`for line in f.readlines()`, `for line in f.read().splitlines()`, and \
`lines = f.readlines()` where `lines` is then only used as the iterable of one `for` loop \
inside the same `with` block. `.read()` is only flagged on objects known to be files \
(`with open(...) as f`, `f = open(...)`).",
    why: "`readlines()` builds a list holding every line of the file as a separate string, and \
`read().splitlines()` holds the whole file as one string and then every line again, so peak \
memory grows with the size of the file (two or three times it, plus about 50 bytes per line of \
object overhead). A file object is already an iterator over its lines and reads them through a \
fixed-size buffer: iterating it directly keeps memory flat however large the file is.",
    example: "with open(path) as f:\n    for line in f.readlines():\n        handle(line)\n",
    use_instead: "with open(path) as f:\n    for line in f:\n        handle(line)\n",
};

struct ReadWholeFile {
    expr: String,
    file: String,
}

impl Violation for ReadWholeFile {
    const RULE: Rule = Rule::ReadWholeFile;

    fn message(&self) -> String {
        format!(
            "`{}` reads the whole file into memory only to iterate over its lines",
            self.expr
        )
    }

    fn fix(&self) -> String {
        format!(
            "Iterate over the file directly: `for line in {}:`",
            self.file
        )
    }
}

pub(crate) fn check(cx: &mut Checker<'_>) {
    for i in 0..cx.index.calls.len() {
        let call = cx.index.calls[i];
        let Some(file) = whole_file_read(cx, call) else {
            continue;
        };
        let Some((parent, child)) = parent_unparen(call) else {
            continue;
        };
        let flagged = match parent.kind_str() {
            "for_statement" | "for_in_clause" => is_field(parent, "right", child),
            "assignment" if is_field(parent, "right", child) => parent
                .field("left")
                .is_some_and(|left| only_iterated(cx, left, file)),
            _ => false,
        };
        if flagged {
            cx.report(
                call,
                ReadWholeFile {
                    expr: cx.snippet(call),
                    file: cx.snippet(file),
                },
            );
        }
    }
}

/// For `f.readlines()`, `f.read().splitlines()` or `f.read().split("\n")`, the file `f`.
fn whole_file_read<'t>(cx: &Checker<'t>, call: Node<'t>) -> Option<Node<'t>> {
    let (receiver, name, args) = method_call(cx, call)?;
    let args = positional_args(args);
    match name {
        "readlines" if args.is_empty() => (receiver.kind_str() == "identifier"
            || opener_kind(cx, receiver).is_some()
            || receiver.kind_str() == "attribute")
            .then_some(receiver),
        "splitlines" | "split" => {
            let newline_split = name == "splitlines" && args.len() <= 1
                || name == "split"
                    && args.len() == 1
                    && matches!(cx.text(args[0]), "'\\n'" | "\"\\n\"");
            if !newline_split || receiver.kind_str() != "call" {
                return None;
            }
            let (file, inner, inner_args) = method_call(cx, receiver)?;
            if inner != "read" || !positional_args(inner_args).is_empty() {
                return None;
            }
            is_known_file(cx, file).then_some(file)
        }
        _ => None,
    }
}

/// Whether `node` is an `open(...)` call or a name bound only to opened files.
fn is_known_file<'t>(cx: &Checker<'t>, node: Node<'t>) -> bool {
    let node = unparen(node);
    if opener_kind(cx, node).is_some() {
        return true;
    }
    if node.kind_str() != "identifier" {
        return false;
    }
    file_binding(cx, node).is_some()
}

/// For a name bound only by `with open(...) as name` or `name = open(...)`, the `with`
/// statement (or the assignment) that binds it.
fn file_binding<'t>(cx: &Checker<'t>, node: Node<'t>) -> Option<Node<'t>> {
    let name = cx.text(node);
    let info = cx.scope_info(enclosing_scope(node));
    let mut binding = None;
    for occ in info.occurrences(name).iter().filter(|o| !o.nested) {
        match occ.kind {
            OccKind::Bind { value, .. } => {
                if value.is_none_or(|v| opener_kind(cx, unparen(v)).is_none()) {
                    return None;
                }
                binding = Some(occ.node);
            }
            OccKind::Opaque => {
                // `with open(...) as name`: as_pattern_target <- as_pattern <- with_item.
                let pattern = occ.node.parent()?.parent()?;
                if pattern.kind_str() != "as_pattern" || pattern.parent()?.kind_str() != "with_item"
                {
                    return None;
                }
                let opened = pattern.named_child(0)?;
                opener_kind(cx, unparen(opened))?;
                let mut with = pattern.parent()?;
                while with.kind_str() != "with_statement" {
                    with = with.parent()?;
                }
                binding = Some(with);
            }
            OccKind::Load => {}
            _ => return None,
        }
    }
    binding
}

/// Whether the name assigned at `target` is used exactly once, as the iterable of a `for`
/// loop or comprehension, inside the `with` block of `file` (so the file is still open there).
fn only_iterated<'t>(cx: &Checker<'t>, target: Node<'t>, file: Node<'t>) -> bool {
    if target.kind_str() != "identifier" {
        return false;
    }
    let name = cx.text(target);
    let info = cx.scope_info(enclosing_scope(target));
    let occs = info.occurrences(name);
    let loads: Vec<_> = occs
        .iter()
        .filter(|o| matches!(o.kind, OccKind::Load))
        .collect();
    let binds = occs.len() - loads.len();
    if binds != 1 || loads.len() != 1 || loads[0].nested {
        return false;
    }
    let use_node = loads[0].node;
    let Some((parent, child)) = parent_unparen(use_node) else {
        return false;
    };
    if !matches!(parent.kind_str(), "for_statement" | "for_in_clause")
        || !is_field(parent, "right", child)
    {
        return false;
    }
    if file.kind_str() != "identifier" {
        return false;
    }
    match file_binding(cx, file) {
        Some(with) if with.kind_str() == "with_statement" => contains(with, use_node),
        Some(_) => true,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::Rule;
    use crate::rules::test_support::{hits, messages};

    #[test]
    fn flags_readlines_and_read_splitlines_in_loops() {
        let src = "with open(p) as f:\n    for line in f.readlines():\n        pass\n    for line in f.read().splitlines():\n        pass\nwords = [w for w in open(p).read().split('\\n')]\n";
        assert_eq!(
            hits(Rule::ReadWholeFile, src),
            vec![(2, 17), (4, 17), (6, 21)]
        );
        assert_eq!(
            messages(Rule::ReadWholeFile, src)[0],
            "`f.readlines()` reads the whole file into memory only to iterate over its lines"
        );
    }

    #[test]
    fn flags_lines_variable_iterated_once_inside_the_with_block() {
        let src = "def f(p):\n    with open(p) as fh:\n        lines = fh.readlines()\n        for line in lines:\n            print(line)\n";
        assert_eq!(hits(Rule::ReadWholeFile, src), vec![(3, 17)]);
    }

    #[test]
    fn ignores_lists_that_are_kept_or_used_after_the_file_closes() {
        // Used more than once.
        let src = "with open(p) as f:\n    lines = f.readlines()\n    for l in lines:\n        pass\n    n = len(lines)\n";
        assert!(hits(Rule::ReadWholeFile, src).is_empty());
        // Iterated after the `with` block closed the file.
        let src = "with open(p) as f:\n    lines = f.readlines()\nfor l in lines:\n    pass\n";
        assert!(hits(Rule::ReadWholeFile, src).is_empty());
        // `.read()` on something not known to be a file; `.read(n)`; a kept result.
        let src = "for l in resp.read().splitlines():\n    pass\nwith open(p) as f:\n    for c in f.read(10).splitlines():\n        pass\n    data = f.readlines()\n    return data\n";
        assert!(hits(Rule::ReadWholeFile, src).is_empty());
        // readlines with a size hint.
        let src = "with open(p) as f:\n    for l in f.readlines(1000):\n        pass\n";
        assert!(hits(Rule::ReadWholeFile, src).is_empty());
    }
}
