//! How a [`StateKey`] hashes: every byte of it, keyed by a secret drawn once per process.
//!
//! Account keys and hashes in a block are chosen by its senders, so a hash of part of a
//! key (or an unkeyed hash of all of it) lets an attacker send to many keys in one hash
//! bucket: every map on the block path (the multi-version index, the preload, the
//! sequential executor's state, the estimators) then walks long chains, at a cost that
//! grows with the square of the block, paid by every validator. Here each 16 bytes
//! `(x, y)` of a key meet their own pair of secret words in a folded multiply (the low
//! and high halves of the 128-bit product, xored), and the lanes are xored:
//!
//! ```text
//! h(key) = tag ⊕ ⨁ᵢ fold((xᵢ ⊕ k₂ᵢ) · (yᵢ ⊕ k₂ᵢ₊₁))
//! ```
//!
//! This is foldhash's construction (and NH's, of UMAC, with xor for addition) specialised
//! to keys of fixed size: the lanes are independent, so a 32-byte account costs two
//! multiplies side by side rather than a chain of them, and each kind of key has its own
//! secret words, so that keys of two kinds over the same bytes hash apart. Without the
//! secret, an attacker cannot tell which keys share a bucket.
//!
//! The cost, measured with `tos-blockstm bench --workload p2p:1000 --threads 1`: the
//! sequential executor takes 3.1 ms for 10,000 transfers where the unkeyed hash of the
//! first 8 bytes took 2.45 (about 65 ns a transfer, which looks up some fifteen keys,
//! most of them just built: reading all of a fresh key is the cost). foldhash, fed the
//! same bytes through `Hasher::write`, chains its multiplies and measured slower still.
//! In exchange, a block of 20,000 transfers to receivers sharing their first 8 bytes
//! executes in 5.5 ms against 6-11 ms for random receivers, where the unkeyed hash took
//! 800 ms (and 1.3 s to preload).
//!
//! The result goes to the map's own hasher as one `u64`, so the maps keep their fast,
//! fixed hasher (`mvmemory::FxBuildHasher`): what it mixes is already keyed. Results never
//! depend on the hash (only where a key sits in a table), so the per-process secret keeps
//! execution deterministic.

use super::StateKey;
use crate::primitives::TOS_ASSET;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// Eight secret words (enough for a 64-byte key) for each kind of key, so that keys of
/// two kinds over the same bytes hash independently.
type Secret = [[u64; 8]; KINDS];

/// The kinds of key hashed apart: one per variant, and the TOS balances apart.
const KINDS: usize = 10;

/// The process's secret, drawn from std's per-process random hasher keys (seeded by the
/// operating system's random source).
fn secret() -> &'static Secret {
    static SECRET: OnceLock<Secret> = OnceLock::new();
    SECRET.get_or_init(|| {
        let state = std::collections::hash_map::RandomState::new();
        let mut words = [[0u64; 8]; KINDS];
        for (i, word) in words.iter_mut().flatten().enumerate() {
            let mut hasher = state.build_hasher();
            hasher.write_usize(i);
            *word = hasher.finish();
        }
        words
    })
}

#[inline(always)]
fn fold(x: u64, y: u64) -> u64 {
    let product = u128::from(x).wrapping_mul(u128::from(y));
    (product as u64) ^ ((product >> 64) as u64)
}

#[inline(always)]
fn word(bytes: &[u8; 32], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
    u64::from_le_bytes(w)
}

/// The keyed fold of 32 bytes with the secret words `k[0..4]`.
#[inline(always)]
fn fold32(bytes: &[u8; 32], k: &[u64]) -> u64 {
    fold(word(bytes, 0) ^ k[0], word(bytes, 1) ^ k[1])
        ^ fold(word(bytes, 2) ^ k[2], word(bytes, 3) ^ k[3])
}

/// The keyed fold of two 32-byte parts, each with its own secret words.
#[inline(always)]
fn fold64(first: &[u8; 32], second: &[u8; 32], k: &[u64; 8]) -> u64 {
    fold32(first, &k[..4]) ^ fold32(second, &k[4..])
}

/// The keyed hash of `key`.
#[inline(always)]
pub(super) fn key_hash(key: &StateKey) -> u64 {
    let s = secret();
    match key {
        StateKey::Nonce(account) => fold32(&account.0, &s[0]),
        // Most balances are of TOS, whose hash is all zeros: then the account alone is
        // folded (the asset's bytes are known), at half the multiplies.
        StateKey::Balance(account, asset) if asset.0 == TOS_ASSET.0 => fold32(&account.0, &s[1]),
        StateKey::Balance(account, asset) => fold64(&account.0, &asset.0, &s[9]),
        StateKey::MultiSig(account) => fold32(&account.0, &s[2]),
        StateKey::GasFee => s[3][0],
        StateKey::BurnedSupply(asset) => fold32(&asset.0, &s[4]),
        StateKey::ContractModule(contract) => fold32(&contract.0, &s[5]),
        StateKey::ContractData(contract, data) => {
            let (len, bytes) = data.parts();
            fold64(&contract.0, bytes, &s[6]) ^ fold(u64::from(len) ^ s[6][0], s[6][1])
        }
        StateKey::ContractBalance(contract, asset) => fold64(&contract.0, &asset.0, &s[7]),
        StateKey::Global(global) => fold(u64::from(*global as u8) ^ s[8][0], s[8][1]),
    }
}

impl std::hash::Hash for StateKey {
    #[inline(always)]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(key_hash(self));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::{Hash, PublicKey};

    #[test]
    fn every_byte_counts_and_variants_differ() {
        let base = [0x5au8; 32];
        let h = key_hash(&StateKey::Nonce(PublicKey(base)));
        for i in 0..32 {
            let mut other = base;
            other[i] ^= 1;
            assert_ne!(h, key_hash(&StateKey::Nonce(PublicKey(other))), "byte {i}");
        }
        let asset = Hash(base);
        let keys = [
            StateKey::Nonce(PublicKey(base)),
            StateKey::Balance(PublicKey(base), asset),
            StateKey::MultiSig(PublicKey(base)),
            StateKey::BurnedSupply(asset),
            StateKey::ContractModule(asset),
            StateKey::ContractBalance(asset, asset),
        ];
        let hashes: std::collections::HashSet<u64> = keys.iter().map(key_hash).collect();
        assert_eq!(hashes.len(), keys.len());
    }

    /// The hash this module replaced: the first 8 bytes of the account, unkeyed.
    fn prefix_hash(key: &StateKey) -> u64 {
        let first = |bytes: &[u8; 32]| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[..8]);
            u64::from_le_bytes(w)
        };
        match key {
            StateKey::Nonce(a) => first(&a.0),
            StateKey::Balance(a, asset) => first(&a.0) ^ first(&asset.0).rotate_left(17) ^ 1,
            _ => unreachable!("only accounts' keys here"),
        }
    }

    /// How many of the `buckets` buckets (a power of two) of a table with the maps'
    /// hasher `keys` land in.
    fn buckets_used(keys: &[StateKey], hash: impl Fn(&StateKey) -> u64, buckets: u64) -> usize {
        let used: std::collections::HashSet<u64> = keys
            .iter()
            .map(|k| mvmemory::FxBuildHasher::default().hash_one(hash(k)) & (buckets - 1))
            .collect();
        used.len()
    }

    /// 20,000 accounts an attacker chose to share their first 8 bytes (what the old hash
    /// read): under it every nonce and every balance key falls into one bucket, so each
    /// lookup walks the block; under the keyed hash they spread like random accounts.
    #[test]
    fn accounts_chosen_to_collide_spread_like_random_ones() {
        let n = 20_000u32;
        let crafted: Vec<PublicKey> = (0..n)
            .map(|i| {
                let mut key = [0xabu8; 32];
                key[8..12].copy_from_slice(&i.to_le_bytes());
                PublicKey(key)
            })
            .collect();
        let random: Vec<PublicKey> = (0..n)
            .map(|i| PublicKey(*blake3::hash(&i.to_le_bytes()).as_bytes()))
            .collect();
        let keys = |accounts: &[PublicKey]| -> Vec<StateKey> {
            accounts
                .iter()
                .flat_map(|a| [StateKey::Nonce(*a), StateKey::Balance(*a, TOS_ASSET)])
                .collect()
        };
        let (crafted, random) = (keys(&crafted), keys(&random));
        let buckets = 1 << 16;
        assert_eq!(buckets_used(&crafted, prefix_hash, buckets), 2);
        let spread_random = buckets_used(&random, key_hash, buckets);
        let spread_crafted = buckets_used(&crafted, key_hash, buckets);
        // 40,000 keys in 65,536 buckets: about 30,000 used when they spread at random.
        assert!(spread_random > 28_000, "{spread_random}");
        assert!(
            spread_crafted * 100 > spread_random * 95,
            "{spread_crafted} against {spread_random}"
        );
    }
}
