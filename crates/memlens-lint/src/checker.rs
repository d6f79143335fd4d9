//! One file's check: an index built in one pass over the syntax tree, scope facts computed on
//! demand, and the rules run over the index.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use tree_sitter::Node;

use crate::registry::{Rule, RuleSet};
use crate::rules;

/// Fast access to a node's kind and fields.
///
/// `Node::kind` measures the C string and checks it is UTF-8 on every call, and
/// `child_by_field_name` looks the field name up with a linear string search; both showed in
/// profiles of a standard-library run (about a tenth of the time), so these read precomputed
/// tables of the grammar instead.
pub(crate) trait NodeExt<'t> {
    /// The child in field `name` (a field of the Python grammar).
    fn field(&self, name: &'static str) -> Option<Node<'t>>;
    /// The node's kind (`"call"`, `"identifier"`, ...), as `Node::kind` gives it.
    fn kind_str(&self) -> &'static str;
}

impl<'t> NodeExt<'t> for Node<'t> {
    #[inline]
    fn field(&self, name: &'static str) -> Option<Node<'t>> {
        match field_id(name) {
            Some(id) => self.child_by_field_id(id),
            None => None,
        }
    }

    #[inline]
    fn kind_str(&self) -> &'static str {
        let kinds = &*KINDS;
        kinds
            .get(usize::from(self.kind_id()))
            .copied()
            .unwrap_or_else(|| self.kind())
    }
}

/// Every node kind of the grammar, by kind id.
static KINDS: std::sync::LazyLock<Box<[&'static str]>> = std::sync::LazyLock::new(|| {
    let language: tree_sitter::Language = tree_sitter_python::LANGUAGE.into();
    (0..language.node_kind_count() as u16)
        .map(|id| language.node_kind_for_id(id).unwrap_or(""))
        .collect()
});

/// The field names the rules use, in the order of [`FIELD_IDS`].
const FIELDS: [&str; 18] = [
    "function",
    "left",
    "name",
    "attribute",
    "arguments",
    "object",
    "value",
    "right",
    "body",
    "definition",
    "type",
    "parameters",
    "alias",
    "subscript",
    "operator",
    "superclasses",
    "module_name",
    "condition",
];

/// The grammar's ids of [`FIELDS`].
static FIELD_IDS: std::sync::LazyLock<[Option<u16>; 18]> = std::sync::LazyLock::new(|| {
    let language: tree_sitter::Language = tree_sitter_python::LANGUAGE.into();
    FIELDS.map(|name| language.field_id_for_name(name).map(u16::from))
});

#[inline]
fn field_id(name: &str) -> Option<u16> {
    // A `match` on the literal folds to a constant index once `field` is inlined.
    let slot = match name {
        "function" => 0,
        "left" => 1,
        "name" => 2,
        "attribute" => 3,
        "arguments" => 4,
        "object" => 5,
        "value" => 6,
        "right" => 7,
        "body" => 8,
        "definition" => 9,
        "type" => 10,
        "parameters" => 11,
        "alias" => 12,
        "subscript" => 13,
        "operator" => 14,
        "superclasses" => 15,
        "module_name" => 16,
        "condition" => 17,
        other => {
            let language: tree_sitter::Language = tree_sitter_python::LANGUAGE.into();
            return language.field_id_for_name(other).map(u16::from);
        }
    };
    FIELD_IDS[slot]
}

/// A rule's finding at one place, before it is turned into a [`crate::Diagnostic`].
pub(crate) trait Violation {
    /// The rule this violation belongs to.
    const RULE: Rule;
    /// What is wrong, naming the code involved.
    fn message(&self) -> String;
    /// How to fix it, in one sentence.
    fn fix(&self) -> String;
}

/// A finding with its byte range, as the rules report it.
#[derive(Debug)]
pub(crate) struct RawDiagnostic {
    pub(crate) rule: Rule,
    pub(crate) start: tree_sitter::Point,
    pub(crate) end: tree_sitter::Point,
    pub(crate) start_byte: usize,
    pub(crate) message: String,
    pub(crate) fix: String,
}

/// What one pass over the tree collects for the rules.
#[derive(Default)]
pub(crate) struct Index<'t> {
    /// Local name -> dotted qualified name, from every import in the file.
    pub(crate) imports: HashMap<String, String>,
    /// Every name bound anywhere in the file (assignments, defs, parameters, imports...).
    pub(crate) bound: HashSet<&'t str>,
    pub(crate) calls: Vec<Node<'t>>,
    pub(crate) fors: Vec<Node<'t>>,
    pub(crate) comprehension_fors: Vec<Node<'t>>,
    pub(crate) aug_assigns: Vec<Node<'t>>,
    pub(crate) assignments: Vec<Node<'t>>,
    pub(crate) decorated_functions: Vec<Node<'t>>,
    pub(crate) classes: Vec<Node<'t>>,
}

/// Builtin names the rules resolve; a file that binds one of them anywhere shadows it.
const BUILTINS: &[&str] = &[
    "open",
    "list",
    "sorted",
    "sum",
    "any",
    "all",
    "min",
    "max",
    "map",
    "filter",
    "zip",
    "enumerate",
    "reversed",
    "range",
    "len",
    "set",
    "dict",
    "tuple",
    "frozenset",
];

/// The state of one file's check.
pub(crate) struct Checker<'t> {
    pub(crate) src: &'t str,
    pub(crate) root: Node<'t>,
    pub(crate) index: Index<'t>,
    rules: RuleSet,
    diagnostics: Vec<RawDiagnostic>,
    scopes: RefCell<HashMap<usize, Rc<ScopeInfo<'t>>>>,
    /// Byte ranges left out of a selective parse, searched as text for bindings.
    gaps: Vec<std::ops::Range<usize>>,
    shadowed: RefCell<HashMap<&'static str, bool>>,
}

impl<'t> Checker<'t> {
    pub(crate) fn new(
        src: &'t str,
        root: Node<'t>,
        rules: RuleSet,
        gaps: Vec<std::ops::Range<usize>>,
    ) -> Checker<'t> {
        let mut checker = Checker {
            src,
            root,
            index: Index::default(),
            rules,
            diagnostics: Vec::new(),
            scopes: RefCell::new(HashMap::new()),
            gaps,
            shadowed: RefCell::new(HashMap::new()),
        };
        checker.build_index();
        checker
    }

    /// Whether the builtin `name` is bound somewhere in the file (and so may be shadowed): in the
    /// parsed tree, or, after a selective parse, in the text left out.
    pub(crate) fn is_bound(&self, name: &'static str) -> bool {
        if self.index.bound.contains(name) {
            return true;
        }
        if self.gaps.is_empty() {
            return false;
        }
        if let Some(known) = self.shadowed.borrow().get(name) {
            return *known;
        }
        let found = self
            .gaps
            .iter()
            .any(|g| crate::prescan::text_binds(&self.src[g.clone()], name));
        self.shadowed.borrow_mut().insert(name, found);
        found
    }

    /// Whether `rule` is selected for this file.
    pub(crate) fn enabled(&self, rule: Rule) -> bool {
        self.rules.contains(rule)
    }

    /// Records a finding over `node`.
    pub(crate) fn report<V: Violation>(&mut self, node: Node<'t>, violation: V) {
        if !self.enabled(V::RULE) {
            return;
        }
        // One finding per rule and place.
        let start_byte = node.start_byte();
        if self
            .diagnostics
            .iter()
            .any(|d| d.rule == V::RULE && d.start_byte == start_byte)
        {
            return;
        }
        self.diagnostics.push(RawDiagnostic {
            rule: V::RULE,
            start: node.start_position(),
            end: node.end_position(),
            start_byte,
            message: violation.message(),
            fix: violation.fix(),
        });
    }

    /// Runs every selected rule and returns the findings.
    pub(crate) fn run(mut self) -> Vec<RawDiagnostic> {
        rules::run_all(&mut self);
        self.diagnostics
    }

    /// The source text of `node`.
    pub(crate) fn text(&self, node: Node<'_>) -> &'t str {
        &self.src[node.byte_range()]
    }

    /// The source text of `node`, shortened for a message.
    pub(crate) fn snippet(&self, node: Node<'_>) -> String {
        shorten(self.text(node))
    }

    fn build_index(&mut self) {
        let mut cursor = self.root.walk();
        let src = self.src;
        let index = &mut self.index;
        loop {
            let node = cursor.node();
            let mut descend = true;
            match node.kind_str() {
                "call" => index.calls.push(node),
                "for_statement" => index.fors.push(node),
                "for_in_clause" => index.comprehension_fors.push(node),
                "augmented_assignment" => index.aug_assigns.push(node),
                "assignment" => {
                    index.assignments.push(node);
                    if let Some(left) = node.field("left") {
                        collect_target_names(left, src, &mut index.bound);
                    }
                }
                "decorated_definition"
                    if node
                        .field("definition")
                        .is_some_and(|d| d.kind_str() == "function_definition") =>
                {
                    index.decorated_functions.push(node);
                }
                "class_definition" => {
                    index.classes.push(node);
                    if let Some(name) = node.field("name") {
                        index.bound.insert(&src[name.byte_range()]);
                    }
                }
                "function_definition" => {
                    if let Some(name) = node.field("name") {
                        index.bound.insert(&src[name.byte_range()]);
                    }
                    if let Some(params) = node.field("parameters") {
                        collect_parameter_names(params, src, &mut index.bound);
                    }
                }
                "lambda_parameters" => collect_parameter_names(node, src, &mut index.bound),
                "as_pattern_target" => collect_target_names(node, src, &mut index.bound),
                "import_statement" | "import_from_statement" => {
                    record_import(node, src, index);
                    descend = false;
                }
                "string" | "comment" => descend = false,
                _ => {}
            }
            if (node.kind_str() == "for_statement" || node.kind_str() == "for_in_clause")
                && let Some(left) = node.field("left")
            {
                collect_target_names(left, src, &mut index.bound);
            }
            if descend && cursor.goto_first_child() {
                continue;
            }
            loop {
                if cursor.goto_next_sibling() {
                    break;
                }
                if !cursor.goto_parent() {
                    return;
                }
            }
        }
    }

    /// The dotted name an expression refers to, through imports: `ft.lru_cache` with
    /// `import functools as ft` is `functools.lru_cache`; an unshadowed builtin `open` is
    /// `builtins.open`. `None` for anything else.
    pub(crate) fn qualified_name(&self, node: Node<'_>) -> Option<String> {
        let node = unparen(node);
        match node.kind_str() {
            "identifier" => {
                let name = self.text(node);
                if let Some(q) = self.index.imports.get(name) {
                    return Some(q.clone());
                }
                if let Some(builtin) = BUILTINS.iter().find(|b| **b == name)
                    && !self.is_bound(builtin)
                {
                    return Some(format!("builtins.{name}"));
                }
                None
            }
            "attribute" => {
                let object = node.field("object")?;
                let attr = node.field("attribute")?;
                let base = unparen(object);
                if base.kind_str() == "identifier" {
                    let q = self.index.imports.get(self.text(base))?;
                    Some(format!("{q}.{}", self.text(attr)))
                } else {
                    Some(format!(
                        "{}.{}",
                        self.qualified_name(base)?,
                        self.text(attr)
                    ))
                }
            }
            _ => None,
        }
    }

    /// Whether `node` refers to one of `names` (dotted qualified names).
    pub(crate) fn refers_to(&self, node: Node<'_>, names: &[&str]) -> bool {
        self.may_refer_to(node, names.iter().copied())
            && self
                .qualified_name(node)
                .is_some_and(|q| names.iter().any(|n| *n == q))
    }

    /// A cheap test that [`Checker::qualified_name`] of `node` may be one of `names`,
    /// without building the name: the last part of an attribute must match, and a plain name
    /// must be imported or be one of the builtins named.
    pub(crate) fn may_refer_to<'n>(
        &self,
        node: Node<'_>,
        mut names: impl Iterator<Item = &'n str>,
    ) -> bool {
        let node = unparen(node);
        match node.kind_str() {
            "identifier" => {
                let name = self.text(node);
                self.index.imports.contains_key(name)
                    || names.any(|n| n.strip_prefix("builtins.") == Some(name))
            }
            "attribute" => node.field("attribute").is_some_and(|attr| {
                let attr = self.text(attr);
                names.any(|n| n.rsplit('.').next() == Some(attr))
            }),
            _ => false,
        }
    }

    /// Whether the call `node` calls one of `names`.
    pub(crate) fn calls(&self, node: Node<'_>, names: &[&str]) -> bool {
        node.kind_str() == "call"
            && node
                .field("function")
                .is_some_and(|f| self.refers_to(f, names))
    }

    /// The facts about names in `scope` (a module, function, lambda or class node).
    pub(crate) fn scope_info(&self, scope: Node<'t>) -> Rc<ScopeInfo<'t>> {
        if let Some(info) = self.scopes.borrow().get(&scope.id()) {
            return Rc::clone(info);
        }
        let info = Rc::new(ScopeInfo::build(scope, self.src));
        self.scopes
            .borrow_mut()
            .insert(scope.id(), Rc::clone(&info));
        info
    }

    /// Whether the expression `node` certainly evaluates to a new `list`.
    pub(crate) fn is_list_expr(&self, node: Node<'_>) -> bool {
        let node = unparen(node);
        match node.kind_str() {
            "list" | "list_comprehension" => true,
            "call" => {
                if self.calls(node, &["builtins.list", "builtins.sorted"]) {
                    return true;
                }
                let Some(func) = node.field("function") else {
                    return false;
                };
                func.kind_str() == "attribute"
                    && func
                        .field("attribute")
                        .is_some_and(|a| matches!(self.text(a), "split" | "splitlines"))
            }
            "binary_operator" => {
                let op = node.field("operator").map(|o| self.text(o));
                let left = node.field("left");
                let right = node.field("right");
                match op {
                    Some("*") => {
                        left.is_some_and(|l| unparen(l).kind_str() == "list")
                            || right.is_some_and(|r| unparen(r).kind_str() == "list")
                    }
                    Some("+") => {
                        left.is_some_and(|l| self.is_list_expr(l))
                            && right.is_some_and(|r| self.is_list_expr(r))
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    }

    /// Whether a type annotation names a list (`list`, `list[int]`, `List[str]`, `typing.List`).
    pub(crate) fn is_list_annotation(&self, node: Node<'_>) -> bool {
        let text = self.text(node).trim();
        let head = text.split('[').next().unwrap_or("").trim();
        matches!(head, "list" | "List" | "typing.List")
    }

    /// Whether the receiver `node` (a name or `self.attr`) is certainly a list in its context.
    pub(crate) fn is_known_list(&self, node: Node<'t>) -> bool {
        let node = unparen(node);
        match node.kind_str() {
            "identifier" => {
                let name = self.text(node);
                let mut scope = enclosing_scope(node);
                loop {
                    let info = self.scope_info(scope);
                    if info.is_declared_global(name) {
                        return self.name_is_list_in(self.root, name);
                    }
                    if info.binds(name) {
                        return self.name_is_list_in(scope, name);
                    }
                    // Not bound here: look in the enclosing scopes (closures, then the module).
                    if scope.kind_str() == "module" {
                        return false;
                    }
                    scope = enclosing_function_or_module(scope);
                }
            }
            "attribute" => {
                let Some((class, attr)) = self.self_attribute(node) else {
                    return false;
                };
                self.class_attr_is_list(class, attr)
            }
            _ => false,
        }
    }

    /// Whether every binding of `name` in `scope` is a list (and there is at least one).
    fn name_is_list_in(&self, scope: Node<'t>, name: &str) -> bool {
        let info = self.scope_info(scope);
        let Some(occs) = info.names.get(name) else {
            return false;
        };
        let mut any = false;
        for occ in occs.iter().filter(|o| !o.nested) {
            match occ.kind {
                OccKind::Bind { value, annotation } => {
                    let ok = value.is_some_and(|v| self.is_list_expr(v))
                        || annotation.is_some_and(|a| self.is_list_annotation(a));
                    if !ok {
                        return false;
                    }
                    any = true;
                }
                OccKind::Param { annotation } => {
                    if !annotation.is_some_and(|a| self.is_list_annotation(a)) {
                        return false;
                    }
                    any = true;
                }
                OccKind::Opaque | OccKind::Global => return false,
                OccKind::AugAssign | OccKind::Del | OccKind::Load => {}
            }
        }
        any
    }

    /// For `self.attr` inside a method, the class and `attr`.
    pub(crate) fn self_attribute(&self, node: Node<'t>) -> Option<(Node<'t>, &'t str)> {
        let object = unparen(node.field("object")?);
        if object.kind_str() != "identifier" {
            return None;
        }
        let attr = self.text(node.field("attribute")?);
        let (method, class) = enclosing_method(node, self.src)?;
        let first = first_parameter(method)?;
        (self.text(first) == self.text(object)).then_some((class, attr))
    }

    /// Whether every `self.attr = ...` in `class`'s methods, and `attr = ...` in its body,
    /// assigns a list (and there is at least one).
    fn class_attr_is_list(&self, class: Node<'t>, attr: &str) -> bool {
        let mut any = false;
        let (start, end) = (class.start_byte(), class.end_byte());
        for assign in &self.index.assignments {
            if assign.start_byte() < start || assign.end_byte() > end {
                continue;
            }
            let Some(left) = assign.field("left") else {
                continue;
            };
            let targets_attr = match left.kind_str() {
                "attribute" => self
                    .self_attribute(left)
                    .is_some_and(|(c, a)| c.id() == class.id() && a == attr),
                "identifier" => {
                    self.text(left) == attr
                        && assign
                            .parent()
                            .and_then(|p| p.parent())
                            .and_then(|b| b.parent())
                            .is_some_and(|c| c.id() == class.id())
                }
                _ => false,
            };
            if !targets_attr {
                continue;
            }
            let value = assignment_value(*assign);
            let annotation = assign.field("type");
            if !(value.is_some_and(|v| self.is_list_expr(v))
                || annotation.is_some_and(|a| self.is_list_annotation(a)))
            {
                return false;
            }
            any = true;
        }
        any
    }
}

/// Shortens source text for a message: first line, at most 40 characters.
pub(crate) fn shorten(text: &str) -> String {
    let first = text.lines().next().unwrap_or("").trim();
    let mut out: String = first.chars().take(40).collect();
    if out.len() < first.len() || text.trim().contains('\n') {
        out.push('…');
    }
    out
}

fn record_import<'t>(node: Node<'t>, src: &'t str, index: &mut Index<'t>) {
    let text = |n: Node<'_>| &src[n.byte_range()];
    let mut cursor = node.walk();
    if node.kind_str() == "import_statement" {
        for name in node.children_by_field_name("name", &mut cursor) {
            match name.kind_str() {
                "dotted_name" => {
                    let full = text(name);
                    let first = full.split('.').next().unwrap_or(full).trim();
                    index.imports.insert(first.to_owned(), first.to_owned());
                    index.bound.insert(first);
                }
                "aliased_import" => {
                    if let (Some(n), Some(a)) = (name.field("name"), name.field("alias")) {
                        index.imports.insert(text(a).to_owned(), dotted(text(n)));
                        index.bound.insert(text(a));
                    }
                }
                _ => {}
            }
        }
        return;
    }
    let module = node
        .field("module_name")
        .filter(|m| m.kind_str() == "dotted_name")
        .map(|m| dotted(text(m)));
    for name in node.children_by_field_name("name", &mut cursor) {
        let (imported, local) = match name.kind_str() {
            "dotted_name" => (name, name),
            "aliased_import" => match (name.field("name"), name.field("alias")) {
                (Some(n), Some(a)) => (n, a),
                _ => continue,
            },
            _ => continue,
        };
        let local_text = text(local);
        index.bound.insert(local_text);
        match &module {
            Some(m) => {
                index.imports.insert(
                    local_text.to_owned(),
                    format!("{m}.{}", dotted(text(imported))),
                );
            }
            None => {
                // A relative import shadows whatever the name meant before.
                index.imports.remove(local_text);
            }
        }
    }
}

fn dotted(text: &str) -> String {
    text.split('.').map(str::trim).collect::<Vec<_>>().join(".")
}

fn collect_target_names<'t>(node: Node<'t>, src: &'t str, out: &mut HashSet<&'t str>) {
    match node.kind_str() {
        "identifier" => {
            out.insert(&src[node.byte_range()]);
        }
        "pattern_list"
        | "tuple_pattern"
        | "list_pattern"
        | "list_splat_pattern"
        | "as_pattern_target"
        | "parenthesized_expression"
        | "tuple"
        | "list" => {
            let mut cursor = node.walk();
            for child in node.named_children(&mut cursor) {
                collect_target_names(child, src, out);
            }
        }
        _ => {}
    }
}

fn collect_parameter_names<'t>(params: Node<'t>, src: &'t str, out: &mut HashSet<&'t str>) {
    let mut cursor = params.walk();
    for p in params.named_children(&mut cursor) {
        if let Some(name) = parameter_name(p) {
            out.insert(&src[name.byte_range()]);
        }
    }
}

/// The identifier a parameter node binds.
pub(crate) fn parameter_name(p: Node<'_>) -> Option<Node<'_>> {
    match p.kind_str() {
        "identifier" => Some(p),
        "default_parameter" | "typed_default_parameter" => p.field("name"),
        "typed_parameter" | "list_splat_pattern" | "dictionary_splat_pattern" => {
            let mut cursor = p.walk();
            let found = p
                .named_children(&mut cursor)
                .find(|c| c.kind_str() == "identifier");
            found.or_else(|| {
                let mut cursor = p.walk();
                p.named_children(&mut cursor)
                    .find(|c| {
                        matches!(
                            c.kind_str(),
                            "list_splat_pattern" | "dictionary_splat_pattern"
                        )
                    })
                    .and_then(parameter_name)
            })
        }
        _ => None,
    }
}

/// The first parameter of a function (usually `self`).
pub(crate) fn first_parameter(function: Node<'_>) -> Option<Node<'_>> {
    let params = function.field("parameters")?;
    let mut cursor = params.walk();
    let first = params.named_children(&mut cursor).next()?;
    match first.kind_str() {
        "identifier" | "default_parameter" | "typed_parameter" | "typed_default_parameter" => {
            parameter_name(first)
        }
        _ => None,
    }
}

/// Skips parentheses around an expression.
pub(crate) fn unparen(mut node: Node<'_>) -> Node<'_> {
    while node.kind_str() == "parenthesized_expression" {
        match node.named_child(0) {
            Some(inner) if inner.kind_str() != "comment" => node = inner,
            _ => break,
        }
    }
    node
}

/// The parent of `node`, skipping parentheses; also returns the child under that parent.
pub(crate) fn parent_unparen(node: Node<'_>) -> Option<(Node<'_>, Node<'_>)> {
    let mut child = node;
    let mut parent = node.parent()?;
    while parent.kind_str() == "parenthesized_expression" {
        child = parent;
        parent = parent.parent()?;
    }
    Some((parent, child))
}

/// Whether `child` is the `field` child of `parent`.
pub(crate) fn is_field(parent: Node<'_>, field: &'static str, child: Node<'_>) -> bool {
    parent.field(field).is_some_and(|c| c.id() == child.id())
}

/// Whether `node` opens a new scope for names.
pub(crate) fn is_scope(node: Node<'_>) -> bool {
    matches!(
        node.kind_str(),
        "module" | "function_definition" | "lambda" | "class_definition"
    )
}

/// The innermost scope (module, function, lambda or class) that holds `node`.
pub(crate) fn enclosing_scope(node: Node<'_>) -> Node<'_> {
    let mut current = node;
    while let Some(parent) = current.parent() {
        // A function's name and decorators belong to the enclosing scope, its body to itself.
        if is_scope(parent) && !is_field(parent, "name", current) {
            return parent;
        }
        current = parent;
    }
    current
}

/// The scope where names not bound in `scope` are looked up: skips class bodies (PEP 227).
fn enclosing_function_or_module(scope: Node<'_>) -> Node<'_> {
    let mut s = enclosing_scope(scope);
    while s.kind_str() == "class_definition" {
        s = enclosing_scope(s);
    }
    s
}

/// For a node inside a method (not a static or class method), the method and its class.
pub(crate) fn enclosing_method<'t>(node: Node<'t>, src: &str) -> Option<(Node<'t>, Node<'t>)> {
    let method = enclosing_scope(node);
    if method.kind_str() != "function_definition" {
        return None;
    }
    let class = class_of_method(method)?;
    if has_decorator(method, src, &["staticmethod", "classmethod"]) {
        return None;
    }
    Some((method, class))
}

/// The class whose body defines the function `function` directly, if any.
pub(crate) fn class_of_method(function: Node<'_>) -> Option<Node<'_>> {
    let mut parent = function.parent()?;
    if parent.kind_str() == "decorated_definition" {
        parent = parent.parent()?;
    }
    if parent.kind_str() != "block" {
        return None;
    }
    let class = parent.parent()?;
    (class.kind_str() == "class_definition").then_some(class)
}

/// The decorator expressions of a function or class definition.
pub(crate) fn decorators(definition: Node<'_>) -> Vec<Node<'_>> {
    let Some(parent) = definition.parent() else {
        return Vec::new();
    };
    if parent.kind_str() != "decorated_definition" {
        return Vec::new();
    }
    let mut cursor = parent.walk();
    parent
        .named_children(&mut cursor)
        .filter(|c| c.kind_str() == "decorator")
        .filter_map(|d| d.named_child(0))
        .collect()
}

/// Whether a definition has a decorator whose last dotted part is one of `names`.
pub(crate) fn has_decorator(definition: Node<'_>, src: &str, names: &[&str]) -> bool {
    decorators(definition).into_iter().any(|d| {
        let target = if d.kind_str() == "call" {
            d.field("function").unwrap_or(d)
        } else {
            d
        };
        let last = match target.kind_str() {
            "identifier" => Some(target),
            "attribute" => target.field("attribute"),
            _ => None,
        };
        last.is_some_and(|l| names.contains(&&src[l.byte_range()]))
    })
}

/// The right-hand value of an assignment, through chains (`a = b = []` gives `[]`).
pub(crate) fn assignment_value(assign: Node<'_>) -> Option<Node<'_>> {
    let mut value = assign.field("right")?;
    while value.kind_str() == "assignment" {
        value = value.field("right")?;
    }
    Some(value)
}

/// The innermost `for` or `while` statement whose body holds `node`, without leaving its scope.
pub(crate) fn enclosing_loop(node: Node<'_>) -> Option<Node<'_>> {
    let mut child = node;
    while let Some(parent) = child.parent() {
        if is_scope(parent) {
            return None;
        }
        if matches!(parent.kind_str(), "for_statement" | "while_statement")
            && is_field(parent, "body", child)
        {
            return Some(parent);
        }
        child = parent;
    }
    None
}

/// Whether `inner` lies within `outer` (byte ranges).
pub(crate) fn contains(outer: Node<'_>, inner: Node<'_>) -> bool {
    outer.start_byte() <= inner.start_byte() && inner.end_byte() <= outer.end_byte()
}

/// How a name occurs in a scope.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OccKind<'t> {
    /// `name = value` (with `value` when the target is the plain name), or `name: T = value`.
    Bind {
        value: Option<Node<'t>>,
        annotation: Option<Node<'t>>,
    },
    /// A parameter, with its annotation.
    Param { annotation: Option<Node<'t>> },
    /// A binding whose value is not known: loop targets, tuple unpacking, imports, `as` names,
    /// definitions.
    Opaque,
    /// `name += value`.
    AugAssign,
    /// `del name`.
    Del,
    /// `global name` or `nonlocal name`.
    Global,
    /// Any read.
    Load,
}

/// One occurrence of a name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Occ<'t> {
    pub(crate) node: Node<'t>,
    pub(crate) kind: OccKind<'t>,
    /// Whether the occurrence is inside a nested function, lambda or class.
    pub(crate) nested: bool,
}

/// Every occurrence of every name in one scope, in source order.
#[derive(Debug, Default)]
pub(crate) struct ScopeInfo<'t> {
    pub(crate) names: HashMap<&'t str, Vec<Occ<'t>>>,
}

impl<'t> ScopeInfo<'t> {
    fn build(scope: Node<'t>, src: &'t str) -> ScopeInfo<'t> {
        let mut info = ScopeInfo::default();
        let start: Vec<Node<'t>> = match scope.kind_str() {
            "module" => {
                let mut c = scope.walk();
                scope.named_children(&mut c).collect()
            }
            "function_definition" | "lambda" => {
                let mut v = Vec::new();
                if let Some(p) = scope.field("parameters") {
                    let mut c = p.walk();
                    for param in p.named_children(&mut c) {
                        if let Some(name) = parameter_name(param) {
                            let annotation = param.field("type");
                            info.push(src, name, OccKind::Param { annotation }, false);
                        }
                    }
                }
                if let Some(b) = scope.field("body") {
                    v.push(b);
                }
                v
            }
            _ => scope.field("body").into_iter().collect(),
        };
        for node in start {
            let parent = node.parent();
            info.walk(node, parent, src, false);
        }
        info
    }

    fn push(&mut self, src: &'t str, node: Node<'t>, kind: OccKind<'t>, nested: bool) {
        self.names
            .entry(&src[node.byte_range()])
            .or_default()
            .push(Occ { node, kind, nested });
    }

    /// Records the names under `node`; `parent` is passed down because `Node::parent` walks
    /// from the root each time (quadratic over a module).
    fn walk(&mut self, node: Node<'t>, parent: Option<Node<'t>>, src: &'t str, nested: bool) {
        match node.kind_str() {
            "identifier" => {
                if let Some(parent) = parent
                    && !is_attribute_name(node, parent)
                {
                    let kind = classify(node, parent);
                    self.push(src, node, kind, nested);
                }
            }
            "function_definition" | "class_definition" | "lambda" => {
                if let Some(name) = node.field("name") {
                    self.push(src, name, OccKind::Opaque, nested);
                }
                let name = node.field("name").map(|n| n.id());
                let mut c = node.walk();
                for child in node.named_children(&mut c) {
                    if Some(child.id()) != name {
                        self.walk(child, Some(node), src, true);
                    }
                }
            }
            "import_statement" | "import_from_statement" => {
                let mut c = node.walk();
                for name in node.children_by_field_name("name", &mut c) {
                    let target = match name.kind_str() {
                        "aliased_import" => name.field("alias"),
                        "dotted_name" => name.named_child(0),
                        _ => None,
                    };
                    if let Some(t) = target {
                        self.push(src, t, OccKind::Opaque, nested);
                    }
                }
            }
            "string" => {
                // Only interpolations hold names.
                let mut c = node.walk();
                for child in node.named_children(&mut c) {
                    if child.kind_str() == "interpolation" {
                        self.walk(child, Some(node), src, nested);
                    }
                }
            }
            "comment" => {}
            _ => {
                let mut c = node.walk();
                for child in node.named_children(&mut c) {
                    self.walk(child, Some(node), src, nested);
                }
            }
        }
    }

    /// Whether the scope binds `name` itself (so the name is local to it).
    pub(crate) fn binds(&self, name: &str) -> bool {
        self.names.get(name).is_some_and(|occs| {
            occs.iter().any(|o| {
                !o.nested
                    && matches!(
                        o.kind,
                        OccKind::Bind { .. }
                            | OccKind::Param { .. }
                            | OccKind::Opaque
                            | OccKind::AugAssign
                            | OccKind::Del
                    )
            })
        })
    }

    /// Whether the scope declares `global name` or `nonlocal name`.
    pub(crate) fn is_declared_global(&self, name: &str) -> bool {
        self.names.get(name).is_some_and(|occs| {
            occs.iter()
                .any(|o| !o.nested && matches!(o.kind, OccKind::Global))
        })
    }

    /// The occurrences of `name`.
    pub(crate) fn occurrences(&self, name: &str) -> &[Occ<'t>] {
        self.names.get(name).map_or(&[], Vec::as_slice)
    }
}

/// Classifies an identifier by where it stands.
fn classify<'t>(node: Node<'t>, parent: Node<'t>) -> OccKind<'t> {
    match parent.kind_str() {
        "assignment" if is_field(parent, "left", node) => OccKind::Bind {
            value: assignment_value(parent),
            annotation: parent.field("type"),
        },
        "augmented_assignment" if is_field(parent, "left", node) => OccKind::AugAssign,
        "for_statement" | "for_in_clause" if is_field(parent, "left", node) => OccKind::Opaque,
        "pattern_list" | "tuple_pattern" | "list_pattern" | "list_splat_pattern"
        | "as_pattern_target" => OccKind::Opaque,
        "global_statement" | "nonlocal_statement" => OccKind::Global,
        "delete_statement" => OccKind::Del,
        "expression_list"
            if parent
                .parent()
                .is_some_and(|g| g.kind_str() == "delete_statement") =>
        {
            OccKind::Del
        }
        "named_expression" if is_field(parent, "name", node) => OccKind::Opaque,
        _ => OccKind::Load,
    }
}

/// Whether an identifier is not a variable: the `attr` of `x.attr` or a keyword argument's name.
fn is_attribute_name(node: Node<'_>, p: Node<'_>) -> bool {
    (p.kind_str() == "attribute" && is_field(p, "attribute", node))
        || (p.kind_str() == "keyword_argument" && is_field(p, "name", node))
}
