//! Accounts, genesis and transactions for the adapter's tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use tos_adapter::{
    BlockExecution, BurnPayload, ExecutionConfig, Hash, KeyPair, MultiSigPayload, PublicKey,
    StateKey, StateValue, TosStorage, Transaction, TransactionType, TransferPayload, TOS_ASSET,
};

pub const OTHER_ASSET: Hash = Hash([7; 32]);

pub fn key(i: u64) -> KeyPair {
    KeyPair::from_seed(&i.to_le_bytes())
}

/// Writes a genesis where each account `i` in `accounts` holds `balance` of TOS and of
/// `OTHER_ASSET`.
pub fn genesis(store: &impl TosStorage, accounts: &[KeyPair], balance: u64) {
    let mut changes = Vec::new();
    for k in accounts {
        changes.push((
            StateKey::Balance(k.public_key(), TOS_ASSET),
            StateValue::Number(balance),
        ));
        changes.push((
            StateKey::Balance(k.public_key(), OTHER_ASSET),
            StateValue::Number(balance),
        ));
    }
    store.write_block(0, &changes).unwrap();
}

pub fn signed(from: &KeyPair, nonce: u64, fee: u64, data: TransactionType) -> Transaction {
    let mut tx = Transaction {
        version: 0,
        source: from.public_key(),
        nonce,
        fee,
        data,
        signature: None,
    };
    tx.signature = Some(from.sign(&tx.signing_bytes()));
    tx
}

pub fn transfer(from: &KeyPair, nonce: u64, to: PublicKey, amount: u64) -> Transaction {
    signed(
        from,
        nonce,
        10,
        TransactionType::Transfers(vec![TransferPayload {
            asset: TOS_ASSET,
            destination: to,
            amount,
            extra_data: None,
        }]),
    )
}

pub fn burn(from: &KeyPair, nonce: u64, amount: u64) -> Transaction {
    signed(
        from,
        nonce,
        10,
        TransactionType::Burn(BurnPayload {
            asset: TOS_ASSET,
            amount,
        }),
    )
}

pub fn multisig(
    from: &KeyPair,
    nonce: u64,
    threshold: u8,
    participants: Vec<PublicKey>,
) -> Transaction {
    signed(
        from,
        nonce,
        10,
        TransactionType::MultiSig(MultiSigPayload {
            threshold,
            participants,
        }),
    )
}

pub fn config(threads: usize) -> ExecutionConfig {
    ExecutionConfig {
        enabled: true,
        min_batch_size: 0,
        max_parallelism: threads,
        verify_signatures: true,
    }
}

pub fn balance(store: &impl TosStorage, account: &KeyPair, asset: Hash) -> u64 {
    let topo = store.topoheight().unwrap();
    store
        .get_balance_at_maximum_topoheight(&account.public_key(), &asset, topo)
        .unwrap()
        .map_or(0, |(_, v)| v.balance)
}

pub fn nonce(store: &impl TosStorage, account: &KeyPair) -> u64 {
    let topo = store.topoheight().unwrap();
    store
        .get_nonce_at_maximum_topoheight(&account.public_key(), topo)
        .unwrap()
        .map_or(0, |(_, v)| v.nonce)
}

/// A block's changes as a map, for comparing executions regardless of order.
pub fn changes(execution: &BlockExecution) -> BTreeMap<StateKey, StateValue> {
    execution.changes.iter().cloned().collect()
}
