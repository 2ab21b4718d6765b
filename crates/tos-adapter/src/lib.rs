//! TOS on Block-STM: the block executor the TOS daemon calls.
//!
//! A block's transactions are TOS's own ([`tx`]: the wire format a TOS wallet produces,
//! signatures as TOS signs them, [`crypto`]). They are applied by TOS's rules
//! ([`rules`]: every check in TOS's order, each failure with TOS's error code), written
//! once over the state one transaction sees ([`rules::TxState`]). Two executors apply
//! them:
//!
//! - [`TosBlockExecutor`] ([`execution`]): the rules as the engine's `Vm` ([`TosVm`]),
//!   run by Block-STM on all cores over multi-version memory, when the block can gain;
//!   sequentially otherwise. Both block modes: DAG execution (a failing transaction is
//!   skipped with its code) and block acceptance (the lowest failing transaction rejects
//!   the block).
//! - [`SequentialTosExecutor`] ([`oracle`]): the rules over plain maps, one transaction
//!   after another; the oracle every test of the engine compares with.
//!
//! # State
//!
//! TOS state is a set of versioned keys ([`StateKey`]): an account's nonce, its balance
//! per asset and its multisig; a contract's code, storage entries and balances; the
//! block's accumulators (fees, burned supply per asset) and the chain's global values
//! ([`Global`]). An account exists once it has a stored nonce or TOS balance, so a credit
//! creates its receiver without reading it. Credits, fees and burns are commutative
//! deltas, so payments to one account and every transaction's fee do not conflict.
//! [`ChainSummary`] gives the state as TOS's conformance suite sees it, with TOS's state
//! digest.
//!
//! # Storage
//!
//! [`TosStorage`] (sync) and [`AsyncTosStorage`]: state as versions at topoheights, each
//! pointing to the one it replaces, a block written atomically; [`MemoryStore`] for tests
//! and [`RedbStore`], the persistent embedded default.
//!
//! # Contracts
//!
//! [`contract`]: deploys and calls run on a [`ContractVm`]; the project's is [`SbpfVm`]
//! (sBPF on `solana-sbpf`), with the `counter`, `token` and `amm` programs. Modules,
//! storage entries and contract balances are versioned keys, so contract calls run under
//! Block-STM like everything else.
//!
//! # Invariants
//!
//! 1. For any block, state and thread count, [`TosBlockExecutor`] gives the results and
//!    the changes of [`SequentialTosExecutor`] (proptested in both block modes).
//! 2. A rejected transaction changes nothing; a rejected block (acceptance mode) writes
//!    nothing; a block error (storage) writes nothing.
//! 3. A block's changes are written at its topoheight in one atomic write.

#![warn(missing_docs)]

pub mod block;
pub mod conformance;
pub mod contract;
pub mod crypto;
pub mod execution;
pub mod oracle;
pub mod primitives;
pub mod rules;
pub mod snapshot;
pub mod state;
pub mod storage;
pub mod tx;

mod error;

pub use block::{BlockExecution, BlockMode};
pub use contract::{ContractHost, ContractVm, SbpfVm, SharedContractVm};
pub use crypto::{verify, KeyPair, Signature};
pub use error::{StorageError, TosError};
pub use execution::{ConfigError, ExecutionConfig, TosBlockExecutor, TosVm, ENV_PREFIX};
pub use oracle::SequentialTosExecutor;
pub use primitives::{
    from_hex, to_hex, Hash, HexError, MultiSigConfig, PublicKey, SharedMultiSig, COIN_VALUE,
    TOS_ASSET,
};
pub use rules::{TxError, TxResult};
pub use snapshot::{Access, BlockState, DeclaredKeys};
pub use state::summary::{AccountSummary, ChainSummary};
pub use state::{Bytes, DataKey, DataRef, DataWord, Global, StateKey, StateValue};
pub use storage::{
    AsyncTosStorage, Change, MemoryStore, RedbStore, TosStorage, Versioned, VersionedBalance,
    VersionedNonce, FORMAT_VERSION,
};
pub use tx::{
    contract_address, BurnPayload, DeployContractPayload, Deposits, FeeType,
    InvokeConstructorPayload, InvokeContractPayload, MultiSigPayload, MultiSigSignature, Primitive,
    Reference, Transaction, TransactionType, TransferPayload, ValueCell, BURN_PER_CONTRACT,
    CONSTRUCTOR_ENTRY, DEVNET_CHAIN_ID, MAX_GAS_USAGE_PER_TX, MAX_MULTISIG_PARTICIPANTS,
    MAX_TRANSFERS,
};
