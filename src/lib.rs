//! The `tos-blockstm` binary's library: the workloads of WORKLOADS.md and the block file
//! format of BLOCKS.md, shared by the binary and the criterion benches.

pub mod blockfile;
pub mod workload;
