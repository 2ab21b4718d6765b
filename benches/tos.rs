//! Criterion benches of TOS blocks: the sequential executor against Block-STM (all cores)
//! at conflict rates and block sizes, and on the contract workloads (`token:1000`, `amm`,
//! `counter`); and where Block-STM's time goes on `token:1000` (`engine_overhead`).
//!
//! `cargo bench --bench tos` (about three minutes on two cores).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use executor::{ParallelExecutor, SequentialExecutor};
use std::sync::Arc;
use std::time::Duration;
use tos_adapter::contract::default_contract_vm;
use tos_adapter::execution::fixed_modules;
use tos_adapter::{
    BlockMode, BlockState, ExecutionConfig, MemoryStore, SequentialTosExecutor, TosBlockExecutor,
    TosStorage, TosVm, Transaction, DEVNET_CHAIN_ID,
};
use tos_blockstm::workload::{Generator, Workload};

/// A store holding `workload`'s genesis, and one block of `txs` transactions on it.
fn genesis_and_block(workload: Workload, txs: usize) -> (MemoryStore, Vec<Transaction>) {
    let mut generator = Generator::new(workload, txs, 1);
    let store = MemoryStore::new();
    store.write_block(0, &generator.genesis().unwrap()).unwrap();
    let block = generator.block();
    (store, block)
}

fn bench_block(c: &mut Criterion, group: &str, workload: Workload, txs: usize) {
    let (store, block) = genesis_and_block(workload, txs);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let keys = TosBlockExecutor::declared_keys(&block, false);
    let state = BlockState::preload(&store, 0, keys, cores).unwrap();
    let sequential = SequentialTosExecutor::new(false);
    let parallel = TosBlockExecutor::new(ExecutionConfig {
        verify_signatures: false,
        min_batch_size: 0,
        ..ExecutionConfig::default()
    })
    .unwrap();
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(800))
        .throughput(Throughput::Elements(txs as u64));
    g.bench_with_input(BenchmarkId::new("sequential", txs), &block, |b, block| {
        b.iter(|| {
            sequential
                .execute_on(&state, 1, block, BlockMode::Dag)
                .unwrap()
        })
    });
    g.bench_with_input(BenchmarkId::new("block_stm", txs), &block, |b, block| {
        b.iter(|| {
            parallel
                .execute_prepared(&state, 1, block, BlockMode::Dag)
                .unwrap()
        })
    });
    g.finish();
}

fn conflict_rates(c: &mut Criterion) {
    for percent in [0u8, 25, 50, 100] {
        for txs in [10, 50, 100, 500, 1_000, 10_000] {
            bench_block(
                c,
                &format!("hot-sender:{percent}"),
                Workload::HotSender(percent),
                txs,
            );
        }
    }
}

fn receivers_and_p2p(c: &mut Criterion) {
    bench_block(c, "hot-receiver:100", Workload::HotReceiver(100), 10_000);
    for k in [2u32, 10, 100, 1_000, 10_000] {
        bench_block(c, &format!("p2p:{k}"), Workload::P2p(k), 10_000);
    }
}

fn contracts(c: &mut Criterion) {
    for workload in [Workload::Token(1_000), Workload::Amm, Workload::Counter] {
        bench_block(c, &workload.to_string(), workload, 10_000);
    }
}

/// Block-STM's own cost on `token:1000`, with no probe, no fallback and no accumulator
/// pass: the engine's sequential executor and Block-STM at 1 and 2 threads over the same
/// `TosVm` and preloaded state. `block_stm/1` against `sequential` is the engine's
/// bookkeeping on one core (no other core's cache lines involved); `two_blocks_at_once/2`
/// (the sequential executor on two threads at once, each running the whole block,
/// counted as two blocks) is how much of a second core the machine gives this work, the
/// bound of any 2-thread speed-up here.
fn engine_overhead(c: &mut Criterion) {
    let txs = 10_000;
    let (store, block) = genesis_and_block(Workload::Token(1_000), txs);
    let state =
        BlockState::preload(&store, 0, TosBlockExecutor::declared_keys(&block, false), 2).unwrap();
    let vm: TosVm<Transaction> = TosVm::new(
        u64::from(DEVNET_CHAIN_ID),
        false,
        false,
        default_contract_vm(),
        Some(Arc::new(fixed_modules(&block, &state).unwrap())),
    );
    let sequential = || {
        SequentialExecutor
            .execute_block(&vm, &state, &block)
            .unwrap()
    };
    let mut g = c.benchmark_group("engine_overhead/token:1000");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(txs as u64));
    g.bench_function("sequential", |b| b.iter(sequential));
    for threads in [1, 2] {
        let engine = ParallelExecutor::new(threads);
        g.bench_function(BenchmarkId::new("block_stm", threads), |b| {
            b.iter(|| engine.execute_block(&vm, &state, &block).unwrap())
        });
    }
    g.throughput(Throughput::Elements(2 * txs as u64));
    g.bench_function(BenchmarkId::new("two_blocks_at_once", 2), |b| {
        b.iter(|| {
            std::thread::scope(|scope| {
                let other = scope.spawn(sequential);
                (sequential(), other.join().unwrap())
            })
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    conflict_rates,
    receivers_and_p2p,
    contracts,
    engine_overhead
);
criterion_main!(benches);
