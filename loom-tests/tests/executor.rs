//! Loom models of the whole parallel executor: `ParallelExecutor::execute_block` on two
//! workers, from the worker loop (execution, validation, abort, dependency) through the
//! final pass and its gathering barrier, with every result compared to the sequential
//! executor's on the same block.
//!
//! Under `cfg(loom)` the executor's thread pool is a stand-in that runs worker 1 on a
//! loom thread (`executor/src/pool.rs`), and the scheduler, the multi-version memory and
//! the barrier use loom's atomics and locks: loom explores the interleavings of the
//! engine's own code, with the mock VM's transactions in between.
#![cfg(loom)]

use executor::mock::{MockStorage, MockTxn, MockVm};
use executor::{
    BlockStats, ExecutionPath, KeyClaim, ParallelExecutor, SequentialExecutor, SuffixRule,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The VM of every model: writes go to the keys the transactions name.
const VM: MockVm = MockVm { key_space: 0 };

/// Transaction `seed`: reads `reads`, then writes `writes` with values derived from what
/// it read (so a transaction that read a stale value writes and returns another result).
fn txn(seed: u64, reads: &[u64], writes: &[u64]) -> MockTxn {
    MockTxn {
        seed,
        reads: reads.to_vec(),
        writes: writes.to_vec(),
        ..MockTxn::default()
    }
}

/// Every key of the models holds a value before the block.
fn storage() -> MockStorage {
    MockStorage {
        values: (1..=3).map(|key| (key, 100 * key)).collect(),
        ..MockStorage::default()
    }
}

/// `writes` ordered by key.
fn sorted(mut writes: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    writes.sort_unstable();
    writes
}

/// The largest value of each counter over every execution of a model.
#[derive(Default)]
struct Seen {
    aborts: AtomicU64,
    dependency_waits: AtomicU64,
    incarnations: AtomicU64,
    claimed_accesses: AtomicU64,
    sequential_suffix: AtomicU64,
    committed: AtomicU64,
    /// The smallest suffix over the executions that stopped (starts at `u64::MAX`).
    least_suffix: AtomicU64,
}

impl Seen {
    fn record(&self, stats: &BlockStats) {
        self.aborts.fetch_max(stats.aborts, Ordering::Relaxed);
        self.dependency_waits
            .fetch_max(stats.dependency_waits, Ordering::Relaxed);
        self.incarnations
            .fetch_max(stats.incarnations, Ordering::Relaxed);
        self.claimed_accesses
            .fetch_max(stats.claimed_accesses, Ordering::Relaxed);
        self.sequential_suffix
            .fetch_max(stats.sequential_suffix, Ordering::Relaxed);
        self.committed.fetch_max(stats.committed, Ordering::Relaxed);
        if stats.sequential_suffix > 0 {
            self.least_suffix
                .fetch_min(stats.sequential_suffix, Ordering::Relaxed);
        }
    }
}

/// Runs `txns` on two workers and checks, in every interleaving, that the block ran in
/// parallel and gave the sequential executor's outputs and final writes. Returns the
/// largest counters seen over all interleavings.
///
/// The path must be `Parallel`: a fallback would hide a broken run behind the sequential
/// result. That includes loom's own failures inside a worker (a polling loop that never
/// ends exceeds loom's branch limit, which panics): the worker catches the panic and the
/// block falls back with `WorkerPanic`.
fn check_against_sequential(txns: Vec<MockTxn>) -> Arc<Seen> {
    check_with(storage(), txns)
}

/// [`check_against_sequential`] on `storage`, the final writes compared as a set (claimed
/// keys are placed apart from the others).
fn check_with(storage: MockStorage, txns: Vec<MockTxn>) -> Arc<Seen> {
    check_with_rule(storage, txns, SuffixRule::Never)
}

/// [`check_with`], the block run under `rule` (which may stop it for a sequential
/// suffix).
fn check_with_rule(storage: MockStorage, txns: Vec<MockTxn>, rule: SuffixRule) -> Arc<Seen> {
    let expected = SequentialExecutor
        .execute_block(&VM, &storage, &txns)
        .expect("the sequential run of the model's block");
    let (outputs, writes) = (expected.outputs, sorted(expected.writes));
    let seen = Arc::new(Seen {
        least_suffix: AtomicU64::new(u64::MAX),
        ..Seen::default()
    });
    let seen_in_model = seen.clone();
    loom::model(move || {
        // A fresh executor per execution: it keeps the block's buffers, which hold loom
        // objects of this execution.
        let executor = ParallelExecutor::new(2);
        let result = executor
            .execute_block_with(&VM, &storage, &txns, rule)
            .expect("no storage error in the model");
        assert_eq!(result.path, ExecutionPath::Parallel, "{:?}", result.stats);
        assert_eq!(result.outputs, outputs, "{:?}", result.stats);
        assert_eq!(sorted(result.writes), writes, "{:?}", result.stats);
        let stats = result.stats;
        assert!(stats.incarnations >= txns.len() as u64, "{stats:?}");
        if rule == SuffixRule::Never {
            assert!(stats.validations >= txns.len() as u64, "{stats:?}");
            // Every abort is followed by one more incarnation at least.
            assert!(
                stats.incarnations >= txns.len() as u64 + stats.aborts,
                "{stats:?}"
            );
        }
        seen_in_model.record(&stats);
    });
    seen
}

/// Transaction 1 reads the key transaction 0 writes, on the other worker. Either it reads
/// after the write, or it reads storage's value first: then transaction 0's write to a
/// key new to it lowers the validation index, transaction 1's validation fails, its
/// incarnation is aborted and re-executed. The result is the sequential one either way,
/// and some interleaving takes the abort.
#[test]
fn two_workers_read_after_write_aborts_and_re_executes() {
    let txns = vec![txn(1, &[], &[1]), txn(2, &[1], &[2])];
    let seen = check_against_sequential(txns);
    assert!(
        seen.aborts.load(Ordering::Relaxed) > 0,
        "no interleaving aborted transaction 1"
    );
    assert!(
        seen.incarnations.load(Ordering::Relaxed) > 2,
        "no interleaving re-executed transaction 1"
    );
}

/// A chain of three: 0 writes key 1, 1 reads it and writes key 2, 2 reads key 2. When 1
/// read too early and is aborted, its write to key 2 is an ESTIMATE until it runs again,
/// and 2, reading it meanwhile, waits on the dependency (or reads too early itself, and
/// is aborted in turn). Some interleaving takes the abort, and some the dependency.
#[test]
fn two_workers_chain_of_three_with_abort_and_dependency() {
    let txns = vec![txn(1, &[], &[1]), txn(2, &[1], &[2]), txn(3, &[2], &[3])];
    let seen = check_against_sequential(txns);
    assert!(
        seen.aborts.load(Ordering::Relaxed) > 0,
        "no interleaving aborted an incarnation"
    );
    assert!(
        seen.dependency_waits.load(Ordering::Relaxed) > 0,
        "no interleaving met an ESTIMATE"
    );
}

/// Claimed keys beside a conflict: each transaction reads and writes a key exclusive to
/// it and credits a credit-only key, and transaction 1 reads the shared key transaction 0
/// writes. The claimed keys never enter the memory: their writes ride with each
/// transaction's last incarnation (an aborted one's are replaced), and the credits are
/// summed in the final pass (one chunk here: the sums of two workers meet in the caller
/// after they join, which `credit_only_keys_are_summed_exactly` covers with three
/// chunks). Every interleaving gives the sequential outputs and state, and some abort
/// transaction 1.
#[test]
fn two_workers_claimed_keys_beside_a_conflict() {
    let credit = |seed, reads: &[u64], writes: &[u64], amount| MockTxn {
        deltas: vec![(9, amount)],
        ..txn(seed, reads, writes)
    };
    // Seeds whose digests keep the credit (the mock skips some).
    let txns = vec![credit(1, &[4], &[1, 4], 5), credit(2, &[5, 1], &[5], 7)];
    let mut storage = storage();
    storage.values.insert(9, 1_000);
    storage.set_claims(
        [
            (4, KeyClaim::Exclusive(0)),
            (5, KeyClaim::Exclusive(1)),
            (9, KeyClaim::CreditOnly(0)),
        ]
        .into_iter()
        .collect(),
    );
    let expected = SequentialExecutor
        .execute_block(&VM, &storage, &txns)
        .unwrap();
    assert!(expected.writes.contains(&(9, 1_012)), "both credits kept");
    let seen = check_with(storage, txns);
    assert!(
        seen.aborts.load(Ordering::Relaxed) > 0,
        "no interleaving aborted transaction 1"
    );
    // Reads of 4 and 5, writes of 4 and 5, two credits: at least.
    assert!(seen.claimed_accesses.load(Ordering::Relaxed) >= 6);
}

/// The chain of three stopped by the calling thread after its first incarnation, wherever
/// the other worker is then: the kept prefix (the executed transactions, from the first,
/// whose reads still validate once both workers have left) is finished as by the final
/// pass and the rest runs sequentially on top of it. Worker 0 advances the commit index
/// at its looks before the stop (the rule's way to exercise it), and the cut keeps the
/// committed prefix without validating it again. Every interleaving gives the sequential
/// outputs and state; some keep a prefix, some commit, and every one that stopped leaves
/// a suffix.
#[test]
fn two_workers_stopped_after_the_first_incarnation() {
    let txns = vec![txn(1, &[], &[1]), txn(2, &[1], &[2]), txn(3, &[2], &[3])];
    let seen = check_with_rule(storage(), txns, SuffixRule::AfterIncarnations(1));
    assert!(
        seen.sequential_suffix.load(Ordering::Relaxed) > 0,
        "no interleaving stopped the block"
    );
    assert!(
        seen.least_suffix.load(Ordering::Relaxed) < 3,
        "no interleaving kept a prefix"
    );
    assert!(
        seen.committed.load(Ordering::Relaxed) > 0,
        "no interleaving committed before the stop"
    );
}

/// A payment from key 1 (checked, then debited) and another from the same key that the
/// balance covers whether or not the first is seen: the second's check is recorded as a
/// predicate, which the first's debit never falsifies, so no interleaving aborts either
/// (with the balance read as a value, the debit below would invalidate the read).
#[test]
fn two_workers_payments_a_balance_covers_never_abort() {
    let pay = |seed, amount| MockTxn {
        spends: vec![(1, amount)],
        ..txn(seed, &[], &[])
    };
    let txns = vec![pay(1, 30), pay(2, 50)];
    let expected = SequentialExecutor
        .execute_block(&VM, &storage(), &txns)
        .unwrap();
    assert_eq!(expected.writes, vec![(1, 20)]);
    let seen = check_with(storage(), txns);
    assert_eq!(seen.aborts.load(Ordering::Relaxed), 0);
}

/// Three payments from key 1 (100), the third more than the first two leave: its check
/// held on storage's value in interleavings where it ran first, and must then fail
/// validation and run again. Every interleaving gives the sequential result (the third
/// rejected), and some abort it.
#[test]
fn two_workers_a_payment_the_others_leave_uncovered() {
    let pay = |seed, amount| MockTxn {
        spends: vec![(1, amount)],
        ..txn(seed, &[], &[])
    };
    let txns = vec![pay(1, 30), pay(2, 50), pay(3, 30)];
    let expected = SequentialExecutor
        .execute_block(&VM, &storage(), &txns)
        .unwrap();
    assert_eq!(expected.writes, vec![(1, 20)]);
    let seen = check_with(storage(), txns);
    assert!(
        seen.aborts.load(Ordering::Relaxed) > 0,
        "no interleaving aborted the third payment"
    );
}
