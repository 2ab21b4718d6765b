//! Criterion microbenches of the engine: multi-version memory reads, writes and
//! validations (read sets of 66-byte keys, located or by key), scheduler
//! task throughput, and a block of 10,000 mock transactions that each spin about 2 µs on
//! distinct keys, sequential against Block-STM at 1 and 2 threads.
//!
//! `cargo bench --bench engine`

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use executor::mock::{independent_block, spin, EmptyStorage, MockVm};
use executor::{ParallelExecutor, SequentialExecutor};
use mvmemory::{MVMemory, ReadDescriptor, ReadSet, Version, WriteOp, WriteSet};
use scheduler::{Scheduler, Task, Worker};
use std::hint::black_box;
use std::time::Instant;

fn write_set(key: u64, value: u64) -> WriteSet<u64, u64> {
    let mut w = WriteSet::new();
    w.push((key, WriteOp::Value(value)));
    w
}

fn mvmemory(c: &mut Criterion) {
    let n = 10_000usize;
    let mut group = c.benchmark_group("mvmemory");
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("record_10k_new_keys", |b| {
        b.iter_batched(
            || MVMemory::<u64, u64>::new(n),
            |mem| {
                {
                    let mut writer = mem.writer();
                    for i in 0..n {
                        let v = Version {
                            txn_idx: i,
                            incarnation: 0,
                        };
                        writer.record(v, ReadSet::new(), write_set(i as u64, 1));
                    }
                }
                mem
            },
            BatchSize::LargeInput,
        )
    });
    let mem = MVMemory::<u64, u64>::new(n);
    {
        let mut writer = mem.writer();
        for i in 0..n {
            let v = Version {
                txn_idx: i,
                incarnation: 0,
            };
            writer.record(v, ReadSet::new(), write_set(i as u64 % 1_000, 1));
        }
    }
    group.bench_function("read_10k", |b| {
        b.iter(|| {
            for i in 0..n {
                black_box(mem.read(&(i as u64 % 1_000), n - 1 - i % 100));
            }
        })
    });
    for located in [false, true] {
        let mem = read_sets(n, located);
        let name = if located {
            "validate_10k/located"
        } else {
            "validate_10k/by_key"
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                for txn_idx in n..2 * n {
                    black_box(mem.validate_read_set(txn_idx));
                }
            })
        });
    }
    group.finish();
}

/// A key of a TOS state key's size.
type WideKey = [u8; 66];

fn wide_key(i: usize) -> WideKey {
    let mut key = [7u8; 66];
    key[..8].copy_from_slice(&(i as u64).to_le_bytes());
    key
}

/// Memory for `2 n` transactions: the first `n` write 1,000 keys of 66 bytes, each of the
/// others read four of them (as the executor records reads, or by key) and write nothing.
fn read_sets(n: usize, located: bool) -> MVMemory<WideKey, u64> {
    let mem = MVMemory::<WideKey, u64>::new(2 * n);
    let version = |txn_idx| Version {
        txn_idx,
        incarnation: 0,
    };
    {
        let mut writer = mem.writer();
        for i in 0..n {
            let mut w = WriteSet::new();
            w.push((wide_key(i % 1_000), WriteOp::Value(1)));
            writer.record(version(i), ReadSet::new(), w);
        }
        for txn_idx in n..2 * n {
            let keys = (0..4).map(|k| wide_key((txn_idx * 7 + k * 251) % 1_000));
            if located {
                let mut reads = mem.located_reads();
                for key in keys {
                    let (outcome, location) = mem.read_located(&key, txn_idx);
                    if let Some(kind) = outcome.kind() {
                        reads.push(location, &key, kind);
                    }
                }
                writer.record_with_output(version(txn_idx), reads, WriteSet::new(), ());
            } else {
                let reads = keys
                    .filter_map(|key| {
                        let kind = mem.read(&key, txn_idx).kind()?;
                        Some(ReadDescriptor { key, kind })
                    })
                    .collect();
                writer.record(version(txn_idx), reads, WriteSet::new());
            }
        }
    }
    mem
}

fn scheduler(c: &mut Criterion) {
    let n = 10_000usize;
    let mut group = c.benchmark_group("scheduler");
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("tasks_10k_one_thread", |b| {
        b.iter(|| {
            let s = Scheduler::new(n, 1);
            let mut worker = Worker::new(0);
            let mut task = None;
            while !s.done() {
                task = match task {
                    Some(Task::Execution(i, inc)) => {
                        s.finish_execution(0, i, inc, false).ok().flatten()
                    }
                    Some(Task::Validation(i, _)) => s.finish_validation(0, i, false).ok().flatten(),
                    None => s.next_task(&mut worker),
                };
            }
        })
    });
    group.finish();
}

fn block(c: &mut Criterion) {
    // Calibrate the mock's busy work to about 2 µs per transaction on this machine.
    let rounds = 2_000_000u32;
    let start = Instant::now();
    black_box(spin(rounds, 1));
    let ns_per_round = start.elapsed().as_nanos() as f64 / f64::from(rounds);
    let work = (2_000.0 / ns_per_round) as u32;
    let txns = independent_block(10_000, work);
    let vm = MockVm { key_space: 0 };
    let mut group = c.benchmark_group("block_10k_2us");
    group.sample_size(10);
    group.throughput(Throughput::Elements(txns.len() as u64));
    group.bench_function("sequential", |b| {
        b.iter(|| SequentialExecutor.execute_block(&vm, &EmptyStorage, &txns))
    });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for threads in [1, 2, 4, 8].into_iter().filter(|&t| t <= cores.max(2)) {
        group.bench_with_input(BenchmarkId::new("block_stm", threads), &threads, |b, &t| {
            let exec = ParallelExecutor::new(t);
            b.iter(|| exec.execute_block(&vm, &EmptyStorage, &txns))
        });
    }
    group.finish();
}

criterion_group!(benches, mvmemory, scheduler, block);
criterion_main!(benches);
