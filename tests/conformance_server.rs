//! End to end: `tos-blockstm conformance` on a free loopback port, driven over HTTP as
//! TOS's harness drives it (reset, load, execute, export; the same comparisons), on every
//! vector of `vectors/tos-spec`; and its answers to malformed requests.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra_env: &[(&str, &str)]) -> Server {
    // A free port: bind one, release it, hand it to the server.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut command = Command::new(env!("CARGO_BIN_EXE_tos-blockstm"));
    command
        .args(["conformance", "--threads", "2", "--addr", &addr.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let child = command.spawn().unwrap();
    let server = Server { child, addr };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok((200, body)) = request(addr, "GET", "/health", None) {
            assert_eq!(body, "OK\n");
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the conformance server did not start on {addr}");
}

/// One HTTP/1.1 request: the status and the body.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, rest) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            dechunk(rest)
        } else {
            rest.to_owned()
        },
    ))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    out
}

fn post(addr: SocketAddr, path: &str, body: &Value) -> (u16, Value) {
    let (status, text) = request(addr, "POST", path, Some(&body.to_string())).unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn get(addr: SocketAddr, path: &str) -> Value {
    let (status, text) = request(addr, "GET", path, None).unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn vectors() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/tos-spec");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for v in doc["test_vectors"].as_array().into_iter().flatten() {
            let name = format!(
                "{}/{}",
                path.file_name().unwrap().to_string_lossy(),
                v["name"].as_str().unwrap_or("?")
            );
            out.push((name, v.clone()));
        }
    }
    out
}

/// What the harness does with one vector; `Err` says what differs.
fn run_vector(addr: SocketAddr, v: &Value) -> Result<(), String> {
    let (status, _) = post(addr, "/state/reset", &json!({}));
    if status != 200 {
        return Err(format!("reset: {status}"));
    }
    if !v["pre_state"].is_null() {
        let (status, body) = post(addr, "/state/load", &v["pre_state"]);
        if status != 200 {
            return Err(format!("load: {status} {body}"));
        }
    }
    let input = &v["input"];
    let item = |x: &Value| {
        let mut out = json!({});
        if let Some(w) = x["wire_hex"].as_str().filter(|w| !w.is_empty()) {
            out["wire_hex"] = json!(w);
        }
        if !x["tx"].is_null() {
            out["tx"] = x["tx"].clone();
        }
        out
    };
    let (status, result) = match input["kind"].as_str().unwrap_or("tx") {
        "tx" => post(addr, "/tx/execute", &item(input)),
        "tx_roundtrip" => post(
            addr,
            "/tx/roundtrip",
            &json!({"wire_hex": input["wire_hex"]}),
        ),
        "block" => {
            let txs: Vec<Value> = input["txs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| json!({"wire_hex": t["wire_hex"].as_str().unwrap_or(""), "tx": t["tx"]}))
                .collect();
            post(addr, "/block/execute", &json!({"txs": txs}))
        }
        other => return Err(format!("kind {other}")),
    };
    if status != 200 {
        return Err(format!("execute: HTTP {status} {result}"));
    }
    let expected = &v["expected"];
    for field in ["success", "error_code"] {
        if expected.get(field).is_some() && result[field] != expected[field] {
            return Err(format!(
                "{field}: got {}, expected {}",
                result[field], expected[field]
            ));
        }
    }
    let (want, got) = (&expected["state_digest"], &result["state_digest"]);
    if want.as_str().is_some_and(|w| !w.is_empty())
        && got.as_str().is_some_and(|g| !g.is_empty())
        && want != got
    {
        return Err(format!("digest: got {got}, expected {want}"));
    }
    if !expected["post_state"].is_null() {
        let export = get(addr, "/state/export");
        let post_state = &expected["post_state"];
        for (field, want) in post_state["global_state"].as_object().into_iter().flatten() {
            if export["global_state"][field] != *want {
                return Err(format!("global_state.{field}"));
            }
        }
        for want in post_state["accounts"].as_array().into_iter().flatten() {
            let got = export["accounts"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["address"] == want["address"]))
                .ok_or(format!("account {} missing", want["address"]))?;
            for field in ["balance", "nonce", "frozen", "energy", "flags", "data"] {
                if want.get(field).is_some() && got[field] != want[field] {
                    return Err(format!("account {} {field}", want["address"]));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn the_server_passes_every_vector_over_http() {
    let server = start(&[]);
    let vectors = vectors();
    assert_eq!(vectors.len(), 165);
    let failures: Vec<String> = vectors
        .iter()
        .filter_map(|(name, v)| {
            run_vector(server.addr, v)
                .err()
                .map(|e| format!("{name}: {e}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn state_on_disk_under_labu_state_dir() {
    let dir = std::env::temp_dir().join(format!("tos-blockstm-labu-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = start(&[("LABU_STATE_DIR", dir.to_str().unwrap())]);
    let vectors = vectors();
    for (name, v) in vectors
        .iter()
        .filter(|(n, _)| n.starts_with("block__"))
        .take(8)
    {
        run_vector(server.addr, v).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // One run's store at a time.
    let runs = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(runs, 1);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn malformed_requests_are_400s_with_a_json_error() {
    let server = start(&[]);
    let addr = server.addr;
    for (path, body) in [
        ("/tx/execute", "{not json"),
        ("/tx/execute", "{}"),
        ("/tx/roundtrip", "{}"),
        ("/block/execute", "{}"),
        ("/state/load", "[1, 2]"),
        ("/state/load", r#"{"accounts": [{"address": "0102"}]}"#),
        (
            "/state/load",
            r#"{"accounts": [{"address": "0101010101010101010101010101010101010101010101010101010101010101", "energy": 5}]}"#,
        ),
    ] {
        let (status, text) = request(addr, "POST", path, Some(body)).unwrap();
        assert_eq!(status, 400, "{path} {body}: {text}");
        let error: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error["success"], false, "{text}");
        assert!(error["error"].is_string(), "{text}");
    }
    // Validation failures are HTTP 200 with TOS's code.
    let (status, body) = post(addr, "/tx/execute", &json!({"wire_hex": "0x01"}));
    assert_eq!((status, body["error_code"].as_u64()), (200, Some(0x0100)));
    // The DAG is the daemon's.
    let (status, body) = post(addr, "/chain/execute", &json!({"blocks": []}));
    assert_eq!((status, body["error_code"].as_u64()), (200, Some(0xFF01)));
    // JSON-RPC.
    let (_, body) = post(
        addr,
        "/json_rpc",
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tos_methods"}),
    );
    assert_eq!(body["result"].as_array().map(Vec::len), Some(5));
    let (_, body) = post(addr, "/json_rpc", &json!({"jsonrpc": "1.0", "method": "x"}));
    assert_eq!(body["error"]["code"], -32600);
    let (_, body) = post(
        addr,
        "/json_rpc",
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tos_nothing"}),
    );
    assert_eq!(body["error"]["code"], -32601);
    let (_, body) = post(
        addr,
        "/json_rpc",
        &json!({"jsonrpc": "2.0", "id": 3, "method": "tos_accountGet", "params": {"address": "zz"}}),
    );
    assert_eq!(body["error"]["code"], -32602);
    let digest = get(addr, "/state/digest");
    let (_, body) = post(
        addr,
        "/json_rpc",
        &json!({"jsonrpc": "2.0", "id": 4, "method": "tos_stateDigest"}),
    );
    assert_eq!(body["result"], digest["state_digest"]);
}
