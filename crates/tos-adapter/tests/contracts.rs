//! Contracts: every syscall, gas metering and charging, failed calls, deploys and
//! invokes in one block, each checked against the sequential oracle and Block-STM at 1,
//! 2, 4 and 8 threads, and on the stores.
//!
//! TOS's rules (its executable spec, checked by its vectors): a call is charged its fee
//! and all of its `max_gas`, whatever it uses; deposits move nothing; a failed call is
//! applied (charged) with its changes discarded; a deploy takes 1 TOS and stores the
//! module at the daemon's address.

mod common;

use common::*;
use executor::{ExecutionPath, ParallelExecutor, SequentialReason, TxnOutput};
use std::collections::BTreeMap;
use tos_adapter::contract::programs;
use tos_adapter::{
    contract_address, BlockExecution, BlockMode, BlockState, ExecutionConfig, Global, Hash,
    KeyPair, MemoryStore, RedbStore, SequentialTosExecutor, StateKey, StateValue, TosBlockExecutor,
    TosStorage, Transaction, TxError, BURN_PER_CONTRACT, TOS_ASSET,
};

const INITIAL: u64 = 1_000_000_000_000;
const KV: Hash = Hash([0xc1; 32]);
const KV_FUNDS: u64 = 1_000;
const GAS: u64 = 10_000;
const FEE: u64 = 10;

fn accounts() -> Vec<KeyPair> {
    (1..=4).map(key).collect()
}

/// A store where the accounts hold `INITIAL` of TOS and of `OTHER_ASSET`, and the kv
/// contract is deployed at `KV` holding `KV_FUNDS` of TOS, plus `extra`.
fn store_with(extra: Vec<(StateKey, StateValue)>) -> MemoryStore {
    let store = MemoryStore::new();
    let mut changes = Vec::new();
    for k in accounts() {
        changes.push((StateKey::Nonce(k.public_key()), StateValue::Number(0)));
        for asset in [TOS_ASSET, OTHER_ASSET] {
            changes.push((
                StateKey::Balance(k.public_key(), asset),
                StateValue::Number(INITIAL),
            ));
        }
    }
    changes.extend(genesis_contract(
        KV,
        kv_module(),
        vec![],
        vec![(TOS_ASSET, KV_FUNDS)],
    ));
    changes.extend(extra);
    store.write_block(0, &changes).unwrap();
    store
}

/// Executes `txs` on `store` with the oracle, with Block-STM at 1, 2, 4 and 8 threads
/// (accumulators in state) and with the block executor forced onto Block-STM; asserts
/// they agree, commits, and returns the oracle's execution.
fn run(store: &MemoryStore, txs: &[Transaction]) -> BlockExecution {
    let oracle = SequentialTosExecutor::new(true)
        .execute_block(store, 1, txs, BlockMode::Dag)
        .unwrap();
    let expected = changes(&oracle);
    let mut engine_expected = expected.clone();
    engine_expected.remove(&StateKey::Global(Global::BlockHeight));
    // Fees are never in the engine's view: the block executor adds their total.
    engine_expected.remove(&StateKey::GasFee);
    let state =
        BlockState::preload(store, 0, TosBlockExecutor::declared_keys(txs, true), 2).unwrap();
    let vm = engine_vm(true);
    for threads in [1, 2, 4, 8] {
        let out = ParallelExecutor::new(threads)
            .execute_block(&vm, &state, txs)
            .unwrap();
        let results: Vec<_> = out
            .outputs
            .into_iter()
            .map(|o| match o {
                TxnOutput::Executed(r) => r,
                TxnOutput::Panicked(m) => panic!("panicked: {m}"),
            })
            .collect();
        assert_eq!(results, oracle.results, "results at {threads} threads");
        let got: BTreeMap<_, _> = out.writes.into_iter().collect();
        assert_eq!(got, engine_expected, "state at {threads} threads");
    }
    let executor = TosBlockExecutor::new(forced(2)).unwrap();
    let execution = executor
        .execute_block(store, 1, txs, BlockMode::Dag)
        .unwrap();
    assert_eq!(execution.results, oracle.results);
    assert_eq!(changes(&execution), expected);
    assert_eq!(execution.gas_fee, oracle.gas_fee);
    assert_eq!(execution.burned, oracle.burned);
    executor.commit(store, &execution).unwrap();
    oracle
}

fn data(store: &impl TosStorage, contract: Hash, key: &[u8]) -> Option<Vec<u8>> {
    let value = store
        .get_versioned(&StateKey::ContractData(contract, key.into()), 1)
        .unwrap()?
        .value;
    Some(value.as_data()??.to_vec())
}

fn number(store: &impl TosStorage, key: StateKey) -> u64 {
    match store.get_versioned(&key, 1).unwrap().map(|v| v.value) {
        Some(StateValue::Number(n)) => n,
        _ => 0,
    }
}

fn contract_balance(store: &impl TosStorage, contract: Hash) -> u64 {
    number(store, StateKey::ContractBalance(contract, TOS_ASSET))
}

fn kv(from: &KeyPair, nonce: u64, entry: u16, parameters: Vec<Vec<u8>>) -> Transaction {
    invoke(from, nonce, KV, entry, parameters, vec![], GAS)
}

#[test]
fn a_call_is_charged_its_fee_and_all_of_its_max_gas_and_meters_what_it_uses() {
    let store = store_with(vec![]);
    let alice = key(1);
    let execution = run(
        &store,
        &[kv(&alice, 0, 1, vec![kv_key(1), b"hello".to_vec()])],
    );
    let result = &execution.results[0];
    assert!(
        result.success() && result.call_failure.is_none(),
        "{result:?}"
    );
    // Some instructions and a store of 8 + 5 bytes, well under max_gas.
    assert!(
        result.gas_used > 200 + 13 && result.gas_used < 1_000,
        "{}",
        result.gas_used
    );
    assert_eq!(result.fee_paid, FEE + GAS);
    assert_eq!(execution.gas_fee, FEE + GAS);
    assert_eq!(balance(&store, &alice, TOS_ASSET), INITIAL - FEE - GAS);
    assert_eq!(nonce(&store, &alice), 1);
    assert_eq!(data(&store, KV, &kv_key(1)), Some(b"hello".to_vec()));
    // Nothing is burned by a call.
    assert!(execution.burned.values().all(|&b| b == 0));
}

#[test]
fn a_failed_call_is_applied_and_charged_and_its_changes_discarded() {
    let store = store_with(vec![]);
    let alice = key(1);
    let execution = run(
        &store,
        &[
            // Stores, then exits with 7.
            kv(&alice, 0, 5, vec![kv_key(1), b"lost".to_vec()]),
            // Loops until the gas runs out.
            kv(&alice, 1, 9, vec![]),
            // An unknown entry: exit code 9.
            kv(&alice, 2, 77, vec![]),
        ],
    );
    let r = &execution.results;
    assert!(r.iter().all(|r| r.success()), "{r:?}");
    assert_eq!(r[0].call_failure.as_deref(), Some("exit code 7"));
    assert_eq!(r[1].call_failure.as_deref(), Some("out of gas"));
    assert_eq!(r[1].gas_used, GAS);
    assert_eq!(r[2].call_failure.as_deref(), Some("exit code 9"));
    assert_eq!(data(&store, KV, &kv_key(1)), None);
    assert_eq!(
        balance(&store, &alice, TOS_ASSET),
        INITIAL - 3 * (FEE + GAS)
    );
    assert_eq!(nonce(&store, &alice), 3);
}

#[test]
fn every_syscall_does_what_it_says() {
    let store = store_with(vec![]);
    let [alice, bob, ..] = &accounts()[..] else {
        unreachable!()
    };
    let carol = key(40);
    let execution = run(
        &store,
        &[
            kv(alice, 0, 1, vec![kv_key(1), b"abc".to_vec()]),
            kv(alice, 1, 4, vec![kv_key(1), kv_key(2)]),
            kv(alice, 2, 2, vec![kv_key(1)]),
            kv(alice, 3, 6, vec![kv_key(3)]),
            kv(alice, 4, 7, vec![kv_key(4)]),
            kv(alice, 5, 8, vec![kv_key(5), b"a log line".to_vec()]),
            // The contract pays carol, an account that does not exist yet, and bob.
            kv(
                bob,
                0,
                3,
                vec![carol.public_key().0.to_vec(), 300u64.to_le_bytes().to_vec()],
            ),
            kv(
                bob,
                1,
                3,
                vec![bob.public_key().0.to_vec(), 200u64.to_le_bytes().to_vec()],
            ),
            // More than it holds: the call fails.
            kv(
                bob,
                2,
                3,
                vec![bob.public_key().0.to_vec(), 1_000u64.to_le_bytes().to_vec()],
            ),
            // Copy of an absent key: exit code 5.
            kv(alice, 6, 4, vec![kv_key(8), kv_key(9)]),
        ],
    );
    let r = &execution.results;
    assert!(r.iter().all(|r| r.success()), "{r:?}");
    let failures: Vec<_> = r.iter().map(|r| r.call_failure.is_some()).collect();
    assert_eq!(
        failures,
        [false, false, false, false, false, false, false, false, true, true]
    );
    assert_eq!(data(&store, KV, &kv_key(1)), None);
    assert_eq!(data(&store, KV, &kv_key(2)), Some(b"abc".to_vec()));
    assert_eq!(
        data(&store, KV, &kv_key(3)),
        Some(alice.public_key().0.to_vec())
    );
    assert_eq!(
        data(&store, KV, &kv_key(4)),
        Some(KV_FUNDS.to_le_bytes().to_vec())
    );
    assert_eq!(contract_balance(&store, KV), KV_FUNDS - 500);
    assert_eq!(balance(&store, &carol, TOS_ASSET), 300);
    assert_eq!(
        balance(&store, bob, TOS_ASSET),
        INITIAL - 3 * (FEE + GAS) + 200
    );
    // Carol exists now: she was created by the contract's transfer.
    let summary = store.summary().unwrap();
    assert!(summary.account(&carol.public_key()).is_some());
}

#[test]
fn the_rules_of_a_call_reject_before_anything_is_charged() {
    let store = store_with(vec![]);
    let alice = key(1);
    let cases = [
        (
            invoke(&alice, 0, Hash([0xee; 32]), 1, vec![], vec![], GAS),
            TxError::ContractNotFound(Hash([0xee; 32])),
        ),
        (
            invoke(&alice, 0, KV, 1, vec![], vec![(TOS_ASSET, 0)], GAS),
            TxError::InvalidFormat("a deposit of zero"),
        ),
        (
            invoke(&alice, 0, KV, 1, vec![], vec![], 1_000_000_001),
            TxError::InvalidPayload("max_gas above 10^9"),
        ),
        (
            invoke(&key(9), 0, KV, 1, vec![], vec![], GAS),
            TxError::AccountNotFound,
        ),
    ];
    for (tx, expected) in cases {
        let execution = SequentialTosExecutor::new(true)
            .execute_block(&store, 1, std::slice::from_ref(&tx), BlockMode::Dag)
            .unwrap();
        assert_eq!(execution.results[0].error, Some(expected.clone()));
        let parallel = TosBlockExecutor::new(forced(2))
            .unwrap()
            .execute_block(&store, 1, &[tx], BlockMode::Dag)
            .unwrap();
        assert_eq!(parallel.results, execution.results);
        // Only the block height changes.
        assert_eq!(parallel.changes.len(), 1, "{expected}");
    }
}

#[test]
fn deposits_move_nothing() {
    let store = store_with(vec![]);
    let alice = key(1);
    let execution = run(
        &store,
        &[invoke(
            &alice,
            0,
            KV,
            7,
            vec![kv_key(1)],
            vec![(TOS_ASSET, 5_000), (OTHER_ASSET, 7)],
            GAS,
        )],
    );
    assert!(execution.results[0].success());
    assert_eq!(balance(&store, &alice, TOS_ASSET), INITIAL - FEE - GAS);
    assert_eq!(balance(&store, &alice, OTHER_ASSET), INITIAL);
    assert_eq!(contract_balance(&store, KV), KV_FUNDS);
    // The contract saw its own balance only.
    assert_eq!(
        data(&store, KV, &kv_key(1)),
        Some(KV_FUNDS.to_le_bytes().to_vec())
    );
}

#[test]
fn a_deploy_takes_one_tos_and_is_invoked_in_the_same_block() {
    let store = store_with(vec![]);
    let alice = key(1);
    let module = kv_module();
    let address = contract_address(&alice.public_key(), &module);
    let execution = run(
        &store,
        &[
            deploy(&alice, 0, module.clone(), None),
            invoke(
                &alice,
                1,
                address,
                1,
                vec![kv_key(1), b"new".to_vec()],
                vec![],
                GAS,
            ),
            // The same code from the same deployer: the address is taken.
            deploy(&alice, 2, module.clone(), None),
        ],
    );
    let r = &execution.results;
    assert!(r[0].success() && r[1].success(), "{r:?}");
    assert_eq!(r[2].error, Some(TxError::ContractExists(address)));
    assert_eq!(data(&store, address, &kv_key(1)), Some(b"new".to_vec()));
    assert_eq!(
        balance(&store, &alice, TOS_ASSET),
        INITIAL - BURN_PER_CONTRACT - 2 * FEE - GAS
    );
    // The deploy's 1 TOS is not counted as burned.
    assert!(execution.burned.values().all(|&b| b == 0));
}

#[test]
fn a_constructor_runs_and_a_failed_one_stores_no_module() {
    let store = store_with(vec![]);
    let alice = key(1);
    let good = programs::counter().unwrap();
    let bad = failing_module();
    let execution = run(
        &store,
        &[
            deploy(&alice, 0, good.clone(), Some((GAS, vec![]))),
            deploy(&alice, 1, bad.clone(), Some((GAS, vec![]))),
        ],
    );
    let r = &execution.results;
    assert!(r[0].success() && r[0].call_failure.is_none(), "{r:?}");
    assert!(r[1].success());
    assert_eq!(r[1].call_failure.as_deref(), Some("exit code 1"));
    let module = |address| {
        store
            .get_versioned(&StateKey::ContractModule(address), 1)
            .unwrap()
            .map(|v| v.value)
    };
    assert!(module(contract_address(&alice.public_key(), &good)).is_some());
    assert!(module(contract_address(&alice.public_key(), &bad)).is_none());
    // Both charged the burn, their max_gas and their fee.
    assert_eq!(
        balance(&store, &alice, TOS_ASSET),
        INITIAL - 2 * (BURN_PER_CONTRACT + GAS + FEE)
    );
}

#[test]
fn an_amm_swap_moves_the_reserves_at_the_pool_price() {
    let amm = Hash([0xa1; 32]);
    let pool = 1_000_000_000u64;
    let store = store_with(genesis_contract(
        amm,
        programs::amm().unwrap(),
        vec![
            (programs::AMM_RESERVE_A.to_vec(), programs::stored_u64(pool)),
            (programs::AMM_RESERVE_B.to_vec(), programs::stored_u64(pool)),
        ],
        vec![],
    ));
    let alice = key(1);
    let swap = |nonce, amount| {
        let mut tx = invoke(
            &alice,
            nonce,
            amm,
            programs::ENTRY_MAIN,
            vec![],
            vec![],
            GAS,
        );
        if let tos_adapter::TransactionType::InvokeContract(call) = &mut tx.data {
            call.parameters = programs::amm_swap(amount);
        }
        tx.signed(&alice)
    };
    let execution = run(&store, &[swap(0, 1_000), swap(1, 1_000), swap(2, 0)]);
    let r = &execution.results;
    assert!(
        r[0].call_failure.is_none() && r[1].call_failure.is_none(),
        "{r:?}"
    );
    assert_eq!(r[2].call_failure.as_deref(), Some("exit code 3"));
    // pool * 1000 / (pool + 1000) = 999.999, then (pool - 999) * 1000 / (pool + 2000) =
    // 999.997: 999 each, rounded down.
    assert_eq!(
        data(&store, amm, programs::AMM_RESERVE_A),
        Some((pool + 2_000).to_le_bytes().to_vec())
    );
    assert_eq!(
        data(&store, amm, programs::AMM_RESERVE_B),
        Some((pool - 999 - 999).to_le_bytes().to_vec())
    );
    assert_eq!(
        data(&store, amm, &alice.public_key().0),
        Some((999u64 + 999).to_le_bytes().to_vec())
    );
}

#[test]
fn many_independent_token_transfers_run_under_block_stm() {
    let holders: Vec<KeyPair> = (100..164).map(key).collect();
    let token = Hash([0x70; 32]);
    let mut genesis = genesis_contract(
        token,
        programs::token().unwrap(),
        holders
            .iter()
            .map(|h| (h.public_key().0.to_vec(), programs::stored_u64(1_000)))
            .collect(),
        vec![],
    );
    for h in &holders {
        genesis.push((StateKey::Nonce(h.public_key()), StateValue::Number(0)));
        genesis.push((
            StateKey::Balance(h.public_key(), TOS_ASSET),
            StateValue::Number(INITIAL),
        ));
    }
    let store = store_with(genesis);
    let txs: Vec<Transaction> = holders
        .iter()
        .enumerate()
        .map(|(i, h)| {
            // Pairs (i, i + 32): transfers that conflict only two by two.
            let to = holders[(i + 32) % holders.len()].public_key();
            invoke(
                h,
                0,
                token,
                programs::ENTRY_MAIN,
                programs::token_transfer(&to, 1 + i as u64)
                    .into_iter()
                    .map(|c| c.contract_bytes())
                    .collect(),
                vec![],
                10_000,
            )
        })
        .collect();
    let executor = TosBlockExecutor::new(config(2)).unwrap();
    let execution = executor
        .execute_block(&store, 1, &txs, BlockMode::Dag)
        .unwrap();
    assert!(
        matches!(execution.path, ExecutionPath::Parallel),
        "{:?}",
        execution.path
    );
    assert!(execution.results.iter().all(|r| r.success()));
    // The holders' 8-byte balances are written inline (no allocation per version).
    let entries: Vec<&StateValue> = execution
        .changes
        .iter()
        .filter(|(key, _)| matches!(key, StateKey::ContractData(..)))
        .map(|(_, value)| value)
        .collect();
    assert_eq!(entries.len(), holders.len());
    assert!(entries
        .iter()
        .all(|value| matches!(value, StateValue::DataWord(_))));
    run(&store, &txs);
    // Holder 5 sent 6 and received 38 (from holder 37).
    assert_eq!(
        data(&store, token, &holders[5].public_key().0),
        Some((1_000 - 6 + 38u64).to_le_bytes().to_vec())
    );
    // With contract parallelism off, the same block runs sequentially.
    let off = TosBlockExecutor::new(ExecutionConfig {
        enable_contract_parallel: false,
        ..config(2)
    })
    .unwrap();
    let store = store_with(vec![]);
    let sequential = off
        .execute_block(&store, 1, &txs[..2], BlockMode::Dag)
        .unwrap();
    assert_eq!(
        sequential.path,
        ExecutionPath::Sequential(SequentialReason::Disabled)
    );
}

#[test]
fn contract_state_round_trips_through_redb() {
    let dir = std::env::temp_dir().join(format!("tos-contracts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.redb");
    let _ = std::fs::remove_file(&path);
    let store = RedbStore::open(&path).unwrap();
    let genesis = genesis_contract(
        KV,
        kv_module(),
        vec![
            (kv_key(1), b"one".to_vec()),
            (vec![], b"empty key".to_vec()),
        ],
        vec![(TOS_ASSET, 5)],
    );
    store.write_block(0, &genesis).unwrap();
    store
        .write_block(
            1,
            &[
                (
                    StateKey::ContractData(KV, kv_key(1).into()),
                    StateValue::Data(None),
                ),
                (
                    StateKey::ContractBalance(KV, TOS_ASSET),
                    StateValue::Number(7),
                ),
            ],
        )
        .unwrap();
    drop(store);
    let store = RedbStore::open(&path).unwrap();
    for (key, value) in &genesis {
        assert_eq!(
            store
                .get_versioned(key, 0)
                .unwrap()
                .map(|v| v.value)
                .as_ref(),
            Some(value)
        );
    }
    assert_eq!(
        store
            .get_versioned(&StateKey::ContractData(KV, kv_key(1).into()), 1)
            .unwrap()
            .map(|v| (v.value, v.previous_topoheight)),
        Some((StateValue::Data(None), Some(0)))
    );
    assert_eq!(
        store
            .history(&StateKey::ContractBalance(KV, TOS_ASSET))
            .unwrap()
            .len(),
        2
    );
    let all = store.latest_all().unwrap();
    assert_eq!(all.len(), genesis.len());
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A block with contract calls runs a prefix sequentially to find their conflicts: token
/// transfers among many holders go on under Block-STM after it, increments of one counter
/// go on sequentially; either way the results equal the oracle's.
#[test]
fn the_probe_sends_chains_of_calls_sequential_and_the_rest_parallel() {
    let holders: Vec<KeyPair> = (200..328).map(key).collect();
    let token = Hash([0x71; 32]);
    let counter = Hash([0x72; 32]);
    let mut genesis = genesis_contract(
        token,
        programs::token().unwrap(),
        holders
            .iter()
            .map(|h| (h.public_key().0.to_vec(), programs::stored_u64(1_000_000)))
            .collect(),
        vec![],
    );
    genesis.extend(genesis_contract(
        counter,
        programs::counter().unwrap(),
        vec![],
        vec![],
    ));
    for h in &holders {
        genesis.push((StateKey::Nonce(h.public_key()), StateValue::Number(0)));
        genesis.push((
            StateKey::Balance(h.public_key(), TOS_ASSET),
            StateValue::Number(INITIAL),
        ));
    }
    let transfers: Vec<Transaction> = (0..400)
        .map(|i| {
            let from = &holders[i % holders.len()];
            let to = holders[(i * 7 + 3) % holders.len()].public_key();
            invoke(
                from,
                (i / holders.len()) as u64,
                token,
                programs::ENTRY_MAIN,
                programs::token_transfer(&to, 1 + i as u64)
                    .into_iter()
                    .map(|c| c.contract_bytes())
                    .collect(),
                vec![],
                10_000,
            )
        })
        .collect();
    let bumps: Vec<Transaction> = holders
        .iter()
        .map(|h| invoke(h, 0, counter, programs::ENTRY_MAIN, vec![], vec![], 10_000))
        .collect();
    for (txs, parallel) in [(&transfers, true), (&bumps, false)] {
        for verify in [false, true] {
            let store = store_with(genesis.clone());
            let oracle = SequentialTosExecutor::new(verify)
                .execute_block(&store, 1, txs, BlockMode::Dag)
                .unwrap();
            let executor = TosBlockExecutor::new(ExecutionConfig {
                verify_signatures: verify,
                ..config(2)
            })
            .unwrap();
            let execution = executor
                .execute_block(&store, 1, txs, BlockMode::Dag)
                .unwrap();
            assert_eq!(execution.results, oracle.results);
            assert_eq!(changes(&execution), changes(&oracle));
            assert_eq!(execution.gas_fee, oracle.gas_fee);
            assert_eq!(execution.burned, oracle.burned);
            assert!(execution.results.iter().all(|r| r.success()));
            if parallel {
                assert_eq!(execution.path, ExecutionPath::Parallel);
            } else {
                assert_eq!(
                    execution.path,
                    ExecutionPath::Sequential(SequentialReason::Conflicted)
                );
            }
            executor.commit(&store, &execution).unwrap();
            if !parallel {
                assert_eq!(
                    data(&store, counter, b"count"),
                    Some((holders.len() as u64).to_le_bytes().to_vec())
                );
            }
        }
    }
}

/// A contract runtime that panics: the call's transaction fails (`VmPanic`, nothing
/// written) on the oracle as under Block-STM, and the block goes on.
#[test]
fn a_panicking_runtime_fails_the_transaction_on_both_executors() {
    #[derive(Debug)]
    struct Panics;
    impl tos_adapter::ContractVm for Panics {
        fn validate(&self, _module: &[u8]) -> Result<(), String> {
            Ok(())
        }
        fn call(
            &self,
            _module: &[u8],
            _call: &tos_adapter::contract::CallInfo<'_>,
            _max_gas: u64,
            _host: &mut dyn tos_adapter::ContractHost,
        ) -> Result<tos_adapter::contract::CallOutcome, tos_adapter::contract::HostAbort> {
            panic!("the runtime broke")
        }
    }
    let store = store_with(vec![]);
    let [alice, bob, ..] = &accounts()[..] else {
        unreachable!()
    };
    let txs = [
        kv(alice, 0, 1, vec![kv_key(1), b"x".to_vec()]),
        transfer(bob, 0, alice.public_key(), 5),
    ];
    let runtime: tos_adapter::SharedContractVm = std::sync::Arc::new(Panics);
    let oracle = SequentialTosExecutor {
        verify_signatures: true,
        contracts: runtime.clone(),
    }
    .execute_block(&store, 1, &txs, BlockMode::Dag)
    .unwrap();
    let parallel = TosBlockExecutor::with_contract_vm(forced(2), runtime)
        .unwrap()
        .execute_block(&store, 1, &txs, BlockMode::Dag)
        .unwrap();
    assert!(!matches!(parallel.path, ExecutionPath::Sequential(_)));
    for execution in [&oracle, &parallel] {
        assert!(
            matches!(&execution.results[0].error, Some(TxError::VmPanic(m)) if m.contains("broke")),
            "{:?}",
            execution.results[0]
        );
        assert!(execution.results[1].success());
    }
    assert_eq!(parallel.results, oracle.results);
    assert_eq!(changes(&parallel), changes(&oracle));
}

/// A call that stores without end fails at the per-call bound (16,384 stores), whatever
/// its gas, and is applied and charged with nothing stored.
#[test]
fn a_call_cannot_store_without_bound() {
    const STORE_FOREVER: &str = "
        mov64 r6, 0
    again:
        stxdw [r10-8], r6
        mov64 r1, r10
        add64 r1, -8
        mov64 r2, 8
        mov64 r3, r10
        add64 r3, -8
        mov64 r4, 8
        syscall tos_storage_store
        add64 r6, 1
        ja again
    ";
    let looper = Hash([0x5e; 32]);
    let store = store_with(genesis_contract(
        looper,
        tos_adapter::contract::assemble(STORE_FOREVER).unwrap(),
        vec![],
        vec![],
    ));
    let alice = key(1);
    let max_gas = 100_000_000;
    let execution = run(
        &store,
        &[invoke(&alice, 0, looper, 1, vec![], vec![], max_gas)],
    );
    let result = &execution.results[0];
    assert!(result.success());
    let failure = result.call_failure.as_deref().unwrap_or_default();
    assert!(failure.contains("16384 stores"), "{failure}");
    assert!(
        result.gas_used < max_gas,
        "stopped by the bound, not the gas"
    );
    assert_eq!(data(&store, looper, &0u64.to_le_bytes()), None);
}

/// An operator's bound on a block's gas: a block declaring more is an error, and nothing
/// of it is written; within the bound it runs as usual.
#[test]
fn a_block_over_the_gas_bound_is_refused_whole() {
    let store = store_with(vec![]);
    let [alice, bob, ..] = &accounts()[..] else {
        unreachable!()
    };
    let txs = [
        kv(alice, 0, 1, vec![kv_key(1), b"a".to_vec()]),
        kv(bob, 0, 1, vec![kv_key(2), b"b".to_vec()]),
    ];
    let bounded = |limit| {
        TosBlockExecutor::new(ExecutionConfig {
            max_block_gas: Some(limit),
            ..forced(2)
        })
        .unwrap()
    };
    let refused = bounded(2 * GAS - 1).execute_block(&store, 1, &txs, BlockMode::Dag);
    assert!(matches!(
        refused,
        Err(tos_adapter::TosError::BlockGasLimit { declared, limit })
            if declared == 2 * GAS && limit == 2 * GAS - 1
    ));
    assert_eq!(store.topoheight().unwrap(), 0);
    let execution = bounded(2 * GAS)
        .execute_block(&store, 1, &txs, BlockMode::Dag)
        .unwrap();
    assert!(execution.results.iter().all(|r| r.success()));
}
