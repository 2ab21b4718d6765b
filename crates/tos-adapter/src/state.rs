//! TOS state as the engine sees it: keys and values.

use crate::types::{Hash, PublicKey, SharedMultiSig};
use mvmemory::DeltaValue;

/// A key of TOS state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
