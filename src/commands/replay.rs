//! `tos-blockstm replay`: execute and commit each block of a block file (docs/FORMATS.md).

use super::open_db;
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::ProgressBar;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use tos_adapter::{BlockMode, ExecutionConfig, TosBlockExecutor, TosStorage, Transaction};
use tos_blockstm::blockfile::{
    genesis_changes, parse_line, result_json, transaction, Line, MAX_LINE_BYTES,
};

/// Options of `tos-blockstm replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Data directory (created if absent).
    #[arg(long)]
    pub db: PathBuf,
    /// The block file to execute (JSON lines).
    #[arg(long)]
    pub blocks: PathBuf,
    /// Write one JSON line per transaction's result here.
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Do not verify signatures (transactions may then carry none, or invalid ones).
    #[arg(long)]
    pub no_verify_signatures: bool,
    /// Execution configuration file (TOML); `TOS_BLOCKSTM_*` variables override it, flags
    /// override both.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Runs `replay`.
pub fn main(args: ReplayArgs) -> Result<()> {
    let mut config = super::load_config(ExecutionConfig::default(), args.config.as_deref())?;
    if let Some(threads) = args.threads {
        if threads == 0 {
            bail!("--threads must be at least 1");
        }
        config.max_parallelism = threads;
    }
    if args.no_verify_signatures {
        config.verify_signatures = false;
    }
    let file = std::fs::File::open(&args.blocks)
        .with_context(|| format!("cannot open the block file {}", args.blocks.display()))?;
    let store = open_db(&args.db)?;
    let executor = TosBlockExecutor::new(config)?;
    executor.calibrate();
    let mut results = match &args.results {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => None,
    };
    let progress = ProgressBar::new_spinner();
    let (mut blocks, mut txs, mut rejected_blocks) = (0u64, 0u64, 0u64);
    let mut reader = BufReader::new(file);
    let mut buffer = Vec::new();
    for number in 1.. {
        let at = |e: anyhow::Error| e.context(format!("{}: line {number}", args.blocks.display()));
        buffer.clear();
        // Read at most the longest line allowed (plus one byte, to tell it was longer).
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buffer)
            .map_err(|e| at(e.into()))?;
        if read == 0 {
            break;
        }
        if buffer.len() > MAX_LINE_BYTES {
            return Err(at(anyhow::anyhow!(
                "line longer than {MAX_LINE_BYTES} bytes"
            )));
        }
        let line = std::str::from_utf8(&buffer).map_err(|e| at(e.into()))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = parse_line(line).map_err(at)?;
        match parsed {
            Line::Genesis {
                network_chain_id,
                total_supply,
                accounts,
                contracts,
            } => {
                if number != 1 || !store.is_empty()? {
                    return Err(at(anyhow::anyhow!(
                        "a genesis may only be the first line, on an empty database"
                    )));
                }
                let changes =
                    genesis_changes(network_chain_id, total_supply, &accounts, &contracts)
                        .map_err(at)?;
                store.write_block(0, &changes).map_err(|e| at(e.into()))?;
            }
            Line::Block {
                topoheight,
                mode,
                transactions,
            } => {
                let expected = store.topoheight()? + 1;
                if topoheight != expected {
                    return Err(at(anyhow::anyhow!(
                        "block at topoheight {topoheight}, but the next topoheight is {expected}"
                    )));
                }
                let block: Vec<Transaction> = transactions
                    .iter()
                    .enumerate()
                    .map(|(i, tx)| transaction(tx).with_context(|| format!("transaction {i}")))
                    .collect::<Result<_>>()
                    .map_err(at)?;
                let execution = executor
                    .execute_block(&store, topoheight, &block, BlockMode::from(mode))
                    .map_err(|e| at(e.into()))?;
                let rejected = execution.rejection().map(|(i, e)| (i, e.code()));
                if rejected.is_none() {
                    executor
                        .commit(&store, &execution)
                        .map_err(|e| at(e.into()))?;
                }
                if let Some(out) = results.as_mut() {
                    for (i, tx) in block.iter().enumerate() {
                        let line = result_json(
                            topoheight,
                            i,
                            &tx.hash(),
                            execution.results.get(i),
                            rejected.is_some(),
                        );
                        serde_json::to_writer(&mut *out, &line)?;
                        out.write_all(b"\n")?;
                    }
                }
                if let Some((index, code)) = rejected {
                    rejected_blocks += 1;
                    eprintln!(
                        "{}: line {number}: block at topoheight {topoheight} rejected by its transaction {index} (code {code:#06x}); nothing of it was written",
                        args.blocks.display()
                    );
                    continue;
                }
                blocks += 1;
                txs += block.len() as u64;
                progress.set_message(format!("topoheight {topoheight}: {txs} transactions"));
                progress.tick();
            }
        }
    }
    progress.finish_and_clear();
    if let Some(mut out) = results {
        out.flush()?;
    }
    println!(
        "replayed {blocks} blocks, {txs} transactions ({rejected_blocks} blocks rejected); database at topoheight {}",
        store.topoheight()?
    );
    Ok(())
}
