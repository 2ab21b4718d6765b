//! TOS on Block-STM: the adapter the TOS daemon calls as its block executor.
//!
//! - [`types`]: transactions shaped like the daemon's (`Transaction`, `TransactionType`,
//!   transfer, burn and multisig payloads), 32-byte keys and hashes.
//! - [`crypto`]: Schnorr signatures over Ristretto.
//! - [`StateKey`] / [`StateValue`]: TOS state as versioned keys of the engine. Credits,
//!   the fee accumulator and burned supply are commutative deltas, so payments to one
//!   account and every transaction's fee do not conflict.
//! - [`TosVm`]: the TOS rules as an engine `Vm`; [`SequentialTosExecutor`]: the same rules
//!   written straight over a `HashMap`, the oracle of every test.
//! - [`TosStorage`] (sync) and [`AsyncTosStorage`]: state as versions at topoheights;
//!   [`MemoryStore`] for tests and [`RedbStore`], the persistent embedded default.
//! - [`contract`]: `DeployContract` and `InvokeContract` on a [`ContractVm`]; the project's
//!   is [`SbpfVm`] (sBPF on `solana-sbpf`), with the `counter`, `token` and `amm`
//!   contracts. Modules, storage entries and contract balances are versioned keys, so
//!   contract calls run under Block-STM like everything else.
//! - [`TosBlockExecutor`]: preload a block's declared keys, execute it (Block-STM when it
//!   pays, sequentially otherwise, the same results either way), commit it atomically.
//!
//! The rules, for each transaction in block order (DESIGN.md): a valid signature (when
//! verification is on); `nonce == Nonce(source)`; spending per asset (fee in TOS plus
//! transfers or the burn) with checked sums; payload rules (1 to 500 transfers, none to
//! the source; a multisig of at most 255 participants, not the source, no duplicates,
//! threshold in 1..=participants, or threshold 0 with no participants to delete an
//! existing one); a balance covering each spending; then nonce + 1, the debits, the fee to
//! `GasFee`, the credits, the burn to `BurnedSupply`, the multisig. A credit that
//! overflows rejects the transaction. A rejected transaction changes nothing. Amounts of
//! zero write nothing.
//!
//! Contracts: an invoke spends its deposits and `max_gas` (in TOS) besides the fee, a
//! deploy also `BURN_PER_CONTRACT`; invoking a contract that does not exist, or deploying
//! a module the VM refuses, rejects the transaction. The call runs with `max_gas`; 30% of
//! the gas used is burned, the rest goes to `GasFee`, the unused gas is refunded. A call
//! that fails (non-zero exit, VM error, out of gas) is charged its nonce, fee and gas
//! used, its deposits (and a deploy's burn) are refunded and its contract changes
//! discarded; a failed constructor stores no module.

#![warn(missing_docs)]

pub mod contract;
pub mod crypto;
pub mod types;

mod block;
mod config;
mod error;
mod metrics;
mod rules;
mod sequential;
mod snapshot;
mod state;
mod storage;
mod vm;

pub use block::{BlockExecution, ExecutionConfig, TosBlockExecutor};
pub use config::{ConfigError, ENV_PREFIX};
pub use contract::{ContractHost, ContractVm, SbpfVm, SharedContractVm};
pub use crypto::{verify, KeyPair, Signature};
pub use error::{StorageError, TosError, TxError};
pub use sequential::SequentialTosExecutor;
pub use snapshot::BlockState;
pub use state::{Bytes, DataKey};
pub use state::{DataRef, DataWord, StateKey, StateValue};
pub use storage::{
    AsyncTosStorage, Change, MemoryStore, RedbStore, TosStorage, Versioned, VersionedBalance,
    VersionedNonce, FORMAT_VERSION,
};
pub use types::{
    contract_address, BurnPayload, DeployContractPayload, Deposits, Hash, InvokeConstructorPayload,
    InvokeContractPayload, MultiSigConfig, MultiSigPayload, PublicKey, Transaction,
    TransactionType, TransferPayload, BURN_PER_CONTRACT, COIN_VALUE, CONSTRUCTOR_ENTRY,
    MAX_MULTISIG_PARTICIPANTS, MAX_TRANSFERS, TOS_ASSET,
};
pub use vm::{accumulator_keys, declared_keys, fixed_modules, FixedModules, TosVm, TxResult};
