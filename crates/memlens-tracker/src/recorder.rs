//! The slow path shared by every hook: capture the stack of a sampled (or, in exact mode,
//! every) allocation, intern it, and queue the event for the writer thread.
//!
//! All state hangs off one leaked [`Recorder`] reached through an atomic pointer, so a forked
//! child can drop a recorder whose locks another thread held at fork time and start afresh.
//! Locks here are per-thread buffers (uncontended but for the writer's drains) and the
//! interning tables, which a thread takes only when its stack differs from its previous one.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use memlens_format::{Domain, Record};

use crate::ffi;
use crate::python::{CodeKey, Layout, RawFrame};

/// Deepest stack recorded; deeper stacks keep their innermost frames.
const MAX_DEPTH: usize = 128;

/// One queued event; `seq` orders events across threads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Event {
    pub seq: u64,
    pub thread: u32,
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
}

/// A thread's event queue, registered with the recorder so the writer can drain it.
pub(crate) struct ThreadBuffer {
    pub id: u32,
    pub events: Mutex<Vec<Event>>,
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
    code_type: usize,
    /// Orders events across threads.
    pub seq: AtomicU64,
    pub threads: Mutex<Vec<Arc<ThreadBuffer>>>,
    next_thread: AtomicU32,
    pub interner: Mutex<Interner>,
    /// Native thread id -> name, set from Python; the writer emits Thread records.
    pub thread_names: Mutex<Vec<(u32, u64, String)>>,
    /// Set once a panic was caught in a hook: recording stops, the program goes on.
    pub poisoned: AtomicBool,
}

static RECORDER: AtomicPtr<Recorder> = AtomicPtr::new(std::ptr::null_mut());

/// The current recorder, if tracking has been started.
#[inline]
pub(crate) fn current() -> Option<&'static Recorder> {
    let p = RECORDER.load(Ordering::Acquire);
    // SAFETY: recorders are leaked, never freed, so a non-null pointer stays valid forever.
    unsafe { p.as_ref() }
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
        code_type,
        seq: AtomicU64::new(0),
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
    scratch: Vec<RawFrame>,
}

thread_local! {
    static LOCAL: RefCell<LocalState> = const {
        RefCell::new(LocalState {
            buffer: None,
            stacks: StackCache::new(),
            scratch: Vec::new(),
        })
    };
    static TID: Cell<u64> = const { Cell::new(0) };
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
        let buffer = Arc::new(ThreadBuffer {
            id,
            events: Mutex::new(Vec::with_capacity(256)),
        });
        lock(&self.threads).push(buffer.clone());
        let tid = native_thread_id();
        lock(&self.thread_names).push((id, tid, String::new()));
        buffer
    }

    /// Queues an event from this thread, stamping it with the next sequence number under the
    /// thread's own buffer lock (so the writer never sees a gap it has to wait for).
    fn push(&'static self, kind: EventKind, local: &mut LocalState) {
        let me = self as *const Recorder as usize;
        if !matches!(&local.buffer, Some((owner, _)) if *owner == me) {
            local.buffer = Some((me, self.register_thread()));
        }
        let Some((_, buffer)) = &local.buffer else {
            return;
        };
        let mut events = lock(&buffer.events);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        events.push(Event {
            seq,
            thread: buffer.id,
            kind,
        });
    }

    fn capture_stack(&'static self, local: &mut LocalState) -> u32 {
        // SAFETY: returns this thread's state or null; no lock, no allocation.
        let tstate = unsafe { ffi::PyGILState_GetThisThreadState() };
        let mut scratch = std::mem::take(&mut local.scratch);
        if scratch.len() != MAX_DEPTH {
            scratch.resize(MAX_DEPTH, RawFrame::default());
        }
        // SAFETY: tstate belongs to this thread, which is inside this call and so not running
        // Python code that could change its frame chain.
        let n = unsafe { self.layout.walk(tstate, self.code_type, &mut scratch) };
        // SAFETY: the frames were just read from this thread's live stack.
        let id = unsafe { self.intern(local, &scratch[..n]) };
        local.scratch = scratch;
        id
    }

    /// Interns `frames` (innermost first, at most `MAX_DEPTH`), reusing the ids of the outer
    /// frames it shares with the thread's previous stack.
    ///
    /// # Safety
    /// Every frame's code object must be alive (the frames are on this thread's stack).
    unsafe fn intern(&'static self, local: &mut LocalState, frames: &[RawFrame]) -> u32 {
        let me = self as *const Recorder as usize;
        let cache = &mut local.stacks;
        if cache.recorder != me {
            cache.reset(me);
        }
        let n = frames.len().min(MAX_DEPTH);
        let common = frames[..n]
            .iter()
            .rev()
            .zip(&cache.frames[..cache.depth])
            .take_while(|(a, b)| a == b)
            .count();
        let mut parent = if common > 0 { cache.ids[common - 1] } else { 0 };
        for depth in common..n {
            let raw = frames[n - 1 - depth];
            // SAFETY: the code object is on the live stack.
            let key = unsafe { self.layout.code_key(raw.code) };
            let slot = &mut cache.slots[StackCache::slot(parent, raw)];
            parent = if slot.id != 0 && slot.parent == parent && slot.raw == raw && slot.key == key
            {
                slot.id
            } else {
                let mut interner = lock(&self.interner);
                // SAFETY: forwarded from our caller.
                let id = unsafe { interner.child(self.layout, parent, raw) };
                drop(interner);
                *slot = CachedStack {
                    parent,
                    id,
                    raw,
                    key,
                };
                id
            };
            cache.frames[depth] = raw;
            cache.ids[depth] = parent;
        }
        cache.depth = n;
        parent
    }

    /// Records an allocation (sampled, or every one in exact mode) with its stack.
    pub(crate) fn on_alloc(&'static self, addr: usize, size: u64, domain: Domain) {
        let _ = LOCAL.try_with(|cell| {
            let Ok(mut local) = cell.try_borrow_mut() else {
                return;
            };
            let stack = self.capture_stack(&mut local);
            self.push(
                EventKind::Alloc {
                    addr: addr as u64,
                    size,
                    stack,
                    domain,
                },
                &mut local,
            );
        });
    }

    /// Records the free of a recorded block (the hooks decide which: every block in exact
    /// mode, sampled ones in sampling mode, see `hooks::sampled`).
    pub(crate) fn on_free(&'static self, addr: usize) {
        let _ = LOCAL.try_with(|cell| {
            if let Ok(mut local) = cell.try_borrow_mut() {
                self.push(EventKind::Free { addr: addr as u64 }, &mut local);
            }
        });
    }

    /// Records that the totals reached a new high-water mark.
    pub(crate) fn on_peak(&'static self) {
        let _ = LOCAL.try_with(|cell| {
            if let Ok(mut local) = cell.try_borrow_mut() {
                self.push(EventKind::Peak, &mut local);
            }
        });
    }

    /// Records a user checkpoint.
    pub(crate) fn checkpoint(&'static self, label: &str) {
        let label = lock(&self.interner).string(label);
        let _ = LOCAL.try_with(|cell| {
            if let Ok(mut local) = cell.try_borrow_mut() {
                self.push(EventKind::Checkpoint { label }, &mut local);
            }
        });
    }

    /// Names the calling thread.
    pub(crate) fn set_thread_name(&'static self, name: &str) {
        let _ = LOCAL.try_with(|cell| {
            if let Ok(mut local) = cell.try_borrow_mut() {
                let me = self as *const Recorder as usize;
                let id = match &local.buffer {
                    Some((owner, b)) if *owner == me => b.id,
                    _ => {
                        let b = self.register_thread();
                        let id = b.id;
                        local.buffer = Some((me, b));
                        id
                    }
                };
                let mut names = lock(&self.thread_names);
                if let Some(entry) = names.iter_mut().find(|e| e.0 == id) {
                    entry.2 = name.to_owned();
                }
            }
        });
    }
}
