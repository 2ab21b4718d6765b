//! The roadmap's scenarios and every rejection rule, on both stores, each compared with
//! the sequential oracle.

mod common;

use common::*;
use tos_adapter::{
    BlockMode, ExecutionConfig, Global, MemoryStore, MultiSigSignature, RedbStore,
    SequentialTosExecutor, StateKey, StateValue, StorageError, TosBlockExecutor, TosError,
    TosStorage, Transaction, TransactionType, TransferPayload, TxError, FORMAT_VERSION, TOS_ASSET,
};

/// Executes `txs` as the next block with Block-STM (2 threads, forced), checks it
/// against the oracle, commits it, and returns each transaction's error.
fn run(store: &impl TosStorage, txs: &[Transaction]) -> Vec<Option<TxError>> {
    let topo = store.topoheight().unwrap() + 1;
    let executor = TosBlockExecutor::new(forced(2)).unwrap();
    let execution = executor
        .execute_block(store, topo, txs, BlockMode::Dag)
        .unwrap();
    assert!(!matches!(
        execution.path,
        executor::ExecutionPath::Sequential(_)
    ));
    let oracle = SequentialTosExecutor::new(true)
        .execute_block(store, topo, txs, BlockMode::Dag)
        .unwrap();
    assert_eq!(execution.results, oracle.results);
    assert_eq!(changes(&execution), changes(&oracle));
    assert_eq!(execution.gas_fee, oracle.gas_fee);
    assert_eq!(execution.burned, oracle.burned);
    executor.commit(store, &execution).unwrap();
    execution.results.into_iter().map(|r| r.error).collect()
}

/// Runs `$body` with `$store` a fresh `MemoryStore`, then a fresh `RedbStore`.
macro_rules! on_both_stores {
    ($store:ident => $body:block) => {{
        {
            let $store = MemoryStore::new();
            $body
        }
        {
            let dir = tempdir();
            let $store = RedbStore::open(dir.join("db.redb")).unwrap();
            $body
        }
    }};
}

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tos-adapter-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn two_independent_transfers() {
    on_both_stores!(store => {
        let (a, b, c, d) = (key(1), key(2), key(3), key(4));
        genesis(&store, &[a.clone(), c.clone()], 1_000);
        let errors = run(&store, &[transfer(&a, 0, b.public_key(), 100), transfer(&c, 0, d.public_key(), 200)]);
        assert_eq!(errors, vec![None, None]);
        assert_eq!(balance(&store, &a, TOS_ASSET), 1_000 - 100 - 10);
        assert_eq!(balance(&store, &b, TOS_ASSET), 100);
        assert_eq!(balance(&store, &c, TOS_ASSET), 1_000 - 200 - 10);
        assert_eq!(balance(&store, &d, TOS_ASSET), 200);
    });
}

#[test]
fn two_transfers_from_one_sender_end_at_nonce_two() {
    on_both_stores!(store => {
        let (a, b) = (key(1), key(2));
        genesis(&store, std::slice::from_ref(&a), 1_000);
        let errors = run(&store, &[transfer(&a, 0, b.public_key(), 100), transfer(&a, 1, b.public_key(), 50)]);
        assert_eq!(errors, vec![None, None]);
        assert_eq!(nonce(&store, &a), 2);
        assert_eq!(balance(&store, &a, TOS_ASSET), 1_000 - 150 - 20);
        assert_eq!(balance(&store, &b, TOS_ASSET), 150);
    });
}

#[test]
fn a_nonce_ahead_is_rejected_with_nonce_too_high() {
    on_both_stores!(store => {
        let (a, b) = (key(1), key(2));
        genesis(&store, std::slice::from_ref(&a), 1_000);
        let errors = run(&store, &[transfer(&a, 5, b.public_key(), 100)]);
        let error = errors[0].clone().unwrap();
        assert_eq!(error, TxError::NonceTooHigh { expected: 0, got: 5 });
        assert!(error.to_string().starts_with("nonce too high"));
        assert_eq!(nonce(&store, &a), 0);
        assert_eq!(balance(&store, &a, TOS_ASSET), 1_000);
        assert_eq!(balance(&store, &b, TOS_ASSET), 0);
    });
}

#[test]
fn rejections_have_their_reason_and_no_effect() {
    let store = MemoryStore::new();
    let (a, b, rich) = (key(1), key(2), key(3));
    genesis(&store, &[a.clone(), b.clone()], 1_000);
    // `rich` holds u64::MAX of TOS: any credit to it overflows.
    let topo = store.topoheight().unwrap() + 1;
    store
        .write_block(
            topo,
            &[(
                StateKey::Balance(rich.public_key(), TOS_ASSET),
                StateValue::Number(u64::MAX),
            )],
        )
        .unwrap();
    let mut bad_signature = transfer(&a, 0, b.public_key(), 1);
    bad_signature.signature = b.sign(&bad_signature.signing_bytes());
    let mut no_signature = transfer(&a, 0, b.public_key(), 1);
    no_signature.signature = tos_adapter::Signature::ZERO;
    let mut other_chain = transfer(&a, 0, b.public_key(), 1);
    other_chain.chain_id = 0;
    other_chain.sign(&a);
    let nobody = key(4);
    let many = |n: usize| {
        signed(
            &a,
            0,
            1,
            TransactionType::Transfers(
                (0..n)
                    .map(|_| TransferPayload {
                        asset: TOS_ASSET,
                        destination: b.public_key(),
                        amount: 1,
                        extra_data: None,
                    })
                    .collect(),
            ),
        )
    };
    let never_seen = tos_adapter::Hash([0x55; 32]);
    let cases: Vec<(Transaction, TxError)> = vec![
        (
            transfer(&a, 0, b.public_key(), 5_000),
            TxError::InsufficientBalance {
                asset: TOS_ASSET,
                available: 1_000,
                required: 5_010,
            },
        ),
        (transfer(&a, 0, rich.public_key(), 1), TxError::Overflow),
        (transfer(&a, 0, a.public_key(), 1), TxError::SelfOperation),
        (many(0), TxError::InvalidFormat("not 1 to 500 transfers")),
        (many(501), TxError::InvalidFormat("not 1 to 500 transfers")),
        (
            transfer(&a, 1, b.public_key(), 1),
            TxError::NonceTooHigh {
                expected: 0,
                got: 1,
            },
        ),
        (
            multisig(&a, 0, 1, vec![a.public_key()]),
            TxError::InvalidPayload("the source among its participants"),
        ),
        (
            multisig(&a, 0, 1, vec![b.public_key(), b.public_key()]),
            TxError::InvalidSignature,
        ),
        (
            multisig(
                &a,
                0,
                1,
                (0..256u64).map(|i| key(100 + i).public_key()).collect(),
            ),
            TxError::InvalidPayload("more than 255 participants"),
        ),
        (
            multisig(&a, 0, 2, vec![b.public_key()]),
            TxError::InvalidPayload("a threshold above the participants"),
        ),
        (
            multisig(&a, 0, 0, vec![b.public_key()]),
            TxError::InvalidPayload("a threshold of zero with participants"),
        ),
        (
            multisig(&a, 0, 0, vec![]),
            TxError::InvalidPayload("no multisig to delete"),
        ),
        (
            signed(
                &a,
                0,
                1,
                TransactionType::Transfers(vec![TransferPayload {
                    asset: never_seen,
                    destination: b.public_key(),
                    amount: 1,
                    extra_data: None,
                }]),
            ),
            TxError::InsufficientBalance {
                asset: never_seen,
                available: 0,
                required: 1,
            },
        ),
        (
            signed(
                &a,
                0,
                u64::MAX,
                TransactionType::Transfers(vec![TransferPayload {
                    asset: TOS_ASSET,
                    destination: b.public_key(),
                    amount: 1,
                    extra_data: None,
                }]),
            ),
            TxError::InsufficientFee {
                available: 1_000,
                required: u64::MAX,
            },
        ),
        (
            signed(
                &a,
                0,
                0,
                TransactionType::Transfers(vec![TransferPayload {
                    asset: TOS_ASSET,
                    destination: b.public_key(),
                    amount: 1,
                    extra_data: None,
                }]),
            ),
            TxError::FeeZero,
        ),
        (burn(&a, 0, 0), TxError::InvalidAmount),
        (
            transfer(&nobody, 0, b.public_key(), 1),
            TxError::AccountNotFound,
        ),
        (
            other_chain,
            TxError::ChainIdMismatch {
                expected: 3,
                got: 0,
            },
        ),
        (bad_signature, TxError::InvalidSignature),
        (no_signature, TxError::InvalidSignature),
    ];
    let state = |store: &MemoryStore| {
        let mut latest = store.latest();
        latest.retain(|(k, _)| *k != StateKey::Global(Global::BlockHeight));
        latest
    };
    for (tx, expected) in cases {
        let before = state(&store);
        let errors = run(&store, std::slice::from_ref(&tx));
        assert_eq!(errors, vec![Some(expected.clone())], "{expected}");
        // Nothing changed but the block height.
        assert_eq!(state(&store), before, "{expected} changed state");
    }
}

#[test]
fn duplicate_nonces_in_one_block_reject_the_second() {
    let store = MemoryStore::new();
    let (a, b) = (key(1), key(2));
    genesis(&store, std::slice::from_ref(&a), 1_000);
    let errors = run(
        &store,
        &[
            transfer(&a, 0, b.public_key(), 1),
            transfer(&a, 0, b.public_key(), 2),
            transfer(&a, 1, b.public_key(), 3),
        ],
    );
    assert_eq!(
        errors,
        vec![
            None,
            Some(TxError::NonceTooLow {
                expected: 1,
                got: 0
            }),
            None
        ]
    );
    assert_eq!(balance(&store, &b, TOS_ASSET), 4);
}

#[test]
fn multisig_is_set_then_deleted() {
    let store = MemoryStore::new();
    let (a, b, c) = (key(1), key(2), key(3));
    genesis(&store, std::slice::from_ref(&a), 1_000);
    let errors = run(
        &store,
        &[multisig(&a, 0, 2, vec![b.public_key(), c.public_key()])],
    );
    assert_eq!(errors, vec![None]);
    let topo = store.topoheight().unwrap();
    let (_, config) = store
        .get_multisig_at_maximum_topoheight(&a.public_key(), topo)
        .unwrap()
        .unwrap();
    assert_eq!(config.threshold, 2);
    // The account's transactions now need both participants' signatures.
    assert_eq!(
        run(&store, &[multisig(&a, 1, 0, vec![])]),
        vec![Some(TxError::InvalidPayload(
            "a multisig account's transaction without its signatures"
        ))]
    );
    let mut delete = multisig(&a, 1, 0, vec![]);
    let message = delete.multisig_message();
    delete.multisig = Some(vec![MultiSigSignature {
        id: 0,
        signature: b.sign(&message.0),
    }]);
    assert_eq!(
        run(&store, std::slice::from_ref(&delete)),
        vec![Some(TxError::InvalidPayload(
            "multisig signatures not equal to the threshold"
        ))]
    );
    delete.multisig = Some(vec![
        MultiSigSignature {
            id: 0,
            signature: b.sign(&message.0),
        },
        MultiSigSignature {
            id: 1,
            signature: b.sign(&message.0),
        },
    ]);
    assert_eq!(
        run(&store, std::slice::from_ref(&delete)),
        vec![Some(TxError::InvalidSignature)]
    );
    delete.multisig = Some(vec![
        MultiSigSignature {
            id: 0,
            signature: b.sign(&message.0),
        },
        MultiSigSignature {
            id: 1,
            signature: c.sign(&message.0),
        },
    ]);
    assert_eq!(run(&store, &[delete]), vec![None]);
    let topo = store.topoheight().unwrap();
    assert!(store
        .get_multisig_at_maximum_topoheight(&a.public_key(), topo)
        .unwrap()
        .is_none());
    assert_eq!(
        run(&store, &[multisig(&a, 2, 0, vec![])]),
        vec![Some(TxError::InvalidPayload("no multisig to delete"))]
    );
}

#[test]
fn burns_and_fees_are_the_blocks_totals() {
    let store = MemoryStore::new();
    let accounts: Vec<_> = (0..20).map(key).collect();
    genesis(&store, &accounts, 1_000);
    let txs: Vec<_> = accounts.iter().map(|k| burn(k, 0, 7)).collect();
    let executor = TosBlockExecutor::new(config(2)).unwrap();
    let execution = executor
        .execute_block(&store, 1, &txs, BlockMode::Dag)
        .unwrap();
    assert_eq!(execution.gas_fee, 200);
    assert_eq!(execution.burned.get(&TOS_ASSET), Some(&140));
    executor.commit(&store, &execution).unwrap();
    let execution = executor
        .execute_block(&store, 2, &txs[..1], BlockMode::Dag)
        .unwrap();
    assert_eq!(
        execution.results[0].error,
        Some(TxError::NonceTooLow {
            expected: 1,
            got: 0
        })
    );
    assert_eq!(execution.gas_fee, 0);
}

#[test]
fn redb_blocks_in_a_row_reopened_keep_their_version_chains() {
    let dir = tempdir();
    let path = dir.join("chain.redb");
    let (a, b) = (key(1), key(2));
    {
        let store = RedbStore::open(&path).unwrap();
        genesis(&store, std::slice::from_ref(&a), 1_000);
        assert_eq!(
            run(&store, &[transfer(&a, 0, b.public_key(), 100)]),
            vec![None]
        );
    }
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(store.topoheight().unwrap(), 1);
    assert_eq!(
        run(&store, &[transfer(&a, 1, b.public_key(), 50)]),
        vec![None]
    );
    let history = store
        .history(&StateKey::Balance(a.public_key(), TOS_ASSET))
        .unwrap();
    let chain: Vec<(u64, Option<u64>, StateValue)> = history
        .into_iter()
        .map(|v| (v.topoheight, v.previous_topoheight, v.value))
        .collect();
    assert_eq!(
        chain,
        vec![
            (2, Some(1), StateValue::Number(830)),
            (1, Some(0), StateValue::Number(890)),
            (0, None, StateValue::Number(1_000)),
        ]
    );
    let (topo, nonce) = store
        .get_nonce_at_maximum_topoheight(&a.public_key(), 2)
        .unwrap()
        .unwrap();
    assert_eq!(
        (topo, nonce.nonce, nonce.previous_topoheight),
        (2, 2, Some(1))
    );
    // The state as of topoheight 1 is still readable.
    let (_, balance) = store
        .get_balance_at_maximum_topoheight(&b.public_key(), &TOS_ASSET, 1)
        .unwrap()
        .unwrap();
    assert_eq!(balance.balance, 100);
}

#[test]
fn redb_refuses_a_newer_format() {
    let dir = tempdir();
    let path = dir.join("newer.redb");
    RedbStore::open(&path)
        .unwrap()
        .set_format_version_for_test(99)
        .unwrap();
    match RedbStore::open(&path) {
        Err(StorageError::NewerFormat {
            found: 99,
            supported: FORMAT_VERSION,
        }) => {}
        other => panic!("expected NewerFormat, got {other:?}"),
    }
}

#[test]
fn redb_upgrades_a_version_1_database_in_place() {
    let dir = tempdir();
    let path = dir.join("v1.redb");
    let store = RedbStore::open(&path).unwrap();
    store.set_format_version_for_test(1).unwrap();
    store
        .write_block(
            0,
            &[(StateKey::Nonce(key(1).public_key()), StateValue::Number(4))],
        )
        .unwrap();
    drop(store);
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(
        store
            .get_nonce_at_maximum_topoheight(&key(1).public_key(), 0)
            .unwrap()
            .map(|(_, n)| n.nonce),
        Some(4)
    );
    // Marked as the current version: a program that knows only version 1 refuses it.
    assert_eq!(store.format_version().unwrap(), FORMAT_VERSION);
}

#[test]
fn a_storage_error_fails_the_block_and_writes_nothing() {
    let store = MemoryStore::new();
    let accounts: Vec<_> = (0..30).map(key).collect();
    genesis(&store, &accounts, 1_000);
    let txs: Vec<_> = accounts
        .iter()
        .map(|k| transfer(k, 0, key(999).public_key(), 1))
        .collect();
    let executor = TosBlockExecutor::new(config(2)).unwrap();
    store.fail_reads_of(Some(StateKey::Nonce(accounts[17].public_key())));
    assert!(matches!(
        executor.execute_block(&store, 1, &txs, BlockMode::Dag),
        Err(TosError::Storage(_))
    ));
    assert_eq!(store.topoheight().unwrap(), 0);
    // A failed write leaves nothing either; a retry succeeds.
    store.fail_reads_of(None);
    let execution = executor
        .execute_block(&store, 1, &txs, BlockMode::Dag)
        .unwrap();
    store.fail_writes(true);
    assert!(executor.commit(&store, &execution).is_err());
    assert_eq!(store.topoheight().unwrap(), 0);
    store.fail_writes(false);
    executor.commit(&store, &execution).unwrap();
    assert_eq!(store.topoheight().unwrap(), 1);
    assert_eq!(balance(&store, &key(999), TOS_ASSET), 30);
}

/// Disabled, below `min_batch_size`, or by the production policy's cost model (on any
/// machine the engine's fixed cost per block, waking workers and sizing its memory,
/// exceeds what a second core could save on twelve transfers): sequential, with
/// Block-STM's results.
#[test]
fn disabled_small_or_cheap_blocks_run_sequentially_with_the_same_results() {
    let store = MemoryStore::new();
    let accounts: Vec<_> = (0..12).map(key).collect();
    genesis(&store, &accounts, 1_000);
    let txs: Vec<_> = accounts
        .iter()
        .map(|k| transfer(k, 0, key(50).public_key(), 3))
        .collect();
    let parallel = TosBlockExecutor::new(forced(2))
        .unwrap()
        .execute_block(&store, 1, &txs, BlockMode::Dag)
        .unwrap();
    assert_eq!(parallel.path, executor::ExecutionPath::Parallel);
    use executor::SequentialReason::{Cheaper, Disabled, SmallBlock};
    for (config, reason) in [
        (
            ExecutionConfig {
                enabled: false,
                ..config(2)
            },
            Disabled,
        ),
        (
            ExecutionConfig {
                min_batch_size: 13,
                ..config(2)
            },
            SmallBlock,
        ),
        (
            ExecutionConfig {
                max_parallelism: 2,
                ..ExecutionConfig::default()
            },
            Cheaper,
        ),
    ] {
        let executor = TosBlockExecutor::new(config).unwrap();
        executor.calibrate();
        let sequential = executor
            .execute_block(&store, 1, &txs, BlockMode::Dag)
            .unwrap();
        assert_eq!(sequential.path, executor::ExecutionPath::Sequential(reason));
        assert_eq!(sequential.results, parallel.results);
        assert_eq!(changes(&sequential), changes(&parallel));
    }
    assert!(matches!(
        TosBlockExecutor::new(ExecutionConfig {
            max_parallelism: 0,
            ..config(2)
        }),
        Err(tos_adapter::ConfigError::Invalid { .. })
    ));
}

/// Twelve transfers of 10 to a receiver that does not send, 35 below `u64::MAX`: the
/// credits' fold overflows in Block-STM's final pass, which falls back to the sequential
/// executor and rejects exactly the fourth and later transfers; the same block to a
/// receiver with room stays parallel.
#[test]
fn credits_that_overflow_a_receiver_reject_exactly_the_overflowing_transfers() {
    for start in [u64::MAX - 35, 1_000] {
        let store = MemoryStore::new();
        let accounts: Vec<_> = (0..12).map(key).collect();
        genesis(&store, &accounts, 1_000);
        let receiver = key(500).public_key();
        store
            .write_block(
                1,
                &[(
                    StateKey::Balance(receiver, TOS_ASSET),
                    StateValue::Number(start),
                )],
            )
            .unwrap();
        let txs: Vec<_> = accounts
            .iter()
            .map(|k| transfer(k, 0, receiver, 10))
            .collect();
        let oracle = SequentialTosExecutor::new(true)
            .execute_block(&store, 2, &txs, BlockMode::Dag)
            .unwrap();
        let parallel = TosBlockExecutor::new(forced(2))
            .unwrap()
            .execute_block(&store, 2, &txs, BlockMode::Dag)
            .unwrap();
        assert_eq!(
            parallel.path,
            if start == 1_000 {
                executor::ExecutionPath::Parallel
            } else {
                executor::ExecutionPath::Fallback(executor::FallbackReason::DeltaOverflow)
            }
        );
        assert_eq!(parallel.results, oracle.results);
        assert_eq!(changes(&parallel), changes(&oracle));
        let rejected = oracle.results.iter().filter(|r| !r.success()).count();
        assert_eq!(rejected, if start == 1_000 { 0 } else { 9 });
    }
}

#[test]
fn a_block_at_the_wrong_topoheight_is_refused() {
    let store = MemoryStore::new();
    genesis(&store, &[key(1)], 1_000);
    let executor = TosBlockExecutor::new(config(2)).unwrap();
    assert!(matches!(
        executor.execute_block(&store, 5, &[], BlockMode::Dag),
        Err(TosError::Topoheight { stored: 0, got: 5 })
    ));
}

#[test]
fn async_preload_gives_the_same_block() {
    let store = MemoryStore::new();
    let accounts: Vec<_> = (0..16).map(key).collect();
    genesis(&store, &accounts, 1_000);
    let txs: Vec<_> = accounts
        .iter()
        .map(|k| transfer(k, 0, key(77).public_key(), 9))
        .collect();
    let executor = TosBlockExecutor::new(config(2)).unwrap();
    sync_and_async_agree(&executor, &store, &txs);
}

#[test]
fn a_burned_supply_that_would_overflow_rejects_exactly_the_overflowing_burn() {
    let store = MemoryStore::new();
    let accounts: Vec<_> = (0..12).map(key).collect();
    genesis(&store, &accounts, 1_000);
    // The burned supply is 35 below u64::MAX: the fourth burn of 10 overflows it.
    store
        .write_block(
            1,
            &[(
                StateKey::BurnedSupply(TOS_ASSET),
                StateValue::Number(u64::MAX - 35),
            )],
        )
        .unwrap();
    let txs: Vec<_> = accounts.iter().map(|k| burn(k, 0, 10)).collect();
    let errors = run(&store, &txs);
    assert_eq!(errors[..3], [None, None, None]);
    assert_eq!(errors[3], Some(TxError::Overflow));
    assert_eq!(errors.iter().filter(|e| e.is_none()).count(), 3);
    let topo = store.topoheight().unwrap();
    assert_eq!(
        store
            .get_versioned(&StateKey::BurnedSupply(TOS_ASSET), topo)
            .unwrap()
            .unwrap()
            .value,
        StateValue::Number(u64::MAX - 5)
    );
}

/// TOS's rules remove fees: no fee total may reject a transaction. The total saturates.
#[test]
fn the_fee_total_saturates_and_rejects_nothing() {
    let store = MemoryStore::new();
    let accounts: Vec<_> = (0..12).map(key).collect();
    genesis(&store, &accounts, 1_000);
    store
        .write_block(1, &[(StateKey::GasFee, StateValue::Number(u64::MAX - 35))])
        .unwrap();
    let txs: Vec<_> = accounts
        .iter()
        .map(|k| transfer(k, 0, key(500).public_key(), 1))
        .collect();
    let errors = run(&store, &txs);
    assert!(errors.iter().all(Option::is_none), "{errors:?}");
    let topo = store.topoheight().unwrap();
    assert_eq!(
        store
            .get_versioned(&StateKey::GasFee, topo)
            .unwrap()
            .unwrap()
            .value,
        StateValue::Number(u64::MAX)
    );
}

/// A store whose reads fail at random (one in `every`, from a seed).
struct Flaky {
    inner: MemoryStore,
    every: u64,
    state: std::sync::atomic::AtomicU64,
    on: std::sync::atomic::AtomicBool,
}

impl TosStorage for Flaky {
    fn topoheight(&self) -> Result<u64, StorageError> {
        self.inner.topoheight()
    }
    fn is_empty(&self) -> Result<bool, StorageError> {
        self.inner.is_empty()
    }
    fn get_versioned(
        &self,
        key: &StateKey,
        topoheight: u64,
    ) -> Result<Option<tos_adapter::Versioned<StateValue>>, StorageError> {
        use std::sync::atomic::Ordering;
        let draw = executor::mock::mix(self.state.fetch_add(1, Ordering::SeqCst));
        if self.on.load(Ordering::SeqCst) && draw % self.every == 0 {
            return Err(StorageError::Injected(format!("random read of {key:?}")));
        }
        self.inner.get_versioned(key, topoheight)
    }
    fn history(
        &self,
        key: &StateKey,
    ) -> Result<Vec<tos_adapter::Versioned<StateValue>>, StorageError> {
        self.inner.history(key)
    }
    fn latest_entries(&self) -> Result<Vec<(StateKey, StateValue)>, StorageError> {
        self.inner.latest_entries()
    }
    fn write_block(
        &self,
        topoheight: u64,
        changes: &[tos_adapter::Change],
    ) -> Result<(), StorageError> {
        self.inner.write_block(topoheight, changes)
    }
}

#[test]
fn random_read_failures_fail_the_block_and_a_retry_succeeds() {
    let store = Flaky {
        inner: MemoryStore::new(),
        every: 97,
        state: std::sync::atomic::AtomicU64::new(5),
        on: std::sync::atomic::AtomicBool::new(false),
    };
    let accounts: Vec<_> = (0..200).map(key).collect();
    genesis(&store, &accounts, 1_000);
    let txs: Vec<_> = accounts
        .iter()
        .enumerate()
        .map(|(i, k)| transfer(k, 0, accounts[(i + 1) % accounts.len()].public_key(), 5))
        .collect();
    let executor = TosBlockExecutor::new(config(2)).unwrap();
    store.on.store(true, std::sync::atomic::Ordering::SeqCst);
    for _ in 0..5 {
        assert!(matches!(
            executor.execute_block(&store, 1, &txs, BlockMode::Dag),
            Err(TosError::Storage(_))
        ));
        assert_eq!(store.topoheight().unwrap(), 0, "nothing written");
    }
    store.on.store(false, std::sync::atomic::Ordering::SeqCst);
    let execution = executor
        .execute_block(&store, 1, &txs, BlockMode::Dag)
        .unwrap();
    assert!(execution.results.iter().all(|r| r.success()));
    executor.commit(&store, &execution).unwrap();
    assert_eq!(balance(&store, &accounts[0], TOS_ASSET), 1_000 - 5 - 10 + 5);
}

/// Transfers between accounts no other transaction names: their keys are exclusive to
/// their transaction and stay out of the multi-version memory (the counters show it),
/// with the oracle's results; a credit that overflows an exclusive receiver falls back and
/// rejects exactly that transfer.
#[test]
fn keys_one_transaction_declares_stay_out_of_the_memory() {
    let store = MemoryStore::new();
    let senders: Vec<_> = (0..16).map(key).collect();
    genesis(&store, &senders, 1_000);
    let receivers: Vec<_> = (100..116).map(|i| key(i).public_key()).collect();
    let txs: Vec<_> = senders
        .iter()
        .zip(&receivers)
        .map(|(k, r)| transfer(k, 0, *r, 10))
        .collect();
    let executor = TosBlockExecutor::new(forced(2)).unwrap();
    let execution = executor
        .execute_block(&store, 1, &txs, BlockMode::Dag)
        .unwrap();
    assert_eq!(execution.path, executor::ExecutionPath::Parallel);
    // Per transfer: the sender's nonce read, its balance checked (the second check, of
    // the fee and the amount, on the number the first saw), its multisig read, its nonce
    // and balance written, the receiver credited.
    assert_eq!(execution.stats.claimed_accesses, 16 * 6);
    let oracle = SequentialTosExecutor::new(true)
        .execute_block(&store, 1, &txs, BlockMode::Dag)
        .unwrap();
    assert_eq!(execution.results, oracle.results);
    assert_eq!(changes(&execution), changes(&oracle));

    store
        .write_block(
            1,
            &[(
                StateKey::Balance(receivers[5], TOS_ASSET),
                StateValue::Number(u64::MAX - 3),
            )],
        )
        .unwrap();
    let next: Vec<_> = senders
        .iter()
        .zip(&receivers)
        .map(|(k, r)| transfer(k, 0, *r, 10))
        .collect();
    let execution = executor
        .execute_block(&store, 2, &next, BlockMode::Dag)
        .unwrap();
    assert_eq!(
        execution.path,
        executor::ExecutionPath::Fallback(executor::FallbackReason::DeltaOverflow)
    );
    let oracle = SequentialTosExecutor::new(true)
        .execute_block(&store, 2, &next, BlockMode::Dag)
        .unwrap();
    assert_eq!(execution.results, oracle.results);
    assert_eq!(changes(&execution), changes(&oracle));
    let rejected: Vec<_> = oracle
        .results
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.success())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(rejected, vec![5]);
}

/// The critical path (`bench`'s `ideal`) counts a balance check that holds without the
/// credits before it as not depending on them: two funded accounts paying each other back
/// and forth make two chains (each sender's nonces and debits), not one; an account that
/// holds nothing until it is paid depends on the payment.
#[test]
fn balance_checks_that_hold_without_credits_do_not_lengthen_the_critical_path() {
    use tos_adapter::BlockState;
    let path = |store: &MemoryStore, txs: &[Transaction]| {
        let keys = TosBlockExecutor::declared_keys(txs, false);
        let state = BlockState::preload(store, 0, keys, 1).unwrap();
        let vm = engine_vm(false);
        executor::critical_path(&vm, &state, txs).unwrap()
    };
    let (a, b) = (key(1), key(2));
    let store = MemoryStore::new();
    genesis(&store, &[key(1), key(2)], 1_000_000);
    let back_and_forth: Vec<_> = (0..10u64)
        .map(|i| {
            let (from, to) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
            transfer(from, i / 2, to.public_key(), 10)
        })
        .collect();
    assert_eq!(path(&store, &back_and_forth), 5);
    // C is created by A's payment and spends it: C's transfer needs that credit.
    let c = key(3);
    let needs_credit = vec![
        transfer(&a, 0, c.public_key(), 500_000),
        transfer(&c, 0, b.public_key(), 100_000),
    ];
    assert_eq!(path(&store, &needs_credit), 2);
}
