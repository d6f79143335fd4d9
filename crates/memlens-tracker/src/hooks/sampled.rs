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

/// Sampled blocks still live: address -> [`entry`] (size, and whether recorded).
static SET: Mutex<AddrMap<u64>> =
    Mutex::new(AddrMap::with_hasher(std::hash::BuildHasherDefault::new()));

/// [`SET`] held across a `fork` (see `crate::fork`): no other thread is inside it then, so the
/// child finds it unlocked and whole.
pub(crate) struct ForkHold(#[allow(dead_code)] std::sync::MutexGuard<'static, AddrMap<u64>>);

/// Takes [`SET`] for a `fork`; dropping the hold releases it (in the parent and the child).
pub(crate) fn hold_for_fork() -> ForkHold {
    ForkHold(crate::recorder::lock(&SET))
}

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

/// A set entry: the block's size, whether its allocation was recorded (its free is then
/// recorded too) and whether the plain Python hooks served it from `malloc` (see
/// `super::plain`).
pub(crate) fn entry(size: u64, recorded: bool, served: bool) -> u64 {
    size << 2 | u64::from(served) << 1 | u64::from(recorded)
}

/// Size of the block of a set entry.
pub(crate) fn entry_size(entry: u64) -> u64 {
    entry >> 2
}

/// True when the plain Python hooks served the block of a set entry.
pub(crate) fn entry_served(entry: u64) -> bool {
    entry & 2 != 0
}

/// True when the allocation of a set entry's block was recorded.
pub(crate) fn entry_recorded(entry: u64) -> bool {
    entry & 1 != 0
}

/// Remembers the sampled block at `addr` (sampling mode).
pub(crate) fn insert(addr: usize, entry: u64) {
    let mut set = crate::recorder::lock(&SET);
    if set.insert(addr as u64, entry).is_none() {
        let counter = slot(addr);
        let n = counter.load(Relaxed);
        if n < SATURATED {
            counter.store(n + 1, Relaxed);
        }
    }
}

/// Forgets `addr`; its entry if it was a sampled block.
#[cold]
pub(crate) fn remove(addr: usize) -> Option<u64> {
    remove_if(addr, |_| true)
}

/// Forgets `addr` if it was a sampled block whose entry passes `take`; that entry.
#[cold]
pub(crate) fn remove_if(addr: usize, take: impl FnOnce(u64) -> bool) -> Option<u64> {
    let mut set = crate::recorder::lock(&SET);
    let entry = *set.get(&(addr as u64))?;
    if !take(entry) {
        return None;
    }
    set.remove(&(addr as u64));
    let counter = slot(addr);
    let n = counter.load(Relaxed);
    if n < SATURATED {
        counter.store(n - 1, Relaxed);
    }
    Some(entry)
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
        insert(a, entry(48, true, false));
        assert!(maybe(a));
        assert_eq!(remove(b), None, "never sampled");
        assert_eq!(
            remove_if(a, entry_served),
            None,
            "not served by the plain hooks"
        );
        let e = remove(a).expect("sampled");
        assert_eq!(
            (entry_size(e), entry_recorded(e), entry_served(e)),
            (48, true, false)
        );
        assert_eq!(remove(a), None, "forgotten after its free");
        assert!(!maybe(a));
        reset(true);
        assert!(maybe(a) && maybe(b), "exact mode records every free");
        reset(false);
    }
}
