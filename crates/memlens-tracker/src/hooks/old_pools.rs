//! Small blocks that pymalloc serves from arenas created before tracking started.
//!
//! Those arenas are not in our reserved range, so their blocks need a table: for each old pool
//! that served a block while tracking, a bitmap of the blocks we counted (16-byte granules).
//! Frees of pointers outside our range check the table; a block allocated before tracking
//! started was never marked and is ignored, so the totals never go below where they began.
//!
//! pymalloc prefers pools it already uses, so a loop that churns objects can stay in old pools
//! for the whole run: this is a hot path. It is touched only from the Python-domain hooks, which
//! run with the GIL held, so it needs no lock; a one-entry cache of the last pool makes the
//! common case a compare and a bit operation.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Largest request pymalloc serves itself (`SMALL_REQUEST_THRESHOLD`, 512 in 3.9-3.13).
pub(crate) const SMALL_REQUEST_THRESHOLD: usize = 512;
const MAX_GRANULES: usize = 16384 / 16;
const WORDS: usize = MAX_GRANULES / 64;
/// Open-addressing table capacity: old pools are bounded by the arenas that existed at start.
const SLOTS: usize = 1 << 14;

/// Recently used pools, direct-mapped by pool address: churn cycles through a few size
/// classes, so a one-entry cache would thrash.
const CACHE: usize = 64;

struct Table {
    /// (pool address, bitmap index) per slot; address 0 = empty.
    slots: Vec<(usize, u32)>,
    /// Boxed so that the cache can hold stable pointers to them while the Vec grows.
    #[allow(clippy::vec_box)]
    bitmaps: Vec<Box<[u64; WORDS]>>,
    /// (pool address, its bitmap) for recently used pools.
    cache: [(usize, *mut [u64; WORDS]); CACHE],
}

struct Shared(UnsafeCell<Option<Table>>);

// SAFETY: accessed only from the Python-domain allocator hooks and from `reset` (start of
// tracking), all of which run with the GIL held, so never from two threads at once.
unsafe impl Sync for Shared {}

static TABLE: Shared = Shared(UnsafeCell::new(None));

/// False when pymalloc is not the object allocator (PYTHONMALLOC=malloc), so small requests
/// outside our range are malloc blocks that the native hooks count.
pub(crate) static ENABLED: AtomicBool = AtomicBool::new(false);

/// # Safety
/// The caller holds the GIL (see [`Shared`]).
#[allow(clippy::mut_from_ref)]
unsafe fn table() -> &'static mut Option<Table> {
    // SAFETY: exclusive by the GIL.
    unsafe { &mut *TABLE.0.get() }
}

fn slot_of(pool: usize) -> usize {
    ((pool as u64 >> 12).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 50) as usize & (SLOTS - 1)
}

impl Table {
    fn new() -> Self {
        Table {
            slots: vec![(0, 0); SLOTS],
            bitmaps: Vec::new(),
            cache: [(0, std::ptr::null_mut()); CACHE],
        }
    }

    /// The bitmap of `pool`, created when `create` is set (None when the table is full).
    #[inline(always)]
    fn bitmap(&mut self, pool: usize, create: bool) -> Option<&mut [u64; WORDS]> {
        let line = ((pool >> 12) ^ (pool >> 18)) % CACHE;
        let (cached, bits) = self.cache[line];
        if cached == pool && !bits.is_null() {
            // SAFETY: cached pointers point into boxes owned by `bitmaps`, never freed or moved
            // while the table lives; `&mut self` makes this the only reference.
            return Some(unsafe { &mut *bits });
        }
        let index = self.find(pool, create)?;
        let bits: *mut [u64; WORDS] = &mut *self.bitmaps[index as usize];
        self.cache[line] = (pool, bits);
        // SAFETY: as above.
        Some(unsafe { &mut *bits })
    }

    #[cold]
    fn find(&mut self, pool: usize, create: bool) -> Option<u32> {
        let mut slot = slot_of(pool);
        for _ in 0..SLOTS {
            let (key, index) = self.slots[slot];
            if key == pool {
                return Some(index);
            }
            if key == 0 {
                if !create || self.bitmaps.len() >= SLOTS * 3 / 4 {
                    return None;
                }
                let index = self.bitmaps.len() as u32;
                self.slots[slot] = (pool, index);
                self.bitmaps.push(Box::new([0; WORDS]));
                return Some(index);
            }
            slot = (slot + 1) & (SLOTS - 1);
        }
        None
    }
}

/// Marks `p` (a small block outside our range) as counted; false if the table is full.
///
/// # Safety
/// The caller holds the GIL.
pub(crate) unsafe fn mark(p: usize, pool_size: usize) -> bool {
    let pool = p & !(pool_size - 1);
    let granule = (p - pool) / 16;
    // SAFETY: GIL held by the caller.
    let Some(table) = (unsafe { table() }).as_mut() else {
        return false;
    };
    if granule >= MAX_GRANULES {
        return false;
    }
    match table.bitmap(pool, true) {
        Some(bits) => {
            bits[granule / 64] |= 1 << (granule % 64);
            true
        }
        None => false,
    }
}

/// If `p` was marked, unmarks it and returns true.
///
/// # Safety
/// The caller holds the GIL.
pub(crate) unsafe fn unmark(p: usize, pool_size: usize) -> bool {
    let pool = p & !(pool_size - 1);
    let granule = (p - pool) / 16;
    // SAFETY: GIL held by the caller.
    let Some(table) = (unsafe { table() }).as_mut() else {
        return false;
    };
    if granule >= MAX_GRANULES {
        return false;
    }
    let Some(bits) = table.bitmap(pool, false) else {
        return false;
    };
    let mask = 1u64 << (granule % 64);
    let hit = bits[granule / 64] & mask != 0;
    bits[granule / 64] &= !mask;
    hit
}

/// Starts afresh for a new tracking session.
///
/// # Safety
/// The caller holds the GIL.
pub(crate) unsafe fn reset(pymalloc_in_use: bool) {
    // SAFETY: GIL held by the caller.
    unsafe { *table() = Some(Table::new()) };
    ENABLED.store(pymalloc_in_use, Relaxed);
}

/// True when the table is in use.
#[inline(always)]
pub(crate) fn enabled() -> bool {
    ENABLED.load(Relaxed)
}
