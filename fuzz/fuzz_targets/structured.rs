//! Structure-aware: the input describes a capture (header fields, then chunks of records with
//! small ids, so definitions and events refer to each other), which the real writer encodes;
//! then some chunks' decoded payloads are mutated (bytes flipped, cut) and framed again with
//! correct lengths and checksums, and the file itself may be cut. So nearly every input gets
//! past the magic, the CRC and zstd into record decoding, the replay and the renderers.
//!
//! Two properties beyond "no panic, no hang, no runaway memory": records written and left
//! unmutated read back exactly as written (from `Reader::records` and in the same order), and a
//! capture with no mutation and no cut is never reported as truncated.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use memlens_analysis::{Options, View};
use memlens_format::{
    ChunkKind, Domain, EventsChunk, Header, Mode, Reader, Record, RecordEncoder, Writer,
};
use memlens_report::Format;

#[derive(Arbitrary, Debug)]
enum Rec {
    String {
        id: u8,
        text: String,
    },
    Function {
        id: u8,
        name: u8,
        qualname: u8,
        file: u8,
        first_line: u16,
    },
    Frame {
        id: u8,
        function: u8,
        line: u16,
    },
    Stack {
        id: u8,
        parent: u8,
        frame: u8,
    },
    Thread {
        id: u8,
        native_id: u32,
        name: u8,
    },
    SwitchThread(u8),
    Alloc {
        addr: u16,
        size: u32,
        stack: u8,
        domain: u8,
    },
    Free {
        addr: u16,
    },
    Peak,
    Counters {
        time_ns: u32,
        live: u32,
        peak: u32,
        allocated: u32,
        allocations: u16,
        rss: u32,
    },
    Checkpoint(u8),
    End,
}

impl Rec {
    fn record(&self) -> Record {
        let id = u32::from;
        match *self {
            Rec::String { id: i, ref text } => Record::String {
                id: id(i),
                text: text.clone(),
            },
            Rec::Function {
                id: i,
                name,
                qualname,
                file,
                first_line,
            } => Record::Function {
                id: id(i),
                name: id(name),
                qualname: id(qualname),
                file: id(file),
                first_line: u32::from(first_line),
            },
            Rec::Frame {
                id: i,
                function,
                line,
            } => Record::Frame {
                id: id(i),
                function: id(function),
                line: u32::from(line),
            },
            Rec::Stack {
                id: i,
                parent,
                frame,
            } => Record::Stack {
                id: id(i),
                parent: id(parent),
                frame: id(frame),
            },
            Rec::Thread {
                id: i,
                native_id,
                name,
            } => Record::Thread {
                id: id(i),
                native_id: u64::from(native_id),
                name: id(name),
            },
            Rec::SwitchThread(i) => Record::SwitchThread(id(i)),
            // Addresses from a small set, 16-aligned or not, so frees meet their allocations.
            Rec::Alloc {
                addr,
                size,
                stack,
                domain,
            } => Record::Alloc {
                addr: 0x7f00_0000_0000 + u64::from(addr) * 8,
                size: u64::from(size),
                stack: id(stack),
                domain: [Domain::Python, Domain::Native, Domain::Mmap][usize::from(domain % 3)],
            },
            Rec::Free { addr } => Record::Free {
                addr: 0x7f00_0000_0000 + u64::from(addr) * 8,
            },
            Rec::Peak => Record::Peak,
            Rec::Counters {
                time_ns,
                live,
                peak,
                allocated,
                allocations,
                rss,
            } => Record::Counters {
                time_ns: u64::from(time_ns),
                live: u64::from(live),
                peak: u64::from(peak),
                allocated: u64::from(allocated),
                allocations: u64::from(allocations),
                rss: u64::from(rss),
            },
            Rec::Checkpoint(i) => Record::Checkpoint(id(i)),
            Rec::End => Record::End,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Chunk {
    /// Records, written by the tracker's chunk encoder, or by the general encoder and then
    /// mutated: `(position, xor)` flips in the decoded payload, and a cut.
    Events {
        records: Vec<Rec>,
        flips: Vec<(u16, u8)>,
        cut: Option<u16>,
    },
    /// A heap snapshot chunk of any bytes.
    Heap(Vec<u8>),
    /// A dropped-events count.
    Dropped(u32),
    /// A chunk kind from a newer memlens.
    Unknown(u8, Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    exact: bool,
    sample_rate: u16,
    chunks: Vec<Chunk>,
    /// Bytes cut from the end of the file.
    file_cut: Option<u16>,
    workers: bool,
    view: u8,
    leak_window: bool,
}

fuzz_target!(|input: Input| {
    let header = Header {
        python_version: "3.12.1".into(),
        pid: 1,
        command: vec!["app.py".into()],
        mode: if input.exact {
            Mode::Exact
        } else {
            Mode::Sampling
        },
        sample_rate: u64::from(input.sample_rate),
        start_unix_ns: 0,
        library_prefixes: vec!["/usr/lib/".into()],
    };
    let mut file = Vec::new();
    let mut writer = Writer::new(&mut file, &header).expect("in memory");
    // The records as written, per Events chunk; `None` once a chunk was mutated.
    let mut expected: Option<Vec<Record>> = Some(Vec::new());
    let mut mutated = false;
    let mut heaps = Vec::new();
    for chunk in &input.chunks {
        match chunk {
            Chunk::Events {
                records,
                flips,
                cut,
            } => {
                let records: Vec<Record> = records.iter().map(Rec::record).collect();
                if flips.is_empty() && cut.is_none() {
                    let mut events = EventsChunk::new();
                    for r in &records {
                        match *r {
                            Record::Alloc {
                                addr,
                                size,
                                stack,
                                domain,
                            } => events.alloc(addr, size, stack, domain),
                            Record::Free { addr } => events.free(addr),
                            ref other => events.push(other),
                        }
                    }
                    writer.write_events(&mut events).expect("in memory");
                    if let Some(e) = &mut expected {
                        e.extend(records);
                    }
                } else {
                    let mut raw = Vec::new();
                    let mut encoder = RecordEncoder::new();
                    for r in &records {
                        encoder.encode(r, &mut raw);
                    }
                    for &(at, xor) in flips {
                        if !raw.is_empty() {
                            let n = raw.len();
                            raw[usize::from(at) % n] ^= xor;
                        }
                    }
                    if let Some(cut) = cut {
                        raw.truncate(raw.len().saturating_sub(usize::from(*cut)));
                    }
                    writer
                        .write_chunk(ChunkKind::Events, &raw)
                        .expect("in memory");
                    expected = None;
                    mutated = true;
                }
            }
            Chunk::Heap(bytes) => {
                writer
                    .write_chunk(ChunkKind::HeapSnapshot, bytes)
                    .expect("in memory");
                heaps.push(bytes.clone());
            }
            Chunk::Dropped(n) => writer
                .write_dropped_events(u64::from(*n))
                .expect("in memory"),
            Chunk::Unknown(kind, bytes) => {
                // Codes 1-3 are known kinds; anything else is skipped by readers.
                let kind = ChunkKind::Unknown(kind.saturating_add(4).max(4));
                writer.write_chunk(kind, bytes).expect("in memory");
            }
        }
    }
    writer.finish().expect("in memory");
    if let Some(cut) = input.file_cut {
        file.truncate(file.len().saturating_sub(usize::from(cut)));
        expected = None;
        mutated = true;
    }

    if let Ok(reader) = Reader::new(&file) {
        let read: Result<Vec<Record>, _> = reader.records().collect();
        if let Some(expected) = &expected {
            assert_eq!(
                read.as_ref().ok(),
                Some(expected),
                "records do not round-trip"
            );
        }
        let _ = reader.dropped_events();
    } else {
        assert!(mutated, "a capture as written has an unreadable header");
    }
    for bytes in &heaps {
        let _ = memlens_heap::Snapshot::read_from(bytes);
    }

    let options = Options {
        workers: Some(usize::from(input.workers)),
        leaks_from: input.leak_window.then(|| "a".to_owned()),
        max_moments: 4,
        max_moment_values: 3,
        ..Options::default()
    };
    let report = match memlens_analysis::analyze(&file, &options) {
        Ok(r) => r,
        Err(_) => return,
    };
    if !mutated {
        let warning = report.meta.warning.as_deref().unwrap_or("");
        assert!(
            !warning.contains("truncated"),
            "an intact capture read as truncated: {warning}"
        );
    }
    let view = View::ALL[usize::from(input.view) % View::ALL.len()];
    for format in [Format::Text, Format::Json, Format::Collapsed] {
        let mut out = Vec::new();
        memlens_report::render(&report, format, view, &mut out).expect("in memory");
    }
});
