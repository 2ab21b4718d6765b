//! Proptests: random blocks of every transaction kind, with random conflicts and invalid
//! transactions, executed with Block-STM at 1, 2, 4 and 8 threads, must equal the
//! sequential oracle in every result and in the state after commit.
//!
//! `BLOCKSTM_PROPTEST_CASES=N` runs N blocks instead of 100.

mod common;

use common::*;
use executor::{ParallelExecutor, TxnOutput};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use tos_adapter::{
    BlockState, BurnPayload, Hash, KeyPair, MemoryStore, MultiSigPayload, SequentialTosExecutor,
    StateKey, StateValue, TosBlockExecutor, TosStorage, TosVm, Transaction, TransactionType,
    TransferPayload, TOS_ASSET,
};

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
    for k in &keys {
        for asset in [TOS_ASSET, OTHER_ASSET] {
            let balance = match rng.below(10) {
                0 => 0,
                1 => u64::MAX - rng.below(10_000),
                _ => 100_000 + rng.below(1_000_000),
            };
            genesis.push((
                StateKey::Balance(k.public_key(), asset),
                StateValue::Number(balance),
            ));
        }
    }
    store.write_block(0, &genesis).unwrap();
    let verify = rng.chance(20);
    let mut txs: Vec<Transaction> = Vec::with_capacity(n);
    // Each sender's nonce after the transactions so far (the oracle, without signature
    // checks: the forged signatures below are rejected anyway), so that most transactions
    // carry the right nonce even after an earlier one of the sender was rejected.
    let nonce_after = |txs: &[Transaction], account: &KeyPair| -> u64 {
        if txs.is_empty() {
            return 0;
        }
        let prefix = SequentialTosExecutor {
            verify_signatures: verify,
        }
        .execute_block(&store, 1, txs)
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
            let data = match rng.below(10) {
                0..=6 => {
                    let count = match rng.below(30) {
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
                                extra_data: rng.chance(10).then(|| vec![1, 2, 3]),
                            })
                            .collect(),
                    )
                }
                7 | 8 => TransactionType::Burn(BurnPayload {
                    asset,
                    amount: amount(&mut rng),
                }),
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
                tx.signature = Some(keys[(s + 1) % accounts].sign(&tx.signing_bytes()));
            }
            txs.push(tx);
        }
    }
    (store, txs, verify)
}

fn check(seed: u64, accounts: usize, n: usize) -> Result<(), TestCaseError> {
    let (store, txs, verify) = random_block(seed, accounts, n);
    let oracle = SequentialTosExecutor {
        verify_signatures: verify,
    }
    .execute_block(&store, 1, &txs)
    .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let expected: BTreeMap<StateKey, StateValue> = changes(&oracle);
    let state = BlockState::preload(&store, 0, TosBlockExecutor::declared_keys(&txs), 2)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let vm = TosVm {
        verify_signatures: verify,
        accumulators_in_state: true,
    };
    for executor in executors() {
        let out = executor
            .execute_block(&vm, &state, &txs)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
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
            "results at {} threads",
            executor.threads()
        );
        let got: BTreeMap<StateKey, StateValue> = out.writes.into_iter().collect();
        prop_assert_eq!(&got, &expected, "state at {} threads", executor.threads());
    }
    // The drop-in executor, committed: the store's state equals the oracle's.
    let config = tos_adapter::ExecutionConfig {
        verify_signatures: verify,
        ..config(2)
    };
    let block = TosBlockExecutor::new(config).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let execution = block
        .execute_block(&store, 1, &txs)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&execution.results, &oracle.results);
    prop_assert_eq!(execution.gas_fee, oracle.gas_fee);
    prop_assert_eq!(&execution.burned, &oracle.burned);
    block
        .commit(&store, &execution)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    for (key, value) in &expected {
        let stored = store
            .get_versioned(key, 1)
            .map_err(|e| TestCaseError::fail(e.to_string()))?
            .map(|v| v.value);
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
    for seed in 0..40 {
        let (store, txs, verify) = random_block(seed, 10, 60);
        let oracle = SequentialTosExecutor {
            verify_signatures: verify,
        }
        .execute_block(&store, 1, &txs)
        .unwrap();
        for r in &oracle.results {
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
    assert!(kinds.len() >= 8, "{kinds:?}");
}
