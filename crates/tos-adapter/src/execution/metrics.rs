//! Metrics of executed blocks, through the `metrics` facade the TOS daemon uses: the
//! daemon (or `tos-blockstm run --metrics-addr`) installs the exporter.

use crate::block::BlockExecution;
use executor::ExecutionPath;
use std::time::Duration;

/// Records one executed block.
pub(crate) fn record_block(execution: &BlockExecution, wall: Duration) {
    let path = match execution.path {
        ExecutionPath::Parallel => "parallel",
        ExecutionPath::Sequential(_) => "sequential",
        ExecutionPath::Fallback(_) => "fallback",
    };
    let txs = execution.results.len() as u64;
    let stats = &execution.stats;
    metrics::counter!("tos_blockstm_blocks_total", "path" => path).increment(1);
    metrics::counter!("tos_blockstm_transactions_total").increment(txs);
    metrics::counter!("tos_blockstm_incarnations_total").increment(stats.incarnations);
    metrics::counter!("tos_blockstm_validations_total").increment(stats.validations);
    metrics::counter!("tos_blockstm_aborts_total").increment(stats.aborts);
    metrics::counter!("tos_blockstm_dependency_waits_total").increment(stats.dependency_waits);
    metrics::counter!("tos_blockstm_sequential_suffix_transactions_total")
        .increment(stats.sequential_suffix);
    let gas: u64 = execution
        .results
        .iter()
        .fold(0, |total, r| total.saturating_add(r.gas_used));
    metrics::counter!("tos_blockstm_contract_gas_used_total").increment(gas);
    metrics::histogram!("tos_blockstm_block_execution_seconds").record(wall.as_secs_f64());
    metrics::histogram!("tos_blockstm_block_transactions").record(txs as f64);
    // Time inside the VM over wall time: the speed-up actually achieved. A sequential
    // block is one thread doing all the work: 1.
    let ratio = match execution.path {
        ExecutionPath::Parallel if !wall.is_zero() => {
            stats.vm_nanos as f64 / wall.as_nanos() as f64
        }
        _ => 1.0,
    };
    metrics::histogram!("tos_blockstm_work_to_wall_ratio").record(ratio);
}
