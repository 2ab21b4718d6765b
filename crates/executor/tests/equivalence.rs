//! Proptests: Block-STM at 1, 2, 4 and 8 threads against the sequential executor, on
//! random blocks whose read, write and delta sets change with what each incarnation
//! reads. Every output and the final state must be equal.
//!
//! `BLOCKSTM_PROPTEST_CASES=N` runs N blocks instead of the default 1,000 (plus a quarter
//! as many with overflowing credits).

mod common;

use common::{claims, quiet_mock_panics, random_block, sorted};
use executor::mock::{MockOutput, MockStorage, MockTxn, MockVm};
use executor::{
    BlockOutput, ExecutionPath, FallbackReason, KeyClaim, ParallelExecutor, SequentialExecutor,
    Storage, SuffixRule,
};
use proptest::prelude::*;
use std::sync::OnceLock;

/// One executor per thread count, shared by every case, so that each block also runs on
/// the buffers the previous (differently sized, possibly failed) block left behind.
fn executors() -> &'static [ParallelExecutor; 4] {
    static EXECUTORS: OnceLock<[ParallelExecutor; 4]> = OnceLock::new();
    EXECUTORS.get_or_init(|| [1, 2, 4, 8].map(ParallelExecutor::new))
}

fn cases() -> u32 {
    std::env::var("BLOCKSTM_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
}

/// The block executed by `executor` under `rule` (which may stop it for a sequential
/// suffix), its outputs and final state checked against the sequential executor's
/// `expected` (`ordered`: the writes in the same order too, as the engine promises
/// without claims; with claims, as a set).
fn run_equal(
    executor: &ParallelExecutor,
    vm: &MockVm,
    storage: &MockStorage,
    txns: &[MockTxn],
    expected: &BlockOutput<u64, u64, MockOutput>,
    ordered: bool,
    rule: SuffixRule,
) -> Result<BlockOutput<u64, u64, MockOutput>, TestCaseError> {
    let threads = executor.threads();
    let got = executor
        .execute_block_with(vm, storage, txns, rule)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(
        &got.outputs,
        &expected.outputs,
        "outputs at {} threads, claims: {}",
        threads,
        storage.has_claims()
    );
    if ordered {
        prop_assert_eq!(
            &got.writes,
            &expected.writes,
            "final state at {} threads",
            threads
        );
    } else {
        prop_assert_eq!(
            sorted(&got.writes),
            sorted(&expected.writes),
            "final state at {} threads, claims",
            threads
        );
    }
    Ok(got)
}

fn check(seed: u64, universe: u64, n: usize, overflows: bool) -> Result<(), TestCaseError> {
    quiet_mock_panics();
    let (storage, txns) = random_block(seed, universe, n, overflows);
    let vm = MockVm {
        key_space: universe,
    };
    let expected = SequentialExecutor
        .execute_block(&vm, &storage, &txns)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    for executor in executors() {
        let got = run_equal(
            executor,
            &vm,
            &storage,
            &txns,
            &expected,
            true,
            SuffixRule::Never,
        )?;
        if !overflows {
            prop_assert_eq!(got.path, ExecutionPath::Parallel);
        }
    }
    // Keys one transaction names declared exclusive to it, keys only credited declared
    // credit-only: a redirected write may break a claim, which must stop the block (the
    // sequential result then); otherwise the keys stay out of the memory.
    let mut claimed = storage;
    claimed.set_claims(claims(&txns));
    for executor in executors() {
        let got = run_equal(
            executor,
            &vm,
            &claimed,
            &txns,
            &expected,
            false,
            SuffixRule::Never,
        )?;
        let allowed = matches!(
            got.path,
            ExecutionPath::Parallel | ExecutionPath::Fallback(FallbackReason::ClaimBroken)
        ) || (overflows
            && got.path == ExecutionPath::Fallback(FallbackReason::DeltaOverflow));
        prop_assert!(
            allowed,
            "path {:?} at {} threads, claims",
            got.path,
            executor.threads()
        );
    }
    Ok(())
}

/// Exact claims (no write is redirected): the block stays parallel (or, with huge
/// credits, falls back on an overflow), every result and the final state are the
/// sequential ones, and the claimed keys were read around the memory.
fn check_exact_claims(
    seed: u64,
    universe: u64,
    n: usize,
    overflows: bool,
) -> Result<(), TestCaseError> {
    quiet_mock_panics();
    let (mut storage, txns) = random_block(seed, universe, n, overflows);
    storage.set_claims(claims(&txns));
    let vm = MockVm { key_space: 0 };
    let expected = SequentialExecutor
        .execute_block(&vm, &storage, &txns)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let claimed_read = txns.iter().enumerate().any(|(i, txn)| {
        txn.reads
            .iter()
            .any(|key| storage.claims.get(key) == Some(&KeyClaim::Exclusive(i)))
    });
    for executor in executors() {
        let got = run_equal(
            executor,
            &vm,
            &storage,
            &txns,
            &expected,
            false,
            SuffixRule::Never,
        )?;
        if overflows && got.path == ExecutionPath::Fallback(FallbackReason::DeltaOverflow) {
            continue;
        }
        prop_assert_eq!(got.path, ExecutionPath::Parallel);
        if claimed_read {
            prop_assert!(
                got.stats.claimed_accesses > 0,
                "no claimed access at {} threads",
                executor.threads()
            );
        }
    }
    Ok(())
}

/// The block stopped once the calling thread executed `stop_after` incarnations, the rest
/// run sequentially on the kept prefix: every result and the final state (in order,
/// without claims) are the sequential ones, at every thread count. On one thread, where
/// the calling thread executes everything in order, a stop before the end keeps exactly
/// the transactions executed.
fn check_stopped(
    seed: u64,
    universe: u64,
    n: usize,
    stop_after: u64,
    with_claims: bool,
) -> Result<(), TestCaseError> {
    quiet_mock_panics();
    let (mut storage, txns) = random_block(seed, universe, n, false);
    let vm = MockVm {
        key_space: if with_claims { 0 } else { universe },
    };
    if with_claims {
        storage.set_claims(claims(&txns));
    }
    let expected = SequentialExecutor
        .execute_block(&vm, &storage, &txns)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let rule = SuffixRule::AfterIncarnations(stop_after);
    for executor in executors() {
        let got = run_equal(
            executor,
            &vm,
            &storage,
            &txns,
            &expected,
            !with_claims,
            rule,
        )?;
        prop_assert_eq!(got.path, ExecutionPath::Parallel);
        if executor.threads() == 1 && stop_after < n as u64 {
            // In order on one thread nothing aborts: the first `stop_after` transactions
            // are executed and valid, and exactly they are kept.
            prop_assert_eq!(
                got.stats.sequential_suffix,
                n as u64 - stop_after,
                "one thread, stopped after {} of {}",
                stop_after,
                n
            );
        }
        prop_assert!(got.stats.sequential_suffix <= n as u64);
    }
    Ok(())
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..20, 20usize..300, 300usize..=1000]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Credits of ordinary size: every block must stay on the parallel path.
    #[test]
    fn parallel_equals_sequential(seed in any::<u64>(), universe in 2u64..=1000, n in size()) {
        check(seed, universe, n, false)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases() / 4, ..ProptestConfig::default() })]

    /// Credits near `u64::MAX`: overflows are rejected exactly as sequentially.
    #[test]
    fn parallel_equals_sequential_with_overflowing_credits(
        seed in any::<u64>(), universe in 2u64..=100, n in size()
    ) {
        check(seed, universe, n, true)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases() / 2, ..ProptestConfig::default() })]

    /// Keys one transaction names declared exclusive to it, keys only credited declared
    /// credit-only (exact hints), with credits of ordinary size and near `u64::MAX`.
    #[test]
    fn claimed_keys_equal_sequential(
        seed in any::<u64>(), universe in 2u64..=5000, n in size(), overflows in any::<bool>()
    ) {
        check_exact_claims(seed, universe, n, overflows)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases() / 2, ..ProptestConfig::default() })]

    /// Blocks stopped partway (anywhere from before the first execution to past the
    /// end) and finished sequentially on the kept prefix, without and with claims.
    #[test]
    fn stopped_blocks_equal_sequential(
        seed in any::<u64>(),
        universe in 2u64..=1000,
        n in size(),
        stop in 0f64..1.2,
        with_claims in any::<bool>(),
    ) {
        check_stopped(seed, universe, n, (stop * n as f64) as u64, with_claims)?;
    }
}

/// Hot keys: a universe of 2 to 4 keys makes almost every pair of transactions conflict.
#[test]
fn heavily_conflicting_blocks_are_exact() {
    for seed in 0..20 {
        check(seed, 2 + seed % 3, 500, false).unwrap();
    }
}
