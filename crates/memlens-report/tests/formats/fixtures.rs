//! The shared fixture reports: normal, empty and hostile, made the way users get them (a
//! capture written with `memlens_format::Writer`, then analysed).

use memlens_analysis::{Options, Report, analyze};
use memlens_format::{Domain, Header, Mode, Record, Writer};

/// A capture of `records`, with a count of events the tracker dropped when `dropped` is not 0.
fn capture(records: Vec<Record>, dropped: u64) -> Vec<u8> {
    let header = Header {
        python_version: "3.12.1".into(),
        pid: 4242,
        command: vec!["app.py".into(), "--size".into(), "3".into()],
        mode: Mode::Exact,
        sample_rate: 1,
        start_unix_ns: 0,
        library_prefixes: vec!["/usr/lib/python3.12/".into()],
    };
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out, &header).unwrap();
    w.write_records(&records).unwrap();
    if dropped > 0 {
        w.write_dropped_events(dropped).unwrap();
    }
    w.finish().unwrap();
    out
}

fn program(file: &str, function: &str, thread: &str) -> Vec<Record> {
    let s = |id: u32, text: &str| Record::String {
        id,
        text: text.into(),
    };
    let alloc = |addr: u64, size: u64, stack: u32| Record::Alloc {
        addr,
        size,
        stack,
        domain: Domain::Python,
    };
    vec![
        s(0, function),
        s(1, file),
        s(2, "dumps"),
        s(3, "/usr/lib/python3.12/json/__init__.py"),
        s(4, "MainThread"),
        s(5, thread),
        s(6, "warm"),
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
            line: 231,
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
            native_id: 100,
            name: 4,
        },
        Record::Thread {
            id: 2,
            native_id: 101,
            name: 5,
        },
        Record::SwitchThread(1),
        Record::Counters {
            time_ns: 0,
            live: 0,
            peak: 0,
            allocated: 0,
            allocations: 0,
            rss: 8 << 20,
        },
        alloc(0x1000, 4 << 20, 1),
        Record::Checkpoint(6),
        alloc(0x2000, 12 << 20, 3),
        Record::Peak,
        Record::Counters {
            time_ns: 20_000_000,
            live: 16 << 20,
            peak: 16 << 20,
            allocated: 16 << 20,
            allocations: 2,
            rss: 30 << 20,
        },
        Record::Free { addr: 0x2000 },
        Record::SwitchThread(2),
        alloc(0x3000, 96, 1),
        Record::Free { addr: 0x3000 },
        alloc(0x4000, 1 << 20, 2),
        Record::Counters {
            time_ns: 40_000_000,
            live: 5 << 20,
            peak: 16 << 20,
            allocated: (17 << 20) + 96,
            allocations: 4,
            rss: 31 << 20,
        },
        Record::End,
    ]
}

/// A two-thread program: a 4 MiB block kept from line 10, a 12 MiB temporary from json
/// called at line 20 (the peak), 1 MiB kept by the worker at line 20.
pub fn normal() -> Report {
    analyze(
        &capture(program("/src/app.py", "main", "worker-1"), 0),
        &Options::default(),
    )
    .unwrap()
}

/// A program that allocated nothing.
pub fn empty() -> Report {
    analyze(
        &capture(
            vec![
                Record::Counters {
                    time_ns: 1_000_000,
                    live: 0,
                    peak: 0,
                    allocated: 0,
                    allocations: 0,
                    rss: 8 << 20,
                },
                Record::End,
            ],
            0,
        ),
        &Options::default(),
    )
    .unwrap()
}

/// Names from the profiled program that try to act: markup, quotes, separators, escapes.
pub const HOSTILE_FILE: &str = "/src/</script><script>alert('x')</script>\".py";
/// A function name with a folded-stack separator, a newline and a terminal escape.
pub const HOSTILE_FUNCTION: &str = "f;g\n\u{1b}[2J\"<img src=x onerror=alert(1)>";

/// [`normal`] with hostile file, function and thread names, from a capture that lost events
/// (the tracker's writer fell behind).
pub fn hostile() -> Report {
    analyze(
        &capture(
            program(HOSTILE_FILE, HOSTILE_FUNCTION, "<b>thread</b>\r"),
            12_345,
        ),
        &Options::default(),
    )
    .unwrap()
}
