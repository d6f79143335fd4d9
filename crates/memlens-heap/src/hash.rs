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
