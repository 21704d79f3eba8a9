//! A proof bundle: the broker's signed, self-contained account of a
//! `require_proof` task's agreed result, checkable offline by anyone with
//! the broker's public key (`greenmesh verify`).
//!
//! For each shard it holds the agreeing runs: the broker-signed lease and
//! the node-signed receipt of each, and the keys and owners of those nodes.
//! [`ProofBundle::verify`] checks every signature, that each receipt is
//! its lease's (id, task, node, nonce, input, kernel), that the agreeing
//! receipts name one output on nodes of distinct owners, and that they are
//! a majority of the runs that reported. What that proves, and what it
//! does not (a colluding majority of the chosen owners), is in
//! `docs/verification.md`.

use crate::{public_key, sign, verify, Lease, Receipt, ReceiptStatus};
use ed25519_compact::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};

/// The quorum rule a bundle states and [`ProofBundle::verify`] applies.
pub const QUORUM_RULE: &str =
    "an output is agreed when at least two runs on nodes of distinct owners \
     report it and they are more than half of the runs that reported";

/// The bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProofBundle {
    pub proof_id: String,
    /// The task as submitted; its members' tasks are `{task_id}-s{shard}-r{replica}`.
    pub task_id: String,
    pub capability: String,
    /// SHA-256 of the task's stored request.
    pub task_sha256: String,
    /// [`QUORUM_RULE`].
    pub rule: String,
    /// Agreeing runs of distinct owners each shard needs (two).
    pub min_agreeing: u32,
    pub shards: Vec<ShardProof>,
    /// The nodes that ran the agreeing runs: key and owner, as registered.
    pub nodes: Vec<NodeKey>,
    pub broker_public_key: String,
    /// Milliseconds since the Unix epoch.
    pub issued_at: u64,
    /// Broker signature (hex) over [`ProofBundle::signing_bytes`].
    pub signature: String,
}

/// One shard's agreed output and the runs that agree on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardProof {
    pub shard: u32,
    pub input_sha256: String,
    pub kernel_sha256: String,
    pub output_sha256: String,
    /// Runs that reported (an output or a failure), agreeing or not.
    pub reported: u32,
    pub runs: Vec<Run>,
}

/// A lease and its receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub lease: Lease,
    pub receipt: Receipt,
}

/// A node's key and its owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeKey {
    pub node_id: String,
    pub owner: String,
    pub public_key: String,
}

/// What a bundle that verifies shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub shards: usize,
    pub runs: usize,
    /// Distinct owners whose nodes agreed, over all shards.
    pub owners: usize,
}

/// Why a bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofError(pub String);

impl std::fmt::Display for ProofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProofError {}

fn fail<T>(why: impl Into<String>) -> Result<T, ProofError> {
    Err(ProofError(why.into()))
}

impl ProofBundle {
    /// The exact bytes the broker signs: the bundle's fields, then a line
    /// per shard, per run (bound by the lease's and the receipt's own
    /// signatures, which cover all their fields) and per node.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut s = format!(
            "greenmesh-proof-v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.proof_id,
            self.task_id,
            self.capability,
            self.task_sha256,
            self.rule,
            self.min_agreeing,
            self.broker_public_key,
            self.issued_at
        );
        for shard in &self.shards {
            s.push_str(&format!(
                "\nshard:{}:{}:{}:{}:{}",
                shard.shard,
                shard.input_sha256,
                shard.kernel_sha256,
                shard.output_sha256,
                shard.reported
            ));
            for run in &shard.runs {
                s.push_str(&format!(
                    "\nrun:{}:{}",
                    run.lease.signature, run.receipt.signature
                ));
            }
        }
        for n in &self.nodes {
            s.push_str(&format!(
                "\nnode:{}:{}:{}",
                n.node_id, n.owner, n.public_key
            ));
        }
        s.into_bytes()
    }

    /// Signs in place with the broker's key.
    pub fn sign(&mut self, key: &SecretKey) {
        self.signature = sign(key, &self.signing_bytes());
    }

    /// Checks the bundle against `broker` (the broker's public key the
    /// verifier trusts; `None`: the key the bundle names, which only shows
    /// the bundle is consistent, not who issued it).
    pub fn verify(&self, broker: Option<&PublicKey>) -> Result<Verified, ProofError> {
        let named = public_key(&self.broker_public_key)
            .map_err(|e| ProofError(format!("broker_public_key: {e}")))?;
        let broker = match broker {
            Some(k) if k.as_ref() != named.as_ref() => {
                return fail(
                    "the bundle names another broker key than the one it is checked against",
                )
            }
            Some(k) => *k,
            None => named,
        };
        verify(&broker, &self.signing_bytes(), &self.signature).map_err(|e| {
            ProofError(format!(
                "the broker's signature over the bundle does not verify ({e}): \
                 it was changed after it was issued, or another key signed it"
            ))
        })?;
        if self.rule != QUORUM_RULE || self.min_agreeing < 2 {
            return fail("the bundle states another quorum rule than greenmesh's");
        }
        if self.shards.is_empty() {
            return fail("the bundle has no shards");
        }
        let mut owners: Vec<&str> = Vec::new();
        let mut runs = 0;
        for shard in &self.shards {
            let at = |what: &str| format!("shard {}: {what}", shard.shard);
            let mut shard_owners: Vec<&str> = Vec::new();
            let mut seed: Option<&Option<String>> = None;
            for run in &shard.runs {
                let (lease, receipt) = (&run.lease, &run.receipt);
                let at = |what: &str| at(&format!("lease {}: {what}", lease.lease_id));
                crate::verify(&broker, &lease.signing_bytes(), &lease.signature).map_err(|e| {
                    ProofError(at(&format!(
                        "the lease is not signed by the broker key ({e})"
                    )))
                })?;
                let member = format!("{}-s{}-r", self.task_id, shard.shard);
                if !lease.task_id.starts_with(&member) || lease.capability != self.capability {
                    return fail(at("the lease is for another task or capability"));
                }
                if lease.input_sha256 != shard.input_sha256 {
                    return fail(at("the lease is for another input"));
                }
                if lease
                    .kernel_sha256
                    .as_deref()
                    .is_some_and(|k| k != shard.kernel_sha256)
                {
                    return fail(at("the lease pins another kernel"));
                }
                if *seed.get_or_insert(&lease.seed) != &lease.seed || !lease.deterministic {
                    return fail(at(
                        "the runs were not one deterministic computation (seeds differ)",
                    ));
                }
                let node = self
                    .nodes
                    .iter()
                    .find(|n| n.node_id == lease.node_id)
                    .ok_or_else(|| {
                        ProofError(at("the bundle lacks the key of the node it names"))
                    })?;
                let key = public_key(&node.public_key)
                    .map_err(|e| ProofError(at(&format!("node key: {e}"))))?;
                receipt.verify(&key).map_err(|e| {
                    ProofError(at(&format!(
                        "the receipt is not signed by {} ({e})",
                        node.node_id
                    )))
                })?;
                let same = receipt.lease_id == lease.lease_id
                    && receipt.task_id == lease.task_id
                    && receipt.node_id == lease.node_id
                    && receipt.nonce == lease.nonce
                    && receipt.input_sha256 == lease.input_sha256;
                if !same {
                    return fail(at(
                        "the receipt is not this lease's (id, task, node, nonce or input)",
                    ));
                }
                if receipt.status != ReceiptStatus::Succeeded {
                    return fail(at("the receipt does not report a success"));
                }
                if receipt.kernel_sha256 != shard.kernel_sha256 {
                    return fail(at("the receipt names another kernel"));
                }
                if receipt.output_sha256 != shard.output_sha256 {
                    return fail(at("the receipt names another output"));
                }
                if shard_owners.contains(&node.owner.as_str()) {
                    return fail(at("two agreeing runs are on nodes of one owner"));
                }
                shard_owners.push(&node.owner);
                if !owners.contains(&node.owner.as_str()) {
                    owners.push(&node.owner);
                }
                runs += 1;
            }
            let agreeing = shard.runs.len() as u32;
            if agreeing < self.min_agreeing {
                return fail(at(&format!(
                    "{agreeing} agreeing run(s); the rule needs {}",
                    self.min_agreeing
                )));
            }
            if agreeing * 2 <= shard.reported {
                return fail(at(&format!(
                    "{agreeing} agreeing of {} reported runs is no majority",
                    shard.reported
                )));
            }
        }
        Ok(Verified {
            shards: self.shards.len(),
            runs,
            owners: owners.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_pair_from_seed;

    /// A two-run bundle signed by broker key 1, nodes 2 and 3 of two owners.
    fn bundle() -> (ProofBundle, ed25519_compact::KeyPair) {
        let broker = key_pair_from_seed([1; 32]);
        let mut nodes = Vec::new();
        let mut runs = Vec::new();
        for (i, seed) in [2u8, 3].into_iter().enumerate() {
            let kp = key_pair_from_seed([seed; 32]);
            let node_id = format!("node-{seed}");
            let mut lease = Lease {
                lease_id: format!("lease-{i}"),
                task_id: format!("task-1-s0-r{i}"),
                node_id: node_id.clone(),
                capability: "image-filter".into(),
                price: 1.0,
                timeout_ms: 1000,
                max_memory_mb: 64,
                fuel: 1,
                input_sha256: "in".into(),
                expires_at: 10,
                nonce: format!("n{i}"),
                grant: None,
                deterministic: true,
                kernel_sha256: Some("k".into()),
                seed: Some("s".into()),
                signature: String::new(),
            };
            lease.sign(&broker.sk);
            let mut receipt = Receipt {
                lease_id: lease.lease_id.clone(),
                task_id: lease.task_id.clone(),
                node_id: node_id.clone(),
                nonce: lease.nonce.clone(),
                status: ReceiptStatus::Succeeded,
                kernel_sha256: "k".into(),
                input_sha256: "in".into(),
                output_sha256: "out".into(),
                duration_ms: 1,
                peak_memory_bytes: 1,
                energy_wh: 0.0,
                error: None,
                fault: None,
                signature: String::new(),
            };
            receipt.sign(&kp.sk);
            runs.push(Run { lease, receipt });
            nodes.push(NodeKey {
                node_id,
                owner: format!("owner-{seed}"),
                public_key: crate::public_key_hex(&kp.pk),
            });
        }
        let mut b = ProofBundle {
            proof_id: "proof-1".into(),
            task_id: "task-1".into(),
            capability: "image-filter".into(),
            task_sha256: "t".into(),
            rule: QUORUM_RULE.into(),
            min_agreeing: 2,
            shards: vec![ShardProof {
                shard: 0,
                input_sha256: "in".into(),
                kernel_sha256: "k".into(),
                output_sha256: "out".into(),
                reported: 3,
                runs,
            }],
            nodes,
            broker_public_key: crate::public_key_hex(&broker.pk),
            issued_at: 5,
            signature: String::new(),
        };
        b.sign(&broker.sk);
        (b, broker)
    }

    #[test]
    fn a_bundle_verifies_against_its_broker_and_not_another() {
        let (b, broker) = bundle();
        let v = b.verify(Some(&broker.pk)).unwrap();
        assert_eq!((v.shards, v.runs, v.owners), (1, 2, 2));
        let other = key_pair_from_seed([9; 32]);
        assert!(b.verify(Some(&other.pk)).is_err());
    }

    #[test]
    fn an_output_hash_changed_by_one_character_breaks_the_broker_signature() {
        let (mut b, broker) = bundle();
        b.shards[0].output_sha256 = "ouT".into();
        let e = b.verify(Some(&broker.pk)).unwrap_err();
        assert!(e.0.contains("broker's signature"), "{e}");
    }

    #[test]
    fn a_receipt_of_another_task_signed_into_a_bundle_is_refused() {
        // Even the broker's own signature cannot make a receipt of another
        // lease count: node 2 signed the same output for another task.
        let (mut b, broker) = bundle();
        let node = key_pair_from_seed([2; 32]);
        let r = &mut b.shards[0].runs[0].receipt;
        r.lease_id = "lease-of-another-task".into();
        r.task_id = "task-2-s0-r0".into();
        r.sign(&node.sk);
        b.sign(&broker.sk);
        let e = b.verify(Some(&broker.pk)).unwrap_err();
        assert!(e.0.contains("not this lease's"), "{e}");
    }

    #[test]
    fn two_agreeing_runs_of_one_owner_are_no_quorum() {
        let (mut b, broker) = bundle();
        b.nodes[1].owner = b.nodes[0].owner.clone();
        b.sign(&broker.sk);
        let e = b.verify(Some(&broker.pk)).unwrap_err();
        assert!(e.0.contains("one owner"), "{e}");
    }

    #[test]
    fn two_of_five_reported_is_no_majority() {
        let (mut b, broker) = bundle();
        b.shards[0].reported = 4;
        b.sign(&broker.sk);
        let e = b.verify(Some(&broker.pk)).unwrap_err();
        assert!(e.0.contains("no majority"), "{e}");
    }
}
