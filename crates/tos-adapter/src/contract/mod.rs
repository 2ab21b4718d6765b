//! Contracts: the [`ContractVm`] a contract call runs on, and the [`ContractHost`] through
//! which it reads and changes state.
//!
//! The rules run a call against a host that buffers every change the contract makes
//! (storage entries, transfers out of the contract's balance) and apply it to state only
//! if the call succeeds (see the rules). Every call gets a fresh VM context; nothing is
//! shared between incarnations.
//!
//! The daemon plugs in its own runtime by implementing [`ContractVm`]; the project's is
//! [`SbpfVm`], on the `solana-sbpf` interpreter, with modules in an ELF container
//! ([`elf`]).

pub mod elf;
pub mod programs;
mod sbpf;

pub use sbpf::{assemble, SbpfVm, MAX_LOADABLE_MODULE};

use crate::primitives::{Hash, PublicKey};
use crate::state::Bytes;
use std::fmt::Debug;
use std::sync::Arc;

/// Gas of one instruction executed.
pub const GAS_PER_INSTRUCTION: u64 = 1;
/// Gas of a storage load, plus one per byte loaded.
pub const GAS_STORAGE_LOAD: u64 = 100;
/// Gas of a storage store, plus one per byte of key and value.
pub const GAS_STORAGE_STORE: u64 = 200;
/// Gas of a storage delete.
pub const GAS_STORAGE_DELETE: u64 = 100;
/// Gas of reading the contract's balance.
pub const GAS_BALANCE: u64 = 50;
/// Gas of a transfer out of the contract.
pub const GAS_TRANSFER: u64 = 200;
/// Gas of reading the caller.
pub const GAS_CONTEXT: u64 = 10;
/// Gas of a log line, plus one per byte.
pub const GAS_LOG: u64 = 20;
/// Longest storage key, in bytes.
pub const MAX_KEY_SIZE: usize = 256;
/// Longest storage value, in bytes.
pub const MAX_VALUE_SIZE: usize = 4096;
/// Most stores one call may make: a store beyond fails the call. With the next bound, what
/// one call can make a block hold is small whatever its gas.
pub const MAX_CALL_STORES: u64 = 16_384;
/// Most bytes (keys and values) one call may store: a store beyond fails the call.
pub const MAX_CALL_STORED_BYTES: u64 = 1 << 20;

/// The host stopped the call for a reason of its own (a dependency on an unfinished
/// transaction, a storage failure) that it keeps; the VM must return at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostAbort;

/// What a contract may do to state, for the duration of one call.
pub trait ContractHost {
    /// The value of the contract's storage entry `key`, `None` if absent.
    fn load(&mut self, key: &[u8]) -> Result<Option<Bytes>, HostAbort>;
    /// Sets the contract's storage entry `key` to `value`.
    fn store(&mut self, key: &[u8], value: &[u8]) -> Result<(), HostAbort>;
    /// Deletes the contract's storage entry `key`; whether it existed.
    fn delete(&mut self, key: &[u8]) -> Result<bool, HostAbort>;
    /// The contract's balance of `asset`, this call's transfers out included.
    fn balance(&mut self, asset: &Hash) -> Result<u64, HostAbort>;
    /// Moves `amount` of `asset` from the contract to `destination`; `Ok(false)` if the
    /// contract holds less.
    fn transfer(
        &mut self,
        destination: &PublicKey,
        asset: &Hash,
        amount: u64,
    ) -> Result<bool, HostAbort>;
}

/// Who calls what.
#[derive(Clone, Copy, Debug)]
pub struct CallInfo<'a> {
    /// The contract called.
    pub contract: Hash,
    /// The transaction's source.
    pub caller: PublicKey,
    /// The entry point ([`CONSTRUCTOR_ENTRY`](crate::tx::CONSTRUCTOR_ENTRY) for a
    /// constructor).
    pub entry_id: u16,
    /// The call's parameters, as bytes ([`ValueCell::contract_bytes`]).
    ///
    /// [`ValueCell::contract_bytes`]: crate::tx::ValueCell::contract_bytes
    pub parameters: &'a [Vec<u8>],
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOutcome {
    /// Gas used, at most the call's `max_gas`.
    pub gas_used: u64,
    /// `None` if the call succeeded (exit code 0); otherwise why it failed.
    pub failure: Option<String>,
}

/// A contract runtime. Implementations must be deterministic: the same module, call and
/// host answers give the same outcome and the same host calls, on any thread.
pub trait ContractVm: Send + Sync + Debug {
    /// Whether this runtime can load `module`; `Err` says why not. (A deploy does not
    /// ask: TOS stores any ELF file, and a call of a module that does not load fails.)
    fn validate(&self, module: &[u8]) -> Result<(), String>;

    /// Runs `call` on `module` with at most `max_gas`. `Err(HostAbort)` only when a host
    /// method returned it.
    fn call(
        &self,
        module: &[u8],
        call: &CallInfo<'_>,
        max_gas: u64,
        host: &mut dyn ContractHost,
    ) -> Result<CallOutcome, HostAbort>;
}

/// A contract runtime shared by the executors and their threads.
pub type SharedContractVm = Arc<dyn ContractVm>;

/// The project's runtime: [`SbpfVm`].
pub fn default_contract_vm() -> SharedContractVm {
    Arc::new(SbpfVm)
}
