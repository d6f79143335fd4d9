//! The live set: block address -> [`Block`], laid out for memory locality.
//!
//! The replay's cost is cache misses in this table, and nearby blocks are allocated and freed
//! together (pymalloc carves pools sequentially; programs free what they built in about the
//! order they built it). So 16-byte-aligned addresses (all of pymalloc's and glibc's blocks)
//! live in pages of 64 16-byte slots, one page per KiB of address space, found through a small map of
//! pages with a 16-entry page cache: consecutive events mostly touch a recently used page.
//! Unaligned addresses (rare: some `mmap` users) go to a plain map. A page costs 1 KiB for each
//! KiB of address space that ever held a live block, whatever its size.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A live block.
#[derive(Clone, Copy)]
pub(super) struct Block {
    pub(super) size: u64,
    /// The slot index; the top bit is set when the block was allocated in the leak window.
    pub(super) slot_and_window: u32,
    /// Index into `Replay::tick_times`: the counter sample before the allocation.
    pub(super) tick: u32,
    /// The allocation-event counter (wrapping) just after this block's allocation.
    pub(super) seq: u32,
}

pub(super) const IN_WINDOW: u32 = 1 << 31;

/// A block as stored: 16 bytes (the table's size is what the replay's speed depends on).
/// Sizes of 4 GiB and more are kept aside in `LiveBlocks::big`.
#[derive(Clone, Copy)]
struct Packed {
    /// The size, or `u32::MAX` when it is in `big`.
    size: u32,
    slot_and_window: u32,
    /// `u32::MAX` marks an empty page slot.
    tick: u32,
    seq: u32,
}

const EMPTY: Packed = Packed {
    size: 0,
    slot_and_window: 0,
    tick: u32::MAX,
    seq: 0,
};

impl Block {
    pub(super) fn slot(&self) -> u32 {
        self.slot_and_window & !IN_WINDOW
    }

    pub(super) fn in_window(&self) -> bool {
        self.slot_and_window & IN_WINDOW != 0
    }
}

/// A folded 64x64->128-bit multiply: every key bit reaches the bucket and the tag bits.
#[derive(Default, Clone, Copy)]
pub(super) struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        let x = u128::from(v) * 0x9E37_79B9_7F4A_7C15;
        self.0 = (x as u64) ^ ((x >> 64) as u64);
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
}

pub(super) type FoldMap<K, V> = HashMap<K, V, BuildHasherDefault<FoldHasher>>;

const PAGE_SHIFT: u32 = 10;
/// The tick that marks an empty slot; real ticks (one per 20 ms) never get there.
const NO_TICK: u32 = u32::MAX;
const SLOTS: usize = 1 << (PAGE_SHIFT - 4);

/// Entries of the direct-mapped page cache: a program frees from several pools at once (one
/// per size class), so one entry is not enough.
const CACHED_PAGES: usize = 16;

pub(super) struct LiveBlocks {
    pages: FoldMap<u64, u32>,
    store: Vec<[Packed; SLOTS]>,
    big: FoldMap<u64, u64>,
    /// `(page number + 1, page index)`; 0 = empty.
    cache: [(u64, u32); CACHED_PAGES],
    unaligned: FoldMap<u64, Block>,
}

impl Default for LiveBlocks {
    fn default() -> Self {
        LiveBlocks {
            pages: FoldMap::default(),
            store: Vec::new(),
            big: FoldMap::default(),
            cache: [(0, 0); CACHED_PAGES],
            unaligned: FoldMap::default(),
        }
    }
}

impl LiveBlocks {
    fn page(&mut self, number: u64, create: bool) -> Option<u32> {
        let entry = &mut self.cache[number as usize % CACHED_PAGES];
        if entry.0 == number.wrapping_add(1) {
            return Some(entry.1);
        }
        let i = match self.pages.get(&number) {
            Some(&i) => i,
            None if create => {
                let i = self.store.len() as u32;
                self.store.push([EMPTY; SLOTS]);
                self.pages.insert(number, i);
                i
            }
            None => return None,
        };
        self.cache[number as usize % CACHED_PAGES] = (number.wrapping_add(1), i);
        Some(i)
    }

    fn unpack(&mut self, addr: u64, p: Packed) -> Option<Block> {
        if p.tick == NO_TICK {
            return None;
        }
        let size = if p.size == u32::MAX {
            self.big.remove(&addr).unwrap_or(u64::from(u32::MAX))
        } else {
            u64::from(p.size)
        };
        Some(Block {
            size,
            slot_and_window: p.slot_and_window,
            tick: p.tick,
            seq: p.seq,
        })
    }

    /// Records `block` at `addr`, returning the block it replaces.
    pub(super) fn insert(&mut self, addr: u64, mut block: Block) -> Option<Block> {
        block.tick = block.tick.min(NO_TICK - 1);
        if addr & 15 != 0 {
            return self.unaligned.insert(addr, block);
        }
        let page = self.page(addr >> PAGE_SHIFT, true)? as usize;
        let slot = &mut self.store[page][(addr >> 4) as usize & (SLOTS - 1)];
        let size = u32::try_from(block.size).unwrap_or(u32::MAX);
        let old = std::mem::replace(
            slot,
            Packed {
                size,
                slot_and_window: block.slot_and_window,
                tick: block.tick,
                seq: block.seq,
            },
        );
        let old = self.unpack(addr, old);
        if size == u32::MAX {
            self.big.insert(addr, block.size);
        }
        old
    }

    /// Removes and returns the block at `addr`.
    pub(super) fn remove(&mut self, addr: u64) -> Option<Block> {
        if addr & 15 != 0 {
            return self.unaligned.remove(&addr);
        }
        let page = self.page(addr >> PAGE_SHIFT, false)? as usize;
        let slot = &mut self.store[page][(addr >> 4) as usize & (SLOTS - 1)];
        let old = std::mem::replace(slot, EMPTY);
        self.unpack(addr, old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(size: u64) -> Block {
        Block {
            size,
            slot_and_window: 0,
            tick: 0,
            seq: 0,
        }
    }

    #[test]
    fn aligned_and_unaligned_blocks_come_back() {
        let mut live = LiveBlocks::default();
        assert!(live.insert(0x1000, block(1)).is_none());
        assert!(live.insert(0x1010, block(2)).is_none());
        assert!(live.insert(0x1003, block(3)).is_none());
        assert!(live.insert(0x9_0000_0000, block(4)).is_none());
        assert!(live.insert(0x8_0000_0000, block(1 << 40)).is_none());
        assert_eq!(live.remove(0x8_0000_0000).unwrap().size, 1 << 40);
        assert_eq!(live.insert(0x1000, block(5)).unwrap().size, 1);
        assert_eq!(live.remove(0x1010).unwrap().size, 2);
        assert!(live.remove(0x1010).is_none());
        assert!(live.remove(0x2000).is_none());
        assert_eq!(live.remove(0x1003).unwrap().size, 3);
        assert_eq!(live.remove(0x9_0000_0000).unwrap().size, 4);
        assert_eq!(live.remove(0x1000).unwrap().size, 5);
    }
}
