//! Hooks on CPython's `PYMEM_DOMAIN_MEM` and `PYMEM_DOMAIN_OBJ` allocators (pymalloc).
//!
//! These run on every Python object allocation, always with the GIL held, so the common path is
//! a range check, a few plain loads and stores, and the sampling countdown. A block is counted
//! here only when pymalloc served it from one of *our* arenas (see [`super::arena`]): that tells
//! a small block from a large one with one comparison and gives its exact size from the pool
//! header on free. Large requests fall through pymalloc to `malloc`, where the native hooks
//! count them, so each byte is counted once. `PYMEM_DOMAIN_RAW` is not wrapped: its default
//! allocator is libc's `malloc`, which the native hooks already see.

use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use memlens_format::Domain;

use super::{arena, ballast, old_pools, sampled};
use crate::counters::{GIL, SHARED};
use crate::ffi::{self, PyMemAllocatorEx};
use crate::{recorder, sampler};

/// The allocator a hook wraps; one per domain, passed to the hooks as their `ctx`.
pub(crate) struct Wrapped {
    orig: UnsafeCell<PyMemAllocatorEx>,
}

// SAFETY: written only in install/uninstall, with the GIL held and before/after the hooks are
// active; read by hooks afterwards.
unsafe impl Sync for Wrapped {}

const EMPTY: PyMemAllocatorEx = PyMemAllocatorEx {
    ctx: std::ptr::null_mut(),
    malloc: None,
    calloc: None,
    realloc: None,
    free: None,
};

static MEM: Wrapped = Wrapped {
    orig: UnsafeCell::new(EMPTY),
};
static OBJ: Wrapped = Wrapped {
    orig: UnsafeCell::new(EMPTY),
};

/// Size of the pymalloc block at `p`, from its pool header's size class.
#[inline(always)]
fn block_size(p: usize) -> i64 {
    let pool = p & arena::pool_mask();
    // SAFETY: p is a live pymalloc block (in one of our arenas, or a small block pymalloc just
    // served or that we marked), so its pool header is mapped and initialised.
    let szidx = unsafe { std::ptr::read((pool + crate::python::POOL_SZIDX) as *const u32) };
    // The class index + 1 in 32 bits (it is below 64): `inc` and `shl`, one instruction
    // fewer than the 64-bit form, which the compiler turns into `shl`, `neg` and two adds.
    i64::from(szidx.wrapping_add(1)) << 4
}

/// Size of the block at `p` if the hooks count it: one of our arenas' blocks, or a small block
/// `p` of an older arena that pymalloc just served for `requested` bytes (then marked counted).
///
/// `PLAIN`: the wrapped allocator is pymalloc itself (no debug hooks, no other tracer in
/// between), so a request of 1-512 bytes is a pymalloc block of the next multiple of 16 and
/// any other request is `malloc`'s, counted by the native hooks. Otherwise a wrapper may add
/// bytes of its own (debug hooks add up to 4 words): in our range the pool header tells the
/// size, and outside it only requests well below the threshold are known to be pymalloc's.
#[inline(always)]
fn counted_new_block<const PLAIN: bool>(p: usize, requested: usize) -> Option<i64> {
    if PLAIN {
        if requested.wrapping_sub(1) >= old_pools::SMALL_REQUEST_THRESHOLD {
            return None;
        }
        let block = ((requested + 15) & !15) as i64;
        // SAFETY: Python-domain hooks run with the GIL held.
        return (arena::contains(p) || unsafe { old_pools::mark(p) }).then_some(block);
    }
    if arena::contains(p) {
        return Some(block_size(p));
    }
    if requested.wrapping_sub(1) >= old_pools::SMALL_REQUEST_THRESHOLD - WRAPPER_SLACK {
        return None;
    }
    // SAFETY: Python-domain hooks run with the GIL held.
    if !unsafe { old_pools::mark(p) } {
        return None;
    }
    Some(block_size(p))
}

/// Bytes a wrapper between us and pymalloc may add to a request (CPython's debug hooks add
/// 3-4 words), with room to spare.
const WRAPPER_SLACK: usize = 64;

/// Size of the block at `p` if the hooks counted it (unmarking it if it is in an older
/// arena); `None` for any other pointer (a large block, or one older than tracking).
#[inline(always)]
fn counted_old_block(p: usize) -> Option<i64> {
    if arena::contains(p) {
        return Some(block_size(p));
    }
    // SAFETY: Python-domain hooks run with the GIL held.
    if !unsafe { old_pools::unmark(p) } {
        return None;
    }
    Some(block_size(p))
}

/// Counts a block of `block` bytes pymalloc just served at `p`: two running totals, a count
/// and two compares (the second against the room left before a new peak); recording (a
/// sample, or every allocation in exact mode) and a new peak are out of line, in one cold
/// call, so that the hook keeps nothing in registers across a call of its own.
#[inline(always)]
fn count_alloc(p: usize, block: i64) {
    let live = GIL.live.load(Relaxed) + block;
    GIL.live.store(live, Relaxed);
    GIL.allocations
        .store(GIL.allocations.load(Relaxed) + 1, Relaxed);
    let left = GIL.countdown.load(Relaxed) - block;
    GIL.countdown.store(left, Relaxed);
    if left <= 0 || live > SHARED.python_room.load(Relaxed) {
        alloc_slow(p, block, live, left);
    }
}

/// [`count_alloc`]'s rare cases: a sample point fell in the block (or exact mode), or `live`
/// passed the room before a new peak.
#[cold]
#[inline(never)]
fn alloc_slow(p: usize, block: i64, live: i64, left: i64) {
    if left <= 0 {
        record_alloc(p, block as u64);
    } // After the allocation is recorded, so the peak set includes it.
    if live > SHARED.python_room.load(Relaxed) {
        super::python_peak(live);
    }
}

#[inline(always)]
fn counted_alloc<const PLAIN: bool>(p: usize, requested: usize) {
    // Counting off: `arena::contains` and `counted_new_block` find nothing (see
    // `super::set_counting`).
    if PLAIN && arena::contains(p) {
        // In our range the block is pymalloc's, so the request was 1-512 bytes and the block
        // is that rounded up to 16: no null, size or table check on the common path.
        count_alloc(p, ((requested + 15) & !15) as i64);
        return;
    }
    counted_alloc_outside::<PLAIN>(p, requested);
}

/// [`counted_alloc`] for a block outside our range (and any block of a wrapped allocator
/// that is not plain pymalloc): a small block of an older arena (marked), or a null or
/// `malloc` block, not ours to count.
#[inline(never)]
fn counted_alloc_outside<const PLAIN: bool>(p: usize, requested: usize) {
    if p == 0 {
        return;
    }
    if let Some(block) = counted_new_block::<PLAIN>(p, requested) {
        count_alloc(p, block);
    }
}

/// A sample point fell inside the block at `p` (or exact mode records every block): refill the
/// countdown and record this one.
#[cold]
#[inline(never)]
fn record_alloc(p: usize, block: u64) {
    let Some(rec) = recorder::current() else {
        return;
    };
    if !rec.exact {
        sampler::gil_refill(&GIL.countdown, &GIL.drawn, rec.sample_rate);
    }
    super::record_alloc(rec, p, block, Domain::Python);
}

/// # Safety
/// Called by CPython with `ctx` pointing at one of our `Wrapped` statics, GIL held.
unsafe extern "C" fn hook_malloc<const PLAIN: bool>(ctx: *mut c_void, size: usize) -> *mut c_void {
    let p = if PLAIN {
        // SAFETY: set before hooks of this kind were installed, to pymalloc's `malloc` (a
        // non-null function pointer), which takes no context.
        let malloc = unsafe { std::mem::transmute::<usize, MallocFn>(PLAIN_MALLOC.load(Relaxed)) };
        // SAFETY: forwarding.
        unsafe { malloc(std::ptr::null_mut(), size) }
    } else {
        // SAFETY: ctx is &MEM or &OBJ, filled in before the hook was installed.
        let orig = unsafe { &*(*(ctx as *const Wrapped)).orig.get() };
        // SAFETY: forwarding to the wrapped allocator with its own context.
        unsafe { (orig.malloc.unwrap_unchecked())(orig.ctx, size) }
    };
    counted_alloc::<PLAIN>(p as usize, size);
    p
}

/// # Safety
/// As for `hook_malloc`.
unsafe extern "C" fn hook_calloc<const PLAIN: bool>(
    ctx: *mut c_void,
    nelem: usize,
    elsize: usize,
) -> *mut c_void {
    // SAFETY: as in hook_malloc.
    let orig = unsafe { &*(*(ctx as *const Wrapped)).orig.get() };
    let size = nelem.saturating_mul(elsize);
    // SAFETY: forwarding.
    let p = unsafe { (orig.calloc.unwrap_unchecked())(orig.ctx, nelem, elsize) };
    counted_alloc::<PLAIN>(p as usize, size);
    p
}

/// # Safety
/// As for `hook_malloc`.
unsafe extern "C" fn hook_realloc<const PLAIN: bool>(
    ctx: *mut c_void,
    ptr: *mut c_void,
    size: usize,
) -> *mut c_void {
    // SAFETY: as in hook_malloc.
    let orig = unsafe { &*(*(ctx as *const Wrapped)).orig.get() };
    let old = ptr as usize;
    // Read (and unmark) the old block's size before pymalloc may reuse it.
    let old_block = counted_old_block(old);
    // SAFETY: forwarding.
    let p = unsafe { (orig.realloc.unwrap_unchecked())(orig.ctx, ptr, size) };
    if p.is_null() {
        if old_block.is_some() && !arena::contains(old) {
            // The old block stays: put its mark back.
            // SAFETY: GIL held.
            unsafe { old_pools::mark(old) };
        }
        return p;
    }
    if let Some(block) = old_block {
        GIL.live.store(GIL.live.load(Relaxed) - block, Relaxed);
        if sampled::maybe(old) {
            super::record_free(old);
        }
    }
    // Outside our range, a realloc result may be a raw block (pymalloc hands non-pymalloc
    // blocks to PyMem_RawRealloc whatever the size): only a fresh allocation, or one moved
    // from a block we know is pymalloc's, is known small.
    let known_small = old == 0 || old_block.is_some();
    let threshold = old_pools::SMALL_REQUEST_THRESHOLD - if PLAIN { 0 } else { WRAPPER_SLACK };
    let new = p as usize;
    // Sizes from the pool header: pymalloc may keep the old block when shrinking it.
    let counted = arena::contains(new)
        || (known_small
            && size.wrapping_sub(1) < threshold
            // SAFETY: GIL held.
            && unsafe { old_pools::mark(new) });
    let block = counted.then(|| block_size(new));
    if let Some(block) = block {
        count_alloc(new, block);
    }
    p
}

/// The free of a block that may need a record (see [`sampled`]), forwarded afterwards so that
/// the record precedes any reuse of the address.
///
/// # Safety
/// As for `hook_malloc`.
#[cold]
#[inline(never)]
unsafe extern "C" fn free_recorded(ctx: *mut c_void, ptr: *mut c_void) {
    super::record_free(ptr as usize);
    // SAFETY: as in hook_malloc.
    let orig = unsafe { &*(*(ctx as *const Wrapped)).orig.get() };
    // SAFETY: forwarding.
    unsafe { (orig.free.unwrap_unchecked())(orig.ctx, ptr) }
}

/// The common path ends in a tail call to the wrapped `free`, so it saves no registers.
/// `PLAIN`: the wrapped `free` is pymalloc's (the same function for both domains, with no
/// context), reached through [`PLAIN_FREE`] without reading our context.
///
/// # Safety
/// As for `hook_malloc`.
unsafe extern "C" fn hook_free<const PLAIN: bool>(ctx: *mut c_void, ptr: *mut c_void) {
    // Null, and every pointer while counting is off, is found in neither our range nor the
    // old-pool table (see `super::set_counting`).
    let p = ptr as usize;
    if let Some(offset) = arena::counted_offset(p) {
        GIL.live
            .store(GIL.live.load(Relaxed) - block_size(p), Relaxed);
        if sampled::maybe_at_arena_offset(offset) {
            // SAFETY: forwarded from our caller.
            return unsafe { free_recorded(ctx, ptr) };
        }
    // SAFETY: Python-domain hooks run with the GIL held.
    } else if unsafe { old_pools::unmark(p) } {
        // SAFETY: forwarded from our caller.
        return unsafe { free_old(ctx, ptr) };
    }
    if PLAIN {
        // SAFETY: set before hooks of this kind were installed, to pymalloc's `free` (a
        // non-null function pointer), which takes no context.
        let free = unsafe { std::mem::transmute::<usize, FreeFn>(PLAIN_FREE.load(Relaxed)) };
        // SAFETY: forwarding.
        return unsafe { free(std::ptr::null_mut(), ptr) };
    }
    // SAFETY: as in hook_malloc.
    let orig = unsafe { &*(*(ctx as *const Wrapped)).orig.get() };
    // SAFETY: forwarding.
    unsafe { (orig.free.unwrap_unchecked())(orig.ctx, ptr) }
}

type FreeFn = unsafe extern "C" fn(*mut c_void, *mut c_void);
type MallocFn = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;

/// pymalloc's `malloc` and `free`, for the plain hooks (set once, by the first plain domain
/// wrapped): called without reading our context.
static PLAIN_MALLOC: AtomicUsize = AtomicUsize::new(0);
static PLAIN_FREE: AtomicUsize = AtomicUsize::new(0);

/// Sets `slot` to `f` if it is unset; true if it holds `f` now.
fn claim(slot: &AtomicUsize, f: usize) -> bool {
    match slot.compare_exchange(0, f, Relaxed, Relaxed) {
        Ok(_) => true,
        Err(set) => set == f,
    }
}

/// The free of a block counted in a pool older than tracking (the old-pool mark is cleared):
/// count and record it, forward it, then move its size class back to our arenas (see
/// [`ballast`]), so that this path stays rare.
///
/// # Safety
/// As for `hook_malloc`.
#[cold]
#[inline(never)]
unsafe extern "C" fn free_old(ctx: *mut c_void, ptr: *mut c_void) {
    let p = ptr as usize;
    let block = block_size(p);
    GIL.live.store(GIL.live.load(Relaxed) - block, Relaxed);
    if sampled::maybe(p) {
        super::record_free(p);
    }
    // SAFETY: as in hook_malloc.
    let orig = unsafe { &*(*(ctx as *const Wrapped)).orig.get() };
    // SAFETY: forwarding.
    unsafe { (orig.free.unwrap_unchecked())(orig.ctx, ptr) };
    // SAFETY: GIL held.
    unsafe { ballast::refill(block as usize) };
}

/// Our hook functions for one kind of wrapped allocator (see [`counted_new_block`]).
fn hooks<const PLAIN: bool>(ctx: *mut c_void) -> PyMemAllocatorEx {
    PyMemAllocatorEx {
        ctx,
        malloc: Some(hook_malloc::<PLAIN>),
        calloc: Some(hook_calloc::<PLAIN>),
        realloc: Some(hook_realloc::<PLAIN>),
        free: Some(hook_free::<PLAIN>),
    }
}

/// Wraps `domain`'s allocator (unless it is ours already).
fn wrap(domain: std::ffi::c_int, wrapped: &'static Wrapped) {
    let mut current = EMPTY;
    // SAFETY: GIL held by the caller (install); reads the domain's current allocator.
    unsafe { ffi::PyMem_GetAllocator(domain, &mut current) };
    if current.ctx == wrapped as *const Wrapped as *mut c_void {
        return; // already ours (a second start without a stop)
    }
    // SAFETY: GIL held by the caller.
    let plain = unsafe { plain_pymalloc(domain) }.is_some_and(|alloc| {
        // The plain hooks call one `malloc` and `free` for both domains: a domain whose
        // pymalloc functions are others (never seen) takes the general hooks.
        match (alloc.malloc, alloc.free) {
            (Some(malloc), Some(free)) => {
                claim(&PLAIN_MALLOC, malloc as usize) && claim(&PLAIN_FREE, free as usize)
            }
            _ => false,
        }
    });
    // SAFETY: hooks are not installed on this domain yet, so nothing reads `orig` now.
    unsafe { *wrapped.orig.get() = current };
    let ctx = wrapped as *const Wrapped as *mut c_void;
    let mut ours = if plain {
        hooks::<true>(ctx)
    } else {
        hooks::<false>(ctx)
    };
    // SAFETY: GIL held; `ours` is copied by CPython.
    unsafe { ffi::PyMem_SetAllocator(domain, &mut ours) };
}

fn unwrap(domain: std::ffi::c_int, wrapped: &'static Wrapped) {
    let mut current = EMPTY;
    // SAFETY: GIL held by the caller.
    unsafe { ffi::PyMem_GetAllocator(domain, &mut current) };
    // Our context pointer is unique to us (function addresses need not be).
    if current.ctx != wrapped as *const Wrapped as *mut c_void {
        // Someone (tracemalloc, another profiler) wrapped us: leave the chain intact; with
        // tracking inactive our hooks only forward.
        return;
    }
    // SAFETY: GIL held; restores the allocator we wrapped. `orig` stays valid for any caller
    // still holding our hooks.
    unsafe {
        let mut orig = *wrapped.orig.get();
        ffi::PyMem_SetAllocator(domain, &mut orig);
    }
}

/// Wraps the MEM and OBJ domains. Caller holds the GIL.
pub(crate) fn install() {
    wrap(ffi::PYMEM_DOMAIN_MEM, &MEM);
    wrap(ffi::PYMEM_DOMAIN_OBJ, &OBJ);
}

/// Restores the MEM and OBJ domains where we are still on top. Caller holds the GIL.
pub(crate) fn uninstall() {
    unwrap(ffi::PYMEM_DOMAIN_OBJ, &OBJ);
    unwrap(ffi::PYMEM_DOMAIN_MEM, &MEM);
}

/// `domain`'s allocator if it is plain pymalloc: no debug hooks or tracer in between
/// (pymalloc's functions take no context) and not the raw allocator (PYTHONMALLOC=malloc).
///
/// # Safety
/// The caller holds the GIL.
pub(crate) unsafe fn plain_pymalloc(domain: std::ffi::c_int) -> Option<PyMemAllocatorEx> {
    let empty = PyMemAllocatorEx {
        ctx: std::ptr::null_mut(),
        malloc: None,
        calloc: None,
        realloc: None,
        free: None,
    };
    let (mut current, mut raw) = (empty, empty);
    // SAFETY: GIL held; reads two domains' allocators.
    unsafe {
        ffi::PyMem_GetAllocator(domain, &mut current);
        ffi::PyMem_GetAllocator(ffi::PYMEM_DOMAIN_RAW, &mut raw);
    }
    let same_as_raw = match (current.malloc, raw.malloc) {
        (Some(a), Some(b)) => std::ptr::fn_addr_eq(a, b),
        _ => false,
    };
    (current.ctx.is_null() && !same_as_raw && current.malloc.is_some()).then_some(current)
}
