//! TOS transactions as TOS's daemon and its executable spec define them: the envelope and
//! the payloads of types 0-4 (burn, transfers, multisig, invoke and deploy), their wire
//! format ([`wire`]), contract parameters ([`ValueCell`]), and the JSON form of TOS's
//! conformance vectors ([`json`]).
//!
//! The wire format, all integers big-endian:
//!
//! | field | bytes |
//! |---|---|
//! | version | 1 (only 1) |
//! | chain id | 1 (0 mainnet, 1 testnet, 2 stagenet, 3 devnet) |
//! | source | 32 |
//! | type | 1 (0 burn, 1 transfers, 2 multisig, 3 invoke, 4 deploy) |
//! | payload | see [`TransactionType`] |
//! | fee | 8 |
//! | fee type | 1 (0 TOS, 2 UNO; Energy, 1, is refused) |
//! | nonce | 8 |
//! | reference hash, topoheight | 32 + 8 |
//! | multisig | option: flag, count, then `id ‖ signature` each |
//! | signature | 64: `s ‖ e`, canonical scalars |
//!
//! The signing bytes are everything before the multisig option; the hash is blake3 of the
//! whole wire encoding.

pub mod json;
mod value;
mod wire;

pub use value::{Primitive, ValueCell, MAX_CELL_BYTES, MAX_CELL_DEPTH, MAX_CELL_ITEMS};
pub use wire::{DecodeError, DecodeReason};

use crate::crypto::{KeyPair, Signature};
use crate::primitives::{Hash, PublicKey, COIN_VALUE};

/// The only transaction version: T1.
pub const TX_VERSION: u8 = 1;
/// Devnet's chain id: what the workloads and tests use, as TOS's vectors do.
pub const DEVNET_CHAIN_ID: u8 = 3;
/// Most transfers one transaction may carry (at least one).
pub const MAX_TRANSFERS: usize = 500;
/// Most participants of a multisig.
pub const MAX_MULTISIG_PARTICIPANTS: usize = 255;
/// Longest `extra_data` of one transfer the rules accept, in bytes.
pub const MAX_EXTRA_DATA_SIZE: usize = 128;
/// Most `extra_data` of one transaction the rules accept, in bytes.
pub const MAX_EXTRA_DATA_TOTAL: usize = 4096;
/// Longest byte vector the wire format decodes (an `extra_data`).
pub const MAX_WIRE_BYTES: usize = 1024;
/// Most gas one contract call may be given.
pub const MAX_GAS_USAGE_PER_TX: u64 = 1_000_000_000;
/// Most deposits of one contract call.
pub const MAX_DEPOSITS: usize = 255;
/// Largest contract module the wire format decodes: 10 MiB.
pub const MAX_MODULE_SIZE: usize = 10 * 1024 * 1024;
/// The magic every contract module starts with: an ELF file.
pub const ELF_MAGIC: [u8; 4] = *b"\x7fELF";
/// Taken from the deployer of every contract: 1 TOS.
pub const BURN_PER_CONTRACT: u64 = COIN_VALUE;

/// How the fee is paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FeeType {
    /// In TOS, from the source's balance.
    Tos = 0,
    /// In UNO (encrypted balances): valid only for UNO transfers, a type outside this
    /// executor, so the rules refuse it on every type here (with TOS's code).
    Uno = 2,
}

/// The block a transaction was built against (not checked by execution).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Reference {
    /// Its hash.
    pub hash: Hash,
    /// Its topoheight.
    pub topoheight: u64,
}

/// One participant's signature of a multisig account's transaction: `id` indexes the
/// account's participants in their configured order; the signature is of the blake3 hash
/// of the signing bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MultiSigSignature {
    /// The participant's index.
    pub id: u8,
    /// Its signature.
    pub signature: Signature,
}

/// One transfer of a `Transfers` transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferPayload {
    /// The asset moved.
    pub asset: Hash,
    /// Who receives it (created if it does not exist).
    pub destination: PublicKey,
    /// How much (zero is allowed).
    pub amount: u64,
    /// Opaque data for the receiver.
    pub extra_data: Option<Vec<u8>>,
}

/// A burn of an asset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BurnPayload {
    /// The asset burned.
    pub asset: Hash,
    /// How much (not zero).
    pub amount: u64,
}

/// Sets the source's multisig, or with threshold 0 (and no participants) deletes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiSigPayload {
    /// Signatures required.
    pub threshold: u8,
    /// Who may sign, in order (no duplicates).
    pub participants: Vec<PublicKey>,
}

/// Assets a contract call declares as deposits, in first-seen order, each asset once.
pub type Deposits = Vec<(Hash, u64)>;

/// A call of a deployed contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvokeContractPayload {
    /// The contract's address.
    pub contract: Hash,
    /// Deposits declared with the call (see the rules for what moves).
    pub deposits: Deposits,
    /// Which entry point.
    pub entry_id: u16,
    /// Gas the call may use, paid in TOS.
    pub max_gas: u64,
    /// The call's parameters.
    pub parameters: Vec<ValueCell>,
}

/// The constructor call of a deploy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvokeConstructorPayload {
    /// Gas the constructor may use.
    pub max_gas: u64,
    /// Deposits declared with it.
    pub deposits: Deposits,
}

/// Deploys a contract at [`contract_address`]`(source, module)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployContractPayload {
    /// The contract's code: an ELF file (at least its 4-byte magic).
    pub module: Vec<u8>,
    /// The constructor to run, if any.
    pub invoke: Option<InvokeConstructorPayload>,
}

/// The entry id a constructor runs with.
pub const CONSTRUCTOR_ENTRY: u16 = u16::MAX;

/// Where a deploy stores its contract, as TOS's daemon computes it:
/// `blake3(0xff ‖ deployer ‖ blake3(module))`.
pub fn contract_address(deployer: &PublicKey, module: &[u8]) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[0xff]);
    hasher.update(&deployer.0);
    hasher.update(blake3::hash(module).as_bytes());
    Hash(*hasher.finalize().as_bytes())
}

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransactionType {
    /// Type 0: `asset ‖ amount`.
    Burn(BurnPayload),
    /// Type 1: a `u16` count (1 to 500), then `asset ‖ destination ‖ amount ‖
    /// extra_data` each, `extra_data` an option of a `u16`-counted byte vector.
    Transfers(Vec<TransferPayload>),
    /// Type 2: `threshold`, then if it is not 0 a `u8` count (1 to 255) and the
    /// participants.
    MultiSig(MultiSigPayload),
    /// Type 3: `contract ‖ deposits ‖ entry_id: u16 ‖ max_gas: u64 ‖ count: u8 ‖ cells`;
    /// deposits a `u8` count of `asset ‖ 0 ‖ amount`. Boxed: larger than the others.
    InvokeContract(Box<InvokeContractPayload>),
    /// Type 4: `length: u32 ‖ module ‖ option of (max_gas ‖ deposits)`. Boxed.
    DeployContract(Box<DeployContractPayload>),
}

impl TransactionType {
    /// The type's opcode on the wire.
    pub fn opcode(&self) -> u8 {
        match self {
            TransactionType::Burn(_) => 0,
            TransactionType::Transfers(_) => 1,
            TransactionType::MultiSig(_) => 2,
            TransactionType::InvokeContract(_) => 3,
            TransactionType::DeployContract(_) => 4,
        }
    }

    /// The type's name in TOS's JSON (`"burn"`, `"transfers"`, …).
    pub fn name(&self) -> &'static str {
        match self {
            TransactionType::Burn(_) => "burn",
            TransactionType::Transfers(_) => "transfers",
            TransactionType::MultiSig(_) => "multisig",
            TransactionType::InvokeContract(_) => "invoke_contract",
            TransactionType::DeployContract(_) => "deploy_contract",
        }
    }
}

/// A TOS transaction (version 1, types 0-4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// Format version: [`TX_VERSION`].
    pub version: u8,
    /// The network it is for; must be the chain's.
    pub chain_id: u8,
    /// The account that signs and pays.
    pub source: PublicKey,
    /// What it does.
    pub data: TransactionType,
    /// The fee.
    pub fee: u64,
    /// How the fee is paid.
    pub fee_type: FeeType,
    /// Must equal the source's nonce.
    pub nonce: u64,
    /// The block it was built against.
    pub reference: Reference,
    /// Participants' signatures, for a source with a multisig.
    pub multisig: Option<Vec<MultiSigSignature>>,
    /// The source's signature of the signing bytes ([`Signature::ZERO`] if unsigned).
    pub signature: Signature,
}

impl Transaction {
    /// An unsigned version-1 transaction paying its fee in TOS, with a zero reference.
    pub fn new(
        chain_id: u8,
        source: PublicKey,
        nonce: u64,
        fee: u64,
        data: TransactionType,
    ) -> Self {
        Self {
            version: TX_VERSION,
            chain_id,
            source,
            data,
            fee,
            fee_type: FeeType::Tos,
            nonce,
            reference: Reference::default(),
            multisig: None,
            signature: Signature::ZERO,
        }
    }

    /// The bytes the source signs: the wire encoding up to the reference.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.wire_size_hint());
        wire::write_signed_part(self, &mut out);
        out
    }

    /// What multisig participants sign: blake3 of the signing bytes.
    pub fn multisig_message(&self) -> Hash {
        Hash(*blake3::hash(&self.signing_bytes()).as_bytes())
    }

    /// The wire encoding.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.wire_size_hint());
        wire::write_transaction(self, &mut out);
        out
    }

    /// Decodes exactly one transaction from `bytes` (strict: every malformed input and any
    /// trailing byte is an error).
    pub fn from_wire(bytes: &[u8]) -> Result<Self, DecodeError> {
        wire::read_transaction(bytes)
    }

    /// The transaction's hash: blake3 of its wire encoding.
    pub fn hash(&self) -> Hash {
        Hash(*blake3::hash(&self.to_wire()).as_bytes())
    }

    /// Signs it as `key` (whose public key should be the source).
    pub fn sign(&mut self, key: &KeyPair) {
        self.signature = key.sign(&self.signing_bytes());
    }

    /// This transaction signed as `key`.
    pub fn signed(mut self, key: &KeyPair) -> Self {
        self.sign(key);
        self
    }

    fn wire_size_hint(&self) -> usize {
        // A transfer's 232 bytes and most calls fit; larger payloads grow the buffer.
        256
    }
}

/// The decoder's property on arbitrary bytes, for fuzzing: decoding never panics, and
/// what decodes encodes to the same bytes, unless repeated deposit assets collapsed (then
/// the encoding decodes to the same transaction). `Err` says how it was broken.
pub fn check_round_trip(bytes: &[u8]) -> Result<(), String> {
    let Ok(tx) = Transaction::from_wire(bytes) else {
        return Ok(());
    };
    let again = tx.to_wire();
    if again == bytes {
        return Ok(());
    }
    let deposits = match &tx.data {
        TransactionType::InvokeContract(invoke) => !invoke.deposits.is_empty(),
        TransactionType::DeployContract(deploy) => deploy
            .invoke
            .as_ref()
            .is_some_and(|i| !i.deposits.is_empty()),
        _ => false,
    };
    if !deposits {
        return Err(format!("{tx:?} does not encode to its bytes"));
    }
    match Transaction::from_wire(&again) {
        Ok(decoded) if decoded == tx => Ok(()),
        other => Err(format!("{tx:?} re-encodes to {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_address_is_the_daemons() {
        let deployer = PublicKey([7; 32]);
        let module = b"\x7fELF\x01\x02";
        let mut preimage = vec![0xff];
        preimage.extend_from_slice(&deployer.0);
        preimage.extend_from_slice(blake3::hash(module).as_bytes());
        assert_eq!(
            contract_address(&deployer, module).0,
            *blake3::hash(&preimage).as_bytes()
        );
        assert_ne!(
            contract_address(&deployer, module),
            contract_address(&PublicKey([8; 32]), module)
        );
    }

    #[test]
    fn the_hash_is_blake3_of_the_wire_and_the_signature_covers_the_signing_bytes() {
        let alice = KeyPair::test_account(2).unwrap();
        let tx = Transaction::new(
            DEVNET_CHAIN_ID,
            alice.public_key(),
            0,
            1000,
            TransactionType::Burn(BurnPayload {
                asset: Hash([0; 32]),
                amount: 5,
            }),
        )
        .signed(&alice);
        let wire = tx.to_wire();
        assert_eq!(wire.len(), 197, "TOS-SPEC: a burn is 197 bytes");
        assert_eq!(tx.hash().0, *blake3::hash(&wire).as_bytes());
        let signing = tx.signing_bytes();
        assert_eq!(&wire[..signing.len()], &signing[..]);
        assert_eq!(signing.len(), wire.len() - 64 - 1);
        assert!(crate::crypto::verify(&tx.source, &signing, &tx.signature));
        assert_eq!(Transaction::from_wire(&wire).unwrap(), tx);
    }
}
