//! The sequential executor: TOS's rules over plain maps, one transaction after another.
//!
//! It shares the rules ([`crate::rules`], which TOS's conformance vectors check) and
//! nothing of the engine: no views, no deltas, no multi-version memory. Each transaction's
//! writes go to a buffer of their own, moved into the block's map if it is accepted, every
//! credit checked against the exact value. It is the oracle every test of the engine
//! compares with, and the honest baseline of the benchmarks.

use crate::block::{block_keys, finish, next_topoheight, BlockExecution, BlockMode, Run};
use crate::contract::{default_contract_vm, SharedContractVm};
use crate::error::TosError;
use crate::primitives::{Hash, PublicKey, SharedMultiSig};
use crate::rules::{self, Context, SignatureCheck, TxError, TxResult, TxState};
use crate::snapshot::BlockState;
use crate::state::{Bytes, DataKey, StateKey, StateValue};
use crate::storage::TosStorage;
use crate::tx::Transaction;
use executor::Overflow;
use executor::{BlockStats, ExecutionPath, SequentialReason};
use mvmemory::FxBuildHasher;
use std::collections::HashMap;

/// A block's changes so far, by key.
pub(crate) type Changes = HashMap<StateKey, StateValue, FxBuildHasher>;

/// Executes TOS blocks one transaction at a time.
#[derive(Clone, Debug)]
pub struct SequentialTosExecutor {
    /// Verify each transaction's signature as it executes.
    pub verify_signatures: bool,
    /// The contract runtime.
    pub contracts: SharedContractVm,
}

impl SequentialTosExecutor {
    /// The oracle on the project's contract runtime.
    pub fn new(verify_signatures: bool) -> Self {
        Self {
            verify_signatures,
            contracts: default_contract_vm(),
        }
    }

    /// How a transaction's signature is checked: inline, or not at all.
    pub(crate) fn signature_check(&self) -> SignatureCheck {
        if self.verify_signatures {
            SignatureCheck::Verify
        } else {
            SignatureCheck::Off
        }
    }
}

impl SequentialTosExecutor {
    /// Executes the block at `topoheight` (the storage's next) on `storage`'s state.
    pub fn execute_block<S: TosStorage>(
        &self,
        storage: &S,
        topoheight: u64,
        txs: &[Transaction],
        mode: BlockMode,
    ) -> Result<BlockExecution, TosError> {
        let stored = next_topoheight(storage, topoheight)?;
        let below = BlockState::preload(storage, stored, block_keys(txs), 1)?;
        self.execute_on(&below, topoheight, txs, mode)
    }

    /// Executes the block on the state `below` it; in [`BlockMode::Accept`] it stops at
    /// the first failing transaction.
    pub fn execute_on(
        &self,
        below: &BlockState<'_>,
        topoheight: u64,
        txs: &[Transaction],
        mode: BlockMode,
    ) -> Result<BlockExecution, TosError> {
        let mut run = OracleRun::new(self, below.network_chain_id()?, below, txs.len());
        for tx in txs {
            if !run.apply(tx, self.signature_check(), None)? && mode == BlockMode::Accept {
                break;
            }
        }
        let (results, changes): (Vec<TxResult>, Changes) = run.into_parts();
        let incarnations = results.len() as u64;
        finish(
            below,
            topoheight,
            mode,
            true,
            Run {
                results,
                // In the map's order, which nothing depends on (storage sorts by key).
                changes: changes.into_iter().collect(),
                path: ExecutionPath::Sequential(SequentialReason::Requested),
                stats: BlockStats {
                    incarnations,
                    ..BlockStats::default()
                },
            },
        )
    }
}

/// A block being executed by the oracle, one transaction after another.
pub(crate) struct OracleRun<'e, 's, 'a> {
    executor: &'e SequentialTosExecutor,
    network_chain_id: u64,
    below: &'s BlockState<'a>,
    current: Changes,
    pending: Vec<(StateKey, StateValue)>,
    results: Vec<TxResult>,
}

impl<'e, 's, 'a> OracleRun<'e, 's, 'a> {
    /// A run on the state `below` a block of about `txs` transactions.
    pub(crate) fn new(
        executor: &'e SequentialTosExecutor,
        network_chain_id: u64,
        below: &'s BlockState<'a>,
        txs: usize,
    ) -> Self {
        Self {
            executor,
            network_chain_id,
            below,
            current: HashMap::with_capacity_and_hasher(txs * 3, FxBuildHasher::default()),
            pending: Vec::new(),
            results: Vec::with_capacity(txs),
        }
    }

    /// Makes room for about `txs` more transactions.
    pub(crate) fn reserve(&mut self, txs: usize) {
        self.current.reserve(txs.saturating_mul(3));
        self.results.reserve(txs);
    }

    /// Executes the next transaction, its signature checked as `signature` says; with
    /// `touched`, appends the contract keys it wrote (storage entries, contract balances,
    /// a deployed module). Returns whether it was applied.
    pub(crate) fn apply(
        &mut self,
        tx: &Transaction,
        signature: SignatureCheck,
        touched: Option<&mut Vec<StateKey>>,
    ) -> Result<bool, TosError> {
        let context = Context {
            network_chain_id: self.network_chain_id,
            contracts: &*self.executor.contracts,
        };
        self.pending.clear();
        let mut state = PendingState {
            below: self.below,
            current: &self.current,
            pending: &mut self.pending,
        };
        // A panic in the rules or the contract runtime is the transaction's failure, as it
        // is under the engine: nothing of it is written.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rules::execute(tx, &context, signature, &mut state)
        }));
        let result = match outcome {
            Ok(result) => result?,
            Err(payload) => {
                self.pending.clear();
                TxResult::rejected(TxError::VmPanic(executor::panic_message(&*payload)))
            }
        };
        let applied = result.success();
        if applied {
            if let Some(touched) = touched {
                touched.extend(
                    self.pending
                        .iter()
                        .map(|(k, _)| k)
                        .filter(|k| {
                            matches!(
                                k,
                                StateKey::ContractData(..)
                                    | StateKey::ContractBalance(..)
                                    | StateKey::ContractModule(_)
                            )
                        })
                        .cloned(),
                );
            }
            self.current.extend(self.pending.drain(..));
        }
        self.results.push(result);
        Ok(applied)
    }

    /// The results so far, and every key's value after them.
    pub(crate) fn into_parts(self) -> (Vec<TxResult>, Changes) {
        (self.results, self.current)
    }
}

/// One transaction's state: its own writes over the block's so far over the state below.
struct PendingState<'x, 's, 'a> {
    below: &'s BlockState<'a>,
    current: &'x Changes,
    /// This transaction's writes, the latest of a key last.
    pending: &'x mut Vec<(StateKey, StateValue)>,
}

impl PendingState<'_, '_, '_> {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, TosError> {
        if let Some((_, value)) = self.pending.iter().rev().find(|(k, _)| k == key) {
            return Ok(Some(value.clone()));
        }
        match self.current.get(key) {
            Some(value) => Ok(Some(value.clone())),
            None => self.below.value(key),
        }
    }

    fn number(&self, key: &StateKey) -> Result<Option<u64>, TosError> {
        match self.get(key)? {
            None => Ok(None),
            Some(StateValue::Number(n)) => Ok(Some(n)),
            Some(other) => Err(TosError::CorruptState(format!("{key:?} holds {other:?}"))),
        }
    }

    fn set(&mut self, key: StateKey, value: StateValue) {
        self.pending.push((key, value));
    }

    fn add(&mut self, key: StateKey, amount: u64) -> Result<Result<(), Overflow>, TosError> {
        let current = self.number(&key)?.unwrap_or(0);
        Ok(match current.checked_add(amount) {
            Some(sum) => {
                self.set(key, StateValue::Number(sum));
                Ok(())
            }
            None => Err(Overflow),
        })
    }
}

impl TxState for PendingState<'_, '_, '_> {
    type Error = TosError;

    fn nonce(&mut self, account: &PublicKey) -> Result<Option<u64>, TosError> {
        self.number(&StateKey::Nonce(*account))
    }

    fn set_nonce(&mut self, account: &PublicKey, nonce: u64) {
        self.set(StateKey::Nonce(*account), StateValue::Number(nonce));
    }

    fn balance(&mut self, account: &PublicKey, asset: &Hash) -> Result<Option<u64>, TosError> {
        self.number(&StateKey::Balance(*account, *asset))
    }

    fn set_balance(&mut self, account: &PublicKey, asset: &Hash, value: u64) {
        self.set(
            StateKey::Balance(*account, *asset),
            StateValue::Number(value),
        );
    }

    fn credit(
        &mut self,
        account: &PublicKey,
        asset: &Hash,
        amount: u64,
    ) -> Result<Result<(), Overflow>, TosError> {
        self.add(StateKey::Balance(*account, *asset), amount)
    }

    fn multisig(&mut self, account: &PublicKey) -> Result<Option<SharedMultiSig>, TosError> {
        let key = StateKey::MultiSig(*account);
        match self.get(&key)? {
            None | Some(StateValue::MultiSig(None)) => Ok(None),
            Some(StateValue::MultiSig(Some(config))) => Ok(Some(config)),
            Some(other) => Err(TosError::CorruptState(format!("{key:?} holds {other:?}"))),
        }
    }

    fn set_multisig(&mut self, account: &PublicKey, config: Option<SharedMultiSig>) {
        self.set(StateKey::MultiSig(*account), StateValue::MultiSig(config));
    }

    fn module(&mut self, contract: &Hash) -> Result<Option<Bytes>, TosError> {
        let key = StateKey::ContractModule(*contract);
        match self.get(&key)? {
            None => Ok(None),
            Some(StateValue::Module(module)) => Ok(Some(module)),
            Some(other) => Err(TosError::CorruptState(format!("{key:?} holds {other:?}"))),
        }
    }

    fn set_module(&mut self, contract: &Hash, module: Bytes) {
        self.set(
            StateKey::ContractModule(*contract),
            StateValue::Module(module),
        );
    }

    fn contract_data(&mut self, contract: &Hash, key: &DataKey) -> Result<Option<Bytes>, TosError> {
        let key = StateKey::ContractData(*contract, *key);
        match self.get(&key)?.map(StateValue::into_data) {
            None => Ok(None),
            Some(Ok(bytes)) => Ok(bytes),
            Some(Err(other)) => Err(TosError::CorruptState(format!("{key:?} holds {other:?}"))),
        }
    }

    fn set_contract_data(&mut self, contract: &Hash, key: DataKey, value: Option<Bytes>) {
        self.set(
            StateKey::ContractData(*contract, key),
            StateValue::data(value),
        );
    }

    fn contract_balance(&mut self, contract: &Hash, asset: &Hash) -> Result<u64, TosError> {
        Ok(self
            .number(&StateKey::ContractBalance(*contract, *asset))?
            .unwrap_or(0))
    }

    fn set_contract_balance(&mut self, contract: &Hash, asset: &Hash, value: u64) {
        self.set(
            StateKey::ContractBalance(*contract, *asset),
            StateValue::Number(value),
        );
    }

    fn burn(&mut self, asset: &Hash, amount: u64) -> Result<Result<(), Overflow>, TosError> {
        self.add(StateKey::BurnedSupply(*asset), amount)
    }

    fn collect_fees(&mut self, amount: u64) -> Result<(), TosError> {
        let total = self.number(&StateKey::GasFee)?.unwrap_or(0);
        self.set(
            StateKey::GasFee,
            StateValue::Number(total.saturating_add(amount)),
        );
        Ok(())
    }
}
