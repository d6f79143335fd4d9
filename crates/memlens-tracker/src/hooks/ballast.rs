//! Keeping the program's allocations out of pymalloc arenas older than tracking, so that a
//! range check counts them instead of the old-pool table.
//!
//! pymalloc serves a size class from the pool at the head of its used-pools list, and a free
//! puts the block's pool back at that head: a loop that allocates and frees an object of one
//! class stays in whichever pool it started in, for good. If that is a pool older than
//! tracking, every allocation and free of the loop needs the old-pool table (`old_pools`).
//! So, before the hooks count, every free block of the older arenas' pools and every free pool
//! is allocated as "ballast"; and when the program frees a counted block in an older pool (the
//! program freed an object older than tracking there, and the loop moved in), the class is
//! refilled until pymalloc serves it from our arenas again. The ballast only ever holds memory
//! the program had already released, up to [`LIMIT`], and is freed when tracking stops.
//! Only with plain pymalloc (sizes are then exactly the block sizes).

use std::cell::UnsafeCell;
use std::ffi::c_void;

use super::arena;
use crate::ffi::PyMemAllocatorEx;

/// Never more ballast than this, however much free space older arenas hold (a tracker
/// started late in a large program): past it, the old-pool table handles the rest.
const LIMIT: usize = 32 << 20;

struct State {
    blocks: Vec<usize>,
    bytes: usize,
    allocator: Option<PyMemAllocatorEx>,
}

struct Shared(UnsafeCell<State>);

// SAFETY: touched only with the GIL held (tracking start and stop, and the Python-domain
// hooks), so never from two threads at once.
unsafe impl Sync for Shared {}

static STATE: Shared = Shared(UnsafeCell::new(State {
    blocks: Vec::new(),
    bytes: 0,
    allocator: None,
}));

/// # Safety
/// The caller holds the GIL.
#[allow(clippy::mut_from_ref)]
unsafe fn state() -> &'static mut State {
    // SAFETY: exclusive by the GIL.
    unsafe { &mut *STATE.0.get() }
}

impl State {
    /// Allocates blocks of `size` bytes until one comes from our arenas (or the limit).
    fn fill_class(&mut self, size: usize) {
        let Some(allocator) = self.allocator else {
            return;
        };
        let Some(malloc) = allocator.malloc else {
            return;
        };
        while self.bytes < LIMIT {
            // SAFETY: pymalloc with its own context; the caller holds the GIL.
            let p = unsafe { malloc(allocator.ctx, size) } as usize;
            if p == 0 {
                return;
            }
            self.blocks.push(p);
            self.bytes += size;
            if arena::fresh(p) {
                // The class now allocates from the session's arenas. This block stays ballast: freeing
                // it would put its pool at the head of the list, which is where it is anyway.
                return;
            }
        }
    }
}

/// Fills older arenas' free space, if `pymalloc` (the object domain's allocator, unwrapped)
/// is plain pymalloc.
///
/// # Safety
/// The caller holds the GIL; the hooks do not count yet (the ballast must not be counted).
pub(crate) unsafe fn fill(pymalloc: Option<PyMemAllocatorEx>) {
    // SAFETY: GIL held.
    let state = unsafe { state() };
    state.allocator = pymalloc;
    // Largest class first: it takes the free pools in the fewest calls.
    for size in (16..=512).rev().step_by(16) {
        state.fill_class(size);
    }
}

/// The program freed a block of `size` bytes that it had allocated, while tracking, in a pool
/// older than tracking: move the class back to our arenas.
///
/// # Safety
/// The caller holds the GIL.
#[cold]
#[inline(never)]
pub(crate) unsafe fn refill(size: usize) {
    // SAFETY: GIL held.
    unsafe { state() }.fill_class(size);
}

/// Frees the ballast.
///
/// # Safety
/// The caller holds the GIL.
pub(crate) unsafe fn release() {
    // SAFETY: GIL held.
    let state = unsafe { state() };
    let blocks = std::mem::take(&mut state.blocks);
    state.bytes = 0;
    if let Some(free) = state
        .allocator
        .take()
        .and_then(|a| a.free.map(|f| (a.ctx, f)))
    {
        for p in blocks {
            // SAFETY: each block came from this allocator and is freed once.
            unsafe { (free.1)(free.0, p as *mut c_void) };
        }
    }
}
