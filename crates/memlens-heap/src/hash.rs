//! A small, fast, non-cryptographic hasher (the Fx hash of rustc) for interning tables.

use std::hash::{BuildHasherDefault, Hasher};

/// Fx hasher: a multiply-rotate hash, fast on short keys.
#[derive(Default, Clone, Copy)]
pub(crate) struct Fx(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl Fx {
    #[inline]
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(K);
    }
}

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.add(u64::from(v));
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.add(u64::from(v));
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }
    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // A final avalanche so that low bits (used by hash tables) depend on every input bit.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }
}

/// Builds [`Fx`] hashers.
pub(crate) type FxBuild = BuildHasherDefault<Fx>;

/// Mixes two 64-bit values into one (for path hashes).
#[inline]
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    let mut h = Fx(a);
    h.add(b);
    h.finish()
}

/// Hashes a string's bytes.
pub(crate) fn hash_str(s: &str) -> u64 {
    let mut h = Fx(0x51_7cc1_b727_220a);
    h.write(s.as_bytes());
    h.finish()
}

/// The slot hash of an interned string: [`hash_str`] with its high half folded into the low
/// bits that pick a slot.
#[inline]
fn slot_hash(s: &str) -> u64 {
    let h = hash_str(s);
    h ^ (h >> 32)
}

/// A string interner that keeps every string in one arena: no allocation per string, one
/// table of `u32` ids probed linearly (0 marks a free slot, ids are stored plus one).
#[derive(Default)]
pub(crate) struct Interner {
    arena: String,
    /// End of string `id` in `arena`.
    ends: Vec<usize>,
    hashes: Vec<u64>,
    slots: Vec<u32>,
}

impl Interner {
    fn text(&self, id: usize) -> &str {
        let start = if id == 0 { 0 } else { self.ends[id - 1] };
        &self.arena[start..self.ends[id]]
    }

    /// Makes room for `n` more strings.
    pub(crate) fn reserve(&mut self, n: usize) {
        let want = (2 * (self.ends.len() + n)).next_power_of_two();
        if want > self.slots.len() {
            self.rehash(want);
        }
        self.ends.reserve(n);
        self.hashes.reserve(n);
        // Previews and names average well under 16 bytes.
        self.arena.reserve(16 * n);
    }

    fn rehash(&mut self, cap: usize) {
        self.slots = vec![0; cap.max(64)];
        let mask = self.slots.len() - 1;
        for (id, &h) in self.hashes.iter().enumerate() {
            let mut i = h as usize & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = id as u32 + 1;
        }
    }

    /// The id of `s`, if interned.
    pub(crate) fn get(&self, s: &str) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        self.find(s, slot_hash(s))
    }

    /// The id of `s` (`next` when it was new and is now added) and whether it was new: one hash
    /// and one probe sequence for both.
    pub(crate) fn get_or_push(&mut self, s: &str) -> (u32, bool) {
        if 2 * (self.ends.len() + 1) > self.slots.len() {
            self.rehash(2 * self.slots.len().max(32));
        }
        let h = slot_hash(s);
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        loop {
            match self.slots[i] {
                0 => break,
                v => {
                    let id = (v - 1) as usize;
                    if self.hashes[id] == h && self.text(id) == s {
                        return (id as u32, false);
                    }
                }
            }
            i = (i + 1) & mask;
        }
        let id = self.ends.len();
        self.arena.push_str(s);
        self.ends.push(self.arena.len());
        self.hashes.push(h);
        self.slots[i] = id as u32 + 1;
        (id as u32, true)
    }

    fn find(&self, s: &str, h: u64) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        loop {
            match self.slots[i] {
                0 => return None,
                v => {
                    let id = (v - 1) as usize;
                    if self.hashes[id] == h && self.text(id) == s {
                        return Some(id as u32);
                    }
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `s` as the next id (the caller checked it is new, or wants a duplicate id that
    /// lookups never return).
    pub(crate) fn push(&mut self, s: &str) -> u32 {
        if 2 * (self.ends.len() + 1) > self.slots.len() {
            self.rehash(2 * self.slots.len().max(32));
        }
        let id = self.ends.len();
        let h = slot_hash(s);
        self.arena.push_str(s);
        self.ends.push(self.arena.len());
        self.hashes.push(h);
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = id as u32 + 1;
        id as u32
    }
}
