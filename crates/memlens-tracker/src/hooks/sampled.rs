//! Which live blocks were recorded, so that their frees are recorded too.
//!
//! In sampling mode a free is recorded only if its block was sampled, and almost none are: the
//! free path must answer "no" in a handful of instructions. A filter of counters indexed by the
//! block's address answers it with one load; only a nonzero counter (a sampled block, or
//! another one hashing to the same slot) takes the lock and looks in the set. Counting (not
//! a Bloom bit) matters: pymalloc hands a freed address straight back, so a stale mark on a
//! hot address would send every later free of it to the slow path.
//!
//! In exact mode every free is recorded: every counter is set to its saturated value, which
//! is never decremented, so the same one-load test always says "maybe" at no extra cost.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

use memlens_format::AddrMap;

/// 16 KiB of counters: small enough to stay in cache on the free path.
const FILTER_SLOTS: usize = 1 << 14;
/// A counter at this value stays there (a false positive from then on, never a miss).
const SATURATED: u8 = u8::MAX;

/// How many sampled live blocks map to each slot: zero means "certainly not sampled". Changed
/// only under the `SET` lock; the free path reads it without a lock.
static FILTER: [AtomicU8; FILTER_SLOTS] = [const { AtomicU8::new(0) }; FILTER_SLOTS];

/// Addresses of sampled blocks still live.
static SET: Mutex<AddrMap<()>> =
    Mutex::new(AddrMap::with_hasher(std::hash::BuildHasherDefault::new()));

/// The filter slot of `addr`: its 16-byte granule modulo the filter size. Sampled blocks are
/// few and far apart (one per `--sample-rate` bytes on average), so plain address bits spread
/// them as well as a hash would, for two instructions less on every free.
#[inline(always)]
fn slot(addr: usize) -> &'static AtomicU8 {
    &FILTER[(addr >> 4) & (FILTER_SLOTS - 1)]
}

/// False when the free of `addr` certainly needs no record.
#[inline(always)]
pub(crate) fn maybe(addr: usize) -> bool {
    slot(addr).load(Relaxed) != 0
}

/// [`maybe`] for a block at `offset` into our arena range: the range starts at a multiple of
/// the filter's address window, so the slot is the address's own (one instruction less).
#[inline(always)]
pub(crate) fn maybe_at_arena_offset(offset: usize) -> bool {
    const { assert!(super::arena::BASE_ALIGN.is_multiple_of(FILTER_SLOTS << 4)) };
    slot(offset).load(Relaxed) != 0
}

/// Remembers that the block at `addr` was recorded (sampling mode).
pub(crate) fn insert(addr: usize) {
    let mut set = crate::recorder::lock(&SET);
    if set.insert(addr as u64, ()).is_none() {
        let counter = slot(addr);
        let n = counter.load(Relaxed);
        if n < SATURATED {
            counter.store(n + 1, Relaxed);
        }
    }
}

/// Forgets `addr`; true if it was a recorded block (its free is then recorded).
#[cold]
pub(crate) fn remove(addr: usize) -> bool {
    let mut set = crate::recorder::lock(&SET);
    if set.remove(&(addr as u64)).is_none() {
        return false;
    }
    let counter = slot(addr);
    let n = counter.load(Relaxed);
    if n < SATURATED {
        counter.store(n - 1, Relaxed);
    }
    true
}

/// Starts a session: nothing sampled yet, or (exact mode) every free recorded.
pub(crate) fn reset(exact: bool) {
    let mut set = crate::recorder::lock(&SET);
    set.clear();
    set.shrink_to(0);
    let fill = if exact { SATURATED } else { 0 };
    for counter in &FILTER {
        counter.store(fill, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sampled_blocks_need_a_record() {
        reset(false);
        let (a, b) = (0x7f00_0000_1000usize, 0x7f00_0000_1010usize);
        assert!(!maybe(a));
        insert(a);
        assert!(maybe(a));
        assert!(!remove(b), "never sampled");
        assert!(remove(a));
        assert!(!remove(a), "forgotten after its free");
        assert!(!maybe(a));
        reset(true);
        assert!(maybe(a) && maybe(b), "exact mode records every free");
        reset(false);
    }
}
