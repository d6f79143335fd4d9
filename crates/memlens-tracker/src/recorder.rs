//! The slow path shared by every hook: capture the stack of a sampled (or, in exact mode,
//! every) allocation, intern it, and queue the event for the writer thread.
//!
//! All state hangs off one leaked [`Recorder`] reached through an atomic pointer, so a forked
//! child can drop a recorder whose locks another thread held at fork time and start afresh.
//! Each thread queues its events in its own single-producer ring ([`ThreadBuffer`]): no lock,
//! one atomic read-modify-write (the global sequence number) per event. The only locks are the
//! interning tables', which a thread takes only when a frame misses its own stack cache.
//!
//! Ordering. Events of one thread are in ring order. Across threads, each event carries a
//! number from one global counter, taken while the thread's `busy` flag is up; the writer reads
//! the counter first and then, per ring, `busy` before the published tail, so that every event
//! numbered below what it read is either in a ring or belongs to a thread it saw busy (whose
//! later events it holds back). That order is what the reader needs where one thread frees what
//! another allocated; Python-domain events are serialised by the GIL, and their numbers follow
//! that order.

use std::cell::{Cell, UnsafeCell};
use std::collections::HashMap;
use std::ffi::{CStr, c_void};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use memlens_format::{Domain, Record};

use crate::ffi;
use crate::python::{Chain, ChainWalker, CodeKey, Layout, RawFrame, Walker};

/// Deepest stack recorded; deeper stacks keep their innermost frames.
const MAX_DEPTH: usize = 128;
/// Events in each thread's ring: 4 MiB of address space, committed as the ring is used (a
/// thread that allocates little touches little of it). The writer drains every millisecond
/// while events flow and at once when a ring is a quarter full, so a full ring is rare even
/// for a thread that does nothing but allocate (tens of millions of events a second) on a
/// machine whose other core is busy.
pub(crate) const RING: usize = 1 << 17;

/// Longest a thread waits for the writer to free room in its full ring before it drops the
/// event (and, without waiting, every later one until there is room again).
const FULL_WAIT_NS: u64 = 2_000_000_000;

/// `CLOCK_MONOTONIC` now, in nanoseconds (a vDSO call: no system call, async-signal-safe).
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Rung (bumped and woken) when the writer should drain now: a ring is filling up, or a
/// flush or stop was asked for. The writer sleeps on it between ticks.
static DOORBELL: AtomicU32 = AtomicU32::new(0);

/// Wakes the writer. Async-signal-safe: one atomic and one `futex` system call.
pub(crate) fn ring_doorbell() {
    DOORBELL.fetch_add(1, Ordering::Release);
    // SAFETY: FUTEX_WAKE on a valid, aligned u32; wakes at most one waiter.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            DOORBELL.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}

/// The doorbell's value now, to pass to [`wait_for_doorbell`].
pub(crate) fn doorbell() -> u32 {
    DOORBELL.load(Ordering::Acquire)
}

/// Sleeps until the doorbell rings after it read `seen`, or `timeout` passes.
pub(crate) fn wait_for_doorbell(seen: u32, timeout: std::time::Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: FUTEX_WAIT on a valid, aligned u32 with a valid relative timeout; it returns at
    // once when the value is no longer `seen`.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            DOORBELL.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            seen,
            &ts as *const libc::timespec,
        );
    }
}

/// One queued event; `seq` orders events across threads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Event {
    pub seq: u64,
    pub kind: EventKind,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum EventKind {
    Alloc {
        addr: u64,
        size: u64,
        stack: u32,
        domain: Domain,
    },
    Free {
        addr: u64,
    },
    Peak,
    Checkpoint {
        label: u32,
    },
    /// A garbage collection began: `freed` is the session's bytes freed so far.
    GcStart {
        time_ns: u64,
        freed: u64,
        generation: u8,
    },
    /// The collection ended (its `uncollectable` count, when not zero, follows as its own
    /// event: one more field would make every event 8 bytes larger).
    GcStop {
        time_ns: u64,
        freed: u64,
        collected: u32,
        generation: u8,
    },
    GcUncollectable {
        count: u64,
    },
    GcEnabled {
        time_ns: u64,
        on: bool,
    },
    GcFinal {
        garbage: u64,
        frozen: u32,
        enabled: bool,
    },
}

// Every event is queued in a thread's ring: it must stay as small as an allocation's.
const _: () = assert!(std::mem::size_of::<Event>() <= 32);

/// A thread's event queue: a ring with one producer (the thread) and one consumer (the
/// writer), registered with the recorder so the writer can drain it.
pub(crate) struct ThreadBuffer {
    pub id: u32,
    slots: RingSlots,
    /// What the owning thread writes on every event, on a cache line of its own.
    producer: Producer,
    /// What the writer writes on every drain, on another: the two sides never share a line
    /// they write (the owner reads the writer's line once per quarter ring).
    consumer: Consumer,
}

type Slot = UnsafeCell<MaybeUninit<Event>>;

/// A ring's `RING` slots in a private anonymous map of their own: pages are committed as the
/// ring first reaches them, so a thread that records a few events costs a few pages, not the
/// whole ring, and unmapping gives them back when the thread's buffer is released. (`calloc`
/// of the same size is served from a recycled arena chunk once glibc's mmap threshold has
/// grown past it, and then clears, and so commits, every page.)
struct RingSlots {
    ptr: std::ptr::NonNull<Slot>,
    /// False when the map failed and the slots are a heap allocation instead.
    mapped: bool,
}

const RING_BYTES: usize = RING * std::mem::size_of::<Slot>();

impl RingSlots {
    fn new() -> Self {
        let p = crate::hooks::map_zeroed(RING_BYTES) as *mut Slot;
        if let Some(ptr) = std::ptr::NonNull::new(p) {
            return RingSlots { ptr, mapped: true };
        }
        // SAFETY: `MaybeUninit` inside `UnsafeCell` is valid for any bytes.
        let slots = unsafe { Box::<[Slot]>::new_zeroed_slice(RING).assume_init() };
        let ptr = std::ptr::NonNull::new(Box::into_raw(slots) as *mut Slot)
            .unwrap_or(std::ptr::NonNull::dangling());
        RingSlots { ptr, mapped: false }
    }
}

impl std::ops::Deref for RingSlots {
    type Target = [Slot];
    #[inline(always)]
    fn deref(&self) -> &[Slot] {
        // SAFETY: `ptr` points at `RING` slots owned by `self` until it is dropped.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), RING) }
    }
}

impl Drop for RingSlots {
    fn drop(&mut self) {
        // SAFETY: the map or box made in `new`, released once; no slot is borrowed any more
        // (the ring is dropped with its last `Arc`).
        unsafe {
            if self.mapped {
                libc::munmap(self.ptr.as_ptr().cast(), RING_BYTES);
            } else {
                drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                    self.ptr.as_ptr(),
                    RING,
                )));
            }
        }
    }
}

#[repr(align(64))]
struct Producer {
    /// Events published so far (only the owning thread stores it).
    tail: AtomicUsize,
    /// Up while the owner holds a sequence number whose event is not published yet.
    busy: AtomicBool,
    /// `consumer.head` as the owner last read it (only the owning thread uses it).
    head_seen: AtomicUsize,
    /// Up once this ring waited its full time for the writer and dropped an event: until the
    /// writer frees room, further events are dropped at once instead of waiting again (only
    /// the owning thread uses it).
    dropping: AtomicBool,
}

#[repr(align(64))]
struct Consumer {
    /// Events consumed so far (only the writer stores it).
    head: AtomicUsize,
    /// Sequence number of the last event the writer consumed, plus one (writer only).
    drained_seq: AtomicU64,
}

// SAFETY: slots in `head..tail` are only read (by the writer), slots outside it only written
// (by the owning thread); `tail` (Release/Acquire) hands a slot from one side to the other
// and `head` hands it back.
unsafe impl Sync for ThreadBuffer {}
// SAFETY: as above; the events are plain data.
unsafe impl Send for ThreadBuffer {}

impl ThreadBuffer {
    fn new(id: u32) -> Self {
        ThreadBuffer {
            id,
            slots: RingSlots::new(),
            producer: Producer {
                tail: AtomicUsize::new(0),
                busy: AtomicBool::new(false),
                head_seen: AtomicUsize::new(0),
                dropping: AtomicBool::new(false),
            },
            consumer: Consumer {
                head: AtomicUsize::new(0),
                drained_seq: AtomicU64::new(0),
            },
        }
    }

    /// Numbers `kind` and publishes it. Only the owning thread calls this.
    #[inline(always)]
    fn push(&self, rec: &Recorder, kind: EventKind) {
        let p = &self.producer;
        let tail = p.tail.load(Ordering::Relaxed);
        // The writer only ever frees room, so a stale head errs on the side of "full".
        if tail.wrapping_sub(p.head_seen.load(Ordering::Relaxed)) >= RING / 4 {
            let head = self.consumer.head.load(Ordering::Acquire);
            p.head_seen.store(head, Ordering::Relaxed);
            let used = tail.wrapping_sub(head);
            // Between a quarter and full the writer has been woken already: go on without a
            // call (it is every event until the writer has drained).
            if (used == RING / 4 || used >= RING) && !self.filling(used, tail, rec) {
                return;
            }
        }
        p.busy.store(true, Ordering::Relaxed);
        // A release operation: `busy` is up for whoever reads a later value of `seq`.
        let seq = rec.seq.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the slot at `tail` is outside `head..tail` (the ring has room), so the writer
        // does not read it; only this thread writes slots. `RING` is a power of two.
        unsafe {
            (*self.slots.get_unchecked(tail & (RING - 1)).get()).write(Event { seq, kind });
        }
        p.tail.store(tail.wrapping_add(1), Ordering::Release);
        p.busy.store(false, Ordering::Release);
    }

    /// The ring is a quarter full: wake the writer once; when it is full, wait (at most
    /// [`FULL_WAIT_NS`]) for the writer to drain it. When it does not (no writer any more, or
    /// it is stuck) the event is dropped and counted in [`Recorder::dropped`] rather than block
    /// the program, and so is every later event until the writer frees room.
    #[cold]
    #[inline(never)]
    fn filling(&self, used: usize, tail: usize, rec: &Recorder) -> bool {
        if used == RING / 4 {
            ring_doorbell();
        }
        let dropping = &self.producer.dropping;
        if used < RING {
            dropping.store(false, Ordering::Relaxed);
            return true;
        }
        if !dropping.load(Ordering::Relaxed) {
            let pause = libc::timespec {
                tv_sec: 0,
                tv_nsec: 50_000,
            };
            let deadline = monotonic_ns().saturating_add(FULL_WAIT_NS);
            while rec.draining.load(Ordering::Acquire) && monotonic_ns() < deadline {
                ring_doorbell();
                // SAFETY: nanosleep with a valid timespec; async-signal-safe.
                unsafe { libc::nanosleep(&pause, std::ptr::null_mut()) };
                let head = self.consumer.head.load(Ordering::Acquire);
                self.producer.head_seen.store(head, Ordering::Relaxed);
                if tail.wrapping_sub(head) < RING {
                    return true;
                }
            }
            dropping.store(true, Ordering::Relaxed);
        }
        rec.dropped.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Writer side: passes every published event to `f`, oldest first, and frees their slots.
    /// Returns whether the owner was busy with an unpublished event before the events were
    /// read (see the module docs); read after the global sequence number.
    pub(crate) fn drain(&self, mut f: impl FnMut(Event)) -> bool {
        let busy = self.producer.busy.load(Ordering::SeqCst);
        let tail = self.producer.tail.load(Ordering::Acquire);
        let mut head = self.consumer.head.load(Ordering::Relaxed);
        let mut last = None;
        while head != tail {
            // SAFETY: slots in `head..tail` were written and published by the owner (Acquire
            // on `tail`) and are not written again until `head` moves past them.
            let e = unsafe { (*self.slots[head & (RING - 1)].get()).assume_init_read() };
            last = Some(e.seq);
            f(e);
            head = head.wrapping_add(1);
        }
        if let Some(seq) = last {
            self.consumer.drained_seq.store(seq + 1, Ordering::Relaxed);
        }
        self.consumer.head.store(head, Ordering::Release);
        busy
    }

    /// Writer side: one more than the number of the last event drained (0 before the first):
    /// a busy owner's unpublished event is numbered at least this.
    pub(crate) fn drained_seq(&self) -> u64 {
        self.consumer.drained_seq.load(Ordering::Relaxed)
    }

    /// True when every published event was drained.
    pub(crate) fn is_empty(&self) -> bool {
        self.producer.tail.load(Ordering::Acquire) == self.consumer.head.load(Ordering::Relaxed)
    }
}

/// Interning maps hash pointers and small ids: SipHash's DoS resistance buys nothing here and
/// cost a third of exact mode's instructions.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// Interning tables: code objects, frames and stack nodes get small ids, and each new
/// definition is queued as a record for the writer.
#[derive(Default)]
pub(crate) struct Interner {
    strings: FastMap<String, u32>,
    functions: FastMap<CodeKey, u32>,
    raw_frames: FastMap<RawFrame, (CodeKey, u32)>,
    frames: FastMap<(u32, u32), u32>,
    stacks: FastMap<(u32, u32), u32>,
    next_function: u32,
    next_frame: u32,
    next_stack: u32,
    /// Definitions not yet handed to the writer.
    pub pending: Vec<Record>,
}

impl Interner {
    pub(crate) fn string(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.strings.get(text) {
            return id;
        }
        let id = self.strings.len() as u32;
        self.strings.insert(text.to_owned(), id);
        self.pending.push(Record::String {
            id,
            text: text.to_owned(),
        });
        id
    }

    /// # Safety
    /// Every frame's code object must be alive (it is on the calling thread's stack).
    unsafe fn frame(&mut self, layout: &Layout, raw: RawFrame) -> u32 {
        // SAFETY: the code object is on the live stack.
        let key = unsafe { layout.code_key(raw.code) };
        if let Some(&(k, id)) = self.raw_frames.get(&raw)
            && k == key
        {
            return id;
        }
        let function = match self.functions.get(&key) {
            Some(&f) => f,
            None => {
                // SAFETY: as above.
                let names = unsafe { layout.code_names(raw.code) };
                let (name, qualname, file) = (
                    self.string(&names.name),
                    self.string(&names.qualname),
                    self.string(&names.file),
                );
                let id = self.next_function;
                self.next_function += 1;
                self.functions.insert(key, id);
                self.pending.push(Record::Function {
                    id,
                    name,
                    qualname,
                    file,
                    first_line: names.first_line,
                });
                id
            }
        };
        // SAFETY: PyCode_Addr2Line only reads the live code object's line table; it neither
        // allocates nor needs the GIL for an immutable code object.
        let line =
            unsafe { ffi::PyCode_Addr2Line(raw.code as *mut c_void, raw.lasti) }.max(0) as u32;
        let id = *self.frames.entry((function, line)).or_insert_with(|| {
            let id = self.next_frame;
            self.next_frame += 1;
            self.pending.push(Record::Frame { id, function, line });
            id
        });
        self.raw_frames.insert(raw, (key, id));
        id
    }

    /// Interns the stack `raw` called from stack `parent` (0: the outermost frame); returns its id.
    ///
    /// # Safety
    /// As for [`Interner::frame`].
    unsafe fn child(&mut self, layout: &Layout, parent: u32, raw: RawFrame) -> u32 {
        // SAFETY: forwarded.
        let frame = unsafe { self.frame(layout, raw) };
        match self.stacks.get(&(parent, frame)) {
            Some(&id) => id,
            None => {
                self.next_stack += 1;
                let id = self.next_stack;
                self.stacks.insert((parent, frame), id);
                self.pending.push(Record::Stack { id, parent, frame });
                id
            }
        }
    }
}

/// Slots in each thread's stack cache: 32 KiB per thread.
const STACK_CACHE_SLOTS: usize = 1 << 10;

/// One entry of a thread's stack cache: "frame `raw` called from stack `parent` is stack `id`".
#[derive(Clone, Copy, PartialEq, Eq)]
struct CachedStack {
    parent: u32,
    id: u32,
    raw: RawFrame,
    /// The code object's identity beyond its address (a freed code object's address can be
    /// reused by another).
    key: CodeKey,
}

impl Default for CachedStack {
    /// An empty slot: id 0 is never a stack with a frame.
    fn default() -> Self {
        CachedStack {
            parent: 0,
            id: 0,
            raw: RawFrame::default(),
            key: CodeKey {
                code: 0,
                name: 0,
                file: 0,
                first_line: 0,
            },
        }
    }
}

/// A thread's lock-free front for the shared interner. Most allocations share all but their
/// innermost frame (often all but its instruction offset) with the thread's previous
/// allocation: the common outer part keeps the ids it had, and each remaining frame is looked
/// up in a small direct-mapped cache before the shared, locked interner.
struct StackCache {
    /// The previous stack, outermost frame first, with `ids[i]` the id of the stack whose
    /// innermost frame is `frames[i]`. Outermost first so that a new stack only overwrites
    /// what changed, in place.
    frames: Vec<RawFrame>,
    ids: Vec<u32>,
    /// Frames of the previous stack in use.
    depth: usize,
    /// The recorder the ids belong to.
    recorder: usize,
    slots: Vec<CachedStack>,
}

impl StackCache {
    const fn new() -> Self {
        StackCache {
            frames: Vec::new(),
            ids: Vec::new(),
            depth: 0,
            recorder: 0,
            slots: Vec::new(),
        }
    }

    fn reset(&mut self, recorder: usize) {
        self.frames.clear();
        self.frames.resize(MAX_DEPTH, RawFrame::default());
        self.ids.clear();
        self.ids.resize(MAX_DEPTH, 0);
        self.depth = 0;
        self.slots.clear();
        self.slots.resize(STACK_CACHE_SLOTS, CachedStack::default());
        self.recorder = recorder;
    }

    #[inline(always)]
    fn slot(parent: u32, raw: RawFrame) -> usize {
        let h = (raw.code as u64 ^ (u64::from(parent) << 32) ^ raw.lasti as u32 as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> 54) as usize & (STACK_CACHE_SLOTS - 1)
    }
}

/// Everything the tracker records into, for one tracking session.
pub(crate) struct Recorder {
    pub exact: bool,
    pub sample_rate: u64,
    layout: &'static Layout,
    walker: Walker,
    chain_walker: ChainWalker,
    code_type: usize,
    /// Returns the thread state of the thread holding the GIL, for Python-domain events.
    gil_tstate: unsafe extern "C" fn() -> *mut c_void,
    /// Orders events across threads.
    pub seq: AtomicU64,
    /// Events dropped because a ring stayed full (the writer was gone or stuck).
    pub dropped: AtomicU64,
    /// Cleared by the writer when it stops draining.
    pub draining: AtomicBool,
    pub threads: Mutex<Vec<Arc<ThreadBuffer>>>,
    next_thread: AtomicU32,
    pub interner: Mutex<Interner>,
    /// Native thread id -> name, set from Python; the writer emits Thread records.
    pub thread_names: Mutex<Vec<(u32, u64, String)>>,
    /// Set once a panic was caught in a hook: recording stops, the program goes on.
    pub poisoned: AtomicBool,
}

static RECORDER: AtomicPtr<Recorder> = AtomicPtr::new(std::ptr::null_mut());

/// The frame that runs the profiled program (`memlens run`'s runner, blocked in `exec`), or 0:
/// stack walks end before it, so recorded stacks start at the program's own code and every
/// walk skips memlens's outer frames. While it is set the frame is alive, so no other live
/// frame (on any thread) has its address.
static STACK_ROOT: AtomicUsize = AtomicUsize::new(0);

/// The current recorder, if tracking has been started.
#[inline]
pub(crate) fn current() -> Option<&'static Recorder> {
    let p = RECORDER.load(Ordering::Acquire);
    // SAFETY: recorders are leaked, never freed, so a non-null pointer stays valid forever.
    unsafe { p.as_ref() }
}

/// The interpreter's "current thread state" getter (`PyThreadState_GetUnchecked` from 3.13,
/// `_PyThreadState_UncheckedGet` before), found at run time: neither is in the stable ABI.
/// With the GIL held it is the calling thread's state, read without the thread-specific-data
/// lookup of `PyGILState_GetThisThreadState` (the fallback).
fn gil_tstate_fn() -> unsafe extern "C" fn() -> *mut c_void {
    const NAMES: [&CStr; 3] = [
        c"PyThreadState_GetUnchecked",
        c"_PyThreadState_UncheckedGet",
        c"PyGILState_GetThisThreadState",
    ];
    for name in NAMES {
        // SAFETY: dlsym with a valid C string; RTLD_DEFAULT searches the loaded objects.
        let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        if !f.is_null() {
            // SAFETY: all three take nothing and return `PyThreadState *`.
            return unsafe {
                std::mem::transmute::<*mut c_void, unsafe extern "C" fn() -> *mut c_void>(f)
            };
        }
    }
    no_tstate
}

/// No interpreter in the process (the tracker's own tests): no Python stack.
unsafe extern "C" fn no_tstate() -> *mut c_void {
    std::ptr::null_mut()
}

/// Installs a new recorder, abandoning (leaking) any previous one.
pub(crate) fn install(
    exact: bool,
    sample_rate: u64,
    layout: &'static Layout,
    code_type: usize,
) -> &'static Recorder {
    let rec = Box::leak(Box::new(Recorder {
        exact,
        sample_rate: sample_rate.max(1),
        layout,
        walker: layout.walker(),
        chain_walker: layout.chain_walker(),
        code_type,
        gil_tstate: gil_tstate_fn(),
        seq: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        draining: AtomicBool::new(true),
        threads: Mutex::new(Vec::new()),
        next_thread: AtomicU32::new(0),
        interner: Mutex::new(Interner::default()),
        thread_names: Mutex::new(Vec::new()),
        poisoned: AtomicBool::new(false),
    }));
    RECORDER.store(rec, Ordering::Release);
    rec
}

/// Locks, ignoring poisoning: a panic elsewhere must not stop the profiled program.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct LocalState {
    /// (recorder address, buffer) so a new recorder gets a new buffer.
    buffer: Option<(usize, Arc<ThreadBuffer>)>,
    stacks: StackCache,
    /// The frame chain of the last stack, which `stacks` holds the ids of.
    chain: Option<Box<Chain>>,
    scratch: Vec<RawFrame>,
}

/// Everything a thread keeps, behind one thread-local access per event (in a shared library
/// each access can be a `__tls_get_addr` call).
struct Local {
    /// Up while this thread is inside the recorder: allocations made meanwhile (by the
    /// interpreter's line-table lookup, libc internals, ...) are counted by the hooks but not
    /// recorded again.
    busy: Cell<bool>,
    state: UnsafeCell<LocalState>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            busy: Cell::new(false),
            state: UnsafeCell::new(LocalState {
                buffer: None,
                stacks: StackCache::new(),
                chain: None,
                scratch: Vec::new(),
            }),
        }
    };
    static TID: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f` on this thread's state unless the thread is already inside the recorder (or is
/// exiting); `None` then.
#[inline(always)]
fn with_local<R>(f: impl FnOnce(&mut LocalState) -> R) -> Option<R> {
    LOCAL
        .try_with(|local| {
            if local.busy.replace(true) {
                return None;
            }
            // SAFETY: `busy` was down and is now up, so no other borrow of this thread's state
            // exists (the state is reached only here); other threads have their own.
            let result = f(unsafe { &mut *local.state.get() });
            local.busy.set(false);
            Some(result)
        })
        .ok()
        .flatten()
}

/// The kernel's id of the calling thread (cached).
pub(crate) fn native_thread_id() -> u64 {
    TID.with(|t| {
        if t.get() == 0 {
            // SAFETY: gettid has no preconditions.
            t.set(unsafe { libc::gettid() } as u64);
        }
        t.get()
    })
}

impl Recorder {
    fn register_thread(&self) -> Arc<ThreadBuffer> {
        let id = self.next_thread.fetch_add(1, Ordering::Relaxed);
        let buffer = Arc::new(ThreadBuffer::new(id));
        lock(&self.threads).push(buffer.clone());
        let tid = native_thread_id();
        lock(&self.thread_names).push((id, tid, String::new()));
        buffer
    }

    /// This thread's buffer for this recorder, registering the thread on first use.
    #[inline(always)]
    fn buffer<'a>(&self, local: &'a mut LocalState) -> &'a ThreadBuffer {
        let me = self as *const Recorder as usize;
        if !matches!(&local.buffer, Some((owner, _)) if *owner == me) {
            local.buffer = Some((me, self.register_thread()));
        }
        match &local.buffer {
            Some((_, buffer)) => buffer,
            None => unreachable!("just registered"),
        }
    }

    /// Queues an event from this thread.
    #[inline(always)]
    fn push(&'static self, kind: EventKind, local: &mut LocalState) {
        self.buffer(local).push(self, kind);
    }

    /// The current stack of the thread whose state is `tstate`, interned.
    ///
    /// # Safety
    /// `tstate` is the calling thread's live thread state (or null).
    #[inline(always)]
    unsafe fn capture_stack(&'static self, local: &mut LocalState, tstate: *mut c_void) -> u32 {
        let me = self as *const Recorder as usize;
        if local.stacks.recorder != me {
            local.stacks.reset(me);
            local.scratch.clear();
            local.scratch.resize(MAX_DEPTH, RawFrame::default());
            local.chain.get_or_insert_with(Box::default).clear();
        }
        let chain = local.chain.get_or_insert_with(Box::default);
        let stop = STACK_ROOT.load(Ordering::Relaxed);
        // SAFETY: tstate belongs to this thread, which is inside this call and so not running
        // Python code that could change its frame chain.
        let walk =
            unsafe { (self.chain_walker)(tstate, self.code_type, stop, chain, &mut local.scratch) };
        if let Some(walk) = walk {
            // The outer `walk.same` frames are those of the last stack, whose ids the stack
            // cache holds.
            // SAFETY: the frames were just read from this thread's live stack.
            return unsafe {
                self.intern_from(
                    &mut local.stacks,
                    &local.scratch[..walk.depth - walk.same],
                    walk.depth,
                    walk.same,
                )
            };
        }
        // SAFETY: as above.
        let n = unsafe { (self.walker)(tstate, self.code_type, stop, &mut local.scratch) };
        // SAFETY: the frames were just read from this thread's live stack.
        unsafe { self.intern(&mut local.stacks, &local.scratch[..n]) }
    }

    /// Interns `frames` (innermost first, at most `MAX_DEPTH`), reusing the ids of the outer
    /// frames it shares with the thread's previous stack.
    ///
    /// # Safety
    /// Every frame's code object must be alive (the frames are on this thread's stack).
    unsafe fn intern(&'static self, cache: &mut StackCache, frames: &[RawFrame]) -> u32 {
        let n = frames.len().min(MAX_DEPTH);
        let shared = n.min(cache.depth).min(cache.frames.len());
        let mut common = 0;
        // SAFETY: `common < shared`, which is at most `n <= frames.len()` and at most
        // `cache.frames.len()`, so both indices are in bounds.
        while common < shared
            && unsafe { frames.get_unchecked(n - 1 - common) == cache.frames.get_unchecked(common) }
        {
            common += 1;
        }
        // SAFETY: forwarded.
        unsafe { self.intern_from(cache, &frames[..n - common], n, common) }
    }

    /// Interns the stack of `depth` frames whose outer `common` frames are those of the
    /// thread's previous stack and whose others are `inner` (innermost first).
    ///
    /// # Safety
    /// As for [`Recorder::intern`]; `common <= cache.depth`, `inner.len() == depth - common`,
    /// `depth <= MAX_DEPTH`.
    #[inline(always)]
    unsafe fn intern_from(
        &'static self,
        cache: &mut StackCache,
        inner: &[RawFrame],
        depth: usize,
        common: usize,
    ) -> u32 {
        let mut parent = if common > 0 { cache.ids[common - 1] } else { 0 };
        for d in common..depth {
            let raw = inner[depth - 1 - d];
            // SAFETY: the code object is on the live stack.
            let key = unsafe { self.layout.code_key(raw.code) };
            let slot = &mut cache.slots[StackCache::slot(parent, raw)];
            parent = if slot.id != 0 && slot.parent == parent && slot.raw == raw && slot.key == key
            {
                slot.id
            } else {
                // SAFETY: forwarded from our caller.
                let id = unsafe { self.intern_miss(parent, raw) };
                *slot = CachedStack {
                    parent,
                    id,
                    raw,
                    key,
                };
                id
            };
            cache.frames[d] = raw;
            cache.ids[d] = parent;
        }
        cache.depth = depth;
        parent
    }

    /// # Safety
    /// As for [`Interner::frame`].
    #[cold]
    #[inline(never)]
    unsafe fn intern_miss(&'static self, parent: u32, raw: RawFrame) -> u32 {
        let mut interner = lock(&self.interner);
        // SAFETY: forwarded from our caller.
        unsafe { interner.child(self.layout, parent, raw) }
    }

    /// Records an allocation (sampled, or every one in exact mode) with its stack; false when
    /// it was not recorded (this thread was already inside the recorder, or is exiting).
    pub(crate) fn on_alloc(&'static self, addr: usize, size: u64, domain: Domain) -> bool {
        with_local(|local| {
            // Python-domain hooks run with the GIL held: the current thread state is ours.
            // Native allocations may come from a thread without it.
            // SAFETY: both getters only read; neither locks nor allocates.
            let tstate = unsafe {
                if domain == Domain::Python {
                    (self.gil_tstate)()
                } else {
                    ffi::PyGILState_GetThisThreadState()
                }
            };
            // SAFETY: tstate is this thread's (or null).
            let stack = unsafe { self.capture_stack(local, tstate) };
            self.push(
                EventKind::Alloc {
                    addr: addr as u64,
                    size,
                    stack,
                    domain,
                },
                local,
            );
        })
        .is_some()
    }

    /// Records the free of a recorded block (the hooks decide which: every block in exact
    /// mode, sampled ones in sampling mode, see `hooks::sampled`).
    #[inline(always)]
    pub(crate) fn on_free(&'static self, addr: usize) {
        with_local(|local| self.push(EventKind::Free { addr: addr as u64 }, local));
    }

    /// Records that the totals reached a new high-water mark.
    pub(crate) fn on_peak(&'static self) {
        with_local(|local| self.push(EventKind::Peak, local));
    }

    /// Makes the calling thread's current Python frame the stack root (`on`), or clears it.
    /// The caller holds the GIL and clears the root before that frame returns.
    pub(crate) fn set_stack_root(&self, on: bool) {
        let frame = if on {
            // SAFETY: with the GIL held the getter returns this thread's state, whose frame
            // chain does not change during this call.
            unsafe { self.layout.innermost_frame((self.gil_tstate)()) }
        } else {
            0
        };
        STACK_ROOT.store(frame, Ordering::Relaxed);
    }

    /// Records a user checkpoint.
    pub(crate) fn checkpoint(&'static self, label: &str) {
        let label = lock(&self.interner).string(label);
        with_local(|local| self.push(EventKind::Checkpoint { label }, local));
    }

    /// Queues a garbage-collector event from this thread (in order with its frees, so that
    /// a replay sees what each collection freed).
    pub(crate) fn gc(&'static self, kind: EventKind) {
        with_local(|local| self.push(kind, local));
    }

    /// Names the calling thread.
    pub(crate) fn set_thread_name(&'static self, name: &str) {
        with_local(|local| {
            let id = self.buffer(local).id;
            let mut names = lock(&self.thread_names);
            if let Some(entry) = names.iter_mut().find(|e| e.0 == id) {
                entry.2 = name.to_owned();
            }
        });
    }

    /// Queues `kind` from this thread as a hook would (tests: no interpreter needed).
    #[cfg(test)]
    pub(crate) fn push_for_test(&'static self, kind: EventKind) {
        with_local(|local| self.push(kind, local));
    }
}
