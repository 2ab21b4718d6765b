//! The workloads of WORKLOADS.md: deterministic TOS blocks for a seed.

use anyhow::{bail, Context, Result};
use executor::mock::mix;
use std::collections::HashMap;
use std::fmt;
use tos_adapter::contract::programs;
use tos_adapter::{
    BurnPayload, DataKey, Hash, InvokeContractPayload, KeyPair, MultiSigPayload, PublicKey,
    StateKey, StateValue, Transaction, TransactionType, TransferPayload, COIN_VALUE, TOS_ASSET,
};

/// A second asset, for the `mixed` and `amm` workloads.
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

/// A workload name of WORKLOADS.md.
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
    /// Every workload of WORKLOADS.md this build runs, at the conflict rates of the report.
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

/// An account of a workload: its key (real when signing) and its public key.
#[derive(Clone)]
pub struct Account {
    /// The signing key, when signatures are on.
    pub key: Option<KeyPair>,
    /// The public key.
    pub public: PublicKey,
}

/// Generates a workload's genesis and blocks, keeping each account's nonce across blocks.
pub struct Generator {
    workload: Workload,
    txs_per_block: usize,
    sign: bool,
    rng: Rng,
    accounts: Vec<Account>,
    /// Senders (indices into `accounts`) and receivers, by role.
    senders: Vec<usize>,
    receivers: Vec<usize>,
    nonces: HashMap<PublicKey, u64>,
}

/// Balance each funded account starts with: enough for a long run of small payments.
pub const GENESIS_BALANCE: u64 = 1_000_000 * COIN_VALUE;

fn account(seed: u64, index: u64, sign: bool) -> Account {
    let mut seed_bytes = [0u8; 16];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    seed_bytes[8..].copy_from_slice(&index.to_le_bytes());
    if sign {
        let key = KeyPair::from_seed(&seed_bytes);
        Account {
            public: key.public_key(),
            key: Some(key),
        }
    } else {
        // Without signatures any 32 bytes make an account: no curve arithmetic needed.
        let mut public = [0u8; 32];
        for (i, chunk) in public.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&mix(seed ^ mix(index) ^ (i as u64)).to_le_bytes());
        }
        Account {
            key: None,
            public: PublicKey(public),
        }
    }
}

impl Generator {
    /// A generator of `workload` blocks of `txs_per_block` transactions for `seed`;
    /// `sign` gives every transaction a real signature.
    pub fn new(workload: Workload, txs_per_block: usize, seed: u64, sign: bool) -> Self {
        let n = txs_per_block.max(1);
        let (senders, receivers): (usize, usize) = match workload {
            Workload::Independent | Workload::HotSender(_) | Workload::HotReceiver(_) => {
                (n + 1, n + 1)
            }
            Workload::P2p(k) | Workload::Token(k) => (k as usize, 0),
            Workload::Mixed => (n, n / 2 + 2),
            Workload::Amm | Workload::Counter => (n + 1, 0),
        };
        let accounts: Vec<Account> = (0..(senders + receivers) as u64)
            .map(|i| account(seed, i, sign))
            .collect();
        Self {
            workload,
            txs_per_block,
            sign,
            rng: Rng::new(seed),
            senders: (0..senders).collect(),
            receivers: (senders..senders + receivers).collect(),
            accounts,
            nonces: HashMap::new(),
        }
    }

    /// The genesis state: every sender funded in TOS (and the second asset for `mixed`);
    /// for a contract workload, its contract deployed (the token's holders funded, the
    /// pool filled).
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
                        StateKey::ContractData(
                            TOKEN_CONTRACT,
                            DataKey::new(&self.accounts[s].public.0),
                        ),
                        StateValue::data(Some(
                            programs::token_balance(TOKEN_GENESIS_BALANCE).into(),
                        )),
                    ));
                }
            }
            Workload::Amm => {
                changes.push((
                    StateKey::ContractModule(AMM_CONTRACT),
                    module(programs::amm())?,
                ));
                for asset in [TOS_ASSET, SECOND_ASSET] {
                    changes.push((
                        StateKey::ContractBalance(AMM_CONTRACT, asset),
                        StateValue::Number(AMM_GENESIS_RESERVE),
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
            let public = self.accounts[s].public;
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
        Ok(changes)
    }

    /// Sets the nonces the next block starts from (read from storage when continuing).
    pub fn set_nonce(&mut self, account: PublicKey, nonce: u64) {
        self.nonces.insert(account, nonce);
    }

    /// Every account that may send.
    pub fn sender_keys(&self) -> Vec<PublicKey> {
        self.senders
            .iter()
            .map(|&s| self.accounts[s].public)
            .collect()
    }

    fn next_nonce(&mut self, account: PublicKey) -> u64 {
        let nonce = self.nonces.entry(account).or_insert(0);
        let current = *nonce;
        *nonce += 1;
        current
    }

    fn tx(&mut self, from: usize, nonce: u64, fee: u64, data: TransactionType) -> Transaction {
        let source = self.accounts[from].public;
        let mut tx = Transaction {
            version: 0,
            source,
            nonce,
            fee,
            data,
            signature: None,
        };
        if self.sign {
            if let Some(key) = &self.accounts[from].key {
                tx.signature = Some(key.sign(&tx.signing_bytes()));
            }
        }
        tx
    }

    fn pay(&mut self, from: usize, to: usize, amount: u64) -> Transaction {
        let nonce = self.next_nonce(self.accounts[from].public);
        let data = TransactionType::Transfers(vec![TransferPayload {
            asset: TOS_ASSET,
            destination: self.accounts[to].public,
            amount,
            extra_data: None,
        }]);
        self.tx(from, nonce, 1_000, data)
    }

    /// The next block's transactions.
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
                    let to = self.accounts[self.senders[to]].public;
                    let parameters = programs::token_transfer(&to, amount);
                    txs.push(self.call(self.senders[from], TOKEN_CONTRACT, parameters, vec![]));
                }
            }
            Workload::Amm => {
                for i in 0..n {
                    let deposit = vec![(TOS_ASSET, 1 + self.rng.below(1_000))];
                    let parameters = programs::amm_swap(&SECOND_ASSET);
                    txs.push(self.call(self.senders[i], AMM_CONTRACT, parameters, deposit));
                }
            }
            Workload::Counter => {
                for i in 0..n {
                    txs.push(self.call(self.senders[i], COUNTER_CONTRACT, vec![], vec![]));
                }
            }
        }
        txs
    }

    /// A call of `contract`'s main entry from `from`.
    fn call(
        &mut self,
        from: usize,
        contract: Hash,
        parameters: Vec<Vec<u8>>,
        deposits: Vec<(Hash, u64)>,
    ) -> Transaction {
        let nonce = self.next_nonce(self.accounts[from].public);
        let data = TransactionType::InvokeContract(Box::new(InvokeContractPayload {
            contract,
            deposits,
            entry_id: programs::ENTRY_MAIN,
            max_gas: CONTRACT_MAX_GAS,
            parameters,
        }));
        self.tx(from, nonce, 1_000, data)
    }

    /// A Zipf-distributed receiver: receiver `r` with probability ∝ 1/(r+1).
    fn zipf_receiver(&mut self) -> usize {
        let count = self.receivers.len() as f64;
        // Inverse CDF of the continuous 1/x law on [1, count + 1].
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let r = ((count + 1.0).powf(u) - 1.0) as usize;
        self.receivers[r.min(self.receivers.len() - 1)]
    }

    fn mixed_block(&mut self, txs: &mut Vec<Transaction>) {
        let n = self.txs_per_block;
        for i in 0..n {
            let from = self.senders[i % self.senders.len()];
            let public = self.accounts[from].public;
            let kind = self.rng.below(100);
            let tx = if kind < 2 {
                // Fails: a nonce from the future (not consumed).
                let nonce = self.nonces.get(&public).copied().unwrap_or(0) + 5;
                let to = self.zipf_receiver();
                let data = TransactionType::Transfers(vec![TransferPayload {
                    asset: TOS_ASSET,
                    destination: self.accounts[to].public,
                    amount: 1,
                    extra_data: None,
                }]);
                self.tx(from, nonce, 1_000, data)
            } else if kind < 4 {
                // Fails: more than the sender holds (the nonce is not consumed either).
                let nonce = self.nonces.get(&public).copied().unwrap_or(0);
                let to = self.zipf_receiver();
                let data = TransactionType::Transfers(vec![TransferPayload {
                    asset: TOS_ASSET,
                    destination: self.accounts[to].public,
                    amount: u64::MAX / 2,
                    extra_data: None,
                }]);
                self.tx(from, nonce, 1_000, data)
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
                    1_000,
                    TransactionType::Burn(BurnPayload { asset, amount }),
                )
            } else if kind < 15 {
                let nonce = self.next_nonce(public);
                let count = 1 + self.rng.below(3) as usize;
                let mut unique: Vec<PublicKey> = Vec::with_capacity(count);
                for _ in 0..count {
                    let r = self.zipf_receiver();
                    unique.push(self.accounts[r].public);
                }
                unique.sort_unstable();
                unique.dedup();
                self.tx(
                    from,
                    nonce,
                    1_000,
                    TransactionType::MultiSig(MultiSigPayload {
                        threshold: 1,
                        participants: unique,
                    }),
                )
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
                            destination: self.accounts[to].public,
                            amount: 1 + self.rng.below(10_000),
                            extra_data: None,
                        }
                    })
                    .collect();
                self.tx(from, nonce, 1_000, TransactionType::Transfers(transfers))
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
        let a = Generator::new(Workload::P2p(10), 100, 7, false).block();
        let b = Generator::new(Workload::P2p(10), 100, 7, false).block();
        assert_eq!(a, b);
        let mut seen: HashMap<PublicKey, u64> = HashMap::new();
        for tx in &a {
            let next = seen.entry(tx.source).or_insert(0);
            assert_eq!(tx.nonce, *next);
            *next += 1;
        }
    }
}
