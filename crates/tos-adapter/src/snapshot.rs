//! The state a block executes on: a block's declared keys preloaded from storage at the
//! topoheight below the block, with anything else read through on demand.

use crate::error::{StorageError, TosError};
use crate::state::{StateKey, StateValue};
use crate::storage::{AsyncTosStorage, TosStorage, Versioned};
use mvmemory::FxBuildHasher;
use std::collections::{HashMap, HashSet};

type Preloaded = HashMap<StateKey, Option<Versioned<StateValue>>, FxBuildHasher>;

/// The state below a block: preloaded versions, and a storage for keys not preloaded.
pub struct BlockState<'a> {
    base_topoheight: u64,
    preloaded: Preloaded,
    fallback: Option<&'a dyn TosStorage>,
}

impl std::fmt::Debug for BlockState<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockState")
            .field("base_topoheight", &self.base_topoheight)
            .field("preloaded", &self.preloaded.len())
            .finish_non_exhaustive()
    }
}

fn unique(keys: impl IntoIterator<Item = StateKey>) -> Vec<StateKey> {
    let mut seen = HashSet::with_hasher(FxBuildHasher::default());
    keys.into_iter()
        .filter(|k| seen.insert(k.clone()))
        .collect()
}

impl<'a> BlockState<'a> {
    /// Preloads `keys` from `storage` at `base_topoheight` on up to `threads` threads; other
    /// keys are read from `storage` when asked for.
    pub fn preload<S: TosStorage>(
        storage: &'a S,
        base_topoheight: u64,
        keys: impl IntoIterator<Item = StateKey>,
        threads: usize,
    ) -> Result<Self, StorageError> {
        let keys = unique(keys);
        let chunk = keys.len().div_ceil(threads.max(1)).max(1);
        let loaded: Vec<Result<Vec<_>, StorageError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = keys
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|k| Ok((k.clone(), storage.get_versioned(k, base_topoheight)?)))
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
        let mut preloaded =
            Preloaded::with_capacity_and_hasher(keys.len(), FxBuildHasher::default());
        for part in loaded {
            preloaded.extend(part?);
        }
        Ok(Self {
            base_topoheight,
            preloaded,
            fallback: Some(storage),
        })
    }

    /// Preloads `keys` from an async storage, all reads concurrently. Keys not preloaded
    /// cannot be read later: executing a transaction that needs one fails the block (every
    /// TOS transaction kind here declares its keys exactly).
    pub async fn preload_async<S: AsyncTosStorage>(
        storage: &S,
        base_topoheight: u64,
        keys: impl IntoIterator<Item = StateKey>,
    ) -> Result<BlockState<'static>, StorageError> {
        let keys = unique(keys);
        let reads = keys
            .iter()
            .map(|k| storage.get_versioned_async(k, base_topoheight));
        let values = futures::future::try_join_all(reads).await?;
        Ok(BlockState {
            base_topoheight,
            preloaded: keys.into_iter().zip(values).collect(),
            fallback: None,
        })
    }

    /// The topoheight the state is read at.
    pub fn base_topoheight(&self) -> u64 {
        self.base_topoheight
    }

    /// The version of `key` below the block.
    pub fn version(&self, key: &StateKey) -> Result<Option<Versioned<StateValue>>, TosError> {
        match self.preloaded.get(key) {
            Some(version) => Ok(version.clone()),
            None => match self.fallback {
                Some(storage) => Ok(storage.get_versioned(key, self.base_topoheight)?),
                None => Err(TosError::Storage(StorageError::Database(format!(
                    "{key:?} was not preloaded and the storage is async-only"
                )))),
            },
        }
    }

    /// The value of `key` below the block.
    pub fn value(&self, key: &StateKey) -> Result<Option<StateValue>, TosError> {
        match self.preloaded.get(key) {
            Some(version) => Ok(version.as_ref().map(|v| v.value.clone())),
            None => Ok(self.version(key)?.map(|v| v.value)),
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
