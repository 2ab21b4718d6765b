//! `tos-blockstm engine`: the engine benchmark on mock transactions. A block of mock
//! transactions that each spin for a calibrated time on their own keys (or, with
//! `--chain`, all on one key), executed by the engine's sequential executor, by Block-STM
//! at each thread count, and by Block-STM told the sequential time (which stops a block
//! that falls behind it and finishes it sequentially), alternating, in one process.

use anyhow::{bail, Context, Result};
use clap::Args;
use executor::mock::{chain_block, independent_block, spin, EmptyStorage, MockVm};
use executor::{ExecutionPath, ParallelExecutor, SequentialExecutor, SuffixRule};
use std::time::{Duration, Instant};

/// Options of `tos-blockstm engine`.
#[derive(Args, Debug)]
pub struct EngineArgs {
    /// Transactions per block.
    #[arg(long = "txs", alias = "txns", default_value_t = 10_000)]
    txns: usize,
    /// Work per transaction, in nanoseconds of calibrated busy work.
    #[arg(long, default_value_t = 2_000)]
    work_ns: u64,
    /// Comma-separated thread counts for Block-STM (default: 1 and all cores).
    #[arg(long, value_delimiter = ',')]
    threads: Vec<usize>,
    /// Runs of each executor per thread count; the median is reported.
    #[arg(long, default_value_t = 9)]
    repeat: usize,
    /// Every transaction reads and writes one shared key: a chain, where speculation
    /// cannot pay.
    #[arg(long)]
    chain: bool,
}

/// Nanoseconds per round of [`spin`], measured on this machine.
fn calibrate() -> f64 {
    let rounds = 20_000_000u32;
    let mut best = f64::MAX;
    for seed in 0..3 {
        let start = Instant::now();
        std::hint::black_box(spin(rounds, seed));
        best = best.min(start.elapsed().as_nanos() as f64 / f64::from(rounds));
    }
    best
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Checks a Block-STM run at `threads` threads against the sequential `expected`.
fn check(
    out: &executor::VmBlockOutput<MockVm>,
    expected: &executor::VmBlockOutput<MockVm>,
    threads: usize,
) -> Result<()> {
    if out.outputs != expected.outputs || out.writes != expected.writes {
        bail!("Block-STM at {threads} threads differs from sequential execution");
    }
    if out.path != ExecutionPath::Parallel {
        bail!("Block-STM at {threads} threads fell back: {:?}", out.path);
    }
    Ok(())
}

/// Runs the engine benchmark.
pub fn main(args: EngineArgs) -> Result<()> {
    if args.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = args.threads.clone();
    if threads.is_empty() {
        threads = if cores > 1 { vec![1, cores] } else { vec![1] };
    }
    if threads.contains(&0) {
        bail!("thread counts must be at least 1 (got 0 in --threads)");
    }
    let ns_per_round = calibrate();
    let rounds = u32::try_from((args.work_ns as f64 / ns_per_round).round() as u64)
        .context("--work-ns is too large")?;
    println!(
        "engine benchmark: {} {} mock transactions, {} ns of work each ({} spin rounds at {:.3} ns), {} cores, median of {}",
        args.txns,
        if args.chain { "chained" } else { "independent" },
        args.work_ns,
        rounds,
        ns_per_round,
        cores,
        args.repeat
    );
    let txns = if args.chain {
        chain_block(args.txns, rounds)
    } else {
        independent_block(args.txns, rounds)
    };
    let vm = MockVm { key_space: 0 };
    let expected = SequentialExecutor
        .execute_block(&vm, &EmptyStorage, &txns)
        .context("sequential execution failed")?;
    println!(
        "{:>8} {:>10} {:>10} {:>8} {:>12} {:>12} {:>8} {:>10} {:>8} {:>8}",
        "threads",
        "seq_ms",
        "par_ms",
        "speedup",
        "incarnations",
        "validations",
        "aborts",
        "stop_ms",
        "speedup",
        "suffix"
    );
    for &t in &threads {
        let parallel = ParallelExecutor::new(t);
        let (mut seq, mut par, mut stopping) = (Vec::new(), Vec::new(), Vec::new());
        let (mut stats, mut suffix) = (None, 0);
        for _ in 0..args.repeat {
            let start = Instant::now();
            std::hint::black_box(SequentialExecutor.execute_block(&vm, &EmptyStorage, &txns)?);
            seq.push(start.elapsed());
            let start = Instant::now();
            let out = parallel.execute_block(&vm, &EmptyStorage, &txns)?;
            par.push(start.elapsed());
            check(&out, &expected, t)?;
            stats = Some(out.stats);
            // Told the sequential time measured so far, as the TOS executor tells it what
            // its blocks measured.
            let rule = SuffixRule::SlowerThanSequential(median(seq.clone()));
            let start = Instant::now();
            let out = parallel.execute_block_with(&vm, &EmptyStorage, &txns, rule)?;
            stopping.push(start.elapsed());
            check(&out, &expected, t)?;
            suffix = out.stats.sequential_suffix;
        }
        let (seq, par, stopping) = (median(seq), median(par), median(stopping));
        let stats = stats.unwrap_or_default();
        println!(
            "{:>8} {:>10.2} {:>10.2} {:>8.3} {:>12} {:>12} {:>8} {:>10.2} {:>8.3} {:>8}",
            t,
            seq.as_secs_f64() * 1e3,
            par.as_secs_f64() * 1e3,
            seq.as_secs_f64() / par.as_secs_f64(),
            stats.incarnations,
            stats.validations,
            stats.aborts,
            stopping.as_secs_f64() * 1e3,
            seq.as_secs_f64() / stopping.as_secs_f64(),
            suffix
        );
    }
    Ok(())
}
