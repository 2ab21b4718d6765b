//! [`SbpfVm`]: contracts as sBPF programs on the `solana-sbpf` interpreter.
//!
//! A module is an ELF file, as TOS requires of every deployed module: either the project's
//! bytecode container ([`super::elf`]: sBPF version 0 instructions in a `.text` section,
//! syscalls called by the hash of their name, what [`assemble`] produces from assembly
//! text), or an sBPF ELF from the Solana toolchain (program headers, relocated syscalls).
//! A call starts at the first instruction with `r1` pointing to its input, read-only at
//! `MM_INPUT_START`:
//!
//! | offset | bytes | content |
//! |---|---|---|
//! | 0 | 8 | entry id (u64, little-endian; `0xffff` for a constructor) |
//! | 8 | 32 | caller |
//! | 40 | 32 | the contract's address |
//! | 72 | 8 | number of parameters `n` |
//! | 80 | … | `n` times: length (u64), then the bytes, padded to 8 |
//!
//! A parameter's bytes are [`ValueCell::contract_bytes`]: a bytes cell's own bytes, a
//! number's little-endian bytes. Deposits move no funds (see the rules), so a contract
//! has no syscall to read them.
//!
//! [`ValueCell::contract_bytes`]: crate::tx::ValueCell::contract_bytes
//!
//! It ends with `exit`: `r0 == 0` is success, anything else a failure. Syscalls (`syscall
//! name` in assembly; arguments in `r1`-`r5`, result in `r0`):
//!
//! | syscall | arguments | result | gas |
//! |---|---|---|---|
//! | `tos_storage_load` | key ptr, key len, out ptr, out capacity | value length (copies what fits), or `u64::MAX` if absent | 100 + value length |
//! | `tos_storage_store` | key ptr, key len, value ptr, value len | 0 | 200 + key + value length |
//! | `tos_storage_delete` | key ptr, key len | 1 if it existed, else 0 | 100 |
//! | `tos_get_balance` | asset ptr | the contract's balance | 50 |
//! | `tos_transfer` | destination ptr, asset ptr, amount | 0 (fails the call if the contract holds less) | 200 |
//! | `tos_get_caller` | out ptr (32 bytes) | 0 | 10 |
//! | `tos_log` | ptr, len | 0 | 20 + len |
//!
//! Gas is one per instruction plus the syscalls' costs, metered by the interpreter's
//! instruction meter; running out fails the call with all of `max_gas` used. Keys are at
//! most 256 bytes, values 4,096; one call makes at most 16,384 stores of at most 1 MiB in
//! all (a store beyond fails the call), so that no call, whatever its gas, can make a
//! block hold more than that. Every call builds its own loader, executable, stack and
//! input: nothing is shared between calls, so an incarnation re-executed by Block-STM
//! starts from scratch (about a microsecond of set-up, measured).

use super::{
    CallInfo, CallOutcome, ContractHost, ContractVm, HostAbort, GAS_BALANCE, GAS_CONTEXT, GAS_LOG,
    GAS_STORAGE_DELETE, GAS_STORAGE_LOAD, GAS_STORAGE_STORE, GAS_TRANSFER, MAX_CALL_STORED_BYTES,
    MAX_CALL_STORES, MAX_KEY_SIZE, MAX_VALUE_SIZE,
};
use crate::primitives::{Hash, PublicKey};
use solana_sbpf::{
    aligned_memory::AlignedMemory,
    declare_builtin_function, ebpf,
    elf::Executable,
    error::{EbpfError, ProgramResult},
    memory_region::{AccessType, MemoryMapping, MemoryRegion},
    program::{BuiltinProgram, FunctionRegistry, SBPFVersion},
    verifier::RequisiteVerifier,
    vm::{Config, ContextObject, EbpfVm},
};
use std::cell::RefCell;
use std::sync::Arc;

/// Call frames a contract may nest (internal function calls).
const MAX_CALL_DEPTH: usize = 4;

/// The interpreter's configuration: sBPF version 0 only, a small stack.
fn config() -> Config {
    Config {
        max_call_depth: MAX_CALL_DEPTH,
        enable_stack_frame_gaps: false,
        enabled_sbpf_versions: SBPFVersion::V0..=SBPFVersion::V0,
        ..Config::default()
    }
}

/// Contracts on the `solana-sbpf` interpreter (see the module documentation for the
/// calling convention, the syscalls and their gas).
#[derive(Clone, Copy, Debug, Default)]
pub struct SbpfVm;

/// What a call's syscalls see: the host, the gas left, the call.
struct CallContext<'a> {
    host: &'a mut dyn ContractHost,
    call: &'a CallInfo<'a>,
    remaining: u64,
    /// The host aborted the call: its reason wins over the VM's error.
    aborted: bool,
    /// Stores made, and the bytes of their keys and values.
    stores: u64,
    stored_bytes: u64,
}

impl ContextObject for CallContext<'_> {
    fn consume(&mut self, amount: u64) {
        self.remaining = self.remaining.saturating_sub(amount);
    }

    fn get_remaining(&self) -> u64 {
        self.remaining
    }
}

/// Why a syscall failed the call.
#[derive(Debug, thiserror::Error)]
enum SyscallError {
    #[error("out of gas")]
    OutOfGas,
    #[error("host aborted the call")]
    Host,
    #[error("storage key of {0} bytes (at most 256)")]
    KeyTooLong(u64),
    #[error("storage value of {0} bytes (at most 4096)")]
    ValueTooLong(u64),
    #[error(
        "more than {MAX_CALL_STORES} stores or {MAX_CALL_STORED_BYTES} bytes stored by one call"
    )]
    WriteLimit,
    #[error("transfer of {amount} exceeds the contract's balance")]
    InsufficientBalance { amount: u64 },
    #[error("{0}")]
    Memory(EbpfError),
}

type SyscallResult = Result<u64, Box<dyn std::error::Error>>;

impl CallContext<'_> {
    /// Charges `gas`, or fails the call with everything used.
    fn charge(&mut self, gas: u64) -> Result<(), SyscallError> {
        if gas > self.remaining {
            self.remaining = 0;
            return Err(SyscallError::OutOfGas);
        }
        self.remaining -= gas;
        Ok(())
    }

    fn host<T>(&mut self, result: Result<T, HostAbort>) -> Result<T, SyscallError> {
        result.map_err(|HostAbort| {
            self.aborted = true;
            SyscallError::Host
        })
    }
}

/// The guest bytes at `[addr, addr + len)`, copied out.
fn read_guest(mapping: &MemoryMapping, addr: u64, len: u64) -> Result<Vec<u8>, SyscallError> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let host: Result<u64, EbpfError> = mapping.map(AccessType::Load, addr, len).into();
    let host = host.map_err(SyscallError::Memory)?;
    // SAFETY: `map` checked that the whole range lies inside one mapped region, whose
    // host memory is borrowed by the mapping and lives for the whole call; `len` fits in
    // `usize` since the region does. Nothing writes to it while we copy.
    let bytes = unsafe { std::slice::from_raw_parts(host as *const u8, len as usize) };
    Ok(bytes.to_vec())
}

fn read_32(mapping: &MemoryMapping, addr: u64) -> Result<[u8; 32], SyscallError> {
    let bytes = read_guest(mapping, addr, 32)?;
    let mut out = [0u8; 32];
    out.copy_from_slice(&bytes);
    Ok(out)
}

/// Copies `bytes` to the guest at `addr`.
fn write_guest(mapping: &MemoryMapping, addr: u64, bytes: &[u8]) -> Result<(), SyscallError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let host: Result<u64, EbpfError> = mapping
        .map(AccessType::Store, addr, bytes.len() as u64)
        .into();
    let host = host.map_err(SyscallError::Memory)?;
    // SAFETY: `map` checked that the range lies inside one writable mapped region (the
    // stack or the heap), borrowed mutably by the mapping for the whole call, and the
    // interpreter does not touch guest memory while a syscall runs.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), host as *mut u8, bytes.len()) };
    Ok(())
}

fn key_len(len: u64) -> Result<u64, SyscallError> {
    if len > MAX_KEY_SIZE as u64 {
        Err(SyscallError::KeyTooLong(len))
    } else {
        Ok(len)
    }
}

declare_builtin_function!(
    /// `tos_storage_load(key, key_len, out, out_cap) -> len | u64::MAX`
    SyscallStorageLoad,
    fn rust(
        ctx: &mut CallContext<'_>,
        key: u64,
        key_len_: u64,
        out: u64,
        out_cap: u64,
        _arg5: u64,
        mapping: &mut MemoryMapping,
    ) -> SyscallResult {
        ctx.charge(GAS_STORAGE_LOAD)?;
        let key = read_guest(mapping, key, key_len(key_len_)?)?;
        let value = ctx.host.load(&key);
        let Some(value) = ctx.host(value)? else {
            return Ok(u64::MAX);
        };
        ctx.charge(value.len() as u64)?;
        let copied = value.len().min(usize::try_from(out_cap).unwrap_or(usize::MAX));
        write_guest(mapping, out, &value[..copied])?;
        Ok(value.len() as u64)
    }
);

declare_builtin_function!(
    /// `tos_storage_store(key, key_len, value, value_len) -> 0`
    SyscallStorageStore,
    fn rust(
        ctx: &mut CallContext<'_>,
        key: u64,
        key_len_: u64,
        value: u64,
        value_len: u64,
        _arg5: u64,
        mapping: &mut MemoryMapping,
    ) -> SyscallResult {
        ctx.charge(GAS_STORAGE_STORE)?;
        let key_len_ = key_len(key_len_)?;
        if value_len > MAX_VALUE_SIZE as u64 {
            return Err(SyscallError::ValueTooLong(value_len).into());
        }
        ctx.charge(key_len_ + value_len)?;
        ctx.stores += 1;
        ctx.stored_bytes += key_len_ + value_len;
        if ctx.stores > MAX_CALL_STORES || ctx.stored_bytes > MAX_CALL_STORED_BYTES {
            return Err(SyscallError::WriteLimit.into());
        }
        let key = read_guest(mapping, key, key_len_)?;
        let value = read_guest(mapping, value, value_len)?;
        let stored = ctx.host.store(&key, &value);
        ctx.host(stored)?;
        Ok(0)
    }
);

declare_builtin_function!(
    /// `tos_storage_delete(key, key_len) -> existed`
    SyscallStorageDelete,
    fn rust(
        ctx: &mut CallContext<'_>,
        key: u64,
        key_len_: u64,
        _arg3: u64,
        _arg4: u64,
        _arg5: u64,
        mapping: &mut MemoryMapping,
    ) -> SyscallResult {
        ctx.charge(GAS_STORAGE_DELETE)?;
        let key = read_guest(mapping, key, key_len(key_len_)?)?;
        let existed = ctx.host.delete(&key);
        Ok(u64::from(ctx.host(existed)?))
    }
);

declare_builtin_function!(
    /// `tos_get_balance(asset) -> balance`
    SyscallGetBalance,
    fn rust(
        ctx: &mut CallContext<'_>,
        asset: u64,
        _arg2: u64,
        _arg3: u64,
        _arg4: u64,
        _arg5: u64,
        mapping: &mut MemoryMapping,
    ) -> SyscallResult {
        ctx.charge(GAS_BALANCE)?;
        let asset = Hash(read_32(mapping, asset)?);
        let balance = ctx.host.balance(&asset);
        Ok(ctx.host(balance)?)
    }
);

declare_builtin_function!(
    /// `tos_transfer(destination, asset, amount) -> 0`
    SyscallTransfer,
    fn rust(
        ctx: &mut CallContext<'_>,
        destination: u64,
        asset: u64,
        amount: u64,
        _arg4: u64,
        _arg5: u64,
        mapping: &mut MemoryMapping,
    ) -> SyscallResult {
        ctx.charge(GAS_TRANSFER)?;
        let destination = PublicKey(read_32(mapping, destination)?);
        let asset = Hash(read_32(mapping, asset)?);
        let moved = ctx.host.transfer(&destination, &asset, amount);
        if ctx.host(moved)? {
            Ok(0)
        } else {
            Err(SyscallError::InsufficientBalance { amount }.into())
        }
    }
);

declare_builtin_function!(
    /// `tos_get_caller(out) -> 0`
    SyscallGetCaller,
    fn rust(
        ctx: &mut CallContext<'_>,
        out: u64,
        _arg2: u64,
        _arg3: u64,
        _arg4: u64,
        _arg5: u64,
        mapping: &mut MemoryMapping,
    ) -> SyscallResult {
        ctx.charge(GAS_CONTEXT)?;
        write_guest(mapping, out, &ctx.call.caller.0)?;
        Ok(0)
    }
);

declare_builtin_function!(
    /// `tos_log(ptr, len) -> 0`
    SyscallLog,
    fn rust(
        ctx: &mut CallContext<'_>,
        ptr: u64,
        len: u64,
        _arg3: u64,
        _arg4: u64,
        _arg5: u64,
        mapping: &mut MemoryMapping,
    ) -> SyscallResult {
        ctx.charge(GAS_LOG)?;
        ctx.charge(len)?;
        let message = read_guest(mapping, ptr, len)?;
        tracing::trace!(
            contract = %ctx.call.contract,
            message = %String::from_utf8_lossy(&message),
            "contract log"
        );
        Ok(0)
    }
);

/// The loader with every syscall registered, for contexts of any lifetime.
fn loader<'a>() -> Result<Arc<BuiltinProgram<CallContext<'a>>>, String> {
    let mut loader = BuiltinProgram::new_loader(config());
    let syscalls: [(&str, solana_sbpf::program::BuiltinFunction<CallContext<'a>>); 7] = [
        ("tos_storage_load", SyscallStorageLoad::vm),
        ("tos_storage_store", SyscallStorageStore::vm),
        ("tos_storage_delete", SyscallStorageDelete::vm),
        ("tos_get_balance", SyscallGetBalance::vm),
        ("tos_transfer", SyscallTransfer::vm),
        ("tos_get_caller", SyscallGetCaller::vm),
        ("tos_log", SyscallLog::vm),
    ];
    for (name, function) in syscalls {
        loader
            .register_function(name, function)
            .map_err(|e| format!("registering {name}: {e}"))?;
    }
    Ok(Arc::new(loader))
}

/// Largest module the runtime loads: larger ones are stored when deployed (TOS's format
/// allows 10 MiB) but every call of them fails.
pub const MAX_LOADABLE_MODULE: usize = 512 * 1024;

/// A module as an executable, verified.
fn load<'a>(
    module: &[u8],
    loader: Arc<BuiltinProgram<CallContext<'a>>>,
) -> Result<Executable<CallContext<'a>>, String> {
    if module.len() > MAX_LOADABLE_MODULE {
        return Err(format!(
            "module of {} bytes (at most {MAX_LOADABLE_MODULE})",
            module.len()
        ));
    }
    let executable = match super::elf::container_text(module)? {
        Some(text) => {
            if text.is_empty() || text.len() % ebpf::INSN_SIZE != 0 {
                return Err(format!(
                    "bytecode of {} bytes is not a whole number of instructions",
                    text.len()
                ));
            }
            Executable::from_text_bytes(text, loader, SBPFVersion::V0, FunctionRegistry::default())
                .map_err(|e| format!("invalid bytecode: {e}"))?
        }
        None => Executable::from_elf(module, loader).map_err(|e| format!("invalid ELF: {e}"))?,
    };
    executable
        .verify::<RequisiteVerifier>()
        .map_err(|e| format!("rejected by the verifier: {e}"))?;
    Ok(executable)
}

/// A zeroed stack of `size` bytes and an input buffer for `f`: this thread's, reused from
/// call to call (no 16 KiB `malloc` and `free` per call), or fresh ones if this thread's
/// are in use.
fn with_scratch<R>(size: usize, f: impl FnOnce(&mut [u8], &mut Vec<u8>) -> R) -> R {
    struct Scratch {
        stack: AlignedMemory<{ ebpf::HOST_ALIGN }>,
        input: Vec<u8>,
    }
    let fresh = || Scratch {
        stack: AlignedMemory::zero_filled(size),
        input: Vec::new(),
    };
    thread_local! {
        static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
    }
    // `with` fails only when called from a thread-local destructor after this key's was
    // run; contract calls never run from one.
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            let scratch = match slot.take() {
                Some(mut scratch) if scratch.stack.len() == size => {
                    // Every call starts from a zeroed stack: what a program reads before
                    // writing must not depend on the calls before it.
                    scratch.stack.as_slice_mut().fill(0);
                    slot.insert(scratch)
                }
                _ => slot.insert(fresh()),
            };
            f(scratch.stack.as_slice_mut(), &mut scratch.input)
        }
        Err(_) => {
            let mut scratch = fresh();
            f(scratch.stack.as_slice_mut(), &mut scratch.input)
        }
    })
}

/// Writes the call's input region (see the module documentation) to `out`.
fn write_input(call: &CallInfo<'_>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&u64::from(call.entry_id).to_le_bytes());
    out.extend_from_slice(&call.caller.0);
    out.extend_from_slice(&call.contract.0);
    out.extend_from_slice(&(call.parameters.len() as u64).to_le_bytes());
    for parameter in call.parameters {
        out.extend_from_slice(&(parameter.len() as u64).to_le_bytes());
        out.extend_from_slice(parameter);
        out.resize(out.len().div_ceil(8) * 8, 0);
    }
}

impl ContractVm for SbpfVm {
    fn validate(&self, module: &[u8]) -> Result<(), String> {
        load(module, loader()?).map(drop)
    }

    fn call(
        &self,
        module: &[u8],
        call: &CallInfo<'_>,
        max_gas: u64,
        host: &mut dyn ContractHost,
    ) -> Result<CallOutcome, HostAbort> {
        let failed = |reason: String| {
            Ok(CallOutcome {
                gas_used: 0,
                failure: Some(reason),
            })
        };
        let loader = match loader() {
            Ok(loader) => loader,
            Err(reason) => return failed(reason),
        };
        let executable = match load(module, loader.clone()) {
            Ok(executable) => executable,
            Err(reason) => return failed(reason),
        };
        let mut context = CallContext {
            host,
            call,
            remaining: max_gas,
            aborted: false,
            stores: 0,
            stored_bytes: 0,
        };
        let run = with_scratch(executable.get_config().stack_size(), |stack, input| {
            write_input(call, input);
            let stack_len = stack.len();
            let mut heap: [u8; 0] = [];
            let regions = vec![
                executable.get_ro_region(),
                MemoryRegion::new_writable(stack, ebpf::MM_STACK_START),
                MemoryRegion::new_writable(&mut heap, ebpf::MM_HEAP_START),
                MemoryRegion::new_readonly(input, ebpf::MM_INPUT_START),
            ];
            let mapping = MemoryMapping::new(regions, executable.get_config(), SBPFVersion::V0)
                .map_err(|e| format!("memory mapping: {e}"))?;
            let mut vm = EbpfVm::new(loader, SBPFVersion::V0, &mut context, mapping, stack_len);
            vm.registers[1] = ebpf::MM_INPUT_START;
            let (_, result) = vm.execute_program(&executable, true);
            Ok::<_, String>((
                result,
                vm.context_object_pointer.remaining,
                vm.context_object_pointer.aborted,
            ))
        });
        let (result, remaining, aborted) = match run {
            Ok(run) => run,
            Err(reason) => return failed(reason),
        };
        if aborted {
            return Err(HostAbort);
        }
        let gas_used = max_gas.saturating_sub(remaining);
        let failure = match result {
            ProgramResult::Ok(0) => None,
            ProgramResult::Ok(code) => Some(format!("exit code {code}")),
            ProgramResult::Err(EbpfError::ExceededMaxInstructions) => {
                return Ok(CallOutcome {
                    gas_used: max_gas,
                    failure: Some("out of gas".to_owned()),
                })
            }
            ProgramResult::Err(EbpfError::SyscallError(error)) => {
                if matches!(error.downcast_ref(), Some(SyscallError::OutOfGas)) {
                    return Ok(CallOutcome {
                        gas_used: max_gas,
                        failure: Some("out of gas".to_owned()),
                    });
                }
                Some(error.to_string())
            }
            ProgramResult::Err(error) => Some(error.to_string()),
        };
        Ok(CallOutcome { gas_used, failure })
    }
}

/// Assembles sBPF assembly text into a module for [`SbpfVm`]: the bytecode in the
/// project's ELF container. `Err` says what is wrong with the text.
pub fn assemble(source: &str) -> Result<Vec<u8>, String> {
    let executable = solana_sbpf::assembler::assemble::<CallContext<'_>>(source, loader()?)?;
    executable
        .verify::<RequisiteVerifier>()
        .map_err(|e| format!("rejected by the verifier: {e}"))?;
    Ok(super::elf::container(executable.get_text_bytes().1))
}
