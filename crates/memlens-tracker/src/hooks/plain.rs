//! The Python-domain hooks for the common case: plain pymalloc (no debug hooks or other
//! tracer in between) in sampling mode. Leaner than the general hooks of [`super::pymem`]:
//!
//! - A request of 1-512 bytes is a pymalloc block of the next multiple of 16, so the
//!   allocation hook counts it by its size *before* calling pymalloc: an add and one compare
//!   against `limit` (see `counters::GilCounters`), and nothing kept across the call but the
//!   block size for the rare block that lands outside our arenas.
//! - A sampled block is served by libc's `malloc` instead of pymalloc (as tcmalloc-style
//!   samplers do), so every sampled block lies outside our arena range: the free hook's common
//!   path is a range check, the size from the pool header, an add and a tail call, with no
//!   filter to consult. pymalloc's own `free` hands any block outside its arenas to
//!   `PyMem_RawFree` (libc's `free`; see [`raw_is_libc`]), so a sampled block freed after
//!   tracking stops goes back to `malloc` too.
//! - Once pymalloc's used-pool lists are found ([`used_pools`]), [`fast_malloc`] and
//!   [`fast_free`] go further: a block of our arenas' pools is taken from, or given back to,
//!   its pool's free list right here, as pymalloc would, and pymalloc is called only when its
//!   lists or arenas change. What the hooks add then costs less than what they save (the
//!   second indirect call, and pymalloc's own lookup of the address on free).

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use memlens_format::Domain;

use super::pymem::{self, add_allocated, add_freed, block_size, counted_old_block};
use super::{arena, ballast, old_pools, sampled, used_pools};
use crate::counters::{GIL, SHARED};
use crate::ffi::{self, PyMemAllocatorEx};
use crate::{recorder, sampler};

type MallocFn = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;
type CallocFn = unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void, *mut c_void);

/// pymalloc's `malloc`, `calloc` and `free` (the same for both domains; they ignore their
/// context), set once when the first domain is wrapped, and called without reading ours.
static PYMALLOC_MALLOC: AtomicUsize = AtomicUsize::new(0);
static PYMALLOC_CALLOC: AtomicUsize = AtomicUsize::new(0);
static PYMALLOC_FREE: AtomicUsize = AtomicUsize::new(0);

/// Sets `slot` to `f` if it is unset; true if it holds `f` now.
fn claim(slot: &AtomicUsize, f: Option<usize>) -> bool {
    let Some(f) = f else { return false };
    match slot.compare_exchange(0, f, Relaxed, Relaxed) {
        Ok(_) => true,
        Err(set) => set == f,
    }
}

/// Takes pymalloc's functions (`allocator`, a domain's plain pymalloc) for the plain hooks;
/// false if another domain's pymalloc functions were taken before and differ (never seen).
pub(crate) fn claim_pymalloc(allocator: &PyMemAllocatorEx) -> bool {
    claim(&PYMALLOC_MALLOC, allocator.malloc.map(|f| f as usize))
        && claim(&PYMALLOC_CALLOC, allocator.calloc.map(|f| f as usize))
        && claim(&PYMALLOC_FREE, allocator.free.map(|f| f as usize))
}

/// True when `PYMEM_DOMAIN_RAW` is the interpreter's default allocator, a thin wrapper of
/// libc's `malloc`: blocks served by `malloc` may then be freed through pymalloc (which hands
/// them to `PyMem_RawFree`). The default allocator is static in the interpreter, so it is
/// recognised by having no context and living in the same object as `PyMem_RawMalloc`.
///
/// # Safety
/// The caller holds the GIL.
pub(crate) unsafe fn raw_is_libc() -> bool {
    let mut raw = pymem::EMPTY;
    // SAFETY: GIL held; reads the domain's allocator.
    unsafe { ffi::PyMem_GetAllocator(ffi::PYMEM_DOMAIN_RAW, &mut raw) };
    let Some(raw_malloc) = raw.malloc else {
        return false;
    };
    raw.ctx.is_null()
        && same_object(
            raw_malloc as usize,
            ffi::PyMem_RawMalloc as *const () as usize,
        )
}

/// True when the code addresses `a` and `b` lie in the same loaded object.
fn same_object(a: usize, b: usize) -> bool {
    let base = |addr: usize| {
        // SAFETY: dladdr only reads the loader's tables; `info` is plain data it fills.
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        (unsafe { libc::dladdr(addr as *const c_void, &mut info) } != 0).then_some(info.dli_fbase)
    };
    matches!((base(a), base(b)), (Some(x), Some(y)) if x == y)
}

/// The block size of a request pymalloc serves itself (1-512 bytes), or `None`.
#[inline(always)]
fn small_block(size: usize) -> Option<i64> {
    (size.wrapping_sub(1) < old_pools::SMALL_REQUEST_THRESHOLD)
        .then_some(((size + 15) & !15) as i64)
}

/// Calls pymalloc's `malloc` (`ZERO` false, `a` bytes) or `calloc` (`a` elements of `b`).
#[inline(always)]
unsafe fn pymalloc<const ZERO: bool>(ctx: *mut c_void, a: usize, b: usize) -> *mut c_void {
    if ZERO {
        // SAFETY: set by `claim_pymalloc` before these hooks were installed, to pymalloc's
        // `calloc` (non-null), which ignores its context.
        let calloc =
            unsafe { std::mem::transmute::<usize, CallocFn>(PYMALLOC_CALLOC.load(Relaxed)) };
        // SAFETY: forwarding the caller's request.
        unsafe { calloc(ctx, a, b) }
    } else {
        // SAFETY: as for calloc, with pymalloc's `malloc`.
        let malloc =
            unsafe { std::mem::transmute::<usize, MallocFn>(PYMALLOC_MALLOC.load(Relaxed)) };
        // SAFETY: forwarding the caller's request.
        unsafe { malloc(ctx, a) }
    }
}

/// Forwards a free to pymalloc.
#[inline(always)]
unsafe fn pymalloc_free(ctx: *mut c_void, ptr: *mut c_void) {
    // SAFETY: set by `claim_pymalloc` to pymalloc's `free` (non-null), which ignores its
    // context.
    let free = unsafe { std::mem::transmute::<usize, FreeFn>(PYMALLOC_FREE.load(Relaxed)) };
    // SAFETY: forwarding the caller's pointer.
    unsafe { free(ctx, ptr) }
}

/// The allocation hooks' common path (`malloc(a)`, or `calloc(a, b)` when `ZERO`).
#[inline(always)]
unsafe fn allocate<const ZERO: bool>(ctx: *mut c_void, a: usize, b: usize) -> *mut c_void {
    let size = if ZERO { a.saturating_mul(b) } else { a };
    let Some(block) = small_block(size) else {
        // Large: pymalloc passes it to `malloc`, where the native hooks count it.
        // SAFETY: forwarding.
        return unsafe { pymalloc::<ZERO>(ctx, a, b) };
    };
    let allocated = GIL.allocated.load(Relaxed) + block;
    if allocated > GIL.limit.load(Relaxed) {
        // SAFETY: forwarded from our caller.
        return unsafe { allocate_slow::<ZERO>(ctx, a, b) };
    }
    // SAFETY: forwarded from our caller.
    unsafe { count_then_serve::<ZERO>(ctx, a, b, block) }
}

/// Counts a small block of `block` bytes that no sample point falls in, then has pymalloc serve
/// it.
#[inline(always)]
unsafe fn count_then_serve<const ZERO: bool>(
    ctx: *mut c_void,
    a: usize,
    b: usize,
    block: i64,
) -> *mut c_void {
    add_allocated(block);
    // SAFETY: forwarding.
    let p = unsafe { pymalloc::<ZERO>(ctx, a, b) };
    if arena::contains(p as usize) {
        return p;
    }
    served_outside(p, block)
}

/// [`count_then_serve`] out of line, for [`fast_malloc`]'s less common path (C ABI, so that
/// the hook reaches it by a tail call).
#[inline(never)]
unsafe extern "C" fn allocate_counted(ctx: *mut c_void, size: usize, block: i64) -> *mut c_void {
    // SAFETY: forwarded from our caller.
    unsafe { count_then_serve::<false>(ctx, size, 1, block) }
}

/// [`allocate_slow`] for `malloc`, in the C ABI (see [`allocate_counted`]).
#[inline(never)]
unsafe extern "C" fn malloc_slow(ctx: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded from our caller.
    unsafe { allocate_slow::<false>(ctx, size, 1) }
}

/// A small block counted before pymalloc served it, then found outside our arenas: a block of
/// an older arena's pool (marked, so its free is counted), or null (not counted after all).
#[cold]
#[inline(never)]
fn served_outside(p: *mut c_void, block: i64) -> *mut c_void {
    // SAFETY: GIL held.
    if p.is_null() || !unsafe { old_pools::mark(p as usize) } {
        GIL.allocated
            .store(GIL.allocated.load(Relaxed) - block, Relaxed);
        GIL.allocations
            .store(GIL.allocations.load(Relaxed) - 1, Relaxed);
    }
    p
}

/// A small allocation that takes `allocated` past `limit`: a sample point falls inside it (it
/// is then served by `malloc` and recorded), or the hooks do not count.
#[cold]
#[inline(never)]
unsafe fn allocate_slow<const ZERO: bool>(ctx: *mut c_void, a: usize, b: usize) -> *mut c_void {
    if !GIL.active.load(Relaxed) {
        // SAFETY: forwarding.
        return unsafe { pymalloc::<ZERO>(ctx, a, b) };
    }
    let size = if ZERO { a.saturating_mul(b) } else { a };
    let block = small_block(size).unwrap_or(0);
    let allocated = GIL.allocated.load(Relaxed) + block;
    if allocated >= GIL.sample_at.load(Relaxed)
        && let Some(rec) = recorder::current()
    {
        // SAFETY: libc's allocator, reached through memlens's own (unpatched) GOT, so the
        // native hooks do not count the block again.
        let p = unsafe {
            if ZERO {
                libc::calloc(1, block as usize)
            } else {
                libc::malloc(block as usize)
            }
        };
        if !p.is_null() {
            add_allocated(block);
            sampler::gil_advance(&GIL.sample_at, allocated, rec.sample_rate);
            record_sampled(rec, p as usize, block);
            super::set_python_limit();
            return p;
        }
    }
    // SAFETY: forwarding.
    let p = unsafe { pymalloc::<ZERO>(ctx, a, b) };
    // SAFETY: GIL held.
    if arena::contains(p as usize) || (!p.is_null() && unsafe { old_pools::mark(p as usize) }) {
        add_allocated(block);
    }
    p
}

/// Records a sampled block served by `malloc` and remembers it, recorded or not, so that its
/// free is counted and goes back to `free`.
fn record_sampled(rec: &'static recorder::Recorder, p: usize, block: i64) {
    let mut recorded = false;
    super::guarded(|| recorded = rec.on_alloc(p, block as u64, Domain::Python));
    sampled::insert(p, sampled::entry(block as u64, recorded, true));
}

/// # Safety
/// Called by CPython with `ctx` pointing at one of our `Wrapped` statics, GIL held.
pub(crate) unsafe extern "C" fn plain_malloc(ctx: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded from our caller.
    unsafe { allocate::<false>(ctx, size, 1) }
}

/// # Safety
/// As for `plain_malloc`.
pub(crate) unsafe extern "C" fn plain_calloc(
    ctx: *mut c_void,
    nelem: usize,
    elsize: usize,
) -> *mut c_void {
    // SAFETY: forwarded from our caller.
    unsafe { allocate::<true>(ctx, nelem, elsize) }
}

/// [`plain_malloc`] doing pymalloc's common case itself (see [`used_pools`]): counted, then
/// taken from the class's head pool when that is ours.
///
/// # Safety
/// As for `plain_malloc`; [`used_pools::discover`] found pymalloc's lists.
/// With `GUARD` (3.12+) the main interpreter must be the only one (see
/// [`used_pools::sole_interpreter`]).
pub(crate) unsafe extern "C" fn fast_malloc<const GUARD: bool>(
    ctx: *mut c_void,
    size: usize,
) -> *mut c_void {
    let Some(block) = small_block(size) else {
        // SAFETY: forwarding.
        return unsafe { pymalloc::<false>(ctx, size, 1) };
    };
    let allocated = GIL.allocated.load(Relaxed) + block;
    if allocated > GIL.limit.load(Relaxed) {
        // SAFETY: forwarded from our caller.
        return unsafe { malloc_slow(ctx, size) };
    }
    // SAFETY: a GIL is held (our caller's contract); the lists were found.
    if GUARD && !unsafe { used_pools::sole_interpreter() } {
        // SAFETY: forwarded from our caller.
        return unsafe { allocate_counted(ctx, size, block) };
    }
    // SAFETY: the caller's contract (GIL held, lists found); `size` is 1-512 bytes.
    let Some(p) = (unsafe { used_pools::take((size - 1) >> 4, block as usize) }) else {
        // SAFETY: forwarded from our caller.
        return unsafe { allocate_counted(ctx, size, block) };
    };
    GIL.allocated.store(allocated, Relaxed);
    GIL.allocations
        .store(GIL.allocations.load(Relaxed) + 1, Relaxed);
    p as *mut c_void
}

/// [`plain_free`] doing pymalloc's common case itself (see [`used_pools`]).
///
/// # Safety
/// As for `fast_malloc`.
pub(crate) unsafe extern "C" fn fast_free(ctx: *mut c_void, ptr: *mut c_void) {
    let p = ptr as usize;
    if !arena::contains(p) {
        // SAFETY: forwarded from our caller.
        return unsafe { free_outside(ctx, ptr) };
    }
    if crate::counters::python_live() > SHARED.python_room.load(Relaxed) {
        // SAFETY: forwarded from our caller.
        return unsafe { free_after_peak_check(ctx, ptr) };
    }
    let pool = p & arena::pool_mask();
    let block = pymem::pool_block_size(pool);
    // SAFETY: `p` is a live block of one of our arenas' pools (the caller frees it); GIL held.
    if !unsafe { used_pools::give_back(p, pool) } {
        // SAFETY: forwarded from our caller.
        return unsafe { free_counted(ctx, ptr, block) };
    }
    GIL.freed.store(GIL.freed.load(Relaxed) + block, Relaxed);
}

/// A free of a block of ours that pymalloc must do: counted, then forwarded.
///
/// # Safety
/// As for `plain_malloc`; `ptr` is a live block of ours of `block` bytes.
#[inline(never)]
unsafe extern "C" fn free_counted(ctx: *mut c_void, ptr: *mut c_void, block: i64) {
    GIL.freed.store(GIL.freed.load(Relaxed) + block, Relaxed);
    // SAFETY: forwarded from our caller.
    unsafe { pymalloc_free(ctx, ptr) }
}

/// The common path ends in a tail call to pymalloc's `free`, so it saves no registers.
///
/// # Safety
/// As for `plain_malloc`.
pub(crate) unsafe extern "C" fn plain_free(ctx: *mut c_void, ptr: *mut c_void) {
    // Every pointer while counting is off is outside the range (see `super::set_counting`).
    if arena::contains(ptr as usize) {
        if crate::counters::python_live() > SHARED.python_room.load(Relaxed) {
            // SAFETY: forwarded from our caller.
            return unsafe { free_after_peak_check(ctx, ptr) };
        }
        GIL.freed
            .store(GIL.freed.load(Relaxed) + block_size(ptr as usize), Relaxed);
        // SAFETY: forwarded from our caller.
        return unsafe { pymalloc_free(ctx, ptr) };
    }
    // SAFETY: forwarded from our caller.
    unsafe { free_outside(ctx, ptr) }
}

/// [`plain_free`] of a block in our range when Python live bytes passed the room: the peak
/// check, then the free. Out of line, so the common path keeps nothing across a call.
///
/// # Safety
/// As for `plain_malloc`.
#[cold]
#[inline(never)]
unsafe extern "C" fn free_after_peak_check(ctx: *mut c_void, ptr: *mut c_void) {
    add_freed(block_size(ptr as usize));
    // SAFETY: forwarded from our caller.
    unsafe { pymalloc_free(ctx, ptr) }
}

/// A free outside our arenas: a sampled block (served by `malloc`), a block counted in an
/// older pool, or one the hooks never counted.
///
/// # Safety
/// As for `plain_malloc`.
#[inline(never)]
unsafe extern "C" fn free_outside(ctx: *mut c_void, ptr: *mut c_void) {
    let p = ptr as usize;
    if let Some(entry) = take_sampled(p) {
        forget_sampled(p, entry);
        // SAFETY: a sampled block, from libc's malloc or calloc.
        return unsafe { libc::free(ptr) };
    }
    // SAFETY: GIL held.
    if unsafe { old_pools::unmark(p) } {
        // SAFETY: forwarded from our caller.
        return unsafe { pymem::free_old(ctx, ptr) };
    }
    // SAFETY: forwarded from our caller.
    unsafe { pymalloc_free(ctx, ptr) }
}

/// The entry of the block at `p` (removed from the set), if these hooks served it from
/// `malloc` (a sampled native block stays: it is `malloc`'s own, counted by the native hooks).
#[inline(always)]
fn take_sampled(p: usize) -> Option<u64> {
    if p != 0 && sampled::maybe(p) {
        sampled::remove_if(p, sampled::entry_served)
    } else {
        None
    }
}

/// Counts and records the free of the sampled block at `p`, before it is released.
fn forget_sampled(p: usize, entry: u64) {
    add_freed(sampled::entry_size(entry) as i64);
    if sampled::entry_recorded(entry)
        && GIL.active.load(Relaxed)
        && let Some(rec) = recorder::current()
    {
        super::guarded(|| rec.on_free(p));
    }
}

/// # Safety
/// As for `plain_malloc`.
pub(crate) unsafe extern "C" fn plain_realloc(
    ctx: *mut c_void,
    ptr: *mut c_void,
    size: usize,
) -> *mut c_void {
    let old = ptr as usize;
    if old == 0 {
        // SAFETY: realloc of null is malloc.
        return unsafe { plain_malloc(ctx, size) };
    }
    if !arena::contains(old)
        && let Some(entry) = take_sampled(old)
    {
        // SAFETY: `old` is a live sampled block of `entry`'s size; forwarded otherwise.
        return unsafe { move_block(ctx, ptr, size, Moved::Sampled(entry)) };
    }
    // Read (and unmark) the old block's size before pymalloc may reuse it.
    let old_block = counted_old_block(old);
    if let Some(old_block) = old_block
        && let Some(block) = small_block(size)
        && GIL.allocated.load(Relaxed) + block >= GIL.sample_at.load(Relaxed)
    {
        // A sample point falls in the new block: it is served by `malloc`, like any other.
        // SAFETY: `old` is a live counted pymalloc block of `old_block` bytes.
        return unsafe { move_block(ctx, ptr, size, Moved::Counted(old_block)) };
    }
    // SAFETY: `ctx` is &MEM or &OBJ (see `plain_malloc`); forwarding.
    let p = unsafe { pymem::forward_realloc(ctx, ptr, size) };
    if p.is_null() {
        pymem::restore_mark(old, old_block);
        return p;
    }
    if let Some(block) = old_block {
        add_freed(block);
    }
    if let Some(block) = pymem::counted_realloc_block(p as usize, size, old, old_block, 0) {
        // Counted, never sampled here: a pending sample point falls in the next allocation
        // (a block of unknown size cannot be moved to `malloc`).
        add_allocated(block);
    }
    p
}

/// The old block of a realloc [`move_block`] moves.
enum Moved {
    /// A sampled block (its set entry, already taken).
    Sampled(u64),
    /// A counted pymalloc block of this size.
    Counted(i64),
}

/// A realloc done as allocate, copy and free: for a sampled old block (pymalloc cannot resize
/// `malloc`'s), or a new block a sample point falls in.
///
/// # Safety
/// `ptr` is the live block `old` describes; otherwise as for `plain_malloc`.
#[cold]
#[inline(never)]
unsafe fn move_block(ctx: *mut c_void, ptr: *mut c_void, size: usize, old: Moved) -> *mut c_void {
    // SAFETY: forwarded from our caller.
    let p = unsafe { plain_malloc(ctx, size) };
    let p_old = ptr as usize;
    let old_size = match old {
        Moved::Sampled(entry) => {
            if p.is_null() {
                sampled::insert(p_old, entry);
                return p;
            }
            sampled::entry_size(entry) as usize
        }
        Moved::Counted(block) => {
            if p.is_null() {
                pymem::restore_mark(p_old, Some(block));
                return p;
            }
            block as usize
        }
    };
    // SAFETY: both blocks are live and distinct; the old one holds `old_size` bytes and the
    // new one at least `size`.
    unsafe { std::ptr::copy_nonoverlapping(ptr as *const u8, p as *mut u8, old_size.min(size)) };
    match old {
        Moved::Sampled(entry) => {
            forget_sampled(p_old, entry);
            // SAFETY: a sampled block, from libc's malloc or calloc.
            unsafe { libc::free(ptr) };
        }
        Moved::Counted(block) => {
            add_freed(block);
            // SAFETY: a live pymalloc block.
            unsafe { pymalloc_free(ctx, ptr) };
            if !arena::contains(p_old) {
                // SAFETY: GIL held.
                unsafe { ballast::refill(block as usize) };
            }
        }
    }
    p
}
