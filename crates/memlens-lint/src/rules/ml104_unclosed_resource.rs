//! ML104 `unclosed-resource`: `open()`, sockets and temporary files used without `with` and
//! never closed.

use tree_sitter::Node;

use super::is_read_only_use;
use crate::checker::{
    Checker, NodeExt, OccKind, Violation, enclosing_scope, is_field, parent_unparen, unparen,
};
use crate::registry::{Rule, RuleDoc};

pub(crate) const DOC: RuleDoc = RuleDoc {
    what: "Checks for files, sockets and temporary files that are opened without a `with` \
statement and never closed: `open(path).read()`, `for line in open(path)`, and \
`f = open(path)` where the function never calls `f.close()`, never enters `with f`, and never \
hands `f` to other code (returns it, stores it, passes it on). Covered openers: `open`, \
`io.open`, `codecs.open`, `gzip.open`, `bz2.open`, `lzma.open`, `tarfile.open`, \
`zipfile.ZipFile`, `socket.socket`, `socket.create_connection`, `tempfile.TemporaryFile`, \
`tempfile.NamedTemporaryFile` and `tempfile.SpooledTemporaryFile`.",
    why: "An open file holds an operating-system descriptor and a buffer (8 KiB by default, more \
for compressed files), a socket holds kernel send and receive buffers, and a temporary file \
holds disk space until it is closed. Without `close()` they are released only when the object \
is collected: at once in CPython only if no reference survives (an exception traceback or a \
reference cycle keeps them), later under PyPy, and never for objects kept in long-lived \
structures. Written data may not be flushed when expected, and a process that opens files in \
a loop runs out of descriptors (`Too many open files`).",
    example: "def load(path):\n    data = open(path).read()\n    for line in open(path + '.idx'):\n        index(line)\n    out = open(path + '.out', 'w')\n    out.write(data)\n",
    use_instead: "def load(path):\n    with open(path) as f:\n        data = f.read()\n    with open(path + '.idx') as f:\n        for line in f:\n            index(line)\n    with open(path + '.out', 'w') as out:\n        out.write(data)\n",
};

const OPENERS: &[(&str, &str)] = &[
    ("builtins.open", "file"),
    ("io.open", "file"),
    ("io.FileIO", "file"),
    ("codecs.open", "file"),
    ("gzip.open", "file"),
    ("bz2.open", "file"),
    ("lzma.open", "file"),
    ("tarfile.open", "archive"),
    ("zipfile.ZipFile", "archive"),
    ("socket.socket", "socket"),
    ("socket.create_connection", "socket"),
    ("tempfile.TemporaryFile", "temporary file"),
    ("tempfile.NamedTemporaryFile", "temporary file"),
    ("tempfile.SpooledTemporaryFile", "temporary file"),
];

struct UnclosedResource {
    call: String,
    what: &'static str,
    how: How,
}

#[derive(Clone, Copy)]
enum How {
    Chained,
    Iterated,
    Named,
}

impl Violation for UnclosedResource {
    const RULE: Rule = Rule::UnclosedResource;

    fn message(&self) -> String {
        let how = match self.how {
            How::Chained => "is used once and never closed",
            How::Iterated => "is iterated and never closed",
            How::Named => "is never closed",
        };
        format!(
            "{} `{}` {how}: it stays open until garbage collection",
            article(self.what),
            self.call
        )
    }

    fn fix(&self) -> String {
        match self.how {
            How::Chained if self.what == "file" => {
                "Open it in a `with` block (or use `pathlib.Path.read_text()` / `write_text()`)"
                    .to_owned()
            }
            _ => format!("Open the {} in a `with` statement", self.what),
        }
    }
}

fn article(what: &str) -> String {
    let mut s = String::from(if what.starts_with('a') { "an " } else { "a " });
    s.push_str(what);
    if let Some(c) = s.get_mut(0..1) {
        c.make_ascii_uppercase()
    }
    s
}

/// The kind of resource a call opens, if it is one of the known openers.
pub(crate) fn opener_kind<'t>(cx: &Checker<'t>, call: Node<'t>) -> Option<&'static str> {
    if call.kind_str() != "call" {
        return None;
    }
    let function = call.field("function")?;
    if !cx.may_refer_to(function, OPENERS.iter().map(|(name, _)| *name)) {
        return None;
    }
    let q = cx.qualified_name(function)?;
    OPENERS
        .iter()
        .find(|(name, _)| *name == q)
        .map(|(_, kind)| *kind)
}

pub(crate) fn check(cx: &mut Checker<'_>) {
    for i in 0..cx.index.calls.len() {
        let call = cx.index.calls[i];
        let Some(what) = opener_kind(cx, call) else {
            continue;
        };
        let Some((parent, child)) = parent_unparen(call) else {
            continue;
        };
        let how = match parent.kind_str() {
            "attribute" if is_field(parent, "object", child) => {
                let method = parent.field("attribute").map(|a| cx.text(a));
                let called = parent_unparen(parent)
                    .is_some_and(|(g, c)| g.kind_str() == "call" && is_field(g, "function", c));
                if !called || matches!(method, Some("close" | "__enter__" | "detach")) {
                    continue;
                }
                How::Chained
            }
            "for_statement" | "for_in_clause" if is_field(parent, "right", child) => How::Iterated,
            "assignment" if is_field(parent, "right", child) => {
                let Some(left) = parent.field("left") else {
                    continue;
                };
                if left.kind_str() != "identifier" || !never_closed(cx, left) {
                    continue;
                }
                How::Named
            }
            _ => continue,
        };
        let name = call.field("function").map(|f| cx.text(f)).unwrap_or("open");
        cx.report(
            call,
            UnclosedResource {
                call: format!("{name}(…)"),
                what,
                how,
            },
        );
    }
}

/// Whether the name bound at `target` is, in its scope, only used in place: never closed,
/// entered with `with`, rebound to something else, or handed to other code.
fn never_closed<'t>(cx: &Checker<'t>, target: Node<'t>) -> bool {
    let name = cx.text(target);
    let scope = enclosing_scope(target);
    let info = cx.scope_info(scope);
    for occ in info.occurrences(name) {
        if occ.nested {
            return false;
        }
        match occ.kind {
            OccKind::Bind { value, .. } => {
                if value.is_none_or(|v| opener_kind(cx, unparen(v)).is_none()) {
                    return false;
                }
            }
            OccKind::Load => {
                if !used_in_place(cx, occ.node) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

/// Whether a read of the resource uses it without closing it or letting it escape.
fn used_in_place<'t>(cx: &Checker<'t>, node: Node<'t>) -> bool {
    let Some((parent, child)) = parent_unparen(node) else {
        return false;
    };
    match parent.kind_str() {
        "attribute" if is_field(parent, "object", child) => {
            let method = parent.field("attribute").map(|a| cx.text(a));
            !matches!(method, Some("close" | "__exit__" | "__enter__" | "detach"))
        }
        "with_item" | "as_pattern" => false,
        "argument_list" => {
            let func = parent
                .parent()
                .and_then(|c| c.field("function"))
                .map(unparen);
            func.is_some_and(|f| {
                f.kind_str() == "identifier"
                    && ["next", "iter", "enumerate"]
                        .iter()
                        .find(|n| **n == cx.text(f))
                        .is_some_and(|n| !cx.is_bound(n))
            }) || is_read_only_use(cx, node)
        }
        _ => is_read_only_use(cx, node),
    }
}

#[cfg(test)]
mod tests {
    use crate::Rule;
    use crate::rules::test_support::{hits, messages};

    #[test]
    fn flags_chained_iterated_and_named_resources() {
        let src = "import socket, tempfile\n\ndef f(p):\n    data = open(p).read()\n    for line in open(p):\n        print(line)\n    out = open(p, 'w')\n    out.write(data)\n    s = socket.socket()\n    s.connect(('h', 1))\n    t = tempfile.TemporaryFile()\n    t.write(b'x')\n";
        assert_eq!(
            hits(Rule::UnclosedResource, src),
            vec![(4, 12), (5, 17), (7, 11), (9, 9), (11, 9)]
        );
        let msgs = messages(Rule::UnclosedResource, src);
        assert_eq!(
            msgs[0],
            "A file `open(…)` is used once and never closed: it stays open until garbage collection"
        );
        assert_eq!(
            msgs[3],
            "A socket `socket.socket(…)` is never closed: it stays open until garbage collection"
        );
    }

    #[test]
    fn flags_print_to_file_and_module_level_scripts() {
        let src = "log = open('log.txt', 'a')\nprint('hi', file=log)\n";
        assert_eq!(hits(Rule::UnclosedResource, src), vec![(1, 7)]);
    }

    #[test]
    fn ignores_closed_with_returned_and_stored_resources() {
        let src = "import os, io\n\ndef a(p):\n    with open(p) as f:\n        return f.read()\n\ndef b(p):\n    f = open(p)\n    try:\n        return f.read()\n    finally:\n        f.close()\n\ndef c(p):\n    return open(p)\n\ndef d(self, p):\n    self.f = open(p)\n    g = open(p)\n    self.g = g\n\ndef e(p):\n    f = open(p)\n    with f:\n        pass\n\ndef h(p, stack):\n    f = stack.enter_context(open(p))\n    fd = os.open(p, os.O_RDONLY)\n    r = io.BufferedReader(open(p, 'rb'))\n    return r\n\ndef i(p):\n    f = open(p)\n    def later():\n        f.close()\n    return later\n\ndef j(p):\n    open(p).close()\n";
        assert!(
            hits(Rule::UnclosedResource, src).is_empty(),
            "{:?}",
            hits(Rule::UnclosedResource, src)
        );
        // A module that defines its own `open`.
        let src = "def open(p): ...\nopen('x').read()\n";
        assert!(hits(Rule::UnclosedResource, src).is_empty());
        // A module-level file used by functions: a deliberate long-lived handle.
        let src = "LOG = open('log.txt', 'a')\ndef log(msg):\n    LOG.write(msg)\n";
        assert!(hits(Rule::UnclosedResource, src).is_empty());
    }
}
