//! The block executor the TOS daemon calls: preload a block's declared keys, execute it
//! (Block-STM when it pays, sequentially otherwise, the same results either way), commit
//! it atomically.
//!
//! # One block, top to bottom ([`TosBlockExecutor::execute_prepared`])
//!
//! 1. **Signatures.** With verification on and more than one thread, every signature is
//!    verified first, on every thread (they depend on no state); the rules consult the
//!    result at their own step, so a transaction's error code is the same as if it had
//!    been verified inline.
//! 2. **The path.** Sequential (the oracle's run) when parallel execution is disabled,
//!    on one thread, for a block below `min_batch_size`, when the cost model expects it
//!    to be faster (`policy.rs`: the costs of both paths on this machine, calibrated once
//!    and learned from the blocks executed; checked first, for the price of two
//!    multiplications), or when the declared keys show chains too long to gain
//!    ([`TosBlockExecutor::estimated_parallelism`]). A block with contract calls, whose
//!    conflicts no declaration shows, runs a prefix sequentially to probe them (and to
//!    time them), then the rest sequentially or under Block-STM, by the same two checks.
//!    Anything else runs under Block-STM, where the keys the preload claimed (one
//!    transaction's alone, or only credited: [`DeclaredKeys`]) stay out of the
//!    multi-version memory.
//! 3. **Accumulators.** Under Block-STM, fees and burns are added up after the block
//!    ([`TosVm`]'s documentation says why that is exact); a total that overflows sends
//!    the block through Block-STM again with them in state.
//! 4. **The mode.** In [`BlockMode::Dag`] a failing transaction is skipped with its code;
//!    in [`BlockMode::Accept`] the lowest failing index rejects the whole block, with its
//!    code, and nothing is written. Both run the same way: the parallel run is a DAG run,
//!    whose results up to the first failure are exactly the acceptance run's.
//! 5. **The block height** of an applied block is the stored one plus one.

mod config;
mod metrics;
mod policy;
mod vm;

pub use crate::block::{block_keys, BlockExecution, BlockMode};
pub use config::{ConfigError, ExecutionConfig, ENV_PREFIX};
pub use vm::{declared_keys, fixed_modules, BlockTx, Checked, FixedModules, TosVm};

use crate::block::{finish, next_topoheight, Run};
use crate::contract::{default_contract_vm, SharedContractVm};
use crate::error::TosError;
use crate::oracle::{OracleRun, SequentialTosExecutor};
use crate::primitives::{PublicKey, TOS_ASSET};
use crate::rules::{burned_asset, SignatureCheck, TxError, TxResult};
use crate::snapshot::{AfterPrefix, BlockState, DeclaredKeys};
use crate::state::{StateKey, StateValue};
use crate::storage::MemoryStore;
use crate::storage::{AsyncTosStorage, Change, TosStorage};
use crate::tx::{Transaction, TransactionType};
use crate::tx::{TransferPayload, DEVNET_CHAIN_ID};
use executor::{
    BlockStats, ExecutionPath, ParallelExecutor, SequentialReason, SuffixRule, TxnOutput,
};
use policy::{Calibration, Choice, Class, CostModel};
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How the signatures of a block's transactions are checked.
#[derive(Clone, Copy, Debug)]
enum Signatures<'f> {
    /// Not at all.
    Off,
    /// As each transaction executes.
    Inline,
    /// Before the block: each transaction's validity.
    Checked(&'f [bool]),
}

impl<'f> Signatures<'f> {
    fn check(&self, index: usize) -> SignatureCheck {
        match self {
            Signatures::Off => SignatureCheck::Off,
            Signatures::Inline => SignatureCheck::Verify,
            Signatures::Checked(valid) => {
                SignatureCheck::Verified(valid.get(index).copied().unwrap_or(false))
            }
        }
    }

    /// The same for the transactions after the first `n`.
    fn after(self, n: usize) -> Self {
        match self {
            Signatures::Checked(valid) => Signatures::Checked(valid.get(n..).unwrap_or(&[])),
            other => other,
        }
    }
}

/// Below this estimated parallelism a block runs sequentially (see
/// [`TosBlockExecutor::estimated_parallelism`]). A TOS transfer costs about a
/// microsecond once its signature is checked; when fewer than 8 transactions can run at
/// once, Block-STM's aborts and re-executions cost more than the parallelism returns.
pub const MIN_ESTIMATED_PARALLELISM: f64 = 8.0;

/// Transactions the estimate looks at: enough to find chains of the length that matters
/// (a block runs sequentially when its chains hold more than 1/8 of the sample), few
/// enough that the estimate costs a few percent of a block it sends to the sequential
/// path.
const ESTIMATE_SAMPLE: usize = 256;

/// A block without contract calls whose preloaded keys are at least this share claimed
/// is of [`Class::Claimed`]: most of its reads and writes stay out of the multi-version
/// memory.
const CLAIMED_CLASS_SHARE: f64 = 0.5;

/// Below this estimated parallelism, measured on the probed prefix of a block with
/// contract calls, the rest of the block runs sequentially. A contract call costs a few
/// microseconds, about what Block-STM's bookkeeping of its keys costs: a block whose calls
/// form chains of more than half its length (`counter`, `amm`: estimate 1) loses to
/// sequential execution.
pub const MIN_PROBED_PARALLELISM: f64 = 2.0;

/// Transactions of a block with contract calls run sequentially to probe its conflicts:
/// 1/16 of each thread's share of the block, at least 32 (the whole block if smaller),
/// at most 256.
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

/// Executes TOS blocks with Block-STM and commits them.
///
/// The daemon's call sequence, for each block at the next topoheight:
///
/// ```
/// use tos_adapter::{
///     BlockMode, ExecutionConfig, KeyPair, MemoryStore, StateKey, StateValue,
///     TosBlockExecutor, TosStorage, Transaction, TransactionType, TransferPayload,
///     DEVNET_CHAIN_ID, TOS_ASSET,
/// };
///
/// let store = MemoryStore::new();
/// let alice = KeyPair::test_account(2).unwrap();
/// let bob = KeyPair::test_account(3).unwrap();
/// // Genesis: alice holds 1,000 units of TOS.
/// store.write_block(0, &[(
///     StateKey::Balance(alice.public_key(), TOS_ASSET),
///     StateValue::Number(1_000),
/// )])?;
///
/// let tx = Transaction::new(
///     DEVNET_CHAIN_ID,
///     alice.public_key(),
///     0,
///     10,
///     TransactionType::Transfers(vec![TransferPayload {
///         asset: TOS_ASSET,
///         destination: bob.public_key(),
///         amount: 100,
///         extra_data: None,
///     }]),
/// )
/// .signed(&alice);
///
/// let executor = TosBlockExecutor::new(ExecutionConfig::default())?;
/// let topoheight = store.topoheight()? + 1;
/// let execution = executor.execute_block(&store, topoheight, &[tx], BlockMode::Accept)?;
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
    /// The policy's costs, calibrated on the first block that needs them.
    costs: Arc<OnceLock<CostModel>>,
}

impl TosBlockExecutor {
    /// An executor with this configuration; `max_parallelism` 0 is an error.
    pub fn new(config: ExecutionConfig) -> Result<Self, ConfigError> {
        Self::with_contract_vm(config, default_contract_vm())
    }

    /// An executor whose contracts run on `contracts` (the daemon's own runtime).
    pub fn with_contract_vm(
        config: ExecutionConfig,
        contracts: SharedContractVm,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let engine = ParallelExecutor::new(config.max_parallelism);
        Ok(Self {
            config,
            engine,
            contracts,
            costs: Arc::new(OnceLock::new()),
        })
    }

    /// Calibrates the policy's cost model now (a few milliseconds, once per process and
    /// thread count) rather than in the first block that needs it: a daemon calls it at
    /// start-up, and the benchmarks before they time anything.
    pub fn calibrate(&self) {
        if self.config.enabled && !self.config.always_parallel && self.config.max_parallelism > 1 {
            let _ = self.costs();
        }
    }

    /// The cost model, calibrated on first use (once per process and thread count).
    fn costs(&self) -> &CostModel {
        self.costs.get_or_init(|| {
            CostModel::new(policy::calibration(self.config.max_parallelism, || {
                self.measure_costs()
            }))
        })
    }

    /// Times a synthetic block of independent transfers (no signatures) both ways, at two
    /// sizes and a tiny one, the fastest of five runs each: the cost model's starting
    /// point. A failure
    /// (none is expected: the block is built valid) leaves the costs unknown, and the
    /// policy then runs Block-STM wherever its other checks allow, as without a model.
    fn measure_costs(&self) -> Calibration {
        let _span =
            tracing::debug_span!("calibrate", threads = self.config.max_parallelism).entered();
        let unknown = Calibration {
            sequential_ns: f64::NAN,
            parallel_ns: f64::NAN,
            fixed_ns: 0.0,
        };
        let (small, large) = (128usize, 1024usize);
        let account = |i: usize, role: u8| {
            let mut key = [role; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            PublicKey(key)
        };
        let store = MemoryStore::new();
        let genesis: Vec<Change> = (0..large)
            .map(|i| {
                (
                    StateKey::Balance(account(i, 1), TOS_ASSET),
                    StateValue::Number(1_000_000),
                )
            })
            .collect();
        if store.write_block(0, &genesis).is_err() {
            return unknown;
        }
        let txs: Vec<Transaction> = (0..large)
            .map(|i| {
                Transaction::new(
                    DEVNET_CHAIN_ID,
                    account(i, 1),
                    0,
                    10,
                    TransactionType::Transfers(vec![TransferPayload {
                        asset: TOS_ASSET,
                        destination: account(i, 2),
                        amount: 1,
                        extra_data: None,
                    }]),
                )
            })
            .collect();
        let chain_id = u64::from(DEVNET_CHAIN_ID);
        let oracle = SequentialTosExecutor::new(false);
        let time = |n: usize| -> Result<(Duration, Duration), TosError> {
            let block = &txs[..n];
            let keys = Self::declared_keys(block, false);
            let state = BlockState::preload(&store, 0, keys, self.config.max_parallelism)?;
            let (mut sequential, mut parallel) = (Duration::MAX, Duration::MAX);
            for _ in 0..5 {
                let start = Instant::now();
                let out = run_sequential(&oracle, chain_id, &state, block, Signatures::Off)?;
                sequential = sequential.min(start.elapsed());
                drop(std::hint::black_box(out));
                let start = Instant::now();
                let out =
                    self.run_parallel(&state, chain_id, block, Signatures::Off, SuffixRule::Never)?;
                parallel = parallel.min(start.elapsed());
                drop(std::hint::black_box(out));
            }
            Ok((sequential, parallel))
        };
        let tiny = 8;
        let calibration = match (time(tiny), time(small), time(large)) {
            (Ok((_, t)), Ok((s0, p0)), Ok((s1, p1))) => {
                Calibration::fit(small, large, (s0, s1), (p0, p1), (tiny, t))
            }
            _ => unknown,
        };
        tracing::debug!(
            sequential_ns = calibration.sequential_ns,
            parallel_ns = calibration.parallel_ns,
            fixed_ns = calibration.fixed_ns,
            "calibrated"
        );
        calibration
    }

    /// The configuration.
    pub fn config(&self) -> &ExecutionConfig {
        &self.config
    }

    /// The sequential executor with this executor's settings.
    pub fn oracle(&self) -> SequentialTosExecutor {
        SequentialTosExecutor {
            verify_signatures: self.config.verify_signatures,
            contracts: self.contracts.clone(),
        }
    }

    /// How many transactions of the block could run at once, estimated from the declared
    /// keys of its first 256 transactions: their count over the longest chain among
    /// them, where a transaction depends on the last one that wrote its sender's state
    /// (its nonce and debited balances) or credited its sender. Cheap (one small hash
    /// map), and exact for the chains that matter: one hot sender, a few accounts paying
    /// each other.
    pub fn estimated_parallelism(txs: &[Transaction]) -> f64 {
        let sample = &txs[..txs.len().min(ESTIMATE_SAMPLE)];
        chain_parallelism(sample.iter().map(|tx| (tx, &[][..])))
    }

    /// The keys `txs` declare, plus the block's own (accumulators, global values).
    /// Each is declared for its transaction: in a block without contract calls (whose
    /// transactions declare every key they touch), a key only one transaction declares is
    /// exclusive to it under Block-STM, and a key several only credit is credit-only
    /// ([`DeclaredKeys`]).
    pub fn declared_keys(txs: &[Transaction], signatures: bool) -> DeclaredKeys {
        let mut declared = DeclaredKeys::new(!txs.iter().any(is_contract), txs.len() * 4);
        let mut keys = Vec::with_capacity(8);
        for (i, tx) in txs.iter().enumerate() {
            declared_keys(tx, signatures, &mut keys);
            for (key, access) in keys.drain(..) {
                declared.declare(i, key, access);
            }
        }
        for key in block_keys(txs) {
            declared.declare_shared(key);
        }
        declared
    }

    /// Preloads the state `txs` need from `storage` below `topoheight`, which must be the
    /// next topoheight of the storage.
    pub fn prepare<'a, S: TosStorage>(
        &self,
        storage: &'a S,
        topoheight: u64,
        txs: &[Transaction],
    ) -> Result<BlockState<'a>, TosError> {
        let stored = next_topoheight(storage, topoheight)?;
        let _span = tracing::debug_span!("preload", topoheight).entered();
        Ok(BlockState::preload(
            storage,
            stored,
            Self::declared_keys(txs, self.config.verify_signatures),
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
        mode: BlockMode,
    ) -> Result<BlockExecution, TosError> {
        let state = self.prepare(storage, topoheight, txs)?;
        self.execute_prepared(&state, topoheight, txs, mode)
    }

    /// [`execute_block`](Self::execute_block) on an async storage: the declared keys are
    /// read concurrently, then the block executes on worker threads.
    pub async fn execute_block_async<S: AsyncTosStorage>(
        &self,
        storage: &S,
        stored_topoheight: u64,
        txs: &[Transaction],
        mode: BlockMode,
    ) -> Result<BlockExecution, TosError> {
        let topoheight = stored_topoheight
            .checked_add(1)
            .ok_or(TosError::Topoheight {
                stored: stored_topoheight,
                got: stored_topoheight,
            })?;
        let keys = Self::declared_keys(txs, self.config.verify_signatures);
        let state = BlockState::preload_async(storage, stored_topoheight, keys).await?;
        self.execute_prepared(&state, topoheight, txs, mode)
    }

    /// Executes one transaction on its own at `topoheight`, as TOS's conformance server
    /// does: rejected with its code, or applied, with no block around it (the block height
    /// does not change).
    pub fn execute_transaction<S: TosStorage>(
        &self,
        storage: &S,
        topoheight: u64,
        tx: &Transaction,
    ) -> Result<BlockExecution, TosError> {
        let txs = std::slice::from_ref(tx);
        let state = self.prepare(storage, topoheight, txs)?;
        let run = self.run(&state, txs)?;
        finish(&state, topoheight, BlockMode::Accept, false, run)
    }

    /// Executes the block on preloaded state (what the benchmarks time).
    pub fn execute_prepared(
        &self,
        state: &BlockState<'_>,
        topoheight: u64,
        txs: &[Transaction],
        mode: BlockMode,
    ) -> Result<BlockExecution, TosError> {
        let _span = tracing::info_span!("block", topoheight, txs = txs.len()).entered();
        let start = std::time::Instant::now();
        let run = self.run(state, txs)?;
        let execution = finish(state, topoheight, mode, true, run)?;
        metrics::record_block(&execution, start.elapsed());
        Ok(execution)
    }

    /// Steps 1 to 3 of the module documentation: the block as a DAG run.
    fn run(&self, state: &BlockState<'_>, txs: &[Transaction]) -> Result<Run, TosError> {
        if let Some(limit) = self.config.max_block_gas {
            let declared = txs.iter().map(declared_gas).fold(0u64, u64::saturating_add);
            if declared > limit {
                return Err(TosError::BlockGasLimit { declared, limit });
            }
        }
        let chain_id = state.network_chain_id()?;
        let parallel = self.config.enabled
            && (self.config.always_parallel || (self.config.max_parallelism > 1 && txs.len() > 1));
        // 1. Signatures.
        let checked;
        let signatures = if !self.config.verify_signatures {
            Signatures::Off
        } else if parallel {
            let _span = tracing::debug_span!("signatures", txs = txs.len()).entered();
            checked = check_signatures(txs, self.config.max_parallelism);
            Signatures::Checked(&checked)
        } else {
            Signatures::Inline
        };
        // 2. The path.
        let class = if txs.iter().any(is_contract) {
            Class::Contracts
        } else if state.claimed_share() >= CLAIMED_CLASS_SHARE {
            Class::Claimed
        } else {
            Class::Plain
        };
        if let Some(reason) = self.sequential_reason(txs, class) {
            let _span = tracing::debug_span!("execute", path = "sequential").entered();
            let start = Instant::now();
            let (results, changes) =
                run_sequential(&self.oracle(), chain_id, state, txs, signatures)?;
            if let (Some(costs), Signatures::Off | Signatures::Checked(_)) =
                (self.costs.get(), signatures)
            {
                costs.record_sequential(class, txs.len(), start.elapsed());
            }
            return Ok(Run {
                results,
                changes: changes.into_iter().collect(),
                path: ExecutionPath::Sequential(reason),
                stats: BlockStats {
                    incarnations: txs.len() as u64,
                    ..BlockStats::default()
                },
            });
        }
        if !self.config.always_parallel && class == Class::Contracts {
            return self.run_probed(state, chain_id, txs, signatures);
        }
        // A block the policy sent to Block-STM stops and finishes sequentially if it falls
        // behind the sequential time its class measured (not under `always_parallel`, nor
        // with signatures checked inline, which that time does not include).
        let rule = match (self.config.always_parallel, signatures) {
            (false, Signatures::Off | Signatures::Checked(_)) => self
                .costs()
                .expected_sequential(class, txs.len(), None)
                .map_or(SuffixRule::Never, SuffixRule::SlowerThanSequential),
            _ => SuffixRule::Never,
        };
        let start = Instant::now();
        let run = self.run_parallel(state, chain_id, txs, signatures, rule)?;
        if let (Some(costs), ExecutionPath::Parallel) = (self.costs.get(), &run.path) {
            costs.record_parallel(class, txs.len(), start.elapsed());
        }
        Ok(run)
    }

    /// Why `txs` run sequentially, or `None` for Block-STM (or, for a block with contract
    /// calls, for its probe).
    fn sequential_reason(&self, txs: &[Transaction], class: Class) -> Option<SequentialReason> {
        if !self.config.enabled
            || (!self.config.enable_contract_parallel && class == Class::Contracts)
        {
            Some(SequentialReason::Disabled)
        } else if self.config.always_parallel {
            None
        } else if self.config.max_parallelism == 1 {
            Some(SequentialReason::SingleThread)
        } else if txs.len() < self.config.min_batch_size.max(2) {
            Some(SequentialReason::SmallBlock)
        } else if class == Class::Contracts {
            // Its probe decides, on the costs it measures.
            None
        } else if self.costs().choose(class, txs.len(), None) == Choice::Sequential {
            Some(SequentialReason::Cheaper)
        } else if Self::estimated_parallelism(txs) < MIN_ESTIMATED_PARALLELISM {
            Some(SequentialReason::Conflicted)
        } else {
            None
        }
    }

    /// A block with contract calls, whose conflicts its declared keys do not show: its
    /// first transactions run sequentially (they are final, nothing is wasted), recording
    /// the contract keys each one writes; if those show long chains (every call bumping
    /// one counter, swapping against one pool), the rest runs sequentially too, otherwise
    /// under Block-STM on the state the prefix left.
    fn run_probed(
        &self,
        state: &BlockState<'_>,
        chain_id: u64,
        txs: &[Transaction],
        signatures: Signatures<'_>,
    ) -> Result<Run, TosError> {
        let probe = probe_len(txs.len(), self.config.max_parallelism);
        let oracle = self.oracle();
        // Sized for the prefix: a map sized for the whole block costs page faults the
        // prefix, which runs on one thread, would pay for nothing.
        let mut run = OracleRun::new(&oracle, chain_id, state, probe);
        let mut touched = Vec::new();
        let mut bounds = Vec::with_capacity(probe);
        let probed = {
            let _span = tracing::debug_span!("probe", txs = probe).entered();
            let start = Instant::now();
            for (i, tx) in txs[..probe].iter().enumerate() {
                let start = touched.len();
                run.apply(tx, signatures.check(i), Some(&mut touched))?;
                bounds.push(start..touched.len());
            }
            start.elapsed()
        };
        let costs = self.costs();
        if !matches!(signatures, Signatures::Inline) {
            costs.record_sequential(Class::Contracts, probe, probed);
        }
        let per_tx_ns = probed.as_secs_f64() * 1e9 / probe.max(1) as f64;
        let estimate = chain_parallelism(
            txs[..probe]
                .iter()
                .zip(&bounds)
                .map(|(tx, range)| (tx, &touched[range.clone()])),
        );
        let with_probe = |parallel: BlockStats| BlockStats {
            incarnations: parallel.incarnations + probe as u64,
            ..parallel
        };
        let rest = txs.len() - probe;
        let cheaper =
            rest > 0 && costs.choose(Class::Contracts, rest, Some(per_tx_ns)) == Choice::Sequential;
        if probe == txs.len() || estimate < MIN_PROBED_PARALLELISM || cheaper {
            let _span = tracing::debug_span!("execute", path = "sequential").entered();
            run.reserve(txs.len() - probe);
            for (i, tx) in txs.iter().enumerate().skip(probe) {
                run.apply(tx, signatures.check(i), None)?;
            }
            let (results, changes) = run.into_parts();
            return Ok(Run {
                results,
                changes: changes.into_iter().collect(),
                path: ExecutionPath::Sequential(if probe == txs.len() {
                    SequentialReason::SmallBlock
                } else if estimate < MIN_PROBED_PARALLELISM {
                    SequentialReason::Conflicted
                } else {
                    SequentialReason::Cheaper
                }),
                stats: with_probe(BlockStats::default()),
            });
        }
        let (mut results, mut prefix) = run.into_parts();
        let rest = AfterPrefix {
            below: state,
            prefix: &prefix,
        };
        let start = Instant::now();
        let rule = match signatures {
            Signatures::Inline => SuffixRule::Never,
            _ => costs
                .expected_sequential(Class::Contracts, txs.len() - probe, Some(per_tx_ns))
                .map_or(SuffixRule::Never, SuffixRule::SlowerThanSequential),
        };
        let after = self.run_parallel(
            &rest,
            chain_id,
            &txs[probe..],
            signatures.after(probe),
            rule,
        )?;
        if matches!(after.path, ExecutionPath::Parallel)
            && !matches!(signatures, Signatures::Inline)
        {
            costs.record_parallel(Class::Contracts, txs.len() - probe, start.elapsed());
        }
        results.extend(after.results);
        // The rest's final values replace the prefix's: the keys only the prefix wrote,
        // then the rest's changes. (Not by extending the prefix's map, which is sized for
        // the prefix: growing it to the whole block's keys rehashes it several times, on
        // one thread, after the parallel part.)
        for (key, _) in &after.changes {
            prefix.remove(key);
        }
        let mut changes: Vec<Change> = prefix.into_iter().collect();
        changes.extend(after.changes);
        Ok(Run {
            results,
            changes,
            path: after.path,
            stats: with_probe(after.stats),
        })
    }

    /// `txs` under Block-STM on `storage`, the accumulators added after (see [`TosVm`]):
    /// the burned supplies exactly (a burn that overflows one is rejected), the fees as a
    /// saturating total.
    fn run_parallel<S>(
        &self,
        storage: &S,
        chain_id: u64,
        txs: &[Transaction],
        signatures: Signatures<'_>,
        rule: SuffixRule,
    ) -> Result<Run, TosError>
    where
        S: executor::Storage<Key = StateKey, Value = StateValue, Error = TosError>,
    {
        let mut run = self.run_engine(storage, chain_id, txs, signatures, false, rule)?;
        // The burned supplies, from the accepted burns.
        let mut burns: Vec<(StateKey, u64)> = Vec::new();
        for (tx, result) in txs.iter().zip(&run.results) {
            if let (Some(asset), true) = (burned_asset(tx), result.burned > 0) {
                let key = StateKey::BurnedSupply(asset);
                match burns.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, total)) => *total = total.saturating_add(result.burned),
                    None => burns.push((key, result.burned)),
                }
            }
        }
        let mut supplies = Vec::with_capacity(burns.len());
        for (key, total) in burns {
            match number_at(storage, &key)?.checked_add(total) {
                // `total` saturated only if it overflowed, and then so does this.
                Some(sum) if total != u64::MAX => supplies.push((key, StateValue::Number(sum))),
                _ => {
                    // Some burn overflows its supply: run the block again with the burned
                    // supplies in state, which rejects exactly it.
                    supplies.clear();
                    run = self.run_engine(storage, chain_id, txs, signatures, true, rule)?;
                    break;
                }
            }
        }
        run.changes.extend(supplies);
        // The fees, from the accepted transactions: a total that saturates.
        let fees = run
            .results
            .iter()
            .fold(0u64, |sum, r| sum.saturating_add(r.fee_paid));
        if fees > 0 {
            let total = number_at(storage, &StateKey::GasFee)?.saturating_add(fees);
            run.changes
                .push((StateKey::GasFee, StateValue::Number(total)));
        }
        Ok(run)
    }

    fn run_engine<S>(
        &self,
        storage: &S,
        chain_id: u64,
        txs: &[Transaction],
        signatures: Signatures<'_>,
        accumulators_in_state: bool,
        rule: SuffixRule,
    ) -> Result<Run, TosError>
    where
        S: executor::Storage<Key = StateKey, Value = StateValue, Error = TosError>,
    {
        let fixed = if txs.iter().any(is_contract) {
            Some(Arc::new(fixed_modules(txs, storage)?))
        } else {
            None
        };
        let _span = tracing::debug_span!("execute", path = "parallel").entered();
        let vm = |verify| -> TosVm<Transaction> {
            TosVm::new(
                chain_id,
                verify,
                accumulators_in_state,
                self.contracts.clone(),
                fixed.clone(),
            )
        };
        let output = match signatures {
            Signatures::Off => self
                .engine
                .execute_block_with(&vm(false), storage, txs, rule),
            Signatures::Inline => self
                .engine
                .execute_block_with(&vm(true), storage, txs, rule),
            Signatures::Checked(valid) => {
                let checked: Vec<Checked<'_>> = txs
                    .iter()
                    .zip(valid)
                    .map(|(tx, &valid)| Checked { tx, valid })
                    .collect();
                let vm: TosVm<Checked<'_>> = TosVm::new(
                    chain_id,
                    true,
                    accumulators_in_state,
                    self.contracts.clone(),
                    fixed.clone(),
                );
                self.engine.execute_block_with(&vm, storage, &checked, rule)
            }
        }
        .map_err(|e| match e {
            executor::BlockError::Vm(e) => e,
            executor::BlockError::Internal(what) => TosError::Internal(what),
        })?;
        let results = output
            .outputs
            .into_iter()
            .map(|output| match output {
                TxnOutput::Executed(result) => result,
                TxnOutput::Panicked(message) => TxResult::rejected(TxError::VmPanic(message)),
            })
            .collect();
        Ok(Run {
            results,
            changes: output.writes,
            path: output.path,
            stats: output.stats,
        })
    }

    /// Writes the block's changes at its topoheight, atomically. A rejected block cannot
    /// be committed.
    pub fn commit<S: TosStorage>(
        &self,
        storage: &S,
        execution: &BlockExecution,
    ) -> Result<(), TosError> {
        if let Some((index, error)) = execution.rejection() {
            return Err(TosError::Rejected {
                index,
                code: error.code(),
            });
        }
        let _span = tracing::debug_span!("commit", topoheight = execution.topoheight).entered();
        storage.write_block(execution.topoheight, &execution.changes)?;
        Ok(())
    }
}

/// `txs` one after another on the oracle: their results and the block's changes.
fn run_sequential(
    oracle: &SequentialTosExecutor,
    chain_id: u64,
    state: &BlockState<'_>,
    txs: &[Transaction],
    signatures: Signatures<'_>,
) -> Result<(Vec<TxResult>, crate::oracle::Changes), TosError> {
    let mut run = OracleRun::new(oracle, chain_id, state, txs.len());
    for (i, tx) in txs.iter().enumerate() {
        run.apply(tx, signatures.check(i), None)?;
    }
    Ok(run.into_parts())
}

/// The number `storage` holds at `key` (0 if none).
fn number_at<S>(storage: &S, key: &StateKey) -> Result<u64, TosError>
where
    S: executor::Storage<Key = StateKey, Value = StateValue, Error = TosError>,
{
    match storage.get(key)? {
        None => Ok(0),
        Some(StateValue::Number(n)) => Ok(n),
        Some(other) => Err(TosError::CorruptState(format!("{key:?} holds {other:?}"))),
    }
}

/// Whether each transaction's signature is its source's, checked on up to `threads`
/// threads.
fn check_signatures(txs: &[Transaction], threads: usize) -> Vec<bool> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    // Chunks claimed one at a time from a shared counter, not a fixed share per thread: a
    // thread the OS interrupts holds back one chunk (a millisecond), not its whole share.
    const CHUNK: usize = 16;
    let valid: Vec<AtomicBool> = txs.iter().map(|_| AtomicBool::new(false)).collect();
    let next = AtomicUsize::new(0);
    let check = || loop {
        let start = next.fetch_add(CHUNK, Ordering::Relaxed);
        if start >= txs.len() {
            break;
        }
        let end = (start + CHUNK).min(txs.len());
        for (tx, v) in txs[start..end].iter().zip(&valid[start..end]) {
            let ok = crate::crypto::verify(&tx.source, &tx.signing_bytes(), &tx.signature);
            v.store(ok, Ordering::Relaxed);
        }
    };
    let helpers = threads.clamp(1, txs.len().div_ceil(CHUNK).max(1)) - 1;
    std::thread::scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(check);
        }
        check();
    });
    // The scope joined every thread: their stores happen before these loads.
    valid.into_iter().map(AtomicBool::into_inner).collect()
}

/// The gas a transaction may use: a call's or a constructor's `max_gas`.
fn declared_gas(tx: &Transaction) -> u64 {
    match &tx.data {
        TransactionType::InvokeContract(invoke) => invoke.max_gas,
        TransactionType::DeployContract(deploy) => deploy.invoke.as_ref().map_or(0, |i| i.max_gas),
        _ => 0,
    }
}

/// Whether `tx` deploys or calls a contract.
fn is_contract(tx: &Transaction) -> bool {
    matches!(
        tx.data,
        TransactionType::InvokeContract(_) | TransactionType::DeployContract(_)
    )
}
