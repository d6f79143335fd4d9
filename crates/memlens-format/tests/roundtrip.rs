//! Property tests of the capture contract: what is written reads back, and any truncation or
//! corruption is reported as an error (never a panic), keeping every complete chunk before it.

use memlens_format::{ChunkKind, Domain, FormatError, Header, Mode, Reader, Record, Writer};
use proptest::prelude::*;

fn record() -> impl Strategy<Value = Record> {
    let domain = prop_oneof![
        Just(Domain::Python),
        Just(Domain::Native),
        Just(Domain::Mmap)
    ];
    prop_oneof![
        (any::<u64>(), 0u64..1 << 42, 0u32..1000, domain).prop_map(
            |(addr, size, stack, domain)| Record::Alloc {
                addr,
                size,
                stack,
                domain
            }
        ),
        any::<u64>().prop_map(|addr| Record::Free { addr }),
        (any::<u32>(), ".{0,20}").prop_map(|(id, text)| Record::String { id, text }),
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(id, parent, frame)| Record::Stack {
            id,
            parent,
            frame
        }),
        Just(Record::Peak),
        (any::<u64>(), any::<u64>()).prop_map(|(t, live)| Record::Counters {
            time_ns: t,
            live,
            peak: live,
            allocated: 1,
            allocations: 2,
            rss: 3
        }),
    ]
}

fn write(chunks: &[Vec<Record>]) -> Vec<u8> {
    let header = Header {
        python_version: "3.11.7".into(),
        pid: 42,
        command: vec!["app.py".into(), "--flag".into()],
        mode: Mode::Sampling,
        sample_rate: 4096,
        start_unix_ns: 1,
        library_prefixes: vec!["/usr/lib/python3.11".into()],
    };
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out, &header).unwrap();
    for c in chunks {
        w.write_records(c).unwrap();
    }
    w.finish().unwrap();
    out
}

proptest! {
    #[test]
    fn round_trip(chunks in prop::collection::vec(prop::collection::vec(record(), 1..50), 0..5)) {
        let bytes = write(&chunks);
        let reader = Reader::new(&bytes).unwrap();
        prop_assert_eq!(reader.header().pid, 42);
        let back: Vec<Record> = reader.records().collect::<Result<_, _>>().unwrap();
        let expected: Vec<Record> = chunks.concat();
        prop_assert_eq!(back, expected);
    }

    #[test]
    fn truncation_keeps_complete_chunks(chunks in prop::collection::vec(prop::collection::vec(record(), 1..30), 1..5), cut in any::<prop::sample::Index>()) {
        let bytes = write(&chunks);
        let cut = cut.index(bytes.len());
        let truncated = &bytes[..cut];
        match Reader::new(truncated) {
            Err(e) => prop_assert!(e.is_truncation(), "header cut gave {e}"),
            Ok(reader) => {
                let mut got = Vec::new();
                for r in reader.records() {
                    match r {
                        Ok(r) => got.push(r),
                        Err(e) => { prop_assert!(e.is_truncation(), "got {e}"); break; }
                    }
                }
                // Whatever was read is a prefix made of whole chunks.
                let mut prefix = Vec::new();
                let mut ok = got.is_empty();
                for c in &chunks {
                    prefix.extend(c.iter().cloned());
                    if prefix == got { ok = true; }
                }
                prop_assert!(ok);
            }
        }
    }

    #[test]
    fn corruption_is_an_error_not_a_panic(chunks in prop::collection::vec(prop::collection::vec(record(), 1..30), 1..4), pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut bytes = write(&chunks);
        let i = pos.index(bytes.len());
        bytes[i] ^= flip;
        if let Ok(reader) = Reader::new(&bytes) {
            for r in reader.records() {
                if r.is_err() { break; }
            }
        }
    }
}

#[test]
fn foreign_file_says_so() {
    let err = Reader::new(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0").unwrap_err();
    assert!(matches!(err, FormatError::BadMagic));
    assert_eq!(
        err.to_string(),
        "not a memlens capture (bad magic at offset 0)"
    );
}

#[test]
fn newer_version_says_so() {
    let mut bytes = write(&[]);
    bytes[8] = 9;
    let err = Reader::new(&bytes).unwrap_err();
    assert_eq!(
        err.to_string(),
        "capture format version 9 is newer than this memlens understands (1)"
    );
}

#[test]
fn bit_flip_in_chunk_names_its_offset() {
    let mut bytes = write(&[vec![Record::Peak, Record::Free { addr: 16 }]]);
    let header_len = Reader::new(&bytes)
        .unwrap()
        .chunk_spans()
        .next()
        .unwrap()
        .unwrap()
        .offset();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let err = Reader::new(&bytes)
        .unwrap()
        .records()
        .next()
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("capture corrupt at offset {header_len}: chunk checksum mismatch")
    );
}

/// The dropped-events count is a chunk of its own: the reader keeps the last (running) count,
/// the records around it read as before (a reader that does not know the kind skips it), a
/// capture without one says 0, and a count cut off by truncation falls back to the previous.
#[test]
fn dropped_events_chunk_is_read_and_skipped() {
    let plain = write(&[vec![Record::Free { addr: 16 }]]);
    assert_eq!(Reader::new(&plain).unwrap().dropped_events(), 0);

    let header = Header::default();
    let mut bytes = Vec::new();
    let mut w = Writer::new(&mut bytes, &header).unwrap();
    w.write_records(&[Record::Free { addr: 16 }]).unwrap();
    w.write_dropped_events(7).unwrap();
    w.write_records(&[Record::Free { addr: 32 }]).unwrap();
    w.write_dropped_events(300_000).unwrap();
    w.finish().unwrap();
    let reader = Reader::new(&bytes).unwrap();
    assert_eq!(reader.dropped_events(), 300_000);
    let kinds: Vec<_> = reader.chunk_spans().map(|s| s.unwrap().kind()).collect();
    assert_eq!(
        kinds,
        [
            ChunkKind::Events,
            ChunkKind::DroppedEvents,
            ChunkKind::Events,
            ChunkKind::DroppedEvents
        ]
    );
    let records: Vec<Record> = reader.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(
        records,
        [Record::Free { addr: 16 }, Record::Free { addr: 32 }]
    );
    let cut = &bytes[..bytes.len() - 1];
    assert_eq!(Reader::new(cut).unwrap().dropped_events(), 7);
}
