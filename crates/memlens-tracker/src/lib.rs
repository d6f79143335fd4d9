//! The part of memlens that runs inside the profiled Python process.
//!
//! [`start`] wraps CPython's object allocators, serves pymalloc arenas from a reserved range,
//! rewrites the GOT slots of the malloc family in every loaded library, and starts a writer
//! thread that appends a capture file ([`memlens_format`]). From then on every allocation
//! updates exact running totals ([`current`]); a byte-weighted Poisson sample of them (or every
//! one, with `exact`) is recorded with its Python stack, read in place from the interpreter's
//! frames ([`python`] holds the per-version layouts). [`stop`] restores everything and closes
//! the file. [`heap_snapshot`] walks every object of the interpreter into a heap snapshot
//! ([`heap`]), written to a file or added to the capture with [`add_heap_snapshot`].
//!
//! Every public function except [`current`] must be called with the GIL held.
//!
//! ```no_run
//! # fn main() -> Result<(), memlens_tracker::TrackerError> {
//! use memlens_tracker::{Config, start, stop};
//! start(Config { path: "out.mlens".into(), python: (3, 11), ..Config::default() })?;
//! // ... run Python code ...
//! let summary = stop()?;
//! println!("{} bytes at peak", summary.totals.peak);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![allow(unsafe_code)]

mod capture_file;
mod counters;
mod fatal;
mod ffi;
mod fork;
pub mod heap;
mod hooks;
pub mod python;
mod recorder;
mod sampler;
mod writer;

use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

pub use counters::Totals;
pub use hooks::pymem::PythonHooks;
use memlens_format::{Header, Mode, Writer};
pub use writer::WriterStats;

/// What went wrong starting or stopping the tracker.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// This CPython version has no layout.
    #[error("CPython {0}.{1} is not supported (memlens supports 3.9 to 3.13)")]
    UnsupportedPython(u8, u8),
    /// Tracking cannot start in this state of the interpreter (the reason says why).
    #[error("cannot track: {0}")]
    Unavailable(&'static str),
    /// Tracking is already on.
    #[error("memory tracking is already active")]
    AlreadyActive,
    /// Tracking is not on.
    #[error("memory tracking is not active")]
    NotActive,
    /// The capture file could not be created.
    #[error("cannot write capture {path}: {source}")]
    Create {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The capture header could not be written.
    #[error("cannot write capture header: {0}")]
    Format(#[from] memlens_format::FormatError),
    /// A heap snapshot could not be written.
    #[error("heap snapshot: {0}")]
    Heap(#[from] memlens_heap::HeapError),
    /// A heap snapshot is too large to be a chunk of the capture.
    #[error(
        "heap snapshot of {0} bytes is too large for a capture chunk: write it to a file with memlens.snapshot(path)"
    )]
    SnapshotTooLarge(usize),
    /// A heap snapshot was asked for while the garbage collector runs.
    #[error(
        "cannot take a heap snapshot during a garbage collection (from __del__, a weakref callback \
         or a gc callback): the collector's lists are being rearranged; take it after the \
         collection, for example from the main code path"
    )]
    SnapshotDuringGc,
}

/// How to track.
#[derive(Debug, Clone)]
pub struct Config {
    /// Capture file to write.
    pub path: PathBuf,
    /// Record every allocation instead of sampling.
    pub exact: bool,
    /// Mean bytes between samples.
    pub sample_rate: u64,
    /// Hook native allocations (malloc family, mmap) too.
    pub native: bool,
    /// `(major, minor)` of the running interpreter.
    pub python: (u8, u8),
    /// Full version string, for the header.
    pub python_version: String,
    /// The program's command line.
    pub command: Vec<String>,
    /// Path prefixes of library code (stdlib, site-packages).
    pub library_prefixes: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            path: PathBuf::from("memlens.mlens"),
            exact: false,
            sample_rate: 512 * 1024,
            native: true,
            python: (3, 11),
            python_version: String::new(),
            command: Vec::new(),
            library_prefixes: Vec::new(),
        }
    }
}

/// What a finished tracking session produced.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The capture file.
    pub path: PathBuf,
    /// Totals at the end.
    pub totals: Totals,
    /// Writer statistics.
    pub writer: WriterStats,
    /// Events dropped because a thread's buffer stayed full (the writer fell behind or was
    /// stuck): the capture lacks them, so its sites may be incomplete; totals stay exact.
    /// The capture records the same count (`memlens_format::Reader::dropped_events`).
    pub dropped_events: u64,
}

/// Test hook: when this environment variable holds a number of milliseconds, the writer thread
/// waits that long after [`start`] (or until [`stop`]) before it drains anything, as a stuck
/// writer would, so tests can fill a thread's buffer and see events dropped and reported. Read
/// once by each [`start`]; not meant for users.
pub const STALL_WRITER_ENV: &str = "MEMLENS_TEST_STALL_WRITER_MS";

struct Session {
    path: PathBuf,
    writer: writer::WriterHandle,
    native: bool,
}

static SESSION: Mutex<Option<Session>> = Mutex::new(None);
/// When the session's capture started: the clock of its `time_ns` fields. A lock of its own,
/// not `SESSION`'s: the collector may run (and call [`gc_event`]) while `SESSION` is held.
static CAPTURE_START: Mutex<Option<Instant>> = Mutex::new(None);

/// Starts tracking. Caller holds the GIL.
pub fn start(config: Config) -> Result<(), TrackerError> {
    let mut session = recorder::lock(&SESSION);
    if session.is_some() {
        return Err(TrackerError::AlreadyActive);
    }
    let layout = python::Layout::detect(config.python.0, config.python.1).ok_or(
        TrackerError::UnsupportedPython(config.python.0, config.python.1),
    )?;
    hooks::pymem::check_restart(config.exact).map_err(TrackerError::Unavailable)?;
    let file =
        capture_file::CaptureFile::create(&config.path).map_err(|source| TrackerError::Create {
            path: config.path.clone(),
            source,
        })?;
    let header = Header {
        python_version: config.python_version.clone(),
        pid: std::process::id(),
        command: config.command.clone(),
        mode: if config.exact {
            Mode::Exact
        } else {
            Mode::Sampling
        },
        sample_rate: if config.exact {
            1
        } else {
            config.sample_rate.max(1)
        },
        start_unix_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
        library_prefixes: config.library_prefixes.clone(),
    };
    let writer = Writer::new(BufWriter::with_capacity(1 << 20, file), &header)?;
    // Taking the address of the interpreter's PyCode_Type object; it is never read or written.
    let code_type = std::ptr::addr_of!(ffi::PyCode_Type) as usize;
    let rec = recorder::install(config.exact, config.sample_rate, layout, code_type);
    counters::reset();
    hooks::sampled::reset(config.exact);
    if !config.exact {
        // The first sample point falls at a random distance, like every later one.
        sampler::gil_advance(&counters::GIL.sample_at, 0, rec.sample_rate);
    }
    hooks::arena::install(layout.pool_size);
    hooks::arena::begin_session();
    // PYTHONMALLOC=malloc (or malloc_debug) bypasses pymalloc: small blocks are then malloc's.
    let pymalloc =
        std::env::var("PYTHONMALLOC").map_or(true, |v| v.is_empty() || v.starts_with("pymalloc"));
    // SAFETY: the caller holds the GIL (documented on `start`).
    unsafe { hooks::old_pools::reset(pymalloc) };
    // Without the table no malloc block is counted (each would be subtracted on free even
    // when allocated before tracking started).
    hooks::native_marks::reset();
    // SAFETY: the caller holds the GIL; the hooks do not count yet.
    unsafe { hooks::ballast::fill(hooks::pymem::plain_pymalloc(ffi::PYMEM_DOMAIN_OBJ)) };
    let start = Instant::now();
    *recorder::lock(&CAPTURE_START) = Some(start);
    let stall = std::env::var(STALL_WRITER_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(std::time::Duration::ZERO, std::time::Duration::from_millis);
    let pace = writer::Pace {
        stall,
        ..writer::Pace::default()
    };
    let writer = writer::WriterHandle::spawn(rec, writer, start, pace);
    hooks::set_counting(true);
    hooks::pymem::install(config.exact, config.python >= (3, 12));
    if config.native {
        hooks::native::patch_all();
    }
    fork::install_handlers();
    fatal::install();
    *session = Some(Session {
        path: config.path,
        writer,
        native: config.native,
    });
    Ok(())
}

/// Stops tracking, restores the allocators and finishes the capture. Caller holds the GIL.
pub fn stop() -> Result<Summary, TrackerError> {
    let session = recorder::lock(&SESSION)
        .take()
        .ok_or(TrackerError::NotActive)?;
    hooks::settle_peak();
    let totals = counters::totals();
    hooks::set_counting(false);
    if let Some(rec) = recorder::current() {
        rec.set_stack_root(false);
    }
    fatal::uninstall();
    hooks::pymem::uninstall();
    if session.native {
        hooks::native::unpatch_all();
    }
    // SAFETY: the caller holds the GIL (documented on `stop`); the hooks no longer count.
    unsafe { hooks::ballast::release() };
    let stats = session.writer.finish();
    // Read after the writer's last drain, as the count it wrote to the capture was.
    let dropped_events = recorder::current().map_or(0, |r| r.dropped.load(Relaxed));
    Ok(Summary {
        path: session.path,
        totals,
        writer: stats,
        dropped_events,
    })
}

/// Takes a heap snapshot of the running interpreter into `out` (see [`heap`]); returns the
/// writer and what was found. Allocates no Python object.
///
/// # Safety
/// The caller holds the GIL and `roots` names live objects (see [`heap::Roots`]).
pub unsafe fn heap_snapshot<W: std::io::Write>(
    python: (u8, u8),
    roots: &heap::Roots,
    meta: &[(String, String)],
    out: W,
) -> Result<(W, heap::HeapStats), TrackerError> {
    // SAFETY: forwarded from the caller (GIL held).
    unsafe { check_heap_snapshot(python)? };
    let layout = python::Layout::detect(python.0, python.1)
        .ok_or(TrackerError::UnsupportedPython(python.0, python.1))?;
    let mut builder = memlens_heap::SnapshotBuilder::new(out)?;
    for (k, v) in meta {
        builder.set_meta(k, v)?;
    }
    // SAFETY: forwarded from the caller.
    Ok(unsafe { heap::walk(layout, roots, builder) }?)
}

/// Whether a heap snapshot can be taken now: the version is supported and the garbage
/// collector is not running (a snapshot asked for from `__del__` or a `gc.callbacks` function
/// is refused with [`TrackerError::SnapshotDuringGc`]).
///
/// # Safety
/// The caller holds the GIL.
pub unsafe fn check_heap_snapshot(python: (u8, u8)) -> Result<(), TrackerError> {
    let layout = python::Layout::detect(python.0, python.1)
        .ok_or(TrackerError::UnsupportedPython(python.0, python.1))?;
    // SAFETY: forwarded from the caller.
    if unsafe { heap::gc_running(layout) } {
        return Err(TrackerError::SnapshotDuringGc);
    }
    Ok(())
}

/// Appends a heap snapshot (the bytes of a snapshot file) to the capture as one chunk, after
/// every event recorded before this call, and waits until it is written.
pub fn add_heap_snapshot(snapshot: Vec<u8>) -> Result<(), TrackerError> {
    if snapshot.len() > writer::MAX_HEAP_CHUNK {
        return Err(TrackerError::SnapshotTooLarge(snapshot.len()));
    }
    match recorder::lock(&SESSION).as_ref() {
        Some(s) => {
            s.writer.heap_chunk(snapshot);
            Ok(())
        }
        None => Err(TrackerError::NotActive),
    }
}

/// True while tracking.
pub fn is_active() -> bool {
    counters::GIL.active.load(Relaxed)
}

/// The hooks wrapping the Python allocator domains now.
pub fn python_hooks() -> PythonHooks {
    hooks::pymem::python_hooks()
}

/// A garbage collection of `generation` starts (`start`) or stops, as `gc.callbacks` reports
/// it (`collected` and `uncollectable` on stop). Caller holds the GIL (the collector runs with
/// it), so the event sits in order with the frees the collection makes on this thread.
pub fn gc_event(start: bool, generation: u8, collected: u64, uncollectable: u64) {
    let Some(rec) = recorder::current().filter(|_| is_active()) else {
        return;
    };
    let totals = counters::totals();
    let freed = totals.allocated.saturating_sub(totals.live);
    let time_ns = capture_time_ns();
    let generation = generation.min(2);
    if start {
        rec.gc(recorder::EventKind::GcStart {
            time_ns,
            freed,
            generation,
        });
        return;
    }
    rec.gc(recorder::EventKind::GcStop {
        time_ns,
        freed,
        collected: u32::try_from(collected).unwrap_or(u32::MAX),
        generation,
    });
    if uncollectable > 0 {
        rec.gc(recorder::EventKind::GcUncollectable {
            count: uncollectable,
        });
    }
}

/// The program turned automatic collection on or off (`gc.enable()`, `gc.disable()`).
pub fn gc_enabled(on: bool) {
    if let Some(rec) = recorder::current().filter(|_| is_active()) {
        let time_ns = capture_time_ns();
        rec.gc(recorder::EventKind::GcEnabled { time_ns, on });
    }
}

/// The collector's state as tracking stops: `gc.garbage`'s length, `gc.get_freeze_count()`
/// and `gc.isenabled()`.
pub fn gc_final(garbage: u64, frozen: u64, enabled: bool) {
    if let Some(rec) = recorder::current().filter(|_| is_active()) {
        rec.gc(recorder::EventKind::GcFinal {
            garbage,
            frozen: u32::try_from(frozen).unwrap_or(u32::MAX),
            enabled,
        });
    }
}

fn capture_time_ns() -> u64 {
    recorder::lock(&CAPTURE_START).map_or(0, |start| {
        u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    })
}

/// Exact totals now (zeros when tracking never started). Any thread.
pub fn current() -> Totals {
    counters::totals()
}

/// Writes everything recorded so far to the capture (before a fork, say).
pub fn flush() {
    if let Some(s) = recorder::lock(&SESSION).as_ref() {
        s.writer.flush();
    }
}

/// Marks a point in the capture; reports can show what leaked between two checkpoints.
pub fn checkpoint(label: &str) {
    if let Some(rec) = recorder::current()
        && is_active()
    {
        rec.checkpoint(label);
    }
}

/// Makes the calling thread's current Python frame the root of recorded stacks (`on`), or
/// clears it: walks then end before that frame, which must be blocked (in `exec`, say) while it
/// is the root. `memlens run`'s runner sets its own frame, so stacks start at the program's
/// code and the walk skips memlens's outer frames. The caller holds the GIL and clears the
/// root before that frame returns.
pub fn set_stack_root(on: bool) {
    if let Some(rec) = recorder::current() {
        rec.set_stack_root(on && is_active());
    }
}

/// Runs `run` with the calling thread's frame chain cut below it: Python code that `run`
/// evaluates starts a chain of its own, so the program sees no frame of the caller (memlens's
/// runner) in `sys._getframe()`, `inspect.stack()` or tracebacks, exactly as when `python`
/// runs a script from C. The chain is put back when `run` returns. A thread starts its first
/// Python frame from an empty chain too, so the interpreter handles this state already.
///
/// # Safety
/// The caller holds the GIL, and `run` must not return while a frame it started is still on
/// the chain (evaluating code with `PyEval_EvalCode` and returning pops every frame it pushed).
pub unsafe fn with_detached_frames<R>(python: (u8, u8), run: impl FnOnce() -> R) -> R {
    let Some(layout) = python::Layout::detect(python.0, python.1) else {
        return run();
    };
    // SAFETY: the caller holds the GIL, so this thread has a live thread state.
    let tstate = unsafe { ffi::PyThreadState_Get() } as usize;
    // SAFETY: as above; the slot is in the thread state or in the `_PyCFrame` of the C call
    // that is running now, and stays valid until that call returns, after `run`.
    let slot = unsafe { layout.frame_slot(tstate) };
    if slot.is_null() {
        return run();
    }
    // SAFETY: `slot` is valid (above); only this thread, which holds the GIL, writes it.
    let saved = unsafe { slot.replace(0) };
    // The frames pushed by `run` are popped before it returns, leaving the slot at 0 again.
    let result = run();
    // SAFETY: as above.
    unsafe { slot.write(saved) };
    result
}

/// Names the calling thread in the capture.
pub fn set_thread_name(name: &str) {
    if let Some(rec) = recorder::current()
        && is_active()
    {
        rec.set_thread_name(name);
    }
}

/// Called in a forked child: the writer thread did not survive the fork, so tracking stops
/// here without touching any lock another thread may have held. The caller may [`start`] a
/// fresh session (with its own file) afterwards.
pub fn after_fork_in_child() {
    hooks::set_counting(false);
    // The parent's session, writer and locks are abandoned: forget them without dropping.
    if let Ok(mut s) = SESSION.try_lock()
        && let Some(session) = s.take()
    {
        std::mem::forget(session);
    }
}

pub(crate) fn disable_after_panic() {
    if let Some(rec) = recorder::current() {
        rec.poisoned.store(true, Relaxed);
    }
    hooks::set_counting(false);
}
