//! Storage: the state at a topoheight, as versions, and the atomic write of a block.
//!
//! Shaped like the TOS daemon's providers: every value is stored as a version at the
//! topoheight that wrote it, pointing to the topoheight of the version it replaced
//! (`VersionedNonce { nonce, previous_topoheight }`, `VersionedBalance`), and read as
//! "the latest version at or below a topoheight". [`TosStorage`] is the synchronous trait
//! the executor's workers use; [`AsyncTosStorage`] is the async flavour a daemon built
//! on tokio implements from its providers, used to preload a block's declared keys
//! concurrently before the workers start.

mod commitment;
mod memory;
mod redb_store;

pub use commitment::NO_PARENT;
pub use memory::MemoryStore;
pub use redb_store::{RedbStore, Verified, FORMAT_VERSION};

use crate::error::StorageError;
use crate::primitives::{Hash, PublicKey, SharedMultiSig};
use crate::state::summary::ChainSummary;
use crate::state::{StateKey, StateValue};
use std::future::Future;

/// A stored version of a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The topoheight that wrote this version.
    pub topoheight: u64,
    /// The value.
    pub value: T,
    /// The topoheight of the version it replaced, if any.
    pub previous_topoheight: Option<u64>,
}

/// A nonce version, as the daemon's `VersionedNonce`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionedNonce {
    /// The nonce.
    pub nonce: u64,
    /// The topoheight of the previous version.
    pub previous_topoheight: Option<u64>,
}

/// A balance version, as the daemon's `VersionedBalance` (plaintext here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionedBalance {
    /// The balance.
    pub balance: u64,
    /// The topoheight of the previous version.
    pub previous_topoheight: Option<u64>,
}

/// One change of a block: a key and its value after the block. The store records the
/// topoheight of the version it replaces.
pub type Change = (StateKey, StateValue);

/// Whether a block may be written at `topoheight`: the next after the stored one, or 0
/// (genesis) or 1 on a store never written.
pub(crate) fn check_next_topoheight(
    written: bool,
    stored: u64,
    topoheight: u64,
) -> Result<(), StorageError> {
    let ok = if written {
        stored.checked_add(1) == Some(topoheight)
    } else {
        topoheight <= 1
    };
    if ok {
        Ok(())
    } else {
        Err(StorageError::WrongTopoheight {
            expected: if written { stored.saturating_add(1) } else { 0 },
            got: topoheight,
        })
    }
}

/// Synchronous storage of TOS state.
pub trait TosStorage: Sync {
    /// The topoheight of the last block written (0 after genesis or when empty).
    fn topoheight(&self) -> Result<u64, StorageError>;

    /// Whether nothing was ever written.
    fn is_empty(&self) -> Result<bool, StorageError>;

    /// The latest version of `key` at or below `topoheight`.
    fn get_versioned(
        &self,
        key: &StateKey,
        topoheight: u64,
    ) -> Result<Option<Versioned<StateValue>>, StorageError>;

    /// Every version of `key`, newest first.
    fn history(&self, key: &StateKey) -> Result<Vec<Versioned<StateValue>>, StorageError>;

    /// Every key's latest value, in key order.
    fn latest_entries(&self) -> Result<Vec<(StateKey, StateValue)>, StorageError>;

    /// The latest state's global values, accounts and contracts, with its digest
    /// ([`ChainSummary::digest`]).
    fn summary(&self) -> Result<ChainSummary, StorageError> {
        let entries = self.latest_entries()?;
        ChainSummary::from_entries(entries.iter().map(|(k, v)| (k, v)))
            .map_err(|e| StorageError::Corrupt(e.to_string()))
    }

    /// Writes `changes` as versions at `topoheight`, each pointing to the topoheight of the
    /// version it replaces, in one atomic write: all of it or nothing. `topoheight` must
    /// be the next one (0, for genesis, or 1 on a store never written).
    fn write_block(&self, topoheight: u64, changes: &[Change]) -> Result<(), StorageError>;

    /// The latest nonce of `account` at or below `topoheight`, with the topoheight of its
    /// version.
    fn get_nonce_at_maximum_topoheight(
        &self,
        account: &PublicKey,
        topoheight: u64,
    ) -> Result<Option<(u64, VersionedNonce)>, StorageError> {
        Ok(self
            .get_versioned(&StateKey::Nonce(*account), topoheight)?
            .and_then(|v| match v.value {
                StateValue::Number(nonce) => Some((
                    v.topoheight,
                    VersionedNonce {
                        nonce,
                        previous_topoheight: v.previous_topoheight,
                    },
                )),
                _ => None,
            }))
    }

    /// The latest balance of `account` in `asset` at or below `topoheight`, with the
    /// topoheight of its version.
    fn get_balance_at_maximum_topoheight(
        &self,
        account: &PublicKey,
        asset: &Hash,
        topoheight: u64,
    ) -> Result<Option<(u64, VersionedBalance)>, StorageError> {
        Ok(self
            .get_versioned(&StateKey::Balance(*account, *asset), topoheight)?
            .and_then(|v| match v.value {
                StateValue::Number(balance) => Some((
                    v.topoheight,
                    VersionedBalance {
                        balance,
                        previous_topoheight: v.previous_topoheight,
                    },
                )),
                _ => None,
            }))
    }

    /// The multisig of `account` at or below `topoheight` (`None` if never set or deleted).
    fn get_multisig_at_maximum_topoheight(
        &self,
        account: &PublicKey,
        topoheight: u64,
    ) -> Result<Option<(u64, SharedMultiSig)>, StorageError> {
        Ok(self
            .get_versioned(&StateKey::MultiSig(*account), topoheight)?
            .and_then(|v| match v.value {
                StateValue::MultiSig(Some(config)) => Some((v.topoheight, config)),
                _ => None,
            }))
    }
}

/// The async flavour of [`TosStorage`]'s reads, for a daemon whose providers are async.
/// Every [`TosStorage`] is one (its futures are ready at once).
pub trait AsyncTosStorage: Sync {
    /// As [`TosStorage::get_versioned`].
    fn get_versioned_async(
        &self,
        key: &StateKey,
        topoheight: u64,
    ) -> impl Future<Output = Result<Option<Versioned<StateValue>>, StorageError>> + Send;
}

impl<S: TosStorage> AsyncTosStorage for S {
    fn get_versioned_async(
        &self,
        key: &StateKey,
        topoheight: u64,
    ) -> impl Future<Output = Result<Option<Versioned<StateValue>>, StorageError>> + Send {
        std::future::ready(self.get_versioned(key, topoheight))
    }
}
