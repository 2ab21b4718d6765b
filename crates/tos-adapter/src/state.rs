//! TOS state as the engine sees it: keys and values.

use crate::types::{Hash, PublicKey, SharedMultiSig};
use mvmemory::DeltaValue;

/// A key of TOS state.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StateKey {
    /// An account's nonce.
    Nonce(PublicKey),
    /// An account's balance of an asset.
    Balance(PublicKey, Hash),
    /// An account's multisig configuration.
    MultiSig(PublicKey),
    /// The total of fees paid (an accumulator: credited by delta).
    GasFee,
    /// The total burned of an asset (an accumulator: credited by delta).
    BurnedSupply(Hash),
}

/// The first 8 bytes of a key or hash: public keys and hashes are uniformly distributed,
/// so 8 bytes carry all the entropy a hash table needs, at an eighth of the hashing work
/// (equality still compares every byte).
#[inline]
fn prefix(bytes: &[u8; 32]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

impl std::hash::Hash for StateKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            StateKey::Nonce(account) => state.write_u64(prefix(&account.0)),
            StateKey::Balance(account, asset) => {
                state.write_u64(prefix(&account.0) ^ prefix(&asset.0).rotate_left(17) ^ 1)
            }
            StateKey::MultiSig(account) => state.write_u64(prefix(&account.0) ^ 2),
            StateKey::GasFee => state.write_u64(3),
            StateKey::BurnedSupply(asset) => state.write_u64(prefix(&asset.0) ^ 4),
        }
    }
}

/// A value of TOS state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateValue {
    /// A nonce, a balance or an accumulator.
    Number(u64),
    /// A multisig configuration; `None` once deleted.
    MultiSig(Option<SharedMultiSig>),
}

impl DeltaValue for StateValue {
    #[inline]
    fn from_u64(n: u64) -> Self {
        StateValue::Number(n)
    }

    #[inline]
    fn as_u64(&self) -> Option<u64> {
        match self {
            StateValue::Number(n) => Some(*n),
            StateValue::MultiSig(_) => None,
        }
    }
}
