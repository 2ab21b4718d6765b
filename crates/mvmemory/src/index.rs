//! The key index: from a key to the versions written to it.
//!
//! A fixed array of buckets, each the head of a singly linked chain of nodes, one node per
//! key written in the block. A node is only ever *prepended* to its chain, by a
//! compare-and-swap of the bucket's head, and no node is removed, moved or freed until
//! the whole index is cleared through `&mut self` (or dropped). So:
//!
//! - a lookup follows the chain with acquire loads and takes **no lock and writes
//!   nothing**: readers never move a cache line between cores (a sharded concurrent map
//!   writes its shard lock on every read, and with two or more workers those lock words
//!   bounce between cores on nearly every transaction);
//! - inserting a key never seen in the block is one compare-and-swap, and the node is
//!   filled *before* it is published, so its first write takes no lock either;
//! - a reference to a node lives as long as the borrow of the index.
//!
//! Nodes are not allocated one by one (a `malloc` per new key, and a block-start `free` of
//! every node, cost more than the index saves): they live in chunks of [`CHUNK`] slots,
//! kept from block to block. Each writer ([`NodeCursor`], one per worker thread) takes a
//! whole chunk with one `fetch_add` and fills it alone, so a new key costs no shared write
//! but the bucket's compare-and-swap. Chunks run out only if a block writes more keys than
//! it was sized for; then one more is allocated under a mutex and kept for later blocks.
//! Clearing only empties the buckets; a chunk's old nodes are dropped in place by the
//! writer that takes the chunk next (or when the index is dropped), so that work is
//! spread over the workers instead of sitting on the next block's critical path.
//!
//! The bucket array is sized once per block from the expected number of keys (about two
//! buckets per key); more keys than expected only lengthen the chains.
//!
//! # Memory ordering
//!
//! A node's fields (`hash`, `key`, `next`, the versions' initial state) are written by its
//! inserter before the compare-and-swap that publishes it (`AcqRel` on success): any thread
//! that loads the pointer with `Acquire` (a bucket head) sees them. `next` is read only
//! from a node reached that way and never changes after publication; the node it points to
//! was itself acquired by the inserter before the inserter published (the head it
//! replaced), so, transitively, every node of a chain is visible to whoever acquired its
//! head. The versions behind a node have their own lock (see `versions.rs`).
//!
//! # Read-miss marks: which new writes were read around
//!
//! The paper revalidates every transaction above `i` whenever an incarnation of `i`
//! writes a key its previous incarnation did not, as a higher transaction may have read
//! that key before the write existed. With every first incarnation writing only keys new
//! to it, that restarts the validation sweep on nearly every transaction, and with two or
//! more workers the two shared counters it updates move between cores each time. So the
//! index reports, for each write, whether a higher transaction may have read *around* it,
//! and the memory reports a new location only for such writes (`MVMemory::record`).
//!
//! A read by `j` either finds the key's node or does not.
//!
//! - Found: `KeyVersions::read` records `j` among the key's readers under the key's lock,
//!   and `KeyVersions::write` checks them under the same lock. In the lock's order a read
//!   by `j` above the writer `i` either precedes the write (the writer sees `j`: read
//!   around) or follows it (the reader sees the write).
//! - Not found: the reader *marks the miss* in the key's bucket, `misses`, which holds the
//!   highest mark of the block ([`KeyIndex::mark`]: the block's epoch, then `j + 1`),
//!   and then looks at the chain again. A writer, after publishing a new node or writing
//!   to an existing one (only if the node had no reader above it), does a
//!   read-modify-write of `misses` (`fetch_max(0)`) and counts the write as read around if
//!   it returns a mark above its own.
//!
//! Why a miss and a write never both pass unnoticed: every change of `misses` during a
//! block is a read-modify-write, and its values only grow. Let `R` be the writer's
//! read-modify-write, and `M` the change whose value the reader's mark test read: its own
//! `fetch_max(mark, AcqRel)`, or, when it skipped that because the mark it loaded
//! (`Acquire`) was already at least its own, the change that load read. If `M` precedes
//! `R` in the modification order of `misses`, `R` returns at least the reader's mark: read
//! around. Otherwise `M` follows `R`, so it is in `R`'s release sequence (every later
//! change is a read-modify-write), and the reader's acquire synchronises with `R`. The
//! node's publication precedes `R` (the writer published it, or reached it from a head it
//! acquired), so the reader's second look, after its mark test, finds the node: it was
//! not a miss after all. A reader whose second look finds the node reads it like any other
//! lookup. The loom models `a_miss_*` in `loom-tests/tests/mvmemory.rs` check the three
//! shapes (a miss racing an insert, a miss covered by a higher mark, a miss before
//! another transaction inserted the key), and fail with any of these orderings weakened.
//!
//! A higher mark in the same bucket (another key, or an earlier block's epoch after
//! 2^32 blocks, reset then) only makes a write count as read around: the paper's
//! behaviour. Validation's re-reads (`with`) mark nothing: the execution that made the
//! read already did.
//!
//! # Lock order
//!
//! Lookups and inserts take no lock. The only lock of the index guards the chunks
//! allocated beyond the block's estimate; it is taken with no other lock held and nothing
//! is done under it but a push. A key's versions lock is taken while no other lock of
//! this crate but a transaction slot is held (see the crate's lock order).
//!
//! # Unsafe code
//!
//! Nodes are reached through raw pointers; each `unsafe` block says why the pointer is
//! valid. The argument is always one of two: a published node lives until `&mut self`
//! (which no reader can hold while a `&self` borrow is alive), or an unpublished node or
//! chunk slot belongs to the one writer that took its chunk. Miri runs the unit tests of
//! this crate, threads included (`cargo +nightly miri test -p mvmemory`).
//!
//! Under `cfg(loom)` the atomics are loom's and the table has two buckets, so the models
//! exercise chains of several keys and racing inserts into one bucket.

use crate::hash::FxBuildHasher;
use crate::sync::{lock, take_ptr, AtomicPtr, AtomicU64, AtomicUsize, Mutex, Ordering};
use crate::versions::{KeyVersions, Spare, WriteOp};
use crate::{DeltaValue, Incarnation, TxnIndex};
use std::cell::UnsafeCell;
use std::hash::{BuildHasher, Hash};
use std::mem::MaybeUninit;
use std::ptr::{self, NonNull};

/// Buckets per expected key (rounded up to a power of two).
const BUCKETS_PER_KEY: usize = 2;
/// The fewest buckets of a table.
#[cfg(not(loom))]
const MIN_BUCKETS: usize = 64;
#[cfg(loom)]
const MIN_BUCKETS: usize = 2;
/// The most buckets a table is sized to (8 MiB of heads); more keys lengthen the chains.
#[cfg(not(loom))]
const MAX_BUCKETS: usize = 1 << 20;
#[cfg(loom)]
const MAX_BUCKETS: usize = 2;
/// Node slots per chunk.
#[cfg(not(loom))]
pub(crate) const CHUNK: usize = 32;
#[cfg(loom)]
pub(crate) const CHUNK: usize = 2;

/// One key written in the block and its versions.
struct Node<K, V> {
    /// The key's full hash, compared before the key.
    hash: u64,
    key: K,
    versions: KeyVersions<V>,
    /// The node that was the bucket's head when this one was published; immutable after.
    next: *const Node<K, V>,
}

/// A key's node, as a transaction's slot keeps it for the keys its incarnation wrote: its
/// later removals, ESTIMATE flags and final values then need no lookup (no hashing, no
/// walk of a chain, no bucket's cache miss), and the slot holds 8 bytes per key instead
/// of the key.
///
/// Valid until the index is next cleared: every use is `unsafe` with that contract, which
/// the memory keeps by stamping each slot with the block's generation (see `lib.rs`).
pub(crate) struct NodeRef<K, V>(NonNull<Node<K, V>>);

impl<K, V> Clone for NodeRef<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for NodeRef<K, V> {}

impl<K, V> PartialEq for NodeRef<K, V> {
    /// One node per key per block: equal nodes, equal keys.
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

// SAFETY: a `NodeRef` is a shared reference to a node of an index shared the same way:
// the bounds are those of `KeyIndex: Sync`.
unsafe impl<K: Send + Sync, V: Send> Send for NodeRef<K, V> {}
// SAFETY: as above.
unsafe impl<K: Send + Sync, V: Send> Sync for NodeRef<K, V> {}

impl<K, V> NodeRef<K, V> {
    /// The node's key.
    ///
    /// # Safety
    ///
    /// The index that returned this `NodeRef` is alive and was not cleared since, and the
    /// returned reference does not outlive either.
    #[inline]
    pub(crate) unsafe fn key<'a>(self) -> &'a K {
        // SAFETY: by the contract, the node is alive (nodes are dropped only after a
        // clear) and published (only published nodes are handed out).
        unsafe { &(*self.0.as_ptr()).key }
    }

    /// The node's versions.
    ///
    /// # Safety
    ///
    /// As for [`key`](Self::key).
    #[inline]
    pub(crate) unsafe fn versions<'a>(self) -> &'a KeyVersions<V> {
        // SAFETY: as in `key`.
        unsafe { &(*self.0.as_ptr()).versions }
    }
}

/// Slots for [`CHUNK`] nodes, filled in order by the one writer that took the chunk.
struct Chunk<K, V> {
    /// How many slots from the start hold a node. Written only by the chunk's current
    /// writer, and read by the next one (in a later block) or through `&mut` of the index;
    /// relaxed, as a `&mut` clear of the index always lies between the two.
    used: AtomicUsize,
    slots: [UnsafeCell<MaybeUninit<Node<K, V>>>; CHUNK],
}

impl<K, V> Chunk<K, V> {
    /// Drops the chunk's nodes in place, leaving it empty.
    fn drop_nodes(&mut self) {
        // SAFETY: `&mut self` is the chunk to ourselves, and no node can be reached any
        // more (the index that owned it is being dropped or was cleared through `&mut`).
        // The spare buffers go with the temporary list.
        unsafe { self.drop_stale(&mut Spare::new()) }
    }

    /// Drops the nodes an earlier block left in this chunk, for the writer that just took
    /// it.
    ///
    /// # Safety
    ///
    /// The caller has the chunk to itself (`take_chunk` handed it over), and the nodes are
    /// unreachable: the index was cleared since they were written.
    unsafe fn drop_stale(&self, spare: &mut Spare<V>) {
        // Relaxed: the last store was the previous block's writer's, before the `&mut`
        // clear that happened before this block.
        let used = self.used.load(Ordering::Relaxed);
        for slot in self.slots.iter().take(used) {
            // SAFETY: the first `used` slots hold nodes (written by `alloc`), no longer
            // reachable and owned by the caller alone (the contract above), so this is the
            // only reference to the node; each is dropped once, as `used` is reset below.
            let node = unsafe { (*slot.get()).assume_init_mut() };
            node.versions.recycle(spare);
            // SAFETY: as above; `node` is not used after this.
            unsafe { (*slot.get()).assume_init_drop() };
        }
        self.used.store(0, Ordering::Relaxed);
    }
}

/// An owned, heap-allocated [`Chunk`], held by a raw pointer: writers keep pointers into
/// it while the index that owns it is borrowed, and moving a `Box` would (under the
/// aliasing model) invalidate them.
struct ChunkBox<K, V>(NonNull<Chunk<K, V>>);

impl<K, V> ChunkBox<K, V> {
    fn new() -> Self {
        let chunk = Box::new(Chunk {
            used: AtomicUsize::new(0),
            slots: std::array::from_fn(|_| UnsafeCell::new(MaybeUninit::uninit())),
        });
        Self(NonNull::from(Box::leak(chunk)))
    }

    fn as_ptr(&self) -> *const Chunk<K, V> {
        self.0.as_ptr()
    }

    /// Drops the chunk's nodes, through exclusive access.
    fn drop_nodes(&mut self) {
        // SAFETY: the chunk is alive (freed only by `drop`), and `&mut self` on its only
        // owner means no writer holds a pointer into it any more (writers borrow the
        // index).
        unsafe { (*self.0.as_ptr()).drop_nodes() }
    }
}

impl<K, V> Drop for ChunkBox<K, V> {
    fn drop(&mut self) {
        self.drop_nodes();
        // SAFETY: the pointer came from `Box::leak` in `new` and is freed only here.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// The head of a chain, and the highest read-miss mark ([`KeyIndex::mark`]) of this
/// block among its keys: the highest transaction that looked for a key of the bucket and
/// found none. One cache line holds both, as a miss has just loaded the head.
struct Bucket<K, V> {
    head: AtomicPtr<Node<K, V>>,
    misses: AtomicU64,
}

pub(crate) struct KeyIndex<K, V> {
    buckets: Box<[Bucket<K, V>]>,
    /// The block's number in the marks; marks of earlier blocks are below every mark of
    /// this one.
    epoch: u32,
    /// `buckets.len() - 1` (the length is a power of two).
    mask: usize,
    /// The chunks kept between blocks; `chunks[..next_chunk]` were handed out.
    chunks: Vec<ChunkBox<K, V>>,
    next_chunk: AtomicUsize,
    /// Chunks allocated during this block, once `chunks` ran out.
    extra: Mutex<Vec<ChunkBox<K, V>>>,
    /// The writers' spare version buffers, between two writers (see [`Spare`]).
    spares: Mutex<Vec<Spare<V>>>,
}

/// A writer's chunk: where its next new key's node goes. One per worker thread; it borrows
/// the index, so it cannot outlive the block (clearing needs `&mut`).
pub(crate) struct NodeCursor<'a, K, V> {
    index: &'a KeyIndex<K, V>,
    chunk: *const Chunk<K, V>,
    /// The next free slot of `chunk` (`CHUNK` when there is no chunk).
    next: usize,
    /// Version buffers of old nodes this writer dropped, for the keys it grows next;
    /// taken from the index and given back to it (see [`Spare`]).
    spare: Spare<V>,
}

impl<'a, K, V> NodeCursor<'a, K, V> {
    pub(crate) fn new(index: &'a KeyIndex<K, V>) -> Self {
        let spare = lock(&index.spares).pop().unwrap_or_else(Spare::new);
        Self {
            index,
            chunk: ptr::null(),
            next: CHUNK,
            spare,
        }
    }

    /// Writes `node` into the next free slot, taking a chunk if needed; returns the slot.
    #[inline]
    fn alloc(&mut self, node: Node<K, V>) -> NonNull<Node<K, V>> {
        if self.next == CHUNK || self.chunk.is_null() {
            self.chunk = self.index.take_chunk();
            self.next = 0;
            // SAFETY: `take_chunk` handed the chunk to this cursor alone, and whatever
            // nodes it holds were written before the last clear (a chunk is handed out
            // once per block), so they are unreachable.
            unsafe { (*self.chunk).drop_stale(&mut self.spare) };
        }
        // SAFETY: `chunk` was handed to this cursor alone by `take_chunk` (a `fetch_add`
        // index, or a chunk just allocated under the mutex), and stays allocated while the
        // index is borrowed; slot `next` is free (the chunk came empty and `next` only
        // grows, or shrinks back over a slot `unalloc` emptied).
        let chunk = unsafe { &*self.chunk };
        let slot = chunk.slots[self.next].get();
        // SAFETY: as above: the slot is ours and free.
        let node = NonNull::from(unsafe { (*slot).write(node) });
        self.next += 1;
        chunk.used.store(self.next, Ordering::Relaxed);
        node
    }

    /// Takes back the node `alloc` just returned, which was never published.
    fn unalloc(&mut self, node: NonNull<Node<K, V>>) -> Node<K, V> {
        self.next -= 1;
        // SAFETY: `alloc` (the last call on this cursor) returned `node`, the slot
        // `next` of our chunk, and no other thread ever saw it: we move the node out
        // and mark the slot free again.
        let chunk = unsafe { &*self.chunk };
        chunk.used.store(self.next, Ordering::Relaxed);
        // SAFETY: as above; the slot no longer counts as used, so nothing drops it again.
        unsafe { ptr::read(node.as_ptr()) }
    }
}

impl<K, V> Drop for NodeCursor<'_, K, V> {
    /// Gives the spare buffers back to the index, for a writer of a later block: freeing
    /// them here would be the cross-thread frees they exist to avoid.
    fn drop(&mut self) {
        let spare = std::mem::replace(&mut self.spare, Spare::new());
        lock(&self.index.spares).push(spare);
    }
}

// SAFETY: the index owns its nodes (in its chunks; dropped through `&mut self`, or by the
// writer that takes their chunk in a later block, when nothing can reach them). Sending
// the index sends the keys and values: `K: Send`, `V: Send`.
unsafe impl<K: Send, V: Send> Send for KeyIndex<K, V> {}
// SAFETY: through `&KeyIndex`, threads share `&K` (lookups compare keys: `K: Sync`), insert
// keys and values that another thread may drop later (`K: Send`, `V: Send`), and reach
// values only through each key's `Mutex` (`V: Send`, as for `Mutex<V>: Sync`).
unsafe impl<K: Send + Sync, V: Send> Sync for KeyIndex<K, V> {}

fn bucket_count(keys: usize) -> usize {
    keys.saturating_mul(BUCKETS_PER_KEY)
        .checked_next_power_of_two()
        .unwrap_or(MAX_BUCKETS)
        .clamp(MIN_BUCKETS, MAX_BUCKETS)
}

fn empty_buckets<K, V>(count: usize) -> Box<[Bucket<K, V>]> {
    (0..count)
        .map(|_| Bucket {
            head: AtomicPtr::new(ptr::null_mut()),
            misses: AtomicU64::new(0),
        })
        .collect()
}

/// Chunks for about `keys` keys, with room for the writers' partly filled last chunks.
fn chunk_count(keys: usize) -> usize {
    keys.div_ceil(CHUNK).saturating_add(8)
}

impl<K: Eq + Hash, V> KeyIndex<K, V> {
    /// An empty index sized for about `keys` keys.
    pub(crate) fn new(keys: usize) -> Self {
        let count = bucket_count(keys);
        Self {
            buckets: empty_buckets(count),
            epoch: 1,
            mask: count - 1,
            chunks: (0..chunk_count(keys)).map(|_| ChunkBox::new()).collect(),
            next_chunk: AtomicUsize::new(0),
            extra: Mutex::new(Vec::new()),
            spares: Mutex::new(Vec::new()),
        }
    }

    #[inline]
    fn hash(key: &K) -> u64 {
        FxBuildHasher::default().hash_one(key)
    }

    /// The bucket of `hash`.
    #[inline]
    fn bucket(&self, hash: u64) -> &Bucket<K, V> {
        // The mask keeps the index below the length: this never falls back.
        &self.buckets[(hash as usize) & self.mask]
    }

    /// The read-miss mark of `txn_idx` in this block: above every mark of earlier blocks,
    /// ordered like the transactions (saturating: an index beyond `u32::MAX - 1` marks as
    /// the highest, and its writes never count as unread).
    #[inline]
    fn mark(&self, txn_idx: TxnIndex) -> u64 {
        let txn = u32::try_from(txn_idx.saturating_add(1)).unwrap_or(u32::MAX);
        (u64::from(self.epoch) << 32) | u64::from(txn)
    }

    /// The node of `key` in the chain starting at `head`, stopping before `stop`.
    #[inline]
    fn find(
        &self,
        mut node: *const Node<K, V>,
        stop: *const Node<K, V>,
        hash: u64,
        key: &K,
    ) -> Option<&Node<K, V>> {
        while node != stop && !node.is_null() {
            // SAFETY: a non-null pointer in a chain was published by `write` (its node fully
            // written before the release; acquired by our caller's load of the head, see
            // the module's memory ordering). A reachable node is dropped only after a
            // clear, which takes `&mut self` and so cannot coexist with this `&self`
            // (unreachable ones by the writer that takes their chunk in a later block).
            let current = unsafe { &*node };
            if current.hash == hash && current.key == *key {
                return Some(current);
            }
            node = current.next;
        }
        None
    }

    /// Runs `f` on the versions of `key`, if the key was written in this block.
    #[inline]
    pub(crate) fn with<R>(&self, key: &K, f: impl FnOnce(&KeyVersions<V>) -> R) -> Option<R> {
        let hash = Self::hash(key);
        let head = self.bucket(hash).head.load(Ordering::Acquire);
        self.find(head, ptr::null(), hash, key)
            .map(|node| f(&node.versions))
    }

    /// The node of `key` for a read by transaction `txn_idx`'s execution, if the key was
    /// written in this block. If it is not in the index, the miss is marked in its bucket
    /// before a second look, so that a lower transaction inserting the key concurrently
    /// either is seen by the second look or sees the mark (see `write`).
    #[inline]
    pub(crate) fn locate(&self, key: &K, txn_idx: TxnIndex) -> Option<NodeRef<K, V>> {
        let hash = Self::hash(key);
        let bucket = self.bucket(hash);
        let head = bucket.head.load(Ordering::Acquire);
        if let Some(node) = self.find(head, ptr::null(), hash, key) {
            return Some(NodeRef(NonNull::from(node)));
        }
        let mark = self.mark(txn_idx);
        if bucket.misses.load(Ordering::Acquire) < mark {
            bucket.misses.fetch_max(mark, Ordering::AcqRel);
        }
        let again = bucket.head.load(Ordering::Acquire);
        self.find(again, head, hash, key)
            .map(|node| NodeRef(NonNull::from(node)))
    }

    /// Whether no transaction above `txn_idx` has marked a miss in `bucket` so far. A
    /// read-modify-write, called after this write's node was reached or published (see
    /// the module's read-miss marks for why it must be one).
    #[inline]
    fn unmissed(&self, bucket: &Bucket<K, V>, txn_idx: TxnIndex) -> bool {
        txn_idx < u32::MAX as usize - 1
            && bucket.misses.fetch_max(0, Ordering::AcqRel) <= self.mark(txn_idx)
    }

    /// Records a write to `node`, which was already in `bucket`'s chain, and returns it
    /// with whether no higher transaction has read around the write: not through the node
    /// (its readers), nor by missing the key before the node was inserted (the bucket).
    #[inline]
    fn write_existing(
        &self,
        bucket: &Bucket<K, V>,
        node: &Node<K, V>,
        spare: &mut Spare<V>,
        txn_idx: TxnIndex,
        incarnation: Incarnation,
        op: WriteOp<V>,
    ) -> (NodeRef<K, V>, bool)
    where
        V: DeltaValue,
    {
        let unread =
            node.versions.write(txn_idx, incarnation, op, spare) && self.unmissed(bucket, txn_idx);
        (NodeRef(NonNull::from(node)), unread)
    }

    /// Records `txn_idx`'s write of incarnation `incarnation` to `key`, inserting the key
    /// on its first write in the block (its node in `cursor`'s chunk), and returns the
    /// key's node and whether no higher transaction has read around the write (see the
    /// module's read-miss marks). A new key's node carries the write when it is
    /// published, so no other thread ever sees it without it and no lock is taken.
    #[inline]
    pub(crate) fn write(
        &self,
        cursor: &mut NodeCursor<'_, K, V>,
        key: K,
        txn_idx: TxnIndex,
        incarnation: Incarnation,
        op: WriteOp<V>,
    ) -> (NodeRef<K, V>, bool)
    where
        V: DeltaValue,
    {
        let hash = Self::hash(&key);
        let bucket = self.bucket(hash);
        let mut head = bucket.head.load(Ordering::Acquire);
        if let Some(node) = self.find(head, ptr::null(), hash, &key) {
            return self.write_existing(bucket, node, &mut cursor.spare, txn_idx, incarnation, op);
        }
        let node = cursor.alloc(Node {
            hash,
            key,
            versions: KeyVersions::with_write(txn_idx, incarnation, op),
            next: head,
        });
        loop {
            match bucket.head.compare_exchange(
                head,
                node.as_ptr(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return (NodeRef(node), self.unmissed(bucket, txn_idx)),
                Err(current) => {
                    // Other keys were prepended since `head`: look for ours among them.
                    // SAFETY: `node` is the slot `alloc` just filled and no swap published
                    // it: it is still only ours.
                    let mine = unsafe { &mut *node.as_ptr() };
                    if let Some(existing) = self.find(current, head, hash, &mine.key) {
                        // Another thread inserted the key first: write there instead.
                        let mine = cursor.unalloc(node);
                        return match mine.versions.into_first_op() {
                            Some(op) => self.write_existing(
                                bucket,
                                existing,
                                &mut cursor.spare,
                                txn_idx,
                                incarnation,
                                op,
                            ),
                            // Unreachable: the node was built holding one write.
                            None => (NodeRef(NonNull::from(existing)), false),
                        };
                    }
                    mine.next = current;
                    head = current;
                }
            }
        }
    }

    /// Forgets every key, keeping the chunks and the bucket array if they suit a block of
    /// about `keys` keys (new ones would fault in fresh pages on the critical path).
    ///
    /// The nodes are not dropped here, on the one thread that starts the next block: each
    /// chunk's old nodes are dropped by the writer that takes the chunk next, in parallel
    /// with the other writers (or when the index is dropped or shrinks). Dropping a
    /// block's values on one thread (freeing memory other threads allocated, and
    /// releasing shared values) took 4 ms of a 44 ms block of contract calls.
    pub(crate) fn clear(&mut self, keys: usize) {
        crate::sync::set_usize(&mut self.next_chunk, 0);
        let count = bucket_count(keys);
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            // After 2^32 blocks the marks start over from zero.
            for bucket in self.buckets.iter_mut() {
                crate::sync::set_u64(&mut bucket.misses, 0);
            }
            self.epoch = 1;
        }
        if count > self.buckets.len() || count.saturating_mul(8) < self.buckets.len() {
            self.buckets = empty_buckets(count);
            self.mask = count - 1;
        } else {
            for bucket in self.buckets.iter_mut() {
                take_ptr(&mut bucket.head);
            }
        }
        let extra = std::mem::take(crate::sync::get_mut(&mut self.extra));
        self.chunks.extend(extra);
        let chunks = chunk_count(keys);
        if chunks.saturating_mul(4) < self.chunks.len() {
            self.chunks.truncate(chunks);
        } else if chunks > self.chunks.len() {
            self.chunks.resize_with(chunks, ChunkBox::new);
        }
    }
}

impl<K, V> KeyIndex<K, V> {
    /// An empty chunk for one writer alone.
    fn take_chunk(&self) -> *const Chunk<K, V> {
        // Relaxed: the RMW alone makes each index go to one writer; the chunk's memory
        // was last touched before the `&mut` clear that preceded this block.
        let at = self.next_chunk.fetch_add(1, Ordering::Relaxed);
        if let Some(chunk) = self.chunks.get(at) {
            return chunk.as_ptr();
        }
        let chunk = ChunkBox::new();
        let pointer = chunk.as_ptr();
        lock(&self.extra).push(chunk);
        pointer
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_hot_key_leaves_its_buffer_to_the_next_writer() {
        let mut index = KeyIndex::<u32, u64>::new(4);
        {
            let mut cursor = NodeCursor::new(&index);
            for txn_idx in 0..20 {
                index.write(&mut cursor, 7, txn_idx, 0, WriteOp::Delta(1));
            }
            // Growing to 64 entries left the 16-entry buffer spare.
            assert_eq!(cursor.spare.len(), 1);
        }
        // The cursor gave its spare back to the index.
        assert_eq!(lock(&index.spares).len(), 1);
        index.clear(4);
        let mut cursor = NodeCursor::new(&index);
        assert_eq!(cursor.spare.len(), 1);
        assert!(lock(&index.spares).is_empty());
        // Its first new key takes chunk 0 again and drops the hot key's node, keeping
        // its 64-entry buffer.
        index.write(&mut cursor, 8, 0, 0, WriteOp::Value(1));
        assert_eq!(cursor.spare.len(), 2);
        drop(cursor);
        assert_eq!(lock(&index.spares).len(), 1);
    }

    #[test]
    fn marks_start_over_when_the_epoch_wraps() {
        let mut index = KeyIndex::<u32, u64>::new(4);
        let missed = |index: &KeyIndex<u32, u64>, txn_idx| index.locate(&7, txn_idx).is_none();
        let write_unread = |index: &KeyIndex<u32, u64>, txn_idx| {
            let mut cursor = NodeCursor::new(index);
            index.write(&mut cursor, 7, txn_idx, 0, WriteOp::Value(1)).1
        };
        // The last block before the wrap: transaction 5 misses key 7, so a write by
        // transaction 0 is read around.
        index.epoch = u32::MAX;
        assert!(missed(&index, 5));
        assert!(!write_unread(&index, 0));
        // The next block starts over at epoch 1: the old mark, numerically above every
        // new one, is gone, and a write nobody read around counts as unread again.
        index.clear(4);
        assert_eq!(index.epoch, 1);
        assert!(write_unread(&index, 0));
        // A plain clear leaves the old marks in place, below every new one.
        index.clear(4);
        assert!(missed(&index, 9));
        index.clear(4);
        assert_eq!(index.epoch, 3);
        assert!(write_unread(&index, 0));
    }
}
