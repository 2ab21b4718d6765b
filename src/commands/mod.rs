//! The binary's commands.

pub mod bench;
pub mod conformance;
pub mod engine;
pub mod inspect;
pub mod replay;
pub mod run;

use anyhow::{Context, Result};
use std::path::Path;
use tos_adapter::RedbStore;

/// The database file inside a data directory.
pub const DB_FILE: &str = "state.redb";

/// Opens (creating it if needed) the database in directory `dir`.
pub fn open_db(dir: &Path) -> Result<RedbStore> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let path = dir.join(DB_FILE);
    RedbStore::open(&path).with_context(|| format!("cannot open the database {}", path.display()))
}

/// Opens the database in `dir`, which must exist.
pub fn open_existing_db(dir: &Path) -> Result<RedbStore> {
    let path = dir.join(DB_FILE);
    anyhow::ensure!(
        path.is_file(),
        "no database at {} (run `tos-blockstm run --db {}` or `replay` first)",
        path.display(),
        dir.display()
    );
    RedbStore::open_existing(&path)
        .with_context(|| format!("cannot open the database {}", path.display()))
}

/// A field of `/proc/meminfo` (such as `MemTotal` or `MemAvailable`), in bytes;
/// `None` where the file or the field is missing (not Linux).
pub fn meminfo_bytes(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// The machine's cores.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The median of `samples` (which must not be empty).
pub fn median(mut samples: Vec<std::time::Duration>) -> std::time::Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The execution configuration: `base`, then the TOML file `config` (if given), then the
/// `TOS_BLOCKSTM_*` environment variables; the caller applies its flags last.
pub fn load_config(
    base: tos_adapter::ExecutionConfig,
    config: Option<&Path>,
) -> Result<tos_adapter::ExecutionConfig> {
    let mut config_value = base;
    if let Some(path) = config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        config_value = config_value
            .with_toml(&text)
            .with_context(|| format!("in {}", path.display()))?;
    }
    Ok(config_value.with_env(std::env::vars())?)
}
