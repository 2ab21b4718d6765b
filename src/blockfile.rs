//! The block file format (JSON lines) and the results and state JSON of BLOCKS.md.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use tos_adapter::{
    BurnPayload, DataKey, DeployContractPayload, Hash, InvokeConstructorPayload,
    InvokeContractPayload, MultiSigPayload, PublicKey, Signature, StateKey, StateValue,
    Transaction, TransactionType, TransferPayload, TxError, TxResult,
};

/// The longest line `replay` reads: a larger one is refused before it is parsed, so a
/// hostile file cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 256 << 20;

/// Transfers one transaction may list in a file. The rules accept at most 500; up to this
/// many parse (and are rejected by the rules, as `TransferCount`), more make the line
/// malformed.
pub const MAX_FILE_TRANSFERS: usize = 4096;

/// Parses one line of a block file.
pub fn parse_line(line: &str) -> Result<Line> {
    Ok(serde_json::from_str(line)?)
}

/// A JSON object read into a map, refusing a key given twice.
fn unique_map<'de, D>(deserializer: D) -> Result<BTreeMap<String, u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = BTreeMap<String, u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of amounts")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((key, value)) = map.next_entry::<String, u64>()? {
                if out.insert(key.clone(), value).is_some() {
                    return Err(serde::de::Error::custom(format!("duplicate key `{key}`")));
                }
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Visitor)
}

/// A list of transfers, refusing more than [`MAX_FILE_TRANSFERS`] before reading them all.
fn bounded_transfers<'de, D>(deserializer: D) -> Result<Vec<TransferJson>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<TransferJson>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of transfers")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(transfer) = seq.next_element()? {
                if out.len() == MAX_FILE_TRANSFERS {
                    return Err(serde::de::Error::custom(format!(
                        "more than {MAX_FILE_TRANSFERS} transfers in one transaction"
                    )));
                }
                out.push(transfer);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_seq(Visitor)
}

/// Decodes every line of `data` as `replay` would, to the transactions, discarding the
/// result: what the fuzz target and its regression corpus exercise. Never panics.
pub fn decode_for_fuzzing(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in text.lines() {
        match parse_line(line) {
            Ok(Line::Block { transactions, .. }) => {
                for tx in &transactions {
                    let _ = tx.to_transaction();
                }
            }
            Ok(Line::Genesis {
                accounts,
                contracts,
            }) => {
                let _ = genesis_changes(&accounts, &contracts);
            }
            Err(_) => {}
        }
    }
}

/// One line of a block file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Line {
    /// The state at topoheight 0.
    Genesis {
        /// Funded accounts.
        accounts: Vec<GenesisAccount>,
        /// Deployed contracts (an extension of BLOCKS.md's genesis line, absent when none:
        /// what the contract workloads start from).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        contracts: Vec<GenesisContract>,
    },
    /// A block to execute and commit at `topoheight`.
    Block {
        /// Its topoheight.
        topoheight: u64,
        /// Its transactions.
        transactions: Vec<TxJson>,
    },
}

/// An account of the genesis line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// Hex public key.
    pub account: String,
    /// Its nonce.
    #[serde(default)]
    pub nonce: u64,
    /// Balance per asset (hex asset id).
    #[serde(default, deserialize_with = "unique_map")]
    pub balances: BTreeMap<String, u64>,
}

/// A contract of the genesis line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisContract {
    /// Hex address.
    pub address: String,
    /// Hex module.
    pub module: String,
    /// Storage entries: hex key (a key longer than 32 bytes as `h:` and the hex of its
    /// blake3 hash) to hex value.
    #[serde(default)]
    pub storage: BTreeMap<String, String>,
    /// Balance per asset (hex asset id).
    #[serde(default, deserialize_with = "unique_map")]
    pub balances: BTreeMap<String, u64>,
}

/// A transaction.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxJson {
    source: String,
    nonce: u64,
    fee: u64,
    #[serde(default)]
    signature: Option<String>,
    data: DataJson,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum DataJson {
    Transfers(#[serde(deserialize_with = "bounded_transfers")] Vec<TransferJson>),
    Burn(BurnJson),
    Multisig(MultisigJson),
    DeployContract(DeployJson),
    InvokeContract(InvokeJson),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConstructorJson {
    max_gas: u64,
    #[serde(default, deserialize_with = "unique_map")]
    deposits: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployJson {
    module: String,
    #[serde(default)]
    invoke: Option<ConstructorJson>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InvokeJson {
    contract: String,
    entry_id: u16,
    max_gas: u64,
    #[serde(default, deserialize_with = "unique_map")]
    deposits: BTreeMap<String, u64>,
    #[serde(default)]
    parameters: Vec<String>,
}

fn deposits(map: &BTreeMap<String, u64>) -> Result<Vec<(Hash, u64)>> {
    map.iter()
        .map(|(asset, &amount)| Ok((hash(asset, "deposit asset")?, amount)))
        .collect()
}

fn deposits_json(deposits: &[(Hash, u64)]) -> BTreeMap<String, u64> {
    deposits
        .iter()
        .map(|(asset, amount)| (asset.to_hex(), *amount))
        .collect()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferJson {
    asset: String,
    destination: String,
    amount: u64,
    #[serde(default)]
    extra_data: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BurnJson {
    asset: String,
    amount: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MultisigJson {
    threshold: u8,
    participants: Vec<String>,
}

fn key(s: &str, what: &str) -> Result<PublicKey> {
    PublicKey::from_hex(s).with_context(|| format!("{what} `{s}` is not 64 hex characters"))
}

fn hash(s: &str, what: &str) -> Result<Hash> {
    Hash::from_hex(s).with_context(|| format!("{what} `{s}` is not 64 hex characters"))
}

impl TxJson {
    /// The transaction, with every hex field checked.
    pub fn to_transaction(&self) -> Result<Transaction> {
        let data = match &self.data {
            DataJson::Transfers(transfers) => TransactionType::Transfers(
                transfers
                    .iter()
                    .map(|t| {
                        Ok(TransferPayload {
                            asset: hash(&t.asset, "asset")?,
                            destination: key(&t.destination, "destination")?,
                            amount: t.amount,
                            extra_data: t
                                .extra_data
                                .as_deref()
                                .map(tos_adapter::types::from_hex)
                                .transpose()
                                .context("extra_data is not hex")?,
                        })
                    })
                    .collect::<Result<_>>()?,
            ),
            DataJson::Burn(b) => TransactionType::Burn(BurnPayload {
                asset: hash(&b.asset, "asset")?,
                amount: b.amount,
            }),
            DataJson::Multisig(m) => TransactionType::MultiSig(MultiSigPayload {
                threshold: m.threshold,
                participants: m
                    .participants
                    .iter()
                    .map(|p| key(p, "participant"))
                    .collect::<Result<_>>()?,
            }),
            DataJson::DeployContract(d) => {
                TransactionType::DeployContract(Box::new(DeployContractPayload {
                    module: tos_adapter::types::from_hex(&d.module).context("module is not hex")?,
                    invoke: d
                        .invoke
                        .as_ref()
                        .map(|c| -> Result<_> {
                            Ok(InvokeConstructorPayload {
                                max_gas: c.max_gas,
                                deposits: deposits(&c.deposits)?,
                            })
                        })
                        .transpose()?,
                }))
            }
            DataJson::InvokeContract(i) => {
                TransactionType::InvokeContract(Box::new(InvokeContractPayload {
                    contract: hash(&i.contract, "contract")?,
                    deposits: deposits(&i.deposits)?,
                    entry_id: i.entry_id,
                    max_gas: i.max_gas,
                    parameters: i
                        .parameters
                        .iter()
                        .map(|p| tos_adapter::types::from_hex(p).context("a parameter is not hex"))
                        .collect::<Result<_>>()?,
                }))
            }
        };
        let signature = match &self.signature {
            None => None,
            Some(hex) => {
                let bytes = tos_adapter::types::from_hex(hex).context("signature is not hex")?;
                let bytes: [u8; 64] = bytes.try_into().map_err(|b: Vec<u8>| {
                    anyhow::anyhow!("signature has {} bytes, expected 64", b.len())
                })?;
                Some(Signature::from_bytes(&bytes))
            }
        };
        Ok(Transaction {
            version: 0,
            source: key(&self.source, "source")?,
            nonce: self.nonce,
            fee: self.fee,
            data,
            signature,
        })
    }

    /// The JSON form of `tx`.
    pub fn from_transaction(tx: &Transaction) -> Self {
        let data = match &tx.data {
            TransactionType::Transfers(transfers) => DataJson::Transfers(
                transfers
                    .iter()
                    .map(|t| TransferJson {
                        asset: t.asset.to_hex(),
                        destination: t.destination.to_hex(),
                        amount: t.amount,
                        extra_data: t.extra_data.as_deref().map(tos_adapter::types::to_hex),
                    })
                    .collect(),
            ),
            TransactionType::Burn(b) => DataJson::Burn(BurnJson {
                asset: b.asset.to_hex(),
                amount: b.amount,
            }),
            TransactionType::MultiSig(m) => DataJson::Multisig(MultisigJson {
                threshold: m.threshold,
                participants: m.participants.iter().map(PublicKey::to_hex).collect(),
            }),
            TransactionType::DeployContract(d) => DataJson::DeployContract(DeployJson {
                module: tos_adapter::types::to_hex(&d.module),
                invoke: d.invoke.as_ref().map(|c| ConstructorJson {
                    max_gas: c.max_gas,
                    deposits: deposits_json(&c.deposits),
                }),
            }),
            TransactionType::InvokeContract(i) => DataJson::InvokeContract(InvokeJson {
                contract: i.contract.to_hex(),
                entry_id: i.entry_id,
                max_gas: i.max_gas,
                deposits: deposits_json(&i.deposits),
                parameters: i
                    .parameters
                    .iter()
                    .map(|p| tos_adapter::types::to_hex(p))
                    .collect(),
            }),
        };
        Self {
            source: tx.source.to_hex(),
            nonce: tx.nonce,
            fee: tx.fee,
            signature: tx
                .signature
                .map(|s| tos_adapter::types::to_hex(&s.to_bytes())),
            data,
        }
    }
}

/// The genesis line's accounts as state changes.
pub fn genesis_changes(
    accounts: &[GenesisAccount],
    contracts: &[GenesisContract],
) -> Result<Vec<(StateKey, StateValue)>> {
    let mut changes = Vec::new();
    for c in contracts {
        let address = hash(&c.address, "contract address")?;
        let hex = |s: &str, what: &str| {
            tos_adapter::types::from_hex(s).with_context(|| format!("contract {what} is not hex"))
        };
        changes.push((
            StateKey::ContractModule(address),
            StateValue::Module(hex(&c.module, "module")?.into()),
        ));
        for (key, value) in &c.storage {
            changes.push((
                StateKey::ContractData(
                    address,
                    DataKey::from_hex(key).context("contract storage key is not hex")?,
                ),
                StateValue::data(Some(hex(value, "storage value")?.into())),
            ));
        }
        for (asset, &amount) in &c.balances {
            changes.push((
                StateKey::ContractBalance(address, hash(asset, "asset")?),
                StateValue::Number(amount),
            ));
        }
    }
    for a in accounts {
        let account = key(&a.account, "account")?;
        if a.nonce > 0 {
            changes.push((StateKey::Nonce(account), StateValue::Number(a.nonce)));
        }
        for (asset, &amount) in &a.balances {
            changes.push((
                StateKey::Balance(account, hash(asset, "asset")?),
                StateValue::Number(amount),
            ));
        }
    }
    Ok(changes)
}

/// The genesis line for state changes (balances and nonces).
pub fn genesis_line(changes: &[(StateKey, StateValue)]) -> Line {
    let mut accounts: BTreeMap<PublicKey, GenesisAccount> = BTreeMap::new();
    let mut contracts: BTreeMap<Hash, GenesisContract> = BTreeMap::new();
    let hex = tos_adapter::types::to_hex;
    for (k, v) in changes {
        let contract = match k {
            StateKey::ContractModule(c)
            | StateKey::ContractData(c, _)
            | StateKey::ContractBalance(c, _) => c,
            _ => continue,
        };
        let entry = contracts
            .entry(*contract)
            .or_insert_with(|| GenesisContract {
                address: contract.to_hex(),
                module: String::new(),
                storage: BTreeMap::new(),
                balances: BTreeMap::new(),
            });
        match (k, v) {
            (StateKey::ContractModule(_), StateValue::Module(m)) => entry.module = hex(m),
            (StateKey::ContractData(_, key), value) => {
                if let Some(Some(value)) = value.as_data() {
                    entry.storage.insert(key.to_hex(), hex(&value));
                }
            }
            (StateKey::ContractBalance(_, asset), StateValue::Number(n)) => {
                entry.balances.insert(asset.to_hex(), *n);
            }
            _ => {}
        }
    }
    for (k, v) in changes {
        let StateValue::Number(n) = v else { continue };
        let (account, asset) = match k {
            StateKey::Nonce(a) => (*a, None),
            StateKey::Balance(a, asset) => (*a, Some(*asset)),
            _ => continue,
        };
        let entry = accounts.entry(account).or_insert_with(|| GenesisAccount {
            account: account.to_hex(),
            nonce: 0,
            balances: BTreeMap::new(),
        });
        match asset {
            None => entry.nonce = *n,
            Some(asset) => {
                entry.balances.insert(asset.to_hex(), *n);
            }
        }
    }
    Line::Genesis {
        accounts: accounts.into_values().collect(),
        contracts: contracts.into_values().collect(),
    }
}

/// One line of the results file.
pub fn result_json(topoheight: u64, index: usize, result: &TxResult) -> Value {
    json!({
        "topoheight": topoheight,
        "index": index,
        "tx_hash": result.tx_hash.to_hex(),
        "success": result.success(),
        "error": result.error.as_ref().map(error_json),
        "fee_paid": result.fee_paid,
        "gas_used": result.gas_used,
    })
}

/// A rejection as JSON: its kind, its fields and its message.
pub fn error_json(error: &TxError) -> Value {
    let mut value = json!({ "kind": error.kind(), "message": error.to_string() });
    match error {
        TxError::InvalidNonce { expected, got } => {
            value["expected"] = json!(expected);
            value["got"] = json!(got);
        }
        TxError::InsufficientFunds {
            asset,
            available,
            required,
        } => {
            value["asset"] = json!(asset.to_hex());
            value["available"] = json!(available);
            value["required"] = json!(required);
        }
        TxError::TransferCount { count } => value["count"] = json!(count),
        TxError::ContractNotFound(contract) => value["contract"] = json!(contract.to_hex()),
        TxError::ContractFailed { reason } => value["reason"] = json!(reason),
        _ => {}
    }
    value
}
