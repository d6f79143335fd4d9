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

mod formats {
    //! `memlens report --format ...` on captures with known allocations, each format checked
    //! by its consumer: `go tool pprof`, speedscope's schema, the folded-stack grammar.

    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};

    use memlens_format::{Domain, Header, Mode, Record, Writer};

    /// A capture: main (app.py:10) keeps 100 bytes to the end; work (app.py:20, called from
    /// main:11) holds 300 bytes at the peak and frees them; a second thread allocates 50
    /// bytes at main:10 and frees them right away. `file` and `function` name the user's
    /// code (hostile names go here).
    fn write_capture(dir: &Path, name: &str, file: &str, function: &str) -> PathBuf {
        let s = |id: u32, text: &str| Record::String {
            id,
            text: text.into(),
        };
        let records = vec![
            s(0, function),
            s(1, file),
            s(2, "work"),
            s(3, "MainThread"),
            s(4, "worker <1>"),
            s(5, "start"),
            Record::Function {
                id: 0,
                name: 0,
                qualname: 0,
                file: 1,
                first_line: 1,
            },
            Record::Function {
                id: 1,
                name: 2,
                qualname: 2,
                file: 1,
                first_line: 19,
            },
            Record::Frame {
                id: 0,
                function: 0,
                line: 10,
            },
            Record::Frame {
                id: 1,
                function: 0,
                line: 11,
            },
            Record::Frame {
                id: 2,
                function: 1,
                line: 20,
            },
            Record::Stack {
                id: 1,
                parent: 0,
                frame: 0,
            },
            Record::Stack {
                id: 2,
                parent: 0,
                frame: 1,
            },
            Record::Stack {
                id: 3,
                parent: 2,
                frame: 2,
            },
            Record::Thread {
                id: 1,
                native_id: 11,
                name: 3,
            },
            Record::Thread {
                id: 2,
                native_id: 12,
                name: 4,
            },
            Record::SwitchThread(1),
            Record::Checkpoint(5),
            Record::Alloc {
                addr: 0x1000,
                size: 100,
                stack: 1,
                domain: Domain::Python,
            },
            Record::Alloc {
                addr: 0x2000,
                size: 300,
                stack: 3,
                domain: Domain::Native,
            },
            Record::Peak,
            Record::Free { addr: 0x2000 },
            Record::SwitchThread(2),
            Record::Alloc {
                addr: 0x3000,
                size: 50,
                stack: 1,
                domain: Domain::Python,
            },
            Record::Free { addr: 0x3000 },
            Record::Counters {
                time_ns: 5_000_000,
                live: 100,
                peak: 400,
                allocated: 450,
                allocations: 3,
                rss: 1 << 20,
            },
            Record::End,
        ];
        empty_or(dir, name, records)
    }

    fn empty_or(dir: &Path, name: &str, records: Vec<Record>) -> PathBuf {
        let header = Header {
            python_version: "3.12.1".into(),
            pid: 4242,
            command: vec!["app.py".into()],
            mode: Mode::Exact,
            sample_rate: 1,
            start_unix_ns: 0,
            library_prefixes: vec!["/usr/lib/python3.12/".into()],
        };
        let path = dir.join(name);
        let mut w = Writer::new(std::fs::File::create(&path).unwrap(), &header).unwrap();
        w.write_records(&records).unwrap();
        w.finish().unwrap();
        path
    }

    fn empty_capture(dir: &Path) -> PathBuf {
        empty_or(
            dir,
            "empty.mlens",
            vec![
                Record::Counters {
                    time_ns: 1,
                    live: 0,
                    peak: 0,
                    allocated: 0,
                    allocations: 0,
                    rss: 0,
                },
                Record::End,
            ],
        )
    }

    const HOSTILE_FILE: &str = "/src/<script>alert(\"x\")</script>'.py";
    const HOSTILE_FUNCTION: &str = "f;g\n\u{1b}[31m\"q'<b>";

    fn memlens(dir: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_memlens"))
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(out: Output) -> Vec<u8> {
        assert!(
            out.status.success(),
            "status {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn text(out: Output) -> String {
        String::from_utf8(ok(out)).unwrap()
    }

    fn go_pprof_top(dir: &Path, file: &str, sample_index: &str) -> String {
        let index = ["-sample_index", sample_index];
        // An empty index: pprof's own choice (the profile's default sample type).
        let index: &[&str] = if sample_index.is_empty() { &[] } else { &index };
        let out = Command::new("go")
            .current_dir(dir)
            .env("HOME", dir)
            .env("GOCACHE", dir.join("gocache"))
            .args(["tool", "pprof", "-top"])
            .args(index)
            .arg(file)
            .output()
            .expect("go is needed for the pprof test: run scripts/install-test-deps");
        assert!(
            out.status.success(),
            "go tool pprof failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The flat figure pprof's -top prints for `function`.
    fn flat(top: &str, function: &str) -> Option<String> {
        top.lines()
            .find(|l| l.split_whitespace().last() == Some(function))
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
    }

    #[test]
    fn pprof_loads_in_go_tool_pprof_with_each_sample_type() {
        let dir = tempfile::tempdir().unwrap();
        write_capture(dir.path(), "app.mlens", "/src/app.py", "main");
        ok(memlens(
            dir.path(),
            &[
                "report",
                "app.mlens",
                "--format",
                "pprof",
                "-o",
                "peak.pb.gz",
            ],
        ));
        let inuse = go_pprof_top(dir.path(), "peak.pb.gz", "inuse_space");
        assert_eq!(flat(&inuse, "work").as_deref(), Some("300B"), "{inuse}");
        assert_eq!(flat(&inuse, "main").as_deref(), Some("100B"), "{inuse}");
        let alloc = go_pprof_top(dir.path(), "peak.pb.gz", "alloc_space");
        assert_eq!(flat(&alloc, "main").as_deref(), Some("150B"), "{alloc}");
        let objects = go_pprof_top(dir.path(), "peak.pb.gz", "alloc_objects");
        assert_eq!(flat(&objects, "main").as_deref(), Some("2"), "{objects}");
        // Leaks: only main's 100 bytes.
        ok(memlens(
            dir.path(),
            &[
                "report",
                "app.mlens",
                "--format",
                "pprof",
                "--view",
                "leaks",
                "-o",
                "leaks.pb.gz",
            ],
        ));
        let leaks = go_pprof_top(dir.path(), "leaks.pb.gz", "inuse_space");
        assert_eq!(flat(&leaks, "main").as_deref(), Some("100B"), "{leaks}");
        assert_eq!(flat(&leaks, "work"), None, "{leaks}");
        // pprof opens on the view that was asked for: memory in use for peak and leaks, bytes
        // allocated for the allocations view (it used to open on a count).
        assert!(go_pprof_top(dir.path(), "leaks.pb.gz", "").contains("Type: inuse_space"));
        assert!(go_pprof_top(dir.path(), "peak.pb.gz", "").contains("Type: inuse_space"));
        ok(memlens(
            dir.path(),
            &[
                "report",
                "app.mlens",
                "--format",
                "pprof",
                "--view",
                "allocations",
                "-o",
                "a.pb.gz",
            ],
        ));
        let allocs = go_pprof_top(dir.path(), "a.pb.gz", "");
        assert!(allocs.contains("Type: alloc_space"), "{allocs}");
        // Empty and hostile captures load too.
        empty_capture(dir.path());
        ok(memlens(
            dir.path(),
            &[
                "report",
                "empty.mlens",
                "--format",
                "pprof",
                "-o",
                "e.pb.gz",
            ],
        ));
        go_pprof_top(dir.path(), "e.pb.gz", "inuse_space");
        write_capture(dir.path(), "h.mlens", HOSTILE_FILE, HOSTILE_FUNCTION);
        ok(memlens(
            dir.path(),
            &["report", "h.mlens", "--format", "pprof", "-o", "h.pb.gz"],
        ));
        let hostile = go_pprof_top(dir.path(), "h.pb.gz", "alloc_space");
        assert!(hostile.contains("300B"), "{hostile}");
    }

    fn speedscope_valid(dir: &Path, files: &[&str]) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/formats");
        assert!(
            script.join("node_modules/speedscope").is_dir(),
            "speedscope's schema is missing: run scripts/install-test-deps"
        );
        let out = Command::new("node")
            .current_dir(dir)
            .arg(script.join("validate-speedscope.mjs"))
            .args(files)
            .output()
            .expect("node is needed to validate speedscope output");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn speedscope_matches_its_schema_and_weighs_stacks_by_the_view() {
        let dir = tempfile::tempdir().unwrap();
        write_capture(dir.path(), "app.mlens", "/src/app.py", "main");
        write_capture(dir.path(), "h.mlens", HOSTILE_FILE, HOSTILE_FUNCTION);
        empty_capture(dir.path());
        for (capture, out) in [
            ("app.mlens", "app.json"),
            ("h.mlens", "h.json"),
            ("empty.mlens", "e.json"),
        ] {
            ok(memlens(
                dir.path(),
                &["report", capture, "--format", "speedscope", "-o", out],
            ));
        }
        speedscope_valid(dir.path(), &["app.json", "h.json", "e.json"]);
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("app.json")).unwrap()).unwrap();
        let active = doc["activeProfileIndex"].as_u64().unwrap() as usize;
        let peak = &doc["profiles"][active];
        assert!(peak["name"].as_str().unwrap().starts_with("peak"));
        let total: u64 = peak["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_u64().unwrap())
            .sum();
        assert_eq!(total, 400);
        assert_eq!(peak["endValue"], 400);
        // Two threads: each stack starts with its thread's frame.
        let frames = doc["shared"]["frames"].as_array().unwrap();
        let first = peak["samples"][0][0].as_u64().unwrap() as usize;
        assert!(
            frames[first]["name"]
                .as_str()
                .unwrap()
                .starts_with("thread ")
        );
        let hostile = std::fs::read_to_string(dir.path().join("h.json")).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&hostile).unwrap();
        assert!(
            doc["shared"]["frames"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["name"] == HOSTILE_FUNCTION && f["file"] == HOSTILE_FILE)
        );
    }

    #[test]
    fn collapsed_stacks_are_one_line_per_stack_outermost_first() {
        let dir = tempfile::tempdir().unwrap();
        write_capture(dir.path(), "app.mlens", "/src/app.py", "main");
        let out = text(memlens(
            dir.path(),
            &[
                "report",
                "app.mlens",
                "--format",
                "collapsed",
                "--view",
                "allocations",
            ],
        ));
        assert_eq!(
            out,
            "MainThread;main (/src/app.py:10) 100\n\
             MainThread;main (/src/app.py:11);work (/src/app.py:20) 300\n\
             worker <1>;main (/src/app.py:10) 50\n"
        );
        write_capture(dir.path(), "h.mlens", HOSTILE_FILE, HOSTILE_FUNCTION);
        let out = text(memlens(
            dir.path(),
            &["report", "h.mlens", "--format", "collapsed"],
        ));
        for line in out.lines() {
            let (stack, count) = line.rsplit_once(' ').unwrap();
            count.parse::<u64>().unwrap();
            assert!(stack.split(';').count() <= 3, "{line}");
            assert!(!line.contains('\u{1b}'));
        }
        assert_eq!(out.lines().count(), 2, "{out}");
        empty_capture(dir.path());
        let out = text(memlens(
            dir.path(),
            &["report", "empty.mlens", "--format", "collapsed"],
        ));
        assert_eq!(out, "");
    }

    #[test]
    fn text_and_json_cover_every_view_threads_and_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        write_capture(dir.path(), "app.mlens", "/src/app.py", "main");
        let out = text(memlens(
            dir.path(),
            &["report", "app.mlens", "--view", "temporary"],
        ));
        assert!(out.contains("freed soon after"), "{out}");
        // work's 300 bytes and the worker's 50 were freed before any further allocation;
        // main's 100 bytes never were.
        assert!(out.contains("300 B  85.7%  /src/app.py:20  work"), "{out}");
        assert!(out.contains("50 B  14.3%  /src/app.py:10  main"), "{out}");
        assert!(
            out.contains("by thread: MainThread 300 B · worker <1> 50 B"),
            "{out}"
        );
        assert!(out.contains("checkpoints: start at 0 ms"), "{out}");
        assert!(!out.contains('\u{1b}'), "no colour when piped: {out}");
        let json: serde_json::Value = serde_json::from_slice(&ok(memlens(
            dir.path(),
            &["report", "app.mlens", "--format", "json", "--view", "leaks"],
        )))
        .unwrap();
        assert_eq!(json["view"], "leaks");
        assert_eq!(json["threads"][1]["name"], "worker <1>");
        assert_eq!(json["threads"][1]["native_id"], 12);
        assert_eq!(json["checkpoints"][0]["label"], "start");
        assert_eq!(json["sites"][0]["leaked_bytes"], 100);
        assert_eq!(json["leak_window"], serde_json::Value::Null);
        // A leak window from the checkpoint to exit.
        let json: serde_json::Value = serde_json::from_slice(&ok(memlens(
            dir.path(),
            &[
                "report",
                "app.mlens",
                "--format",
                "json",
                "--view",
                "leaks",
                "--from",
                "start",
            ],
        )))
        .unwrap();
        assert_eq!(json["leak_window"]["from"], "start");
        assert_eq!(json["sites"][0]["leaked_bytes"], 100);
        // A missing checkpoint is one line and status 2.
        let out = memlens(dir.path(), &["report", "app.mlens", "--to", "nope"]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(r#"no checkpoint "nope""#), "{err}");
        assert!(err.contains(r#"(checkpoints: "start")"#), "{err}");
    }

    #[test]
    fn top_limits_the_lines_and_stack_shows_the_stacks_through_a_line() {
        let dir = tempfile::tempdir().unwrap();
        write_capture(dir.path(), "app.mlens", "/src/app.py", "main");
        let out = text(memlens(
            dir.path(),
            &["report", "app.mlens", "--view", "allocations", "--top", "1"],
        ));
        assert!(out.contains("/src/app.py:20  work"), "{out}");
        assert!(
            !out.contains("/src/app.py:10  main"),
            "one line only: {out}"
        );
        // main:11 -> work:20 allocated 300 bytes; the line is named by its file's last part.
        let out = text(memlens(
            dir.path(),
            &[
                "report",
                "app.mlens",
                "--view",
                "allocations",
                "--stack",
                "app.py:20",
            ],
        ));
        assert!(
            out.contains("1 call stack reaches app.py:20 (allocations: 300 B in all)"),
            "{out}"
        );
        let main = out.find("/src/app.py:11  main").expect(&out);
        let work = out.find("/src/app.py:20  work  <-").expect(&out);
        assert!(main < work, "outermost first: {out}");
        let missing = memlens(dir.path(), &["report", "app.mlens", "--stack", "app.py:99"]);
        assert_eq!(missing.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&missing.stderr).contains("no call stack reaches"));
        let bad = memlens(dir.path(), &["report", "app.mlens", "--stack", "app.py"]);
        assert_eq!(bad.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&bad.stderr).contains("--stack takes FILE:LINE"));
    }

    #[test]
    fn every_format_gives_a_valid_empty_report_for_an_empty_capture() {
        let dir = tempfile::tempdir().unwrap();
        empty_capture(dir.path());
        for view in ["peak", "leaks", "allocations", "temporary"] {
            let out = text(memlens(
                dir.path(),
                &["report", "empty.mlens", "--view", view],
            ));
            assert!(out.contains("(nothing recorded)"), "{out}");
            let json: serde_json::Value = serde_json::from_slice(&ok(memlens(
                dir.path(),
                &["report", "empty.mlens", "--format", "json", "--view", view],
            )))
            .unwrap();
            assert_eq!(json["sites"].as_array().unwrap().len(), 0);
        }
    }

    #[test]
    fn a_corrupt_capture_is_one_line_with_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_capture(dir.path(), "app.mlens", "/src/app.py", "main");
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 2] ^= 0x55;
        std::fs::write(&path, bytes).unwrap();
        for format in ["text", "json", "pprof", "speedscope", "collapsed"] {
            let out = memlens(
                dir.path(),
                &["report", "app.mlens", "--format", format, "-o", "x"],
            );
            assert_eq!(out.status.code(), Some(2));
            let err = String::from_utf8(out.stderr).unwrap();
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains("capture corrupt at offset "), "{err}");
        }
    }
}
