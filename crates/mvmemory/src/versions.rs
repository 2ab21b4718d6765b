//! The versions of one key: for each transaction index that wrote it, the latest
//! incarnation's write (a full value or a delta), possibly flagged ESTIMATE.

use crate::sync::{get_mut, into_inner, lock, Mutex};
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

/// Emptied heap buffers of versions, kept by one writer for the keys it grows next.
///
/// A hot key's buffer is usually allocated by one worker and, in a later block, dropped
/// by another (whichever takes the chunk of its node). With glibc, that free takes the
/// allocating thread's arena lock, contended by everything that thread allocates. So the
/// writer that drops an old node keeps its buffer here instead, and its next growths take
/// buffers from here before allocating; the index keeps the writers' spares from block
/// to block (`KeyIndex`), so a recycled buffer is never freed while the index lives.
pub(crate) struct Spare<V> {
    buffers: Vec<Entries<V>>,
}

/// The most buffers one [`Spare`] keeps.
const MAX_SPARES: usize = 64;
/// The largest buffer a [`Spare`] keeps, in entries.
const MAX_SPARE_CAPACITY: usize = 1024;

impl<V> Spare<V> {
    pub(crate) fn new() -> Self {
        Self {
            buffers: Vec::new(),
        }
    }

    /// Keeps `entries`' buffer, emptied, if it is a heap buffer worth keeping.
    fn keep(&mut self, mut entries: Entries<V>) {
        if entries.spilled()
            && entries.capacity() <= MAX_SPARE_CAPACITY
            && self.buffers.len() < MAX_SPARES
        {
            entries.clear();
            self.buffers.push(entries);
        }
    }

    /// An empty buffer of at least `capacity` entries, if the last one kept is one.
    fn take(&mut self, capacity: usize) -> Option<Entries<V>> {
        match self.buffers.last() {
            Some(last) if last.capacity() >= capacity => self.buffers.pop(),
            _ => None,
        }
    }

    /// How many buffers it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buffers.len()
    }
}

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

/// Entries looked at from the end before [`count_below`] falls back to a binary search.
const SCAN_FROM_END: usize = 4;

/// How many of `entries` (sorted by index) are below `txn_idx`. A reader usually comes
/// after all or all but a few of a key's writers (transactions execute and validate
/// roughly in block order), so this looks at the last few entries first: one cache line
/// where a binary search of a hot key's versions touches one per step.
#[inline]
fn count_below<E>(entries: &[(TxnIndex, E)], txn_idx: TxnIndex) -> usize {
    let mut below = entries.len();
    for (at, (idx, _)) in entries.iter().enumerate().rev().take(SCAN_FROM_END) {
        if *idx < txn_idx {
            return at + 1;
        }
        below = at;
    }
    // `below` is at most the length: the slice is always there.
    entries
        .get(..below)
        .map_or(0, |head| head.partition_point(|(idx, _)| *idx < txn_idx))
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

    /// Moves the versions' heap buffer, if any, into `spare` (the node is being dropped).
    pub(crate) fn recycle(&mut self, spare: &mut Spare<V>) {
        let entries = std::mem::take(&mut get_mut(&mut self.state).entries);
        spare.keep(entries);
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
        let below = count_below(entries, txn_idx);
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
    ///
    /// Grows into a buffer of `spare` where it can, and leaves the buffer it outgrew there.
    pub(crate) fn write(
        &self,
        txn_idx: TxnIndex,
        incarnation: Incarnation,
        op: WriteOp<V>,
        spare: &mut Spare<V>,
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
            // Into another buffer rather than by `realloc`: glibc reallocates under the
            // old buffer's arena lock; the old buffer goes to `spare` instead.
            let capacity = if entries.spilled() {
                entries.len().saturating_mul(4)
            } else {
                GROWTH_START
            };
            let mut grown = spare
                .take(capacity)
                .unwrap_or_else(|| Entries::with_capacity(capacity));
            grown.extend(entries.drain(..));
            spare.keep(std::mem::replace(entries, grown));
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
    fn count_below_is_a_partition_point() {
        for len in 0..24usize {
            // Every other index written: readers between, on and around the writers.
            let entries: Vec<(TxnIndex, ())> = (0..len).map(|i| (2 * i + 1, ())).collect();
            for txn_idx in 0..2 * len + 3 {
                assert_eq!(
                    count_below(&entries, txn_idx),
                    entries.partition_point(|(idx, _)| *idx < txn_idx),
                    "{len} entries, reader {txn_idx}"
                );
            }
        }
    }

    #[test]
    fn a_hot_key_grows_in_few_reallocations() {
        let versions = KeyVersions::with_write(0, 0, WriteOp::Value(0u64));
        let mut spare = Spare::new();
        let capacity = || lock(&versions.state).entries.capacity();
        assert_eq!(capacity(), 1);
        let mut capacities = vec![];
        for txn_idx in 1..200 {
            versions.write(txn_idx, 0, WriteOp::Delta(1), &mut spare);
            if capacities.last() != Some(&capacity()) {
                capacities.push(capacity());
            }
        }
        // Inline, then 16 entries, then fourfold: three allocations for 200 writers where
        // doubling from one would take eight. The outgrown buffers wait in the spare.
        assert_eq!(capacities, vec![16, 64, 256]);
        assert_eq!(spare.len(), 2);
        assert_eq!(versions.read(200, |_| ()), ReadOutcome::Resolved(199));
    }

    #[test]
    fn growth_takes_a_spare_buffer_and_dropped_versions_leave_theirs() {
        let mut spare = Spare::new();
        let mut hot = KeyVersions::with_write(0, 0, WriteOp::Value(0u64));
        for txn_idx in 1..20 {
            hot.write(txn_idx, 0, WriteOp::Delta(1), &mut spare);
        }
        // The 16-entry buffer it outgrew is spare; the node's 64-entry one goes there
        // when the node is dropped.
        assert_eq!(spare.len(), 1);
        hot.recycle(&mut spare);
        assert_eq!(spare.len(), 2);
        // A key growing past one entry takes the last buffer kept (64 entries), with no
        // allocation, and leaves nothing behind (its inline entry has no buffer).
        let next = KeyVersions::with_write(0, 0, WriteOp::Value(1u64));
        next.write(1, 0, WriteOp::Value(2), &mut spare);
        assert_eq!(spare.len(), 1);
        assert_eq!(lock(&next.state).entries.capacity(), 64);
        assert_eq!(
            next.read(2, |v| *v),
            ReadOutcome::Versioned(
                Version {
                    txn_idx: 1,
                    incarnation: 0
                },
                2
            )
        );
        // Growing to 16 takes the 16-entry buffer; growing to 64 finds nothing spare,
        // allocates, and keeps the 16-entry buffer it outgrew.
        let mut big = KeyVersions::with_write(0, 0, WriteOp::Value(0u64));
        big.write(1, 0, WriteOp::Value(3), &mut spare);
        assert_eq!(spare.len(), 0);
        for txn_idx in 2..=16 {
            big.write(txn_idx, 0, WriteOp::Value(3), &mut spare);
        }
        assert_eq!(lock(&big.state).entries.capacity(), 64);
        assert_eq!(spare.len(), 1);
        // Growing to 256: the spare 16-entry buffer is too small and stays; the 64-entry
        // one joins it.
        for txn_idx in 17..=64 {
            big.write(txn_idx, 0, WriteOp::Value(3), &mut spare);
        }
        assert_eq!(lock(&big.state).entries.capacity(), 256);
        assert_eq!(spare.len(), 2);
        big.recycle(&mut spare);
        assert_eq!(spare.len(), 3);
    }
}
