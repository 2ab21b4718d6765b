//! The drop-in block executor the TOS daemon calls.

use crate::contract::{default_contract_vm, SharedContractVm};
use crate::error::TosError;
use crate::sequential::{OracleRun, SequentialTosExecutor};
use crate::snapshot::{AfterPrefix, BlockState};
use crate::state::{StateKey, StateValue};
use crate::storage::{AsyncTosStorage, Change, TosStorage};
use crate::types::TransactionType;
use crate::types::{Hash, Transaction};
use crate::vm::{accumulator_keys, declared_keys, fixed_modules, FixedModules, TosVm, TxResult};
use executor::{BlockStats, ExecutionPath, ParallelExecutor, SequentialReason, TxnOutput};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How blocks are executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutionConfig {
    /// Parallel execution at all; when false every block runs sequentially.
    pub enabled: bool,
    /// Blocks with fewer transactions run sequentially (default 10).
    pub min_batch_size: usize,
    /// Worker threads (default: the machine's cores; 0 is an error).
    pub max_parallelism: usize,
    /// Verify every transaction's signature (default true).
    pub verify_signatures: bool,
    /// Run blocks with contract transactions under Block-STM (default true). Each call
    /// runs in a fresh VM context against its own overlay, and every storage entry,
    /// module and contract balance is a versioned key validated like any other, so
    /// parallel results equal sequential ones (the proptests check it); blocks whose
    /// contract calls form one chain are still found and run sequentially. False runs
    /// every block holding a contract transaction sequentially: for a daemon whose own
    /// contract runtime is not deterministic across threads, or to rule the engine out.
    pub enable_contract_parallel: bool,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_batch_size: executor::DEFAULT_MIN_BLOCK_SIZE,
            max_parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
            verify_signatures: true,
            enable_contract_parallel: true,
        }
    }
}

/// A block executed and not yet committed.
#[derive(Clone, Debug)]
pub struct BlockExecution {
    /// The block's topoheight.
    pub topoheight: u64,
    /// Each transaction's result, in block order.
    pub results: Vec<TxResult>,
    /// Fees paid by the block.
    pub gas_fee: u64,
    /// Burned by the block, per asset.
    pub burned: BTreeMap<Hash, u64>,
    /// What the block changes: each written key's final value, once. The order depends
    /// only on the block, the state before it and the execution path (compare them as
    /// sets across paths).
    pub changes: Vec<Change>,
    /// How it was executed.
    pub path: ExecutionPath,
    /// Counters of its execution.
    pub stats: BlockStats,
}

/// Executes TOS blocks with Block-STM and commits them.
///
/// The daemon's call sequence, for each block at the next topoheight:
///
/// ```
/// use tos_adapter::{
///     ExecutionConfig, KeyPair, MemoryStore, StateKey, StateValue, TosBlockExecutor,
///     TosStorage, Transaction, TransactionType, TransferPayload, TOS_ASSET,
/// };
///
/// let store = MemoryStore::new();
/// let alice = KeyPair::from_seed(b"alice");
/// let bob = KeyPair::from_seed(b"bob");
/// // Genesis: alice holds 1,000 units of TOS.
/// store.write_block(0, &[(
///     StateKey::Balance(alice.public_key(), TOS_ASSET),
///     StateValue::Number(1_000),
/// )])?;
///
/// let mut tx = Transaction {
///     version: 0,
///     source: alice.public_key(),
///     nonce: 0,
///     fee: 10,
///     data: TransactionType::Transfers(vec![TransferPayload {
///         asset: TOS_ASSET,
///         destination: bob.public_key(),
///         amount: 100,
///         extra_data: None,
///     }]),
///     signature: None,
/// };
/// tx.signature = Some(alice.sign(&tx.signing_bytes()));
///
/// let executor = TosBlockExecutor::new(ExecutionConfig::default())?;
/// let topoheight = store.topoheight()? + 1;
/// let execution = executor.execute_block(&store, topoheight, &[tx])?;
/// assert!(execution.results[0].success());
/// assert_eq!(execution.gas_fee, 10);
/// executor.commit(&store, &execution)?;
///
/// let (_, balance) = store
///     .get_balance_at_maximum_topoheight(&bob.public_key(), &TOS_ASSET, topoheight)?
///     .expect("bob was paid");
/// assert_eq!(balance.balance, 100);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct TosBlockExecutor {
    config: ExecutionConfig,
    engine: ParallelExecutor,
    contracts: SharedContractVm,
}

/// Below this estimated parallelism a block of transactions without signature checks runs
/// sequentially (see [`TosBlockExecutor::estimated_parallelism`]). Such a TOS transfer
/// costs about a microsecond; when fewer than 8 transactions can run at once, Block-STM's
/// aborts and re-executions cost more than the parallelism returns (measured on 2 threads:
/// `p2p:10`, estimate 3.5, ran at 0.27x of sequential; `hot-sender:25`, estimate 4.3, at
/// 0.73-0.85x).
pub const MIN_ESTIMATED_PARALLELISM: f64 = 8.0;

/// The same threshold when signatures are verified: a transaction then costs tens of
/// microseconds and Block-STM's bookkeeping is small beside it, so only a block that is
/// one chain runs sequentially.
pub const MIN_ESTIMATED_PARALLELISM_VERIFIED: f64 = 1.5;

/// Transactions the estimate looks at.
const ESTIMATE_SAMPLE: usize = 1024;

/// Below this estimated parallelism, measured on the probed prefix of a block with
/// contract calls (see `execute_probed`), the rest of the block runs sequentially when
/// signatures are not verified. A contract call costs a few microseconds, about what
/// Block-STM's bookkeeping of its five or so keys costs: a block whose calls form chains
/// of more than half its length (`counter`, `amm`: estimate 1) loses to sequential
/// execution (measured: `counter` at 0.74x, `amm` at 0.64x on 2 threads under Block-STM).
pub const MIN_PROBED_PARALLELISM: f64 = 2.0;

/// Transactions of a block with contract calls run sequentially to probe its conflicts:
/// 1/16 of each thread's share of the block (1/32 of it on 2 threads, 1/512 on 32, so
/// that the sequential prefix stays a small part of the parallel time), at least 32
/// (the whole block if smaller), at most 256.
fn probe_len(txs: usize, threads: usize) -> usize {
    (txs / threads.max(1).saturating_mul(16))
        .clamp(32, 256)
        .min(txs)
}

/// The transactions' count over their longest chain, where a transaction depends on the
/// last one that wrote its sender's state, credited its sender, or wrote a contract key it
/// writes (`touched`: the contract keys each transaction wrote, when known). 1 for none.
fn chain_parallelism<'t>(txs: impl Iterator<Item = (&'t Transaction, &'t [StateKey])>) -> f64 {
    let mut depth: std::collections::HashMap<StateKey, u32, mvmemory::FxBuildHasher> =
        std::collections::HashMap::default();
    let (mut count, mut longest) = (0u32, 1u32);
    for (tx, touched) in txs {
        count += 1;
        let sender = StateKey::Nonce(tx.source);
        let before = touched
            .iter()
            .chain(std::iter::once(&sender))
            .map(|k| depth.get(k).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        let d = before + 1;
        longest = longest.max(d);
        for key in touched.iter().chain(std::iter::once(&sender)) {
            depth.insert(key.clone(), d);
        }
        if let TransactionType::Transfers(transfers) = &tx.data {
            for t in transfers {
                let entry = depth.entry(StateKey::Nonce(t.destination)).or_insert(0);
                *entry = (*entry).max(d);
            }
        }
    }
    f64::from(count.max(1)) / f64::from(longest)
}

impl TosBlockExecutor {
    /// An executor with this configuration; `max_parallelism` 0 is an error.
    pub fn new(config: ExecutionConfig) -> Result<Self, TosError> {
        Self::with_contract_vm(config, default_contract_vm())
    }

    /// An executor whose contracts run on `contracts` (the daemon's own runtime).
    pub fn with_contract_vm(
        config: ExecutionConfig,
        contracts: SharedContractVm,
    ) -> Result<Self, TosError> {
        config.validate()?;
        // Validates the thread count with the engine's own rule too.
        executor::ExecutorConfig::new(config.max_parallelism)?;
        let engine = ParallelExecutor::new(config.max_parallelism);
        Ok(Self {
            config,
            engine,
            contracts,
        })
    }

    /// The sequential executor with this executor's settings.
    pub fn oracle(&self) -> SequentialTosExecutor {
        self.oracle_checking(self.config.verify_signatures)
    }

    fn oracle_checking(&self, check_signatures: bool) -> SequentialTosExecutor {
        SequentialTosExecutor {
            verify_signatures: check_signatures,
            contracts: self.contracts.clone(),
        }
    }

    /// How many transactions of the block could run at once, estimated from the declared
    /// keys of its first 1,024 transactions: their count over the longest chain among
    /// them, where a transaction depends on the last one that wrote its sender's state
    /// (its nonce and debited balances) or credited its sender. Cheap (one small hash
    /// map), and exact for the chains that matter: one hot sender, a few accounts paying
    /// each other.
    pub fn estimated_parallelism(txs: &[Transaction]) -> f64 {
        let sample = &txs[..txs.len().min(ESTIMATE_SAMPLE)];
        chain_parallelism(sample.iter().map(|tx| (tx, &[][..])))
    }

    /// Why `txs` run sequentially, or `None` for Block-STM.
    fn sequential_reason(
        &self,
        txs: &[Transaction],
        check_signatures: bool,
    ) -> Option<SequentialReason> {
        if !self.config.enabled
            || (!self.config.enable_contract_parallel && txs.iter().any(is_contract))
        {
            Some(SequentialReason::Disabled)
        } else if self.config.max_parallelism == 1 {
            Some(SequentialReason::SingleThread)
        } else if txs.len() < self.config.min_batch_size.max(2) {
            Some(SequentialReason::SmallBlock)
        } else if Self::estimated_parallelism(txs)
            < if check_signatures {
                MIN_ESTIMATED_PARALLELISM_VERIFIED
            } else {
                MIN_ESTIMATED_PARALLELISM
            }
        {
            Some(SequentialReason::Conflicted)
        } else {
            None
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ExecutionConfig {
        &self.config
    }

    fn vm(
        &self,
        accumulators_in_state: bool,
        check_signatures: bool,
        fixed_modules: Option<Arc<FixedModules>>,
    ) -> TosVm {
        TosVm {
            verify_signatures: check_signatures,
            accumulators_in_state,
            contracts: self.contracts.clone(),
            fixed_modules,
        }
    }

    /// The keys `txs` declare, plus the accumulators.
    pub fn declared_keys(txs: &[Transaction]) -> Vec<StateKey> {
        let mut keys = Vec::with_capacity(txs.len() * 4);
        for tx in txs {
            declared_keys(tx, &mut keys);
        }
        keys.extend(accumulator_keys(txs));
        keys
    }

    /// Preloads the state `txs` need from `storage` below `topoheight`, which must be the
    /// next topoheight of the storage.
    pub fn prepare<'a, S: TosStorage>(
        &self,
        storage: &'a S,
        topoheight: u64,
        txs: &[Transaction],
    ) -> Result<BlockState<'a>, TosError> {
        let _span = tracing::debug_span!("preload", topoheight, txs = txs.len()).entered();
        let stored = next_topoheight(storage, topoheight)?;
        Ok(BlockState::preload(
            storage,
            stored,
            Self::declared_keys(txs),
            self.config.max_parallelism,
        )?)
    }

    /// Executes the block at `topoheight` (the storage's next) on `storage`'s state.
    /// Nothing is written: [`commit`](Self::commit) does that.
    pub fn execute_block<S: TosStorage>(
        &self,
        storage: &S,
        topoheight: u64,
        txs: &[Transaction],
    ) -> Result<BlockExecution, TosError> {
        let state = self.prepare(storage, topoheight, txs)?;
        self.execute_prepared(&state, topoheight, txs)
    }

    /// [`execute_block`](Self::execute_block) on an async storage: the declared keys are
    /// read concurrently, then the block executes on worker threads.
    pub async fn execute_block_async<S: AsyncTosStorage>(
        &self,
        storage: &S,
        stored_topoheight: u64,
        txs: &[Transaction],
    ) -> Result<BlockExecution, TosError> {
        let topoheight = stored_topoheight
            .checked_add(1)
            .ok_or(TosError::Topoheight {
                stored: stored_topoheight,
                got: stored_topoheight,
            })?;
        let state =
            BlockState::preload_async(storage, stored_topoheight, Self::declared_keys(txs)).await?;
        self.execute_prepared(&state, topoheight, txs)
    }

    /// Executes the block on preloaded state (what the benchmarks time).
    pub fn execute_prepared(
        &self,
        state: &BlockState<'_>,
        topoheight: u64,
        txs: &[Transaction],
    ) -> Result<BlockExecution, TosError> {
        let _span = tracing::info_span!("block", topoheight, txs = txs.len()).entered();
        let start = std::time::Instant::now();
        let execution = self.execute_unrecorded(state, topoheight, txs)?;
        crate::metrics::record_block(&execution, start.elapsed());
        Ok(execution)
    }

    fn execute_unrecorded(
        &self,
        state: &BlockState<'_>,
        topoheight: u64,
        txs: &[Transaction],
    ) -> Result<BlockExecution, TosError> {
        let parallel = self.config.enabled && self.config.max_parallelism > 1 && txs.len() > 1;
        if !(self.config.verify_signatures && parallel) {
            return self.execute_checked(state, topoheight, txs, self.config.verify_signatures);
        }
        // Signatures do not depend on state: check them all first, on every thread, then
        // execute with no signature work left (a block that must run sequentially still
        // has its signatures checked in parallel). A transaction whose signature fails is
        // rejected and changes nothing, so the others execute exactly as they would with
        // it in the block.
        let valid = {
            let _span = tracing::debug_span!("signatures", txs = txs.len()).entered();
            check_signatures(txs, self.config.max_parallelism)
        };
        if valid.iter().all(|&v| v) {
            return self.execute_checked(state, topoheight, txs, false);
        }
        let signed: Vec<Transaction> = txs
            .iter()
            .zip(&valid)
            .filter(|(_, &v)| v)
            .map(|(tx, _)| tx.clone())
            .collect();
        let mut execution = self.execute_checked(state, topoheight, &signed, false)?;
        let mut executed = std::mem::take(&mut execution.results).into_iter();
        let mut results = Vec::with_capacity(txs.len());
        for (tx, &v) in txs.iter().zip(&valid) {
            results.push(match v {
                true => executed.next().ok_or(TosError::Internal(
                    "fewer results than transactions with a valid signature",
                ))?,
                false => TxResult::rejected(tx.hash(), crate::error::TxError::InvalidSignature),
            });
        }
        execution.results = results;
        Ok(execution)
    }

    /// The block, checking each transaction's signature as it executes if
    /// `check_signatures` (they are already checked otherwise).
    fn execute_checked(
        &self,
        state: &BlockState<'_>,
        topoheight: u64,
        txs: &[Transaction],
        check_signatures: bool,
    ) -> Result<BlockExecution, TosError> {
        if let Some(reason) = self.sequential_reason(txs, check_signatures) {
            let _span = tracing::debug_span!("execute", path = "sequential").entered();
            let mut execution = self
                .oracle_checking(check_signatures)
                .execute_on(state, topoheight, txs)?;
            execution.path = ExecutionPath::Sequential(reason);
            return Ok(execution);
        }
        if txs.iter().any(is_contract) {
            return self.execute_probed(state, topoheight, txs, check_signatures);
        }
        let (results, changes, path, stats) = self.run_parallel(state, txs, check_signatures)?;
        finish(state, topoheight, results, changes, path, stats)
    }

    /// A block with contract calls, whose conflicts its declared keys do not show: its
    /// first transactions run sequentially (they are final, nothing is wasted), recording
    /// the contract keys each one writes; if those show long chains (every call bumping
    /// one counter, swapping against one pool), the rest runs sequentially too, otherwise
    /// under Block-STM on the state the prefix left.
    fn execute_probed(
        &self,
        state: &BlockState<'_>,
        topoheight: u64,
        txs: &[Transaction],
        check_signatures: bool,
    ) -> Result<BlockExecution, TosError> {
        let probe = probe_len(txs.len(), self.config.max_parallelism);
        let oracle = self.oracle_checking(check_signatures);
        // Sized for the prefix: a map sized for the whole block costs page faults the
        // prefix, which runs on one thread, would pay for nothing.
        let mut run = OracleRun::new(&oracle, state, probe);
        let mut touched = Vec::new();
        let mut bounds = Vec::with_capacity(probe);
        {
            let _span = tracing::debug_span!("probe", txs = probe).entered();
            for tx in &txs[..probe] {
                let start = touched.len();
                run.apply(tx, Some(&mut touched))?;
                bounds.push(start..touched.len());
            }
        }
        let estimate = chain_parallelism(
            txs[..probe]
                .iter()
                .zip(&bounds)
                .map(|(tx, range)| (tx, &touched[range.clone()])),
        );
        let threshold = if check_signatures {
            MIN_ESTIMATED_PARALLELISM_VERIFIED
        } else {
            MIN_PROBED_PARALLELISM
        };
        let stats = |parallel: BlockStats| BlockStats {
            incarnations: parallel.incarnations + probe as u64,
            ..parallel
        };
        if probe == txs.len() || estimate < threshold {
            let _span = tracing::debug_span!("execute", path = "sequential").entered();
            run.reserve(txs.len() - probe);
            for tx in &txs[probe..] {
                run.apply(tx, None)?;
            }
            let (results, changes) = run.into_parts();
            let path = ExecutionPath::Sequential(if probe == txs.len() {
                SequentialReason::SmallBlock
            } else {
                SequentialReason::Conflicted
            });
            return finish(
                state,
                topoheight,
                results,
                changes.into_iter().collect(),
                path,
                stats(BlockStats::default()),
            );
        }
        let (mut results, mut prefix) = run.into_parts();
        let rest = AfterPrefix {
            below: state,
            prefix: &prefix,
        };
        let (rest_results, rest_changes, path, rest_stats) =
            self.run_parallel(&rest, &txs[probe..], check_signatures)?;
        results.extend(rest_results);
        // The rest's final values replace the prefix's: the keys only the prefix wrote,
        // then the rest's changes. (Not by extending the prefix's map, which is sized for
        // the prefix: growing it to the whole block's keys rehashes it several times, on
        // one thread, after the parallel part.)
        for (key, _) in &rest_changes {
            prefix.remove(key);
        }
        let mut changes: Vec<Change> = prefix.into_iter().collect();
        changes.extend(rest_changes);
        finish(state, topoheight, results, changes, path, stats(rest_stats))
    }

    /// `txs` under Block-STM on `storage`, the accumulators added after (see `TosVm`).
    #[allow(clippy::type_complexity)]
    fn run_parallel<S>(
        &self,
        storage: &S,
        txs: &[Transaction],
        check_signatures: bool,
    ) -> Result<(Vec<TxResult>, Vec<Change>, ExecutionPath, BlockStats), TosError>
    where
        S: executor::Storage<Key = StateKey, Value = StateValue, Error = TosError>,
    {
        let (results, mut changes, path, stats) =
            self.run_engine(storage, txs, false, check_signatures)?;
        // The accumulators, from the accepted transactions (see `TosVm`).
        let mut totals: Vec<(StateKey, u64)> = vec![(StateKey::GasFee, 0)];
        for (tx, result) in txs.iter().zip(&results) {
            totals[0].1 = totals[0].1.saturating_add(result.fee_paid);
            if result.burned > 0 {
                let key = StateKey::BurnedSupply(tx.burned_asset());
                match totals.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, total)) => *total = total.saturating_add(result.burned),
                    None => totals.push((key, result.burned)),
                }
            }
        }
        let mut accumulators = Vec::with_capacity(totals.len());
        for (key, total) in totals {
            if total == 0 {
                continue;
            }
            let base = match storage.get(&key)? {
                Some(StateValue::Number(n)) => n,
                _ => 0,
            };
            match base.checked_add(total) {
                // `total` saturated only if it overflowed, and then so does this.
                Some(sum) if total != u64::MAX => accumulators.push((key, StateValue::Number(sum))),
                _ => {
                    // Some transaction's credit to an accumulator overflows: run the block
                    // again with the accumulators in state, which rejects exactly it.
                    return self.run_engine(storage, txs, true, check_signatures);
                }
            }
        }
        changes.extend(accumulators);
        Ok((results, changes, path, stats))
    }

    #[allow(clippy::type_complexity)]
    fn run_engine<S>(
        &self,
        state: &S,
        txs: &[Transaction],
        accumulators_in_state: bool,
        check_signatures: bool,
    ) -> Result<(Vec<TxResult>, Vec<Change>, ExecutionPath, BlockStats), TosError>
    where
        S: executor::Storage<Key = StateKey, Value = StateValue, Error = TosError>,
    {
        let fixed = if txs.iter().any(is_contract) {
            Some(Arc::new(fixed_modules(txs, state)?))
        } else {
            None
        };
        let output = {
            let _span = tracing::debug_span!("execute", path = "parallel").entered();
            self.engine
                .execute_block(
                    &self.vm(accumulators_in_state, check_signatures, fixed),
                    state,
                    txs,
                )
                .map_err(|e| match e {
                    executor::BlockError::Vm(e) => e,
                    executor::BlockError::Internal(what) => TosError::Internal(what),
                })?
        };
        let results = output
            .outputs
            .into_iter()
            .zip(txs)
            .map(|(output, tx)| match output {
                TxnOutput::Executed(result) => result,
                TxnOutput::Panicked(message) => {
                    TxResult::rejected(tx.hash(), crate::error::TxError::VmPanic(message))
                }
            })
            .collect();
        Ok((results, output.writes, output.path, output.stats))
    }

    /// Writes the block's changes at its topoheight, atomically.
    pub fn commit<S: TosStorage>(
        &self,
        storage: &S,
        execution: &BlockExecution,
    ) -> Result<(), TosError> {
        let _span = tracing::debug_span!("commit", topoheight = execution.topoheight).entered();
        storage.write_block(execution.topoheight, &execution.changes)?;
        Ok(())
    }
}

/// Whether each transaction's signature is its source's, checked on up to `threads`
/// threads.
fn check_signatures(txs: &[Transaction], threads: usize) -> Vec<bool> {
    let mut valid = vec![false; txs.len()];
    let chunk = txs.len().div_ceil(threads.max(1)).max(1);
    let check = |part: &[Transaction], out: &mut [bool]| {
        for (tx, v) in part.iter().zip(out) {
            *v = crate::rules::check_signature(tx).is_ok();
        }
    };
    std::thread::scope(|scope| {
        let mut parts = txs.chunks(chunk).zip(valid.chunks_mut(chunk));
        // This thread takes the first part; the others get one thread each.
        let first = parts.next();
        for (part, out) in parts {
            scope.spawn(move || check(part, out));
        }
        if let Some((part, out)) = first {
            check(part, out);
        }
    });
    valid
}

/// Whether `tx` deploys or calls a contract.
fn is_contract(tx: &Transaction) -> bool {
    matches!(
        tx.data,
        TransactionType::InvokeContract(_) | TransactionType::DeployContract(_)
    )
}

/// The storage's topoheight, if `topoheight` is the next one; an error otherwise.
pub(crate) fn next_topoheight<S: TosStorage>(
    storage: &S,
    topoheight: u64,
) -> Result<u64, TosError> {
    let stored = storage.topoheight()?;
    if stored.checked_add(1) == Some(topoheight) {
        Ok(stored)
    } else {
        Err(TosError::Topoheight {
            stored,
            got: topoheight,
        })
    }
}

/// The block's totals from its final writes.
pub(crate) fn finish(
    state: &BlockState<'_>,
    topoheight: u64,
    results: Vec<TxResult>,
    changes: Vec<Change>,
    path: ExecutionPath,
    stats: BlockStats,
) -> Result<BlockExecution, TosError> {
    let mut gas_fee = 0;
    let mut burned = BTreeMap::new();
    for (key, value) in &changes {
        let accumulator = matches!(key, StateKey::GasFee | StateKey::BurnedSupply(_));
        if let (true, StateValue::Number(after)) = (accumulator, value) {
            let before = match state.value(key)? {
                Some(StateValue::Number(n)) => n,
                _ => 0,
            };
            let added = after.saturating_sub(before);
            match key {
                StateKey::BurnedSupply(asset) => {
                    burned.insert(*asset, added);
                }
                _ => gas_fee = added,
            }
        }
    }
    Ok(BlockExecution {
        topoheight,
        results,
        gas_fee,
        burned,
        changes,
        path,
        stats,
    })
}
