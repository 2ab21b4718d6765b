//! `tos-blockstm conformance`: TOS's conformance server, the HTTP API TOS's harness
//! (labu) drives, over the library's [`Session`].
//!
//! Requests are served one at a time, as the daemon's server does. Validation failures
//! are HTTP 200 with `success: false` and TOS's code; a malformed request is a 400 with a
//! JSON error; an internal failure a 500.

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Args;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tos_adapter::conformance::{
    export_json, ExecResult, Session, SessionError, TxInput, INTERNAL_ERROR, NOT_IMPLEMENTED,
};
use tos_adapter::{
    Change, ExecutionConfig, Hash, KeyPair, MemoryStore, PublicKey, RedbStore, StateKey,
    StateValue, StorageError, TosBlockExecutor, TosStorage, Versioned,
};

/// Options of `tos-blockstm conformance`.
#[derive(Args, Debug)]
pub struct ConformanceArgs {
    /// Address to serve on (default 127.0.0.1 and `CONFORMANCE_PORT`, or 8086).
    #[arg(long)]
    pub addr: Option<SocketAddr>,
    /// Worker threads of the block executor (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Let the executor run small blocks sequentially, as in production. By default every
    /// block and transaction runs under Block-STM, so that the suite exercises the engine.
    #[arg(long)]
    pub adaptive: bool,
}

/// The store of one run: in memory, or a redb file under `LABU_STATE_DIR`.
enum Store {
    Memory(MemoryStore),
    Redb(RedbStore),
}

impl TosStorage for Store {
    fn topoheight(&self) -> Result<u64, StorageError> {
        match self {
            Store::Memory(s) => s.topoheight(),
            Store::Redb(s) => s.topoheight(),
        }
    }

    fn is_empty(&self) -> Result<bool, StorageError> {
        match self {
            Store::Memory(s) => s.is_empty(),
            Store::Redb(s) => s.is_empty(),
        }
    }

    fn get_versioned(
        &self,
        key: &StateKey,
        topoheight: u64,
    ) -> Result<Option<Versioned<StateValue>>, StorageError> {
        match self {
            Store::Memory(s) => s.get_versioned(key, topoheight),
            Store::Redb(s) => s.get_versioned(key, topoheight),
        }
    }

    fn history(&self, key: &StateKey) -> Result<Vec<Versioned<StateValue>>, StorageError> {
        match self {
            Store::Memory(s) => s.history(key),
            Store::Redb(s) => s.history(key),
        }
    }

    fn latest_entries(&self) -> Result<Vec<(StateKey, StateValue)>, StorageError> {
        match self {
            Store::Memory(s) => s.latest_entries(),
            Store::Redb(s) => s.latest_entries(),
        }
    }

    fn write_block(&self, topoheight: u64, changes: &[Change]) -> Result<(), StorageError> {
        match self {
            Store::Memory(s) => s.write_block(topoheight, changes),
            Store::Redb(s) => s.write_block(topoheight, changes),
        }
    }
}

/// The server's state: the session and where each run's store goes.
struct Server {
    session: Session<Store>,
    state_dir: Option<PathBuf>,
    runs: u64,
}

impl Server {
    /// A fresh, empty store: `LABU_STATE_DIR/runN/state.redb`, or memory.
    fn fresh_store(&mut self) -> Result<Store> {
        self.runs += 1;
        match &self.state_dir {
            None => Ok(Store::Memory(MemoryStore::new())),
            Some(dir) => {
                // The previous run's files are no longer needed.
                let previous = dir.join(format!("run{}", self.runs - 1));
                if self.runs > 1 && previous.exists() {
                    std::fs::remove_dir_all(&previous)
                        .with_context(|| format!("cannot clear {}", previous.display()))?;
                }
                let run = dir.join(format!("run{}", self.runs));
                if run.exists() {
                    std::fs::remove_dir_all(&run)
                        .with_context(|| format!("cannot clear {}", run.display()))?;
                }
                std::fs::create_dir_all(&run)
                    .with_context(|| format!("cannot create {}", run.display()))?;
                Ok(Store::Redb(RedbStore::open(run.join("state.redb"))?))
            }
        }
    }

    fn reset(&mut self) -> Result<()> {
        let store = self.fresh_store()?;
        self.session.replace_store(store);
        Ok(())
    }
}

type Shared = Arc<Mutex<Server>>;

/// A response: the status and the JSON body.
struct Reply(StatusCode, Value);

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

fn ok(body: Value) -> Reply {
    Reply(StatusCode::OK, body)
}

fn bad_request(error: impl std::fmt::Display) -> Reply {
    Reply(
        StatusCode::BAD_REQUEST,
        json!({"success": false, "error": error.to_string(), "error_code": INTERNAL_ERROR}),
    )
}

fn internal(error: impl std::fmt::Display) -> Reply {
    Reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"success": false, "error": error.to_string(), "error_code": INTERNAL_ERROR}),
    )
}

fn session_error(error: SessionError) -> Reply {
    match error {
        SessionError::Request(e) => bad_request(e),
        other => internal(other),
    }
}

fn exec(result: Result<ExecResult, SessionError>) -> Reply {
    match result {
        Ok(result) => ok(result.to_json()),
        Err(e) => session_error(e),
    }
}

/// Runs `f` on the server, off the async runtime's threads (execution is CPU work).
async fn with_server(
    shared: Shared,
    f: impl FnOnce(&mut Server) -> Reply + Send + 'static,
) -> Reply {
    let joined = tokio::task::spawn_blocking(move || {
        let mut server = shared.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut server)
    })
    .await;
    joined.unwrap_or_else(|e| internal(format!("the request failed: {e}")))
}

fn parse(body: &Bytes) -> Result<Value, Reply> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("malformed JSON: {e}")))
}

fn tx_input(value: &Value) -> Result<TxInput, Reply> {
    let wire_hex = match value.get("wire_hex") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(bad_request("wire_hex is not a string")),
    };
    Ok(TxInput {
        wire_hex,
        tx: value.get("tx").cloned().filter(|t| !t.is_null()),
    })
}

async fn health() -> &'static str {
    "OK\n"
}

async fn reset(State(shared): State<Shared>) -> Reply {
    with_server(shared, |server| match server.reset() {
        Ok(()) => ok(json!({"success": true})),
        Err(e) => internal(format!("{e:#}")),
    })
    .await
}

async fn load(State(shared): State<Shared>, body: Bytes) -> Reply {
    let pre_state = match parse(&body) {
        Ok(value) => value,
        Err(reply) => return reply,
    };
    with_server(shared, move |server| {
        if let Err(e) = server.reset() {
            return internal(format!("{e:#}"));
        }
        match server.session.load(&pre_state) {
            Ok(digest) => ok(json!({"success": true, "state_digest": digest})),
            Err(e) => session_error(e),
        }
    })
    .await
}

async fn export(State(shared): State<Shared>) -> Reply {
    with_server(shared, |server| match server.session.summary() {
        Ok(summary) => ok(export_json(&summary)),
        Err(e) => internal(e),
    })
    .await
}

async fn digest(State(shared): State<Shared>) -> Reply {
    with_server(shared, |server| match server.session.digest() {
        Ok(digest) => ok(json!({"state_digest": digest})),
        Err(e) => internal(e),
    })
    .await
}

async fn tx_execute(State(shared): State<Shared>, body: Bytes) -> Reply {
    let input = match parse(&body).and_then(|v| tx_input(&v)) {
        Ok(input) => input,
        Err(reply) => return reply,
    };
    if input.wire_hex.is_empty() && input.tx.is_none() {
        return bad_request("missing wire_hex or tx");
    }
    with_server(shared, move |server| {
        exec(server.session.execute_tx(&input))
    })
    .await
}

async fn tx_roundtrip(State(shared): State<Shared>, body: Bytes) -> Reply {
    let input = match parse(&body).and_then(|v| tx_input(&v)) {
        Ok(input) => input,
        Err(reply) => return reply,
    };
    if input.wire_hex.is_empty() {
        return bad_request("missing wire_hex");
    }
    with_server(shared, move |server| {
        exec(server.session.roundtrip(&input.wire_hex))
    })
    .await
}

async fn block_execute(State(shared): State<Shared>, body: Bytes) -> Reply {
    let request = match parse(&body) {
        Ok(value) => value,
        Err(reply) => return reply,
    };
    let Some(txs) = request.get("txs").and_then(Value::as_array) else {
        if request.get("wire_hex").is_some() {
            // The legacy form: a whole block in the daemon's wire format.
            return with_server(shared, |server| {
                let digest = server.session.digest().unwrap_or_default();
                ok(ExecResult {
                    success: false,
                    error_code: NOT_IMPLEMENTED,
                    state_digest: digest,
                    error: Some(
                        "a block in the daemon's wire format is not supported; send txs".into(),
                    ),
                }
                .to_json())
            })
            .await;
        }
        return bad_request("missing txs");
    };
    let inputs: Result<Vec<TxInput>, Reply> = txs.iter().map(tx_input).collect();
    let inputs = match inputs {
        Ok(inputs) => inputs,
        Err(reply) => return reply,
    };
    with_server(shared, move |server| {
        exec(server.session.execute_block(&inputs))
    })
    .await
}

async fn chain_execute(State(shared): State<Shared>) -> Reply {
    not_implemented(
        shared,
        "DAG ordering and block rewards are the daemon's, not a block executor's",
    )
    .await
}

/// TOS's `NOT_IMPLEMENTED` answer, with the current state's digest.
async fn not_implemented(shared: Shared, why: &'static str) -> Reply {
    with_server(shared, move |server| {
        let digest = server.session.digest().unwrap_or_default();
        ok(ExecResult {
            success: false,
            error_code: NOT_IMPLEMENTED,
            state_digest: digest,
            error: Some(why.into()),
        }
        .to_json())
    })
    .await
}

const METHODS: [&str; 5] = [
    "tos_stateDigest",
    "tos_stateExport",
    "tos_accountGet",
    "tos_contractGet",
    "tos_methods",
];

fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

async fn json_rpc(State(shared): State<Shared>, body: Bytes) -> Reply {
    let request = match parse(&body) {
        Ok(value) => value,
        Err(reply) => return reply,
    };
    with_server(shared, move |server| {
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let method = request.get("method").and_then(Value::as_str).unwrap_or("");
        if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") || method.is_empty() {
            return ok(rpc_error(&id, -32600, "Invalid Request"));
        }
        let params = request.get("params").cloned().unwrap_or(Value::Null);
        let param = |name: &str| {
            params
                .get(name)
                .or_else(|| params.get(0))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let result = match method {
            "tos_stateDigest" => server.session.digest().map(Value::String),
            "tos_stateExport" => server.session.summary().map(|s| export_json(&s)),
            "tos_accountGet" => {
                let Some(address) = param("address").and_then(|a| PublicKey::from_hex(&a).ok())
                else {
                    return ok(rpc_error(&id, -32602, "Invalid params: address"));
                };
                server.session.account_json(&address)
            }
            "tos_contractGet" => {
                let Some(hash) = param("hash").and_then(|h| Hash::from_hex(&h).ok()) else {
                    return ok(rpc_error(&id, -32602, "Invalid params: hash"));
                };
                server.session.contract_json(&hash)
            }
            "tos_methods" => Ok(json!(METHODS)),
            _ => return ok(rpc_error(&id, -32601, "Method not found")),
        };
        match result {
            Ok(result) => ok(json!({"jsonrpc": "2.0", "id": id, "result": result})),
            Err(_) => ok(rpc_error(&id, -32603, "Internal error")),
        }
    })
    .await
}

/// The router of the conformance API on `shared`.
fn router(shared: Shared) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/state/reset", post(reset))
        .route("/state/load", post(load))
        .route("/state/export", get(export))
        .route("/state/digest", get(digest))
        .route("/tx/execute", post(tx_execute))
        .route("/tx/roundtrip", post(tx_roundtrip))
        .route("/block/execute", post(block_execute))
        .route("/chain/execute", post(chain_execute))
        .route("/json_rpc", post(json_rpc))
        .layer(DefaultBodyLimit::max(64 << 20))
        .with_state(shared)
}

/// The miner's key, as the daemon's server finds it (`MINER_PRIVATE_KEY`, else the
/// `"Miner"` entry of `LABU_ACCOUNTS_PATH`). A block executor builds no block templates
/// and pays no rewards, so it is only reported.
fn miner() -> Result<Option<PublicKey>> {
    let private = match std::env::var("MINER_PRIVATE_KEY") {
        Ok(hex) => Some(hex),
        Err(_) => match std::env::var_os("LABU_ACCOUNTS_PATH") {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(&path).with_context(|| {
                    format!(
                        "cannot read LABU_ACCOUNTS_PATH {}",
                        PathBuf::from(&path).display()
                    )
                })?;
                let accounts: Value = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", PathBuf::from(&path).display()))?;
                accounts["accounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["name"] == "Miner")
                    .and_then(|a| a["private_key"].as_str())
                    .map(str::to_owned)
            }
        },
    };
    let Some(hex) = private else {
        return Ok(None);
    };
    let bytes: [u8; 32] = tos_adapter::from_hex(&hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .context("the miner's private key is not 32 bytes of hex")?;
    Ok(KeyPair::from_private_key(&bytes).map(|k| k.public_key()))
}

/// Runs `conformance`.
pub fn main(args: ConformanceArgs) -> Result<()> {
    let addr = match args.addr {
        Some(addr) => addr,
        None => {
            let port = match std::env::var("CONFORMANCE_PORT") {
                Ok(port) => port
                    .trim()
                    .parse::<u16>()
                    .with_context(|| format!("CONFORMANCE_PORT={port:?} is not a port"))?,
                Err(_) => 8086,
            };
            SocketAddr::from(([127, 0, 0, 1], port))
        }
    };
    let mut config = super::load_config(ExecutionConfig::default(), None)?;
    if let Some(threads) = args.threads {
        anyhow::ensure!(threads > 0, "--threads must be at least 1");
        config.max_parallelism = threads;
    }
    config.always_parallel = !args.adaptive;
    let executor = TosBlockExecutor::new(config)?;
    executor.calibrate();
    let state_dir = std::env::var_os("LABU_STATE_DIR").map(PathBuf::from);
    let mut server = Server {
        session: Session::new(Store::Memory(MemoryStore::new()), executor),
        state_dir,
        runs: 0,
    };
    server.reset()?;
    if let Some(miner) = miner()? {
        eprintln!("miner {miner} (block templates and rewards are the daemon's: unused)");
    }
    let shared = Arc::new(Mutex::new(server));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        eprintln!("TOS conformance server on http://{local}");
        axum::serve(listener, router(shared))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("the server failed")
    })
}
