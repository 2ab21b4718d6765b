//! The key index: from a key to the versions written to it.
//!
//! Normally a sharded `DashMap` (a read takes one shard's read lock; inserting a key never
//! seen in the block takes that shard's write lock). Under `cfg(loom)` a single loom mutex
//! around a `HashMap`, so that loom sees every synchronisation the index does.
//!
//! Lock order: a shard lock (or the loom map lock) may be held while taking a key's
//! [`KeyVersions`] lock, never the other way round: no code takes an index lock while
//! holding a key lock.

use crate::versions::KeyVersions;
use std::hash::Hash;

#[cfg(not(loom))]
mod imp {
    use super::*;
    use crate::hash::FxBuildHasher;
    use dashmap::DashMap;

    /// Shards of the index (a power of two): 256 keeps two threads of 32 on different
    /// shards almost always, for 256 small locks.
    const SHARDS: usize = 256;

    pub(crate) struct KeyIndex<K, V> {
        map: DashMap<K, KeyVersions<V>, FxBuildHasher>,
    }

    impl<K: Eq + Hash + Clone, V> KeyIndex<K, V> {
        /// An index sized for about `capacity` keys, in enough shards that worker
        /// threads rarely meet on one.
        pub(crate) fn new(capacity: usize) -> Self {
            Self {
                map: DashMap::with_capacity_and_hasher_and_shard_amount(
                    capacity,
                    FxBuildHasher::default(),
                    SHARDS,
                ),
            }
        }

        /// Runs `f` on the versions of `key`, if the key was ever written in this block.
        #[inline]
        pub(crate) fn with<R>(&self, key: &K, f: impl FnOnce(&KeyVersions<V>) -> R) -> Option<R> {
            self.map.get(key).map(|entry| f(entry.value()))
        }

        /// Forgets every key, keeping the shards' tables. (`DashMap::clear` erases the
        /// entries one by one; clearing each table whole is several times faster.)
        pub(crate) fn clear(&mut self) {
            for shard in self.map.shards_mut() {
                shard.get_mut().clear();
            }
        }

        /// Runs `f` on the versions of `key`, creating them on the key's first write.
        /// Takes the shard's write lock directly: most writes are a key's first.
        #[inline]
        pub(crate) fn with_or_insert<R>(&self, key: &K, f: impl FnOnce(&KeyVersions<V>) -> R) -> R {
            let entry = self.map.entry(key.clone()).or_default();
            f(entry.value())
        }
    }
}

#[cfg(loom)]
mod imp {
    use super::*;
    use crate::sync::{lock, Arc, Mutex};
    use std::collections::HashMap;

    pub(crate) struct KeyIndex<K, V> {
        map: Mutex<HashMap<K, Arc<KeyVersions<V>>>>,
    }

    impl<K: Eq + Hash + Clone, V> KeyIndex<K, V> {
        pub(crate) fn new(_capacity: usize) -> Self {
            Self {
                map: Mutex::new(HashMap::new()),
            }
        }

        pub(crate) fn with<R>(&self, key: &K, f: impl FnOnce(&KeyVersions<V>) -> R) -> Option<R> {
            let versions = lock(&self.map).get(key).cloned();
            versions.map(|v| f(&v))
        }

        pub(crate) fn clear(&mut self) {
            lock(&self.map).clear();
        }

        pub(crate) fn with_or_insert<R>(&self, key: &K, f: impl FnOnce(&KeyVersions<V>) -> R) -> R {
            let versions = lock(&self.map)
                .entry(key.clone())
                .or_insert_with(|| Arc::new(KeyVersions::default()))
                .clone();
            f(&versions)
        }
    }
}

pub(crate) use imp::KeyIndex;
