//! The engine's contract host: a call's changes buffered in a [`ContractOverlay`] over a
//! transaction's view of state, applied to the view only if the call succeeds.

use super::{ContractHost, HostAbort};
use crate::error::TosError;
use crate::state::{Bytes, DataKey, StateKey, StateValue};
use crate::types::{Hash, PublicKey};
use executor::{ExecError, Overflow, TxnView};
use smallvec::SmallVec;

/// A contract balance as the call sees it: what state held, plus the call's deposits,
/// minus its transfers out.
#[derive(Clone, Copy, Debug)]
struct BalanceEntry {
    asset: Hash,
    base: u64,
    credit: u64,
    debit: u64,
}

impl BalanceEntry {
    /// The balance now. Deposits were checked to fit on the base before the call, and a
    /// transfer never takes more than there is, so neither step can fail.
    fn current(&self) -> u64 {
        self.base
            .saturating_add(self.credit)
            .saturating_sub(self.debit)
    }
}

/// A storage entry the call read or wrote, with its value as the call sees it.
#[derive(Clone, Debug)]
struct DataEntry {
    key: DataKey,
    value: Option<Bytes>,
    /// Written by the call (a store, or a delete of an entry that existed).
    dirty: bool,
}

/// One contract call's changes, kept apart from state until the call succeeds.
#[derive(Debug)]
pub(crate) struct ContractOverlay {
    contract: Hash,
    data: SmallVec<[DataEntry; 4]>,
    balances: SmallVec<[BalanceEntry; 2]>,
    transfers: SmallVec<[(PublicKey, Hash, u64); 2]>,
}

/// What a successful call changes, to apply.
pub(crate) struct CallEffects<'o>(&'o ContractOverlay);

fn data_value(key: &StateKey, value: Option<StateValue>) -> Result<Option<Bytes>, TosError> {
    match value.map(StateValue::into_data) {
        None => Ok(None),
        Some(Ok(bytes)) => Ok(bytes),
        Some(Err(other)) => Err(TosError::CorruptState(format!("{key:?} holds {other:?}"))),
    }
}

fn number_value(key: &StateKey, value: Option<StateValue>) -> Result<u64, TosError> {
    match value {
        None => Ok(0),
        Some(StateValue::Number(n)) => Ok(n),
        Some(other) => Err(TosError::CorruptState(format!("{key:?} holds {other:?}"))),
    }
}

impl ContractOverlay {
    /// An empty overlay for a call of `contract`.
    pub(crate) fn new(contract: Hash) -> Self {
        Self {
            contract,
            data: SmallVec::new(),
            balances: SmallVec::new(),
            transfers: SmallVec::new(),
        }
    }

    /// Credits the call's deposits to the contract's balances, reading each from `view`:
    /// `Ok(Err(Overflow))` if one does not fit (the transaction is rejected).
    pub(crate) fn deposit<T: TxnView<Key = StateKey, Value = StateValue>>(
        &mut self,
        view: &mut T,
        deposits: &[(Hash, u64)],
    ) -> Result<Result<(), Overflow>, ExecError<TosError>> {
        for &(asset, amount) in deposits {
            let index = self.balance_index(view, asset)?;
            let entry = &mut self.balances[index];
            match entry
                .base
                .checked_add(entry.credit)
                .and_then(|b| b.checked_add(amount))
            {
                Some(_) => entry.credit += amount,
                None => return Ok(Err(Overflow)),
            }
        }
        Ok(Ok(()))
    }

    fn balance_index<T: TxnView<Key = StateKey, Value = StateValue>>(
        &mut self,
        view: &mut T,
        asset: Hash,
    ) -> Result<usize, ExecError<TosError>> {
        if let Some(i) = self.balances.iter().position(|b| b.asset == asset) {
            return Ok(i);
        }
        let key = StateKey::ContractBalance(self.contract, asset);
        let base = number_value(&key, view.read(&key)?).map_err(ExecError::Block)?;
        self.balances.push(BalanceEntry {
            asset,
            base,
            credit: 0,
            debit: 0,
        });
        Ok(self.balances.len() - 1)
    }

    fn data_index<T: TxnView<Key = StateKey, Value = StateValue>>(
        &mut self,
        view: &mut T,
        key: &[u8],
    ) -> Result<usize, ExecError<TosError>> {
        let key = DataKey::new(key);
        if let Some(i) = self.data.iter().position(|d| d.key == key) {
            return Ok(i);
        }
        let state_key = StateKey::ContractData(self.contract, key);
        let value = data_value(&state_key, view.read(&state_key)?).map_err(ExecError::Block)?;
        self.data.push(DataEntry {
            key,
            value,
            dirty: false,
        });
        Ok(self.data.len() - 1)
    }

    /// The changes of the call, once it succeeded.
    pub(crate) fn effects(&self) -> CallEffects<'_> {
        CallEffects(self)
    }
}

impl CallEffects<'_> {
    /// Writes the call's changes to `view`: storage entries, contract balances, and the
    /// transfers out as credits. `Ok(Err(Overflow))` if a credit does not fit: the caller
    /// must discard the view's writes and reject the transaction.
    pub(crate) fn apply<T: TxnView<Key = StateKey, Value = StateValue>>(
        &self,
        view: &mut T,
    ) -> Result<Result<(), Overflow>, executor::Halt> {
        let overlay = self.0;
        for entry in overlay.data.iter().filter(|d| d.dirty) {
            view.write(
                StateKey::ContractData(overlay.contract, entry.key),
                StateValue::data(entry.value.clone()),
            );
        }
        for balance in &overlay.balances {
            if balance.credit != 0 || balance.debit != 0 {
                view.write(
                    StateKey::ContractBalance(overlay.contract, balance.asset),
                    StateValue::Number(balance.current()),
                );
            }
        }
        for &(destination, asset, amount) in &overlay.transfers {
            if view
                .add_delta(StateKey::Balance(destination, asset), amount)?
                .is_err()
            {
                return Ok(Err(Overflow));
            }
        }
        Ok(Ok(()))
    }
}

/// The host a call runs against under the engine: the overlay over the transaction's view.
/// A halt or a storage error is kept in `error` and the call aborted.
pub(crate) struct ViewHost<'a, T> {
    pub(crate) view: &'a mut T,
    pub(crate) overlay: &'a mut ContractOverlay,
    pub(crate) error: Option<ExecError<TosError>>,
}

impl<T: TxnView<Key = StateKey, Value = StateValue>> ViewHost<'_, T> {
    fn keep<V>(&mut self, result: Result<V, ExecError<TosError>>) -> Result<V, HostAbort> {
        result.map_err(|error| {
            self.error = Some(error);
            HostAbort
        })
    }
}

impl<T: TxnView<Key = StateKey, Value = StateValue>> ContractHost for ViewHost<'_, T> {
    fn load(&mut self, key: &[u8]) -> Result<Option<Bytes>, HostAbort> {
        let index = self.overlay.data_index(self.view, key);
        let index = self.keep(index)?;
        Ok(self.overlay.data[index].value.clone())
    }

    fn store(&mut self, key: &[u8], value: &[u8]) -> Result<(), HostAbort> {
        // A store does not need the old value: no read, so no dependency on it.
        let key = DataKey::new(key);
        match self.overlay.data.iter_mut().find(|d| d.key == key) {
            Some(entry) => {
                entry.value = Some(value.into());
                entry.dirty = true;
            }
            None => self.overlay.data.push(DataEntry {
                key,
                value: Some(value.into()),
                dirty: true,
            }),
        }
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<bool, HostAbort> {
        let index = self.overlay.data_index(self.view, key);
        let index = self.keep(index)?;
        let entry = &mut self.overlay.data[index];
        let existed = entry.value.take().is_some();
        entry.dirty |= existed;
        Ok(existed)
    }

    fn balance(&mut self, asset: &Hash) -> Result<u64, HostAbort> {
        let index = self.overlay.balance_index(self.view, *asset);
        let index = self.keep(index)?;
        Ok(self.overlay.balances[index].current())
    }

    fn transfer(
        &mut self,
        destination: &PublicKey,
        asset: &Hash,
        amount: u64,
    ) -> Result<bool, HostAbort> {
        let index = self.overlay.balance_index(self.view, *asset);
        let index = self.keep(index)?;
        let entry = &mut self.overlay.balances[index];
        if amount > entry.current() {
            return Ok(false);
        }
        if amount > 0 {
            entry.debit += amount;
            self.overlay.transfers.push((*destination, *asset, amount));
        }
        Ok(true)
    }
}
