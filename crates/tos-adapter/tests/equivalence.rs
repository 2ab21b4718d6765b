//! Proptests: random blocks of every transaction kind (contract deploys and calls of the
//! kv, counter, token and amm contracts among them), with random conflicts and invalid
//! transactions of every TOS error code, executed by Block-STM itself at 1, 2, 4 and 8
//! threads, must equal the sequential oracle in every result and in the state; and the
//! block executor forced onto Block-STM, in both block modes, must equal the oracle in
//! each mode, committed.
//!
//! `BLOCKSTM_PROPTEST_CASES=N` runs N blocks instead of 100.

mod common;

use common::*;
use executor::{ExecutionPath, FallbackReason};
use executor::{ParallelExecutor, SuffixRule, TxnOutput};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use tos_adapter::contract::programs;
use tos_adapter::{
    BlockMode, BlockState, BurnPayload, DeployContractPayload, Global, Hash,
    InvokeConstructorPayload, InvokeContractPayload, KeyPair, MemoryStore, MultiSigPayload,
    SequentialTosExecutor, StateKey, StateValue, TosBlockExecutor, TosStorage, Transaction,
    TransactionType, TransferPayload, DEVNET_CHAIN_ID, TOS_ASSET,
};

const KV: Hash = Hash([0xc1; 32]);
const COUNTER: Hash = Hash([0xc2; 32]);
const TOKEN: Hash = Hash([0xc3; 32]);
const AMM: Hash = Hash([0xc4; 32]);

fn cases() -> u32 {
    std::env::var("BLOCKSTM_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
}

fn executors() -> &'static [ParallelExecutor; 4] {
    static EXECUTORS: OnceLock<[ParallelExecutor; 4]> = OnceLock::new();
    EXECUTORS.get_or_init(|| [1, 2, 4, 8].map(ParallelExecutor::new))
}

struct Rng(u64);
impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = executor::mock::mix(self.0);
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn amount(rng: &mut Rng) -> u64 {
    match rng.below(40) {
        0 => 0,
        1 => u64::MAX / 2 + rng.below(1000),
        2 => 2_000_000,
        _ => 1 + rng.below(5_000),
    }
}

/// A genesis and a block over `accounts` accounts.
fn random_block(seed: u64, accounts: usize, n: usize) -> (MemoryStore, Vec<Transaction>, bool) {
    let mut rng = Rng(seed);
    let keys: Vec<KeyPair> = (0..accounts as u64)
        .map(|i| key(seed.wrapping_mul(31) + i))
        .collect();
    let store = MemoryStore::new();
    let mut genesis = Vec::new();
    // The last account does not exist (nothing stored): its transactions are rejected
    // with ACCOUNT_NOT_FOUND until someone pays it.
    for k in &keys[..accounts - 1] {
        genesis.push((StateKey::Nonce(k.public_key()), StateValue::Number(0)));
        for asset in [TOS_ASSET, OTHER_ASSET] {
            let balance = match rng.below(10) {
                0 => 0,
                1 => u64::MAX - rng.below(10_000),
                // Enough to deploy (a deploy takes 1 TOS).
                2..=4 => 1_000_000_000 + rng.below(1_000_000_000),
                _ => 100_000 + rng.below(1_000_000),
            };
            genesis.push((
                StateKey::Balance(k.public_key(), asset),
                StateValue::Number(balance),
            ));
        }
    }
    // The contracts: kv (every syscall), counter (one hot entry), token (a balance per
    // account) and amm (a pool in two storage entries).
    genesis.extend(genesis_contract(
        KV,
        kv_module(),
        (0..3).map(|i| (kv_key(i), vec![i as u8; 3])).collect(),
        vec![(TOS_ASSET, 10_000)],
    ));
    genesis.extend(genesis_contract(
        COUNTER,
        programs::counter().unwrap(),
        vec![],
        vec![],
    ));
    genesis.extend(genesis_contract(
        TOKEN,
        programs::token().unwrap(),
        keys.iter()
            .map(|k| (k.public_key().0.to_vec(), programs::stored_u64(1_000)))
            .collect(),
        vec![],
    ));
    genesis.extend(genesis_contract(
        AMM,
        programs::amm().unwrap(),
        vec![
            (
                programs::AMM_RESERVE_A.to_vec(),
                programs::stored_u64(1_000_000_000),
            ),
            (
                programs::AMM_RESERVE_B.to_vec(),
                programs::stored_u64(1_000_000_000),
            ),
        ],
        vec![],
    ));
    store.write_block(0, &genesis).unwrap();
    let verify = rng.chance(20);
    let mut deployed: Vec<Hash> = Vec::new();
    let mut txs: Vec<Transaction> = Vec::with_capacity(n);
    // Each sender's nonce after the transactions so far (the oracle, without signature
    // checks: the forged signatures below are rejected anyway), so that most transactions
    // carry the right nonce even after an earlier one of the sender was rejected.
    let nonce_after = |txs: &[Transaction], account: &KeyPair| -> u64 {
        if txs.is_empty() {
            return 0;
        }
        let prefix = SequentialTosExecutor::new(verify)
            .execute_block(&store, 1, txs, BlockMode::Dag)
            .unwrap();
        match changes(&prefix).get(&StateKey::Nonce(account.public_key())) {
            Some(StateValue::Number(n)) => *n,
            _ => 0,
        }
    };
    for _ in 0..n {
        {
            let s = rng.below(accounts as u64) as usize;
            let source = &keys[s];
            let current = nonce_after(&txs, source);
            let nonce = match rng.below(30) {
                0 => current + 1,
                1 => current.saturating_sub(1),
                _ => current,
            };
            let asset = if rng.chance(70) {
                TOS_ASSET
            } else {
                OTHER_ASSET
            };
            let other = |rng: &mut Rng| {
                // Another account, or (rarely) the source itself.
                let d = if rng.chance(3) {
                    s
                } else {
                    (s + 1 + rng.below(accounts as u64 - 1) as usize) % accounts
                };
                keys[d].public_key()
            };
            let max_gas = |rng: &mut Rng| match rng.below(30) {
                0..=2 => rng.below(300),
                3 => amount(rng),
                _ => 10_000,
            };
            let data = match rng.below(16) {
                0..=6 => {
                    let count = match rng.below(60) {
                        0 => 0,
                        _ => 1 + rng.below(3) as usize,
                    };
                    TransactionType::Transfers(
                        (0..count)
                            .map(|_| TransferPayload {
                                asset: if rng.chance(95) {
                                    asset
                                } else {
                                    Hash([0x42; 32])
                                },
                                destination: other(&mut rng),
                                amount: amount(&mut rng),
                                extra_data: match rng.below(40) {
                                    0..=3 => Some(vec![1, 2, 3]),
                                    4 => Some(vec![9; 129]),
                                    _ => None,
                                },
                            })
                            .collect(),
                    )
                }
                7 | 8 => TransactionType::Burn(BurnPayload {
                    asset,
                    amount: amount(&mut rng),
                }),
                10 => TransactionType::InvokeContract(Box::new(InvokeContractPayload {
                    contract: COUNTER,
                    deposits: vec![],
                    entry_id: if rng.chance(90) { 1 } else { 5 },
                    max_gas: max_gas(&mut rng),
                    parameters: vec![],
                })),
                11 => TransactionType::InvokeContract(Box::new(InvokeContractPayload {
                    contract: TOKEN,
                    deposits: vec![],
                    entry_id: 1,
                    max_gas: max_gas(&mut rng),
                    parameters: programs::token_transfer(&other(&mut rng), rng.below(1_500)),
                })),
                12 => TransactionType::InvokeContract(Box::new(InvokeContractPayload {
                    contract: AMM,
                    deposits: vec![],
                    entry_id: 1,
                    max_gas: max_gas(&mut rng),
                    parameters: programs::amm_swap(rng.below(1_500)),
                })),
                13 => {
                    let entries = if rng.chance(95) { 8 } else { 9 };
                    let entry_id = 1 + rng.below(entries) as u16;
                    let parameters = if entry_id == 3 {
                        vec![
                            other(&mut rng).0.to_vec(),
                            rng.below(4_000).to_le_bytes().to_vec(),
                        ]
                    } else {
                        let value = vec![rng.below(256) as u8; 1 + rng.below(16) as usize];
                        let second = if entry_id == 4 {
                            kv_key(rng.below(4))
                        } else {
                            value
                        };
                        vec![kv_key(rng.below(4)), second]
                    };
                    let deposits = if rng.chance(30) {
                        let deposit = if rng.chance(90) {
                            rng.below(500)
                        } else {
                            amount(&mut rng)
                        };
                        vec![(asset, deposit)]
                    } else {
                        vec![]
                    };
                    TransactionType::InvokeContract(Box::new(InvokeContractPayload {
                        contract: KV,
                        deposits,
                        entry_id,
                        max_gas: max_gas(&mut rng),
                        parameters: cells(parameters),
                    }))
                }
                14 => {
                    let module = match rng.below(4) {
                        0 => programs::counter().unwrap(),
                        1 => kv_module(),
                        2 => failing_module(),
                        _ => {
                            let mut module = b"\x7fELF".to_vec();
                            module.extend(vec![rng.below(256) as u8; rng.below(20) as usize]);
                            module
                        }
                    };
                    deployed.push(tos_adapter::contract_address(&source.public_key(), &module));
                    TransactionType::DeployContract(Box::new(DeployContractPayload {
                        module,
                        invoke: rng.chance(50).then(|| InvokeConstructorPayload {
                            max_gas: max_gas(&mut rng),
                            deposits: if rng.chance(30) {
                                vec![(TOS_ASSET, rng.below(500))]
                            } else {
                                vec![]
                            },
                        }),
                    }))
                }
                15 => TransactionType::InvokeContract(Box::new(InvokeContractPayload {
                    contract: if deployed.is_empty() || rng.chance(20) {
                        Hash([0xee; 32])
                    } else {
                        deployed[rng.below(deployed.len() as u64) as usize]
                    },
                    deposits: vec![],
                    entry_id: 1 + rng.below(3) as u16,
                    max_gas: max_gas(&mut rng),
                    parameters: cells(vec![kv_key(rng.below(4)), vec![1, 2, 3]]),
                })),
                _ => {
                    let count = rng.below(4) as usize;
                    let participants = (0..count).map(|_| other(&mut rng)).collect::<Vec<_>>();
                    let threshold = if count == 0 {
                        0
                    } else if rng.chance(80) {
                        1 + rng.below(count as u64) as u8
                    } else {
                        rng.below(5) as u8
                    };
                    TransactionType::MultiSig(MultiSigPayload {
                        threshold,
                        participants,
                    })
                }
            };
            let fee = if rng.chance(2) {
                u64::MAX
            } else {
                rng.below(100)
            };
            let mut tx = signed(source, nonce, fee, data);
            if rng.chance(3) {
                tx.signature = keys[(s + 1) % accounts].sign(&tx.signing_bytes());
            }
            if rng.chance(2) {
                tx.chain_id = DEVNET_CHAIN_ID - 1;
                tx.sign(source);
            }
            txs.push(tx);
        }
    }
    (store, txs, verify)
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

fn check(seed: u64, accounts: usize, n: usize) -> Result<(), TestCaseError> {
    let (store, txs, verify) = random_block(seed, accounts, n);
    let oracle = SequentialTosExecutor::new(verify)
        .execute_block(&store, 1, &txs, BlockMode::Dag)
        .map_err(fail)?;
    let expected: BTreeMap<StateKey, StateValue> = changes(&oracle);
    // Block-STM itself, at 1, 2, 4 and 8 threads, burned supplies in state: the block's
    // writes (all but the block height and the fees, which the block executor adds).
    let mut engine_expected = expected.clone();
    engine_expected.remove(&StateKey::Global(Global::BlockHeight));
    // Fees are never in the engine's view: the block executor adds their total.
    engine_expected.remove(&StateKey::GasFee);
    let state = BlockState::preload(&store, 0, TosBlockExecutor::declared_keys(&txs, verify), 2)
        .map_err(fail)?;
    let vm = engine_vm(verify);
    // Each also stopped partway by the calling thread, the rest run sequentially on the
    // kept prefix.
    let stop_after = seed % (n as u64 + 1);
    let runs = executors().iter().flat_map(|executor| {
        [SuffixRule::Never, SuffixRule::AfterIncarnations(stop_after)].map(|rule| (executor, rule))
    });
    let mut unstopped_path = None;
    for (executor, rule) in runs {
        let out = executor
            .execute_block_with(&vm, &state, &txs, rule)
            .map_err(fail)?;
        // A stop changes nothing about falling back: a block Block-STM finished itself
        // is finished after a stop too (not re-run whole).
        if rule == SuffixRule::Never {
            unstopped_path = Some(out.path);
        } else if unstopped_path == Some(ExecutionPath::Parallel) {
            prop_assert_eq!(
                out.path,
                ExecutionPath::Parallel,
                "stopped after {}",
                stop_after
            );
        }
        if executor.threads() == 1 && stop_after < n as u64 && out.path == ExecutionPath::Parallel {
            prop_assert!(
                rule == SuffixRule::Never || out.stats.sequential_suffix > 0,
                "stopped after {} of {}: no suffix",
                stop_after,
                n
            );
        }
        prop_assert!(
            !matches!(out.path, ExecutionPath::Sequential(_)),
            "Block-STM did not run: {:?}",
            out.path
        );
        // Every key a transaction touches is declared: a key one transaction declared is
        // touched by no other (the engine would notice and fall back).
        prop_assert_ne!(
            out.path,
            ExecutionPath::Fallback(FallbackReason::ClaimBroken)
        );
        let results: Vec<_> = out
            .outputs
            .into_iter()
            .map(|o| match o {
                TxnOutput::Executed(r) => r,
                TxnOutput::Panicked(m) => panic!("TOS VM panicked: {m}"),
            })
            .collect();
        prop_assert_eq!(
            &results,
            &oracle.results,
            "results at {} threads, {:?}",
            executor.threads(),
            rule
        );
        let got: BTreeMap<StateKey, StateValue> = out.writes.into_iter().collect();
        prop_assert_eq!(
            &got,
            &engine_expected,
            "state at {} threads, {:?}",
            executor.threads(),
            rule
        );
    }
    // The block executor forced onto Block-STM, in acceptance mode: the oracle's in that
    // mode (the lowest failing transaction rejects the block).
    let forced = |threads| {
        TosBlockExecutor::new(tos_adapter::ExecutionConfig {
            verify_signatures: verify,
            ..forced(threads)
        })
        .map_err(fail)
    };
    let accept_oracle = SequentialTosExecutor::new(verify)
        .execute_block(&store, 1, &txs, BlockMode::Accept)
        .map_err(fail)?;
    for threads in [2, 4] {
        let accept = forced(threads)?
            .execute_block(&store, 1, &txs, BlockMode::Accept)
            .map_err(fail)?;
        if !txs.is_empty() {
            prop_assert!(!matches!(accept.path, ExecutionPath::Sequential(_)));
        }
        prop_assert_eq!(&accept.results, &accept_oracle.results);
        prop_assert_eq!(accept.rejected, accept_oracle.rejected);
        prop_assert_eq!(changes(&accept), changes(&accept_oracle));
    }
    // The same, in DAG mode, committed: the store's state equals the oracle's.
    let block = forced(2)?;
    let execution = block
        .execute_block(&store, 1, &txs, BlockMode::Dag)
        .map_err(fail)?;
    prop_assert_eq!(&execution.results, &oracle.results);
    prop_assert_eq!(execution.gas_fee, oracle.gas_fee);
    prop_assert_eq!(&execution.burned, &oracle.burned);
    block.commit(&store, &execution).map_err(fail)?;
    for (key, value) in &expected {
        let stored = store.get_versioned(key, 1).map_err(fail)?.map(|v| v.value);
        prop_assert_eq!(stored.as_ref(), Some(value));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn block_stm_equals_the_sequential_oracle(
        seed in any::<u64>(),
        accounts in 2usize..=40,
        n in prop_oneof![0usize..20, 20usize..200],
    ) {
        check(seed, accounts, n)?;
    }
}

/// Two accounts, long blocks: nearly every transaction conflicts with the one before.
#[test]
fn hot_accounts_are_exact() {
    for seed in 0..5 {
        check(seed, 2, 300).unwrap();
    }
}

/// The generator must produce mostly valid transactions, or the proptest would only
/// exercise rejections.
#[test]
fn random_blocks_are_mostly_accepted_and_reject_every_way() {
    let mut accepted = 0;
    let mut total = 0;
    let mut kinds = std::collections::BTreeSet::new();
    let (mut contract_calls, mut deploys, mut call_failures) = (0, 0, 0);
    for seed in 0..40 {
        let (store, txs, verify) = random_block(seed, 10, 60);
        let oracle = SequentialTosExecutor::new(verify)
            .execute_block(&store, 1, &txs, BlockMode::Dag)
            .unwrap();
        for (tx, r) in txs.iter().zip(&oracle.results) {
            if r.call_failure.is_some() {
                call_failures += 1;
            }
            if r.success() {
                match &tx.data {
                    TransactionType::InvokeContract(_) => contract_calls += 1,
                    TransactionType::DeployContract(_) => deploys += 1,
                    _ => {}
                }
            }
            total += 1;
            match &r.error {
                None => accepted += 1,
                Some(e) => {
                    kinds.insert(e.kind());
                }
            }
        }
    }
    assert!(accepted * 2 > total, "{accepted} of {total} accepted");
    assert!(kinds.len() >= 14, "{kinds:?}");
    assert!(kinds.contains("ContractNotFound") && kinds.contains("AccountNotFound"));
    assert!(call_failures > 10, "{call_failures} failed calls");
    // Contract calls and deploys succeed too, not only fail.
    assert!(
        contract_calls > 100 && deploys > 5,
        "{contract_calls} {deploys}"
    );
}
