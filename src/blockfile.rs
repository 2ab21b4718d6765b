//! The block file format (JSON lines), and the results and state JSON (docs/FORMATS.md).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use tos_adapter::{
    from_hex, to_hex, BlockMode, DataKey, Global, Hash, PublicKey, StateKey, StateValue,
    Transaction, TxError, TxResult, DEVNET_CHAIN_ID,
};

/// The longest line `replay` reads: a larger one is refused before it is parsed, so a
/// hostile file cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 256 << 20;

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

/// Decodes every line of `data` as `replay` would, to the transactions, discarding the
/// result: what the fuzz targets and their regression corpus exercise. Never panics. How
/// many lines decoded whole (a fuzzer keeps inputs that get that far).
pub fn decode_for_fuzzing(data: &[u8]) -> usize {
    let Ok(text) = std::str::from_utf8(data) else {
        return 0;
    };
    let mut decoded = 0;
    for line in text.lines() {
        let whole = match parse_line(line) {
            // Every transaction decoded, even after one fails.
            Ok(Line::Block { transactions, .. }) => {
                transactions
                    .iter()
                    .filter(|tx| transaction(tx).is_err())
                    .count()
                    == 0
            }
            Ok(Line::Genesis {
                network_chain_id,
                total_supply,
                accounts,
                contracts,
            }) => genesis_changes(network_chain_id, total_supply, &accounts, &contracts).is_ok(),
            Err(_) => false,
        };
        decoded += usize::from(whole);
    }
    decoded
}

fn devnet() -> u64 {
    u64::from(DEVNET_CHAIN_ID)
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A JSON value that refuses an object key given twice, anywhere inside it.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = StrictValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::from(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::String(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::String(v)))
            }
            fn visit_unit<E>(self) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Null))
            }
            fn visit_none<E>(self) -> Result<StrictValue, E> {
                Ok(StrictValue(Value::Null))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<StrictValue, A::Error> {
                let mut out = Vec::new();
                while let Some(StrictValue(v)) = seq.next_element()? {
                    out.push(v);
                }
                Ok(StrictValue(Value::Array(out)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<StrictValue, A::Error> {
                let mut out = serde_json::Map::new();
                while let Some((key, StrictValue(value))) =
                    map.next_entry::<String, StrictValue>()?
                {
                    if out.insert(key.clone(), value).is_some() {
                        return Err(serde::de::Error::custom(format!("duplicate key `{key}`")));
                    }
                }
                Ok(StrictValue(Value::Object(out)))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

fn strict_values<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Value>, D::Error> {
    let values: Vec<StrictValue> = Vec::deserialize(deserializer)?;
    Ok(values.into_iter().map(|v| v.0).collect())
}

/// The keys a transaction object may have: `wire_hex` and TOS's JSON form's.
const TRANSACTION_KEYS: [&str; 13] = [
    "wire_hex",
    "version",
    "chain_id",
    "source",
    "tx_type",
    "payload",
    "fee",
    "fee_type",
    "nonce",
    "reference_hash",
    "reference_topoheight",
    "signature",
    "multisig",
];

/// A block's mode as the file writes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeJson {
    /// [`BlockMode::Dag`].
    #[default]
    Dag,
    /// [`BlockMode::Accept`].
    Accept,
}

impl From<ModeJson> for BlockMode {
    fn from(mode: ModeJson) -> Self {
        match mode {
            ModeJson::Dag => BlockMode::Dag,
            ModeJson::Accept => BlockMode::Accept,
        }
    }
}

/// One line of a block file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Line {
    /// The state at topoheight 0.
    Genesis {
        /// The chain id every transaction must carry (default 3, devnet).
        #[serde(default = "devnet")]
        network_chain_id: u64,
        /// The total supply (default 0; no transaction changes it).
        #[serde(default, skip_serializing_if = "is_zero")]
        total_supply: u64,
        /// Funded accounts.
        accounts: Vec<GenesisAccount>,
        /// Deployed contracts (absent when none).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        contracts: Vec<GenesisContract>,
    },
    /// A block to execute and commit at `topoheight`.
    Block {
        /// Its topoheight.
        topoheight: u64,
        /// DAG execution (default) or block acceptance.
        #[serde(default)]
        mode: ModeJson,
        /// Its transactions: `{"wire_hex"}`, TOS's JSON form, or both.
        #[serde(deserialize_with = "strict_values")]
        transactions: Vec<Value>,
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

fn key(s: &str, what: &str) -> Result<PublicKey> {
    PublicKey::from_hex(s).with_context(|| format!("{what} `{s}` is not 64 hex characters"))
}

fn hash(s: &str, what: &str) -> Result<Hash> {
    Hash::from_hex(s).with_context(|| format!("{what} `{s}` is not 64 hex characters"))
}

/// A transaction of a block line: its wire bytes (`"wire_hex"`), TOS's JSON form, or
/// both, which must then be the same transaction.
pub fn transaction(value: &Value) -> Result<Transaction> {
    let object = value
        .as_object()
        .context("a transaction is not an object")?;
    if let Some(unknown) = object
        .keys()
        .find(|k| !TRANSACTION_KEYS.contains(&k.as_str()))
    {
        bail!("unknown field `{unknown}` in a transaction");
    }
    let from_wire = match object.get("wire_hex") {
        None | Some(Value::Null) => None,
        Some(Value::String(hex)) => {
            let bytes = from_hex(hex).context("wire_hex is not hex")?;
            Some(Transaction::from_wire(&bytes)?)
        }
        Some(_) => bail!("wire_hex is not a string"),
    };
    let has_json = object.keys().any(|k| k != "wire_hex");
    let from_json = if has_json {
        let mut json = value.clone();
        if let Some(map) = json.as_object_mut() {
            map.remove("wire_hex");
        }
        Some(tos_adapter::tx::json::from_json(&json)?)
    } else {
        None
    };
    match (from_wire, from_json) {
        (Some(wire), Some(json)) if wire != json => {
            bail!("wire_hex and the JSON form are different transactions")
        }
        (Some(wire), _) => Ok(wire),
        (None, Some(json)) => Ok(json),
        (None, None) => bail!("a transaction needs wire_hex or TOS's JSON form"),
    }
}

/// A transaction as a block line writes it: its wire bytes.
pub fn transaction_json(tx: &Transaction) -> Value {
    json!({ "wire_hex": to_hex(&tx.to_wire()) })
}

/// The genesis line as state changes. Every listed account exists (its nonce is stored,
/// zero or not).
pub fn genesis_changes(
    network_chain_id: u64,
    total_supply: u64,
    accounts: &[GenesisAccount],
    contracts: &[GenesisContract],
) -> Result<Vec<(StateKey, StateValue)>> {
    let mut changes = vec![(
        StateKey::Global(Global::NetworkChainId),
        StateValue::Number(network_chain_id),
    )];
    if total_supply > 0 {
        changes.push((
            StateKey::Global(Global::TotalSupply),
            StateValue::Number(total_supply),
        ));
    }
    for c in contracts {
        let address = hash(&c.address, "contract address")?;
        let hex = |s: &str, what: &str| {
            from_hex(s).with_context(|| format!("contract {what} is not hex"))
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
        changes.push((StateKey::Nonce(account), StateValue::Number(a.nonce)));
        for (asset, &amount) in &a.balances {
            changes.push((
                StateKey::Balance(account, hash(asset, "asset")?),
                StateValue::Number(amount),
            ));
        }
    }
    Ok(changes)
}

/// The genesis line for state changes (accounts, contracts, the chain id).
pub fn genesis_line(changes: &[(StateKey, StateValue)]) -> Line {
    let mut accounts: BTreeMap<PublicKey, GenesisAccount> = BTreeMap::new();
    let mut contracts: BTreeMap<Hash, GenesisContract> = BTreeMap::new();
    let mut network_chain_id = devnet();
    let mut total_supply = 0;
    for (k, v) in changes {
        let contract = match k {
            StateKey::ContractModule(c)
            | StateKey::ContractData(c, _)
            | StateKey::ContractBalance(c, _) => c,
            StateKey::Global(global) => {
                if let StateValue::Number(n) = v {
                    match global {
                        Global::NetworkChainId => network_chain_id = *n,
                        Global::TotalSupply => total_supply = *n,
                        _ => {}
                    }
                }
                continue;
            }
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
            (StateKey::ContractModule(_), StateValue::Module(m)) => entry.module = to_hex(m),
            (StateKey::ContractData(_, key), value) => {
                if let Some(Some(value)) = value.as_data() {
                    entry.storage.insert(key.to_hex(), to_hex(&value));
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
        network_chain_id,
        total_supply,
        accounts: accounts.into_values().collect(),
        contracts: contracts.into_values().collect(),
    }
}

/// One line of the results file. `block_rejected`: the transaction's block was rejected
/// in acceptance mode (`executed` false for those after the rejecting one).
pub fn result_json(
    topoheight: u64,
    index: usize,
    tx_hash: &Hash,
    result: Option<&TxResult>,
    block_rejected: bool,
) -> Value {
    let mut line = json!({
        "topoheight": topoheight,
        "index": index,
        "tx_hash": tx_hash.to_hex(),
    });
    match result {
        Some(result) => {
            line["success"] = json!(result.success());
            line["error_code"] = json!(result.code());
            line["error"] = result.error.as_ref().map_or(Value::Null, error_json);
            line["gas_used"] = json!(result.gas_used);
            if let Some(failure) = &result.call_failure {
                line["call_failure"] = json!(failure);
            }
        }
        None => {
            line["executed"] = json!(false);
            line["success"] = json!(false);
            line["error_code"] = Value::Null;
            line["error"] = Value::Null;
        }
    }
    if block_rejected {
        line["block_rejected"] = json!(true);
    }
    line
}

/// A rejection as JSON: its kind, TOS's code and its name, its message and its figures.
pub fn error_json(error: &TxError) -> Value {
    let mut value = json!({
        "kind": error.kind(),
        "code": error.code(),
        "code_name": error.code_name(),
        "message": error.to_string(),
    });
    match error {
        TxError::NonceTooLow { expected, got } | TxError::NonceTooHigh { expected, got } => {
            value["expected"] = json!(expected);
            value["got"] = json!(got);
        }
        TxError::InsufficientBalance {
            asset,
            available,
            required,
        } => {
            value["asset"] = json!(asset.to_hex());
            value["available"] = json!(available);
            value["required"] = json!(required);
        }
        TxError::InsufficientFee {
            available,
            required,
        } => {
            value["available"] = json!(available);
            value["required"] = json!(required);
        }
        TxError::ChainIdMismatch { expected, got } => {
            value["expected"] = json!(expected);
            value["got"] = json!(got);
        }
        TxError::ContractNotFound(contract) | TxError::ContractExists(contract) => {
            value["contract"] = json!(contract.to_hex())
        }
        _ => {}
    }
    value
}
