//! TOS state as the engine sees it: keys and values.

use crate::types::{Hash, PublicKey, SharedMultiSig};
use mvmemory::DeltaValue;
use std::sync::Arc;

/// Bytes held in state, shared: cloning a value read from the multi-version memory costs
/// a reference count, not a copy.
pub type Bytes = Arc<[u8]>;

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
    /// A deployed contract's code.
    ContractModule(Hash),
    /// One entry of a contract's storage: the contract and the entry's key.
    ContractData(Hash, Bytes),
    /// A contract's balance of an asset.
    ContractBalance(Hash, Hash),
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
            StateKey::ContractModule(contract) => state.write_u64(prefix(&contract.0) ^ 5),
            StateKey::ContractData(contract, key) => {
                // FNV-1a over the entry's key: short keys, chosen by contracts.
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for &b in key.iter() {
                    h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                }
                state.write_u64(prefix(&contract.0) ^ h.rotate_left(29) ^ 6)
            }
            StateKey::ContractBalance(contract, asset) => {
                state.write_u64(prefix(&contract.0) ^ prefix(&asset.0).rotate_left(23) ^ 7)
            }
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
    /// A contract storage entry; `None` once deleted.
    Data(Option<Bytes>),
    /// A contract's code.
    Module(Bytes),
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
            StateValue::MultiSig(_) | StateValue::Data(_) | StateValue::Module(_) => None,
        }
    }
}
