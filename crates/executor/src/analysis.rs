//! The critical path of a block: the longest chain of true read-after-write dependencies
//! among its transactions, from a sequential run. `txns / critical_path` bounds the
//! speed-up of any executor.
//!
//! Two kinds of access are not dependencies on what they touch:
//! - **Credits** (deltas) do not depend on what they credit, so a run of credits to one
//!   key is not a chain; a later exact *read* of that key depends on every credit before
//!   it.
//! - **Checks**: a check that the number is at least some amount
//!   ([`TxnView::check`], a balance check). The analysis keeps, per key, a
//!   *base*: the number without the credits it has not had to count (those since the
//!   key's last write, and those a debit that held on the base left apart). If the base
//!   covers the amount, the check holds whatever those credits do, and depends only on the
//!   chain below the base. If it does not, the check depends on every credit above it
//!   (more than the credits it strictly needed: there the count is not tight). A debit
//!   ([`TxnView::debit`]) after a check that held on the base
//!   lowers the base and the number alike; after any other, its result becomes the new
//!   base, depending on everything below. A check of a key the transaction itself already
//!   wrote or credited counts as an exact read, as does a check that fails (it reports
//!   the value). This is the limit of an executor that treats checks as predicates and
//!   debits as bounded deltas, as the parallel executor does; one that read values would
//!   meet every credit as a dependency.

use crate::vm::{covers, debited, ExecError, Halt, Overflow, Storage, TxnView, Vm};
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
    /// The number without the credits not counted into it (see the module documentation),
    /// if it is a number.
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
    /// The value of `key` as the transaction sees it, without noting a read.
    fn peek(&mut self, key: &K) -> Result<Option<V>, Halt> {
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

    /// Records a read of `key`'s value itself (a check that held before stays no more).
    fn note_exact(&mut self, key: &K) {
        match self.reads.iter_mut().find(|(k, _)| k == key) {
            Some((_, seen)) => *seen = ReadKind::Exact,
            None => self.reads.push((key.clone(), ReadKind::Exact)),
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
        match self.writes.get(key) {
            // Its own value: no dependency.
            Some(WriteOp::Value(_)) => {}
            // Its own credits on top of the value before it: that value, exactly.
            Some(WriteOp::Delta(_) | WriteOp::Debit(_)) => self.note_exact(key),
            None => self.note_exact(key),
        }
        self.peek(key)
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

    fn check(&mut self, key: &K, required: u64) -> Result<Result<(), Option<V>>, Halt> {
        if self.writes.get(key).is_some() {
            // A check of what this transaction already wrote or credited there: counted
            // as a read of the value (the base the analysis keeps is the one before it).
            self.note_exact(key);
        } else {
            match self.reads.iter_mut().find(|(k, _)| k == key) {
                // Read before (by an earlier check): the largest amount counts.
                Some((_, ReadKind::Check(seen))) => *seen = (*seen).max(required),
                Some((_, ReadKind::Exact)) => {}
                None => self.reads.push((key.clone(), ReadKind::Check(required))),
            }
        }
        let value = self.peek(key)?;
        if covers(value.as_ref(), required) {
            Ok(Ok(()))
        } else {
            // It reports the value: it depends on it.
            self.note_exact(key);
            Ok(Err(value))
        }
    }

    fn debit(&mut self, key: K, amount: u64) -> Result<(), Halt> {
        if !self.debits.contains(&key) {
            self.debits.push(key.clone());
        }
        // The number its check looked at, less the amount: not another read.
        if let Some(rest) = debited(self.peek(&key)?.as_ref(), amount) {
            self.writes.write(key, rest);
        }
        Ok(())
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
                    let checked = reads.iter().find(|(k, _)| *k == key).map(|(_, kind)| *kind);
                    let on_base = match (checked, before.base) {
                        (Some(ReadKind::Check(required)), Some(base)) => base >= required,
                        _ => false,
                    };
                    // What the debit took: the number before it less the number after.
                    let taken = before
                        .value
                        .as_ref()
                        .and_then(DeltaValue::as_u64)
                        .zip(value.as_u64())
                        .and_then(|(was, after)| was.checked_sub(after));
                    match (on_base, before.base, taken) {
                        // The check held on the base: the debit takes from the base what
                        // it takes from the number, and the credits above stay apart.
                        (true, Some(base), Some(taken)) if taken <= base => Entry {
                            value: Some(value),
                            depth: before.depth.max(depth),
                            base: Some(base - taken),
                            base_depth: depth,
                        },
                        // Otherwise the value stands for everything before it.
                        _ => written(value, before.depth.max(depth)),
                    }
                }
                WriteOp::Value(value) => written(value, depth),
                // The view's debits are values; one written as an op reads the number.
                WriteOp::Debit(debit) => {
                    let number = before.value.as_ref().and_then(DeltaValue::as_u64);
                    let rest = number.unwrap_or(0).saturating_sub(debit);
                    written(M::Value::from_u64(rest), before.depth.max(depth))
                }
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

    /// One step of a scripted transaction.
    #[derive(Clone, Copy, Debug)]
    enum Op {
        /// Checks that the key holds at least the amount; the transaction fails (writes
        /// nothing) if not.
        Check(u64, u64),
        /// Debits the amount.
        Debit(u64, u64),
        /// Credits the amount.
        Credit(u64, u64),
        /// Reads the value itself.
        Read(u64),
        /// Reads the value and writes it plus one.
        Bump(u64),
    }

    /// Runs each transaction's steps.
    struct ScriptVm;

    impl Vm for ScriptVm {
        type Txn = Vec<Op>;
        type Key = u64;
        type Value = u64;
        type Output = bool;
        type Error = MockStorageError;

        fn execute<T>(
            &self,
            ops: &Vec<Op>,
            view: &mut T,
        ) -> Result<bool, ExecError<MockStorageError>>
        where
            T: TxnView<Key = u64, Value = u64>,
        {
            for op in ops {
                match *op {
                    Op::Check(key, required) => {
                        if view.check(&key, required)?.is_err() {
                            view.discard_writes();
                            return Ok(false);
                        }
                    }
                    Op::Debit(key, amount) => {
                        view.debit(key, amount)?;
                    }
                    Op::Credit(key, amount) => {
                        if view.add_delta(key, amount)?.is_err() {
                            view.discard_writes();
                            return Ok(false);
                        }
                    }
                    Op::Read(key) => {
                        view.read(&key)?;
                    }
                    Op::Bump(key) => {
                        let n = view.read(&key)?.unwrap_or(0);
                        view.write(key, n + 1);
                    }
                }
            }
            Ok(true)
        }
    }

    /// `from` pays `amount` to `to`: checked, debited, credited.
    fn pay(from: u64, to: u64, amount: u64) -> Vec<Op> {
        vec![
            Op::Check(from, amount),
            Op::Debit(from, amount),
            Op::Credit(to, amount),
        ]
    }

    /// The same payment reading the balance as a value first.
    fn pay_exact(from: u64, to: u64, amount: u64) -> Vec<Op> {
        let mut ops = vec![Op::Read(from)];
        ops.extend(pay(from, to, amount));
        ops
    }

    /// `n` payments of 1 from account 9 (plenty) to `to`, the last `credit` instead: a
    /// chain of `n` ending in a credit of `credit` to `to` at depth `n`.
    fn credited_at(n: usize, to: u64, credit: u64) -> Vec<Vec<Op>> {
        let mut txns: Vec<Vec<Op>> = (1..n).map(|_| pay(9, 8, 1)).collect();
        txns.push(pay(9, to, credit));
        txns
    }

    fn path(balances: &[(u64, u64)], txns: &[Vec<Op>]) -> u64 {
        let mut values: HashMap<u64, u64> = balances.iter().copied().collect();
        values.entry(9).or_insert(1_000_000);
        let storage = MockStorage {
            values,
            ..MockStorage::default()
        };
        critical_path(&ScriptVm, &storage, txns).unwrap()
    }

    fn then(mut txns: Vec<Vec<Op>>, more: &[Vec<Op>]) -> Vec<Vec<Op>> {
        txns.extend_from_slice(more);
        txns
    }

    #[test]
    fn a_check_that_holds_without_the_credits_does_not_depend_on_them() {
        // A and B pay each other back and forth, each holding plenty: two debit chains.
        let back_and_forth: Vec<Vec<Op>> = (0..6).map(|i| pay(i % 2, (i + 1) % 2, 10)).collect();
        assert_eq!(path(&[(0, 100), (1, 100)], &back_and_forth), 3);
        // Read as values, every payment depends on the one before.
        let exact: Vec<Vec<Op>> = (0..6).map(|i| pay_exact(i % 2, (i + 1) % 2, 10)).collect();
        assert_eq!(path(&[(0, 100), (1, 100)], &exact), 6);
    }

    #[test]
    fn a_check_that_needs_a_credit_depends_on_it_and_so_does_an_exact_read() {
        // A (account 0) is credited 50 at depth 4.
        let credited = || credited_at(4, 0, 50);
        // A holds 40: paying 30 fits without the credit, and waits for nothing.
        assert_eq!(path(&[(0, 40)], &then(credited(), &[pay(0, 2, 30)])), 4);
        // A holds nothing: paying 30 needs the credit.
        assert_eq!(path(&[], &then(credited(), &[pay(0, 2, 30)])), 5);
        // An exact read of A after its payment depends on the credit too.
        let txns = then(credited(), &[pay(0, 2, 30), vec![Op::Read(0)]]);
        assert_eq!(path(&[(0, 40)], &txns), 5);
        // After paying 30 of its 40, A has 10 of its own: 10 more fits, 20 needs the credit.
        let txns = then(credited(), &[pay(0, 2, 30), pay(0, 2, 10)]);
        assert_eq!(path(&[(0, 40)], &txns), 4);
        let txns = then(credited(), &[pay(0, 2, 30), pay(0, 2, 20)]);
        assert_eq!(path(&[(0, 40)], &txns), 5);
    }

    #[test]
    fn the_largest_of_a_transactions_checks_counts() {
        // A holds 10, is credited 100 at depth 5; a fee check of 5 fits, the total of 50
        // needs the credit.
        let txns = then(
            credited_at(5, 0, 100),
            &[vec![Op::Check(0, 5), Op::Check(0, 50), Op::Debit(0, 50)]],
        );
        assert_eq!(path(&[(0, 10)], &txns), 6);
    }

    #[test]
    fn a_read_through_its_own_credit_depends_on_the_value_below() {
        let bumps = vec![vec![Op::Bump(0)]; 3];
        assert_eq!(
            path(&[], &then(bumps, &[vec![Op::Credit(0, 5), Op::Read(0)]])),
            4
        );
    }

    #[test]
    fn a_debit_that_ends_above_what_it_took_keeps_the_credits_below_it() {
        // A holds 100 and is credited at depth 6; a transaction checks 10 (on the base),
        // debits 10, then credits A 50 itself: the number went up. A later exact read of A
        // depends on the credit at depth 6.
        let txns = then(
            credited_at(6, 0, 7),
            &[
                vec![Op::Check(0, 10), Op::Debit(0, 10), Op::Credit(0, 50)],
                vec![Op::Read(0)],
            ],
        );
        assert_eq!(path(&[(0, 100)], &txns), 7);
    }

    #[test]
    fn a_check_that_needed_the_credits_leaves_no_base_below_them() {
        // A holds 5; a bump makes it 6 (base 6 at depth 1), and account 7 credits it 20
        // at depth 1 too. X checks 10, which needs the credit, and debits 3: A holds 23,
        // all of it X's to count on. A credit of 1 comes at depth 8; Y's check of 15 fits
        // what X left without it (Y at depth 3: the chain of 8 sets the path), one of 24
        // does not (Y at depth 9).
        let block = |y: u64| {
            let mut block = vec![vec![Op::Bump(0)], pay(7, 0, 20)];
            block.push(vec![Op::Check(0, 10), Op::Debit(0, 3)]);
            block.extend(credited_at(8, 0, 1));
            block.push(pay(0, 2, y));
            block
        };
        assert_eq!(path(&[(0, 5), (7, 1_000)], &block(15)), 8);
        assert_eq!(path(&[(0, 5), (7, 1_000)], &block(24)), 9);
    }

    #[test]
    fn a_check_after_its_own_debit_reads_the_value() {
        // A holds 12 and is credited 100 at depth 6. Checking 10 and debiting it leaves
        // 2 of A's own: a second check of 5 needs the credit.
        let txns = then(
            credited_at(6, 0, 100),
            &[vec![Op::Check(0, 10), Op::Debit(0, 10), Op::Check(0, 5)]],
        );
        assert_eq!(path(&[(0, 12)], &txns), 7);
    }
}
