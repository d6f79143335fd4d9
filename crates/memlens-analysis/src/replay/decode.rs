//! Chunks decoded in parallel, handed to the replay in file order.
//!
//! Decompressing and varint-decoding a chunk needs nothing from the chunks before it (each
//! chunk restates its definitions' ids and starts its delta state afresh), so worker threads
//! decode ahead while the caller replays, at most [`AHEAD`] chunks ahead of it to bound memory
//! (a chunk holds up to 2^18 records, about 10 MB decoded).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use memlens_format::{ChunkKind, ChunkSpan, FormatError, Reader, Record};

/// Decoded chunks waiting for the replay, per worker.
const AHEAD: usize = 3;

/// A decoded record, compact for the two that make up nearly all of a capture (24 bytes
/// against `Record`'s 56: the decoded chunks waiting for the replay are this).
pub(crate) enum Event {
    Alloc { addr: u64, size: u64, stack: u32 },
    Free(u64),
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

fn decode(span: &ChunkSpan<'_>) -> Result<Option<Decoded>, FormatError> {
    if span.kind() != ChunkKind::Events {
        return Ok(None);
    }
    let chunk = span.load()?;
    let mut records = Vec::with_capacity(chunk.data.len() / 2);
    for r in chunk.records() {
        records.push(match r? {
            Record::Alloc {
                addr, size, stack, ..
            } => Event::Alloc { addr, size, stack },
            Record::Free { addr } => Event::Free(addr),
            other => Event::Other(Box::new(other)),
        });
    }
    Ok(Some(Decoded {
        offset: span.offset(),
        end: span.end(),
        events: records,
    }))
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
            match decode(span) {
                Ok(None) => continue,
                Ok(Some(d)) => go_on = each(Ok(d))?,
                Err(e) => {
                    each(Err(e))?;
                    go_on = false;
                }
            }
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
    done: Mutex<BTreeMap<usize, Result<Option<Decoded>, FormatError>>>,
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
                        Err(FormatError::Corrupt {
                            offset: spans[i].offset(),
                            what: "chunk could not be decoded".into(),
                        })
                    });
                    lock(&shared.done).insert(i, result);
                    shared.ready.notify_all();
                }
            });
        }
        let result = consume(spans.len(), &shared, each);
        shared.stop.store(true, Ordering::Relaxed);
        // Wake workers waiting for room so the scope can end.
        let _guard = lock(&shared.consumed);
        shared.room.notify_all();
        result
    })
}

fn consume<E>(
    n: usize,
    shared: &Shared,
    each: &mut impl FnMut(Result<Decoded, FormatError>) -> Result<bool, E>,
) -> Result<bool, E> {
    for i in 0..n {
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
            Ok(None) => {}
            Ok(Some(d)) => {
                if !each(Ok(d))? {
                    return Ok(false);
                }
            }
            Err(e) => {
                each(Err(e))?;
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
