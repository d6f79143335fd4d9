//! End-to-end tests of `memlens lint` and `memlens explain`.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const QUEUE: &str = "queue = []\nwhile queue:\n    item = queue.pop(0)\n";

fn memlens(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memlens"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("the memlens binary runs")
}

fn write(dir: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn lint_text_output_and_exit_status_one() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "app/jobs.py", QUEUE);
    let out = memlens(dir.path(), &["lint"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "app/jobs.py:3:12: ML101 `queue.pop(0)` on a list moves every item: the list is used as a queue"
        )
    );
    assert!(
        text.contains("3 |     item = queue.pop(0)\n  |            ^^^^^^^^^^^^ ML101\n"),
        "{text}"
    );
    assert!(
        text.contains("= fix: Use `collections.deque` and `popleft()`"),
        "{text}"
    );
    assert!(
        text.contains("Found 1 finding in 1 file checked (1 \u{d7} ML101)."),
        "{text}"
    );
}

#[test]
fn lint_clean_tree_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ok.py",
        "from collections import deque\nq = deque()\nwhile q:\n    q.popleft()\n",
    );
    let out = memlens(dir.path(), &["lint", "."]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(stdout(&out), "All checks passed (1 file checked).\n");
}

#[test]
fn lint_json_is_a_list_of_findings() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.py", QUEUE);
    write(
        dir.path(),
        "b.py",
        "def f(xs):\n    return sum([x * 2 for x in xs])\n",
    );
    let out = memlens(dir.path(), &["lint", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.starts_with("[\n  {\n    \"rule\": \"ML101\",\n    \"file\": \"a.py\",\n    \"line\": 3,\n    \"column\": 12,\n"), "{text}");
    assert!(
        text.contains(
            "\"rule\": \"ML109\",\n    \"file\": \"b.py\",\n    \"line\": 2,\n    \"column\": 16,"
        ),
        "{text}"
    );
}

#[test]
fn lint_select_and_ignore_flags() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.py",
        format!("{QUEUE}s = ''\nfor x in 'ab':\n    s += x\n"),
    );
    let out = memlens(
        dir.path(),
        &["lint", "--select", "ML108", "--format", "json"],
    );
    let text = stdout(&out);
    assert!(
        text.contains("\"rule\": \"ML108\"") && !text.contains("ML101"),
        "{text}"
    );
    let out = memlens(
        dir.path(),
        &["lint", "--ignore", "ML101,string-concat-in-loop"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn lint_unknown_rule_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.py", QUEUE);
    let out = memlens(dir.path(), &["lint", "--select", "E501"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "memlens: error: unknown rule selector `E501` (see `memlens explain --list`)\n"
    );
    let out = memlens(dir.path(), &["lint", "--format", "xml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn lint_reads_pyproject_configuration() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "src/a.py", QUEUE);
    write(dir.path(), "tests/test_a.py", QUEUE);
    write(
        dir.path(),
        "pyproject.toml",
        "[tool.memlens.lint]\nper-file-ignores = { \"tests/*\" = [\"ML101\"] }\n",
    );
    let out = memlens(dir.path(), &["lint", "--format", "json"]);
    let text = stdout(&out);
    assert!(
        text.contains("\"file\": \"src/a.py\"") && !text.contains("tests/test_a.py"),
        "{text}"
    );
    // A bad configuration is a one-line error and exit status 2.
    write(
        dir.path(),
        "pyproject.toml",
        "[tool.memlens.lint]\nselct = []\n",
    );
    let out = memlens(dir.path(), &["lint"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("memlens: error: invalid configuration in ") && err.contains("selct"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // --isolated ignores it.
    let out = memlens(dir.path(), &["lint", "--isolated", "src"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn lint_reports_bad_files_once_on_stderr_and_checks_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "good.py", QUEUE);
    write(dir.path(), "py2.py", "print 'hello'\n");
    write(dir.path(), "bin.py", b"\x00\x01\x02".as_slice());
    let out = memlens(dir.path(), &["lint", "--format", "json", ".", "missing.py"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("\"file\": \"good.py\""));
    let err = stderr(&out);
    let mut lines: Vec<&str> = err.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "bin.py: error: binary file (contains NUL bytes)",
            "missing.py: error: cannot read: no such file or directory",
            "py2.py:1:1: error: Python 2 syntax (a print statement): not checked",
        ]
    );
}

#[test]
fn lint_github_and_sarif_formats() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a,b.py", QUEUE);
    let out = memlens(dir.path(), &["lint", "--format", "github"]);
    assert_eq!(
        stdout(&out).lines().next(),
        Some(
            "::warning file=a%2Cb.py,line=3,col=12,endLine=3,endColumn=24,title=memlens ML101 (list-as-queue)::ML101 `queue.pop(0)` on a list moves every item: the list is used as a queue. Fix: Use `collections.deque` and `popleft()`"
        )
    );
    let out = memlens(
        dir.path(),
        &["lint", "--format", "sarif", "-o", "out.sarif"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    let sarif = fs::read_to_string(dir.path().join("out.sarif")).unwrap();
    assert!(sarif.contains("\"version\": \"2.1.0\""));
    assert!(sarif.contains("\"uri\": \"a%2Cb.py\""), "{sarif}");
    assert!(sarif.contains("\"startLine\": 3"));
}

#[test]
fn lint_suppression_comment_and_exit_zero() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.py",
        "queue = []\nwhile queue:\n    queue.pop(0)  # memlens: ignore[ML101]\n",
    );
    let out = memlens(dir.path(), &["lint"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    write(dir.path(), "b.py", QUEUE);
    let out = memlens(dir.path(), &["lint", "--exit-zero"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("b.py:3:12: ML101"));
}

#[test]
fn lint_reads_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_memlens"))
        .args([
            "lint",
            "-",
            "--stdin-filename",
            "pkg/mod.py",
            "--format",
            "json",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(QUEUE.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("\"file\": \"pkg/mod.py\",\n    \"line\": 3,"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn explain_prints_the_rule_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = memlens(dir.path(), &["explain", "ML104"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.starts_with("# ML104 `unclosed-resource`\n"), "{text}");
    for section in [
        "## What it does",
        "## Why is this bad?",
        "## Example",
        "## Use instead",
    ] {
        assert!(text.contains(section), "{section}");
    }
    // By name, too.
    let out = memlens(dir.path(), &["explain", "list-as-queue"]);
    assert!(stdout(&out).starts_with("# ML101 `list-as-queue`"));
}

#[test]
fn explain_unknown_rule_and_list() {
    let dir = tempfile::tempdir().unwrap();
    let out = memlens(dir.path(), &["explain", "ML999"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown rule `ML999`"));
    let out = memlens(dir.path(), &["explain", "--list"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    // Ten lint rules, then the three run-time rules.
    assert_eq!(
        text.lines().filter(|l| l.starts_with("ML1")).count(),
        10,
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("MR0")).count(),
        3,
        "{text}"
    );
    assert!(text.starts_with("ML101  list-as-queue"), "{text}");
    let out = memlens(dir.path(), &["explain"]);
    assert_eq!(out.status.code(), Some(2));
}
