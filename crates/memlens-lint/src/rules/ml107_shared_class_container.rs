//! ML107 `shared-class-container`: a mutable class attribute mutated through an instance.

use tree_sitter::Node;

use super::{GROWTH_METHODS, is_mutating_method, method_call};
use crate::checker::{
    Checker, NodeExt, Violation, assignment_value, decorators, first_parameter, has_decorator,
    is_field, parent_unparen, unparen,
};
use crate::registry::{Rule, RuleDoc};

pub(crate) const DOC: RuleDoc = RuleDoc {
    what: "Checks for a list, dict or set created in a class body (`items = []`) and then changed \
through an instance inside the class's methods (`self.items.append(x)`, `self.items[k] = v`), \
when no method ever gives the instance its own container (`self.items = ...`). Annotated \
attributes of classes with bases or decorators (dataclasses, pydantic models, ...) are not \
flagged, nor are enums, named tuples or typed dicts.",
    why: "A class attribute is created once, when the class is defined, and every instance shares \
it. `self.items.append(x)` looks like it changes one object's state but adds to the single \
list that all instances share: data meant to die with an instance stays reachable from the \
class for the life of the program, grows with every instance ever created, and leaks between \
instances (one request's items show up in the next).",
    example: "class Basket:\n    items = []\n\n    def add(self, item):\n        self.items.append(item)\n",
    use_instead: "class Basket:\n    def __init__(self):\n        self.items = []\n\n    def add(self, item):\n        self.items.append(item)\n",
};

struct SharedClassContainer {
    expr: String,
    attr: String,
    class: String,
}

impl Violation for SharedClassContainer {
    const RULE: Rule = Rule::SharedClassContainer;

    fn message(&self) -> String {
        format!(
            "`{}` changes class attribute `{}`, shared by every instance of `{}`",
            self.expr, self.attr, self.class
        )
    }

    fn fix(&self) -> String {
        format!(
            "Create the container per instance in `__init__`: `self.{} = ...`",
            self.attr
        )
    }
}

const SKIPPED_BASES: &[&str] = &[
    "Enum",
    "IntEnum",
    "StrEnum",
    "Flag",
    "IntFlag",
    "NamedTuple",
    "TypedDict",
    "Protocol",
];

pub(crate) fn check(cx: &mut Checker<'_>) {
    for i in 0..cx.index.classes.len() {
        let class = cx.index.classes[i];
        let Some(body) = class.field("body") else {
            continue;
        };
        let superclasses = class.field("superclasses");
        let has_bases = superclasses.is_some_and(|s| s.named_child_count() > 0);
        if superclasses.is_some_and(|s| {
            let text = cx.text(s);
            SKIPPED_BASES.iter().any(|b| text.contains(b))
        }) {
            continue;
        }
        let decorated = !decorators(class).is_empty();
        let mut c = body.walk();
        let attrs: Vec<(&str, Node<'_>)> = body
            .named_children(&mut c)
            .filter(|s| s.kind_str() == "expression_statement")
            .filter_map(|s| s.named_child(0))
            .filter(|a| a.kind_str() == "assignment")
            .filter_map(|a| {
                let left = a.field("left")?;
                if left.kind_str() != "identifier" {
                    return None;
                }
                if a.field("type").is_some() && (has_bases || decorated) {
                    return None;
                }
                let value = assignment_value(a)?;
                is_mutable_container(cx, value).then(|| (cx.text(left), left))
            })
            .collect();
        if attrs.is_empty() {
            continue;
        }
        let class_name = class.field("name").map(|n| cx.text(n)).unwrap_or("");
        let names: Vec<&str> = attrs
            .iter()
            .map(|(attr, _)| *attr)
            .filter(|attr| !name_starts_dunder(attr))
            .collect();
        let mutations = instance_mutations(cx, class, &names);
        for (attr, site) in names.iter().zip(mutations) {
            if let Some(site) = site {
                cx.report(
                    site,
                    SharedClassContainer {
                        expr: cx.snippet(site),
                        attr: (*attr).to_owned(),
                        class: class_name.to_owned(),
                    },
                );
            }
        }
    }
}

fn name_starts_dunder(name: &str) -> bool {
    name.starts_with("__") && name.ends_with("__")
}

fn is_mutable_container<'t>(cx: &Checker<'t>, value: Node<'t>) -> bool {
    let value = unparen(value);
    match value.kind_str() {
        "list"
        | "dictionary"
        | "set"
        | "list_comprehension"
        | "dictionary_comprehension"
        | "set_comprehension" => true,
        "call" => {
            let f = value.field("function").map(unparen);
            cx.refers_to(
                value.field("function").unwrap_or(value),
                &[
                    "builtins.list",
                    "builtins.dict",
                    "builtins.set",
                    "collections.defaultdict",
                    "collections.OrderedDict",
                    "collections.Counter",
                    "collections.deque",
                ],
            ) || f.is_some_and(|f| {
                f.kind_str() == "identifier" && cx.text(f) == "set" && !cx.is_bound("set")
            })
        }
        _ => false,
    }
}

/// For each of `attrs`, the first `self.attr` mutation in a method of `class`, unless some
/// method assigns `self.attr` (giving instances their own container). Each method is walked
/// once for all the attributes.
fn instance_mutations<'t>(
    cx: &Checker<'t>,
    class: Node<'t>,
    attrs: &[&'t str],
) -> Vec<Option<Node<'t>>> {
    let mut mutation: Vec<Option<Node<'t>>> = vec![None; attrs.len()];
    let mut assigned = vec![false; attrs.len()];
    let Some(body) = class.field("body") else {
        return mutation;
    };
    if attrs.is_empty() {
        return mutation;
    }
    let mut found = Vec::new();
    let mut c = body.walk();
    for stmt in body.named_children(&mut c) {
        let function = match stmt.kind_str() {
            "function_definition" => stmt,
            "decorated_definition" => match stmt.field("definition") {
                Some(d) if d.kind_str() == "function_definition" => d,
                _ => continue,
            },
            _ => continue,
        };
        if has_decorator(function, cx.src, &["staticmethod", "classmethod"]) {
            continue;
        }
        let Some(selfname) = first_parameter(function).map(|p| cx.text(p)) else {
            continue;
        };
        found.clear();
        collect_self_attrs(cx, function, selfname, attrs, &mut found);
        for &(node, attr) in &found {
            // Every attribute of that name (a class may list one twice).
            for (k, _) in attrs.iter().enumerate().filter(|(_, a)| **a == attr) {
                if assigned[k] {
                    continue;
                }
                match self_attr_use(cx, node) {
                    AttrUse::Assigned => {
                        assigned[k] = true;
                        mutation[k] = None;
                    }
                    AttrUse::Mutated(site) => {
                        if mutation[k].is_none() {
                            mutation[k] = Some(site);
                        }
                    }
                    AttrUse::Other => {}
                }
            }
        }
    }
    mutation
}

/// The `selfname.attr` nodes under `node`, for `attr` in `attrs`, in source order.
fn collect_self_attrs<'t>(
    cx: &Checker<'t>,
    node: Node<'t>,
    selfname: &str,
    attrs: &[&'t str],
    out: &mut Vec<(Node<'t>, &'t str)>,
) {
    if node.kind_str() == "attribute" {
        let object = node.field("object").map(unparen);
        if object.is_some_and(|o| o.kind_str() == "identifier" && cx.text(o) == selfname)
            && let Some(name) = node.field("attribute")
            && let Some(attr) = attrs.iter().find(|a| **a == cx.text(name))
        {
            out.push((node, attr));
            return;
        }
    }
    let mut c = node.walk();
    for child in node.named_children(&mut c) {
        collect_self_attrs(cx, child, selfname, attrs, out);
    }
}

enum AttrUse<'t> {
    Assigned,
    Mutated(Node<'t>),
    Other,
}

fn self_attr_use<'t>(cx: &Checker<'t>, node: Node<'t>) -> AttrUse<'t> {
    let Some((parent, child)) = parent_unparen(node) else {
        return AttrUse::Other;
    };
    match parent.kind_str() {
        "assignment" if is_field(parent, "left", child) => AttrUse::Assigned,
        "pattern_list" | "tuple_pattern" | "as_pattern_target" => AttrUse::Assigned,
        "for_statement" if is_field(parent, "left", child) => AttrUse::Assigned,
        "augmented_assignment" if is_field(parent, "left", child) => {
            // `self.items += [x]` extends the shared list in place, then binds it on the
            // instance: the shared list still grows.
            AttrUse::Mutated(parent)
        }
        "attribute" if is_field(parent, "object", child) => match parent_unparen(parent) {
            Some((call, f)) if call.kind_str() == "call" && is_field(call, "function", f) => {
                match method_call(cx, call) {
                    Some((_, m, _)) if is_mutating_method(m) || GROWTH_METHODS.contains(&m) => {
                        AttrUse::Mutated(call)
                    }
                    _ => AttrUse::Other,
                }
            }
            _ => AttrUse::Other,
        },
        "subscript" if is_field(parent, "value", child) => match parent_unparen(parent) {
            Some((g, s))
                if matches!(g.kind_str(), "assignment" | "augmented_assignment")
                    && is_field(g, "left", s) =>
            {
                AttrUse::Mutated(g)
            }
            Some((g, _)) if g.kind_str() == "delete_statement" => AttrUse::Mutated(g),
            _ => AttrUse::Other,
        },
        "delete_statement" => AttrUse::Assigned,
        _ => AttrUse::Other,
    }
}

#[cfg(test)]
mod tests {
    use crate::Rule;
    use crate::rules::test_support::{hits, messages};

    #[test]
    fn flags_mutation_through_self() {
        let src = "class Basket:\n    items = []\n    index = {}\n    tags = set()\n    def add(self, item):\n        self.items.append(item)\n        self.index[item.id] = item\n    def tag(me, t):\n        me.tags.add(t)\n";
        assert_eq!(
            hits(Rule::SharedClassContainer, src),
            vec![(6, 9), (7, 9), (9, 9)]
        );
        assert_eq!(
            messages(Rule::SharedClassContainer, src)[0],
            "`self.items.append(item)` changes class attribute `items`, shared by every instance of `Basket`"
        );
    }

    #[test]
    fn flags_augmented_list_extension() {
        let src = "class A:\n    log = []\n    def f(self, x):\n        self.log += [x]\n";
        assert_eq!(hits(Rule::SharedClassContainer, src), vec![(4, 9)]);
    }

    #[test]
    fn ignores_per_instance_containers_models_and_class_methods() {
        // Shadowed per instance in __init__.
        let src = "class A:\n    items = []\n    def __init__(self):\n        self.items = []\n    def add(self, x):\n        self.items.append(x)\n";
        assert!(hits(Rule::SharedClassContainer, src).is_empty());
        // Pydantic-style annotated field with a base class; dataclass field.
        let src = "class M(BaseModel):\n    tags: list[str] = []\n    def add(self, t):\n        self.tags.append(t)\n";
        assert!(hits(Rule::SharedClassContainer, src).is_empty());
        // Deliberate class-level registry through cls; reads through self.
        let src = "class R:\n    registry = {}\n    @classmethod\n    def register(cls, k, v):\n        cls.registry[k] = v\n    def get(self, k):\n        return self.registry.get(k)\n";
        assert!(hits(Rule::SharedClassContainer, src).is_empty());
        // Immutable defaults; enums.
        let src = "class A:\n    items = ()\n    def f(self):\n        self.items.count(1)\nclass E(Enum):\n    X = []\n    def f(self):\n        self.X.append(1)\n";
        assert!(hits(Rule::SharedClassContainer, src).is_empty());
    }
}
