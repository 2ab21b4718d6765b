//! A contract call under the rules: the call runs against an overlay of its own over the
//! transaction's state, and its changes (storage entries, contract balances, transfers
//! out) reach the state only if it succeeds.
//!
//! Reads go through the overlay to the state, so under Block-STM each storage entry and
//! contract balance is a versioned key of its own: calls that touch different entries of
//! one contract run in parallel, calls that touch the same entry are ordered by
//! validation. A store needs no read of the old value.

use super::{credit_creating, TxState};
use crate::contract::{CallInfo, ContractHost, ContractVm, HostAbort};
use crate::primitives::{Hash, PublicKey};
use crate::state::{Bytes, DataKey};
use executor::Overflow;
use smallvec::SmallVec;

/// A call to make.
pub(super) struct Call {
    pub(super) contract: Hash,
    pub(super) caller: PublicKey,
    pub(super) entry_id: u16,
    pub(super) parameters: Vec<Vec<u8>>,
    pub(super) max_gas: u64,
}

/// How a call ended.
pub(super) struct CallEnd {
    pub(super) gas_used: u64,
    /// Why it failed; `None` if it succeeded.
    pub(super) failure: Option<String>,
    /// Its changes, if it succeeded.
    pub(super) effects: Option<Effects>,
}

/// A contract balance as the call sees it: what state held, minus the call's transfers.
#[derive(Clone, Copy, Debug)]
struct BalanceEntry {
    asset: Hash,
    base: u64,
    debit: u64,
}

/// A storage entry the call read or wrote, as the call sees it.
#[derive(Clone, Debug)]
struct DataEntry {
    key: DataKey,
    value: Option<Bytes>,
    /// Written by the call (a store, or a delete of an entry that existed).
    dirty: bool,
}

/// A successful call's changes.
#[derive(Debug)]
pub(super) struct Effects {
    contract: Hash,
    data: SmallVec<[DataEntry; 4]>,
    balances: SmallVec<[BalanceEntry; 2]>,
    transfers: SmallVec<[(PublicKey, Hash, u64); 2]>,
}

impl Effects {
    /// Writes the call's changes: storage entries, contract balances, and the transfers
    /// out as credits (creating their receivers). `Ok(Err(Overflow))` if a credit does not
    /// fit: the transaction is rejected.
    pub(super) fn apply<S: TxState>(self, state: &mut S) -> Result<Result<(), Overflow>, S::Error> {
        for entry in self.data.into_iter().filter(|d| d.dirty) {
            state.set_contract_data(&self.contract, entry.key, entry.value);
        }
        for balance in self.balances.iter().filter(|b| b.debit != 0) {
            // A transfer never takes more than there is.
            state.set_contract_balance(
                &self.contract,
                &balance.asset,
                balance.base - balance.debit,
            );
        }
        for (destination, asset, amount) in &self.transfers {
            if let Err(overflow) = credit_creating(state, destination, asset, *amount)? {
                return Ok(Err(overflow));
            }
        }
        Ok(Ok(()))
    }
}

/// The host a call runs against: the overlay over the transaction's state. A block error
/// of the state is kept in `error` and the call aborted.
struct Host<'s, S: TxState> {
    state: &'s mut S,
    effects: Effects,
    error: Option<S::Error>,
}

impl<S: TxState> Host<'_, S> {
    fn keep<T>(&mut self, result: Result<T, S::Error>) -> Result<T, HostAbort> {
        result.map_err(|error| {
            self.error = Some(error);
            HostAbort
        })
    }

    fn data_index(&mut self, key: &[u8]) -> Result<usize, HostAbort> {
        let key = DataKey::new(key);
        if let Some(i) = self.effects.data.iter().position(|d| d.key == key) {
            return Ok(i);
        }
        let value = self.state.contract_data(&self.effects.contract, &key);
        let value = self.keep(value)?;
        self.effects.data.push(DataEntry {
            key,
            value,
            dirty: false,
        });
        Ok(self.effects.data.len() - 1)
    }

    fn balance_index(&mut self, asset: &Hash) -> Result<usize, HostAbort> {
        if let Some(i) = self.effects.balances.iter().position(|b| b.asset == *asset) {
            return Ok(i);
        }
        let base = self.state.contract_balance(&self.effects.contract, asset);
        let base = self.keep(base)?;
        self.effects.balances.push(BalanceEntry {
            asset: *asset,
            base,
            debit: 0,
        });
        Ok(self.effects.balances.len() - 1)
    }
}

impl<S: TxState> ContractHost for Host<'_, S> {
    fn load(&mut self, key: &[u8]) -> Result<Option<Bytes>, HostAbort> {
        let index = self.data_index(key)?;
        Ok(self.effects.data[index].value.clone())
    }

    fn store(&mut self, key: &[u8], value: &[u8]) -> Result<(), HostAbort> {
        let key = DataKey::new(key);
        match self.effects.data.iter_mut().find(|d| d.key == key) {
            Some(entry) => {
                entry.value = Some(value.into());
                entry.dirty = true;
            }
            None => self.effects.data.push(DataEntry {
                key,
                value: Some(value.into()),
                dirty: true,
            }),
        }
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<bool, HostAbort> {
        let index = self.data_index(key)?;
        let entry = &mut self.effects.data[index];
        let existed = entry.value.take().is_some();
        entry.dirty |= existed;
        Ok(existed)
    }

    fn balance(&mut self, asset: &Hash) -> Result<u64, HostAbort> {
        let index = self.balance_index(asset)?;
        let entry = &self.effects.balances[index];
        Ok(entry.base - entry.debit)
    }

    fn transfer(
        &mut self,
        destination: &PublicKey,
        asset: &Hash,
        amount: u64,
    ) -> Result<bool, HostAbort> {
        let index = self.balance_index(asset)?;
        let entry = &mut self.effects.balances[index];
        if amount > entry.base - entry.debit {
            return Ok(false);
        }
        if amount > 0 {
            entry.debit += amount;
            self.effects.transfers.push((*destination, *asset, amount));
        }
        Ok(true)
    }
}

/// Runs `call` on `module`. A block error of the state (a halted speculation, a storage
/// failure) is returned as such; a failed call is a [`CallEnd`] with no effects.
pub(super) fn run<S: TxState>(
    vm: &dyn ContractVm,
    module: &[u8],
    call: &Call,
    state: &mut S,
) -> Result<CallEnd, S::Error> {
    let mut host = Host {
        state,
        effects: Effects {
            contract: call.contract,
            data: SmallVec::new(),
            balances: SmallVec::new(),
            transfers: SmallVec::new(),
        },
        error: None,
    };
    let info = CallInfo {
        contract: call.contract,
        caller: call.caller,
        entry_id: call.entry_id,
        parameters: &call.parameters,
    };
    match vm.call(module, &info, call.max_gas, &mut host) {
        Ok(outcome) => {
            let gas_used = outcome.gas_used.min(call.max_gas);
            Ok(match outcome.failure {
                None => CallEnd {
                    gas_used,
                    failure: None,
                    effects: Some(host.effects),
                },
                Some(reason) => CallEnd {
                    gas_used,
                    failure: Some(reason),
                    effects: None,
                },
            })
        }
        Err(HostAbort) => match host.error.take() {
            Some(error) => Err(error),
            // The VM returned an abort its host never raised: treat it as the call's
            // failure, not the block's.
            None => Ok(CallEnd {
                gas_used: call.max_gas,
                failure: Some("the contract runtime aborted the call".to_owned()),
                effects: None,
            }),
        },
    }
}
