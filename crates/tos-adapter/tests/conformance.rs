//! TOS's published conformance vectors, run through the library as TOS's harness runs
//! them against a server: load the `pre_state`, execute the input, compare `success`,
//! `error_code`, the state digest and the `post_state`.
//!
//! The in-scope vectors are in the repository (`vectors/tos-spec`, 165 of them); a
//! directory named by `TOS_SPEC_VECTORS` is run too, when set.
//!
//! Every vector runs three ways: on the block executor as configured for production, on
//! the block executor forced onto Block-STM (2 and 4 threads; the test asserts the
//! parallel path ran for every block), and on the sequential oracle alone.

use executor::ExecutionPath;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tos_adapter::conformance::{export_json, pre_state_changes, ExecResult, Session, TxInput};
use tos_adapter::{
    BlockMode, ExecutionConfig, MemoryStore, SequentialTosExecutor, TosBlockExecutor, TosStorage,
};

struct Vector {
    file: String,
    name: String,
    value: Value,
}

fn load(dir: &Path) -> Vec<Vector> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        let Some(vectors) = doc.get("test_vectors").and_then(Value::as_array) else {
            continue;
        };
        for vector in vectors {
            out.push(Vector {
                file: path.file_name().unwrap().to_string_lossy().into_owned(),
                name: vector["name"].as_str().unwrap_or("?").to_owned(),
                value: vector.clone(),
            });
        }
    }
    out
}

fn repository_vectors() -> Vec<Vector> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors/tos-spec");
    load(&dir)
}

fn tx_input(value: &Value) -> TxInput {
    TxInput {
        wire_hex: value
            .get("wire_hex")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        tx: value.get("tx").cloned().filter(|t| !t.is_null()),
    }
}

/// The harness's comparison of a post state (labu's `compare_post_state`).
fn compare_post_state(expected: &Value, actual: &Value) -> Result<(), String> {
    if let Some(global) = expected.get("global_state").and_then(Value::as_object) {
        for field in [
            "total_supply",
            "total_burned",
            "total_energy",
            "block_height",
            "timestamp",
        ] {
            if let Some(want) = global.get(field) {
                let got = &actual["global_state"][field];
                if got != want {
                    return Err(format!("global_state.{field}: expected {want}, got {got}"));
                }
            }
        }
    }
    let accounts = actual["accounts"].as_array().cloned().unwrap_or_default();
    for want in expected["accounts"].as_array().into_iter().flatten() {
        let address = want["address"].as_str().unwrap_or_default();
        let Some(got) = accounts.iter().find(|a| a["address"] == address) else {
            return Err(format!("account {address} missing"));
        };
        for field in ["balance", "nonce", "frozen", "energy", "flags", "data"] {
            if let Some(w) = want.get(field) {
                if got[field] != *w {
                    return Err(format!(
                        "account {address} {field}: expected {w}, got {}",
                        got[field]
                    ));
                }
            }
        }
    }
    Ok(())
}

fn executor(config: ExecutionConfig) -> TosBlockExecutor {
    TosBlockExecutor::new(config).unwrap()
}

/// Runs one vector on a session with `executor`; `Err` says what differs.
fn run(vector: &Vector, executor: TosBlockExecutor) -> Result<(), String> {
    let v = &vector.value;
    let mut session = Session::new(MemoryStore::new(), executor);
    if let Some(pre) = v.get("pre_state").filter(|p| !p.is_null()) {
        session.load(pre).map_err(|e| format!("load: {e}"))?;
    }
    let input = &v["input"];
    let kind = input["kind"].as_str().unwrap_or("tx");
    let result: ExecResult = match kind {
        "tx" => session.execute_tx(&tx_input(input)),
        "tx_roundtrip" => session.roundtrip(input["wire_hex"].as_str().unwrap_or("")),
        "block" => {
            let txs: Vec<TxInput> = input["txs"]
                .as_array()
                .map(|txs| txs.iter().map(tx_input).collect())
                .unwrap_or_default();
            session.execute_block(&txs)
        }
        other => return Err(format!("unexpected kind {other}")),
    }
    .map_err(|e| format!("execution: {e}"))?;
    let expected = &v["expected"];
    if let Some(success) = expected.get("success").and_then(Value::as_bool) {
        if result.success != success {
            return Err(format!(
                "success {} ({:?}), expected {success}",
                result.success, result.error
            ));
        }
    }
    if let Some(code) = expected.get("error_code") {
        if code.as_u64() != Some(u64::from(result.error_code)) {
            return Err(format!(
                "error_code {:#06x} ({:?}), expected {code}",
                result.error_code, result.error
            ));
        }
    }
    if let Some(digest) = expected.get("state_digest").and_then(Value::as_str) {
        if !digest.is_empty() && !result.state_digest.is_empty() && digest != result.state_digest {
            return Err(format!(
                "state digest {}, expected {digest}",
                result.state_digest
            ));
        }
    }
    if let Some(post) = expected.get("post_state").filter(|p| !p.is_null()) {
        let export = export_json(&session.summary().map_err(|e| e.to_string())?);
        compare_post_state(post, &export)?;
        // The digest of the expected post state is the spec's formula over it: ours over
        // the same state must agree even where the harness skips the comparison.
        let store = MemoryStore::new();
        store
            .write_block(0, &pre_state_changes(post).map_err(|e| e.to_string())?)
            .unwrap();
        let ours = store.summary().unwrap().digest().to_hex();
        if let Some(digest) = expected.get("state_digest").and_then(Value::as_str) {
            if !digest.is_empty() && digest != ours {
                return Err(format!(
                    "digest of the expected post state {ours}, expected {digest}"
                ));
            }
        }
    }
    Ok(())
}

fn run_all(vectors: &[Vector], make: impl Fn() -> TosBlockExecutor) -> Vec<String> {
    vectors
        .iter()
        .filter_map(|vector| {
            run(vector, make())
                .err()
                .map(|e| format!("{} / {}: {e}", vector.file, vector.name))
        })
        .collect()
}

fn production() -> TosBlockExecutor {
    executor(ExecutionConfig::default())
}

fn forced_parallel(threads: usize) -> TosBlockExecutor {
    executor(ExecutionConfig {
        always_parallel: true,
        max_parallelism: threads,
        ..ExecutionConfig::default()
    })
}

#[test]
fn the_in_scope_published_vectors_pass_on_the_block_executor() {
    let vectors = repository_vectors();
    assert_eq!(vectors.len(), 165, "the in-scope suite has 165 vectors");
    let failures = run_all(&vectors, production);
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_vectors_pass_under_block_stm_itself() {
    let vectors = repository_vectors();
    for threads in [2, 4] {
        let failures = run_all(&vectors, || forced_parallel(threads));
        assert!(
            failures.is_empty(),
            "{threads} threads, {} failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

/// Every block vector on Block-STM directly: the parallel path ran, and the results and
/// changes are the oracle's.
#[test]
fn block_vectors_run_on_block_stm_and_equal_the_oracle() {
    let mut blocks = 0;
    let mut on_block_stm = 0;
    for vector in repository_vectors() {
        let input = &vector.value["input"];
        if input["kind"] != "block" {
            continue;
        }
        blocks += 1;
        let decoded: Result<Vec<_>, _> = input["txs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| tos_adapter::conformance::decode_input(&tx_input(t)))
            .collect();
        let Some(txs) = decoded
            .ok()
            .and_then(|txs| txs.into_iter().collect::<Option<Vec<_>>>())
        else {
            // A transaction that does not decode (an Energy fee): the block is malformed.
            assert_eq!(
                vector.value["expected"]["error_code"], 0x0100,
                "{}",
                vector.name
            );
            continue;
        };
        let store = MemoryStore::new();
        store
            .write_block(0, &pre_state_changes(&vector.value["pre_state"]).unwrap())
            .unwrap();
        let oracle = SequentialTosExecutor::new(true)
            .execute_block(&store, 1, &txs, BlockMode::Accept)
            .unwrap();
        for threads in [2, 4] {
            let parallel = forced_parallel(threads)
                .execute_block(&store, 1, &txs, BlockMode::Accept)
                .unwrap();
            // Block-STM ran: to the end, or until a credit it speculated to fit did not
            // and the block went to the sequential executor (the overflow vectors).
            assert!(
                matches!(
                    parallel.path,
                    ExecutionPath::Parallel | ExecutionPath::Fallback(_)
                ),
                "{}: {:?}",
                vector.name,
                parallel.path
            );
            if parallel.path == ExecutionPath::Parallel {
                on_block_stm += 1;
            }
            assert_eq!(parallel.results, oracle.results, "{}", vector.name);
            assert_eq!(parallel.rejected, oracle.rejected, "{}", vector.name);
            let mut a = parallel.changes.clone();
            let mut b = oracle.changes.clone();
            a.sort_by(|x, y| x.0.cmp(&y.0));
            b.sort_by(|x, y| x.0.cmp(&y.0));
            assert_eq!(a, b, "{}", vector.name);
            let expected = vector.value["expected"]["error_code"].as_u64().unwrap();
            assert_eq!(u64::from(parallel.code()), expected, "{}", vector.name);
        }
    }
    assert_eq!(blocks, 34);
    // All but the malformed and the overflow vectors (three, on two thread counts) finish
    // on Block-STM.
    assert!(on_block_stm >= 2 * (blocks - 3), "{on_block_stm}");
}

#[test]
fn vectors_named_by_the_environment_pass_too() {
    let Some(dir) = std::env::var_os("TOS_SPEC_VECTORS") else {
        eprintln!("skipped: TOS_SPEC_VECTORS is not set (the repository's vectors ran in the other tests)");
        return;
    };
    let vectors = load(Path::new(&dir));
    assert!(
        !vectors.is_empty(),
        "no vectors in {}",
        dir.to_string_lossy()
    );
    let failures = run_all(&vectors, production);
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
