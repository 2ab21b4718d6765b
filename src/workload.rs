//! The workloads (docs/WORKLOADS.md): deterministic blocks of real, signed TOS
//! transactions (devnet, chain id 3) for a seed.

use anyhow::{bail, Context, Result};
use executor::mock::mix;
use std::collections::HashMap;
use std::fmt;
use tos_adapter::contract::programs;
use tos_adapter::{
    BurnPayload, DataKey, Global, Hash, InvokeContractPayload, KeyPair, MultiSigPayload,
    MultiSigSignature, PublicKey, StateKey, StateValue, Transaction, TransactionType,
    TransferPayload, ValueCell, COIN_VALUE, DEVNET_CHAIN_ID, TOS_ASSET,
};

/// A second asset, for the `mixed` workload.
pub const SECOND_ASSET: Hash = Hash([0x5a; 32]);

/// Where the contract workloads find their contract (deployed in the genesis).
pub const TOKEN_CONTRACT: Hash = Hash([0xc3; 32]);
/// The `amm` workload's pool.
pub const AMM_CONTRACT: Hash = Hash([0xa3; 32]);
/// The `counter` workload's counter.
pub const COUNTER_CONTRACT: Hash = Hash([0xc0; 32]);

/// Each `token` holder's balance in the genesis.
pub const TOKEN_GENESIS_BALANCE: u64 = 1_000_000_000;
/// Each side of the `amm` pool in the genesis.
pub const AMM_GENESIS_RESERVE: u64 = 1_000_000_000_000;
/// Gas each contract call may use: several times what the shipped contracts need.
pub const CONTRACT_MAX_GAS: u64 = 100_000;

/// A workload name of docs/WORKLOADS.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Every transaction has its own sender and its own receiver.
    Independent,
    /// P% of the transactions come from one sender.
    HotSender(u8),
    /// P% of the transactions pay one receiver.
    HotReceiver(u8),
    /// K accounts paying each other at random.
    P2p(u32),
    /// Multi-transfers, burns, multisig set-ups, Zipf receivers, some failures.
    Mixed,
    /// Token transfers among K holders of one `token` contract.
    Token(u32),
    /// Swaps against one `amm` pool, each from its own sender.
    Amm,
    /// Increments of one `counter`, each from its own sender.
    Counter,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Workload::Independent => write!(f, "independent"),
            Workload::HotSender(p) => write!(f, "hot-sender:{p}"),
            Workload::HotReceiver(p) => write!(f, "hot-receiver:{p}"),
            Workload::P2p(k) => write!(f, "p2p:{k}"),
            Workload::Mixed => write!(f, "mixed"),
            Workload::Token(k) => write!(f, "token:{k}"),
            Workload::Amm => write!(f, "amm"),
            Workload::Counter => write!(f, "counter"),
        }
    }
}

impl std::str::FromStr for Workload {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let (name, arg) = match s.split_once(':') {
            Some((name, arg)) => (name, Some(arg)),
            None => (s, None),
        };
        let percent = |arg: Option<&str>| -> Result<u8> {
            let arg = arg
                .with_context(|| format!("workload `{name}` needs a percentage, as `{name}:25`"))?;
            let p: u8 = arg
                .parse()
                .with_context(|| format!("`{arg}` is not a percentage"))?;
            if p > 100 {
                bail!("percentage {p} is above 100");
            }
            Ok(p)
        };
        Ok(match name {
            "independent" if arg.is_none() => Workload::Independent,
            "mixed" if arg.is_none() => Workload::Mixed,
            "hot-sender" => Workload::HotSender(percent(arg)?),
            "hot-receiver" => Workload::HotReceiver(percent(arg)?),
            "p2p" => {
                let arg = arg.context("workload `p2p` needs a number of accounts, as `p2p:1000`")?;
                let k: u32 = arg.parse().with_context(|| format!("`{arg}` is not a number of accounts"))?;
                if k < 2 {
                    bail!("p2p needs at least 2 accounts");
                }
                Workload::P2p(k)
            }
            "amm" if arg.is_none() => Workload::Amm,
            "counter" if arg.is_none() => Workload::Counter,
            "token" => {
                let arg = arg.context("workload `token` needs a number of holders, as `token:1000`")?;
                let k: u32 = arg.parse().with_context(|| format!("`{arg}` is not a number of holders"))?;
                if k < 2 {
                    bail!("token needs at least 2 holders");
                }
                Workload::Token(k)
            }
            _ => bail!(
                "unknown workload `{s}` (expected independent, hot-sender:P, hot-receiver:P, p2p:K, mixed, token:K, amm or counter)"
            ),
        })
    }
}

impl Workload {
    /// Every workload of docs/WORKLOADS.md this build runs, at the conflict rates of the report.
    pub fn all() -> Vec<Workload> {
        vec![
            Workload::Independent,
            Workload::HotSender(25),
            Workload::HotSender(100),
            Workload::HotReceiver(100),
            Workload::P2p(2),
            Workload::P2p(10),
            Workload::P2p(100),
            Workload::P2p(1000),
            Workload::P2p(10000),
            Workload::Mixed,
            Workload::Token(1000),
            Workload::Amm,
            Workload::Counter,
        ]
    }

    /// Whether its transactions call contracts.
    pub fn has_contracts(&self) -> bool {
        matches!(self, Workload::Token(_) | Workload::Amm | Workload::Counter)
    }
}

/// A deterministic stream of numbers.
pub struct Rng(u64);

impl Rng {
    /// A stream for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(mix(seed ^ 0x7057_b10c))
    }
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// True with probability `percent`%.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The fee every generated transaction pays.
pub const FEE: u64 = 1_000;

/// Balance each funded account starts with: enough for a long run of small payments.
pub const GENESIS_BALANCE: u64 = 1_000_000 * COIN_VALUE;

/// Generates a workload's genesis and blocks, keeping each account's nonce (and
/// multisig) across blocks.
pub struct Generator {
    workload: Workload,
    txs_per_block: usize,
    rng: Rng,
    keys: Vec<KeyPair>,
    /// Senders (indices into `keys`) and receivers, by role.
    senders: Vec<usize>,
    receivers: Vec<usize>,
    nonces: HashMap<PublicKey, u64>,
    /// Each account's multisig participants (indices into `keys`) once it set one up.
    multisigs: HashMap<PublicKey, Vec<usize>>,
}

/// Runs `f` over `items` on every core, in order.
fn par_map<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<U>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// The key of account `index` of a workload seeded with `seed`.
fn account_key(seed: u64, index: u64) -> KeyPair {
    let mut seed_bytes = [0u8; 16];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    seed_bytes[8..].copy_from_slice(&index.to_le_bytes());
    KeyPair::from_seed(&seed_bytes)
}

/// A transaction built and not yet signed: who signs it, and a multisig participant who
/// co-signs it.
struct Unsigned {
    tx: Transaction,
    signer: usize,
    participant: Option<usize>,
}

impl Generator {
    /// A generator of `workload` blocks of `txs_per_block` transactions for `seed`.
    pub fn new(workload: Workload, txs_per_block: usize, seed: u64) -> Self {
        let n = txs_per_block.max(1);
        let (senders, receivers): (usize, usize) = match workload {
            Workload::Independent | Workload::HotSender(_) | Workload::HotReceiver(_) => {
                (n + 1, n + 1)
            }
            Workload::P2p(k) | Workload::Token(k) => (k as usize, 0),
            Workload::Mixed => (n, n / 2 + 2),
            Workload::Amm | Workload::Counter => (n + 1, 0),
        };
        let indices: Vec<u64> = (0..(senders + receivers) as u64).collect();
        let keys = par_map(&indices, |&i| account_key(seed, i));
        Self {
            workload,
            txs_per_block,
            rng: Rng::new(seed),
            senders: (0..senders).collect(),
            receivers: (senders..senders + receivers).collect(),
            keys,
            nonces: HashMap::new(),
            multisigs: HashMap::new(),
        }
    }

    fn public(&self, account: usize) -> PublicKey {
        self.keys[account].public_key()
    }

    /// The genesis state: the network's chain id and supply, every sender funded in TOS
    /// (and the second asset for `mixed`); for a contract workload, its contract deployed
    /// (the token's holders funded, the pool's reserves).
    pub fn genesis(&self) -> Result<Vec<(StateKey, StateValue)>> {
        let mut changes = Vec::new();
        let module = |m: std::result::Result<Vec<u8>, String>| -> Result<StateValue> {
            Ok(StateValue::Module(
                m.map_err(|e| anyhow::anyhow!("assembling a shipped contract: {e}"))?
                    .into(),
            ))
        };
        match self.workload {
            Workload::Token(_) => {
                changes.push((
                    StateKey::ContractModule(TOKEN_CONTRACT),
                    module(programs::token())?,
                ));
                for &s in &self.senders {
                    changes.push((
                        StateKey::ContractData(TOKEN_CONTRACT, DataKey::new(&self.public(s).0)),
                        StateValue::data(Some(programs::stored_u64(TOKEN_GENESIS_BALANCE).into())),
                    ));
                }
            }
            Workload::Amm => {
                changes.push((
                    StateKey::ContractModule(AMM_CONTRACT),
                    module(programs::amm())?,
                ));
                for reserve in [programs::AMM_RESERVE_A, programs::AMM_RESERVE_B] {
                    changes.push((
                        StateKey::ContractData(AMM_CONTRACT, DataKey::new(reserve)),
                        StateValue::data(Some(programs::stored_u64(AMM_GENESIS_RESERVE).into())),
                    ));
                }
            }
            Workload::Counter => changes.push((
                StateKey::ContractModule(COUNTER_CONTRACT),
                module(programs::counter())?,
            )),
            _ => {}
        }
        for &s in &self.senders {
            let public = self.public(s);
            changes.push((StateKey::Nonce(public), StateValue::Number(0)));
            changes.push((
                StateKey::Balance(public, TOS_ASSET),
                StateValue::Number(GENESIS_BALANCE),
            ));
            if self.workload == Workload::Mixed {
                changes.push((
                    StateKey::Balance(public, SECOND_ASSET),
                    StateValue::Number(GENESIS_BALANCE),
                ));
            }
        }
        let supply = GENESIS_BALANCE.saturating_mul(self.senders.len() as u64);
        changes.push((
            StateKey::Global(Global::NetworkChainId),
            StateValue::Number(u64::from(DEVNET_CHAIN_ID)),
        ));
        changes.push((
            StateKey::Global(Global::TotalSupply),
            StateValue::Number(supply),
        ));
        Ok(changes)
    }

    /// Sets the nonce the next block starts from for `account` (read from storage when
    /// continuing a run).
    pub fn set_nonce(&mut self, account: PublicKey, nonce: u64) {
        self.nonces.insert(account, nonce);
    }

    /// Records `account`'s multisig participants (read from storage when continuing a
    /// run), so that its transactions carry a participant's signature.
    pub fn set_multisig(&mut self, account: PublicKey, participants: &[PublicKey]) {
        let indices = participants
            .iter()
            .filter_map(|p| self.keys.iter().position(|k| k.public_key() == *p))
            .collect();
        self.multisigs.insert(account, indices);
    }

    /// Every account that may send.
    pub fn sender_keys(&self) -> Vec<PublicKey> {
        self.senders.iter().map(|&s| self.public(s)).collect()
    }

    fn next_nonce(&mut self, account: PublicKey) -> u64 {
        let nonce = self.nonces.entry(account).or_insert(0);
        let current = *nonce;
        *nonce += 1;
        current
    }

    fn tx(&mut self, from: usize, nonce: u64, data: TransactionType) -> Unsigned {
        let source = self.public(from);
        let participant = self.multisigs.get(&source).and_then(|p| p.first().copied());
        Unsigned {
            tx: Transaction::new(DEVNET_CHAIN_ID, source, nonce, FEE, data),
            signer: from,
            participant,
        }
    }

    fn pay(&mut self, from: usize, to: usize, amount: u64) -> Unsigned {
        let nonce = self.next_nonce(self.public(from));
        let data = TransactionType::Transfers(vec![TransferPayload {
            asset: TOS_ASSET,
            destination: self.public(to),
            amount,
            extra_data: None,
        }]);
        self.tx(from, nonce, data)
    }

    /// The next block's transactions, signed.
    pub fn block(&mut self) -> Vec<Transaction> {
        let n = self.txs_per_block;
        let mut txs = Vec::with_capacity(n);
        match self.workload {
            Workload::Independent => {
                for i in 0..n {
                    let amount = 1 + self.rng.below(1_000);
                    txs.push(self.pay(self.senders[i], self.receivers[i], amount));
                }
            }
            Workload::HotSender(p) => {
                let hot = self.senders[n];
                for i in 0..n {
                    let from = if self.rng.chance(u64::from(p)) {
                        hot
                    } else {
                        self.senders[i]
                    };
                    let amount = 1 + self.rng.below(1_000);
                    txs.push(self.pay(from, self.receivers[i], amount));
                }
            }
            Workload::HotReceiver(p) => {
                let hot = self.receivers[n];
                for i in 0..n {
                    let to = if self.rng.chance(u64::from(p)) {
                        hot
                    } else {
                        self.receivers[i]
                    };
                    let amount = 1 + self.rng.below(1_000);
                    txs.push(self.pay(self.senders[i], to, amount));
                }
            }
            Workload::P2p(k) => {
                let k = u64::from(k);
                for _ in 0..n {
                    let from = self.rng.below(k) as usize;
                    let to = (from + 1 + self.rng.below(k - 1) as usize) % k as usize;
                    let amount = 1 + self.rng.below(1_000);
                    txs.push(self.pay(self.senders[from], self.senders[to], amount));
                }
            }
            Workload::Mixed => self.mixed_block(&mut txs),
            Workload::Token(k) => {
                let k = u64::from(k);
                for _ in 0..n {
                    let from = self.rng.below(k) as usize;
                    let to = (from + 1 + self.rng.below(k - 1) as usize) % k as usize;
                    let amount = 1 + self.rng.below(1_000);
                    let to = self.public(self.senders[to]);
                    let parameters = programs::token_transfer(&to, amount);
                    txs.push(self.call(self.senders[from], TOKEN_CONTRACT, parameters));
                }
            }
            Workload::Amm => {
                for i in 0..n {
                    let parameters = programs::amm_swap(1 + self.rng.below(1_000));
                    txs.push(self.call(self.senders[i], AMM_CONTRACT, parameters));
                }
            }
            Workload::Counter => {
                for i in 0..n {
                    txs.push(self.call(self.senders[i], COUNTER_CONTRACT, vec![]));
                }
            }
        }
        let keys = &self.keys;
        par_map(&txs, |u| {
            let mut tx = u.tx.clone();
            if let Some(p) = u.participant {
                tx.multisig = Some(vec![MultiSigSignature {
                    id: 0,
                    signature: keys[p].sign(&tx.multisig_message().0),
                }]);
            }
            tx.signed(&keys[u.signer])
        })
    }

    /// A call of `contract`'s main entry from `from`.
    fn call(&mut self, from: usize, contract: Hash, parameters: Vec<ValueCell>) -> Unsigned {
        let nonce = self.next_nonce(self.public(from));
        let data = TransactionType::InvokeContract(Box::new(InvokeContractPayload {
            contract,
            deposits: vec![],
            entry_id: programs::ENTRY_MAIN,
            max_gas: CONTRACT_MAX_GAS,
            parameters,
        }));
        self.tx(from, nonce, data)
    }

    /// A Zipf-distributed receiver: receiver `r` with probability ∝ 1/(r+1).
    fn zipf_receiver(&mut self) -> usize {
        let count = self.receivers.len() as f64;
        // Inverse CDF of the continuous 1/x law on [1, count + 1].
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let r = ((count + 1.0).powf(u) - 1.0) as usize;
        self.receivers[r.min(self.receivers.len() - 1)]
    }

    fn mixed_block(&mut self, txs: &mut Vec<Unsigned>) {
        let n = self.txs_per_block;
        for i in 0..n {
            let from = self.senders[i % self.senders.len()];
            let public = self.public(from);
            let kind = self.rng.below(100);
            let tx = if kind < 2 {
                // Fails: a nonce from the future (not consumed).
                let nonce = self.nonces.get(&public).copied().unwrap_or(0) + 5;
                let to = self.zipf_receiver();
                let data = TransactionType::Transfers(vec![TransferPayload {
                    asset: TOS_ASSET,
                    destination: self.public(to),
                    amount: 1,
                    extra_data: None,
                }]);
                self.tx(from, nonce, data)
            } else if kind < 4 {
                // Fails: more than the sender holds (the nonce is not consumed either).
                let nonce = self.nonces.get(&public).copied().unwrap_or(0);
                let to = self.zipf_receiver();
                let data = TransactionType::Transfers(vec![TransferPayload {
                    asset: TOS_ASSET,
                    destination: self.public(to),
                    amount: u64::MAX / 2,
                    extra_data: None,
                }]);
                self.tx(from, nonce, data)
            } else if kind < 12 {
                let nonce = self.next_nonce(public);
                let asset = if self.rng.chance(50) {
                    TOS_ASSET
                } else {
                    SECOND_ASSET
                };
                let amount = 1 + self.rng.below(100);
                self.tx(
                    from,
                    nonce,
                    TransactionType::Burn(BurnPayload { asset, amount }),
                )
            } else if kind < 15 {
                let nonce = self.next_nonce(public);
                let count = 1 + self.rng.below(3) as usize;
                let mut chosen: Vec<usize> = Vec::with_capacity(count);
                for _ in 0..count {
                    let r = self.zipf_receiver();
                    if !chosen.contains(&r) {
                        chosen.push(r);
                    }
                }
                let participants = chosen.iter().map(|&r| self.public(r)).collect();
                // Signed under the multisig it replaces, if any; later ones under this.
                let tx = self.tx(
                    from,
                    nonce,
                    TransactionType::MultiSig(MultiSigPayload {
                        threshold: 1,
                        participants,
                    }),
                );
                self.multisigs.insert(public, chosen);
                tx
            } else {
                let nonce = self.next_nonce(public);
                let count = 1 + self.rng.below(3) as usize;
                let transfers = (0..count)
                    .map(|_| {
                        let to = self.zipf_receiver();
                        TransferPayload {
                            asset: if self.rng.chance(70) {
                                TOS_ASSET
                            } else {
                                SECOND_ASSET
                            },
                            destination: self.public(to),
                            amount: 1 + self.rng.below(10_000),
                            extra_data: None,
                        }
                    })
                    .collect();
                self.tx(from, nonce, TransactionType::Transfers(transfers))
            };
            txs.push(tx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_errors() {
        for w in Workload::all() {
            assert_eq!(w.to_string().parse::<Workload>().unwrap(), w);
        }
        for bad in [
            "hot-sender",
            "hot-sender:101",
            "p2p:1",
            "p2p:x",
            "nope",
            "independent:3",
            "token:1",
            "token",
            "amm:3",
        ] {
            assert!(bad.parse::<Workload>().is_err(), "{bad}");
        }
    }

    #[test]
    fn blocks_are_deterministic_with_consecutive_nonces() {
        let a = Generator::new(Workload::P2p(10), 100, 7).block();
        let b = Generator::new(Workload::P2p(10), 100, 7).block();
        assert_eq!(a, b);
        let mut seen: HashMap<PublicKey, u64> = HashMap::new();
        for tx in &a {
            let next = seen.entry(tx.source).or_insert(0);
            assert_eq!(tx.nonce, *next);
            *next += 1;
        }
    }
}
