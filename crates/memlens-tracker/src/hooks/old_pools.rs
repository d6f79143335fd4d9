//! Small blocks that pymalloc serves from arenas created before tracking started.
//!
//! Those arenas are not in our reserved range, so the blocks we count there need a mark: one
//! bit per 16-byte granule, set when the hook counts a block and cleared when it is freed.
//! Frees of pointers outside our range test the bit; a block allocated before tracking started
//! was never marked and is ignored, so the totals never go below where they began, and a set
//! bit always names a live pymalloc block (so its pool header may be read).
//!
//! pymalloc prefers pools it already uses, so a loop that churns objects can stay in old pools
//! for the whole run: this is a hot path. The marks live in a two-level table indexed by the
//! address itself (no hashing, no probing): a top level with one pointer per 16 MiB of address
//! space, reserved without backing (untouched entries read as zero pages), and a 128 KiB
//! bitmap per 16 MiB chunk that holds an old arena, mapped when its first block is marked.
//! A lookup is two dependent loads. No general-purpose map would do this in so few
//! instructions, hence the hand-written table.
//!
//! Only the Python-domain hooks, which run with the GIL held, and `reset` (start of tracking,
//! GIL held) touch it, so it needs no lock.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::Relaxed};

/// Largest request pymalloc serves itself (`SMALL_REQUEST_THRESHOLD`, 512 in 3.9-3.13).
pub(crate) const SMALL_REQUEST_THRESHOLD: usize = 512;

/// Address bits covered: user space on x86-64 and aarch64 Linux (48-bit virtual addresses).
pub(crate) const ADDRESS_BITS: u32 = 48;
/// Each chunk covers 16 MiB.
pub(crate) const CHUNK_SHIFT: u32 = 24;
pub(crate) const TOP_ENTRIES: usize = 1 << (ADDRESS_BITS - CHUNK_SHIFT);
pub(crate) const TOP_BYTES: usize = TOP_ENTRIES * std::mem::size_of::<usize>();
/// One bit per 16-byte granule of a chunk.
pub(crate) const CHUNK_WORDS: usize = (1 << CHUNK_SHIFT) / 16 / 64;
pub(crate) const CHUNK_BYTES: usize = CHUNK_WORDS * 8;
/// At most this many chunks get a bitmap (512 MiB of old arenas; 64 MiB of bitmaps at most,
/// mapped lazily by the kernel as bits are set): past it, blocks there are not counted.
const MAX_CHUNKS: usize = 512;

/// The top level: `TOP_ENTRIES` chunk pointers, mapped once per process.
static TOP: AtomicPtr<usize> = AtomicPtr::new(std::ptr::null_mut());
/// `TOP_ENTRIES` while the top level is mapped and the hooks count, 0 otherwise: the hot
/// path's bounds check doubles as the "is there a table, are we counting" check.
static TOP_LIMIT: AtomicUsize = AtomicUsize::new(0);
/// False when pymalloc is not the object allocator (PYTHONMALLOC=malloc): then small blocks
/// outside our range are malloc's, which the native hooks count, and nothing is marked.
static MARKING: AtomicBool = AtomicBool::new(false);
static CHUNKS: AtomicUsize = AtomicUsize::new(0);
/// Top-level indices of the bitmaps mapped so far (the first `CHUNKS`), to unmap them on
/// reset.
static CHUNK_LIST: [AtomicUsize; MAX_CHUNKS] = [const { AtomicUsize::new(0) }; MAX_CHUNKS];

/// The word holding `p`'s bit and the bit, or `None` when `p`'s chunk has no bitmap (and
/// `create` is false or no bitmap can be made).
#[inline(always)]
fn word_of(p: usize, create: bool) -> Option<(*mut u64, u64)> {
    let index = p >> CHUNK_SHIFT;
    if index >= TOP_LIMIT.load(Relaxed) {
        return None;
    }
    // SAFETY: a nonzero limit means `TOP` maps TOP_ENTRIES words, and index is below it.
    let entry = unsafe { TOP.load(Relaxed).add(index) };
    // SAFETY: as above; the GIL serialises every access.
    let mut chunk = unsafe { *entry } as *mut u64;
    if chunk.is_null() {
        if !create {
            return None;
        }
        chunk = new_chunk(index)?;
    }
    let word = (p >> 10) & (CHUNK_WORDS - 1);
    // SAFETY: the chunk maps CHUNK_WORDS words and `word` is masked into range.
    Some((unsafe { chunk.add(word) }, 1 << ((p >> 4) & 63)))
}

#[cold]
fn new_chunk(index: usize) -> Option<*mut u64> {
    let n = CHUNKS.load(Relaxed);
    if n >= MAX_CHUNKS || !MARKING.load(Relaxed) {
        return None;
    }
    let chunk = super::map_zeroed(CHUNK_BYTES) as *mut u64;
    if chunk.is_null() {
        return None;
    }
    CHUNK_LIST[n].store(index, Relaxed);
    CHUNKS.store(n + 1, Relaxed);
    // SAFETY: index is in bounds of the mapped top level (see `word_of`); GIL held.
    unsafe { *TOP.load(Relaxed).add(index) = chunk as usize };
    Some(chunk)
}

/// Turns lookups on (if the top level is mapped) or off.
pub(crate) fn set_counting(on: bool) {
    let mapped = !TOP.load(Relaxed).is_null();
    TOP_LIMIT.store(if on && mapped { TOP_ENTRIES } else { 0 }, Relaxed);
}

/// Marks `p` (a small pymalloc block outside our range) as counted; false if it cannot be.
///
/// # Safety
/// The caller holds the GIL.
#[inline(always)]
pub(crate) unsafe fn mark(p: usize) -> bool {
    match word_of(p, true) {
        Some((word, bit)) => {
            // SAFETY: a word of a live chunk; GIL held.
            unsafe { *word |= bit };
            true
        }
        None => false,
    }
}

/// If `p` was marked, unmarks it and returns true.
///
/// # Safety
/// The caller holds the GIL.
#[inline(always)]
pub(crate) unsafe fn unmark(p: usize) -> bool {
    let Some((word, bit)) = word_of(p, false) else {
        return false;
    };
    // SAFETY: a word of a live chunk; GIL held.
    unsafe {
        let w = *word;
        *word = w & !bit;
        w & bit != 0
    }
}

/// Starts afresh for a new tracking session: every mark is dropped. With `pymalloc_in_use`
/// false (PYTHONMALLOC=malloc) nothing outside our range is marked.
///
/// # Safety
/// The caller holds the GIL, and no hook is counting (tracking is not active).
pub(crate) unsafe fn reset(pymalloc_in_use: bool) {
    let top = TOP.load(Relaxed);
    for index in &CHUNK_LIST[..CHUNKS.load(Relaxed)] {
        // SAFETY: chunks exist only once the top level is mapped; the entry was set by
        // `new_chunk` to a mapping of CHUNK_BYTES, and is cleared before it is unmapped.
        unsafe {
            let entry = top.add(index.load(Relaxed));
            let chunk = std::mem::replace(&mut *entry, 0);
            libc::munmap(chunk as *mut c_void, CHUNK_BYTES);
        }
    }
    CHUNKS.store(0, Relaxed);
    if top.is_null() {
        let top = super::map_zeroed(TOP_BYTES) as *mut usize;
        TOP.store(top, Relaxed);
    }
    MARKING.store(pymalloc_in_use, Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_per_block_and_cleared_once() {
        // SAFETY: the unit test is the only user of the table (no interpreter here).
        unsafe {
            reset(true);
            set_counting(true);
            let a = 0x7f12_3456_7890usize & !15;
            let b = a + 16;
            assert!(!unmark(a));
            assert!(mark(a));
            assert!(!unmark(b), "a neighbour is not marked");
            assert!(unmark(a));
            assert!(!unmark(a), "a mark is cleared by the first unmark");
            // Far-apart chunks get their own bitmaps.
            assert!(mark(0x5555_0000_0000));
            assert!(unmark(0x5555_0000_0000));
            assert!(!mark(1 << ADDRESS_BITS), "beyond the table");
            reset(false);
            assert!(!mark(a), "nothing is marked without pymalloc");
            reset(true);
            assert!(
                !unmark(0x5555_0000_0000),
                "a new session starts without marks"
            );
        }
    }
}
