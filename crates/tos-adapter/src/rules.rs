//! The TOS rules both executors share: what a transaction spends and which payload
//! rules it must satisfy, before any balance is looked at (DESIGN.md steps 2 and 3).

use crate::error::TxError;
use crate::types::{
    Hash, PublicKey, Transaction, TransactionType, BURN_PER_CONTRACT, MAX_DEPOSITS,
    MAX_MODULE_SIZE, MAX_MULTISIG_PARTICIPANTS, MAX_PARAMETERS, MAX_PARAMETER_SIZE, MAX_TRANSFERS,
    TOS_ASSET,
};
use smallvec::SmallVec;

/// What a transaction spends, per asset, in first-use order (the fee's TOS first).
pub type Spending = SmallVec<[(Hash, u64); 4]>;

/// Step 2: the spending per asset, with checked sums.
pub fn spending(tx: &Transaction) -> Result<Spending, TxError> {
    let mut spending = Spending::new();
    let mut add = |asset: Hash, amount: u64| -> Result<(), TxError> {
        match spending.iter_mut().find(|(a, _)| *a == asset) {
            Some((_, total)) => *total = total.checked_add(amount).ok_or(TxError::Overflow)?,
            None => spending.push((asset, amount)),
        }
        Ok(())
    };
    add(TOS_ASSET, tx.fee)?;
    match &tx.data {
        TransactionType::Transfers(transfers) => {
            for transfer in transfers {
                add(transfer.asset, transfer.amount)?;
            }
        }
        TransactionType::Burn(burn) => add(burn.asset, burn.amount)?,
        TransactionType::MultiSig(_) => {}
        TransactionType::InvokeContract(invoke) => {
            add(TOS_ASSET, invoke.max_gas)?;
            for &(asset, amount) in &invoke.deposits {
                add(asset, amount)?;
            }
        }
        TransactionType::DeployContract(deploy) => {
            add(TOS_ASSET, BURN_PER_CONTRACT)?;
            if let Some(invoke) = &deploy.invoke {
                add(TOS_ASSET, invoke.max_gas)?;
                for &(asset, amount) in &invoke.deposits {
                    add(asset, amount)?;
                }
            }
        }
    }
    Ok(spending)
}

/// What a multisig payload asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultiSigAction {
    /// Set this configuration.
    Set,
    /// Delete the source's configuration (it must have one).
    Delete,
}

/// Step 3: the payload rules that need no state. For a multisig, also what it asks for.
pub fn check_payload(tx: &Transaction) -> Result<Option<MultiSigAction>, TxError> {
    match &tx.data {
        TransactionType::Transfers(transfers) => {
            if transfers.is_empty() || transfers.len() > MAX_TRANSFERS {
                return Err(TxError::TransferCount {
                    count: transfers.len(),
                });
            }
            if transfers.iter().any(|t| t.destination == tx.source) {
                return Err(TxError::SenderIsReceiver);
            }
            Ok(None)
        }
        TransactionType::Burn(_) => Ok(None),
        TransactionType::MultiSig(multisig) => {
            let participants = &multisig.participants;
            if multisig.threshold == 0 && participants.is_empty() {
                return Ok(Some(MultiSigAction::Delete));
            }
            if participants.len() > MAX_MULTISIG_PARTICIPANTS
                || participants.contains(&tx.source)
                || has_duplicates(participants)
            {
                return Err(TxError::MultiSigParticipants);
            }
            if multisig.threshold == 0 || usize::from(multisig.threshold) > participants.len() {
                return Err(TxError::MultiSigThreshold);
            }
            Ok(Some(MultiSigAction::Set))
        }
        TransactionType::InvokeContract(invoke) => {
            check_deposits(&invoke.deposits)?;
            if invoke.parameters.len() > MAX_PARAMETERS {
                return Err(invalid(format!(
                    "{} parameters (at most {MAX_PARAMETERS})",
                    invoke.parameters.len()
                )));
            }
            if let Some(p) = invoke
                .parameters
                .iter()
                .find(|p| p.len() > MAX_PARAMETER_SIZE)
            {
                return Err(invalid(format!(
                    "a parameter of {} bytes (at most {MAX_PARAMETER_SIZE})",
                    p.len()
                )));
            }
            Ok(None)
        }
        TransactionType::DeployContract(deploy) => {
            if deploy.module.len() > MAX_MODULE_SIZE {
                return Err(invalid(format!(
                    "a module of {} bytes (at most {MAX_MODULE_SIZE})",
                    deploy.module.len()
                )));
            }
            if let Some(invoke) = &deploy.invoke {
                check_deposits(&invoke.deposits)?;
            }
            Ok(None)
        }
    }
}

/// A contract payload that breaks a rule: rejected as `ContractFailed` (nothing charged).
fn invalid(reason: String) -> TxError {
    TxError::ContractFailed {
        reason: format!("invalid payload: {reason}"),
    }
}

fn check_deposits(deposits: &[(Hash, u64)]) -> Result<(), TxError> {
    if deposits.len() > MAX_DEPOSITS {
        return Err(invalid(format!(
            "{} deposits (at most {MAX_DEPOSITS})",
            deposits.len()
        )));
    }
    let mut assets: SmallVec<[&Hash; 4]> = deposits.iter().map(|(a, _)| a).collect();
    assets.sort_unstable();
    if assets.windows(2).any(|w| w[0] == w[1]) {
        return Err(invalid("an asset deposited twice".to_owned()));
    }
    Ok(())
}

fn has_duplicates(keys: &[PublicKey]) -> bool {
    let mut sorted: Vec<&PublicKey> = keys.iter().collect();
    sorted.sort_unstable();
    sorted.windows(2).any(|w| w[0] == w[1])
}

/// Whether the signature is the source's, when verification is on.
pub fn check_signature(tx: &Transaction) -> Result<(), TxError> {
    match &tx.signature {
        Some(signature) if crate::crypto::verify(&tx.source, &tx.signing_bytes(), signature) => {
            Ok(())
        }
        _ => Err(TxError::InvalidSignature),
    }
}
