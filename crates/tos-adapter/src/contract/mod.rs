//! Contracts: the [`ContractVm`] a contract call runs on, and the [`ContractHost`] through
//! which it reads and changes state.
//!
//! A call runs against a host that buffers every change the contract makes (storage
//! entries, transfers out of the contract's balance) in an overlay of its own: the
//! transaction applies the overlay to state only if the call succeeds, so a failed call
//! discards its contract changes while the nonce, fee and used gas stay charged. Reads go
//! through the overlay to the transaction's view of state, so under Block-STM each storage
//! entry, module and contract balance is a versioned key of its own: calls that touch
//! different entries of one contract run in parallel, calls that touch the same entry are
//! ordered by validation. Every call gets a fresh VM context; nothing is shared between
//! incarnations.
//!
//! The daemon plugs in its own runtime by implementing [`ContractVm`]; the project's is
//! [`SbpfVm`], on the `solana-sbpf` interpreter.

mod host;
pub mod programs;
mod sbpf;

pub(crate) use host::{ContractOverlay, ViewHost};
pub use sbpf::{assemble, SbpfVm};

use crate::state::Bytes;
use crate::types::{Hash, PublicKey};
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
/// Gas of reading the caller or a deposit.
pub const GAS_CONTEXT: u64 = 10;
/// Gas of a log line, plus one per byte.
pub const GAS_LOG: u64 = 20;
/// Share of the used gas that is burned, in percent; the rest goes to the fee accumulator.
pub const GAS_BURN_PERCENT: u64 = 30;
/// Longest storage key, in bytes.
pub const MAX_KEY_SIZE: usize = 256;
/// Longest storage value, in bytes.
pub const MAX_VALUE_SIZE: usize = 4096;

/// The part of `gas_used` that is burned (30%, rounded down).
pub fn gas_burned(gas_used: u64) -> u64 {
    // gas_used <= u64::MAX, so gas_used / 100 * 30 cannot overflow; the remainder part is
    // below 100 * 30.
    gas_used / 100 * GAS_BURN_PERCENT + gas_used % 100 * GAS_BURN_PERCENT / 100
}

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
    /// The contract's balance of `asset`, this call's deposits and transfers included.
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
    /// The entry point ([`CONSTRUCTOR_ENTRY`](crate::types::CONSTRUCTOR_ENTRY) for a
    /// constructor).
    pub entry_id: u16,
    /// The call's parameters.
    pub parameters: &'a [Vec<u8>],
    /// The call's deposits (already on the contract's balance).
    pub deposits: &'a [(Hash, u64)],
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
    /// Whether `module` can be deployed; `Err` says why not.
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

#[cfg(test)]
mod tests {
    use super::gas_burned;

    #[test]
    fn thirty_percent_of_gas_is_burned_rounded_down() {
        assert_eq!(gas_burned(0), 0);
        assert_eq!(gas_burned(9), 2);
        assert_eq!(gas_burned(10), 3);
        assert_eq!(gas_burned(1_001), 300);
        assert_eq!(
            gas_burned(u64::MAX),
            (u128::from(u64::MAX) * 30 / 100) as u64
        );
    }
}
