//! The `tos-blockstm` binary's library: the workloads of docs/WORKLOADS.md and the block file
//! format of docs/FORMATS.md, shared by the binary and the criterion benches.

pub mod blockfile;
pub mod workload;
