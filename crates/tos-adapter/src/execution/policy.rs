//! What a block costs each way on this machine, learned, and the choice it makes.
//!
//! A block of `n` transactions costs `n·s` sequentially, where `s` is the time of one
//! transaction; under Block-STM it costs `F + n·s·r`, where `F` is the engine's fixed cost
//! per block (waking the workers, sizing the multi-version memory, the final pass) and `r`
//! the wall time Block-STM spends per unit of sequential work (below 1 when the cores gain
//! more than the bookkeeping, the aborts and the re-executions cost). So Block-STM pays
//! exactly when
//!
//! ```text
//! n·s·(1 − r) > F
//! ```
//!
//! None of `s`, `r` or `F` is a constant: they are this machine's, at this thread count.
//! They start from a calibration (a synthetic block of independent transfers run both
//! ways at two sizes, once per process and thread count, a few milliseconds; the fit of
//! the two sizes gives `F` and the per-transaction costs) and then follow the blocks
//! executed (an exponential average over blocks of at least [`LEARN_MIN_TXS`]
//! transactions): `s` from every block run sequentially, `r` from every block run under
//! Block-STM, against the `s` of its class. Blocks without contract calls and blocks with
//! them are two classes: a contract call costs tens of times a transfer, so the two have
//! their own `s` and `r`. A block with calls measures its own `s` on its probed prefix;
//! the calls' `r` is unknown until one such block ran under Block-STM, and until then
//! the model chooses Block-STM (the probe's estimate of the calls' chains still decides).
//!
//! A model that only ever chooses the sequential path would never see `r` fall (blocks
//! with more work per transaction, a machine less loaded): one block in
//! [`EXPLORE_EVERY`] that is large enough to gain at some `r` (`n·s > F`) runs under
//! Block-STM anyway, which costs at most `(r − 1)/EXPLORE_EVERY` on average.
//!
//! The choice costs two multiplications and a comparison: it is made before anything
//! else looks at the block, so that a small block runs sequentially for the price of the
//! sequential run.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
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
    /// From two sizes `small < large`, each run sequentially and under Block-STM: the
    /// lines through them (a fixed cost below zero, a measurement's noise, counts as 0).
    pub fn fit(
        small: usize,
        large: usize,
        sequential: (Duration, Duration),
        parallel: (Duration, Duration),
    ) -> Self {
        let span = large.saturating_sub(small).max(1) as f64;
        let ns = |d: Duration| d.as_secs_f64() * 1e9;
        let slope = |(a, b): (Duration, Duration)| ((ns(b) - ns(a)) / span).max(1.0);
        let parallel_ns = slope(parallel);
        Self {
            sequential_ns: slope(sequential),
            parallel_ns,
            fixed_ns: (ns(parallel.0) - parallel_ns * small as f64).max(0.0),
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
    /// `s` per class, ns (NaN until known).
    sequential_ns: [Learned; 2],
    /// `r` per class.
    ratio: [Learned; 2],
    /// `F`, ns.
    fixed_ns: Learned,
    /// Blocks large enough to gain that ran sequentially since one explored, per class.
    skipped: [AtomicU32; 2],
}

impl CostModel {
    /// A model starting from `calibration`.
    pub fn new(calibration: Calibration) -> Self {
        let ratio = calibration.parallel_ns / calibration.sequential_ns;
        Self {
            sequential_ns: [
                Learned::new(calibration.sequential_ns),
                Learned::new(f64::NAN),
            ],
            // A contract call does tens of times a transfer's work for about the same
            // bookkeeping: its ratio is its own, unknown until a block of calls runs
            // under Block-STM (until then the probe's estimate alone decides).
            ratio: [Learned::new(ratio), Learned::new(f64::NAN)],
            fixed_ns: Learned::new(calibration.fixed_ns),
            skipped: [AtomicU32::new(0), AtomicU32::new(0)],
        }
    }

    /// The path for `n` transactions of `class`, each expected to cost `per_tx_ns`
    /// sequentially where the caller measured it (a probed prefix), else the class's `s`.
    pub fn choose(&self, class: Class, n: usize, per_tx_ns: Option<f64>) -> Choice {
        let c = class as usize;
        let s = per_tx_ns.unwrap_or_else(|| self.sequential_ns[c].get());
        let (r, f) = (self.ratio[c].get(), self.fixed_ns.get());
        let work = n as f64 * s;
        // Unknown costs (a class never run yet): Block-STM, which the caller's other
        // checks (the estimate, the probe) still guard.
        if !(work.is_finite() && r.is_finite()) {
            return Choice::Parallel;
        }
        if work * (1.0 - r) > f {
            return Choice::Parallel;
        }
        if work > f && self.skipped[c].fetch_add(1, Ordering::Relaxed) + 1 >= EXPLORE_EVERY {
            self.skipped[c].store(0, Ordering::Relaxed);
            return Choice::Parallel;
        }
        Choice::Sequential
    }

    /// `n` transactions of `class` ran sequentially in `elapsed`.
    pub fn record_sequential(&self, class: Class, n: usize, elapsed: Duration) {
        if n >= LEARN_MIN_TXS {
            self.sequential_ns[class as usize].learn(elapsed.as_secs_f64() * 1e9 / n as f64);
        }
    }

    /// `n` transactions of `class` ran under Block-STM in `elapsed`.
    pub fn record_parallel(&self, class: Class, n: usize, elapsed: Duration) {
        let c = class as usize;
        let s = self.sequential_ns[c].get();
        if n >= LEARN_MIN_TXS && s.is_finite() && s > 0.0 {
            let variable = (elapsed.as_secs_f64() * 1e9 - self.fixed_ns.get()).max(0.0);
            self.ratio[c].learn(variable / (n as f64 * s));
        }
    }

    /// The current `(s, r)` of `class` and `F`.
    #[cfg(test)]
    pub fn costs(&self, class: Class) -> (f64, f64, f64) {
        let c = class as usize;
        (
            self.sequential_ns[c].get(),
            self.ratio[c].get(),
            self.fixed_ns.get(),
        )
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

    #[test]
    fn the_fit_finds_the_fixed_cost_and_the_slopes() {
        // Sequential 0.5 µs a transaction; Block-STM 20 µs plus 0.25 µs a transaction.
        let c = Calibration::fit(100, 1100, (us(50), us(550)), (us(45), us(295)));
        assert!((c.sequential_ns - 500.0).abs() < 1e-6);
        assert!((c.parallel_ns - 250.0).abs() < 1e-6);
        assert!((c.fixed_ns - 20_000.0).abs() < 1e-6);
    }

    #[test]
    fn small_blocks_run_sequentially_large_ones_in_parallel() {
        let model = CostModel::new(Calibration {
            sequential_ns: 500.0,
            parallel_ns: 250.0,
            fixed_ns: 20_000.0,
        });
        // 0.5 µs · n · (1 − 0.5) > 20 µs from n = 80 on.
        assert_eq!(model.choose(Class::Plain, 50, None), Choice::Sequential);
        assert_eq!(model.choose(Class::Plain, 200, None), Choice::Parallel);
        // A block of calls runs under Block-STM until the calls' ratio is known.
        assert_eq!(
            model.choose(Class::Contracts, 20, Some(5_000.0)),
            Choice::Parallel
        );
        model.record_sequential(Class::Contracts, 100, us(500));
        model.record_parallel(Class::Contracts, 100, us(20 + 400));
        assert!((model.costs(Class::Contracts).1 - 0.8).abs() < 1e-6);
        // 5 µs · 20 · 0.2 = 20 µs: not above F.
        assert_eq!(
            model.choose(Class::Contracts, 20, Some(5_000.0)),
            Choice::Sequential
        );
        assert_eq!(
            model.choose(Class::Contracts, 100, Some(5_000.0)),
            Choice::Parallel
        );
    }

    #[test]
    fn a_ratio_above_one_runs_sequentially_but_explores() {
        let model = CostModel::new(Calibration {
            sequential_ns: 500.0,
            parallel_ns: 700.0,
            fixed_ns: 20_000.0,
        });
        let choices: Vec<Choice> = (0..2 * EXPLORE_EVERY)
            .map(|_| model.choose(Class::Plain, 1000, None))
            .collect();
        let parallel = choices.iter().filter(|c| **c == Choice::Parallel).count();
        assert_eq!(parallel, 2);
        // Too small to gain at any ratio: never explored.
        assert!((0..100).all(|_| model.choose(Class::Plain, 10, None) == Choice::Sequential));
    }

    #[test]
    fn the_model_learns_from_blocks() {
        let model = CostModel::new(Calibration {
            sequential_ns: 500.0,
            parallel_ns: 700.0,
            fixed_ns: 0.0,
        });
        // Blocks under Block-STM at a quarter of their sequential time: r falls to 0.25.
        for _ in 0..40 {
            model.record_parallel(Class::Plain, 1000, us(125));
        }
        let (_, r, _) = model.costs(Class::Plain);
        assert!((r - 0.25).abs() < 0.01, "{r}");
        assert_eq!(model.choose(Class::Plain, 1000, None), Choice::Parallel);
        // Tiny blocks teach nothing.
        model.record_sequential(Class::Plain, 4, us(1000));
        assert_eq!(model.costs(Class::Plain).0, 500.0);
        // The contract class is unknown until a block of it runs sequentially.
        assert!(model.costs(Class::Contracts).0.is_nan());
        model.record_sequential(Class::Contracts, 100, us(500));
        assert!((model.costs(Class::Contracts).0 - 5_000.0).abs() < 1e-6);
    }
}
