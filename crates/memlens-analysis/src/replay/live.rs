//! The live set: block address -> [`Block`], laid out for memory locality.
//!
//! The replay's cost is cache misses in this table, and nearby blocks are allocated and freed
//! together (pymalloc carves pools sequentially; programs free what they built in about the
//! order they built it). So 16-byte-aligned addresses (all of pymalloc's and glibc's blocks)
//! live in pages of 64 slots, one page per KiB of address space, found through a small map of
//! pages with a one-page cache: consecutive events mostly touch the same or a neighbouring
//! page. Unaligned addresses (rare: some `mmap` users) go to a plain map. A page costs 1.5 KiB
//! for each KiB of address space that ever held a live block, whatever its size.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A live block: 24 bytes.
#[derive(Clone, Copy)]
pub(super) struct Block {
    pub(super) size: u64,
    /// The slot index; the top bit is set when the block was allocated in the leak window.
    pub(super) slot_and_window: u32,
    /// Index into `Replay::tick_times`: the counter sample before the allocation.
    /// `u32::MAX` marks an empty page slot.
    pub(super) tick: u32,
    /// The (weighted) allocation counter just after this block's allocation.
    pub(super) alloc_index: f64,
}

pub(super) const IN_WINDOW: u32 = 1 << 31;

const EMPTY: Block = Block {
    size: 0,
    slot_and_window: 0,
    tick: u32::MAX,
    alloc_index: 0.0,
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
const SLOTS: usize = 1 << (PAGE_SHIFT - 4);

#[derive(Default)]
pub(super) struct LiveBlocks {
    pages: FoldMap<u64, u32>,
    store: Vec<[Block; SLOTS]>,
    last: Option<(u64, u32)>,
    unaligned: FoldMap<u64, Block>,
}

impl LiveBlocks {
    fn page(&mut self, number: u64, create: bool) -> Option<u32> {
        if let Some((n, i)) = self.last
            && n == number
        {
            return Some(i);
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
        self.last = Some((number, i));
        Some(i)
    }

    /// Records `block` at `addr`, returning the block it replaces.
    pub(super) fn insert(&mut self, addr: u64, block: Block) -> Option<Block> {
        if addr & 15 != 0 {
            return self.unaligned.insert(addr, block);
        }
        let page = self.page(addr >> PAGE_SHIFT, true)? as usize;
        let slot = &mut self.store[page][(addr >> 4) as usize & (SLOTS - 1)];
        let old = std::mem::replace(slot, block);
        (old.tick != u32::MAX).then_some(old)
    }

    /// Removes and returns the block at `addr`.
    pub(super) fn remove(&mut self, addr: u64) -> Option<Block> {
        if addr & 15 != 0 {
            return self.unaligned.remove(&addr);
        }
        let page = self.page(addr >> PAGE_SHIFT, false)? as usize;
        let slot = &mut self.store[page][(addr >> 4) as usize & (SLOTS - 1)];
        let old = std::mem::replace(slot, EMPTY);
        (old.tick != u32::MAX).then_some(old)
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
            alloc_index: 0.0,
        }
    }

    #[test]
    fn aligned_and_unaligned_blocks_come_back() {
        let mut live = LiveBlocks::default();
        assert!(live.insert(0x1000, block(1)).is_none());
        assert!(live.insert(0x1010, block(2)).is_none());
        assert!(live.insert(0x1003, block(3)).is_none());
        assert!(live.insert(0x9_0000_0000, block(4)).is_none());
        assert_eq!(live.insert(0x1000, block(5)).unwrap().size, 1);
        assert_eq!(live.remove(0x1010).unwrap().size, 2);
        assert!(live.remove(0x1010).is_none());
        assert!(live.remove(0x2000).is_none());
        assert_eq!(live.remove(0x1003).unwrap().size, 3);
        assert_eq!(live.remove(0x9_0000_0000).unwrap().size, 4);
        assert_eq!(live.remove(0x1000).unwrap().size, 5);
    }
}
