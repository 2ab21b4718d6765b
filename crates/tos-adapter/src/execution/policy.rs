//! What a block costs each way on this machine, learned, and the choice it makes.
//!
//! A block of `n` transactions costs `n·s` sequentially, where `s` is the time of one
//! transaction, and `F + n·p` under Block-STM, where `F` is the engine's fixed cost per
//! block (waking the workers, sizing the multi-version memory, the final pass) and `p`
//! its wall time per transaction (the work spread over the cores, plus the bookkeeping,
//! the aborts and the re-executions). So Block-STM pays exactly when
//!
//! ```text
//! F + n·p < n·s
//! ```
//!
//! None of `s`, `p` or `F` is a constant: they are this machine's, at this thread count.
//! `F` comes from a calibration (a synthetic block of independent transfers run both ways
//! at two sizes, once per process and thread count, a few milliseconds: the fit of the two
//! sizes gives `F` and a first `s` and `p`). `s` and `p` then follow the blocks executed
//! (an exponential average over blocks of at least [`LEARN_MIN_TXS`] transactions, the
//! first block measured replacing the calibration's figure): `s` from every block run
//! sequentially, `p` from every block run under Block-STM (but the executor's first, which
//! starts its workers and allocates the engine's memory). Blocks without contract calls
//! and blocks with them are two classes with their own `s` and `p`: a call costs tens of
//! times a transfer. A block with calls measures its own `s` on its probed prefix; the
//! calls' `p` is unknown until such a block ran under Block-STM, and until then the model
//! chooses Block-STM (the probe's estimate of the calls' chains still decides).
//!
//! The calibration's block is small and stays in the caches; a block of thousands of
//! accounts misses them, which makes `s` larger and a second core more useful (at two
//! threads here: `s` 0.4 µs and `p` 0.45 µs for the calibration's transfers, 1.0 µs and
//! 0.67 µs for 10,000 independent ones). So the first block of a class that is large
//! enough to gain at all (`n·s > F`) runs under Block-STM to measure `p`, and the
//! measured figures decide from then on. A model that only ever chose one path would
//! never see the other's cost change (blocks with more work per transaction, a machine
//! less loaded): one block in [`EXPLORE_EVERY`] that is large enough runs on the path the
//! model did not choose, which costs at most `1/EXPLORE_EVERY` of the difference.
//!
//! The choice costs a few multiplications and a comparison: it is made before anything
//! else looks at the block, so that a small block runs sequentially for the price of the
//! sequential run.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Blocks of fewer transactions teach the model nothing: their timings are noise.
pub const LEARN_MIN_TXS: usize = 32;

/// One block in this many, among those the model runs sequentially though they are large
/// enough to gain at some ratio, runs under Block-STM to measure the ratio again.
pub const EXPLORE_EVERY: u32 = 16;

/// The weight of a new block in the averages.
const WEIGHT: f64 = 0.25;

/// A block's class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Transfers, burns, multisig: no contract code.
    Plain = 0,
    /// Holds contract deployments or calls.
    Contracts = 1,
}

/// What the calibration measured (nanoseconds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calibration {
    /// Sequential time per transaction.
    pub sequential_ns: f64,
    /// Block-STM's wall time per transaction.
    pub parallel_ns: f64,
    /// Block-STM's fixed cost per block.
    pub fixed_ns: f64,
}

impl Calibration {
    /// From two sizes `small < large`, each run sequentially and under Block-STM, and a
    /// tiny block under Block-STM: the slopes of the lines through the two sizes, and the
    /// fixed cost as the larger of their intercept and what the tiny block cost beyond its
    /// transactions (the intercept alone is noise's to move: a slope measured a little
    /// high puts it at zero, and a model with no fixed cost would send every block to
    /// Block-STM).
    pub fn fit(
        small: usize,
        large: usize,
        sequential: (Duration, Duration),
        parallel: (Duration, Duration),
        tiny: (usize, Duration),
    ) -> Self {
        let span = large.saturating_sub(small).max(1) as f64;
        let ns = |d: Duration| d.as_secs_f64() * 1e9;
        let slope = |(a, b): (Duration, Duration)| ((ns(b) - ns(a)) / span).max(1.0);
        let parallel_ns = slope(parallel);
        let intercept = ns(parallel.0) - parallel_ns * small as f64;
        let tiny_fixed = ns(tiny.1) - parallel_ns * tiny.0 as f64;
        Self {
            sequential_ns: slope(sequential),
            parallel_ns,
            fixed_ns: intercept.max(tiny_fixed).max(0.0),
        }
    }
}

/// A float kept in an atomic (its bits). Blocks of one executor normally run one after
/// the other; were two to record at once, one of the two updates would be lost, which
/// only delays the learning.
#[derive(Debug)]
struct Learned(AtomicU64);

impl Learned {
    fn new(value: f64) -> Self {
        Self(AtomicU64::new(value.to_bits()))
    }

    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    /// Moves towards `sample` by [`WEIGHT`]; takes it whole while unknown (NaN).
    fn learn(&self, sample: f64) {
        if !sample.is_finite() {
            return;
        }
        let old = self.get();
        self.set(if old.is_nan() {
            sample
        } else {
            old + WEIGHT * (sample - old)
        });
    }
}

/// The path the model chose for a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Sequential execution is expected to be faster.
    Sequential,
    /// Block-STM is expected to be faster (or the block explores it).
    Parallel,
}

/// The learned costs of one executor (shared by its clones).
#[derive(Debug)]
pub struct CostModel {
    /// The calibration: `F`, and `s` and `p` for plain blocks until blocks measured them.
    prior: Calibration,
    /// `s` per class, ns, as measured on blocks (NaN until one ran sequentially).
    sequential_ns: [Learned; 2],
    /// `p` per class, ns, as measured on blocks (NaN until one ran under Block-STM).
    parallel_ns: [Learned; 2],
    /// Blocks large enough to gain since one took the other path, per class.
    since_explored: [AtomicU32; 2],
    /// Whether a block ran under Block-STM on this executor yet: the first one starts the
    /// workers and allocates the engine's memory, and teaches nothing of the blocks after.
    warm: AtomicBool,
}

impl CostModel {
    /// A model starting from `calibration`.
    pub fn new(calibration: Calibration) -> Self {
        Self {
            prior: calibration,
            sequential_ns: [Learned::new(f64::NAN), Learned::new(f64::NAN)],
            parallel_ns: [Learned::new(f64::NAN), Learned::new(f64::NAN)],
            since_explored: [AtomicU32::new(0), AtomicU32::new(0)],
            warm: AtomicBool::new(false),
        }
    }

    /// A measured figure, else the calibration's for plain blocks.
    fn figure(&self, measured: &Learned, class: Class, prior: f64) -> f64 {
        let value = measured.get();
        if value.is_nan() && class == Class::Plain {
            prior
        } else {
            value
        }
    }

    /// The path for `n` transactions of `class`, each expected to cost `per_tx_ns`
    /// sequentially where the caller measured it (a probed prefix), else the class's `s`.
    pub fn choose(&self, class: Class, n: usize, per_tx_ns: Option<f64>) -> Choice {
        let c = class as usize;
        let f = self.prior.fixed_ns;
        let s = per_tx_ns.unwrap_or_else(|| {
            self.figure(&self.sequential_ns[c], class, self.prior.sequential_ns)
        });
        let work = n as f64 * s;
        // Unknown costs: Block-STM, which the caller's other checks (the estimate, the
        // probe) still guard.
        if !work.is_finite() || !f.is_finite() {
            return Choice::Parallel;
        }
        let large = work > f;
        // `p` was never measured: a block large enough to gain at all measures it.
        if self.parallel_ns[c].get().is_nan() && large {
            return Choice::Parallel;
        }
        let p = self.figure(&self.parallel_ns[c], class, self.prior.parallel_ns);
        if !p.is_finite() {
            return Choice::Parallel;
        }
        let predicted = if f + n as f64 * p < work {
            Choice::Parallel
        } else {
            Choice::Sequential
        };
        if large && self.since_explored[c].fetch_add(1, Ordering::Relaxed) + 1 >= EXPLORE_EVERY {
            self.since_explored[c].store(0, Ordering::Relaxed);
            return match predicted {
                Choice::Parallel => Choice::Sequential,
                Choice::Sequential => Choice::Parallel,
            };
        }
        predicted
    }

    /// `n` transactions of `class` ran sequentially in `elapsed`.
    pub fn record_sequential(&self, class: Class, n: usize, elapsed: Duration) {
        if n >= LEARN_MIN_TXS {
            self.sequential_ns[class as usize].learn(elapsed.as_secs_f64() * 1e9 / n as f64);
        }
    }

    /// `n` transactions of `class` ran under Block-STM in `elapsed` (the executor's first
    /// such block is not counted).
    pub fn record_parallel(&self, class: Class, n: usize, elapsed: Duration) {
        if !self.warm.swap(true, Ordering::Relaxed) || n < LEARN_MIN_TXS {
            return;
        }
        let variable = (elapsed.as_secs_f64() * 1e9 - self.prior.fixed_ns).max(0.0);
        self.parallel_ns[class as usize].learn(variable / n as f64);
    }

    /// The current `(s, p)` of `class` as measured on blocks.
    #[cfg(test)]
    pub fn measured(&self, class: Class) -> (f64, f64) {
        let c = class as usize;
        (self.sequential_ns[c].get(), self.parallel_ns[c].get())
    }
}

/// The calibration of each thread count, measured once per process by `measure`.
pub fn calibration(threads: usize, measure: impl FnOnce() -> Calibration) -> Calibration {
    static MEASURED: Mutex<Vec<(usize, Calibration)>> = Mutex::new(Vec::new());
    // A poisoned lock (a panic while measuring) only loses earlier measurements.
    let mut measured = MEASURED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, c)) = measured.iter().find(|(t, _)| *t == threads) {
        return *c;
    }
    let c = measure();
    measured.push((threads, c));
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    fn model(s: f64, p: f64, f: f64) -> CostModel {
        CostModel::new(Calibration {
            sequential_ns: s,
            parallel_ns: p,
            fixed_ns: f,
        })
    }

    #[test]
    fn the_fit_finds_the_fixed_cost_and_the_slopes() {
        // Sequential 0.5 µs a transaction; Block-STM 20 µs plus 0.25 µs a transaction.
        let c = Calibration::fit(100, 1100, (us(50), us(550)), (us(45), us(295)), (8, us(22)));
        assert!((c.sequential_ns - 500.0).abs() < 1e-6);
        assert!((c.parallel_ns - 250.0).abs() < 1e-6);
        assert!((c.fixed_ns - 20_000.0).abs() < 1e-6);
        // A slope measured high puts the intercept below zero: the tiny block's cost holds.
        let c = Calibration::fit(100, 1100, (us(50), us(550)), (us(20), us(320)), (8, us(22)));
        assert!((c.fixed_ns - 19_600.0).abs() < 1e-6, "{}", c.fixed_ns);
    }

    #[test]
    fn small_blocks_run_sequentially_large_ones_measure_and_follow_the_costs() {
        let model = model(500.0, 250.0, 20_000.0);
        // Too small to gain at any p (0.5 µs · 30 < 20 µs), or by the calibration's p
        // (20 + 0.25 · 60 > 0.5 · 60): sequential.
        assert_eq!(model.choose(Class::Plain, 30, None), Choice::Sequential);
        // Large enough to gain at some p: measures it (the first block, cold, is not
        // counted; the second measures p = 0.25 µs).
        assert_eq!(model.choose(Class::Plain, 60, None), Choice::Parallel);
        model.record_parallel(Class::Plain, 200, us(1_000));
        assert!(model.measured(Class::Plain).1.is_nan());
        model.record_parallel(Class::Plain, 200, us(20 + 50));
        assert!((model.measured(Class::Plain).1 - 250.0).abs() < 1e-6);
        assert_eq!(model.choose(Class::Plain, 60, None), Choice::Sequential);
        assert_eq!(model.choose(Class::Plain, 200, None), Choice::Parallel);
        // Blocks larger than the calibration's miss the caches: s measured at 1 µs, p at
        // 0.6 µs: Block-STM pays from 50 transactions.
        model.record_sequential(Class::Plain, 1000, us(1000));
        for _ in 0..40 {
            model.record_parallel(Class::Plain, 1000, us(20 + 600));
        }
        assert_eq!(model.choose(Class::Plain, 40, None), Choice::Sequential);
        assert_eq!(model.choose(Class::Plain, 60, None), Choice::Parallel);
        // Tiny blocks teach nothing.
        model.record_sequential(Class::Plain, 4, us(1000));
        assert!((model.measured(Class::Plain).0 - 1000.0).abs() < 1e-6);
    }

    #[test]
    fn when_block_stm_costs_more_it_runs_sequentially_but_explores() {
        let model = model(500.0, 700.0, 20_000.0);
        model.record_parallel(Class::Plain, 1000, us(1_000));
        model.record_parallel(Class::Plain, 1000, us(20 + 700));
        let choices: Vec<Choice> = (0..2 * EXPLORE_EVERY)
            .map(|_| model.choose(Class::Plain, 1000, None))
            .collect();
        let parallel = choices.iter().filter(|c| **c == Choice::Parallel).count();
        assert_eq!(parallel, 2);
        // Too small to gain at any p: never explored.
        assert!((0..100).all(|_| model.choose(Class::Plain, 10, None) == Choice::Sequential));
    }

    #[test]
    fn blocks_of_calls_have_their_own_costs() {
        let model = model(500.0, 250.0, 20_000.0);
        model.record_parallel(Class::Plain, 1000, us(1_000));
        // Unknown p for calls: Block-STM.
        assert_eq!(
            model.choose(Class::Contracts, 2, Some(5_000.0)),
            Choice::Parallel
        );
        model.record_sequential(Class::Contracts, 100, us(500));
        assert!((model.measured(Class::Contracts).0 - 5_000.0).abs() < 1e-6);
        // Calls under Block-STM at 4 µs each: pays from 20 µs / 1 µs = 20 calls.
        model.record_parallel(Class::Contracts, 100, us(20 + 400));
        assert_eq!(
            model.choose(Class::Contracts, 15, Some(5_000.0)),
            Choice::Sequential
        );
        assert_eq!(
            model.choose(Class::Contracts, 30, Some(5_000.0)),
            Choice::Parallel
        );
        // The plain class's figures did not move.
        assert!(model.measured(Class::Plain).0.is_nan());
    }
}
