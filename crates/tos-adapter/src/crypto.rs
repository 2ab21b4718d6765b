//! TOS's transaction signatures: Schnorr over Ristretto255 with the generator `H`.
//!
//! - `H` is the Pedersen blinding generator: SHA3-512 of the compressed Ristretto
//!   basepoint, mapped to the group (`from_uniform_bytes`). Compressed, it is
//!   `8c9240b4…1134` ([`generator_h`]).
//! - A private key is 32 bytes read little-endian and reduced modulo the group order `l`;
//!   the public key is `P = sk⁻¹·H` (not `sk·G`).
//! - The challenge is `e = SHA3-512(P ‖ message ‖ R)` read little-endian and reduced
//!   modulo `l`.
//! - Signing picks `k`, computes `R = k·H`, `e`, `s = sk⁻¹·e + k`; the signature is
//!   `s ‖ e`, both canonical little-endian scalars.
//! - Verification decodes `s` and `e` (canonical, or the signature is invalid) and `P`,
//!   computes `R' = s·H − e·P` and accepts iff the challenge of `R'` is `e`
//!   (`s·H − e·P = sk⁻¹·e·H + k·H − e·sk⁻¹·H = k·H`).
//!
//! `k` is deterministic, as TOS's test signer derives it: SHA3-512 of a domain tag, the
//! private key, the public key and the message, reduced modulo `l` (1 if that is 0). The
//! published conformance vectors' signatures are reproduced byte for byte.
//!
//! Verification is the cost of a signed transaction: `s·H` uses a table of `H`'s
//! multiples built once per process, `e·P` a variable-base multiplication, both in one
//! variable-time multiscalar multiplication (the inputs are public).

use crate::primitives::{to_hex, PublicKey};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_COMPRESSED;
use curve25519_dalek::ristretto::{
    CompressedRistretto, RistrettoBasepointTable, RistrettoPoint, VartimeRistrettoPrecomputation,
};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, VartimePrecomputedMultiscalarMul};
use sha3::{Digest, Sha3_512};
use std::sync::OnceLock;

/// Domain tag of the deterministic signing nonce.
const NONCE_TAG: &[u8] = b"tos-signer/deterministic-nonce/v1";

/// A signature `s ‖ e`: two canonical scalars (the wire decoder refuses any other).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature {
    bytes: [u8; 64],
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({}…)", &to_hex(&self.bytes)[..12])
    }
}

impl Default for Signature {
    fn default() -> Self {
        Signature::ZERO
    }
}

impl Signature {
    /// The all-zero signature: what a transaction carries before it is signed (it
    /// decodes, and never verifies).
    pub const ZERO: Signature = Signature { bytes: [0; 64] };

    /// `s ‖ e`, 64 bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.bytes
    }

    /// `s ‖ e` as given; `None` unless both are canonical scalars.
    pub fn from_bytes(bytes: &[u8; 64]) -> Option<Self> {
        let canonical = |half: &[u8]| {
            let mut scalar = [0u8; 32];
            scalar.copy_from_slice(half);
            bool::from(Scalar::from_canonical_bytes(scalar).is_some())
        };
        (canonical(&bytes[..32]) && canonical(&bytes[32..])).then_some(Self { bytes: *bytes })
    }

    fn scalars(&self) -> Option<(Scalar, Scalar)> {
        let half = |range: std::ops::Range<usize>| {
            let mut scalar = [0u8; 32];
            scalar.copy_from_slice(&self.bytes[range]);
            Option::<Scalar>::from(Scalar::from_canonical_bytes(scalar))
        };
        Some((half(0..32)?, half(32..64)?))
    }
}

/// The generator `H` (see the module documentation).
pub fn generator_h() -> &'static RistrettoPoint {
    static H: OnceLock<RistrettoPoint> = OnceLock::new();
    H.get_or_init(|| {
        let wide: [u8; 64] = Sha3_512::digest(RISTRETTO_BASEPOINT_COMPRESSED.as_bytes()).into();
        RistrettoPoint::from_uniform_bytes(&wide)
    })
}

/// Multiples of `H` for constant-time multiplication by secrets (keys, nonces), built
/// once.
fn h_basepoint_table() -> &'static RistrettoBasepointTable {
    static TABLE: OnceLock<RistrettoBasepointTable> = OnceLock::new();
    TABLE.get_or_init(|| RistrettoBasepointTable::create(generator_h()))
}

/// Multiples of `H` for variable-time multiscalar multiplication, built once.
fn h_table() -> &'static VartimeRistrettoPrecomputation {
    static TABLE: OnceLock<VartimeRistrettoPrecomputation> = OnceLock::new();
    TABLE.get_or_init(|| VartimeRistrettoPrecomputation::new([*generator_h()]))
}

fn wide_scalar(parts: &[&[u8]]) -> Scalar {
    let mut hasher = Sha3_512::new();
    for part in parts {
        hasher.update(part);
    }
    let wide: [u8; 64] = hasher.finalize().into();
    Scalar::from_bytes_mod_order_wide(&wide)
}

fn challenge(public: &[u8; 32], message: &[u8], r: &CompressedRistretto) -> Scalar {
    wide_scalar(&[public, message, r.as_bytes()])
}

/// A private key and its public key.
#[derive(Clone)]
pub struct KeyPair {
    secret: Scalar,
    /// `secret⁻¹`, what signing multiplies by.
    inverse: Scalar,
    public: PublicKey,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// The key pair of a 32-byte private key (little-endian, reduced modulo `l`); `None`
    /// if it reduces to zero, which has no inverse.
    pub fn from_private_key(bytes: &[u8; 32]) -> Option<Self> {
        let secret = Scalar::from_bytes_mod_order(*bytes);
        (secret != Scalar::ZERO).then(|| Self::from_scalar(secret))
    }

    /// The key pair of a non-zero scalar.
    fn from_scalar(secret: Scalar) -> Self {
        let inverse = secret.invert();
        let public = PublicKey((&inverse * h_basepoint_table()).compress().to_bytes());
        Self {
            secret,
            inverse,
            public,
        }
    }

    /// A key pair derived from `seed` (deterministic: the same seed, the same key): the
    /// private key is the SHA3-512 of a domain tag and the seed, reduced modulo `l`.
    pub fn from_seed(seed: &[u8]) -> Self {
        let mut secret = wide_scalar(&[b"tos-blockstm/key", seed]);
        if secret == Scalar::ZERO {
            secret = Scalar::ONE;
        }
        Self::from_scalar(secret)
    }

    /// TOS's test account with this seed byte: private key `seed ‖ 0³¹` (`accounts.json`:
    /// 1 is the miner, 2 Alice, 3 Bob, …); `None` for 0.
    pub fn test_account(seed: u8) -> Option<Self> {
        let mut private = [0u8; 32];
        private[0] = seed;
        Self::from_private_key(&private)
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The private key, 32 bytes little-endian (reduced).
    pub fn private_key(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// Signs `message`, with TOS's deterministic nonce.
    pub fn sign(&self, message: &[u8]) -> Signature {
        let mut k = wide_scalar(&[NONCE_TAG, self.secret.as_bytes(), &self.public.0, message]);
        if k == Scalar::ZERO {
            k = Scalar::ONE;
        }
        let r = (&k * h_basepoint_table()).compress();
        let e = challenge(&self.public.0, message, &r);
        let s = self.inverse * e + k;
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(s.as_bytes());
        bytes[32..].copy_from_slice(e.as_bytes());
        Signature { bytes }
    }
}

/// Whether `signature` is `key`'s signature of `message`. The identity (the all-zero
/// key, what a private key of 0 would give) signs nothing: with `P` the identity, `R' =
/// s·H` whatever `e` is, and anyone could forge.
pub fn verify(key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
    let Some((s, e)) = signature.scalars() else {
        return false;
    };
    let Some(point) = CompressedRistretto(key.0).decompress() else {
        return false;
    };
    if point == RistrettoPoint::identity() {
        return false;
    }
    let r = h_table()
        .vartime_mixed_multiscalar_mul([s], [-e], [point])
        .compress();
    challenge(&key.0, message, &r) == e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hex: &str) -> PublicKey {
        PublicKey::from_hex(hex).unwrap()
    }

    #[test]
    fn the_generator_is_tos_pedersen_blinding_generator() {
        assert_eq!(
            to_hex(generator_h().compress().as_bytes()),
            "8c9240b456a9e6dc65c377a1048d745f94a08cdb7f44cbcd7b46f34048871134"
        );
    }

    #[test]
    fn the_test_accounts_have_tos_public_keys() {
        // tos-spec's vectors/accounts.json: private key = seed byte then 31 zeros.
        let expected = [
            "8c9240b456a9e6dc65c377a1048d745f94a08cdb7f44cbcd7b46f34048871134",
            "f05bc1df2831717c2992d85b57e0cf3d123fd6c254257de5f784be369747b249",
            "c29d170ab8a5b42a3520878501a87a27f9b5653fca8b0c59fc2786cf26e37824",
            "7ea555bf91bfb985561a91afcd669a79c0cc115ce03baf687cb8dd7e1e996e7b",
            "ec9daff86b25275ef43d7dbd7e81f09b44e8d3805c6048b09b3e1034931c6077",
            "5e9b22da885aa5a20006edfcbb5a79c5e4fc9156137f8ec3926a87cd0bb0b477",
            "c236d1e09a12adc6dc4b857420e7dbef41e4553cc06168495b941398bee59531",
            "2a25d8817219016d0f3098e1b5fbae8e0e1e093ec3d4b7d6a502405c865bd373",
            "da673316b0f2f91283ef9fd1dbdf707f56587612a341b6fda5e3725ca8970a72",
            "1095f383297a0b6ed39ce8b1d78a43f3121dcffd7ecffc6c6a7d5913ae5aff1e",
        ];
        for (seed, public) in (1u8..).zip(expected) {
            assert_eq!(
                KeyPair::test_account(seed).unwrap().public_key(),
                key(public)
            );
        }
        assert!(KeyPair::test_account(0).is_none());
    }

    #[test]
    fn more_known_public_keys() {
        // tos-spec vectors/execution/crypto/ristretto255.json.
        let mut counting = [0u8; 32];
        for (i, b) in counting.iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        let cases: [([u8; 32], &str); 3] = [
            (
                {
                    let mut k = [0u8; 32];
                    k[0] = 255;
                    k
                },
                "9ccc20e27017002f54182ecbd6a97c7447ec76dc83b6ee42c588c1fa8e01a258",
            ),
            (
                counting,
                "b644359d9afd69d82b9a82619803f4fd4a6722708c3ce063405bf7d5d38c7e48",
            ),
            (
                [0xff; 32],
                "f6decfbf9efabc8aa59452aa570cb84eed7fcfca7daea58a93b93444400a7a73",
            ),
        ];
        for (private, public) in cases {
            assert_eq!(
                KeyPair::from_private_key(&private).unwrap().public_key(),
                key(public)
            );
        }
    }

    #[test]
    fn signatures_verify_and_forgeries_do_not() {
        let alice = KeyPair::test_account(2).unwrap();
        let bob = KeyPair::test_account(3).unwrap();
        let sig = alice.sign(b"pay bob 5");
        assert!(verify(&alice.public_key(), b"pay bob 5", &sig));
        assert!(!verify(&alice.public_key(), b"pay bob 6", &sig));
        assert!(!verify(&bob.public_key(), b"pay bob 5", &sig));
        let mut bytes = sig.to_bytes();
        bytes[3] ^= 1;
        // Either no longer canonical or no longer the signature.
        if let Some(flipped) = Signature::from_bytes(&bytes) {
            assert!(!verify(&alice.public_key(), b"pay bob 5", &flipped));
        }
        assert!(!verify(&PublicKey([0xff; 32]), b"x", &sig));
        assert!(!verify(&alice.public_key(), b"x", &Signature::ZERO));
        assert_eq!(Signature::from_bytes(&sig.to_bytes()), Some(sig));
        // Deterministic.
        assert_eq!(alice.sign(b"pay bob 5"), sig);
    }

    #[test]
    fn the_identity_key_signs_nothing() {
        // With P the identity, R' = s·H: pick s, compute e for it, and it would verify.
        let message = b"spend from the zero key";
        let s = Scalar::from(7u64);
        let r = (s * generator_h()).compress();
        let e = challenge(&[0; 32], message, &r);
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(s.as_bytes());
        bytes[32..].copy_from_slice(e.as_bytes());
        let forged = Signature::from_bytes(&bytes).unwrap();
        assert!(!verify(&PublicKey([0; 32]), message, &forged));
    }

    #[test]
    fn non_canonical_scalars_are_not_signatures() {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&[0xff; 32]);
        assert!(Signature::from_bytes(&bytes).is_none());
        let mut bytes = [0u8; 64];
        bytes[32..].copy_from_slice(&[0xff; 32]);
        assert!(Signature::from_bytes(&bytes).is_none());
        assert!(Signature::from_bytes(&[0; 64]).is_some());
    }
}
