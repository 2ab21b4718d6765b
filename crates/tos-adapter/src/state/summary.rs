//! The chain's state as TOS's conformance suite sees it, and its digest.
//!
//! An account exists once it has a stored nonce or a stored TOS balance: loading a state
//! writes both, and a credit (even of zero) stores the receiver's balance, so creating a
//! receiver needs no read of it. Its exported balance is its TOS balance.
//!
//! The state digest v1 of TOS's executable spec is the lowercase hex of blake3 over
//! `total_supply ‖ total_burned ‖ total_energy ‖ block_height ‖ timestamp` and then, for
//! each account in ascending order of its 32 address bytes, `address ‖ balance ‖ nonce ‖
//! frozen ‖ energy ‖ flags ‖ len(data) ‖ data`, every number a big-endian `u64`. Energy,
//! frozen balances, flags and account data are features this executor does not have: they
//! are 0 and empty.

use super::{Bytes, Global, StateKey, StateValue};
use crate::primitives::{Hash, PublicKey, TOS_ASSET};
use std::collections::BTreeMap;

/// An account of the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountSummary {
    /// Its address.
    pub address: PublicKey,
    /// Its TOS balance.
    pub balance: u64,
    /// Its nonce.
    pub nonce: u64,
}

/// The state's global values and accounts.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ChainSummary {
    /// The chain id transactions must carry.
    pub network_chain_id: u64,
    /// The total supply.
    pub total_supply: u64,
    /// The TOS burned.
    pub total_burned: u64,
    /// Blocks applied.
    pub block_height: u64,
    /// The chain's timestamp.
    pub timestamp: u64,
    /// Every account, in ascending order of address.
    pub accounts: Vec<AccountSummary>,
    /// Every deployed contract's code, in ascending order of address.
    pub contracts: Vec<(Hash, Bytes)>,
}

/// A value that should be a number and is not: state written by something else.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key:?} holds {value:?}, not a number")]
pub struct NotANumber {
    /// The key.
    pub key: StateKey,
    /// What it holds.
    pub value: StateValue,
}

impl ChainSummary {
    /// The summary of a state given as every key's latest value (in any order).
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (&'a StateKey, &'a StateValue)>,
    ) -> Result<Self, NotANumber> {
        let mut summary = ChainSummary {
            network_chain_id: u64::from(crate::tx::DEVNET_CHAIN_ID),
            ..ChainSummary::default()
        };
        // Address → (nonce, TOS balance), each `None` if not stored.
        let mut accounts: BTreeMap<PublicKey, (Option<u64>, Option<u64>)> = BTreeMap::new();
        let mut contracts = BTreeMap::new();
        for (key, value) in entries {
            let number = || match value {
                StateValue::Number(n) => Ok(*n),
                other => Err(NotANumber {
                    key: key.clone(),
                    value: other.clone(),
                }),
            };
            match key {
                StateKey::Nonce(account) => {
                    accounts.entry(*account).or_default().0 = Some(number()?)
                }
                StateKey::Balance(account, asset) if *asset == TOS_ASSET => {
                    accounts.entry(*account).or_default().1 = Some(number()?)
                }
                StateKey::BurnedSupply(asset) if *asset == TOS_ASSET => {
                    summary.total_burned = number()?
                }
                StateKey::Global(global) => {
                    let n = number()?;
                    match global {
                        Global::NetworkChainId => summary.network_chain_id = n,
                        Global::TotalSupply => summary.total_supply = n,
                        Global::BlockHeight => summary.block_height = n,
                        Global::Timestamp => summary.timestamp = n,
                    }
                }
                StateKey::ContractModule(contract) => {
                    if let StateValue::Module(module) = value {
                        contracts.insert(*contract, module.clone());
                    }
                }
                _ => {}
            }
        }
        summary.accounts = accounts
            .into_iter()
            .map(|(address, (nonce, balance))| AccountSummary {
                address,
                balance: balance.unwrap_or(0),
                nonce: nonce.unwrap_or(0),
            })
            .collect();
        summary.contracts = contracts.into_iter().collect();
        Ok(summary)
    }

    /// The account at `address`, if it exists.
    pub fn account(&self, address: &PublicKey) -> Option<&AccountSummary> {
        self.accounts
            .binary_search_by(|a| a.address.cmp(address))
            .ok()
            .map(|i| &self.accounts[i])
    }

    /// The state digest v1 (see the module documentation).
    pub fn digest(&self) -> Hash {
        let mut hasher = blake3::Hasher::new();
        for n in [
            self.total_supply,
            self.total_burned,
            0, // total energy
            self.block_height,
            self.timestamp,
        ] {
            hasher.update(&n.to_be_bytes());
        }
        for account in &self.accounts {
            hasher.update(&account.address.0);
            for n in [account.balance, account.nonce, 0, 0, 0, 0] {
                // balance, nonce, frozen, energy, flags, data length
                hasher.update(&n.to_be_bytes());
            }
        }
        Hash(*hasher.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_state_digests_as_tos_does() {
        // TOS-SPEC §2.2: blake3 of 40 zero bytes.
        assert_eq!(
            ChainSummary::default().digest().to_hex(),
            "352bd266dae53c6e6a29244011cfa029813d0ab8434b2a2b830a487d882832ba"
        );
    }

    #[test]
    fn accounts_exist_by_nonce_or_tos_balance_and_sort_by_address() {
        let a = PublicKey([2; 32]);
        let b = PublicKey([1; 32]);
        let c = PublicKey([3; 32]);
        let entries = [
            (StateKey::Balance(a, TOS_ASSET), StateValue::Number(5)),
            (StateKey::Nonce(b), StateValue::Number(7)),
            // Another asset alone does not make an account.
            (StateKey::Balance(c, Hash([9; 32])), StateValue::Number(1)),
            (StateKey::BurnedSupply(TOS_ASSET), StateValue::Number(3)),
            (StateKey::BurnedSupply(Hash([9; 32])), StateValue::Number(4)),
            (StateKey::Global(Global::BlockHeight), StateValue::Number(2)),
        ];
        let summary = ChainSummary::from_entries(entries.iter().map(|(k, v)| (k, v))).unwrap();
        assert_eq!(
            summary.accounts,
            vec![
                AccountSummary {
                    address: b,
                    balance: 0,
                    nonce: 7
                },
                AccountSummary {
                    address: a,
                    balance: 5,
                    nonce: 0
                },
            ]
        );
        assert_eq!(summary.total_burned, 3);
        assert_eq!(summary.block_height, 2);
        assert_eq!(summary.network_chain_id, 3);
        let bad = [(StateKey::Nonce(a), StateValue::MultiSig(None))];
        assert!(ChainSummary::from_entries(bad.iter().map(|(k, v)| (k, v))).is_err());
    }
}
