//! [`ExecutionConfig`] from a TOML file, environment variables and flags, in increasing
//! order of precedence, every value validated with a message naming where it came from.
//!
//! ```toml
//! # tos-blockstm.toml
//! enabled = true
//! min_batch_size = 10
//! max_parallelism = 8
//! verify_signatures = true
//! enable_contract_parallel = true
//! always_parallel = false
//! max_block_gas = 50000000000
//! ```
//!
//! Environment: `TOS_BLOCKSTM_ENABLED`, `TOS_BLOCKSTM_MIN_BATCH_SIZE`,
//! `TOS_BLOCKSTM_MAX_PARALLELISM`, `TOS_BLOCKSTM_VERIFY_SIGNATURES`,
//! `TOS_BLOCKSTM_ENABLE_CONTRACT_PARALLEL`, `TOS_BLOCKSTM_ALWAYS_PARALLEL`,
//! `TOS_BLOCKSTM_MAX_BLOCK_GAS`.

use serde::Deserialize;

/// How blocks are executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutionConfig {
    /// Parallel execution at all; when false every block runs sequentially.
    pub enabled: bool,
    /// Blocks with fewer transactions run sequentially (default 10).
    pub min_batch_size: usize,
    /// Worker threads (default: the machine's cores; 0 is an error).
    pub max_parallelism: usize,
    /// Verify every transaction's signature (default true).
    pub verify_signatures: bool,
    /// Run blocks with contract transactions under Block-STM (default true). Each call
    /// runs in a fresh VM context against its own overlay, and every storage entry,
    /// module and contract balance is a versioned key validated like any other, so
    /// parallel results equal sequential ones (the proptests check it); blocks whose
    /// contract calls form one chain are still found and run sequentially. False runs
    /// every block holding a contract transaction sequentially: for a daemon whose own
    /// contract runtime is not deterministic across threads, or to rule the engine out.
    pub enable_contract_parallel: bool,
    /// Run every block under Block-STM, on any number of threads (default false): no
    /// small-block cutoff, no estimate, no probe. For tests and conformance runs that
    /// must exercise the engine itself; slower on the blocks the policy would run
    /// sequentially.
    pub always_parallel: bool,
    /// The most gas one block's contract transactions may be given, summed over their
    /// `max_gas` (calls and constructors); a block declaring more is refused whole, as an
    /// error, before anything runs (default: no bound). An operator's bound on the work
    /// one block can cost; TOS's own bound per transaction (10⁹) holds regardless.
    pub max_block_gas: Option<u64>,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_batch_size: executor::DEFAULT_MIN_BLOCK_SIZE,
            max_parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
            verify_signatures: true,
            enable_contract_parallel: true,
            always_parallel: false,
            max_block_gas: None,
        }
    }
}

/// A configuration value that cannot be used, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file does not parse, or names an unknown setting.
    #[error("configuration file: {0}")]
    File(String),
    /// An environment variable holds a value of the wrong type.
    #[error("environment variable {var}={value:?}: {reason}")]
    Env {
        /// The variable.
        var: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting is out of range (whichever layer set it).
    #[error("{field}: {reason}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    enabled: Option<bool>,
    min_batch_size: Option<usize>,
    max_parallelism: Option<usize>,
    verify_signatures: Option<bool>,
    enable_contract_parallel: Option<bool>,
    always_parallel: Option<bool>,
    max_block_gas: Option<u64>,
}

/// The environment variables read, all prefixed `TOS_BLOCKSTM_`.
pub const ENV_PREFIX: &str = "TOS_BLOCKSTM_";

impl ExecutionConfig {
    /// This configuration with the settings of TOML `text` applied.
    pub fn with_toml(mut self, text: &str) -> Result<Self, ConfigError> {
        let file: File = toml::from_str(text).map_err(|e| ConfigError::File(e.to_string()))?;
        if let Some(v) = file.enabled {
            self.enabled = v;
        }
        if let Some(v) = file.min_batch_size {
            self.min_batch_size = v;
        }
        if let Some(v) = file.max_parallelism {
            self.max_parallelism = v;
        }
        if let Some(v) = file.verify_signatures {
            self.verify_signatures = v;
        }
        if let Some(v) = file.enable_contract_parallel {
            self.enable_contract_parallel = v;
        }
        if let Some(v) = file.always_parallel {
            self.always_parallel = v;
        }
        if let Some(v) = file.max_block_gas {
            self.max_block_gas = Some(v);
        }
        Ok(self)
    }

    /// This configuration with the `TOS_BLOCKSTM_*` variables among `vars` applied
    /// (pass `std::env::vars()`); other variables are ignored, unknown `TOS_BLOCKSTM_`
    /// ones are an error.
    pub fn with_env(
        mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        for (var, value) in vars {
            let Some(name) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let bad = |reason: &str| ConfigError::Env {
                var: var.clone(),
                value: value.clone(),
                reason: reason.to_owned(),
            };
            let boolean = || match value.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(bad("expected true or false")),
            };
            let number = || {
                value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| bad("expected a non-negative integer"))
            };
            match name {
                "ENABLED" => self.enabled = boolean()?,
                "MIN_BATCH_SIZE" => self.min_batch_size = number()?,
                "MAX_PARALLELISM" => self.max_parallelism = number()?,
                "VERIFY_SIGNATURES" => self.verify_signatures = boolean()?,
                "ENABLE_CONTRACT_PARALLEL" => self.enable_contract_parallel = boolean()?,
                "ALWAYS_PARALLEL" => self.always_parallel = boolean()?,
                "MAX_BLOCK_GAS" => {
                    self.max_block_gas = Some(
                        value
                            .trim()
                            .parse::<u64>()
                            .map_err(|_| bad("expected a non-negative integer"))?,
                    )
                }
                // Variables of the binary itself (such as the log format) are not ours.
                "LOG_FORMAT" => {}
                _ => return Err(bad("unknown setting")),
            }
        }
        Ok(self)
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_parallelism == 0 {
            return Err(ConfigError::Invalid {
                field: "max_parallelism",
                reason: "must be at least 1",
            });
        }
        if self.max_parallelism > 4096 {
            return Err(ConfigError::Invalid {
                field: "max_parallelism",
                reason: "must be at most 4096",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_apply_in_order_and_bad_values_are_named() {
        let config = ExecutionConfig::default()
            .with_toml("min_batch_size = 50\nmax_parallelism = 3\nverify_signatures = false")
            .unwrap()
            .with_env(env(&[
                ("TOS_BLOCKSTM_MAX_PARALLELISM", "5"),
                ("PATH", "/bin"),
            ]))
            .unwrap();
        assert_eq!(config.min_batch_size, 50);
        assert_eq!(config.max_parallelism, 5);
        assert!(!config.verify_signatures);
        assert!(config.enable_contract_parallel);
        assert_eq!(config.max_block_gas, None);
        config.validate().unwrap();
        let bounded = ExecutionConfig::default()
            .with_toml("max_block_gas = 7")
            .unwrap();
        assert_eq!(bounded.max_block_gas, Some(7));
        let bounded = bounded
            .with_env(env(&[("TOS_BLOCKSTM_MAX_BLOCK_GAS", "9")]))
            .unwrap();
        assert_eq!(bounded.max_block_gas, Some(9));
        let config = ExecutionConfig::default()
            .with_toml("enable_contract_parallel = false")
            .unwrap();
        assert!(!config.enable_contract_parallel);
        let config = config
            .with_env(env(&[("TOS_BLOCKSTM_ENABLE_CONTRACT_PARALLEL", "on")]))
            .unwrap();
        assert!(config.enable_contract_parallel);

        let err = ExecutionConfig::default()
            .with_toml("max_paralelism = 3")
            .unwrap_err();
        assert!(err.to_string().contains("max_paralelism"), "{err}");
        let err = ExecutionConfig::default()
            .with_toml("min_batch_size = -1")
            .unwrap_err();
        assert!(matches!(err, ConfigError::File(_)));
        let err = ExecutionConfig::default()
            .with_env(env(&[("TOS_BLOCKSTM_ENABLED", "maybe")]))
            .unwrap_err();
        assert!(err.to_string().contains("TOS_BLOCKSTM_ENABLED"), "{err}");
        let err = ExecutionConfig::default()
            .with_env(env(&[("TOS_BLOCKSTM_THREADS", "4")]))
            .unwrap_err();
        assert!(err.to_string().contains("unknown setting"), "{err}");
        let zero = ExecutionConfig {
            max_parallelism: 0,
            ..ExecutionConfig::default()
        };
        assert!(zero
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_parallelism"));
    }
}
