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
//! (the median of the last [`WINDOW`] blocks of at least [`LEARN_MIN_TXS`] transactions,
//! the first block measured replacing the calibration's figure): `s` from every block run
//! sequentially, `p` from every block run under Block-STM (but the executor's first
//! [`WARM_UP_BLOCKS`], which start its workers and fault in the memory the engine and the
//! allocator need). Blocks are in three classes with
//! their own `s` and `p`: with contract calls (a call costs tens of times a transfer);
//! without, most of their keys claimed (exclusive to a transaction or only credited, kept
//! out of the multi-version memory: Block-STM's cost per transaction is a fraction of
//! what it is otherwise); and the rest, whose keys go through the memory. A block with calls measures its own `s` on its probed prefix; the
//! calls' `p` is unknown until such a block ran under Block-STM, and until then the model
//! chooses Block-STM (the probe's estimate of the calls' chains still decides).
//!
//! The calibration's block is small and stays in the caches; a block of thousands of
//! accounts misses them, which makes `s` larger and a second core more useful (at two
//! threads here: `s` 0.4 µs and `p` 0.45 µs for the calibration's transfers, 1.0 µs and
//! 0.67 µs for 10,000 independent ones). So the first block of a class that is large
//! enough to gain at all (`n·s > F`) runs under Block-STM to measure `p`, the next one
//! sequentially to measure `s`, and the measured figures decide from then on. A model that only ever chose one path would
//! never see the other's cost change (blocks with more work per transaction, a machine
//! less loaded): one block in [`EXPLORE_EVERY`] that is large enough runs on the path the
//! model did not choose, which costs at most `1/EXPLORE_EVERY` of the difference.
//!
//! The choice costs a few multiplications and a comparison: it is made before anything
//! else looks at the block, so that a small block runs sequentially for the price of the
//! sequential run.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Blocks of fewer transactions teach the model nothing: their timings are noise.
pub const LEARN_MIN_TXS: usize = 32;

/// One block in this many, among those the model runs sequentially though they are large
/// enough to gain at some ratio, runs under Block-STM to measure the ratio again.
pub const EXPLORE_EVERY: u32 = 16;

/// Blocks under Block-STM an executor runs before their timings count.
const WARM_UP_BLOCKS: u32 = 2;

/// The blocks whose median is a learned cost.
const WINDOW: usize = 8;

/// A block's class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Transfers, burns, multisig: no contract code, most keys shared between
    /// transactions (they go through the multi-version memory).
    Plain = 0,
    /// Holds contract deployments or calls.
    Contracts = 1,
    /// No contract code, and most keys claimed ([`executor::KeyClaim`]): exclusive to one
    /// transaction or only credited. Block-STM keeps them out of its memory, so a
    /// transaction costs it far less than in a [`Plain`](Class::Plain) block.
    Claimed = 2,
}

/// The number of classes.
const CLASSES: usize = 3;

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

/// A cost as the last [`WINDOW`] blocks measured it: their median. Timings on a shared
/// machine are noisy, mostly upwards (an interrupted worker delays the whole block); a
/// median shrugs off a slow block, or a first one run on cold caches, where an average
/// would carry it for many blocks, and it follows a real change within half a window.
#[derive(Debug, Default)]
struct Learned(Mutex<Window>);

/// The last samples, oldest overwritten first.
#[derive(Debug, Default)]
struct Window {
    samples: [f64; WINDOW],
    len: usize,
    next: usize,
}

impl Learned {
    /// The median of the samples; NaN while there is none.
    fn get(&self) -> f64 {
        let window = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut sorted = window.samples;
        let sorted = &mut sorted[..window.len];
        sorted.sort_unstable_by(f64::total_cmp);
        match sorted.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }

    /// Adds `sample` (a non-finite one is ignored).
    fn learn(&self, sample: f64) {
        if !sample.is_finite() {
            return;
        }
        let mut window = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let next = window.next;
        window.samples[next] = sample;
        window.next = (next + 1) % WINDOW;
        window.len = (window.len + 1).min(WINDOW);
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
    sequential_ns: [Learned; CLASSES],
    /// `p` per class, ns, as measured on blocks (NaN until one ran under Block-STM).
    parallel_ns: [Learned; CLASSES],
    /// Blocks large enough to gain since one took the other path, per class.
    since_explored: [AtomicU32; CLASSES],
    /// Blocks run under Block-STM on this executor so far, up to [`WARM_UP_BLOCKS`]: the
    /// first starts the workers and sizes the engine's memory, the first two fault in the
    /// pages of the allocator's heap for their outputs (measured here: ~2,000 page faults,
    /// 2 ms, on the second block of 10,000 transactions); they teach nothing of the blocks
    /// after.
    warm_up: AtomicU32,
}

impl CostModel {
    /// A model starting from `calibration`.
    pub fn new(calibration: Calibration) -> Self {
        Self {
            prior: calibration,
            sequential_ns: Default::default(),
            parallel_ns: Default::default(),
            since_explored: std::array::from_fn(|_| AtomicU32::new(0)),
            warm_up: AtomicU32::new(0),
        }
    }

    /// A measured figure, else the calibration's for blocks without contract code.
    fn figure(&self, measured: &Learned, class: Class, prior: f64) -> f64 {
        let value = measured.get();
        if value.is_nan() && class != Class::Contracts {
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
        // Nor `s` (the calibration's small block stays in the caches, and its figure is
        // noise's to move): the next such block measures it. A block with calls measures
        // its own on its probed prefix.
        if per_tx_ns.is_none() && self.sequential_ns[c].get().is_nan() && large {
            return Choice::Sequential;
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

    /// How long `n` transactions of `class` are expected to take sequentially, at
    /// `per_tx_ns` each where the caller measured it, else at the class's measured `s`;
    /// `None` while neither is known (the calibration's figure is not trusted for this:
    /// a block's sequential suffix is judged against it).
    pub fn expected_sequential(
        &self,
        class: Class,
        n: usize,
        per_tx_ns: Option<f64>,
    ) -> Option<Duration> {
        let s = per_tx_ns.unwrap_or_else(|| self.sequential_ns[class as usize].get());
        let ns = s * n as f64;
        (ns.is_finite() && ns > 0.0).then(|| Duration::from_nanos(ns as u64))
    }

    /// `n` transactions of `class` ran sequentially in `elapsed`.
    pub fn record_sequential(&self, class: Class, n: usize, elapsed: Duration) {
        if n >= LEARN_MIN_TXS {
            self.sequential_ns[class as usize].learn(elapsed.as_secs_f64() * 1e9 / n as f64);
        }
    }

    /// `n` transactions of `class` ran under Block-STM in `elapsed` (the executor's first
    /// [`WARM_UP_BLOCKS`] such blocks are not counted).
    pub fn record_parallel(&self, class: Class, n: usize, elapsed: Duration) {
        if n < LEARN_MIN_TXS {
            return;
        }
        let warming = self
            .warm_up
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |done| {
                (done < WARM_UP_BLOCKS).then_some(done + 1)
            })
            .is_ok();
        if warming {
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

    /// The executor's first blocks under Block-STM, which teach nothing.
    fn warm_up(model: &CostModel, class: Class, n: usize) {
        for _ in 0..WARM_UP_BLOCKS {
            model.record_parallel(class, n, us(1_000_000));
        }
        assert!(model.measured(class).1.is_nan());
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
        // Large enough to gain at some p: measures it (the first blocks, cold, are not
        // counted; the next measures p = 0.25 µs).
        assert_eq!(model.choose(Class::Plain, 60, None), Choice::Parallel);
        warm_up(&model, Class::Plain, 200);
        model.record_parallel(Class::Plain, 200, us(20 + 50));
        assert!((model.measured(Class::Plain).1 - 250.0).abs() < 1e-6);
        // Then s, on the next block large enough (the calibration's is a guess).
        assert_eq!(model.choose(Class::Plain, 200, None), Choice::Sequential);
        model.record_sequential(Class::Plain, 200, us(100));
        assert_eq!(model.choose(Class::Plain, 60, None), Choice::Sequential);
        assert_eq!(model.choose(Class::Plain, 200, None), Choice::Parallel);
        // Blocks larger than the calibration's miss the caches: s measured at 1 µs, p at
        // 0.6 µs: Block-STM pays from 50 transactions.
        for _ in 0..WINDOW {
            model.record_sequential(Class::Plain, 1000, us(1000));
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
        warm_up(&model, Class::Plain, 1000);
        model.record_parallel(Class::Plain, 1000, us(20 + 700));
        model.record_sequential(Class::Plain, 1000, us(500));
        let choices: Vec<Choice> = (0..2 * EXPLORE_EVERY)
            .map(|_| model.choose(Class::Plain, 1000, None))
            .collect();
        let parallel = choices.iter().filter(|c| **c == Choice::Parallel).count();
        assert_eq!(parallel, 2);
        // Too small to gain at any p: never explored.
        assert!((0..100).all(|_| model.choose(Class::Plain, 10, None) == Choice::Sequential));
    }

    #[test]
    fn the_expected_sequential_time_is_measured_never_the_calibrations() {
        let model = model(300.0, 200.0, 10_000.0);
        assert_eq!(model.expected_sequential(Class::Plain, 1000, None), None);
        assert_eq!(
            model.expected_sequential(Class::Plain, 1000, Some(500.0)),
            Some(us(500))
        );
        model.record_sequential(Class::Plain, 1000, us(400));
        assert_eq!(
            model.expected_sequential(Class::Plain, 2000, None),
            Some(us(800))
        );
        assert_eq!(model.expected_sequential(Class::Claimed, 2000, None), None);
    }

    #[test]
    fn blocks_of_calls_have_their_own_costs() {
        let model = model(500.0, 250.0, 20_000.0);
        warm_up(&model, Class::Plain, 1000);
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
        // The plain class's figures did not move, nor the claimed class's.
        assert!(model.measured(Class::Plain).0.is_nan());
        assert!(model.measured(Class::Claimed).1.is_nan());
    }

    /// A block slowed down (a worker interrupted, cold caches) does not turn the choice:
    /// the cost is the median of the last blocks, which follows a lasting change within
    /// half a window.
    #[test]
    fn one_slow_block_does_not_turn_the_choice_a_lasting_change_does() {
        let model = model(1_000.0, 600.0, 20_000.0);
        warm_up(&model, Class::Claimed, 1000);
        model.record_sequential(Class::Claimed, 1000, us(1_000));
        for _ in 0..3 {
            model.record_parallel(Class::Claimed, 1000, us(20 + 600));
        }
        model.record_parallel(Class::Claimed, 1000, us(20 + 3_000));
        assert!((model.measured(Class::Claimed).1 - 600.0).abs() < 1e-6);
        assert_eq!(model.choose(Class::Claimed, 1000, None), Choice::Parallel);
        for _ in 0..WINDOW {
            model.record_parallel(Class::Claimed, 1000, us(20 + 1_500));
        }
        assert!((model.measured(Class::Claimed).1 - 1_500.0).abs() < 1e-6);
        assert_eq!(model.choose(Class::Claimed, 1000, None), Choice::Sequential);
    }
}
