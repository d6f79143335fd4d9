//! Selective parsing: a fast byte scan picks the top-level statements and class members that
//! can hold a finding, so that tree-sitter parses only those.
//!
//! Parsing is most of the cost of a lint run, and most statements of a code base cannot match
//! any rule. The scan splits a file into logical lines (tracking strings, comments, brackets
//! and continuations), blanks the contents of comments and of string literals other than
//! f-strings (so a docstring that mentions `open(path)` triggers nothing), finds in one pass
//! the triggers of the rules in the shapes the rules check (`f = open(p)`, `for x in open(p)`,
//! `open(p).read()`, `.pop(0)`, `y = x[:]` in a loop, `s += ...` of a name bound to a string,
//! a `cache` decorator, a comprehension handed to `sum`, ...), groups the lines into top-level
//! statements and class members, and keeps:
//! - every statement holding a trigger, and every import (to resolve names);
//! - for empty module-level containers, cached functions and other module-level names a kept
//!   statement binds, every statement that mentions them (so "nothing else removes from it"
//!   and "called in a loop elsewhere" see the whole module);
//! - the module-level bindings of names used as receivers (`q.pop(0)`, `s += ...`, `x[:]`);
//! - in a class, the header, the members holding a trigger, and every member that mentions
//!   an attribute those triggers need (`.q` for `self.q.pop(0)`) or a class-level container
//!   changed through an instance (ML107).
//!
//! A file where nothing but imports would be kept is not parsed at all. Kept statements are
//! parsed as one document with tree-sitter's included ranges, so positions stay those of the
//! file. Whenever the scan is unsure (an unterminated string or bracket, a Python 2 `print`
//! statement, a kept part that does not parse) the caller parses everything.

use std::ops::Range;

/// Resource openers of ML104 (also as `io.open`, `gzip.open`, `socket.socket`, ...), besides
/// the `...TemporaryFile` family.
const OPENERS: &[&str] = &["open", "socket", "create_connection", "ZipFile", "FileIO"];

/// The byte ranges to parse, or `None` to parse the whole file.
pub(crate) fn select(text: &str) -> Option<Vec<Range<usize>>> {
    let bytes = text.as_bytes();
    let (lines, code) = logical_lines(bytes)?;
    // From here on, only code is searched: string contents and comments are blank.
    let text = code.as_str();
    let top = statements(bytes, &lines, 0, bytes.len(), 0);
    if top.is_empty() {
        return Some(Vec::new());
    }
    let triggers = Triggers::new(text, &lines);
    let interesting = |r: &Range<usize>| triggers.any_in(r.clone(), false);
    let mut keep = vec![Keep::No; top.len()];
    let mut follow: Vec<&str> = Vec::new();
    let mut receivers: Vec<&str> = Vec::new();
    // Whether some statement can hold a finding (imports and the bindings of receivers are
    // kept only to resolve names; alone, they need no parse).
    let mut any_finding = false;
    for (i, stmt) in top.iter().enumerate() {
        let chunk = &text[stmt.clone()];
        let head = skip_decorators(chunk);
        if head.starts_with("import ") || head.starts_with("from ") {
            keep[i] = Keep::All;
            continue;
        }
        if let Some(name) = assigned_name(chunk) {
            if is_empty_container_value(chunk) && !name.starts_with("__") && grows(text, name) {
                // ML106 looks at every use of an empty module-level container that something
                // adds to.
                follow.push(name);
                keep[i] = Keep::All;
                continue;
            }
            if interesting(stmt) {
                follow.push(name);
                keep[i] = Keep::All;
                any_finding = true;
                collect_receivers(chunk, &mut receivers);
            }
            continue;
        }
        if head.starts_with("def ") || head.starts_with("async def ") {
            if chunk.len() != head.len()
                && chunk[..chunk.len() - head.len()].contains("cache")
                && let Some(name) = def_name(head)
            {
                follow.push(name);
            }
            if interesting(stmt) {
                keep[i] = Keep::All;
                any_finding = true;
                collect_receivers(chunk, &mut receivers);
            }
            continue;
        }
        if head.starts_with("class ") {
            keep[i] = class_keep(&triggers, &lines, stmt.clone(), &mut receivers);
            any_finding |= keep[i] != Keep::No;
            continue;
        }
        if triggers.any_in(stmt.clone(), true) {
            keep[i] = Keep::All;
            any_finding = true;
            collect_receivers(chunk, &mut receivers);
            // Module-level names bound in it: the rules look at all their uses.
            follow.extend(bound_names(chunk));
        } else if chunk.contains("import ") {
            // `try: import x` / `if TYPE_CHECKING: import y`: names the rules resolve.
            keep[i] = Keep::All;
        }
    }
    // Names whose every mention matters, and module-level bindings of receivers.
    follow.sort_unstable();
    follow.dedup();
    for name in &follow {
        for (pos, _) in text.match_indices(name) {
            if !text[..pos].ends_with(is_ident_char)
                && !text[pos + name.len()..].starts_with(is_ident_char)
            {
                let i = top.partition_point(|s| s.end <= pos);
                if let Some(k) = keep.get_mut(i) {
                    // A mention outside the statements kept so far (a use of an empty
                    // container in a function, a call of a cached function) may be a finding.
                    any_finding |= *k == Keep::No;
                    *k = Keep::All;
                }
            }
        }
    }
    for (i, stmt) in top.iter().enumerate() {
        if keep[i] != Keep::All
            && assigned_name(&text[stmt.clone()]).is_some_and(|n| receivers.contains(&n))
        {
            keep[i] = Keep::All;
        }
    }
    if !any_finding {
        return Some(Vec::new());
    }
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let mut total = 0;
    for (stmt, k) in top.iter().zip(&keep) {
        let parts: Vec<Range<usize>> = match k {
            Keep::No => continue,
            Keep::All => vec![stmt.clone()],
            Keep::Parts(parts) => parts.clone(),
        };
        for r in parts {
            total += r.len();
            match ranges.last_mut() {
                Some(last) if last.end == r.start => last.end = r.end,
                _ => ranges.push(r),
            }
        }
    }
    // Not worth it when most of the file is kept.
    if total * 4 > text.len() * 3 {
        return None;
    }
    Some(ranges)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Keep {
    No,
    All,
    Parts(Vec<Range<usize>>),
}

/// What to keep of a class: its header and some members, or nothing.
///
/// Kept members: those holding a trigger; for an attribute that a trigger needs to know is a
/// list (`self.q.pop(0)`, `list(self.items)`), every member that mentions `.q` or binds `q`
/// in the class body; for a class-level container changed through an instance
/// (`self.items.append(x)`, ML107), its assignment and every member that mentions `.items`.
fn class_keep<'t>(
    triggers: &Triggers<'t>,
    lines: &[(usize, usize)],
    stmt: Range<usize>,
    receivers: &mut Vec<&'t str>,
) -> Keep {
    let text = triggers.code;
    let bytes = text.as_bytes();
    let chunk = &text[stmt.clone()];
    // The body's indentation: the first logical line after the header.
    let header_start = stmt.start + (chunk.len() - skip_decorators(chunk).len());
    let Some(&(first, indent)) = lines
        .iter()
        .find(|(pos, ind)| *pos > header_start && *pos < stmt.end && *ind > 0)
    else {
        return if triggers.any_in(stmt, false) {
            Keep::All
        } else {
            Keep::No
        };
    };
    let members = statements(bytes, lines, first, stmt.end, indent);
    // Attributes whose every mention matters: class-level containers changed through an
    // instance (ML107), and attributes that triggers need to know are lists.
    let mut attrs: Vec<&str> = members
        .iter()
        .filter_map(|m| {
            let head = skip_decorators(text[m.clone()].trim_start());
            assigned_name(head).filter(|name| {
                is_container_value(head)
                    && !name.starts_with("__")
                    && changed_as_attribute(chunk, name)
            })
        })
        .collect();
    let mut kept = vec![false; members.len()];
    for (k, m) in members.iter().enumerate() {
        let member = &text[m.clone()];
        if nested_class_container(member) {
            kept[k] = true;
            collect_receivers(member, receivers);
        } else if triggers.any_in(m.clone(), false) {
            kept[k] = true;
            collect_receivers(member, receivers);
            attrs.extend(class_receivers(member));
        }
    }
    for (k, m) in members.iter().enumerate() {
        if kept[k] || attrs.is_empty() {
            continue;
        }
        let member = &text[m.clone()];
        let head = skip_decorators(member.trim_start());
        kept[k] = assigned_name(head).is_some_and(|n| attrs.contains(&n))
            || attrs.iter().any(|a| mentions_attribute(member, a));
    }
    if !kept.contains(&true) {
        return Keep::No;
    }
    let mut parts: Vec<Range<usize>> = Vec::with_capacity(4);
    parts.push(stmt.start..first);
    parts.extend(
        members
            .iter()
            .zip(&kept)
            .filter(|(_, k)| **k)
            .map(|(m, _)| m.clone()),
    );
    Keep::Parts(parts)
}

/// The attributes (`q` of `self.q`) that a member's triggers need to know are lists: the
/// receivers of `.pop(0)` and `.insert(0, ...)`, and the copied values of `x[:]` and `list(x)`.
fn class_receivers(member: &str) -> impl Iterator<Item = &str> + '_ {
    let queues = [".pop(", ".insert("].into_iter().flat_map(move |pat| {
        member
            .match_indices(pat)
            .filter(move |(pos, m)| member[pos + m.len()..].trim_start().starts_with('0'))
            .map(move |(pos, _)| &member[dotted_start(member, pos)..pos])
    });
    queues
        .chain(list_copy_receivers(member))
        .filter_map(|r| r.rsplit_once('.').map(|(_, attr)| attr))
        .filter(|attr| !attr.is_empty())
}

/// Whether `text` mentions `.name` (an attribute `name` of something).
fn mentions_attribute(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(pos, _)| {
        text[..pos].ends_with('.') && !text[pos + name.len()..].starts_with(is_ident_char)
    })
}

/// Whether `text` may change attribute `name` of something: `.name` followed by a changing
/// method call, an item access or an augmented assignment (ML107's mutations through `self`).
fn changed_as_attribute(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(pos, _)| {
        text[..pos].ends_with('.')
            && changed_after(&text[pos + name.len()..], crate::rules::is_mutating_method)
    })
}

/// Whether `name` (a module-level name) is added to somewhere in `text`: a growing method
/// call or an item access (ML106).
fn grows(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(pos, _)| {
        !text[..pos].ends_with(is_ident_char)
            && changed_after(&text[pos + name.len()..], |m| {
                crate::rules::GROWTH_METHODS.contains(&m)
            })
    })
}

/// Whether the text after a name starts a change of it: `.method` for a method that
/// `changes`, an item access `[`, or an augmented assignment (also after closing parentheses:
/// `(x).append`).
fn changed_after(rest: &str, changes: impl Fn(&str) -> bool) -> bool {
    if rest.starts_with(is_ident_char) {
        return false;
    }
    let rest = rest.trim_start_matches([' ', '\t', ')']);
    if let Some(call) = rest.strip_prefix('.') {
        let call = call.trim_start_matches([' ', '\t']);
        let end = call.find(|c: char| !is_ident_char(c)).unwrap_or(call.len());
        return changes(&call[..end]);
    }
    let op_end = rest
        .find(|c: char| !"+-*/%&|^@<>".contains(c))
        .unwrap_or(rest.len());
    rest.starts_with('[') || (op_end > 0 && rest[op_end..].starts_with('='))
}

/// What a trigger needs besides its own text before it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Nothing: the statement can hold a finding.
    Nothing,
    /// A `for` or `while` keyword in the statement (the copies of ML110).
    Loop,
    /// A loop, and the name before `+=` bound to a string literal (ML108).
    StringConcat,
}

/// The trigger positions of one file, found in one pass over its code.
///
/// Each trigger is the text shape a rule needs, found in code only (strings and comments are
/// blank): a trigger found does not mean a finding, but a finding always has its trigger.
struct Triggers<'t> {
    code: &'t str,
    /// Ascending positions, with what each needs.
    found: Vec<(usize, Need)>,
    /// Positions of `class` keywords (nested classes may hold ML107's containers).
    classes: Vec<usize>,
}

impl<'t> Triggers<'t> {
    fn new(code: &'t str, lines: &[(usize, usize)]) -> Triggers<'t> {
        /// The bytes that can start a trigger.
        const STARTS: [bool; 256] = {
            let mut t = [false; 256];
            t[b'(' as usize] = true;
            t[b'[' as usize] = true;
            t[b'+' as usize] = true;
            t[b'@' as usize] = true;
            t
        };
        let bytes = code.as_bytes();
        let mut found = Vec::new();
        let mut i = 0;
        while let Some(skip) = bytes[i..].iter().position(|b| STARTS[usize::from(*b)]) {
            i += skip;
            let need = match bytes[i] {
                b'(' => call_trigger(code, i),
                b'[' => bracket_trigger(code, i),
                b'+' if bytes.get(i + 1) == Some(&b'=') => Some(Need::StringConcat),
                b'@' => {
                    // A decorator line naming a cache (ML102, ML103).
                    let line_start = code[..i].rfind('\n').map_or(0, |p| p + 1);
                    let line_end = code[i..].find('\n').map_or(code.len(), |p| i + p);
                    (code[line_start..i].trim().is_empty() && code[i..line_end].contains("cache"))
                        .then_some(Need::Nothing)
                }
                _ => None,
            };
            if let Some(need) = need {
                found.push((i, need));
            }
            i += 1;
        }
        let classes = lines
            .iter()
            .map(|(start, indent)| start + indent)
            .filter(|at| code[*at..].starts_with("class "))
            .collect();
        Triggers {
            code,
            found,
            classes,
        }
    }

    /// Whether the statement at `range` can hold a finding. In a `script` statement
    /// (module-level code other than definitions) the string that `+=` extends may be bound
    /// in another statement, so the whole file is searched for its binding.
    fn any_in(&self, range: Range<usize>, script: bool) -> bool {
        let chunk = &self.code[range.clone()];
        let first = self.found.partition_point(|(p, _)| *p < range.start);
        let mut has_loop_cached: Option<bool> = None;
        let mut in_loop = || *has_loop_cached.get_or_insert_with(|| has_loop(chunk));
        for &(pos, need) in self.found[first..]
            .iter()
            .take_while(|(p, _)| *p < range.end)
        {
            let hit = match need {
                Need::Nothing => true,
                Need::Loop => in_loop(),
                Need::StringConcat => {
                    let scope = if script { self.code } else { chunk };
                    in_loop()
                        && concat_target(chunk, pos - range.start)
                            .is_some_and(|name| binds_string(scope, name))
                }
            };
            if hit {
                return true;
            }
        }
        let first_class = self.classes.partition_point(|p| *p < range.start);
        self.classes
            .get(first_class)
            .is_some_and(|p| *p < range.end)
            && nested_class_container(chunk)
    }
}

/// The trigger of a call whose `(` is at `open`, by the name before it.
fn call_trigger(code: &str, open: usize) -> Option<Need> {
    let bytes = code.as_bytes();
    let mut start = open;
    while start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
        start -= 1;
    }
    let name = &code[start..open];
    let after = &code[open + 1..];
    let method = code[..start].ends_with('.');
    match name {
        // ML101
        "pop" | "insert" if method && after.trim_start().starts_with('0') => Some(Need::Nothing),
        // ML105
        "readlines" => Some(Need::Nothing),
        "read" if method && after.starts_with(").split") => Some(Need::Nothing),
        // ML109
        "sum" | "any" | "all" | "min" | "max" if comprehension_at(code, open + 1) => {
            Some(Need::Nothing)
        }
        // ML109 (`for x in list(...)`) and ML110 (`y = list(x)`)
        "list" => {
            if in_before(code, start) {
                Some(Need::Nothing)
            } else if assigned_before(code, start) && copied_name(after).is_some() {
                Some(Need::Loop)
            } else {
                None
            }
        }
        // ML110
        "deepcopy" | "copy" => {
            let shape = name == "deepcopy"
                || code[..start].ends_with("copy.")
                || (method && after.starts_with(')'));
            (shape && assigned_before(code, dotted_start(code, start))).then_some(Need::Loop)
        }
        // ML104
        _ if OPENERS.contains(&name) || name.ends_with("TemporaryFile") => {
            let expr = dotted_start(code, start);
            (assigned_before(code, expr) || in_before(code, expr) || chained_after(code, open))
                .then_some(Need::Nothing)
        }
        _ => None,
    }
}

/// The trigger of a `[` at `open`: `y = x[:]` (ML110) or `in [... for ...]` (ML109).
fn bracket_trigger(code: &str, open: usize) -> Option<Need> {
    if code[open..].starts_with("[:]") {
        let start = dotted_start(code, open);
        return (start < open && assigned_before(code, start)).then_some(Need::Loop);
    }
    (in_before(code, open) && comprehension_at(code, open)).then_some(Need::Nothing)
}

/// For `list(x)` (given the text after `(`), the copied name or attribute `x`.
fn copied_name(after: &str) -> Option<&str> {
    let arg = after.trim_start_matches([' ', '\t']);
    let end = arg
        .find(|c: char| !(is_ident_char(c) || c == '.'))
        .unwrap_or(arg.len());
    (end > 0 && arg[end..].trim_start_matches([' ', '\t']).starts_with(')')).then(|| &arg[..end])
}

/// Whether `chunk` has a `for` or `while` keyword.
fn has_loop(chunk: &str) -> bool {
    contains_word(chunk, "for") || contains_word(chunk, "while")
}

/// The copied names or attributes (`x`, `self.x`) of the `x[:]` and `list(x)` that
/// [`list_copy_trigger`] finds.
fn list_copy_receivers(chunk: &str) -> impl Iterator<Item = &str> + '_ {
    let slices = chunk.match_indices("[:]").filter_map(|(pos, _)| {
        let start = dotted_start(chunk, pos);
        (start < pos && assigned_before(chunk, start)).then(|| &chunk[start..pos])
    });
    let lists = chunk.match_indices("list(").filter_map(|(pos, m)| {
        if chunk[..pos].chars().next_back().is_some_and(is_ident_char)
            || !assigned_before(chunk, pos)
        {
            return None;
        }
        copied_name(&chunk[pos + m.len()..])
    });
    slices.chain(lists)
}

/// For the `+=` at `pos` of `chunk`, the plain name it extends (not `x.attr` or `x[i]`).
fn concat_target(chunk: &str, pos: usize) -> Option<&str> {
    let before = chunk[..pos].trim_end_matches([' ', '\t']);
    let name = word_before(before)?;
    let dotted = before[..before.len() - name.len()].ends_with('.');
    (!dotted).then_some(name)
}

/// Whether `text` has `name = <string literal>` (also annotated or chained).
fn binds_string(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(pos, _)| {
        if text[..pos].chars().next_back().is_some_and(is_ident_char)
            || text[pos + name.len()..].starts_with(is_ident_char)
        {
            return false;
        }
        let rest = &text[pos + name.len()..];
        let line = &rest[..rest.find('\n').unwrap_or(rest.len())];
        // The value after the last plain `=` of the line (the end of a chain).
        let Some(eq) = plain_assignments(line).last() else {
            return false;
        };
        let value = line[eq + 1..].trim_start_matches([' ', '\t', '(']);
        let value = value.trim_start_matches(['r', 'b', 'f', 'u', 'R', 'B', 'F', 'U']);
        value.starts_with(['\'', '"']) || value.is_empty()
    })
}

/// The positions of `=` signs in `line` that assign (not `==`, `<=`, `+=`, `:=`, ...).
fn plain_assignments(line: &str) -> impl Iterator<Item = usize> + '_ {
    let bytes = line.as_bytes();
    bytes.iter().enumerate().filter_map(move |(i, b)| {
        let prev = i.checked_sub(1).map(|p| bytes[p]);
        let next = bytes.get(i + 1);
        (*b == b'=' && next != Some(&b'=') && !prev.is_some_and(|p| b"=!<>+-*/%&|^@:".contains(&p)))
            .then_some(i)
    })
}

/// The start of the dotted name (`a.b.c`) that ends at `pos`.
fn dotted_start(text: &str, pos: usize) -> usize {
    let bytes = text.as_bytes();
    let mut start = pos;
    while start > 0
        && (bytes[start - 1].is_ascii_alphanumeric()
            || matches!(bytes[start - 1], b'_' | b'.')
            || bytes[start - 1] >= 0x80)
    {
        start -= 1;
    }
    start
}

/// Whether the expression starting at `start` is the value of an assignment (`x = `, also
/// through opening parentheses and line continuations).
fn assigned_before(text: &str, start: usize) -> bool {
    let before = text[..start].trim_end_matches([' ', '\t', '(', '\n', '\r', '\\']);
    before
        .strip_suffix('=')
        .is_some_and(|rest| !rest.ends_with(|c: char| "=!<>+-*/%&|^@:".contains(c)))
}

/// Whether the expression starting at `start` follows the keyword `in` (a loop's iterable).
fn in_before(text: &str, start: usize) -> bool {
    let before = text[..start].trim_end_matches([' ', '\t', '(', '\n', '\r', '\\']);
    before.ends_with("in")
        && !before[..before.len() - 2]
            .chars()
            .next_back()
            .is_some_and(is_ident_char)
}

/// Whether the bracket opened at `open` is closed and then followed by `.` (a method call on
/// the result). Unsure (no closing bracket) counts as yes.
fn chained_after(text: &str, open: usize) -> bool {
    match closing_bracket(text, open) {
        Some(close) => text[close + 1..]
            .trim_start_matches([' ', '\t', ')', '\n', '\r', '\\'])
            .starts_with('.'),
        None => true,
    }
}

/// The position of the bracket closing the one at `open`.
fn closing_bracket(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in text.as_bytes()[open..].iter().enumerate() {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether a list comprehension starts at `pos` (after white space): `[... for ...]`.
fn comprehension_at(text: &str, pos: usize) -> bool {
    let rest = &text[pos..];
    let trimmed = rest.trim_start();
    if !trimmed.starts_with('[') {
        return false;
    }
    let open = pos + (rest.len() - trimmed.len());
    match closing_bracket(text, open) {
        Some(close) => contains_word(&text[open..close], "for"),
        None => true,
    }
}

/// Whether `chunk` defines a class (nested in it) with a class-level container (ML107): a
/// container assignment at the first indentation of a `class` body.
fn nested_class_container(chunk: &str) -> bool {
    if !chunk.contains("class ") {
        return false;
    }
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut class_indent: Option<usize> = None;
    let mut body_indent: Option<usize> = None;
    for line in chunk.lines() {
        let code = line.trim_start();
        if code.is_empty() || code.starts_with('#') {
            continue;
        }
        let ind = indent(line);
        if let Some(ci) = class_indent {
            if ind <= ci {
                class_indent = None;
                body_indent = None;
            } else {
                let bi = *body_indent.get_or_insert(ind);
                if ind == bi && assigned_name(code).is_some() && is_container_value(code) {
                    return true;
                }
            }
        }
        if code.starts_with("class ") {
            class_indent = Some(ind);
            body_indent = None;
        }
    }
    false
}

/// The names that `chunk` binds at the start of its lines: `x = ...`, `x: T = ...`,
/// `for x, y in ...`, `... as x`, `(x := ...)`.
fn bound_names(chunk: &str) -> Vec<&str> {
    let mut names = Vec::new();
    for line in chunk.lines() {
        let code = line.trim_start();
        names.extend(assigned_name(code));
        if let Some(targets) = code
            .strip_prefix("for ")
            .or_else(|| code.strip_prefix("async for "))
        {
            let end = targets.find(" in ").unwrap_or(targets.len());
            names.extend(
                targets[..end]
                    .split(|c: char| !is_ident_char(c))
                    .filter(|w| !w.is_empty()),
            );
        }
        for (pos, m) in code.match_indices(" as ") {
            let rest = &code[pos + m.len()..];
            let end = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
            names.push(&rest[..end]);
        }
        for (pos, _) in code.match_indices(":=") {
            names.extend(word_before(&code[..pos]));
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

/// Names right before `.pop(0`, `.insert(0`, `[:]`, ` +=`, and inside `list(...)`.
fn collect_receivers<'t>(chunk: &'t str, out: &mut Vec<&'t str>) {
    for pat in [".pop(0", ".insert(0", "[:]", "+="] {
        for (pos, _) in chunk.match_indices(pat) {
            if let Some(name) = word_before(&chunk[..pos]) {
                out.push(name);
            }
        }
    }
    for (pos, m) in chunk.match_indices("list(") {
        let rest = &chunk[pos + m.len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end > 0 && rest[end..].starts_with(')') {
            out.push(&rest[..end]);
        }
    }
}

fn word_before(text: &str) -> Option<&str> {
    let trimmed = text.trim_end();
    let start = trimmed
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let word = &trimmed[start..];
    (!word.is_empty() && !word.starts_with(|c: char| c.is_ascii_digit())).then_some(word)
}

/// Whether `text` contains `word` with identifier boundaries on both sides.
pub(crate) fn contains_word(text: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    text.match_indices(word).any(|(pos, _)| {
        let before = text[..pos].chars().next_back();
        let after = text[pos + word.len()..].chars().next();
        !before.is_some_and(is_ident_char) && !after.is_some_and(is_ident_char)
    })
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// For `name = ...` / `name: T = ...` (not `==`), the name.
fn assigned_name(chunk: &str) -> Option<&str> {
    let end = chunk
        .find(|c: char| !is_ident_char(c))
        .unwrap_or(chunk.len());
    if end == 0 || chunk.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let name = &chunk[..end];
    if matches!(
        name,
        "if" | "for"
            | "while"
            | "with"
            | "try"
            | "def"
            | "class"
            | "return"
            | "async"
            | "match"
            | "del"
            | "global"
            | "print"
            | "assert"
            | "raise"
    ) {
        return None;
    }
    let rest = chunk[end..].trim_start_matches([' ', '\t']);
    let rest = match rest.strip_prefix(':') {
        Some(annotated) => {
            let line_end = annotated.find('\n').unwrap_or(annotated.len());
            let eq = annotated[..line_end].find('=')?;
            &annotated[eq..]
        }
        None => rest,
    };
    (rest.starts_with('=') && !rest.starts_with("==")).then_some(name)
}

/// Whether the value assigned in `chunk` is an empty container (what ML106 follows):
/// `[]`, `{}`, `list()`, `set()`, `dict()`, `OrderedDict()`, `Counter()`, `deque()`, or a
/// `defaultdict(...)`.
fn is_empty_container_value(chunk: &str) -> bool {
    let Some(eq) = chunk.find('=') else {
        return false;
    };
    let value = chunk[eq + 1..].trim_start();
    let value = value.strip_prefix("collections.").unwrap_or(value);
    let empty_after = |open: &str| {
        value.strip_prefix(open).is_some_and(|rest| {
            rest.trim_start()
                .starts_with(match open.as_bytes()[open.len() - 1] {
                    b'[' => ']',
                    b'{' => '}',
                    _ => ')',
                })
        })
    };
    value.starts_with("defaultdict(")
        || [
            "[",
            "{",
            "set(",
            "dict(",
            "list(",
            "OrderedDict(",
            "Counter(",
            "deque(",
        ]
        .iter()
        .any(|open| empty_after(open))
}

/// Whether the value assigned in `chunk` is an empty or mutable container constructor.
fn is_container_value(chunk: &str) -> bool {
    let Some(eq) = chunk.find('=') else {
        return false;
    };
    let value = chunk[eq + 1..].trim_start();
    [
        "[",
        "{",
        "set(",
        "dict(",
        "list(",
        "defaultdict(",
        "OrderedDict(",
        "Counter(",
        "deque(",
        "collections.",
    ]
    .iter()
    .any(|p| value.starts_with(p))
}

fn def_name(head: &str) -> Option<&str> {
    let rest = head
        .strip_prefix("async ")
        .unwrap_or(head)
        .strip_prefix("def ")?
        .trim_start();
    let end = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// Skips decorator lines (`@...`) at the start of a statement.
fn skip_decorators(chunk: &str) -> &str {
    let mut rest = chunk;
    while rest.starts_with('@') {
        match rest.find('\n') {
            Some(nl) => rest = rest[nl + 1..].trim_start(),
            None => return "",
        }
    }
    rest
}

/// Groups logical lines at exactly `indent`, within `lo..hi`, into statements: decorators join
/// the definition after them, `else`/`elif`/`except`/`finally` join the statement before.
fn statements(
    bytes: &[u8],
    lines: &[(usize, usize)],
    lo: usize,
    hi: usize,
    indent: usize,
) -> Vec<Range<usize>> {
    let starts: Vec<usize> = lines
        .iter()
        .filter(|(pos, ind)| *pos >= lo && *pos < hi && *ind == indent)
        .map(|(pos, _)| *pos)
        .collect();
    let mut out: Vec<Range<usize>> = Vec::new();
    let mut pending_decorator = false;
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(hi);
        let code = &bytes[start + indent..end];
        let continues = ["else", "elif", "except", "finally"].iter().any(|kw| {
            code.starts_with(kw.as_bytes())
                && code
                    .get(kw.len())
                    .is_some_and(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
        });
        if (pending_decorator || continues) && !out.is_empty() {
            if let Some(last) = out.last_mut() {
                last.end = end;
            }
        } else {
            out.push(start..end);
        }
        pending_decorator = code.starts_with(b"@");
    }
    out
}

/// The start offset and indentation of every logical line holding code, and the code with
/// the contents of comments and of string literals other than f-strings blanked out (same
/// length and line breaks, quotes kept), so that text searches see only code. `None` when the
/// scan is unsure (unterminated string or bracket, Python 2 statements).
fn logical_lines(bytes: &[u8]) -> Option<(Vec<(usize, usize)>, String)> {
    let n = bytes.len();
    let mut out = Vec::with_capacity(n / 40);
    let mut code = bytes.to_vec();
    // Blanks `code[from..to]`, keeping line breaks.
    let blank = |code: &mut Vec<u8>, from: usize, to: usize| {
        for b in &mut code[from..to.min(n)] {
            if *b != b'\n' && *b != b'\r' {
                *b = b' ';
            }
        }
    };
    let mut depth: usize = 0;
    let mut i = 0;
    let mut line_start = Some(0);
    while i < n {
        if let Some(start) = line_start.take() {
            let mut j = start;
            while j < n && (bytes[j] == b' ' || bytes[j] == b'\t' || bytes[j] == b'\x0c') {
                j += 1;
            }
            if j < n && !matches!(bytes[j], b'\n' | b'\r' | b'#') {
                if python2_statement(&bytes[j..]) {
                    return None;
                }
                out.push((start, j - start));
            }
            i = j;
            continue;
        }
        let c = bytes[i];
        match c {
            b'\'' | b'"' => {
                if bytes[i..].starts_with(b"'''") || bytes[i..].starts_with(b"\"\"\"") {
                    let quote = &bytes[i..i + 3];
                    let mut j = i + 3;
                    loop {
                        if j + 3 > n {
                            return None; // unterminated
                        }
                        if bytes[j] == b'\\' {
                            j += 2;
                            continue;
                        }
                        if &bytes[j..j + 3] == quote {
                            break;
                        }
                        j += 1;
                    }
                    if !is_f_string(bytes, i) {
                        blank(&mut code, i + 3, j);
                    }
                    i = j + 3;
                } else {
                    let mut j = i + 1;
                    while j < n && bytes[j] != c && bytes[j] != b'\n' {
                        if bytes[j] == b'\\' {
                            j += 1;
                        }
                        j += 1;
                    }
                    if !is_f_string(bytes, i) {
                        blank(&mut code, i + 1, j);
                    }
                    i = j + 1;
                }
            }
            b'#' => {
                let start = i;
                while i < n && bytes[i] != b'\n' {
                    i += 1;
                }
                blank(&mut code, start, i);
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                i += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'\\' if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            b'\\' if bytes[i + 1..].starts_with(b"\r\n") => i += 3,
            b'\n' => {
                i += 1;
                if depth == 0 {
                    line_start = Some(i);
                }
            }
            _ => i += 1,
        }
    }
    if depth != 0 {
        return None;
    }
    // A line that cannot be valid Python: parse everything, so that tree-sitter reports the
    // error even where nothing could hold a finding (this check itself reports nothing).
    for (k, &(start, indent)) in out.iter().enumerate() {
        let end = out.get(k + 1).map_or(n, |next| next.0);
        if looks_malformed(&code[start + indent..end]) {
            return None;
        }
    }
    // Only whole characters were blanked (string contents and comments end on ASCII bytes).
    let code = String::from_utf8(code).ok()?;
    Some((out, code))
}

/// Whether one logical line of blanked code (strings and comments emptied) is certainly not
/// valid Python in a cheap-to-see way: a compound statement header (`if`, `def`, `class`, ...)
/// with no `:` outside brackets, or a line ending in a binary operator. Cheap and one-sided:
/// a `true` only costs a full parse.
fn looks_malformed(line: &[u8]) -> bool {
    const HEADERS: &[&[u8]] = &[
        b"if", b"elif", b"else", b"for", b"while", b"try", b"except", b"finally", b"with", b"def",
        b"class", b"async",
    ];
    let end = line
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c'))
        .map_or(0, |i| i + 1);
    let line = &line[..end];
    let Some(&last) = line.last() else {
        return false;
    };
    let word_end = line
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .unwrap_or(line.len());
    let word = &line[..word_end];
    if HEADERS.contains(&word) && word_end < line.len() {
        let mut depth = 0usize;
        let colon = line.iter().any(|b| match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                false
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                false
            }
            b':' => depth == 0,
            _ => false,
        });
        if !colon {
            return true;
        }
    }
    match last {
        b'+' | b'-' | b'/' | b'%' | b'&' | b'|' | b'^' | b'=' | b'<' | b'>' | b'@' | b'~' => true,
        // `from m import *` ends in a star.
        b'*' => word != b"from",
        _ => false,
    }
}

/// Whether the string literal whose quote is at `quote` has an `f` prefix (its
/// interpolations hold code, so it is not blanked).
fn is_f_string(bytes: &[u8], quote: usize) -> bool {
    bytes[..quote]
        .iter()
        .rev()
        .take(3)
        .take_while(|b| b.is_ascii_alphabetic())
        .any(|b| matches!(b, b'f' | b'F'))
}

/// Whether a logical line is a Python 2 `print x` or `exec code` statement.
fn python2_statement(line: &[u8]) -> bool {
    for kw in [&b"print"[..], b"exec"] {
        if let Some(rest) = line.strip_prefix(kw)
            && rest.first().is_some_and(|c| *c == b' ' || *c == b'\t')
        {
            let next = rest.iter().find(|c| **c != b' ' && **c != b'\t');
            return next
                .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'"' | b'\'' | b'_'));
        }
    }
    false
}

/// Whether `name` is bound (assigned, defined, imported, a parameter or loop target) anywhere
/// in `text`, judged from the text alone; errs towards "bound".
pub(crate) fn text_binds(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(pos, _)| {
        let before = &text[..pos];
        let after = &text[pos + name.len()..];
        if before.chars().next_back().is_some_and(is_ident_char)
            || after.chars().next().is_some_and(is_ident_char)
        {
            return false;
        }
        let line = before[before.rfind('\n').map_or(0, |i| i + 1)..].trim_start();
        if line.contains('#') {
            return false; // in a comment, most likely
        }
        let next = after.trim_start_matches([' ', '\t']);
        if next.starts_with('=') && !next.starts_with("==") {
            return true;
        }
        let prev_word = word_before(before).filter(|_| before.trim_end().len() < before.len());
        let ends_target = next.is_empty() || next.starts_with([':', ',', ')', '\n', '\r']);
        match prev_word {
            Some("def" | "class")
                if (line.starts_with("def ")
                    || line.starts_with("class ")
                    || line.starts_with("async def ")) =>
            {
                return true;
            }
            Some("for") if next.starts_with("in ") || next.starts_with(',') => return true,
            Some("as" | "lambda") if ends_target => return true,
            Some("global" | "nonlocal")
                if line.starts_with("global ") || line.starts_with("nonlocal ") =>
            {
                return true;
            }
            _ => {}
        }
        // `import a, N` / `from m import a, N`: only names between `import` and the name.
        let is_import_line =
            line.starts_with("import ") || line.starts_with("from ") && line.contains(" import ");
        if is_import_line
            && line.rfind("import ").is_some_and(|i| {
                line[i + 7..]
                    .chars()
                    .all(|c| is_ident_char(c) || " .,(".contains(c))
            })
        {
            return true;
        }
        // Target lists: `a, N = ...`, `(a, N) = ...`, `for a, N in ...`.
        let rest_of_line = &after[..after.find('\n').unwrap_or(after.len())];
        if !before.ends_with('.') {
            let loop_target = line
                .strip_prefix("for ")
                .or_else(|| line.strip_prefix("async for "));
            let head = loop_target.unwrap_or(line);
            let tail_end = match loop_target {
                Some(_) => rest_of_line.find(" in "),
                None => plain_assignments(rest_of_line).next(),
            };
            let head_ok = is_target_list(head) && !head.trim_end().ends_with(is_ident_char);
            if tail_end.is_some_and(|end| head_ok && is_target_list(&rest_of_line[..end])) {
                return true;
            }
        }
        next.starts_with([',', ')', ':'])
            && ["def ", "async def ", "lambda", "for "]
                .iter()
                .any(|p| line.starts_with(p))
    })
}

/// Whether `text` holds only names and the punctuation of a target list (`a, (b, *c`), with
/// no call (`f(`) and no keyword before a name (`with x`).
fn is_target_list(text: &str) -> bool {
    let mut prev_ident = false;
    let mut word_then_space = false;
    for c in text.chars() {
        if is_ident_char(c) {
            if word_then_space {
                return false; // `with x`, `print x`: not a target list
            }
            prev_ident = true;
            continue;
        }
        if !" \t,()[]*".contains(c) || (c == '(' && prev_ident) {
            return false;
        }
        word_then_space = (prev_ident || word_then_space) && (c == ' ' || c == '\t');
        prev_ident = false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(text: &str) -> Option<Vec<&str>> {
        select(text).map(|rs| rs.into_iter().map(|r| &text[r]).collect())
    }

    #[test]
    fn lines_that_cannot_be_python_send_the_file_to_a_full_parse() {
        for bad in [
            "x = 1 +\n",
            "class A:\n    def f(self)\n        return 1\n",
            "if x\n    pass\n",
            "for i in d[1:2]\n    pass\n",
            "def f(x: int) -> int\n    return x\n",
            "y = \\\n    2 *\n",
        ] {
            assert_eq!(select(bad), None, "{bad:?}");
        }
        for good in [
            "from m import *\nx = 1\n",
            "if x: y = 1\nelse:  # a comment -\n    pass\n",
            "def f(x=lambda: 1) -> int:\n    return 1.\n",
            "s = 'a +'\nt = f\"{x:>3}\"\nmatch x:\n    case 1:\n        pass\n",
            "x = (1 +\n     2)\n@decorator\nclass A(B): pass\n",
        ] {
            assert!(select(good).is_some(), "{good:?}");
        }
    }

    #[test]
    fn keeps_imports_and_triggered_statements_only() {
        let text = "import os\n\ndef a():\n    return 1\n\ndef b(q):\n    while q:\n        q.pop(0)\n\nX = 1\n\ndef c():\n    '''doc'''\n    return [\n  1]\n";
        assert_eq!(
            kept(text).unwrap(),
            vec![
                "import os\n\n",
                "def b(q):\n    while q:\n        q.pop(0)\n\n"
            ]
        );
    }

    #[test]
    fn keeps_class_header_and_members() {
        let text = "class A(B):\n    x = 1\n\n    @property\n    def p(self):\n        return open(self.f).read()\n\n    def other(self):\n        return 2\n\ndef z():\n    return 3\n";
        assert_eq!(
            kept(text).unwrap(),
            vec![
                "class A(B):\n",
                "    @property\n    def p(self):\n        return open(self.f).read()\n\n"
            ]
        );
    }

    #[test]
    fn follows_module_containers_and_receivers() {
        let text = "_cache = {}\n\ndef get(k):\n    _cache[k] = 1\n\ndef other():\n    return 2\n\nq = [1]\n\ndef f():\n    while q:\n        q.pop(0)\n\ndef unrelated():\n    return 'a long string that is never parsed, a long string that is never parsed, never parsed'\n";
        let kept = kept(text).unwrap();
        assert!(kept[0].starts_with("_cache = {}\n\ndef get(k):"));
        assert!(kept.iter().any(|k| k.starts_with("q = [1]")));
        assert!(!kept.iter().any(|k| k.contains("other")));
    }

    #[test]
    fn gives_up_when_unsure() {
        assert_eq!(select("s = '''unterminated\n"), None);
        assert_eq!(select("x = (1,\n"), None);
        assert_eq!(select("def f():\n    print 'hi'\n"), None);
    }

    #[test]
    fn multi_line_strings_and_brackets_do_not_start_statements() {
        let text = "def f():\n    s = '''\nnot a statement: open(x)\n'''\n    return s\n\ndef g():\n    return (\n1)\n";
        assert!(kept(text).unwrap().iter().all(|k| !k.contains("def g")));
    }

    /// What the scan keeps of `text` followed by a long function without triggers (so that
    /// the scan does not give up on a file kept mostly whole).
    fn padded(text: &str) -> Vec<String> {
        let padded = format!("{text}\ndef pad():\n    return '{}'\n", "x".repeat(400));
        kept(&padded)
            .expect("the scan is sure")
            .into_iter()
            .map(|k| k.trim_end_matches('\n').to_owned())
            .collect()
    }

    #[test]
    fn strings_and_comments_trigger_nothing() {
        let text = "import os\n\ndef f():\n    '''Call open(p).read() and q.pop(0).'''\n    # x = y[:]\n    return 1\n";
        assert_eq!(padded(text), Vec::<String>::new());
        // f-strings hold code.
        let text = "def f(p):\n    return f'{open(p).read()}'\n";
        assert_eq!(padded(text), vec![text.trim_end()]);
    }

    #[test]
    fn openers_count_only_in_the_shapes_ml104_checks() {
        let with = "def f(p):\n    with open(p) as f:\n        return f.read()\n";
        assert_eq!(padded(with), Vec::<String>::new());
        for shape in [
            "def f(p):\n    f = open(p)\n    return f\n",
            "def f(p):\n    return gzip.open(p).read()\n",
            "def f(p):\n    for line in open(p):\n        print(line)\n",
            "def f(p):\n    return (open(p)\n            .read())\n",
        ] {
            assert_eq!(padded(shape), vec![shape.trim_end()], "{shape}");
        }
    }

    #[test]
    fn copies_and_concatenations_need_their_shapes() {
        let kept_whole = |t: &str| padded(t) == vec![t.trim_end()];
        assert!(kept_whole(
            "def f(xs):\n    for x in xs:\n        y = list(xs)\n"
        ));
        assert!(!kept_whole(
            "def f(xs):\n    for x in xs:\n        y = list(range(3))\n"
        ));
        assert!(!kept_whole("def f(xs):\n    y = xs[:]\n    return y\n"));
        assert!(kept_whole(
            "def f(xs):\n    s = ''\n    for x in xs:\n        s += x\n"
        ));
        assert!(!kept_whole(
            "def f(xs):\n    n = 0\n    for x in xs:\n        n += x\n"
        ));
        assert!(kept_whole(
            "def f(xs):\n    for x in [g(y) for y in xs]:\n        print(x)\n"
        ));
        assert!(!kept_whole(
            "def f(xs):\n    for x in [1, 2]:\n        print(x)\n"
        ));
    }

    #[test]
    fn classes_keep_the_members_an_attribute_needs() {
        let text = "class Q:\n    def __init__(self):\n        self.q = []\n\n    def other(self):\n        return 2\n\n    def run(self):\n        while self.q:\n            self.q.pop(0)\n";
        assert_eq!(
            padded(text),
            vec![
                "class Q:\n    def __init__(self):\n        self.q = []",
                "    def run(self):\n        while self.q:\n            self.q.pop(0)"
            ]
        );
    }

    #[test]
    fn files_with_only_imports_are_not_parsed() {
        let text = "import os\nfrom x import y\n\ndef f():\n    return os.sep\n";
        assert_eq!(padded(text), Vec::<String>::new());
    }

    #[test]
    fn textual_bindings() {
        assert!(text_binds("open = 1\n", "open"));
        assert!(text_binds("def open(p): ...\n", "open"));
        assert!(text_binds("from gzip import open\n", "open"));
        assert!(text_binds("from x import a, open\n", "open"));
        assert!(text_binds("def f(a, list):\n", "list"));
        assert!(!text_binds("x = open('f')\nif open == 1: pass\n", "open"));
        assert!(!text_binds("opener = 1\n", "open"));
        assert!(text_binds("    open, close = '()'\n", "open"));
        assert!(text_binds("(a, [b, *open]) = x\n", "open"));
        assert!(text_binds("for a, open in pairs:\n", "open"));
        assert!(!text_binds("f(a, open) == x\n", "open"));
        assert!(!text_binds("x.open, y = 1, 2\n", "open"));
        assert!(!text_binds(
            "with open(p, encoding='utf-8') as f:\n",
            "open"
        ));
        assert!(!text_binds("print(a, open, sep='')\n", "open"));
    }
}

#[cfg(test)]
mod debug {
    /// Prints what the scan keeps of `$PRESCAN_FILE` (a debugging aid, not a test).
    #[test]
    #[ignore]
    fn show_kept() {
        if let Ok(dir) = std::env::var("PRESCAN_DIR") {
            let (mut total, mut kept, mut whole) = (0usize, 0usize, 0usize);
            for entry in ignore::WalkBuilder::new(dir).build().flatten() {
                if entry.path().extension().is_none_or(|e| e != "py")
                    || entry.path().to_string_lossy().contains("site-packages")
                {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(entry.path()) else {
                    continue;
                };
                total += text.len();
                match super::select(&text) {
                    None => {
                        kept += text.len();
                        whole += 1;
                        if super::logical_lines(text.as_bytes()).is_none() {
                            println!("unsure {} {}", entry.path().display(), text.len());
                        }
                    }
                    Some(rs) => kept += rs.iter().map(|r| r.len()).sum::<usize>(),
                }
            }
            println!(
                "total {total} kept {kept} ({:.1}%), whole files {whole}",
                kept as f64 * 100.0 / total as f64
            );
            return;
        }
        let path = std::env::var("PRESCAN_FILE").unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        match super::select(&text) {
            None => println!("whole file"),
            Some(ranges) => {
                for r in ranges {
                    let first = text[r.clone()].lines().next().unwrap_or("");
                    println!("{:?} {first}", r);
                }
            }
        }
    }
}
