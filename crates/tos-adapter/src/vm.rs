//! The TOS VM for the Block-STM engine: one transaction against a read view.

use crate::error::{TosError, TxError};
use crate::rules::{check_payload, check_signature, spending, MultiSigAction};
use crate::state::{StateKey, StateValue};
use crate::types::{Hash, MultiSigConfig, Transaction, TransactionType, TOS_ASSET};
use executor::{ExecError, TxnView, Vm};
use smallvec::SmallVec;
use std::sync::Arc;

/// The result of one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxResult {
    /// The transaction's hash.
    pub tx_hash: Hash,
    /// Why it was rejected; `None` if it succeeded.
    pub error: Option<TxError>,
    /// The fee it paid (0 if rejected).
    pub fee_paid: u64,
}

impl TxResult {
    /// Whether the transaction succeeded.
    pub fn success(&self) -> bool {
        self.error.is_none()
    }
}

/// Executes TOS transactions per DESIGN.md's rules. Credits are deltas; amounts of zero
/// write nothing.
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
#[derive(Clone, Copy, Debug)]
pub struct TosVm {
    /// Verify each transaction's signature first.
    pub verify_signatures: bool,
    /// Credit `GasFee` and `BurnedSupply` per transaction, in state.
    pub accumulators_in_state: bool,
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
        let reject = |error: TxError| {
            Ok(TxResult {
                tx_hash,
                error: Some(error),
                fee_paid: 0,
            })
        };
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
        // 5. Apply.
        let Some(next_nonce) = nonce.checked_add(1) else {
            return reject(TxError::Overflow);
        };
        view.write(StateKey::Nonce(tx.source), StateValue::Number(next_nonce));
        for (&(asset, amount), &available) in spending.iter().zip(&balances) {
            if amount > 0 {
                view.write(
                    StateKey::Balance(tx.source, asset),
                    StateValue::Number(available - amount),
                );
            }
        }
        let mut credits: SmallVec<[(StateKey, u64); 4]> = SmallVec::new();
        if self.accumulators_in_state {
            credits.push((StateKey::GasFee, tx.fee));
        }
        match &tx.data {
            TransactionType::Transfers(transfers) => {
                for t in transfers {
                    credits.push((StateKey::Balance(t.destination, t.asset), t.amount));
                }
            }
            TransactionType::Burn(burn) => {
                if self.accumulators_in_state {
                    credits.push((StateKey::BurnedSupply(burn.asset), burn.amount))
                }
            }
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
        }
        for (key, amount) in credits {
            if amount > 0 && view.add_delta(key, amount)?.is_err() {
                view.discard_writes();
                return reject(TxError::Overflow);
            }
        }
        Ok(TxResult {
            tx_hash,
            error: None,
            fee_paid: tx.fee,
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
    }
}

/// The accumulator keys `txs` may credit (preloaded once per block, not per transaction).
pub fn accumulator_keys(txs: &[Transaction]) -> Vec<StateKey> {
    let mut keys = vec![StateKey::GasFee];
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
