//! The quirks of TOS's rules that its vectors rely on (TOS-SPEC §6.4), one test each, on
//! the sequential oracle and on Block-STM (forced, 2 threads) alike.

mod common;

use common::*;
use serde_json::json;
use tos_adapter::{
    BlockMode, BurnPayload, DeployContractPayload, Hash, MemoryStore, PublicKey,
    SequentialTosExecutor, StateKey, StateValue, TosBlockExecutor, TosStorage, Transaction,
    TransactionType, TransferPayload, TxError, TOS_ASSET,
};

/// Executes `txs` as block 1 in `mode` on both executors, asserts they agree, and returns
/// each transaction's error code.
fn codes(store: &MemoryStore, txs: &[Transaction], mode: BlockMode) -> Vec<u16> {
    let oracle = SequentialTosExecutor::new(true)
        .execute_block(store, 1, txs, mode)
        .unwrap();
    let parallel = TosBlockExecutor::new(forced(2))
        .unwrap()
        .execute_block(store, 1, txs, mode)
        .unwrap();
    assert_eq!(parallel.results, oracle.results);
    assert_eq!(parallel.rejected, oracle.rejected);
    oracle.results.iter().map(|r| r.code()).collect()
}

fn pay(
    from: &tos_adapter::KeyPair,
    nonce: u64,
    fee: u64,
    amount: u64,
    to: PublicKey,
) -> Transaction {
    signed(
        from,
        nonce,
        fee,
        TransactionType::Transfers(vec![TransferPayload {
            asset: TOS_ASSET,
            destination: to,
            amount,
            extra_data: None,
        }]),
    )
}

#[test]
fn a_sender_that_is_not_a_curve_point_is_not_found_before_any_signature_check() {
    let store = MemoryStore::new();
    let alice = key(1);
    genesis(&store, std::slice::from_ref(&alice), 1_000_000);
    let mut ghost = pay(&alice, 0, 10, 1, key(2).public_key());
    ghost.source = PublicKey([9; 32]);
    let first = pay(&alice, 0, 10, 5, key(2).public_key());
    // The block is rejected by its second transaction, with ACCOUNT_NOT_FOUND, and the
    // first one's credit is not written.
    assert_eq!(
        codes(&store, &[first, ghost], BlockMode::Accept),
        [0, 0x0400]
    );
}

#[test]
fn overflow_names_and_their_codes() {
    let store = MemoryStore::new();
    let alice = key(1);
    let rich = key(3);
    genesis(&store, std::slice::from_ref(&alice), 1_000_000);
    store
        .write_block(
            1,
            &[
                (
                    StateKey::Balance(rich.public_key(), TOS_ASSET),
                    StateValue::Number(u64::MAX),
                ),
                (
                    StateKey::BurnedSupply(TOS_ASSET),
                    StateValue::Number(u64::MAX - 5),
                ),
            ],
        )
        .unwrap();
    let fee_zero_overflow = signed(
        &alice,
        0,
        0,
        TransactionType::Transfers(vec![
            TransferPayload {
                asset: TOS_ASSET,
                destination: key(2).public_key(),
                amount: u64::MAX,
                extra_data: None,
            },
            TransferPayload {
                asset: TOS_ASSET,
                destination: key(2).public_key(),
                amount: 1,
                extra_data: None,
            },
        ]),
    );
    let amount_plus_fee = pay(&alice, 0, 2, u64::MAX, key(2).public_key());
    let receiver = pay(&alice, 0, 10, 1, rich.public_key());
    let burned = signed(
        &alice,
        0,
        10,
        TransactionType::Burn(BurnPayload {
            asset: TOS_ASSET,
            amount: 6,
        }),
    );
    let cases = [
        // A fee of zero: 0x0301 from the fee rule, before the overflow is looked at.
        (fee_zero_overflow, 0x0301),
        (amount_plus_fee, 0x0301),
        (receiver, 0x0304),
        (burned, 0x0304),
    ];
    for (tx, code) in cases {
        // One block at a time, on the state above (topoheight 1).
        let topo = store.topoheight().unwrap() + 1;
        let oracle = SequentialTosExecutor::new(true)
            .execute_block(&store, topo, std::slice::from_ref(&tx), BlockMode::Dag)
            .unwrap();
        let parallel = TosBlockExecutor::new(forced(2))
            .unwrap()
            .execute_block(&store, topo, std::slice::from_ref(&tx), BlockMode::Dag)
            .unwrap();
        assert_eq!(parallel.results, oracle.results);
        assert_eq!(
            oracle.results[0].code(),
            code,
            "{:?}",
            oracle.results[0].error
        );
    }
}

#[test]
fn nonces_must_be_exactly_the_accounts() {
    let store = MemoryStore::new();
    let alice = key(1);
    genesis(&store, std::slice::from_ref(&alice), 1_000_000);
    let to = key(2).public_key();
    // Exactly the account's, then 64 ahead (the spec's MAX_NONCE_GAP has no effect), then
    // one used already.
    assert_eq!(
        codes(
            &store,
            &[
                pay(&alice, 0, 10, 1, to),
                pay(&alice, 65, 10, 1, to),
                pay(&alice, 0, 10, 1, to)
            ],
            BlockMode::Dag
        ),
        [0, 0x0111, 0x0110]
    );
}

#[test]
fn duplicate_deposits_collapse_in_json_as_on_the_wire() {
    let alice = key(1);
    let tx = json!({
        "version": 1, "chain_id": 3, "source": alice.public_key().to_hex(),
        "tx_type": "invoke_contract",
        "payload": {"contract": Hash([5; 32]).to_hex(), "deposits": [
            {"asset": TOS_ASSET.to_hex(), "amount": 100000000},
            {"asset": TOS_ASSET.to_hex(), "amount": 200000000}],
            "entry_id": 0, "max_gas": 100000, "parameters": []},
        "fee": 100000, "fee_type": 0, "nonce": 5,
        "reference_hash": null, "reference_topoheight": 0, "signature": null
    });
    let tx = tos_adapter::tx::json::from_json(&tx).unwrap();
    let TransactionType::InvokeContract(invoke) = &tx.data else {
        panic!("not an invoke")
    };
    assert_eq!(invoke.deposits, vec![(TOS_ASSET, 200_000_000)]);
}

#[test]
fn a_module_of_just_the_elf_magic_deploys() {
    let store = MemoryStore::new();
    let alice = key(1);
    genesis(&store, std::slice::from_ref(&alice), 1_000_000_000);
    let deploy = signed(
        &alice,
        0,
        100_000,
        TransactionType::DeployContract(Box::new(DeployContractPayload {
            module: b"\x7fELF".to_vec(),
            invoke: None,
        })),
    );
    assert_eq!(Transaction::from_wire(&deploy.to_wire()).unwrap(), deploy);
    assert_eq!(codes(&store, &[deploy], BlockMode::Accept), [0]);
    // Anything shorter or not an ELF file does not even decode.
    let mut short = signed(
        &alice,
        0,
        100_000,
        TransactionType::DeployContract(Box::new(DeployContractPayload {
            module: b"\x7fEL".to_vec(),
            invoke: None,
        })),
    );
    assert!(Transaction::from_wire(&short.to_wire()).is_err());
    short.data = TransactionType::DeployContract(Box::new(DeployContractPayload {
        module: b"\x00ELF".to_vec(),
        invoke: None,
    }));
    assert!(Transaction::from_wire(&short.to_wire()).is_err());
}

#[test]
fn the_lowest_failing_index_rejects_an_accepted_block_whatever_fails_later() {
    let store = MemoryStore::new();
    let alice = key(1);
    let bob = key(2);
    genesis(&store, &[alice.clone(), bob.clone()], 1_000);
    let txs = [
        pay(&alice, 0, 10, 5, bob.public_key()),
        pay(&bob, 0, 10, 5_000, alice.public_key()),
        pay(&alice, 7, 10, 5, bob.public_key()),
    ];
    assert_eq!(codes(&store, &txs, BlockMode::Accept), [0, 0x0300]);
    assert_eq!(codes(&store, &txs, BlockMode::Dag), [0, 0x0300, 0x0111]);
    let execution = TosBlockExecutor::new(forced(2))
        .unwrap()
        .execute_block(&store, 1, &txs, BlockMode::Accept)
        .unwrap();
    assert_eq!(
        execution.rejection().map(|(i, e)| (i, e.code())),
        Some((1, 0x0300))
    );
    assert!(execution.changes.is_empty());
    assert!(matches!(
        execution.rejection(),
        Some((1, TxError::InsufficientBalance { .. }))
    ));
}

/// TOS compares a balance with its spending in unbounded integers: a sum beyond 2^64-1 is
/// never covered, even by a balance of 2^64-1.
#[test]
fn spending_sums_beyond_u64_are_insufficient_balance() {
    let store = MemoryStore::new();
    let alice = key(1);
    store
        .write_block(
            0,
            &[
                (StateKey::Nonce(alice.public_key()), StateValue::Number(0)),
                (
                    StateKey::Balance(alice.public_key(), TOS_ASSET),
                    StateValue::Number(u64::MAX),
                ),
                (
                    StateKey::ContractModule(Hash([5; 32])),
                    StateValue::Module(b"\x7fELF".to_vec().into()),
                ),
            ],
        )
        .unwrap();
    let deploy = signed(
        &alice,
        0,
        u64::MAX - 1,
        TransactionType::DeployContract(Box::new(DeployContractPayload {
            module: b"\x7fELF\x01".to_vec(),
            invoke: None,
        })),
    );
    let invoke = signed(
        &alice,
        0,
        u64::MAX,
        TransactionType::InvokeContract(Box::new(tos_adapter::InvokeContractPayload {
            contract: Hash([5; 32]),
            deposits: vec![],
            entry_id: 0,
            max_gas: 1_000,
            parameters: vec![],
        })),
    );
    for tx in [deploy, invoke] {
        assert_eq!(
            codes(&store, std::slice::from_ref(&tx), BlockMode::Accept),
            [0x0300]
        );
    }
}
