//! A small, fast, fixed hasher for the key index and the block path's maps (the "Fx" hash
//! of rustc): one multiply per word.
//!
//! It resists no one. Where users choose the keys (TOS's account keys and hashes), the key
//! type hashes itself with a secret of its own and hands this hasher one word that no
//! one can aim (`tos-adapter`'s `StateKey`); a `SipHash` here would hash those words a
//! second time at most of a read's cost.

use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// The Fx hasher: one rotate, xor and multiply per 8 bytes.
#[derive(Default, Clone, Copy, Debug)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    /// The multiply leaves the low bits poorly mixed (sequential integers hash to
    /// sequential-ish low bits, which `hashbrown` uses for the bucket): rotate the well
    /// mixed high bits down, as rustc's own `FxHasher` does since 2.0.
    #[inline]
    fn finish(&self) -> u64 {
        self.hash.rotate_left(26)
    }
}

/// `BuildHasher` of [`FxHasher`], for `HashMap`s and the key index.
pub type FxBuildHasher = BuildHasherDefault<FxHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash<T: Hash + ?Sized>(t: &T) -> u64 {
        FxBuildHasher::default().hash_one(t)
    }

    #[test]
    fn deterministic_and_spreads_keys() {
        assert_eq!(hash(&[7u8; 32]), hash(&[7u8; 32]));
        let hashes: std::collections::HashSet<u64> = (0u64..10_000).map(|i| hash(&i)).collect();
        assert_eq!(hashes.len(), 10_000);
        // Trailing partial words count.
        assert_ne!(hash(&[1u8, 2, 3][..]), hash(&[1u8, 2][..]));
    }
}
