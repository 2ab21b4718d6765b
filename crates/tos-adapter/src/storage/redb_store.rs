//! The persistent embedded store on `redb` (pure Rust, ACID): one write transaction per
//! block, so a process killed during a flush leaves the whole block or none of it.
//!
//! Layout: table `state` maps `key ‖ topoheight (big-endian)` to
//! `value ‖ previous topoheight`, so "the latest version at or below a topoheight" is the
//! last entry of a range; table `blocks` maps each topoheight to its record: the chained
//! commitment of the versions it wrote and their keys (`commitment.rs`); table `meta`
//! holds `format_version`, `topoheight` and `written`.
//!
//! Opening for writing ([`RedbStore::open`]) checks the newest block against its
//! commitment; [`RedbStore::verify`] checks every block.

use super::commitment::{self, NO_PARENT};
use super::{check_next_topoheight, Change, TosStorage, Versioned};
use crate::error::StorageError;
use crate::primitives::{Hash, MultiSigConfig, PublicKey};
use crate::state::{DataKey, Global, StateKey, StateValue};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The on-disk format this program writes and reads.
/// Version 2 added the contract keys and values, version 3 the chain's global values,
/// version 4 the block records; an older database is upgraded in place on open (its
/// records computed from the versions it holds).
pub const FORMAT_VERSION: u64 = 4;

const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// An empty file is no database: refused, so that it is never silently replaced by a new
/// one.
fn refuse_empty(path: &Path) -> Result<(), StorageError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() == 0 => Err(StorageError::NotADatabase(format!(
            "{} is empty (0 bytes): not a tos-blockstm database; remove it to start a new one",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// redb's magic number, the first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Checks the sizes that redb's header declares against the file's length, before redb
/// reads them: redb sizes allocations from these fields, so a damaged header (bytes
/// flipped) can make it ask for terabytes and abort the process, which no `Result` and no
/// `catch_unwind` can stop. The fields are those of redb 2's file format (the version
/// `Cargo.lock` pins): page size (u32 at 12), region header pages (16), region data pages
/// (20), full regions (24), trailing data pages (28), the region tracker's page number
/// (u64 at 32, its order in the top five bits); then two commit slots of 128 bytes at 64
/// and 192, the primary one named by bit 0 of the god byte (9), each with three flags at
/// 1-3 and the page numbers of three b-tree roots at 8, 40 and 72. Every bound is one a
/// sound file meets: its layout, the tracker page and the primary slot's roots lie inside
/// the file (redb asserts as much). Only the primary slot is checked: after a crash
/// during a commit the other one may hold anything, and redb recovers from the primary.
/// A file that is not redb's (no magic number) is left to redb to refuse.
fn check_header(path: &Path) -> Result<(), StorageError> {
    use std::io::Read;
    let mut header = [0u8; 320];
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(());
    };
    let len = file.metadata().map_or(0, |m| m.len());
    if file.read_exact(&mut header).is_err() || header[..9] != REDB_MAGIC {
        return Ok(());
    }
    let u32_at = |at: usize| {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(&header[at..at + 4]);
        u64::from(u32::from_le_bytes(bytes))
    };
    let mut tracker = [0u8; 8];
    tracker.copy_from_slice(&header[32..40]);
    let page_size = u32_at(12);
    let tracker_order = u64::from_le_bytes(tracker) >> 59;
    let regions_bytes = u32_at(24)
        .checked_mul(u32_at(16) + u32_at(20))
        .and_then(|pages| pages.checked_add(u32_at(28)))
        .and_then(|pages| pages.checked_mul(page_size));
    // A page of order `order` spans `page_size << order` bytes, which must fit the file.
    let page_fits = |order: u64| {
        page_size
            .checked_shl(order as u32)
            .is_some_and(|bytes| bytes <= len)
    };
    let slot = if header[9] & 1 == 0 { 64 } else { 192 };
    let roots_fit = [(1, 8), (2, 40), (3, 72)].iter().all(|&(flag, at)| {
        let mut page = [0u8; 8];
        page.copy_from_slice(&header[slot + at..slot + at + 8]);
        header[slot + flag] == 0 || page_fits(u64::from_le_bytes(page) >> 59)
    });
    let sound = page_size.is_power_of_two()
        && page_size <= 1 << 20
        && regions_bytes.is_some_and(|bytes| bytes <= len)
        && page_fits(tracker_order)
        && roots_fit;
    if sound {
        Ok(())
    } else {
        Err(StorageError::NotADatabase(format!(
            "{} is damaged: its header declares sizes beyond the file's {len} bytes; restore it from a copy or remove it to start a new one",
            path.display()
        )))
    }
}

/// Runs redb's open of `path` through [`guarded`]. redb asserts, rather than returns an
/// error, on some damaged files (one shorter than its header says: a truncation); that
/// becomes [`StorageError::NotADatabase`] naming the file. redb leaves nothing half-open
/// behind a failed open: the `Database` was never returned.
fn open_guarded(
    path: &Path,
    open: impl FnOnce(&Path) -> Result<Database, redb::DatabaseError>,
) -> Result<Database, StorageError> {
    let opened = guarded(|| {
        open(path)
            .map_err(|e| StorageError::NotADatabase(format!("cannot open {}: {e}", path.display())))
    });
    opened.map_err(|e| match e {
        StorageError::Damaged(what) => StorageError::NotADatabase(format!(
            "{} is damaged ({what}): not a usable database; restore it from a copy or remove it to start a new one",
            path.display()
        )),
        other => other,
    })
}

/// Runs a read or a write of an open database. redb panics (asserts, `unreachable!`,
/// `unwrap`) on some damage it meets while reading pages (a root pointer into the wrong
/// page, say); that becomes [`StorageError::Damaged`], an error to the caller. A write
/// transaction in flight is dropped, so aborted: nothing of it is written.
fn guarded<T>(op: impl FnOnce() -> Result<T, StorageError>) -> Result<T, StorageError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(op)).unwrap_or_else(|payload| {
        Err(StorageError::Damaged(format!(
            "redb: {}",
            executor::panic_message(&*payload)
        )))
    })
}

fn db_error(e: impl std::fmt::Display) -> StorageError {
    StorageError::Database(e.to_string())
}

/// A version's encoded key and encoded value.
type EncodedVersion = (Vec<u8>, Vec<u8>);

/// Writes the block records of a database that has none (one of an older format), from
/// the versions it holds: the versions written at a topoheight are that block's, and a
/// topoheight between the first and the newest without any is a block that wrote nothing.
fn write_records(
    state: &redb::Table<&[u8], &[u8]>,
    blocks: &mut redb::Table<u64, &[u8]>,
    newest: Option<u64>,
) -> Result<(), StorageError> {
    let Some(newest) = newest else {
        return Ok(());
    };
    let mut by_block: BTreeMap<u64, Vec<EncodedVersion>> = BTreeMap::new();
    for entry in state.iter().map_err(db_error)? {
        let (k, v) = entry.map_err(db_error)?;
        let (key, topoheight) = split_versioned_key(k.value())?;
        // Entries come in key order, so each block's keys arrive ascending.
        by_block
            .entry(topoheight)
            .or_default()
            .push((key.to_vec(), v.value().to_vec()));
    }
    let first = by_block.keys().next().map_or(1, |&t| t.min(1));
    let mut parent = NO_PARENT;
    for topoheight in first..=newest {
        let versions = by_block.remove(&topoheight).unwrap_or_default();
        parent = commitment::commit(
            &parent,
            topoheight,
            versions.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        );
        let record = commitment::encode_record(&parent, versions.iter().map(|(k, _)| k.as_slice()));
        blocks
            .insert(topoheight, record.as_slice())
            .map_err(db_error)?;
    }
    Ok(())
}

/// Checks block `topoheight` against its record after the commitment `parent`; its
/// commitment and the number of its versions.
fn check_block(
    state: &redb::ReadOnlyTable<&[u8], &[u8]>,
    blocks: &redb::ReadOnlyTable<u64, &[u8]>,
    topoheight: u64,
    parent: &[u8; 32],
) -> Result<([u8; 32], u64), StorageError> {
    let mismatch = |what: String| StorageError::Mismatch { topoheight, what };
    let Some(bytes) = blocks.get(topoheight).map_err(db_error)? else {
        return Err(mismatch("the block has no record".into()));
    };
    let record = commitment::decode_record(topoheight, bytes.value())?;
    let mut values = Vec::with_capacity(record.keys.len());
    let mut versioned = Vec::with_capacity(80);
    for key in &record.keys {
        versioned_bytes(key, topoheight, &mut versioned);
        match state.get(versioned.as_slice()).map_err(db_error)? {
            Some(value) => values.push(value.value().to_vec()),
            None => {
                return Err(mismatch(format!(
                    "the version of key {} it wrote is missing",
                    crate::primitives::to_hex(key)
                )))
            }
        }
    }
    let computed = commitment::commit(
        parent,
        topoheight,
        record
            .keys
            .iter()
            .copied()
            .zip(values.iter().map(Vec::as_slice)),
    );
    if computed != record.commitment {
        return Err(mismatch(
            "its versions and its parent hash to another commitment".into(),
        ));
    }
    Ok((computed, record.keys.len() as u64))
}

/// What [`RedbStore::verify`] checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The first and newest topoheights checked (`None`: nothing was ever written).
    pub topoheights: Option<(u64, u64)>,
    /// The versions checked: every version the database holds.
    pub versions: u64,
    /// The newest block's commitment.
    pub commitment: [u8; 32],
}

/// State in a `redb` database file.
pub struct RedbStore {
    /// `Some` from open until drop.
    db: Option<Database>,
}

impl Drop for RedbStore {
    /// redb writes its allocator state when a database closes, and panics there on some
    /// damage (a page freed twice); that panic is caught, so closing a damaged database is
    /// never a crash. (Were the store dropped during another panic's unwinding, a panic here
    /// would abort: the store is not dropped on such paths in this crate.)
    fn drop(&mut self) {
        let db = self.db.take();
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(db)));
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

pub(crate) fn encode_key(key: &StateKey, out: &mut Vec<u8>) {
    match key {
        StateKey::Nonce(account) => {
            out.push(0);
            out.extend_from_slice(&account.0);
        }
        StateKey::Balance(account, asset) => {
            out.push(1);
            out.extend_from_slice(&account.0);
            out.extend_from_slice(&asset.0);
        }
        StateKey::MultiSig(account) => {
            out.push(2);
            out.extend_from_slice(&account.0);
        }
        StateKey::GasFee => out.push(3),
        StateKey::BurnedSupply(asset) => {
            out.push(4);
            out.extend_from_slice(&asset.0);
        }
        StateKey::ContractModule(contract) => {
            out.push(5);
            out.extend_from_slice(&contract.0);
        }
        StateKey::ContractData(contract, key) => {
            // Fixed size, like every other key: no encoded key is a prefix of another's
            // versioned keys (which end with 8 bytes of topoheight).
            let (len, bytes) = key.parts();
            out.push(6);
            out.extend_from_slice(&contract.0);
            out.push(len);
            out.extend_from_slice(bytes);
        }
        StateKey::ContractBalance(contract, asset) => {
            out.push(7);
            out.extend_from_slice(&contract.0);
            out.extend_from_slice(&asset.0);
        }
        StateKey::Global(global) => {
            out.push(8);
            out.push(*global as u8);
        }
    }
}

fn bytes32(bytes: &[u8]) -> Result<[u8; 32], StorageError> {
    bytes
        .try_into()
        .map_err(|_| StorageError::Corrupt("truncated 32-byte field".into()))
}

pub(crate) fn decode_key(bytes: &[u8]) -> Result<StateKey, StorageError> {
    let (&tag, rest) = bytes
        .split_first()
        .ok_or_else(|| StorageError::Corrupt("empty key".into()))?;
    Ok(match (tag, rest.len()) {
        (0, 32) => StateKey::Nonce(PublicKey(bytes32(rest)?)),
        (1, 64) => StateKey::Balance(
            PublicKey(bytes32(&rest[..32])?),
            Hash(bytes32(&rest[32..])?),
        ),
        (2, 32) => StateKey::MultiSig(PublicKey(bytes32(rest)?)),
        (3, 0) => StateKey::GasFee,
        (4, 32) => StateKey::BurnedSupply(Hash(bytes32(rest)?)),
        (5, 32) => StateKey::ContractModule(Hash(bytes32(rest)?)),
        (6, 65) => StateKey::ContractData(
            Hash(bytes32(&rest[..32])?),
            DataKey::from_parts(rest[32], bytes32(&rest[33..])?)
                .ok_or_else(|| StorageError::Corrupt("contract data key".into()))?,
        ),
        (7, 64) => {
            StateKey::ContractBalance(Hash(bytes32(&rest[..32])?), Hash(bytes32(&rest[32..])?))
        }
        (8, 1) => match Global::ALL.get(usize::from(rest[0])) {
            Some(global) => StateKey::Global(*global),
            None => return Err(StorageError::Corrupt(format!("global value {}", rest[0]))),
        },
        _ => {
            return Err(StorageError::Corrupt(format!(
                "key tag {tag}, {} bytes",
                rest.len()
            )))
        }
    })
}

fn encode_value(value: &StateValue, previous: Option<u64>, out: &mut Vec<u8>) {
    match value {
        StateValue::Number(n) => {
            out.push(0);
            out.extend_from_slice(&n.to_le_bytes());
        }
        StateValue::MultiSig(None) => out.push(1),
        StateValue::MultiSig(Some(config)) => {
            out.push(2);
            out.push(config.threshold);
            out.extend_from_slice(&(config.participants.len() as u16).to_le_bytes());
            for p in &config.participants {
                out.extend_from_slice(&p.0);
            }
        }
        // Either form of an entry, by its bytes.
        StateValue::Data(_) | StateValue::DataWord(_) => match value.as_data().flatten() {
            None => out.push(3),
            Some(bytes) => {
                out.push(4);
                out.extend_from_slice(&bytes);
            }
        },
        StateValue::Module(bytes) => {
            out.push(5);
            out.extend_from_slice(bytes);
        }
    }
    out.extend_from_slice(&previous.unwrap_or(u64::MAX).to_le_bytes());
}

fn decode_value(bytes: &[u8]) -> Result<(StateValue, Option<u64>), StorageError> {
    let corrupt = || StorageError::Corrupt("value does not decode".into());
    if bytes.len() < 9 {
        return Err(corrupt());
    }
    let (body, previous) = bytes.split_at(bytes.len() - 8);
    let previous = u64::from_le_bytes(previous.try_into().map_err(|_| corrupt())?);
    let previous = (previous != u64::MAX).then_some(previous);
    let value = match body {
        [0, n @ ..] if n.len() == 8 => {
            StateValue::Number(u64::from_le_bytes(n.try_into().map_err(|_| corrupt())?))
        }
        [1] => StateValue::MultiSig(None),
        [2, threshold, len0, len1, keys @ ..] => {
            let len = usize::from(u16::from_le_bytes([*len0, *len1]));
            if keys.len() != len * 32 {
                return Err(corrupt());
            }
            let participants = keys
                .chunks_exact(32)
                .map(|k| bytes32(k).map(PublicKey))
                .collect::<Result<_, _>>()?;
            StateValue::MultiSig(Some(Arc::new(MultiSigConfig {
                threshold: *threshold,
                participants,
            })))
        }
        [3] => StateValue::Data(None),
        [4, data @ ..] => StateValue::data(Some(data.into())),
        [5, module @ ..] => StateValue::Module(module.into()),
        _ => return Err(corrupt()),
    };
    Ok((value, previous))
}

fn versioned_key(key: &StateKey, topoheight: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(80);
    encode_key(key, &mut out);
    out.extend_from_slice(&topoheight.to_be_bytes());
    out
}

/// [`versioned_key`] of a key already encoded, into `out`.
fn versioned_bytes(encoded: &[u8], topoheight: u64, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(encoded);
    out.extend_from_slice(&topoheight.to_be_bytes());
}

fn split_versioned_key(bytes: &[u8]) -> Result<(&[u8], u64), StorageError> {
    if bytes.len() < 9 {
        return Err(StorageError::Corrupt("short state key".into()));
    }
    let (key, topo) = bytes.split_at(bytes.len() - 8);
    let topo = u64::from_be_bytes(
        topo.try_into()
            .map_err(|_| StorageError::Corrupt("short state key".into()))?,
    );
    Ok((key, topo))
}

impl RedbStore {
    fn db(&self) -> Result<&Database, StorageError> {
        self.db
            .as_ref()
            .ok_or_else(|| StorageError::Database("the database is closed".into()))
    }

    /// Opens the database at `path`, creating it if absent. A database written by a newer
    /// format version is refused with [`StorageError::NewerFormat`]; an empty file (what a
    /// crash before the first write, or a truncation, leaves) is refused, never taken for
    /// a new database; a newest block that no longer matches its commitment is refused with
    /// [`StorageError::Mismatch`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        let path = path.as_ref();
        refuse_empty(path)?;
        check_header(path)?;
        let db = open_guarded(path, |p| Database::create(p))?;
        let store = Self::ready(db)?;
        store.verify_newest()?;
        Ok(store)
    }

    /// Opens the existing database at `path`, refusing to create one. Nothing is written
    /// unless the file's format must be upgraded: a reader (`inspect`) leaves its bytes as
    /// they were. No block is checked against its commitment: [`RedbStore::verify`] does.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        let path = path.as_ref();
        refuse_empty(path)?;
        check_header(path)?;
        let db = open_guarded(path, |p| Database::open(p))?;
        Self::ready(db)
    }

    /// Checks the format version, and writes the tables and the version only if they are
    /// missing or older. The store owns the database before anything is read, so that a
    /// panic caught while reading leaves it to [`Drop`], which catches redb's own.
    fn ready(db: Database) -> Result<Self, StorageError> {
        let store = Self { db: Some(db) };
        store.prepare()?;
        Ok(store)
    }

    fn prepare(&self) -> Result<(), StorageError> {
        let db = self.db()?;
        guarded(|| {
            let current = {
                let txn = db.begin_read().map_err(db_error)?;
                let tables = txn.open_table(STATE).is_ok();
                let found = match txn.open_table(META) {
                    Ok(meta) => meta
                        .get("format_version")
                        .map_err(db_error)?
                        .map(|v| v.value()),
                    Err(_) => None,
                };
                if let Some(found) = found.filter(|&f| f > FORMAT_VERSION) {
                    return Err(StorageError::NewerFormat {
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
                tables && found == Some(FORMAT_VERSION)
            };
            if !current {
                let txn = db.begin_write().map_err(db_error)?;
                {
                    let state = txn.open_table(STATE).map_err(db_error)?;
                    let mut blocks = txn.open_table(BLOCKS).map_err(db_error)?;
                    let mut meta = txn.open_table(META).map_err(db_error)?;
                    if blocks.is_empty().map_err(db_error)? {
                        let written = meta.get("written").map_err(db_error)?.is_some();
                        let newest = meta.get("topoheight").map_err(db_error)?;
                        let newest = written.then(|| newest.map_or(0, |v| v.value()));
                        write_records(&state, &mut blocks, newest)?;
                    }
                    meta.insert("format_version", FORMAT_VERSION)
                        .map_err(db_error)?;
                }
                txn.commit().map_err(db_error)?;
            }
            Ok(())
        })
    }

    fn meta(&self, name: &str) -> Result<Option<u64>, StorageError> {
        guarded(|| {
            let txn = self.db()?.begin_read().map_err(db_error)?;
            let meta = txn.open_table(META).map_err(db_error)?;
            Ok(meta.get(name).map_err(db_error)?.map(|v| v.value()))
        })
    }

    /// Overwrites the stored format version (for tests of the newer-format refusal).
    #[doc(hidden)]
    pub fn set_format_version_for_test(&self, version: u64) -> Result<(), StorageError> {
        let txn = self.db()?.begin_write().map_err(db_error)?;
        {
            let mut meta = txn.open_table(META).map_err(db_error)?;
            meta.insert("format_version", version).map_err(db_error)?;
        }
        txn.commit().map_err(db_error)
    }

    /// The database's format version.
    pub fn format_version(&self) -> Result<u64, StorageError> {
        guarded(|| {
            let txn = self.db()?.begin_read().map_err(db_error)?;
            let meta = txn.open_table(META).map_err(db_error)?;
            let version = meta.get("format_version").map_err(db_error)?;
            version
                .map(|v| v.value())
                .ok_or_else(|| StorageError::Corrupt("no format version".into()))
        })
    }

    /// The commitment recorded with block `topoheight`, if it was written.
    pub fn commitment(&self, topoheight: u64) -> Result<Option<[u8; 32]>, StorageError> {
        guarded(|| {
            let txn = self.db()?.begin_read().map_err(db_error)?;
            let blocks = txn.open_table(BLOCKS).map_err(db_error)?;
            let Some(bytes) = blocks.get(topoheight).map_err(db_error)? else {
                return Ok(None);
            };
            Ok(Some(
                commitment::decode_record(topoheight, bytes.value())?.commitment,
            ))
        })
    }

    /// Checks the newest block against its record: its versions, hashed after its parent's
    /// recorded commitment, give its recorded commitment.
    pub fn verify_newest(&self) -> Result<(), StorageError> {
        if self.is_empty()? {
            return Ok(());
        }
        let newest = self.topoheight()?;
        guarded(|| {
            let txn = self.db()?.begin_read().map_err(db_error)?;
            let state = txn.open_table(STATE).map_err(db_error)?;
            let blocks = txn.open_table(BLOCKS).map_err(db_error)?;
            let parent = match newest.checked_sub(1) {
                Some(parent) => match blocks.get(parent).map_err(db_error)? {
                    Some(bytes) => commitment::decode_record(parent, bytes.value())?.commitment,
                    None => NO_PARENT,
                },
                None => NO_PARENT,
            };
            check_block(&state, &blocks, newest, &parent).map(|_| ())
        })
    }

    /// Checks every block against its record, oldest first, each after its parent's
    /// checked commitment, and that the blocks' records account for every version held;
    /// `progress(done, total)` is called after each block. The error names the first
    /// topoheight that disagrees.
    pub fn verify(&self, mut progress: impl FnMut(u64, u64)) -> Result<Verified, StorageError> {
        let written = !self.is_empty()?;
        let newest = self.topoheight()?;
        guarded(|| {
            let txn = self.db()?.begin_read().map_err(db_error)?;
            let state = txn.open_table(STATE).map_err(db_error)?;
            let blocks = txn.open_table(BLOCKS).map_err(db_error)?;
            let held = state.len().map_err(db_error)?;
            let first = match blocks.first().map_err(db_error)? {
                Some((topoheight, _)) => topoheight.value(),
                None if written => {
                    return Err(StorageError::Mismatch {
                        topoheight: newest,
                        what: "no block has a record".into(),
                    })
                }
                None => {
                    return Ok(Verified {
                        topoheights: None,
                        versions: held,
                        commitment: NO_PARENT,
                    })
                }
            };
            let total = newest.saturating_sub(first).saturating_add(1);
            let mut parent = NO_PARENT;
            let mut versions = 0u64;
            for topoheight in first..=newest {
                let (commitment, count) = check_block(&state, &blocks, topoheight, &parent)?;
                parent = commitment;
                versions = versions.saturating_add(count);
                progress(topoheight - first + 1, total);
            }
            if blocks.len().map_err(db_error)? != total {
                return Err(StorageError::Mismatch {
                    topoheight: newest,
                    what: format!(
                        "the database holds {} block records for the {total} blocks {first}..={newest}",
                        blocks.len().map_err(db_error)?
                    ),
                });
            }
            if versions != held {
                return Err(StorageError::Mismatch {
                    topoheight: newest,
                    what: format!(
                        "the database holds {held} versions, the blocks' records name {versions}"
                    ),
                });
            }
            Ok(Verified {
                topoheights: Some((first, newest)),
                versions,
                commitment: parent,
            })
        })
    }

    /// Every key with its latest version, in key order.
    pub fn latest_all(&self) -> Result<Vec<(StateKey, Versioned<StateValue>)>, StorageError> {
        guarded(|| {
            let txn = self.db()?.begin_read().map_err(db_error)?;
            let table = txn.open_table(STATE).map_err(db_error)?;
            let mut out: Vec<(StateKey, Versioned<StateValue>)> = Vec::new();
            for entry in table.iter().map_err(db_error)? {
                let (k, v) = entry.map_err(db_error)?;
                let (key_bytes, topoheight) = split_versioned_key(k.value())?;
                let key = decode_key(key_bytes)?;
                let (value, previous_topoheight) = decode_value(v.value())?;
                let version = Versioned {
                    topoheight,
                    value,
                    previous_topoheight,
                };
                // Versions of a key are adjacent and ascending: the last one wins.
                match out.last_mut() {
                    Some((last, slot)) if *last == key => *slot = version,
                    _ => out.push((key, version)),
                }
            }
            Ok(out)
        })
    }
}

impl TosStorage for RedbStore {
    fn latest_entries(&self) -> Result<Vec<(StateKey, StateValue)>, StorageError> {
        Ok(self
            .latest_all()?
            .into_iter()
            .map(|(key, version)| (key, version.value))
            .collect())
    }

    fn topoheight(&self) -> Result<u64, StorageError> {
        Ok(self.meta("topoheight")?.unwrap_or(0))
    }

    fn is_empty(&self) -> Result<bool, StorageError> {
        Ok(self.meta("written")?.is_none())
    }

    fn get_versioned(
        &self,
        key: &StateKey,
        topoheight: u64,
    ) -> Result<Option<Versioned<StateValue>>, StorageError> {
        guarded(|| {
            let txn = self.db()?.begin_read().map_err(db_error)?;
            let table = txn.open_table(STATE).map_err(db_error)?;
            let low = versioned_key(key, 0);
            let high = versioned_key(key, topoheight);
            let mut range = table
                .range(low.as_slice()..=high.as_slice())
                .map_err(db_error)?;
            match range.next_back() {
                None => Ok(None),
                Some(entry) => {
                    let (k, v) = entry.map_err(db_error)?;
                    let (_, topo) = split_versioned_key(k.value())?;
                    let (value, previous_topoheight) = decode_value(v.value())?;
                    Ok(Some(Versioned {
                        topoheight: topo,
                        value,
                        previous_topoheight,
                    }))
                }
            }
        })
    }

    fn history(&self, key: &StateKey) -> Result<Vec<Versioned<StateValue>>, StorageError> {
        guarded(|| {
            let txn = self.db()?.begin_read().map_err(db_error)?;
            let table = txn.open_table(STATE).map_err(db_error)?;
            let low = versioned_key(key, 0);
            let high = versioned_key(key, u64::MAX);
            let mut out = Vec::new();
            for entry in table
                .range(low.as_slice()..=high.as_slice())
                .map_err(db_error)?
                .rev()
            {
                let (k, v) = entry.map_err(db_error)?;
                let (_, topo) = split_versioned_key(k.value())?;
                let (value, previous_topoheight) = decode_value(v.value())?;
                out.push(Versioned {
                    topoheight: topo,
                    value,
                    previous_topoheight,
                });
            }
            Ok(out)
        })
    }

    fn write_block(&self, topoheight: u64, changes: &[Change]) -> Result<(), StorageError> {
        guarded(|| {
            let txn = self.db()?.begin_write().map_err(db_error)?;
            {
                let mut meta = txn.open_table(META).map_err(db_error)?;
                let written = meta.get("written").map_err(db_error)?.is_some();
                let stored = meta
                    .get("topoheight")
                    .map_err(db_error)?
                    .map_or(0, |v| v.value());
                check_next_topoheight(written, stored, topoheight)?;
                let mut table = txn.open_table(STATE).map_err(db_error)?;
                // Encoded key → encoded value, ascending (the record's order); a key given
                // twice keeps its last value, as the table would.
                let mut versions: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
                let (mut low, mut high, mut at) = (Vec::new(), Vec::new(), Vec::new());
                for (key, value) in changes {
                    let mut encoded = Vec::with_capacity(68);
                    encode_key(key, &mut encoded);
                    versioned_bytes(&encoded, 0, &mut low);
                    versioned_bytes(&encoded, u64::MAX, &mut high);
                    versioned_bytes(&encoded, topoheight, &mut at);
                    let previous = match table
                        .range(low.as_slice()..=high.as_slice())
                        .map_err(db_error)?
                        .next_back()
                    {
                        Some(entry) => {
                            let (k, _) = entry.map_err(db_error)?;
                            Some(split_versioned_key(k.value())?.1)
                        }
                        None => None,
                    };
                    let mut bytes = Vec::with_capacity(24);
                    encode_value(value, previous, &mut bytes);
                    table
                        .insert(at.as_slice(), bytes.as_slice())
                        .map_err(db_error)?;
                    versions.insert(encoded, bytes);
                }
                let mut blocks = txn.open_table(BLOCKS).map_err(db_error)?;
                let parent = match topoheight.checked_sub(1) {
                    Some(parent) => match blocks.get(parent).map_err(db_error)? {
                        Some(bytes) => commitment::decode_record(parent, bytes.value())?.commitment,
                        None => NO_PARENT,
                    },
                    None => NO_PARENT,
                };
                let commitment = commitment::commit(
                    &parent,
                    topoheight,
                    versions.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
                );
                let record =
                    commitment::encode_record(&commitment, versions.keys().map(Vec::as_slice));
                blocks
                    .insert(topoheight, record.as_slice())
                    .map_err(db_error)?;
                meta.insert("topoheight", topoheight).map_err(db_error)?;
                meta.insert("written", 1).map_err(db_error)?;
            }
            // Dropping an uncommitted transaction aborts it: an error above writes nothing.
            txn.commit().map_err(db_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::DataWord;

    /// A database of format 3 (no block records) gets them on open, computed from its
    /// versions: the same commitments the blocks were written with, and it verifies.
    #[test]
    fn an_older_database_gets_its_records_on_open() {
        let path =
            std::env::temp_dir().join(format!("tos-blockstm-records-{}.redb", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let a = PublicKey([3; 32]);
        let written = {
            let store = RedbStore::open(&path).unwrap();
            for topoheight in 0..4u64 {
                let changes = match topoheight {
                    2 => Vec::new(),
                    _ => vec![
                        (StateKey::Nonce(a), StateValue::Number(topoheight)),
                        (StateKey::GasFee, StateValue::Number(topoheight * 10)),
                    ],
                };
                store.write_block(topoheight, &changes).unwrap();
            }
            let verified = store.verify(|_, _| {}).unwrap();
            assert_eq!(verified.topoheights, Some((0, 3)));
            assert_eq!(verified.versions, 6);
            verified.commitment
        };
        {
            let db = Database::open(&path).unwrap();
            let txn = db.begin_write().unwrap();
            assert!(txn.delete_table(BLOCKS).unwrap());
            txn.open_table(META)
                .unwrap()
                .insert("format_version", 3)
                .unwrap();
            txn.commit().unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.format_version().unwrap(), FORMAT_VERSION);
        let verified = store.verify(|_, _| {}).unwrap();
        assert_eq!(verified.commitment, written);
        assert_eq!(store.commitment(3).unwrap(), Some(written));
        drop(store);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn keys_and_values_round_trip() {
        let a = PublicKey([7; 32]);
        let h = Hash([9; 32]);
        for key in [
            StateKey::Nonce(a),
            StateKey::Balance(a, h),
            StateKey::MultiSig(a),
            StateKey::GasFee,
            StateKey::BurnedSupply(h),
        ] {
            let mut bytes = Vec::new();
            encode_key(&key, &mut bytes);
            assert_eq!(decode_key(&bytes).unwrap(), key);
        }
        for (value, prev) in [
            (StateValue::Number(42), Some(3)),
            (StateValue::MultiSig(None), None),
            (
                StateValue::MultiSig(Some(Arc::new(MultiSigConfig {
                    threshold: 2,
                    participants: vec![a, PublicKey([1; 32])],
                }))),
                Some(0),
            ),
            (StateValue::Data(None), None),
            (StateValue::data(Some(vec![1, 2, 3].into())), Some(1)),
            (StateValue::data(Some(vec![4; 8].into())), Some(2)),
            (StateValue::data(Some(vec![5; 40].into())), None),
            (StateValue::Module(vec![6; 64].into()), None),
        ] {
            let mut bytes = Vec::new();
            encode_value(&value, prev, &mut bytes);
            assert_eq!(decode_value(&bytes).unwrap(), (value, prev));
        }
        // An 8-byte entry is stored as the same bytes however it is held, and read back
        // inline.
        let word = [8, 7, 6, 5, 4, 3, 2, 1];
        let (mut inline, mut shared) = (Vec::new(), Vec::new());
        encode_value(
            &StateValue::DataWord(DataWord::new(word)),
            None,
            &mut inline,
        );
        encode_value(
            &StateValue::Data(Some(word.to_vec().into())),
            None,
            &mut shared,
        );
        assert_eq!(inline, shared);
        assert!(matches!(
            decode_value(&shared).unwrap().0,
            StateValue::DataWord(w) if w.to_bytes() == word
        ));
        assert!(decode_key(&[9, 1]).is_err());
        assert!(decode_value(&[0, 1, 2]).is_err());
    }
}
