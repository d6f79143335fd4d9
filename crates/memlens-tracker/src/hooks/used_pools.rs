//! pymalloc's used-pool lists, found once so that the plain hooks can take the common case of
//! an allocation or a free in our arenas themselves, as pymalloc would, instead of counting and
//! then calling pymalloc.
//!
//! pymalloc serves a request of size class `c` from the pool at the head of `usedpools[2c]`:
//! its free list gives the block (`pool->freeblock`, whose first word links the next free
//! block). A free pushes the block on its pool's free list. Everything else (a free list run
//! out, so the pool is extended or unlinked as full; a full pool that regains a block; a pool
//! left empty; no pool in use at all) touches pymalloc's arena bookkeeping, and the hooks leave
//! it to pymalloc. In 3.9-3.13 these fast paths update nothing but the pool header (no block
//! counter: allocated blocks are counted by walking the arenas), so doing them here leaves
//! pymalloc's state exactly as pymalloc would have, and skips a second indirect call and, on
//! free, pymalloc's radix-tree lookup of the address, which the hooks' range check replaces.
//!
//! `usedpools` is private to the interpreter (a static in 3.9-3.11, part of the main
//! interpreter's obmalloc state in 3.12-3.13), so it is found from the pools themselves: the
//! pool that just served a class sits at the head of that class's list, and its `prevpool` is
//! the list's header, a fake pool laid over `usedpools` two pointers before `usedpools[2c]`.
//! All 32 classes must agree on one array before the fast paths are used.

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::arena;
use super::old_pools::SMALL_REQUEST_THRESHOLD;
use crate::ffi::{self, PyMemAllocatorEx};
use crate::python::{
    POOL_COUNT, POOL_FREEBLOCK, POOL_MAXNEXTOFFSET, POOL_NEXTOFFSET, POOL_PREVPOOL, POOL_SZIDX,
};

/// Size classes: one per 16 bytes up to the small-request threshold.
const CLASSES: usize = SMALL_REQUEST_THRESHOLD / 16;

/// Address of `usedpools` (the main interpreter's), or of [`NO_POOLS`] when it was not found
/// or must not be used.
static USED_POOLS: AtomicUsize = AtomicUsize::new(0);

/// Stands in for `usedpools` when the fast paths are off: every head reads as null, which is
/// never one of our pools, so [`take`] always leaves the request to pymalloc.
static NO_POOLS: [AtomicUsize; 2 * CLASSES] = [const { AtomicUsize::new(0) }; 2 * CLASSES];

/// The main interpreter (see [`sole_interpreter`]).
static MAIN_INTERPRETER: AtomicUsize = AtomicUsize::new(0);

/// True while [`take`] may serve blocks.
pub(crate) fn on() -> bool {
    let used = USED_POOLS.load(Relaxed);
    used != NO_POOLS.as_ptr() as usize && used != 0
}

/// True when the main interpreter is the only one. From 3.12 an interpreter may have its own
/// obmalloc state (and its own GIL): its requests must go to pymalloc, which finds that state,
/// never to the main interpreter's lists. CPython links a new interpreter at the head of the
/// runtime's list before it runs any code, and the main interpreter, created first, is last:
/// so the head is the main interpreter exactly when no other exists. One call that reads one
/// global (no thread-local), made on each allocation the fast path would take, from 3.12 only
/// (before 3.12 every interpreter shares one state and one GIL).
///
/// # Safety
/// The caller holds a GIL; [`discover`] ran.
#[inline(always)]
pub(crate) unsafe fn sole_interpreter() -> bool {
    // SAFETY: reads the runtime's interpreter list head, which is always valid.
    unsafe { ffi::PyInterpreterState_Head() as usize == MAIN_INTERPRETER.load(Relaxed) }
}

/// The pool at the head of size class `class`'s used list (its header when the list is
/// empty; null when the fast paths are off).
///
/// # Safety
/// [`discover`] ran; the caller holds the GIL.
#[inline(always)]
unsafe fn head(class: usize) -> usize {
    // SAFETY: `usedpools` (or NO_POOLS) has 2 * CLASSES pointers, and class < CLASSES.
    unsafe { std::ptr::read((USED_POOLS.load(Relaxed) + class * 16) as *const usize) }
}

/// Takes a block of size class `class` (`block` bytes) as pymalloc would, when the pool at
/// the head of the class's used list is one of ours and keeps a block without any list
/// changing: from its free list, or else its untouched space (`pymalloc_pool_extend`). The
/// block, or `None` when pymalloc must serve this request (no pool of ours at the head, or
/// the pool is about to fill up and leave the list).
///
/// # Safety
/// [`discover`] returned true; the caller holds the GIL.
#[inline(always)]
pub(crate) unsafe fn take(class: usize, block: usize) -> Option<usize> {
    // SAFETY: the caller's contract.
    let pool = unsafe { head(class) };
    if !arena::contains(pool) {
        return None;
    }
    // SAFETY: a pool of ours on a used list: its header is initialised, its free list holds at
    // least one block (a used pool is never full), and each free block's first word links the
    // next free block or is null. Everything written is what pymalloc itself would write, with
    // the GIL held as pymalloc runs.
    unsafe {
        let freeblock = (pool + POOL_FREEBLOCK) as *mut usize;
        let bp = *freeblock;
        let mut next = *(bp as *const usize);
        if next == 0 {
            let nextoffset = (pool + POOL_NEXTOFFSET) as *mut u32;
            let offset = *nextoffset;
            if offset > *((pool + POOL_MAXNEXTOFFSET) as *const u32) {
                return None;
            }
            next = pool + offset as usize;
            *nextoffset = offset + block as u32;
            *(next as *mut usize) = 0;
        }
        *freeblock = next;
        *((pool + POOL_COUNT) as *mut u32) += 1;
        Some(bp)
    }
}

/// Puts the block at `p`, in `pool` (one of ours), back on the pool's free list as pymalloc
/// would, when that is all pymalloc would do: true if done; false when pymalloc must free it
/// (the pool was full, so it rejoins a used list, or is left empty, so it joins its arena's
/// free pools).
///
/// # Safety
/// `p` is a live block of `pool`, one of our arenas' pools; the caller holds the GIL.
#[inline(always)]
pub(crate) unsafe fn give_back(p: usize, pool: usize) -> bool {
    // SAFETY: as in `take`: the pool header is initialised, `p` is a live block of it, and
    // what is written is what pymalloc's free writes.
    unsafe {
        let freeblock = (pool + POOL_FREEBLOCK) as *mut usize;
        let count = (pool + POOL_COUNT) as *mut u32;
        let last = *freeblock;
        if last == 0 {
            return false;
        }
        let blocks = *count;
        if blocks < 2 {
            return false;
        }
        *(p as *mut usize) = last;
        *freeblock = p;
        *count = blocks - 1;
        true
    }
}

/// Finds `usedpools` with pymalloc's own `malloc` and `free` (`pymalloc`, the object domain's
/// plain allocator). True when found and checked; the plain hooks then use it.
///
/// # Safety
/// The caller holds the GIL; `pymalloc` is plain pymalloc, with the pool size `pool_mask`
/// masks to.
pub(crate) unsafe fn discover(pymalloc: &PyMemAllocatorEx, pool_mask: usize) -> bool {
    let (Some(malloc), Some(free)) = (pymalloc.malloc, pymalloc.free) else {
        return false;
    };
    let mut blocks = [0usize; CLASSES];
    for (class, slot) in blocks.iter_mut().enumerate() {
        // SAFETY: pymalloc with its own context; GIL held.
        *slot = unsafe { malloc(pymalloc.ctx, (class + 1) * 16) } as usize;
    }
    // Every block must be in our arenas, so that its pool header is surely mapped: pymalloc
    // hands a request to `malloc` when no arena can be had (and always, when built with
    // Valgrind support and run under Valgrind). The ballast has moved every class to our
    // arenas before this runs.
    let serving = blocks.iter().all(|&p| arena::ours(p));
    // SAFETY: each block lies in one of our arenas' pools, so each pool header is mapped.
    let found = serving
        .then(|| unsafe { find(&blocks, pool_mask) })
        .flatten();
    for p in blocks.into_iter().filter(|&p| p != 0) {
        // SAFETY: each block came from this allocator and is freed once.
        unsafe { free(pymalloc.ctx, p as *mut c_void) };
    }
    USED_POOLS.store(found.unwrap_or(NO_POOLS.as_ptr() as usize), Relaxed);
    // SAFETY: GIL held; the main interpreter lives as long as the process.
    MAIN_INTERPRETER.store(unsafe { ffi::PyInterpreterState_Main() } as usize, Relaxed);
    found.is_some()
}

/// The address of `usedpools` that the pools of `blocks` (one block per class, just served)
/// agree on, checked against the lists' heads.
///
/// Each block's pool was at the head of its class's list when it served the block, so its
/// `prevpool` is the list's header, 16 bytes before `usedpools[2c]`. The pool is still the
/// head unless that block filled it (pymalloc then unlinked it: the head is another pool, or
/// the header when no other pool of the class is in use).
///
/// # Safety
/// Each block is a live pymalloc block, one per class.
unsafe fn find(blocks: &[usize; CLASSES], pool_mask: usize) -> Option<usize> {
    let pool_of = |class: usize| blocks[class] & pool_mask;
    // SAFETY: the caller's contract: the pool headers are mapped.
    let header_of = |class: usize| unsafe { *((pool_of(class) + POOL_PREVPOOL) as *const usize) };
    let base = header_of(0).wrapping_add(16);
    let agree = (0..CLASSES).all(|class| {
        // SAFETY: as above.
        let szidx = unsafe { *((pool_of(class) + POOL_SZIDX) as *const u32) };
        szidx as usize == class && header_of(class) == header_at(base, class)
    });
    // All 32 pools name the same array: its words are readable.
    let heads_ok = agree
        && (0..CLASSES).all(|class| {
            let pool = pool_of(class);
            // SAFETY: `base` is `usedpools`, 2 * CLASSES words at least; the header is mapped.
            let (head, full) = unsafe {
                (
                    *(base.wrapping_add(class * 16) as *const usize),
                    *((pool + POOL_FREEBLOCK) as *const usize) == 0,
                )
            };
            head == pool || (full && (head & !pool_mask == 0 || head == header_at(base, class)))
        });
    heads_ok.then_some(base)
}

/// Where class `class`'s list header lies if `usedpools` is at `base` (wrapping: `base` may be
/// wrong until checked).
fn header_at(base: usize, class: usize) -> usize {
    base.wrapping_add(class * 16).wrapping_sub(16)
}
