//! A receipt: the node's signed account of one lease's execution.

use crate::{sign, verify, ProtocolError};
use ed25519_compact::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};

/// How the task ended on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Succeeded,
    Failed,
    /// The node stopped the run before it ended: the broker revoked the
    /// lease (see [`crate::Revocation`]), or the node gave it up. The
    /// receipt reports the time and energy used until then.
    Stopped,
}

impl ReceiptStatus {
    fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Succeeded => "succeeded",
            ReceiptStatus::Failed => "failed",
            ReceiptStatus::Stopped => "stopped",
        }
    }
}

/// Whose fault a failed run was, as the node signs it: only a node's own
/// faults weigh on its reputation (issue 21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The requester's: its submitted module (`wasm_execution`) trapped,
    /// erred or hit the limits it set, or its input did not parse.
    Requester,
    /// The node's: its own kernel crashed, or it could not fetch or prepare
    /// what the lease names.
    Node,
}

impl Fault {
    fn as_str(self) -> &'static str {
        match self {
            Fault::Requester => "requester",
            Fault::Node => "node",
        }
    }
}

/// Signed by the node over [`Receipt::signing_bytes`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub lease_id: String,
    pub task_id: String,
    pub node_id: String,
    /// The lease's nonce, echoed: ties the receipt to that lease only.
    pub nonce: String,
    pub status: ReceiptStatus,
    /// SHA-256 (hex) of the kernel, the input and the output.
    pub kernel_sha256: String,
    pub input_sha256: String,
    pub output_sha256: String,
    pub duration_ms: u64,
    pub peak_memory_bytes: u64,
    /// Energy used, Wh (duration × the node's configured device power).
    pub energy_wh: f64,
    /// Why the task failed, when it did.
    #[serde(default)]
    pub error: Option<String>,
    /// Whose fault the failure was, when it failed (absent: the node's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    pub signature: String,
}

impl Receipt {
    /// The exact bytes the node signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        format!(
            "greenmesh-receipt-v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{:.6}\n{}",
            self.lease_id,
            self.task_id,
            self.node_id,
            self.nonce,
            self.status.as_str(),
            self.kernel_sha256,
            self.input_sha256,
            self.output_sha256,
            self.duration_ms,
            self.peak_memory_bytes,
            self.energy_wh,
            self.error.as_deref().unwrap_or("")
        )
        .into_bytes()
        .into_iter()
        // A fault, when given, is signed too (receipts without one sign as
        // before).
        .chain(
            self.fault
                .map(|f| format!("\nfault:{}", f.as_str()).into_bytes())
                .unwrap_or_default(),
        )
        .collect()
    }

    /// Signs in place with the node's key.
    pub fn sign(&mut self, key: &SecretKey) {
        self.signature = sign(key, &self.signing_bytes());
    }

    /// Checks the node's signature.
    pub fn verify(&self, node: &PublicKey) -> Result<(), ProtocolError> {
        verify(node, &self.signing_bytes(), &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_pair_from_seed;

    #[test]
    fn a_stopped_receipt_is_signed_as_stopped_and_cannot_pass_for_a_success() {
        let node = key_pair_from_seed([4; 32]);
        let mut r = Receipt {
            lease_id: "l1".into(),
            task_id: "t1".into(),
            node_id: "n1".into(),
            nonce: "abc".into(),
            status: ReceiptStatus::Stopped,
            kernel_sha256: String::new(),
            input_sha256: String::new(),
            output_sha256: crate::sha256_hex(b""),
            duration_ms: 120,
            peak_memory_bytes: 0,
            energy_wh: 0.001,
            error: Some("stopped: the requester cancelled the task".into()),
            fault: None,
            signature: String::new(),
        };
        r.sign(&node.sk);
        assert_eq!(r.verify(&node.pk), Ok(()));
        let wire = serde_json::to_string(&r).unwrap();
        assert!(wire.contains(r#""status":"stopped""#), "{wire}");
        let mut relabelled = r.clone();
        relabelled.status = ReceiptStatus::Succeeded;
        assert_eq!(
            relabelled.verify(&node.pk),
            Err(ProtocolError::BadSignature)
        );
    }

    #[test]
    fn whose_fault_is_signed_and_a_node_cannot_shift_it_afterwards() {
        let node = key_pair_from_seed([5; 32]);
        let mut r = Receipt {
            lease_id: "l1".into(),
            task_id: "t1".into(),
            node_id: "n1".into(),
            nonce: "abc".into(),
            status: ReceiptStatus::Failed,
            kernel_sha256: String::new(),
            input_sha256: String::new(),
            output_sha256: crate::sha256_hex(b""),
            duration_ms: 5,
            peak_memory_bytes: 0,
            energy_wh: 0.0,
            error: Some("trapped: unreachable".into()),
            fault: None,
            signature: String::new(),
        };
        // Without a fault it signs exactly as before faults existed.
        let old = r.signing_bytes();
        assert!(!String::from_utf8_lossy(&old).contains("fault"));
        r.fault = Some(Fault::Requester);
        r.sign(&node.sk);
        assert_eq!(r.verify(&node.pk), Ok(()));
        assert!(serde_json::to_string(&r)
            .unwrap()
            .contains(r#""fault":"requester""#));
        let mut shifted = r.clone();
        shifted.fault = Some(Fault::Node);
        assert_eq!(shifted.verify(&node.pk), Err(ProtocolError::BadSignature));
        shifted.fault = None;
        assert_eq!(shifted.verify(&node.pk), Err(ProtocolError::BadSignature));
    }
}
