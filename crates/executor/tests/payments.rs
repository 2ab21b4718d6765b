//! Proptests of checks and debits: random scripts over a few hot keys mixing balance
//! checks (some that reject the transaction when they fail, some that go on), debits with
//! and without a check that covers them (more than checked, several per key, zero),
//! credits, reads, writes and discarded writes, run by Block-STM at 1, 2, 4 and 8 threads
//! (without claims, with exact exclusive claims, and stopped partway for a sequential
//! suffix) against the sequential executor, whose checks and debits read values. Every
//! output and the final state must be equal, and the block must stay parallel.
//!
//! `BLOCKSTM_PROPTEST_CASES=N` runs N blocks per test instead of the default 300.

mod common;

use common::Rng;
use executor::mock::{mix, MockStorage, MockStorageError};
use executor::{
    ExecError, ExecutionPath, KeyClaim, ParallelExecutor, SequentialExecutor, SuffixRule, TxnView,
    Vm,
};
use proptest::prelude::*;
use std::collections::HashMap;

/// One step of a scripted transaction.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Checks that the key holds the amount; mixes the outcome (or the value reported)
    /// into the digest and goes on.
    Check(u64, u64),
    /// Checks that the key holds the amount; if not, discards the writes and stops.
    Require(u64, u64),
    /// Debits the amount (covered by an earlier check or not).
    Debit(u64, u64),
    /// Credits the amount; rejects the transaction if it does not fit.
    Credit(u64, u64),
    /// Reads the value.
    Read(u64),
    /// Writes the value.
    Write(u64, u64),
    /// Drops the writes so far.
    Discard,
}

impl Step {
    fn key(&self) -> Option<u64> {
        match *self {
            Step::Check(key, _)
            | Step::Require(key, _)
            | Step::Debit(key, _)
            | Step::Credit(key, _)
            | Step::Read(key)
            | Step::Write(key, _) => Some(key),
            Step::Discard => None,
        }
    }
}

/// Runs a transaction's steps; returns the digest of everything it saw.
struct ScriptVm;

impl Vm for ScriptVm {
    type Txn = Vec<Step>;
    type Key = u64;
    type Value = u64;
    type Output = u64;
    type Error = MockStorageError;

    fn execute<T>(&self, steps: &Vec<Step>, view: &mut T) -> Result<u64, ExecError<Self::Error>>
    where
        T: TxnView<Key = u64, Value = u64>,
    {
        let mut digest = 1;
        for step in steps {
            match *step {
                Step::Check(key, required) => match view.check(&key, required)? {
                    Ok(()) => digest = mix(digest ^ 1),
                    Err(value) => digest = mix(digest ^ value.unwrap_or(0) ^ 2),
                },
                Step::Require(key, required) => match view.check(&key, required)? {
                    Ok(()) => digest = mix(digest ^ 3),
                    Err(value) => {
                        view.discard_writes();
                        return Ok(mix(digest ^ value.unwrap_or(0) ^ 4));
                    }
                },
                Step::Debit(key, amount) => view.debit(key, amount)?,
                Step::Credit(key, amount) => {
                    if view.add_delta(key, amount)?.is_err() {
                        view.discard_writes();
                        return Ok(mix(digest ^ 5));
                    }
                }
                Step::Read(key) => {
                    let value = view.read(&key)?;
                    digest = mix(digest ^ value.map_or(7, |v| v ^ 8));
                }
                Step::Write(key, value) => view.write(key, value),
                Step::Discard => view.discard_writes(),
            }
        }
        Ok(digest)
    }
}

/// A block of `n` scripts over `keys` keys, and a storage holding most of them.
fn block(seed: u64, keys: u64, n: usize) -> (MockStorage, Vec<Vec<Step>>) {
    let mut rng = Rng::new(seed);
    let mut storage = MockStorage::default();
    for key in 0..keys {
        if rng.below(4) != 0 {
            storage.values.insert(key, rng.below(100));
        }
    }
    let txns = (0..n)
        .map(|_| {
            (0..1 + rng.below(7))
                .map(|_| {
                    let key = rng.below(keys);
                    match rng.below(12) {
                        0 | 1 => Step::Check(key, rng.below(120)),
                        2 => Step::Require(key, rng.below(120)),
                        3..=5 => Step::Debit(key, rng.below(60)),
                        6 | 7 => Step::Credit(key, rng.below(50)),
                        8 => Step::Read(key),
                        9 => Step::Write(key, rng.below(100)),
                        10 => Step::Discard,
                        _ => Step::Check(key, 0),
                    }
                })
                .collect()
        })
        .collect();
    (storage, txns)
}

/// Every key one script alone names, declared exclusive to it.
fn exclusive_claims(txns: &[Vec<Step>]) -> HashMap<u64, KeyClaim> {
    let mut owner: HashMap<u64, Option<usize>> = HashMap::new();
    for (i, steps) in txns.iter().enumerate() {
        for key in steps.iter().filter_map(Step::key) {
            owner
                .entry(key)
                .and_modify(|o| {
                    if *o != Some(i) {
                        *o = None
                    }
                })
                .or_insert(Some(i));
        }
    }
    owner
        .into_iter()
        .filter_map(|(key, o)| o.map(|o| (key, KeyClaim::Exclusive(o))))
        .collect()
}

fn run_equal(
    storage: &MockStorage,
    txns: &[Vec<Step>],
    threads: &[usize],
    rule: SuffixRule,
) -> Result<(), TestCaseError> {
    let expected = SequentialExecutor
        .execute_block(&ScriptVm, storage, txns)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    for &threads in threads {
        let got = ParallelExecutor::new(threads)
            .execute_block_with(&ScriptVm, storage, txns, rule)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&got.path, &ExecutionPath::Parallel, "{} threads", threads);
        prop_assert_eq!(&got.outputs, &expected.outputs, "{} threads", threads);
        let (mut writes, mut want) = (got.writes.clone(), expected.writes.clone());
        writes.sort_unstable();
        want.sort_unstable();
        prop_assert_eq!(writes, want, "final state at {} threads", threads);
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("BLOCKSTM_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Two to five hot keys: nearly every pair of scripts conflicts.
    #[test]
    fn payments_equal_sequential(seed in any::<u64>(), keys in 2u64..=5, n in 1usize..=220) {
        let (storage, txns) = block(seed, keys, n);
        run_equal(&storage, &txns, &[1, 2, 4, 8], SuffixRule::Never)?;
    }

    /// More keys, those one script alone names exclusive to it.
    #[test]
    fn payments_with_exclusive_keys_equal_sequential(
        seed in any::<u64>(), keys in 4u64..=24, n in 1usize..=60
    ) {
        let (mut storage, txns) = block(seed, keys, n);
        storage.set_claims(exclusive_claims(&txns));
        run_equal(&storage, &txns, &[1, 2, 4, 8], SuffixRule::Never)?;
    }

    /// Stopped after some incarnations and finished sequentially.
    #[test]
    fn stopped_payments_equal_sequential(
        seed in any::<u64>(), keys in 2u64..=4, n in 1usize..=130, stop in 0u64..40
    ) {
        let (storage, txns) = block(seed, keys, n);
        run_equal(&storage, &txns, &[1, 2, 4], SuffixRule::AfterIncarnations(stop))?;
    }
}
