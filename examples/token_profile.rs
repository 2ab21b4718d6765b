//! Runs one `token:1000` block of 10,000 transactions through one executor, again and
//! again, and prints the median time: a target for `perf record` and `valgrind
//! --tool=callgrind` when looking for where Block-STM's time goes. Same state, VM and
//! block as the `engine_overhead` bench.
//!
//! ```text
//! cargo run --release --example token_profile -- <mode> [runs]
//! ```
//!
//! Modes: `sequential` (the engine's sequential executor), `block-stm-N` (Block-STM on N
//! threads, no probe and no fallback), `block-executor-N` (the drop-in `TosBlockExecutor`
//! on N threads, signatures off: probe, Block-STM and accumulators, the path `tos-blockstm
//! bench` measures), `oracle` (the TOS adapter's sequential executor),
//! `two-at-once` (the sequential executor on two threads at once, each running the
//! whole block). Runs: 20 by default.

use executor::{ParallelExecutor, SequentialExecutor};
use std::error::Error;
use std::sync::Arc;
use std::time::Instant;
use tos_adapter::contract::default_contract_vm;
use tos_adapter::execution::fixed_modules;
use tos_adapter::{
    BlockMode, BlockState, ExecutionConfig, MemoryStore, SequentialTosExecutor, TosBlockExecutor,
    TosStorage, TosVm, Transaction, DEVNET_CHAIN_ID,
};
use tos_blockstm::workload::{Generator, Workload};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "sequential".to_owned());
    let runs: usize = args.next().map_or(Ok(20), |runs| runs.parse())?;
    let mut generator = Generator::new(Workload::Token(1_000), 10_000, 1);
    let store = MemoryStore::new();
    store.write_block(0, &generator.genesis()?)?;
    let block = generator.block();
    let state = BlockState::preload(&store, 0, TosBlockExecutor::declared_keys(&block, false), 2)?;
    let vm: TosVm<Transaction> = TosVm::new(
        u64::from(DEVNET_CHAIN_ID),
        false,
        false,
        default_contract_vm(),
        Some(Arc::new(fixed_modules(&block, &state)?)),
    );
    let oracle = SequentialTosExecutor::new(false);
    let block_executor = match mode.strip_prefix("block-executor-") {
        Some(threads) => Some(TosBlockExecutor::new(ExecutionConfig {
            max_parallelism: threads.parse()?,
            verify_signatures: false,
            ..ExecutionConfig::default()
        })?),
        None => None,
    };
    let engine = match mode.strip_prefix("block-stm-") {
        Some(threads) => Some(ParallelExecutor::new(threads.parse()?)),
        None => None,
    };
    let sequential = || {
        SequentialExecutor
            .execute_block(&vm, &state, &block)
            .map(drop)
    };
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        match (mode.as_str(), &engine, &block_executor) {
            (_, Some(engine), _) => engine.execute_block(&vm, &state, &block).map(drop)?,
            (_, _, Some(executor)) => executor
                .execute_prepared(&state, 1, &block, BlockMode::Dag)
                .map(drop)?,
            ("sequential", None, None) => sequential()?,
            ("oracle", None, None) => oracle
                .execute_on(&state, 1, &block, BlockMode::Dag)
                .map(drop)?,
            ("two-at-once", None, None) => {
                std::thread::scope(|scope| -> Result<(), Box<dyn Error>> {
                    let other = scope.spawn(sequential);
                    sequential()?;
                    Ok(other.join().map_err(|_| "the second thread panicked")??)
                })?
            }
            _ => return Err(format!("unknown mode {mode}").into()),
        }
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    match times.get(times.len() / 2) {
        Some(median) => println!("{mode}: median {median:.2} ms over {runs} runs"),
        None => println!("{mode}: no runs"),
    }
    Ok(())
}
