//! Why a block fails (a transaction's own failure is a [`TxError`](crate::TxError) in its
//! result, not an error).

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
    /// The database engine met damage in the file's own structure (its pages) while
    /// reading or writing; what it said.
    #[error("the database is damaged ({0}); restore it from a copy")]
    Damaged(String),
    /// The file is not a database this program can use (what and why, in words).
    #[error("{0}")]
    NotADatabase(String),
    /// What a block wrote no longer matches the commitment recorded with it: the file was
    /// damaged after the write (what disagrees, in words).
    #[error("the state written at topoheight {topoheight} does not match the commitment recorded with it ({what}): the database is damaged; restore it from a copy")]
    Mismatch {
        /// The first topoheight found to disagree.
        topoheight: u64,
        /// What disagrees.
        what: String,
    },
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
    /// The block's contract transactions declare more gas than `max_block_gas` allows:
    /// nothing of it runs or is written.
    #[error("the block declares {declared} gas, more than the bound of {limit}")]
    BlockGasLimit {
        /// The sum of its transactions' `max_gas`.
        declared: u64,
        /// The configured bound.
        limit: u64,
    },
    /// A block rejected in acceptance mode cannot be committed.
    #[error(
        "the block was rejected by its transaction {index} (code {code:#06x}); nothing is written"
    )]
    Rejected {
        /// The rejecting transaction.
        index: usize,
        /// Its TOS code.
        code: u16,
    },
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
