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
        keys: impl IntoIterator<Item = StateKey>,
    ) -> Result<BlockState<'a>, StorageError> {
        let keys = unique(keys);
        let reads = keys
            .iter()
            .map(|k| storage.get_versioned_async(k, base_topoheight));
        let values = futures::future::try_join_all(reads).await?;
        Ok(BlockState {
            base_topoheight,
            preloaded: keys.into_iter().zip(values).collect(),
            fallback: Box::new(BlockingReads(storage)),
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
            None => Ok(self.fallback.get(key, self.base_topoheight)?),
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
