//! Accounts, genesis and transactions for the adapter's tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use tos_adapter::{
    BlockExecution, BlockMode, BurnPayload, ExecutionConfig, Hash, KeyPair, MemoryStore,
    MultiSigPayload, PublicKey, StateKey, StateValue, TosBlockExecutor, TosStorage, Transaction,
    TransactionType, TransferPayload, ValueCell, DEVNET_CHAIN_ID, TOS_ASSET,
};

pub const OTHER_ASSET: Hash = Hash([7; 32]);

pub fn key(i: u64) -> KeyPair {
    KeyPair::from_seed(&i.to_le_bytes())
}

/// Writes a genesis where each account `i` in `accounts` holds `balance` of TOS and of
/// `OTHER_ASSET`.
pub fn genesis(store: &impl TosStorage, accounts: &[KeyPair], balance: u64) {
    let mut changes = Vec::new();
    for k in accounts {
        changes.push((StateKey::Nonce(k.public_key()), StateValue::Number(0)));
        changes.push((
            StateKey::Balance(k.public_key(), TOS_ASSET),
            StateValue::Number(balance),
        ));
        changes.push((
            StateKey::Balance(k.public_key(), OTHER_ASSET),
            StateValue::Number(balance),
        ));
    }
    store.write_block(0, &changes).unwrap();
}

pub fn signed(from: &KeyPair, nonce: u64, fee: u64, data: TransactionType) -> Transaction {
    Transaction::new(DEVNET_CHAIN_ID, from.public_key(), nonce, fee, data).signed(from)
}

pub fn transfer(from: &KeyPair, nonce: u64, to: PublicKey, amount: u64) -> Transaction {
    signed(
        from,
        nonce,
        10,
        TransactionType::Transfers(vec![TransferPayload {
            asset: TOS_ASSET,
            destination: to,
            amount,
            extra_data: None,
        }]),
    )
}

pub fn burn(from: &KeyPair, nonce: u64, amount: u64) -> Transaction {
    signed(
        from,
        nonce,
        10,
        TransactionType::Burn(BurnPayload {
            asset: TOS_ASSET,
            amount,
        }),
    )
}

pub fn multisig(
    from: &KeyPair,
    nonce: u64,
    threshold: u8,
    participants: Vec<PublicKey>,
) -> Transaction {
    signed(
        from,
        nonce,
        10,
        TransactionType::MultiSig(MultiSigPayload {
            threshold,
            participants,
        }),
    )
}

pub fn config(threads: usize) -> ExecutionConfig {
    ExecutionConfig {
        enabled: true,
        min_batch_size: 0,
        max_parallelism: threads,
        verify_signatures: true,
        enable_contract_parallel: true,
        always_parallel: false,
        max_block_gas: None,
    }
}

/// A configuration that runs every block under Block-STM (no cutoff, estimate or probe).
pub fn forced(threads: usize) -> ExecutionConfig {
    ExecutionConfig {
        always_parallel: true,
        ..config(threads)
    }
}

pub fn balance(store: &impl TosStorage, account: &KeyPair, asset: Hash) -> u64 {
    let topo = store.topoheight().unwrap();
    store
        .get_balance_at_maximum_topoheight(&account.public_key(), &asset, topo)
        .unwrap()
        .map_or(0, |(_, v)| v.balance)
}

pub fn nonce(store: &impl TosStorage, account: &KeyPair) -> u64 {
    let topo = store.topoheight().unwrap();
    store
        .get_nonce_at_maximum_topoheight(&account.public_key(), topo)
        .unwrap()
        .map_or(0, |(_, v)| v.nonce)
}

/// A block's changes as a map, for comparing executions regardless of order; checks that
/// no key appears twice.
pub fn changes(execution: &BlockExecution) -> BTreeMap<StateKey, StateValue> {
    let changes: BTreeMap<StateKey, StateValue> = execution.changes.iter().cloned().collect();
    assert_eq!(
        changes.len(),
        execution.changes.len(),
        "a key appears more than once in the block's changes"
    );
    changes
}

/// Executes `txs` as block 1 on `store` (topoheight 0) through the synchronous and the
/// asynchronous storage paths, checks that both give the same results and changes, and
/// returns the asynchronous execution.
pub fn sync_and_async_agree(
    executor: &TosBlockExecutor,
    store: &MemoryStore,
    txs: &[Transaction],
) -> BlockExecution {
    let sync = executor
        .execute_block(store, 1, txs, BlockMode::Dag)
        .unwrap();
    let async_ =
        futures::executor::block_on(executor.execute_block_async(store, 0, txs, BlockMode::Dag))
            .unwrap();
    assert_eq!(sync.results, async_.results);
    assert_eq!(changes(&sync), changes(&async_));
    async_
}

/// A test contract exercising every syscall. Parameter 0 is an 8-byte key (a 32-byte
/// destination for entry 3). Entries: 1 stores parameter 1 at the key; 2 deletes the key;
/// 3 transfers parameter 1 (u64) of TOS from the contract to the destination; 4 copies the
/// key's value (at most 64 bytes) to the key in parameter 1, failing with 5 if absent; 5
/// stores, then fails with exit code 7; 6 stores the caller at the key; 7 stores the TOS
/// balance (8 bytes) at the key; 8 logs parameter 1; 9 loops forever.
pub const KV_ASM: &str = "
    mov64 r6, r1
    ldxdw r2, [r6+0]
    jeq r2, 0xffff, ok
    jeq r2, 1, store
    jeq r2, 2, delete
    jeq r2, 3, transfer
    jeq r2, 4, copy
    jeq r2, 5, store_then_fail
    jeq r2, 6, caller
    jeq r2, 7, money
    jeq r2, 8, log
    jeq r2, 9, forever
    mov64 r0, 9
    exit
store:
    mov64 r1, r6
    add64 r1, 88
    mov64 r2, 8
    mov64 r3, r6
    add64 r3, 104
    ldxdw r4, [r6+96]
    syscall tos_storage_store
    ja ok
delete:
    mov64 r1, r6
    add64 r1, 88
    mov64 r2, 8
    syscall tos_storage_delete
    ja ok
transfer:
    mov64 r2, 0
    stxdw [r10-32], r2
    stxdw [r10-24], r2
    stxdw [r10-16], r2
    stxdw [r10-8], r2
    mov64 r1, r6
    add64 r1, 88
    mov64 r2, r10
    add64 r2, -32
    ldxdw r3, [r6+128]
    syscall tos_transfer
    ja ok
copy:
    mov64 r1, r6
    add64 r1, 88
    mov64 r2, 8
    mov64 r3, r10
    add64 r3, -64
    mov64 r4, 64
    syscall tos_storage_load
    jeq r0, -1, absent
    jle r0, 64, copy_store
    mov64 r0, 64
copy_store:
    mov64 r4, r0
    mov64 r1, r6
    add64 r1, 104
    mov64 r2, 8
    mov64 r3, r10
    add64 r3, -64
    syscall tos_storage_store
    ja ok
absent:
    mov64 r0, 5
    exit
store_then_fail:
    mov64 r1, r6
    add64 r1, 88
    mov64 r2, 8
    mov64 r3, r6
    add64 r3, 104
    ldxdw r4, [r6+96]
    syscall tos_storage_store
    mov64 r0, 7
    exit
caller:
    mov64 r1, r10
    add64 r1, -32
    syscall tos_get_caller
    mov64 r1, r6
    add64 r1, 88
    mov64 r2, 8
    mov64 r3, r10
    add64 r3, -32
    mov64 r4, 32
    syscall tos_storage_store
    ja ok
money:
    mov64 r2, 0
    stxdw [r10-32], r2
    stxdw [r10-24], r2
    stxdw [r10-16], r2
    stxdw [r10-8], r2
    mov64 r1, r10
    add64 r1, -32
    syscall tos_get_balance
    stxdw [r10-40], r0
    mov64 r1, r6
    add64 r1, 88
    mov64 r2, 8
    mov64 r3, r10
    add64 r3, -40
    mov64 r4, 8
    syscall tos_storage_store
    ja ok
log:
    mov64 r1, r6
    add64 r1, 104
    ldxdw r2, [r6+96]
    syscall tos_log
    ja ok
forever:
    ja forever
ok:
    mov64 r0, 0
    exit
";

/// A module whose constructor (and every entry) fails with exit code 1.
pub const FAILING_ASM: &str = "
    mov64 r0, 1
    exit
";

pub fn kv_module() -> Vec<u8> {
    tos_adapter::contract::assemble(KV_ASM).unwrap()
}

pub fn failing_module() -> Vec<u8> {
    tos_adapter::contract::assemble(FAILING_ASM).unwrap()
}

/// An 8-byte storage key.
pub fn kv_key(i: u64) -> Vec<u8> {
    i.to_le_bytes().to_vec()
}

/// Parameters as bytes cells.
pub fn cells(parameters: Vec<Vec<u8>>) -> Vec<ValueCell> {
    parameters.into_iter().map(ValueCell::Bytes).collect()
}

pub fn invoke(
    from: &KeyPair,
    nonce: u64,
    contract: Hash,
    entry_id: u16,
    parameters: Vec<Vec<u8>>,
    deposits: Vec<(Hash, u64)>,
    max_gas: u64,
) -> Transaction {
    let parameters = cells(parameters);
    signed(
        from,
        nonce,
        10,
        TransactionType::InvokeContract(Box::new(tos_adapter::InvokeContractPayload {
            contract,
            deposits,
            entry_id,
            max_gas,
            parameters,
        })),
    )
}

pub fn deploy(
    from: &KeyPair,
    nonce: u64,
    module: Vec<u8>,
    constructor: Option<(u64, Vec<(Hash, u64)>)>,
) -> Transaction {
    signed(
        from,
        nonce,
        10,
        TransactionType::DeployContract(Box::new(tos_adapter::DeployContractPayload {
            module,
            invoke: constructor.map(
                |(max_gas, deposits)| tos_adapter::InvokeConstructorPayload { max_gas, deposits },
            ),
        })),
    )
}

/// Genesis changes deploying `module` at `address` with `storage` and `balances`.
pub fn genesis_contract(
    address: Hash,
    module: Vec<u8>,
    storage: Vec<(Vec<u8>, Vec<u8>)>,
    balances: Vec<(Hash, u64)>,
) -> Vec<(StateKey, StateValue)> {
    let mut changes = vec![(
        StateKey::ContractModule(address),
        StateValue::Module(module.into()),
    )];
    for (k, v) in storage {
        changes.push((
            StateKey::ContractData(address, tos_adapter::DataKey::new(&k)),
            StateValue::Data(Some(v.into())),
        ));
    }
    for (asset, amount) in balances {
        changes.push((
            StateKey::ContractBalance(address, asset),
            StateValue::Number(amount),
        ));
    }
    changes
}

/// The TOS VM as the block executor runs it on devnet, burned supplies in state (what the
/// engine-level tests compare with the oracle), with or without signature checks.
pub fn engine_vm(verify: bool) -> tos_adapter::TosVm<tos_adapter::Transaction> {
    tos_adapter::TosVm::new(
        u64::from(tos_adapter::DEVNET_CHAIN_ID),
        verify,
        true,
        tos_adapter::contract::default_contract_vm(),
        None,
    )
}
