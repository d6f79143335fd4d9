//! The background writer: drains the per-thread rings, restores the global event order, and
//! appends compressed chunks to the capture at least once a second.

use std::collections::HashMap;
use std::io::BufWriter;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use memlens_format::{EventsChunk, Record, Writer};

use crate::capture_file::CaptureFile;
use crate::counters;
use crate::recorder::{
    Event, EventKind, RING, Recorder, doorbell, lock, ring_doorbell, wait_for_doorbell,
};

/// How often the buffers are drained and a `Counters` sample taken.
const TICK: Duration = Duration::from_millis(20);
/// How often while events flow (a drain found a ring an eighth full): rings never fill up.
const BUSY_TICK: Duration = Duration::from_millis(1);
/// A chunk is written at least this often, so a killed process loses at most this much.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// ... or when this many records are waiting.
const FLUSH_RECORDS: usize = 1 << 18;

/// Set by a signal handler whose program goes on afterwards (a handler of its own is chained
/// to): write a chunk now. The handler also rings the doorbell, so the writer wakes at once; it
/// reads this flag after every drain, so a lost wake-up (the writer was busy) still flushes
/// within a tick.
static SIGNAL_FLUSH: AtomicBool = AtomicBool::new(false);
/// Bumped by the writer after each chunk written for a signal.
static SIGNAL_FLUSHES: AtomicU64 = AtomicU64::new(0);
/// Set where the process is about to end without `stop` (`_exit`, a fatal signal): write
/// everything and the end marker, then stop writing.
static FINISH: AtomicBool = AtomicBool::new(false);
/// Set by the writer once it has written the end marker and closed.
static FINISHED: AtomicBool = AtomicBool::new(false);
/// The process whose writer thread runs (0: none). A forked child inherits the parent's
/// memory but not its writer: there, nothing waits for a writer.
static WRITER_PID: AtomicU32 = AtomicU32::new(0);
/// The writer thread's kernel id, so that the writer never waits for itself.
static WRITER_TID: AtomicI32 = AtomicI32::new(0);

/// Whether a writer thread of this process runs, and the caller is not that thread.
/// Async-signal-safe (two system calls, atomics).
fn writer_elsewhere() -> bool {
    // SAFETY: getpid and gettid are async-signal-safe system calls without arguments.
    let (pid, tid) = unsafe { (libc::getpid() as u32, libc::gettid()) };
    WRITER_PID.load(Ordering::SeqCst) == pid && WRITER_TID.load(Ordering::SeqCst) != tid
}

/// Waits (at most `limit`, in 5 ms naps) until `done` says so; async-signal-safe.
fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let pause = libc::timespec {
        tv_sec: 0,
        tv_nsec: 5_000_000,
    };
    let tries = limit.as_millis() / 5 + 1;
    for _ in 0..tries {
        if done() {
            return true;
        }
        // SAFETY: nanosleep is async-signal-safe; `pause` is a valid timespec.
        unsafe { libc::nanosleep(&pause, std::ptr::null_mut()) };
    }
    done()
}

/// Asks the writer for a chunk now, from a signal handler, and waits (at most `limit`) until
/// it is written; returns whether it was. Async-signal-safe: atomics, one `futex` wake (the
/// doorbell: [`ring_doorbell`]) and `nanosleep`; no lock, no allocation. Returns at once
/// where this process has no writer (a forked child) or the caller is the writer.
pub(crate) fn flush_from_signal(limit: Duration) -> bool {
    if !writer_elsewhere() {
        return false;
    }
    let before = SIGNAL_FLUSHES.load(Ordering::SeqCst);
    SIGNAL_FLUSH.store(true, Ordering::SeqCst);
    // Sound in a signal handler: `ring_doorbell` is an atomic add on a static and a raw
    // FUTEX_WAKE system call on it. Neither takes a lock, allocates or touches state that the
    // interrupted code may hold half-updated, and futex is a plain system call (the kernel
    // does not care which context makes it), so it is safe however the handler interrupted
    // this thread, even inside the doorbell's own code. The writer sleeps in FUTEX_WAIT on the
    // same word, so it starts the flush now instead of at its next tick (20 ms away).
    ring_doorbell();
    wait_until(limit, || {
        SIGNAL_FLUSHES.load(Ordering::SeqCst) != before || FINISHED.load(Ordering::SeqCst)
    })
}

/// The process ends now without [`WriterHandle::finish`] (`_exit`, a fatal signal): asks the
/// writer to write everything recorded and the end marker, and waits (at most `limit`) until
/// it has; returns whether it did. After this the writer writes nothing more. Async-signal-safe
/// like [`flush_from_signal`], and returns at once where this process has no writer.
pub(crate) fn finish_from_signal(limit: Duration) -> bool {
    if !writer_elsewhere() {
        return false;
    }
    FINISH.store(true, Ordering::SeqCst);
    ring_doorbell();
    wait_until(limit, || FINISHED.load(Ordering::SeqCst))
}

/// How the writer paces itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// The test hook of [`crate::STALL_WRITER_ENV`]: the thread waits this long (or until
    /// [`WriterHandle::finish`]) before it first drains, as a stuck writer would.
    pub stall: Duration,
    /// Longest sleep between drains while nothing happens ([`TICK`]; tests lengthen it to
    /// show that the doorbell, not the tick, wakes the writer).
    pub idle: Duration,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            stall: Duration::ZERO,
            idle: TICK,
        }
    }
}

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
#[derive(Debug, Clone, Default)]
pub struct WriterStats {
    /// Bytes in the capture file.
    pub bytes: u64,
    /// Allocation and free events written.
    pub events: u64,
    /// Writing failed (and stopped then; the program went on).
    pub failed: bool,
    /// Why writing failed ("No space left on device (os error 28)", ...).
    pub error: Option<String>,
}

impl WriterHandle {
    /// Starts the writer thread.
    pub(crate) fn spawn(
        recorder: &'static Recorder,
        writer: Writer<BufWriter<CaptureFile>>,
        start: Instant,
        pace: Pace,
    ) -> Self {
        let Pace { stall, idle } = pace;
        let control = Arc::new((Mutex::new(Control::default()), Condvar::new()));
        let c = control.clone();
        FINISH.store(false, Ordering::SeqCst);
        FINISHED.store(false, Ordering::SeqCst);
        SIGNAL_FLUSH.store(false, Ordering::SeqCst);
        WRITER_PID.store(std::process::id(), Ordering::SeqCst);
        // Until the thread stores its id: a signal meanwhile waits for a writer that will run.
        WRITER_TID.store(0, Ordering::SeqCst);
        let thread = std::thread::Builder::new()
            .name("memlens-writer".into())
            .spawn(move || {
                // SAFETY: gettid has no arguments and cannot fail.
                WRITER_TID.store(unsafe { libc::gettid() }, Ordering::SeqCst);
                block_fatal_signals();
                if !stall.is_zero() {
                    let (m, cv) = &*c;
                    let guard = lock(m);
                    let _ = cv.wait_timeout_while(guard, stall, |c| !c.stop);
                }
                let stats = run(recorder, writer, start, idle, &c);
                WRITER_PID.store(0, Ordering::SeqCst);
                stats
            })
            .ok();
        if thread.is_none() {
            WRITER_PID.store(0, Ordering::SeqCst);
        }
        WriterHandle { control, thread }
    }

    /// Asks for a chunk to be written now and waits (at most a second) until it is.
    pub(crate) fn flush(&self) {
        let (m, cv) = &*self.control;
        let mut c = lock(m);
        c.flush_requests += 1;
        let want = c.flush_requests;
        ring_doorbell();
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
        ring_doorbell();
        wait_for_flush(c, cv, want, Duration::from_secs(60));
    }

    /// Writes everything left plus the end marker and waits for the thread.
    pub(crate) fn finish(mut self) -> WriterStats {
        {
            lock(&self.control.0).stop = true;
            self.control.1.notify_all();
            ring_doorbell();
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
    writer: Writer<BufWriter<CaptureFile>>,
    /// Drained events not yet written, with their thread id.
    held_back: Vec<(u32, Event)>,
    /// The chunk being built.
    chunk: EventsChunk,
    /// The last drain found a ring filling up: drain again soon.
    busy: bool,
    /// When the last `Counters` sample was taken.
    last_counters: Instant,
    last_thread: Option<u32>,
    named: HashMap<u32, String>,
    stats: WriterStats,
    last_flush: Instant,
    /// The dropped-events count last written to the capture.
    dropped_written: u64,
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
    writer: Writer<BufWriter<CaptureFile>>,
    start: Instant,
    idle: Duration,
    control: &(Mutex<Control>, Condvar),
) -> WriterStats {
    let mut st = State {
        writer,
        held_back: Vec::new(),
        chunk: EventsChunk::new(),
        busy: false,
        last_counters: Instant::now(),
        last_thread: None,
        named: HashMap::new(),
        stats: WriterStats::default(),
        last_flush: Instant::now(),
        dropped_written: 0,
    };
    loop {
        let (stop, flush_want) = {
            let (m, _) = control;
            let seen = doorbell();
            let mut c = lock(m);
            if !c.stop && c.flush_requests == c.flushes_done {
                drop(c);
                // Whoever changes `Control` rings the doorbell afterwards, so a change made
                // since `seen` was read ends this wait at once.
                wait_for_doorbell(seen, if st.busy { BUSY_TICK } else { idle });
                c = lock(m);
            }
            (c.stop, c.flush_requests)
        };
        // The process ends without `stop` (`_exit`, a fatal signal): end the capture as
        // `stop` would; no record comes after.
        let finishing = FINISH.load(Ordering::SeqCst);
        let stop = stop || finishing;
        collect(rec, &mut st, start, stop);
        let signalled = SIGNAL_FLUSH.swap(false, Ordering::SeqCst);
        let due = stop
            || signalled
            || flush_want > 0 && {
                let c = lock(&control.0);
                c.flushes_done < flush_want
            }
            || st.last_flush.elapsed() >= FLUSH_EVERY
            || st.chunk.records() >= FLUSH_RECORDS;
        if due {
            if stop {
                st.chunk.push(&Record::End);
            }
            // The running count of dropped events goes with every chunk written after it grew
            // (before the events, so `End` stays the last record of the file).
            let dropped = rec.dropped.load(Ordering::Relaxed);
            if dropped != st.dropped_written && !st.stats.failed {
                st.stats.failed = st.writer.write_dropped_events(dropped).is_err();
                st.dropped_written = dropped;
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
            if finishing {
                FINISHED.store(true, Ordering::SeqCst);
            }
            rec.draining.store(false, Ordering::Release);
            let file = st.writer.get_ref().get_ref();
            // What is on disk: after a failed write, less than what was encoded.
            st.stats.bytes = file.written();
            if st.stats.failed {
                st.stats.error = Some(
                    file.error()
                        .unwrap_or("the capture file could not be written")
                        .to_owned(),
                );
            }
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
        for sig in crate::fatal::ASYNC_SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

fn write(st: &mut State) {
    if !st.stats.failed && st.writer.write_events(&mut st.chunk).is_err() {
        st.stats.failed = true;
    }
    st.chunk = EventsChunk::new();
    st.last_flush = Instant::now();
    // Each chunk decodes on its own: restate the thread at the start of the next one.
    st.last_thread = None;
}

/// Appends one event of `thread` to the chunk.
#[inline(always)]
fn emit(st: &mut State, thread: u32, e: Event) {
    if st.last_thread != Some(thread) {
        st.chunk.push(&Record::SwitchThread(thread));
        st.last_thread = Some(thread);
    }
    match e.kind {
        EventKind::Alloc {
            addr,
            size,
            stack,
            domain,
        } => {
            st.stats.events += 1;
            st.chunk.alloc(addr, size, stack, domain);
        }
        EventKind::Free { addr } => {
            st.stats.events += 1;
            st.chunk.free(addr);
        }
        EventKind::Peak => st.chunk.push(&Record::Peak),
        EventKind::Checkpoint { label } => st.chunk.push(&Record::Checkpoint(label)),
        EventKind::GcStart {
            time_ns,
            freed,
            generation,
        } => st.chunk.push(&Record::GcStart {
            generation,
            time_ns,
            freed,
        }),
        EventKind::GcStop {
            time_ns,
            freed,
            collected,
            generation,
        } => st.chunk.push(&Record::GcStop {
            generation,
            time_ns,
            freed,
            collected: u64::from(collected),
        }),
        EventKind::GcUncollectable { count } => st.chunk.push(&Record::GcUncollectable(count)),
        EventKind::GcEnabled { time_ns, on } => st.chunk.push(&Record::GcEnabled { on, time_ns }),
        EventKind::GcFinal {
            garbage,
            frozen,
            enabled,
        } => st.chunk.push(&Record::GcFinal {
            garbage,
            frozen: u64::from(frozen),
            enabled,
        }),
    }
}

/// Moves every event that is safe to order into the chunk, preceded by the definitions they
/// use, and appends a `Counters` sample (at most every `TICK`).
fn collect(rec: &'static Recorder, st: &mut State, start: Instant, all: bool) {
    // Every event numbered below `horizon` is published in its ring, or its thread is seen
    // busy below (the ring's `busy` is read after this, and before its events): hold back
    // that thread's events from the first one not drained yet.
    let mut horizon = rec.seq.load(Ordering::SeqCst);
    let buffers: Vec<_> = lock(&rec.threads).clone();
    // The common case: one thread produced events (those held back from the last drain
    // included). Its events go straight from its ring into the chunk, those below the
    // horizon; other threads' events are merged by number below.
    let direct = {
        let mut ids = (buffers.iter().filter(|b| !b.is_empty()).map(|b| b.id))
            .chain(st.held_back.iter().map(|(t, _)| *t));
        match ids.next() {
            Some(first) if ids.all(|t| t == first) => Some(first),
            _ => None,
        }
    };
    let mut filling = false;
    let mut others = false;
    for b in buffers.iter().filter(|b| Some(b.id) != direct) {
        let before = st.held_back.len();
        if b.drain(|e| st.held_back.push((b.id, e))) {
            horizon = horizon.min(b.drained_seq());
        }
        others |= st.held_back.len() > before;
        filling |= st.held_back.len() - before >= RING / 8;
    }
    if let Some(b) = buffers.iter().find(|b| Some(b.id) == direct) {
        // Another thread published meanwhile, or this is the end: merge as usual.
        let ready = if others || all { 0 } else { horizon };
        // Events held back from the last drain are older than the ring's.
        let held = st.held_back.partition_point(|(_, e)| e.seq < ready);
        let mut earlier = std::mem::take(&mut st.held_back);
        for (thread, e) in earlier.drain(..held) {
            emit(st, thread, e);
        }
        st.held_back = earlier;
        let mut drained = 0;
        let busy = b.drain(|e| {
            drained += 1;
            if e.seq < ready && st.held_back.is_empty() {
                emit(st, b.id, e);
            } else {
                st.held_back.push((b.id, e));
            }
        });
        if busy {
            horizon = horizon.min(b.drained_seq());
        }
        filling |= drained >= RING / 8;
    }
    st.busy = filling;
    // Rings of threads that ended and were drained are released.
    lock(&rec.threads).retain(|b| Arc::strong_count(b) > 2 || !b.is_empty());
    drop(buffers);
    // Definitions are drained after the events, so every event's stack is defined; they go
    // at the start of the chunk.
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
    let definitions = std::mem::take(&mut interner.pending);
    drop(interner);
    for r in definitions.iter().chain(&thread_records) {
        st.chunk.define(r);
    }

    if !st.held_back.is_empty() {
        // Each ring is in order; a sort of already-sorted runs is a linear pass.
        st.held_back.sort_unstable_by_key(|(_, e)| e.seq);
        let ready = if all {
            st.held_back.len()
        } else {
            st.held_back.partition_point(|(_, e)| e.seq < horizon)
        };
        let mut held = std::mem::take(&mut st.held_back);
        for (thread, e) in held.drain(..ready) {
            emit(st, thread, e);
        }
        st.held_back = held;
    }
    if !all && st.last_counters.elapsed() < TICK {
        return;
    }
    st.last_counters = Instant::now();
    let t = counters::totals();
    st.chunk.push(&Record::Counters {
        time_ns: start.elapsed().as_nanos() as u64,
        live: t.live,
        peak: t.peak,
        allocated: t.allocated,
        allocations: t.allocations,
        rss: rss_bytes(),
    });
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::mpsc;

    use memlens_format::{Domain, Header, Mode, Reader};

    use super::*;
    use crate::python::Layout;
    use crate::recorder;

    /// The writer's statics (the signal flag, the doorbell) are per process: one test at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn capture(name: &str, pace: Pace) -> (&'static Recorder, WriterHandle, std::path::PathBuf) {
        let layout = Layout::detect(3, 11).unwrap();
        let rec = recorder::install(true, 1, layout, 0);
        let path =
            std::env::temp_dir().join(format!("memlens-{name}-{}.mlens", std::process::id()));
        let header = Header {
            mode: Mode::Exact,
            ..Header::default()
        };
        let writer =
            Writer::new(BufWriter::new(CaptureFile::create(&path).unwrap()), &header).unwrap();
        (
            rec,
            WriterHandle::spawn(rec, writer, Instant::now(), pace),
            path,
        )
    }

    fn alloc(addr: u64) -> EventKind {
        EventKind::Alloc {
            addr,
            size: 16,
            stack: 0,
            domain: Domain::Native,
        }
    }

    fn allocs_in(path: &std::path::Path) -> Vec<u64> {
        let bytes = std::fs::read(path).unwrap();
        Reader::new(&bytes)
            .unwrap()
            .records()
            .filter_map(|r| match r.unwrap() {
                Record::Alloc { addr, .. } => Some(addr),
                _ => None,
            })
            .collect()
    }

    /// A fatal signal's flush wakes the writer through the doorbell: with a writer that would
    /// otherwise sleep for a minute between drains, the handler's flush still completes at
    /// once and the capture holds the event queued just before it.
    #[test]
    fn a_signal_flush_rings_the_writer() {
        let _serial = lock(&SERIAL);
        let pace = Pace {
            idle: Duration::from_secs(60),
            ..Pace::default()
        };
        let (rec, handle, path) = capture("signal", pace);
        // Let the writer reach its (minute-long) sleep, then queue one event.
        std::thread::sleep(Duration::from_millis(100));
        rec.push_for_test(alloc(0x5000));
        let asked = Instant::now();
        assert!(flush_from_signal(Duration::from_secs(5)), "no flush");
        let took = asked.elapsed();
        assert!(took < Duration::from_secs(2), "flush took {took:?}");
        assert_eq!(allocs_in(&path), [0x5000]);
        handle.finish();
        let _ = std::fs::remove_file(&path);
    }

    /// `_exit` or a fatal signal: the writer writes every event and the end marker at once
    /// (with a writer that would sleep a minute between drains), and nothing after.
    #[test]
    fn finishing_from_a_signal_writes_the_end_marker() {
        let _serial = lock(&SERIAL);
        let pace = Pace {
            idle: Duration::from_secs(60),
            ..Pace::default()
        };
        let (rec, handle, path) = capture("finish", pace);
        std::thread::sleep(Duration::from_millis(100));
        rec.push_for_test(alloc(0x6000));
        let asked = Instant::now();
        assert!(finish_from_signal(Duration::from_secs(5)), "not finished");
        assert!(asked.elapsed() < Duration::from_secs(2));
        // The writer has ended: a second request returns at once, and so does `finish`.
        let again = Instant::now();
        finish_from_signal(Duration::from_secs(5));
        assert!(again.elapsed() < Duration::from_secs(1));
        rec.push_for_test(alloc(0x7000));
        handle.finish();
        assert_eq!(allocs_in(&path), [0x6000]);
        let bytes = std::fs::read(&path).unwrap();
        let last = Reader::new(&bytes)
            .unwrap()
            .records()
            .last()
            .unwrap()
            .unwrap();
        assert!(matches!(last, Record::End), "{last:?}");
        let _ = std::fs::remove_file(&path);
    }

    /// A writer stuck for good: the thread fills its ring, waits its full time once, then
    /// drops every further event at once (no second wait), and counts each. When the writer
    /// finally runs, it writes the ring's events and the count, which matches the recorder's.
    #[test]
    fn a_stuck_writer_drops_counts_and_records_the_count() {
        let _serial = lock(&SERIAL);
        let pace = Pace {
            stall: Duration::from_secs(600),
            ..Pace::default()
        };
        let (rec, handle, path) = capture("stuck", pace);
        const EXTRA: u64 = 1000;
        let pushed = std::thread::spawn(move || {
            let t = Instant::now();
            for i in 0..RING as u64 + EXTRA {
                rec.push_for_test(alloc(i << 4));
            }
            t.elapsed()
        })
        .join()
        .unwrap();
        // One wait of `FULL_WAIT_NS` (2 s), not one per dropped event.
        assert!(pushed < Duration::from_secs(10), "pushing took {pushed:?}");
        assert_eq!(rec.dropped.load(Ordering::Relaxed), EXTRA);
        let stats = handle.finish();
        assert_eq!(stats.events, RING as u64);
        assert_eq!(allocs_in(&path).len(), RING);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(Reader::new(&bytes).unwrap().dropped_events(), EXTRA);
        let _ = std::fs::remove_file(&path);
    }

    /// Where one thread frees what another allocated, the capture has the allocation first,
    /// and every event of every thread is there once: 4 pairs of threads hand 50,000 blocks
    /// each from an allocating thread to a freeing one (more than a ring holds, so rings
    /// wrap and fill while the writer drains them).
    #[test]
    fn a_free_on_another_thread_follows_its_allocation() {
        let _serial = lock(&SERIAL);
        let layout = Layout::detect(3, 11).unwrap();
        let rec = recorder::install(true, 1, layout, 0);
        let path = std::env::temp_dir().join(format!("memlens-order-{}.mlens", std::process::id()));
        let header = Header {
            mode: Mode::Exact,
            ..Header::default()
        };
        let writer =
            Writer::new(BufWriter::new(CaptureFile::create(&path).unwrap()), &header).unwrap();
        let handle = WriterHandle::spawn(rec, writer, Instant::now(), Pace::default());
        const PAIRS: u64 = 4;
        const BLOCKS: u64 = 50_000;
        let mut threads = Vec::new();
        for pair in 0..PAIRS {
            let (tx, rx) = mpsc::sync_channel::<u64>(64);
            threads.push(std::thread::spawn(move || {
                for i in 0..BLOCKS {
                    let addr = (pair << 32) | (i << 4);
                    rec.push_for_test(EventKind::Alloc {
                        addr,
                        size: 16,
                        stack: 0,
                        domain: Domain::Native,
                    });
                    tx.send(addr).unwrap();
                }
            }));
            threads.push(std::thread::spawn(move || {
                for addr in rx {
                    rec.push_for_test(EventKind::Free { addr });
                }
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
        let stats = handle.finish();
        assert_eq!(stats.events, 2 * PAIRS * BLOCKS);
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let mut live = HashSet::new();
        let (mut allocs, mut frees) = (0, 0);
        for r in Reader::new(&bytes).unwrap().records() {
            match r.unwrap() {
                Record::Alloc { addr, .. } => {
                    assert!(live.insert(addr), "{addr:#x} allocated twice");
                    allocs += 1;
                }
                Record::Free { addr } => {
                    assert!(live.remove(&addr), "{addr:#x} freed before its allocation");
                    frees += 1;
                }
                _ => {}
            }
        }
        assert_eq!((allocs, frees), (PAIRS * BLOCKS, PAIRS * BLOCKS));
        assert!(live.is_empty());
        assert_eq!(rec.dropped.load(Ordering::Relaxed), 0);
        assert_eq!(Reader::new(&bytes).unwrap().dropped_events(), 0);
    }
}
