//! TOS's rules: one transaction applied to state, every check in TOS's order, each
//! failure with its TOS code.
//!
//! The rules are written once, over [`TxState`], the state as one transaction sees it;
//! the engine's VM implements it over a Block-STM view, the sequential oracle over plain
//! maps. What a transaction changes is tentative until it ends: a rejected transaction's
//! writes are discarded by the caller, so it changes nothing.
//!
//! # The order (TOS-SPEC §5.2; the first failure wins)
//!
//! 1. The chain id is the network's (0x0102).
//! 2. The source exists: it has a stored nonce or a stored TOS balance (0x0400). (Before
//!    anything that decompresses its key: an address need not be a curve point.)
//! 3. Fee rules: a TOS fee of zero on anything but a contract call (0x0301); a UNO fee on
//!    any of these types (0x0100).
//! 4. The nonce is exactly the source's: lower 0x0110, higher 0x0111.
//! 5. The TOS balance covers the fee (0x0301).
//! 6. The type's own rules ([`verify`](self) per type: 0x0100, 0x0105, 0x0107, 0x0300,
//!    0x0301, 0x0405, 0x0409, 0x0500).
//! 7. The signature (when verification is on): the source's, then a multisig account's
//!    participants' (0x0103, 0x0107).
//! 8. Apply: debits, credits (a receiver that does not exist is created; a credit that
//!    overflows is 0x0304), burns (0x0304), the contract call.
//! 9. The fee is taken and the nonce advanced.
//!
//! Where TOS's executable spec is silent the daemon decides; `docs/CONFORMANCE.md` lists
//! every such choice.

mod contract;
mod error;

pub use error::{code_name, TxError};

use crate::contract::ContractVm;
use crate::crypto::verify;
use crate::primitives::{Hash, MultiSigConfig, PublicKey, SharedMultiSig, TOS_ASSET};
use crate::state::{Bytes, DataKey};
use crate::tx::{
    contract_address, FeeType, Transaction, TransactionType, BURN_PER_CONTRACT, CONSTRUCTOR_ENTRY,
    MAX_EXTRA_DATA_SIZE, MAX_EXTRA_DATA_TOTAL, MAX_GAS_USAGE_PER_TX, MAX_MULTISIG_PARTICIPANTS,
    MAX_TRANSFERS,
};
use executor::Overflow;
use smallvec::SmallVec;
use std::sync::Arc;

/// The state as one transaction sees it: reads, and writes that stand only if the
/// transaction is accepted. `Error` is an error of the whole block (a storage failure, or
/// the engine halting a speculative execution), which the rules pass on at once.
pub trait TxState {
    /// An error of the block.
    type Error;

    /// The account's nonce, `None` if none is stored.
    fn nonce(&mut self, account: &PublicKey) -> Result<Option<u64>, Self::Error>;
    /// Sets the account's nonce.
    fn set_nonce(&mut self, account: &PublicKey, nonce: u64);

    /// The account's balance of `asset`, `None` if none is stored.
    fn balance(&mut self, account: &PublicKey, asset: &Hash) -> Result<Option<u64>, Self::Error>;
    /// Sets the account's balance of `asset`.
    fn set_balance(&mut self, account: &PublicKey, asset: &Hash, value: u64);

    /// Whether the account holds at least `required` of `asset`: `Ok(Err(available))` if
    /// not. By default a look at the balance; the engine's state makes it a check that
    /// the parallel executor validates as a predicate (`TxnView::check`).
    fn require_balance(
        &mut self,
        account: &PublicKey,
        asset: &Hash,
        required: u64,
    ) -> Result<Result<(), u64>, Self::Error> {
        Ok(covers(self.balance(account, asset)?.unwrap_or(0), required))
    }

    /// Takes `amount` of `asset` from the account, which a [`require_balance`] of this
    /// transaction showed it holds. By default a look and a write; the engine's state
    /// makes it a debit that commutes with credits (`TxnView::debit`).
    ///
    /// [`require_balance`]: TxState::require_balance
    fn debit(&mut self, account: &PublicKey, asset: &Hash, amount: u64) -> Result<(), Self::Error> {
        let available = self.balance(account, asset)?.unwrap_or(0);
        debug_assert!(available >= amount, "a debit the rules did not check");
        self.set_balance(account, asset, available.saturating_sub(amount));
        Ok(())
    }

    /// Adds `amount` (possibly zero, which creates the balance) to the account's balance
    /// of `asset`: `Ok(Err(Overflow))` if it does not fit.
    fn credit(
        &mut self,
        account: &PublicKey,
        asset: &Hash,
        amount: u64,
    ) -> Result<Result<(), Overflow>, Self::Error>;

    /// The account's multisig, `None` if none.
    fn multisig(&mut self, account: &PublicKey) -> Result<Option<SharedMultiSig>, Self::Error>;
    /// Sets (`Some`) or deletes (`None`) the account's multisig.
    fn set_multisig(&mut self, account: &PublicKey, config: Option<SharedMultiSig>);

    /// A contract's code, `None` if it is not deployed.
    fn module(&mut self, contract: &Hash) -> Result<Option<Bytes>, Self::Error>;
    /// Stores a contract's code.
    fn set_module(&mut self, contract: &Hash, module: Bytes);

    /// An entry of a contract's storage.
    fn contract_data(
        &mut self,
        contract: &Hash,
        key: &DataKey,
    ) -> Result<Option<Bytes>, Self::Error>;
    /// Sets (`Some`) or deletes (`None`) an entry of a contract's storage.
    fn set_contract_data(&mut self, contract: &Hash, key: DataKey, value: Option<Bytes>);

    /// A contract's balance of `asset` (0 if none).
    fn contract_balance(&mut self, contract: &Hash, asset: &Hash) -> Result<u64, Self::Error>;
    /// Sets a contract's balance of `asset`.
    fn set_contract_balance(&mut self, contract: &Hash, asset: &Hash, value: u64);

    /// Adds `amount` to the burned supply of `asset`: `Ok(Err(Overflow))` if it does not
    /// fit.
    fn burn(&mut self, asset: &Hash, amount: u64) -> Result<Result<(), Overflow>, Self::Error>;
    /// Adds `amount` to the fees collected (a total that saturates: TOS's rules remove
    /// fees, so no fee total may ever reject a transaction).
    fn collect_fees(&mut self, amount: u64) -> Result<(), Self::Error>;
}

/// `Ok(())` if `available` covers `required`, else `Err(available)`: what
/// [`TxState::require_balance`] returns.
pub(crate) fn covers(available: u64, required: u64) -> Result<(), u64> {
    if available >= required {
        Ok(())
    } else {
        Err(available)
    }
}

/// Whether and how the source's signature is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Verification is off: no signature is checked, the source's or a multisig's.
    Off,
    /// Verify the source's signature now.
    Verify,
    /// The source's signature was verified before execution (`true`: valid); a multisig's
    /// participants are still checked now (they depend on state).
    Verified(bool),
}

/// What the rules need besides the transaction and state.
#[derive(Clone, Copy, Debug)]
pub struct Context<'c> {
    /// The network's chain id.
    pub network_chain_id: u64,
    /// The contract runtime.
    pub contracts: &'c dyn ContractVm,
}

/// The result of one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TxResult {
    /// Why it was rejected; `None` if it was applied.
    pub error: Option<TxError>,
    /// What it added to the block's fees: its fee, plus a contract transaction's gas.
    pub fee_paid: u64,
    /// What it added to the burned supply of [`burned_asset`]'s asset.
    pub burned: u64,
    /// Gas its contract call or constructor used.
    pub gas_used: u64,
    /// Why its contract call or constructor failed, if it did: the transaction is applied
    /// all the same (charged, with the call's changes discarded).
    pub call_failure: Option<String>,
}

impl TxResult {
    /// Whether the transaction was applied.
    pub fn success(&self) -> bool {
        self.error.is_none()
    }

    /// TOS's code: 0 if applied.
    pub fn code(&self) -> u16 {
        self.error.as_ref().map_or(0, TxError::code)
    }

    /// A rejected transaction's result: it changed nothing.
    pub fn rejected(error: TxError) -> Self {
        Self {
            error: Some(error),
            ..Self::default()
        }
    }
}

/// The asset whose burned supply `tx` may add to: a burn's.
pub fn burned_asset(tx: &Transaction) -> Option<Hash> {
    match &tx.data {
        TransactionType::Burn(burn) => Some(burn.asset),
        _ => None,
    }
}

/// An early exit with a rejection.
macro_rules! reject {
    ($error:expr) => {
        return Ok(TxResult::rejected($error))
    };
}

/// An overflow found while applying: the transaction is rejected.
macro_rules! fits {
    ($credit:expr) => {
        if $credit.is_err() {
            reject!(TxError::Overflow);
        }
    };
}

/// Applies `tx` to `state` by TOS's rules. A rejected transaction's result carries its
/// error and the caller must discard what it wrote to `state`.
pub fn execute<S: TxState>(
    tx: &Transaction,
    context: &Context<'_>,
    signature: SignatureCheck,
    state: &mut S,
) -> Result<TxResult, S::Error> {
    let source = &tx.source;
    // 1. The network.
    if u64::from(tx.chain_id) != context.network_chain_id {
        reject!(TxError::ChainIdMismatch {
            expected: context.network_chain_id,
            got: tx.chain_id,
        });
    }
    // 2. The source exists.
    let nonce = state.nonce(source)?;
    if nonce.is_none() && state.balance(source, &TOS_ASSET)?.is_none() {
        reject!(TxError::AccountNotFound);
    }
    // 3. Fee rules.
    let invoke = matches!(tx.data, TransactionType::InvokeContract(_));
    if tx.fee_type == FeeType::Tos && tx.fee == 0 && !invoke {
        reject!(TxError::FeeZero);
    }
    if tx.fee_type == FeeType::Uno {
        reject!(TxError::InvalidFormat(
            "a UNO fee on a transaction that is not a UNO transfer"
        ));
    }
    // 4. The nonce.
    let nonce = nonce.unwrap_or(0);
    if tx.nonce < nonce {
        reject!(TxError::NonceTooLow {
            expected: nonce,
            got: tx.nonce,
        });
    }
    if tx.nonce > nonce {
        reject!(TxError::NonceTooHigh {
            expected: nonce,
            got: tx.nonce,
        });
    }
    // 5. The fee is affordable.
    if tx.fee > 0 {
        if let Err(available) = state.require_balance(source, &TOS_ASSET, tx.fee)? {
            reject!(TxError::InsufficientFee {
                available,
                required: tx.fee,
            });
        }
    }
    // 6. The type's rules, 7. the signature, 8. apply.
    let mut result = match &tx.data {
        TransactionType::Burn(burn) => {
            if burn.amount == 0 {
                reject!(TxError::InvalidAmount);
            }
            if burn.amount.checked_add(tx.fee).is_none() {
                reject!(TxError::InvalidFormat("the burn and its fee overflow"));
            }
            let required = if burn.asset == TOS_ASSET {
                burn.amount + tx.fee
            } else {
                burn.amount
            };
            if let Err(available) = state.require_balance(source, &burn.asset, required)? {
                reject!(TxError::InsufficientBalance {
                    asset: burn.asset,
                    available,
                    required,
                });
            }
            if let Some(error) = check_signatures(tx, signature, state)? {
                reject!(error);
            }
            state.debit(source, &burn.asset, burn.amount)?;
            fits!(state.burn(&burn.asset, burn.amount)?);
            TxResult {
                burned: burn.amount,
                ..TxResult::default()
            }
        }
        TransactionType::Transfers(transfers) => {
            // The wire format allows 1 to 500 (a transaction built in memory may not).
            if transfers.is_empty() || transfers.len() > MAX_TRANSFERS {
                reject!(TxError::InvalidFormat("not 1 to 500 transfers"));
            }
            let mut total: u64 = 0;
            let mut extra_total = 0usize;
            // What each asset's transfers take, in first-use order.
            let mut spent: SmallVec<[(Hash, u64); 2]> = SmallVec::new();
            for transfer in transfers {
                if transfer.destination == *source {
                    reject!(TxError::SelfOperation);
                }
                let Some(sum) = total.checked_add(transfer.amount) else {
                    reject!(TxError::AmountOverflow);
                };
                total = sum;
                let extra = transfer.extra_data.as_ref().map_or(0, Vec::len);
                if extra > MAX_EXTRA_DATA_SIZE {
                    reject!(TxError::InvalidPayload("extra data over 128 bytes"));
                }
                extra_total += extra;
                // Bounded by `total`, which did not overflow.
                match spent.iter_mut().find(|(a, _)| *a == transfer.asset) {
                    Some(entry) => entry.1 += transfer.amount,
                    None => spent.push((transfer.asset, transfer.amount)),
                }
            }
            if extra_total > MAX_EXTRA_DATA_TOTAL {
                reject!(TxError::InvalidPayload("extra data over 4096 bytes in all"));
            }
            if total.checked_add(tx.fee).is_none() {
                reject!(TxError::AmountOverflow);
            }
            // TOS (with the fee) first, then the other assets in first-use order.
            let tos_spent = spent
                .iter()
                .find(|(a, _)| *a == TOS_ASSET)
                .map_or(0, |e| e.1);
            let tos_required = tos_spent + tx.fee;
            if let Err(available) = state.require_balance(source, &TOS_ASSET, tos_required)? {
                reject!(TxError::InsufficientBalance {
                    asset: TOS_ASSET,
                    available,
                    required: tos_required,
                });
            }
            for &(asset, amount) in spent.iter().filter(|(a, _)| *a != TOS_ASSET) {
                if let Err(available) = state.require_balance(source, &asset, amount)? {
                    reject!(TxError::InsufficientBalance {
                        asset,
                        available,
                        required: amount,
                    });
                }
            }
            if let Some(error) = check_signatures(tx, signature, state)? {
                reject!(error);
            }
            for &(asset, amount) in spent.iter().filter(|(a, _)| *a != TOS_ASSET) {
                if amount > 0 {
                    state.debit(source, &asset, amount)?;
                }
            }
            if tos_spent > 0 {
                state.debit(source, &TOS_ASSET, tos_spent)?;
            }
            for transfer in transfers {
                fits!(credit_creating(
                    state,
                    &transfer.destination,
                    &transfer.asset,
                    transfer.amount
                )?);
            }
            TxResult::default()
        }
        TransactionType::MultiSig(payload) => {
            let participants = &payload.participants;
            let config = if payload.threshold == 0 && participants.is_empty() {
                if state.multisig(source)?.is_none() {
                    reject!(TxError::InvalidPayload("no multisig to delete"));
                }
                None
            } else {
                if payload.threshold == 0 {
                    reject!(TxError::InvalidPayload(
                        "a threshold of zero with participants"
                    ));
                }
                if participants.is_empty() {
                    reject!(TxError::InvalidFormat("a multisig without participants"));
                }
                if participants.len() > MAX_MULTISIG_PARTICIPANTS {
                    reject!(TxError::InvalidPayload("more than 255 participants"));
                }
                if has_duplicates(participants) {
                    reject!(TxError::InvalidSignature);
                }
                if usize::from(payload.threshold) > participants.len() {
                    reject!(TxError::InvalidPayload(
                        "a threshold above the participants"
                    ));
                }
                if participants.contains(source) {
                    reject!(TxError::InvalidPayload("the source among its participants"));
                }
                Some(Arc::new(MultiSigConfig {
                    threshold: payload.threshold,
                    participants: participants.clone(),
                }))
            };
            if let Some(error) = check_signatures(tx, signature, state)? {
                reject!(error);
            }
            state.set_multisig(source, config);
            TxResult::default()
        }
        TransactionType::InvokeContract(invoke) => {
            if invoke.max_gas > MAX_GAS_USAGE_PER_TX {
                reject!(TxError::InvalidPayload("max_gas above 10^9"));
            }
            if invoke.deposits.iter().any(|&(_, amount)| amount == 0) {
                reject!(TxError::InvalidFormat("a deposit of zero"));
            }
            let Some(module) = state.module(&invoke.contract)? else {
                reject!(TxError::ContractNotFound(invoke.contract));
            };
            if invoke.max_gas > 0 {
                if let Err(error) = require_sum(state, source, &[invoke.max_gas, tx.fee])? {
                    reject!(error);
                }
            }
            if let Some(error) = check_signatures(tx, signature, state)? {
                reject!(error);
            }
            if invoke.max_gas > 0 {
                state.debit(source, &TOS_ASSET, invoke.max_gas)?;
            }
            let call = contract::Call {
                contract: invoke.contract,
                caller: *source,
                entry_id: invoke.entry_id,
                parameters: invoke
                    .parameters
                    .iter()
                    .map(|c| c.contract_bytes())
                    .collect(),
                max_gas: invoke.max_gas,
            };
            let end = contract::run(context.contracts, &module, &call, state)?;
            let mut result = TxResult {
                fee_paid: invoke.max_gas,
                gas_used: end.gas_used,
                ..TxResult::default()
            };
            match end.effects {
                Some(effects) => fits!(effects.apply(state)?),
                None => result.call_failure = end.failure,
            }
            result
        }
        TransactionType::DeployContract(deploy) => {
            let (max_gas, deposits) = deploy
                .invoke
                .as_ref()
                .map_or((0, &[][..]), |i| (i.max_gas, &i.deposits[..]));
            if max_gas > MAX_GAS_USAGE_PER_TX {
                reject!(TxError::InvalidPayload("constructor max_gas above 10^9"));
            }
            if deposits.iter().any(|&(_, amount)| amount == 0) {
                reject!(TxError::InvalidFormat("a deposit of zero"));
            }
            if let Err(error) = require_sum(state, source, &[BURN_PER_CONTRACT, max_gas, tx.fee])? {
                reject!(error);
            }
            let address = contract_address(source, &deploy.module);
            if state.module(&address)?.is_some() {
                reject!(TxError::ContractExists(address));
            }
            if let Some(error) = check_signatures(tx, signature, state)? {
                reject!(error);
            }
            state.debit(source, &TOS_ASSET, BURN_PER_CONTRACT + max_gas)?;
            let module = Bytes::from(deploy.module.as_slice());
            let mut result = TxResult {
                fee_paid: max_gas,
                ..TxResult::default()
            };
            match &deploy.invoke {
                None => state.set_module(&address, module),
                Some(_) => {
                    let call = contract::Call {
                        contract: address,
                        caller: *source,
                        entry_id: CONSTRUCTOR_ENTRY,
                        parameters: Vec::new(),
                        max_gas,
                    };
                    let end = contract::run(context.contracts, &module, &call, state)?;
                    result.gas_used = end.gas_used;
                    match end.effects {
                        Some(effects) => {
                            state.set_module(&address, module);
                            fits!(effects.apply(state)?);
                        }
                        // A failed constructor leaves no contract.
                        None => result.call_failure = end.failure,
                    }
                }
            }
            result
        }
    };
    // 9. The fee and the nonce.
    if tx.fee > 0 {
        state.debit(source, &TOS_ASSET, tx.fee)?;
    }
    // The fee and a contract's max_gas were covered by one balance: the sum fits.
    result.fee_paid = result.fee_paid.saturating_add(tx.fee);
    if result.fee_paid > 0 {
        state.collect_fees(result.fee_paid)?;
    }
    // A nonce of 2^64-1 cannot advance: the transaction cannot be applied.
    let Some(next) = nonce.checked_add(1) else {
        reject!(TxError::Overflow);
    };
    state.set_nonce(source, next);
    Ok(result)
}

/// Whether the source's TOS balance covers the sum of `amounts`: a sum beyond 2^64-1 never
/// does (TOS's rules compare with unbounded integers). `Ok(Err(_))` is the rejection.
fn require_sum<S: TxState>(
    state: &mut S,
    source: &PublicKey,
    amounts: &[u64],
) -> Result<Result<(), TxError>, S::Error> {
    let sum = amounts.iter().try_fold(0u64, |sum, &a| sum.checked_add(a));
    let shortfall = match sum {
        Some(required) => state.require_balance(source, &TOS_ASSET, required)?.err(),
        None => Some(state.balance(source, &TOS_ASSET)?.unwrap_or(0)),
    };
    Ok(match shortfall {
        None => Ok(()),
        Some(available) => Err(TxError::InsufficientBalance {
            asset: TOS_ASSET,
            available,
            required: sum.unwrap_or(u64::MAX),
        }),
    })
}

/// A credit to an account that creates it if it does not exist: an account exists once
/// it has a stored TOS balance, so a credit of another asset also credits zero TOS.
fn credit_creating<S: TxState>(
    state: &mut S,
    account: &PublicKey,
    asset: &Hash,
    amount: u64,
) -> Result<Result<(), Overflow>, S::Error> {
    if *asset != TOS_ASSET {
        if let Err(overflow) = state.credit(account, asset, amount)? {
            return Ok(Err(overflow));
        }
        return state.credit(account, &TOS_ASSET, 0);
    }
    state.credit(account, asset, amount)
}

fn has_duplicates(keys: &[PublicKey]) -> bool {
    let mut sorted: SmallVec<[&PublicKey; 8]> = keys.iter().collect();
    sorted.sort_unstable();
    sorted.windows(2).any(|w| w[0] == w[1])
}

/// Step 7: the source's signature, then a multisig account's participants'. `None` if
/// they hold (or verification is off).
fn check_signatures<S: TxState>(
    tx: &Transaction,
    check: SignatureCheck,
    state: &mut S,
) -> Result<Option<TxError>, S::Error> {
    let valid = match check {
        SignatureCheck::Off => return Ok(None),
        SignatureCheck::Verified(valid) => valid,
        SignatureCheck::Verify => verify(&tx.source, &tx.signing_bytes(), &tx.signature),
    };
    if !valid {
        return Ok(Some(TxError::InvalidSignature));
    }
    let config = state.multisig(&tx.source)?;
    Ok(match (config, &tx.multisig) {
        (None, None) => None,
        (None, Some(_)) => Some(TxError::InvalidPayload(
            "multisig signatures on an account without a multisig",
        )),
        (Some(_), None) => Some(TxError::InvalidPayload(
            "a multisig account's transaction without its signatures",
        )),
        (Some(config), Some(signatures)) => {
            if signatures.len() != usize::from(config.threshold) {
                return Ok(Some(TxError::InvalidPayload(
                    "multisig signatures not equal to the threshold",
                )));
            }
            let message = tx.multisig_message();
            for entry in signatures {
                let Some(participant) = config.participants.get(usize::from(entry.id)) else {
                    return Ok(Some(TxError::InvalidPayload(
                        "a multisig signer id beyond the participants",
                    )));
                };
                if !verify(participant, &message.0, &entry.signature) {
                    return Ok(Some(TxError::InvalidSignature));
                }
            }
            None
        }
    })
}
