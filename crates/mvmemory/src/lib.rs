//! Block-STM multi-version memory.
//!
//! For every key written during a block, the write of each transaction index: a full
//! value, a commutative credit (`+n` on a `u64`) or a checked debit (`-n`), tagged with
//! the incarnation that wrote it, possibly flagged ESTIMATE after that incarnation was
//! aborted. A read by transaction `i` returns the highest write below `i`
//! ([`ReadOutcome`]): a value with its
//! [`Version`], credits and debits folded onto the nearest full value below (or a chain
//! of them to fold onto storage's value), a dependency on the transaction whose ESTIMATE
//! it hit, or "not found: read storage".
//!
//! Per transaction the memory keeps the keys its last incarnation wrote and the reads it
//! made, so that it can
//! - [`record`](MVMemory::record) a new incarnation's writes, removing the keys the
//!   previous incarnation wrote and this one did not, and report whether it wrote a key the
//!   previous one did not *and a higher transaction may have read that key before the
//!   write* (the scheduler must then revalidate every higher transaction; the paper
//!   revalidates on every new key, see "Read-miss marks" in `index.rs`);
//! - [`convert_writes_to_estimates`](MVMemory::convert_writes_to_estimates) when the
//!   incarnation is aborted;
//! - [`validate_read_set`](MVMemory::validate_read_set): re-read every key and compare.
//!   The executor records its reads as [`LocatedReads`]: a read that found its key's node
//!   ([`MVMemory::read_located`]) keeps the node (8 bytes) instead of the key, and validation
//!   re-reads that node's versions without hashing the key or walking the index (a key
//!   has one node per block, never removed). Only reads that found no node keep the key
//!   and look it up again: a lower transaction may have inserted it since;
//! - produce the block's [`final_writes`](MVMemory::final_writes) per transaction, credits
//!   and debits resolved on a base value the caller supplies, every intermediate sum
//!   checked.
//!
//! # Deltas, debits and checks
//!
//! A delta is written blind: the writer does not read the key, so credits to one account
//! (and every transaction's fee into one accumulator) do not conflict. A debit
//! ([`WriteOp::Debit`]) is written blind too, by a transaction whose own check (a read of
//! the kind [`ReadKind::Check`]) showed the value covers it. Each key's versions keep, for
//! every credit and debit, the [`Chain`] of them from the nearest full value below (or
//! from storage): its net sum and its lowest and highest partial sum, updated with every
//! write and removal, so a read is one lookup, not a walk (while an ESTIMATE is among
//! the versions, reads walk them, to meet it).
//!
//! Every fold checks each partial sum. Above `u64::MAX`, a credit does not fit: the
//! speculation that none overflows failed, a read returns [`ReadOutcome::DeltaOverflow`]
//! and [`MVMemory::final_writes`], walking each written key's chain in block order, fails
//! with the index of the first transaction whose delta does not fit
//! ([`FoldError::DeltaOverflow`]); the executor then falls back to sequential execution,
//! which rejects exactly that credit. Below zero, some debit's check no longer holds on
//! the versions below it: only speculation can see that (that transaction's validation
//! fails), and a read returns [`ReadOutcome::DebitUnderflow`] (or a chain on storage that
//! [`Chain::on`] refuses), which the executor records as [`ReadKind::Inconsistent`]: a
//! read that never validates. Overflow is never a silent wrap, a debit never a silent
//! saturation.
//!
//! Reads that folded are validated by their number ([`ReadKind::Resolved`],
//! [`ReadKind::Unresolved`], the latter with storage's number it folded on): any change
//! below that yields the same number yields the same read. A check is validated by
//! whether it still holds: on a full value, on a fold onto one, and on storage's number
//! (plus a chain) when the read recorded it.
//!
//! # Concurrency and memory ordering
//!
//! - The key index (`index.rs`) is a fixed array of buckets, each an atomic pointer to a
//!   chain of nodes, one per key written in the block. A lookup takes no lock and writes
//!   nothing (acquire loads only); a key new to the block is one compare-and-swap that
//!   publishes its node, already holding its first write (release). Nodes are never
//!   removed during a block, and live in chunks that each [`Writer`] (one per worker
//!   thread) takes whole, so a new key costs no shared allocation.
//! - Each key's versions are a sorted `SmallVec` behind a `Mutex`. Every later read,
//!   write, removal and ESTIMATE flag of a key happens under that lock, so its
//!   acquire/release order is the only ordering the data needs: a read that sees a write
//!   also sees the value written.
//! - Each transaction's slot (written keys and read set) is behind its own `Mutex`. The
//!   scheduler serialises who touches a slot: one incarnation at a time records, and an
//!   abort happens only after the incarnation finished. The mutex makes the hand-over
//!   between the threads involved visible (acquire/release), and makes a concurrent
//!   validation of an older, already-superseded incarnation harmless: it reads a
//!   consistent read set whose result the scheduler then ignores.
//!
//! Lock order: transaction slot → key versions (the index itself takes no lock; the mutex
//! guarding chunks allocated beyond the block's estimate is taken with no other lock
//! held). No code waits on a lock while holding a key's versions lock.
//!
//! Every lock and atomic comes from `sync.rs`: under `cfg(loom)` they are loom's, so the
//! models in `loom-tests/` explore the index's compare-and-swap races too. The unsafe code
//! (the index's nodes and chunks) is also run under Miri by the unit tests
//! (`cargo +nightly miri test -p mvmemory`).

#![warn(missing_docs)]

mod hash;
mod index;
mod sync;
mod versions;

pub use hash::{FxBuildHasher, FxHasher};
pub use versions::{Chain, ChainError, FinalError, FoldError, ReadOutcome, WriteOp};

use index::{KeyIndex, NodeCursor, NodeRef};
use smallvec::SmallVec;
use std::hash::Hash;
use std::marker::PhantomData;
use sync::{lock, Mutex};

/// Index of a transaction in its block.
pub type TxnIndex = usize;
/// The number of an execution of a transaction: 0 for the first, +1 for each re-execution.
pub type Incarnation = u32;

/// One execution of one transaction: what a read recorded as the origin of its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    /// The transaction.
    pub txn_idx: TxnIndex,
    /// Its incarnation.
    pub incarnation: Incarnation,
}

/// A value that deltas can be added to: the `u64` it holds, if it is a number.
pub trait DeltaValue: Clone {
    /// The value holding the number `n`.
    fn from_u64(n: u64) -> Self;
    /// The number this value holds, `None` if it is no number (a delta on it fails).
    fn as_u64(&self) -> Option<u64>;
}

impl DeltaValue for u64 {
    #[inline]
    fn from_u64(n: u64) -> Self {
        n
    }
    #[inline]
    fn as_u64(&self) -> Option<u64> {
        Some(*self)
    }
}

/// What a read observed, kept in the read set and compared again by validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadKind {
    /// Nothing written below: storage's value.
    Storage,
    /// A full value written by this version.
    Version(Version),
    /// Credits and debits folded onto a full value: this number.
    Resolved(u64),
    /// Credits and debits folded onto storage's number `base`: this number.
    Unresolved {
        /// The number read.
        value: u64,
        /// Storage's number under the chain.
        base: u64,
    },
    /// A check that the number is at least `required`, which held: the read stays valid
    /// while the check holds, whatever the number ([`ReadOutcome`]s folded on `base`
    /// where they need storage's number; without it, only those that do not).
    Check {
        /// The number the check required.
        required: u64,
        /// Storage's number, if the read knew it.
        base: Option<u64>,
    },
    /// A read that met an inconsistent state ([`ReadOutcome::DebitUnderflow`]): never
    /// valid, so its transaction runs again.
    Inconsistent,
}

impl<T> ReadOutcome<T> {
    /// What validation compares for this outcome; `None` for the outcomes that do not
    /// complete a read (a dependency, an overflow, an underflow) and for a chain on
    /// storage, whose number needs storage's value.
    #[inline]
    pub fn kind(&self) -> Option<ReadKind> {
        match self {
            ReadOutcome::Versioned(version, _) => Some(ReadKind::Version(*version)),
            ReadOutcome::Resolved(n) => Some(ReadKind::Resolved(*n)),
            ReadOutcome::NotFound => Some(ReadKind::Storage),
            ReadOutcome::Unresolved(_)
            | ReadOutcome::Dependency(_)
            | ReadOutcome::DeltaOverflow
            | ReadOutcome::DebitUnderflow => None,
        }
    }
}

/// One recorded read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadDescriptor<K> {
    /// The key read.
    pub key: K,
    /// What the read observed.
    pub kind: ReadKind,
}

/// Reads recorded by key: what [`MVMemory::record`] takes (the executor's reads are
/// [`LocatedReads`]).
pub type ReadSet<K> = SmallVec<[ReadDescriptor<K>; 4]>;

/// A [`ReadKind`] as a slot keeps it (24 bytes): what validation compares.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Observed {
    tag: Tag,
    incarnation: Incarnation,
    /// The version's transaction, the number, or the number a check required.
    value: u64,
    /// Storage's number under a chain.
    base: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum Tag {
    Storage,
    Version,
    Resolved,
    Unresolved,
    Check,
    CheckWithoutBase,
    Inconsistent,
}

impl From<ReadKind> for Observed {
    #[inline]
    fn from(kind: ReadKind) -> Self {
        let (tag, incarnation, value, base) = match kind {
            ReadKind::Storage => (Tag::Storage, 0, 0, 0),
            // Lossless: `usize` is at most 64 bits on every target Rust supports.
            ReadKind::Version(version) => {
                (Tag::Version, version.incarnation, version.txn_idx as u64, 0)
            }
            ReadKind::Resolved(n) => (Tag::Resolved, 0, n, 0),
            ReadKind::Unresolved { value, base } => (Tag::Unresolved, 0, value, base),
            ReadKind::Check {
                required,
                base: Some(base),
            } => (Tag::Check, 0, required, base),
            ReadKind::Check {
                required,
                base: None,
            } => (Tag::CheckWithoutBase, 0, required, 0),
            ReadKind::Inconsistent => (Tag::Inconsistent, 0, 0, 0),
        };
        Observed {
            tag,
            incarnation,
            value,
            base,
        }
    }
}

impl Observed {
    /// Whether a read that now has `outcome` (full values projected to their number)
    /// reads what this one did: the same version or storage, the same number, or a
    /// number the check still accepts.
    #[inline]
    fn holds(&self, outcome: &ReadOutcome<Option<u64>>) -> bool {
        let base = match self.tag {
            Tag::Unresolved | Tag::Check => Some(self.base),
            _ => None,
        };
        // The number the read would now see, where the outcome and the base give one.
        let number = || match outcome {
            ReadOutcome::Versioned(_, number) => *number,
            ReadOutcome::Resolved(n) => Some(*n),
            ReadOutcome::Unresolved(chain) => base.and_then(|base| chain.on(base).ok()),
            ReadOutcome::NotFound => base,
            ReadOutcome::Dependency(_)
            | ReadOutcome::DeltaOverflow
            | ReadOutcome::DebitUnderflow => None,
        };
        match self.tag {
            Tag::Storage => matches!(outcome, ReadOutcome::NotFound),
            Tag::Version => matches!(outcome, ReadOutcome::Versioned(version, _)
                if version.txn_idx as u64 == self.value
                    && version.incarnation == self.incarnation),
            Tag::Resolved => matches!(outcome, ReadOutcome::Resolved(n) if *n == self.value),
            Tag::Unresolved => {
                matches!(
                    outcome,
                    ReadOutcome::Resolved(_) | ReadOutcome::Unresolved(_)
                ) && number() == Some(self.value)
            }
            Tag::Check | Tag::CheckWithoutBase => number().is_some_and(|n| n >= self.value),
            Tag::Inconsistent => false,
        }
    }
}

/// The read set of one incarnation as a transaction's slot keeps it.
struct Reads<K, V> {
    /// Reads of keys that had a node in the index when read: validation re-reads the
    /// node's versions directly (no hashing, no walk of a chain, no key compared), and
    /// the slot holds 24 bytes per read (the node and what it observed) instead of the
    /// key and a `ReadKind` (96 bytes for a 66-byte key).
    found: SmallVec<[(NodeRef<K, V>, Observed); 4]>,
    /// Reads of keys not in the index when read (and reads recorded by key): validation
    /// looks them up again, as a lower transaction may have written the key since.
    missed: SmallVec<[(K, Observed); 1]>,
}

impl<K, V> Reads<K, V> {
    fn new() -> Self {
        Self {
            found: SmallVec::new(),
            missed: SmallVec::new(),
        }
    }
}

/// Where [`MVMemory::read_located`] found a key: its node in the block's index, if the
/// key was written in the block so far. Pushed into a [`LocatedReads`] with the read.
pub struct Location<'m, K, V> {
    node: Option<NodeRef<K, V>>,
    /// Storage's number at the key, if a reader kept it ([`MVMemory::keep_base`]).
    base: Option<u64>,
    /// The address of the memory that located it.
    owner: usize,
    memory: PhantomData<&'m ()>,
}

/// The read set of one incarnation, each read with where the memory found its key
/// ([`MVMemory::located_reads`], [`Writer::record_with_output`]).
///
/// It borrows the memory that made it: the nodes it points to are that memory's, and
/// stay valid as long as the memory is borrowed (clearing it takes `&mut`).
pub struct LocatedReads<'m, K, V> {
    /// The address of the memory whose nodes `reads.found` points to.
    owner: usize,
    reads: Reads<K, V>,
    memory: PhantomData<&'m ()>,
}

impl<'m, K: Clone, V> LocatedReads<'m, K, V> {
    /// Records that the incarnation read `key`, found at `location`, and observed `kind`.
    /// A location found by another memory is recorded by key.
    #[inline]
    pub fn push(&mut self, location: Location<'m, K, V>, key: &K, kind: ReadKind) {
        match location.node {
            Some(node) if location.owner == self.owner => {
                self.reads.found.push((node, kind.into()));
            }
            _ => self.reads.missed.push((key.clone(), kind.into())),
        }
    }

    /// [`push`](Self::push) of a [`ReadKind::Check`], with a handle to raise what it
    /// requires later ([`raise_check`](Self::raise_check)).
    #[inline]
    pub fn push_check(
        &mut self,
        location: Location<'m, K, V>,
        key: &K,
        required: u64,
        base: Option<u64>,
    ) -> CheckHandle {
        let kind = ReadKind::Check { required, base };
        match location.node {
            Some(node) if location.owner == self.owner => {
                self.reads.found.push((node, kind.into()));
                CheckHandle::Found(self.reads.found.len() - 1)
            }
            _ => {
                self.reads.missed.push((key.clone(), kind.into()));
                CheckHandle::Missed(self.reads.missed.len() - 1)
            }
        }
    }

    /// Makes the check `handle` recorded require `required` if that is more: a second
    /// check of the number the first one saw, which holds on it too.
    #[inline]
    pub fn raise_check(&mut self, handle: CheckHandle, required: u64) {
        let observed = match handle {
            CheckHandle::Found(at) => self.reads.found.get_mut(at).map(|(_, o)| o),
            CheckHandle::Missed(at) => self.reads.missed.get_mut(at).map(|(_, o)| o),
        };
        if let Some(observed) = observed {
            if matches!(observed.tag, Tag::Check | Tag::CheckWithoutBase) {
                observed.value = observed.value.max(required);
            }
        }
    }

    /// The number of reads recorded.
    pub fn len(&self) -> usize {
        self.reads.found.len() + self.reads.missed.len()
    }

    /// Whether no read was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K, V> std::fmt::Debug for LocatedReads<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocatedReads")
            .field("found", &self.reads.found.len())
            .field("missed", &self.reads.missed.len())
            .finish()
    }
}

impl<K, V> Location<'_, K, V> {
    /// Storage's number at the key, if a reader kept it in the memory
    /// ([`MVMemory::keep_base`]).
    #[inline]
    pub fn base(&self) -> Option<u64> {
        self.base
    }
}

impl<K, V> std::fmt::Debug for Location<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Location")
            .field("found", &self.node.is_some())
            .finish()
    }
}

/// Where [`LocatedReads::push_check`] recorded a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckHandle {
    /// Among the reads located in the index, at this position.
    Found(usize),
    /// Among the reads recorded by key, at this position.
    Missed(usize),
}

/// The writes of one incarnation, one per key.
pub type WriteSet<K, V> = SmallVec<[(K, WriteOp<V>); 4]>;

/// What the last recorded incarnation of a transaction wrote, read and returned.
struct TxnSlot<K, V, O> {
    /// The [generation](MVMemory::generation) of the block that recorded `written`: a
    /// slot of an earlier block (not finished before `reuse`) counts as empty, so its
    /// nodes, dropped since, are never touched.
    generation: u64,
    /// The nodes of the keys written by the last recorded incarnation.
    written: SmallVec<[NodeRef<K, V>; 4]>,
    /// Reads of the last recorded incarnation (its nodes only valid in `generation`).
    reads: Reads<K, V>,
    /// The output of the last recorded incarnation, kept under the same lock as its
    /// reads so that recording an incarnation takes one lock.
    output: Option<O>,
}

/// The multi-version memory of one block; `O` is the output kept with each transaction's
/// last incarnation (see [`Writer::record_with_output`]).
pub struct MVMemory<K, V, O = ()> {
    index: KeyIndex<K, V>,
    txns: Vec<Mutex<TxnSlot<K, V, O>>>,
    /// Incremented by every [`reuse`](Self::reuse): the index was cleared, and the nodes
    /// a slot of an earlier generation points to are gone.
    generation: u64,
}

fn empty_slot<K, V, O>() -> Mutex<TxnSlot<K, V, O>> {
    Mutex::new(TxnSlot {
        generation: 0,
        written: SmallVec::new(),
        reads: Reads::new(),
        output: None,
    })
}

impl<K, V, O> MVMemory<K, V, O>
where
    K: Eq + Hash + Clone,
    V: DeltaValue,
{
    /// Memory for a block of `num_txns` transactions.
    pub fn new(num_txns: usize) -> Self {
        Self::with_key_capacity(num_txns, num_txns)
    }

    /// Memory for a block of `num_txns` transactions expected to write about `keys` keys
    /// (a hint that saves the index from growing while workers insert).
    pub fn with_key_capacity(num_txns: usize, keys: usize) -> Self {
        Self {
            index: KeyIndex::new(keys),
            txns: (0..num_txns).map(|_| empty_slot()).collect(),
            generation: 0,
        }
    }

    /// The number of transactions of the block.
    pub fn num_txns(&self) -> usize {
        self.txns.len()
    }

    /// Makes this memory an empty one for a block of `num_txns` transactions, keeping its
    /// allocations (the index's tables and the slots; a new block would fault in fresh
    /// pages on the critical path). Every slot of the previous block must have been
    /// [finished](Self::finish_txn); slots beyond it are new.
    pub fn reuse(&mut self, num_txns: usize) {
        self.index.clear(num_txns);
        self.generation = self.generation.wrapping_add(1);
        self.txns.truncate(num_txns);
        self.txns.resize_with(num_txns, empty_slot);
    }

    /// What transaction `txn_idx` reads at `key`, with the value cloned. The read counts
    /// for [`Writer::record`]'s report of writes read around.
    #[inline]
    pub fn read(&self, key: &K, txn_idx: TxnIndex) -> ReadOutcome<V> {
        self.read_located(key, txn_idx).0
    }

    /// [`read`](Self::read), with where the key was found, for a [`LocatedReads`].
    #[inline]
    pub fn read_located(&self, key: &K, txn_idx: TxnIndex) -> (ReadOutcome<V>, Location<'_, K, V>) {
        let node = self.index.locate(key, txn_idx);
        let (outcome, base) = match node {
            // SAFETY: the index is not cleared while `&self` is borrowed.
            Some(node) => unsafe { node.versions() }.read_with_base(txn_idx, V::clone),
            None => (ReadOutcome::NotFound, None),
        };
        let location = Location {
            node,
            base,
            owner: self.address(),
            memory: PhantomData,
        };
        (outcome, location)
    }

    /// Keeps storage's number at the key `location` found, for the next readers of a chain
    /// on it ([`Location::base`]). Nothing if the key had no node.
    pub fn keep_base(&self, location: &Location<'_, K, V>, base: u64) {
        if let Some(node) = location.node {
            if location.owner == self.address() {
                // SAFETY: a node this memory located, which `location` borrows: the index
                // is not cleared meanwhile.
                unsafe { node.versions() }.keep_base(base);
            }
        }
    }

    /// An empty read set for reads located by this memory.
    pub fn located_reads(&self) -> LocatedReads<'_, K, V> {
        LocatedReads {
            owner: self.address(),
            reads: Reads::new(),
            memory: PhantomData,
        }
    }

    /// This memory's address, which tells its [`Location`]s from another memory's: it
    /// does not move while they borrow it.
    #[inline]
    fn address(&self) -> usize {
        self as *const Self as usize
    }

    /// Puts `reads` into a slot's `slot_reads`, keeping by key the reads another memory
    /// located (a caller's mistake).
    #[inline]
    fn adopt(&self, reads: LocatedReads<'_, K, V>, slot_reads: &mut Reads<K, V>) {
        *slot_reads = reads.reads;
        if reads.owner != self.address() {
            Self::rekey(slot_reads);
        }
    }

    /// Keeps by key the reads of `reads` that another memory located.
    #[cold]
    fn rekey(reads: &mut Reads<K, V>) {
        let Reads { found, missed } = reads;
        for (node, observed) in found.drain(..) {
            // SAFETY: `LocatedReads::push` keeps only nodes of the memory that made the
            // read set, which stays borrowed (so not cleared) while the read set lives.
            let key = unsafe { node.key() }.clone();
            missed.push((key, observed));
        }
    }

    /// A writer for one thread: [`Writer::record`] and [`Writer::record_with_output`]
    /// put the nodes of keys new to the block in a chunk of memory the writer took for
    /// itself. Give each worker thread one for the block.
    pub fn writer(&self) -> Writer<'_, K, V, O> {
        Writer {
            memory: self,
            nodes: NodeCursor::new(&self.index),
        }
    }

    /// Records the reads and writes of `version` (see [`Writer::record`]) with a writer of
    /// its own: convenient for tests, but each call takes a fresh chunk of node memory
    /// (use one [`writer`](Self::writer) per thread for many calls).
    pub fn record(&self, version: Version, reads: ReadSet<K>, writes: WriteSet<K, V>) -> bool {
        self.writer().record(version, reads, writes)
    }

    /// Reads recorded by key.
    #[inline]
    fn keyed(reads: ReadSet<K>) -> Reads<K, V> {
        let mut missed = SmallVec::new();
        // Most read sets recorded by key are empty (the engine's own reads are located);
        // moving an empty one through an iterator copied its whole inline buffer.
        if !reads.is_empty() {
            missed.extend(reads.into_iter().map(|read| (read.key, read.kind.into())));
        }
        Reads {
            found: SmallVec::new(),
            missed,
        }
    }

    fn record_inner(
        &self,
        cursor: &mut NodeCursor<'_, K, V>,
        version: Version,
        store_reads: impl FnOnce(&mut Reads<K, V>),
        writes: WriteSet<K, V>,
        output: Option<O>,
    ) -> bool {
        let Version {
            txn_idx,
            incarnation,
        } = version;
        let Some(slot) = self.txns.get(txn_idx) else {
            return false;
        };
        let mut nodes = SmallVec::<[NodeRef<K, V>; 4]>::new();
        // The nodes whose write the index reports a higher transaction may have read
        // around; any of them new to this transaction makes a new location.
        let mut read_around = SmallVec::<[NodeRef<K, V>; 4]>::new();
        for (key, op) in writes {
            let (node, unread) = self.index.write(cursor, key, txn_idx, incarnation, op);
            if !nodes.contains(&node) {
                nodes.push(node);
                if !unread {
                    read_around.push(node);
                }
            }
        }
        let mut slot = lock(slot);
        let previous = self.written(&slot);
        for old in previous {
            if !nodes.contains(old) {
                // SAFETY: `written` returns only this generation's nodes, and the index
                // is not cleared while `&self` is borrowed.
                unsafe { old.versions() }.remove(txn_idx);
            }
        }
        let wrote_new_location = read_around.iter().any(|node| !previous.contains(node));
        slot.generation = self.generation;
        slot.written = nodes;
        // Into the slot in place: the read set is moved once, from the caller's.
        store_reads(&mut slot.reads);
        slot.output = output;
        wrote_new_location
    }

    /// Flags every write of `txn_idx`'s last incarnation as an ESTIMATE.
    pub fn convert_writes_to_estimates(&self, txn_idx: TxnIndex) {
        if let Some(slot) = self.txns.get(txn_idx) {
            let slot = lock(slot);
            for node in self.written(&slot) {
                // SAFETY: as in `record_inner`.
                unsafe { node.versions() }.mark_estimate(txn_idx);
            }
        }
    }

    /// Takes `txn_idx`'s last incarnation out of the memory: its writes leave every key's
    /// versions (so [`finish_txn`](Self::finish_txn) of a lower transaction sees it as
    /// the highest writer where it would be without `txn_idx`), its reads and output are
    /// dropped and its slot is left empty for [`reuse`](Self::reuse). For a block that
    /// stops early and finishes its suffix elsewhere: call it, for every transaction of
    /// the suffix, once no thread records or reads any more.
    pub fn discard_txn(&self, txn_idx: TxnIndex) {
        let Some(slot) = self.txns.get(txn_idx) else {
            return;
        };
        let mut slot = lock(slot);
        for node in self.written(&slot) {
            // SAFETY: as in `record_inner`.
            unsafe { node.versions() }.remove(txn_idx);
        }
        slot.written.clear();
        slot.reads.found.clear();
        slot.reads.missed.clear();
        slot.output = None;
    }

    /// Drops the read set of `txn_idx`'s last incarnation, for a transaction that is
    /// final (its reads will never need validating again): a validation of it holds
    /// from then on.
    pub fn release_reads(&self, txn_idx: TxnIndex) {
        if let Some(slot) = self.txns.get(txn_idx) {
            lock(slot).reads = Reads::new();
        }
    }

    /// Whether every read of `txn_idx`'s last incarnation still reads what it read.
    pub fn validate_read_set(&self, txn_idx: TxnIndex) -> bool {
        let Some(slot) = self.txns.get(txn_idx) else {
            return false;
        };
        let slot = lock(slot);
        let found: &[_] = if slot.generation == self.generation {
            &slot.reads.found
        } else {
            &[]
        };
        found.iter().all(|&(node, observed)| {
            // SAFETY: as in `record_inner`: a node of this generation, and the index is
            // not cleared while `&self` is borrowed. A key's node is its only one in the
            // block, so this reads what a lookup of the key would.
            observed.holds(&unsafe { node.versions() }.read(txn_idx, V::as_u64))
        }) && slot.reads.missed.iter().all(|(key, observed)| {
            observed.holds(
                &self
                    .index
                    .with(key, |versions| versions.read(txn_idx, V::as_u64))
                    .unwrap_or(ReadOutcome::NotFound),
            )
        })
    }

    /// The final value of each key `txn_idx` is the highest writer of, in the order its
    /// last incarnation wrote them. Call it when the block is done, for every transaction
    /// in turn, to get the block's whole write set. `base` reads storage's value of a key
    /// whose chain of writes starts with deltas.
    pub fn final_writes<E>(
        &self,
        txn_idx: TxnIndex,
        base: impl FnMut(&K) -> Result<Option<V>, E>,
        out: &mut Vec<(K, V)>,
    ) -> Result<(), FinalError<E>> {
        let Some(slot) = self.txns.get(txn_idx) else {
            return Ok(());
        };
        self.final_writes_of(txn_idx, &lock(slot), base, out)
    }

    /// [`final_writes`](Self::final_writes), then takes the transaction's last output and
    /// empties its slot for [`reuse`](Self::reuse), under one lock of the slot. On an
    /// error the slot is left as it was.
    pub fn finish_txn<E>(
        &self,
        txn_idx: TxnIndex,
        base: impl FnMut(&K) -> Result<Option<V>, E>,
        out: &mut Vec<(K, V)>,
    ) -> Result<Option<O>, FinalError<E>> {
        let Some(slot) = self.txns.get(txn_idx) else {
            return Ok(None);
        };
        let mut slot = lock(slot);
        self.final_writes_of(txn_idx, &slot, base, out)?;
        slot.written.clear();
        slot.reads.found.clear();
        slot.reads.missed.clear();
        Ok(slot.output.take())
    }

    fn final_writes_of<E>(
        &self,
        txn_idx: TxnIndex,
        slot: &TxnSlot<K, V, O>,
        mut base: impl FnMut(&K) -> Result<Option<V>, E>,
        out: &mut Vec<(K, V)>,
    ) -> Result<(), FinalError<E>> {
        for node in self.written(slot) {
            // SAFETY: as in `record_inner`.
            let (key, versions) = unsafe { (node.key(), node.versions()) };
            if let Some(value) = versions.final_value(txn_idx, || base(key))? {
                out.push((key.clone(), value));
            }
        }
        Ok(())
    }

    /// The nodes `slot`'s last incarnation wrote, if it was recorded in this block.
    #[inline]
    fn written<'s>(&self, slot: &'s TxnSlot<K, V, O>) -> &'s [NodeRef<K, V>] {
        if slot.generation == self.generation {
            &slot.written
        } else {
            &[]
        }
    }
}

/// One thread's handle for recording incarnations into an [`MVMemory`]: it owns the chunk
/// of memory where the nodes of keys new to the block go, so that a new key costs no
/// shared allocation. It borrows the memory, so it cannot outlive the block.
pub struct Writer<'a, K, V, O = ()> {
    memory: &'a MVMemory<K, V, O>,
    nodes: NodeCursor<'a, K, V>,
}

impl<K, V, O> Writer<'_, K, V, O>
where
    K: Eq + Hash + Clone,
    V: DeltaValue,
{
    /// Records the reads and writes of `version`, replacing its transaction's previous
    /// incarnation. Returns whether it wrote a key the previous incarnation did not that a
    /// higher transaction may already have read (or looked for and missed): that reader
    /// must then be revalidated. A key new to the transaction that no higher transaction
    /// has read yet is not reported: every later read of it sees this write.
    ///
    /// `txn_idx` must be below [`num_txns`](MVMemory::num_txns); a write to the same key
    /// twice in `writes` keeps the last.
    pub fn record(&mut self, version: Version, reads: ReadSet<K>, writes: WriteSet<K, V>) -> bool {
        self.memory.record_inner(
            &mut self.nodes,
            version,
            |slot_reads| *slot_reads = MVMemory::<K, V, O>::keyed(reads),
            writes,
            None,
        )
    }

    /// [`record`](Self::record) with reads located by [`MVMemory::read_located`], keeping
    /// `output` as the transaction's output (replacing the previous incarnation's);
    /// [`MVMemory::finish_txn`] takes it.
    pub fn record_with_output(
        &mut self,
        version: Version,
        reads: LocatedReads<'_, K, V>,
        writes: WriteSet<K, V>,
        output: O,
    ) -> bool {
        self.memory.record_inner(
            &mut self.nodes,
            version,
            |slot_reads| self.memory.adopt(reads, slot_reads),
            writes,
            Some(output),
        )
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
