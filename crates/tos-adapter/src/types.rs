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
/// Burned by every contract deployed: 1 TOS.
pub const BURN_PER_CONTRACT: u64 = COIN_VALUE;
/// Largest contract module accepted, in bytes.
pub const MAX_MODULE_SIZE: usize = 64 * 1024;
/// Most parameters of one contract call.
pub const MAX_PARAMETERS: usize = 32;
/// Largest contract call parameter, in bytes.
pub const MAX_PARAMETER_SIZE: usize = 1024;
/// Most deposits of one contract call.
pub const MAX_DEPOSITS: usize = 16;

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

/// Assets moved from the caller to the contract with a call, in payload order (each asset
/// at most once).
pub type Deposits = Vec<(Hash, u64)>;

/// A call of a deployed contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvokeContractPayload {
    /// The contract's address.
    pub contract: Hash,
    /// Moved from the caller to the contract's balance before the call (refunded if the
    /// call fails).
    pub deposits: Deposits,
    /// Which entry point of the contract.
    pub entry_id: u16,
    /// Most gas the call may use, paid in TOS up front; what is unused is refunded.
    pub max_gas: u64,
    /// The call's parameters, opaque bytes for the contract.
    pub parameters: Vec<Vec<u8>>,
}

/// The constructor call of a deploy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvokeConstructorPayload {
    /// Most gas the constructor may use.
    pub max_gas: u64,
    /// Moved to the new contract's balance (refunded if the constructor fails).
    pub deposits: Deposits,
}

/// Deploys a contract at [`contract_address`]`(source, nonce, module)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployContractPayload {
    /// The contract's code.
    pub module: Vec<u8>,
    /// The constructor to run (entry [`CONSTRUCTOR_ENTRY`]); if it fails, the module is
    /// not stored.
    pub invoke: Option<InvokeConstructorPayload>,
}

/// The entry id a constructor runs with.
pub const CONSTRUCTOR_ENTRY: u16 = u16::MAX;

/// Where a deploy stores its contract: blake3 of a domain tag, the deployer, the deploy's
/// nonce and the code's hash. Deterministic; two deploys never share an address (a
/// deployer's nonce is used once).
pub fn contract_address(deployer: &PublicKey, nonce: u64, module: &[u8]) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"tos-blockstm/contract");
    hasher.update(&deployer.0);
    hasher.update(&nonce.to_le_bytes());
    hasher.update(blake3::hash(module).as_bytes());
    Hash(*hasher.finalize().as_bytes())
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
    /// A call of a contract (boxed: it is larger than every other kind, and a
    /// transfer-sized `Transaction` keeps blocks of transfers compact).
    InvokeContract(Box<InvokeContractPayload>),
    /// A contract deploy, with its optional constructor (boxed, as a call).
    DeployContract(Box<DeployContractPayload>),
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_deposits(out: &mut Vec<u8>, deposits: &Deposits) {
    out.extend_from_slice(&(deposits.len() as u32).to_le_bytes());
    for (asset, amount) in deposits {
        out.extend_from_slice(&asset.0);
        out.extend_from_slice(&amount.to_le_bytes());
    }
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
        // Room for every transfer and most contract calls at once: a buffer that grows
        // is a `realloc`, which contended for the allocator's locks on contract blocks.
        let mut out = Vec::with_capacity(256);
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
            TransactionType::InvokeContract(invoke) => {
                out.push(3);
                out.extend_from_slice(&invoke.contract.0);
                put_deposits(&mut out, &invoke.deposits);
                out.extend_from_slice(&invoke.entry_id.to_le_bytes());
                out.extend_from_slice(&invoke.max_gas.to_le_bytes());
                out.extend_from_slice(&(invoke.parameters.len() as u32).to_le_bytes());
                for parameter in &invoke.parameters {
                    put_bytes(&mut out, parameter);
                }
            }
            TransactionType::DeployContract(deploy) => {
                out.push(4);
                put_bytes(&mut out, &deploy.module);
                match &deploy.invoke {
                    None => out.push(0),
                    Some(invoke) => {
                        out.push(1);
                        out.extend_from_slice(&invoke.max_gas.to_le_bytes());
                        put_deposits(&mut out, &invoke.deposits);
                    }
                }
            }
        }
        out
    }

    /// The asset whose `BurnedSupply` the transaction may add to: a burn's asset, TOS for
    /// every other kind (contract transactions burn gas and deploys in TOS).
    pub fn burned_asset(&self) -> Hash {
        match &self.data {
            TransactionType::Burn(burn) => burn.asset,
            _ => TOS_ASSET,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyPair;

    #[test]
    fn the_hash_covers_the_signing_bytes_then_the_signature() {
        let key = KeyPair::from_seed(b"hash test");
        let asset = Hash([3; 32]);
        let kinds = vec![
            TransactionType::Transfers(vec![TransferPayload {
                asset,
                destination: PublicKey([4; 32]),
                amount: 5,
                extra_data: Some(vec![6, 7]),
            }]),
            TransactionType::Burn(BurnPayload { asset, amount: 8 }),
            TransactionType::MultiSig(MultiSigPayload {
                threshold: 1,
                participants: vec![PublicKey([9; 32])],
            }),
            TransactionType::InvokeContract(Box::new(InvokeContractPayload {
                contract: Hash([10; 32]),
                deposits: vec![(asset, 11)],
                entry_id: 12,
                max_gas: 13,
                parameters: vec![vec![14; 3], vec![]],
            })),
            TransactionType::DeployContract(Box::new(DeployContractPayload {
                module: vec![15; 16],
                invoke: Some(InvokeConstructorPayload {
                    max_gas: 17,
                    deposits: vec![],
                }),
            })),
        ];
        for data in kinds {
            let mut tx = Transaction {
                version: 0,
                source: key.public_key(),
                nonce: 1,
                fee: 2,
                data,
                signature: None,
            };
            let unsigned = tx.signing_bytes();
            assert_eq!(tx.hash().0, *blake3::hash(&unsigned).as_bytes());
            let signature = key.sign(&unsigned);
            tx.signature = Some(signature);
            let mut signed = unsigned;
            signed.extend_from_slice(&signature.to_bytes());
            assert_eq!(tx.hash().0, *blake3::hash(&signed).as_bytes());
        }
    }
}
