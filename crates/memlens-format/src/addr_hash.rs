//! A hasher for block addresses, shared by the tracker and the reader.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// One multiply per key: block addresses are already well spread in their middle bits, and
/// SipHash on the tracker's free path and in the replay's live map cost more than the work
/// around it.
#[derive(Debug, Default, Clone, Copy)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by block address.
pub type AddrMap<V> = HashMap<u64, V, BuildHasherDefault<AddrHasher>>;
