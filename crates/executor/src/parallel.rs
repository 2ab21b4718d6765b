//! The parallel executor: Block-STM workers over one [`MVMemory`] and one [`Scheduler`].

use crate::output::{BlockError, BlockOutput, BlockStats, ExecutionPath, FallbackReason};
use crate::view::{HaltReason, ParallelView};
use crate::vm::{panic_message, ExecError, Storage, TxnOutput, Vm};
use crate::SequentialExecutor;
use mvmemory::{FinalError, FoldError, MVMemory, Version};
use scheduler::{InvariantViolation, Scheduler, Task};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

/// Runs Block-STM on a fixed number of worker threads (the calling thread is one of them).
#[derive(Clone, Copy, Debug)]
pub struct ParallelExecutor {
    threads: usize,
}

/// Why the workers stopped early.
enum Failure<E> {
    Block(E),
    Fallback(FallbackReason),
}

/// Everything the workers of one block share.
struct Block<'a, M: Vm, S> {
    vm: &'a M,
    storage: &'a S,
    txns: &'a [M::Txn],
    memory: MVMemory<M::Key, M::Value>,
    scheduler: Scheduler,
    outputs: Box<[Mutex<Option<TxnOutput<M::Output>>>]>,
    failure: Mutex<Option<Failure<M::Error>>>,
}

impl<M, S> Block<'_, M, S>
where
    M: Vm,
    S: Storage<Key = M::Key, Value = M::Value, Error = M::Error>,
{
    /// Records the first failure and stops every worker.
    fn fail(&self, failure: Failure<M::Error>) {
        let mut slot = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(failure);
        }
        drop(slot);
        self.scheduler.halt();
    }

    fn invariant(&self, violation: InvariantViolation) -> Option<Task> {
        self.fail(Failure::Fallback(FallbackReason::Invariant(violation.0)));
        None
    }

    /// The worker loop of the paper: run the task in hand, or ask for one, until done.
    fn work(&self, stats: &mut BlockStats) {
        let mut task = None;
        while !self.scheduler.done() {
            task = match task {
                Some(Task::Execution(txn_idx, incarnation)) => {
                    self.try_execute(txn_idx, incarnation, stats)
                }
                Some(Task::Validation(txn_idx, incarnation)) => {
                    self.try_validate(txn_idx, incarnation, stats)
                }
                None => self.scheduler.next_task(),
            };
        }
    }

    fn try_execute(&self, txn_idx: usize, incarnation: u32, stats: &mut BlockStats) -> Option<Task> {
        let txn = self.txns.get(txn_idx)?;
        loop {
            stats.incarnations += 1;
            let mut view = ParallelView::new(&self.memory, self.storage, txn_idx);
            let result = catch_unwind(AssertUnwindSafe(|| self.vm.execute(txn, &mut view)));
            // The view's own record of why it halted wins over whatever the VM returned.
            match view.halt.take() {
                Some(HaltReason::Dependency(blocking)) => {
                    stats.dependency_waits += 1;
                    match self.scheduler.add_dependency(txn_idx, blocking) {
                        Ok(true) => return None,
                        Ok(false) => continue,
                        Err(violation) => return self.invariant(violation),
                    }
                }
                Some(HaltReason::SpeculativeOverflow) => {
                    self.fail(Failure::Fallback(FallbackReason::DeltaOverflow));
                    return None;
                }
                Some(HaltReason::Storage(error)) => {
                    self.fail(Failure::Block(error));
                    return None;
                }
                None => {}
            }
            let output = match result {
                Ok(Ok(output)) => TxnOutput::Executed(output),
                Ok(Err(ExecError::Block(error))) => {
                    self.fail(Failure::Block(error));
                    return None;
                }
                Ok(Err(ExecError::Halt(_))) => {
                    return self.invariant(InvariantViolation("a VM returned Halt the view did not produce"))
                }
                Err(payload) => {
                    view.writes.clear();
                    TxnOutput::Panicked(panic_message(payload.as_ref()))
                }
            };
            if let Some(slot) = self.outputs.get(txn_idx) {
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(output);
            }
            let version = Version {
                txn_idx,
                incarnation,
            };
            let wrote_new_location = self
                .memory
                .record(version, view.reads, view.writes.into_ops());
            return match self
                .scheduler
                .finish_execution(txn_idx, incarnation, wrote_new_location)
            {
                Ok(next) => next,
                Err(violation) => self.invariant(violation),
            };
        }
    }

    fn try_validate(&self, txn_idx: usize, incarnation: u32, stats: &mut BlockStats) -> Option<Task> {
        stats.validations += 1;
        let valid = self.memory.validate_read_set(txn_idx);
        let aborted = !valid && self.scheduler.try_validation_abort(txn_idx, incarnation);
        if aborted {
            stats.aborts += 1;
            self.memory.convert_writes_to_estimates(txn_idx);
        }
        match self.scheduler.finish_validation(txn_idx, aborted) {
            Ok(next) => next,
            Err(violation) => self.invariant(violation),
        }
    }
}

impl ParallelExecutor {
    /// An executor with `threads` workers (at least 1).
    pub fn new(threads: usize) -> Self {
        Self {
            threads: threads.max(1),
        }
    }

    /// Executes `txns` on `storage`'s state with Block-STM, whatever their number. Falls
    /// back to the sequential executor when speculation cannot be trusted (see
    /// [`FallbackReason`]); the result is the sequential one in every case.
    pub fn execute_block<M, S>(
        &self,
        vm: &M,
        storage: &S,
        txns: &[M::Txn],
    ) -> Result<BlockOutput<M::Key, M::Value, M::Output>, BlockError<M::Error>>
    where
        M: Vm,
        S: Storage<Key = M::Key, Value = M::Value, Error = M::Error>,
    {
        let threads = self.threads.min(txns.len()).max(1);
        let _span = tracing::debug_span!("parallel_block", txns = txns.len(), threads).entered();
        let block = Block {
            vm,
            storage,
            txns,
            memory: MVMemory::new(txns.len()),
            scheduler: Scheduler::new(txns.len()),
            outputs: (0..txns.len()).map(|_| Mutex::new(None)).collect(),
            failure: Mutex::new(None),
        };
        let mut stats = BlockStats::default();
        std::thread::scope(|scope| {
            let workers: Vec<_> = (1..threads)
                .map(|_| scope.spawn(|| run_worker(&block)))
                .collect();
            stats.merge(&run_worker(&block));
            for worker in workers {
                match worker.join() {
                    Ok(worker_stats) => stats.merge(&worker_stats),
                    Err(_) => block.fail(Failure::Fallback(FallbackReason::WorkerPanic)),
                }
            }
        });
        let failure = block.failure.lock().unwrap_or_else(|p| p.into_inner()).take();
        let reason = match failure {
            Some(Failure::Block(error)) => return Err(BlockError::Vm(error)),
            Some(Failure::Fallback(reason)) => reason,
            None => match collect(block, stats) {
                Ok(output) => return Ok(output),
                Err(Failure::Block(error)) => return Err(BlockError::Vm(error)),
                Err(Failure::Fallback(reason)) => reason,
            },
        };
        tracing::warn!(?reason, "parallel execution fell back to sequential");
        let mut output = SequentialExecutor.execute_block(vm, storage, txns)?;
        output.path = ExecutionPath::Fallback(reason);
        Ok(output)
    }
}

/// One worker: the loop, with a panic outside the VM turned into a fallback.
fn run_worker<M, S>(block: &Block<'_, M, S>) -> BlockStats
where
    M: Vm,
    S: Storage<Key = M::Key, Value = M::Value, Error = M::Error>,
{
    let mut stats = BlockStats::default();
    if catch_unwind(AssertUnwindSafe(|| block.work(&mut stats))).is_err() {
        block.fail(Failure::Fallback(FallbackReason::WorkerPanic));
    }
    stats
}

/// The block's outputs and final writes, once every transaction is executed and validated.
fn collect<M, S>(
    block: Block<'_, M, S>,
    stats: BlockStats,
) -> Result<BlockOutput<M::Key, M::Value, M::Output>, Failure<M::Error>>
where
    M: Vm,
    S: Storage<Key = M::Key, Value = M::Value, Error = M::Error>,
{
    let mut writes = Vec::new();
    for txn_idx in 0..block.txns.len() {
        block
            .memory
            .final_writes(txn_idx, |key| block.storage.get(key), &mut writes)
            .map_err(|error| match error {
                FinalError::Base(error) => Failure::Block(error),
                FinalError::Fold(FoldError::DeltaOverflow(_)) => {
                    Failure::Fallback(FallbackReason::DeltaOverflow)
                }
                FinalError::Fold(FoldError::EstimateLeft(_)) => {
                    Failure::Fallback(FallbackReason::Invariant("an ESTIMATE outlived the block"))
                }
            })?;
    }
    let outputs = block
        .outputs
        .into_vec()
        .into_iter()
        .map(|slot| slot.into_inner().unwrap_or_else(|p| p.into_inner()))
        .collect::<Option<Vec<_>>>()
        .ok_or(Failure::Fallback(FallbackReason::Invariant(
            "a transaction has no output after the block",
        )))?;
    Ok(BlockOutput {
        outputs,
        writes,
        path: ExecutionPath::Parallel,
        stats,
    })
}
