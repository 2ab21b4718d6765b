//! The sequential suffix: when Block-STM stops paying partway through a block, the
//! workers stop, the prefix of transactions that are executed and valid is kept, and the
//! sequential executor runs the rest on top of it.
//!
//! # When ([`SuffixRule`])
//!
//! Worker 0 (the calling thread) watches the block against the rule the caller gave:
//! with [`SuffixRule::SlowerThanSequential`], every [`CHECK_EVERY`] of its own tasks
//! once a quarter of the block's expected sequential time `S` has passed, it compares how
//! far the scheduler's indices reached ([`Scheduler::progress`], an estimate of the
//! prefix that is done) with how far sequential execution would be by now. Well behind
//! it (below [`BEHIND_SHARE`] of it), speculation is not paying (aborts, waiting, or the
//! engine's own cost on cheap transactions), and the block stops. Behind it at all,
//! worker 0 first advances the finality index ([`Scheduler::try_commit`]: the prefix of
//! transactions that are final, their read sets released), so that a stop keeps that
//! prefix without validating it again; a block that keeps up with sequential execution
//! pays nothing for it. (A block behind that recovers has validated its committed
//! prefix twice; the sweep before a stop runs while the other workers go on, so part of
//! the cut's cost falls before the stop.) Under [`SuffixRule::AfterIncarnations`], a
//! rule for tests, worker 0 commits at every look until its count.
//!
//! What that bounds: a block stopped at time `t` with a prefix `f` done costs
//! `t + (1 - f)·S` plus the cut. Stopped at the first look (`t = S/4`), that is at most
//! `S + S/4`; a block that is ahead of the bar at every look until late is stopped with
//! `f ≥ BEHIND_SHARE·t/S` (near enough: the bar moves little between two looks), which
//! gives at most `S + (1 - BEHIND_SHARE)·t ≤ S/BEHIND_SHARE`, a ninth more, and so does a
//! block never stopped. The cut itself (revalidating the prefix and finishing it on one
//! thread) comes on top, and is largest for a late stop. The bound holds as far as the estimate
//! does (a prefix that fails its revalidation is shorter than the indices said) and as
//! often as worker 0 looks: it looks between its own tasks, so a single very long
//! transaction, or a worker 0 with nothing to do, delays the look.
//!
//! # The cut (why the kept prefix is exact)
//!
//! Once every worker has left (nothing runs concurrently any more), the calling thread
//! finds the prefix `0..k`: the committed transactions (final, see the scheduler's
//! commit index), then, from there, those whose last incarnation is
//! [executed](Scheduler::executed) and whose read set [validates](MVMemory::validate_read_set)
//! against the memory as it now stands. It does not trust the scheduler's other indices
//! (a stop drops the tasks in the workers' hands, follow-up validations included). By
//! induction on `i < k` (for the committed prefix, the scheduler's proof is the same): the transactions below `i` executed as sequentially, so their writes in the
//! memory are the sequential ones; `i` read, at every key, the version those writes give
//! it now (its validation), so it read what sequential execution gives it and, the VM
//! being deterministic, produced the same output and writes. A claimed key is checked at
//! each access as in the whole-block path (the crate's invariant 4).
//!
//! Every transaction from `k` on is then [discarded](MVMemory::discard_txn) from the
//! memory, whose remaining writes are the prefix's: its final writes and outputs are
//! taken as the final pass takes them. The suffix runs on the sequential executor over an
//! [`Overlay`] of those writes on storage, and the block's writes are the prefix's, less
//! the keys the suffix wrote again, then the suffix's.
//!
//! [`Scheduler::progress`]: scheduler::Scheduler::progress
//! [`Scheduler::try_commit`]: scheduler::Scheduler::try_commit
//! [`Scheduler::executed`]: scheduler::Scheduler::executed
//! [`MVMemory::validate_read_set`]: mvmemory::MVMemory::validate_read_set
//! [`MVMemory::discard_txn`]: mvmemory::MVMemory::discard_txn

use crate::output::BlockStats;
use crate::vm::Storage;
use mvmemory::FxBuildHasher;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Tasks worker 0 runs between two looks at the clock under
/// [`SuffixRule::SlowerThanSequential`] (a clock read costs ~25 ns; a task ~0.3 µs and
/// up).
pub const CHECK_EVERY: u64 = 16;

/// The share of the expected sequential time that passes before the rule judges the
/// block (its start wakes workers, warms caches and loads contract modules): a quarter.
const GRACE_DIVISOR: u32 = 4;

/// How far behind sequential execution a block must be to stop: its progress below nine
/// tenths of where sequential execution would be (so a block that never falls that far
/// behind costs at most a ninth more than sequential execution). A block's start is
/// slower than its run (waking workers, cold caches, each worker loading contract
/// modules: measured on `token:1000`, its first eighth ran at about sequential speed, the
/// whole block at 1.2-1.4x), hence the grace of a quarter and the margin; with them, no
/// block of `independent`, `mixed`, `hot-receiver:100` or `token:1000` stopped in eight
/// processes of `bench --threads 2`, while a chain (0.1-0.3x) and shared-key transfers
/// (0.2-0.8x) do.
const BEHIND_SHARE: f64 = 0.9;

/// When Block-STM stops a block and lets the sequential executor finish it (see the
/// module documentation of the executor's suffix).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SuffixRule {
    /// Never: the block runs under Block-STM to its end.
    #[default]
    Never,
    /// When the block falls behind sequential execution: the duration is the time the
    /// caller expects the sequential executor to take on the whole block (measured on
    /// earlier blocks). Judged from a quarter of it on.
    SlowerThanSequential(Duration),
    /// Once the calling thread has executed this many incarnations: a cut at a chosen
    /// point, for tests and experiments.
    AfterIncarnations(u64),
}

/// Worker 0's watch over the rule while the block runs.
pub(crate) struct Watch {
    rule: SuffixRule,
    start: Instant,
    /// The calling thread's task count at which it looks at the clock next.
    next_check: u64,
}

impl Watch {
    /// A watch for a block that started at `start`; `None` for [`SuffixRule::Never`].
    pub(crate) fn new(rule: SuffixRule, start: Instant) -> Option<Self> {
        (rule != SuffixRule::Never).then_some(Self {
            rule,
            start,
            next_check: CHECK_EVERY,
        })
    }

    /// What worker 0 should do now, given its counters and the scheduler's
    /// [progress](scheduler::Scheduler::progress) (read only when the rule needs it) in a
    /// block of `num_txns` transactions: go on, advance the commit index (the block is
    /// behind sequential execution, so a stop may come: the prefix committed now is one
    /// the cut keeps without validating it again), or stop (after committing too).
    #[inline]
    pub(crate) fn look(
        &mut self,
        stats: &BlockStats,
        num_txns: usize,
        progress: impl FnOnce() -> usize,
    ) -> Look {
        match self.rule {
            SuffixRule::Never => Look::Ahead,
            SuffixRule::AfterIncarnations(limit) if stats.incarnations >= limit => Look::Stop,
            SuffixRule::AfterIncarnations(_) => Look::Behind,
            SuffixRule::SlowerThanSequential(expected) => {
                let tasks = stats.incarnations + stats.validations;
                if tasks < self.next_check {
                    return Look::Ahead;
                }
                self.next_check = tasks + CHECK_EVERY;
                let elapsed = self.start.elapsed();
                if elapsed < expected / GRACE_DIVISOR {
                    return Look::Ahead;
                }
                // Where sequential execution would be by now.
                let sequential = num_txns as f64 * elapsed.as_secs_f64()
                    / expected.as_secs_f64().max(f64::MIN_POSITIVE);
                let progress = progress() as f64;
                if progress >= sequential {
                    return Look::Ahead;
                }
                if progress >= sequential * BEHIND_SHARE {
                    return Look::Behind;
                }
                tracing::debug!(
                    progress,
                    sequential = sequential as u64,
                    elapsed_us = elapsed.as_micros() as u64,
                    expected_us = expected.as_micros() as u64,
                    "Block-STM fell behind sequential execution: stopping the block"
                );
                Look::Stop
            }
        }
    }
}

/// What worker 0's [look](Watch::look) found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Look {
    /// At or ahead of sequential execution (or not judged yet): go on.
    Ahead,
    /// Behind sequential execution, but not far: advance the commit index, go on.
    Behind,
    /// Far behind: advance the commit index, then stop the block.
    Stop,
}

/// Storage's state with the kept prefix's final writes on top: what the suffix reads.
pub(crate) struct Overlay<'a, S, K, V> {
    below: &'a S,
    writes: &'a [(K, V)],
    /// Each written key's position in `writes`.
    index: HashMap<&'a K, usize, FxBuildHasher>,
}

impl<'a, S, K: Eq + Hash, V> Overlay<'a, S, K, V> {
    /// `writes` (each key once) over `below`.
    pub(crate) fn new(below: &'a S, writes: &'a [(K, V)]) -> Self {
        let mut index = HashMap::with_capacity_and_hasher(writes.len(), FxBuildHasher::default());
        for (position, (key, _)) in writes.iter().enumerate() {
            index.insert(key, position);
        }
        Self {
            below,
            writes,
            index,
        }
    }

    /// Which of the overlay's writes `keys` write again, as a mask over them.
    pub(crate) fn replaced<'k>(&self, keys: impl Iterator<Item = &'k K>) -> Vec<bool>
    where
        K: 'k,
    {
        let mut mask = vec![false; self.writes.len()];
        for key in keys {
            if let Some(replaced) = self.index.get(key).and_then(|&p| mask.get_mut(p)) {
                *replaced = true;
            }
        }
        mask
    }
}

impl<S, K, V> Storage for Overlay<'_, S, K, V>
where
    S: Storage<Key = K, Value = V>,
    K: Eq + Hash + Sync,
    V: Clone + Sync,
{
    type Key = K;
    type Value = V;
    type Error = S::Error;

    fn get(&self, key: &K) -> Result<Option<V>, S::Error> {
        match self.index.get(key) {
            Some(&position) => Ok(self.writes.get(position).map(|(_, value)| value.clone())),
            None => self.below.get(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(incarnations: u64, validations: u64) -> BlockStats {
        BlockStats {
            incarnations,
            validations,
            ..BlockStats::default()
        }
    }

    #[test]
    fn never_has_no_watch_and_a_count_stops_at_its_count() {
        assert!(Watch::new(SuffixRule::Never, Instant::now()).is_none());
        let mut watch = Watch::new(SuffixRule::AfterIncarnations(3), Instant::now()).unwrap();
        // Before its count it commits at every look (the tests' way to exercise it).
        assert_eq!(watch.look(&stats(2, 9), 10, || 0), Look::Behind);
        assert_eq!(watch.look(&stats(3, 0), 10, || 0), Look::Stop);
    }

    #[test]
    fn behind_sequential_commits_far_behind_stops_ahead_goes_on() {
        let long_ago = Instant::now() - Duration::from_secs(10);
        // Expected 40 s sequentially, 10 s gone: sequential would be a quarter of the way
        // (a little more as the clock moves on: 24 counts as behind only after 10.6 s).
        let rule = SuffixRule::SlowerThanSequential(Duration::from_secs(40));
        let mut watch = Watch::new(rule, long_ago).unwrap();
        // Not before `CHECK_EVERY` tasks.
        assert_eq!(
            watch.look(&stats(CHECK_EVERY - 1, 0), 100, || 0),
            Look::Ahead
        );
        assert_eq!(watch.look(&stats(CHECK_EVERY, 0), 100, || 100), Look::Ahead);
        // The next look is `CHECK_EVERY` tasks later.
        assert_eq!(
            watch.look(&stats(CHECK_EVERY + 1, 0), 100, || 0),
            Look::Ahead
        );
        // A little behind: a slow start, not a reason to stop, but to commit.
        assert_eq!(
            watch.look(&stats(2 * CHECK_EVERY, 0), 100, || 24),
            Look::Behind
        );
        // Well behind.
        assert_eq!(
            watch.look(&stats(3 * CHECK_EVERY, 0), 100, || 10),
            Look::Stop
        );
        // Within the first quarter of the expected time, never.
        let rule = SuffixRule::SlowerThanSequential(Duration::from_secs(3600));
        let mut watch = Watch::new(rule, long_ago).unwrap();
        assert_eq!(watch.look(&stats(CHECK_EVERY, 0), 100, || 0), Look::Ahead);
    }

    #[test]
    fn the_overlay_reads_its_writes_over_storage_and_names_the_replaced_ones() {
        use crate::mock::MockStorage;
        let below = MockStorage {
            values: [(1, 10), (2, 20)].into_iter().collect(),
            ..MockStorage::default()
        };
        let writes = [(2u64, 21u64), (3, 31)];
        let overlay = Overlay::new(&below, &writes);
        assert_eq!(overlay.get(&1), Ok(Some(10)));
        assert_eq!(overlay.get(&2), Ok(Some(21)));
        assert_eq!(overlay.get(&3), Ok(Some(31)));
        assert_eq!(overlay.get(&4), Ok(None));
        assert_eq!(overlay.replaced([3, 5].iter()), vec![false, true]);
    }
}
