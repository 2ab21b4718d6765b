//! The binary end to end, in temporary directories.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tos-blockstm"))
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tos-blockstm-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn state(db: &Path) -> Value {
    let out = ok(bin()
        .args(["inspect", "--all", "--json", "--db"])
        .arg(db)
        .output()
        .unwrap());
    serde_json::from_str(&out).unwrap()
}

fn run(db: &Path, extra: &[&str]) -> String {
    ok(bin()
        .args([
            "run",
            "--blocks",
            "2",
            "--txs",
            "60",
            "--threads",
            "2",
            "--db",
        ])
        .arg(db)
        .args(extra)
        .output()
        .unwrap())
}

/// Replays `file` into `db` without signature checks on `threads` threads; the lines of
/// its results file.
fn replay_unsigned(db: &Path, file: &Path, results: &Path, threads: &str) -> Vec<Value> {
    ok(bin()
        .args([
            "replay",
            "--no-verify-signatures",
            "--threads",
            threads,
            "--db",
        ])
        .arg(db)
        .arg("--blocks")
        .arg(file)
        .arg("--results")
        .arg(results)
        .output()
        .unwrap());
    std::fs::read_to_string(results)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn run_twice_continues_and_inspect_shows_the_balances() {
    let dir = tempdir("twice");
    let db = dir.join("data");
    let summary = run(&db, &["--workload", "p2p:10"]);
    assert!(summary.contains("transactions        120"), "{summary}");
    assert_eq!(state(&db)["topoheight"], 2);
    run(&db, &["--workload", "p2p:10"]);
    let s = state(&db);
    assert_eq!(s["topoheight"], 4);
    let accounts = s["accounts"].as_object().unwrap();
    assert_eq!(accounts.len(), 10);
    // 240 payments of 10 accounts: their nonces add up, every one paid a fee of 1,000.
    let nonces: u64 = accounts
        .values()
        .map(|a| a["nonce"].as_u64().unwrap())
        .sum();
    assert_eq!(nonces, 240);
    assert_eq!(s["gas_fee_total"], 240_000);
    // One account, human-readable, with its history.
    let account = accounts.keys().next().unwrap().clone();
    let out = ok(bin()
        .args(["inspect", "--db"])
        .arg(&db)
        .arg(&account)
        .output()
        .unwrap());
    assert!(out.contains("nonce") && out.contains("topoheight"), "{out}");
}

#[test]
fn bench_json_rows_have_the_documented_fields() {
    let dir = tempdir("bench");
    let json = dir.join("rows.json");
    let svg = dir.join("chart.svg");
    ok(bin()
        .args([
            "bench",
            "--workload",
            "independent",
            "--workload",
            "p2p:2",
            "--txs",
            "200",
            "--threads",
            "1,2",
            "--repeat",
            "1",
            "--json",
        ])
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .output()
        .unwrap());
    let rows: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for row in rows {
        for field in [
            "workload",
            "txs",
            "threads",
            "verify_signatures",
            "seq_ms",
            "par_ms",
            "speedup",
            "ideal",
            "efficiency",
            "incarnations",
            "validations",
            "aborts",
        ] {
            assert!(row.get(field).is_some(), "missing {field} in {row}");
        }
        assert_eq!(row["txs"], 200);
    }
    // p2p:2 is one chain: its ideal is 1.
    assert_eq!(rows[2]["workload"], "p2p:2");
    assert!(rows[2]["ideal"].as_f64().unwrap() < 1.01);
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
}

#[test]
fn export_then_replay_reproduces_the_state_at_one_and_two_threads() {
    let dir = tempdir("replay");
    let db = dir.join("source");
    let file = dir.join("blocks.jsonl");
    run(
        &db,
        &["--workload", "mixed", "--export", file.to_str().unwrap()],
    );
    let expected = state(&db);
    for threads in ["1", "2"] {
        let replayed = dir.join(format!("replayed-{threads}"));
        let results = dir.join(format!("results-{threads}.jsonl"));
        let lines = replay_unsigned(&replayed, &file, &results, threads);
        assert_eq!(state(&replayed), expected, "at {threads} threads");
        assert_eq!(lines.len(), 120);
        assert!(lines
            .iter()
            .any(|l| l["success"] == false && l["error"]["kind"].is_string()));
        assert!(lines
            .iter()
            .all(|l| l["tx_hash"].as_str().unwrap().len() == 64));
    }
}

/// Every contract workload: the run's state (contracts included) is reproduced by a replay
/// of its export, and the results carry the gas used.
#[test]
fn contract_workloads_export_and_replay() {
    for workload in ["token:10", "amm", "counter"] {
        let dir = tempdir(&format!("contracts-{}", workload.replace(':', "-")));
        let db = dir.join("source");
        let file = dir.join("blocks.jsonl");
        run(
            &db,
            &["--workload", workload, "--export", file.to_str().unwrap()],
        );
        let expected = state(&db);
        assert_eq!(
            expected["contracts"].as_object().unwrap().len(),
            1,
            "{workload}"
        );
        let replayed = dir.join("replayed");
        let results = dir.join("results.jsonl");
        let lines = replay_unsigned(&replayed, &file, &results, "2");
        assert_eq!(state(&replayed), expected, "{workload}");
        assert_eq!(lines.len(), 120);
        assert!(
            lines
                .iter()
                .all(|l| l["success"] == true && l["gas_used"].as_u64() > Some(0)),
            "{workload}: {lines:?}"
        );
    }
}

#[test]
fn signed_blocks_replay_with_verification() {
    let dir = tempdir("signed");
    let db = dir.join("source");
    let file = dir.join("blocks.jsonl");
    ok(bin()
        .args([
            "run",
            "--blocks",
            "1",
            "--txs",
            "20",
            "--threads",
            "2",
            "--workload",
            "independent",
            "--verify-signatures",
            "--db",
        ])
        .arg(&db)
        .arg("--export")
        .arg(&file)
        .output()
        .unwrap());
    let replayed = dir.join("replayed");
    ok(bin()
        .args(["replay", "--db"])
        .arg(&replayed)
        .arg("--blocks")
        .arg(&file)
        .output()
        .unwrap());
    assert_eq!(state(&replayed), state(&db));
    assert_eq!(state(&replayed)["accounts"].as_object().unwrap().len(), 41);
}

const A: &str = "0101010101010101010101010101010101010101010101010101010101010101";
const B: &str = "0202020202020202020202020202020202020202020202020202020202020202";
const TOS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn genesis() -> String {
    format!(
        r#"{{"type": "genesis", "accounts": [{{"account": "{A}", "nonce": 0, "balances": {{"{TOS}": 1000000}}}}]}}"#
    )
}

/// A block of one unsigned transfer from `A`, in TOS's JSON form.
fn block(topoheight: u64, amount: &str, destination: &str) -> String {
    format!(
        r#"{{"type": "block", "topoheight": {topoheight}, "transactions": [{{"version": 1, "chain_id": 3, "source": "{A}", "tx_type": "transfers", "payload": [{{"asset": "{TOS}", "destination": "{destination}", "amount": {amount}, "extra_data": null}}], "fee": 10, "fee_type": 0, "nonce": {n}, "reference_hash": null, "reference_topoheight": 0, "signature": null}}]}}"#,
        n = topoheight - 1
    )
}

/// A block whose one transaction lists 100,000 transfers.
fn huge_block() -> String {
    let transfer =
        format!(r#"{{"asset": "{TOS}", "destination": "{B}", "amount": 1, "extra_data": null}}"#);
    let transfers = vec![transfer; 100_000].join(",");
    format!(
        r#"{{"type": "block", "topoheight": 1, "transactions": [{{"version": 1, "chain_id": 3, "source": "{A}", "tx_type": "transfers", "payload": [{transfers}], "fee": 10, "fee_type": 0, "nonce": 0, "signature": null}}]}}"#
    )
}

#[test]
fn malformed_lines_are_refused_naming_the_line_and_write_nothing_of_it() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "bad-json",
            format!("{}\n{}\n{{not json\n", genesis(), block(1, "5", B)),
            "line 3",
        ),
        (
            "short-hex",
            format!("{}\n{}\n", genesis(), block(1, "5", "0202")),
            "line 2",
        ),
        (
            "beyond-u64",
            format!("{}\n{}\n", genesis(), block(1, "18446744073709551616", B)),
            "line 2",
        ),
        (
            "fraction",
            format!("{}\n{}\n", genesis(), block(1, "5.5", B)),
            "line 2",
        ),
        (
            "wrong-topoheight",
            format!(
                "{}\n{}\n{}\n",
                genesis(),
                block(1, "5", B),
                block(3, "5", B)
            ),
            "line 3",
        ),
        (
            "late-genesis",
            format!("{}\n{}\n{}\n", genesis(), block(1, "5", B), genesis()),
            "line 3",
        ),
        (
            "unknown-field",
            format!(
                "{}\n{}\n",
                genesis(),
                block(1, "5", B).replace("\"fee\"", "\"colour\": 1, \"fee\"")
            ),
            "line 2",
        ),
        (
            "duplicate-key",
            format!(
                "{}\n",
                genesis().replace("1000000", &format!("1, \"{TOS}\": 2"))
            ),
            "line 1",
        ),
        (
            "duplicate-field",
            format!(
                "{}\n{}\n",
                genesis(),
                block(1, "5", B).replace("\"fee\": 10", "\"fee\": 10, \"fee\": 11")
            ),
            "line 2",
        ),
        (
            "truncated",
            format!(
                "{}\n{}\n{}",
                genesis(),
                block(1, "5", B),
                &block(2, "5", B)[..120]
            ),
            "line 3",
        ),
        (
            "huge-array",
            format!("{}\n{}\n", genesis(), huge_block()),
            "line 2",
        ),
    ];
    for (name, content, line) in cases {
        let dir = tempdir(name);
        let file = dir.join("blocks.jsonl");
        std::fs::write(&file, content).unwrap();
        let db = dir.join("db");
        let out = bin()
            .args(["replay", "--no-verify-signatures", "--db"])
            .arg(&db)
            .arg("--blocks")
            .arg(&file)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(line), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        // Whatever came before the bad line is committed, nothing of it or after.
        let s = state(&db);
        let expected_topo = match name {
            "bad-json" | "wrong-topoheight" | "late-genesis" | "truncated" => 1,
            _ => 0,
        };
        assert_eq!(s["topoheight"], expected_topo, "{name}");
    }
    // A genesis on a database that already has state.
    let dir = tempdir("genesis-twice");
    let file = dir.join("g.jsonl");
    std::fs::write(&file, genesis() + "\n").unwrap();
    let db = dir.join("db");
    ok(bin()
        .args(["replay", "--db"])
        .arg(&db)
        .arg("--blocks")
        .arg(&file)
        .output()
        .unwrap());
    let out = bin()
        .args(["replay", "--db"])
        .arg(&db)
        .arg("--blocks")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));
}

#[test]
fn bad_flags_are_clear_errors() {
    // A block this machine cannot hold is refused before anything is built.
    let out = bin()
        .args(["run", "--txs", "50000000000", "--db"])
        .arg(tempdir("too-big"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("GiB is available"), "{stderr}");
    for args in [
        vec!["run", "--threads", "0"],
        vec!["bench", "--workload", "nonsense"],
        vec!["bench", "--threads", "0"],
        vec!["inspect", "--db", "/nonexistent/tos-blockstm"],
    ] {
        let out = bin().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.contains("rror"), "{args:?}: {stderr}");
    }
}

/// Killed with SIGKILL in the middle of a run, the database holds whole blocks only, and
/// the next run continues from the last one.
#[test]
fn a_killed_run_leaves_whole_blocks_and_continues() {
    let dir = tempdir("killed");
    let db = dir.join("data");
    let mut child = bin()
        .args([
            "run",
            "--blocks",
            "1000",
            "--txs",
            "500",
            "--threads",
            "2",
            "--workload",
            "independent",
            "--db",
        ])
        .arg(&db)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Let it commit some blocks, then kill it wherever it is (the database is locked
    // while it runs, so it cannot be inspected before).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    child.kill().unwrap();
    child.wait().unwrap();
    let before = state(&db);
    let topo = before["topoheight"].as_u64().unwrap();
    assert!(topo >= 1, "nothing committed in 2.5 s");
    // Every committed block is whole: each sender's nonce equals the blocks committed.
    for account in before["accounts"].as_object().unwrap().values() {
        if account["nonce"].as_u64().unwrap() > 0 {
            assert_eq!(account["nonce"].as_u64().unwrap(), topo);
        }
    }
    let out = ok(bin()
        .args([
            "run",
            "--blocks",
            "2",
            "--txs",
            "500",
            "--threads",
            "2",
            "--workload",
            "independent",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap());
    assert!(out.contains("rejected            0"), "{out}");
    assert_eq!(state(&db)["topoheight"].as_u64().unwrap(), topo + 2);
}

fn scrape(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// `run --metrics-addr` serves Prometheus metrics on loopback, and they move.
#[test]
fn metrics_are_served_and_move() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let dir = tempdir("metrics");
    let mut child = bin()
        .args([
            "run",
            "--blocks",
            "100000",
            "--txs",
            "300",
            "--threads",
            "2",
            "--workload",
            "independent",
            "--metrics-addr",
            &addr,
            "--db",
        ])
        .arg(dir.join("data"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while seen.len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
        if let Some(body) = scrape(&addr) {
            if let Some(txs) = metric(&body, "tos_blockstm_transactions_total") {
                assert!(body.contains("tos_blockstm_blocks_total{path="), "{body}");
                assert!(body.contains("tos_blockstm_work_to_wall_ratio"), "{body}");
                assert!(
                    body.contains("tos_blockstm_block_execution_seconds"),
                    "{body}"
                );
                seen.push(txs);
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(seen.len(), 2, "metrics were not served");
    assert!(seen[1] > seen[0], "transactions did not move: {seen:?}");
}

/// Configuration precedence: the TOML file, then `TOS_BLOCKSTM_*`, then flags; a bad
/// value is a clear error naming where it came from.
#[test]
fn configuration_layers_and_bad_values() {
    let dir = tempdir("config");
    let toml = dir.join("tos-blockstm.toml");
    std::fs::write(&toml, "max_parallelism = 2\nenabled = false\n").unwrap();
    // `run` with the file, in database `db`, with `flags` and `env` added.
    let run_with = |db: &str, flags: &[&str], env: Option<(&str, &str)>| {
        let mut cmd = bin();
        cmd.args([
            "run",
            "--blocks",
            "1",
            "--txs",
            "50",
            "--workload",
            "independent",
        ])
        .args(flags)
        .arg("--config")
        .arg(&toml)
        .arg("--db")
        .arg(dir.join(db));
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        ok(cmd.output().unwrap())
    };
    // The file sets two threads and disables parallel execution (same state either way).
    let out = run_with("a", &[], None);
    assert!(out.contains("threads             2"), "{out}");
    // The environment overrides the file, the flag overrides the environment.
    let out = run_with("b", &[], Some(("TOS_BLOCKSTM_MAX_PARALLELISM", "3")));
    assert!(out.contains("threads             3"), "{out}");
    let out = run_with(
        "c",
        &["--threads", "1"],
        Some(("TOS_BLOCKSTM_MAX_PARALLELISM", "3")),
    );
    assert!(out.contains("threads             1"), "{out}");
    for (file, env, needle) in [
        ("max_paralelism = 2\n", None, "max_paralelism"),
        ("max_parallelism = 0\n", None, "max_parallelism"),
        (
            "",
            Some(("TOS_BLOCKSTM_ENABLED", "perhaps")),
            "TOS_BLOCKSTM_ENABLED",
        ),
    ] {
        std::fs::write(&toml, file).unwrap();
        let mut cmd = bin();
        cmd.args(["run", "--blocks", "1", "--txs", "5", "--config"])
            .arg(&toml)
            .arg("--db")
            .arg(dir.join("d"));
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{needle}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// `inspect` and `run` on the damaged database in `db` both exit 1 with `expected` and the
/// file's path in the message, and leave the file's bytes as they were.
fn refused_by_every_command(db: &Path, expected: &str) {
    let file = db.join("state.redb");
    let bytes = std::fs::read(&file).unwrap();
    for args in [
        vec!["inspect", "--all", "--db"],
        vec!["run", "--blocks", "1", "--txs", "10", "--db"],
    ] {
        let out = bin().args(&args).arg(db).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(expected) && stderr.contains(file.to_str().unwrap()),
            "{args:?}: {stderr}"
        );
        assert!(
            std::fs::read(&file).unwrap() == bytes,
            "{args:?} changed the file"
        );
    }
}

/// A database truncated (to half, to one page, by one byte) is a clear error from every
/// command, naming the file, and the file is left as it was: redb asserts on such files,
/// and the store turns that into an error (the process exits 1, it does not unwind).
#[test]
fn a_truncated_database_is_a_clear_error() {
    let dir = tempdir("truncated");
    let good = dir.join("good");
    run(&good, &["--workload", "independent"]);
    let len = std::fs::metadata(good.join("state.redb")).unwrap().len();
    for (name, size) in [("half", len / 2), ("page", 4096), ("byte", len - 1)] {
        let db = dir.join(name);
        std::fs::create_dir_all(&db).unwrap();
        let file = db.join("state.redb");
        std::fs::copy(good.join("state.redb"), &file).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(size)
            .unwrap();
        refused_by_every_command(&db, "is damaged");
    }
}

/// A database whose header declares sizes beyond the file (bytes flipped: the region
/// tracker's page number, from which redb would size an 8 TiB allocation and abort) is a
/// clear error, and the file is left as it was.
#[test]
fn a_damaged_header_is_a_clear_error() {
    let dir = tempdir("damaged-header");
    let db = dir.join("db");
    run(&db, &["--workload", "independent"]);
    let file = db.join("state.redb");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[32..40].fill(0xff);
    std::fs::write(&file, &bytes).unwrap();
    refused_by_every_command(&db, "is damaged: its header declares sizes beyond the file");
}

/// `inspect` reads: the database's bytes stay as they were. An empty database file (a
/// crash before the first write, a truncation) is refused by every command, never
/// replaced by a new genesis.
#[test]
fn inspect_writes_nothing_and_an_empty_database_is_refused() {
    let dir = tempdir("inspect-read-only");
    let db = dir.join("db");
    run(&db, &["--workload", "independent"]);
    let file = db.join("state.redb");
    let before = std::fs::read(&file).unwrap();
    state(&db);
    assert!(
        std::fs::read(&file).unwrap() == before,
        "inspect changed the file"
    );

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("state.redb"), b"").unwrap();
    let blocks = dir.join("g.jsonl");
    std::fs::write(&blocks, genesis() + "\n").unwrap();
    for args in [
        vec!["run", "--blocks", "1", "--txs", "10", "--db"],
        vec!["inspect", "--all", "--db"],
        vec!["replay", "--blocks", blocks.to_str().unwrap(), "--db"],
    ] {
        let out = bin().args(&args).arg(&empty).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("is empty (0 bytes)"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(
            std::fs::metadata(empty.join("state.redb")).unwrap().len(),
            0
        );
    }
}

/// Writes three blocks with distinctive balances (one per block) into `db`'s database;
/// the balances, oldest first.
fn three_blocks(db: &Path) -> [u64; 3] {
    use tos_adapter::{PublicKey, RedbStore, StateKey, StateValue, TosStorage, TOS_ASSET};
    std::fs::create_dir_all(db).unwrap();
    let store = RedbStore::open(db.join("state.redb")).unwrap();
    let balances = [
        0x1357_9bdf_2468_ace0,
        0x0fed_cba9_8765_4321,
        0x5a5a_3c3c_9696_0f0f,
    ];
    for (topoheight, balance) in balances.iter().enumerate() {
        let account = PublicKey([topoheight as u8 + 1; 32]);
        let changes = vec![
            (
                StateKey::Balance(account, TOS_ASSET),
                StateValue::Number(*balance),
            ),
            (
                StateKey::Nonce(account),
                StateValue::Number(topoheight as u64),
            ),
        ];
        store.write_block(topoheight as u64, &changes).unwrap();
    }
    balances
}

/// Flips one bit of every stored copy of `balance`'s value bytes in `db`'s database (redb
/// copies pages on write, so a stale copy may sit beside the live one); how many.
fn flip_value(db: &Path, balance: u64) -> usize {
    let file = db.join("state.redb");
    let mut bytes = std::fs::read(&file).unwrap();
    let mut pattern = vec![0u8];
    pattern.extend_from_slice(&balance.to_le_bytes());
    let at: Vec<usize> = bytes
        .windows(pattern.len())
        .enumerate()
        .filter(|(_, w)| *w == pattern.as_slice())
        .map(|(i, _)| i)
        .collect();
    for &i in &at {
        bytes[i + 6] ^= 0x01;
    }
    std::fs::write(&file, &bytes).unwrap();
    at.len()
}

/// Every block is recorded with a chained commitment of what it wrote: `inspect --verify`
/// checks them all and names the first topoheight a flipped bit in a value disagrees
/// with; `run` and `replay` check the newest block on open and refuse a damaged one.
#[test]
fn a_flipped_value_is_found_by_verify_and_on_open() {
    let dir = tempdir("flipped-value");
    let good = dir.join("good");
    let balances = three_blocks(&good);
    let verify = |db: &Path| {
        bin()
            .args(["inspect", "--verify", "--db"])
            .arg(db)
            .output()
            .unwrap()
    };
    let out = ok(verify(&good));
    assert!(
        out.contains("ok, blocks 0..=2 and their 6 versions match"),
        "{out}"
    );

    // A value of block 1: `inspect --verify` names topoheight 1; opening checks only the
    // newest block, so `run` goes on (and its new block chains on the damaged one).
    let older = dir.join("older");
    std::fs::create_dir_all(&older).unwrap();
    std::fs::copy(good.join("state.redb"), older.join("state.redb")).unwrap();
    assert!(flip_value(&older, balances[1]) >= 1);
    let bytes = std::fs::read(older.join("state.redb")).unwrap();
    let out = verify(&older);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("failed verification")
            && stderr.contains("topoheight 1 does not match the commitment")
            && stderr.contains(older.join("state.redb").to_str().unwrap()),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(std::fs::read(older.join("state.redb")).unwrap() == bytes);

    // A value of the newest block: refused by `verify`, `run` and `replay` alike.
    let newest = dir.join("newest");
    std::fs::create_dir_all(&newest).unwrap();
    std::fs::copy(good.join("state.redb"), newest.join("state.redb")).unwrap();
    assert!(flip_value(&newest, balances[2]) >= 1);
    let stderr = String::from_utf8_lossy(&verify(&newest).stderr).into_owned();
    assert!(stderr.contains("topoheight 2 does not match"), "{stderr}");
    let blocks = dir.join("blocks.jsonl");
    std::fs::write(&blocks, format!("{}\n", block(3, "1", &"ab".repeat(32)))).unwrap();
    for args in [
        vec!["run", "--blocks", "1", "--txs", "10", "--db"],
        vec!["replay", "--blocks", blocks.to_str().unwrap(), "--db"],
    ] {
        let out = bin().args(&args).arg(&newest).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("topoheight 2 does not match the commitment")
                && stderr.contains("cannot open the database"),
            "{args:?}: {stderr}"
        );
    }
}
