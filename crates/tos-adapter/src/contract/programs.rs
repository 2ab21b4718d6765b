//! The contracts shipped with the project, as sBPF assembly for [`SbpfVm`]: the `counter`,
//! `token:K` and `amm` workloads of `tos-blockstm bench`.
//!
//! [`SbpfVm`]: super::SbpfVm

use super::assemble;
use crate::primitives::PublicKey;
use crate::tx::ValueCell;

/// The entry that does the contract's work (the constructor is
/// [`CONSTRUCTOR_ENTRY`](crate::tx::CONSTRUCTOR_ENTRY)).
pub const ENTRY_MAIN: u16 = 1;

/// `counter`: entry 1 adds one to the storage entry `count` (a little-endian `u64`; absent
/// is 0). One hot entry: every call conflicts with the one before.
pub const COUNTER_ASM: &str = "
    mov64 r6, r1
    ldxdw r2, [r6+0]
    jeq r2, 0xffff, done
    jne r2, 1, fail
    lddw r2, 0x746e756f63
    stxdw [r10-16], r2
    mov64 r2, 0
    stxdw [r10-8], r2
    mov64 r1, r10
    add64 r1, -16
    mov64 r2, 5
    mov64 r3, r10
    add64 r3, -8
    mov64 r4, 8
    syscall tos_storage_load
    ldxdw r2, [r10-8]
    add64 r2, 1
    stxdw [r10-8], r2
    mov64 r1, r10
    add64 r1, -16
    mov64 r2, 5
    mov64 r3, r10
    add64 r3, -8
    mov64 r4, 8
    syscall tos_storage_store
done:
    mov64 r0, 0
    exit
fail:
    mov64 r0, 1
    exit
";

/// Supply the `token` constructor mints to its deployer.
pub const TOKEN_SUPPLY: u64 = 1_000_000_000_000;

/// `token`: balances per holder in contract storage (key: the holder's 32 bytes, value: a
/// little-endian `u64`). The constructor mints [`TOKEN_SUPPLY`] to the deployer; entry 1
/// with parameters `[to (32 bytes), amount (u64 LE)]` moves `amount` from the caller to
/// `to`, failing with exit code 2 on bad parameters, 3 if the caller holds less, 4 if the
/// receiver's balance would overflow.
pub const TOKEN_ASM: &str = "
    mov64 r6, r1
    ldxdw r2, [r6+0]
    jeq r2, 0xffff, constructor
    jne r2, 1, bad
    ldxdw r2, [r6+72]
    jlt r2, 2, bad
    ldxdw r2, [r6+80]
    jne r2, 32, bad
    ldxdw r2, [r6+120]
    jne r2, 8, bad
    mov64 r2, 0
    stxdw [r10-8], r2
    mov64 r1, r6
    add64 r1, 8
    mov64 r2, 32
    mov64 r3, r10
    add64 r3, -8
    mov64 r4, 8
    syscall tos_storage_load
    ldxdw r7, [r10-8]
    ldxdw r8, [r6+128]
    jgt r8, r7, insufficient
    sub64 r7, r8
    stxdw [r10-8], r7
    mov64 r1, r6
    add64 r1, 8
    mov64 r2, 32
    mov64 r3, r10
    add64 r3, -8
    mov64 r4, 8
    syscall tos_storage_store
    mov64 r2, 0
    stxdw [r10-16], r2
    mov64 r1, r6
    add64 r1, 88
    mov64 r2, 32
    mov64 r3, r10
    add64 r3, -16
    mov64 r4, 8
    syscall tos_storage_load
    ldxdw r9, [r10-16]
    add64 r9, r8
    jlt r9, r8, overflow
    stxdw [r10-16], r9
    mov64 r1, r6
    add64 r1, 88
    mov64 r2, 32
    mov64 r3, r10
    add64 r3, -16
    mov64 r4, 8
    syscall tos_storage_store
    mov64 r0, 0
    exit
constructor:
    lddw r2, 1000000000000
    stxdw [r10-8], r2
    mov64 r1, r6
    add64 r1, 8
    mov64 r2, 32
    mov64 r3, r10
    add64 r3, -8
    mov64 r4, 8
    syscall tos_storage_store
    mov64 r0, 0
    exit
bad:
    mov64 r0, 2
    exit
insufficient:
    mov64 r0, 3
    exit
overflow:
    mov64 r0, 4
    exit
";

/// Largest amount one `amm` swap accepts (keeps `reserve_out * amount_in` in `u64` for
/// reserves up to 10^13).
pub const AMM_MAX_IN: u64 = 1_000_000;

/// Storage key of the `amm` pool's reserve of its first asset.
pub const AMM_RESERVE_A: &[u8] = b"ra";
/// Storage key of the `amm` pool's reserve of its second asset.
pub const AMM_RESERVE_B: &[u8] = b"rb";

/// `amm`: a constant-product pool whose two reserves are the storage entries `ra` and `rb`
/// (little-endian `u64`). Entry 1 with parameters `[amount_in (u64)]` swaps `amount_in` of
/// the first asset for `out = rb * amount_in / (ra + amount_in)` of the second: `ra` grows
/// by `amount_in`, `rb` shrinks by `out`, and `out` is added to the caller's entry (its
/// 32 bytes). Fails with exit code 2 on bad parameters, 3 on an amount of 0 or above
/// [`AMM_MAX_IN`], 4 if the output rounds to 0. Every swap reads and writes both reserves:
/// inherently sequential.
pub const AMM_ASM: &str = "
    mov64 r6, r1
    ldxdw r2, [r6+0]
    jeq r2, 0xffff, done
    jne r2, 1, bad
    ldxdw r2, [r6+72]
    jlt r2, 1, bad
    ldxdw r2, [r6+80]
    jne r2, 8, bad
    ldxdw r7, [r6+88]
    jeq r7, 0, bad_amount
    jgt r7, 1000000, bad_amount
    mov64 r2, 0x6172
    stxdw [r10-16], r2
    mov64 r2, 0
    stxdw [r10-8], r2
    mov64 r1, r10
    add64 r1, -16
    mov64 r2, 2
    mov64 r3, r10
    add64 r3, -8
    mov64 r4, 8
    syscall tos_storage_load
    ldxdw r8, [r10-8]
    mov64 r2, 0x6272
    stxdw [r10-32], r2
    mov64 r2, 0
    stxdw [r10-24], r2
    mov64 r1, r10
    add64 r1, -32
    mov64 r2, 2
    mov64 r3, r10
    add64 r3, -24
    mov64 r4, 8
    syscall tos_storage_load
    ldxdw r9, [r10-24]
    add64 r8, r7
    mov64 r7, r9
    ldxdw r2, [r6+88]
    mul64 r7, r2
    div64 r7, r8
    jeq r7, 0, nothing
    sub64 r9, r7
    stxdw [r10-8], r8
    mov64 r1, r10
    add64 r1, -16
    mov64 r2, 2
    mov64 r3, r10
    add64 r3, -8
    mov64 r4, 8
    syscall tos_storage_store
    stxdw [r10-24], r9
    mov64 r1, r10
    add64 r1, -32
    mov64 r2, 2
    mov64 r3, r10
    add64 r3, -24
    mov64 r4, 8
    syscall tos_storage_store
    mov64 r2, 0
    stxdw [r10-40], r2
    mov64 r1, r6
    add64 r1, 8
    mov64 r2, 32
    mov64 r3, r10
    add64 r3, -40
    mov64 r4, 8
    syscall tos_storage_load
    ldxdw r2, [r10-40]
    add64 r2, r7
    stxdw [r10-40], r2
    mov64 r1, r6
    add64 r1, 8
    mov64 r2, 32
    mov64 r3, r10
    add64 r3, -40
    mov64 r4, 8
    syscall tos_storage_store
done:
    mov64 r0, 0
    exit
bad:
    mov64 r0, 2
    exit
bad_amount:
    mov64 r0, 3
    exit
nothing:
    mov64 r0, 4
    exit
";

/// The `counter` module.
pub fn counter() -> Result<Vec<u8>, String> {
    assemble(COUNTER_ASM)
}

/// The `token` module.
pub fn token() -> Result<Vec<u8>, String> {
    assemble(TOKEN_ASM)
}

/// The `amm` module.
pub fn amm() -> Result<Vec<u8>, String> {
    assemble(AMM_ASM)
}

/// Parameters of a `token` transfer of `amount` to `to`.
pub fn token_transfer(to: &PublicKey, amount: u64) -> Vec<ValueCell> {
    vec![ValueCell::Bytes(to.0.to_vec()), ValueCell::u64(amount)]
}

/// A `token` balance, or an `amm` reserve, as stored.
pub fn stored_u64(amount: u64) -> Vec<u8> {
    amount.to_le_bytes().to_vec()
}

/// Parameters of an `amm` swap of `amount_in`.
pub fn amm_swap(amount_in: u64) -> Vec<ValueCell> {
    vec![ValueCell::u64(amount_in)]
}
