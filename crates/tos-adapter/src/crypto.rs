//! Schnorr signatures over Ristretto, as TOS signs transactions: a key pair is a scalar
//! `x` and the point `P = x·B`; a signature is the pair `(s, e)` with
//! `R = k·B`, `e = H(P ‖ message ‖ R)`, `s = k + e·x`, where `H` is SHA3-512 reduced
//! modulo the group order. Verification recomputes `R' = s·B − e·P` and checks
//! `e = H(P ‖ message ‖ R')`. The nonce `k` is derived from the secret and the message
//! (deterministic, as RFC 6979 does for ECDSA), so signing needs no random source.

use crate::types::PublicKey;
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use sha3::{Digest, Sha3_512};

/// A signature `(s, e)`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    s: [u8; 32],
    e: [u8; 32],
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Signature({}…)",
            &crate::types::to_hex(&self.to_bytes())[..12]
        )
    }
}

impl Signature {
    /// `s ‖ e`, 64 bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0; 64];
        out[..32].copy_from_slice(&self.s);
        out[32..].copy_from_slice(&self.e);
        out
    }

    /// From `s ‖ e` (any 64 bytes parse; a non-canonical scalar fails verification).
    pub fn from_bytes(bytes: &[u8; 64]) -> Self {
        let mut s = [0; 32];
        let mut e = [0; 32];
        s.copy_from_slice(&bytes[..32]);
        e.copy_from_slice(&bytes[32..]);
        Self { s, e }
    }
}

fn hash_to_scalar(parts: &[&[u8]]) -> Scalar {
    let mut hasher = Sha3_512::new();
    for part in parts {
        hasher.update(part);
    }
    let wide: [u8; 64] = hasher.finalize().into();
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// A secret key and its public key.
#[derive(Clone)]
pub struct KeyPair {
    secret: Scalar,
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
    /// The key pair derived from `seed` (deterministic: the same seed, the same key).
    pub fn from_seed(seed: &[u8]) -> Self {
        let mut secret = hash_to_scalar(&[b"tos-blockstm/key", seed]);
        if secret == Scalar::ZERO {
            secret = Scalar::ONE;
        }
        let point = &secret * RISTRETTO_BASEPOINT_TABLE;
        Self {
            secret,
            public: PublicKey(point.compress().to_bytes()),
        }
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        let k = hash_to_scalar(&[b"tos-blockstm/nonce", self.secret.as_bytes(), message]);
        let r = (&k * RISTRETTO_BASEPOINT_TABLE).compress();
        let e = hash_to_scalar(&[&self.public.0, message, r.as_bytes()]);
        let s = k + e * self.secret;
        Signature {
            s: s.to_bytes(),
            e: e.to_bytes(),
        }
    }
}

/// Whether `signature` is `key`'s signature of `message`.
pub fn verify(key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
    let Some(point) = CompressedRistretto(key.0).decompress() else {
        return false;
    };
    let (Some(s), Some(e)) = (
        Option::<Scalar>::from(Scalar::from_canonical_bytes(signature.s)),
        Option::<Scalar>::from(Scalar::from_canonical_bytes(signature.e)),
    ) else {
        return false;
    };
    let r = RistrettoPoint::vartime_double_scalar_mul_basepoint(&-e, &point, &s).compress();
    hash_to_scalar(&[&key.0, message, r.as_bytes()]) == e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_forgeries_do_not() {
        let alice = KeyPair::from_seed(b"alice");
        let bob = KeyPair::from_seed(b"bob");
        let sig = alice.sign(b"pay bob 5");
        assert!(verify(&alice.public_key(), b"pay bob 5", &sig));
        assert!(!verify(&alice.public_key(), b"pay bob 6", &sig));
        assert!(!verify(&bob.public_key(), b"pay bob 5", &sig));
        let mut bytes = sig.to_bytes();
        bytes[3] ^= 1;
        assert!(!verify(
            &alice.public_key(),
            b"pay bob 5",
            &Signature::from_bytes(&bytes)
        ));
        // Not a point at all.
        assert!(!verify(&PublicKey([0xff; 32]), b"x", &sig));
        assert_eq!(
            alice.public_key(),
            KeyPair::from_seed(b"alice").public_key()
        );
        assert_eq!(Signature::from_bytes(&sig.to_bytes()), sig);
    }
}
