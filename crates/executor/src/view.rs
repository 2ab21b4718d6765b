//! The view of one incarnation in the parallel executor: reads go to multi-version memory
//! (then storage) and are recorded for validation; writes are buffered until the
//! incarnation finishes.

use crate::vm::{Halt, Overflow, Storage, TxnView};
use crate::write_buffer::{add_to, WriteBuffer};
use mvmemory::{DeltaValue, LocatedReads, MVMemory, ReadKind, ReadOutcome, TxnIndex, WriteOp};
use std::hash::Hash;

/// Why an incarnation was halted by its view.
pub(crate) enum HaltReason<E> {
    /// It read an ESTIMATE of this transaction.
    Dependency(TxnIndex),
    /// Deltas below could not be folded: the no-overflow speculation failed.
    SpeculativeOverflow,
    /// Storage failed.
    Storage(E),
}

pub(crate) struct ParallelView<'a, K, V, O, S: Storage> {
    memory: &'a MVMemory<K, V, O>,
    storage: &'a S,
    txn_idx: TxnIndex,
    pub(crate) reads: LocatedReads<'a, K, V>,
    pub(crate) writes: WriteBuffer<K, V>,
    pub(crate) halt: Option<HaltReason<S::Error>>,
}

impl<'a, K, V, O, S> ParallelView<'a, K, V, O, S>
where
    K: Eq + Hash + Clone,
    V: DeltaValue,
    S: Storage<Key = K, Value = V>,
{
    pub(crate) fn new(memory: &'a MVMemory<K, V, O>, storage: &'a S, txn_idx: TxnIndex) -> Self {
        Self {
            memory,
            storage,
            txn_idx,
            reads: memory.located_reads(),
            writes: WriteBuffer::new(),
            halt: None,
        }
    }

    fn stop(&mut self, reason: HaltReason<S::Error>) -> Halt {
        if self.halt.is_none() {
            self.halt = Some(reason);
        }
        Halt(())
    }

    fn storage_value(&mut self, key: &K) -> Result<Option<V>, Halt> {
        self.storage
            .get(key)
            .map_err(|e| self.stop(HaltReason::Storage(e)))
    }

    /// What the transactions below left at `key` (or storage's value), recorded.
    fn read_below(&mut self, key: &K) -> Result<Option<V>, Halt> {
        let (outcome, location) = self.memory.read_located(key, self.txn_idx);
        let (kind, value) = match outcome {
            ReadOutcome::Versioned(version, value) => (ReadKind::Version(version), Some(value)),
            ReadOutcome::Resolved(n) => (ReadKind::Resolved(n), Some(V::from_u64(n))),
            ReadOutcome::Unresolved(sum) => {
                let base = self.storage_value(key)?;
                match add_to(base.as_ref(), sum) {
                    Some(n) => (ReadKind::Unresolved(sum), Some(V::from_u64(n))),
                    None => return Err(self.stop(HaltReason::SpeculativeOverflow)),
                }
            }
            ReadOutcome::NotFound => (ReadKind::Storage, self.storage_value(key)?),
            ReadOutcome::Dependency(blocking) => {
                return Err(self.stop(HaltReason::Dependency(blocking)))
            }
            ReadOutcome::DeltaOverflow => return Err(self.stop(HaltReason::SpeculativeOverflow)),
        };
        self.reads.push(location, key, kind);
        Ok(value)
    }
}

impl<K, V, O, S> TxnView for ParallelView<'_, K, V, O, S>
where
    K: Eq + Hash + Clone,
    V: DeltaValue,
    S: Storage<Key = K, Value = V>,
{
    type Key = K;
    type Value = V;

    #[inline]
    fn read(&mut self, key: &K) -> Result<Option<V>, Halt> {
        match self.writes.get(key) {
            Some(WriteOp::Value(value)) => Ok(Some(value.clone())),
            Some(&WriteOp::Delta(delta)) => {
                let below = self.read_below(key)?;
                match add_to(below.as_ref(), delta) {
                    Some(n) => Ok(Some(V::from_u64(n))),
                    // Sequentially, this credit would have been rejected when it was added.
                    None => Err(self.stop(HaltReason::SpeculativeOverflow)),
                }
            }
            None => self.read_below(key),
        }
    }

    #[inline]
    fn write(&mut self, key: K, value: V) {
        self.writes.write(key, value);
    }

    #[inline]
    fn add_delta(&mut self, key: K, delta: u64) -> Result<Result<(), Overflow>, Halt> {
        // Blind: speculate that the credit fits on whatever lies below; the final fold
        // checks it. An overflow of this transaction's own sum is exact already.
        Ok(self.writes.add_delta(key, delta))
    }

    fn discard_writes(&mut self) {
        self.writes.clear();
    }
}
