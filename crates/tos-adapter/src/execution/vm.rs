//! The TOS rules as the engine's [`Vm`]: one transaction against a Block-STM view.

use crate::contract::SharedContractVm;
use crate::error::TosError;
use crate::primitives::{Hash, PublicKey, SharedMultiSig, TOS_ASSET};
use crate::rules::{self, Context, SignatureCheck, TxResult, TxState};
use crate::snapshot::Access;
use crate::state::{Bytes, DataKey, StateKey, StateValue};
use crate::tx::{contract_address, Transaction, TransactionType};
use executor::{ExecError, Overflow, TxnView, Vm};
use mvmemory::FxBuildHasher;
use smallvec::SmallVec;
use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::sync::Arc;

/// A transaction as the engine executes it, with what is known of its signature.
pub trait BlockTx: Sync {
    /// The transaction.
    fn tx(&self) -> &Transaction;
    /// How its signature is checked, when verification is on.
    fn signature(&self) -> SignatureCheck;
}

impl BlockTx for Transaction {
    fn tx(&self) -> &Transaction {
        self
    }

    /// Verified as it executes.
    fn signature(&self) -> SignatureCheck {
        SignatureCheck::Verify
    }
}

/// A transaction whose signature was verified before the block ran.
#[derive(Clone, Copy, Debug)]
pub struct Checked<'t> {
    /// The transaction.
    pub tx: &'t Transaction,
    /// Whether its signature is the source's.
    pub valid: bool,
}

impl BlockTx for Checked<'_> {
    fn tx(&self) -> &Transaction {
        self.tx
    }

    fn signature(&self) -> SignatureCheck {
        SignatureCheck::Verified(self.valid)
    }
}

/// The code of contracts invoked in a block and deployed by none of its transactions, as
/// the state below the block holds it (`None`: no such contract). No transaction can
/// change it during the block, so reading it needs no versioning and no validation.
pub type FixedModules = HashMap<Hash, Option<Bytes>, FxBuildHasher>;

/// Executes TOS transactions ([`rules::execute`]) against the engine's views.
///
/// The block accumulators (`GasFee`, `BurnedSupply`) are written by many transactions
/// and read by none. Fees are never in the view: their total saturates (TOS's rules
/// remove fees; no fee total may reject a transaction) and the block executor adds it
/// after the block. A burned supply must reject the burn that would overflow it. With
/// `accumulators_in_state` it is a delta like any credit: exact, but one key that every
/// burn writes. Without it (what the block executor runs first) the VM leaves it out and
/// the block executor adds the accepted burns afterwards: the same state whenever the
/// total fits in `u64` (every burn is positive, so if the final sum fits, so did every
/// partial sum and no burn would have been rejected for it). When it does not fit, the
/// block runs again with the burned supplies in state, which rejects exactly the burn
/// that overflows.
#[derive(Debug)]
pub struct TosVm<T = Transaction> {
    /// The network's chain id.
    pub network_chain_id: u64,
    /// Check signatures (as each transaction's [`BlockTx::signature`] says).
    pub verify_signatures: bool,
    /// Credit `GasFee` and `BurnedSupply` per transaction, in state.
    pub accumulators_in_state: bool,
    /// The contract runtime.
    pub contracts: SharedContractVm,
    /// Modules no transaction of the block can change, read from here rather than
    /// through the view.
    pub fixed_modules: Option<Arc<FixedModules>>,
    txn: PhantomData<fn(&T)>,
}

impl<T> TosVm<T> {
    /// A VM for transactions of type `T`.
    pub fn new(
        network_chain_id: u64,
        verify_signatures: bool,
        accumulators_in_state: bool,
        contracts: SharedContractVm,
        fixed_modules: Option<Arc<FixedModules>>,
    ) -> Self {
        Self {
            network_chain_id,
            verify_signatures,
            accumulators_in_state,
            contracts,
            fixed_modules,
            txn: PhantomData,
        }
    }
}

impl<T: BlockTx> Vm for TosVm<T> {
    type Txn = T;
    type Key = StateKey;
    type Value = StateValue;
    type Output = TxResult;
    type Error = TosError;

    fn execute<V>(&self, txn: &T, view: &mut V) -> Result<TxResult, ExecError<TosError>>
    where
        V: TxnView<Key = StateKey, Value = StateValue>,
    {
        let context = Context {
            network_chain_id: self.network_chain_id,
            contracts: &*self.contracts,
        };
        let signature = if self.verify_signatures {
            txn.signature()
        } else {
            SignatureCheck::Off
        };
        let mut state = ViewState {
            view,
            accumulators_in_state: self.accumulators_in_state,
            fixed_modules: self.fixed_modules.as_deref(),
            numbers: SmallVec::new(),
        };
        let result = rules::execute(txn.tx(), &context, signature, &mut state)?;
        if result.error.is_some() {
            state.view.discard_writes();
        }
        Ok(result)
    }
}

/// The rules' state over a transaction's view.
struct ViewState<'v, V> {
    view: &'v mut V,
    accumulators_in_state: bool,
    fixed_modules: Option<&'v FixedModules>,
    /// The numbers (nonces, balances) this transaction read or set, as it sees them: the
    /// rules look at the source's balance several times, and each look at the view would
    /// be another lookup and another read to validate.
    numbers: SmallVec<[(StateKey, Option<u64>); 4]>,
}

fn corrupt(key: &StateKey, value: &StateValue) -> ExecError<TosError> {
    ExecError::Block(TosError::CorruptState(format!("{key:?} holds {value:?}")))
}

impl<V: TxnView<Key = StateKey, Value = StateValue>> ViewState<'_, V> {
    fn read_number(&mut self, key: &StateKey) -> Result<Option<u64>, ExecError<TosError>> {
        match self.view.read(key)? {
            None => Ok(None),
            Some(StateValue::Number(n)) => Ok(Some(n)),
            Some(other) => Err(corrupt(key, &other)),
        }
    }

    fn number(&mut self, key: StateKey) -> Result<Option<u64>, ExecError<TosError>> {
        if let Some((_, value)) = self.numbers.iter().find(|(k, _)| *k == key) {
            return Ok(*value);
        }
        let value = self.read_number(&key)?;
        self.numbers.push((key, value));
        Ok(value)
    }

    fn set_number(&mut self, key: StateKey, value: u64) {
        self.view.write(key.clone(), StateValue::Number(value));
        match self.numbers.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = Some(value),
            None => self.numbers.push((key, Some(value))),
        }
    }

    fn add(
        &mut self,
        key: StateKey,
        amount: u64,
    ) -> Result<Result<(), Overflow>, ExecError<TosError>> {
        // What this transaction saw of the key is stale now: the view resolves the delta.
        self.numbers.retain(|(k, _)| *k != key);
        Ok(self.view.add_delta(key, amount)?)
    }
}

impl<V: TxnView<Key = StateKey, Value = StateValue>> TxState for ViewState<'_, V> {
    type Error = ExecError<TosError>;

    fn nonce(&mut self, account: &PublicKey) -> Result<Option<u64>, Self::Error> {
        self.number(StateKey::Nonce(*account))
    }

    fn set_nonce(&mut self, account: &PublicKey, nonce: u64) {
        self.set_number(StateKey::Nonce(*account), nonce);
    }

    fn balance(&mut self, account: &PublicKey, asset: &Hash) -> Result<Option<u64>, Self::Error> {
        self.number(StateKey::Balance(*account, *asset))
    }

    fn set_balance(&mut self, account: &PublicKey, asset: &Hash, value: u64) {
        self.set_number(StateKey::Balance(*account, *asset), value);
    }

    fn require_balance(
        &mut self,
        account: &PublicKey,
        asset: &Hash,
        required: u64,
    ) -> Result<Result<(), u64>, Self::Error> {
        let key = StateKey::Balance(*account, *asset);
        // A balance this transaction already read or set: no second look at the view.
        if let Some((_, value)) = self.numbers.iter().find(|(k, _)| *k == key) {
            return Ok(rules::covers(value.unwrap_or(0), required));
        }
        match self.view.check(&key, required)? {
            Ok(()) => Ok(Ok(())),
            Err(value) => {
                let available = match value {
                    None => None,
                    Some(StateValue::Number(n)) => Some(n),
                    Some(other) => return Err(corrupt(&key, &other)),
                };
                self.numbers.push((key, available));
                Ok(Err(available.unwrap_or(0)))
            }
        }
    }

    fn debit(&mut self, account: &PublicKey, asset: &Hash, amount: u64) -> Result<(), Self::Error> {
        let key = StateKey::Balance(*account, *asset);
        if let Some(&(_, value)) = self.numbers.iter().find(|(k, _)| *k == key) {
            self.set_number(key, value.unwrap_or(0).saturating_sub(amount));
            return Ok(());
        }
        Ok(self.view.debit(key, amount)?)
    }

    fn credit(
        &mut self,
        account: &PublicKey,
        asset: &Hash,
        amount: u64,
    ) -> Result<Result<(), Overflow>, Self::Error> {
        self.add(StateKey::Balance(*account, *asset), amount)
    }

    fn multisig(&mut self, account: &PublicKey) -> Result<Option<SharedMultiSig>, Self::Error> {
        let key = StateKey::MultiSig(*account);
        match self.view.read(&key)? {
            None | Some(StateValue::MultiSig(None)) => Ok(None),
            Some(StateValue::MultiSig(Some(config))) => Ok(Some(config)),
            Some(other) => Err(corrupt(&key, &other)),
        }
    }

    fn set_multisig(&mut self, account: &PublicKey, config: Option<SharedMultiSig>) {
        self.view
            .write(StateKey::MultiSig(*account), StateValue::MultiSig(config));
    }

    fn module(&mut self, contract: &Hash) -> Result<Option<Bytes>, Self::Error> {
        if let Some(fixed) = self.fixed_modules.and_then(|f| f.get(contract)) {
            return Ok(fixed.clone());
        }
        let key = StateKey::ContractModule(*contract);
        match self.view.read(&key)? {
            None => Ok(None),
            Some(StateValue::Module(module)) => Ok(Some(module)),
            Some(other) => Err(corrupt(&key, &other)),
        }
    }

    fn set_module(&mut self, contract: &Hash, module: Bytes) {
        self.view.write(
            StateKey::ContractModule(*contract),
            StateValue::Module(module),
        );
    }

    fn contract_data(
        &mut self,
        contract: &Hash,
        key: &DataKey,
    ) -> Result<Option<Bytes>, Self::Error> {
        let key = StateKey::ContractData(*contract, *key);
        match self.view.read(&key)?.map(StateValue::into_data) {
            None => Ok(None),
            Some(Ok(bytes)) => Ok(bytes),
            Some(Err(other)) => Err(corrupt(&key, &other)),
        }
    }

    fn set_contract_data(&mut self, contract: &Hash, key: DataKey, value: Option<Bytes>) {
        self.view.write(
            StateKey::ContractData(*contract, key),
            StateValue::data(value),
        );
    }

    fn contract_balance(&mut self, contract: &Hash, asset: &Hash) -> Result<u64, Self::Error> {
        Ok(self
            .read_number(&StateKey::ContractBalance(*contract, *asset))?
            .unwrap_or(0))
    }

    fn set_contract_balance(&mut self, contract: &Hash, asset: &Hash, value: u64) {
        self.view.write(
            StateKey::ContractBalance(*contract, *asset),
            StateValue::Number(value),
        );
    }

    fn burn(&mut self, asset: &Hash, amount: u64) -> Result<Result<(), Overflow>, Self::Error> {
        if !self.accumulators_in_state {
            return Ok(Ok(()));
        }
        self.add(StateKey::BurnedSupply(*asset), amount)
    }

    /// Fees are never in the view: the block executor adds their total after the block
    /// (it saturates, and no transaction reads it).
    fn collect_fees(&mut self, _amount: u64) -> Result<(), Self::Error> {
        Ok(())
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
                deployed.insert(contract_address(&tx.source, &deploy.module));
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

/// The keys a transaction declares (its access hints), each with how it touches it:
/// every account key a transfer, burn or multisig touches (with `signatures`, the
/// source's multisig, which signature verification reads), a transfer's receivers as
/// credited; a contract call's module. The accumulators are declared once per block
/// ([`block_keys`](crate::block::block_keys)).
pub fn declared_keys(tx: &Transaction, signatures: bool, out: &mut Vec<(StateKey, Access)>) {
    use Access::{Credit, ReadWrite};
    out.push((StateKey::Nonce(tx.source), ReadWrite));
    out.push((StateKey::Balance(tx.source, TOS_ASSET), ReadWrite));
    if signatures || matches!(tx.data, TransactionType::MultiSig(_)) {
        out.push((StateKey::MultiSig(tx.source), ReadWrite));
    }
    match &tx.data {
        TransactionType::Transfers(transfers) => {
            for t in transfers {
                if t.asset != TOS_ASSET {
                    out.push((StateKey::Balance(tx.source, t.asset), ReadWrite));
                    // Creating the receiver: a credit of zero TOS.
                    out.push((StateKey::Balance(t.destination, TOS_ASSET), Credit));
                }
                out.push((StateKey::Balance(t.destination, t.asset), Credit));
            }
        }
        TransactionType::Burn(burn) => {
            out.push((StateKey::Balance(tx.source, burn.asset), ReadWrite));
        }
        TransactionType::MultiSig(_) => {}
        TransactionType::InvokeContract(invoke) => {
            out.push((StateKey::ContractModule(invoke.contract), ReadWrite));
        }
        TransactionType::DeployContract(deploy) => {
            out.push((
                StateKey::ContractModule(contract_address(&tx.source, &deploy.module)),
                ReadWrite,
            ));
        }
    }
}
