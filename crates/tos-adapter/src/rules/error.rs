//! Why a transaction is rejected: TOS's error codes.

use crate::primitives::Hash;

/// Why a transaction was rejected, with TOS's numeric code ([`TxError::code`]) and its
/// figures. A rejected transaction changes nothing: no fee, no nonce, no receiver.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// 0x0100: malformed, or a field the rules refuse as a format error (a UNO fee, a
    /// deposit of zero, a burn whose amount and fee overflow).
    #[error("invalid format: {0}")]
    InvalidFormat(&'static str),
    /// 0x0102 (TOS's `INVALID_TYPE`): for another network.
    #[error("chain id {got} is not this network's ({expected})")]
    ChainIdMismatch {
        /// The network's chain id.
        expected: u64,
        /// The transaction's.
        got: u8,
    },
    /// 0x0103: the source's or a multisig participant's signature does not verify.
    #[error("invalid signature")]
    InvalidSignature,
    /// 0x0105: a burn of zero.
    #[error("invalid amount: a burn of zero")]
    InvalidAmount,
    /// 0x0107: a payload rule (multisig set-up and signatures, `max_gas`, `extra_data`).
    #[error("invalid payload: {0}")]
    InvalidPayload(&'static str),
    /// 0x0110: the nonce was used already.
    #[error("nonce too low: expected {expected}, got {got}")]
    NonceTooLow {
        /// The source's nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// 0x0111: the nonce is ahead of the source's.
    #[error("nonce too high: expected {expected}, got {got}")]
    NonceTooHigh {
        /// The source's nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// 0x0300: the source holds less of an asset than the transaction spends.
    #[error("insufficient balance of {asset}: available {available}, required {required}")]
    InsufficientBalance {
        /// The asset.
        asset: Hash,
        /// The source's balance.
        available: u64,
        /// What the transaction spends of it (saturated at 2^64-1).
        required: u64,
    },
    /// 0x0301: the source's TOS balance does not cover the fee.
    #[error("insufficient fee: available {available}, required {required}")]
    InsufficientFee {
        /// The source's TOS balance.
        available: u64,
        /// The fee.
        required: u64,
    },
    /// 0x0301: a fee of zero on a type that must pay one (all but contract calls).
    #[error("insufficient fee: a fee of zero")]
    FeeZero,
    /// 0x0301: the transfers' amounts, or amounts and fee, do not fit in 64 bits.
    #[error("insufficient fee: the amounts overflow")]
    AmountOverflow,
    /// 0x0304: a receiver's balance, a burned supply or an accumulator would overflow.
    #[error("overflow")]
    Overflow,
    /// 0x0400: the source does not exist.
    #[error("account not found")]
    AccountNotFound,
    /// 0x0405 (as the daemon reports it): the deployer already has a contract of this
    /// code.
    #[error("contract {0} already exists")]
    ContractExists(Hash),
    /// 0x0409: a transfer to its own source.
    #[error("self operation: a transfer to the source")]
    SelfOperation,
    /// 0x0500: the invoked contract is not deployed.
    #[error("contract {0} not found")]
    ContractNotFound(Hash),
    /// 0xFF00: the VM panicked (a bug); the transaction is treated as rejected.
    #[error("internal error: VM panic: {0}")]
    VmPanic(String),
}

impl TxError {
    /// TOS's numeric error code.
    pub fn code(&self) -> u16 {
        match self {
            TxError::InvalidFormat(_) => 0x0100,
            TxError::ChainIdMismatch { .. } => 0x0102,
            TxError::InvalidSignature => 0x0103,
            TxError::InvalidAmount => 0x0105,
            TxError::InvalidPayload(_) => 0x0107,
            TxError::NonceTooLow { .. } => 0x0110,
            TxError::NonceTooHigh { .. } => 0x0111,
            TxError::InsufficientBalance { .. } => 0x0300,
            TxError::InsufficientFee { .. } | TxError::FeeZero | TxError::AmountOverflow => 0x0301,
            TxError::Overflow => 0x0304,
            TxError::AccountNotFound => 0x0400,
            TxError::ContractExists(_) => 0x0405,
            TxError::SelfOperation => 0x0409,
            TxError::ContractNotFound(_) => 0x0500,
            TxError::VmPanic(_) => 0xFF00,
        }
    }

    /// The reason's name, as results write it (`"kind"`).
    pub fn kind(&self) -> &'static str {
        match self {
            TxError::InvalidFormat(_) => "InvalidFormat",
            TxError::ChainIdMismatch { .. } => "ChainIdMismatch",
            TxError::InvalidSignature => "InvalidSignature",
            TxError::InvalidAmount => "InvalidAmount",
            TxError::InvalidPayload(_) => "InvalidPayload",
            TxError::NonceTooLow { .. } => "NonceTooLow",
            TxError::NonceTooHigh { .. } => "NonceTooHigh",
            TxError::InsufficientBalance { .. } => "InsufficientBalance",
            TxError::InsufficientFee { .. } => "InsufficientFee",
            TxError::FeeZero => "FeeZero",
            TxError::AmountOverflow => "AmountOverflow",
            TxError::Overflow => "Overflow",
            TxError::AccountNotFound => "AccountNotFound",
            TxError::ContractExists(_) => "ContractExists",
            TxError::SelfOperation => "SelfOperation",
            TxError::ContractNotFound(_) => "ContractNotFound",
            TxError::VmPanic(_) => "VmPanic",
        }
    }

    /// TOS's name of the code (`"NONCE_TOO_LOW"`).
    pub fn code_name(&self) -> &'static str {
        code_name(self.code())
    }
}

/// TOS's name of an error code, `"UNKNOWN"` for a code the rules here never give.
pub fn code_name(code: u16) -> &'static str {
    match code {
        0x0000 => "SUCCESS",
        0x0100 => "INVALID_FORMAT",
        0x0102 => "INVALID_TYPE",
        0x0103 => "INVALID_SIGNATURE",
        0x0105 => "INVALID_AMOUNT",
        0x0107 => "INVALID_PAYLOAD",
        0x0110 => "NONCE_TOO_LOW",
        0x0111 => "NONCE_TOO_HIGH",
        0x0300 => "INSUFFICIENT_BALANCE",
        0x0301 => "INSUFFICIENT_FEE",
        0x0304 => "OVERFLOW",
        0x0400 => "ACCOUNT_NOT_FOUND",
        0x0405 => "DOMAIN_EXISTS",
        0x0409 => "SELF_OPERATION",
        0x0500 => "CONTRACT_NOT_FOUND",
        0xFF00 => "INTERNAL_ERROR",
        0xFF01 => "NOT_IMPLEMENTED",
        _ => "UNKNOWN",
    }
}
