//! Replay on synthetic captures with known contents: peak set, leaks, sampling weights,
//! library folding, truncation.

use memlens_analysis::{Options, View, analyze};
use memlens_format::{Domain, Header, Mode, Record, Writer};

const LIB: &str = "/usr/lib/python3.11/";

/// Strings 0.., functions: 0 = app.py:main, 1 = lib json.dumps; frames: 0 = app.py:10,
/// 1 = app.py:20, 2 = json:5; stacks: 1 = [app:10], 2 = [app:20], 3 = [app:20 -> json:5].
fn defs() -> Vec<Record> {
    vec![
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
            text: "dumps".into(),
        },
        Record::String {
            id: 3,
            text: format!("{LIB}json/__init__.py"),
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
            file: 3,
            first_line: 1,
        },
        Record::Frame {
            id: 0,
            function: 0,
            line: 10,
        },
        Record::Frame {
            id: 1,
            function: 0,
            line: 20,
        },
        Record::Frame {
            id: 2,
            function: 1,
            line: 5,
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
    ]
}

fn capture(mode: Mode, rate: u64, chunks: &[Vec<Record>]) -> Vec<u8> {
    let header = Header {
        python_version: "3.11.7".into(),
        pid: 1,
        command: vec!["app.py".into()],
        mode,
        sample_rate: rate,
        start_unix_ns: 0,
        library_prefixes: vec![LIB.into()],
    };
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out, &header).unwrap();
    for c in chunks {
        w.write_records(c).unwrap();
    }
    w.finish().unwrap();
    out
}

fn alloc(addr: u64, size: u64, stack: u32) -> Record {
    Record::Alloc {
        addr,
        size,
        stack,
        domain: Domain::Native,
    }
}

fn site(report: &memlens_analysis::Report, line: u32) -> &memlens_analysis::Site {
    report
        .sites
        .iter()
        .find(|s| s.location.line == line)
        .expect("site")
}

#[test]
fn peak_set_is_the_live_set_at_the_last_mark() {
    let mut events = defs();
    events.extend([
        alloc(0x1000, 100, 1),
        alloc(0x2000, 300, 2),
        Record::Peak, // live: 100 @10, 300 @20
        Record::Free { addr: 0x2000 },
        alloc(0x3000, 50, 2),
        alloc(0x4000, 120, 3), // live 270 < 400: not a new peak
        Record::Counters {
            time_ns: 1,
            live: 270,
            peak: 400,
            allocated: 570,
            allocations: 4,
            rss: 9,
        },
        Record::End,
    ]);
    let report = analyze(&capture(Mode::Exact, 1, &[events]), &Options::default()).unwrap();
    assert_eq!(site(&report, 10).peak_bytes, 100);
    // The library frame (json) folds into the user's line 20: 300 at the peak.
    assert_eq!(site(&report, 20).peak_bytes, 300);
    assert_eq!(site(&report, 20).leaked_bytes, 170);
    assert_eq!(site(&report, 20).allocated_bytes, 470);
    assert_eq!(site(&report, 20).allocations, 3);
    assert_eq!(
        site(&report, 20).stack[0].line,
        20,
        "the heaviest stack is shown"
    );
    assert_eq!(report.totals.peak_bytes, 400);
    assert_eq!(report.meta.events, 5, "four allocations and one free");
    assert!(report.meta.warning.is_none());
    let top: Vec<u32> = report
        .top_sites(View::Peak)
        .map(|s| s.location.line)
        .collect();
    assert_eq!(top, vec![20, 10]);
}

#[test]
fn library_frames_fold_into_the_calling_user_line_and_the_full_stack_is_kept() {
    let mut events = defs();
    events.extend([alloc(0x1000, 64, 3), Record::End]);
    let report = analyze(&capture(Mode::Exact, 1, &[events]), &Options::default()).unwrap();
    assert_eq!(report.sites.len(), 1);
    let s = &report.sites[0];
    assert_eq!(
        (s.location.file.as_str(), s.location.line),
        ("/src/app.py", 20)
    );
    let stack: Vec<(String, u32)> = s
        .stack
        .iter()
        .map(|l| (l.function.clone(), l.line))
        .collect();
    assert_eq!(
        stack,
        vec![("dumps".to_string(), 5), ("main".to_string(), 20)]
    );
}

#[test]
fn a_peak_before_later_changes_is_remembered_per_stack() {
    let mut events = defs();
    events.extend([
        alloc(0x1000, 100, 1),
        Record::Peak,
        Record::Free { addr: 0x1000 }, // changes after the mark must not leak into the peak
        alloc(0x1000, 999, 1),
        Record::Free { addr: 0x1000 },
        Record::End,
    ]);
    let report = analyze(&capture(Mode::Exact, 1, &[events]), &Options::default()).unwrap();
    assert_eq!(site(&report, 10).peak_bytes, 100);
    assert_eq!(site(&report, 10).leaked_bytes, 0);
}

#[test]
fn sampled_blocks_are_weighted_back_to_unbiased_estimates() {
    let rate = 1000u64;
    let mut events = defs();
    events.push(alloc(0x1000, 500, 1));
    events.push(Record::End);
    let report = analyze(
        &capture(Mode::Sampling, rate, &[events]),
        &Options::default(),
    )
    .unwrap();
    let p = 1.0 - (-(500.0f64) / rate as f64).exp();
    let expected = (500.0 / p).round() as u64;
    assert_eq!(site(&report, 10).allocated_bytes, expected);
    assert_eq!(site(&report, 10).allocations, (1.0 / p).round() as u64);
}

#[test]
fn a_line_s_high_water_mark_is_what_it_held_at_once() {
    const MIB: u64 = 1 << 20;
    let mut events = defs();
    // Line 10 allocates 100 MiB ten times, freeing each before the next; the program's peak
    // falls later, at line 20, when line 10 holds nothing.
    for _ in 0..10 {
        events.push(alloc(0x1000, 100 * MIB, 1));
        events.push(Record::Free { addr: 0x1000 });
    }
    events.extend([alloc(0x2000, 150 * MIB, 2), Record::Peak, Record::End]);
    let report = analyze(&capture(Mode::Exact, 1, &[events]), &Options::default()).unwrap();
    let s = site(&report, 10);
    assert_eq!((s.peak_bytes, s.high_water_bytes), (0, 100 * MIB));
    let mr002 = report
        .findings
        .iter()
        .find(|f| f.rule == "MR002")
        .expect("MR002");
    assert!(
        mr002
            .message
            .contains("never held more than 100.0 MiB at once"),
        "{}",
        mr002.message
    );
}

#[test]
fn sampled_figures_add_up_to_the_exact_totals() {
    let rate = 1000u64;
    let mut events = defs();
    // Three sampled blocks whose weights sum past what the program really held.
    events.extend([
        alloc(0x1000, 500, 1),
        alloc(0x2000, 2000, 2),
        alloc(0x3000, 800, 1),
        Record::Peak,
        Record::Free { addr: 0x3000 },
        Record::Counters {
            time_ns: 1_000_000,
            live: 1500,
            peak: 2400,
            allocated: 3000,
            allocations: 6,
            rss: 0,
        },
        Record::End,
    ]);
    let report = analyze(
        &capture(Mode::Sampling, rate, &[events]),
        &Options::default(),
    )
    .unwrap();
    assert!(report.meta.sites_estimated);
    let sum = |f: fn(&memlens_analysis::Site) -> u64| report.sites.iter().map(f).sum::<u64>();
    let near = |a: u64, b: u64| a.abs_diff(b) <= report.sites.len() as u64;
    assert!(near(sum(|s| s.peak_bytes), 2400), "{:?}", report.sites);
    assert!(near(sum(|s| s.leaked_bytes), 1500));
    assert!(near(sum(|s| s.allocated_bytes), 3000));
    assert!(near(sum(|s| s.allocations), 6));
    for s in &report.sites {
        assert!(s.peak_bytes <= s.high_water_bytes && s.leaked_bytes <= s.high_water_bytes);
        assert!(s.high_water_bytes <= 2400);
    }
    // The flame graph of the peak view adds up to the header's peak too.
    let flame: u64 = report
        .flame(View::Peak)
        .unwrap()
        .values
        .iter()
        .map(|v| v.bytes)
        .sum();
    assert!(near(flame, 2400), "{flame}");
}

#[test]
fn a_cut_capture_reports_whole_chunks_with_a_warning() {
    let mut first = defs();
    first.push(alloc(0x1000, 100, 1));
    let second = vec![alloc(0x2000, 200, 2), Record::End];
    let bytes = capture(Mode::Exact, 1, &[first, second]);
    let cut = &bytes[..bytes.len() - 3];
    let report = analyze(cut, &Options::default()).unwrap();
    assert_eq!(site(&report, 10).leaked_bytes, 100);
    assert!(report.sites.iter().all(|s| s.location.line != 20));
    let warning = report.meta.warning.unwrap();
    assert!(
        warning.starts_with("capture truncated at offset"),
        "{warning}"
    );
}

#[test]
fn an_empty_capture_is_an_empty_report() {
    let report = analyze(
        &capture(Mode::Exact, 1, &[vec![Record::End]]),
        &Options::default(),
    )
    .unwrap();
    assert!(report.sites.is_empty());
    assert!(report.findings.is_empty());
    assert_eq!(report.totals.peak_bytes, 0);
}

#[test]
fn corruption_is_an_error_naming_the_offset() {
    let mut bytes = capture(Mode::Exact, 1, &[defs()]);
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    let err = analyze(&bytes, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("capture corrupt at offset "), "{err}");
}
