//! Executor configuration.

use std::num::NonZeroUsize;

/// How blocks are executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutorConfig {
    threads: NonZeroUsize,
    min_block_size: usize,
}

/// A configuration value that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Zero worker threads were asked for.
    #[error("the number of threads must be at least 1 (got 0)")]
    ZeroThreads,
}

/// Below this many transactions a block runs sequentially by default: spawning workers
/// and the multi-version bookkeeping cost more than a handful of transactions.
pub const DEFAULT_MIN_BLOCK_SIZE: usize = 10;

impl Default for ExecutorConfig {
    /// All available cores, [`DEFAULT_MIN_BLOCK_SIZE`].
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            min_block_size: DEFAULT_MIN_BLOCK_SIZE,
        }
    }
}

impl ExecutorConfig {
    /// `threads` workers, the default minimum block size. Zero threads is an error.
    pub fn new(threads: usize) -> Result<Self, ConfigError> {
        let threads = NonZeroUsize::new(threads).ok_or(ConfigError::ZeroThreads)?;
        Ok(Self {
            threads,
            ..Self::default()
        })
    }

    /// Sets the minimum block size below which the sequential executor runs.
    #[must_use]
    pub fn with_min_block_size(mut self, min_block_size: usize) -> Self {
        self.min_block_size = min_block_size;
        self
    }

    /// The number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads.get()
    }

    /// The minimum block size for parallel execution.
    pub fn min_block_size(&self) -> usize {
        self.min_block_size
    }
}
