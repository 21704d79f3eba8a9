//! A permission grant: a node's owner lets one user run tasks matching a
//! pattern on that node, until an optional expiry. The owner signs it with
//! the key registered for their account, so the grant can be checked by
//! anyone holding that public key (the broker, or the node itself).

use crate::{sign, verify, ProtocolError};
use ed25519_compact::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};

/// What the granting user signs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// The node the grant opens.
    pub node_id: String,
    /// The user allowed to run tasks there.
    pub user_id: String,
    /// A task (capability or task name), a prefix ending in `*`, or `*` for all.
    pub task_pattern: String,
    /// Milliseconds since the Unix epoch after which the grant stops working.
    pub expires_at: Option<u64>,
    /// When the owner signed it (ms since the Unix epoch); makes each grant unique.
    pub issued_at: u64,
}

impl Grant {
    /// The exact bytes the granting user signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        format!(
            "greenmesh-grant-v1\n{}\n{}\n{}\n{}\n{}",
            self.node_id,
            self.user_id,
            self.task_pattern,
            self.expires_at.map(|t| t.to_string()).unwrap_or_default(),
            self.issued_at
        )
        .into_bytes()
    }

    /// The hex signature of this grant by `key`.
    pub fn sign(&self, key: &SecretKey) -> String {
        sign(key, &self.signing_bytes())
    }

    /// Checks `signature` was made by `granter` over this grant.
    pub fn verify(&self, granter: &PublicKey, signature: &str) -> Result<(), ProtocolError> {
        verify(granter, &self.signing_bytes(), signature)
    }

    /// Whether `task` (a capability or task name) falls under the pattern.
    pub fn covers(&self, task: &str) -> bool {
        pattern_covers(&self.task_pattern, task)
    }
}

/// `*` covers everything, `image-*` every task starting `image-`, anything
/// else only itself.
pub fn pattern_covers(pattern: &str, task: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => task.starts_with(prefix),
        None => pattern == task,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            node_id: "node-1".into(),
            user_id: "user-alice".into(),
            task_pattern: "database-*".into(),
            expires_at: Some(1_771_545_599_000),
            issued_at: 1_771_000_000_000,
        }
    }

    #[test]
    fn a_grant_verifies_with_its_signer_only_and_not_once_altered() {
        let owner = crate::key_pair_from_seed([7; 32]);
        let stranger = crate::key_pair_from_seed([8; 32]);
        let g = grant();
        let sig = g.sign(&owner.sk);
        assert!(g.verify(&owner.pk, &sig).is_ok());
        assert_eq!(
            g.verify(&stranger.pk, &sig),
            Err(ProtocolError::BadSignature)
        );
        let widened = Grant {
            task_pattern: "*".into(),
            ..grant()
        };
        assert_eq!(
            widened.verify(&owner.pk, &sig),
            Err(ProtocolError::BadSignature)
        );
        let unexpiring = Grant {
            expires_at: None,
            ..grant()
        };
        assert!(unexpiring.verify(&owner.pk, &sig).is_err());
    }

    #[test]
    fn patterns_cover_exact_names_prefixes_and_everything() {
        assert!(pattern_covers("*", "object-detect"));
        assert!(pattern_covers("database-*", "database-cleanup"));
        assert!(!pattern_covers("database-*", "image-filter"));
        assert!(pattern_covers("image-filter", "image-filter"));
        assert!(!pattern_covers("image-filter", "image-filter-2"));
    }
}
