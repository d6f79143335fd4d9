//! Every view, thread, the call tree, moments and the leak window on synthetic captures whose
//! numbers are known.

use memlens_analysis::{Options, Report, TemporaryRule, View, analyze};
use memlens_format::{Domain, Header, Mode, Record, Writer};

/// Strings 0..: functions 0 = app.py:main, 1 = app.py:work; frames 0 = main:10, 1 = work:20,
/// 2 = main:30; stacks 1 = [main:10], 2 = [main:10 -> work:20], 3 = [main:30].
fn defs() -> Vec<Record> {
    let mut v = vec![
        Record::String {
            id: 0,
            text: "main".into(),
        },
        Record::String {
            id: 1,
            text: "/src/app.py".into(),
        },
        Record::String {
            id: 2,
            text: "work".into(),
        },
        Record::String {
            id: 3,
            text: "MainThread".into(),
        },
        Record::String {
            id: 4,
            text: "worker-1".into(),
        },
        Record::String {
            id: 5,
            text: "a".into(),
        },
        Record::String {
            id: 6,
            text: "b".into(),
        },
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
            first_line: 15,
        },
        Record::Frame {
            id: 0,
            function: 0,
            line: 10,
        },
        Record::Frame {
            id: 1,
            function: 1,
            line: 20,
        },
        Record::Frame {
            id: 2,
            function: 0,
            line: 30,
        },
    ];
    v.extend([
        Record::Stack {
            id: 1,
            parent: 0,
            frame: 0,
        },
        Record::Stack {
            id: 2,
            parent: 1,
            frame: 1,
        },
        Record::Stack {
            id: 3,
            parent: 0,
            frame: 2,
        },
        Record::Thread {
            id: 1,
            native_id: 1001,
            name: 3,
        },
        Record::Thread {
            id: 2,
            native_id: 1002,
            name: 4,
        },
    ]);
    v
}

fn capture(records: Vec<Record>) -> Vec<u8> {
    let header = Header {
        python_version: "3.12.1".into(),
        pid: 7,
        command: vec!["app.py".into()],
        mode: Mode::Exact,
        sample_rate: 1,
        start_unix_ns: 0,
        library_prefixes: vec!["/usr/lib/python3.12/".into()],
    };
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out, &header).unwrap();
    // Several chunks, so the parallel decoder has something to order.
    for chunk in records.chunks(7) {
        w.write_records(chunk).unwrap();
    }
    w.finish().unwrap();
    out
}

fn alloc(addr: u64, size: u64, stack: u32) -> Record {
    Record::Alloc {
        addr,
        size,
        stack,
        domain: Domain::Python,
    }
}

fn free(addr: u64) -> Record {
    Record::Free { addr }
}

fn counters(ms: u64, live: u64) -> Record {
    Record::Counters {
        time_ns: ms * 1_000_000,
        live,
        peak: live,
        allocated: 0,
        allocations: 0,
        rss: 0,
    }
}

/// The flame figure of `view` per (innermost line, thread name).
fn flame(report: &Report, view: View) -> Vec<(u32, String, u64, u64)> {
    let mut out: Vec<_> = report
        .flame(view)
        .map(|f| f.values.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|v| {
            let path = report.calls.path(v.node);
            (
                path.last().unwrap().line,
                report.threads[v.thread as usize].name.clone(),
                v.bytes,
                v.count,
            )
        })
        .collect();
    out.sort();
    out
}

fn analyze_with(records: Vec<Record>, options: &Options) -> Report {
    analyze(&capture(records), options).unwrap()
}

fn site_bytes(report: &Report, line: u32, view: View) -> u64 {
    report
        .sites
        .iter()
        .find(|s| s.location.line == line)
        .map_or(0, |s| s.bytes(view))
}

#[test]
fn threads_are_named_and_each_allocation_belongs_to_the_last_switch() {
    let mut r = defs();
    r.extend([
        Record::SwitchThread(1),
        alloc(0x1000, 100, 1),
        Record::SwitchThread(2),
        alloc(0x2000, 200, 2),
        alloc(0x3000, 50, 1),
        Record::SwitchThread(1),
        alloc(0x4000, 10, 1),
        Record::End,
    ]);
    for workers in [0, 1, 3] {
        let options = Options {
            workers: Some(workers),
            ..Options::default()
        };
        let report = analyze_with(r.clone(), &options);
        let names: Vec<(&str, u64)> = report
            .threads
            .iter()
            .map(|t| (t.name.as_str(), t.native_id))
            .collect();
        assert_eq!(names, [("MainThread", 1001), ("worker-1", 1002)]);
        assert_eq!(
            flame(&report, View::Allocations),
            [
                (10, "MainThread".into(), 110, 2),
                (10, "worker-1".into(), 50, 1),
                (20, "worker-1".into(), 200, 1),
            ]
        );
        // Sites merge threads.
        assert_eq!(site_bytes(&report, 10, View::Allocations), 160);
    }
}

#[test]
fn the_call_tree_is_the_capture_stack_table_with_parents_first() {
    let mut r = defs();
    r.extend([alloc(0x1000, 100, 2), alloc(0x2000, 16, 3), Record::End]);
    let report = analyze_with(r, &Options::default());
    let tree = &report.calls;
    for (i, n) in tree.nodes.iter().enumerate().skip(1) {
        assert!((n.parent as usize) < i, "node {i} has parent {}", n.parent);
    }
    let v = &report.flame(View::Allocations).unwrap().values;
    let paths: Vec<Vec<(String, u32)>> = v
        .iter()
        .map(|v| {
            tree.path(v.node)
                .iter()
                .map(|l| (l.function.clone(), l.line))
                .collect()
        })
        .collect();
    assert!(paths.contains(&vec![("main".into(), 10), ("work".into(), 20)]));
    assert!(paths.contains(&vec![("main".into(), 30)]));
    // Three frames, no duplicates; root + main:10 + work:20 + main:30.
    assert_eq!(tree.frames.len(), 3);
    assert_eq!(tree.nodes.len(), 4);
}

#[test]
fn peak_flame_is_the_live_set_at_the_last_mark() {
    let mut r = defs();
    r.extend([
        alloc(0x1000, 100, 1),
        alloc(0x2000, 300, 2),
        Record::Peak,
        free(0x2000),
        alloc(0x3000, 40, 3),
        Record::End,
    ]);
    let report = analyze_with(r, &Options::default());
    assert_eq!(
        flame(&report, View::Peak),
        [
            (10, "thread 0".into(), 100, 1),
            (20, "thread 0".into(), 300, 1)
        ]
    );
    assert_eq!(
        flame(&report, View::Leaks),
        [
            (10, "thread 0".into(), 100, 1),
            (30, "thread 0".into(), 40, 1)
        ]
    );
}

#[test]
fn temporary_counts_blocks_freed_within_n_further_allocations() {
    let mut r = defs();
    r.extend([
        alloc(0x1000, 100, 1), // freed after 1 further allocation
        alloc(0x2000, 16, 3),
        free(0x1000),
        alloc(0x3000, 200, 2), // freed after 3 further allocations
        alloc(0x4000, 16, 3),
        alloc(0x5000, 16, 3),
        alloc(0x6000, 16, 3),
        free(0x3000),
        Record::End,
    ]);
    let with = |n| Options {
        temporary: TemporaryRule {
            max_allocations: Some(n),
            max_ms: None,
        },
        ..Options::default()
    };
    let report = analyze_with(r.clone(), &with(1));
    assert_eq!(site_bytes(&report, 10, View::Temporary), 100);
    assert_eq!(site_bytes(&report, 20, View::Temporary), 0);
    assert_eq!(
        flame(&report, View::Temporary),
        [(10, "thread 0".into(), 100, 1)]
    );
    let report = analyze_with(r.clone(), &with(3));
    assert_eq!(site_bytes(&report, 20, View::Temporary), 200);
    let top: Vec<u32> = report
        .top_sites(View::Temporary)
        .map(|s| s.location.line)
        .collect();
    assert_eq!(top, [20, 10]);
    // Nothing freed: an empty temporary view, and no flame for it.
    let mut r = defs();
    r.extend([alloc(0x1000, 100, 1), Record::End]);
    let report = analyze_with(r, &Options::default());
    assert!(report.flame(View::Temporary).is_none());
    assert_eq!(report.top_sites(View::Temporary).count(), 0);
}

#[test]
fn temporary_by_time_uses_the_counter_clock_and_both_bounds_must_hold() {
    let mut r = defs();
    r.extend([
        counters(0, 0),
        alloc(0x1000, 100, 1),
        counters(20, 100),
        alloc(0x2000, 200, 2),
        counters(100, 300),
        free(0x1000), // 100 ms old, 1 further allocation
        free(0x2000), // 80 ms old, 0 further allocations
        Record::End,
    ]);
    let rule = |n, ms| Options {
        temporary: TemporaryRule {
            max_allocations: n,
            max_ms: ms,
        },
        ..Options::default()
    };
    let report = analyze_with(r.clone(), &rule(None, Some(90.0)));
    assert_eq!(site_bytes(&report, 10, View::Temporary), 0);
    assert_eq!(site_bytes(&report, 20, View::Temporary), 200);
    let report = analyze_with(r.clone(), &rule(None, Some(100.0)));
    assert_eq!(site_bytes(&report, 10, View::Temporary), 100);
    // Both: within 100 ms and within 0 further allocations; only line 20 passes both.
    let report = analyze_with(r, &rule(Some(0), Some(100.0)));
    assert_eq!(site_bytes(&report, 10, View::Temporary), 0);
    assert_eq!(site_bytes(&report, 20, View::Temporary), 200);
}

#[test]
fn leaks_between_checkpoints() {
    let mut r = defs();
    r.extend([
        alloc(0x1000, 100, 1), // before "a": never in the window
        counters(10, 100),
        Record::Checkpoint(5),
        alloc(0x2000, 200, 2), // in the window, live at "b": a leak
        alloc(0x3000, 300, 3), // in the window, freed before "b"
        free(0x3000),
        free(0x1000),
        counters(20, 200),
        Record::Checkpoint(6),
        alloc(0x4000, 400, 3), // after "b"
        free(0x2000),
        Record::End,
    ]);
    let window = |from: Option<&str>, to: Option<&str>| Options {
        leaks_from: from.map(Into::into),
        leaks_to: to.map(Into::into),
        ..Options::default()
    };
    let report = analyze_with(r.clone(), &window(Some("a"), Some("b")));
    assert_eq!(site_bytes(&report, 20, View::Leaks), 200);
    assert_eq!(site_bytes(&report, 10, View::Leaks), 0);
    assert_eq!(site_bytes(&report, 30, View::Leaks), 0);
    let w = report.leak_window.clone().unwrap();
    assert_eq!((w.from_time_s, w.to_time_s), (0.01, 0.02));
    let labels: Vec<&str> = report
        .checkpoints
        .iter()
        .map(|c| c.label.as_str())
        .collect();
    assert_eq!(labels, ["a", "b"]);
    // From "a" to exit: only the block allocated after "b" is still live.
    let report = analyze_with(r.clone(), &window(Some("a"), None));
    assert_eq!(site_bytes(&report, 30, View::Leaks), 400);
    assert_eq!(site_bytes(&report, 20, View::Leaks), 0);
    // From the start to "b".
    let report = analyze_with(r.clone(), &window(None, Some("b")));
    assert_eq!(site_bytes(&report, 20, View::Leaks), 200);
    assert_eq!(site_bytes(&report, 10, View::Leaks), 0);
    // Default: live at exit.
    let report = analyze_with(r.clone(), &Options::default());
    assert_eq!(site_bytes(&report, 30, View::Leaks), 400);
    assert!(report.leak_window.is_none());
    // A label the capture lacks: one line naming what it has.
    let err = analyze(&capture(r.clone()), &window(Some("nope"), None))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        r#"no checkpoint "nope" in the capture where the leak window needs it (checkpoints: "a", "b")"#
    );
    // "b" then "a" never closes.
    let err = analyze(&capture(r), &window(Some("b"), Some("a")))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(r#"no checkpoint "a""#), "{err}");
}

#[test]
fn moments_are_bounded_evenly_spaced_and_hold_the_live_set_then() {
    let mut r = defs();
    // 1000 ticks; at tick k, block k is live (and block k-1 freed).
    for k in 0..1000u64 {
        if k > 0 {
            r.push(free(0x1000 * k));
        }
        r.push(alloc(0x1000 * (k + 1), 16 * (k + 1), 1 + (k % 3) as u32));
        r.push(counters(k * 10, 16 * (k + 1)));
    }
    r.push(Record::End);
    let options = Options {
        max_moments: 20,
        max_moment_values: 2,
        ..Options::default()
    };
    let report = analyze_with(r, &options);
    let n = report.moments.len();
    assert!((10..=20).contains(&n), "{n} moments");
    let times: Vec<f64> = report.moments.iter().map(|m| m.time_s).collect();
    let steps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        steps.iter().all(|s| (s - steps[0]).abs() < 1e-9),
        "{steps:?}"
    );
    for m in &report.moments {
        let k = (m.time_s * 100.0).round() as u64;
        assert_eq!(m.live_bytes, 16 * (k + 1));
        assert_eq!(m.values.len(), 1);
        assert_eq!(m.values[0].bytes, 16 * (k + 1));
        let line = report.calls.path(m.values[0].node).last().unwrap().line;
        assert_eq!(line, [10, 20, 30][(k % 3) as usize]);
    }
}

#[test]
fn wild_ids_are_a_corrupt_file_not_an_allocation_spree() {
    let r = vec![Record::Stack {
        id: u32::MAX,
        parent: 1,
        frame: 1,
    }];
    let err = analyze(&capture(r), &Options::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("far beyond"), "{err}");
}
