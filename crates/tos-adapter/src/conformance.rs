//! TOS's conformance protocol, without the HTTP: a [`Session`] holds one chain state,
//! loads it from the `pre_state` JSON of TOS's vectors, executes a transaction, a
//! transaction's round trip through the wire format, or a block, and exports the state
//! and its digest as TOS's harness compares them.
//!
//! Results are [`ExecResult`]s: `success`, TOS's `error_code` (0 on success), the state
//! digest after it (empty when the input does not decode), and the reason in words. A
//! failed transaction or block changes nothing; an applied one is committed at the next
//! topoheight.

use crate::error::{StorageError, TosError};
use crate::execution::{BlockMode, TosBlockExecutor};
use crate::primitives::{from_hex, to_hex, Hash, PublicKey, TOS_ASSET};
use crate::state::summary::ChainSummary;
use crate::state::{Global, StateKey, StateValue};
use crate::storage::{Change, TosStorage};
use crate::tx::{json, Transaction};
use serde_json::{json, Map, Value};

/// TOS's code of a malformed transaction.
pub const INVALID_FORMAT: u16 = 0x0100;
/// TOS's code of a request the server cannot serve (the daemon's internal error).
pub const INTERNAL_ERROR: u16 = 0xFF00;
/// TOS's code of what is not implemented, and of a round trip that does not give the
/// same bytes back.
pub const NOT_IMPLEMENTED: u16 = 0xFF01;

/// The outcome of executing something, as TOS's harness reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecResult {
    /// Whether it applied (or round-tripped).
    pub success: bool,
    /// TOS's code: 0 on success.
    pub error_code: u16,
    /// The state digest afterwards; empty when the input did not decode.
    pub state_digest: String,
    /// Why it failed.
    pub error: Option<String>,
}

impl ExecResult {
    /// The JSON object: `error` is left out when there is none.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "success": self.success,
            "error_code": self.error_code,
            "state_digest": self.state_digest,
        });
        if let (Some(error), Some(map)) = (&self.error, out.as_object_mut()) {
            map.insert("error".to_owned(), json!(error));
        }
        out
    }
}

/// A request the session refuses: the harness's input is malformed (an HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// A field is missing or malformed.
    #[error("{0}")]
    Malformed(String),
    /// The state uses a feature this executor does not have.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

/// The session's own failure (an HTTP 500).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The request is malformed.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The executor or its storage failed.
    #[error(transparent)]
    Execution(#[from] TosError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// One transaction of a block request: its wire bytes, its JSON, or both.
#[derive(Clone, Debug, Default)]
pub struct TxInput {
    /// The wire encoding in hex (empty: none).
    pub wire_hex: String,
    /// The JSON form.
    pub tx: Option<Value>,
}

/// One chain state and the executor that changes it.
pub struct Session<S> {
    store: S,
    executor: TosBlockExecutor,
}

impl<S> std::fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

fn number(object: &Map<String, Value>, field: &str, path: &str) -> Result<u64, RequestError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(0),
        Some(value) => value.as_u64().ok_or_else(|| {
            RequestError::Malformed(format!("{path}{field}: not an integer from 0 to 2^64-1"))
        }),
    }
}

/// The list at `field` of `state` (absent or null: empty).
fn list<'v>(state: &'v Map<String, Value>, field: &str) -> Result<&'v [Value], RequestError> {
    match state.get(field) {
        None | Some(Value::Null) => Ok(&[]),
        Some(value) => value
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| RequestError::Malformed(format!("{field} is not a list"))),
    }
}

/// The state changes of a `pre_state` object (written at topoheight 0).
pub fn pre_state_changes(pre_state: &Value) -> Result<Vec<Change>, RequestError> {
    let state = pre_state
        .as_object()
        .ok_or_else(|| RequestError::Malformed("the state is not an object".into()))?;
    let mut changes: Vec<Change> = Vec::new();
    let chain_id = match state.get("network_chain_id") {
        None | Some(Value::Null) => u64::from(crate::tx::DEVNET_CHAIN_ID),
        Some(_) => number(state, "network_chain_id", "")?,
    };
    changes.push((
        StateKey::Global(Global::NetworkChainId),
        StateValue::Number(chain_id),
    ));
    let empty = Map::new();
    let global = match state.get("global_state") {
        None | Some(Value::Null) => &empty,
        Some(value) => value
            .as_object()
            .ok_or_else(|| RequestError::Malformed("global_state is not an object".into()))?,
    };
    for (field, key) in [
        ("total_supply", StateKey::Global(Global::TotalSupply)),
        ("block_height", StateKey::Global(Global::BlockHeight)),
        ("timestamp", StateKey::Global(Global::Timestamp)),
        ("total_burned", StateKey::BurnedSupply(TOS_ASSET)),
    ] {
        changes.push((
            key,
            StateValue::Number(number(global, field, "global_state.")?),
        ));
    }
    for (i, account) in list(state, "accounts")?.iter().enumerate() {
        let path = format!("accounts[{i}].");
        let account = account
            .as_object()
            .ok_or_else(|| RequestError::Malformed(format!("accounts[{i}] is not an object")))?;
        let address = account
            .get("address")
            .and_then(Value::as_str)
            .and_then(|s| PublicKey::from_hex(s).ok())
            .ok_or_else(|| {
                RequestError::Malformed(format!("{path}address: not 32 bytes of hex"))
            })?;
        for field in ["frozen", "energy", "flags"] {
            if number(account, field, &path)? != 0 {
                return Err(RequestError::Unsupported(format!(
                    "{path}{field}: energy, frozen balances and account flags are not features of this executor"
                )));
            }
        }
        match account.get("data") {
            None | Some(Value::Null) => {}
            Some(Value::String(data)) if data.is_empty() => {}
            Some(_) => {
                return Err(RequestError::Unsupported(format!(
                    "{path}data: account data is not a feature of this executor"
                )))
            }
        }
        changes.push((
            StateKey::Nonce(address),
            StateValue::Number(number(account, "nonce", &path)?),
        ));
        changes.push((
            StateKey::Balance(address, TOS_ASSET),
            StateValue::Number(number(account, "balance", &path)?),
        ));
    }
    for (i, contract) in list(state, "contracts")?.iter().enumerate() {
        let field = |name: &str| {
            contract.get(name).and_then(Value::as_str).ok_or_else(|| {
                RequestError::Malformed(format!("contracts[{i}].{name}: not a string"))
            })
        };
        let hash = Hash::from_hex(field("hash")?).map_err(|e| {
            RequestError::Malformed(format!(
                "invalid contract hash '{}': {e}",
                field("hash").unwrap_or_default()
            ))
        })?;
        let module = from_hex(field("module")?)
            .map_err(|e| RequestError::Malformed(format!("contracts[{i}].module: {e}")))?;
        changes.push((
            StateKey::ContractModule(hash),
            StateValue::Module(module.into()),
        ));
    }
    Ok(changes)
}

/// The state object TOS's harness compares (`/state/export`).
pub fn export_json(summary: &ChainSummary) -> Value {
    json!({
        "network_chain_id": summary.network_chain_id,
        "global_state": {
            "total_supply": summary.total_supply,
            "total_burned": summary.total_burned,
            "total_energy": 0,
            "block_height": summary.block_height,
            "timestamp": summary.timestamp,
        },
        "accounts": summary.accounts.iter().map(|a| json!({
            "address": a.address.to_hex(),
            "balance": a.balance,
            "nonce": a.nonce,
            "frozen": 0,
            "energy": 0,
            "flags": 0,
            "data": "",
        })).collect::<Vec<_>>(),
        "contracts": summary.contracts.iter().map(|(hash, module)| json!({
            "hash": hash.to_hex(),
            "module": to_hex(module),
        })).collect::<Vec<_>>(),
    })
}

/// A transaction from a request: the wire bytes decide when present (strict: any decode
/// error is `INVALID_FORMAT`), else the JSON form. `Ok(None)`: neither was given.
pub fn decode_input(input: &TxInput) -> Result<Option<Transaction>, String> {
    if !input.wire_hex.is_empty() {
        let bytes = from_hex(&input.wire_hex).map_err(|e| format!("wire_hex: {e}"))?;
        return Transaction::from_wire(&bytes)
            .map(Some)
            .map_err(|e| e.to_string());
    }
    match &input.tx {
        None | Some(Value::Null) => Ok(None),
        Some(value) => json::from_json(value).map(Some).map_err(|e| e.to_string()),
    }
}

impl<S: TosStorage> Session<S> {
    /// A session on `store` (empty or holding a state) executing with `executor`.
    pub fn new(store: S, executor: TosBlockExecutor) -> Self {
        Self { store, executor }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Replaces the store (a reset).
    pub fn replace_store(&mut self, store: S) {
        self.store = store;
    }

    /// The state's summary.
    pub fn summary(&self) -> Result<ChainSummary, SessionError> {
        Ok(self.store.summary()?)
    }

    /// The state digest, hex.
    pub fn digest(&self) -> Result<String, SessionError> {
        Ok(self.summary()?.digest().to_hex())
    }

    /// Loads `pre_state` into the (empty) store as its genesis; the digest of it.
    pub fn load(&mut self, pre_state: &Value) -> Result<String, SessionError> {
        let changes = pre_state_changes(pre_state)?;
        self.store.write_block(0, &changes)?;
        self.digest()
    }

    /// A success, with the digest of the state as it now is.
    fn succeeded(&self) -> Result<ExecResult, SessionError> {
        Ok(ExecResult {
            success: true,
            error_code: 0,
            state_digest: self.digest()?,
            error: None,
        })
    }

    fn failure(&self, code: u16, error: String, digest: bool) -> Result<ExecResult, SessionError> {
        Ok(ExecResult {
            success: false,
            error_code: code,
            state_digest: if digest {
                self.digest()?
            } else {
                String::new()
            },
            error: Some(error),
        })
    }

    /// `/tx/execute`: one transaction, committed if it applies. `Err` with a malformed
    /// request if neither form was given.
    pub fn execute_tx(&mut self, input: &TxInput) -> Result<ExecResult, SessionError> {
        let tx = match decode_input(input) {
            Ok(Some(tx)) => tx,
            Ok(None) => return Err(RequestError::Malformed("missing wire_hex or tx".into()).into()),
            Err(error) => return self.failure(INVALID_FORMAT, error, false),
        };
        let topoheight = self.store.topoheight()? + 1;
        let execution = self
            .executor
            .execute_transaction(&self.store, topoheight, &tx)?;
        if let Some((_, error)) = execution.rejection() {
            return self.failure(error.code(), error.to_string(), true);
        }
        self.executor.commit(&self.store, &execution)?;
        self.succeeded()
    }

    /// `/tx/roundtrip`: whether `wire_hex` decodes strictly and encodes to the same bytes.
    /// The signature is not checked; the state is not touched.
    pub fn roundtrip(&self, wire_hex: &str) -> Result<ExecResult, SessionError> {
        let bytes = match from_hex(wire_hex) {
            Ok(bytes) => bytes,
            Err(e) => return self.failure(INVALID_FORMAT, format!("wire_hex: {e}"), false),
        };
        match Transaction::from_wire(&bytes) {
            Err(e) => self.failure(INVALID_FORMAT, e.to_string(), false),
            Ok(tx) if tx.to_wire() != bytes => self.failure(
                NOT_IMPLEMENTED,
                "the transaction does not encode to the same bytes".into(),
                true,
            ),
            Ok(_) => self.succeeded(),
        }
    }

    /// `/block/execute`: a block in acceptance mode, on the block executor. Every
    /// transaction must decode (else the block fails with `INVALID_FORMAT`); the lowest
    /// failing one rejects the block with its code; an applied block is committed and the
    /// block height advances.
    pub fn execute_block(&mut self, inputs: &[TxInput]) -> Result<ExecResult, SessionError> {
        let mut txs = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            match decode_input(input) {
                Ok(Some(tx)) => txs.push(tx),
                Ok(None) => {
                    return self.failure(
                        INVALID_FORMAT,
                        format!("txs[{i}]: missing wire_hex or tx"),
                        false,
                    )
                }
                Err(error) => {
                    return self.failure(INVALID_FORMAT, format!("txs[{i}]: {error}"), false)
                }
            }
        }
        let topoheight = self.store.topoheight()? + 1;
        let execution =
            self.executor
                .execute_block(&self.store, topoheight, &txs, BlockMode::Accept)?;
        if let Some((index, error)) = execution.rejection() {
            return self.failure(error.code(), format!("txs[{index}]: {error}"), true);
        }
        self.executor.commit(&self.store, &execution)?;
        self.succeeded()
    }

    /// An account as `tos_accountGet` answers: `None` if it does not exist.
    pub fn account_json(&self, address: &PublicKey) -> Result<Value, SessionError> {
        let summary = self.summary()?;
        Ok(match summary.account(address) {
            None => Value::Null,
            Some(a) => json!({
                "address": a.address.to_hex(),
                "balance": a.balance,
                "nonce": a.nonce,
                "flags": 0,
                "data": "",
            }),
        })
    }

    /// A contract as `tos_contractGet` answers: `None` if it is not deployed.
    pub fn contract_json(&self, hash: &Hash) -> Result<Value, SessionError> {
        let summary = self.summary()?;
        Ok(summary.contracts.iter().find(|(h, _)| h == hash).map_or(
            Value::Null,
            |(h, module)| json!({"hash": h.to_hex(), "module": to_hex(module)}),
        ))
    }
}
