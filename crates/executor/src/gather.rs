//! Gathering the final pass's writes into the block's one write vector, on every worker.
//!
//! In the final pass each worker computes the final writes of the chunks it claimed into
//! vectors of its own. Concatenating them on one thread afterwards reads every cache line
//! of them from the core that wrote it (for 10,000 TOS transfers, 30,000 writes of 88
//! bytes: 0.4 to 1.7 ms of a 12 ms block on 2 threads). Instead:
//!
//! 1. each worker publishes the length of each of its chunks' writes, then arrives at a
//!    barrier ([`Gather::arrive`]);
//! 2. once every worker has arrived, worker 0 allocates the vector for the total, and the
//!    others wait for it;
//! 3. each worker moves its own chunks' writes into the vector at their offsets (the sums
//!    of the lengths of the chunks before), reading memory in its own cache and writing
//!    disjoint ranges;
//! 4. after the workers are joined, [`Gather::finish`] gives the vector its length if
//!    every chunk was moved.
//!
//! If anything failed (a chunk's final pass, a worker, the block), nobody allocates or
//! moves anything: the chunks keep their writes and the executor falls back as before.
//!
//! # Memory ordering
//!
//! The lengths are stored (relaxed) before the storing worker's arrival, an `AcqRel`
//! increment; a worker leaves the barrier on an `Acquire` load that reads the last of
//! those increments, so it sees every length. Worker 0 publishes the offsets and the
//! vector's pointer with a `Release` store of `ready`, which the others `Acquire`. The main thread reads
//! the vector after joining every worker (the join synchronises).
//!
//! `loom-tests/tests/gather.rs` models two workers, with and without a failed chunk.

use crate::sync::{wait, AtomicBool, AtomicPtr, AtomicUsize, Mutex, Ordering};
use std::ptr;

/// The arrivals a barrier has when it does not know how many workers there are yet.
const UNKNOWN: usize = usize::MAX;

/// The barrier and the shared vector of one block's final pass (see the module doc).
pub struct Gather<K, V> {
    /// The length of each chunk's final writes (by chunk number).
    lengths: Box<[AtomicUsize]>,
    /// Where each chunk's writes go in the vector (the sum of the lengths before it);
    /// computed by worker 0 at the barrier.
    offsets: Box<[AtomicUsize]>,
    /// The sum of the lengths: the vector's capacity.
    total: AtomicUsize,
    /// Workers that finished their final pass.
    arrived: AtomicUsize,
    /// Workers running the block ([`UNKNOWN`] until the executor has started them all).
    expected: AtomicUsize,
    /// Some chunk or worker failed: nothing is gathered.
    failed: AtomicBool,
    /// The vector (length 0 until [`finish`](Self::finish)); allocated by worker 0.
    vector: Mutex<Option<Vec<(K, V)>>>,
    /// Its buffer, for the workers moving writes in.
    buffer: AtomicPtr<(K, V)>,
    /// Worker 0 has decided: `buffer` is set, or nothing is gathered.
    ready: AtomicBool,
    /// Chunks moved into the vector.
    moved: AtomicUsize,
}

impl<K, V> Gather<K, V> {
    /// For a final pass of `chunks` chunks.
    pub fn new(chunks: usize) -> Self {
        Self {
            lengths: (0..chunks).map(|_| AtomicUsize::new(0)).collect(),
            offsets: (0..chunks).map(|_| AtomicUsize::new(0)).collect(),
            total: AtomicUsize::new(0),
            arrived: AtomicUsize::new(0),
            expected: AtomicUsize::new(UNKNOWN),
            failed: AtomicBool::new(false),
            vector: Mutex::new(None),
            buffer: AtomicPtr::new(ptr::null_mut()),
            ready: AtomicBool::new(false),
            moved: AtomicUsize::new(0),
        }
    }

    /// How many workers will arrive: set once, by the executor, after starting them and
    /// before worker 0 runs.
    pub fn expect(&self, workers: usize) {
        self.expected.store(workers, Ordering::Release);
    }

    /// Chunk `number`'s writes are `len` long (call before [`arrive`](Self::arrive)).
    pub fn publish(&self, number: usize, len: usize) {
        match self.lengths.get(number) {
            Some(slot) => slot.store(len, Ordering::Relaxed),
            None => self.fail(),
        }
    }

    /// Nothing is to be gathered (call before [`arrive`](Self::arrive)).
    pub fn fail(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    /// Arrives at the barrier and waits for every worker; then worker 0 allocates the
    /// vector unless `give_up` (the block failed) or something failed. Returns whether
    /// this worker should move its chunks in (with [`move_in`](Self::move_in)).
    pub fn arrive(&self, worker: usize, give_up: impl FnOnce() -> bool) -> bool {
        self.arrived.fetch_add(1, Ordering::AcqRel);
        let mut spins = 0u32;
        while self.arrived.load(Ordering::Acquire) < self.expected.load(Ordering::Acquire) {
            wait(&mut spins);
        }
        if worker == 0 {
            if !give_up() && !self.failed.load(Ordering::Relaxed) {
                let mut total = 0usize;
                for (len, offset) in self.lengths.iter().zip(self.offsets.iter()) {
                    offset.store(total, Ordering::Relaxed);
                    total = total.saturating_add(len.load(Ordering::Relaxed));
                }
                self.total.store(total, Ordering::Relaxed);
                let mut vector = Vec::with_capacity(total);
                self.buffer.store(vector.as_mut_ptr(), Ordering::Relaxed);
                // Moving the vector does not move its buffer.
                *self.vector.lock().unwrap_or_else(|p| p.into_inner()) = Some(vector);
            }
            self.ready.store(true, Ordering::Release);
        } else {
            let mut spins = 0u32;
            while !self.ready.load(Ordering::Acquire) {
                wait(&mut spins);
            }
        }
        !self.buffer.load(Ordering::Relaxed).is_null()
    }

    /// Moves chunk `number`'s writes into the vector at its offset, leaving `writes`
    /// empty. Only after [`arrive`](Self::arrive) returned `true`, by the worker whose
    /// final pass made the chunk, with the writes whose length it published.
    pub fn move_in(&self, number: usize, writes: &mut Vec<(K, V)>) {
        let (Some(published), Some(offset)) = (self.lengths.get(number), self.offsets.get(number))
        else {
            return;
        };
        if published.load(Ordering::Relaxed) != writes.len() {
            return;
        }
        let offset = offset.load(Ordering::Relaxed);
        let buffer = self.buffer.load(Ordering::Relaxed);
        // SAFETY: `buffer` is the vector's, with capacity for the sum of every published
        // length; this chunk's range `offset..offset + len` lies inside it and overlaps no
        // other chunk's (offsets are the sums of the lengths before, computed by worker 0
        // after every length was published and before `ready`; each chunk number is
        // claimed by one worker, which moves it once). The writes are moved: `writes`
        // forgets them (`set_len(0)`) right after the bitwise copy, with nothing that can
        // panic in between, so each is owned exactly once.
        unsafe {
            ptr::copy_nonoverlapping(writes.as_ptr(), buffer.add(offset), writes.len());
            writes.set_len(0);
        }
        self.moved.fetch_add(1, Ordering::Relaxed);
    }

    /// After every worker was joined: the gathered writes, if all `chunks` were moved in.
    /// Otherwise `None`, and what was moved in is leaked (only a worker dying between
    /// the barrier and its moves can do that; the block then falls back).
    pub fn finish(self, chunks: usize) -> Option<Vec<(K, V)>> {
        let mut vector = self
            .vector
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())?;
        if self.moved.into_inner() != chunks {
            std::mem::forget(vector);
            return None;
        }
        let total = self.total.into_inner();
        // SAFETY: every chunk moved its published number of writes into its range, and
        // the ranges tile `0..total`; `total` is the capacity the vector was made with.
        unsafe { vector.set_len(total) };
        Some(vector)
    }
}
