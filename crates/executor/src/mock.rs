//! A deterministic mock VM over `u64` keys and values, for tests and benchmarks.
//!
//! A [`MockTxn`] reads some keys, mixes what it read into a digest, and then, *depending
//! on the digest*, writes its keys or other ones, adds its deltas or not, fails, or
//! panics. So different incarnations of one transaction (which read different speculative
//! values) have different read, write and delta sets, as in the Aptos method of testing
//! Block-STM, while the sequential result stays a deterministic function of the block.

use crate::vm::{ExecError, Halt, KeyClaim, Storage, TxnView, Vm};
use std::collections::HashMap;
use std::hint::black_box;

/// A mock transaction.
#[derive(Clone, Debug, Default)]
pub struct MockTxn {
    /// Seed of the digest.
    pub seed: u64,
    /// Keys read first, in order.
    pub reads: Vec<u64>,
    /// Keys written; with an odd digest each goes to another key of the key space.
    pub writes: Vec<u64>,
    /// Credits `(key, amount)`; each is skipped when the digest says so.
    pub deltas: Vec<(u64, u64)>,
    /// Payments `(key, amount)`: each checks that the key holds the amount
    /// ([`TxnView::check`]) and debits it if so ([`TxnView::debit`]); a check that fails
    /// mixes the value it reports into the digest. After the writes, and after the deltas
    /// when the digest's second bit is set (before them otherwise).
    pub spends: Vec<(u64, u64)>,
    /// A key read after the writes, spends and deltas (reads this transaction's own write).
    pub read_after: Option<u64>,
    /// Fail (no writes) when `digest % fail_modulus == 0`; 0 never fails.
    pub fail_modulus: u64,
    /// Panic when `digest % panic_modulus == 1`; 0 never panics.
    pub panic_modulus: u64,
    /// Rounds of busy work, to model a transaction's cost (see [`spin`]).
    pub work: u32,
}

/// What a mock transaction returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MockOutput {
    /// Digest of everything it read.
    pub digest: u64,
    /// How it ended.
    pub status: MockStatus,
}

/// How a mock transaction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MockStatus {
    /// Wrote its writes and deltas.
    Success,
    /// Failed by its rule: no writes.
    Failed,
    /// A credit overflowed: rejected, no writes.
    Overflow,
}

/// The mock VM; `key_space` bounds the keys a redirected write may go to.
#[derive(Clone, Copy, Debug)]
pub struct MockVm {
    /// Number of keys writes may be redirected among; 0 never redirects a write.
    pub key_space: u64,
}

/// SplitMix64's finaliser: a cheap, good mixing function.
#[inline]
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `rounds` rounds of dependent arithmetic the optimiser cannot remove: about 1 ns each
/// on a current x86 core (the benches calibrate it).
#[inline]
pub fn spin(rounds: u32, seed: u64) -> u64 {
    let mut x = seed;
    for _ in 0..rounds {
        x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
    x
}

impl Vm for MockVm {
    type Txn = MockTxn;
    type Key = u64;
    type Value = u64;
    type Output = MockOutput;
    type Error = MockStorageError;

    fn execute<T>(
        &self,
        txn: &MockTxn,
        view: &mut T,
    ) -> Result<MockOutput, ExecError<MockStorageError>>
    where
        T: TxnView<Key = u64, Value = u64>,
    {
        let mut digest = txn.seed;
        for key in &txn.reads {
            let value = view.read(key)?.unwrap_or(0);
            digest = mix(digest ^ value);
        }
        if txn.work > 0 {
            digest ^= spin(txn.work, digest) & 1;
        }
        if txn.fail_modulus != 0 && digest % txn.fail_modulus == 0 {
            return Ok(MockOutput {
                digest,
                status: MockStatus::Failed,
            });
        }
        if txn.panic_modulus != 0 && digest % txn.panic_modulus == 1 {
            panic!("mock panic at digest {digest}");
        }
        for &key in &txn.writes {
            let key = if digest & 1 == 0 || self.key_space == 0 {
                key
            } else {
                key.wrapping_add(digest >> 1) % self.key_space
            };
            view.write(key, mix(digest ^ key) >> 8);
        }
        let spends_last = digest & 2 != 0;
        if !spends_last {
            digest = spend(view, &txn.spends, digest)?;
        }
        let skip = mix(digest);
        for (i, &(key, amount)) in txn.deltas.iter().enumerate() {
            if (skip >> (i % 60)) & 3 == 0 {
                continue;
            }
            if view.add_delta(key, amount)?.is_err() {
                view.discard_writes();
                return Ok(MockOutput {
                    digest,
                    status: MockStatus::Overflow,
                });
            }
        }
        if spends_last {
            digest = spend(view, &txn.spends, digest)?;
        }
        if let Some(key) = txn.read_after {
            let value = view.read(&key)?.unwrap_or(0);
            digest = mix(digest ^ value);
        }
        Ok(MockOutput {
            digest,
            status: MockStatus::Success,
        })
    }
}

/// A mock transaction's payments: `digest` with each check's outcome mixed in.
fn spend<T: TxnView<Key = u64, Value = u64>>(
    view: &mut T,
    spends: &[(u64, u64)],
    mut digest: u64,
) -> Result<u64, Halt> {
    for &(key, amount) in spends {
        match view.check(&key, amount)? {
            Ok(()) => {
                view.debit(key, amount)?;
                digest = mix(digest ^ 1);
            }
            Err(value) => digest = mix(digest ^ value.unwrap_or(0) ^ 2),
        }
    }
    Ok(digest)
}

/// The mock storage's failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("mock storage failed reading key {0}")]
pub struct MockStorageError(pub u64);

/// A `HashMap` state; reading `fail_on` fails.
#[derive(Clone, Debug, Default)]
pub struct MockStorage {
    /// The values.
    pub values: HashMap<u64, u64>,
    /// A key whose read fails, to test block errors.
    pub fail_on: Option<u64>,
    /// What is declared of who touches some keys ([`Storage::claim`]).
    pub claims: HashMap<u64, KeyClaim>,
    /// The credit-only keys by slot ([`KeyClaim::CreditOnly`]): set with the claims by
    /// [`MockStorage::set_claims`].
    pub credit_keys: Vec<u64>,
}

impl MockStorage {
    /// Declares `claims`, the credit-only keys' slots among them numbered from 0 (any
    /// slot a claim names is replaced: in key order).
    pub fn set_claims(&mut self, mut claims: HashMap<u64, KeyClaim>) {
        let mut credit_keys: Vec<u64> = claims
            .iter()
            .filter(|(_, claim)| matches!(claim, KeyClaim::CreditOnly(_)))
            .map(|(&key, _)| key)
            .collect();
        credit_keys.sort_unstable();
        for (slot, key) in credit_keys.iter().enumerate() {
            claims.insert(*key, KeyClaim::CreditOnly(slot));
        }
        self.claims = claims;
        self.credit_keys = credit_keys;
    }
}

impl Storage for MockStorage {
    type Key = u64;
    type Value = u64;
    type Error = MockStorageError;

    fn get(&self, key: &u64) -> Result<Option<u64>, MockStorageError> {
        if self.fail_on == Some(*key) {
            return Err(MockStorageError(*key));
        }
        Ok(self.values.get(key).copied())
    }

    fn has_claims(&self) -> bool {
        !self.claims.is_empty()
    }

    fn claim(&self, key: &u64) -> KeyClaim {
        self.claims.get(key).copied().unwrap_or(KeyClaim::Shared)
    }

    fn credit_only_keys(&self) -> usize {
        self.credit_keys.len()
    }

    fn credit_only_key(&self, slot: usize) -> Option<u64> {
        self.credit_keys.get(slot).copied()
    }
}

/// A block of `n` transactions that each do `work` rounds of busy work, read one key and
/// write another, with no two transactions touching the same key (run it with
/// `MockVm { key_space: 0 }`): the benchmark block.
pub fn independent_block(n: usize, work: u32) -> Vec<MockTxn> {
    (0..n as u64)
        .map(|i| MockTxn {
            seed: i,
            reads: vec![2 * i],
            writes: vec![2 * i + 1],
            work,
            ..MockTxn::default()
        })
        .collect()
}

/// A block of `n` transactions that each do `work` rounds of busy work after reading the
/// one key every transaction writes: a chain, which no second core can shorten (run it
/// with `MockVm { key_space: 0 }`).
pub fn chain_block(n: usize, work: u32) -> Vec<MockTxn> {
    (0..n as u64)
        .map(|i| MockTxn {
            seed: i,
            reads: vec![0],
            writes: vec![0],
            work,
            ..MockTxn::default()
        })
        .collect()
}

/// Never fails: a `Storage` with nothing in it.
#[derive(Clone, Copy, Debug, Default)]
pub struct EmptyStorage;

impl Storage for EmptyStorage {
    type Key = u64;
    type Value = u64;
    type Error = MockStorageError;

    fn get(&self, _key: &u64) -> Result<Option<u64>, MockStorageError> {
        Ok(None)
    }
}
