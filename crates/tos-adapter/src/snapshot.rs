//! The state a block executes on: a block's declared keys preloaded from storage at the
//! topoheight below the block, with anything else read through on demand.
//!
//! With the keys it preloads, the state keeps who declared each one and how, and claims
//! ([`executor::Storage::claim`]), in a block whose every transaction declares all it
//! touches (no contract call): a key only one transaction declares is *exclusive* to it;
//! a key several declare, all as the receiver of a credit, is *credit-only*. Block-STM
//! keeps claimed keys out of its multi-version memory. It checks each claim on every read
//! that reaches storage and every write, so a wrong declaration costs a fallback, never a
//! wrong result.

use crate::error::{StorageError, TosError};
use crate::state::{StateKey, StateValue};
use crate::storage::{AsyncTosStorage, TosStorage, Versioned};
use executor::KeyClaim;
use mvmemory::FxBuildHasher;
use std::collections::hash_map::Entry;
use std::collections::HashMap;

/// The owner of a key declared by several transactions, or by the block.
const SHARED: u32 = u32::MAX;

/// A preloaded key: its version below the block, and its claim.
struct Preloaded {
    version: Option<Versioned<StateValue>>,
    claim: KeyClaim,
}

/// How a transaction declares it touches a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// It may read and write it.
    ReadWrite,
    /// It only credits it (a transfer's receiver): adds to it without reading it.
    Credit,
}

/// The keys a block declares, each with the transaction that declared it (its index in
/// the block, or the block itself) and how: what [`BlockState::preload`] reads, and what
/// it claims from.
#[derive(Clone, Debug, Default)]
pub struct DeclaredKeys {
    keys: Vec<(StateKey, u32, Access)>,
    /// Whether every transaction declared every key it touches (no contract call): only
    /// then are keys claimed.
    exact: bool,
}

impl DeclaredKeys {
    /// An empty set, `exact` if every transaction of the block declares all it touches.
    pub fn new(exact: bool, capacity: usize) -> Self {
        Self {
            keys: Vec::with_capacity(capacity),
            exact,
        }
    }

    /// Declares that transaction `txn` of the block touches `key` as `access` says.
    pub fn declare(&mut self, txn: usize, key: StateKey, access: Access) {
        // The highest index is the marker: a block that large shares its last keys.
        let owner = u32::try_from(txn)
            .ok()
            .filter(|&i| i < SHARED)
            .unwrap_or(SHARED);
        self.keys.push((key, owner, access));
    }

    /// Declares `key` for the block as a whole (any transaction may touch it).
    pub fn declare_shared(&mut self, key: StateKey) {
        self.keys.push((key, SHARED, Access::ReadWrite));
    }

    /// The number of declarations.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether nothing is declared.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The declared keys, with repetitions.
    pub fn keys(&self) -> impl Iterator<Item = &StateKey> {
        self.keys.iter().map(|(key, _, _)| key)
    }

    /// Each key once, in first-declaration order, with its claim (credit-only keys
    /// numbered in that order), and the credit-only keys by slot.
    fn unique(self) -> (Vec<(StateKey, KeyClaim)>, Vec<StateKey>) {
        let mut positions: HashMap<StateKey, usize, FxBuildHasher> =
            HashMap::with_capacity_and_hasher(self.keys.len(), FxBuildHasher::default());
        // Per key: its one declaring transaction (or SHARED), and whether all credit it.
        let mut unique: Vec<(StateKey, u32, bool)> = Vec::with_capacity(self.keys.len());
        for (key, owner, access) in self.keys {
            let (owner, credit) = if self.exact {
                (owner, access == Access::Credit)
            } else {
                (SHARED, false)
            };
            match positions.entry(key) {
                Entry::Occupied(seen) => {
                    if let Some((_, first, credits)) = unique.get_mut(*seen.get()) {
                        if *first != owner {
                            *first = SHARED;
                        }
                        *credits &= credit;
                    }
                }
                Entry::Vacant(new) => {
                    unique.push((new.key().clone(), owner, credit));
                    new.insert(unique.len() - 1);
                }
            }
        }
        let mut credit_keys = Vec::new();
        let claimed = unique
            .into_iter()
            .map(|(key, owner, credits)| {
                let claim = match (owner, credits) {
                    (SHARED, true) => {
                        credit_keys.push(key.clone());
                        KeyClaim::CreditOnly(credit_keys.len() - 1)
                    }
                    (SHARED, false) => KeyClaim::Shared,
                    (owner, _) => KeyClaim::Exclusive(owner as usize),
                };
                (key, claim)
            })
            .collect();
        (claimed, credit_keys)
    }
}

/// Keys with no owner: every one shared (the oracle's block keys, a caller's own list).
impl From<Vec<StateKey>> for DeclaredKeys {
    fn from(keys: Vec<StateKey>) -> Self {
        Self {
            keys: keys
                .into_iter()
                .map(|key| (key, SHARED, Access::ReadWrite))
                .collect(),
            exact: false,
        }
    }
}

/// The state below a block: preloaded versions, and a storage for keys not preloaded.
pub struct BlockState<'a> {
    base_topoheight: u64,
    preloaded: HashMap<StateKey, Preloaded, FxBuildHasher>,
    /// How many preloaded keys are claimed.
    claimed: usize,
    /// The credit-only keys, by slot.
    credit_keys: Vec<StateKey>,
    fallback: Box<dyn OnDemand + 'a>,
}

/// Reads, from the worker threads, of the keys a block did not preload (contract storage).
trait OnDemand: Sync {
    fn get(
        &self,
        key: &StateKey,
        topoheight: u64,
    ) -> Result<Option<Versioned<StateValue>>, StorageError>;
}

struct SyncReads<'a, S>(&'a S);

impl<S: TosStorage> OnDemand for SyncReads<'_, S> {
    fn get(
        &self,
        key: &StateKey,
        topoheight: u64,
    ) -> Result<Option<Versioned<StateValue>>, StorageError> {
        self.0.get_versioned(key, topoheight)
    }
}

/// An async storage read from a worker thread by blocking that thread on the read.
struct BlockingReads<'a, S>(&'a S);

impl<S: AsyncTosStorage> OnDemand for BlockingReads<'_, S> {
    fn get(
        &self,
        key: &StateKey,
        topoheight: u64,
    ) -> Result<Option<Versioned<StateValue>>, StorageError> {
        wait(self.0.get_versioned_async(key, topoheight))
    }
}

/// Runs `future` to completion on this thread, parking it while the future is pending.
/// Unlike `futures::executor::block_on` it may run inside another executor's task (the
/// block executes inside `execute_block_async`, and its calling thread is one of the
/// workers).
fn wait<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(output) => return output,
            // A wake-up before the park makes the park return at once.
            std::task::Poll::Pending => std::thread::park(),
        }
    }
}

impl std::fmt::Debug for BlockState<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockState")
            .field("base_topoheight", &self.base_topoheight)
            .field("preloaded", &self.preloaded.len())
            .finish_non_exhaustive()
    }
}

impl<'a> BlockState<'a> {
    /// Preloads `keys` from `storage` at `base_topoheight` on up to `threads` threads; other
    /// keys are read from `storage` when asked for.
    pub fn preload<S: TosStorage>(
        storage: &'a S,
        base_topoheight: u64,
        keys: impl Into<DeclaredKeys>,
        threads: usize,
    ) -> Result<Self, StorageError> {
        let (keys, credit_keys) = keys.into().unique();
        let chunk = keys.len().div_ceil(threads.max(1)).max(1);
        let loaded: Vec<Result<Vec<_>, StorageError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = keys
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|(key, claim)| {
                                let version = storage.get_versioned(key, base_topoheight)?;
                                Ok((
                                    key.clone(),
                                    Preloaded {
                                        version,
                                        claim: *claim,
                                    },
                                ))
                            })
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(StorageError::Database("preload thread panicked".into()))
                    })
                })
                .collect()
        });
        let mut preloaded = HashMap::with_capacity_and_hasher(keys.len(), FxBuildHasher::default());
        for part in loaded {
            preloaded.extend(part?);
        }
        Ok(Self {
            base_topoheight,
            claimed: keys
                .iter()
                .filter(|(_, claim)| *claim != KeyClaim::Shared)
                .count(),
            credit_keys,
            preloaded,
            fallback: Box::new(SyncReads(storage)),
        })
    }

    /// Preloads `keys` from an async storage, all reads concurrently. Keys not preloaded
    /// (contract storage entries, which no transaction declares) are read when a worker
    /// thread needs them, by blocking that thread on the storage's future: the storage's
    /// reads must complete without the
    /// async runtime's own threads driving them (a read from RocksDB, or behind tokio's
    /// locks, does; one that awaits `tokio::task::spawn_blocking` would need a runtime
    /// handle on the worker).
    pub async fn preload_async<S: AsyncTosStorage>(
        storage: &'a S,
        base_topoheight: u64,
        keys: impl Into<DeclaredKeys>,
    ) -> Result<BlockState<'a>, StorageError> {
        let (keys, credit_keys) = keys.into().unique();
        let reads = keys
            .iter()
            .map(|(key, _)| storage.get_versioned_async(key, base_topoheight));
        let values = futures::future::try_join_all(reads).await?;
        Ok(BlockState {
            base_topoheight,
            claimed: keys
                .iter()
                .filter(|(_, claim)| *claim != KeyClaim::Shared)
                .count(),
            credit_keys,
            preloaded: keys
                .into_iter()
                .zip(values)
                .map(|((key, claim), version)| (key, Preloaded { version, claim }))
                .collect(),
            fallback: Box::new(BlockingReads(storage)),
        })
    }

    /// The share of the preloaded keys that are claimed (exclusive to one transaction or
    /// only credited), 0 when none is preloaded.
    pub fn claimed_share(&self) -> f64 {
        if self.preloaded.is_empty() {
            0.0
        } else {
            self.claimed as f64 / self.preloaded.len() as f64
        }
    }

    /// The topoheight the state is read at.
    pub fn base_topoheight(&self) -> u64 {
        self.base_topoheight
    }

    /// The version of `key` below the block.
    pub fn version(&self, key: &StateKey) -> Result<Option<Versioned<StateValue>>, TosError> {
        match self.preloaded.get(key) {
            Some(preloaded) => Ok(preloaded.version.clone()),
            None => Ok(self.fallback.get(key, self.base_topoheight)?),
        }
    }

    /// The value of `key` below the block.
    pub fn value(&self, key: &StateKey) -> Result<Option<StateValue>, TosError> {
        match self.preloaded.get(key) {
            Some(preloaded) => Ok(preloaded.version.as_ref().map(|v| v.value.clone())),
            None => Ok(self.version(key)?.map(|v| v.value)),
        }
    }
}

impl BlockState<'_> {
    /// The network's chain id as the state holds it: devnet's if none is stored.
    pub fn network_chain_id(&self) -> Result<u64, TosError> {
        let key = StateKey::Global(crate::state::Global::NetworkChainId);
        match self.value(&key)? {
            None => Ok(u64::from(crate::tx::DEVNET_CHAIN_ID)),
            Some(StateValue::Number(n)) => Ok(n),
            Some(other) => Err(TosError::CorruptState(format!("{key:?} holds {other:?}"))),
        }
    }
}

impl executor::Storage for BlockState<'_> {
    type Key = StateKey;
    type Value = StateValue;
    type Error = TosError;

    #[inline]
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, TosError> {
        self.value(key)
    }

    fn has_claims(&self) -> bool {
        self.claimed > 0
    }

    #[inline]
    fn claim(&self, key: &StateKey) -> KeyClaim {
        self.preloaded
            .get(key)
            .map_or(KeyClaim::Shared, |preloaded| preloaded.claim)
    }

    fn credit_only_keys(&self) -> usize {
        self.credit_keys.len()
    }

    fn credit_only_key(&self, slot: usize) -> Option<StateKey> {
        self.credit_keys.get(slot).cloned()
    }

    #[inline]
    fn get_claimed(&self, key: &StateKey) -> Result<(Option<StateValue>, KeyClaim), TosError> {
        match self.preloaded.get(key) {
            Some(preloaded) => Ok((
                preloaded.version.as_ref().map(|v| v.value.clone()),
                preloaded.claim,
            )),
            None => Ok((self.version(key)?.map(|v| v.value), KeyClaim::Shared)),
        }
    }
}

/// The state below the rest of a block once a prefix of it has run: the prefix's changes
/// over the state below the block.
pub(crate) struct AfterPrefix<'s, 'a> {
    pub(crate) below: &'s BlockState<'a>,
    pub(crate) prefix: &'s HashMap<StateKey, StateValue, FxBuildHasher>,
}

impl executor::Storage for AfterPrefix<'_, '_> {
    type Key = StateKey;
    type Value = StateValue;
    type Error = TosError;

    #[inline]
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, TosError> {
        match self.prefix.get(key) {
            Some(value) => Ok(Some(value.clone())),
            None => self.below.value(key),
        }
    }
}
