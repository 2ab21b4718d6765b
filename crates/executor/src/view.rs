//! The view of one incarnation in the parallel executor: reads go to multi-version memory
//! (then storage) and are recorded for validation; writes are buffered until the
//! incarnation finishes.

use crate::vm::{Halt, KeyClaim, Overflow, Storage, TxnView};
use crate::write_buffer::{add_to, WriteBuffer};
use mvmemory::{
    DeltaValue, LocatedReads, MVMemory, ReadKind, ReadOutcome, TxnIndex, WriteOp, WriteSet,
};
use smallvec::SmallVec;
use std::hash::Hash;

/// Why an incarnation was halted by its view.
pub(crate) enum HaltReason<E> {
    /// It read an ESTIMATE of this transaction.
    Dependency(TxnIndex),
    /// Deltas below could not be folded: the no-overflow speculation failed.
    SpeculativeOverflow,
    /// Storage failed.
    Storage(E),
    /// It touched a key against the storage's claim ([`Storage::claim`]).
    ClaimBroken,
}

/// What an incarnation did to claimed keys ([`KeyClaim`]), kept with its output rather
/// than in the multi-version memory. Boxed, and only when there is any: the slot that
/// keeps it, and every move on the way there, stay small for transactions without.
pub(crate) struct Claimed<K, V> {
    /// Final values of keys exclusive to its transaction.
    pub(crate) exclusive: SmallVec<[(K, V); 4]>,
    /// Credits to credit-only keys, by slot ([`KeyClaim::CreditOnly`]).
    pub(crate) credits: SmallVec<[(usize, u64); 4]>,
}

impl<K, V> Default for Claimed<K, V> {
    fn default() -> Self {
        Self {
            exclusive: SmallVec::new(),
            credits: SmallVec::new(),
        }
    }
}

/// An incarnation's effects, sorted for recording: what goes to the memory (its located
/// reads, its writes of shared keys) and what does not.
pub(crate) struct Effects<'a, K, V> {
    pub(crate) reads: LocatedReads<'a, K, V>,
    pub(crate) writes: WriteSet<K, V>,
    pub(crate) claimed: Option<Box<Claimed<K, V>>>,
}

pub(crate) struct ParallelView<'a, K, V, O, S: Storage> {
    memory: &'a MVMemory<K, V, O>,
    storage: &'a S,
    txn_idx: TxnIndex,
    pub(crate) reads: LocatedReads<'a, K, V>,
    pub(crate) writes: WriteBuffer<K, V>,
    pub(crate) halt: Option<HaltReason<S::Error>>,
    /// Whether the storage may claim keys in this block ([`Storage::has_claims`]).
    claims: bool,
    /// Reads of keys exclusive to this transaction (not recorded).
    pub(crate) exclusive_reads: u64,
    /// The keys those reads found exclusive to it: writing one needs no second lookup.
    exclusive_keys: SmallVec<[K; 4]>,
}

impl<'a, K, V, O, S> ParallelView<'a, K, V, O, S>
where
    K: Eq + Hash + Clone,
    V: DeltaValue,
    S: Storage<Key = K, Value = V>,
{
    pub(crate) fn new(
        memory: &'a MVMemory<K, V, O>,
        storage: &'a S,
        txn_idx: TxnIndex,
        claims: bool,
    ) -> Self {
        Self {
            memory,
            storage,
            txn_idx,
            reads: memory.located_reads(),
            writes: WriteBuffer::new(),
            halt: None,
            claims,
            exclusive_reads: 0,
            exclusive_keys: SmallVec::new(),
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

    /// The incarnation's effects sorted by the keys' claims: writes of shared keys for
    /// the memory; final values of keys exclusive to this transaction (a credit to one
    /// added to storage's value: nothing else adds to it); credits to credit-only keys.
    /// Fails if a write breaks a claim, or if a credit to an exclusive key does not fit.
    pub(crate) fn into_effects(self) -> Result<Effects<'a, K, V>, HaltReason<S::Error>> {
        let ops = self.writes.into_ops();
        if !self.claims {
            return Ok(Effects {
                reads: self.reads,
                writes: ops,
                claimed: None,
            });
        }
        let mut claimed: Option<Box<Claimed<K, V>>> = None;
        let mut shared = WriteSet::new();
        for (key, op) in ops {
            // A credit needs storage's value if the key is exclusive: one lookup for both.
            let (base, claim) = if self.exclusive_keys.contains(&key) {
                (None, KeyClaim::Exclusive(self.txn_idx))
            } else if let WriteOp::Delta(_) = op {
                let (value, claim) = self
                    .storage
                    .get_claimed(&key)
                    .map_err(HaltReason::Storage)?;
                (Some(value), claim)
            } else {
                (None, self.storage.claim(&key))
            };
            match (claim, op) {
                (KeyClaim::Shared, op) => shared.push((key, op)),
                (KeyClaim::Exclusive(owner), op) if owner == self.txn_idx => {
                    let value = match op {
                        WriteOp::Value(value) => value,
                        WriteOp::Delta(delta) => {
                            let base = match base {
                                Some(base) => base,
                                None => self.storage.get(&key).map_err(HaltReason::Storage)?,
                            };
                            match add_to(base.as_ref(), delta) {
                                Some(n) => V::from_u64(n),
                                None => return Err(HaltReason::SpeculativeOverflow),
                            }
                        }
                    };
                    claimed
                        .get_or_insert_with(Box::default)
                        .exclusive
                        .push((key, value));
                }
                (KeyClaim::CreditOnly(slot), WriteOp::Delta(delta)) => {
                    claimed
                        .get_or_insert_with(Box::default)
                        .credits
                        .push((slot, delta));
                }
                (KeyClaim::Exclusive(_) | KeyClaim::CreditOnly(_), _) => {
                    return Err(HaltReason::ClaimBroken)
                }
            }
        }
        Ok(Effects {
            reads: self.reads,
            writes: shared,
            claimed,
        })
    }

    /// What the transactions below left at `key` (or storage's value), recorded.
    fn read_below(&mut self, key: &K) -> Result<Option<V>, Halt> {
        // With claims, storage first: a claimed key is never in the memory (any write of
        // it there would have broken the claim), so its read ends here.
        let mut stored = None;
        if self.claims {
            let (value, claim) = self
                .storage
                .get_claimed(key)
                .map_err(|e| self.stop(HaltReason::Storage(e)))?;
            match claim {
                KeyClaim::Shared => stored = Some(value),
                // Nothing else reads or writes it: nothing to validate.
                KeyClaim::Exclusive(owner) if owner == self.txn_idx => {
                    self.exclusive_reads += 1;
                    self.exclusive_keys.push(key.clone());
                    return Ok(value);
                }
                KeyClaim::Exclusive(_) | KeyClaim::CreditOnly(_) => {
                    return Err(self.stop(HaltReason::ClaimBroken))
                }
            }
        }
        let (outcome, location) = self.memory.read_located(key, self.txn_idx);
        let (kind, value) = match outcome {
            ReadOutcome::Versioned(version, value) => (ReadKind::Version(version), Some(value)),
            ReadOutcome::Resolved(n) => (ReadKind::Resolved(n), Some(V::from_u64(n))),
            ReadOutcome::Unresolved(sum) => {
                let base = match stored {
                    Some(value) => value,
                    None => self.storage_value(key)?,
                };
                match add_to(base.as_ref(), sum) {
                    Some(n) => (ReadKind::Unresolved(sum), Some(V::from_u64(n))),
                    None => return Err(self.stop(HaltReason::SpeculativeOverflow)),
                }
            }
            ReadOutcome::NotFound => match stored {
                Some(value) => (ReadKind::Storage, value),
                None => (ReadKind::Storage, self.storage_value(key)?),
            },
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
