//! Hooks on CPython's `PYMEM_DOMAIN_MEM` and `PYMEM_DOMAIN_OBJ` allocators (pymalloc).
//!
//! These run on every Python object allocation, always with the GIL held. A block is counted
//! here only when pymalloc served it from one of *our* arenas (see [`super::arena`]), or from
//! an older arena's pool and then marked (see [`old_pools`]): that tells a small block from a
//! large one with one comparison and gives its exact size from the pool header on free. Large
//! requests fall through pymalloc to `malloc`, where the native hooks count them, so each byte
//! is counted once. `PYMEM_DOMAIN_RAW` is not wrapped: its default allocator is libc's
//! `malloc`, which the native hooks already see.
//!
//! Two running totals keep Python live bytes, `allocated - freed`: the allocation hook adds to
//! one, the free hook to the other. One comparison against `limit` sends an allocation to the
//! slow path when a sample point falls in it; the peak is checked before frees (see
//! `super::before_python_free`).
//!
//! With plain pymalloc in sampling mode (the common case) the hooks are leaner still: the
//! allocation hook counts a small request by its size before it calls pymalloc, and serves a
//! sampled block from `malloc` instead, so that the free hook finds every sampled block outside
//! our range and has nothing to look up for a block inside it.

use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

use memlens_format::Domain;

use super::{arena, ballast, old_pools, plain, sampled, used_pools};
use crate::counters::GIL;
use crate::ffi::{self, PyMemAllocatorEx};
use crate::{recorder, sampler};

/// The allocator a hook wraps; one per domain, passed to the hooks as their `ctx`.
pub(crate) struct Wrapped {
    orig: UnsafeCell<PyMemAllocatorEx>,
    /// The kind of hooks ([`PythonHooks`] as u8) still in this domain's chain below another
    /// allocator that wrapped them (tracemalloc started while tracking), or `None` (0): a
    /// stop could not take them out, so they only forward to `orig` until that allocator
    /// goes, and they must never be wrapped again (the chain would hold them twice and every
    /// allocation would recurse through it).
    stale: AtomicU8,
}

// SAFETY: written only in install/uninstall, with the GIL held and before/after the hooks are
// active; read by hooks afterwards.
unsafe impl Sync for Wrapped {}

pub(crate) const EMPTY: PyMemAllocatorEx = PyMemAllocatorEx {
    ctx: std::ptr::null_mut(),
    malloc: None,
    calloc: None,
    realloc: None,
    free: None,
};

static MEM: Wrapped = Wrapped {
    orig: UnsafeCell::new(EMPTY),
    stale: AtomicU8::new(PythonHooks::None as u8),
};
static OBJ: Wrapped = Wrapped {
    orig: UnsafeCell::new(EMPTY),
    stale: AtomicU8::new(PythonHooks::None as u8),
};

/// Calls the wrapped allocator's `malloc`. `wrap` only wraps allocators that have all four
/// functions, so the `None` arm (a null result, as for an exhausted allocator) is never
/// taken; it costs one predicted branch and keeps a broken chain from being undefined
/// behaviour.
///
/// # Safety
/// `orig` is the allocator a hook wraps, called as its domain's contract requires.
#[inline(always)]
unsafe fn forward_malloc(orig: &PyMemAllocatorEx, size: usize) -> *mut c_void {
    match orig.malloc {
        // SAFETY: forwarding the caller's request to the wrapped allocator, with its context.
        Some(f) => unsafe { f(orig.ctx, size) },
        None => std::ptr::null_mut(),
    }
}

/// As [`forward_malloc`], for `calloc`.
///
/// # Safety
/// As for [`forward_malloc`].
#[inline(always)]
unsafe fn forward_calloc(orig: &PyMemAllocatorEx, nelem: usize, elsize: usize) -> *mut c_void {
    match orig.calloc {
        // SAFETY: as in forward_malloc.
        Some(f) => unsafe { f(orig.ctx, nelem, elsize) },
        None => std::ptr::null_mut(),
    }
}

/// As [`forward_malloc`], for `realloc`.
///
/// # Safety
/// As for [`forward_malloc`].
#[inline(always)]
unsafe fn forward(orig: &PyMemAllocatorEx, ptr: *mut c_void, size: usize) -> *mut c_void {
    match orig.realloc {
        // SAFETY: as in forward_malloc.
        Some(f) => unsafe { f(orig.ctx, ptr, size) },
        None => std::ptr::null_mut(),
    }
}

/// As [`forward_malloc`], for `free`.
///
/// # Safety
/// As for [`forward_malloc`].
#[inline(always)]
unsafe fn forward_free(orig: &PyMemAllocatorEx, ptr: *mut c_void) {
    if let Some(f) = orig.free {
        // SAFETY: as in forward_malloc.
        unsafe { f(orig.ctx, ptr) }
    }
}

/// Size of the pymalloc block at `p`, from its pool header's size class.
#[inline(always)]
pub(crate) fn block_size(p: usize) -> i64 {
    pool_block_size(p & arena::pool_mask())
}

/// Size of the blocks of the pymalloc pool at `pool`, from its header's size class.
#[inline(always)]
pub(crate) fn pool_block_size(pool: usize) -> i64 {
    // SAFETY: every caller passes the pool of a live pymalloc block (in one of our arenas, or
    // a small block pymalloc just served or that we marked), so the header is mapped and set.
    let szidx = unsafe { std::ptr::read((pool + crate::python::POOL_SZIDX) as *const u32) };
    // The class index + 1 in 32 bits (it is below 64): `inc` and `shl`, one instruction
    // fewer than the 64-bit form, which the compiler turns into `shl`, `neg` and two adds.
    i64::from(szidx.wrapping_add(1)) << 4
}

/// Size of the block at `p` if the hooks count it: one of our arenas' blocks, or a small block
/// `p` of an older arena that pymalloc just served for `requested` bytes (then marked counted).
/// For the general hooks: a wrapper between us and pymalloc may add bytes of its own (debug
/// hooks add up to 4 words), so in our range the pool header tells the size, and outside it
/// only requests well below the threshold are known to be pymalloc's.
#[inline(always)]
fn counted_new_block(p: usize, requested: usize) -> Option<i64> {
    if arena::contains(p) {
        return Some(block_size(p));
    }
    if p == 0 || requested.wrapping_sub(1) >= old_pools::SMALL_REQUEST_THRESHOLD - WRAPPER_SLACK {
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
pub(crate) fn counted_old_block(p: usize) -> Option<i64> {
    if arena::contains(p) {
        return Some(block_size(p));
    }
    // SAFETY: Python-domain hooks run with the GIL held.
    if !unsafe { old_pools::unmark(p) } {
        return None;
    }
    Some(block_size(p))
}

/// Adds `block` bytes to the Python totals; the new `allocated`.
#[inline(always)]
pub(crate) fn add_allocated(block: i64) -> i64 {
    let allocated = GIL.allocated.load(Relaxed) + block;
    GIL.allocated.store(allocated, Relaxed);
    GIL.allocations
        .store(GIL.allocations.load(Relaxed) + 1, Relaxed);
    allocated
}

/// Adds `block` bytes to the Python bytes freed, after the peak check.
#[inline(always)]
pub(crate) fn add_freed(block: i64) {
    super::before_python_free();
    GIL.freed.store(GIL.freed.load(Relaxed) + block, Relaxed);
}

/// Counts a block of `block` bytes pymalloc just served at `p` (general hooks, and reallocs).
#[inline(always)]
fn count_alloc(p: usize, block: i64) {
    let allocated = add_allocated(block);
    if allocated > GIL.limit.load(Relaxed) {
        alloc_slow(p, block, allocated);
    }
}

/// [`count_alloc`]'s rare case: a sample point fell inside the block (or exact mode).
#[cold]
#[inline(never)]
fn alloc_slow(p: usize, block: i64, allocated: i64) {
    if allocated >= GIL.sample_at.load(Relaxed)
        && let Some(rec) = recorder::current()
    {
        if !rec.exact {
            sampler::gil_advance(&GIL.sample_at, allocated, rec.sample_rate);
        }
        super::record_alloc(rec, p, block as u64, Domain::Python);
        super::set_python_limit();
    }
}

/// # Safety
/// Called by CPython with `ctx` pointing at one of our `Wrapped` statics, GIL held.
unsafe extern "C" fn hook_malloc(ctx: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: ctx is &MEM or &OBJ, filled in before the hook was installed.
    let orig = unsafe { &*(*(ctx as *const Wrapped)).orig.get() };
    // SAFETY: forwarding to the wrapped allocator with its own context.
    let p = unsafe { forward_malloc(orig, size) };
    if let Some(block) = counted_new_block(p as usize, size) {
        count_alloc(p as usize, block);
    }
    p
}

/// # Safety
/// As for `hook_malloc`.
unsafe extern "C" fn hook_calloc(ctx: *mut c_void, nelem: usize, elsize: usize) -> *mut c_void {
    // SAFETY: as in hook_malloc.
    let orig = unsafe { &*(*(ctx as *const Wrapped)).orig.get() };
    // SAFETY: forwarding.
    let p = unsafe { forward_calloc(orig, nelem, elsize) };
    if let Some(block) = counted_new_block(p as usize, nelem.saturating_mul(elsize)) {
        count_alloc(p as usize, block);
    }
    p
}

/// # Safety
/// As for `hook_malloc`.
unsafe extern "C" fn hook_realloc(ctx: *mut c_void, ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: as in hook_malloc.
    let orig = unsafe { &*(*(ctx as *const Wrapped)).orig.get() };
    let old = ptr as usize;
    // Read (and unmark) the old block's size before pymalloc may reuse it.
    let old_block = counted_old_block(old);
    // SAFETY: forwarding.
    let p = unsafe { forward(orig, ptr, size) };
    if p.is_null() {
        restore_mark(old, old_block);
        return p;
    }
    if let Some(block) = old_block {
        add_freed(block);
        if sampled::maybe(old) {
            super::record_free(old);
        }
    }
    if let Some(block) = counted_realloc_block(p as usize, size, old, old_block, WRAPPER_SLACK) {
        count_alloc(p as usize, block);
    }
    p
}

/// A failed realloc leaves the old block: put back the mark [`counted_old_block`] took.
#[inline(always)]
pub(crate) fn restore_mark(old: usize, old_block: Option<i64>) {
    if old_block.is_some() && !arena::contains(old) {
        // SAFETY: GIL held.
        unsafe { old_pools::mark(old) };
    }
}

/// Size of the block a realloc returned at `new` if the hooks count it. Outside our range, a
/// realloc result may be a raw block (pymalloc hands non-pymalloc blocks to PyMem_RawRealloc
/// whatever the size): only a fresh allocation, or one moved from a block we know is
/// pymalloc's, is known small. Sizes come from the pool header: pymalloc may keep the old block
/// when shrinking it.
#[inline(always)]
pub(crate) fn counted_realloc_block(
    new: usize,
    size: usize,
    old: usize,
    old_block: Option<i64>,
    slack: usize,
) -> Option<i64> {
    let known_small = old == 0 || old_block.is_some();
    let counted = arena::contains(new)
        || (known_small
            && size.wrapping_sub(1) < old_pools::SMALL_REQUEST_THRESHOLD - slack
            // SAFETY: GIL held.
            && unsafe { old_pools::mark(new) });
    counted.then(|| block_size(new))
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
    unsafe { forward_free(orig, ptr) }
}

/// The common path ends in a tail call to the wrapped `free`, so it saves no registers.
///
/// # Safety
/// As for `hook_malloc`.
unsafe extern "C" fn hook_free(ctx: *mut c_void, ptr: *mut c_void) {
    // Null, and every pointer while counting is off, is found in neither our range nor the
    // old-pool table (see `super::set_counting`).
    let p = ptr as usize;
    if let Some(offset) = arena::counted_offset(p) {
        add_freed(block_size(p));
        if sampled::maybe_at_arena_offset(offset) {
            // SAFETY: forwarded from our caller.
            return unsafe { free_recorded(ctx, ptr) };
        }
    // SAFETY: Python-domain hooks run with the GIL held.
    } else if unsafe { old_pools::unmark(p) } {
        // SAFETY: forwarded from our caller.
        return unsafe { free_old(ctx, ptr) };
    }
    // SAFETY: as in hook_malloc.
    let orig = unsafe { &*(*(ctx as *const Wrapped)).orig.get() };
    // SAFETY: forwarding.
    unsafe { forward_free(orig, ptr) }
}

/// The free of a block counted in a pool older than tracking (the old-pool mark is cleared):
/// count and record it, forward it, then move its size class back to our arenas (see
/// [`ballast`]), so that this path stays rare.
///
/// # Safety
/// As for `hook_malloc`.
#[cold]
#[inline(never)]
pub(crate) unsafe extern "C" fn free_old(ctx: *mut c_void, ptr: *mut c_void) {
    let p = ptr as usize;
    let block = block_size(p);
    add_freed(block);
    if sampled::maybe(p) {
        super::record_free(p);
    }
    // SAFETY: as in hook_malloc.
    let orig = unsafe { &*(*(ctx as *const Wrapped)).orig.get() };
    // SAFETY: forwarding.
    unsafe { forward_free(orig, ptr) };
    // SAFETY: GIL held.
    unsafe { ballast::refill(block as usize) };
}

/// Which hooks wrap the Python domains now (see [`PythonHooks`]).
static KIND: AtomicU8 = AtomicU8::new(PythonHooks::None as u8);

/// The hooks wrapping the Python domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PythonHooks {
    /// Not wrapped.
    None,
    /// The general hooks: `--exact`, or an allocator other than plain pymalloc.
    General,
    /// The plain-pymalloc hooks, which call pymalloc for every block.
    Plain,
    /// The plain-pymalloc hooks taking pymalloc's common case themselves (see
    /// [`super::used_pools`]).
    Pools,
}

impl PythonHooks {
    /// The name tests and diagnostics use.
    pub fn name(self) -> &'static str {
        match self {
            PythonHooks::None => "none",
            PythonHooks::General => "general",
            PythonHooks::Plain => "plain",
            PythonHooks::Pools => "pools",
        }
    }
}

/// The hooks wrapping the Python domains now.
pub fn python_hooks() -> PythonHooks {
    match KIND.load(Relaxed) {
        1 => PythonHooks::General,
        2 if used_pools::on() => PythonHooks::Pools,
        2 => PythonHooks::Plain,
        _ => PythonHooks::None,
    }
}

/// Wraps `domain`'s allocator: with the plain hooks when it is plain pymalloc in sampling mode
/// (see [`super::plain`]), with the general ones otherwise. Caller holds the GIL.
/// `fast`: whether pymalloc's lists were found, decided by the first domain found plain and
/// kept for the second (both use the same pymalloc).
fn wrap(
    domain: std::ffi::c_int,
    wrapped: &'static Wrapped,
    exact: bool,
    own_obmalloc: bool,
    fast: &mut Option<bool>,
) {
    let mut current = EMPTY;
    // SAFETY: GIL held by the caller (install); reads the domain's current allocator.
    unsafe { ffi::PyMem_GetAllocator(domain, &mut current) };
    let ctx = wrapped as *const Wrapped as *mut c_void;
    let stale = wrapped.stale.load(Relaxed);
    if current.ctx != ctx && stale != PythonHooks::None as u8 {
        // Our hooks are still in the chain, below the allocator that wrapped them: they count
        // again as they are (`check_restart` made sure they suit this session).
        KIND.store(stale, Relaxed);
        return;
    }
    wrapped.stale.store(PythonHooks::None as u8, Relaxed);
    let complete = current.malloc.is_some()
        && current.calloc.is_some()
        && current.realloc.is_some()
        && current.free.is_some();
    if current.ctx != ctx && !complete {
        // Nothing sane to forward to: leave the domain alone (its allocations go untracked).
        return;
    }
    if current.ctx != ctx {
        // SAFETY: hooks are not installed on this domain yet, so nothing reads `orig` now.
        unsafe { *wrapped.orig.get() = current };
    } // else ours already (a start after a stop that could not unwrap): only the kind may change.
    // SAFETY: `orig` is written only above, with the GIL held.
    let orig = unsafe { *wrapped.orig.get() };
    // SAFETY: GIL held by the caller.
    let plain = !exact
        && unsafe { is_plain_pymalloc(&orig) && plain::raw_is_libc() }
        && plain::claim_pymalloc(&orig);
    let mut ours = if plain {
        // SAFETY: GIL held by the caller; `orig` is plain pymalloc.
        let fast =
            *fast.get_or_insert_with(|| unsafe { used_pools::discover(&orig, arena::pool_mask()) });
        KIND.store(PythonHooks::Plain as u8, Relaxed);
        PyMemAllocatorEx {
            ctx,
            malloc: Some(if fast && own_obmalloc {
                plain::fast_malloc::<true>
            } else if fast {
                plain::fast_malloc::<false>
            } else {
                plain::plain_malloc
            }),
            calloc: Some(plain::plain_calloc),
            realloc: Some(plain::plain_realloc),
            free: Some(if fast {
                plain::fast_free
            } else {
                plain::plain_free
            }),
        }
    } else {
        KIND.store(PythonHooks::General as u8, Relaxed);
        PyMemAllocatorEx {
            ctx,
            malloc: Some(hook_malloc),
            calloc: Some(hook_calloc),
            realloc: Some(hook_realloc),
            free: Some(hook_free),
        }
    };
    // SAFETY: GIL held; `ours` is copied by CPython.
    unsafe { ffi::PyMem_SetAllocator(domain, &mut ours) };
}

/// Forwards a realloc to the allocator `ctx` wraps.
///
/// # Safety
/// `ctx` is &MEM or &OBJ; the caller holds the GIL and passes a block of that allocator.
pub(crate) unsafe fn forward_realloc(
    ctx: *mut c_void,
    ptr: *mut c_void,
    size: usize,
) -> *mut c_void {
    // SAFETY: as in hook_malloc.
    let orig = unsafe { &*(*(ctx as *const Wrapped)).orig.get() };
    // SAFETY: forwarding.
    unsafe { forward(orig, ptr, size) }
}

fn unwrap(domain: std::ffi::c_int, wrapped: &'static Wrapped, kind: u8) {
    let mut current = EMPTY;
    // SAFETY: GIL held by the caller.
    unsafe { ffi::PyMem_GetAllocator(domain, &mut current) };
    // Our context pointer is unique to us (function addresses need not be).
    if current.ctx != wrapped as *const Wrapped as *mut c_void {
        // Someone (tracemalloc, another profiler) wrapped us: leave the chain intact; with
        // tracking inactive our hooks only forward. Unless the top is plain pymalloc again
        // (that allocator stopped and put back what it had wrapped, which was not us), our
        // hooks are below it: remember that they are, so that they are never wrapped twice.
        // SAFETY: GIL held by the caller.
        let gone = unsafe { is_plain_pymalloc(&current) };
        if !gone && kind != PythonHooks::None as u8 {
            wrapped.stale.store(kind, Relaxed);
        }
        return;
    }
    // SAFETY: GIL held; restores the allocator we wrapped. `orig` stays valid for any caller
    // still holding our hooks.
    unsafe {
        let mut orig = *wrapped.orig.get();
        ffi::PyMem_SetAllocator(domain, &mut orig);
    }
}

/// Wraps the MEM and OBJ domains. `own_obmalloc`: interpreters may have an obmalloc state of
/// their own (3.12+). Caller holds the GIL.
pub(crate) fn install(exact: bool, own_obmalloc: bool) {
    let mut fast = None;
    wrap(ffi::PYMEM_DOMAIN_MEM, &MEM, exact, own_obmalloc, &mut fast);
    wrap(ffi::PYMEM_DOMAIN_OBJ, &OBJ, exact, own_obmalloc, &mut fast);
}

/// Restores the MEM and OBJ domains where we are still on top. Caller holds the GIL.
pub(crate) fn uninstall() {
    let kind = KIND.swap(PythonHooks::None as u8, Relaxed);
    unwrap(ffi::PYMEM_DOMAIN_OBJ, &OBJ, kind);
    unwrap(ffi::PYMEM_DOMAIN_MEM, &MEM, kind);
}

/// Whether tracking can start with `exact`: `Err` with the reason when hooks of an earlier
/// session are still wrapped by another allocator and cannot serve this one (the plain hooks
/// sample; exact mode needs the general ones). Caller holds the GIL.
pub(crate) fn check_restart(exact: bool) -> Result<(), &'static str> {
    for wrapped in [&MEM, &OBJ] {
        let stale = wrapped.stale.load(Relaxed);
        let general = stale == PythonHooks::General as u8;
        if stale != PythonHooks::None as u8 && exact && !general {
            return Err(
                "another allocator (tracemalloc?) still wraps the sampling hooks of memlens's \
                 previous session, which cannot record every allocation: stop it \
                 (tracemalloc.stop()) before tracking with exact=True",
            );
        }
    }
    Ok(())
}

/// `domain`'s allocator if it is plain pymalloc (see [`is_plain_pymalloc`]).
///
/// # Safety
/// The caller holds the GIL.
pub(crate) unsafe fn plain_pymalloc(domain: std::ffi::c_int) -> Option<PyMemAllocatorEx> {
    let mut current = EMPTY;
    // SAFETY: GIL held; reads the domain's allocator.
    unsafe { ffi::PyMem_GetAllocator(domain, &mut current) };
    // SAFETY: GIL held.
    unsafe { is_plain_pymalloc(&current) }.then_some(current)
}

/// True when `allocator` is plain pymalloc: no debug hooks or tracer in between (pymalloc's
/// functions take no context) and not the raw allocator (PYTHONMALLOC=malloc).
///
/// # Safety
/// The caller holds the GIL.
unsafe fn is_plain_pymalloc(allocator: &PyMemAllocatorEx) -> bool {
    let mut raw = EMPTY;
    // SAFETY: GIL held; reads the raw domain's allocator.
    unsafe { ffi::PyMem_GetAllocator(ffi::PYMEM_DOMAIN_RAW, &mut raw) };
    let same_as_raw = match (allocator.malloc, raw.malloc) {
        (Some(a), Some(b)) => std::ptr::fn_addr_eq(a, b),
        _ => false,
    };
    allocator.ctx.is_null() && !same_as_raw && allocator.malloc.is_some()
}
