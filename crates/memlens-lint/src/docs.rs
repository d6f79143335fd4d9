//! Markdown pages generated from the registry: `memlens explain` and `docs/rules/`.

use std::fmt::Write;

use crate::registry::Rule;

/// The documentation page of one rule, in Markdown.
pub fn rule_page(rule: Rule) -> String {
    let doc = rule.doc();
    let mut out = String::new();
    let _ = writeln!(out, "# {} `{}`\n", rule.code(), rule.name());
    let _ = writeln!(
        out,
        "_Static rule of `memlens lint`. Silence it on one line with `# memlens: ignore[{}]`._\n",
        rule.code()
    );
    let _ = writeln!(out, "## What it does\n\n{}\n", wrap(doc.what));
    let _ = writeln!(out, "## Why is this bad?\n\n{}\n", wrap(doc.why));
    let _ = writeln!(out, "## Example\n\n```python\n{}```\n", doc.example);
    let _ = write!(out, "## Use instead\n\n```python\n{}```\n", doc.use_instead);
    out
}

/// The table of every rule, in Markdown, for `docs/lint.md`.
pub fn rules_table() -> String {
    let mut out = String::from("| Code | Name | What it finds |\n| --- | --- | --- |\n");
    for rule in Rule::ALL {
        let _ = writeln!(
            out,
            "| [{code}](rules/{code}.md) | `{name}` | {summary} |",
            code = rule.code(),
            name = rule.name(),
            summary = rule.summary().replace('|', "\\|"),
        );
    }
    out
}

/// Wraps prose at about 100 columns, keeping inline code spans whole.
fn wrap(text: &str) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split(' ') {
        if line_len > 0 && line_len + 1 + word.chars().count() > 100 {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.chars().count();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_have_the_four_sections() {
        for rule in Rule::ALL {
            let page = rule_page(*rule);
            for section in [
                "## What it does",
                "## Why is this bad?",
                "## Example",
                "## Use instead",
            ] {
                assert!(page.contains(section), "{rule} lacks {section}");
            }
            assert!(page.starts_with(&format!("# {} `{}`", rule.code(), rule.name())));
        }
    }

    #[test]
    fn table_links_every_rule() {
        let table = rules_table();
        assert_eq!(table.lines().count(), 2 + Rule::ALL.len());
        assert!(table.contains("| [ML101](rules/ML101.md) | `list-as-queue` |"));
    }
}
