//! The background writer: drains the per-thread buffers, restores the global event order,
//! and appends compressed chunks to the capture at least once a second.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use memlens_format::{Record, Writer};

use crate::counters;
use crate::recorder::{Event, EventKind, Recorder, lock};

/// How often the buffers are drained and a `Counters` sample taken.
const TICK: Duration = Duration::from_millis(20);
/// A chunk is written at least this often, so a killed process loses at most this much.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// ... or when this many records are waiting.
const FLUSH_RECORDS: usize = 1 << 18;

/// Set by a fatal-signal handler: write a chunk now. The writer polls it every tick.
pub(crate) static SIGNAL_FLUSH: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);
/// Bumped by the writer after each chunk written for a signal.
pub(crate) static SIGNAL_FLUSHES: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(0);

#[derive(Default)]
struct Control {
    stop: bool,
    flush_requests: u64,
    flushes_done: u64,
    /// Heap snapshots to append, each after the flush request it came with.
    heap: Vec<(u64, Vec<u8>)>,
}

/// Largest heap snapshot a capture chunk holds (the reader's limit on a chunk).
pub(crate) const MAX_HEAP_CHUNK: usize = 256 << 20;

/// Handle to the writer thread.
pub(crate) struct WriterHandle {
    control: Arc<(Mutex<Control>, Condvar)>,
    thread: Option<std::thread::JoinHandle<WriterStats>>,
}

/// What the writer did, for the summary.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterStats {
    /// Bytes in the capture file.
    pub bytes: u64,
    /// Allocation and free events written.
    pub events: u64,
    /// First write error, if any (writing stopped then; the program went on).
    pub failed: bool,
}

impl WriterHandle {
    pub(crate) fn spawn(
        recorder: &'static Recorder,
        writer: Writer<BufWriter<File>>,
        start: Instant,
    ) -> Self {
        let control = Arc::new((Mutex::new(Control::default()), Condvar::new()));
        let c = control.clone();
        let thread = std::thread::Builder::new()
            .name("memlens-writer".into())
            .spawn(move || {
                block_fatal_signals();
                run(recorder, writer, start, &c)
            })
            .ok();
        WriterHandle { control, thread }
    }

    /// Asks for a chunk to be written now and waits (at most a second) until it is.
    pub(crate) fn flush(&self) {
        let (m, cv) = &*self.control;
        let mut c = lock(m);
        c.flush_requests += 1;
        let want = c.flush_requests;
        cv.notify_all();
        wait_for_flush(c, cv, want, Duration::from_secs(1));
    }

    /// Appends a heap snapshot chunk after every event recorded so far; waits (up to a minute)
    /// until it is written.
    pub(crate) fn heap_chunk(&self, data: Vec<u8>) {
        let (m, cv) = &*self.control;
        let mut c = lock(m);
        c.flush_requests += 1;
        let want = c.flush_requests;
        c.heap.push((want, data));
        cv.notify_all();
        wait_for_flush(c, cv, want, Duration::from_secs(60));
    }

    /// Writes everything left plus the end marker and waits for the thread.
    pub(crate) fn finish(mut self) -> WriterStats {
        {
            let (m, cv) = &*self.control;
            lock(m).stop = true;
            cv.notify_all();
        }
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

/// Waits (at most `limit`) until the writer has done flush request `want`.
fn wait_for_flush(
    mut c: std::sync::MutexGuard<'_, Control>,
    cv: &Condvar,
    want: u64,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    while c.flushes_done < want && !c.stop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        c = cv
            .wait_timeout(c, left)
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0);
    }
}

struct State {
    writer: Writer<BufWriter<File>>,
    held_back: Vec<Event>,
    records: Vec<Record>,
    last_thread: Option<u32>,
    named: HashMap<u32, String>,
    stats: WriterStats,
    last_flush: Instant,
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn run(
    rec: &'static Recorder,
    writer: Writer<BufWriter<File>>,
    start: Instant,
    control: &(Mutex<Control>, Condvar),
) -> WriterStats {
    let mut st = State {
        writer,
        held_back: Vec::new(),
        records: Vec::new(),
        last_thread: None,
        named: HashMap::new(),
        stats: WriterStats::default(),
        last_flush: Instant::now(),
    };
    loop {
        let (stop, flush_want) = {
            let (m, cv) = control;
            let c = lock(m);
            let (c, _) = cv
                .wait_timeout_while(c, TICK, |c| !c.stop && c.flush_requests == c.flushes_done)
                .unwrap_or_else(|e| e.into_inner());
            (c.stop, c.flush_requests)
        };
        collect(rec, &mut st, start, stop);
        let signalled = SIGNAL_FLUSH.swap(false, Ordering::SeqCst);
        let due = stop
            || signalled
            || flush_want > 0 && {
                let c = lock(&control.0);
                c.flushes_done < flush_want
            }
            || st.last_flush.elapsed() >= FLUSH_EVERY
            || st.records.len() >= FLUSH_RECORDS;
        if due {
            if stop {
                st.records.push(Record::End);
            }
            write(&mut st);
            // Heap snapshots requested before `flush_want` was read: every event before them
            // has been collected (the horizon is read after), so they follow those events.
            let heaps: Vec<(u64, Vec<u8>)> = {
                let mut c = lock(&control.0);
                let (now, later) = std::mem::take(&mut c.heap)
                    .into_iter()
                    .partition(|(n, _)| stop || *n <= flush_want);
                c.heap = later;
                now
            };
            for (_, data) in heaps {
                if !st.stats.failed
                    && st
                        .writer
                        .write_chunk(memlens_format::ChunkKind::HeapSnapshot, &data)
                        .is_err()
                {
                    st.stats.failed = true;
                }
            }
            if signalled {
                SIGNAL_FLUSHES.fetch_add(1, Ordering::SeqCst);
            }
            let mut c = lock(&control.0);
            c.flushes_done = flush_want;
            control.1.notify_all();
        }
        if stop {
            st.stats.bytes = st.writer.bytes_written();
            return st.stats;
        }
    }
}

/// The signals memlens flushes on are handled by the profiled program's threads, never by the
/// writer (which the handler waits for).
fn block_fatal_signals() {
    // SAFETY: plain signal-mask manipulation of the calling (writer) thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in crate::FLUSH_SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

fn write(st: &mut State) {
    if !st.stats.failed && !st.records.is_empty() && st.writer.write_records(&st.records).is_err() {
        st.stats.failed = true;
    }
    st.records.clear();
    st.last_flush = Instant::now();
    // Each chunk decodes on its own: restate the thread at the start of the next one.
    st.last_thread = None;
}

/// Moves every event that is safe to order into `st.records`, preceded by the definitions
/// they use, and appends a `Counters` sample.
fn collect(rec: &'static Recorder, st: &mut State, start: Instant, all: bool) {
    // Events with a sequence number below `horizon` are all in some buffer already: a thread
    // takes its number while holding its buffer's lock, which we take below.
    let horizon = rec.seq.load(Ordering::SeqCst);
    let buffers: Vec<_> = lock(&rec.threads).clone();
    for b in &buffers {
        let mut events = lock(&b.events);
        st.held_back.append(&mut events);
    }
    // Definitions are drained after the events, so every event's stack is defined.
    let names: Vec<(u32, u64, String)> = lock(&rec.thread_names).clone();
    let mut interner = lock(&rec.interner);
    let mut thread_records = Vec::new();
    for (id, native_id, name) in names {
        if st.named.get(&id) != Some(&name) {
            let name_id = interner.string(if name.is_empty() { "<thread>" } else { &name });
            thread_records.push(Record::Thread {
                id,
                native_id,
                name: name_id,
            });
            st.named.insert(id, name);
        }
    }
    st.records.append(&mut interner.pending);
    drop(interner);
    st.records.extend(thread_records);

    st.held_back.sort_unstable_by_key(|e| e.seq);
    let ready = if all {
        st.held_back.len()
    } else {
        st.held_back.partition_point(|e| e.seq < horizon)
    };
    for e in st.held_back.drain(..ready) {
        if st.last_thread != Some(e.thread) {
            st.records.push(Record::SwitchThread(e.thread));
            st.last_thread = Some(e.thread);
        }
        st.records.push(match e.kind {
            EventKind::Alloc {
                addr,
                size,
                stack,
                domain,
            } => {
                st.stats.events += 1;
                Record::Alloc {
                    addr,
                    size,
                    stack,
                    domain,
                }
            }
            EventKind::Free { addr } => {
                st.stats.events += 1;
                Record::Free { addr }
            }
            EventKind::Peak => Record::Peak,
            EventKind::Checkpoint { label } => Record::Checkpoint(label),
        });
    }
    let t = counters::totals();
    st.records.push(Record::Counters {
        time_ns: start.elapsed().as_nanos() as u64,
        live: t.live,
        peak: t.peak,
        allocated: t.allocated,
        allocations: t.allocations,
        rss: rss_bytes(),
    });
}
