//! pymalloc arenas served from one reserved address range.
//!
//! pymalloc asks for its 256 KiB (3.9) or 1 MiB (3.10+) arenas through
//! `PyObject_SetArenaAllocator`. We hand them out of a large `PROT_NONE` reservation, one
//! aligned slot each, committing a slot with `mmap(MAP_FIXED)` as CPython's own allocator would
//! and releasing it the same way. Then "is this a pymalloc block we track?" is one subtraction
//! and comparison, and the pool header of any such block sits at its pool-aligned address.
//! The allocator stays installed for the life of the process: pymalloc frees arenas long after
//! tracking stops, and a slot must never be handed back to the kernel's general pool while our
//! range still covers it. Arenas that existed before tracking started go back to CPython's own
//! allocator when freed.
//!
//! A session counts only the slots handed out since it began: blocks that an earlier session
//! (`memlens.track()` twice, one per test under pytest) left in older slots are as old as
//! CPython's own arenas, and their frees must not be subtracted. So each session starts its
//! counted range above the highest slot in use and takes new arenas from there; older slots go
//! through the old-pool table like CPython's arenas, and their freed slots wait for a later
//! session.

use std::ffi::c_void;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::ffi::{self, PyObjectArenaAllocator};

/// Address space reserved for arenas, largest first: 256 GiB of small objects. Reserved
/// `PROT_NONE`, so it costs no memory and no commit charge, but an address-space limit
/// (`ulimit -v`, valgrind) can refuse it: then a smaller one. Past the reservation pymalloc gets
/// CPython's own arenas, whose blocks the old-pool table counts.
const RESERVES: [usize; 4] = [256 << 30, 64 << 30, 16 << 30, 4 << 30];
/// Every slot is this big and this aligned; arenas are at most 1 MiB in 3.9-3.13.
const SLOT: usize = 1 << 20;

static BASE: AtomicUsize = AtomicUsize::new(0);
static LEN: AtomicUsize = AtomicUsize::new(0);
/// `LEN` while the hooks count, 0 otherwise: the hooks' range check doubles as their "are we
/// counting" check.
static COUNTED_LEN: AtomicUsize = AtomicUsize::new(0);
/// The session's part of the range, from the first slot above every slot in use when it
/// began (a multiple of `SLOT` from `BASE`) to the end of the reservation.
static SESSION_BASE: AtomicUsize = AtomicUsize::new(0);
static SESSION_LEN: AtomicUsize = AtomicUsize::new(0);
/// `!(pool size - 1)`: masks a block's address to its pool header's.
static POOL_MASK: AtomicUsize = AtomicUsize::new(!4095);

struct Slots {
    next_unused: usize,
    free: Vec<usize>,
    orig: Option<PyObjectArenaAllocator>,
}

// SAFETY: the raw context pointer inside `orig` is only passed back to CPython's allocator.
unsafe impl Send for Slots {}

static SLOTS: Mutex<Slots> = Mutex::new(Slots {
    next_unused: 0,
    free: Vec::new(),
    orig: None,
});

/// [`SLOTS`] held across a `fork` (see `crate::fork`); dropping it releases the lock.
pub(crate) struct ForkHold(#[allow(dead_code)] std::sync::MutexGuard<'static, Slots>);

/// Takes [`SLOTS`] for a `fork`.
pub(crate) fn hold_for_fork() -> ForkHold {
    ForkHold(crate::recorder::lock(&SLOTS))
}

/// True when `p` lies in an arena we handed out and the hooks are counting.
#[inline(always)]
pub(crate) fn contains(p: usize) -> bool {
    counted_offset(p).is_some()
}

/// `p`'s offset into our range when `p` lies in an arena we handed out and the hooks are
/// counting ([`contains`], with the offset kept for the caller).
#[inline(always)]
pub(crate) fn counted_offset(p: usize) -> Option<usize> {
    let offset = p.wrapping_sub(SESSION_BASE.load(Relaxed));
    (offset < COUNTED_LEN.load(Relaxed)).then_some(offset)
}

/// The range (and the session's part of it) starts at a multiple of this (a slot), so an
/// offset into it has the same low address bits as the address itself.
pub(crate) const BASE_ALIGN: usize = SLOT;

/// True when `p` lies in an arena we handed out.
pub(crate) fn ours(p: usize) -> bool {
    p.wrapping_sub(BASE.load(Relaxed)) < LEN.load(Relaxed)
}

/// True when `p` lies in an arena handed out since the session began (counted by the range
/// check once counting is on).
pub(crate) fn fresh(p: usize) -> bool {
    p.wrapping_sub(SESSION_BASE.load(Relaxed)) < SESSION_LEN.load(Relaxed)
}

/// Starts a session's part of the range above every slot in use. Caller holds the GIL, and
/// the hooks do not count yet.
pub(crate) fn begin_session() {
    let slots = crate::recorder::lock(&SLOTS);
    let (base, len) = (BASE.load(Relaxed), LEN.load(Relaxed));
    if len == 0 {
        return;
    }
    // The free list is short (pymalloc keeps most arenas it made): a scan per slot, without
    // allocating, is cheap once per session.
    let first = (0..slots.next_unused)
        .rev()
        .find(|index| !slots.free.contains(index))
        .map_or(0, |highest_in_use| highest_in_use + 1);
    SESSION_BASE.store(base + first * SLOT, Relaxed);
    SESSION_LEN.store(len - first * SLOT, Relaxed);
}

/// Turns the hooks' range check on or off.
pub(crate) fn set_counting(on: bool) {
    COUNTED_LEN.store(if on { SESSION_LEN.load(Relaxed) } else { 0 }, Relaxed);
}

/// Masks a block's address to its pool's (pymalloc's pool size for the running interpreter).
#[inline(always)]
pub(crate) fn pool_mask() -> usize {
    POOL_MASK.load(Relaxed)
}

unsafe extern "C" fn arena_alloc(_ctx: *mut c_void, size: usize) -> *mut c_void {
    let mut slots = crate::recorder::lock(&SLOTS);
    if size <= SLOT && LEN.load(Relaxed) != 0 {
        // Only slots of the session's part: an arena below it would not be counted.
        let first = (SESSION_BASE.load(Relaxed) - BASE.load(Relaxed)) / SLOT;
        let reusable = slots.free.iter().rposition(|&index| index >= first);
        let index = reusable.map(|at| slots.free.swap_remove(at)).or_else(|| {
            (slots.next_unused < LEN.load(Relaxed) / SLOT).then(|| {
                slots.next_unused += 1;
                slots.next_unused - 1
            })
        });
        if let Some(index) = index {
            let addr = BASE.load(Relaxed) + index * SLOT;
            // SAFETY: addr..addr+SLOT lies inside our own reservation, which nothing else maps.
            let p = unsafe {
                libc::mmap(
                    addr as *mut c_void,
                    SLOT,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                return p;
            }
            slots.free.push(index);
            return std::ptr::null_mut();
        }
    }
    match slots.orig {
        // SAFETY: CPython's own arena allocator with its own context.
        Some(orig) => unsafe {
            orig.alloc
                .map_or(std::ptr::null_mut(), |f| f(orig.ctx, size))
        },
        None => std::ptr::null_mut(),
    }
}

unsafe extern "C" fn arena_free(_ctx: *mut c_void, ptr: *mut c_void, size: usize) {
    let mut slots = crate::recorder::lock(&SLOTS);
    let p = ptr as usize;
    if ours(p) {
        let index = (p - BASE.load(Relaxed)) / SLOT;
        // SAFETY: the slot is ours; remapping it PROT_NONE returns its pages and keeps the
        // reservation whole.
        unsafe {
            libc::mmap(
                (BASE.load(Relaxed) + index * SLOT) as *mut c_void,
                SLOT,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
                -1,
                0,
            );
        }
        slots.free.push(index);
    } else if let Some(orig) = slots.orig {
        // SAFETY: an arena CPython allocated before we took over goes back to its allocator.
        unsafe {
            if let Some(f) = orig.free {
                f(orig.ctx, ptr, size);
            }
        }
    }
}

/// Reserves the range and installs the arena allocator (once per process). Caller holds the
/// GIL. Returns false when the reservation failed (then Python-domain totals are not kept).
pub(crate) fn install(pool_size: usize) -> bool {
    POOL_MASK.store(!(pool_size - 1), Relaxed);
    let mut slots = crate::recorder::lock(&SLOTS);
    if slots.orig.is_some() {
        return LEN.load(Relaxed) != 0;
    }
    let reserved = RESERVES.iter().find_map(|&len| {
        // SAFETY: a fresh anonymous PROT_NONE mapping; no existing memory is touched.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len + SLOT,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        (raw != libc::MAP_FAILED).then_some((raw as usize, len))
    });
    let mut orig = PyObjectArenaAllocator {
        ctx: std::ptr::null_mut(),
        alloc: None,
        free: None,
    };
    // SAFETY: GIL held; reads the current arena allocator.
    unsafe { ffi::PyObject_GetArenaAllocator(&mut orig) };
    slots.orig = Some(orig);
    let Some((raw, len)) = reserved else {
        return false;
    };
    let base = (raw + SLOT - 1) & !(SLOT - 1);
    BASE.store(base, Relaxed);
    LEN.store(len, Relaxed);
    SESSION_BASE.store(base, Relaxed);
    SESSION_LEN.store(len, Relaxed);
    let mut ours = PyObjectArenaAllocator {
        ctx: std::ptr::null_mut(),
        alloc: Some(arena_alloc),
        free: Some(arena_free),
    };
    drop(slots);
    // SAFETY: GIL held; CPython copies the struct.
    unsafe { ffi::PyObject_SetArenaAllocator(&mut ours) };
    true
}
