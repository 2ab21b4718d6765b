//! TOS state as the engine sees it: keys and values, the chain's global values
//! ([`Global`]), and the state digest ([`summary`]).

mod key_hash;
pub mod summary;

use crate::primitives::{Hash, PublicKey, SharedMultiSig};
use mvmemory::DeltaValue;
use std::sync::Arc;

/// Bytes held in state (a contract's code, a storage value), shared: cloning a value read
/// from the multi-version memory costs a reference count, not a copy. A thin pointer, so
/// that [`StateValue`] stays 16 bytes for the transfers that never hold one.
#[derive(Clone, PartialEq, Eq)]
pub struct Bytes(Arc<Box<[u8]>>);

impl std::ops::Deref for Bytes {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<&[u8]> for Bytes {
    fn from(bytes: &[u8]) -> Self {
        Bytes(Arc::new(bytes.into()))
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Bytes(Arc::new(bytes.into_boxed_slice()))
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({})", crate::primitives::to_hex(self))
    }
}

/// A contract storage key as part of a state key: up to 32 bytes held as they are, a
/// longer one by its blake3 hash (distinct from any short key). Fixed size and no
/// pointer, so [`StateKey`] stays 66 bytes with byte alignment, as compact as the account
/// keys of every transfer need it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DataKey {
    /// 0 to 32: the key's length; [`DataKey::HASHED`]: `bytes` is the hash of a longer key.
    len: u8,
    bytes: [u8; 32],
}

impl DataKey {
    /// The `len` of a key longer than 32 bytes, held by its hash.
    pub const HASHED: u8 = u8::MAX;

    /// The state key part of the contract storage key `key`.
    pub fn new(key: &[u8]) -> Self {
        let mut bytes = [0u8; 32];
        match u8::try_from(key.len()) {
            Ok(len) if key.len() <= 32 => {
                bytes[..key.len()].copy_from_slice(key);
                DataKey { len, bytes }
            }
            _ => DataKey {
                len: Self::HASHED,
                bytes: *blake3::hash(key).as_bytes(),
            },
        }
    }

    /// From its parts as [`DataKey::parts`] gives them; `None` if `len` is neither 0 to 32
    /// nor [`DataKey::HASHED`], or the bytes past `len` are not zero.
    pub fn from_parts(len: u8, bytes: [u8; 32]) -> Option<Self> {
        let valid =
            len == Self::HASHED || (len <= 32 && bytes[usize::from(len)..].iter().all(|&b| b == 0));
        valid.then_some(DataKey { len, bytes })
    }

    /// Its length byte and its 32 bytes (zero-padded), to store it.
    pub fn parts(&self) -> (u8, &[u8; 32]) {
        (self.len, &self.bytes)
    }

    /// The key itself, or `None` for a long key held by its hash.
    pub fn raw(&self) -> Option<&[u8]> {
        (self.len != Self::HASHED).then(|| &self.bytes[..usize::from(self.len)])
    }

    /// The key in hex; a long key as `h:` and the hex of its hash.
    pub fn to_hex(&self) -> String {
        match self.raw() {
            Some(raw) => crate::primitives::to_hex(raw),
            None => format!("h:{}", crate::primitives::to_hex(&self.bytes)),
        }
    }

    /// Parses [`DataKey::to_hex`]'s form.
    pub fn from_hex(s: &str) -> Result<Self, crate::primitives::HexError> {
        match s.strip_prefix("h:") {
            Some(hash) => Ok(DataKey {
                len: Self::HASHED,
                bytes: crate::primitives::Hash::from_hex(hash)?.0,
            }),
            None => Ok(DataKey::new(&crate::primitives::from_hex(s)?)),
        }
    }
}

impl From<&[u8]> for DataKey {
    fn from(key: &[u8]) -> Self {
        DataKey::new(key)
    }
}

impl From<Vec<u8>> for DataKey {
    fn from(key: Vec<u8>) -> Self {
        DataKey::new(&key)
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({})", self.to_hex())
    }
}

/// A key of TOS state.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StateKey {
    /// An account's nonce.
    Nonce(PublicKey),
    /// An account's balance of an asset.
    Balance(PublicKey, Hash),
    /// An account's multisig configuration.
    MultiSig(PublicKey),
    /// The total of fees paid (an accumulator: credited by delta).
    GasFee,
    /// The total burned of an asset (an accumulator: credited by delta).
    BurnedSupply(Hash),
    /// A deployed contract's code.
    ContractModule(Hash),
    /// One entry of a contract's storage: the contract and the entry's key.
    ContractData(Hash, DataKey),
    /// A contract's balance of an asset.
    ContractBalance(Hash, Hash),
    /// One of the chain's global values.
    Global(Global),
}

/// The chain's global values besides the burned supply (which is
/// `BurnedSupply(TOS_ASSET)`), each a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Global {
    /// The chain id every transaction must carry (3, devnet, if none is stored).
    NetworkChainId = 0,
    /// The total supply (no transaction changes it).
    TotalSupply = 1,
    /// Blocks applied: a committed block adds one.
    BlockHeight = 2,
    /// The chain's timestamp (no transaction changes it).
    Timestamp = 3,
}

impl Global {
    /// Every global value.
    pub const ALL: [Global; 4] = [
        Global::NetworkChainId,
        Global::TotalSupply,
        Global::BlockHeight,
        Global::Timestamp,
    ];
}

/// A value of TOS state.
///
/// Every variant is a tag and at most one word, so that the compiler passes a value in two
/// registers: a wider variant would make every value an in-memory aggregate, which cost
/// the transfers of `p2p:2` about 10%.
#[derive(Clone, Debug)]
pub enum StateValue {
    /// A nonce, a balance or an accumulator.
    Number(u64),
    /// A multisig configuration; `None` once deleted.
    MultiSig(Option<SharedMultiSig>),
    /// A contract storage entry; `None` once deleted. [`StateValue::data`] holds an entry of
    /// exactly 8 bytes as a [`StateValue::DataWord`] instead; the two compare equal.
    Data(Option<Bytes>),
    /// A contract storage entry of exactly 8 bytes (a `u64`: what contracts store most,
    /// balances and counters), held in the value itself. Writing it allocates nothing,
    /// reading it takes no reference count, and dropping it frees nothing: under Block-STM,
    /// which keeps every version a block writes until the block ends, that took about 13%
    /// off the time of a `token` block on one worker.
    DataWord(DataWord),
    /// A contract's code.
    Module(Bytes),
}

/// Eight bytes of contract storage, held as the `u64` whose native-endian bytes they are.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DataWord(u64);

impl DataWord {
    /// The word holding `bytes`.
    pub fn new(bytes: [u8; 8]) -> Self {
        Self(u64::from_ne_bytes(bytes))
    }

    /// The bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0.to_ne_bytes()
    }
}

impl std::fmt::Debug for DataWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DataWord({})",
            crate::primitives::to_hex(&self.to_bytes())
        )
    }
}

/// A contract storage entry's bytes, borrowed from a [`StateValue`] (or copied out of a
/// [`DataWord`]).
#[derive(Clone, Copy, Debug)]
pub enum DataRef<'a> {
    /// The bytes of a [`StateValue::DataWord`].
    Word([u8; 8]),
    /// The bytes of a [`StateValue::Data`].
    Bytes(&'a [u8]),
}

impl std::ops::Deref for DataRef<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            DataRef::Word(bytes) => bytes,
            DataRef::Bytes(bytes) => bytes,
        }
    }
}

impl StateValue {
    /// A contract storage entry (`None`: deleted), held as cheaply as it can be: 8 bytes
    /// as a [`StateValue::DataWord`], anything else as [`StateValue::Data`].
    pub fn data(bytes: Option<Bytes>) -> Self {
        match bytes.as_deref().map(<[u8; 8]>::try_from) {
            Some(Ok(word)) => StateValue::DataWord(DataWord::new(word)),
            _ => StateValue::Data(bytes),
        }
    }

    /// The contract storage entry this value is (`Some(None)`: deleted), or `None` if it
    /// is not one.
    pub fn as_data(&self) -> Option<Option<DataRef<'_>>> {
        match self {
            StateValue::Data(bytes) => Some(bytes.as_deref().map(DataRef::Bytes)),
            StateValue::DataWord(word) => Some(Some(DataRef::Word(word.to_bytes()))),
            StateValue::Number(_) | StateValue::MultiSig(_) | StateValue::Module(_) => None,
        }
    }

    /// The contract storage entry this value is (`None`: deleted), as [`Bytes`] (a
    /// [`StateValue::DataWord`]'s are copied into new ones); the value itself if it is
    /// not an entry.
    pub fn into_data(self) -> Result<Option<Bytes>, Self> {
        match self {
            StateValue::Data(bytes) => Ok(bytes),
            StateValue::DataWord(word) => Ok(Some(Bytes::from(&word.to_bytes()[..]))),
            other => Err(other),
        }
    }
}

impl PartialEq for StateValue {
    /// By content: a [`StateValue::DataWord`] equals a [`StateValue::Data`] of the same
    /// bytes.
    fn eq(&self, other: &Self) -> bool {
        use StateValue::*;
        match (self, other) {
            (Number(a), Number(b)) => a == b,
            (MultiSig(a), MultiSig(b)) => a == b,
            (Module(a), Module(b)) => a == b,
            (Data(a), Data(b)) => a == b,
            (DataWord(a), DataWord(b)) => a == b,
            (DataWord(word), Data(Some(bytes))) | (Data(Some(bytes)), DataWord(word)) => {
                **bytes == word.to_bytes()
            }
            _ => false,
        }
    }
}

impl Eq for StateValue {}

impl DeltaValue for StateValue {
    #[inline]
    fn from_u64(n: u64) -> Self {
        StateValue::Number(n)
    }

    #[inline]
    fn as_u64(&self) -> Option<u64> {
        match self {
            StateValue::Number(n) => Some(*n),
            StateValue::MultiSig(_)
            | StateValue::Data(_)
            | StateValue::DataWord(_)
            | StateValue::Module(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_keys_and_values_stay_compact() {
        assert_eq!(std::mem::align_of::<StateKey>(), 1);
        assert_eq!(std::mem::size_of::<StateKey>(), 66);
        assert_eq!(std::mem::size_of::<StateValue>(), 16);
    }

    #[test]
    fn eight_byte_entries_are_held_inline_and_equal_however_held() {
        let eight = Bytes::from(vec![1, 2, 3, 4, 5, 6, 7, 8]);
        let inline = StateValue::data(Some(eight.clone()));
        assert!(matches!(inline, StateValue::DataWord(_)));
        let shared = StateValue::Data(Some(eight.clone()));
        assert_eq!(inline, shared);
        assert_eq!(shared, inline);
        assert_ne!(
            inline,
            StateValue::data(Some(vec![1, 2, 3, 4, 5, 6, 7, 9].into()))
        );
        assert_ne!(
            inline,
            StateValue::Number(u64::from_ne_bytes([1, 2, 3, 4, 5, 6, 7, 8]))
        );
        // Not a number to the engine's delta folding.
        assert_eq!(inline.as_u64(), None);
        for value in [&inline, &shared] {
            assert_eq!(value.as_data().flatten().as_deref(), Some(&eight[..]));
            assert_eq!(value.clone().into_data().unwrap(), Some(eight.clone()));
        }
        // Other lengths, and a deletion, stay `Data`.
        for bytes in [vec![], vec![1; 7], vec![1; 9], vec![1; 100]] {
            let value = StateValue::data(Some(bytes.clone().into()));
            assert!(matches!(&value, StateValue::Data(Some(b)) if **b == *bytes));
        }
        assert!(matches!(StateValue::data(None), StateValue::Data(None)));
        assert_eq!(
            StateValue::data(None).as_data().map(|d| d.is_none()),
            Some(true)
        );
        assert!(StateValue::Number(1).as_data().is_none());
        assert!(StateValue::Number(1).into_data().is_err());
    }

    #[test]
    fn contract_entries_spread_over_a_table() {
        use std::hash::BuildHasher;
        // The low 16 bits of the index's hash of 10,000 entries of one contract: short
        // keys sharing a prefix, and 32-byte holder keys differing in one byte at each
        // position. Random hashes would leave about 9,280 distinct.
        let contract = Hash([9; 32]);
        let spread = |keys: Vec<DataKey>| {
            let buckets: std::collections::HashSet<u64> = keys
                .into_iter()
                .map(|key| {
                    mvmemory::FxBuildHasher::default()
                        .hash_one(StateKey::ContractData(contract, key))
                        & 0xffff
                })
                .collect();
            buckets.len()
        };
        let short = (0..10_000)
            .map(|i| DataKey::new(format!("balance_{i}").as_bytes()))
            .collect();
        assert!(spread(short) > 9_000);
        let holders = (0..10_000u32)
            .map(|i| {
                let mut key = [0u8; 32];
                let byte = (i % 32) as usize;
                key[byte] = (i / 32) as u8;
                key[(byte + 1) % 32] = (i / 8192) as u8 + 1;
                DataKey::new(&key)
            })
            .collect();
        assert!(spread(holders) > 9_000);
    }

    #[test]
    fn data_keys_hold_short_keys_and_hash_long_ones() {
        let short = DataKey::new(b"count");
        assert_eq!(short.raw(), Some(&b"count"[..]));
        let long = DataKey::new(&[7; 40]);
        assert_eq!(long.raw(), None);
        assert_ne!(long, DataKey::new(&[7; 41]));
        assert_ne!(DataKey::new(&[0; 32]), DataKey::new(&[]));
        for key in [short, long, DataKey::new(&[]), DataKey::new(&[1; 32])] {
            assert_eq!(DataKey::from_hex(&key.to_hex()).unwrap(), key);
            let (len, bytes) = key.parts();
            assert_eq!(DataKey::from_parts(len, *bytes), Some(key));
        }
        assert_eq!(DataKey::from_parts(33, [0; 32]), None);
        assert_eq!(DataKey::from_parts(1, [1; 32]), None);
    }
}
