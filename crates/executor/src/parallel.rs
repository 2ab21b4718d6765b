//! The parallel executor: Block-STM workers over one [`MVMemory`] and one [`Scheduler`].

use crate::gather::Gather;
use crate::output::{
    BlockError, BlockOutput, BlockResult, BlockStats, ExecutionPath, FallbackReason,
};
use crate::pool::Pool;
use crate::suffix::{Look, Overlay, SuffixRule, Watch};
use crate::view::{Claimed, Effects, HaltReason, ParallelView};
use crate::vm::{panic_message, ExecError, KeyClaim, Storage, TxnOutput, Vm};
use crate::write_buffer::add_to;
use crate::SequentialExecutor;
use mvmemory::{DeltaValue, FinalError, FoldError, MVMemory, Version, Writer};
use scheduler::{InvariantViolation, Scheduler, Task, Worker};
use std::any::Any;
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

/// Transactions per chunk when the workers compute the final writes together.
const FINAL_CHUNK: usize = 128;

/// Blocks up to this many transactions leave their buffers to the next block; larger
/// ones free them (a node should not keep a huge block's memory forever).
const MAX_CACHED_TXNS: usize = 1 << 18;

/// The final writes of one chunk of transactions, or why the final pass failed there.
type ChunkOutcome<M> = Result<Vec<(<M as Vm>::Key, <M as Vm>::Value)>, Failure<<M as Vm>::Error>>;

/// A stopped block's outputs and final writes, or why finishing it failed.
type StoppedOutcome<M> = Result<
    (
        Vec<TxnOutput<<M as Vm>::Output>>,
        Vec<(<M as Vm>::Key, <M as Vm>::Value)>,
    ),
    Failure<<M as Vm>::Error>,
>;

/// One chunk of the final pass: its number, how many of its outputs it wrote into the
/// block's output vector (all of them unless it failed), and its final writes.
struct Chunk<M: Vm> {
    number: usize,
    outputs_written: usize,
    writes: ChunkOutcome<M>,
}

/// The block's output vector's spare capacity, cut into one slice per chunk of the final
/// pass; the worker that claims a chunk takes its slice and writes its outputs there, in
/// place (copying them from the worker that produced them to the caller's thread costs a
/// cache miss per line on another core).
type OutputSlices<'o, O> = Vec<Mutex<Option<&'o mut [MaybeUninit<TxnOutput<O>>]>>>;

/// What the memory keeps with a transaction's last incarnation: its output, and what it
/// did to claimed keys (which never enter the memory's index).
struct Finished<K, V, O> {
    output: TxnOutput<O>,
    claimed: Option<Box<Claimed<K, V>>>,
}

/// The block's multi-version memory, keeping each transaction's [`Finished`].
type BlockMemory<M> = MVMemory<
    <M as Vm>::Key,
    <M as Vm>::Value,
    Finished<<M as Vm>::Key, <M as Vm>::Value, <M as Vm>::Output>,
>;

/// A worker's writer into the block's memory.
type BlockWriter<'m, M> = Writer<
    'm,
    <M as Vm>::Key,
    <M as Vm>::Value,
    Finished<<M as Vm>::Key, <M as Vm>::Value, <M as Vm>::Output>,
>;

/// One worker's sums of the credits to each credit-only key (by slot) over the
/// transactions of its chunks of the final pass, `None` for a key none of them credited.
type CreditSums = Vec<Option<u64>>;

/// The per-block structures, kept between blocks so that a block does not fault in
/// fresh pages for them on its critical path.
struct Buffers<K, V, O> {
    memory: MVMemory<K, V, Finished<K, V, O>>,
    scheduler: Scheduler,
}

/// Runs Block-STM on a fixed number of worker threads (the calling thread is one of them).
///
/// It keeps the last block's buffers (multi-version memory and scheduler) for the next
/// block with the same key, value and output types; concurrent calls each get their own.
pub struct ParallelExecutor {
    threads: usize,
    buffers: Mutex<Option<Box<dyn Any + Send>>>,
    /// Worker threads `1..threads`, started at the first block that needs them (`None`
    /// inside if the OS refused: then every block starts scoped threads).
    pool: OnceLock<Option<Mutex<Pool>>>,
}

impl Clone for ParallelExecutor {
    /// The same thread count, with no buffers.
    fn clone(&self) -> Self {
        Self::new(self.threads)
    }
}

impl std::fmt::Debug for ParallelExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParallelExecutor")
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
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
    /// The multi-version memory, which also keeps each transaction's last output.
    memory: BlockMemory<M>,
    scheduler: Scheduler,
    /// Whether the storage claims keys ([`Storage::has_claims`]), asked once per block.
    claims: bool,
    /// The number of credit-only keys ([`Storage::credit_only_keys`]).
    credit_only_keys: usize,
    /// When to stop the block for a sequential suffix, watched by worker 0.
    rule: SuffixRule,
    /// When the block started.
    start: Instant,
    failure: Mutex<Option<Failure<M::Error>>>,
    /// The next chunk of transactions whose final writes are to be computed.
    next_chunk: AtomicUsize,
    /// Where each chunk's outputs go.
    output_slices: OutputSlices<'a, M::Output>,
    /// Where the chunks' final writes go.
    gather: Gather<M::Key, M::Value>,
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
    /// Worker 0 also watches the [`SuffixRule`] and stops the block when it says so.
    fn work(&self, worker: usize, stats: &mut BlockStats) {
        let mut cursor = Worker::new(worker);
        let mut writer = self.memory.writer();
        let mut watch = if worker == 0 {
            Watch::new(self.rule, self.start)
        } else {
            None
        };
        let mut task = None;
        while !self.scheduler.done() {
            if let Some(watch) = &mut watch {
                match watch.look(stats, self.txns.len(), || self.scheduler.progress()) {
                    Look::Ahead => {}
                    Look::Behind => self.commit(),
                    Look::Stop => {
                        self.commit();
                        self.scheduler.stop();
                        stats.committed = self.scheduler.committed() as u64;
                        return;
                    }
                }
            }
            task = match task {
                Some(Task::Execution(txn_idx, incarnation)) => {
                    self.try_execute(worker, &mut writer, txn_idx, incarnation, stats)
                }
                Some(Task::Validation(txn_idx, incarnation)) => {
                    self.try_validate(worker, txn_idx, incarnation, stats)
                }
                None => {
                    let next = self.scheduler.next_task(&mut cursor);
                    if next.is_none() {
                        crate::sync::idle();
                    }
                    next
                }
            };
        }
        if watch.is_some() {
            stats.committed = self.scheduler.committed() as u64;
        }
    }

    /// Advances the commit index (the finality index: every transaction below it is
    /// final, see `Scheduler::try_commit`) and releases what each newly committed
    /// transaction holds that nothing needs any more: its read set. Worker 0 does it
    /// between its tasks while its watch finds the block behind sequential execution
    /// (so a block that pays pays nothing for it); a stopped block keeps the committed
    /// prefix without validating it again.
    fn commit(&self) {
        self.scheduler.try_commit(
            |txn_idx| self.memory.validate_read_set(txn_idx),
            |txn_idx| self.memory.release_reads(txn_idx),
        );
    }

    /// Once the block is done, the final writes and outputs of chunks of transactions,
    /// claimed in turn by every worker, each transaction's slot and status cleared for
    /// the next block. Nothing writes to the memory any more: every index is at the
    /// block's end, so no task can be handed out.
    fn final_pass(&self, credits: &mut CreditSums) -> Vec<Chunk<M>> {
        let mut chunks = Vec::new();
        loop {
            let number = self.next_chunk.fetch_add(1, Ordering::Relaxed);
            let start = number.saturating_mul(FINAL_CHUNK);
            if start >= self.txns.len() {
                return chunks;
            }
            let end = (start + FINAL_CHUNK).min(self.txns.len());
            // Each chunk number is claimed once (the `fetch_add`), so its slice is there.
            let slice = self
                .output_slices
                .get(number)
                .and_then(|slot| slot.lock().unwrap_or_else(|p| p.into_inner()).take());
            let mut outputs_written = 0;
            let writes = match slice {
                Some(slice) => self.final_chunk(start, end, slice, &mut outputs_written, credits),
                None => Err(Failure::Fallback(FallbackReason::Invariant(
                    "a chunk of the final pass has no output slice",
                ))),
            };
            chunks.push(Chunk {
                number,
                outputs_written,
                writes,
            });
        }
    }

    /// The final writes of transactions `start..end`, their outputs written to `outputs`
    /// in order (`written` counts them, also when a later one fails), their credits to
    /// credit-only keys added to `credits`.
    fn final_chunk(
        &self,
        start: usize,
        end: usize,
        outputs: &mut [MaybeUninit<TxnOutput<M::Output>>],
        written: &mut usize,
        credits: &mut CreditSums,
    ) -> ChunkOutcome<M> {
        let mut writes = Vec::new();
        for (txn_idx, out) in (start..end).zip(outputs.iter_mut()) {
            let output = self.finish_txn(txn_idx, &mut writes, credits)?;
            out.write(output);
            *written += 1;
        }
        if *written != end - start {
            return Err(Failure::Fallback(FallbackReason::Invariant(
                "an output slice does not fit its chunk",
            )));
        }
        Ok(writes)
    }

    /// Transaction `txn_idx`'s output, once the block (or its kept prefix) is done: its
    /// final writes appended to `writes`, its exclusive keys' writes after them, its
    /// credits to credit-only keys added to `credits`; its status cleared.
    fn finish_txn(
        &self,
        txn_idx: usize,
        writes: &mut Vec<(M::Key, M::Value)>,
        credits: &mut CreditSums,
    ) -> Result<TxnOutput<M::Output>, Failure<M::Error>> {
        let Finished { output, claimed } = self
            .memory
            .finish_txn(txn_idx, |key| self.storage.get(key), writes)
            .map_err(|error| match error {
                FinalError::Base(error) => Failure::Block(error),
                FinalError::Fold(FoldError::DeltaOverflow(_)) => {
                    Failure::Fallback(FallbackReason::DeltaOverflow)
                }
                FinalError::Fold(FoldError::EstimateLeft(_)) => {
                    Failure::Fallback(FallbackReason::Invariant("an ESTIMATE outlived the block"))
                }
                FinalError::Fold(FoldError::DebitUnderflow(_)) => Failure::Fallback(
                    FallbackReason::Invariant("a validated debit went below zero"),
                ),
            })?
            .ok_or(Failure::Fallback(FallbackReason::Invariant(
                "a transaction has no output after the block",
            )))?;
        if let Some(claimed) = claimed {
            let Claimed {
                exclusive,
                credits: to_credit,
            } = *claimed;
            writes.extend(exclusive);
            for (slot, credit) in to_credit {
                let sum =
                    credits
                        .get_mut(slot)
                        .ok_or(Failure::Fallback(FallbackReason::Invariant(
                            "a credit-only slot beyond the storage's count",
                        )))?;
                add_credit(sum, credit)?;
            }
        }
        self.scheduler.clear_txn(txn_idx);
        Ok(output)
    }

    /// The block after a [stop](scheduler::Scheduler::stop), once every worker has left:
    /// the kept prefix finished as by the final pass, the rest run by the sequential
    /// executor on top of it (the suffix module's documentation proves the prefix exact).
    /// Returns every output and the block's writes; `stats` counts the suffix.
    fn finish_stopped(&self, stats: &mut BlockStats) -> StoppedOutcome<M> {
        let n = self.txns.len();
        // The committed prefix is final already (its read sets released); from there,
        // the executed transactions whose reads still validate.
        let kept = (self.scheduler.committed().min(n)..n)
            .find(|&i| !self.scheduler.executed(i) || !self.memory.validate_read_set(i))
            .unwrap_or(n);
        for txn_idx in kept..n {
            self.memory.discard_txn(txn_idx);
            self.scheduler.clear_stopped_txn(txn_idx);
        }
        let mut outputs = Vec::with_capacity(n);
        let mut writes = Vec::new();
        let mut credits = vec![None; self.credit_only_keys];
        for txn_idx in 0..kept {
            outputs.push(self.finish_txn(txn_idx, &mut writes, &mut credits)?);
        }
        add_credits::<M, S>(self.storage, vec![credits], &mut writes)?;
        let overlay = Overlay::new(self.storage, &writes);
        let suffix = SequentialExecutor
            .execute_block(self.vm, &overlay, &self.txns[kept..])
            .map_err(|error| match error {
                BlockError::Vm(error) => Failure::Block(error),
                BlockError::Internal(what) => Failure::Fallback(FallbackReason::Invariant(what)),
            })?;
        let replaced = overlay.replaced(suffix.writes.iter().map(|(key, _)| key));
        drop(overlay);
        let mut replaced = replaced.into_iter();
        writes.retain(|_| !replaced.next().unwrap_or(false));
        writes.extend(suffix.writes);
        outputs.extend(suffix.outputs);
        stats.incarnations += suffix.stats.incarnations;
        stats.sequential_suffix = (n - kept) as u64;
        Ok((outputs, writes))
    }

    fn try_execute(
        &self,
        worker: usize,
        writer: &mut BlockWriter<'_, M>,
        txn_idx: usize,
        incarnation: u32,
        stats: &mut BlockStats,
    ) -> Option<Task> {
        let txn = self.txns.get(txn_idx)?;
        loop {
            stats.incarnations += 1;
            let mut view = ParallelView::new(&self.memory, self.storage, txn_idx, self.claims);
            let timed = (stats.incarnations % crate::output::VM_TIME_SAMPLE == 0)
                .then(std::time::Instant::now);
            let result = catch_unwind(AssertUnwindSafe(|| self.vm.execute(txn, &mut view)));
            if let Some(start) = timed {
                stats.vm_nanos += start.elapsed().as_nanos() as u64 * crate::output::VM_TIME_SAMPLE;
            }
            // The view's own record of why it halted wins over whatever the VM returned.
            match view.halt.take() {
                Some(HaltReason::Dependency(blocking)) => {
                    stats.dependency_waits += 1;
                    match self.scheduler.add_dependency(worker, txn_idx, blocking) {
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
                Some(HaltReason::ClaimBroken) => {
                    self.fail(Failure::Fallback(FallbackReason::ClaimBroken));
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
                    return self.invariant(InvariantViolation(
                        "a VM returned Halt the view did not produce",
                    ))
                }
                Err(payload) => {
                    view.writes.clear();
                    TxnOutput::Panicked(panic_message(payload.as_ref()))
                }
            };
            stats.claimed_accesses += view.exclusive_reads;
            let Effects {
                reads,
                writes,
                claimed,
            } = match view.into_effects() {
                Ok(effects) => effects,
                Err(reason) => {
                    self.fail(match reason {
                        HaltReason::Storage(error) => Failure::Block(error),
                        HaltReason::ClaimBroken => Failure::Fallback(FallbackReason::ClaimBroken),
                        HaltReason::SpeculativeOverflow => {
                            Failure::Fallback(FallbackReason::DeltaOverflow)
                        }
                        HaltReason::Dependency(_) => Failure::Fallback(FallbackReason::Invariant(
                            "a dependency found after the execution",
                        )),
                    });
                    return None;
                }
            };
            if let Some(claimed) = &claimed {
                stats.claimed_accesses += (claimed.exclusive.len() + claimed.credits.len()) as u64;
            }
            let version = Version {
                txn_idx,
                incarnation,
            };
            let wrote_new_location =
                writer.record_with_output(version, reads, writes, Finished { output, claimed });
            return match self.scheduler.finish_execution(
                worker,
                txn_idx,
                incarnation,
                wrote_new_location,
            ) {
                Ok(next) => next,
                Err(violation) => self.invariant(violation),
            };
        }
    }

    fn try_validate(
        &self,
        worker: usize,
        txn_idx: usize,
        incarnation: u32,
        stats: &mut BlockStats,
    ) -> Option<Task> {
        stats.validations += 1;
        let valid = self.memory.validate_read_set(txn_idx);
        let aborted = !valid && self.scheduler.try_validation_abort(txn_idx, incarnation);
        if aborted {
            stats.aborts += 1;
            self.memory.convert_writes_to_estimates(txn_idx);
        }
        match self.scheduler.finish_validation(worker, txn_idx, aborted) {
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
            buffers: Mutex::new(None),
            pool: OnceLock::new(),
        }
    }

    /// The executor's worker threads, if this block can have them: started on first use;
    /// `None` if they could not be started, or another block of this executor is running
    /// on them right now (then the caller starts scoped threads).
    fn pool(&self) -> Option<MutexGuard<'_, Pool>> {
        self.pool
            .get_or_init(|| Pool::new(self.threads - 1).map(Mutex::new))
            .as_ref()?
            .try_lock()
            .ok()
    }

    /// The number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The buffers of the last block if they have these types, made ready for a block of
    /// `num_txns` transactions on `workers` threads; fresh ones otherwise.
    fn take_buffers<K, V, O>(&self, num_txns: usize, workers: usize) -> Buffers<K, V, O>
    where
        K: Eq + std::hash::Hash + Clone + Send + 'static,
        V: mvmemory::DeltaValue + Send + 'static,
        O: Send + 'static,
    {
        let cached = self
            .buffers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match cached.and_then(|any| any.downcast::<Buffers<K, V, O>>().ok()) {
            Some(mut buffers) => {
                buffers.memory.reuse(num_txns);
                buffers.scheduler.reuse(num_txns, workers);
                *buffers
            }
            None => Buffers {
                memory: MVMemory::new(num_txns),
                scheduler: Scheduler::new(num_txns, workers),
            },
        }
    }

    /// Keeps `buffers` for the next block (their every transaction was cleared).
    fn keep_buffers<K, V, O>(&self, buffers: Buffers<K, V, O>)
    where
        K: Send + Sync + 'static,
        V: Send + 'static,
        O: Send + 'static,
    {
        if buffers.scheduler.num_txns() <= MAX_CACHED_TXNS {
            *self.buffers.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(buffers));
        }
    }

    /// Executes `txns` on `storage`'s state with Block-STM, whatever their number. Falls
    /// back to the sequential executor when speculation cannot be trusted (see
    /// [`FallbackReason`]); the result is the sequential one in every case.
    pub fn execute_block<M, S>(&self, vm: &M, storage: &S, txns: &[M::Txn]) -> BlockResult<M>
    where
        M: Vm,
        S: Storage<Key = M::Key, Value = M::Value, Error = M::Error>,
    {
        self.execute_block_with(vm, storage, txns, SuffixRule::Never)
    }

    /// [`execute_block`](Self::execute_block), stopping the block and finishing it with
    /// the sequential executor when `rule` says speculation stops paying: the executed
    /// and valid prefix is kept, the rest runs sequentially on top of it
    /// ([`BlockStats::sequential_suffix`] counts it). The result is the sequential one in
    /// every case.
    pub fn execute_block_with<M, S>(
        &self,
        vm: &M,
        storage: &S,
        txns: &[M::Txn],
        rule: SuffixRule,
    ) -> BlockResult<M>
    where
        M: Vm,
        S: Storage<Key = M::Key, Value = M::Value, Error = M::Error>,
    {
        let start = Instant::now();
        let threads = self.threads.min(txns.len()).max(1);
        let _span = tracing::debug_span!("parallel_block", txns = txns.len(), threads).entered();
        let buffers = self.take_buffers(txns.len(), threads);
        let mut outputs: Vec<TxnOutput<M::Output>> = Vec::with_capacity(txns.len());
        let num_chunks = txns.len().div_ceil(FINAL_CHUNK);
        let output_slices = outputs.spare_capacity_mut()[..txns.len()]
            .chunks_mut(FINAL_CHUNK)
            .map(|slice| Mutex::new(Some(slice)))
            .collect();
        let claims = storage.has_claims();
        let block = Block {
            vm,
            storage,
            txns,
            memory: buffers.memory,
            scheduler: buffers.scheduler,
            claims,
            credit_only_keys: if claims {
                storage.credit_only_keys()
            } else {
                0
            },
            rule,
            start,
            failure: Mutex::new(None),
            next_chunk: AtomicUsize::new(0),
            output_slices,
            gather: Gather::new(num_chunks),
        };
        let mut stats = BlockStats::default();
        let mut chunks = Vec::new();
        let mut credits = Vec::with_capacity(threads);
        let mut merge = |result: WorkerResult<M>| {
            stats.merge(&result.stats);
            chunks.extend(result.chunks);
            credits.push(result.credits);
        };
        let pool = if threads > 1 { self.pool() } else { None };
        match pool {
            Some(pool) if pool.threads() + 1 >= threads => {
                let done = Mutex::new(Vec::with_capacity(threads));
                let block = &block;
                block.gather.expect(threads);
                pool.run(&|worker| {
                    if worker < threads {
                        let result = run_worker(block, worker);
                        done.lock().unwrap_or_else(|p| p.into_inner()).push(result);
                    }
                });
                // A worker that did not report leaves its chunks missing, which `collect`
                // turns into a fallback.
                done.into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .into_iter()
                    .for_each(&mut merge);
            }
            _ => std::thread::scope(|scope| {
                let block = &block;
                let workers: Vec<_> = (1..threads)
                    .map_while(|worker| {
                        // A worker the OS refuses to start is left out: the others run
                        // the block (the scheduler never waits for a given worker).
                        std::thread::Builder::new()
                            .spawn_scoped(scope, move || run_worker(block, worker))
                            .ok()
                    })
                    .collect();
                block.gather.expect(workers.len() + 1);
                merge(run_worker(block, 0));
                for worker in workers {
                    match worker.join() {
                        Ok(result) => merge(result),
                        Err(_) => block.fail(Failure::Fallback(FallbackReason::WorkerPanic)),
                    }
                }
            }),
        }
        if block.scheduler.stopped() && !block.scheduler.halted() {
            // A panic outside the VM while finishing (storage, a key's or a value's code)
            // re-runs the block, as in the workers' final pass.
            let finished = catch_unwind(AssertUnwindSafe(|| block.finish_stopped(&mut stats)))
                .unwrap_or(Err(Failure::Fallback(FallbackReason::WorkerPanic)));
            let Block {
                memory,
                scheduler,
                output_slices,
                ..
            } = block;
            drop(output_slices);
            let reason = match finished {
                Ok((outputs, writes)) => {
                    self.keep_buffers(Buffers { memory, scheduler });
                    return Ok(BlockOutput {
                        outputs,
                        writes,
                        path: ExecutionPath::Parallel,
                        stats,
                    });
                }
                Err(Failure::Block(error)) => return Err(BlockError::Vm(error)),
                Err(Failure::Fallback(reason)) => reason,
            };
            return fall_back(vm, storage, txns, reason);
        }
        let Block {
            memory,
            scheduler,
            failure,
            output_slices,
            gather,
            ..
        } = block;
        // The slices borrow `outputs`: give it back.
        drop(output_slices);
        let failure = failure.into_inner().unwrap_or_else(|p| p.into_inner());
        let outcome = match failure {
            Some(failure) => Err(failure),
            None => collect::<M>(txns.len(), &mut chunks, gather.finish(num_chunks)).and_then(
                |mut writes| {
                    add_credits::<M, S>(storage, credits, &mut writes)?;
                    Ok(writes)
                },
            ),
        };
        let reason = match outcome {
            Ok(writes) => {
                // SAFETY: `collect` checked that every chunk of the final pass is here and
                // wrote its whole output slice, and the slices, `FINAL_CHUNK` at a time,
                // cover the first `txns.len()` elements of `outputs`' spare capacity.
                unsafe { outputs.set_len(txns.len()) };
                self.keep_buffers(Buffers { memory, scheduler });
                return Ok(BlockOutput {
                    outputs,
                    writes,
                    path: ExecutionPath::Parallel,
                    stats,
                });
            }
            Err(failure) => {
                drop_written_outputs(&mut outputs, &chunks);
                match failure {
                    Failure::Block(error) => return Err(BlockError::Vm(error)),
                    Failure::Fallback(reason) => reason,
                }
            }
        };
        fall_back(vm, storage, txns, reason)
    }
}

/// The block re-run by the sequential executor, for `reason`.
fn fall_back<M, S>(vm: &M, storage: &S, txns: &[M::Txn], reason: FallbackReason) -> BlockResult<M>
where
    M: Vm,
    S: Storage<Key = M::Key, Value = M::Value, Error = M::Error>,
{
    tracing::warn!(?reason, "parallel execution fell back to sequential");
    let mut output = SequentialExecutor.execute_block(vm, storage, txns)?;
    output.path = ExecutionPath::Fallback(reason);
    Ok(output)
}

/// One worker: the loop, then its share of the final writes; a panic outside the VM is
/// turned into a fallback.
fn run_worker<M, S>(block: &Block<'_, M, S>, worker: usize) -> WorkerResult<M>
where
    M: Vm,
    S: Storage<Key = M::Key, Value = M::Value, Error = M::Error>,
{
    let mut stats = BlockStats::default();
    let mut credits = CreditSums::new();
    let run = catch_unwind(AssertUnwindSafe(|| {
        block.work(worker, &mut stats);
        if block.scheduler.halted() || block.scheduler.stopped() {
            Vec::new()
        } else {
            credits.resize(block.credit_only_keys, None);
            block.final_pass(&mut credits)
        }
    }));
    let mut chunks = match run {
        Ok(chunks) => chunks,
        Err(_) => {
            block.fail(Failure::Fallback(FallbackReason::WorkerPanic));
            Vec::new()
        }
    };
    // Every worker arrives at the gathering barrier exactly once, whatever happened.
    for chunk in &chunks {
        match &chunk.writes {
            Ok(writes) => block.gather.publish(chunk.number, writes.len()),
            Err(_) => block.gather.fail(),
        }
    }
    if block.gather.arrive(worker, || {
        block.scheduler.halted() || block.scheduler.stopped()
    }) {
        for chunk in &mut chunks {
            if let Ok(writes) = &mut chunk.writes {
                block.gather.move_in(chunk.number, writes);
            }
        }
    }
    WorkerResult {
        stats,
        chunks,
        credits,
    }
}

/// What one worker hands back: its counters, its chunks of the final pass, and its sums
/// of credits to credit-only keys.
struct WorkerResult<M: Vm> {
    stats: BlockStats,
    chunks: Vec<Chunk<M>>,
    credits: CreditSums,
}

/// Appends to `writes` the final value of each credit-only key a transaction credited, in
/// slot order: storage's value plus the sum of every credit to it, or a fallback if that
/// does not fit (then some partial sum did not either: sequential execution rejects
/// exactly the credit that overflows).
fn add_credits<M, S>(
    storage: &S,
    workers: Vec<CreditSums>,
    writes: &mut Vec<(M::Key, M::Value)>,
) -> Result<(), Failure<M::Error>>
where
    M: Vm,
    S: Storage<Key = M::Key, Value = M::Value, Error = M::Error>,
{
    let overflow = || Failure::Fallback(FallbackReason::DeltaOverflow);
    let mut workers = workers.into_iter().filter(|sums| !sums.is_empty());
    let Some(mut totals) = workers.next() else {
        return Ok(());
    };
    for sums in workers {
        for (total, sum) in totals.iter_mut().zip(sums) {
            if let Some(sum) = sum {
                add_credit(total, sum)?;
            }
        }
    }
    for (slot, total) in totals.into_iter().enumerate() {
        let Some(total) = total else { continue };
        let key =
            storage
                .credit_only_key(slot)
                .ok_or(Failure::Fallback(FallbackReason::Invariant(
                    "a credit-only slot with no key",
                )))?;
        // The slot's key must be the one claimed with that slot: checked, not trusted (a
        // mismatch would credit another key).
        let (base, claim) = storage.get_claimed(&key).map_err(Failure::Block)?;
        if claim != KeyClaim::CreditOnly(slot) {
            return Err(Failure::Fallback(FallbackReason::ClaimBroken));
        }
        let value = add_to(base.as_ref(), total).ok_or_else(overflow)?;
        writes.push((key, M::Value::from_u64(value)));
    }
    Ok(())
}

/// Adds `credit` to a credit-only key's running `sum` (`None`: nothing credited yet), or
/// a fallback if it does not fit.
fn add_credit<E>(sum: &mut Option<u64>, credit: u64) -> Result<(), Failure<E>> {
    let total = sum
        .unwrap_or(0)
        .checked_add(credit)
        .ok_or(Failure::Fallback(FallbackReason::DeltaOverflow))?;
    *sum = Some(total);
    Ok(())
}

/// The block's final writes, gathered by the workers, once it checked that every chunk
/// of the final pass is there, wrote all its outputs and moved its writes in.
fn collect<M: Vm>(
    num_txns: usize,
    chunks: &mut [Chunk<M>],
    gathered: Option<Vec<(M::Key, M::Value)>>,
) -> ChunkOutcome<M> {
    chunks.sort_unstable_by_key(|chunk| chunk.number);
    for chunk in chunks.iter_mut() {
        std::mem::replace(&mut chunk.writes, Ok(Vec::new()))?;
    }
    let complete = chunks.len() == num_txns.div_ceil(FINAL_CHUNK)
        && chunks.iter().enumerate().all(|(number, chunk)| {
            let len = num_txns
                .saturating_sub(number * FINAL_CHUNK)
                .min(FINAL_CHUNK);
            chunk.number == number && chunk.outputs_written == len
        });
    match gathered {
        Some(writes) if complete => Ok(writes),
        _ => Err(Failure::Fallback(FallbackReason::Invariant(
            "a chunk of the final pass is missing",
        ))),
    }
}

/// Drops the outputs the final pass wrote before it failed (a chunk lost to a worker
/// panic leaks its outputs instead: never undefined behaviour, and the block falls back).
fn drop_written_outputs<M: Vm>(outputs: &mut Vec<TxnOutput<M::Output>>, chunks: &[Chunk<M>]) {
    let spare = outputs.spare_capacity_mut();
    for chunk in chunks {
        let start = chunk.number.saturating_mul(FINAL_CHUNK);
        let end = start.saturating_add(chunk.outputs_written).min(spare.len());
        for output in spare.get_mut(start..end).into_iter().flatten() {
            // SAFETY: chunk `number` wrote its first `outputs_written` slots, from
            // `start`, and each chunk number appears once (claimed by one `fetch_add`).
            unsafe { output.assume_init_drop() };
        }
    }
}
