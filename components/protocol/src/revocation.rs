//! A revocation: the broker's signed word that a lease a node fetched is
//! withdrawn (the requester cancelled the task or vetoed the delegation, or
//! the node's energy got worse under an interruptible SLA), so the node
//! stops the run and reports `stopped`.

use crate::{sign, verify, ProtocolError};
use ed25519_compact::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};

/// Signed by the broker over [`Revocation::signing_bytes`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revocation {
    pub lease_id: String,
    pub task_id: String,
    pub node_id: String,
    /// The lease's nonce: binds the revocation to that lease alone.
    pub nonce: String,
    /// How the lease ended: `cancelled`, `vetoed` or `interrupted`.
    pub status: String,
    /// Why, in words.
    pub reason: String,
    /// Broker signature (hex).
    pub signature: String,
}

impl Revocation {
    /// The exact bytes the broker signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        format!(
            "greenmesh-revocation-v1\n{}\n{}\n{}\n{}\n{}\n{}",
            self.lease_id, self.task_id, self.node_id, self.nonce, self.status, self.reason
        )
        .into_bytes()
    }

    /// Signs in place with the broker's key.
    pub fn sign(&mut self, key: &SecretKey) {
        self.signature = sign(key, &self.signing_bytes());
    }

    /// Checks the broker's signature.
    pub fn verify(&self, broker: &PublicKey) -> Result<(), ProtocolError> {
        verify(broker, &self.signing_bytes(), &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_pair_from_seed;

    fn revocation() -> Revocation {
        Revocation {
            lease_id: "l1".into(),
            task_id: "t1".into(),
            node_id: "n1".into(),
            nonce: "abc".into(),
            status: "cancelled".into(),
            reason: "the requester cancelled the task".into(),
            signature: String::new(),
        }
    }

    #[test]
    fn a_forged_or_retargeted_revocation_does_not_verify() {
        let broker = key_pair_from_seed([1; 32]);
        let mut r = revocation();
        r.sign(&broker.sk);
        assert_eq!(r.verify(&broker.pk), Ok(()));
        let mut other_lease = r.clone();
        other_lease.lease_id = "l2".into();
        assert_eq!(
            other_lease.verify(&broker.pk),
            Err(ProtocolError::BadSignature)
        );
        let mut forged = revocation();
        forged.sign(&key_pair_from_seed([2; 32]).sk);
        assert_eq!(forged.verify(&broker.pk), Err(ProtocolError::BadSignature));
    }
}
