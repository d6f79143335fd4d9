//! Small blocks that pymalloc serves from arenas created before tracking started.
//!
//! Those arenas are not in our reserved range, so their blocks need a table: for each old pool
//! that served a block while tracking, a bitmap of the blocks we counted (16-byte granules).
//! Frees of pointers outside our range check the table; a block allocated before tracking
//! started was never marked and is ignored, so the totals never go below where they began.
//! Only allocations that land in old pools, and frees of pointers outside our range, pay for
//! the lookup; both become rare once the old arenas' free space is used up.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Largest request pymalloc serves itself (`SMALL_REQUEST_THRESHOLD`, 512 in 3.9-3.13).
pub(crate) const SMALL_REQUEST_THRESHOLD: usize = 512;
const MAX_GRANULES: usize = 16384 / 16;

#[derive(Default)]
struct PoolHasher(u64);

impl Hasher for PoolHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("pool addresses are hashed as u64")
    }
    fn write_usize(&mut self, v: usize) {
        self.0 = (v as u64 >> 12).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Bitmap = [u64; MAX_GRANULES / 64];

static POOLS: Mutex<Option<HashMap<usize, Box<Bitmap>, BuildHasherDefault<PoolHasher>>>> =
    Mutex::new(None);
/// False when pymalloc is not the object allocator (PYTHONMALLOC=malloc), so small requests
/// outside our range are malloc blocks that the native hooks count.
pub(crate) static ENABLED: AtomicBool = AtomicBool::new(false);

fn locate(p: usize, pool_size: usize) -> (usize, usize) {
    let pool = p & !(pool_size - 1);
    (pool, (p - pool) / 16)
}

/// Marks `p` (a small block outside our range) as counted.
pub(crate) fn mark(p: usize, pool_size: usize) {
    let (pool, granule) = locate(p, pool_size);
    if granule >= MAX_GRANULES {
        return;
    }
    let mut pools = crate::recorder::lock(&POOLS);
    let map = pools.get_or_insert_with(HashMap::default);
    let bits = map
        .entry(pool)
        .or_insert_with(|| Box::new([0; MAX_GRANULES / 64]));
    bits[granule / 64] |= 1 << (granule % 64);
}

/// If `p` was marked, unmarks it and returns true.
pub(crate) fn unmark(p: usize, pool_size: usize) -> bool {
    let (pool, granule) = locate(p, pool_size);
    if granule >= MAX_GRANULES {
        return false;
    }
    let mut pools = crate::recorder::lock(&POOLS);
    let Some(bits) = pools.as_mut().and_then(|m| m.get_mut(&pool)) else {
        return false;
    };
    let mask = 1u64 << (granule % 64);
    if bits[granule / 64] & mask == 0 {
        return false;
    }
    bits[granule / 64] &= !mask;
    true
}

/// Forgets everything (a new tracking session starts from zero).
pub(crate) fn reset(pymalloc_in_use: bool) {
    *crate::recorder::lock(&POOLS) = None;
    ENABLED.store(pymalloc_in_use, Relaxed);
}

/// True when the table is in use.
#[inline(always)]
pub(crate) fn enabled() -> bool {
    ENABLED.load(Relaxed)
}
