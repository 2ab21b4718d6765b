//! The JSON form of a transaction, as TOS's executable spec writes it in its conformance
//! vectors:
//!
//! ```json
//! {"version": 1, "chain_id": 3, "source": "<hex32>", "tx_type": "transfers",
//!  "payload": [{"asset": "<hex32>", "destination": "<hex32>", "amount": 100, "extra_data": null}],
//!  "fee": 5000, "fee_type": 0, "nonce": 0,
//!  "reference_hash": "<hex32>", "reference_topoheight": 0, "signature": "<hex64 bytes>"}
//! ```
//!
//! `tx_type` and `payload`: `"burn"` with `{"asset", "amount"}`; `"transfers"` with a list
//! of `{"asset", "destination", "amount", "extra_data"}` (hex or null); `"multisig"` with
//! `{"threshold", "participants"}`; `"invoke_contract"` with `{"contract", "deposits":
//! [{"asset", "amount"}], "entry_id", "max_gas", "parameters"}`; `"deploy_contract"` with
//! `{"module", "invoke": null | {"max_gas", "deposits"}}`. A parameter is a value cell:
//! `{"kind": "default", "value": null | {"type": "u64", "value": 5}}` (types `u8` to `u128`,
//! `u256` as 64 hex digits, `bool`, `string`, `range` with a pair), `{"kind": "bytes",
//! "value": "<hex>"}`, `{"kind": "object", "value": [cells]}`, `{"kind": "map", "value":
//! [[key, value], ...]}`. A null `signature` or `reference_hash` is all zeros. One
//! extension: `"multisig": [{"id": 0, "signature": "<hex64 bytes>"}]`, the participants'
//! signatures (TOS's JSON has no field for them).
//!
//! A transaction read from JSON obeys the wire format's rules (it is checked by encoding
//! and decoding it): repeated deposit assets collapse as the wire's do (first position,
//! last amount), as do repeated multisig participants (first position).

use super::{
    BurnPayload, DeployContractPayload, Deposits, FeeType, InvokeConstructorPayload,
    InvokeContractPayload, MultiSigPayload, MultiSigSignature, Primitive, Reference, Transaction,
    TransactionType, TransferPayload, ValueCell,
};
use crate::crypto::Signature;
use crate::primitives::{from_hex, to_hex, Hash, PublicKey};
use serde_json::{json, Map, Value};

/// JSON that is not a transaction: the field, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("transaction JSON, {field}: {reason}")]
pub struct JsonError {
    /// Where (`payload[0].amount`).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

fn error<T>(field: &str, reason: impl Into<String>) -> Result<T, JsonError> {
    Err(JsonError {
        field: field.to_owned(),
        reason: reason.into(),
    })
}

type Parsed<T> = Result<T, JsonError>;

fn get<'v>(object: &'v Map<String, Value>, field: &str, path: &str) -> Parsed<&'v Value> {
    match object.get(field) {
        Some(value) => Ok(value),
        None => error(&join(path, field), "missing"),
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn object<'v>(value: &'v Value, path: &str) -> Parsed<&'v Map<String, Value>> {
    value
        .as_object()
        .map_or_else(|| error(path, "not an object"), Ok)
}

fn array<'v>(value: &'v Value, path: &str) -> Parsed<&'v Vec<Value>> {
    value
        .as_array()
        .map_or_else(|| error(path, "not a list"), Ok)
}

fn unsigned(value: &Value, path: &str) -> Parsed<u64> {
    value
        .as_u64()
        .map_or_else(|| error(path, "not an integer from 0 to 2^64-1"), Ok)
}

fn small<T: TryFrom<u64>>(value: &Value, path: &str) -> Parsed<T> {
    T::try_from(unsigned(value, path)?).map_or_else(|_| error(path, "out of range"), Ok)
}

fn bytes(value: &Value, path: &str) -> Parsed<Vec<u8>> {
    match value.as_str().map(from_hex) {
        Some(Ok(bytes)) => Ok(bytes),
        Some(Err(e)) => error(path, e.to_string()),
        None => error(path, "not a hex string"),
    }
}

fn fixed<const N: usize>(value: &Value, path: &str) -> Parsed<[u8; N]> {
    let bytes = bytes(value, path)?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_or_else(|_| error(path, format!("{len} bytes, expected {N}")), Ok)
}

fn hash(value: &Value, path: &str) -> Parsed<Hash> {
    Ok(Hash(fixed(value, path)?))
}

fn key(value: &Value, path: &str) -> Parsed<PublicKey> {
    Ok(PublicKey(fixed(value, path)?))
}

fn signature(value: &Value, path: &str) -> Parsed<Signature> {
    if value.is_null() {
        return Ok(Signature::ZERO);
    }
    Signature::from_bytes(&fixed(value, path)?)
        .map_or_else(|| error(path, "a scalar is not canonical"), Ok)
}

fn deposits(value: &Value, path: &str) -> Parsed<Deposits> {
    let mut out: Deposits = Vec::new();
    if value.is_null() {
        return Ok(out);
    }
    for (i, entry) in array(value, path)?.iter().enumerate() {
        let path = format!("{path}[{i}]");
        let entry = object(entry, &path)?;
        let asset = hash(get(entry, "asset", &path)?, &join(&path, "asset"))?;
        let amount = unsigned(get(entry, "amount", &path)?, &join(&path, "amount"))?;
        match out.iter_mut().find(|(a, _)| *a == asset) {
            Some(existing) => existing.1 = amount,
            None => out.push((asset, amount)),
        }
    }
    Ok(out)
}

fn primitive(value: &Value, path: &str) -> Parsed<Primitive> {
    if value.is_null() {
        return Ok(Primitive::Null);
    }
    let object = object(value, path)?;
    let kind = get(object, "type", path)?.as_str().unwrap_or_default();
    let inner_path = join(path, "value");
    let inner = || get(object, "value", path);
    Ok(match kind {
        "null" => Primitive::Null,
        "u8" => Primitive::U8(small(inner()?, &inner_path)?),
        "u16" => Primitive::U16(small(inner()?, &inner_path)?),
        "u32" => Primitive::U32(small(inner()?, &inner_path)?),
        "u64" => Primitive::U64(unsigned(inner()?, &inner_path)?),
        "u128" => Primitive::U128(match inner()? {
            Value::String(s) => s
                .parse()
                .map_or_else(|_| error(&inner_path, "not a u128"), Ok)?,
            other => u128::from(unsigned(other, &inner_path)?),
        }),
        "u256" => Primitive::U256(fixed(inner()?, &inner_path)?),
        "bool" => match inner()?.as_bool() {
            Some(b) => Primitive::Bool(b),
            None => return error(&inner_path, "not a bool"),
        },
        "string" => match inner()?.as_str() {
            Some(s) => Primitive::String(s.to_owned()),
            None => return error(&inner_path, "not a string"),
        },
        "range" => {
            let pair = array(inner()?, &inner_path)?;
            let [low, high] = pair.as_slice() else {
                return error(&inner_path, "a range is a pair");
            };
            Primitive::Range(
                Box::new(primitive(low, &format!("{inner_path}[0]"))?),
                Box::new(primitive(high, &format!("{inner_path}[1]"))?),
            )
        }
        other => {
            return error(
                &join(path, "type"),
                format!("unknown primitive type {other:?}"),
            )
        }
    })
}

fn cell(value: &Value, path: &str) -> Parsed<ValueCell> {
    let object = object(value, path)?;
    let kind = get(object, "kind", path)?.as_str().unwrap_or_default();
    let inner_path = join(path, "value");
    let inner = object.get("value").unwrap_or(&Value::Null);
    Ok(match kind {
        "default" => ValueCell::Default(primitive(inner, &inner_path)?),
        "bytes" => ValueCell::Bytes(bytes(inner, &inner_path)?),
        "object" => ValueCell::Object(
            array(inner, &inner_path)?
                .iter()
                .enumerate()
                .map(|(i, item)| cell(item, &format!("{inner_path}[{i}]")))
                .collect::<Parsed<_>>()?,
        ),
        "map" => ValueCell::Map(
            array(inner, &inner_path)?
                .iter()
                .enumerate()
                .map(|(i, pair)| {
                    let path = format!("{inner_path}[{i}]");
                    match array(pair, &path)?.as_slice() {
                        [k, v] => Ok((
                            cell(k, &format!("{path}[0]"))?,
                            cell(v, &format!("{path}[1]"))?,
                        )),
                        _ => error(&path, "a map entry is a pair"),
                    }
                })
                .collect::<Parsed<_>>()?,
        ),
        other => return error(&join(path, "kind"), format!("unknown cell kind {other:?}")),
    })
}

fn payload(tx_type: &str, value: &Value) -> Parsed<TransactionType> {
    let path = "payload";
    Ok(match tx_type {
        "burn" => {
            let p = object(value, path)?;
            TransactionType::Burn(BurnPayload {
                asset: hash(get(p, "asset", path)?, "payload.asset")?,
                amount: unsigned(get(p, "amount", path)?, "payload.amount")?,
            })
        }
        "transfers" => TransactionType::Transfers(
            array(value, path)?
                .iter()
                .enumerate()
                .map(|(i, entry)| {
                    let path = format!("payload[{i}]");
                    let t = object(entry, &path)?;
                    let extra = t.get("extra_data").unwrap_or(&Value::Null);
                    Ok(TransferPayload {
                        asset: hash(get(t, "asset", &path)?, &join(&path, "asset"))?,
                        destination: key(
                            get(t, "destination", &path)?,
                            &join(&path, "destination"),
                        )?,
                        amount: unsigned(get(t, "amount", &path)?, &join(&path, "amount"))?,
                        extra_data: match extra {
                            Value::Null => None,
                            other => Some(bytes(other, &join(&path, "extra_data"))?),
                        },
                    })
                })
                .collect::<Parsed<_>>()?,
        ),
        "multisig" => {
            let p = object(value, path)?;
            let mut participants: Vec<PublicKey> = Vec::new();
            if let Some(list) = p.get("participants").filter(|v| !v.is_null()) {
                for (i, item) in array(list, "payload.participants")?.iter().enumerate() {
                    let participant = key(item, &format!("payload.participants[{i}]"))?;
                    if !participants.contains(&participant) {
                        participants.push(participant);
                    }
                }
            }
            TransactionType::MultiSig(MultiSigPayload {
                threshold: small(get(p, "threshold", path)?, "payload.threshold")?,
                participants,
            })
        }
        "invoke_contract" => {
            let p = object(value, path)?;
            let parameters = match p.get("parameters") {
                None | Some(Value::Null) => Vec::new(),
                Some(list) => array(list, "payload.parameters")?
                    .iter()
                    .enumerate()
                    .map(|(i, c)| cell(c, &format!("payload.parameters[{i}]")))
                    .collect::<Parsed<_>>()?,
            };
            TransactionType::InvokeContract(Box::new(InvokeContractPayload {
                contract: hash(get(p, "contract", path)?, "payload.contract")?,
                deposits: deposits(
                    p.get("deposits").unwrap_or(&Value::Null),
                    "payload.deposits",
                )?,
                entry_id: small(get(p, "entry_id", path)?, "payload.entry_id")?,
                max_gas: unsigned(get(p, "max_gas", path)?, "payload.max_gas")?,
                parameters,
            }))
        }
        "deploy_contract" => {
            let p = object(value, path)?;
            let invoke = match p.get("invoke") {
                None | Some(Value::Null) => None,
                Some(invoke) => {
                    let i = object(invoke, "payload.invoke")?;
                    Some(InvokeConstructorPayload {
                        max_gas: unsigned(
                            get(i, "max_gas", "payload.invoke")?,
                            "payload.invoke.max_gas",
                        )?,
                        deposits: deposits(
                            i.get("deposits").unwrap_or(&Value::Null),
                            "payload.invoke.deposits",
                        )?,
                    })
                }
            };
            TransactionType::DeployContract(Box::new(DeployContractPayload {
                module: bytes(get(p, "module", path)?, "payload.module")?,
                invoke,
            }))
        }
        other => return error("tx_type", format!("unknown or unsupported type {other:?}")),
    })
}

/// A transaction from its JSON form.
pub fn from_json(value: &Value) -> Parsed<Transaction> {
    let tx = object(value, "")?;
    let tx_type = get(tx, "tx_type", "")?
        .as_str()
        .map_or_else(|| error("tx_type", "not a string"), Ok)?;
    let fee_type = match unsigned(get(tx, "fee_type", "")?, "fee_type")? {
        0 => FeeType::Tos,
        2 => FeeType::Uno,
        other => return error("fee_type", format!("unsupported fee type {other}")),
    };
    let multisig = match tx.get("multisig") {
        None | Some(Value::Null) => None,
        Some(list) => Some(
            array(list, "multisig")?
                .iter()
                .enumerate()
                .map(|(i, entry)| {
                    let path = format!("multisig[{i}]");
                    let entry = object(entry, &path)?;
                    Ok(MultiSigSignature {
                        id: small(get(entry, "id", &path)?, &join(&path, "id"))?,
                        signature: signature(
                            get(entry, "signature", &path)?,
                            &join(&path, "signature"),
                        )?,
                    })
                })
                .collect::<Parsed<_>>()?,
        ),
    };
    let reference_hash = match tx.get("reference_hash") {
        None | Some(Value::Null) => Hash::default(),
        Some(value) => hash(value, "reference_hash")?,
    };
    let parsed = Transaction {
        version: small(get(tx, "version", "")?, "version")?,
        chain_id: small(get(tx, "chain_id", "")?, "chain_id")?,
        source: key(get(tx, "source", "")?, "source")?,
        data: payload(tx_type, get(tx, "payload", "")?)?,
        fee: unsigned(get(tx, "fee", "")?, "fee")?,
        fee_type,
        nonce: unsigned(get(tx, "nonce", "")?, "nonce")?,
        reference: Reference {
            hash: reference_hash,
            topoheight: match tx.get("reference_topoheight") {
                None | Some(Value::Null) => 0,
                Some(value) => unsigned(value, "reference_topoheight")?,
            },
        },
        multisig,
        signature: signature(tx.get("signature").unwrap_or(&Value::Null), "signature")?,
    };
    // The wire format's rules, checked once for both forms: the transaction must decode
    // from its encoding, as itself (a count beyond its field's width would not).
    match Transaction::from_wire(&parsed.to_wire()) {
        Ok(checked) if checked == parsed => Ok(checked),
        Ok(_) => error(
            "(wire form)",
            "a count or a length beyond what the wire format holds",
        ),
        Err(e) => error("(wire form)", e.to_string()),
    }
}

fn deposits_json(deposits: &Deposits) -> Value {
    deposits
        .iter()
        .map(|(asset, amount)| json!({"asset": asset.to_hex(), "amount": amount}))
        .collect()
}

fn primitive_json(primitive: &Primitive) -> Value {
    let typed = |kind: &str, value: Value| json!({"type": kind, "value": value});
    match primitive {
        Primitive::Null => Value::Null,
        Primitive::U8(n) => typed("u8", json!(n)),
        Primitive::U16(n) => typed("u16", json!(n)),
        Primitive::U32(n) => typed("u32", json!(n)),
        Primitive::U64(n) => typed("u64", json!(n)),
        Primitive::U128(n) => match u64::try_from(*n) {
            Ok(small) => typed("u128", json!(small)),
            Err(_) => typed("u128", json!(n.to_string())),
        },
        Primitive::U256(bytes) => typed("u256", json!(to_hex(bytes))),
        Primitive::Bool(b) => typed("bool", json!(b)),
        Primitive::String(s) => typed("string", json!(s)),
        Primitive::Range(low, high) => {
            typed("range", json!([primitive_json(low), primitive_json(high)]))
        }
    }
}

fn cell_json(cell: &ValueCell) -> Value {
    match cell {
        ValueCell::Default(p) => json!({"kind": "default", "value": primitive_json(p)}),
        ValueCell::Bytes(b) => json!({"kind": "bytes", "value": to_hex(b)}),
        ValueCell::Object(items) => {
            json!({"kind": "object", "value": items.iter().map(cell_json).collect::<Vec<_>>()})
        }
        ValueCell::Map(entries) => json!({
            "kind": "map",
            "value": entries.iter().map(|(k, v)| json!([cell_json(k), cell_json(v)])).collect::<Vec<_>>(),
        }),
    }
}

/// The JSON form of `tx`.
pub fn to_json(tx: &Transaction) -> Value {
    let payload = match &tx.data {
        TransactionType::Burn(b) => json!({"asset": b.asset.to_hex(), "amount": b.amount}),
        TransactionType::Transfers(transfers) => transfers
            .iter()
            .map(|t| {
                json!({
                    "asset": t.asset.to_hex(),
                    "destination": t.destination.to_hex(),
                    "amount": t.amount,
                    "extra_data": t.extra_data.as_deref().map(to_hex),
                })
            })
            .collect(),
        TransactionType::MultiSig(m) => json!({
            "threshold": m.threshold,
            "participants": m.participants.iter().map(|p| p.to_hex()).collect::<Vec<_>>(),
        }),
        TransactionType::InvokeContract(i) => json!({
            "contract": i.contract.to_hex(),
            "deposits": deposits_json(&i.deposits),
            "entry_id": i.entry_id,
            "max_gas": i.max_gas,
            "parameters": i.parameters.iter().map(cell_json).collect::<Vec<_>>(),
        }),
        TransactionType::DeployContract(d) => json!({
            "module": to_hex(&d.module),
            "invoke": d.invoke.as_ref().map(|i| json!({
                "max_gas": i.max_gas,
                "deposits": deposits_json(&i.deposits),
            })),
        }),
    };
    let mut out = json!({
        "version": tx.version,
        "chain_id": tx.chain_id,
        "source": tx.source.to_hex(),
        "tx_type": tx.data.name(),
        "payload": payload,
        "fee": tx.fee,
        "fee_type": tx.fee_type as u8,
        "nonce": tx.nonce,
        "reference_hash": tx.reference.hash.to_hex(),
        "reference_topoheight": tx.reference.topoheight,
        "signature": to_hex(&tx.signature.to_bytes()),
    });
    if let (Some(signatures), Some(map)) = (&tx.multisig, out.as_object_mut()) {
        map.insert(
            "multisig".to_owned(),
            signatures
                .iter()
                .map(|s| json!({"id": s.id, "signature": to_hex(&s.signature.to_bytes())}))
                .collect(),
        );
    }
    out
}

impl serde::Serialize for Transaction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        to_json(self).serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Transaction {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        from_json(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyPair;
    use crate::tx::DEVNET_CHAIN_ID;

    #[test]
    fn json_round_trips_and_agrees_with_the_wire() {
        let alice = KeyPair::test_account(2).unwrap();
        let kinds = vec![
            TransactionType::Transfers(vec![TransferPayload {
                asset: Hash([1; 32]),
                destination: PublicKey([2; 32]),
                amount: 3,
                extra_data: Some(vec![4, 5]),
            }]),
            TransactionType::Burn(BurnPayload {
                asset: Hash([0; 32]),
                amount: 9,
            }),
            TransactionType::MultiSig(MultiSigPayload {
                threshold: 1,
                participants: vec![PublicKey([3; 32])],
            }),
            TransactionType::InvokeContract(Box::new(InvokeContractPayload {
                contract: Hash([5; 32]),
                deposits: vec![(Hash([0; 32]), 7)],
                entry_id: 1,
                max_gas: 1000,
                parameters: vec![
                    ValueCell::u64(5),
                    ValueCell::Default(Primitive::U128(u128::MAX)),
                    ValueCell::Map(vec![(ValueCell::Bytes(vec![1]), ValueCell::Object(vec![]))]),
                ],
            })),
            TransactionType::DeployContract(Box::new(DeployContractPayload {
                module: b"\x7fELF".to_vec(),
                invoke: Some(InvokeConstructorPayload {
                    max_gas: 5,
                    deposits: vec![],
                }),
            })),
        ];
        for data in kinds {
            let mut tx = Transaction::new(DEVNET_CHAIN_ID, alice.public_key(), 4, 100, data);
            tx.multisig = Some(vec![MultiSigSignature {
                id: 0,
                signature: alice.sign(b"x"),
            }]);
            tx.sign(&alice);
            let json = to_json(&tx);
            assert_eq!(from_json(&json).unwrap(), tx);
            let text = serde_json::to_string(&tx).unwrap();
            assert_eq!(serde_json::from_str::<Transaction>(&text).unwrap(), tx);
        }
    }

    #[test]
    fn bad_json_names_the_field() {
        let alice = KeyPair::test_account(2).unwrap();
        let tx = Transaction::new(
            DEVNET_CHAIN_ID,
            alice.public_key(),
            0,
            1,
            TransactionType::Burn(BurnPayload {
                asset: Hash([0; 32]),
                amount: 1,
            }),
        );
        let mut json = to_json(&tx);
        json["payload"]["amount"] = json!(-1);
        assert_eq!(from_json(&json).unwrap_err().field, "payload.amount");
        let mut json = to_json(&tx);
        json["fee_type"] = json!(1);
        assert_eq!(from_json(&json).unwrap_err().field, "fee_type");
        let mut json = to_json(&tx);
        json["version"] = json!(0);
        assert_eq!(from_json(&json).unwrap_err().field, "(wire form)");
        let mut json = to_json(&tx);
        json["signature"] = Value::Null;
        assert_eq!(from_json(&json).unwrap().signature, Signature::ZERO);
        // 256 participants do not fit the wire's count: refused, not read as another
        // transaction.
        let mut json = to_json(&tx);
        json["tx_type"] = json!("multisig");
        json["payload"] = json!({
            "threshold": 1,
            "participants": (0..256u32)
                .map(|i| {
                    let mut key = [0u8; 32];
                    key[..4].copy_from_slice(&i.to_le_bytes());
                    PublicKey(key).to_hex()
                })
                .collect::<Vec<_>>(),
        });
        assert_eq!(from_json(&json).unwrap_err().field, "(wire form)");
    }
}
