//! The values every part of TOS shares: 32-byte keys and hashes, their hex form, the native
//! asset and a multisig configuration.

use std::fmt;
use std::sync::Arc;

/// The native asset TOS: the zero hash.
pub const TOS_ASSET: Hash = Hash([0; 32]);
/// Atomic units of one TOS.
pub const COIN_VALUE: u64 = 100_000_000;

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
