//! ML101 `list-as-queue`: `.pop(0)` / `.insert(0, x)` on a list used as a queue.

use tree_sitter::Node;

use super::{is_zero, method_call, positional_args};
use crate::checker::NodeExt;
use crate::checker::{
    Checker, Violation, contains, enclosing_loop, enclosing_method, enclosing_scope,
};
use crate::registry::{Rule, RuleDoc};

pub(crate) const DOC: RuleDoc = RuleDoc {
    what: "Checks for `.pop(0)` and `.insert(0, x)` on a list that is used as a queue: inside a \
loop, or on a list that the same code also appends to. It only flags receivers that are \
certainly lists (bound to a list display, comprehension, `list(...)` or `sorted(...)`, or \
annotated `list`).",
    why: "A list stores its items in one contiguous array. Taking or adding an item at the front \
moves every other item by one slot, so each `pop(0)` or `insert(0, x)` costs time proportional \
to the length of the list, and draining a list of n items from the front costs O(n\u{b2}). \
Queues that build up faster than they drain keep the whole backlog in that array, and the \
quadratic copying shows up as CPU time long before the memory does. `collections.deque` adds \
and removes at both ends in constant time.",
    example: "pending = [root]\nwhile pending:\n    node = pending.pop(0)\n    pending.extend(node.children)\n",
    use_instead: "from collections import deque\n\npending = deque([root])\nwhile pending:\n    node = pending.popleft()\n    pending.extend(node.children)\n",
};

struct ListAsQueue {
    receiver: String,
    method: &'static str,
}

impl Violation for ListAsQueue {
    const RULE: Rule = Rule::ListAsQueue;

    fn message(&self) -> String {
        format!(
            "`{}.{}` on a list moves every item: the list is used as a queue",
            self.receiver, self.method
        )
    }

    fn fix(&self) -> String {
        let replacement = if self.method == "pop(0)" {
            "`popleft()`"
        } else {
            "`appendleft(x)`"
        };
        format!("Use `collections.deque` and {replacement}")
    }
}

pub(crate) fn check(cx: &mut Checker<'_>) {
    for i in 0..cx.index.calls.len() {
        let call = cx.index.calls[i];
        let Some((receiver, name, args)) = method_call(cx, call) else {
            continue;
        };
        let args = positional_args(args);
        let method = match (name, args.as_slice()) {
            ("pop", [first]) if is_zero(cx, *first) => "pop(0)",
            ("insert", [first, _]) if is_zero(cx, *first) => "insert(0, …)",
            _ => continue,
        };
        if !matches!(receiver.kind_str(), "identifier" | "attribute") || !cx.is_known_list(receiver)
        {
            continue;
        }
        if enclosing_loop(call).is_none() && !appended_to(cx, receiver) {
            continue;
        }
        cx.report(
            call,
            ListAsQueue {
                receiver: cx.snippet(receiver),
                method,
            },
        );
    }
}

/// Whether the same receiver is appended to (or extended) in its function, or, for
/// `self.attr`, anywhere in its class.
fn appended_to<'t>(cx: &Checker<'t>, receiver: Node<'t>) -> bool {
    let region = if receiver.kind_str() == "attribute" {
        match enclosing_method(receiver, cx.src) {
            Some((_, class)) => class,
            None => return false,
        }
    } else {
        enclosing_scope(receiver)
    };
    let text = cx.text(receiver);
    cx.index.calls.iter().any(|&call| {
        contains(region, call)
            && method_call(cx, call).is_some_and(|(r, name, _)| {
                matches!(name, "append" | "extend") && cx.text(r) == text
            })
    })
}

#[cfg(test)]
mod tests {
    use crate::Rule;
    use crate::rules::test_support::{hits, messages};

    #[test]
    fn flags_pop0_in_a_loop() {
        let src = "queue = [1, 2]\nwhile queue:\n    item = queue.pop(0)\n";
        assert_eq!(hits(Rule::ListAsQueue, src), vec![(3, 12)]);
        assert_eq!(
            messages(Rule::ListAsQueue, src),
            vec!["`queue.pop(0)` on a list moves every item: the list is used as a queue"]
        );
    }

    #[test]
    fn flags_insert0_in_a_loop_and_annotated_parameters() {
        let src = "def f(xs: list[int], ys):\n    out = []\n    for x in xs:\n        out.insert(0, x)\n    while xs:\n        xs.pop(0)\n";
        assert_eq!(hits(Rule::ListAsQueue, src), vec![(4, 9), (6, 9)]);
    }

    #[test]
    fn flags_self_attribute_queue_across_methods() {
        let src = "class Q:\n    def __init__(self):\n        self.items = []\n    def put(self, x):\n        self.items.append(x)\n    def get(self):\n        return self.items.pop(0)\n";
        assert_eq!(hits(Rule::ListAsQueue, src), vec![(7, 16)]);
    }

    #[test]
    fn flags_pop0_outside_a_loop_when_appended() {
        let src = "def f(x):\n    q = list()\n    q.append(x)\n    return q.pop(0)\n";
        assert_eq!(hits(Rule::ListAsQueue, src), vec![(4, 12)]);
    }

    #[test]
    fn ignores_non_lists_and_single_pops() {
        // Unknown receiver type: could be a deque subclass, a dict, anything.
        let src = "def f(q):\n    while q:\n        q.pop(0)\n";
        assert!(hits(Rule::ListAsQueue, src).is_empty());
        // A dict keyed by 0.
        let src = "d = {}\nfor i in range(3):\n    d.pop(0)\n";
        assert!(hits(Rule::ListAsQueue, src).is_empty());
        // One pop outside a loop, never appended: argument parsing, not a queue.
        let src = "import sys\nargs = sys.argv[1:]\nargs = list(args)\nfirst = args.pop(0)\n";
        assert!(hits(Rule::ListAsQueue, src).is_empty());
        // Other indices and pops from the end.
        let src = "xs = []\nwhile xs:\n    xs.pop()\n    xs.pop(1)\n    xs.insert(1, 2)\n";
        assert!(hits(Rule::ListAsQueue, src).is_empty());
        // Rebound to something else in the same scope.
        let src = "import collections\nq = []\nq = collections.deque(q)\nwhile q:\n    q.pop(0)\n";
        assert!(hits(Rule::ListAsQueue, src).is_empty());
    }
}
