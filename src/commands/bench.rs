//! `tos-blockstm bench`: the sequential executor and the parallel one on the same blocks,
//! alternating, in one process, for each workload and thread count (docs/WORKLOADS.md).

use super::{cores, median};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;
use tos_adapter::{
    contract::default_contract_vm, BlockMode, BlockState, ExecutionConfig, MemoryStore,
    SequentialTosExecutor, StateKey, StateValue, TosBlockExecutor, TosStorage, TosVm, Transaction,
    DEVNET_CHAIN_ID,
};
use tos_blockstm::workload::{Generator, Workload};

/// Options of `tos-blockstm bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Workloads to run (repeatable), or `all`.
    #[arg(long = "workload", default_value = "all")]
    pub workloads: Vec<String>,
    /// Transactions per block.
    #[arg(long, default_value_t = 10_000)]
    pub txs: usize,
    /// Comma-separated thread counts (default: 1 and all cores).
    #[arg(long, value_delimiter = ',')]
    pub threads: Vec<usize>,
    /// Runs of each executor per row; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Untimed runs of each executor before the timed ones (a new executor starts its
    /// threads and faults in its memory on its first blocks, as a node's does once).
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Verify every transaction's signature during execution (transactions are always
    /// signed).
    #[arg(long)]
    pub verify_signatures: bool,
    /// Seed of the workloads.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run every block under Block-STM (no policy: the engine itself, as it scales).
    #[arg(long)]
    pub always_parallel: bool,
    /// Write the rows as JSON (one object per row, in an array).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write an SVG chart of speed-up against the ideal per workload.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Write the rows as a Markdown section (the command, the machine, the table): `-`
    /// for standard output. `scripts/benchmarks.sh` builds docs/BENCHMARKS.md from these.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

/// One row of the report (docs/WORKLOADS.md).
#[derive(Debug, Serialize, Clone)]
pub struct Row {
    pub workload: String,
    pub txs: usize,
    pub threads: usize,
    pub verify_signatures: bool,
    pub seq_ms: f64,
    pub par_ms: f64,
    pub speedup: f64,
    pub ideal: f64,
    pub efficiency: f64,
    pub incarnations: u64,
    pub validations: u64,
    pub aborts: u64,
    /// Reads, writes and credits of claimed keys, kept out of the multi-version memory.
    pub claimed_accesses: u64,
    /// Transactions Block-STM left to the sequential executor after it stopped the block.
    pub sequential_suffix: u64,
    pub critical_path: u64,
    pub estimated_parallelism: f64,
    pub path: String,
}

fn workloads(names: &[String]) -> Result<Vec<Workload>> {
    let mut out = Vec::new();
    for name in names {
        if name == "all" {
            out.extend(Workload::all());
        } else {
            out.push(name.parse()?);
        }
    }
    Ok(out)
}

/// Runs `bench`.
pub fn main(args: BenchArgs) -> Result<()> {
    if args.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    if args.txs == 0 {
        bail!("--txs must be at least 1");
    }
    let workloads = workloads(&args.workloads)?;
    let mut threads = args.threads.clone();
    if threads.is_empty() {
        threads = if cores() > 1 {
            vec![1, cores()]
        } else {
            vec![1]
        };
    }
    if threads.contains(&0) {
        bail!("thread counts must be at least 1 (got 0 in --threads)");
    }
    println!(
        "{:<16} {:>7} {:>7} {:>9} {:>9} {:>8} {:>7} {:>6} {:>6} {:>10}",
        "workload",
        "txs",
        "threads",
        "seq_ms",
        "par_ms",
        "speedup",
        "ideal",
        "eff",
        "aborts",
        "path"
    );
    let mut rows = Vec::new();
    for workload in workloads {
        rows.extend(bench_workload(&args, workload, &threads)?);
    }
    if let Some(path) = &args.json {
        let mut file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        serde_json::to_writer_pretty(&mut file, &rows)?;
        file.write_all(b"\n")?;
    }
    if let Some(path) = &args.plot {
        std::fs::write(path, chart(&rows))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.markdown {
        let section = markdown(&rows);
        if path.as_os_str() == "-" {
            print!("{section}");
        } else {
            std::fs::write(path, section)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}

/// The machine, as far as the OS tells: cores, CPU model, memory.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let memory = super::meminfo_bytes("MemTotal")
        .map(|bytes| format!("{} GiB", (bytes + (1 << 29)) >> 30))
        .unwrap_or_else(|| "unknown memory".to_owned());
    format!("{} cores, {cpu}, {memory}", cores())
}

/// Today's date (UTC), from the system clock.
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The rows as a Markdown section headed by the command that produced them.
fn markdown(rows: &[Row]) -> String {
    // The command as given, less `--markdown` and its value.
    let mut args = Vec::new();
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        if arg == "--markdown" {
            given.next();
        } else if !arg.starts_with("--markdown=") {
            args.push(arg);
        }
    }
    let mut out = format!(
        "```sh\ncargo run --release -- {}\n```\n\n{}, {}.\n\n",
        args.join(" "),
        machine(),
        today()
    );
    out += "| workload | txs | threads | seq ms | par ms | speed-up | ideal | aborts | path |\n";
    out += "|---|---|---|---|---|---|---|---|---|\n";
    // Three significant digits for the short blocks' fractions of a millisecond.
    let ms = |v: f64| {
        if v < 1.0 {
            format!("{v:.3}")
        } else {
            format!("{v:.2}")
        }
    };
    for r in rows {
        out += &format!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {} | {} |\n",
            r.workload,
            r.txs,
            r.threads,
            ms(r.seq_ms),
            ms(r.par_ms),
            r.speedup,
            r.ideal,
            r.aborts,
            short_path(r)
        );
    }
    out += "\n";
    out
}

fn bench_workload(args: &BenchArgs, workload: Workload, threads: &[usize]) -> Result<Vec<Row>> {
    let mut generator = Generator::new(workload, args.txs, args.seed);
    let store = MemoryStore::new();
    store.write_block(0, &generator.genesis()?)?;
    let txs = generator.block();
    let keys = TosBlockExecutor::declared_keys(&txs, args.verify_signatures);
    let state = BlockState::preload(&store, 0, keys, cores())?;
    let vm: TosVm<Transaction> = TosVm::new(
        u64::from(DEVNET_CHAIN_ID),
        args.verify_signatures,
        false,
        default_contract_vm(),
        None,
    );
    let critical_path = executor::critical_path(&vm, &state, &txs)?.max(1);
    let oracle = SequentialTosExecutor::new(args.verify_signatures);
    let expected = oracle.execute_on(&state, 1, &txs, BlockMode::Dag)?;
    let want: BTreeMap<&StateKey, &StateValue> =
        expected.changes.iter().map(|(k, v)| (k, v)).collect();
    let mut rows = Vec::new();
    for &t in threads {
        let executor = TosBlockExecutor::new(ExecutionConfig {
            max_parallelism: t,
            verify_signatures: args.verify_signatures,
            always_parallel: args.always_parallel,
            ..ExecutionConfig::default()
        })?;
        // The policy's costs, measured before anything is timed (once per process and
        // thread count); each workload's executor then learns from its own blocks.
        executor.calibrate();
        let (mut seq, mut par) = (Vec::new(), Vec::new());
        let mut last = None;
        for _ in 0..args.warmup {
            drop(std::hint::black_box(oracle.execute_on(
                &state,
                1,
                &txs,
                BlockMode::Dag,
            )?));
            drop(std::hint::black_box(executor.execute_prepared(
                &state,
                1,
                &txs,
                BlockMode::Dag,
            )?));
        }
        for run in 0..args.repeat {
            // Alternate which goes first, so neither always runs on the caches (or the
            // clock) the other left.
            for turn in [run % 2, 1 - run % 2] {
                if turn == 0 {
                    let start = Instant::now();
                    let sequential = oracle.execute_on(&state, 1, &txs, BlockMode::Dag)?;
                    seq.push(start.elapsed());
                    drop(std::hint::black_box(sequential));
                } else {
                    let start = Instant::now();
                    let execution = executor.execute_prepared(&state, 1, &txs, BlockMode::Dag)?;
                    par.push(start.elapsed());
                    last = Some(execution);
                }
            }
        }
        let execution = last.context("no run")?;
        let got: BTreeMap<&StateKey, &StateValue> =
            execution.changes.iter().map(|(k, v)| (k, v)).collect();
        if execution.results != expected.results || got != want {
            bail!("{workload} at {t} threads: parallel execution differs from sequential");
        }
        let (seq, par) = (
            median(seq).as_secs_f64() * 1e3,
            median(par).as_secs_f64() * 1e3,
        );
        let speedup = seq / par;
        let ideal = (t as f64).min(txs.len() as f64 / critical_path as f64);
        let row = Row {
            workload: workload.to_string(),
            txs: txs.len(),
            threads: t,
            verify_signatures: args.verify_signatures,
            seq_ms: seq,
            par_ms: par,
            speedup,
            ideal,
            efficiency: speedup / ideal,
            incarnations: execution.stats.incarnations,
            validations: execution.stats.validations,
            aborts: execution.stats.aborts,
            claimed_accesses: execution.stats.claimed_accesses,
            sequential_suffix: execution.stats.sequential_suffix,
            critical_path,
            estimated_parallelism: TosBlockExecutor::estimated_parallelism(&txs),
            path: format!("{:?}", execution.path),
        };
        println!(
            "{:<16} {:>7} {:>7} {:>9.2} {:>9.2} {:>8.3} {:>7.2} {:>6.2} {:>6} {:>7.1} {:>10}",
            row.workload,
            row.txs,
            row.threads,
            row.seq_ms,
            row.par_ms,
            row.speedup,
            row.ideal,
            row.efficiency,
            row.aborts,
            row.estimated_parallelism,
            short_path(&row)
        );
        rows.push(row);
    }
    Ok(rows)
}

/// The path of a row's last run: `parallel+seq` when Block-STM stopped the block and the
/// sequential executor finished it.
fn short_path(row: &Row) -> &'static str {
    let path = row.path.as_str();
    if path.starts_with("Parallel") && row.sequential_suffix > 0 {
        "parallel+seq"
    } else if path.starts_with("Parallel") {
        "parallel"
    } else if path.starts_with("Fallback") {
        "fallback"
    } else {
        "sequential"
    }
}

/// An SVG bar chart: per workload and thread count, the speed-up against the ideal.
fn chart(rows: &[Row]) -> String {
    let width = 120 + rows.len() * 48;
    let height = 360;
    let max = rows
        .iter()
        .map(|r| r.speedup.max(r.ideal))
        .fold(1.0f64, f64::max)
        .ceil();
    let y = |v: f64| 300.0 - v / max * 260.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"18\" font-size=\"14\">Block-STM speed-up over sequential (bars) and the ideal (ticks)</text>\n"
    );
    for i in 0..=max as usize {
        let yy = y(i as f64);
        svg += &format!(
            "<line x1=\"60\" x2=\"{}\" y1=\"{yy}\" y2=\"{yy}\" stroke=\"#ddd\"/><text x=\"40\" y=\"{}\">{i}x</text>\n",
            width - 10,
            yy + 4.0
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let x = 70 + i * 48;
        let top = y(r.speedup);
        svg += &format!(
            "<rect x=\"{x}\" y=\"{top:.1}\" width=\"30\" height=\"{:.1}\" fill=\"#4a7ebb\"/>\n\
             <line x1=\"{}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#c0392b\" stroke-width=\"3\"/>\n\
             <text x=\"{x}\" y=\"{:.1}\">{:.2}</text>\n\
             <text transform=\"translate({},{}) rotate(45)\">{} ×{}</text>\n",
            300.0 - top,
            x - 4,
            x + 34,
            y(r.ideal),
            y(r.ideal),
            top - 4.0,
            r.speedup,
            x + 4,
            310,
            r.workload,
            r.threads
        );
    }
    svg += "</svg>\n";
    svg
}
