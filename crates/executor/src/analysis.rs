//! The critical path of a block: the longest chain of true read-after-write dependencies
//! among its transactions, from a sequential run. `txns / critical_path` bounds the
//! speed-up of any executor.
//!
//! Two kinds of access are not dependencies on what they touch:
//! - **Credits** (deltas) do not depend on what they credit, so a run of credits to one
//!   key is not a chain; a later exact *read* of that key depends on every credit before
//!   it.
//! - **Checks**: a read the VM announces as a check that the number is at least some
//!   amount ([`TxnView::hint_check`], a balance check) depends only on the credits it
//!   needed. If the number without the credits made since its last debit or write (the
//!   key's *base*) already holds the amount, the check holds whatever those credits do,
//!   and depends only on the write chain below the base. A debit the VM announces
//!   ([`TxnView::hint_debit`]) then lowers the base and the number alike, and depends on
//!   what its check depended on. This is the physical limit of an executor that treats
//!   checks as predicates and debits as bounded deltas; one that reads values (Block-STM
//!   today) meets every credit as a dependency.

use crate::vm::{ExecError, Halt, Overflow, Storage, TxnView, Vm};
use crate::write_buffer::{add_to, WriteBuffer};
use mvmemory::{DeltaValue, FxBuildHasher, WriteOp};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::hash::Hash;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A key's state after the transactions so far.
struct Entry<V> {
    value: Option<V>,
    /// The longest chain ending in a write or credit the current value depends on.
    depth: u64,
    /// The number without the credits made since the last write or debit, if it is one.
    base: Option<u64>,
    /// The longest chain the base depends on.
    base_depth: u64,
}

impl<V: DeltaValue> Entry<V> {
    /// Storage's value, which depends on nothing in the block.
    fn stored(value: Option<V>) -> Self {
        let base = value.as_ref().map_or(Some(0), DeltaValue::as_u64);
        Self {
            value,
            depth: 0,
            base,
            base_depth: 0,
        }
    }

    /// The depth a read of this kind depends on.
    fn depth_for(&self, kind: ReadKind) -> u64 {
        match (kind, self.base) {
            (ReadKind::Check(required), Some(base)) if base >= required => self.base_depth,
            _ => self.depth,
        }
    }
}

/// How a transaction used a key it read from the state before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadKind {
    /// The value itself.
    Exact,
    /// Only that the number is at least this much (the largest amount checked).
    Check(u64),
}

struct DepthView<'a, K, V, S: Storage> {
    state: &'a HashMap<K, Entry<V>, FxBuildHasher>,
    storage: &'a S,
    writes: WriteBuffer<K, V>,
    /// Each key this transaction read from the state before it, and how it used it.
    reads: SmallVec<[(K, ReadKind); 4]>,
    /// A check announced for the next read of a key.
    check: Option<(K, u64)>,
    /// The keys this transaction's writes debit (announced by the VM).
    debits: SmallVec<[K; 2]>,
    error: Option<S::Error>,
}

impl<K, V, S> DepthView<'_, K, V, S>
where
    K: Eq + Hash + Clone,
    V: DeltaValue,
    S: Storage<Key = K, Value = V>,
{
    /// Records a read of `key` from the state before the transaction.
    fn note_read(&mut self, key: &K) {
        let kind = match self.check.take() {
            Some((checked, required)) if checked == *key => ReadKind::Check(required),
            _ => ReadKind::Exact,
        };
        match self.reads.iter_mut().find(|(k, _)| k == key) {
            Some((_, seen)) => {
                *seen = match (*seen, kind) {
                    (ReadKind::Check(a), ReadKind::Check(b)) => ReadKind::Check(a.max(b)),
                    _ => ReadKind::Exact,
                }
            }
            None => self.reads.push((key.clone(), kind)),
        }
    }

    /// The longest chain this transaction's reads depend on.
    fn depth(&self) -> u64 {
        self.reads
            .iter()
            .filter_map(|(key, kind)| self.state.get(key).map(|e| e.depth_for(*kind)))
            .max()
            .unwrap_or(0)
    }
}

impl<K, V, S> TxnView for DepthView<'_, K, V, S>
where
    K: Eq + Hash + Clone,
    V: DeltaValue,
    S: Storage<Key = K, Value = V>,
{
    type Key = K;
    type Value = V;

    fn read(&mut self, key: &K) -> Result<Option<V>, Halt> {
        if self.writes.get(key).is_none() {
            self.note_read(key);
        }
        let (writes, state, storage, error) =
            (&self.writes, self.state, self.storage, &mut self.error);
        writes.read_through(key, || match state.get(key) {
            Some(entry) => Ok(entry.value.clone()),
            None => storage.get(key).map_err(|e| {
                *error = Some(e);
                Halt(())
            }),
        })
    }

    fn write(&mut self, key: K, value: V) {
        self.writes.write(key, value);
    }

    fn add_delta(&mut self, key: K, delta: u64) -> Result<Result<(), Overflow>, Halt> {
        // Checking the credit reads the value, but only to reject an overflow: it is not
        // a dependency (the parallel executor does not read it either).
        let current = self
            .writes
            .read_through(&key, || match self.state.get(&key) {
                Some(entry) => Ok(entry.value.clone()),
                None => self.storage.get(&key).map_err(|e| {
                    self.error = Some(e);
                    Halt(())
                }),
            })?;
        if add_to(current.as_ref(), delta).is_none() {
            return Ok(Err(Overflow));
        }
        Ok(self.writes.add_delta(key, delta))
    }

    fn discard_writes(&mut self) {
        self.writes.clear();
    }

    fn hint_check(&mut self, key: &K, required: u64) {
        match self.reads.iter_mut().find(|(k, _)| k == key) {
            // Read before (by an earlier check): the largest amount counts.
            Some((_, ReadKind::Check(seen))) => *seen = (*seen).max(required),
            Some((_, ReadKind::Exact)) => {}
            None => self.check = Some((key.clone(), required)),
        }
    }

    fn hint_debit(&mut self, key: &K, _amount: u64) {
        if !self.debits.contains(key) {
            self.debits.push(key.clone());
        }
    }
}

/// The length of the longest chain of read-after-write dependencies in `txns` executed in
/// order on `storage` (0 for an empty block, 1 when no transaction reads another's
/// write), with credits and checks counted as the module documentation says.
pub fn critical_path<M, S>(vm: &M, storage: &S, txns: &[M::Txn]) -> Result<u64, S::Error>
where
    M: Vm,
    S: Storage<Key = M::Key, Value = M::Value, Error = M::Error>,
{
    let mut state: HashMap<M::Key, Entry<M::Value>, FxBuildHasher> = HashMap::default();
    let mut longest = 0;
    for txn in txns {
        let mut view = DepthView {
            state: &state,
            storage,
            writes: WriteBuffer::new(),
            reads: SmallVec::new(),
            check: None,
            debits: SmallVec::new(),
            error: None,
        };
        let result = catch_unwind(AssertUnwindSafe(|| vm.execute(txn, &mut view)));
        if let Some(error) = view.error.take() {
            return Err(error);
        }
        let depth = view.depth() + 1;
        longest = longest.max(depth);
        let reads = std::mem::take(&mut view.reads);
        let debits = std::mem::take(&mut view.debits);
        let writes = match result {
            Ok(Ok(_)) => view.writes.into_ops(),
            Ok(Err(ExecError::Block(error))) => return Err(error),
            Ok(Err(ExecError::Halt(_))) | Err(_) => Default::default(),
        };
        for (key, op) in writes {
            let before = match state.remove(&key) {
                Some(entry) => entry,
                None => Entry::stored(storage.get(&key)?),
            };
            let entry = match op {
                WriteOp::Value(value) if debits.contains(&key) => {
                    let number = value.as_u64();
                    let checked = reads.iter().find(|(k, _)| *k == key).map(|(_, kind)| *kind);
                    match (checked, before.base, number, before.value.as_ref()) {
                        // The check held on the base: the debit takes from the base what
                        // it takes from the number, and the credits above stay apart.
                        (Some(kind @ ReadKind::Check(_)), Some(base), Some(after), Some(was))
                            if before.depth_for(kind) == before.base_depth =>
                        {
                            let taken = was.as_u64().and_then(|was| was.checked_sub(after));
                            match taken.and_then(|taken| base.checked_sub(taken)) {
                                Some(base) => Entry {
                                    value: Some(value),
                                    depth: before.depth.max(depth),
                                    base: Some(base),
                                    base_depth: depth,
                                },
                                None => written(value, depth),
                            }
                        }
                        _ => written(value, depth),
                    }
                }
                WriteOp::Value(value) => written(value, depth),
                WriteOp::Delta(delta) => Entry {
                    value: add_to(before.value.as_ref(), delta).map(M::Value::from_u64),
                    depth: before.depth.max(depth),
                    base: before.base,
                    base_depth: before.base_depth,
                },
            };
            state.insert(key, entry);
        }
    }
    Ok(longest)
}

/// A value written by a transaction at `depth`: the number and its base both.
fn written<V: DeltaValue>(value: V, depth: u64) -> Entry<V> {
    Entry {
        base: value.as_u64(),
        value: Some(value),
        depth,
        base_depth: depth,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::{MockStorage, MockStorageError};

    /// `from` pays `amount` to `to` if it holds it (checked, then debited and credited);
    /// with `exact`, it reads the balance as a value instead of announcing a check.
    #[derive(Clone, Copy)]
    struct Pay {
        from: u64,
        to: u64,
        amount: u64,
        exact: bool,
    }

    struct PayVm;

    impl Vm for PayVm {
        type Txn = Pay;
        type Key = u64;
        type Value = u64;
        type Output = bool;
        type Error = MockStorageError;

        fn execute<T>(&self, pay: &Pay, view: &mut T) -> Result<bool, ExecError<MockStorageError>>
        where
            T: TxnView<Key = u64, Value = u64>,
        {
            if !pay.exact {
                view.hint_check(&pay.from, pay.amount);
            }
            let balance = view.read(&pay.from)?.unwrap_or(0);
            if balance < pay.amount {
                return Ok(false);
            }
            if !pay.exact {
                view.hint_debit(&pay.from, pay.amount);
            }
            view.write(pay.from, balance - pay.amount);
            Ok(view.add_delta(pay.to, pay.amount)?.is_ok())
        }
    }

    fn pay(from: u64, to: u64, amount: u64) -> Pay {
        Pay {
            from,
            to,
            amount,
            exact: false,
        }
    }

    fn path(balances: &[(u64, u64)], txns: &[Pay]) -> u64 {
        let storage = MockStorage {
            values: balances.iter().copied().collect(),
            ..MockStorage::default()
        };
        critical_path(&PayVm, &storage, txns).unwrap()
    }

    #[test]
    fn a_check_that_holds_without_the_credits_does_not_depend_on_them() {
        // A and B pay each other back and forth, each holding plenty: two debit chains.
        let back_and_forth: Vec<Pay> = (0..6).map(|i| pay(i % 2, (i + 1) % 2, 10)).collect();
        assert_eq!(path(&[(0, 100), (1, 100)], &back_and_forth), 3);
        // Read as values, every payment depends on the one before.
        let exact: Vec<Pay> = back_and_forth
            .into_iter()
            .map(|p| Pay { exact: true, ..p })
            .collect();
        assert_eq!(path(&[(0, 100), (1, 100)], &exact), 6);
    }

    #[test]
    fn a_check_that_needs_a_credit_depends_on_it_and_so_does_an_exact_read() {
        // B pays C three times (a chain of 3), then pays A 50 (depth 4).
        let credited = || -> Vec<Pay> {
            let mut txns: Vec<Pay> = (0..3).map(|_| pay(1, 2, 1)).collect();
            txns.push(pay(1, 0, 50));
            txns
        };
        let with = |last: &[Pay]| {
            let mut txns = credited();
            txns.extend_from_slice(last);
            txns
        };
        // A holds 40: paying 30 fits without B's credit, and waits for nothing.
        assert_eq!(path(&[(0, 40), (1, 100)], &with(&[pay(0, 2, 30)])), 4);
        // A holds nothing: paying 30 needs the credit.
        assert_eq!(path(&[(1, 100)], &with(&[pay(0, 2, 30)])), 5);
        // An exact read of A after its payment depends on the credit too.
        let exact = Pay {
            exact: true,
            ..pay(0, 2, 1)
        };
        assert_eq!(
            path(&[(0, 40), (1, 100)], &with(&[pay(0, 2, 30), exact])),
            5
        );
        // After paying 30 of its 40, A has 10 of its own: 10 more fits, 20 needs the credit.
        assert_eq!(
            path(&[(0, 40), (1, 100)], &with(&[pay(0, 2, 30), pay(0, 2, 10)])),
            4
        );
        assert_eq!(
            path(&[(0, 40), (1, 100)], &with(&[pay(0, 2, 30), pay(0, 2, 20)])),
            5
        );
    }
}
