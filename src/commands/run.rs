//! `tos-blockstm run`: generate blocks of a workload, execute each with Block-STM, verify
//! it against the sequential executor on the same base state, and commit it.

use super::open_db;
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tos_adapter::{
    BlockMode, ExecutionConfig, SequentialTosExecutor, StateKey, StateValue, TosBlockExecutor,
    TosStorage,
};
use tos_blockstm::blockfile::{genesis_line, transaction_json, Line, ModeJson};
use tos_blockstm::workload::{Generator, Workload};

/// Options of `tos-blockstm run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Data directory (created if absent; a run continues from its stored topoheight).
    #[arg(long, default_value = "./tos-blockstm-data")]
    pub db: PathBuf,
    /// Blocks to generate and execute.
    #[arg(long, default_value_t = 20)]
    pub blocks: u64,
    /// Transactions per block.
    #[arg(long, default_value_t = 10_000)]
    pub txs: usize,
    /// Workload (docs/WORKLOADS.md): independent, hot-sender:P, hot-receiver:P, p2p:K, mixed, token:K, amm, counter.
    #[arg(long, default_value = "mixed")]
    pub workload: Workload,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Do not check each block against the sequential executor.
    #[arg(long)]
    pub no_verify: bool,
    /// Verify every transaction's signature during execution (transactions are always
    /// signed).
    #[arg(long)]
    pub verify_signatures: bool,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the genesis and the generated blocks to this block file (docs/FORMATS.md).
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Execution configuration file (TOML); `TOS_BLOCKSTM_*` variables override it, flags
    /// override both.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Blocks below this many transactions run sequentially.
    #[arg(long)]
    pub min_batch_size: Option<usize>,
    /// Run every block sequentially.
    #[arg(long)]
    pub sequential: bool,
    /// Serve Prometheus metrics at this address (for example 127.0.0.1:9898).
    #[arg(long)]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

#[derive(Default)]
struct Totals {
    blocks: u64,
    txs: u64,
    /// Reading the blocks' declared keys from the database (both executors start from it).
    preload: Duration,
    /// The executor's execution (its policy's path: Block-STM or sequential).
    parallel: Duration,
    /// The sequential executor's execution of the same blocks.
    sequential: Duration,
    /// Writing the blocks to the database.
    commit: Duration,
    incarnations: u64,
    aborts: u64,
    rejected: BTreeMap<&'static str, u64>,
}

/// Runs `run`.
pub fn main(args: RunArgs) -> Result<()> {
    // `run` verifies no signature unless asked: the daemon verifies them before a block is
    // applied, so what the executor gets is pure state transitions.
    let mut config = super::load_config(
        ExecutionConfig {
            verify_signatures: false,
            ..ExecutionConfig::default()
        },
        args.config.as_deref(),
    )?;
    if let Some(threads) = args.threads {
        if threads == 0 {
            bail!("--threads must be at least 1");
        }
        config.max_parallelism = threads;
    }
    if let Some(min) = args.min_batch_size {
        config.min_batch_size = min;
    }
    if args.sequential {
        config.enabled = false;
    }
    if args.verify_signatures {
        config.verify_signatures = true;
    }
    let threads = config.max_parallelism;
    let sign = config.verify_signatures;
    if args.txs == 0 {
        bail!("--txs must be at least 1");
    }
    check_memory(args.txs)?;
    if let Some(addr) = args.metrics_addr {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .with_context(|| format!("cannot serve metrics at {addr}"))?;
        eprintln!("serving metrics at http://{addr}/metrics");
    }
    let store = open_db(&args.db)?;
    let executor = TosBlockExecutor::new(config)?;
    executor.calibrate();
    let oracle = SequentialTosExecutor::new(sign);
    let mut export = match &args.export {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => None,
    };
    eprintln!(
        "generating keys for {} ({} transactions per block, seed {})…",
        args.workload, args.txs, args.seed
    );
    let mut generator = Generator::new(args.workload, args.txs, args.seed);
    if store.is_empty()? {
        let genesis = generator.genesis()?;
        store
            .write_block(0, &genesis)
            .context("cannot write the genesis")?;
        eprintln!(
            "new database {}: genesis of {} funded accounts",
            args.db.display(),
            generator.sender_keys().len()
        );
        if let Some(out) = export.as_mut() {
            write_line(out, &genesis_line(&genesis))?;
        }
    } else {
        let topo = store.topoheight()?;
        for account in generator.sender_keys() {
            if let Some((_, nonce)) = store.get_nonce_at_maximum_topoheight(&account, topo)? {
                generator.set_nonce(account, nonce.nonce);
            }
            if let Some((_, multisig)) = store.get_multisig_at_maximum_topoheight(&account, topo)? {
                generator.set_multisig(account, &multisig.participants);
            }
        }
        eprintln!("continuing {} from topoheight {topo}", args.db.display());
        if export.is_some() {
            bail!("--export needs a new database (the file must start with the genesis)");
        }
    }

    let progress = ProgressBar::new(args.blocks);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} blocks {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut totals = Totals::default();
    for _ in 0..args.blocks {
        let txs = generator.block();
        let topoheight = store.topoheight()? + 1;
        let start = Instant::now();
        let state = executor.prepare(&store, topoheight, &txs)?;
        totals.preload += start.elapsed();
        // Which executor runs first alternates from block to block, so that neither always
        // finds the caches (and the clock) the other left.
        let run_executor = |totals: &mut Totals| -> Result<_> {
            let start = Instant::now();
            let execution = executor.execute_prepared(&state, topoheight, &txs, BlockMode::Dag)?;
            totals.parallel += start.elapsed();
            Ok(execution)
        };
        let run_oracle = |totals: &mut Totals| -> Result<_> {
            let start = Instant::now();
            let expected = oracle.execute_on(&state, topoheight, &txs, BlockMode::Dag)?;
            totals.sequential += start.elapsed();
            Ok(expected)
        };
        let (execution, expected) = if args.no_verify {
            (run_executor(&mut totals)?, None)
        } else if topoheight % 2 == 0 {
            let execution = run_executor(&mut totals)?;
            (execution, Some(run_oracle(&mut totals)?))
        } else {
            let expected = run_oracle(&mut totals)?;
            (run_executor(&mut totals)?, Some(expected))
        };
        if let Some(expected) = expected {
            let got: BTreeMap<&StateKey, &StateValue> =
                execution.changes.iter().map(|(k, v)| (k, v)).collect();
            let want: BTreeMap<&StateKey, &StateValue> =
                expected.changes.iter().map(|(k, v)| (k, v)).collect();
            if execution.results != expected.results || got != want {
                bail!("block {topoheight}: Block-STM differs from sequential execution; nothing of it was written");
            }
        }
        drop(state);
        let start = Instant::now();
        executor.commit(&store, &execution)?;
        totals.commit += start.elapsed();
        if let Some(out) = export.as_mut() {
            write_line(
                out,
                &Line::Block {
                    topoheight,
                    mode: ModeJson::Dag,
                    transactions: txs.iter().map(transaction_json).collect(),
                },
            )?;
        }
        totals.blocks += 1;
        totals.txs += txs.len() as u64;
        totals.incarnations += execution.stats.incarnations;
        totals.aborts += execution.stats.aborts;
        for r in &execution.results {
            if let Some(e) = &r.error {
                *totals.rejected.entry(e.kind()).or_default() += 1;
            }
        }
        progress.set_message(format!("topoheight {topoheight}"));
        progress.inc(1);
    }
    progress.finish_and_clear();
    if let Some(mut out) = export {
        out.flush()?;
    }
    summary(&args, threads, &totals, store.topoheight()?);
    Ok(())
}

/// Memory a block of one transaction needs, measured: 100,000 `mixed` transactions peak
/// at about 450 MB (`/usr/bin/time -v tos-blockstm run --blocks 1 --txs 100000`), keys,
/// signatures, both executors and their state included.
const BYTES_PER_TRANSACTION: u64 = 5 * 1024;
/// What the process needs besides.
const BASE_BYTES: u64 = 64 << 20;

/// Refuses a block size this machine cannot hold, before anything is built.
fn check_memory(txs: usize) -> Result<()> {
    let estimate = BASE_BYTES.saturating_add((txs as u64).saturating_mul(BYTES_PER_TRANSACTION));
    let available = super::meminfo_bytes("MemAvailable");
    let gib = |bytes: u64| bytes as f64 / f64::from(1u32 << 30);
    match available {
        Some(available) if estimate > available => bail!(
            "a block of {txs} transactions needs about {:.1} GiB ({} KiB each); {:.1} GiB is available: use a smaller --txs",
            gib(estimate),
            BYTES_PER_TRANSACTION / 1024,
            gib(available)
        ),
        _ => Ok(()),
    }
}

fn write_line(out: &mut impl Write, line: &Line) -> Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Milliseconds per block.
fn per_block(total: Duration, blocks: u64) -> f64 {
    total.as_secs_f64() * 1e3 / blocks.max(1) as f64
}

fn summary(args: &RunArgs, threads: usize, t: &Totals, topoheight: u64) {
    let rate = |d: Duration| {
        if d.is_zero() {
            0.0
        } else {
            t.txs as f64 / d.as_secs_f64()
        }
    };
    println!("workload            {}", args.workload);
    println!(
        "blocks              {} (database at topoheight {topoheight})",
        t.blocks
    );
    println!("transactions        {}", t.txs);
    println!("threads             {threads}");
    // End to end: the block's preload and commit (the same work for both) around each
    // executor's execution.
    let around = t.preload + t.commit;
    println!(
        "execution           {:.0} tx/s ({:.1} ms a block)",
        rate(t.parallel),
        per_block(t.parallel, t.blocks)
    );
    println!(
        "end to end          {:.0} tx/s (preload {:.1} ms, execution {:.1} ms, commit {:.1} ms a block)",
        rate(around + t.parallel),
        per_block(t.preload, t.blocks),
        per_block(t.parallel, t.blocks),
        per_block(t.commit, t.blocks)
    );
    if !args.no_verify {
        println!(
            "sequential          {:.0} tx/s execution, {:.0} tx/s end to end",
            rate(t.sequential),
            rate(around + t.sequential)
        );
        if !t.parallel.is_zero() {
            println!(
                "speed-up            {:.2}x execution, {:.2}x end to end",
                t.sequential.as_secs_f64() / t.parallel.as_secs_f64(),
                (around + t.sequential).as_secs_f64() / (around + t.parallel).as_secs_f64()
            );
        }
    }
    println!(
        "aborts per tx       {:.4}",
        if t.txs == 0 {
            0.0
        } else {
            t.aborts as f64 / t.txs as f64
        }
    );
    let rejected: u64 = t.rejected.values().sum();
    println!("rejected            {rejected}");
    for (kind, count) in &t.rejected {
        println!("  {kind:<20}{count}");
    }
}
