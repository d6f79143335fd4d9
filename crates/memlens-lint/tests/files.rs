//! Integration tests of `Linter::check_paths`: discovery, .gitignore, configuration,
//! suppression comments and bad input, each in a fresh temporary directory.

use std::fs;
use std::path::Path;

use memlens_lint::{Config, Linter, ProblemKind, Report, Rule};

fn write(dir: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

const QUEUE: &str = "queue = []\nwhile queue:\n    item = queue.pop(0)\n";

fn lint(dir: &Path) -> Report {
    let config = Config::discover(dir)
        .unwrap()
        .map(|(_, c)| c)
        .unwrap_or_default();
    Linter::builder()
        .config(config)
        .build()
        .unwrap()
        .check_paths(&[dir])
}

fn found(report: &Report, dir: &Path) -> Vec<(String, Rule, usize, usize)> {
    report
        .diagnostics
        .iter()
        .map(|d| {
            let rel = d
                .path
                .strip_prefix(dir)
                .unwrap_or(&d.path)
                .to_string_lossy()
                .into_owned();
            (rel, d.rule, d.line, d.column)
        })
        .collect()
}

#[test]
fn walks_directories_and_skips_gitignored_hidden_and_virtualenvs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "pkg/a.py", QUEUE);
    write(d, "pkg/b.txt", QUEUE);
    write(d, "generated/c.py", QUEUE);
    write(d, ".gitignore", "generated/\n");
    write(d, ".venv/lib/d.py", QUEUE);
    write(d, "venv/e.py", QUEUE);
    write(d, "build/f.py", QUEUE);
    write(d, ".hidden/g.py", QUEUE);
    let report = lint(d);
    assert_eq!(
        found(&report, d),
        vec![("pkg/a.py".to_owned(), Rule::ListAsQueue, 3, 12)]
    );
    assert_eq!(report.files_checked, 1);
    assert!(report.problems.is_empty());
}

#[test]
fn explicit_files_are_checked_whatever_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "script", QUEUE);
    let report = Linter::builder()
        .build()
        .unwrap()
        .check_paths(&[d.join("script")]);
    assert_eq!(report.diagnostics.len(), 1);
    assert_eq!(report.diagnostics[0].path, d.join("script"));
}

#[test]
fn suppression_comments_silence_one_line_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "a.py",
        "queue = []\nwhile queue:\n    queue.pop(0)  # memlens: ignore[ML101]\n    queue.insert(0, 1)  # memlens: ignore[ML105]\n    queue.pop(0)  # memlens: ignore\n",
    );
    write(d, "b.py", format!("# memlens: ignore-file[ML1]\n{QUEUE}"));
    let report = lint(d);
    assert_eq!(
        found(&report, d),
        vec![("a.py".to_owned(), Rule::ListAsQueue, 4, 5)]
    );
}

#[test]
fn pyproject_select_ignore_and_per_file_ignores() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let both = format!("{QUEUE}s = ''\nfor x in range(3):\n    s += str(x)\n");
    write(d, "src/app.py", &both);
    write(d, "tests/test_app.py", &both);
    write(d, "legacy/old.py", &both);
    write(
        d,
        "pyproject.toml",
        "[project]\nname = 'demo'\n\n[tool.memlens.lint]\nignore = ['string-concat-in-loop']\nexclude = ['legacy']\n\n[tool.memlens.lint.per-file-ignores]\n'tests/**' = ['ML101']\n",
    );
    let report = lint(d);
    assert_eq!(
        found(&report, d),
        vec![("src/app.py".to_owned(), Rule::ListAsQueue, 3, 12)]
    );

    // The command line's --select overrides the configuration's ignore.
    let config = Config::discover(d).unwrap().unwrap().1;
    let report = Linter::builder()
        .config(config)
        .select(["ML108"])
        .build()
        .unwrap()
        .check_paths(&[d]);
    assert_eq!(
        found(&report, d),
        vec![
            ("src/app.py".to_owned(), Rule::StringConcatInLoop, 6, 5),
            (
                "tests/test_app.py".to_owned(),
                Rule::StringConcatInLoop,
                6,
                5
            ),
        ]
    );
}

#[test]
fn bad_input_is_reported_once_each_and_the_rest_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "good.py", QUEUE);
    write(d, "syntax.py", "def f(:\n    pass\n");
    write(d, "py2.py", "print 'hello'\n");
    write(d, "latin.py", b"x = '\xe9'\n".as_slice());
    write(d, "binary.py", b"\x7fELF\x00\x01\x02".as_slice());
    write(
        d,
        "latin1_ok.py",
        b"# -*- coding: latin-1 -*-\ns = '\xe9'\nqueue = []\nwhile queue:\n    queue.pop(0)\n"
            .as_slice(),
    );
    let report = lint(d);
    assert_eq!(
        found(&report, d),
        vec![
            ("good.py".to_owned(), Rule::ListAsQueue, 3, 12),
            ("latin1_ok.py".to_owned(), Rule::ListAsQueue, 5, 5),
        ]
    );
    let problems: Vec<(String, ProblemKind, Option<usize>)> = report
        .problems
        .iter()
        .map(|p| {
            (
                p.path.file_name().unwrap().to_string_lossy().into_owned(),
                p.kind,
                p.line,
            )
        })
        .collect();
    assert_eq!(
        problems,
        vec![
            ("binary.py".to_owned(), ProblemKind::Binary, None),
            ("latin.py".to_owned(), ProblemKind::Encoding, Some(1)),
            ("py2.py".to_owned(), ProblemKind::Python2, Some(1)),
            ("syntax.py".to_owned(), ProblemKind::Syntax, Some(1)),
        ]
    );
}

#[test]
fn missing_paths_are_problems_not_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "a.py", QUEUE);
    let missing = d.join("nope.py");
    let report = Linter::builder()
        .build()
        .unwrap()
        .check_paths(&[d.join("a.py"), missing.clone()]);
    assert_eq!(report.diagnostics.len(), 1);
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].path, missing);
    assert_eq!(report.problems[0].kind, ProblemKind::Io);
    assert!(
        report.problems[0].message.contains("no such file"),
        "{}",
        report.problems[0].message
    );
}

#[cfg(unix)]
#[test]
fn unreadable_files_are_problems() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "secret.py", QUEUE);
    write(d, "ok.py", QUEUE);
    fs::set_permissions(d.join("secret.py"), fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read(d.join("secret.py")).is_ok() {
        return; // Running as root: permissions do not apply.
    }
    let report = lint(d);
    assert_eq!(report.diagnostics.len(), 1);
    assert_eq!(report.problems[0].kind, ProblemKind::Io);
}

#[test]
fn python3_print_shift_is_not_python2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "a.py",
        "try:\n    print >> 42\nexcept TypeError:\n    pass\n",
    );
    let report = lint(d);
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn full_parse_reports_syntax_errors_that_the_selective_parse_skips() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Balanced brackets, so the byte scan is sure of itself and skips the broken function.
    let text =
        format!("{QUEUE}\ndef broken():\n    x = = 1\n\ndef fine():\n    return 'padding ' * 40\n");
    write(d, "a.py", &text);
    let selective = Linter::builder().build().unwrap().check_paths(&[d]);
    assert_eq!(
        found(&selective, d),
        vec![("a.py".to_owned(), Rule::ListAsQueue, 3, 12)]
    );
    assert!(selective.problems.is_empty());
    let full = Linter::builder()
        .full_parse(true)
        .build()
        .unwrap()
        .check_paths(&[d]);
    assert!(full.diagnostics.is_empty());
    assert_eq!(full.problems.len(), 1);
    assert_eq!(
        (full.problems[0].kind, full.problems[0].line),
        (ProblemKind::Syntax, Some(6))
    );
    // An unbalanced bracket makes the scan unsure: everything is parsed and the error reported.
    write(d, "a.py", format!("{QUEUE}\ndef broken(:\n    pass\n"));
    let selective = Linter::builder().build().unwrap().check_paths(&[d]);
    assert_eq!(selective.problems.len(), 1);
    assert_eq!(selective.problems[0].kind, ProblemKind::Syntax);
}

#[test]
fn common_syntax_errors_are_reported_even_where_nothing_could_hold_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // No rule triggers in these files, so the selective parse alone would never parse them.
    write(d, "operator.py", "import os\nx = 1 +\n");
    write(
        d,
        "colon.py",
        "class A:\n    def f(self)\n        return 1\n",
    );
    write(d, "fine.py", "import os\nx = 1 + 2\n");
    let report = Linter::builder().build().unwrap().check_paths(&[d]);
    let mut problems: Vec<String> = report
        .problems
        .iter()
        .map(|p| {
            assert_eq!(p.kind, ProblemKind::Syntax, "{p:?}");
            p.path.file_name().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    problems.sort();
    assert_eq!(problems, ["colon.py", "operator.py"]);
}

/// The standard library of an installed CPython 3.11 (`MEMLENS_STDLIB` names another tree).
fn stdlib() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("MEMLENS_STDLIB") {
        return dir.into();
    }
    let pyenv = Path::new("/root/.pyenv/versions");
    let mut found: Vec<_> = fs::read_dir(pyenv)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path().join("lib/python3.11"))
                .filter(|p| p.join("os.py").is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!("no CPython 3.11 standard library under {pyenv:?}: set MEMLENS_STDLIB to one")
    })
}

#[test]
fn selective_and_full_parse_agree_on_the_standard_library() {
    // Every third file of the standard library (a debug build checks them all in minutes):
    // the byte scan may parse only part of a file, but must never change a finding.
    let root = stdlib();
    let mut files: Vec<_> = ignore::WalkBuilder::new(&root)
        .build()
        .flatten()
        .map(|e| e.into_path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "py")
                && !p.components().any(|c| c.as_os_str() == "site-packages")
        })
        .collect();
    files.sort();
    let sample: Vec<_> = files.into_iter().step_by(3).collect();
    assert!(
        sample.len() > 500,
        "only {} files under {root:?}",
        sample.len()
    );
    let selective = Linter::builder().build().unwrap().check_paths(&sample);
    let full = Linter::builder()
        .full_parse(true)
        .build()
        .unwrap()
        .check_paths(&sample);
    assert!(
        full.diagnostics.len() > 50,
        "{} findings",
        full.diagnostics.len()
    );
    assert_eq!(selective.diagnostics, full.diagnostics);
}

#[test]
fn selective_parse_sees_bindings_outside_the_kept_statements() {
    // Found on the CPython 3.13 standard library: the selective parse flagged both, the full
    // parse (rightly) neither.
    let padding = format!("\ndef pad():\n    return '{}'\n", "x".repeat(2000));
    let sources = [
        // `trace_file` is also bound to None and used in a function: not a leak to flag.
        "trace_file = None\nif name := env():\n    trace_file = open(name, 'a')\n\ndef trace(line):\n    trace_file.write(line)\n",
        // `open` is rebound by tuple unpacking elsewhere in the file: not the builtin.
        "def f(p):\n    with open(p) as args:\n        for line in args.read().splitlines():\n            print(line)\n\ndef g(n):\n    open, close = '()' if n else '[]'\n    return open + close\n",
    ];
    for source in sources {
        let text = format!("{source}{padding}");
        for full_parse in [false, true] {
            let linter = Linter::builder().full_parse(full_parse).build().unwrap();
            let found = linter.check_source("a.py".as_ref(), &text).unwrap();
            assert!(
                found.is_empty(),
                "full parse {full_parse}: {found:?}\n{source}"
            );
        }
    }
}
