//! The critical path of a block: the longest chain of true read-after-write dependencies
//! among its transactions, from a sequential run. Credits (deltas) do not depend on what
//! they credit, so a run of credits to one key is not a chain; a later *read* of that key
//! depends on every credit before it. `txns / critical_path` bounds the speed-up of any
//! executor.

use crate::vm::{ExecError, Halt, Overflow, Storage, TxnView, Vm};
use crate::write_buffer::{add_to, WriteBuffer};
use mvmemory::{DeltaValue, FxBuildHasher, WriteOp};
use std::collections::HashMap;
use std::hash::Hash;
use std::panic::{catch_unwind, AssertUnwindSafe};

struct Entry<V> {
    value: Option<V>,
    /// The longest chain ending in a write this key's current value depends on.
    depth: u64,
}

struct DepthView<'a, K, V, S: Storage> {
    state: &'a HashMap<K, Entry<V>, FxBuildHasher>,
    storage: &'a S,
    writes: WriteBuffer<K, V>,
    /// The longest chain among the values read so far.
    depth: u64,
    error: Option<S::Error>,
}

impl<K, V, S> TxnView for DepthView<'_, K, V, S>
where
    K: Eq + Hash,
    V: DeltaValue,
    S: Storage<Key = K, Value = V>,
{
    type Key = K;
    type Value = V;

    fn read(&mut self, key: &K) -> Result<Option<V>, Halt> {
        let (writes, state, storage, error, depth) = (
            &self.writes,
            self.state,
            self.storage,
            &mut self.error,
            &mut self.depth,
        );
        writes.read_through(key, || match state.get(key) {
            Some(entry) => {
                *depth = (*depth).max(entry.depth);
                Ok(entry.value.clone())
            }
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
        let depth = self.depth;
        let current = self.read(&key)?;
        self.depth = depth;
        if add_to(current.as_ref(), delta).is_none() {
            return Ok(Err(Overflow));
        }
        Ok(self.writes.add_delta(key, delta))
    }

    fn discard_writes(&mut self) {
        self.writes.clear();
    }
}

/// The length of the longest chain of read-after-write dependencies in `txns` executed in
/// order on `storage` (0 for an empty block, 1 when no transaction reads another's write).
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
            depth: 0,
            error: None,
        };
        let result = catch_unwind(AssertUnwindSafe(|| vm.execute(txn, &mut view)));
        if let Some(error) = view.error.take() {
            return Err(error);
        }
        let writes = match result {
            Ok(Ok(_)) => view.writes.into_ops(),
            Ok(Err(ExecError::Block(error))) => return Err(error),
            Ok(Err(ExecError::Halt(_))) | Err(_) => Default::default(),
        };
        let depth = view.depth + 1;
        longest = longest.max(depth);
        for (key, op) in writes {
            match op {
                WriteOp::Value(value) => {
                    state.insert(
                        key,
                        Entry {
                            value: Some(value),
                            depth,
                        },
                    );
                }
                WriteOp::Delta(delta) => {
                    let base = match state.get(&key) {
                        Some(entry) => entry.value.clone(),
                        None => storage.get(&key)?,
                    };
                    let entry_depth = state.get(&key).map_or(0, |e| e.depth);
                    let value = add_to(base.as_ref(), delta).map(M::Value::from_u64);
                    state.insert(
                        key,
                        Entry {
                            value,
                            depth: entry_depth.max(depth),
                        },
                    );
                }
            }
        }
    }
    Ok(longest)
}
