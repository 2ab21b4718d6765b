//! Contracts: every syscall, gas and its split, refunds, failures, deploys and invokes in
//! one block, each checked against the sequential oracle and Block-STM at 1, 2, 4 and 8
//! threads, and on the stores.

mod common;

use common::*;
use executor::{ExecutionPath, ParallelExecutor, SequentialReason, TxnOutput};
use std::collections::BTreeMap;
use tos_adapter::contract::{gas_burned, programs};
use tos_adapter::{
    contract_address, BlockExecution, BlockState, ExecutionConfig, Hash, KeyPair, MemoryStore,
    RedbStore, SequentialTosExecutor, StateKey, StateValue, TosBlockExecutor, TosStorage, TosVm,
    Transaction, TxError, BURN_PER_CONTRACT, TOS_ASSET,
};

const INITIAL: u64 = 1_000_000_000_000;
const KV: Hash = Hash([0xc1; 32]);
const KV_FUNDS: u64 = 1_000;

fn accounts() -> Vec<KeyPair> {
    (1..=4).map(key).collect()
}

/// A store where the accounts hold `INITIAL` of TOS and of `OTHER_ASSET`, and the kv
/// contract is deployed at `KV` holding `KV_FUNDS` of TOS, plus `extra`.
fn store_with(extra: Vec<(StateKey, StateValue)>) -> MemoryStore {
    let store = MemoryStore::new();
    let mut changes = Vec::new();
    for k in accounts() {
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
/// (accumulators in state, every block forced parallel) and with the drop-in executor;
/// asserts they agree, commits, and returns the oracle's execution.
fn run(store: &MemoryStore, txs: &[Transaction]) -> BlockExecution {
    let oracle = SequentialTosExecutor::new(true)
        .execute_block(store, 1, txs)
        .unwrap();
    let expected = changes(&oracle);
    let state = BlockState::preload(store, 0, TosBlockExecutor::declared_keys(txs), 2).unwrap();
    let vm = TosVm {
        accumulators_in_state: true,
        ..TosVm::new(true)
    };
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
        assert_eq!(got, expected, "state at {threads} threads");
    }
    let executor = TosBlockExecutor::new(config(2)).unwrap();
    let execution = executor.execute_block(store, 1, txs).unwrap();
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

#[test]
fn a_store_costs_its_instructions_plus_the_syscall_and_the_gas_is_split() {
    let store = store_with(vec![]);
    let [alice, ..] = &accounts()[..] else {
        unreachable!()
    };
    let tx = invoke(alice, 0, KV, 1, vec![kv_key(1), vec![9; 8]], vec![], 10_000);
    let execution = run(&store, &[tx]);
    let result = &execution.results[0];
    assert!(result.success(), "{result:?}");
    // 14 instructions on the store path, plus 200 + 8 (key) + 8 (value) for the syscall.
    assert_eq!(result.gas_used, 14 + 216);
    let burned = gas_burned(230);
    assert_eq!(burned, 69);
    assert_eq!(result.fee_paid, 10 + 230 - 69);
    assert_eq!(result.burned, 69);
    assert_eq!(execution.gas_fee, 10 + 230 - 69);
    assert_eq!(execution.burned.get(&TOS_ASSET), Some(&69));
    // Unused gas refunded: the source pays the fee and the gas used.
    assert_eq!(balance(&store, alice, TOS_ASSET), INITIAL - 10 - 230);
    assert_eq!(data(&store, KV, &kv_key(1)), Some(vec![9; 8]));
    assert_eq!(nonce(&store, alice), 1);
}

#[test]
fn out_of_gas_charges_all_of_max_gas_refunds_deposits_and_discards_changes() {
    let store = store_with(vec![]);
    let alice = key(1);
    let txs = [
        invoke(
            &alice,
            0,
            KV,
            9,
            vec![kv_key(1)],
            vec![(OTHER_ASSET, 5)],
            1_000,
        ),
        // A store with too little gas for its syscall.
        invoke(&alice, 1, KV, 1, vec![kv_key(2), vec![1; 8]], vec![], 20),
    ];
    let execution = run(&store, &txs);
    for result in &execution.results {
        assert_eq!(
            result.error,
            Some(TxError::ContractFailed {
                reason: "out of gas".into()
            })
        );
    }
    assert_eq!(execution.results[0].gas_used, 1_000);
    assert_eq!(execution.results[1].gas_used, 20);
    assert_eq!(balance(&store, &alice, TOS_ASSET), INITIAL - 20 - 1_020);
    assert_eq!(balance(&store, &alice, OTHER_ASSET), INITIAL);
    assert_eq!(
        number(&store, StateKey::ContractBalance(KV, OTHER_ASSET)),
        0
    );
    assert_eq!(data(&store, KV, &kv_key(2)), None);
    assert_eq!(nonce(&store, &alice), 2);
}

#[test]
fn a_failed_call_is_charged_and_its_deposits_and_changes_are_undone() {
    let store = store_with(vec![]);
    let alice = key(1);
    let txs = [invoke(
        &alice,
        0,
        KV,
        5,
        vec![kv_key(3), vec![1; 8]],
        vec![(TOS_ASSET, 100)],
        10_000,
    )];
    let execution = run(&store, &txs);
    let result = &execution.results[0];
    assert_eq!(
        result.error,
        Some(TxError::ContractFailed {
            reason: "exit code 7".into()
        })
    );
    assert!(result.gas_used > 200);
    assert_eq!(
        balance(&store, &alice, TOS_ASSET),
        INITIAL - 10 - result.gas_used
    );
    assert_eq!(contract_balance(&store, KV), KV_FUNDS);
    assert_eq!(data(&store, KV, &kv_key(3)), None);
    assert_eq!(nonce(&store, &alice), 1);
    assert_eq!(execution.gas_fee, result.fee_paid);
}

#[test]
fn every_syscall_does_what_it_says() {
    let store = store_with(vec![]);
    let alice = key(1);
    let bob = key(2);
    let txs = [
        invoke(
            &alice,
            0,
            KV,
            1,
            vec![kv_key(1), b"hello".to_vec()],
            vec![],
            10_000,
        ),
        // Copy key 1 to key 2, then delete key 1.
        invoke(&alice, 1, KV, 4, vec![kv_key(1), kv_key(2)], vec![], 10_000),
        invoke(&alice, 2, KV, 2, vec![kv_key(1)], vec![], 10_000),
        // Copying an absent key fails (exit code 5).
        invoke(&alice, 3, KV, 4, vec![kv_key(1), kv_key(3)], vec![], 10_000),
        // The caller.
        invoke(&bob, 0, KV, 6, vec![kv_key(4)], vec![], 10_000),
        // The deposit and the balance with it.
        invoke(
            &bob,
            1,
            KV,
            7,
            vec![kv_key(5)],
            vec![(TOS_ASSET, 300)],
            10_000,
        ),
        // Transfers out: to bob, within the balance; then more than it holds.
        invoke(
            &alice,
            4,
            KV,
            3,
            vec![bob.public_key().0.to_vec(), 600u64.to_le_bytes().to_vec()],
            vec![],
            10_000,
        ),
        invoke(
            &alice,
            5,
            KV,
            3,
            vec![bob.public_key().0.to_vec(), 5_000u64.to_le_bytes().to_vec()],
            vec![],
            10_000,
        ),
        invoke(
            &alice,
            6,
            KV,
            8,
            vec![kv_key(0), b"log me".to_vec()],
            vec![],
            10_000,
        ),
    ];
    let execution = run(&store, &txs);
    let r = &execution.results;
    for i in [0, 1, 2, 4, 5, 6, 8] {
        assert!(r[i].success(), "{i}: {:?}", r[i]);
    }
    assert_eq!(
        r[3].error,
        Some(TxError::ContractFailed {
            reason: "exit code 5".into()
        })
    );
    assert_eq!(
        r[7].error,
        Some(TxError::ContractFailed {
            reason: "transfer of 5000 exceeds the contract's balance".into()
        })
    );
    assert_eq!(data(&store, KV, &kv_key(1)), None);
    assert_eq!(data(&store, KV, &kv_key(2)), Some(b"hello".to_vec()));
    assert_eq!(data(&store, KV, &kv_key(3)), None);
    assert_eq!(
        data(&store, KV, &kv_key(4)),
        Some(bob.public_key().0.to_vec())
    );
    let mut money = 300u64.to_le_bytes().to_vec();
    money.extend_from_slice(&(KV_FUNDS + 300).to_le_bytes());
    assert_eq!(data(&store, KV, &kv_key(5)), Some(money));
    assert_eq!(contract_balance(&store, KV), KV_FUNDS + 300 - 600);
    let bob_paid: u64 = r[4].gas_used + r[5].gas_used + 20 + 300;
    assert_eq!(balance(&store, &bob, TOS_ASSET), INITIAL - bob_paid + 600);
    // The log path: 2 + 9 dispatch instructions, 4 for the call, 3 to exit; 20 + 6 bytes.
    assert_eq!(r[8].gas_used, 18 + 26);
}

#[test]
fn a_missing_contract_or_a_bad_module_rejects_and_changes_nothing() {
    let store = store_with(vec![]);
    let alice = key(1);
    let nowhere = Hash([0xee; 32]);
    let txs = [
        invoke(&alice, 0, nowhere, 1, vec![], vec![], 10_000),
        deploy(&alice, 0, vec![1, 2, 3], None),
        deploy(&alice, 0, vec![0xff; 16], None),
    ];
    let execution = run(&store, &txs);
    assert_eq!(
        execution.results[0].error,
        Some(TxError::ContractNotFound(nowhere))
    );
    for result in &execution.results[1..] {
        match &result.error {
            Some(TxError::ContractFailed { reason }) => {
                assert!(reason.starts_with("invalid module"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
    for result in &execution.results {
        assert_eq!((result.fee_paid, result.gas_used, result.burned), (0, 0, 0));
    }
    assert_eq!(nonce(&store, &alice), 0);
    assert_eq!(balance(&store, &alice, TOS_ASSET), INITIAL);
}

#[test]
fn a_deploy_is_invoked_in_the_same_block() {
    let store = store_with(vec![]);
    let [alice, bob, carol, _] = &accounts()[..] else {
        unreachable!()
    };
    let module = programs::counter().unwrap();
    let counter = contract_address(&alice.public_key(), 0, &module);
    let bump = |from: &KeyPair, nonce| invoke(from, nonce, counter, 1, vec![], vec![], 10_000);
    let txs = [
        // Before the deploy: not there yet.
        bump(bob, 0),
        deploy(alice, 0, module.clone(), None),
        bump(bob, 0),
        bump(carol, 0),
        bump(alice, 1),
        bump(carol, 1),
    ];
    let execution = run(&store, &txs);
    assert_eq!(
        execution.results[0].error,
        Some(TxError::ContractNotFound(counter))
    );
    assert!(execution.results[1..].iter().all(|r| r.success()));
    assert_eq!(
        data(&store, counter, b"count"),
        Some(4u64.to_le_bytes().to_vec())
    );
    assert_eq!(
        store
            .get_versioned(&StateKey::ContractModule(counter), 1)
            .unwrap()
            .map(|v| v.value),
        Some(StateValue::Module(module.into()))
    );
    // The deploy burns one TOS and pays its fee; no constructor, no gas.
    assert_eq!(execution.results[1].burned, BURN_PER_CONTRACT);
    assert_eq!(
        balance(&store, alice, TOS_ASSET),
        INITIAL - 10 - BURN_PER_CONTRACT - 10 - execution.results[4].gas_used
    );
}

#[test]
fn a_constructor_runs_and_a_failed_one_stores_no_module() {
    let store = store_with(vec![]);
    let alice = key(1);
    let bob = key(2);
    let token = programs::token().unwrap();
    let token_at = contract_address(&alice.public_key(), 0, &token);
    let failing = failing_module();
    let failing_at = contract_address(&alice.public_key(), 2, &failing);
    let txs = [
        deploy(&alice, 0, token, Some((10_000, vec![]))),
        invoke(
            &alice,
            1,
            token_at,
            programs::ENTRY_MAIN,
            programs::token_transfer(&bob.public_key(), 250),
            vec![],
            10_000,
        ),
        deploy(&alice, 2, failing, Some((1_000, vec![(TOS_ASSET, 50)]))),
        invoke(&bob, 0, failing_at, 1, vec![], vec![], 1_000),
    ];
    let execution = run(&store, &txs);
    let r = &execution.results;
    assert!(r[0].success() && r[1].success(), "{r:?}");
    assert_eq!(
        data(&store, token_at, &alice.public_key().0),
        Some((programs::TOKEN_SUPPLY - 250).to_le_bytes().to_vec())
    );
    assert_eq!(
        data(&store, token_at, &bob.public_key().0),
        Some(250u64.to_le_bytes().to_vec())
    );
    assert_eq!(
        r[2].error,
        Some(TxError::ContractFailed {
            reason: "exit code 1".into()
        })
    );
    assert_eq!(r[2].gas_used, 2);
    // No module, the burn and the deposit refunded, 30% of its gas burned.
    assert_eq!(r[2].burned, 0);
    assert_eq!(r[3].error, Some(TxError::ContractNotFound(failing_at)));
    assert_eq!(
        store
            .get_versioned(&StateKey::ContractModule(failing_at), 1)
            .unwrap(),
        None
    );
    assert_eq!(contract_balance(&store, failing_at), 0);
    let spent = 10 + BURN_PER_CONTRACT + r[0].gas_used + 10 + r[1].gas_used + 10 + 2;
    assert_eq!(balance(&store, &alice, TOS_ASSET), INITIAL - spent);
    assert_eq!(nonce(&store, &alice), 3);
}

#[test]
fn an_amm_swap_pays_out_at_the_pool_price() {
    let amm = Hash([0xa1; 32]);
    let pool = 1_000_000_000;
    let store = store_with(genesis_contract(
        amm,
        programs::amm().unwrap(),
        vec![],
        vec![(TOS_ASSET, pool), (OTHER_ASSET, pool)],
    ));
    let alice = key(1);
    let swap = |nonce, amount| {
        invoke(
            &alice,
            nonce,
            amm,
            programs::ENTRY_MAIN,
            programs::amm_swap(&OTHER_ASSET),
            vec![(TOS_ASSET, amount)],
            10_000,
        )
    };
    let execution = run(&store, &[swap(0, 1_000), swap(1, 1_000), swap(2, 0)]);
    let r = &execution.results;
    assert!(r[0].success() && r[1].success(), "{r:?}");
    assert_eq!(
        r[2].error,
        Some(TxError::ContractFailed {
            reason: "exit code 3".into()
        })
    );
    // pool * 1000 / (pool + 1000) = 999.999, then (pool - 999) * 1000 / (pool + 2000) =
    // 999.997: 999 each, rounded down.
    assert_eq!(balance(&store, &alice, OTHER_ASSET), INITIAL + 999 + 999);
    assert_eq!(contract_balance(&store, amm), pool + 2_000);
    assert_eq!(
        number(&store, StateKey::ContractBalance(amm, OTHER_ASSET)),
        pool - 999 - 999
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
            .map(|h| (h.public_key().0.to_vec(), programs::token_balance(1_000)))
            .collect(),
        vec![],
    );
    for h in &holders {
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
                programs::token_transfer(&to, 1 + i as u64),
                vec![],
                10_000,
            )
        })
        .collect();
    let executor = TosBlockExecutor::new(config(2)).unwrap();
    let execution = executor.execute_block(&store, 1, &txs).unwrap();
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
    let sequential = off.execute_block(&store, 1, &txs[..2]).unwrap();
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
            .map(|h| {
                (
                    h.public_key().0.to_vec(),
                    programs::token_balance(1_000_000),
                )
            })
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
                programs::token_transfer(&to, 1 + i as u64),
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
                .execute_block(&store, 1, txs)
                .unwrap();
            let executor = TosBlockExecutor::new(ExecutionConfig {
                verify_signatures: verify,
                ..config(2)
            })
            .unwrap();
            let execution = executor.execute_block(&store, 1, txs).unwrap();
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

/// An sBPF (version 0) ELF module: the `relative_call` program of `solana-sbpf`'s own test
/// suite (its entry returns `2 * input[0] + 1` through two internal calls in 16
/// instructions), read from the crate's sources that cargo unpacked to build it.
#[test]
fn an_elf_module_deploys_and_runs() {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    let elf = std::fs::read_dir(home.join("registry/src"))
        .expect("cargo's registry sources")
        .flatten()
        .map(|index| {
            index
                .path()
                .join("solana-sbpf-0.13.1/tests/elfs/relative_call_sbpfv0.so")
        })
        .find(|path| path.exists())
        .expect("solana-sbpf 0.13.1's test ELF in cargo's registry sources");
    let module = std::fs::read(elf).unwrap();
    assert!(module.starts_with(b"\x7fELF"));
    let store = store_with(vec![]);
    let alice = key(1);
    let address = contract_address(&alice.public_key(), 0, &module);
    let txs = [
        deploy(&alice, 0, module, None),
        // The first input byte is the entry id's low byte: 1 gives exit code 3.
        invoke(&alice, 1, address, 1, vec![], vec![], 1_000),
    ];
    let execution = run(&store, &txs);
    assert!(execution.results[0].success(), "{:?}", execution.results[0]);
    assert_eq!(
        execution.results[1].error,
        Some(TxError::ContractFailed {
            reason: "exit code 3".into()
        })
    );
    assert_eq!(execution.results[1].gas_used, 16);
}

/// Through the async storage trait, contract storage (never preloaded) is read on demand
/// from the worker threads: the same block as through the sync one.
#[test]
fn an_async_storage_serves_contract_storage_on_demand() {
    let store = store_with(genesis_contract(
        Hash([0x73; 32]),
        programs::counter().unwrap(),
        vec![(b"count".to_vec(), 41u64.to_le_bytes().to_vec())],
        vec![],
    ));
    let txs: Vec<Transaction> = (1..=4)
        .map(|i| invoke(&key(i), 0, Hash([0x73; 32]), 1, vec![], vec![], 10_000))
        .chain((1..=4).map(|i| {
            invoke(
                &key(i),
                1,
                KV,
                4,
                vec![kv_key(9), kv_key(i)],
                vec![],
                10_000,
            )
        }))
        .collect();
    let executor = TosBlockExecutor::new(config(2)).unwrap();
    let async_ = sync_and_async_agree(&executor, &store, &txs);
    executor.commit(&store, &async_).unwrap();
    assert_eq!(
        data(&store, Hash([0x73; 32]), b"count"),
        Some(45u64.to_le_bytes().to_vec())
    );
}

/// An async storage whose every read is pending once before it completes (as a read that
/// waits on I/O): on-demand reads from the workers park and resume.
struct Yielding<'a>(&'a MemoryStore);

impl tos_adapter::AsyncTosStorage for Yielding<'_> {
    fn get_versioned_async(
        &self,
        key: &StateKey,
        topoheight: u64,
    ) -> impl std::future::Future<
        Output = Result<Option<tos_adapter::Versioned<StateValue>>, tos_adapter::StorageError>,
    > + Send {
        let result = self.0.get_versioned(key, topoheight);
        let mut pending = true;
        let mut result = Some(result);
        std::future::poll_fn(move |cx| {
            if std::mem::take(&mut pending) {
                // Wake from another thread, a little later, as an I/O completion would.
                let waker = cx.waker().clone();
                std::thread::spawn(move || {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                    waker.wake();
                });
                return std::task::Poll::Pending;
            }
            std::task::Poll::Ready(result.take().expect("polled after completion"))
        })
    }
}

#[test]
fn an_async_storage_whose_reads_wait_still_gives_the_same_block() {
    // Entries stored below the block, which the calls copy: read on demand.
    let store = store_with(
        (1..=4)
            .map(|i| {
                (
                    StateKey::ContractData(KV, kv_key(100 + i).into()),
                    StateValue::Data(Some(vec![i as u8; 5].into())),
                )
            })
            .collect(),
    );
    let txs: Vec<Transaction> = (1..=4)
        .flat_map(|i| {
            [
                invoke(
                    &key(i),
                    0,
                    KV,
                    4,
                    vec![kv_key(100 + i), kv_key(i)],
                    vec![],
                    10_000,
                ),
                invoke(
                    &key(i),
                    1,
                    KV,
                    4,
                    vec![kv_key(i), kv_key(i + 10)],
                    vec![],
                    10_000,
                ),
            ]
        })
        .collect();
    let executor = TosBlockExecutor::new(config(2)).unwrap();
    let sync = executor.execute_block(&store, 1, &txs).unwrap();
    let slow = Yielding(&store);
    let async_ = futures::executor::block_on(executor.execute_block_async(&slow, 0, &txs)).unwrap();
    assert!(
        sync.results.iter().all(|r| r.success()),
        "{:?}",
        sync.results
    );
    assert_eq!(sync.results, async_.results);
    assert_eq!(changes(&sync), changes(&async_));
    assert_eq!(
        changes(&async_).get(&StateKey::ContractData(KV, kv_key(13).into())),
        Some(&StateValue::Data(Some(vec![3; 5].into())))
    );
}
