//! The sequential TOS executor: the rules of DESIGN.md written straight over a `HashMap`,
//! one transaction after another, as obvious as possible. It shares nothing with the
//! engine (no views, no deltas, no multi-version memory): it is the oracle every test
//! compares the engine with, and the honest baseline of the benchmarks.

use crate::block::{finish, next_topoheight, BlockExecution};
use crate::contract::{
    default_contract_vm, gas_burned, CallInfo, ContractHost, HostAbort, SharedContractVm,
};
use crate::error::{TosError, TxError};
use crate::rules::{check_payload, check_signature, spending, MultiSigAction};
use crate::snapshot::BlockState;
use crate::state::{Bytes, DataKey, StateKey, StateValue};
use crate::storage::TosStorage;
use crate::types::{
    contract_address, Hash, MultiSigConfig, PublicKey, Transaction, TransactionType,
    BURN_PER_CONTRACT, CONSTRUCTOR_ENTRY, TOS_ASSET,
};
use crate::vm::TxResult;
use executor::{BlockStats, ExecutionPath, SequentialReason};
use mvmemory::FxBuildHasher;
use smallvec::SmallVec;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Executes TOS blocks one transaction at a time.
#[derive(Clone, Debug)]
pub struct SequentialTosExecutor {
    /// Verify each transaction's signature first.
    pub verify_signatures: bool,
    /// The contract runtime.
    pub contracts: SharedContractVm,
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

/// A contract call in the oracle: its changes in plain maps over the state, applied only
/// if the call succeeds.
struct Call<'x, 's, 'a> {
    state: &'x State<'s, 'a>,
    contract: Hash,
    /// Entry key → (value as the call sees it, written by the call).
    data: BTreeMap<DataKey, (Option<Bytes>, bool)>,
    /// Asset → (state's balance, deposits, transfers out).
    balances: BTreeMap<Hash, (u64, u64, u64)>,
    transfers: Vec<(PublicKey, Hash, u64)>,
    error: Option<TosError>,
}

impl Call<'_, '_, '_> {
    fn fail<T>(&mut self, error: TosError) -> Result<T, HostAbort> {
        self.error = Some(error);
        Err(HostAbort)
    }

    fn entry(&mut self, key: &[u8]) -> Result<&mut (Option<Bytes>, bool), HostAbort> {
        let key = DataKey::new(key);
        if !self.data.contains_key(&key) {
            let state_key = StateKey::ContractData(self.contract, key);
            let value = match self
                .state
                .get(&state_key)
                .map(|v| v.map(StateValue::into_data))
            {
                Ok(None) => None,
                Ok(Some(Ok(bytes))) => bytes,
                Ok(Some(Err(other))) => {
                    return self.fail(TosError::CorruptState(format!(
                        "{state_key:?} holds {other:?}"
                    )))
                }
                Err(error) => return self.fail(error),
            };
            self.data.insert(key, (value, false));
        }
        // Present: found or inserted above. (A miss would read as a host abort with no
        // error, which the caller turns into an internal error.)
        self.data.get_mut(&key).ok_or(HostAbort)
    }

    fn balance_entry(&mut self, asset: Hash) -> Result<&mut (u64, u64, u64), HostAbort> {
        if !self.balances.contains_key(&asset) {
            match self
                .state
                .number(&StateKey::ContractBalance(self.contract, asset))
            {
                Ok(base) => self.balances.insert(asset, (base, 0, 0)),
                Err(error) => return self.fail(error),
            };
        }
        self.balances.get_mut(&asset).ok_or(HostAbort)
    }
}

impl ContractHost for Call<'_, '_, '_> {
    fn load(&mut self, key: &[u8]) -> Result<Option<Bytes>, HostAbort> {
        Ok(self.entry(key)?.0.clone())
    }

    fn store(&mut self, key: &[u8], value: &[u8]) -> Result<(), HostAbort> {
        self.data
            .insert(DataKey::new(key), (Some(value.into()), true));
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<bool, HostAbort> {
        let entry = self.entry(key)?;
        let existed = entry.0.is_some();
        if existed {
            *entry = (None, true);
        }
        Ok(existed)
    }

    fn balance(&mut self, asset: &Hash) -> Result<u64, HostAbort> {
        let &mut (base, credit, debit) = self.balance_entry(*asset)?;
        Ok(base + credit - debit)
    }

    fn transfer(
        &mut self,
        destination: &PublicKey,
        asset: &Hash,
        amount: u64,
    ) -> Result<bool, HostAbort> {
        let entry = self.balance_entry(*asset)?;
        if amount > entry.0 + entry.1 - entry.2 {
            return Ok(false);
        }
        entry.2 += amount;
        if amount > 0 {
            self.transfers.push((*destination, *asset, amount));
        }
        Ok(true)
    }
}

/// An executed (not rejected) transaction's charges.
struct Executed {
    fee_paid: u64,
    gas_used: u64,
    /// Added to the `BurnedSupply` of `tx.burned_asset()`.
    burned: u64,
    failure: Option<String>,
}

impl SequentialTosExecutor {
    /// The oracle on the project's contract runtime.
    pub fn new(verify_signatures: bool) -> Self {
        Self {
            verify_signatures,
            contracts: default_contract_vm(),
        }
    }

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
        let mut run = OracleRun::new(self, below, txs.len());
        for tx in txs {
            run.apply(tx, None)?;
        }
        let (results, changes) = run.into_parts();
        // In the map's order: deterministic (a fixed hasher, the same inserts).
        finish(
            below,
            topoheight,
            results,
            changes.into_iter().collect(),
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
        touched: Option<&mut Vec<StateKey>>,
    ) -> Result<Result<Executed, TxError>, TosError> {
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
        // The contract to call: (address, code, entry, parameters, deposits, max gas).
        #[allow(clippy::type_complexity)]
        let call: Option<(Hash, Bytes, u16, &[Vec<u8>], &[(Hash, u64)], u64)> = match &tx.data {
            TransactionType::InvokeContract(invoke) => {
                let key = StateKey::ContractModule(invoke.contract);
                let module = match state.get(&key)? {
                    Some(StateValue::Module(module)) => module,
                    None => return Ok(Err(TxError::ContractNotFound(invoke.contract))),
                    Some(other) => {
                        return Err(TosError::CorruptState(format!("{key:?} holds {other:?}")))
                    }
                };
                Some((
                    invoke.contract,
                    module,
                    invoke.entry_id,
                    &invoke.parameters,
                    &invoke.deposits,
                    invoke.max_gas,
                ))
            }
            TransactionType::DeployContract(deploy) => {
                if let Err(reason) = self.contracts.validate(&deploy.module) {
                    return Ok(Err(TxError::ContractFailed {
                        reason: format!("invalid module: {reason}"),
                    }));
                }
                deploy.invoke.as_ref().map(|invoke| {
                    (
                        contract_address(&tx.source, tx.nonce, &deploy.module),
                        Bytes::from(deploy.module.as_slice()),
                        CONSTRUCTOR_ENTRY,
                        &[][..],
                        &invoke.deposits[..],
                        invoke.max_gas,
                    )
                })
            }
            _ => None,
        };
        // Every change of this transaction, applied only if it is accepted.
        let mut available_by_asset: SmallVec<[(Hash, u64, u64); 4]> = SmallVec::new();
        for &(asset, required) in &spending {
            let available = state.number(&StateKey::Balance(tx.source, asset))?;
            if available < required {
                return Ok(Err(TxError::InsufficientFunds {
                    asset,
                    available,
                    required,
                }));
            }
            available_by_asset.push((asset, available, required));
        }
        let Some(next_nonce) = nonce.checked_add(1) else {
            return Ok(Err(TxError::Overflow));
        };
        // The call, against the state before this transaction.
        let mut executed = Executed {
            fee_paid: tx.fee,
            gas_used: 0,
            burned: 0,
            failure: None,
        };
        let mut contract_writes: Vec<(StateKey, StateValue)> = Vec::new();
        let mut contract_credits: Vec<(StateKey, u64)> = Vec::new();
        let mut refunds: BTreeMap<Hash, u64> = BTreeMap::new();
        if let Some((contract, module, entry_id, parameters, deposits, max_gas)) = call {
            let mut run = Call {
                state,
                contract,
                data: BTreeMap::new(),
                balances: BTreeMap::new(),
                transfers: Vec::new(),
                error: None,
            };
            for &(asset, amount) in deposits {
                let Ok(entry) = run.balance_entry(asset) else {
                    return Err(run.error.take().unwrap_or(TosError::Internal("no error")));
                };
                match entry
                    .0
                    .checked_add(entry.1)
                    .and_then(|b| b.checked_add(amount))
                {
                    Some(_) => entry.1 += amount,
                    None => return Ok(Err(TxError::Overflow)),
                }
            }
            let info = CallInfo {
                contract,
                caller: tx.source,
                entry_id,
                parameters,
                deposits,
            };
            let outcome = match self.contracts.call(&module, &info, max_gas, &mut run) {
                Ok(outcome) => outcome,
                Err(HostAbort) => {
                    return Err(run.error.take().unwrap_or(TosError::Internal(
                        "the contract VM aborted a call its host did not",
                    )))
                }
            };
            let gas_used = outcome.gas_used.min(max_gas);
            executed.gas_used = gas_used;
            executed.failure = outcome.failure;
            *refunds.entry(TOS_ASSET).or_default() += max_gas - gas_used;
            if executed.failure.is_some() {
                for &(asset, amount) in deposits {
                    *refunds.entry(asset).or_default() += amount;
                }
            } else {
                for (key, (value, dirty)) in run.data {
                    if dirty {
                        contract_writes.push((
                            StateKey::ContractData(contract, key),
                            StateValue::data(value),
                        ));
                    }
                }
                for (asset, (base, credit, debit)) in run.balances {
                    if credit != 0 || debit != 0 {
                        contract_writes.push((
                            StateKey::ContractBalance(contract, asset),
                            StateValue::Number(base + credit - debit),
                        ));
                    }
                }
                for (destination, asset, amount) in run.transfers {
                    contract_credits.push((StateKey::Balance(destination, asset), amount));
                }
            }
        }
        let gas_burn = gas_burned(executed.gas_used);
        executed.fee_paid = tx.fee + (executed.gas_used - gas_burn);
        let failed = executed.failure.is_some();
        match &tx.data {
            TransactionType::Burn(burn) => executed.burned = burn.amount,
            TransactionType::InvokeContract(_) => executed.burned = gas_burn,
            TransactionType::DeployContract(deploy) => {
                executed.burned = gas_burn;
                if failed {
                    *refunds.entry(TOS_ASSET).or_default() += BURN_PER_CONTRACT;
                } else {
                    executed.burned += BURN_PER_CONTRACT;
                    contract_writes.push((
                        StateKey::ContractModule(contract_address(
                            &tx.source,
                            tx.nonce,
                            &deploy.module,
                        )),
                        StateValue::Module(deploy.module.as_slice().into()),
                    ));
                }
            }
            _ => {}
        }
        let mut staged: SmallVec<[(StateKey, u64); 6]> = SmallVec::new();
        for (asset, available, required) in available_by_asset {
            if required > 0 {
                let refund = refunds.get(&asset).copied().unwrap_or(0);
                staged.push((
                    StateKey::Balance(tx.source, asset),
                    available - (required - refund),
                ));
            }
        }
        staged.push((StateKey::Nonce(tx.source), next_nonce));
        let mut credits: SmallVec<[(StateKey, u64); 4]> = SmallVec::new();
        credits.push((StateKey::GasFee, executed.fee_paid));
        credits.push((StateKey::BurnedSupply(tx.burned_asset()), executed.burned));
        if let TransactionType::Transfers(transfers) = &tx.data {
            credits.extend(
                transfers
                    .iter()
                    .map(|t| (StateKey::Balance(t.destination, t.asset), t.amount)),
            );
        }
        credits.extend(contract_credits);
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
        if let Some(touched) = touched {
            touched.extend(contract_writes.iter().map(|(key, _)| key.clone()));
        }
        for (key, value) in contract_writes {
            state.set(key, value);
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
        Ok(Ok(executed))
    }
}

/// A block being executed by the oracle, one transaction after another: what
/// [`SequentialTosExecutor::execute_on`] runs, and what the block executor runs a prefix
/// of when it probes a block's contract calls.
pub(crate) struct OracleRun<'e, 's, 'a> {
    executor: &'e SequentialTosExecutor,
    state: State<'s, 'a>,
    results: Vec<TxResult>,
}

impl<'e, 's, 'a> OracleRun<'e, 's, 'a> {
    /// A run on the state `below` a block of about `txs` transactions.
    pub(crate) fn new(
        executor: &'e SequentialTosExecutor,
        below: &'s BlockState<'a>,
        txs: usize,
    ) -> Self {
        Self {
            executor,
            state: State {
                below,
                current: HashMap::with_capacity_and_hasher(txs * 3, FxBuildHasher::default()),
            },
            results: Vec::with_capacity(txs),
        }
    }

    /// Makes room for about `txs` more transactions.
    pub(crate) fn reserve(&mut self, txs: usize) {
        self.state.current.reserve(txs.saturating_mul(3));
        self.results.reserve(txs);
    }

    /// Executes the next transaction; with `touched`, appends the contract keys it wrote
    /// (storage entries, contract balances, a deployed module).
    pub(crate) fn apply(
        &mut self,
        tx: &Transaction,
        touched: Option<&mut Vec<StateKey>>,
    ) -> Result<(), TosError> {
        let tx_hash = tx.hash();
        let outcome = self.executor.apply(&mut self.state, tx, touched)?;
        self.results.push(match outcome {
            Ok(executed) => TxResult {
                tx_hash,
                error: executed
                    .failure
                    .map(|reason| TxError::ContractFailed { reason }),
                fee_paid: executed.fee_paid,
                gas_used: executed.gas_used,
                burned: executed.burned,
            },
            Err(error) => TxResult::rejected(tx_hash, error),
        });
        Ok(())
    }

    /// The results so far, and every key's value after them (accumulators included).
    pub(crate) fn into_parts(self) -> (Vec<TxResult>, Changes) {
        (self.results, self.state.current)
    }
}

/// A block's changes so far, by key.
pub(crate) type Changes = HashMap<StateKey, StateValue, FxBuildHasher>;
