//! TOS transactions, shaped like the daemon's.

use std::fmt;
use std::sync::Arc;

/// The native asset TOS: the zero hash.
pub const TOS_ASSET: Hash = Hash([0; 32]);
/// Atomic units of one TOS.
pub const COIN_VALUE: u64 = 100_000_000;
/// Most transfers one transaction may carry.
pub const MAX_TRANSFERS: usize = 500;
/// Most participants of a multisig.
pub const MAX_MULTISIG_PARTICIPANTS: usize = 255;

macro_rules! bytes32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Lowercase hex, 64 characters.
            pub fn to_hex(&self) -> String {
                to_hex(&self.0)
            }

            /// Parses 64 hex characters.
            pub fn from_hex(s: &str) -> Result<Self, HexError> {
                let bytes = from_hex(s)?;
                let array: [u8; 32] = bytes
                    .try_into()
                    .map_err(|b: Vec<u8>| HexError::Length { expected: 32, got: b.len() })?;
                Ok(Self(array))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({}…)", stringify!($name), &self.to_hex()[..12])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

bytes32!(
    /// An account: a compressed Ristretto public key.
    PublicKey
);
bytes32!(
    /// A 32-byte hash (blake3): an asset id, a transaction hash.
    Hash
);

/// A hex string that does not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// An odd number of characters or a non-hex character.
    #[error("invalid hex string")]
    Invalid,
    /// The wrong number of bytes.
    #[error("expected {expected} bytes, got {got}")]
    Length {
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        got: usize,
    },
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Decodes hex (either case).
pub fn from_hex(s: &str) -> Result<Vec<u8>, HexError> {
    fn nibble(c: u8) -> Result<u8, HexError> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(HexError::Invalid),
        }
    }
    let s = s.as_bytes();
    if s.len() % 2 != 0 {
        return Err(HexError::Invalid);
    }
    s.chunks_exact(2)
        .map(|pair| Ok((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

/// One transfer of a `Transfers` transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferPayload {
    /// The asset moved.
    pub asset: Hash,
    /// Who receives it.
    pub destination: PublicKey,
    /// How much.
    pub amount: u64,
    /// Opaque data for the receiver.
    pub extra_data: Option<Vec<u8>>,
}

/// A burn of an asset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BurnPayload {
    /// The asset burned.
    pub asset: Hash,
    /// How much.
    pub amount: u64,
}

/// Sets (or, with threshold 0 and no participants, deletes) the source's multisig.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiSigPayload {
    /// Signatures required.
    pub threshold: u8,
    /// Who may sign.
    pub participants: Vec<PublicKey>,
}

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransactionType {
    /// 1 to 500 transfers.
    Transfers(Vec<TransferPayload>),
    /// A burn.
    Burn(BurnPayload),
    /// A multisig set-up.
    MultiSig(MultiSigPayload),
}

/// A TOS transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// Format version.
    pub version: u8,
    /// The account that signs and pays.
    pub source: PublicKey,
    /// Must equal the source's nonce.
    pub nonce: u64,
    /// Paid in TOS to the block's fee accumulator.
    pub fee: u64,
    /// What it does.
    pub data: TransactionType,
    /// The source's signature of [`signing_bytes`](Self::signing_bytes); `None` only
    /// where signature verification is off.
    pub signature: Option<crate::crypto::Signature>,
}

impl Transaction {
    /// The canonical bytes the signature covers: everything but the signature.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.push(self.version);
        out.extend_from_slice(&self.source.0);
        out.extend_from_slice(&self.nonce.to_le_bytes());
        out.extend_from_slice(&self.fee.to_le_bytes());
        match &self.data {
            TransactionType::Transfers(transfers) => {
                out.push(0);
                out.extend_from_slice(&(transfers.len() as u32).to_le_bytes());
                for t in transfers {
                    out.extend_from_slice(&t.asset.0);
                    out.extend_from_slice(&t.destination.0);
                    out.extend_from_slice(&t.amount.to_le_bytes());
                    match &t.extra_data {
                        None => out.push(0),
                        Some(data) => {
                            out.push(1);
                            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
                            out.extend_from_slice(data);
                        }
                    }
                }
            }
            TransactionType::Burn(burn) => {
                out.push(1);
                out.extend_from_slice(&burn.asset.0);
                out.extend_from_slice(&burn.amount.to_le_bytes());
            }
            TransactionType::MultiSig(multisig) => {
                out.push(2);
                out.push(multisig.threshold);
                out.extend_from_slice(&(multisig.participants.len() as u32).to_le_bytes());
                for p in &multisig.participants {
                    out.extend_from_slice(&p.0);
                }
            }
        }
        out
    }

    /// The transaction's hash: blake3 of its signing bytes and its signature.
    pub fn hash(&self) -> Hash {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.signing_bytes());
        if let Some(signature) = &self.signature {
            hasher.update(&signature.to_bytes());
        }
        Hash(*hasher.finalize().as_bytes())
    }
}

/// A configured multisig.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiSigConfig {
    /// Signatures required.
    pub threshold: u8,
    /// Who may sign.
    pub participants: Vec<PublicKey>,
}

/// A multisig as state holds it: shared, cheap to clone.
pub type SharedMultiSig = Arc<MultiSigConfig>;
