//! What executing a block returns.

use crate::vm::{TxnOutput, Vm};

/// How a block was executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutionPath {
    /// By Block-STM on worker threads.
    Parallel,
    /// By the sequential executor, by policy.
    Sequential(SequentialReason),
    /// By the sequential executor after the parallel run gave up on the block.
    Fallback(FallbackReason),
}

/// Why the policy chose the sequential executor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequentialReason {
    /// The caller asked for it.
    Requested,
    /// One worker thread: Block-STM's bookkeeping could only cost time.
    SingleThread,
    /// Fewer transactions than the configured minimum block size.
    SmallBlock,
    /// Parallel execution is disabled by configuration.
    Disabled,
    /// The transactions' declared keys show chains of dependencies too long for parallel
    /// execution to gain.
    Conflicted,
    /// The caller's cost model expects sequential execution to be faster for this block
    /// on this machine (a block too small for the workers to repay their fixed cost, or
    /// work on which Block-STM's bookkeeping costs more than the cores return).
    Cheaper,
}

/// Why a parallel run was abandoned for the sequential executor. The results are then
/// the sequential executor's: never wrong, only slower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FallbackReason {
    /// A credit speculated to fit did not (or deltas met a value that is no number):
    /// sequential execution rejects exactly the transactions it must.
    DeltaOverflow,
    /// An engine invariant was found broken.
    Invariant(&'static str),
    /// A worker panicked outside the VM.
    WorkerPanic,
    /// A transaction read or wrote a key against what the storage declared of it
    /// ([`Storage::claim`](crate::Storage::claim)): the hint was wrong.
    ClaimBroken,
}

/// Counters of one block's execution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockStats {
    /// Executions of transactions (first ones and re-executions).
    pub incarnations: u64,
    /// Validations run.
    pub validations: u64,
    /// Validations that aborted an incarnation.
    pub aborts: u64,
    /// Executions stopped on an ESTIMATE to wait for a lower transaction.
    pub dependency_waits: u64,
    /// Time spent inside the VM, summed over every execution on every thread, in
    /// nanoseconds: estimated from one execution in [`VM_TIME_SAMPLE`] (timing each would
    /// cost a visible share of a microsecond transaction). Over the block's wall time it
    /// is the speed-up the executor achieved.
    pub vm_nanos: u64,
    /// Reads, writes and credits of claimed keys ([`Storage::claim`](crate::Storage::claim)),
    /// kept out of the multi-version memory, over every execution.
    pub claimed_accesses: u64,
    /// Transactions run by the sequential executor after Block-STM stopped the block
    /// ([`SuffixRule`](crate::SuffixRule)); 0 when it ran to its end.
    pub sequential_suffix: u64,
    /// Transactions committed while the block ran: final (below the commit index of
    /// `Scheduler::try_commit`), their read sets released. Kept only under a
    /// [`SuffixRule`](crate::SuffixRule) other than `Never`; 0 otherwise.
    pub committed: u64,
}

/// One execution in this many is timed for [`BlockStats::vm_nanos`].
pub const VM_TIME_SAMPLE: u64 = 16;

impl BlockStats {
    pub(crate) fn merge(&mut self, other: &BlockStats) {
        self.incarnations += other.incarnations;
        self.validations += other.validations;
        self.aborts += other.aborts;
        self.dependency_waits += other.dependency_waits;
        self.vm_nanos += other.vm_nanos;
        self.claimed_accesses += other.claimed_accesses;
        self.sequential_suffix += other.sequential_suffix;
        self.committed += other.committed;
    }
}

/// The result of a block: each transaction's output in block order, and the block's
/// final write set.
#[derive(Debug)]
pub struct BlockOutput<K, V, O> {
    /// Each transaction's output, in block order.
    pub outputs: Vec<TxnOutput<O>>,
    /// The final value of every key the block wrote, once each, ordered by the index of
    /// the key's last writer, then by the order that transaction wrote its keys; under
    /// Block-STM, claimed keys ([`Storage::claim`](crate::Storage::claim)) are placed
    /// otherwise: a transaction's writes to keys exclusive to it after its others, the
    /// sums of credit-only keys last. A block finished by a sequential suffix
    /// ([`BlockStats::sequential_suffix`]) lists the kept prefix's writes so, less the
    /// keys the suffix wrote again, then the suffix's in the sequential order.
    pub writes: Vec<(K, V)>,
    /// How the block was executed.
    pub path: ExecutionPath,
    /// Counters of the execution (those of the sequential run after a fallback).
    pub stats: BlockStats,
}

/// An error of the whole block: nothing of it may be written.
#[derive(Debug, thiserror::Error)]
pub enum BlockError<E: std::error::Error + 'static> {
    /// Storage failed, or the VM reported an error of the block.
    #[error("block execution failed: {0}")]
    Vm(#[source] E),
    /// The sequential executor found its own state inconsistent (a VM that breaks the
    /// delta contract): a bug, reported instead of a wrong result.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// The output of a block executed by VM `M`.
pub type VmBlockOutput<M> = BlockOutput<<M as Vm>::Key, <M as Vm>::Value, <M as Vm>::Output>;

/// What executing a block with VM `M` returns.
pub type BlockResult<M> = Result<VmBlockOutput<M>, BlockError<<M as Vm>::Error>>;
