//! The collector's pass (`analyze_gc`) on synthetic captures whose numbers are known.

use memlens_analysis::analyze_gc;
use memlens_format::{Domain, Header, Mode, Record, Writer};

fn capture(mode: Mode, records: Vec<Record>) -> Vec<u8> {
    let header = Header {
        python_version: "3.12.1".into(),
        pid: 7,
        command: vec!["app.py".into()],
        mode,
        sample_rate: if mode == Mode::Exact { 1 } else { 1000 },
        start_unix_ns: 0,
        library_prefixes: vec!["/usr/lib/python3.12/".into()],
    };
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out, &header).unwrap();
    for chunk in records.chunks(5) {
        w.write_records(chunk).unwrap();
    }
    w.finish().unwrap();
    out
}

/// app.py: `make` at line 5 (stack 1), called from a library frame (stack 2 = make:5 ->
/// lib.py:9), and `other` at line 8 (stack 3).
fn defs() -> Vec<Record> {
    vec![
        Record::String {
            id: 0,
            text: "make".into(),
        },
        Record::String {
            id: 1,
            text: "/src/app.py".into(),
        },
        Record::String {
            id: 2,
            text: "copy".into(),
        },
        Record::String {
            id: 3,
            text: "/usr/lib/python3.12/copy.py".into(),
        },
        Record::String {
            id: 4,
            text: "other".into(),
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
        Record::Function {
            id: 2,
            name: 4,
            qualname: 4,
            file: 1,
            first_line: 7,
        },
        Record::Frame {
            id: 0,
            function: 0,
            line: 5,
        },
        Record::Frame {
            id: 1,
            function: 1,
            line: 9,
        },
        Record::Frame {
            id: 2,
            function: 2,
            line: 8,
        },
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
            id: 0,
            native_id: 100,
            name: 0,
        },
        Record::Thread {
            id: 1,
            native_id: 101,
            name: 4,
        },
    ]
}

fn alloc(addr: u64, size: u64, stack: u32) -> Record {
    Record::Alloc {
        addr,
        size,
        stack,
        domain: Domain::Python,
    }
}

#[test]
fn pauses_generations_and_the_lines_whose_memory_collections_freed() {
    let mut r = defs();
    r.extend([
        Record::SwitchThread(0),
        Record::GcEnabled {
            on: true,
            time_ns: 0,
        },
        alloc(0x1000, 1000, 1),
        alloc(0x2000, 3000, 2),
        alloc(0x3000, 500, 3),
        alloc(0x4000, 64, 3),
        // Freed by reference counting: not the collector's.
        Record::Free { addr: 0x4000 },
    ]);
    // The program goes on allocating; the last allocation before the collection is the
    // collector's own (the dict `gc.callbacks` get), freed while it runs.
    r.extend((0..20).map(|i| alloc(0x10_0000 + i * 64, 64, 3)));
    r.extend([
        alloc(0x9000, 232, 3),
        Record::GcStart {
            generation: 0,
            time_ns: 1_000_000,
            freed: 64,
        },
        Record::Free { addr: 0x1000 },
        Record::Free { addr: 0x9000 },
        Record::Free { addr: 0x2000 },
        // Another thread frees while the collector runs: not the collection's.
        Record::SwitchThread(1),
        Record::Free { addr: 0x3000 },
        Record::SwitchThread(0),
        Record::GcStop {
            generation: 0,
            time_ns: 3_000_000,
            freed: 4296,
            collected: 2,
        },
        Record::GcStart {
            generation: 2,
            time_ns: 10_000_000,
            freed: 4564,
        },
        Record::GcStop {
            generation: 2,
            time_ns: 18_000_000,
            freed: 4564,
            collected: 0,
        },
        Record::GcUncollectable(3),
        Record::GcEnabled {
            on: false,
            time_ns: 20_000_000,
        },
        Record::Counters {
            time_ns: 100_000_000,
            live: 0,
            peak: 4564,
            allocated: 4564,
            allocations: 4,
            rss: 0,
        },
        Record::GcFinal {
            garbage: 3,
            frozen: 10,
            enabled: false,
        },
        Record::End,
    ]);
    let gc = analyze_gc(&capture(Mode::Exact, r)).unwrap();
    assert!(gc.recorded);
    assert_eq!(gc.pauses.count, 2);
    assert!((gc.pauses.total_s - 0.010).abs() < 1e-9, "{:?}", gc.pauses);
    assert!((gc.pauses.max_s - 0.008).abs() < 1e-9);
    assert!((gc.pauses.p50_s - 0.002).abs() < 1e-9);
    assert!((gc.pauses.p99_s - 0.008).abs() < 1e-9);
    let g0 = &gc.generations[0];
    assert_eq!((g0.collections, g0.collected, g0.freed_bytes), (1, 2, 4000));
    let g2 = &gc.generations[2];
    assert_eq!((g2.collections, g2.uncollectable), (1, 3));
    assert_eq!(gc.generations[1].collections, 0);
    assert_eq!(gc.cyclic_garbage.bytes, 4000);
    assert_eq!(gc.cyclic_garbage.objects, 2);
    assert!(!gc.cyclic_garbage.sites_estimated);
    // Both blocks at app.py:5: the library frame of the second folds into its caller; the
    // other thread's free is not the collection's.
    assert_eq!(
        gc.cyclic_garbage.sites.len(),
        1,
        "{:?}",
        gc.cyclic_garbage.sites
    );
    let site = &gc.cyclic_garbage.sites[0];
    assert_eq!(
        (site.location.file.as_str(), site.location.line),
        ("/src/app.py", 5)
    );
    assert_eq!((site.bytes, site.blocks), (4000, 2));
    // Off from 20 ms to the end of the capture at 100 ms.
    assert!((gc.disabled_s - 0.080).abs() < 1e-9, "{}", gc.disabled_s);
    assert_eq!(gc.enabled_at_end, Some(false));
    assert_eq!((gc.garbage, gc.frozen), (Some(3), Some(10)));
}

#[test]
fn sampled_sites_are_weighted_and_marked_as_estimates() {
    let mut r = defs();
    r.extend([
        Record::SwitchThread(0),
        alloc(0x1000, 1000, 1),
        Record::GcStart {
            generation: 1,
            time_ns: 0,
            freed: 0,
        },
        Record::Free { addr: 0x1000 },
        Record::GcStop {
            generation: 1,
            time_ns: 10,
            freed: 1600,
            collected: 1,
        },
        Record::End,
    ]);
    let gc = analyze_gc(&capture(Mode::Sampling, r)).unwrap();
    assert!(gc.cyclic_garbage.sites_estimated);
    // A 1000-byte block sampled at a 1000-byte mean stands for 1000 / (1 - e^-1) bytes.
    let expected = 1000.0 / (1.0 - (-1.0f64).exp());
    assert_eq!(gc.cyclic_garbage.sites[0].bytes, expected.round() as u64);
    assert_eq!(
        gc.cyclic_garbage.bytes, 1600,
        "the total is the exact count"
    );
}

#[test]
fn a_capture_without_collector_records_says_so() {
    let mut r = defs();
    r.extend([Record::SwitchThread(0), alloc(0x1000, 10, 1), Record::End]);
    let gc = analyze_gc(&capture(Mode::Exact, r)).unwrap();
    assert!(!gc.recorded);
    assert_eq!(gc.pauses.count, 0);
}

#[test]
fn a_foreign_file_is_one_error() {
    let err = analyze_gc(b"not a capture at all").unwrap_err();
    assert!(!err.to_string().is_empty());
}
