//! Chunks decoded in parallel, handed to the replay in file order.
//!
//! Decompressing and varint-decoding a chunk needs nothing from the chunks before it (each
//! chunk restates its definitions' ids and starts its delta state afresh), so worker threads
//! decode ahead while the caller replays, at most [`AHEAD`] chunks ahead of it to bound memory
//! (the tracker's chunks hold about 2^18 records, a few MB decoded).
//!
//! A capture is input from anyone, and a chunk of a few KB may inflate to 256 MiB of one-byte
//! records (once decoded, ~60 times that). So memory is bounded by what is actually decoded,
//! not trusted to the file: a worker decodes a chunk only while it is small ([`WORKER_RAW_MAX`]
//! decompressed, [`PIECE_BYTES`] decoded) and otherwise leaves it to the replay's thread, which
//! streams it in pieces of at most [`PIECE_BYTES`]. At most one decompressed chunk of any size
//! (256 MiB, the format's limit) is held at a time, plus the workers' small ones and their
//! pieces.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use memlens_format::{ChunkKind, ChunkSpan, FormatError, Reader, Record};

/// Decoded chunks waiting for the replay, per worker.
const AHEAD: usize = 3;
/// Decoded records handed to the replay at once, estimated in bytes (see [`cost`]).
const PIECE_BYTES: usize = 32 << 20;
/// Larger chunks (decompressed) are streamed by the replay's thread, not decoded ahead.
const WORKER_RAW_MAX: u32 = 16 << 20;

/// A decoded record, compact for the two that make up nearly all of a capture (24 bytes
/// against `Record`'s 56: the decoded chunks waiting for the replay are this), and for the
/// one-byte `Peak` (a run of them must cost no allocation each).
pub(crate) enum Event {
    Alloc { addr: u64, size: u64, stack: u32 },
    Free(u64),
    Peak,
    Other(Box<Record>),
}

/// One `Events` chunk's records.
pub(crate) struct Decoded {
    /// File offset of the chunk header.
    pub(crate) offset: u64,
    /// File offset just past the chunk (for progress).
    pub(crate) end: u64,
    pub(crate) events: Vec<Event>,
}

/// Memory an event takes while it waits for the replay.
fn cost(event: &Event) -> usize {
    std::mem::size_of::<Event>()
        + match event {
            Event::Other(r) => {
                std::mem::size_of::<Record>()
                    + match &**r {
                        Record::String { text, .. } => text.len(),
                        _ => 0,
                    }
            }
            _ => 0,
        }
}

fn event(record: Record) -> Event {
    match record {
        Record::Alloc {
            addr, size, stack, ..
        } => Event::Alloc { addr, size, stack },
        Record::Free { addr } => Event::Free(addr),
        Record::Peak => Event::Peak,
        other => Event::Other(Box::new(other)),
    }
}

/// What a worker made of a chunk.
enum Slot {
    /// Decoded (`None`: not an `Events` chunk), or the error that stopped it.
    Ready(Result<Option<Decoded>, FormatError>),
    /// Too large to hold decoded: the replay's thread streams it.
    Stream,
}

/// Decodes a small `Events` chunk whole; a large one is left to [`stream`].
fn decode(span: &ChunkSpan<'_>) -> Slot {
    if span.kind() != ChunkKind::Events {
        return Slot::Ready(Ok(None));
    }
    if span.raw_len() > WORKER_RAW_MAX {
        return Slot::Stream;
    }
    let chunk = match span.load() {
        Ok(c) => c,
        Err(e) => return Slot::Ready(Err(e)),
    };
    let mut events =
        Vec::with_capacity((chunk.data.len() / 2).min(PIECE_BYTES / std::mem::size_of::<Event>()));
    let mut bytes = 0;
    for r in chunk.records() {
        match r {
            Ok(r) => {
                let e = event(r);
                bytes += cost(&e);
                if bytes > PIECE_BYTES {
                    return Slot::Stream;
                }
                events.push(e);
            }
            Err(e) => return Slot::Ready(Err(e)),
        }
    }
    Slot::Ready(Ok(Some(Decoded {
        offset: span.offset(),
        end: span.end(),
        events,
    })))
}

/// Decodes `span` (any size) on this thread, handing its records to `each` in pieces of at
/// most [`PIECE_BYTES`]. Returns whether to go on.
fn stream<E>(
    span: &ChunkSpan<'_>,
    each: &mut impl FnMut(Result<Decoded, FormatError>) -> Result<bool, E>,
) -> Result<bool, E> {
    if span.kind() != ChunkKind::Events {
        return Ok(true);
    }
    let chunk = match span.load() {
        Ok(c) => c,
        Err(e) => {
            each(Err(e))?;
            return Ok(false);
        }
    };
    let piece = |events| Decoded {
        offset: span.offset(),
        end: span.end(),
        events,
    };
    let mut events = Vec::new();
    let mut bytes = 0;
    for r in chunk.records() {
        match r {
            Ok(r) => {
                let e = event(r);
                bytes += cost(&e);
                events.push(e);
                if bytes >= PIECE_BYTES {
                    bytes = 0;
                    if !each(Ok(piece(std::mem::take(&mut events))))? {
                        return Ok(false);
                    }
                }
            }
            Err(e) => {
                if !events.is_empty() && !each(Ok(piece(std::mem::take(&mut events))))? {
                    return Ok(false);
                }
                each(Err(e))?;
                return Ok(false);
            }
        }
    }
    if events.is_empty() {
        return Ok(true);
    }
    each(Ok(piece(events)))
}

/// Calls `each` with every `Events` chunk in file order until it returns `false` or fails.
///
/// A chunk that cannot be read ends the walk: its error is passed to `each` as `Err` (chunks
/// after it are not read, since a bad chunk header leaves nothing to resynchronise on).
/// `workers == 0` decodes on the calling thread.
pub(crate) fn for_each_chunk<E>(
    reader: &Reader<'_>,
    workers: usize,
    mut each: impl FnMut(Result<Decoded, FormatError>) -> Result<bool, E>,
) -> Result<(), E> {
    let mut spans = Vec::new();
    let mut tail_error = None;
    for span in reader.chunk_spans() {
        match span {
            Ok(s) => spans.push(s),
            Err(e) => {
                tail_error = Some(e);
                break;
            }
        }
    }
    let workers = workers.min(spans.len());
    let finished = if workers == 0 {
        let mut go_on = true;
        for span in &spans {
            go_on = stream(span, &mut each)?;
            if !go_on {
                break;
            }
        }
        go_on
    } else {
        parallel(&spans, workers, &mut each)?
    };
    if finished && let Some(e) = tail_error {
        each(Err(e))?;
    }
    Ok(())
}

struct Shared {
    next: AtomicUsize,
    consumed: Mutex<usize>,
    room: Condvar,
    stop: AtomicBool,
    done: Mutex<BTreeMap<usize, Slot>>,
    ready: Condvar,
}

fn parallel<E>(
    spans: &[ChunkSpan<'_>],
    workers: usize,
    each: &mut impl FnMut(Result<Decoded, FormatError>) -> Result<bool, E>,
) -> Result<bool, E> {
    let shared = Shared {
        next: AtomicUsize::new(0),
        consumed: Mutex::new(0),
        room: Condvar::new(),
        stop: AtomicBool::new(false),
        done: Mutex::new(BTreeMap::new()),
        ready: Condvar::new(),
    };
    let window = AHEAD * workers;
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = shared.next.fetch_add(1, Ordering::Relaxed);
                    if i >= spans.len() {
                        break;
                    }
                    {
                        let mut consumed = lock(&shared.consumed);
                        while i >= *consumed + window && !shared.stop.load(Ordering::Relaxed) {
                            consumed = shared
                                .room
                                .wait(consumed)
                                .unwrap_or_else(|e| e.into_inner());
                        }
                    }
                    if shared.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // A decoder panic is a bug, but it must not hang the replay waiting for
                    // this chunk: it becomes a corrupt-chunk error.
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        decode(&spans[i])
                    }))
                    .unwrap_or_else(|_| {
                        Slot::Ready(Err(FormatError::Corrupt {
                            offset: spans[i].offset(),
                            what: "chunk could not be decoded".into(),
                        }))
                    });
                    lock(&shared.done).insert(i, result);
                    shared.ready.notify_all();
                }
            });
        }
        let result = consume(spans, &shared, each);
        shared.stop.store(true, Ordering::Relaxed);
        // Wake workers waiting for room so the scope can end.
        let _guard = lock(&shared.consumed);
        shared.room.notify_all();
        result
    })
}

fn consume<E>(
    spans: &[ChunkSpan<'_>],
    shared: &Shared,
    each: &mut impl FnMut(Result<Decoded, FormatError>) -> Result<bool, E>,
) -> Result<bool, E> {
    for (i, span) in spans.iter().enumerate() {
        let result = {
            let mut done = lock(&shared.done);
            loop {
                if let Some(r) = done.remove(&i) {
                    break r;
                }
                done = shared.ready.wait(done).unwrap_or_else(|e| e.into_inner());
            }
        };
        *lock(&shared.consumed) = i + 1;
        shared.room.notify_all();
        match result {
            Slot::Ready(Ok(None)) => {}
            Slot::Ready(Ok(Some(d))) => {
                if !each(Ok(d))? {
                    return Ok(false);
                }
            }
            Slot::Ready(Err(e)) => {
                each(Err(e))?;
                return Ok(false);
            }
            Slot::Stream => {
                if !stream(span, each)? {
                    return Ok(false);
                }
            }
        }
    }
    Ok(true)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use memlens_format::{Domain, Header, Writer};

    /// A capture of one small chunk, one chunk past [`WORKER_RAW_MAX`] (allocations and frees
    /// of distinct blocks) and one chunk of `Peak`s that decodes to more than [`PIECE_BYTES`].
    fn capture() -> (Vec<u8>, u64) {
        let mut bytes = Vec::new();
        let mut w = Writer::new(&mut bytes, &Header::default()).unwrap();
        w.write_records(&[Record::Free { addr: 16 }]).unwrap();
        let mut big = Vec::new();
        for i in 0..2_000_000u64 {
            big.push(Record::Alloc {
                addr: i.wrapping_mul(0x9e37_79b9_7f4a_7c15) & !15,
                size: i * 16 + 1,
                stack: 0,
                domain: Domain::Native,
            });
        }
        w.write_records(&big).unwrap();
        let peaks = PIECE_BYTES / std::mem::size_of::<Event>() * 2;
        w.write_records(&vec![Record::Peak; peaks]).unwrap();
        w.finish().unwrap();
        (bytes, 1 + 2_000_000 + peaks as u64)
    }

    #[test]
    fn large_chunks_reach_the_replay_in_bounded_pieces_in_order() {
        let (bytes, total) = capture();
        let reader = Reader::new(&bytes).unwrap();
        let spans: Vec<_> = reader.chunk_spans().map(Result::unwrap).collect();
        assert!(
            spans[1].raw_len() > WORKER_RAW_MAX,
            "{}",
            spans[1].raw_len()
        );
        for workers in [0, 1, 2] {
            let (mut events, mut pieces, mut sizes) = (0u64, 0, 0u64);
            for_each_chunk(&reader, workers, |d| -> Result<bool, ()> {
                let d = d.unwrap();
                let cost: usize = d.events.iter().map(cost).sum();
                assert!(cost <= PIECE_BYTES + 64, "a piece of {cost} bytes");
                for e in &d.events {
                    if let Event::Alloc { size, .. } = e {
                        // In file order: sizes grow by 16 per allocation.
                        assert_eq!(*size, sizes * 16 + 1);
                        sizes += 1;
                    }
                }
                events += d.events.len() as u64;
                pieces += 1;
                Ok(true)
            })
            .unwrap();
            assert_eq!(events, total, "workers {workers}");
            assert_eq!(sizes, 2_000_000);
            assert!(pieces > 3, "workers {workers}: {pieces} pieces");
        }
    }
}
