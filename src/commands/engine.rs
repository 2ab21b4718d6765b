//! `tos-blockstm engine`: the engine benchmark on mock transactions. A block of mock
//! transactions that each spin for a calibrated time on their own keys, executed by the
//! engine's sequential executor and by Block-STM at each thread count, alternating, in
//! one process.

use anyhow::{bail, Context, Result};
use clap::Args;
use executor::mock::{independent_block, spin, EmptyStorage, MockVm};
use executor::{ExecutionPath, ParallelExecutor, SequentialExecutor};
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
        "engine benchmark: {} mock transactions, {} ns of work each ({} spin rounds at {:.3} ns), {} cores, median of {}",
        args.txns, args.work_ns, rounds, ns_per_round, cores, args.repeat
    );
    let txns = independent_block(args.txns, rounds);
    let vm = MockVm { key_space: 0 };
    let expected = SequentialExecutor
        .execute_block(&vm, &EmptyStorage, &txns)
        .context("sequential execution failed")?;
    println!(
        "{:>8} {:>10} {:>10} {:>8} {:>12} {:>12} {:>8}",
        "threads", "seq_ms", "par_ms", "speedup", "incarnations", "validations", "aborts"
    );
    for &t in &threads {
        let parallel = ParallelExecutor::new(t);
        let (mut seq, mut par) = (Vec::new(), Vec::new());
        let mut stats = None;
        for _ in 0..args.repeat {
            let start = Instant::now();
            std::hint::black_box(SequentialExecutor.execute_block(&vm, &EmptyStorage, &txns)?);
            seq.push(start.elapsed());
            let start = Instant::now();
            let out = parallel.execute_block(&vm, &EmptyStorage, &txns)?;
            par.push(start.elapsed());
            if out.outputs != expected.outputs || out.writes != expected.writes {
                bail!("Block-STM at {t} threads differs from sequential execution");
            }
            if out.path != ExecutionPath::Parallel {
                bail!("Block-STM at {t} threads fell back: {:?}", out.path);
            }
            stats = Some(out.stats);
        }
        let (seq, par) = (median(seq), median(par));
        let stats = stats.unwrap_or_default();
        println!(
            "{:>8} {:>10.2} {:>10.2} {:>8.3} {:>12} {:>12} {:>8}",
            t,
            seq.as_secs_f64() * 1e3,
            par.as_secs_f64() * 1e3,
            seq.as_secs_f64() / par.as_secs_f64(),
            stats.incarnations,
            stats.validations,
            stats.aborts
        );
    }
    Ok(())
}
