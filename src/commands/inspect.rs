//! `tos-blockstm inspect`: an account's state and version history, or the whole latest
//! state as JSON (docs/FORMATS.md).

use super::{open_existing_db, DB_FILE};
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::ProgressBar;
use serde_json::{json, Map, Value};
use std::io::IsTerminal;
use std::path::PathBuf;
use tos_adapter::{Global, PublicKey, RedbStore, StateKey, StateValue, TosStorage};

/// Options of `tos-blockstm inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Data directory.
    #[arg(long, default_value = "./tos-blockstm-data")]
    pub db: PathBuf,
    /// The account to show (64 hex characters).
    pub account: Option<String>,
    /// Show every account.
    #[arg(long)]
    pub all: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Check every block against the commitment recorded with it, and name the first
    /// topoheight that disagrees.
    #[arg(long, conflicts_with_all = ["account", "all"])]
    pub verify: bool,
}

fn multisig_json(value: &StateValue) -> Value {
    match value {
        StateValue::MultiSig(Some(config)) => json!({
            "threshold": config.threshold,
            "participants": config.participants.iter().map(PublicKey::to_hex).collect::<Vec<_>>(),
        }),
        _ => Value::Null,
    }
}

/// Runs `inspect`.
pub fn main(args: InspectArgs) -> Result<()> {
    let store = open_existing_db(&args.db)?;
    if args.verify {
        return verify(&store, &args);
    }
    let latest = store.latest_all()?;
    match (&args.account, args.all) {
        (None, true) => {
            let mut accounts: Map<String, Value> = Map::new();
            let mut burned: Map<String, Value> = Map::new();
            let mut contracts: Map<String, Value> = Map::new();
            let mut gas_fee_total = 0;
            let hex = tos_adapter::to_hex;
            let mut global: Map<String, Value> = Map::new();
            for (key, version) in &latest {
                match (key, &version.value) {
                    (StateKey::Nonce(a), StateValue::Number(n)) => {
                        let entry = accounts.entry(a.to_hex()).or_insert_with(empty_account);
                        entry["nonce"] = json!(n);
                    }
                    (StateKey::Balance(a, asset), StateValue::Number(n)) => {
                        let entry = accounts.entry(a.to_hex()).or_insert_with(empty_account);
                        entry["balances"][asset.to_hex()] = json!(n);
                    }
                    (StateKey::MultiSig(a), value) => {
                        let entry = accounts.entry(a.to_hex()).or_insert_with(empty_account);
                        entry["multisig"] = multisig_json(value);
                    }
                    (StateKey::GasFee, StateValue::Number(n)) => gas_fee_total = *n,
                    (StateKey::BurnedSupply(asset), StateValue::Number(n)) => {
                        burned.insert(asset.to_hex(), json!(n));
                    }
                    // Contracts: in docs/FORMATS.md's state object.
                    (StateKey::ContractModule(c), StateValue::Module(module)) => {
                        let entry = contracts.entry(c.to_hex()).or_insert_with(empty_contract);
                        entry["module_bytes"] = json!(module.len());
                    }
                    (
                        StateKey::ContractData(c, k),
                        StateValue::Data(_) | StateValue::DataWord(_),
                    ) => {
                        if let Some(Some(value)) = version.value.as_data() {
                            let entry = contracts.entry(c.to_hex()).or_insert_with(empty_contract);
                            entry["storage"][k.to_hex()] = json!(hex(&value));
                        }
                    }
                    (StateKey::ContractBalance(c, asset), StateValue::Number(n)) => {
                        let entry = contracts.entry(c.to_hex()).or_insert_with(empty_contract);
                        entry["balances"][asset.to_hex()] = json!(n);
                    }
                    (StateKey::Global(g), StateValue::Number(n)) => {
                        let name = match g {
                            Global::NetworkChainId => "network_chain_id",
                            Global::TotalSupply => "total_supply",
                            Global::BlockHeight => "block_height",
                            Global::Timestamp => "timestamp",
                        };
                        global.insert(name.to_owned(), json!(n));
                    }
                    _ => bail!("corrupt state: {key:?} holds {:?}", version.value),
                }
            }
            let summary = store.summary()?;
            let state = json!({
                "topoheight": store.topoheight()?,
                "global": global,
                "state_digest": summary.digest().to_hex(),
                "accounts": accounts,
                "gas_fee_total": gas_fee_total,
                "burned": burned,
                "contracts": contracts,
            });
            if args.json {
                println!("{}", serde_json::to_string_pretty(&state)?);
            } else {
                println!(
                    "topoheight {}: {} accounts, {} contracts, gas fees {}, burned {}, block height {}, state digest {}",
                    state["topoheight"],
                    state["accounts"].as_object().map_or(0, Map::len),
                    state["contracts"].as_object().map_or(0, Map::len),
                    gas_fee_total,
                    state["burned"],
                    summary.block_height,
                    state["state_digest"].as_str().unwrap_or_default()
                );
            }
        }
        (Some(hex), false) => {
            let account = PublicKey::from_hex(hex)
                .map_err(|e| anyhow::anyhow!("account `{hex}` is not 64 hex characters: {e}"))?;
            let keys: Vec<&StateKey> = latest
                .iter()
                .map(|(k, _)| k)
                .filter(|k| match k {
                    StateKey::Nonce(a) | StateKey::MultiSig(a) | StateKey::Balance(a, _) => {
                        *a == account
                    }
                    _ => false,
                })
                .collect();
            if keys.is_empty() {
                bail!("account {hex} has nothing stored");
            }
            let mut out = json!({"account": hex, "topoheight": store.topoheight()?});
            for key in keys {
                let history: Vec<Value> = store
                    .history(key)?
                    .into_iter()
                    .map(|v| {
                        json!({
                            "topoheight": v.topoheight,
                            "previous_topoheight": v.previous_topoheight,
                            "value": match &v.value {
                                StateValue::Number(n) => json!(n),
                                other => multisig_json(other),
                            },
                        })
                    })
                    .collect();
                let current = history
                    .first()
                    .map(|h| h["value"].clone())
                    .unwrap_or(Value::Null);
                match key {
                    StateKey::Nonce(_) => {
                        out["nonce"] = current;
                        out["nonce_history"] = json!(history);
                    }
                    StateKey::MultiSig(_) => {
                        out["multisig"] = current;
                        out["multisig_history"] = json!(history);
                    }
                    StateKey::Balance(_, asset) => {
                        out["balances"][asset.to_hex()] = current;
                        out["balance_history"][asset.to_hex()] = json!(history);
                    }
                    _ => {}
                }
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("account    {hex}");
                println!("topoheight {}", out["topoheight"]);
                println!(
                    "nonce      {}",
                    out.get("nonce").cloned().unwrap_or(json!(0))
                );
                if let Some(balances) = out.get("balances").and_then(Value::as_object) {
                    for (asset, amount) in balances {
                        println!("balance    {asset}: {amount}");
                    }
                }
                println!(
                    "multisig   {}",
                    out.get("multisig").cloned().unwrap_or(Value::Null)
                );
                println!("history:");
                for (name, history) in [("nonce", out.get("nonce_history"))] {
                    if let Some(h) = history.and_then(Value::as_array) {
                        for v in h {
                            println!(
                                "  {name} = {} at topoheight {} (previous {})",
                                v["value"], v["topoheight"], v["previous_topoheight"]
                            );
                        }
                    }
                }
                if let Some(per_asset) = out.get("balance_history").and_then(Value::as_object) {
                    for (asset, h) in per_asset {
                        for v in h.as_array().into_iter().flatten() {
                            println!(
                                "  balance {}… = {} at topoheight {} (previous {})",
                                &asset[..8],
                                v["value"],
                                v["topoheight"],
                                v["previous_topoheight"]
                            );
                        }
                    }
                }
            }
        }
        _ => bail!("give either an ACCOUNT or --all"),
    }
    Ok(())
}

/// `inspect --verify`: every block against its commitment, with a progress bar on a
/// terminal.
fn verify(store: &RedbStore, args: &InspectArgs) -> Result<()> {
    let path = args.db.join(DB_FILE);
    let bar = ProgressBar::hidden();
    if std::io::stderr().is_terminal() && !args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }
    let verified = store
        .verify(|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .with_context(|| format!("{} failed verification", path.display()))?;
    bar.finish_and_clear();
    let commitment = tos_adapter::to_hex(&verified.commitment);
    if args.json {
        let out = json!({
            "verified": true,
            "topoheights": verified.topoheights.map(|(first, newest)| json!([first, newest])),
            "versions": verified.versions,
            "commitment": commitment,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        match verified.topoheights {
            Some((first, newest)) => println!(
                "{}: ok, blocks {first}..={newest} and their {} versions match their commitments; newest commitment {commitment}",
                path.display(),
                verified.versions
            ),
            None => println!("{}: ok, nothing written yet", path.display()),
        }
    }
    Ok(())
}

fn empty_contract() -> Value {
    json!({"module_bytes": 0, "storage": {}, "balances": {}})
}

fn empty_account() -> Value {
    json!({"nonce": 0, "balances": {}, "multisig": null})
}
