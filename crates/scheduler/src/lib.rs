//! The collaborative scheduler of Block-STM (Gelashvili et al., PPoPP 2023, Algorithms 4-5).
//!
//! Worker threads ask [`Scheduler::next_task`] for the lowest-indexed pending task: the
//! *execution* of a transaction's next incarnation, or the *validation* of an executed
//! one. A finished task may hand its thread the follow-up task directly (an execution is
//! followed by its own validation; an aborting validation by the re-execution).
//!
//! # Status of a transaction
//!
//! ```text
//!                 try_incarnate                finish_execution
//!  ReadyToExecute(k) ──────────► Executing(k) ─────────────────► Executed(k)
//!        ▲                          │                               │
//!        │ set_ready_status         │ add_dependency                │ try_validation_abort
//!        │ (incarnation k+1)        ▼                               ▼
//!        └──────────────────── Aborting(k) ◄────────────────────────┘
//! ```
//!
//! `Aborting(k)` is left by `finish_validation` (a failed validation) or by the resume of
//! the transaction's dependencies when the transaction it waited for finishes executing.
//!
//! # Shared state, as concurrent sets
//!
//! - `execution_idx`: every transaction below it has been handed out for execution at
//!   least once since it last fell; it falls (to the lowest resumed dependency) when
//!   re-executions are needed, and each fall increments `decrease_cnt`.
//! - `validation_idx`: every transaction below it has a validation task handed out (or
//!   pending as a follow-up) for its latest execution; it falls when a re-execution writes
//!   a new location or a validation aborts.
//! - `num_active_tasks`: tasks claimed and not yet finished, including follow-ups held by
//!   a thread between two calls; one counter *per worker* (a task never changes worker:
//!   follow-ups stay with the thread that finished the task), so that the common path
//!   touches no shared counter but the two indices. Done detection reads them all.
//! - `decrease_cnt`: how many times either index fell; read twice by done detection.
//! - `done_marker`: set once, when the block is done (or halted).
//! - per transaction, in one [`CachePadded`] cell: its status and incarnation behind one
//!   mutex, and the transactions waiting for it (its dependencies) behind another.
//!
//! # Lock order
//!
//! A transaction's dependency lock may be held while taking a status lock
//! (`add_dependency` holds the blocking transaction's dependency lock and takes the
//! blocking and then the waiting transaction's status lock, one after the other). No code
//! takes a dependency lock while holding a status lock, and no code holds two status locks
//! at once.
//!
//! # Memory ordering
//!
//! The four counters use `SeqCst`: done detection reasons about the order of loads and
//! updates of *different* counters (indices, `num_active_tasks`, `decrease_cnt`), which
//! needs one total order over them. On x86 this costs nothing over acquire/release for
//! the read-modify-writes. Statuses and dependency lists are guarded by their mutexes.
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
//! worker. Take the earliest index decrease that happened after the check's index loads
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
//! [`CachePadded`]: crossbeam_utils::CachePadded

mod sync;

use crossbeam_utils::CachePadded;
use std::fmt;
use sync::{lock, AtomicBool, AtomicUsize, Mutex, Ordering};

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
    ReadyToExecute,
    Executing,
    Executed,
    Aborting,
}

#[derive(Debug)]
struct TxnState {
    status: Status,
    incarnation: Incarnation,
}

struct TxnCell {
    state: Mutex<TxnState>,
    dependencies: Mutex<Vec<TxnIndex>>,
}

/// The scheduler of one block.
pub struct Scheduler {
    num_txns: usize,
    execution_idx: CachePadded<AtomicUsize>,
    validation_idx: CachePadded<AtomicUsize>,
    decrease_cnt: CachePadded<AtomicUsize>,
    num_active_tasks: Box<[CachePadded<AtomicUsize>]>,
    done_marker: CachePadded<AtomicBool>,
    halted: AtomicBool,
    txns: Box<[CachePadded<TxnCell>]>,
}

impl Scheduler {
    /// A scheduler for a block of `num_txns` transactions, all ready for incarnation 0,
    /// run by `workers` threads (numbered from 0; at least one is assumed).
    pub fn new(num_txns: usize, workers: usize) -> Self {
        Self {
            num_txns,
            execution_idx: CachePadded::new(AtomicUsize::new(0)),
            validation_idx: CachePadded::new(AtomicUsize::new(0)),
            decrease_cnt: CachePadded::new(AtomicUsize::new(0)),
            num_active_tasks: (0..workers.max(1))
                .map(|_| CachePadded::new(AtomicUsize::new(0)))
                .collect(),
            done_marker: CachePadded::new(AtomicBool::new(num_txns == 0)),
            halted: AtomicBool::new(false),
            txns: (0..num_txns)
                .map(|_| {
                    CachePadded::new(TxnCell {
                        state: Mutex::new(TxnState {
                            status: Status::ReadyToExecute,
                            incarnation: 0,
                        }),
                        dependencies: Mutex::new(Vec::new()),
                    })
                })
                .collect(),
        }
    }

    /// The number of transactions of the block.
    pub fn num_txns(&self) -> usize {
        self.num_txns
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
        self.done_marker.load(Ordering::Acquire)
    }

    /// Whether [`halt`](Self::halt) was called.
    pub fn halted(&self) -> bool {
        self.halted.load(Ordering::Acquire)
    }

    /// Stops the block: every worker sees [`done`](Self::done) at its next call and leaves.
    /// Used on a block error, a panic outside the VM, or a broken invariant.
    pub fn halt(&self) {
        self.halted.store(true, Ordering::Release);
        self.done_marker.store(true, Ordering::Release);
    }

    /// The next task, or `None` if there is nothing to do right now (ask again unless
    /// [`done`](Self::done)).
    pub fn next_task(&self, worker: usize) -> Option<Task> {
        if self.validation_idx.load(Ordering::SeqCst) < self.execution_idx.load(Ordering::SeqCst) {
            self.next_version_to_validate(worker)
                .map(|(idx, inc)| Task::Validation(idx, inc))
        } else {
            self.next_version_to_execute(worker)
                .map(|(idx, inc)| Task::Execution(idx, inc))
        }
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
            self.done_marker.store(true, Ordering::Release);
        }
    }

    /// `ReadyToExecute(k)` → `Executing(k)`, returning `k`; `None` in any other status.
    fn try_incarnate(&self, txn_idx: TxnIndex) -> Option<Incarnation> {
        let cell = self.txns.get(txn_idx)?;
        let mut state = lock(&cell.state);
        if state.status == Status::ReadyToExecute {
            state.status = Status::Executing;
            Some(state.incarnation)
        } else {
            None
        }
    }

    fn next_version_to_execute(&self, worker: usize) -> Option<(TxnIndex, Incarnation)> {
        if self.execution_idx.load(Ordering::SeqCst) >= self.num_txns {
            self.check_done();
            return None;
        }
        self.active(worker).fetch_add(1, Ordering::SeqCst);
        let idx = self.execution_idx.fetch_add(1, Ordering::SeqCst);
        match self.try_incarnate(idx) {
            Some(incarnation) => Some((idx, incarnation)),
            None => {
                self.active(worker).fetch_sub(1, Ordering::SeqCst);
                None
            }
        }
    }

    fn next_version_to_validate(&self, worker: usize) -> Option<(TxnIndex, Incarnation)> {
        if self.validation_idx.load(Ordering::SeqCst) >= self.num_txns {
            self.check_done();
            return None;
        }
        self.active(worker).fetch_add(1, Ordering::SeqCst);
        let idx = self.validation_idx.fetch_add(1, Ordering::SeqCst);
        if let Some(cell) = self.txns.get(idx) {
            let state = lock(&cell.state);
            if state.status == Status::Executed {
                return Some((idx, state.incarnation));
            }
        }
        self.active(worker).fetch_sub(1, Ordering::SeqCst);
        None
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
        let mut state = lock(&cell.state);
        if state.status != Status::Aborting {
            return Err(InvariantViolation("set_ready_status: not aborting"));
        }
        state.incarnation += 1;
        state.status = Status::ReadyToExecute;
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
        if lock(&blocking.state).status == Status::Executed {
            return Ok(false);
        }
        {
            let mut state = lock(&waiting.state);
            if state.status != Status::Executing {
                return Err(InvariantViolation("add_dependency: not executing"));
            }
            state.status = Status::Aborting;
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
        {
            let mut state = lock(&cell.state);
            if state.status != Status::Executing || state.incarnation != incarnation {
                return Err(InvariantViolation(
                    "finish_execution: not executing this incarnation",
                ));
            }
            state.status = Status::Executed;
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
        let mut state = lock(&cell.state);
        if state.status == Status::Executed && state.incarnation == incarnation {
            state.status = Status::Aborting;
            true
        } else {
            false
        }
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
                if let Some(incarnation) = self.try_incarnate(txn_idx) {
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
