//! End-to-end tests of `memlens report`.

use std::process::Command;

#[test]
fn explain_covers_run_time_rules() {
    let out = Command::new(env!("CARGO_BIN_EXE_memlens"))
        .args(["explain", "MR001"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.starts_with("# MR001: memory held until exit"),
        "{page}"
    );
    assert!(page.contains("## How to fix it"));
    let list = Command::new(env!("CARGO_BIN_EXE_memlens"))
        .args(["explain", "--list"])
        .output()
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    for code in ["ML101", "MR001", "MR002", "MR003"] {
        assert!(list.contains(code), "{code} missing from --list");
    }
}

#[test]
fn report_on_a_missing_file_is_one_line_and_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_memlens"))
        .current_dir(dir.path())
        .args(["report", "nope.mlens"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("memlens: error: cannot open nope.mlens"),
        "{err}"
    );
}
