//! The view of one incarnation in the parallel executor: reads go to multi-version memory
//! (then storage) and are recorded for validation; writes are buffered until the
//! incarnation finishes.

use crate::vm::{covers, Halt, KeyClaim, Overflow, Storage, TxnView};
use crate::write_buffer::{add_to, debit_from, sub_from, WriteBuffer};
use mvmemory::{
    ChainError, CheckHandle, DeltaValue, LocatedReads, Location, MVMemory, ReadKind, ReadOutcome,
    TxnIndex, WriteOp, WriteSet,
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
    /// What checks of this incarnation showed of the values below its own writes.
    covered: SmallVec<[Covered<K>; 2]>,
}

/// What the checks of one incarnation showed of the value below it at one key.
struct Covered<K> {
    key: K,
    /// The most a check that held required: the debits the incarnation may write as
    /// deltas ([`TxnView::debit`]).
    covered: u64,
    /// The number the first check saw: a later check it covers holds on it, and raises
    /// what the recorded check requires instead of reading again.
    seen: u64,
    /// The recorded check (none for a key exclusive to the transaction).
    handle: Option<CheckHandle>,
}

/// What lies below an incarnation at a key, before it is recorded.
enum Below<'a, K, V> {
    /// A key exclusive to the incarnation: storage's value, not recorded.
    Exclusive(Option<V>),
    /// A consistent read: its value, the [`ReadKind`] that records it exactly, and
    /// storage's number where the read knows it.
    Read {
        location: Location<'a, K, V>,
        value: Option<V>,
        kind: ReadKind,
        base: Option<u64>,
    },
    /// A fold that went below zero ([`ReadOutcome::DebitUnderflow`]).
    Inconsistent(Location<'a, K, V>),
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
            covered: SmallVec::new(),
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
            } else if let WriteOp::Delta(_) | WriteOp::Debit(_) = op {
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
                    // A credit or debit lands on storage's value: nothing else touches it.
                    let fold = |number: fn(Option<&V>, u64) -> Option<u64>, amount| {
                        let base = match base {
                            Some(base) => base,
                            None => self.storage.get(&key).map_err(HaltReason::Storage)?,
                        };
                        number(base.as_ref(), amount)
                            .map(V::from_u64)
                            .ok_or(HaltReason::SpeculativeOverflow)
                    };
                    let value = match op {
                        WriteOp::Value(value) => value,
                        WriteOp::Delta(delta) => fold(add_to, delta)?,
                        // Its check read storage's value, exactly: it covers the debit.
                        WriteOp::Debit(debit) => fold(sub_from, debit)?,
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

    /// What the transactions below left at `key` (or storage's value), not yet recorded.
    fn look_below(&mut self, key: &K) -> Result<Below<'a, K, V>, Halt> {
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
                    return Ok(Below::Exclusive(value));
                }
                KeyClaim::Exclusive(_) | KeyClaim::CreditOnly(_) => {
                    return Err(self.stop(HaltReason::ClaimBroken))
                }
            }
        }
        let (outcome, location) = self.memory.read_located(key, self.txn_idx);
        let (value, kind, base) = match outcome {
            ReadOutcome::Versioned(version, value) => {
                (Some(value), ReadKind::Version(version), None)
            }
            ReadOutcome::Resolved(n) => (Some(V::from_u64(n)), ReadKind::Resolved(n), None),
            ReadOutcome::Unresolved(chain) => {
                // Storage's number: looked up with the claim, kept in the memory by an
                // earlier reader, or looked up now (and kept for the next readers).
                let stored = match (stored, location.base()) {
                    (Some(value), _) => Ok(value),
                    (None, Some(base)) => Err(base),
                    (None, None) => Ok(self.storage_value(key)?),
                };
                let base = match stored {
                    Err(base) => base,
                    Ok(value) => {
                        let Some(base) = value.as_ref().map_or(Some(0), V::as_u64) else {
                            return Err(self.stop(HaltReason::SpeculativeOverflow));
                        };
                        if !self.claims {
                            self.memory.keep_base(&location, base);
                        }
                        base
                    }
                };
                match chain.on(base) {
                    Ok(n) => (
                        Some(V::from_u64(n)),
                        ReadKind::Unresolved { value: n, base },
                        Some(base),
                    ),
                    Err(ChainError::Underflow) => return Ok(Below::Inconsistent(location)),
                    Err(ChainError::Overflow) => {
                        return Err(self.stop(HaltReason::SpeculativeOverflow))
                    }
                }
            }
            ReadOutcome::NotFound => {
                let value = match stored {
                    Some(value) => value,
                    None => self.storage_value(key)?,
                };
                let base = value.as_ref().map_or(Some(0), V::as_u64);
                (value, ReadKind::Storage, base)
            }
            ReadOutcome::Dependency(blocking) => {
                return Err(self.stop(HaltReason::Dependency(blocking)))
            }
            ReadOutcome::DeltaOverflow => return Err(self.stop(HaltReason::SpeculativeOverflow)),
            ReadOutcome::DebitUnderflow => return Ok(Below::Inconsistent(location)),
        };
        Ok(Below::Read {
            location,
            value,
            kind,
            base,
        })
    }

    /// What the transactions below left at `key` (or storage's value), recorded. An
    /// inconsistent state reads as 0, recorded as a read that never validates.
    fn read_below(&mut self, key: &K) -> Result<Option<V>, Halt> {
        Ok(match self.look_below(key)? {
            Below::Exclusive(value) => value,
            Below::Read {
                location,
                value,
                kind,
                ..
            } => {
                self.reads.push(location, key, kind);
                value
            }
            Below::Inconsistent(location) => {
                self.reads.push(location, key, ReadKind::Inconsistent);
                Some(V::from_u64(0))
            }
        })
    }

    /// Whether the number below this incarnation at `key` is at least `required`: if it
    /// is, records that predicate (not the value) and notes the key covered up to it.
    /// Otherwise records the read and returns the value.
    fn check_below(&mut self, key: &K, required: u64) -> Result<Result<(), Option<V>>, Halt> {
        if let Some(entry) = self.covered.iter_mut().find(|c| c.key == *key) {
            if entry.seen >= required {
                entry.covered = entry.covered.max(required);
                if let Some(handle) = entry.handle {
                    self.reads.raise_check(handle, required);
                }
                return Ok(Ok(()));
            }
        }
        let (value, handle) = match self.look_below(key)? {
            Below::Exclusive(value) => (value, None),
            Below::Read {
                location,
                value,
                kind,
                base,
            } => {
                if !covers(value.as_ref(), required) {
                    self.reads.push(location, key, kind);
                    return Ok(Err(value));
                }
                let handle = self.reads.push_check(location, key, required, base);
                (value, Some(handle))
            }
            Below::Inconsistent(location) => {
                self.reads.push(location, key, ReadKind::Inconsistent);
                return Ok(Err(Some(V::from_u64(0))));
            }
        };
        let seen = match value.as_ref().map_or(Some(0), V::as_u64) {
            Some(n) if n >= required => n,
            _ => return Ok(Err(value)),
        };
        match self.covered.iter_mut().find(|c| c.key == *key) {
            Some(entry) => {
                entry.covered = entry.covered.max(required);
                entry.seen = seen;
                entry.handle = handle;
            }
            None => self.covered.push(Covered {
                key: key.clone(),
                covered: required,
                seen,
                handle,
            }),
        }
        Ok(Ok(()))
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
            Some(&WriteOp::Debit(debit)) => Ok(debit_from(self.read_below(key)?, debit)),
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

    fn check(&mut self, key: &K, required: u64) -> Result<Result<(), Option<V>>, Halt> {
        // What the value below must hold for the check to hold on this incarnation's own
        // writes.
        let below = match self.writes.get(key) {
            None => required,
            Some(&WriteOp::Debit(debit)) => match required.checked_add(debit) {
                Some(below) => below,
                None => return crate::vm::exact_check(self, key, required),
            },
            // Its own credits hold that much whatever lies below (the fold checks that
            // they fit).
            Some(&WriteOp::Delta(credit)) if credit >= required => return Ok(Ok(())),
            Some(WriteOp::Delta(_) | WriteOp::Value(_)) => {
                return crate::vm::exact_check(self, key, required)
            }
        };
        match self.check_below(key, below)? {
            Ok(()) => Ok(Ok(())),
            // The value as this incarnation sees it.
            Err(value) => Ok(Err(match self.writes.get(key) {
                Some(&WriteOp::Debit(debit)) => debit_from(value, debit),
                _ => value,
            })),
        }
    }

    fn debit(&mut self, key: K, amount: u64) -> Result<(), Halt> {
        let written = self.writes.get(&key);
        let unwritten = written.is_none();
        let own_debit = match written {
            None => Some(0),
            Some(&WriteOp::Debit(debit)) => Some(debit),
            Some(WriteOp::Value(_) | WriteOp::Delta(_)) => None,
        };
        if let Some(checked) = self.covered.iter().find(|c| c.key == key) {
            // A key exclusive to the transaction, not written yet: its check saw the
            // exact number below.
            if unwritten && checked.handle.is_none() && checked.seen >= amount {
                self.writes.write(key, V::from_u64(checked.seen - amount));
                return Ok(());
            }
            // Its checks cover every debit of it so far: a delta. (A debit of nothing
            // stays exact: on a value that is no number it writes nothing, where a delta
            // would fail the fold.)
            let total = own_debit.and_then(|d| d.checked_add(amount));
            if amount > 0 && total.is_some_and(|total| total <= checked.covered) {
                self.writes.debit(key, amount);
                return Ok(());
            }
        }
        crate::vm::exact_debit(self, key, amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::MockStorage;
    use mvmemory::Version;

    fn storage(values: &[(u64, u64)]) -> MockStorage {
        MockStorage {
            values: values.iter().copied().collect(),
            ..MockStorage::default()
        }
    }

    /// Records what `view` did as incarnation 0 of its transaction.
    fn record(memory: &MVMemory<u64, u64>, view: ParallelView<'_, u64, u64, (), MockStorage>) {
        let txn_idx = view.txn_idx;
        let Ok(effects) = view.into_effects() else {
            panic!("no claims here")
        };
        memory.writer().record_with_output(
            Version {
                txn_idx,
                incarnation: 0,
            },
            effects.reads,
            effects.writes,
            (),
        );
    }

    fn credit(memory: &MVMemory<u64, u64>, txn_idx: TxnIndex, key: u64, op: WriteOp<u64>) {
        memory.record(
            Version {
                txn_idx,
                incarnation: 0,
            },
            SmallVec::new(),
            smallvec::smallvec![(key, op)],
        );
    }

    #[test]
    fn a_check_that_held_is_a_predicate_and_its_debit_a_delta() {
        let memory = MVMemory::<u64, u64>::new(4);
        let storage = storage(&[(1, 10)]);
        let mut view = ParallelView::new(&memory, &storage, 2, false);
        assert!(matches!(view.check(&1, 8), Ok(Ok(()))));
        assert!(view.debit(1, 8).is_ok());
        assert_eq!(view.writes.get(&1), Some(&WriteOp::Debit(8)));
        record(&memory, view);
        assert!(memory.validate_read_set(2));
        // A credit below that the check did not need leaves it valid; a debit that
        // leaves less than it needed does not.
        credit(&memory, 0, 1, WriteOp::Delta(5));
        assert!(memory.validate_read_set(2));
        credit(&memory, 1, 1, WriteOp::Debit(7));
        assert!(memory.validate_read_set(2));
        credit(&memory, 1, 1, WriteOp::Debit(8));
        assert!(!memory.validate_read_set(2));
        // Above it, the chain goes below zero: an inconsistent read, 0, never valid.
        let mut view = ParallelView::new(&memory, &storage, 3, false);
        assert!(matches!(view.read(&1), Ok(Some(0))));
        record(&memory, view);
        assert!(!memory.validate_read_set(3));
        // Once the lower debit is what the check allows again, the read above is 1.
        credit(&memory, 1, 1, WriteOp::Debit(6));
        let mut view = ParallelView::new(&memory, &storage, 3, false);
        assert!(matches!(view.read(&1), Ok(Some(1))));
        record(&memory, view);
        assert!(memory.validate_read_set(3));
    }

    #[test]
    fn a_check_that_fails_is_an_exact_read() {
        let memory = MVMemory::<u64, u64>::new(2);
        let storage = storage(&[(1, 5)]);
        let mut view = ParallelView::new(&memory, &storage, 1, false);
        assert!(matches!(view.check(&1, 8), Ok(Err(Some(5)))));
        record(&memory, view);
        // Any credit below changes what it reported.
        credit(&memory, 0, 1, WriteOp::Delta(1));
        assert!(!memory.validate_read_set(1));
    }

    #[test]
    fn a_debit_its_checks_do_not_cover_is_a_value() {
        let memory = MVMemory::<u64, u64>::new(2);
        let storage = storage(&[(1, 10)]);
        let mut view = ParallelView::new(&memory, &storage, 1, false);
        assert!(matches!(view.check(&1, 3), Ok(Ok(()))));
        assert!(view.debit(1, 2).is_ok());
        assert!(view.debit(1, 5).is_ok());
        assert_eq!(view.writes.get(&1), Some(&WriteOp::Value(3)));
    }

    #[test]
    fn own_credits_and_debits_compose() {
        let memory = MVMemory::<u64, u64>::new(2);
        let storage = storage(&[(1, 10)]);
        let mut view = ParallelView::new(&memory, &storage, 1, false);
        // Its own credit covers the check: nothing below is read.
        assert!(matches!(view.add_delta(7, 10), Ok(Ok(()))));
        assert!(matches!(view.check(&7, 8), Ok(Ok(()))));
        assert!(view.reads.is_empty());
        // A credit after its own debit nets with it.
        assert!(matches!(view.check(&1, 8), Ok(Ok(()))));
        assert!(view.debit(1, 8).is_ok());
        assert!(matches!(view.add_delta(1, 3), Ok(Ok(()))));
        assert_eq!(view.writes.get(&1), Some(&WriteOp::Debit(5)));
        // A check after its own debit asks the value below for both.
        assert!(matches!(view.check(&1, 5), Ok(Ok(()))));
        assert!(matches!(view.check(&1, 6), Ok(Err(Some(5)))));
        assert!(matches!(view.add_delta(1, 10), Ok(Ok(()))));
        assert_eq!(view.writes.get(&1), Some(&WriteOp::Delta(5)));
        assert!(matches!(view.read(&1), Ok(Some(15))));
    }
}
