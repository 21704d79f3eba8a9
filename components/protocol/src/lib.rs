//! greenmesh's signed wire formats, shared by the broker component (wasm) and
//! the host's provider and client (native), so both sides sign and verify
//! exactly the same bytes; and secure aggregation's pairwise masks
//! ([`secure_sum`]), which both sides must compute alike.
//!
//! Every signed message is a fixed, versioned list of fields joined by `\n`
//! (never JSON, whose key order and number formatting vary). Signatures are
//! ed25519 (`ed25519-compact`), hex-encoded.

mod contribution;
mod grant;
mod lease;
mod proof;
mod receipt;
mod request;
mod revocation;
pub mod secure_sum;

pub use contribution::{ContributedRun, RoundContributions};
pub use ed25519_compact;
pub use grant::{pattern_covers, Grant};
pub use lease::{Lease, SignedGrant};
pub use proof::{NodeKey, ProofBundle, ProofError, Run, ShardProof, Verified, QUORUM_RULE};
pub use receipt::{Fault, Receipt, ReceiptStatus};
pub use request::{request_signing_bytes, sign_request, verify_request, REQUEST_MAX_SKEW_MS};
pub use revocation::Revocation;
pub use secure_sum::{Contribution, Masked, Roster, RosterMember};

use ed25519_compact::{KeyPair, PublicKey, SecretKey, Seed, Signature};

/// Why a signed message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// A key or signature that is not valid hex of the right length.
    Malformed(String),
    /// The signature does not match the message and key.
    BadSignature,
    /// The message is outside its validity window.
    Expired,
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtocolError::Malformed(m) => write!(f, "malformed: {m}"),
            ProtocolError::BadSignature => f.write_str("signature does not verify"),
            ProtocolError::Expired => f.write_str("expired"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Lower-case hex of `bytes`: the one hex encoder of every greenmesh crate
/// (keys, seeds, nonces, hashes).
pub fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Lower-case hex of a public key (how nodes and users register theirs).
pub fn public_key_hex(key: &PublicKey) -> String {
    hex::encode(key.as_ref())
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A public key from 64 hex characters.
pub fn public_key(hex_key: &str) -> Result<PublicKey, ProtocolError> {
    let bytes =
        hex::decode(hex_key).map_err(|e| ProtocolError::Malformed(format!("public key: {e}")))?;
    PublicKey::from_slice(&bytes).map_err(|e| ProtocolError::Malformed(format!("public key: {e}")))
}

/// A key pair from a 32-byte seed (hex), e.g. one kept in a database or a secret.
pub fn key_pair_from_seed_hex(seed_hex: &str) -> Result<KeyPair, ProtocolError> {
    let bytes =
        hex::decode(seed_hex).map_err(|e| ProtocolError::Malformed(format!("seed: {e}")))?;
    let seed =
        Seed::from_slice(&bytes).map_err(|e| ProtocolError::Malformed(format!("seed: {e}")))?;
    Ok(KeyPair::from_seed(seed))
}

/// A key pair from 32 random bytes.
pub fn key_pair_from_seed(seed: [u8; 32]) -> KeyPair {
    KeyPair::from_seed(Seed::new(seed))
}

/// Hex signature of `message`.
pub fn sign(key: &SecretKey, message: &[u8]) -> String {
    hex::encode(key.sign(message, None).as_ref())
}

/// Checks a hex signature of `message` by `key`.
pub fn verify(key: &PublicKey, message: &[u8], signature_hex: &str) -> Result<(), ProtocolError> {
    let bytes = hex::decode(signature_hex)
        .map_err(|e| ProtocolError::Malformed(format!("signature: {e}")))?;
    let sig = Signature::from_slice(&bytes)
        .map_err(|e| ProtocolError::Malformed(format!("signature: {e}")))?;
    key.verify(message, &sig)
        .map_err(|_| ProtocolError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_and_tamper() {
        let kp = key_pair_from_seed([7; 32]);
        let sig = sign(&kp.sk, b"hello");
        assert_eq!(verify(&kp.pk, b"hello", &sig), Ok(()));
        assert_eq!(
            verify(&kp.pk, b"hellO", &sig),
            Err(ProtocolError::BadSignature)
        );
        let other = key_pair_from_seed([8; 32]);
        assert_eq!(
            verify(&other.pk, b"hello", &sig),
            Err(ProtocolError::BadSignature)
        );
        assert!(matches!(
            verify(&kp.pk, b"hello", "zz"),
            Err(ProtocolError::Malformed(_))
        ));
    }
}
