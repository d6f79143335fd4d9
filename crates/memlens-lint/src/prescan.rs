//! Selective parsing: a fast byte scan picks the top-level statements and class members that
//! can hold a finding, so that tree-sitter parses only those.
//!
//! Parsing is most of the cost of a lint run, and most statements of a code base cannot match
//! any rule (they contain none of `pop(0`, `cache`, `open(`, `+=`, ...). The scan splits a file
//! into logical lines (tracking strings, comments, brackets and continuations), groups them
//! into top-level statements and class members, and keeps:
//! - every import, and every statement holding a trigger of some rule;
//! - for module-level containers, cached functions and other module-level names a kept
//!   statement binds, every statement that mentions them (so "nothing else removes from it"
//!   and "called in a loop elsewhere" see the whole module);
//! - the module-level bindings of names used as receivers (`q.pop(0)`, `s += ...`, `x[:]`);
//! - whole classes when a member needs its class (`self.x.pop(0)`, class-level containers).
//!
//! Kept statements are parsed as one document with tree-sitter's included ranges, so positions
//! stay those of the file. Whenever the scan is unsure (an unterminated string or bracket, a
//! Python 2 `print` statement, a kept part that does not parse) the caller parses everything.

use std::ops::Range;

/// Substrings that can start a finding, by rule.
const TRIGGERS: &[&str] = &[
    "pop(0",
    "insert(0", // ML101
    "socket(",
    "create_connection(",
    "TemporaryFile(",
    "ZipFile(",
    "FileIO(", // ML104
    "readlines(",
    ".read().split", // ML105
    "in list(",      // ML109 (loops)
    "deepcopy(",
    "copy.copy(",
    ".copy()",
    "[:]",
    "= list(", // ML110
];

/// Consumers of ML109, found as `name(` then optional white space then `[`.
const CONSUMERS: &[&str] = &["sum(", "any(", "all(", "min(", "max("];

/// The byte ranges to parse, or `None` to parse the whole file.
pub(crate) fn select(text: &str) -> Option<Vec<Range<usize>>> {
    let bytes = text.as_bytes();
    let lines = logical_lines(bytes)?;
    let top = statements(bytes, &lines, 0, bytes.len(), 0);
    if top.is_empty() {
        return Some(Vec::new());
    }
    let mut keep = vec![Keep::No; top.len()];
    let mut follow: Vec<&str> = Vec::new();
    let mut receivers: Vec<&str> = Vec::new();
    for (i, stmt) in top.iter().enumerate() {
        let chunk = &text[stmt.clone()];
        let head = skip_decorators(chunk);
        if head.starts_with("import ") || head.starts_with("from ") {
            keep[i] = Keep::All;
            continue;
        }
        if let Some(name) = assigned_name(chunk) {
            if is_container_value(chunk) {
                follow.push(name);
                keep[i] = Keep::All;
                continue;
            }
            if interesting(chunk) {
                follow.push(name);
                keep[i] = Keep::All;
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
            if interesting(chunk) {
                keep[i] = Keep::All;
                collect_receivers(chunk, &mut receivers);
            }
            continue;
        }
        if head.starts_with("class ") {
            keep[i] = class_keep(text, &lines, stmt.clone(), &mut receivers);
            continue;
        }
        // `try: import x` / `if TYPE_CHECKING: import y`: names the rules resolve.
        if interesting_in(chunk, true) || nested_class_container(chunk) || chunk.contains("import ")
        {
            keep[i] = Keep::All;
            collect_receivers(chunk, &mut receivers);
        }
    }
    // Names whose every mention matters, and module-level bindings of receivers.
    for (i, stmt) in top.iter().enumerate() {
        if keep[i] == Keep::All {
            continue;
        }
        let chunk = &text[stmt.clone()];
        let mentions = follow.iter().any(|n| contains_word(chunk, n));
        let binds_receiver = assigned_name(chunk).is_some_and(|n| receivers.contains(&n));
        if mentions || binds_receiver {
            keep[i] = Keep::All;
        }
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

/// What to keep of a class: all of it, its header and some members, or nothing.
fn class_keep<'t>(
    text: &'t str,
    lines: &[(usize, usize)],
    stmt: Range<usize>,
    receivers: &mut Vec<&'t str>,
) -> Keep {
    let bytes = text.as_bytes();
    let chunk = &text[stmt.clone()];
    // The body's indentation: the first logical line after the header.
    let header_start = stmt.start + (chunk.len() - skip_decorators(chunk).len());
    let Some(&(first, indent)) = lines
        .iter()
        .find(|(pos, ind)| *pos > header_start && *pos < stmt.end && *ind > 0)
    else {
        return if interesting(chunk) {
            Keep::All
        } else {
            Keep::No
        };
    };
    let members = statements(bytes, lines, first, stmt.end, indent);
    // Class-level containers (ML107): the members that mention `.name` are the ones that can
    // mutate or shadow them through `self`.
    let containers: Vec<&str> = members
        .iter()
        .filter_map(|m| {
            let head = skip_decorators(text[m.clone()].trim_start());
            assigned_name(head).filter(|_| is_container_value(head))
        })
        .collect();
    let mut parts: Vec<Range<usize>> = Vec::with_capacity(4);
    parts.push(stmt.start..first);
    for m in &members {
        let member = &text[m.clone()];
        if nested_class_container(member) {
            collect_receivers(chunk, receivers);
            return Keep::All;
        }
        let head = skip_decorators(member.trim_start());
        let is_container = assigned_name(head).is_some() && is_container_value(head);
        let touches_container = containers.iter().any(|c| {
            member.match_indices(c).any(|(pos, _)| {
                member[..pos].ends_with('.') && !member[pos + c.len()..].starts_with(is_ident_char)
            })
        });
        if interesting(member) {
            if member.contains("self.") && needs_class(member) {
                collect_receivers(chunk, receivers);
                return Keep::All;
            }
            collect_receivers(member, receivers);
            parts.push(m.clone());
        } else if is_container || touches_container {
            parts.push(m.clone());
        }
    }
    if parts.len() == 1 {
        Keep::No
    } else {
        Keep::Parts(parts)
    }
}

/// Whether a member's triggers need facts from the rest of its class (`self.x` lists).
fn needs_class(member: &str) -> bool {
    ["pop(0", "insert(0", "[:]", "= list("]
        .iter()
        .any(|t| member.contains(t))
}

/// Whether a statement can hold a finding. `script` statements (module-level code other than
/// definitions) may build a string from a module-level literal, so `+=` alone counts there.
fn interesting_in(chunk: &str, script: bool) -> bool {
    TRIGGERS.iter().any(|t| chunk.contains(t))
        || word_matches(chunk, "open(", |_, _| true)
        || word_matches(chunk, "cache", |line, _| line.trim_start().starts_with('@'))
        || (chunk.contains("for ")
            && word_matches(chunk, "in", |_, pos| {
                chunk[pos + 2..].trim_start().starts_with('[')
            }))
        || CONSUMERS.iter().any(|c| {
            chunk
                .match_indices(c)
                .any(|(pos, m)| chunk[pos + m.len()..].trim_start().starts_with('['))
        })
        || (chunk.contains("+=") && (script || has_string_assignment(chunk)))
}

fn interesting(chunk: &str) -> bool {
    interesting_in(chunk, false) || nested_class_container(chunk)
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

/// Whether `pattern` occurs in `chunk` after a non-identifier character (or `_`-prefixed name
/// parts for `cache`) and `accept(line, pos)` holds for its line.
fn word_matches(chunk: &str, pattern: &str, accept: impl Fn(&str, usize) -> bool) -> bool {
    chunk.match_indices(pattern).any(|(pos, _)| {
        let line_start = chunk[..pos].rfind('\n').map_or(0, |i| i + 1);
        let before_ok = !chunk[..pos].chars().next_back().is_some_and(is_ident_char);
        let after_ok =
            pattern != "in" || !chunk[pos + 2..].chars().next().is_some_and(is_ident_char);
        let boundary = pattern == "cache" || before_ok && after_ok;
        boundary && accept(&chunk[line_start..pos], pos)
    })
}

/// Whether `chunk` assigns a string or bytes literal to something (`= ''`, `= b"..."`, ...).
fn has_string_assignment(chunk: &str) -> bool {
    chunk.match_indices('=').any(|(pos, _)| {
        let rest = chunk[pos + 1..].trim_start_matches([' ', '\t']);
        let rest = rest.trim_start_matches(['r', 'b', 'f', 'u', 'R', 'B', 'F', 'U']);
        rest.starts_with(['\'', '"'])
    })
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

/// The start offset and indentation of every logical line holding code, or `None` when the
/// scan is unsure (unterminated string or bracket, Python 2 statements).
fn logical_lines(bytes: &[u8]) -> Option<Vec<(usize, usize)>> {
    let n = bytes.len();
    let mut out = Vec::with_capacity(n / 40);
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
                    i = j + 3;
                } else {
                    let mut j = i + 1;
                    while j < n && bytes[j] != c && bytes[j] != b'\n' {
                        if bytes[j] == b'\\' {
                            j += 1;
                        }
                        j += 1;
                    }
                    i = j + 1;
                }
            }
            b'#' => {
                while i < n && bytes[i] != b'\n' {
                    i += 1;
                }
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
    Some(out)
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
        next.starts_with([',', ')', ':'])
            && ["def ", "async def ", "lambda", "for "]
                .iter()
                .any(|p| line.starts_with(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(text: &str) -> Option<Vec<&str>> {
        select(text).map(|rs| rs.into_iter().map(|r| &text[r]).collect())
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

    #[test]
    fn textual_bindings() {
        assert!(text_binds("open = 1\n", "open"));
        assert!(text_binds("def open(p): ...\n", "open"));
        assert!(text_binds("from gzip import open\n", "open"));
        assert!(text_binds("from x import a, open\n", "open"));
        assert!(text_binds("def f(a, list):\n", "list"));
        assert!(!text_binds("x = open('f')\nif open == 1: pass\n", "open"));
        assert!(!text_binds("opener = 1\n", "open"));
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
