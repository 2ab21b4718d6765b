//! The sequential TOS executor: the rules of DESIGN.md written straight over a `HashMap`,
//! one transaction after another, as obvious as possible. It shares nothing with the
//! engine (no views, no deltas, no multi-version memory): it is the oracle every test
//! compares the engine with, and the honest baseline of the benchmarks.

use crate::block::{finish, next_topoheight, BlockExecution};
use crate::error::{TosError, TxError};
use crate::rules::{check_payload, check_signature, spending, MultiSigAction};
use crate::snapshot::BlockState;
use crate::state::{StateKey, StateValue};
use crate::storage::TosStorage;
use crate::types::{MultiSigConfig, Transaction, TransactionType};
use crate::vm::TxResult;
use executor::{BlockStats, ExecutionPath, SequentialReason};
use mvmemory::FxBuildHasher;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::sync::Arc;

/// Executes TOS blocks one transaction at a time.
#[derive(Clone, Copy, Debug)]
pub struct SequentialTosExecutor {
    /// Verify each transaction's signature first.
    pub verify_signatures: bool,
}

/// The state after the transactions so far, over the state below the block.
struct State<'s, 'a> {
    below: &'s BlockState<'a>,
    current: HashMap<StateKey, StateValue, FxBuildHasher>,
}

impl State<'_, '_> {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, TosError> {
        match self.current.get(key) {
            Some(value) => Ok(Some(value.clone())),
            None => self.below.value(key),
        }
    }

    fn number(&self, key: &StateKey) -> Result<u64, TosError> {
        match self.get(key)? {
            None => Ok(0),
            Some(StateValue::Number(n)) => Ok(n),
            Some(other) => Err(TosError::CorruptState(format!("{key:?} holds {other:?}"))),
        }
    }

    fn set(&mut self, key: StateKey, value: StateValue) {
        self.current.insert(key, value);
    }
}

impl SequentialTosExecutor {
    /// Executes the block at `topoheight` (the storage's next) on `storage`'s state.
    pub fn execute_block<S: TosStorage>(
        &self,
        storage: &S,
        topoheight: u64,
        txs: &[Transaction],
    ) -> Result<BlockExecution, TosError> {
        let stored = next_topoheight(storage, topoheight)?;
        let below = BlockState::preload(storage, stored, std::iter::empty(), 1)?;
        self.execute_on(&below, topoheight, txs)
    }

    /// Executes the block on the state `below` it.
    pub fn execute_on(
        &self,
        below: &BlockState<'_>,
        topoheight: u64,
        txs: &[Transaction],
    ) -> Result<BlockExecution, TosError> {
        let mut state = State {
            below,
            current: HashMap::with_capacity_and_hasher(txs.len() * 3, FxBuildHasher::default()),
        };
        let mut results = Vec::with_capacity(txs.len());
        for tx in txs {
            let tx_hash = tx.hash();
            let outcome = self.apply(&mut state, tx)?;
            results.push(match outcome {
                Ok(()) => TxResult {
                    tx_hash,
                    error: None,
                    fee_paid: tx.fee,
                },
                Err(error) => TxResult {
                    tx_hash,
                    error: Some(error),
                    fee_paid: 0,
                },
            });
        }
        // In the map's order: deterministic (a fixed hasher, the same inserts).
        let changes = state.current.into_iter().collect();
        finish(
            below,
            topoheight,
            results,
            changes,
            ExecutionPath::Sequential(SequentialReason::Requested),
            BlockStats {
                incarnations: txs.len() as u64,
                ..BlockStats::default()
            },
        )
    }

    /// One transaction: `Ok(Err(reason))` if rejected (state untouched).
    fn apply(
        &self,
        state: &mut State<'_, '_>,
        tx: &Transaction,
    ) -> Result<Result<(), TxError>, TosError> {
        if self.verify_signatures {
            if let Err(error) = check_signature(tx) {
                return Ok(Err(error));
            }
        }
        let nonce = state.number(&StateKey::Nonce(tx.source))?;
        if nonce != tx.nonce {
            return Ok(Err(TxError::InvalidNonce {
                expected: nonce,
                got: tx.nonce,
            }));
        }
        let spending = match spending(tx) {
            Ok(spending) => spending,
            Err(error) => return Ok(Err(error)),
        };
        let multisig = match check_payload(tx) {
            Ok(action) => action,
            Err(error) => return Ok(Err(error)),
        };
        if multisig == Some(MultiSigAction::Delete)
            && !matches!(
                state.get(&StateKey::MultiSig(tx.source))?,
                Some(StateValue::MultiSig(Some(_)))
            )
        {
            return Ok(Err(TxError::MultiSigNotConfigured));
        }
        // Every change of this transaction, applied only if it is accepted.
        let mut staged: SmallVec<[(StateKey, u64); 6]> = SmallVec::new();
        for &(asset, required) in &spending {
            let key = StateKey::Balance(tx.source, asset);
            let available = state.number(&key)?;
            if available < required {
                return Ok(Err(TxError::InsufficientFunds {
                    asset,
                    available,
                    required,
                }));
            }
            if required > 0 {
                staged.push((key, available - required));
            }
        }
        let Some(next_nonce) = nonce.checked_add(1) else {
            return Ok(Err(TxError::Overflow));
        };
        staged.push((StateKey::Nonce(tx.source), next_nonce));
        let mut credits: SmallVec<[(StateKey, u64); 4]> = SmallVec::new();
        credits.push((StateKey::GasFee, tx.fee));
        match &tx.data {
            TransactionType::Transfers(transfers) => credits.extend(
                transfers
                    .iter()
                    .map(|t| (StateKey::Balance(t.destination, t.asset), t.amount)),
            ),
            TransactionType::Burn(burn) => {
                credits.push((StateKey::BurnedSupply(burn.asset), burn.amount))
            }
            TransactionType::MultiSig(_) => {}
        }
        for (key, amount) in credits {
            if amount == 0 {
                continue;
            }
            let current = match staged.iter().find(|(k, _)| *k == key) {
                Some(&(_, value)) => value,
                None => state.number(&key)?,
            };
            let Some(total) = current.checked_add(amount) else {
                return Ok(Err(TxError::Overflow));
            };
            match staged.iter_mut().find(|(k, _)| *k == key) {
                Some((_, value)) => *value = total,
                None => staged.push((key, total)),
            }
        }
        for (key, value) in staged {
            state.set(key, StateValue::Number(value));
        }
        if let TransactionType::MultiSig(payload) = &tx.data {
            let config = (multisig == Some(MultiSigAction::Set)).then(|| {
                Arc::new(MultiSigConfig {
                    threshold: payload.threshold,
                    participants: payload.participants.clone(),
                })
            });
            state.set(StateKey::MultiSig(tx.source), StateValue::MultiSig(config));
        }
        Ok(Ok(()))
    }
}
