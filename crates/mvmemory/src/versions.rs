//! The versions of one key: for each transaction index that wrote it, the latest
//! incarnation's write (a full value or a delta), possibly flagged ESTIMATE.

use crate::sync::{get_mut, into_inner, lock, Mutex};
use crate::{DeltaValue, Incarnation, TxnIndex, Version};
use smallvec::SmallVec;

/// What a transaction wrote to a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp<V> {
    /// The key now holds this value.
    Value(V),
    /// The key's `u64` value grows by this amount (a commutative credit).
    Delta(u64),
    /// The key's `u64` value shrinks by this amount: a debit its transaction checked the
    /// value covers (a read of the kind [`ReadKind::Check`](crate::ReadKind::Check) of at
    /// least this amount). Commutes with the credits around it as long as the check
    /// holds; once every read is validated, no debit goes below zero.
    Debit(u64),
}

/// A fold of credits and debits with no full value below them: the value is storage's
/// (the *base*) plus `net`, provided every partial sum on the way, `base + low` to
/// `base + high`, is a `u64`. Offsets are exact (`i128`: a chain of `u64` credits and
/// debits as long as a block cannot leave that range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    /// The sum of the credits less the debits.
    pub net: i128,
    /// The lowest partial sum, from the base (0) up (`<= 0`).
    pub low: i128,
    /// The highest partial sum, from the base (0) up (`>= 0`).
    pub high: i128,
}

/// Why a chain of credits and debits does not fold on a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainError {
    /// A partial sum went below zero: a debit's check no longer holds (speculation only).
    Underflow,
    /// A partial sum went above `u64::MAX`: a credit does not fit.
    Overflow,
}

impl Chain {
    /// No credit or debit.
    pub const EMPTY: Chain = Chain {
        net: 0,
        low: 0,
        high: 0,
    };

    /// This chain followed by `amount` (a credit if positive, a debit if negative).
    #[inline]
    fn then(self, amount: i128) -> Self {
        let net = self.net + amount;
        Self {
            net,
            low: self.low.min(net),
            high: self.high.max(net),
        }
    }

    /// A chain of credits only, adding up to `sum`.
    pub fn credits(sum: u64) -> Self {
        Self {
            net: i128::from(sum),
            low: 0,
            high: i128::from(sum),
        }
    }

    /// The value the chain leaves on `base`.
    #[inline]
    pub fn on(&self, base: u64) -> Result<u64, ChainError> {
        let base = i128::from(base);
        if base + self.low < 0 {
            return Err(ChainError::Underflow);
        }
        u64::try_from(base + self.net)
            .ok()
            .filter(|_| base + self.high <= i128::from(u64::MAX))
            .ok_or(ChainError::Overflow)
    }
}

#[derive(Debug)]
struct Entry<V> {
    incarnation: Incarnation,
    /// Set when the writing incarnation was aborted: the transaction will probably write
    /// this key again, so a reader waits for it instead of reading a value that is about
    /// to change.
    estimate: bool,
    op: WriteOp<V>,
    /// For a credit or a debit: the chain of credits and debits from the nearest full
    /// value below (`anchor`, its transaction) or from storage (`None`) up to this one,
    /// kept by every change to the versions, so that a read above needs no walk.
    chain: PackedChain,
    /// [`NO_ANCHOR`] for none.
    anchor: TxnIndex,
}

/// No full value below a chain: it starts on storage's value. Never a transaction's
/// index (a block's transactions are in a `Vec`, whose length is below `usize::MAX`).
const NO_ANCHOR: TxnIndex = TxnIndex::MAX;

/// A [`Chain`] in words of 8 bytes (an `i128` would align the whole entry to 16).
#[derive(Clone, Copy, Debug)]
struct PackedChain([[u64; 2]; 3]);

impl PackedChain {
    #[inline]
    fn pack(n: i128) -> [u64; 2] {
        // The low and the high 64 bits: truncations meant, undone by `unpack`.
        [n as u64, (n >> 64) as u64]
    }

    #[inline]
    fn unpack([low, high]: [u64; 2]) -> i128 {
        (i128::from(high as i64) << 64) | i128::from(low)
    }
}

impl From<Chain> for PackedChain {
    #[inline]
    fn from(chain: Chain) -> Self {
        Self([
            Self::pack(chain.net),
            Self::pack(chain.low),
            Self::pack(chain.high),
        ])
    }
}

impl From<PackedChain> for Chain {
    #[inline]
    fn from(PackedChain([net, low, high]): PackedChain) -> Self {
        Chain {
            net: PackedChain::unpack(net),
            low: PackedChain::unpack(low),
            high: PackedChain::unpack(high),
        }
    }
}

impl<V> Entry<V> {
    fn new(incarnation: Incarnation, op: WriteOp<V>) -> Self {
        Self {
            incarnation,
            estimate: false,
            op,
            chain: Chain::EMPTY.into(),
            anchor: NO_ANCHOR,
        }
    }
}

/// The outcome of a read of one key by transaction `txn_idx`: what the highest writers
/// below `txn_idx` left there. Generic over the payload `T` of a full value, so validation
/// can resolve a read without cloning values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadOutcome<T> {
    /// The nearest write below is a full value, written by `Version`.
    Versioned(Version, T),
    /// Credits and debits above a full value, folded onto it.
    Resolved(u64),
    /// Only credits and debits, all the way down: the value is this chain on storage's.
    Unresolved(Chain),
    /// No transaction below wrote the key: read storage.
    NotFound,
    /// The nearest write below is an ESTIMATE of this transaction: wait for it.
    Dependency(TxnIndex),
    /// Folding the deltas overflowed `u64` (or met a value that is not a number): the
    /// speculative assumption that every credit fits failed somewhere below.
    DeltaOverflow,
    /// Folding went below zero at a debit: the check of the transaction that wrote it no
    /// longer holds (it will fail validation and run again). The read is inconsistent.
    DebitUnderflow,
}

/// Why the final value of a key could not be computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FoldError {
    /// The delta written by this transaction overflows the value below it (or that value
    /// is not a number): sequential execution would have rejected that transaction.
    DeltaOverflow(TxnIndex),
    /// The debit written by this transaction goes below zero: its check was not
    /// validated against the final versions (an executor invariant is broken).
    DebitUnderflow(TxnIndex),
    /// An ESTIMATE was left after the block was done: an executor invariant is broken.
    EstimateLeft(TxnIndex),
}

/// The writes to one key, sorted by transaction index. Most keys of a block have one
/// writer, which fits inline (no allocation); a hot key's writers arrive roughly in block
/// order, so insertion is mostly an append, and lookups are binary searches.
type Entries<V> = SmallVec<[(TxnIndex, Entry<V>); 1]>;

/// The capacity of a key's versions when they first outgrow the inline entry; from
/// there [`KeyVersions::write`] grows them fourfold.
const GROWTH_START: usize = 16;

/// Emptied heap buffers of versions, kept by one writer for the keys it grows next.
///
/// A hot key's buffer is usually allocated by one worker and, in a later block, dropped
/// by another (whichever takes the chunk of its node). With glibc, that free takes the
/// allocating thread's arena lock, contended by everything that thread allocates. So the
/// writer that drops an old node keeps its buffer here instead, and its next growths take
/// buffers from here before allocating; the index keeps the writers' spares from block
/// to block (`KeyIndex`), so a recycled buffer is never freed while the index lives.
pub(crate) struct Spare<V> {
    buffers: Vec<Entries<V>>,
}

/// The most buffers one [`Spare`] keeps.
const MAX_SPARES: usize = 64;
/// The largest buffer a [`Spare`] keeps, in entries.
const MAX_SPARE_CAPACITY: usize = 1024;

impl<V> Spare<V> {
    pub(crate) fn new() -> Self {
        Self {
            buffers: Vec::new(),
        }
    }

    /// Keeps `entries`' buffer, emptied, if it is a heap buffer worth keeping.
    fn keep(&mut self, mut entries: Entries<V>) {
        if entries.spilled()
            && entries.capacity() <= MAX_SPARE_CAPACITY
            && self.buffers.len() < MAX_SPARES
        {
            entries.clear();
            self.buffers.push(entries);
        }
    }

    /// An empty buffer of at least `capacity` entries, if the last one kept is one.
    fn take(&mut self, capacity: usize) -> Option<Entries<V>> {
        match self.buffers.last() {
            Some(last) if last.capacity() >= capacity => self.buffers.pop(),
            _ => None,
        }
    }

    /// How many buffers it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buffers.len()
    }
}

/// The versions of one key, ordered by transaction index.
pub(crate) struct KeyVersions<V> {
    state: Mutex<State<V>>,
}

/// What a key's lock guards.
struct State<V> {
    entries: Entries<V>,
    /// One more than the highest transaction that read the key through this node (0:
    /// none), so that a write can tell whether a higher transaction may have read around
    /// it (see [`KeyVersions::write`]).
    readers: TxnIndex,
    /// Storage's number at the key, once a reader looked it up and kept it here
    /// ([`KeyVersions::keep_base`]): the next readers of a chain on storage need no
    /// lookup of their own. Storage does not change during a block.
    base: Option<u64>,
    /// How many entries are ESTIMATEs: while there are any, a read walks the entries
    /// (it must meet the highest ESTIMATE in its way); otherwise it reads the chain kept
    /// in the entry below it.
    estimates: usize,
}

/// The credit or debit `op` makes, signed; `None` for a full value.
#[inline]
fn amount<V>(op: &WriteOp<V>) -> Option<i128> {
    match op {
        WriteOp::Value(_) => None,
        WriteOp::Delta(delta) => Some(i128::from(*delta)),
        WriteOp::Debit(debit) => Some(-i128::from(*debit)),
    }
}

/// Recomputes the chains of the entries from position `from` up to the next full value
/// after it (the entries above that value chain from it and did not change).
fn restitch<V>(entries: &mut [(TxnIndex, Entry<V>)], from: usize) {
    let (mut chain, mut anchor) = match from.checked_sub(1).and_then(|p| entries.get(p)) {
        None => (Chain::EMPTY, NO_ANCHOR),
        Some((idx, entry)) => match amount(&entry.op) {
            None => (Chain::EMPTY, *idx),
            Some(_) => (entry.chain.into(), entry.anchor),
        },
    };
    for (at, (idx, entry)) in entries.iter_mut().enumerate().skip(from) {
        match amount(&entry.op) {
            None if at > from => break,
            None => {
                entry.chain = Chain::EMPTY.into();
                entry.anchor = NO_ANCHOR;
                chain = Chain::EMPTY;
                anchor = *idx;
            }
            Some(amount) => {
                chain = chain.then(amount);
                entry.chain = chain.into();
                entry.anchor = anchor;
            }
        }
    }
}

#[inline]
fn position<V>(entries: &Entries<V>, txn_idx: TxnIndex) -> Result<usize, usize> {
    entries.binary_search_by_key(&txn_idx, |(idx, _)| *idx)
}

/// Entries looked at from the end before [`count_below`] falls back to a binary search.
const SCAN_FROM_END: usize = 4;

/// How many of `entries` (sorted by index) are below `txn_idx`. A reader usually comes
/// after all or all but a few of a key's writers (transactions execute and validate
/// roughly in block order), so this looks at the last few entries first: one cache line
/// where a binary search of a hot key's versions touches one per step.
#[inline]
fn count_below<E>(entries: &[(TxnIndex, E)], txn_idx: TxnIndex) -> usize {
    let mut below = entries.len();
    for (at, (idx, _)) in entries.iter().enumerate().rev().take(SCAN_FROM_END) {
        if *idx < txn_idx {
            return at + 1;
        }
        below = at;
    }
    // `below` is at most the length: the slice is always there.
    entries
        .get(..below)
        .map_or(0, |head| head.partition_point(|(idx, _)| *idx < txn_idx))
}

impl<V> KeyVersions<V> {
    /// The versions of a key whose first write is `txn_idx`'s.
    pub(crate) fn with_write(txn_idx: TxnIndex, incarnation: Incarnation, op: WriteOp<V>) -> Self {
        let mut entries = Entries::new();
        entries.push((txn_idx, Entry::new(incarnation, op)));
        restitch(&mut entries, 0);
        Self {
            state: Mutex::new(State {
                entries,
                readers: 0,
                base: None,
                estimates: 0,
            }),
        }
    }

    /// Moves the versions' heap buffer, if any, into `spare` (the node is being dropped).
    pub(crate) fn recycle(&mut self, spare: &mut Spare<V>) {
        let entries = std::mem::take(&mut get_mut(&mut self.state).entries);
        spare.keep(entries);
    }

    /// The first write of versions no other thread has seen (see `KeyIndex::write`).
    pub(crate) fn into_first_op(self) -> Option<WriteOp<V>> {
        into_inner(self.state)
            .entries
            .into_iter()
            .next()
            .map(|(_, entry)| entry.op)
    }
}

impl<V: DeltaValue> KeyVersions<V> {
    /// The value transaction `txn_idx` reads: the highest write below it, with the deltas
    /// above the nearest full value folded in. `project` maps a full value to the payload.
    /// Counts `txn_idx` among the key's readers.
    pub(crate) fn read<T>(
        &self,
        txn_idx: TxnIndex,
        project: impl FnOnce(&V) -> T,
    ) -> ReadOutcome<T> {
        self.read_with_base(txn_idx, project).0
    }

    /// [`read`](Self::read), with storage's number if a reader kept it here.
    pub(crate) fn read_with_base<T>(
        &self,
        txn_idx: TxnIndex,
        project: impl FnOnce(&V) -> T,
    ) -> (ReadOutcome<T>, Option<u64>) {
        let mut state = lock(&self.state);
        if state.readers <= txn_idx {
            state.readers = txn_idx.saturating_add(1);
        }
        let entries = &state.entries;
        let below = count_below(entries, txn_idx);
        let outcome = if state.estimates == 0 {
            Self::read_chained(entries, below, project)
        } else {
            Self::read_walking(entries, below, project)
        };
        (outcome, state.base)
    }

    /// Keeps storage's number at the key for later readers.
    pub(crate) fn keep_base(&self, base: u64) {
        lock(&self.state).base = Some(base);
    }

    /// [`read`](Self::read) of the entries below position `below` by walking them down
    /// from the highest: it meets the highest ESTIMATE on the way.
    fn read_walking<T>(
        entries: &Entries<V>,
        below: usize,
        project: impl FnOnce(&V) -> T,
    ) -> ReadOutcome<T> {
        // Walking down from the top, `suffix` is the sum of the ops above the current one;
        // every partial sum from the bottom is `total - suffix` for one of the suffixes
        // seen, so the lowest and highest suffix give the highest and lowest partial.
        let mut folded = false;
        let mut suffix: i128 = 0;
        let (mut min_suffix, mut max_suffix) = (0i128, 0i128);
        for (idx, entry) in entries[..below].iter().rev() {
            let idx = *idx;
            if entry.estimate {
                return ReadOutcome::Dependency(idx);
            }
            match &entry.op {
                WriteOp::Value(value) => {
                    if !folded {
                        return ReadOutcome::Versioned(
                            Version {
                                txn_idx: idx,
                                incarnation: entry.incarnation,
                            },
                            project(value),
                        );
                    }
                    let Some(base) = value.as_u64() else {
                        return ReadOutcome::DeltaOverflow;
                    };
                    return match chain(suffix, min_suffix, max_suffix).on(base) {
                        Ok(total) => ReadOutcome::Resolved(total),
                        Err(ChainError::Overflow) => ReadOutcome::DeltaOverflow,
                        Err(ChainError::Underflow) => ReadOutcome::DebitUnderflow,
                    };
                }
                WriteOp::Delta(delta) => suffix += i128::from(*delta),
                WriteOp::Debit(debit) => suffix -= i128::from(*debit),
            }
            folded = true;
            min_suffix = min_suffix.min(suffix);
            max_suffix = max_suffix.max(suffix);
        }
        if folded {
            ReadOutcome::Unresolved(chain(suffix, min_suffix, max_suffix))
        } else {
            ReadOutcome::NotFound
        }
    }

    /// [`read`](Self::read) of the entries below position `below`, none an ESTIMATE: the
    /// chain kept in the highest of them, on the value it chains from.
    #[inline]
    fn read_chained<T>(
        entries: &Entries<V>,
        below: usize,
        project: impl FnOnce(&V) -> T,
    ) -> ReadOutcome<T> {
        let Some((idx, top)) = below.checked_sub(1).and_then(|at| entries.get(at)) else {
            return ReadOutcome::NotFound;
        };
        if let WriteOp::Value(value) = &top.op {
            return ReadOutcome::Versioned(
                Version {
                    txn_idx: *idx,
                    incarnation: top.incarnation,
                },
                project(value),
            );
        }
        let chain = Chain::from(top.chain);
        if top.anchor == NO_ANCHOR {
            return ReadOutcome::Unresolved(chain);
        }
        let base = match position(entries, top.anchor)
            .ok()
            .map(|at| &entries[at].1.op)
        {
            Some(WriteOp::Value(value)) => value.as_u64(),
            // The chain is kept with its anchor: never another op (a value no number).
            _ => None,
        };
        match base.map(|base| chain.on(base)) {
            Some(Ok(total)) => ReadOutcome::Resolved(total),
            Some(Err(ChainError::Underflow)) => ReadOutcome::DebitUnderflow,
            Some(Err(ChainError::Overflow)) | None => ReadOutcome::DeltaOverflow,
        }
    }

    /// Records `txn_idx`'s write of incarnation `incarnation`, replacing its previous one.
    /// Returns whether no higher transaction has read the key through this node so far:
    /// every such read comes after this write in the key's lock order, and so sees it.
    ///
    /// Grows into a buffer of `spare` where it can, and leaves the buffer it outgrew there.
    pub(crate) fn write(
        &self,
        txn_idx: TxnIndex,
        incarnation: Incarnation,
        op: WriteOp<V>,
        spare: &mut Spare<V>,
    ) -> bool {
        let entry = Entry::new(incarnation, op);
        let mut state = lock(&self.state);
        let unread = state.readers <= txn_idx.saturating_add(1);
        let State {
            entries, estimates, ..
        } = &mut *state;
        if entries.len() == entries.capacity() {
            // A key with a second writer is likely to get more (a hot key gets one per
            // transaction): grow to 16 entries at once, then fourfold, not one doubling
            // at a time. Each growth is a `realloc` of memory another worker may have
            // allocated, which takes that worker's allocator arena lock (glibc): with
            // doubling, those reallocations made a third of the futex calls of a
            // contract block, and the contention slowed every other allocation.
            // Into another buffer rather than by `realloc`: glibc reallocates under the
            // old buffer's arena lock; the old buffer goes to `spare` instead.
            let capacity = if entries.spilled() {
                entries.len().saturating_mul(4)
            } else {
                GROWTH_START
            };
            let mut grown = spare
                .take(capacity)
                .unwrap_or_else(|| Entries::with_capacity(capacity));
            grown.extend(entries.drain(..));
            spare.keep(std::mem::replace(entries, grown));
        }
        let at = match entries.last() {
            Some((last, _)) if *last < txn_idx => {
                entries.push((txn_idx, entry));
                entries.len() - 1
            }
            None => {
                entries.push((txn_idx, entry));
                0
            }
            _ => match position(entries, txn_idx) {
                Ok(at) => {
                    let old = &mut entries[at].1;
                    if old.estimate {
                        *estimates = estimates.saturating_sub(1);
                    }
                    // The same credit or debit again (a re-execution usually writes what
                    // the last one did): every chain above is unchanged.
                    let same = amount(&old.op).is_some() && amount(&old.op) == amount(&entry.op);
                    let (chain, anchor) = (old.chain, old.anchor);
                    *old = entry;
                    if same {
                        old.chain = chain;
                        old.anchor = anchor;
                        return unread;
                    }
                    at
                }
                Err(at) => {
                    entries.insert(at, (txn_idx, entry));
                    at
                }
            },
        };
        restitch(entries, at);
        unread
    }

    /// Removes `txn_idx`'s write (its new incarnation did not write this key).
    pub(crate) fn remove(&self, txn_idx: TxnIndex) {
        let state = &mut *lock(&self.state);
        if let Ok(at) = position(&state.entries, txn_idx) {
            let (_, removed) = state.entries.remove(at);
            if removed.estimate {
                state.estimates = state.estimates.saturating_sub(1);
            }
            restitch(&mut state.entries, at);
        }
    }

    /// Flags `txn_idx`'s write as an ESTIMATE.
    pub(crate) fn mark_estimate(&self, txn_idx: TxnIndex) {
        let state = &mut *lock(&self.state);
        if let Ok(at) = position(&state.entries, txn_idx) {
            let entry = &mut state.entries[at].1;
            if !entry.estimate {
                entry.estimate = true;
                state.estimates += 1;
            }
        }
    }

    /// The final value if `txn_idx` is the key's highest writer, `None` otherwise.
    ///
    /// Folds the whole chain in block order and checks every intermediate sum: each delta
    /// must fit on the value below it, exactly as the sequential order would check the
    /// credit. `base` supplies storage's value when the chain starts with deltas.
    pub(crate) fn final_value<E>(
        &self,
        txn_idx: TxnIndex,
        base: impl FnOnce() -> Result<Option<V>, E>,
    ) -> Result<Option<V>, FinalError<E>> {
        let state = lock(&self.state);
        let entries = &state.entries;
        match entries.last() {
            Some((last, _)) if *last == txn_idx => {}
            _ => return Ok(None),
        }
        enum Acc<'a, V> {
            Start,
            Value(&'a V),
            Number(u64),
        }
        let mut acc = Acc::Start;
        let mut base = Some(base);
        for (idx, entry) in entries.iter() {
            let idx = *idx;
            if entry.estimate {
                return Err(FinalError::Fold(FoldError::EstimateLeft(idx)));
            }
            let (credit, debit) = match &entry.op {
                WriteOp::Value(value) => {
                    acc = Acc::Value(value);
                    continue;
                }
                WriteOp::Delta(delta) => (*delta, 0),
                WriteOp::Debit(debit) => (0, *debit),
            };
            let below = match acc {
                Acc::Number(n) => Some(n),
                Acc::Value(value) => value.as_u64(),
                // Storage's number, as a reader kept it or read now.
                Acc::Start => match (state.base, base.take()) {
                    (Some(kept), _) => Some(kept),
                    (None, Some(read)) => match read().map_err(FinalError::Base)? {
                        Some(value) => value.as_u64(),
                        None => Some(0),
                    },
                    (None, None) => Some(0),
                },
            };
            let Some(total) = below.and_then(|b| b.checked_add(credit)) else {
                return Err(FinalError::Fold(FoldError::DeltaOverflow(idx)));
            };
            let Some(total) = total.checked_sub(debit) else {
                return Err(FinalError::Fold(FoldError::DebitUnderflow(idx)));
            };
            acc = Acc::Number(total);
        }
        Ok(match acc {
            Acc::Start => None,
            Acc::Value(value) => Some(value.clone()),
            Acc::Number(n) => Some(V::from_u64(n)),
        })
    }
}

/// The chain of ops whose suffix sums (from the top, the empty one included) ended at
/// `total` and ranged over `min_suffix..=max_suffix`.
#[inline]
fn chain(total: i128, min_suffix: i128, max_suffix: i128) -> Chain {
    Chain {
        net: total,
        low: total - max_suffix,
        high: total - min_suffix,
    }
}

/// Why a final value could not be computed: a fold failure or the base read's error.
#[derive(Debug)]
pub enum FinalError<E> {
    /// The chain of writes does not fold.
    Fold(FoldError),
    /// Reading the base value from storage failed.
    Base(E),
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Random writes, replacements, removals and ESTIMATEs of one key: every read by the
    /// kept chains equals the walk's, whichever of the two the read takes.
    #[test]
    fn kept_chains_read_as_the_walk_does() {
        let mut x = 7u64;
        let mut next = |n: u64| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % n
        };
        let mut spare = Spare::new();
        for round in 0..200 {
            let versions = KeyVersions::with_write(next(8) as usize, 0, WriteOp::Delta(next(5)));
            for _ in 0..(5 + round % 40) {
                let txn = next(24) as usize;
                match next(10) {
                    0 => versions.remove(txn),
                    1 => versions.mark_estimate(txn),
                    2 => {
                        versions.write(txn, 0, WriteOp::Value(next(40)), &mut spare);
                    }
                    3..=5 => {
                        versions.write(txn, 0, WriteOp::Debit(next(30)), &mut spare);
                    }
                    _ => {
                        let amount = if next(50) == 0 {
                            u64::MAX - next(3)
                        } else {
                            next(30)
                        };
                        versions.write(txn, 0, WriteOp::Delta(amount), &mut spare);
                    }
                }
                let state = lock(&versions.state);
                let estimates = state.entries.iter().filter(|(_, e)| e.estimate).count();
                assert_eq!(state.estimates, estimates);
                for reader in 0..26 {
                    let below = count_below(&state.entries, reader);
                    let walked = KeyVersions::read_walking(&state.entries, below, |v: &u64| *v);
                    if estimates == 0 {
                        let chained =
                            KeyVersions::read_chained(&state.entries, below, |v: &u64| *v);
                        assert_eq!(chained, walked, "round {round}, reader {reader}");
                    }
                }
            }
        }
    }

    #[test]
    fn count_below_is_a_partition_point() {
        for len in 0..24usize {
            // Every other index written: readers between, on and around the writers.
            let entries: Vec<(TxnIndex, ())> = (0..len).map(|i| (2 * i + 1, ())).collect();
            for txn_idx in 0..2 * len + 3 {
                assert_eq!(
                    count_below(&entries, txn_idx),
                    entries.partition_point(|(idx, _)| *idx < txn_idx),
                    "{len} entries, reader {txn_idx}"
                );
            }
        }
    }

    #[test]
    fn a_hot_key_grows_in_few_reallocations() {
        let versions = KeyVersions::with_write(0, 0, WriteOp::Value(0u64));
        let mut spare = Spare::new();
        let capacity = || lock(&versions.state).entries.capacity();
        assert_eq!(capacity(), 1);
        let mut capacities = vec![];
        for txn_idx in 1..200 {
            versions.write(txn_idx, 0, WriteOp::Delta(1), &mut spare);
            if capacities.last() != Some(&capacity()) {
                capacities.push(capacity());
            }
        }
        // Inline, then 16 entries, then fourfold: three allocations for 200 writers where
        // doubling from one would take eight. The outgrown buffers wait in the spare.
        assert_eq!(capacities, vec![16, 64, 256]);
        assert_eq!(spare.len(), 2);
        assert_eq!(versions.read(200, |_| ()), ReadOutcome::Resolved(199));
    }

    #[test]
    fn growth_takes_a_spare_buffer_and_dropped_versions_leave_theirs() {
        let mut spare = Spare::new();
        let mut hot = KeyVersions::with_write(0, 0, WriteOp::Value(0u64));
        for txn_idx in 1..20 {
            hot.write(txn_idx, 0, WriteOp::Delta(1), &mut spare);
        }
        // The 16-entry buffer it outgrew is spare; the node's 64-entry one goes there
        // when the node is dropped.
        assert_eq!(spare.len(), 1);
        hot.recycle(&mut spare);
        assert_eq!(spare.len(), 2);
        // A key growing past one entry takes the last buffer kept (64 entries), with no
        // allocation, and leaves nothing behind (its inline entry has no buffer).
        let next = KeyVersions::with_write(0, 0, WriteOp::Value(1u64));
        next.write(1, 0, WriteOp::Value(2), &mut spare);
        assert_eq!(spare.len(), 1);
        assert_eq!(lock(&next.state).entries.capacity(), 64);
        assert_eq!(
            next.read(2, |v| *v),
            ReadOutcome::Versioned(
                Version {
                    txn_idx: 1,
                    incarnation: 0
                },
                2
            )
        );
        // Growing to 16 takes the 16-entry buffer; growing to 64 finds nothing spare,
        // allocates, and keeps the 16-entry buffer it outgrew.
        let mut big = KeyVersions::with_write(0, 0, WriteOp::Value(0u64));
        big.write(1, 0, WriteOp::Value(3), &mut spare);
        assert_eq!(spare.len(), 0);
        for txn_idx in 2..=16 {
            big.write(txn_idx, 0, WriteOp::Value(3), &mut spare);
        }
        assert_eq!(lock(&big.state).entries.capacity(), 64);
        assert_eq!(spare.len(), 1);
        // Growing to 256: the spare 16-entry buffer is too small and stays; the 64-entry
        // one joins it.
        for txn_idx in 17..=64 {
            big.write(txn_idx, 0, WriteOp::Value(3), &mut spare);
        }
        assert_eq!(lock(&big.state).entries.capacity(), 256);
        assert_eq!(spare.len(), 2);
        big.recycle(&mut spare);
        assert_eq!(spare.len(), 3);
    }
}
