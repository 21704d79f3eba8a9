//! A federated round's contribution bundle (`require_proof`): the roster
//! the broker fixed and signed, each member's lease and signed receipt, and
//! the masked update the receipt's output hash covers. Anyone holding it
//! can check who contributed what to the round's sum and recompute the sum
//! (and so the round's FedAvg) from the masked updates; nobody can take a
//! single member's update out of it.
//!
//! It proves contributions, not honest training: no other node holds a
//! member's rows, so what the member computed on them is not checkable.

use crate::secure_sum::{self, Contribution, Masked, Roster};
use crate::{Lease, ProofError, Receipt, ReceiptStatus};
use ed25519_compact::PublicKey;
use serde::{Deserialize, Serialize};

/// One member's part: its lease, its receipt, and the output the receipt
/// signs (`{media_type, json: {masked}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContributedRun {
    pub lease: Lease,
    pub receipt: Receipt,
    pub output: String,
}

/// One closed round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundContributions {
    pub roster: Roster,
    pub runs: Vec<ContributedRun>,
}

impl RoundContributions {
    /// Checks every signature and binding against `broker`, and answers the
    /// round's totals recomputed from the masked updates.
    pub fn verify(&self, broker: &PublicKey) -> Result<Contribution, ProofError> {
        let round = self.roster.round + 1;
        let at = |what: String| ProofError(format!("round {round}: {what}"));
        self.roster
            .verify(broker)
            .map_err(|e| at(format!("the roster is not signed by the broker key ({e})")))?;
        if self.runs.len() != self.roster.members.len() {
            return Err(at(format!(
                "{} runs for a roster of {}",
                self.runs.len(),
                self.roster.members.len()
            )));
        }
        let context = self.roster.sha256();
        let mut masked = Vec::with_capacity(self.runs.len());
        for (entry, run) in self.roster.members.iter().zip(&self.runs) {
            let (lease, receipt) = (&run.lease, &run.receipt);
            let at = |what: &str| at(format!("lease {}: {what}", lease.lease_id));
            crate::verify(broker, &lease.signing_bytes(), &lease.signature)
                .map_err(|e| at(&format!("the lease is not signed by the broker key ({e})")))?;
            if lease.lease_id != entry.lease_id || lease.node_id != entry.node_id {
                return Err(at("the lease is not the roster's"));
            }
            let key =
                crate::public_key(&entry.public_key).map_err(|e| at(&format!("node key: {e}")))?;
            receipt.verify(&key).map_err(|e| {
                at(&format!(
                    "the receipt is not signed by {} ({e})",
                    entry.node_id
                ))
            })?;
            if receipt.lease_id != lease.lease_id
                || receipt.nonce != lease.nonce
                || receipt.status != ReceiptStatus::Succeeded
            {
                return Err(at("the receipt is not this lease's success"));
            }
            if crate::sha256_hex(run.output.as_bytes()) != receipt.output_sha256 {
                return Err(at("the output is not the one the receipt signs"));
            }
            let m =
                masked_in(&run.output).ok_or_else(|| at("the output holds no masked update"))?;
            if m.roster_sha256 != context {
                return Err(at("the update was masked against another roster"));
            }
            masked.push(m);
        }
        secure_sum::sum(&masked)
            .and_then(|s| Contribution::of_sum(&s))
            .ok_or_else(|| at("the masked updates do not sum to a model".into()))
    }
}

/// The masked update in a member's output text.
fn masked_in(output: &str) -> Option<Masked> {
    #[derive(Deserialize)]
    struct Json {
        masked: Masked,
    }
    #[derive(Deserialize)]
    struct Output {
        json: Json,
    }
    serde_json::from_str::<Output>(output)
        .ok()
        .map(|o| o.json.masked)
}
