//! The collaborative scheduler of Block-STM (Gelashvili et al., PPoPP 2023, Algorithms 4-5).
//!
//! Worker threads ask [`Scheduler::next_task`] for the lowest-indexed pending task: the
//! *execution* of a transaction's next incarnation, or the *validation* of an executed
//! one. A finished task may hand its thread the follow-up task directly (an execution is
//! followed by its own validation; an aborting validation by the re-execution).
//!
//! One change from the paper: a worker *claims* a run of up to `batch` consecutive
//! indices in one `fetch_add` ([`default_batch`]: 1 for small blocks, up to 32), and
//! works through them in order before it claims again. With cheap transactions the
//! paper's one `fetch_add` per task makes the two shared indices bounce between cores on
//! every transaction; a claim pays that once per run. A run of consecutive transactions
//! executed in order by one thread also cannot conflict within itself.
//!
//! # Status of a transaction
//!
//! ```text
//!                 try_incarnate                finish_execution      try_commit
//!  ReadyToExecute(k) ──────────► Executing(k) ─────────────────► Executed(k) ────► Committed(k)
//!        ▲                          │                               │
//!        │ set_ready_status         │ add_dependency                │ try_validation_abort
//!        │ (incarnation k+1)        ▼                               ▼
//!        └──────────────────── Aborting(k) ◄────────────────────────┘
//! ```
//!
//! `Aborting(k)` is left by `finish_validation` (a failed validation) or by the resume of
//! the transaction's dependencies when the transaction it waited for finishes executing.
//! `Committed(k)` is final: nothing moves a transaction out of it during the block.
//!
//! # Shared state, as concurrent sets
//!
//! - `execution_idx`: every transaction below it has been claimed for execution at
//!   least once since it last fell; it falls (to the lowest resumed dependency) when
//!   re-executions are needed, and each fall increments `decrease_cnt`.
//! - `validation_idx`: every transaction below it has been claimed for validation (or
//!   has one pending as a follow-up, or is committed) for its latest execution; it falls when an execution
//!   writes a new location (as its caller reports it: the multi-version memory reports a
//!   key new to the transaction only if a higher transaction may have read around it) or
//!   a validation aborts.
//! - `num_active_tasks`: tasks handed out and not yet finished, including follow-ups held
//!   by a thread between two calls, plus one for a claim not yet used up; one counter
//!   *per worker* (a task never changes worker:
//!   follow-ups stay with the thread that finished the task), so that the common path
//!   touches no shared counter but the two indices. Done detection reads them all.
//! - `decrease_cnt`: how many times either index fell; read twice by done detection.
//! - `done_marker`: how the block ended, moved once from running: done, halted, or
//!   stopped (the executor stops a block that stopped paying and finishes it
//!   sequentially; see [`Scheduler::stop`]).
//! - `commit_idx`: every transaction below it is committed (the finality index, below),
//!   advanced by one thread at a time under `commit_lock` (a `try_lock`: a second caller
//!   returns at once; the executor calls it from its calling thread only). Written with
//!   release by that thread, read with acquire (the executor reads it after the workers
//!   joined).
//! - per transaction, in one [`CachePadded`] cell: its status and incarnation packed in
//!   one atomic word (`incarnation << 3 | status`), changed only by compare-and-swap from
//!   the status the transition expects, and the transactions waiting for it (its
//!   dependencies) behind a mutex.
//!
//! # Lock order
//!
//! A transaction's dependency list is the scheduler's lock on the task path, and no code
//! holds two of them. `commit_lock` is held while `try_commit` runs the caller's
//! validation (which takes the memory's slot and key locks) and never while a dependency
//! list is locked: no cycle.
//! `add_dependency` reads the blocking transaction's status *under* its dependency lock,
//! and `finish_execution` publishes `Executed` *before* taking that lock: so either the
//! waiter sees `Executed` (and re-executes at once) or its entry is in the list when
//! `finish_execution` drains it. A dependency is never lost.
//!
//! # Memory ordering
//!
//! The counters and the status words use `SeqCst`: done detection reasons about the order
//! of loads and updates of *different* atomics (indices, `num_active_tasks`,
//! `decrease_cnt`, statuses), which needs one total order over them. On x86 this costs
//! nothing over acquire/release for the read-modify-writes. Where a status change must
//! meet a concurrent claim (the store-buffering pattern), the reading side uses a
//! read-modify-write of the status word (`TxnCell::load_latest`) so that correctness follows
//! from acquire/release alone, which is also what loom can check (it models `SeqCst` as
//! `AcqRel`).
//! Dependency lists are guarded by their mutexes.
//!
//! # Done detection (why it is never early and never hangs)
//!
//! `check_done` sets `done_marker` only if, between two loads of `decrease_cnt` that
//! return the same value, it observes `execution_idx ≥ n`, `validation_idx ≥ n` and then
//! every worker's `num_active_tasks == 0`.
//!
//! *Never early.* Suppose some transaction still needs work when the check completes.
//! Work is only created by a running task: a task is counted in its worker's
//! `num_active_tasks` from before it claims an index until after its follow-ups
//! (including any index decrease it causes) are done, and it never moves to another
//! worker. A claim counts the same way, from before its `fetch_add` until its last member
//! was handed out as a task (counted itself) or skipped. Take the earliest index decrease that happened after the check's index loads
//! (some decrease must exist: the loads saw both indices at `n`, and pending work below
//! `n` needs an index below `n` or an active task, and an active task claimed after the
//! index loads needs an index below `n` again). The task that made it was active at some
//! point between the index loads and the decrease. If the decrease precedes the second
//! load of `decrease_cnt`, that load differs from the first. Otherwise the task was
//! active when its worker's counter was loaded (it was claimed before the index loads,
//! as a later claim would need an earlier decrease, and finished after its decrease), so
//! that load returned non-zero. Every operation involved is `SeqCst`, which gives the
//! single order this argument uses. In every case the check fails.
//!
//! *Never hangs.* Every index decrease is followed by a thread picking up the lower index
//! (threads only stop when `done_marker` is set), every claimed task finishes (executions
//! that hit a dependency are parked in the blocking transaction's list and resumed by its
//! `finish_execution`, which cannot be missed: `add_dependency` checks the blocking
//! status under the blocking transaction's dependency lock, which `finish_execution` takes
//! after setting `Executed`). Once all work is done both indices stay at `n`, the counter
//! stops changing, and the next idle thread's `check_done` succeeds.
//!
//! # The commit index (finality)
//!
//! [`Scheduler::try_commit`] moves the transaction at `commit_idx` from `Executed(k)` to
//! `Committed(k)` when the caller's validation of its read set holds, then the next, and
//! stops at the first that is not `Executed` or does not validate.
//!
//! *Committed means final.* By induction on the index: every transaction below `i` is
//! committed when `i` is validated, and a committed transaction is never aborted (the
//! only way out of `Executed` a validation has is `try_validation_abort`, a
//! compare-and-swap from `Executed(k)` that fails on `Committed(k)`), so it never runs
//! again and its writes in the memory are final. The memory below `i` is then the
//! sequential state before `i`, and a read set that validates against it read what
//! sequential execution gives `i`. If `i` was aborted, or re-executed, between that
//! validation and the swap, the swap fails: the word no longer holds `Executed(k)`, and
//! the incarnation number rules out an ABA. A validation of `i` that failed earlier,
//! against lower writes that have changed since, can no longer abort it; it was stale.
//!
//! *Done detection is unchanged.* A commit creates no task and lowers no index; claims
//! skip a committed transaction's validation (it is final) as they skip any member with
//! nothing to do; `add_dependency` treats a committed transaction as executed.
//!
//! # Stopping a block
//!
//! [`Scheduler::stop`] ends a running block early: the workers leave at their next call,
//! dropping the tasks in their hands. The scheduler promises nothing more of a stopped
//! block than each transaction's status ([`Scheduler::executed`]) and the commit index: a
//! dropped follow-up validation means an index may have passed a transaction that was
//! never validated. The executor therefore keeps the committed prefix and, beyond it,
//! finds the rest of the prefix it keeps by validating it itself, once every worker has
//! left (its suffix module proves that prefix exact), and
//! [clears](Scheduler::clear_stopped_txn) the rest, whose dependency lists may still hold
//! waiters.
//!
//! Because the end is one word moved once from running (compare-and-swap), a stop and
//! done detection cannot both succeed: every worker that sees the block ended sees the same
//! end. (A `halt` after the block is done, from a failure in the final pass, still reaches
//! only the workers that look after it; the executor's gathering barrier and its check
//! that every chunk arrived turn that into a fallback, as before stops existed.)
//!
//! [`CachePadded`]: crossbeam_utils::CachePadded

#![warn(missing_docs)]

mod sync;

use crossbeam_utils::CachePadded;
use std::fmt;
use sync::{lock, try_lock, AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering};

/// Index of a transaction in its block.
pub type TxnIndex = usize;
/// The number of an execution of a transaction: 0 for the first, +1 for each re-execution.
pub type Incarnation = u32;

/// A task handed to a worker thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Execute this incarnation of the transaction.
    Execution(TxnIndex, Incarnation),
    /// Validate the reads of this incarnation of the transaction.
    Validation(TxnIndex, Incarnation),
}

/// Which index a claim was taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClaimKind {
    Execution,
    Validation,
}

/// A run of consecutive indices a worker took from one index in one `fetch_add`.
#[derive(Clone, Copy, Debug)]
struct Claim {
    kind: ClaimKind,
    /// For an execution claim: whether it also claimed the run for validation (see
    /// `Scheduler::claim`).
    validates: bool,
    next: TxnIndex,
    end: TxnIndex,
}

/// One worker thread's handle on the scheduler: its number (for its active-task counter)
/// and its current claim.
#[derive(Debug)]
pub struct Worker {
    id: usize,
    claim: Option<Claim>,
}

impl Worker {
    /// Worker number `id` (`0..workers` of [`Scheduler::new`]).
    pub fn new(id: usize) -> Self {
        Self { id, claim: None }
    }

    /// The worker's number.
    pub fn id(&self) -> usize {
        self.id
    }
}

/// A scheduler invariant found broken: the executor must not trust this block's parallel
/// results (it re-executes the block sequentially).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvariantViolation(pub &'static str);

impl fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "scheduler invariant violated: {}", self.0)
    }
}

impl std::error::Error for InvariantViolation {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    ReadyToExecute = 0,
    Executing = 1,
    Executed = 2,
    Aborting = 3,
    /// Executed, and final: below the commit index ([`Scheduler::try_commit`]).
    Committed = 4,
}

impl Status {
    /// Executed, final or not: its writes in the memory are its last incarnation's.
    #[inline]
    fn executed(self) -> bool {
        matches!(self, Status::Executed | Status::Committed)
    }
}

/// A status and incarnation, packed into one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TxnState {
    status: Status,
    incarnation: Incarnation,
}

impl TxnState {
    #[inline]
    fn pack(self) -> u64 {
        (u64::from(self.incarnation) << 3) | self.status as u64
    }

    #[inline]
    fn unpack(word: u64) -> Self {
        let status = match word & 7 {
            0 => Status::ReadyToExecute,
            1 => Status::Executing,
            2 => Status::Executed,
            3 => Status::Aborting,
            _ => Status::Committed,
        };
        // The incarnation was a u32 shifted left by 3: it fits back.
        let incarnation = (word >> 3) as Incarnation;
        Self {
            status,
            incarnation,
        }
    }
}

struct TxnCell {
    state: AtomicU64,
    dependencies: Mutex<Vec<TxnIndex>>,
}

impl TxnCell {
    #[inline]
    fn load(&self) -> TxnState {
        TxnState::unpack(self.state.load(Ordering::SeqCst))
    }

    /// The state, read with a read-modify-write, which sees the latest value in the
    /// word's modification order. A claim reads its members this way.
    ///
    /// A claim and a status change meet in the store-buffering pattern:
    /// `finish_execution` publishes `Executed` and then reads `validation_idx`, while a
    /// validation claim increments `validation_idx` and then reads the status
    /// (`finish_validation` publishing `ReadyToExecute` against an execution claim is the
    /// same). At least one side must see the other. `SeqCst` loads give that on real
    /// hardware; with the claim's read an RMW of the status word, which the other side
    /// also RMWs, one of the two reads from the other, so release/acquire alone gives it.
    /// That is also what loom can check: it models `SeqCst` as `AcqRel`. The RMW touches
    /// only this transaction's cell, not a shared index.
    #[inline]
    fn load_latest(&self) -> TxnState {
        TxnState::unpack(self.state.fetch_add(0, Ordering::SeqCst))
    }

    /// Moves from exactly `from` to `to`; `false` if the state was not `from`.
    #[inline]
    fn transition(&self, from: TxnState, to: TxnState) -> bool {
        self.state
            .compare_exchange(from.pack(), to.pack(), Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

/// Indices per claim: up to 32, and small enough that every worker gets at least 16
/// claims of the block (1 for small blocks, which keeps the paper's one-at-a-time order).
pub fn default_batch(num_txns: usize, workers: usize) -> usize {
    (num_txns / workers.max(1).saturating_mul(16)).clamp(1, 32)
}

/// The scheduler of one block.
pub struct Scheduler {
    num_txns: usize,
    /// Indices taken per claim.
    batch: usize,
    execution_idx: CachePadded<AtomicUsize>,
    validation_idx: CachePadded<AtomicUsize>,
    decrease_cnt: CachePadded<AtomicUsize>,
    num_active_tasks: Box<[CachePadded<AtomicUsize>]>,
    /// How the block ended: [`RUNNING`] until done detection, a halt or a stop moves it,
    /// once, to [`DONE`], [`HALTED`] or [`STOPPED`].
    done_marker: CachePadded<AtomicUsize>,
    halted: AtomicBool,
    /// Every transaction below it is committed: executed, validated once every
    /// transaction below it was committed, and never aborted again
    /// ([`Scheduler::try_commit`]).
    commit_idx: CachePadded<AtomicUsize>,
    /// Held by the one thread advancing `commit_idx` at a time (others do not wait).
    commit_lock: Mutex<()>,
    txns: Vec<CachePadded<TxnCell>>,
}

fn new_cell() -> CachePadded<TxnCell> {
    CachePadded::new(TxnCell {
        state: AtomicU64::new(READY_ZERO),
        dependencies: Mutex::new(Vec::new()),
    })
}

/// The block is running (the value of `done_marker`).
const RUNNING: usize = 0;
/// Every transaction is executed and validated.
const DONE: usize = 1;
/// A worker or the executor [halted](Scheduler::halt) the block.
const HALTED: usize = 2;
/// The executor [stopped](Scheduler::stop) the block to finish it otherwise.
const STOPPED: usize = 3;

/// How a block of `num_txns` transactions starts: an empty one is done.
fn initial_end(num_txns: usize) -> usize {
    if num_txns == 0 {
        DONE
    } else {
        RUNNING
    }
}

/// The packed state `ReadyToExecute(0)`.
const READY_ZERO: u64 = 0;

impl Scheduler {
    /// A scheduler for a block of `num_txns` transactions, all ready for incarnation 0,
    /// run by `workers` threads (numbered from 0; at least one is assumed).
    pub fn new(num_txns: usize, workers: usize) -> Self {
        Self::with_batch(num_txns, workers, default_batch(num_txns, workers))
    }

    /// [`new`](Self::new) with `batch` indices per claim (at least 1).
    pub fn with_batch(num_txns: usize, workers: usize, batch: usize) -> Self {
        Self {
            num_txns,
            batch: batch.max(1),
            execution_idx: CachePadded::new(AtomicUsize::new(0)),
            validation_idx: CachePadded::new(AtomicUsize::new(0)),
            decrease_cnt: CachePadded::new(AtomicUsize::new(0)),
            num_active_tasks: (0..workers.max(1))
                .map(|_| CachePadded::new(AtomicUsize::new(0)))
                .collect(),
            done_marker: CachePadded::new(AtomicUsize::new(initial_end(num_txns))),
            halted: AtomicBool::new(false),
            commit_idx: CachePadded::new(AtomicUsize::new(0)),
            commit_lock: Mutex::new(()),
            txns: (0..num_txns).map(|_| new_cell()).collect(),
        }
    }

    /// The number of transactions of the block.
    pub fn num_txns(&self) -> usize {
        self.num_txns
    }

    /// Returns transaction `txn_idx`'s cell to `ReadyToExecute(0)` with no dependencies,
    /// once the block is done, so that [`reuse`](Self::reuse) can skip it. The executor
    /// calls it for every transaction in its final pass, in parallel.
    ///
    /// The dependency list is empty already: a transaction is only added to one while
    /// the list's owner is not `Executed`, and `finish_execution` drains it, so when every
    /// transaction is executed every list has been drained.
    pub fn clear_txn(&self, txn_idx: TxnIndex) {
        if let Some(cell) = self.txns.get(txn_idx) {
            cell.state.store(READY_ZERO, Ordering::Relaxed);
        }
    }

    /// Makes this scheduler a fresh one for a block of `num_txns` transactions on
    /// `workers` threads, keeping its memory (a new block would fault in fresh pages on
    /// the critical path). Every transaction of the previous block must have been
    /// [cleared](Self::clear_txn); cells beyond the previous block are new.
    pub fn reuse(&mut self, num_txns: usize, workers: usize) {
        debug_assert!(self
            .txns
            .iter_mut()
            .all(|cell| cell.dependencies.get_mut().map_or(true, |d| d.is_empty())));
        self.txns.truncate(num_txns);
        self.txns.resize_with(num_txns, new_cell);
        self.num_txns = num_txns;
        self.batch = default_batch(num_txns, workers);
        self.execution_idx = CachePadded::new(AtomicUsize::new(0));
        self.validation_idx = CachePadded::new(AtomicUsize::new(0));
        self.decrease_cnt = CachePadded::new(AtomicUsize::new(0));
        self.num_active_tasks = (0..workers.max(1))
            .map(|_| CachePadded::new(AtomicUsize::new(0)))
            .collect();
        self.done_marker = CachePadded::new(AtomicUsize::new(initial_end(num_txns)));
        self.halted = AtomicBool::new(false);
        self.commit_idx = CachePadded::new(AtomicUsize::new(0));
    }

    /// Returns transaction `txn_idx`'s cell to `ReadyToExecute(0)` and empties its
    /// dependency list, after a [stop](Self::stop): then a transaction may be left waiting
    /// in the list of one that never finished its execution. Call it, once every worker
    /// has left, for each transaction [`clear_txn`](Self::clear_txn) was not called for.
    pub fn clear_stopped_txn(&self, txn_idx: TxnIndex) {
        self.clear_txn(txn_idx);
        if let Some(cell) = self.txns.get(txn_idx) {
            lock(&cell.dependencies).clear();
        }
    }

    /// The active-task counter of `worker` (a worker out of range shares one: never
    /// wrong, only contended).
    #[inline]
    fn active(&self, worker: usize) -> &AtomicUsize {
        &self.num_active_tasks[worker % self.num_active_tasks.len()]
    }

    /// Whether the block is done (every transaction executed and validated) or halted.
    #[inline]
    pub fn done(&self) -> bool {
        self.done_marker.load(Ordering::Acquire) != RUNNING
    }

    /// Whether [`halt`](Self::halt) was called.
    pub fn halted(&self) -> bool {
        self.halted.load(Ordering::Acquire)
    }

    /// Stops the block: every worker sees [`done`](Self::done) at its next call and leaves.
    /// Used on a block error, a panic outside the VM, or a broken invariant.
    pub fn halt(&self) {
        self.halted.store(true, Ordering::Release);
        // A block that already ended keeps its end; `halted` tells the workers.
        let _ =
            self.done_marker
                .compare_exchange(RUNNING, HALTED, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Stops the block where it stands, for the executor to finish it another way: every
    /// worker sees [`done`](Self::done) at its next call and leaves, dropping the task in
    /// its hand. Nothing is then known of the block beyond each transaction's status
    /// ([`executed`](Self::executed)) and the commit index ([`committed`](Self::committed)):
    /// a follow-up validation may have been dropped, so the caller must itself validate
    /// what it keeps beyond the committed prefix (see the executor's suffix).
    ///
    /// Returns whether it stopped the block: `false` if the block had already ended
    /// (done, halted or stopped). The end is one word moved once from running, so a stop
    /// and done detection never both succeed: the workers all run the final pass, or none
    /// does.
    pub fn stop(&self) -> bool {
        self.done_marker
            .compare_exchange(RUNNING, STOPPED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Whether the block ended by [`stop`](Self::stop).
    pub fn stopped(&self) -> bool {
        self.done_marker.load(Ordering::Acquire) == STOPPED
    }

    /// Whether `txn_idx`'s last incarnation finished executing and was not aborted since
    /// (its writes in the memory are that incarnation's, with no ESTIMATE).
    pub fn executed(&self, txn_idx: TxnIndex) -> bool {
        self.txns
            .get(txn_idx)
            .is_some_and(|cell| cell.load().status.executed())
    }

    /// The commit index: every transaction below it is final (see
    /// [`try_commit`](Self::try_commit)).
    pub fn committed(&self) -> TxnIndex {
        self.commit_idx.load(Ordering::Acquire)
    }

    /// Advances the commit index as far as it can, if no other thread is doing it (then
    /// it returns at once). The transaction at the index is committed when it is
    /// `Executed` and `validate` (its read set against the memory) holds: every
    /// transaction below it is committed, so none of them will write again and the memory
    /// below it is final, and a read set that validates against it read what sequential
    /// execution gives it. The status moves `Executed(k)` → `Committed(k)` by
    /// compare-and-swap, so a validation of that incarnation that failed earlier, against
    /// memory that has changed since, can no longer abort it; an abort or re-execution
    /// between `validate` and the swap makes the swap fail (the incarnation changed, or
    /// the status), and the index stops there. `on_commit` runs for each transaction
    /// committed, before the index passes it. Returns the commit index.
    pub fn try_commit(
        &self,
        mut validate: impl FnMut(TxnIndex) -> bool,
        mut on_commit: impl FnMut(TxnIndex),
    ) -> TxnIndex {
        let Some(_committer) = try_lock(&self.commit_lock) else {
            return self.committed();
        };
        let mut next = self.commit_idx.load(Ordering::Acquire);
        while let Some(cell) = self.txns.get(next) {
            // Once the block ended the final pass (or the cut) owns the slots.
            if self.done() {
                break;
            }
            let state = cell.load_latest();
            if state.status != Status::Executed || !validate(next) {
                break;
            }
            let committed = TxnState {
                status: Status::Committed,
                ..state
            };
            if !cell.transition(state, committed) {
                break;
            }
            on_commit(next);
            next += 1;
            self.commit_idx.store(next, Ordering::Release);
        }
        next
    }

    /// How far both indices have reached: every transaction below it was claimed for
    /// execution and for validation since either last fell. An estimate of the prefix that
    /// is executed and validated (not a bound either way: a claim runs ahead of its tasks,
    /// and an abort of `i` leaves executed transactions above `i + 1`), read without a
    /// lock while the block runs.
    pub fn progress(&self) -> TxnIndex {
        self.execution_idx
            .load(Ordering::Relaxed)
            .min(self.validation_idx.load(Ordering::Relaxed))
            .min(self.num_txns)
    }

    /// The next task for `worker`, or `None` if there is nothing to do right now (ask
    /// again unless [`done`](Self::done)).
    ///
    /// Served from the worker's current claim first; when that is used up, a new claim is
    /// taken on the validation index if it is behind the execution index (the paper's
    /// priority: lowest pending task, validations first), else on the execution index.
    pub fn next_task(&self, worker: &mut Worker) -> Option<Task> {
        if let Some(task) = self.next_from_claim(worker) {
            return Some(task);
        }
        let kind = if self.validation_idx.load(Ordering::SeqCst)
            < self.execution_idx.load(Ordering::SeqCst)
        {
            ClaimKind::Validation
        } else {
            ClaimKind::Execution
        };
        self.claim(worker, kind);
        self.next_from_claim(worker)
    }

    /// Takes the next `batch` indices of `kind` for `worker`. The claim counts as an
    /// active task of the worker until it is used up.
    fn claim(&self, worker: &mut Worker, kind: ClaimKind) {
        let index = match kind {
            ClaimKind::Execution => &self.execution_idx,
            ClaimKind::Validation => &self.validation_idx,
        };
        if index.load(Ordering::SeqCst) >= self.num_txns {
            self.check_done();
            return;
        }
        self.active(worker.id).fetch_add(1, Ordering::SeqCst);
        let start = index.fetch_add(self.batch, Ordering::SeqCst);
        let end = start.saturating_add(self.batch).min(self.num_txns);
        if start >= end {
            self.active(worker.id).fetch_sub(1, Ordering::SeqCst);
            return;
        }
        // An execution claim that starts exactly at the validation index also claims the
        // run for validation, moving the validation index past it: then every member
        // executed from now on gets its validation as a follow-up on the thread that
        // executed it (finish_execution sees the validation index above it), while its
        // data is still in that core's cache, and no other thread sweeps the run's status
        // words just to skip them. It is a validation claim like any other, with its
        // members checked when processed; `next_from_claim` validates a member it finds
        // already executed (by another thread, after an index fell).
        let validates = kind == ClaimKind::Execution
            && self
                .validation_idx
                .compare_exchange(start, end, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
        worker.claim = Some(Claim {
            kind,
            validates,
            next: start,
            end,
        });
    }

    /// The next task of the worker's claim: an execution of a member that is ready (the
    /// paper's `try_incarnate`), or a validation of a member that is executed. Members in
    /// any other status are skipped, as the paper skips them right after its claim: they
    /// are being executed, or will be, and the scheduler validates them then (see
    /// `finish_execution`). Checking later than the claim changes nothing in that
    /// argument, which holds for any moment after it.
    fn next_from_claim(&self, worker: &mut Worker) -> Option<Task> {
        let claim = worker.claim.as_mut()?;
        while claim.next < claim.end {
            let idx = claim.next;
            claim.next += 1;
            let task = match claim.kind {
                ClaimKind::Execution => match self.try_incarnate(idx) {
                    Ok(incarnation) => Some(Task::Execution(idx, incarnation)),
                    // A committed member needs no validation: it is final.
                    Err(state) if claim.validates && state.status == Status::Executed => {
                        Some(Task::Validation(idx, state.incarnation))
                    }
                    Err(_) => None,
                },
                ClaimKind::Validation => self.txns.get(idx).and_then(|cell| {
                    let state = cell.load_latest();
                    (state.status == Status::Executed)
                        .then_some(Task::Validation(idx, state.incarnation))
                }),
            };
            if task.is_some() {
                self.active(worker.id).fetch_add(1, Ordering::SeqCst);
                return task;
            }
        }
        worker.claim = None;
        self.active(worker.id).fetch_sub(1, Ordering::SeqCst);
        None
    }

    fn check_done(&self) {
        let observed = self.decrease_cnt.load(Ordering::SeqCst);
        let execution_idx = self.execution_idx.load(Ordering::SeqCst);
        let validation_idx = self.validation_idx.load(Ordering::SeqCst);
        if execution_idx.min(validation_idx) >= self.num_txns
            && self
                .num_active_tasks
                .iter()
                .all(|active| active.load(Ordering::SeqCst) == 0)
            && observed == self.decrease_cnt.load(Ordering::SeqCst)
        {
            let _ = self.done_marker.compare_exchange(
                RUNNING,
                DONE,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    /// `ReadyToExecute(k)` → `Executing(k)`, returning `k`; in any other status, that
    /// status.
    fn try_incarnate(&self, txn_idx: TxnIndex) -> Result<Incarnation, TxnState> {
        let Some(cell) = self.txns.get(txn_idx) else {
            // Beyond the block: treated as executed by nobody, never validated.
            return Err(TxnState {
                status: Status::Executing,
                incarnation: 0,
            });
        };
        let state = cell.load_latest();
        if state.status != Status::ReadyToExecute {
            return Err(state);
        }
        let executing = TxnState {
            status: Status::Executing,
            ..state
        };
        // A failed swap means another thread incarnated it first.
        if cell.transition(state, executing) {
            Ok(state.incarnation)
        } else {
            Err(executing)
        }
    }

    fn decrease_execution_idx(&self, target: TxnIndex) {
        self.execution_idx.fetch_min(target, Ordering::SeqCst);
        self.decrease_cnt.fetch_add(1, Ordering::SeqCst);
    }

    fn decrease_validation_idx(&self, target: TxnIndex) {
        self.validation_idx.fetch_min(target, Ordering::SeqCst);
        self.decrease_cnt.fetch_add(1, Ordering::SeqCst);
    }

    /// `Aborting(k)` → `ReadyToExecute(k + 1)`.
    fn set_ready_status(&self, txn_idx: TxnIndex) -> Result<(), InvariantViolation> {
        let cell = self
            .txns
            .get(txn_idx)
            .ok_or(InvariantViolation("transaction index out of range"))?;
        let state = cell.load();
        let ready = TxnState {
            status: Status::ReadyToExecute,
            incarnation: state.incarnation.wrapping_add(1),
        };
        // Only the thread that moved it to Aborting moves it on: the swap cannot race.
        if state.status != Status::Aborting || !cell.transition(state, ready) {
            return Err(InvariantViolation("set_ready_status: not aborting"));
        }
        Ok(())
    }

    /// The execution of `txn_idx` read an ESTIMATE of `blocking_txn_idx`: park it until
    /// `blocking_txn_idx` finishes its next execution. Returns `false` if that already
    /// happened (re-execute at once), `true` if the task is parked (and so finished for the
    /// caller: drop it).
    pub fn add_dependency(
        &self,
        worker: usize,
        txn_idx: TxnIndex,
        blocking_txn_idx: TxnIndex,
    ) -> Result<bool, InvariantViolation> {
        if blocking_txn_idx >= txn_idx {
            return Err(InvariantViolation("dependency on a later transaction"));
        }
        let (Some(blocking), Some(waiting)) =
            (self.txns.get(blocking_txn_idx), self.txns.get(txn_idx))
        else {
            return Err(InvariantViolation("transaction index out of range"));
        };
        let mut dependencies = lock(&blocking.dependencies);
        if blocking.load().status.executed() {
            return Ok(false);
        }
        let state = waiting.load();
        let aborting = TxnState {
            status: Status::Aborting,
            ..state
        };
        // Only the executing thread changes an Executing status: the swap cannot race.
        if state.status != Status::Executing || !waiting.transition(state, aborting) {
            return Err(InvariantViolation("add_dependency: not executing"));
        }
        dependencies.push(txn_idx);
        drop(dependencies);
        self.active(worker).fetch_sub(1, Ordering::SeqCst);
        Ok(true)
    }

    /// Incarnation `incarnation` of `txn_idx` finished and its writes are recorded.
    /// Resumes the transactions that waited for it; returns its validation task if the
    /// caller should run it now.
    pub fn finish_execution(
        &self,
        worker: usize,
        txn_idx: TxnIndex,
        incarnation: Incarnation,
        wrote_new_location: bool,
    ) -> Result<Option<Task>, InvariantViolation> {
        let cell = self
            .txns
            .get(txn_idx)
            .ok_or(InvariantViolation("transaction index out of range"))?;
        let executing = TxnState {
            status: Status::Executing,
            incarnation,
        };
        let executed = TxnState {
            status: Status::Executed,
            incarnation,
        };
        if !cell.transition(executing, executed) {
            return Err(InvariantViolation(
                "finish_execution: not executing this incarnation",
            ));
        }
        let dependencies = std::mem::take(&mut *lock(&cell.dependencies));
        if let Some(&min_dependency) = dependencies.iter().min() {
            for &dependency in &dependencies {
                self.set_ready_status(dependency)?;
            }
            self.decrease_execution_idx(min_dependency);
        }
        if self.validation_idx.load(Ordering::SeqCst) > txn_idx {
            if wrote_new_location {
                // Higher transactions may have read around a key this incarnation wrote
                // for the first time: revalidate them all (this one included).
                self.decrease_validation_idx(txn_idx);
            } else {
                return Ok(Some(Task::Validation(txn_idx, incarnation)));
            }
        }
        self.active(worker).fetch_sub(1, Ordering::SeqCst);
        Ok(None)
    }

    /// A validation of `txn_idx` failed: `Executed(incarnation)` → `Aborting(incarnation)`.
    /// Returns `false` if another validation aborted it first (or it was re-executed): only
    /// the caller that gets `true` converts its writes to estimates.
    pub fn try_validation_abort(&self, txn_idx: TxnIndex, incarnation: Incarnation) -> bool {
        let Some(cell) = self.txns.get(txn_idx) else {
            return false;
        };
        // Of concurrent validations of one incarnation, exactly one wins the swap.
        cell.transition(
            TxnState {
                status: Status::Executed,
                incarnation,
            },
            TxnState {
                status: Status::Aborting,
                incarnation,
            },
        )
    }

    /// The validation of `txn_idx` finished; `aborted` if this caller aborted it (and has
    /// marked its writes as estimates). Returns the re-execution task if the caller should
    /// run it now.
    pub fn finish_validation(
        &self,
        worker: usize,
        txn_idx: TxnIndex,
        aborted: bool,
    ) -> Result<Option<Task>, InvariantViolation> {
        if aborted {
            self.set_ready_status(txn_idx)?;
            self.decrease_validation_idx(txn_idx + 1);
            if self.execution_idx.load(Ordering::SeqCst) > txn_idx {
                if let Ok(incarnation) = self.try_incarnate(txn_idx) {
                    return Ok(Some(Task::Execution(txn_idx, incarnation)));
                }
            }
        }
        self.active(worker).fetch_sub(1, Ordering::SeqCst);
        Ok(None)
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
