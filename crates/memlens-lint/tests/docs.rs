//! `docs/rules/*.md` and the rules table of `docs/lint.md` are generated from the registry;
//! this test fails when they are stale. Regenerate with `MEMLENS_UPDATE_DOCS=1 cargo test`.

use std::path::PathBuf;

use memlens_lint::{Rule, rule_page, rules_table};

const BEGIN: &str = "<!-- begin rules table: generated from the registry -->\n";
const END: &str = "<!-- end rules table -->";

fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

#[test]
fn rule_pages_and_table_are_up_to_date() {
    let update = std::env::var_os("MEMLENS_UPDATE_DOCS").is_some_and(|v| v == "1");
    let rules_dir = docs_dir().join("rules");
    let mut stale = Vec::new();
    if update {
        std::fs::create_dir_all(&rules_dir).unwrap();
    }
    for rule in Rule::ALL {
        let path = rules_dir.join(format!("{}.md", rule.code()));
        let want = rule_page(*rule);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
            if update {
                std::fs::write(&path, want).unwrap();
            } else {
                stale.push(path.display().to_string());
            }
        }
    }
    // No page for a rule that does not exist.
    for entry in std::fs::read_dir(&rules_dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("ML1") && Rule::from_code(name.trim_end_matches(".md")).is_none() {
            stale.push(format!("{name} (no such rule)"));
        }
    }
    let lint_md = docs_dir().join("lint.md");
    let text = std::fs::read_to_string(&lint_md).unwrap();
    let start = text.find(BEGIN).expect("docs/lint.md has the begin marker") + BEGIN.len();
    let end = text.find(END).expect("docs/lint.md has the end marker");
    let table = rules_table();
    if text[start..end] != table {
        if update {
            let new = format!("{}{}{}", &text[..start], table, &text[end..]);
            std::fs::write(&lint_md, new).unwrap();
        } else {
            stale.push(lint_md.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale docs (run with MEMLENS_UPDATE_DOCS=1): {stale:?}"
    );
}
