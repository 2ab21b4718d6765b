//! `tos-blockstm`: the Block-STM block executor for TOS, run against an embedded database.
//!
//! - `run` (the default): generate blocks of a workload, execute each with Block-STM,
//!   check it against the sequential executor, commit it to the database.
//! - `bench`: sequential against parallel on the workloads of docs/WORKLOADS.md.
//! - `replay`: execute and commit the blocks of a file (docs/FORMATS.md).
//! - `inspect`: show an account, or the whole state as JSON.
//! - `conformance`: TOS's conformance server, for TOS's harness.
//! - `engine`: the engine benchmark on mock transactions.

mod commands;

use clap::{Parser, Subcommand};
use commands::{
    bench::BenchArgs, conformance::ConformanceArgs, engine::EngineArgs, inspect::InspectArgs,
    replay::ReplayArgs, run::RunArgs,
};

/// Block-STM parallel block executor for the TOS blockchain.
///
/// Logs go to standard error, filtered by `RUST_LOG` (default `warn`; `RUST_LOG=debug`
/// logs each block's preload, execution and commit with their durations).
#[derive(Parser, Debug)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Log format: `text` or `json`.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// `run`'s options, when no command is given.
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate, execute, verify and commit blocks (the default command).
    Run(RunArgs),
    /// Sequential against parallel execution on the workloads, with a report.
    Bench(BenchArgs),
    /// Execute and commit the blocks of a block file.
    Replay(ReplayArgs),
    /// Show an account's state and history, or the whole state as JSON.
    Inspect(InspectArgs),
    /// TOS's conformance server (the HTTP API of TOS's harness).
    Conformance(ConformanceArgs),
    /// The engine benchmark on mock transactions of a calibrated cost.
    Engine(EngineArgs),
}

/// Logs to standard error, filtered by `RUST_LOG`, each span's duration when it closes.
fn init_logging(json: bool) {
    use tracing_subscriber::fmt::format::FmtSpan;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(std::io::stderr);
    // A second initialisation (never here) would be refused; nothing to do then.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn main() {
    let cli = Cli::parse();
    init_logging(cli.log_format == "json");
    let result = match cli.command {
        None => commands::run::main(cli.run),
        Some(Command::Run(args)) => commands::run::main(args),
        Some(Command::Bench(args)) => commands::bench::main(args),
        Some(Command::Replay(args)) => commands::replay::main(args),
        Some(Command::Inspect(args)) => commands::inspect::main(args),
        Some(Command::Conformance(args)) => commands::conformance::main(args),
        Some(Command::Engine(args)) => commands::engine::main(args),
    };
    if let Err(error) = result {
        // The whole chain of causes on one line, no backtrace: a message for an operator.
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
