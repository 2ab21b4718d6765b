//! An in-memory store, for tests and tools, with failure injection.

use super::{check_next_topoheight, Change, TosStorage, Versioned};
use crate::error::StorageError;
use crate::state::{StateKey, StateValue};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

#[derive(Default)]
struct Inner {
    topoheight: u64,
    written: bool,
    versions: HashMap<StateKey, BTreeMap<u64, (StateValue, Option<u64>)>>,
}

/// State in memory. `RwLock`ed: reads in parallel, a block's write atomic.
#[derive(Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
    fail_reads_of: Mutex<Option<StateKey>>,
    /// Whether `fail_reads_of` holds a key: reads lock it only then, so concurrent reads
    /// (contract storage read through by every worker) share no lock but the `RwLock`'s.
    failing_reads: AtomicBool,
    fail_writes: AtomicBool,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every read of `key` fail (`None`: no failures), to test block errors.
    pub fn fail_reads_of(&self, key: Option<StateKey>) {
        let mut slot = self.fail_reads_of.lock().unwrap_or_else(|p| p.into_inner());
        self.failing_reads.store(key.is_some(), Ordering::SeqCst);
        *slot = key;
    }

    /// Makes every block write fail, to test that a failed write leaves nothing.
    pub fn fail_writes(&self, fail: bool) {
        self.fail_writes.store(fail, Ordering::SeqCst);
    }

    /// Every key with its latest value.
    pub fn latest(&self) -> Vec<(StateKey, StateValue)> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = inner
            .versions
            .iter()
            .filter_map(|(k, v)| {
                v.last_key_value()
                    .map(|(_, (value, _))| (k.clone(), value.clone()))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl TosStorage for MemoryStore {
    fn topoheight(&self) -> Result<u64, StorageError> {
        Ok(self
            .inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .topoheight)
    }

    fn is_empty(&self) -> Result<bool, StorageError> {
        Ok(!self.inner.read().unwrap_or_else(|p| p.into_inner()).written)
    }

    fn get_versioned(
        &self,
        key: &StateKey,
        topoheight: u64,
    ) -> Result<Option<Versioned<StateValue>>, StorageError> {
        if self.failing_reads.load(Ordering::Relaxed)
            && self
                .fail_reads_of
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                == Some(key)
        {
            return Err(StorageError::Injected(format!("read of {key:?}")));
        }
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        Ok(inner.versions.get(key).and_then(|versions| {
            versions
                .range(..=topoheight)
                .next_back()
                .map(|(&topo, (value, previous))| Versioned {
                    topoheight: topo,
                    value: value.clone(),
                    previous_topoheight: *previous,
                })
        }))
    }

    fn latest_entries(&self) -> Result<Vec<(StateKey, StateValue)>, StorageError> {
        Ok(self.latest())
    }

    fn history(&self, key: &StateKey) -> Result<Vec<Versioned<StateValue>>, StorageError> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        Ok(inner
            .versions
            .get(key)
            .map(|versions| {
                versions
                    .iter()
                    .rev()
                    .map(|(&topo, (value, previous))| Versioned {
                        topoheight: topo,
                        value: value.clone(),
                        previous_topoheight: *previous,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    fn write_block(&self, topoheight: u64, changes: &[Change]) -> Result<(), StorageError> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(StorageError::Injected("block write".into()));
        }
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        check_next_topoheight(inner.written, inner.topoheight, topoheight)?;
        for (key, value) in changes {
            let versions = inner.versions.entry(key.clone()).or_default();
            let previous = versions.last_key_value().map(|(&topo, _)| topo);
            versions.insert(topoheight, (value.clone(), previous));
        }
        inner.topoheight = topoheight;
        inner.written = true;
        Ok(())
    }
}
