//! A lease: the broker's signed grant to run one task on one node.

use crate::{sign, verify, Grant, ProtocolError};
use ed25519_compact::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};

/// What a node may run, for how much, within which limits, until when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub lease_id: String,
    pub task_id: String,
    pub node_id: String,
    /// The micro-task (capability) to run.
    pub capability: String,
    /// Credits the requester pays.
    pub price: f64,
    /// Sandbox limits the node must enforce.
    pub timeout_ms: u64,
    pub max_memory_mb: u64,
    pub fuel: u64,
    /// SHA-256 (hex) of the task input the node must run on.
    pub input_sha256: String,
    /// Milliseconds since the Unix epoch after which the lease is void.
    pub expires_at: u64,
    /// Random, unique per lease: a receipt echoes it.
    pub nonce: String,
    /// The owner's grant that lets this task run on the node beyond the
    /// node's own allow-list, when that is why the node was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<SignedGrant>,
    /// Run in the sandbox's deterministic mode (NaN canonicalisation,
    /// frozen clocks, randomness seeded from the nonce), so that a rerun on
    /// another node gives the same bytes; the requester asked for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deterministic: bool,
    /// SHA-256 (hex) of the kernel this lease runs: the one the node
    /// advertised for the capability when the lease was made, or the
    /// submitted module's for `wasm_execution`. A node whose installed
    /// kernel has changed since refuses the lease; the receipt must name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_sha256: Option<String>,
    /// What a deterministic run's randomness is a function of: the same for
    /// every lease of one task (a re-lease, a replica), so runs anywhere
    /// give the same bytes. Absent: the nonce (leases from before seeds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// Broker signature (hex) over [`Lease::signing_bytes`].
    pub signature: String,
}

/// A grant with its owner's signature, carried by a lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedGrant {
    #[serde(flatten)]
    pub grant: Grant,
    /// The granting user's signature over [`Grant::signing_bytes`].
    pub signature: String,
}

impl Lease {
    /// The exact bytes the broker signs (a deterministic lease adds a line,
    /// a pinned kernel and a seed one more each, and a carried grant is
    /// bound by its signature on a last line).
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut bytes = self.core_signing_bytes();
        if self.deterministic {
            bytes.extend_from_slice(b"\ndeterministic");
        }
        if let Some(k) = &self.kernel_sha256 {
            bytes.extend_from_slice(format!("\nkernel:{k}").as_bytes());
        }
        if let Some(s) = &self.seed {
            bytes.extend_from_slice(format!("\nseed:{s}").as_bytes());
        }
        if let Some(g) = &self.grant {
            bytes.extend_from_slice(format!("\ngrant:{}", g.signature).as_bytes());
        }
        bytes
    }

    fn core_signing_bytes(&self) -> Vec<u8> {
        format!(
            "greenmesh-lease-v1\n{}\n{}\n{}\n{}\n{:.6}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.lease_id,
            self.task_id,
            self.node_id,
            self.capability,
            self.price,
            self.timeout_ms,
            self.max_memory_mb,
            self.fuel,
            self.input_sha256,
            self.expires_at,
            self.nonce
        )
        .into_bytes()
    }

    /// Signs in place with the broker's key.
    pub fn sign(&mut self, key: &SecretKey) {
        self.signature = sign(key, &self.signing_bytes());
    }

    /// Checks the broker's signature and that the lease has not expired at `now_ms`.
    pub fn verify(&self, broker: &PublicKey, now_ms: u64) -> Result<(), ProtocolError> {
        verify(broker, &self.signing_bytes(), &self.signature)?;
        if now_ms > self.expires_at {
            return Err(ProtocolError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_pair_from_seed;

    fn lease() -> Lease {
        Lease {
            lease_id: "l1".into(),
            task_id: "t1".into(),
            node_id: "n1".into(),
            capability: "image-filter".into(),
            price: 2.5,
            timeout_ms: 1000,
            max_memory_mb: 64,
            fuel: 1_000_000,
            input_sha256: crate::sha256_hex(b"x"),
            expires_at: 10_000,
            nonce: "abc".into(),
            grant: None,
            deterministic: false,
            kernel_sha256: None,
            seed: None,
            signature: String::new(),
        }
    }

    #[test]
    fn forged_tampered_and_expired_leases_fail() {
        let broker = key_pair_from_seed([1; 32]);
        let mut l = lease();
        l.sign(&broker.sk);
        assert_eq!(l.verify(&broker.pk, 5_000), Ok(()));
        assert_eq!(l.verify(&broker.pk, 10_001), Err(ProtocolError::Expired));
        let mut tampered = l.clone();
        tampered.price = 0.5;
        assert_eq!(
            tampered.verify(&broker.pk, 5_000),
            Err(ProtocolError::BadSignature)
        );
        let mut forged = lease();
        forged.sign(&key_pair_from_seed([2; 32]).sk);
        assert_eq!(
            forged.verify(&broker.pk, 5_000),
            Err(ProtocolError::BadSignature)
        );
    }

    #[test]
    fn the_deterministic_flag_is_signed_and_round_trips() {
        let broker = key_pair_from_seed([1; 32]);
        let mut l = lease();
        l.deterministic = true;
        l.sign(&broker.sk);
        let wire = serde_json::to_string(&l).unwrap();
        assert!(wire.contains(r#""deterministic":true"#), "{wire}");
        let back: Lease = serde_json::from_str(&wire).unwrap();
        assert_eq!(back.verify(&broker.pk, 5_000), Ok(()));
        // Dropping the flag (a node told to run fast) breaks the signature.
        let mut stripped = back.clone();
        stripped.deterministic = false;
        assert_eq!(
            stripped.verify(&broker.pk, 5_000),
            Err(ProtocolError::BadSignature)
        );
        // A lease that does not ask leaves the field out entirely.
        let plain = serde_json::to_string(&lease()).unwrap();
        assert!(!plain.contains("deterministic"), "{plain}");
    }

    #[test]
    fn a_pinned_kernel_is_signed_and_an_unpinned_lease_signs_as_before() {
        let broker = key_pair_from_seed([1; 32]);
        let mut plain = lease();
        plain.sign(&broker.sk);
        let before = plain.signature.clone();
        let mut pinned = lease();
        pinned.kernel_sha256 = Some(crate::sha256_hex(b"kernel"));
        pinned.sign(&broker.sk);
        assert_ne!(
            pinned.signature, before,
            "the pin is part of what is signed"
        );
        let wire = serde_json::to_string(&plain).unwrap();
        assert!(!wire.contains("kernel_sha256"), "{wire}");
        let back: Lease = serde_json::from_str(&wire).unwrap();
        assert_eq!(
            back.verify(&broker.pk, 5_000),
            Ok(()),
            "old leases still verify"
        );
        let mut swapped = pinned.clone();
        swapped.kernel_sha256 = Some(crate::sha256_hex(b"other kernel"));
        assert_eq!(
            swapped.verify(&broker.pk, 5_000),
            Err(ProtocolError::BadSignature)
        );
        let mut unpinned = pinned.clone();
        unpinned.kernel_sha256 = None;
        assert_eq!(
            unpinned.verify(&broker.pk, 5_000),
            Err(ProtocolError::BadSignature)
        );
        let mut seeded = lease();
        seeded.seed = Some("s1".into());
        seeded.sign(&broker.sk);
        let mut reseeded = seeded.clone();
        reseeded.seed = Some("s2".into());
        assert_eq!(
            reseeded.verify(&broker.pk, 5_000),
            Err(ProtocolError::BadSignature),
            "the seed is signed"
        );
    }

    #[test]
    fn a_carried_grant_is_bound_by_the_broker_signature() {
        let broker = key_pair_from_seed([1; 32]);
        let owner = key_pair_from_seed([3; 32]);
        let grant = Grant {
            node_id: "n1".into(),
            user_id: "alice".into(),
            task_pattern: "*".into(),
            expires_at: None,
            issued_at: 1,
        };
        let mut l = lease();
        l.grant = Some(SignedGrant {
            signature: grant.sign(&owner.sk),
            grant,
        });
        l.sign(&broker.sk);
        assert_eq!(l.verify(&broker.pk, 5_000), Ok(()));
        let mut stripped = l.clone();
        stripped.grant = None;
        assert_eq!(
            stripped.verify(&broker.pk, 5_000),
            Err(ProtocolError::BadSignature),
            "removing or swapping the grant breaks the lease"
        );
    }
}
