//! Random runs of several blocks on redb, the database closed and reopened between
//! blocks, executed by Block-STM (forced, 2 threads) in a random mode each; the same
//! blocks on a memory store by the sequential oracle. Every block's results and the final
//! state must agree, and the database's version chains must hold.

mod common;

use common::*;
use proptest::prelude::*;
use tos_adapter::{
    BlockMode, MemoryStore, RedbStore, SequentialTosExecutor, TosBlockExecutor, TosStorage,
    Transaction, TransactionType, TransferPayload, TOS_ASSET,
};

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = executor::mock::mix(self.0);
        self.0 % n.max(1)
    }
}

fn cases() -> u32 {
    std::env::var("BLOCKSTM_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(16, |n: u32| (n / 8).max(16))
}

/// A block of transfers, burns and multisig set-ups among `keys`, nonces from `nonces`
/// (advanced as if every transaction applied; some will not).
fn block(
    rng: &mut Rng,
    keys: &[tos_adapter::KeyPair],
    nonces: &mut [u64],
    n: usize,
) -> Vec<Transaction> {
    (0..n)
        .map(|_| {
            let s = rng.below(keys.len() as u64) as usize;
            let nonce = nonces[s];
            nonces[s] += 1;
            let to =
                keys[(s + 1 + rng.below(keys.len() as u64 - 1) as usize) % keys.len()].public_key();
            match rng.below(10) {
                0 => burn(&keys[s], nonce, 1 + rng.below(50)),
                1 => signed(
                    &keys[s],
                    nonce,
                    10,
                    TransactionType::Transfers(vec![
                        TransferPayload {
                            asset: OTHER_ASSET,
                            destination: to,
                            amount: rng.below(100),
                            extra_data: None,
                        },
                        TransferPayload {
                            asset: TOS_ASSET,
                            destination: to,
                            amount: rng.below(100),
                            extra_data: None,
                        },
                    ]),
                ),
                // Large amounts: some transfers fail.
                2 => transfer(&keys[s], nonce, to, 500 + rng.below(1_000)),
                _ => transfer(&keys[s], nonce, to, 1 + rng.below(300)),
            }
        })
        .collect()
}

fn check(seed: u64, blocks: usize) -> Result<(), TestCaseError> {
    let mut rng = Rng(seed);
    let keys: Vec<_> = (0..6).map(|i| key(seed.wrapping_mul(7) + i)).collect();
    let dir = std::env::temp_dir().join(format!("tos-redb-blocks-{}-{seed}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.redb");
    let memory = MemoryStore::new();
    genesis(&memory, &keys, 2_000);
    genesis(&RedbStore::open(&path).unwrap(), &keys, 2_000);
    let executor = TosBlockExecutor::new(forced(2)).unwrap();
    let oracle = SequentialTosExecutor::new(true);
    let mut nonces = vec![0u64; keys.len()];
    for b in 0..blocks {
        let n = 1 + rng.below(20) as usize;
        let txs = block(&mut rng, &keys, &mut nonces, n);
        let mode = if rng.below(3) == 0 {
            BlockMode::Accept
        } else {
            BlockMode::Dag
        };
        // Reopened for every block.
        let redb = RedbStore::open(&path).unwrap();
        let topo = redb.topoheight().unwrap() + 1;
        prop_assert_eq!(topo, memory.topoheight().unwrap() + 1);
        let parallel = executor.execute_block(&redb, topo, &txs, mode).unwrap();
        let expected = oracle.execute_block(&memory, topo, &txs, mode).unwrap();
        prop_assert_eq!(&parallel.results, &expected.results, "block {}", b);
        prop_assert_eq!(parallel.rejected, expected.rejected);
        if parallel.rejected.is_none() {
            executor.commit(&redb, &parallel).unwrap();
            oracle_commit(&memory, &expected);
        }
        // Resynchronise the nonces with what applied.
        for (i, k) in keys.iter().enumerate() {
            nonces[i] = nonce(&memory, k);
        }
    }
    let redb = RedbStore::open(&path).unwrap();
    prop_assert_eq!(redb.latest_entries().unwrap(), memory.latest());
    // Every block matches the commitment it was written with, and the records account for
    // every version.
    let verified = redb.verify(|_, _| {}).unwrap();
    prop_assert_eq!(
        verified.topoheights.map(|(_, newest)| newest),
        Some(memory.topoheight().unwrap())
    );
    // Every version points to the one it replaced.
    for (key, _) in memory.latest() {
        let history = redb.history(&key).unwrap();
        for pair in history.windows(2) {
            prop_assert_eq!(pair[0].previous_topoheight, Some(pair[1].topoheight));
        }
        if let Some(oldest) = history.last() {
            prop_assert_eq!(oldest.previous_topoheight, None);
        }
    }
    drop(redb);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn oracle_commit(store: &MemoryStore, execution: &tos_adapter::BlockExecution) {
    store
        .write_block(execution.topoheight, &execution.changes)
        .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn blocks_on_a_reopened_redb_equal_the_oracle_on_memory(
        seed in any::<u64>(),
        blocks in 2usize..6,
    ) {
        check(seed, blocks)?;
    }
}
