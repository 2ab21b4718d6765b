//! The executors' behaviour on edge cases: empty and tiny blocks, panics, block errors,
//! overflow fallback, configuration, determinism and a very large block.

mod common;

use common::{quiet_mock_panics, random_block};
use executor::mock::{
    independent_block, EmptyStorage, MockOutput, MockStatus, MockStorage, MockStorageError,
    MockTxn, MockVm,
};
use executor::{
    BlockError, BlockExecutor, ConfigError, ExecutionPath, ExecutorConfig, FallbackReason,
    KeyClaim, ParallelExecutor, SequentialExecutor, SequentialReason, SuffixRule, TxnOutput,
};
use std::time::Duration;

const VM: MockVm = MockVm { key_space: 0 };

/// Executes `txns` with `exec` and checks every output and the final writes against the
/// sequential executor.
fn assert_like_sequential(
    exec: &ParallelExecutor,
    vm: &MockVm,
    storage: &MockStorage,
    txns: &[MockTxn],
    context: &str,
) {
    let expected = SequentialExecutor.execute_block(vm, storage, txns).unwrap();
    let got = exec.execute_block(vm, storage, txns).unwrap();
    assert_eq!(got.outputs, expected.outputs, "{context}");
    assert_eq!(got.writes, expected.writes, "{context}");
}

#[test]
fn empty_block() {
    for threads in [1, 2, 4] {
        let out = ParallelExecutor::new(threads)
            .execute_block(&VM, &EmptyStorage, &[])
            .unwrap();
        assert!(out.outputs.is_empty() && out.writes.is_empty());
        assert_eq!(out.path, ExecutionPath::Parallel);
    }
}

#[test]
fn one_transaction_block() {
    let txns = vec![MockTxn {
        reads: vec![1],
        writes: vec![2],
        deltas: vec![(3, 5)],
        seed: 4, // even digest path is not guaranteed: compare with sequential
        ..MockTxn::default()
    }];
    let storage = MockStorage {
        values: [(1, 10), (3, 100)].into_iter().collect(),
        fail_on: None,
        ..MockStorage::default()
    };
    let seq = SequentialExecutor
        .execute_block(&VM, &storage, &txns)
        .unwrap();
    let par = ParallelExecutor::new(4)
        .execute_block(&VM, &storage, &txns)
        .unwrap();
    assert_eq!(par.outputs, seq.outputs);
    assert_eq!(par.writes, seq.writes);
    assert_eq!(par.outputs.len(), 1);
    // The write and (unless the digest skipped it) the credit on 100.
    assert!(par.writes.iter().any(|&(k, _)| k == 2));
    if let Some(&(_, v)) = par.writes.iter().find(|&&(k, _)| k == 3) {
        assert_eq!(v, 105);
    }
}

#[test]
fn a_panic_is_the_transactions_failure_in_both_executors() {
    quiet_mock_panics();
    // panic_modulus 1: digest % 1 == 0, never 1; use 2 and pick a seed that panics.
    let txn = |seed| MockTxn {
        seed,
        writes: vec![9],
        panic_modulus: 2,
        ..MockTxn::default()
    };
    let panicking = (0..64).map(txn).find(|t| {
        matches!(
            SequentialExecutor.execute_block(&VM, &EmptyStorage, std::slice::from_ref(t)),
            Ok(out) if matches!(out.outputs[0], TxnOutput::Panicked(_))
        )
    });
    let panicking = panicking.expect("some seed panics");
    let mut txns: Vec<MockTxn> = (100..150).map(txn).collect();
    txns.insert(20, panicking);
    let seq = SequentialExecutor
        .execute_block(&VM, &EmptyStorage, &txns)
        .unwrap();
    let par = ParallelExecutor::new(2)
        .execute_block(&VM, &EmptyStorage, &txns)
        .unwrap();
    assert!(matches!(&seq.outputs[20], TxnOutput::Panicked(m) if m.starts_with("mock panic")));
    assert_eq!(par.outputs, seq.outputs);
    assert_eq!(par.writes, seq.writes);
}

#[test]
fn a_storage_failure_fails_the_block_in_both_executors() {
    let (mut storage, txns) = random_block(7, 50, 300, false);
    storage.fail_on = Some(txns.iter().flat_map(|t| t.reads.clone()).next().unwrap());
    let seq = SequentialExecutor.execute_block(&MockVm { key_space: 50 }, &storage, &txns);
    assert!(matches!(seq, Err(BlockError::Vm(MockStorageError(_)))));
    for threads in [1, 2, 4] {
        let par = ParallelExecutor::new(threads).execute_block(
            &MockVm { key_space: 50 },
            &storage,
            &txns,
        );
        assert!(
            matches!(par, Err(BlockError::Vm(MockStorageError(_)))),
            "{threads} threads"
        );
    }
}

#[test]
fn an_overflowing_credit_falls_back_and_rejects_exactly_that_transaction() {
    let storage = MockStorage {
        values: [(1, u64::MAX - 10)].into_iter().collect(),
        fail_on: None,
        ..MockStorage::default()
    };
    // Every credit of 5 fits once on MAX - 10, the second overflows. Seeds are chosen so
    // the digest keeps the credit (the mock skips some).
    let credit = |seed| MockTxn {
        seed,
        deltas: vec![(1, 5)],
        ..MockTxn::default()
    };
    let keeps_credit = |t: &MockTxn| {
        let out = SequentialExecutor
            .execute_block(&VM, &MockStorage::default(), std::slice::from_ref(t))
            .unwrap();
        !out.writes.is_empty()
    };
    let txns: Vec<MockTxn> = (0..200).map(credit).filter(keeps_credit).take(12).collect();
    assert_eq!(txns.len(), 12);
    let seq = SequentialExecutor
        .execute_block(&VM, &storage, &txns)
        .unwrap();
    let statuses: Vec<MockStatus> = seq
        .outputs
        .iter()
        .map(|o| match o {
            TxnOutput::Executed(MockOutput { status, .. }) => *status,
            TxnOutput::Panicked(_) => panic!("no panics here"),
        })
        .collect();
    assert_eq!(statuses[..2], [MockStatus::Success, MockStatus::Success]);
    assert!(statuses[2..].iter().all(|s| *s == MockStatus::Overflow));
    assert_eq!(seq.writes, vec![(1, u64::MAX)]);
    let par = ParallelExecutor::new(2)
        .execute_block(&VM, &storage, &txns)
        .unwrap();
    assert_eq!(
        par.path,
        ExecutionPath::Fallback(FallbackReason::DeltaOverflow)
    );
    assert_eq!(par.outputs, seq.outputs);
    assert_eq!(par.writes, seq.writes);
}

/// Credits that bring a value to within a few units of `u64::MAX` without passing it are
/// folded by the parallel path itself: no fallback, the exact sum.
#[test]
fn credits_that_fit_just_below_the_maximum_stay_parallel() {
    let storage = MockStorage {
        values: [(1, u64::MAX - 100)].into_iter().collect(),
        fail_on: None,
        ..MockStorage::default()
    };
    let keeps_credit = |t: &MockTxn| {
        let out = SequentialExecutor
            .execute_block(&VM, &MockStorage::default(), std::slice::from_ref(t))
            .unwrap();
        !out.writes.is_empty()
    };
    // Twelve credits of 8: 96 of the 100 left.
    let txns: Vec<MockTxn> = (0..200)
        .map(|seed| MockTxn {
            seed,
            deltas: vec![(1, 8)],
            ..MockTxn::default()
        })
        .filter(keeps_credit)
        .take(12)
        .collect();
    assert_eq!(txns.len(), 12);
    let seq = SequentialExecutor
        .execute_block(&VM, &storage, &txns)
        .unwrap();
    assert_eq!(seq.writes, vec![(1, u64::MAX - 4)]);
    for threads in [2, 4] {
        let par = ParallelExecutor::new(threads)
            .execute_block(&VM, &storage, &txns)
            .unwrap();
        assert_eq!(par.path, ExecutionPath::Parallel, "{threads} threads");
        assert_eq!(par.outputs, seq.outputs);
        assert_eq!(par.writes, seq.writes);
    }
}

/// The final pass writes outputs in place and finds an overflow only at the end (the
/// credits are blind): the outputs it wrote, panic messages among them, are dropped
/// before the fallback (Miri checks there is no leak or double drop:
/// `cargo +nightly miri test -p executor --test behaviour final_pass`).
#[test]
fn a_final_pass_failure_drops_the_outputs_it_wrote() {
    quiet_mock_panics();
    let n: u64 = if cfg!(miri) { 140 } else { 600 };
    let storage = MockStorage {
        values: [(1, u64::MAX - 10)].into_iter().collect(),
        fail_on: None,
        ..MockStorage::default()
    };
    // A credit that overflows storage's value (a seed whose digest keeps the credit).
    let overflows = |t: &MockTxn| {
        let out = SequentialExecutor
            .execute_block(&VM, &storage, std::slice::from_ref(t))
            .unwrap();
        matches!(
            out.outputs[..],
            [TxnOutput::Executed(MockOutput {
                status: MockStatus::Overflow,
                ..
            })]
        )
    };
    let credit = (n..n + 200)
        .map(|seed| MockTxn {
            seed,
            deltas: vec![(1, 20)],
            ..MockTxn::default()
        })
        .find(overflows)
        .unwrap();
    let mut txns: Vec<MockTxn> = (0..n)
        .map(|seed| MockTxn {
            seed,
            writes: vec![1_000 + seed],
            panic_modulus: 3,
            ..MockTxn::default()
        })
        .collect();
    txns.push(credit);
    let seq = SequentialExecutor
        .execute_block(&VM, &storage, &txns)
        .unwrap();
    assert!(seq
        .outputs
        .iter()
        .any(|o| matches!(o, TxnOutput::Panicked(_))));
    for threads in [1, 2] {
        let par = ParallelExecutor::new(threads)
            .execute_block(&VM, &storage, &txns)
            .unwrap();
        assert_eq!(
            par.path,
            ExecutionPath::Fallback(FallbackReason::DeltaOverflow)
        );
        assert_eq!(par.outputs, seq.outputs, "{threads} threads");
        assert_eq!(par.writes, seq.writes, "{threads} threads");
    }
}

#[test]
fn policy_runs_small_blocks_and_one_thread_sequentially() {
    let txns = independent_block(5, 0);
    let exec = BlockExecutor::new(ExecutorConfig::new(2).unwrap());
    let out = exec.execute_block(&VM, &EmptyStorage, &txns).unwrap();
    assert_eq!(
        out.path,
        ExecutionPath::Sequential(SequentialReason::SmallBlock)
    );
    let txns = independent_block(50, 0);
    let out = exec.execute_block(&VM, &EmptyStorage, &txns).unwrap();
    assert_eq!(out.path, ExecutionPath::Parallel);
    let one = BlockExecutor::new(ExecutorConfig::new(1).unwrap());
    let out = one.execute_block(&VM, &EmptyStorage, &txns).unwrap();
    assert_eq!(
        out.path,
        ExecutionPath::Sequential(SequentialReason::SingleThread)
    );
}

#[test]
fn zero_threads_is_a_clear_error() {
    let err = ExecutorConfig::new(0).unwrap_err();
    assert_eq!(err, ConfigError::ZeroThreads);
    assert!(err.to_string().contains("at least 1"));
    assert!(ExecutorConfig::default().threads() >= 1);
}

#[test]
fn same_block_fifty_times_on_four_threads_gives_identical_outputs() {
    quiet_mock_panics();
    let (storage, txns) = random_block(42, 2_000, 10_000, false);
    let vm = MockVm { key_space: 2_000 };
    let first = ParallelExecutor::new(4)
        .execute_block(&vm, &storage, &txns)
        .unwrap();
    let seq = SequentialExecutor
        .execute_block(&vm, &storage, &txns)
        .unwrap();
    assert_eq!(first.outputs, seq.outputs);
    assert_eq!(first.writes, seq.writes);
    for _ in 1..50 {
        let again = ParallelExecutor::new(4)
            .execute_block(&vm, &storage, &txns)
            .unwrap();
        assert_eq!(again.outputs, first.outputs);
        assert_eq!(again.writes, first.writes);
    }
}

#[test]
fn a_million_transaction_block_works() {
    let txns = independent_block(1_000_000, 0);
    let out = ParallelExecutor::new(2)
        .execute_block(&VM, &EmptyStorage, &txns)
        .unwrap();
    assert_eq!(out.path, ExecutionPath::Parallel);
    assert_eq!(out.outputs.len(), 1_000_000);
    assert_eq!(out.writes.len(), 1_000_000);
    assert_eq!(out.writes[999_999].0, 1_999_999);
    assert!(out.stats.incarnations >= 1_000_000);
}

#[test]
fn one_executor_reuses_its_buffers_across_blocks_and_failures() {
    quiet_mock_panics();
    let exec = ParallelExecutor::new(3);
    let vm = MockVm { key_space: 300 };
    for (round, n) in [500usize, 20, 2_000, 0, 1, 700].into_iter().enumerate() {
        let (mut storage, txns) = random_block(round as u64, 300, n, round % 2 == 1);
        assert_like_sequential(&exec, &vm, &storage, &txns, &format!("block {round}"));
        // A failing block in between leaves its buffers behind (or not): no matter.
        if let Some(key) = txns.iter().flat_map(|t| t.reads.clone()).next() {
            storage.fail_on = Some(key);
            assert!(exec.execute_block(&vm, &storage, &txns).is_err());
        }
    }
}

#[test]
fn critical_path_counts_read_after_write_chains_not_credits() {
    // Independent: every transaction reads and writes its own keys.
    let txns = independent_block(100, 0);
    assert_eq!(
        executor::critical_path(&VM, &EmptyStorage, &txns).unwrap(),
        1
    );
    // A chain: each transaction reads the key the previous one wrote.
    let chain: Vec<MockTxn> = (0..50u64)
        .map(|i| MockTxn {
            seed: i,
            reads: vec![i],
            writes: vec![i + 1],
            ..MockTxn::default()
        })
        .collect();
    assert_eq!(
        executor::critical_path(&VM, &EmptyStorage, &chain).unwrap(),
        50
    );
    // Credits to one key do not chain; a later read of it depends on them.
    let mut credits: Vec<MockTxn> = (0..40u64)
        .map(|i| MockTxn {
            seed: i,
            deltas: vec![(7, 1), (7, 1), (7, 1)],
            ..MockTxn::default()
        })
        .collect();
    assert_eq!(
        executor::critical_path(&VM, &EmptyStorage, &credits).unwrap(),
        1
    );
    credits.push(MockTxn {
        reads: vec![7],
        ..MockTxn::default()
    });
    assert_eq!(
        executor::critical_path(&VM, &EmptyStorage, &credits).unwrap(),
        2
    );
}

/// A storage that takes its time: no deadlock, no time-out, the same result.
#[test]
fn a_slow_storage_only_slows_the_block() {
    struct Slow(MockStorage);
    impl executor::Storage for Slow {
        type Key = u64;
        type Value = u64;
        type Error = MockStorageError;
        fn get(&self, key: &u64) -> Result<Option<u64>, MockStorageError> {
            std::thread::sleep(std::time::Duration::from_micros(200));
            self.0.get(key)
        }
    }
    quiet_mock_panics();
    let (storage, txns) = random_block(11, 40, 300, false);
    let vm = MockVm { key_space: 40 };
    let expected = SequentialExecutor
        .execute_block(&vm, &storage, &txns)
        .unwrap();
    let slow = Slow(storage);
    for threads in [2, 4] {
        let got = ParallelExecutor::new(threads)
            .execute_block(&vm, &slow, &txns)
            .unwrap();
        assert_eq!(got.outputs, expected.outputs);
        assert_eq!(got.writes, expected.writes);
    }
}

/// Small random blocks with conflicts, panics and credits, one executor per thread count
/// reused across them: sized so that Miri can run it
/// (`cargo +nightly miri test -p executor --test behaviour small_blocks`), which checks the
/// engine's unsafe code (the index's nodes, outputs written in place, writes gathered by
/// the workers) on real threads.
#[test]
fn small_blocks_reusing_buffers_match_sequential_on_several_threads() {
    quiet_mock_panics();
    let sizes: &[usize] = if cfg!(miri) {
        &[40, 150, 9]
    } else {
        &[40, 150, 9, 1_000, 300]
    };
    for threads in [2, 3] {
        let exec = ParallelExecutor::new(threads);
        for (round, &n) in sizes.iter().enumerate() {
            let universe = 20 + 10 * round as u64;
            let (storage, txns) = random_block(round as u64 + 100, universe, n, round == 1);
            let vm = MockVm {
                key_space: universe,
            };
            let context = format!("{threads} threads, block {round}");
            assert_like_sequential(&exec, &vm, &storage, &txns, &context);
        }
    }
}

/// One executor called from several threads at once: one block at a time gets the
/// executor's worker threads, the others start scoped threads; all get the sequential
/// result.
#[test]
fn concurrent_blocks_on_one_executor_match_sequential() {
    quiet_mock_panics();
    let exec = ParallelExecutor::new(3);
    let vm = MockVm { key_space: 80 };
    std::thread::scope(|scope| {
        for caller in 0..3u64 {
            let exec = &exec;
            scope.spawn(move || {
                for round in 0..if cfg!(miri) { 2 } else { 20 } {
                    let (storage, txns) = random_block(caller * 1_000 + round, 80, 200, false);
                    let context = format!("caller {caller}, block {round}");
                    assert_like_sequential(exec, &vm, &storage, &txns, &context);
                }
            });
        }
    });
}

/// Runs `txns` on `threads` workers and checks that the block fell back for `reason` with
/// the sequential executor's outputs and writes.
fn assert_falls_back(
    threads: usize,
    storage: &MockStorage,
    txns: &[MockTxn],
    reason: FallbackReason,
) {
    let expected = SequentialExecutor
        .execute_block(&VM, storage, txns)
        .unwrap();
    let got = ParallelExecutor::new(threads)
        .execute_block(&VM, storage, txns)
        .unwrap();
    assert_eq!(
        got.path,
        ExecutionPath::Fallback(reason),
        "{threads} threads"
    );
    assert_eq!(got.outputs, expected.outputs);
    assert_eq!(got.writes, expected.writes);
}

/// Runs `txns` on `threads` workers and checks that the block stayed parallel with the
/// sequential executor's outputs and final state; returns the parallel run's counters.
fn assert_parallel_like_sequential(
    threads: usize,
    storage: &MockStorage,
    txns: &[MockTxn],
) -> executor::BlockStats {
    let expected = SequentialExecutor
        .execute_block(&VM, storage, txns)
        .unwrap();
    let got = ParallelExecutor::new(threads)
        .execute_block(&VM, storage, txns)
        .unwrap();
    assert_eq!(got.path, ExecutionPath::Parallel, "{threads} threads");
    assert_eq!(got.outputs, expected.outputs);
    assert_eq!(
        common::sorted(&got.writes),
        common::sorted(&expected.writes)
    );
    got.stats
}

/// `n` transactions that each read a key of their own (`100 + seed`) and credit `key` by
/// 5, with seeds whose digest keeps the credit (the mock skips some).
fn credits_to(key: u64, n: usize) -> Vec<MockTxn> {
    let credit = |seed| MockTxn {
        seed,
        reads: vec![100 + seed],
        deltas: vec![(key, 5)],
        ..MockTxn::default()
    };
    let keeps_credit = |t: &MockTxn| {
        let out = SequentialExecutor
            .execute_block(&VM, &MockStorage::default(), std::slice::from_ref(t))
            .unwrap();
        out.writes.iter().any(|(k, _)| *k == key)
    };
    let txns: Vec<MockTxn> = (0..10 * n as u64)
        .map(credit)
        .filter(keeps_credit)
        .take(n)
        .collect();
    assert_eq!(txns.len(), n);
    txns
}

/// A key declared exclusive to one transaction that another reads: the block must not
/// trust the claim. Whichever runs first, the reader meets the claim in storage and the
/// block falls back, with the sequential results.
#[test]
fn a_wrong_exclusive_claim_falls_back_to_the_sequential_result() {
    let writer = MockTxn {
        seed: 2,
        reads: vec![1],
        writes: vec![5],
        ..MockTxn::default()
    };
    let reader = MockTxn {
        seed: 3,
        reads: vec![5],
        writes: vec![6],
        ..MockTxn::default()
    };
    let txns = vec![writer, reader];
    let storage = MockStorage {
        values: [(1, 10), (5, 7)].into_iter().collect(),
        claims: [(1, 0), (5, 0), (6, 1)]
            .into_iter()
            .map(|(key, owner)| (key, KeyClaim::Exclusive(owner)))
            .collect(),
        ..MockStorage::default()
    };
    for threads in [1, 2, 4] {
        for _ in 0..20 {
            assert_falls_back(threads, &storage, &txns, FallbackReason::ClaimBroken);
        }
    }
}

/// A credit to a key exclusive to its transaction is added to storage's value when the
/// transaction is recorded: one that fits is exact and parallel; one that overflows falls
/// back, and the sequential run rejects exactly that credit.
#[test]
fn credits_to_exclusive_keys_are_exact() {
    // Transaction i credits key 1000 + i (exclusive to it); key 1003 sits 2 below the
    // maximum in the second block.
    let txns: Vec<MockTxn> = (0..8u64)
        .map(|i| credits_to(1000 + i, 1).remove(0))
        .collect();
    let mut storage = MockStorage {
        values: (0..8).map(|i| (1000 + i, 100 * i)).collect(),
        claims: (0..8)
            .map(|i| (1000 + i, KeyClaim::Exclusive(i as usize)))
            .collect(),
        ..MockStorage::default()
    };
    // The credits (each transaction's read is of a key of its own, not claimed).
    let stats = assert_parallel_like_sequential(2, &storage, &txns);
    assert_eq!(stats.claimed_accesses, 8);

    storage.values.insert(1003, u64::MAX - 2);
    let expected = SequentialExecutor
        .execute_block(&VM, &storage, &txns)
        .unwrap();
    assert!(matches!(
        expected.outputs[3],
        TxnOutput::Executed(MockOutput {
            status: MockStatus::Overflow,
            ..
        })
    ));
    assert_falls_back(2, &storage, &txns, FallbackReason::DeltaOverflow);
}

/// A storage holding 1,000 at key 1, claimed credit-only (slot 0).
fn credit_only_key_one() -> MockStorage {
    let mut storage = MockStorage {
        values: [(1, 1_000)].into_iter().collect(),
        ..MockStorage::default()
    };
    storage.set_claims([(1, KeyClaim::CreditOnly(0))].into_iter().collect());
    storage
}

/// A key every transaction credits and none reads, claimed credit-only: the credits are
/// summed after the block (parallel, exact); a sum past `u64::MAX` falls back and the
/// sequential run rejects exactly the credits that overflow; a transaction that reads
/// the key breaks the claim.
#[test]
fn credit_only_keys_are_summed_exactly() {
    let txns = credits_to(1, 300);
    let mut storage = credit_only_key_one();
    for threads in [1, 2, 4] {
        let stats = assert_parallel_like_sequential(threads, &storage, &txns);
        assert!(stats.claimed_accesses >= 300);
    }
    let got = ParallelExecutor::new(2)
        .execute_block(&VM, &storage, &txns)
        .unwrap();
    assert!(got.writes.contains(&(1, 1_000 + 5 * 300)));

    storage.values.insert(1, u64::MAX - 12);
    assert_falls_back(2, &storage, &txns, FallbackReason::DeltaOverflow);

    storage.values.insert(1, 1_000);
    let mut reading = txns.clone();
    reading[150].reads.push(1);
    assert_falls_back(2, &storage, &reading, FallbackReason::ClaimBroken);
}

/// A storage whose credit-only slots and keys disagree (slot 0 names another key than the
/// one claimed with it): the executor checks the pair before crediting, and falls back.
#[test]
fn a_credit_only_slot_naming_another_key_falls_back() {
    let txns = credits_to(1, 4);
    let mut storage = credit_only_key_one();
    storage.credit_keys = vec![2];
    assert_falls_back(2, &storage, &txns, FallbackReason::ClaimBroken);
}

/// A chain (each transaction reads and writes the key the one before it wrote): Block-STM
/// told the block takes no time sequentially stops it at its first look and finishes it
/// sequentially; told it takes an hour, it never stops. The results are the sequential
/// ones either way, and on one thread, where the calling thread does everything, the
/// stop keeps a prefix, committed by the finality index before the stop, and leaves a
/// suffix.
#[test]
fn a_block_behind_sequential_finishes_sequentially() {
    let txns: Vec<MockTxn> = (0..300)
        .map(|i| MockTxn {
            seed: i,
            reads: vec![0],
            writes: vec![0],
            deltas: vec![(1, 1)],
            ..MockTxn::default()
        })
        .collect();
    let storage = MockStorage::default();
    let expected = SequentialExecutor
        .execute_block(&VM, &storage, &txns)
        .unwrap();
    for threads in [1, 2, 4] {
        let exec = ParallelExecutor::new(threads);
        let fast = SuffixRule::SlowerThanSequential(Duration::from_nanos(1));
        let slow = SuffixRule::SlowerThanSequential(Duration::from_secs(3600));
        for (rule, stops) in [(fast, true), (slow, false)] {
            let got = exec.execute_block_with(&VM, &storage, &txns, rule).unwrap();
            assert_eq!(got.outputs, expected.outputs, "{threads} threads, {rule:?}");
            assert_eq!(got.writes, expected.writes, "{threads} threads, {rule:?}");
            assert_eq!(got.path, ExecutionPath::Parallel);
            // The commit index never passes the kept prefix.
            assert!(got.stats.committed + got.stats.sequential_suffix <= 300);
            if !stops {
                assert_eq!(got.stats.sequential_suffix, 0, "{threads} threads");
                // Never behind an hour: nothing to commit for.
                assert_eq!(got.stats.committed, 0, "{threads} threads");
            } else if threads == 1 {
                // Stopped at its first look, after a few tasks: a prefix kept (committed
                // before the stop: the calling thread executed and validated it), the
                // rest sequential.
                let suffix = got.stats.sequential_suffix;
                assert!(suffix > 0 && suffix < 300, "{:?}", got.stats);
                assert_eq!(got.stats.committed + suffix, 300, "{:?}", got.stats);
            }
        }
    }
}
