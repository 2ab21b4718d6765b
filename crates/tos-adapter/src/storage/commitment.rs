//! The chained commitment of each block's writes, by which a store checks itself.
//!
//! Block `t`'s commitment is
//!
//! ```text
//! c(t) = blake3(DOMAIN ‖ c(t-1) ‖ t ‖ n ‖ for each of its n versions, in key order:
//!               len(key) ‖ key ‖ len(value) ‖ value)
//! ```
//!
//! over the bytes the store keeps for each version it wrote at `t` (the encoded key, and the
//! encoded value with the topoheight of the version it replaced), with `c` of the block
//! before the first one all zeros. Lengths are little-endian `u32`, `t` and `n` `u64`.
//!
//! Why a chain of write sets, where the TOS daemon keeps a merkle hash of the balances per
//! block: every version a block writes is committed to, so the commitment at `t` covers the
//! whole state at every topoheight up to `t` (a state is the latest versions, all of them
//! committed), and checking costs one pass over the stored versions, with nothing to
//! maintain but one hash a block. A state root would prove a state to someone else, which
//! is not the need here; the chain finds the damage a disk or an editor did, and names the
//! first block it touched.

use crate::error::StorageError;

/// The commitment "before" the first block.
pub const NO_PARENT: [u8; 32] = [0; 32];

const DOMAIN: &[u8] = b"tos-blockstm block commitment v1";

/// The commitment of block `topoheight` whose parent's is `parent`, over its versions
/// `(key, value)` in strictly ascending key order.
pub(crate) fn commit<'a>(
    parent: &[u8; 32],
    topoheight: u64,
    versions: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(DOMAIN);
    hasher.update(parent);
    hasher.update(&topoheight.to_le_bytes());
    hasher.update(&(versions.len() as u64).to_le_bytes());
    for (key, value) in versions {
        // Keys are at most 66 bytes and values are bounded by the transaction size: both fit
        // a u32 (a longer one would still be hashed whole, its length truncated).
        hasher.update(&(key.len() as u32).to_le_bytes());
        hasher.update(key);
        hasher.update(&(value.len() as u32).to_le_bytes());
        hasher.update(value);
    }
    *hasher.finalize().as_bytes()
}

/// A block's record: its commitment, then the keys it wrote in ascending order, each as
/// one length byte and the encoded key.
pub(crate) fn encode_record<'a>(
    commitment: &[u8; 32],
    keys: impl ExactSizeIterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(36 + keys.len() * 68);
    out.extend_from_slice(commitment);
    out.extend_from_slice(&(keys.len() as u32).to_le_bytes());
    for key in keys {
        // An encoded key is at most 66 bytes (the longest `StateKey`), so its length fits.
        out.push(key.len() as u8);
        out.extend_from_slice(key);
    }
    out
}

/// A decoded block record.
pub(crate) struct Record<'a> {
    /// The block's commitment as written.
    pub commitment: [u8; 32],
    /// The keys it wrote, ascending.
    pub keys: Vec<&'a [u8]>,
}

/// Decodes a record, refusing one whose keys are not strictly ascending or whose bytes do
/// not add up.
pub(crate) fn decode_record(topoheight: u64, bytes: &[u8]) -> Result<Record<'_>, StorageError> {
    let bad = |what: &str| StorageError::Mismatch {
        topoheight,
        what: format!("its record {what}"),
    };
    if bytes.len() < 36 {
        return Err(bad("is too short"));
    }
    let (head, mut rest) = bytes.split_at(36);
    let mut commitment = [0u8; 32];
    commitment.copy_from_slice(&head[..32]);
    let mut count = [0u8; 4];
    count.copy_from_slice(&head[32..]);
    let count = u32::from_le_bytes(count) as usize;
    // Each key takes at least two bytes: a count beyond that is damage, not an allocation.
    if count > rest.len() / 2 {
        return Err(bad("counts more keys than it holds"));
    }
    let mut keys: Vec<&[u8]> = Vec::with_capacity(count);
    for _ in 0..count {
        let Some((&len, tail)) = rest.split_first() else {
            return Err(bad("ends inside a key"));
        };
        if tail.len() < usize::from(len) {
            return Err(bad("ends inside a key"));
        }
        let (key, tail) = tail.split_at(usize::from(len));
        if keys.last().is_some_and(|last| *last >= key) {
            return Err(bad("lists its keys out of order"));
        }
        keys.push(key);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(bad("has bytes after its keys"));
    }
    Ok(Record { commitment, keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_refuse_damage() {
        let keys: [&[u8]; 3] = [b"\x00a", b"\x00b", b"\x01"];
        let bytes = encode_record(&[7; 32], keys.iter().copied());
        let record = decode_record(1, &bytes).unwrap();
        assert_eq!(record.commitment, [7; 32]);
        assert_eq!(record.keys, keys);
        for cut in 0..bytes.len() {
            assert!(decode_record(1, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut swapped = bytes.clone();
        swapped.swap(38, 41);
        assert!(decode_record(1, &swapped).is_err());
        let mut huge = bytes;
        huge[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_record(1, &huge).is_err());
    }

    #[test]
    fn the_commitment_covers_parent_height_keys_and_values() {
        let v: [(&[u8], &[u8]); 2] = [(b"k1", b"v1"), (b"k2", b"v2")];
        let base = commit(&NO_PARENT, 1, v.iter().copied());
        assert_ne!(base, commit(&[1; 32], 1, v.iter().copied()));
        assert_ne!(base, commit(&NO_PARENT, 2, v.iter().copied()));
        assert_ne!(base, commit(&NO_PARENT, 1, v[..1].iter().copied()));
        let moved: [(&[u8], &[u8]); 2] = [(b"k1", b"v1k"), (b"2", b"v2")];
        assert_ne!(base, commit(&NO_PARENT, 1, moved.iter().copied()));
    }
}
