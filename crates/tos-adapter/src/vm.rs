//! The TOS VM for the Block-STM engine: one transaction against a read view.

use crate::contract::{
    default_contract_vm, gas_burned, CallInfo, ContractOverlay, HostAbort, SharedContractVm,
    ViewHost,
};
use crate::error::{TosError, TxError};
use crate::rules::{check_payload, check_signature, spending, MultiSigAction};
use crate::state::{Bytes, StateKey, StateValue};
use crate::types::{
    contract_address, Hash, MultiSigConfig, Transaction, TransactionType, BURN_PER_CONTRACT,
    CONSTRUCTOR_ENTRY, TOS_ASSET,
};
use executor::{ExecError, TxnView, Vm};
use mvmemory::FxBuildHasher;
use smallvec::SmallVec;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The result of one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxResult {
    /// The transaction's hash.
    pub tx_hash: Hash,
    /// Why it was rejected or why its contract call failed; `None` if it succeeded.
    pub error: Option<TxError>,
    /// What it credited to `GasFee`: its fee plus the unburned 70% of the gas it used (0
    /// if rejected).
    pub fee_paid: u64,
    /// Gas its contract call or constructor used (charged even when the call failed).
    pub gas_used: u64,
    /// What it added to `BurnedSupply` of [`Transaction::burned_asset`]: a burn's amount;
    /// for a contract transaction, 30% of its gas plus, for a deploy that stored its
    /// module, `BURN_PER_CONTRACT`.
    pub burned: u64,
}

impl TxResult {
    /// Whether the transaction succeeded.
    pub fn success(&self) -> bool {
        self.error.is_none()
    }

    /// A rejected transaction's result: it changed nothing.
    pub fn rejected(tx_hash: Hash, error: TxError) -> Self {
        Self {
            tx_hash,
            error: Some(error),
            fee_paid: 0,
            gas_used: 0,
            burned: 0,
        }
    }
}

/// Executes TOS transactions per DESIGN.md's rules. Credits are deltas; amounts of zero
/// write nothing. Contract calls run on `contracts` against a [`ContractOverlay`] that is
/// written to the view only if the call succeeds.
///
/// The block accumulators (`GasFee`, `BurnedSupply`) are written by every transaction and
/// read by none. With `accumulators_in_state` they are deltas like any credit: exact, but
/// one key that every transaction writes. Without it (what [`TosBlockExecutor`] runs)
/// the VM leaves them out and the executor adds the block's accepted fees and burns to
/// them afterwards: the same state whenever the totals fit in `u64` (every credit is
/// positive, so if the final sum fits, so did every partial sum and no transaction would
/// have been rejected for it). When a total does not fit, the executor runs the block
/// again with them in state, which rejects exactly the transaction that overflows.
///
/// [`TosBlockExecutor`]: crate::TosBlockExecutor
/// [`ContractOverlay`]: crate::contract
#[derive(Clone, Debug)]
pub struct TosVm {
    /// Verify each transaction's signature first.
    pub verify_signatures: bool,
    /// Credit `GasFee` and `BurnedSupply` per transaction, in state.
    pub accumulators_in_state: bool,
    /// The contract runtime.
    pub contracts: SharedContractVm,
    /// Modules no transaction of the block can change (see [`FixedModules`]): read from
    /// here, not through the view, so calls of a contract share no key for its code.
    pub fixed_modules: Option<Arc<FixedModules>>,
}

/// The code of contracts invoked in a block and deployed by none of its transactions, as
/// the state below the block holds it (`None`: no such contract). No transaction can
/// change it during the block, so reading it needs no versioning and no validation.
pub type FixedModules = HashMap<Hash, Option<Bytes>, FxBuildHasher>;

impl TosVm {
    /// A VM on the project's contract runtime, accumulators out of state.
    pub fn new(verify_signatures: bool) -> Self {
        Self {
            verify_signatures,
            accumulators_in_state: false,
            contracts: default_contract_vm(),
            fixed_modules: None,
        }
    }
}

/// The [`FixedModules`] of `txs` on `storage` (the state below them).
pub fn fixed_modules<S>(txs: &[Transaction], storage: &S) -> Result<FixedModules, TosError>
where
    S: executor::Storage<Key = StateKey, Value = StateValue, Error = TosError>,
{
    let mut deployed: HashSet<Hash, FxBuildHasher> = HashSet::default();
    let mut invoked: HashSet<Hash, FxBuildHasher> = HashSet::default();
    for tx in txs {
        match &tx.data {
            TransactionType::InvokeContract(invoke) => {
                invoked.insert(invoke.contract);
            }
            TransactionType::DeployContract(deploy) => {
                deployed.insert(contract_address(&tx.source, tx.nonce, &deploy.module));
            }
            _ => {}
        }
    }
    let mut modules = FixedModules::default();
    for contract in invoked.difference(&deployed) {
        let key = StateKey::ContractModule(*contract);
        let module = match storage.get(&key)? {
            None => None,
            Some(StateValue::Module(module)) => Some(module),
            Some(other) => return Err(TosError::CorruptState(format!("{key:?} holds {other:?}"))),
        };
        modules.insert(*contract, module);
    }
    Ok(modules)
}

fn number<T: TxnView<Key = StateKey, Value = StateValue>>(
    view: &mut T,
    key: StateKey,
) -> Result<u64, ExecError<TosError>> {
    match view.read(&key)? {
        None => Ok(0),
        Some(StateValue::Number(n)) => Ok(n),
        Some(other) => Err(ExecError::Block(TosError::CorruptState(format!(
            "{key:?} holds {other:?}"
        )))),
    }
}

/// A contract call to make: what, with what, and its gas.
struct PendingCall<'t> {
    contract: Hash,
    module: Bytes,
    entry_id: u16,
    parameters: &'t [Vec<u8>],
    deposits: &'t [(Hash, u64)],
    max_gas: u64,
}

impl Vm for TosVm {
    type Txn = Transaction;
    type Key = StateKey;
    type Value = StateValue;
    type Output = TxResult;
    type Error = TosError;

    fn execute<T>(&self, tx: &Transaction, view: &mut T) -> Result<TxResult, ExecError<TosError>>
    where
        T: TxnView<Key = StateKey, Value = StateValue>,
    {
        let tx_hash = tx.hash();
        let reject = |error: TxError| Ok(TxResult::rejected(tx_hash, error));
        if self.verify_signatures {
            if let Err(error) = check_signature(tx) {
                return reject(error);
            }
        }
        // 1. Nonce.
        let nonce = number(view, StateKey::Nonce(tx.source))?;
        if nonce != tx.nonce {
            return reject(TxError::InvalidNonce {
                expected: nonce,
                got: tx.nonce,
            });
        }
        // 2. Spending, 3. payload rules.
        let spending = match spending(tx) {
            Ok(spending) => spending,
            Err(error) => return reject(error),
        };
        let multisig = match check_payload(tx) {
            Ok(action) => action,
            Err(error) => return reject(error),
        };
        if multisig == Some(MultiSigAction::Delete) {
            match view.read(&StateKey::MultiSig(tx.source))? {
                Some(StateValue::MultiSig(Some(_))) => {}
                _ => return reject(TxError::MultiSigNotConfigured),
            }
        }
        // A deploy's address and module, written if it succeeds.
        let mut deployed: Option<(Hash, Bytes)> = None;
        let call = match &tx.data {
            TransactionType::InvokeContract(invoke) => {
                let fixed = self
                    .fixed_modules
                    .as_ref()
                    .and_then(|fixed| fixed.get(&invoke.contract));
                let module = match fixed {
                    Some(Some(module)) => module.clone(),
                    Some(None) => return reject(TxError::ContractNotFound(invoke.contract)),
                    None => {
                        let key = StateKey::ContractModule(invoke.contract);
                        match view.read(&key)? {
                            Some(StateValue::Module(module)) => module,
                            None => return reject(TxError::ContractNotFound(invoke.contract)),
                            Some(other) => {
                                return Err(ExecError::Block(TosError::CorruptState(format!(
                                    "{key:?} holds {other:?}"
                                ))))
                            }
                        }
                    }
                };
                Some(PendingCall {
                    contract: invoke.contract,
                    module,
                    entry_id: invoke.entry_id,
                    parameters: &invoke.parameters,
                    deposits: &invoke.deposits,
                    max_gas: invoke.max_gas,
                })
            }
            TransactionType::DeployContract(deploy) => {
                if let Err(reason) = self.contracts.validate(&deploy.module) {
                    return reject(TxError::ContractFailed {
                        reason: format!("invalid module: {reason}"),
                    });
                }
                let address = contract_address(&tx.source, tx.nonce, &deploy.module);
                let module = Bytes::from(deploy.module.as_slice());
                deployed = Some((address, module.clone()));
                deploy.invoke.as_ref().map(|invoke| PendingCall {
                    contract: address,
                    module,
                    entry_id: CONSTRUCTOR_ENTRY,
                    parameters: &[],
                    deposits: &invoke.deposits,
                    max_gas: invoke.max_gas,
                })
            }
            _ => None,
        };
        // 4. Balances.
        let mut balances: SmallVec<[u64; 4]> = SmallVec::new();
        for &(asset, required) in &spending {
            let available = number(view, StateKey::Balance(tx.source, asset))?;
            if available < required {
                return reject(TxError::InsufficientFunds {
                    asset,
                    available,
                    required,
                });
            }
            balances.push(available);
        }
        let Some(next_nonce) = nonce.checked_add(1) else {
            return reject(TxError::Overflow);
        };
        // 5. The contract call, if any, on an overlay: nothing is written yet.
        let mut gas_used = 0;
        let mut failure = None;
        let mut overlay = None;
        if let Some(call) = &call {
            let mut buffered = ContractOverlay::new(call.contract);
            if buffered.deposit(view, call.deposits)?.is_err() {
                return reject(TxError::Overflow);
            }
            let info = CallInfo {
                contract: call.contract,
                caller: tx.source,
                entry_id: call.entry_id,
                parameters: call.parameters,
                deposits: call.deposits,
            };
            let mut host = ViewHost {
                view: &mut *view,
                overlay: &mut buffered,
                error: None,
            };
            let outcome =
                match self
                    .contracts
                    .call(&call.module, &info, call.max_gas, &mut host)
                {
                    Ok(outcome) => outcome,
                    Err(HostAbort) => {
                        return Err(host.error.take().unwrap_or(ExecError::Block(
                            TosError::Internal("the contract VM aborted a call its host did not"),
                        )))
                    }
                };
            gas_used = outcome.gas_used.min(call.max_gas);
            failure = outcome.failure;
            overlay = Some(buffered);
        }
        let failed = failure.is_some();
        // What goes back to the source: unused gas; on failure the deposits, and for a
        // deploy the contract burn.
        let mut refunds: SmallVec<[(Hash, u64); 4]> = SmallVec::new();
        // Added to the `BurnedSupply` of `tx.burned_asset()`.
        let mut burned = 0;
        match &tx.data {
            TransactionType::Burn(burn) => burned = burn.amount,
            TransactionType::InvokeContract(_) | TransactionType::DeployContract(_) => {
                if let Some(call) = &call {
                    refunds.push((TOS_ASSET, call.max_gas - gas_used));
                    if failed {
                        refunds.extend_from_slice(call.deposits);
                    }
                }
                let mut burn = gas_burned(gas_used);
                if matches!(tx.data, TransactionType::DeployContract(_)) {
                    if failed {
                        refunds.push((TOS_ASSET, BURN_PER_CONTRACT));
                    } else {
                        burn += BURN_PER_CONTRACT;
                    }
                }
                burned = burn;
            }
            _ => {}
        }
        // gas_used <= max_gas and fee + max_gas fit in the spending sum.
        let fee_paid = tx.fee + (gas_used - gas_burned(gas_used));
        view.write(StateKey::Nonce(tx.source), StateValue::Number(next_nonce));
        for (&(asset, amount), &available) in spending.iter().zip(&balances) {
            if amount > 0 {
                let refund: u64 = refunds
                    .iter()
                    .filter(|(a, _)| *a == asset)
                    .map(|(_, r)| r)
                    .sum();
                // The refunds of an asset are parts of its spending: no underflow.
                view.write(
                    StateKey::Balance(tx.source, asset),
                    StateValue::Number(available - (amount - refund)),
                );
            }
        }
        let mut credits: SmallVec<[(StateKey, u64); 4]> = SmallVec::new();
        if self.accumulators_in_state {
            credits.push((StateKey::GasFee, fee_paid));
            credits.push((StateKey::BurnedSupply(tx.burned_asset()), burned));
        }
        match &tx.data {
            TransactionType::Transfers(transfers) => {
                for t in transfers {
                    credits.push((StateKey::Balance(t.destination, t.asset), t.amount));
                }
            }
            TransactionType::Burn(_) => {}
            TransactionType::MultiSig(payload) => {
                let value = match multisig {
                    Some(MultiSigAction::Set) => Some(Arc::new(MultiSigConfig {
                        threshold: payload.threshold,
                        participants: payload.participants.clone(),
                    })),
                    _ => None,
                };
                view.write(StateKey::MultiSig(tx.source), StateValue::MultiSig(value));
            }
            TransactionType::InvokeContract(_) | TransactionType::DeployContract(_) => {
                if let (Some((address, module)), false) = (deployed, failed) {
                    view.write(
                        StateKey::ContractModule(address),
                        StateValue::Module(module),
                    );
                }
                if let (Some(overlay), false) = (&overlay, failed) {
                    if overlay.effects().apply(view)?.is_err() {
                        view.discard_writes();
                        return reject(TxError::Overflow);
                    }
                }
            }
        }
        for (key, amount) in credits {
            if amount > 0 && view.add_delta(key, amount)?.is_err() {
                view.discard_writes();
                return reject(TxError::Overflow);
            }
        }
        Ok(TxResult {
            tx_hash,
            error: failure.map(|reason| TxError::ContractFailed { reason }),
            fee_paid,
            gas_used,
            burned,
        })
    }
}

/// The keys a transaction declares (its access hints): exact for every TOS transaction
/// kind here, the accumulators included.
pub fn declared_keys(tx: &Transaction, out: &mut Vec<StateKey>) {
    out.push(StateKey::Nonce(tx.source));
    out.push(StateKey::Balance(tx.source, TOS_ASSET));
    match &tx.data {
        TransactionType::Transfers(transfers) => {
            for t in transfers {
                out.push(StateKey::Balance(tx.source, t.asset));
                out.push(StateKey::Balance(t.destination, t.asset));
            }
        }
        TransactionType::Burn(burn) => {
            out.push(StateKey::Balance(tx.source, burn.asset));
        }
        TransactionType::MultiSig(_) => out.push(StateKey::MultiSig(tx.source)),
        TransactionType::InvokeContract(invoke) => {
            out.push(StateKey::ContractModule(invoke.contract));
            for &(asset, _) in &invoke.deposits {
                out.push(StateKey::Balance(tx.source, asset));
                out.push(StateKey::ContractBalance(invoke.contract, asset));
            }
        }
        TransactionType::DeployContract(deploy) => {
            let contract = contract_address(&tx.source, tx.nonce, &deploy.module);
            out.push(StateKey::ContractModule(contract));
            for &(asset, _) in deploy.invoke.iter().flat_map(|i| &i.deposits) {
                out.push(StateKey::Balance(tx.source, asset));
                out.push(StateKey::ContractBalance(contract, asset));
            }
        }
    }
}

/// The accumulator keys `txs` may credit (preloaded once per block, not per transaction).
pub fn accumulator_keys(txs: &[Transaction]) -> Vec<StateKey> {
    let mut keys = vec![StateKey::GasFee];
    for tx in txs {
        let asset = match &tx.data {
            TransactionType::Burn(burn) => burn.asset,
            TransactionType::InvokeContract(_) | TransactionType::DeployContract(_) => TOS_ASSET,
            _ => continue,
        };
        let key = StateKey::BurnedSupply(asset);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}
