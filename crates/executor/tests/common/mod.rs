//! Random mock blocks shared by the executor's tests.
#![allow(dead_code)]

use executor::mock::{mix, MockStorage, MockTxn};
use executor::KeyClaim;
use std::collections::HashMap;
use std::sync::Once;

/// Silences the default panic hook for the mock VM's deliberate panics.
pub fn quiet_mock_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let mock = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|m| m.starts_with("mock panic"));
            if !mock {
                default(info);
            }
        }));
    });
}

/// A deterministic pseudo-random stream.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A random block over `universe` keys: random reads, writes, credits (some huge, so
/// that credits overflow) and payments (checks and debits), reads after writes, failures
/// and panics; and a storage holding random values, some near `u64::MAX`.
pub fn random_block(
    seed: u64,
    universe: u64,
    n: usize,
    overflows: bool,
) -> (MockStorage, Vec<MockTxn>) {
    let mut rng = Rng::new(seed);
    let mut storage = MockStorage::default();
    for key in 0..universe {
        match rng.below(4) {
            0 => {}
            1 if overflows => {
                storage.values.insert(key, u64::MAX - rng.below(1_000));
            }
            _ => {
                storage.values.insert(key, rng.below(1_000_000));
            }
        }
    }
    let txns = (0..n)
        .map(|_| {
            let reads = (0..rng.below(4)).map(|_| rng.below(universe)).collect();
            let writes = (0..rng.below(3)).map(|_| rng.below(universe)).collect();
            let deltas = (0..rng.below(3))
                .map(|_| {
                    let amount = if overflows && rng.below(20) == 0 {
                        u64::MAX / 2 + rng.below(1_000)
                    } else {
                        1 + rng.below(1_000)
                    };
                    (rng.below(universe), amount)
                })
                .collect();
            let spends = (0..rng.below(3))
                .map(|_| (rng.below(universe), spend_amount(&mut rng)))
                .collect();
            MockTxn {
                seed: rng.next_u64(),
                reads,
                writes,
                deltas,
                spends,
                read_after: (rng.below(3) == 0).then(|| rng.below(universe)),
                fail_modulus: if rng.below(4) == 0 { 5 } else { 0 },
                panic_modulus: if rng.below(8) == 0 { 7 } else { 0 },
                work: 0,
            }
        })
        .collect();
    (storage, txns)
}

/// What a payment takes: mostly small against storage's numbers (below 1,000,000) and
/// the credits (below 1,000), so that most checks hold, some fail, and a debit's check
/// may hold only thanks to a credit below it; sometimes the whole of a large number.
fn spend_amount(rng: &mut Rng) -> u64 {
    match rng.below(8) {
        0 => rng.below(2_000_000),
        1 => rng.below(5),
        _ => rng.below(600_000),
    }
}

/// What a storage may declare of `txns`' keys (`Storage::claim`): a key that exactly one
/// transaction names (to read, write, credit or read after) is exclusive to it; a key
/// that several only credit is credit-only (its slot set by `MockStorage::set_claims`).
/// Exact for `MockVm { key_space: 0 }`; with a
/// key space, redirected writes may break them and the executor must notice.
pub fn claims(txns: &[MockTxn]) -> HashMap<u64, KeyClaim> {
    // Per key: the one transaction naming it (None: several), and whether all only credit.
    let mut named: HashMap<u64, (Option<usize>, bool)> = HashMap::new();
    for (i, txn) in txns.iter().enumerate() {
        let touched = txn
            .reads
            .iter()
            .chain(&txn.writes)
            .chain(&txn.read_after)
            .chain(txn.spends.iter().map(|(key, _)| key))
            .map(|&key| (key, false));
        let credited = txn.deltas.iter().map(|&(key, _)| (key, true));
        for (key, credit) in touched.chain(credited) {
            named
                .entry(key)
                .and_modify(|(owner, credits)| {
                    if *owner != Some(i) {
                        *owner = None;
                    }
                    *credits &= credit;
                })
                .or_insert((Some(i), credit));
        }
    }
    named
        .into_iter()
        .filter_map(|(key, claim)| match claim {
            (Some(owner), _) => Some((key, KeyClaim::Exclusive(owner))),
            (None, true) => Some((key, KeyClaim::CreditOnly(0))),
            (None, false) => None,
        })
        .collect()
}

/// `writes` ordered by key: the final state as a set.
pub fn sorted<K: Ord + Clone, V: Clone>(writes: &[(K, V)]) -> Vec<(K, V)> {
    let mut writes = writes.to_vec();
    writes.sort_by(|a, b| a.0.cmp(&b.0));
    writes
}
