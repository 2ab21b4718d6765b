//! Why a transaction is rejected, and why a block fails.

use crate::types::Hash;

/// Why a transaction was rejected. A rejected transaction changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The transaction's nonce is not the source's.
    #[error("Invalid nonce: expected {expected}, got {got}")]
    InvalidNonce {
        /// The source's nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// The source holds less of an asset than the transaction spends.
    #[error("Insufficient funds of asset {asset}: available {available}, required {required}")]
    InsufficientFunds {
        /// The asset.
        asset: Hash,
        /// The source's balance.
        available: u64,
        /// What the transaction spends of it.
        required: u64,
    },
    /// A sum (spending, a credit, an accumulator, the nonce) does not fit in `u64`.
    #[error("Overflow")]
    Overflow,
    /// A transfer to the transaction's own source.
    #[error("Sender is receiver")]
    SenderIsReceiver,
    /// Not 1 to 500 transfers.
    #[error("Invalid transfer count: {count} (1 to 500 allowed)")]
    TransferCount {
        /// Transfers in the transaction.
        count: usize,
    },
    /// More than 255 participants, the source among them, or a participant twice.
    #[error("Invalid multisig participants")]
    MultiSigParticipants,
    /// A threshold outside 1..=participants (0 only to delete, with no participants).
    #[error("Invalid multisig threshold")]
    MultiSigThreshold,
    /// Deleting a multisig the source does not have.
    #[error("Multisig not configured")]
    MultiSigNotConfigured,
    /// A missing or wrong signature, with verification on.
    #[error("Invalid signature")]
    InvalidSignature,
    /// The VM panicked (a bug): the transaction is treated as rejected.
    #[error("VM panic: {0}")]
    VmPanic(String),
    /// The invoked contract is not deployed: the transaction is rejected.
    #[error("Contract {0} not found")]
    ContractNotFound(Hash),
    /// A contract call or constructor failed: a non-zero exit code, a VM error, out of
    /// gas. The transaction was executed (nonce, fee and used gas charged; deposits and
    /// unused gas refunded; the contract's changes discarded). Also the reason a deploy of
    /// a module that does not load is rejected (then nothing is charged).
    #[error("Contract failed: {reason}")]
    ContractFailed {
        /// Why, in words.
        reason: String,
    },
}

impl TxError {
    /// The reason's name, as the results file writes it (`"kind"`).
    pub fn kind(&self) -> &'static str {
        match self {
            TxError::InvalidNonce { .. } => "InvalidNonce",
            TxError::InsufficientFunds { .. } => "InsufficientFunds",
            TxError::Overflow => "Overflow",
            TxError::SenderIsReceiver => "SenderIsReceiver",
            TxError::TransferCount { .. } => "TransferCount",
            TxError::MultiSigParticipants => "MultiSigParticipants",
            TxError::MultiSigThreshold => "MultiSigThreshold",
            TxError::MultiSigNotConfigured => "MultiSigNotConfigured",
            TxError::InvalidSignature => "InvalidSignature",
            TxError::VmPanic(_) => "VmPanic",
            TxError::ContractNotFound(_) => "ContractNotFound",
            TxError::ContractFailed { .. } => "ContractFailed",
        }
    }
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The embedded database failed.
    #[error("database error: {0}")]
    Database(String),
    /// The database was written by a newer version of this program.
    #[error("database format version {found} is newer than this program supports ({supported}); upgrade tos-blockstm")]
    NewerFormat {
        /// The database's version.
        found: u64,
        /// The newest this program reads.
        supported: u64,
    },
    /// Stored bytes do not decode.
    #[error("corrupt database entry: {0}")]
    Corrupt(String),
    /// A block written at the wrong height.
    #[error("cannot write topoheight {got}: the next one is {expected}")]
    WrongTopoheight {
        /// The next topoheight.
        expected: u64,
        /// The one given.
        got: u64,
    },
    /// A failure injected by a test store.
    #[error("injected failure: {0}")]
    Injected(String),
}

/// An error of a whole block: nothing of it is written.
#[derive(Debug, thiserror::Error)]
pub enum TosError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// State holds a value of the wrong kind for its key.
    #[error("corrupt state: {0}")]
    CorruptState(String),
    /// A bad configuration value.
    #[error(transparent)]
    Config(#[from] executor::ConfigError),
    /// A bad configuration file, variable or flag.
    #[error(transparent)]
    Settings(#[from] crate::config::ConfigError),
    /// The block's topoheight does not follow the storage's.
    #[error("block at topoheight {got} does not follow the stored topoheight {stored}")]
    Topoheight {
        /// The storage's topoheight.
        stored: u64,
        /// The block's.
        got: u64,
    },
    /// The engine found itself inconsistent (a bug; nothing is written).
    #[error("internal error: {0}")]
    Internal(&'static str),
}
