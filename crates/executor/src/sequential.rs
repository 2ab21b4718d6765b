//! The sequential executor: each transaction in block order against the state the ones
//! before it left. The oracle of every test and the fallback of the parallel executor.

use crate::output::{BlockError, BlockOutput, BlockResult, BlockStats, ExecutionPath};
use crate::vm::{panic_message, ExecError, Halt, Overflow, Storage, TxnOutput, TxnView, Vm};
use crate::write_buffer::{add_to, sub_from, WriteBuffer};
use mvmemory::{DeltaValue, FxBuildHasher, TxnIndex, WriteOp};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Executes blocks one transaction at a time.
#[derive(Clone, Copy, Debug, Default)]
pub struct SequentialExecutor;

/// A key's value after the block so far, with who wrote it last (for the output order).
struct Written<V> {
    value: V,
    txn_idx: TxnIndex,
    position: usize,
}

struct SequentialView<'a, K, V, S, E> {
    state: &'a HashMap<K, Written<V>, FxBuildHasher>,
    storage: &'a S,
    writes: WriteBuffer<K, V>,
    error: Option<E>,
}

impl<K, V, S> TxnView for SequentialView<'_, K, V, S, S::Error>
where
    K: Eq + std::hash::Hash,
    V: mvmemory::DeltaValue,
    S: Storage<Key = K, Value = V>,
{
    type Key = K;
    type Value = V;

    fn read(&mut self, key: &K) -> Result<Option<V>, Halt> {
        let (writes, state, storage, error) =
            (&self.writes, self.state, self.storage, &mut self.error);
        writes.read_through(key, || match state.get(key) {
            Some(written) => Ok(Some(written.value.clone())),
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
        let current = self.read(&key)?;
        if add_to(current.as_ref(), delta).is_none() {
            return Ok(Err(Overflow));
        }
        Ok(self.writes.add_delta(key, delta))
    }

    fn discard_writes(&mut self) {
        self.writes.clear();
    }
}

/// `key`'s number after the block so far (or storage's) with `amount` credited or debited
/// by `apply`; `error` if it does not fit (the view checked it already).
fn committed_number<K, V, S>(
    state: &HashMap<K, Written<V>, FxBuildHasher>,
    storage: &S,
    key: &K,
    apply: fn(Option<&V>, u64) -> Option<u64>,
    amount: u64,
    error: &'static str,
) -> Result<V, BlockError<S::Error>>
where
    K: Eq + std::hash::Hash,
    V: DeltaValue,
    S: Storage<Key = K, Value = V>,
    S::Error: std::error::Error + 'static,
{
    let base = match state.get(key) {
        Some(written) => Some(written.value.clone()),
        None => storage.get(key).map_err(BlockError::Vm)?,
    };
    apply(base.as_ref(), amount)
        .map(V::from_u64)
        .ok_or(BlockError::Internal(error))
}

impl SequentialExecutor {
    /// Executes `txns` in order on `storage`'s state.
    pub fn execute_block<M, S>(&self, vm: &M, storage: &S, txns: &[M::Txn]) -> BlockResult<M>
    where
        M: Vm,
        S: Storage<Key = M::Key, Value = M::Value, Error = M::Error>,
    {
        let _span = tracing::debug_span!("sequential_block", txns = txns.len()).entered();
        let mut state: HashMap<M::Key, Written<M::Value>, FxBuildHasher> = HashMap::default();
        let mut outputs = Vec::with_capacity(txns.len());
        for (txn_idx, txn) in txns.iter().enumerate() {
            let mut view = SequentialView {
                state: &state,
                storage,
                writes: WriteBuffer::new(),
                error: None,
            };
            let result = catch_unwind(AssertUnwindSafe(|| vm.execute(txn, &mut view)));
            if let Some(error) = view.error.take() {
                return Err(BlockError::Vm(error));
            }
            let output = match result {
                Ok(Ok(output)) => TxnOutput::Executed(output),
                Ok(Err(ExecError::Block(error))) => return Err(BlockError::Vm(error)),
                Ok(Err(ExecError::Halt(_))) => {
                    return Err(BlockError::Internal(
                        "a VM returned Halt the view did not produce",
                    ))
                }
                Err(payload) => {
                    view.writes.clear();
                    TxnOutput::Panicked(panic_message(payload.as_ref()))
                }
            };
            let writes = view.writes.into_ops();
            for (position, (key, op)) in writes.into_iter().enumerate() {
                let value = match op {
                    WriteOp::Value(value) => value,
                    WriteOp::Delta(delta) => committed_number(
                        &state,
                        storage,
                        &key,
                        add_to,
                        delta,
                        "a checked credit overflowed at commit",
                    )?,
                    // The view's debits are values (`exact_debit`): kept exact all the same.
                    WriteOp::Debit(debit) => committed_number(
                        &state,
                        storage,
                        &key,
                        sub_from,
                        debit,
                        "a debit went below zero at commit",
                    )?,
                };
                state.insert(
                    key,
                    Written {
                        value,
                        txn_idx,
                        position,
                    },
                );
            }
            outputs.push(output);
        }
        let mut written: Vec<(M::Key, Written<M::Value>)> = state.into_iter().collect();
        written.sort_unstable_by_key(|(_, w)| (w.txn_idx, w.position));
        Ok(BlockOutput {
            outputs,
            writes: written.into_iter().map(|(k, w)| (k, w.value)).collect(),
            path: ExecutionPath::Sequential(crate::output::SequentialReason::Requested),
            stats: BlockStats {
                incarnations: txns.len() as u64,
                ..BlockStats::default()
            },
        })
    }
}
