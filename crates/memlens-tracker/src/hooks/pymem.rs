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
use std::sync::atomic::Ordering::Relaxed;

use memlens_format::Domain;

use super::{arena, old_pools};
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
    let pool = p & !(arena::pool_size() - 1);
    // SAFETY: p is a live pymalloc block (in one of our arenas, or a small block pymalloc just
    // served or that we marked), so its pool header is mapped and initialised.
    let szidx = unsafe { std::ptr::read((pool + crate::python::POOL_SZIDX) as *const u32) };
    (i64::from(szidx) + 1) << 4
}

#[inline(always)]
fn counted_alloc(p: usize, requested: usize, may_be_old: bool) {
    if p == 0 || !GIL.active.load(Relaxed) {
        return;
    }
    let block = if arena::contains(p) {
        block_size(p)
    } else {
        if !may_be_old {
            return;
        }
        match old_block(p, requested) {
            Some(size) => size,
            None => return,
        }
    };
    let live = GIL.live.load(Relaxed) + block;
    GIL.live.store(live, Relaxed);
    GIL.allocated
        .store(GIL.allocated.load(Relaxed) + requested as u64, Relaxed);
    GIL.allocations
        .store(GIL.allocations.load(Relaxed) + 1, Relaxed);
    let total = live + SHARED.native_live.load(Relaxed);
    if let Some(rec) = recorder::current()
        && (rec.exact || sampler::gil_should_sample(&GIL.countdown, block as u64, rec.sample_rate))
    {
        super::guarded(|| rec.on_alloc(p, block as u64, Domain::Python));
    } // After the allocation is recorded, so the peak set includes it.
    if total > SHARED.peak.load(Relaxed) {
        super::new_peak(total);
    }
}

/// A small request served outside our range came from an arena older than tracking: count it
/// in the old-pool table. Larger requests went to `malloc`, where the native hooks count them.
#[inline]
fn old_block(p: usize, requested: usize) -> Option<i64> {
    if !old_pools::enabled() || requested == 0 || requested > old_pools::SMALL_REQUEST_THRESHOLD {
        return None;
    }
    // SAFETY: Python-domain hooks run with the GIL held.
    if !unsafe { old_pools::mark(p, arena::pool_size()) } {
        return None;
    }
    Some(block_size(p))
}

/// Size of a block outside our range that we counted, unmarking it; `None` for any other
/// pointer (a large block, or one allocated before tracking started).
#[inline]
fn old_free(p: usize) -> Option<i64> {
    // SAFETY: Python-domain hooks run with the GIL held.
    if !old_pools::enabled() || !unsafe { old_pools::unmark(p, arena::pool_size()) } {
        return None;
    }
    Some(block_size(p))
}

#[inline(always)]
fn counted_free(p: usize) {
    if !GIL.active.load(Relaxed) {
        return;
    }
    let block = if arena::contains(p) {
        block_size(p)
    } else {
        match old_free(p) {
            Some(size) => size,
            None => return,
        }
    };
    GIL.live.store(GIL.live.load(Relaxed) - block, Relaxed);
    if let Some(rec) = recorder::current() {
        rec.on_free(p);
    }
}

/// # Safety
/// Called by CPython with `ctx` pointing at one of our `Wrapped` statics, GIL held.
unsafe extern "C" fn hook_malloc(ctx: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: ctx is &MEM or &OBJ, filled in before the hook was installed.
    let orig = unsafe { &*(*(ctx as *const Wrapped)).orig.get() };
    // SAFETY: forwarding to the wrapped allocator with its own context.
    let p = unsafe { (orig.malloc.unwrap_unchecked())(orig.ctx, size) };
    counted_alloc(p as usize, size, true);
    p
}

/// # Safety
/// As for `hook_malloc`.
unsafe extern "C" fn hook_calloc(ctx: *mut c_void, nelem: usize, elsize: usize) -> *mut c_void {
    // SAFETY: as in hook_malloc.
    let orig = unsafe { &*(*(ctx as *const Wrapped)).orig.get() };
    // SAFETY: forwarding.
    let p = unsafe { (orig.calloc.unwrap_unchecked())(orig.ctx, nelem, elsize) };
    counted_alloc(p as usize, nelem.saturating_mul(elsize), true);
    p
}

/// # Safety
/// As for `hook_malloc`.
unsafe extern "C" fn hook_realloc(ctx: *mut c_void, ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: as in hook_malloc.
    let orig = unsafe { &*(*(ctx as *const Wrapped)).orig.get() };
    let old = ptr as usize;
    // Read (and unmark) the old block's size before pymalloc may reuse it.
    let old_block = if old == 0 || !GIL.active.load(Relaxed) {
        0
    } else if arena::contains(old) {
        block_size(old)
    } else {
        old_free(old).unwrap_or(0)
    };
    // SAFETY: forwarding.
    let p = unsafe { (orig.realloc.unwrap_unchecked())(orig.ctx, ptr, size) };
    if p.is_null() {
        return p;
    }
    if old_block != 0 {
        GIL.live.store(GIL.live.load(Relaxed) - old_block, Relaxed);
        if let Some(rec) = recorder::current() {
            rec.on_free(old);
        }
    }
    // Outside our range, a realloc result may be a raw block (pymalloc hands non-pymalloc
    // blocks to PyMem_RawRealloc whatever the size): only a fresh allocation is known small.
    counted_alloc(p as usize, size, old == 0);
    p
}

/// # Safety
/// As for `hook_malloc`.
unsafe extern "C" fn hook_free(ctx: *mut c_void, ptr: *mut c_void) {
    // SAFETY: as in hook_malloc.
    let orig = unsafe { &*(*(ctx as *const Wrapped)).orig.get() };
    if !ptr.is_null() {
        counted_free(ptr as usize);
    }
    // SAFETY: forwarding.
    unsafe { (orig.free.unwrap_unchecked())(orig.ctx, ptr) }
}

fn wrap(domain: std::ffi::c_int, wrapped: &'static Wrapped) {
    let mut current = EMPTY;
    // SAFETY: GIL held by the caller (install); reads the domain's current allocator.
    unsafe { ffi::PyMem_GetAllocator(domain, &mut current) };
    if current.ctx == wrapped as *const Wrapped as *mut c_void {
        return; // already ours (a second start without a stop)
    }
    // SAFETY: hooks are not installed on this domain yet, so nothing reads `orig` now.
    unsafe { *wrapped.orig.get() = current };
    let mut ours = PyMemAllocatorEx {
        ctx: wrapped as *const Wrapped as *mut c_void,
        malloc: Some(hook_malloc),
        calloc: Some(hook_calloc),
        realloc: Some(hook_realloc),
        free: Some(hook_free),
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
