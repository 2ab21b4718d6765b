//! The versions of one key: for each transaction index that wrote it, the latest
//! incarnation's write (a full value or a delta), possibly flagged ESTIMATE.

use crate::sync::{into_inner, lock, Mutex};
use crate::{DeltaValue, Incarnation, TxnIndex, Version};
use smallvec::SmallVec;

/// What a transaction wrote to a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp<V> {
    /// The key now holds this value.
    Value(V),
    /// The key's `u64` value grows by this amount (a commutative credit).
    Delta(u64),
}

#[derive(Debug)]
struct Entry<V> {
    incarnation: Incarnation,
    /// Set when the writing incarnation was aborted: the transaction will probably write
    /// this key again, so a reader waits for it instead of reading a value that is about
    /// to change.
    estimate: bool,
    op: WriteOp<V>,
}

/// The outcome of a read of one key by transaction `txn_idx`: what the highest writers
/// below `txn_idx` left there. Generic over the payload `T` of a full value, so validation
/// can resolve a read without cloning values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadOutcome<T> {
    /// The nearest write below is a full value, written by `Version`.
    Versioned(Version, T),
    /// Deltas above a full value, folded onto it.
    Resolved(u64),
    /// Only deltas, all the way down: the value is storage's value plus this sum.
    Unresolved(u64),
    /// No transaction below wrote the key: read storage.
    NotFound,
    /// The nearest write below is an ESTIMATE of this transaction: wait for it.
    Dependency(TxnIndex),
    /// Folding the deltas overflowed `u64` (or met a value that is not a number): the
    /// speculative assumption that every credit fits failed somewhere below.
    DeltaOverflow,
}

/// Why the final value of a key could not be computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FoldError {
    /// The delta written by this transaction overflows the value below it (or that value
    /// is not a number): sequential execution would have rejected that transaction.
    DeltaOverflow(TxnIndex),
    /// An ESTIMATE was left after the block was done: an executor invariant is broken.
    EstimateLeft(TxnIndex),
}

/// The writes to one key, sorted by transaction index. Most keys of a block have one
/// writer, which fits inline (no allocation); a hot key's writers arrive roughly in block
/// order, so insertion is mostly an append, and lookups are binary searches.
type Entries<V> = SmallVec<[(TxnIndex, Entry<V>); 1]>;

/// The capacity of a key's versions when they first outgrow the inline entry; from
/// there [`KeyVersions::write`] grows them fourfold.
const GROWTH_START: usize = 16;

/// The versions of one key, ordered by transaction index.
pub(crate) struct KeyVersions<V> {
    state: Mutex<State<V>>,
}

/// What a key's lock guards.
struct State<V> {
    entries: Entries<V>,
    /// One more than the highest transaction that read the key through this node (0:
    /// none), so that a write can tell whether a higher transaction may have read around
    /// it (see [`KeyVersions::write`]).
    readers: TxnIndex,
}

#[inline]
fn position<V>(entries: &Entries<V>, txn_idx: TxnIndex) -> Result<usize, usize> {
    entries.binary_search_by_key(&txn_idx, |(idx, _)| *idx)
}

impl<V> KeyVersions<V> {
    /// The versions of a key whose first write is `txn_idx`'s.
    pub(crate) fn with_write(txn_idx: TxnIndex, incarnation: Incarnation, op: WriteOp<V>) -> Self {
        let mut entries = Entries::new();
        entries.push((
            txn_idx,
            Entry {
                incarnation,
                estimate: false,
                op,
            },
        ));
        Self {
            state: Mutex::new(State {
                entries,
                readers: 0,
            }),
        }
    }

    /// The first write of versions no other thread has seen (see `KeyIndex::write`).
    pub(crate) fn into_first_op(self) -> Option<WriteOp<V>> {
        into_inner(self.state)
            .entries
            .into_iter()
            .next()
            .map(|(_, entry)| entry.op)
    }
}

impl<V: DeltaValue> KeyVersions<V> {
    /// The value transaction `txn_idx` reads: the highest write below it, with the deltas
    /// above the nearest full value folded in. `project` maps a full value to the payload.
    /// Counts `txn_idx` among the key's readers.
    pub(crate) fn read<T>(
        &self,
        txn_idx: TxnIndex,
        project: impl FnOnce(&V) -> T,
    ) -> ReadOutcome<T> {
        let mut state = lock(&self.state);
        if state.readers <= txn_idx {
            state.readers = txn_idx.saturating_add(1);
        }
        let entries = &state.entries;
        let below = entries.partition_point(|(idx, _)| *idx < txn_idx);
        let mut deltas: Option<u64> = None;
        for (idx, entry) in entries[..below].iter().rev() {
            let idx = *idx;
            if entry.estimate {
                return ReadOutcome::Dependency(idx);
            }
            match (&entry.op, deltas) {
                (WriteOp::Value(value), None) => {
                    return ReadOutcome::Versioned(
                        Version {
                            txn_idx: idx,
                            incarnation: entry.incarnation,
                        },
                        project(value),
                    )
                }
                (WriteOp::Value(value), Some(sum)) => {
                    return match value.as_u64().and_then(|base| base.checked_add(sum)) {
                        Some(total) => ReadOutcome::Resolved(total),
                        None => ReadOutcome::DeltaOverflow,
                    }
                }
                (WriteOp::Delta(delta), sum) => match sum.unwrap_or(0).checked_add(*delta) {
                    Some(total) => deltas = Some(total),
                    None => return ReadOutcome::DeltaOverflow,
                },
            }
        }
        match deltas {
            Some(sum) => ReadOutcome::Unresolved(sum),
            None => ReadOutcome::NotFound,
        }
    }

    /// Records `txn_idx`'s write of incarnation `incarnation`, replacing its previous one.
    /// Returns whether no higher transaction has read the key through this node so far:
    /// every such read comes after this write in the key's lock order, and so sees it.
    pub(crate) fn write(
        &self,
        txn_idx: TxnIndex,
        incarnation: Incarnation,
        op: WriteOp<V>,
    ) -> bool {
        let entry = Entry {
            incarnation,
            estimate: false,
            op,
        };
        let mut state = lock(&self.state);
        let unread = state.readers <= txn_idx.saturating_add(1);
        let entries = &mut state.entries;
        if entries.len() == entries.capacity() {
            // A key with a second writer is likely to get more (a hot key gets one per
            // transaction): grow to 16 entries at once, then fourfold, not one doubling
            // at a time. Each growth is a `realloc` of memory another worker may have
            // allocated, which takes that worker's allocator arena lock (glibc): with
            // doubling, those reallocations made a third of the futex calls of a
            // contract block, and the contention slowed every other allocation.
            if entries.spilled() {
                // A fresh buffer and a `free` of the old one rather than a `realloc`:
                // glibc reallocates under the old buffer's arena lock, while a small
                // freed buffer goes to this thread's cache without any lock.
                let mut grown = Entries::with_capacity(entries.len() * 4);
                grown.extend(entries.drain(..));
                *entries = grown;
            } else {
                entries.reserve(GROWTH_START.saturating_sub(entries.len()));
            }
        }
        match entries.last() {
            Some((last, _)) if *last < txn_idx => entries.push((txn_idx, entry)),
            None => entries.push((txn_idx, entry)),
            _ => match position(entries, txn_idx) {
                Ok(at) => entries[at].1 = entry,
                Err(at) => entries.insert(at, (txn_idx, entry)),
            },
        }
        unread
    }

    /// Removes `txn_idx`'s write (its new incarnation did not write this key).
    pub(crate) fn remove(&self, txn_idx: TxnIndex) {
        let entries = &mut lock(&self.state).entries;
        if let Ok(at) = position(entries, txn_idx) {
            entries.remove(at);
        }
    }

    /// Flags `txn_idx`'s write as an ESTIMATE.
    pub(crate) fn mark_estimate(&self, txn_idx: TxnIndex) {
        let entries = &mut lock(&self.state).entries;
        if let Ok(at) = position(entries, txn_idx) {
            entries[at].1.estimate = true;
        }
    }

    /// The final value if `txn_idx` is the key's highest writer, `None` otherwise.
    ///
    /// Folds the whole chain in block order and checks every intermediate sum: each delta
    /// must fit on the value below it, exactly as the sequential order would check the
    /// credit. `base` supplies storage's value when the chain starts with deltas.
    pub(crate) fn final_value<E>(
        &self,
        txn_idx: TxnIndex,
        base: impl FnOnce() -> Result<Option<V>, E>,
    ) -> Result<Option<V>, FinalError<E>> {
        let state = lock(&self.state);
        let entries = &state.entries;
        match entries.last() {
            Some((last, _)) if *last == txn_idx => {}
            _ => return Ok(None),
        }
        enum Acc<'a, V> {
            Start,
            Value(&'a V),
            Number(u64),
        }
        let mut acc = Acc::Start;
        let mut base = Some(base);
        for (idx, entry) in entries.iter() {
            let idx = *idx;
            if entry.estimate {
                return Err(FinalError::Fold(FoldError::EstimateLeft(idx)));
            }
            acc = match &entry.op {
                WriteOp::Value(value) => Acc::Value(value),
                WriteOp::Delta(delta) => {
                    let below = match acc {
                        Acc::Number(n) => Some(n),
                        Acc::Value(value) => value.as_u64(),
                        Acc::Start => {
                            let storage = match base.take() {
                                Some(read) => read().map_err(FinalError::Base)?,
                                None => None,
                            };
                            match storage {
                                Some(value) => value.as_u64(),
                                None => Some(0),
                            }
                        }
                    };
                    match below.and_then(|b| b.checked_add(*delta)) {
                        Some(total) => Acc::Number(total),
                        None => return Err(FinalError::Fold(FoldError::DeltaOverflow(idx))),
                    }
                }
            };
        }
        Ok(match acc {
            Acc::Start => None,
            Acc::Value(value) => Some(value.clone()),
            Acc::Number(n) => Some(V::from_u64(n)),
        })
    }
}

/// Why a final value could not be computed: a fold failure or the base read's error.
#[derive(Debug)]
pub enum FinalError<E> {
    /// The chain of writes does not fold.
    Fold(FoldError),
    /// Reading the base value from storage failed.
    Base(E),
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_hot_key_grows_in_few_reallocations() {
        let versions = KeyVersions::with_write(0, 0, WriteOp::Value(0u64));
        let capacity = || lock(&versions.state).entries.capacity();
        assert_eq!(capacity(), 1);
        let mut capacities = vec![];
        for txn_idx in 1..200 {
            versions.write(txn_idx, 0, WriteOp::Delta(1));
            if capacities.last() != Some(&capacity()) {
                capacities.push(capacity());
            }
        }
        // Inline, then 16 entries, then fourfold: three allocations for 200 writers where
        // doubling from one would take eight.
        assert_eq!(capacities, vec![16, 64, 256]);
        assert_eq!(versions.read(200, |_| ()), ReadOutcome::Resolved(199));
    }
}
