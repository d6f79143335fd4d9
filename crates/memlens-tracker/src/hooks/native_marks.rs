//! Which `malloc` blocks the native hooks counted, so that a free subtracts only those.
//!
//! The hooks size blocks with `malloc_usable_size` and keep no table of sizes, but without a
//! mark a free cannot tell a block allocated while tracking from one allocated before: a
//! program that frees 80 MB allocated before `memlens.track()` would take the live total 80 MB
//! below zero, and the next 80 MB it allocates would never show. One bit per 16-byte granule
//! (glibc's `malloc` alignment) says "counted": set when a block is counted, tested and
//! cleared when it is freed.
//!
//! The same two-level table as [`super::old_pools`] (a top level with one pointer per 16 MiB
//! of address space, reserved without backing, and a 128 KiB bitmap per 16 MiB chunk, mapped
//! when its first block is marked), but native hooks run on any thread without the GIL: bits
//! change with atomic read-modify-writes, a new chunk is published under a lock, and chunks
//! are never unmapped while the process lives (a hook on another thread may still hold one);
//! a new session zeroes them instead.

use std::ffi::c_void;
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use super::old_pools::{CHUNK_BYTES, CHUNK_SHIFT, CHUNK_WORDS, TOP_BYTES, TOP_ENTRIES};

/// At most this many chunks get a bitmap (64 GiB of address space holding `malloc` blocks;
/// bitmap pages are backed only where bits are set, at most 1/128 of the blocks' bytes):
/// past it, blocks there are neither counted nor recorded.
const MAX_CHUNKS: usize = 4096;

/// The top level: `TOP_ENTRIES` chunk addresses (0: none yet), mapped once per process.
static TOP: AtomicPtr<AtomicUsize> = AtomicPtr::new(std::ptr::null_mut());

/// Chunks mapped so far (top-level indices), kept to zero them for a new session.
static CHUNKS: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// [`CHUNKS`] held across a `fork` (see `crate::fork`); dropping it releases the lock.
pub(crate) struct ForkHold(#[allow(dead_code)] std::sync::MutexGuard<'static, Vec<usize>>);

/// Takes [`CHUNKS`] for a `fork`.
pub(crate) fn hold_for_fork() -> ForkHold {
    ForkHold(crate::recorder::lock(&CHUNKS))
}

/// The word holding `p`'s bit and the bit, or `None` when `p`'s chunk has no bitmap (and
/// `create` is false or none can be made).
#[inline(always)]
fn word_of(p: usize, create: bool) -> Option<(&'static AtomicU64, u64)> {
    let index = p >> CHUNK_SHIFT;
    let top = TOP.load(Ordering::Acquire);
    if index >= TOP_ENTRIES || top.is_null() {
        return None;
    }
    // SAFETY: `top` maps TOP_ENTRIES words (set once, never unmapped) and index is below it.
    let entry = unsafe { &*top.add(index) };
    let mut chunk = entry.load(Ordering::Acquire) as *const AtomicU64;
    if chunk.is_null() {
        if !create {
            return None;
        }
        chunk = new_chunk(entry, index)?;
    }
    let word = (p >> 10) & (CHUNK_WORDS - 1);
    // SAFETY: a published chunk maps CHUNK_WORDS words for the life of the process and `word`
    // is masked into range.
    Some((unsafe { &*chunk.add(word) }, 1 << ((p >> 4) & 63)))
}

#[cold]
#[inline(never)]
fn new_chunk(entry: &AtomicUsize, index: usize) -> Option<*const AtomicU64> {
    let mut chunks = crate::recorder::lock(&CHUNKS);
    // Another thread may have made it while this one waited.
    let made = entry.load(Ordering::Acquire);
    if made != 0 {
        return Some(made as *const AtomicU64);
    }
    if chunks.len() >= MAX_CHUNKS {
        return None;
    }
    let chunk = super::map_zeroed(CHUNK_BYTES);
    if chunk.is_null() {
        return None;
    }
    chunks.push(index);
    entry.store(chunk as usize, Ordering::Release);
    Some(chunk as *const AtomicU64)
}

/// Marks the block at `p` as counted; false if it cannot be (then it is not counted).
#[inline(always)]
pub(crate) fn mark(p: usize) -> bool {
    match word_of(p, true) {
        Some((word, bit)) => {
            word.fetch_or(bit, Ordering::Relaxed);
            true
        }
        None => false,
    }
}

/// If the block at `p` was marked, unmarks it and returns true.
#[inline(always)]
pub(crate) fn unmark(p: usize) -> bool {
    match word_of(p, false) {
        Some((word, bit)) => word.fetch_and(!bit, Ordering::Relaxed) & bit != 0,
        None => false,
    }
}

/// Starts afresh for a new tracking session: the top level is mapped (once) and every mark
/// of an earlier session is dropped. False when the table cannot be mapped (then no native
/// block is counted).
pub(crate) fn reset() -> bool {
    let chunks = crate::recorder::lock(&CHUNKS);
    let mut top = TOP.load(Ordering::Acquire);
    if top.is_null() {
        top = super::map_zeroed(TOP_BYTES) as *mut AtomicUsize;
        if top.is_null() {
            return false;
        }
        TOP.store(top, Ordering::Release);
    }
    for &index in chunks.iter() {
        // SAFETY: index is in range; its entry was published by `new_chunk`.
        let chunk = unsafe { &*top.add(index) }.load(Ordering::Acquire);
        // SAFETY: a chunk mapping of CHUNK_BYTES, private and anonymous: MADV_DONTNEED drops
        // its pages, which read as zeros afterwards. The mapping itself stays (a hook of the
        // last session that is still running on another thread may touch it).
        unsafe { libc::madvise(chunk as *mut c_void, CHUNK_BYTES, libc::MADV_DONTNEED) };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_per_block_cleared_once_kept_across_threads_and_dropped_by_a_new_session() {
        assert!(reset());
        let a = 0x7f12_3456_7890usize & !15;
        let b = a + 16;
        assert!(!unmark(a));
        assert!(mark(a));
        assert!(!unmark(b), "a neighbour is not marked");
        assert!(unmark(a));
        assert!(!unmark(a), "a mark is cleared by the first unmark");
        assert!(mark(0x5555_0000_0000));
        assert!(mark(a));
        assert!(
            !mark(1 << super::super::old_pools::ADDRESS_BITS),
            "beyond the table"
        );
        assert!(reset());
        assert!(
            !unmark(0x5555_0000_0000),
            "a new session starts without marks"
        );
        assert!(!unmark(a));

        // Threads marking blocks of one chunk at once all keep their marks.
        let base = 0x6000_0000_0000usize;
        std::thread::scope(|s| {
            for t in 0..8 {
                s.spawn(move || {
                    for i in 0..10_000 {
                        assert!(mark(base + (i * 8 + t) * 16));
                    }
                });
            }
        });
        for i in 0..80_000 {
            assert!(unmark(base + i * 16), "block {i}");
        }
    }
}
