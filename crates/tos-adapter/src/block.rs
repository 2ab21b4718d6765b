//! A block as both executors see it: its mode, its outcome, and how a run of it ends.

use crate::error::TosError;
use crate::primitives::{Hash, TOS_ASSET};
use crate::rules::{TxError, TxResult};
use crate::snapshot::BlockState;
use crate::state::{Global, StateKey, StateValue};
use crate::storage::{Change, TosStorage};
use crate::tx::{Transaction, TransactionType};
use executor::{BlockStats, ExecutionPath};
use std::collections::BTreeMap;

/// How a block's failing transactions are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BlockMode {
    /// Applying ordered blocks: a failing transaction is skipped with its code, the others
    /// apply.
    #[default]
    Dag,
    /// Validating a block: the lowest failing transaction rejects the whole block, with its
    /// code, and nothing is written.
    Accept,
}

/// A block executed and not yet committed.
#[derive(Clone, Debug)]
pub struct BlockExecution {
    /// The block's topoheight.
    pub topoheight: u64,
    /// How it was executed.
    pub mode: BlockMode,
    /// Each transaction's result, in block order; for a rejected block, those up to and
    /// including the rejecting one.
    pub results: Vec<TxResult>,
    /// In [`BlockMode::Accept`], the index of the transaction that rejects the block.
    pub rejected: Option<usize>,
    /// Fees paid by the block (0 if rejected).
    pub gas_fee: u64,
    /// Burned by the block, per asset (nothing if rejected).
    pub burned: BTreeMap<Hash, u64>,
    /// What the block changes: each written key's final value, once; empty if rejected.
    /// The order depends only on the block, the state before it and the execution path
    /// (compare them as sets across paths).
    pub changes: Vec<Change>,
    /// How it was executed.
    pub path: ExecutionPath,
    /// Counters of its execution.
    pub stats: BlockStats,
}

impl BlockExecution {
    /// The rejecting transaction's index and error, for a rejected block.
    pub fn rejection(&self) -> Option<(usize, &TxError)> {
        let index = self.rejected?;
        self.results.get(index)?.error.as_ref().map(|e| (index, e))
    }

    /// TOS's code of the block: the rejecting transaction's, 0 if it applies.
    pub fn code(&self) -> u16 {
        self.rejection().map_or(0, |(_, e)| e.code())
    }
}

/// What a run of (part of) a block produced.
pub(crate) struct Run {
    pub(crate) results: Vec<TxResult>,
    pub(crate) changes: Vec<Change>,
    pub(crate) path: ExecutionPath,
    pub(crate) stats: BlockStats,
}

/// The keys every block reads once: the accumulators `txs` may credit and the chain's
/// global values.
pub fn block_keys(txs: &[Transaction]) -> Vec<StateKey> {
    let mut keys = vec![StateKey::GasFee, StateKey::BurnedSupply(TOS_ASSET)];
    keys.extend(Global::ALL.map(StateKey::Global));
    for tx in txs {
        if let TransactionType::Burn(burn) = &tx.data {
            let key = StateKey::BurnedSupply(burn.asset);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// The storage's topoheight, if `topoheight` is the next one; an error otherwise.
pub(crate) fn next_topoheight<S: TosStorage>(
    storage: &S,
    topoheight: u64,
) -> Result<u64, TosError> {
    let stored = storage.topoheight()?;
    if stored.checked_add(1) == Some(topoheight) {
        Ok(stored)
    } else {
        Err(TosError::Topoheight {
            stored,
            got: topoheight,
        })
    }
}

/// The end of a block, whichever executor ran it: the mode (an acceptance-mode block
/// with a failing transaction is cut after it and writes nothing), the block height, and
/// the block's totals from its final writes.
pub(crate) fn finish(
    state: &BlockState<'_>,
    topoheight: u64,
    mode: BlockMode,
    count_height: bool,
    run: Run,
) -> Result<BlockExecution, TosError> {
    let Run {
        mut results,
        mut changes,
        path,
        stats,
    } = run;
    let rejected = match mode {
        BlockMode::Dag => None,
        BlockMode::Accept => results.iter().position(|r| !r.success()),
    };
    if let Some(index) = rejected {
        results.truncate(index + 1);
        return Ok(BlockExecution {
            topoheight,
            mode,
            results,
            rejected,
            gas_fee: 0,
            burned: BTreeMap::new(),
            changes: Vec::new(),
            path,
            stats,
        });
    }
    if count_height {
        let key = StateKey::Global(Global::BlockHeight);
        let height = match state.value(&key)? {
            None => 0,
            Some(StateValue::Number(n)) => n,
            Some(other) => return Err(TosError::CorruptState(format!("{key:?} holds {other:?}"))),
        };
        changes.push((key, StateValue::Number(height.saturating_add(1))));
    }
    let mut gas_fee = 0;
    let mut burned = BTreeMap::new();
    for (key, value) in &changes {
        let accumulator = matches!(key, StateKey::GasFee | StateKey::BurnedSupply(_));
        if let (true, StateValue::Number(after)) = (accumulator, value) {
            let before = match state.value(key)? {
                Some(StateValue::Number(n)) => n,
                _ => 0,
            };
            let added = after.saturating_sub(before);
            match key {
                StateKey::BurnedSupply(asset) => {
                    burned.insert(*asset, added);
                }
                _ => gas_fee = added,
            }
        }
    }
    Ok(BlockExecution {
        topoheight,
        mode,
        results,
        rejected,
        gas_fee,
        burned,
        changes,
        path,
        stats,
    })
}
