//! Block-STM: execute a block's transactions in parallel with exactly the results of
//! executing them one by one.
//!
//! # The algorithm (Gelashvili et al., *Block-STM*, PPoPP 2023)
//!
//! Every transaction `i` of the block is executed speculatively by some worker; one
//! execution is an *incarnation*. Its reads go to the multi-version memory
//! ([`mvmemory::MVMemory`]): the value written by the highest transaction `j < i`, or
//! storage's value when there is none, and each read records the version it saw. Its
//! writes are buffered and published to the memory when the incarnation finishes.
//!
//! A *validation* of `i` re-reads its read set. If any read now sees another version, the
//! incarnation is aborted: its writes are flagged ESTIMATE and `i` is executed again. A
//! later reader that meets an ESTIMATE of `j` stops and waits for `j`'s next incarnation
//! (a *dependency*) instead of reading a value that is about to change.
//!
//! The collaborative scheduler ([`scheduler::Scheduler`]) hands out the lowest pending
//! task, execution or validation, and detects when every transaction is executed and
//! validated. Then the final value of every key is its highest writer's, and the outputs
//! are read in block order.
//!
//! The end of a block is also parallel: the workers claim chunks of 128 transactions,
//! fold their keys' final values and write their outputs in place into the block's
//! output vector; then, at a barrier, each moves its chunks' final writes into the one
//! write vector at their offsets (`gather.rs`). No thread reads what another core wrote
//! last, which on two cores cost more than the fold itself. The workers are the
//! executor's own threads, kept from block to block (`pool.rs`), and the calling thread.
//!
//! Beyond the paper:
//! - **Commutative deltas.** [`TxnView::add_delta`] adds to a `u64` without reading it, so
//!   credits to one account and fees into one accumulator do not conflict. The speculation
//!   that every credit fits is checked when the block is done, by folding each key's
//!   chain of writes in block order; a credit that does not fit sends the block to the
//!   sequential executor, which rejects exactly that transaction.
//! - **Checks, not values.** A balance check ([`TxnView::check`]: is the number at least
//!   this much?) that holds is recorded as that predicate, and validation asks whether it
//!   still holds on the versions below: a credit it did not need, or a debit that leaves
//!   enough, never aborts it. A check that fails is an exact read (it reports the value).
//!   A debit the transaction's checks of the key cover ([`TxnView::debit`]) is written as
//!   a delta, `-n`, that commutes with the credits around it; one they do not cover reads
//!   the value and writes the difference. Folds of credits and debits check every partial
//!   sum: above `u64::MAX` is a credit that does not fit (as above); below zero means
//!   some debit's check no longer holds, which only speculation can see (that
//!   transaction fails validation and runs again), so the reader gets an inconsistent
//!   read that never validates. Each key's versions keep, per entry, the chain of credits
//!   and debits from the nearest full value below it, so a read folds nothing.
//! - **Claimed keys** (exact hints). The storage may claim keys ([`Storage::claim`]): a
//!   key only transaction `i` touches ([`KeyClaim::Exclusive`]), a key transactions only
//!   credit ([`KeyClaim::CreditOnly`]). Claimed keys never enter the multi-version memory:
//!   `i` reads an exclusive key's storage value without recording the read (nothing can
//!   invalidate it) and its write is final, kept with `i`'s output; credits to a
//!   credit-only key are kept with each transaction's output and summed by the workers in
//!   the final pass (the sum fits exactly when every partial sum does: credits are
//!   never negative and nobody reads them). Claims are checked, never trusted: a read that
//!   reaches storage and every recorded write meet the claim, and one that breaks it
//!   sends the block to the sequential executor ([`FallbackReason::ClaimBroken`]).
//! - **A sequential suffix.** When the caller says how long the block takes sequentially
//!   ([`SuffixRule`]), the calling thread watches the scheduler's progress against it; a
//!   block that falls behind is stopped, the prefix that is executed and still validates
//!   is kept (checked by the calling thread once the workers left, not trusted from the
//!   scheduler), and the sequential executor runs the rest on top of it. While the block
//!   is behind sequential execution at all (judged every 16 of its tasks), the calling
//!   thread also advances a
//!   *finality index* (the scheduler's commit index: the prefix whose transactions are
//!   validated with every lower one final, so never aborted again; their read sets are
//!   released), which the stop keeps without validating it again. So a block whose
//!   speculation does not pay costs at most a quarter of its sequential time more than
//!   sequential execution, not several times it (`suffix.rs` gives the proof and the
//!   bound's conditions).
//! - **Panics are results.** A panic inside [`Vm::execute`] is that transaction's
//!   [`TxnOutput::Panicked`] in both executors, with no writes.
//! - **Sequential fallback.** Small blocks and one thread run sequentially by policy
//!   ([`BlockExecutor`]); a failed speculation or a broken invariant re-runs the block
//!   sequentially ([`FallbackReason`]). A block error (storage) fails the block.
//!
//! # Invariants
//!
//! 1. A read by `i` sees only writes of transactions below `i` (or its own). A recorded
//!    check validates exactly when the number sequential execution would give `i` there
//!    is at least what the check required, so a transaction whose checks validate took
//!    the same branch as sequentially, and a debit its checks cover leaves at least zero
//!    in the final fold: the final value of a key is the sequential one.
//! 2. An incarnation's writes are visible only after it finished executing, and flagged
//!    ESTIMATE before its transaction may execute again.
//! 3. Every transaction's last incarnation passed a validation that no write below it,
//!    earlier or later, can have invalidated: the validation index falls to `j + 1`
//!    whenever `j` is aborted (and `j`'s ESTIMATEs fail every validation that meets them
//!    until `j` runs again), and to `j` whenever `j` writes a key new to it that a higher
//!    transaction may already have read or looked for. A key new to `j` that no higher
//!    transaction has read yet needs no fall: every later read of it sees `j`'s write
//!    (the multi-version memory tells the two apart, see its read-miss marks; the paper
//!    makes the index fall on every new key).
//! 4. A claimed key is touched, in the last incarnations, only as claimed: a read or
//!    write against a claim stops the block before it can be done. So `i`'s reads of its
//!    exclusive keys see what sequential execution would (no transaction writes them but
//!    `i`), its writes to them are the final ones, and a credit-only key's final value
//!    is storage's plus every last incarnation's credits, as sequentially.
//! 5. Hence, when the scheduler reports done, each transaction's last incarnation read
//!    exactly what sequential execution would have given it, and so produced the same
//!    output and writes: the block's result is the sequential result, for any number of
//!    threads.
//! 6. When the block is stopped instead, the kept prefix is the committed prefix (each
//!    validated once every transaction below it was committed, and never aborted after)
//!    followed by the longest run of executed transactions whose reads validate against
//!    the memory once nothing runs: by induction each read what sequential execution
//!    gives it. Only the prefix's
//!    writes stay in the memory, and the sequential executor runs the rest on them, so
//!    the result is again the sequential one.
//!
//! # Use
//!
//! Implement [`Vm`] (one transaction against a [`TxnView`]) and [`Storage`] (the state
//! before the block), then call [`BlockExecutor::execute_block`].

#![warn(missing_docs)]

mod analysis;
mod config;
mod gather;
mod output;
mod parallel;
mod pool;
mod sequential;
mod suffix;
mod sync;
mod view;
mod vm;
mod write_buffer;

pub mod mock;

pub use analysis::critical_path;
pub use config::{ConfigError, ExecutorConfig, DEFAULT_MIN_BLOCK_SIZE};
/// The final pass's gathering barrier, for the loom model in `loom-tests` only.
#[cfg(loom)]
#[doc(hidden)]
pub use gather::Gather;
pub use mvmemory::{DeltaValue, TxnIndex};
pub use output::{
    BlockError, BlockOutput, BlockResult, BlockStats, ExecutionPath, FallbackReason,
    SequentialReason, VmBlockOutput, VM_TIME_SAMPLE,
};
pub use parallel::ParallelExecutor;
pub use sequential::SequentialExecutor;
pub use suffix::SuffixRule;
pub use vm::{
    exact_check, exact_debit, panic_message, ExecError, Halt, KeyClaim, Overflow, Storage,
    TxnOutput, TxnView, Vm,
};

/// The block executor: Block-STM when it can pay, the sequential executor otherwise.
#[derive(Clone, Debug)]
pub struct BlockExecutor {
    config: ExecutorConfig,
    parallel: ParallelExecutor,
}

impl Default for BlockExecutor {
    /// [`ExecutorConfig::default`].
    fn default() -> Self {
        Self::new(ExecutorConfig::default())
    }
}

impl BlockExecutor {
    /// An executor with this configuration.
    pub fn new(config: ExecutorConfig) -> Self {
        let parallel = ParallelExecutor::new(config.threads());
        Self { config, parallel }
    }

    /// The configuration.
    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }

    /// Executes `txns` on `storage`'s state: sequentially for one thread or a block below
    /// the minimum size, with Block-STM otherwise. The outputs and writes are the
    /// sequential executor's in every case.
    pub fn execute_block<M, S>(&self, vm: &M, storage: &S, txns: &[M::Txn]) -> BlockResult<M>
    where
        M: Vm,
        S: Storage<Key = M::Key, Value = M::Value, Error = M::Error>,
    {
        let reason = if self.config.threads() == 1 {
            Some(SequentialReason::SingleThread)
        } else if txns.len() < self.config.min_block_size() {
            Some(SequentialReason::SmallBlock)
        } else {
            None
        };
        match reason {
            Some(reason) => {
                let mut output = SequentialExecutor.execute_block(vm, storage, txns)?;
                output.path = ExecutionPath::Sequential(reason);
                Ok(output)
            }
            None => self.parallel.execute_block(vm, storage, txns),
        }
    }
}
