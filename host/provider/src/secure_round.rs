//! Secure aggregation on the node (ADR 0019): after `fl-train` ran, the
//! provider (never the sandbox, which does not hold the node key) turns the
//! kernel's update into its row-weighted contribution, checks the round's
//! roster the broker signed, and masks the contribution against it. Only
//! the masked words leave the node; the plain update stays in memory.

use greenmesh_protocol::ed25519_compact::{KeyPair, PublicKey};
use greenmesh_protocol::{Contribution, Lease, Masked, Roster};
use serde_json::{json, Value};

/// Whether a training lease's input asks for a masked update.
pub fn asked(input: &str) -> bool {
    serde_json::from_str::<Value>(input).is_ok_and(|v| v["inputs"]["secure_aggregation"] == true)
}

/// The kernel's output (`{params, samples, loss, holdout}`) as a contribution.
pub fn contribution(kernel_output: &[u8]) -> Result<Contribution, String> {
    let v: Value = serde_json::from_slice(kernel_output)
        .map_err(|e| format!("fl-train output is not JSON: {e}"))?;
    let params: Vec<f64> = serde_json::from_value(v["params"].clone())
        .map_err(|e| format!("fl-train output: params: {e}"))?;
    let samples = v["samples"]
        .as_u64()
        .ok_or("fl-train output: samples is not a count")?;
    // Fixed point wraps past ±2³⁹ summed: refuse what could (a diverged
    // model), rather than let the sum come out silently wrong.
    let limit = (1u64 << 32) as f64;
    if params
        .iter()
        .any(|p| !p.is_finite() || (p * samples as f64).abs() >= limit)
    {
        return Err("fl-train output: parameters out of range for secure aggregation (|rows × parameter| must stay under 2³²)".into());
    }
    Ok(Contribution {
        params,
        samples: samples as f64,
        loss: v["loss"].as_f64().unwrap_or(f64::NAN),
        correct: v["holdout"]["correct"].as_u64().unwrap_or(0) as f64,
        total: v["holdout"]["total"].as_u64().unwrap_or(0) as f64,
    })
}

/// Refuses a roster this node must not mask against: not the broker's,
/// not this lease's round, without this node (under its own key), or with
/// a member twice. A roster of two is allowed: each member then learns
/// the other's (DP-noised) update from the sum, as in any aggregation of two.
pub fn check(
    roster: &Roster,
    broker: &PublicKey,
    lease: &Lease,
    me: &PublicKey,
) -> Result<(), String> {
    roster
        .verify(broker)
        .map_err(|e| format!("the roster is not the broker's: {e}"))?;
    if !lease.task_id.starts_with(&format!("{}-s", roster.task_id)) {
        return Err(format!(
            "the roster is for task {}, not this lease's",
            roster.task_id
        ));
    }
    let mine = greenmesh_protocol::public_key_hex(me);
    if !roster
        .members
        .iter()
        .any(|m| m.lease_id == lease.lease_id && m.node_id == lease.node_id && m.public_key == mine)
    {
        return Err("the roster does not list this lease under this node's key".into());
    }
    let mut nodes: Vec<&str> = roster.members.iter().map(|m| m.node_id.as_str()).collect();
    nodes.sort_unstable();
    nodes.dedup();
    if nodes.len() != roster.members.len() || nodes.len() < 2 {
        return Err("the roster needs two or more distinct nodes".into());
    }
    Ok(())
}

/// The output the node reports: its contribution masked against `roster`.
pub fn masked_output(
    kernel_output: &[u8],
    key: &KeyPair,
    node_id: &str,
    roster: &Roster,
) -> Result<String, String> {
    let c = contribution(kernel_output)?;
    let masked = Masked::of(&c, key, node_id, roster).map_err(|e| e.to_string())?;
    Ok(json!({ "media_type": "application/json", "json": { "masked": masked } }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use greenmesh_protocol::{key_pair_from_seed, RosterMember};

    fn lease(node: &str) -> Lease {
        serde_json::from_value(json!({
            "lease_id": format!("l-{node}"), "task_id": "task-1-s0-r0", "node_id": node,
            "capability": "fl-train", "price": 1.0, "timeout_ms": 1, "max_memory_mb": 1, "fuel": 1,
            "input_sha256": "", "expires_at": 0, "nonce": "n", "signature": ""
        }))
        .unwrap()
    }

    #[test]
    fn a_forged_or_foreign_roster_is_refused_and_no_update_is_masked_against_it() {
        let broker = key_pair_from_seed([1; 32]);
        let (a, b) = (key_pair_from_seed([2; 32]), key_pair_from_seed([3; 32]));
        let member = |id: &str, k: &KeyPair| RosterMember {
            node_id: id.into(),
            public_key: greenmesh_protocol::public_key_hex(&k.pk),
            lease_id: format!("l-{id}"),
        };
        let mut roster = Roster {
            task_id: "task-1".into(),
            round: 0,
            attempt: 0,
            members: vec![member("a", &a), member("b", &b)],
            signature: String::new(),
        };
        roster.sign(&broker.sk);
        assert_eq!(check(&roster, &broker.pk, &lease("a"), &a.pk), Ok(()));
        // Signed by someone else (a coordinator impostor).
        let mut forged = roster.clone();
        forged.sign(&b.sk);
        assert!(check(&forged, &broker.pk, &lease("a"), &a.pk).is_err());
        // A roster listing this node under a key it does not hold: the
        // masks would not cancel, or would be someone else's.
        assert!(check(&roster, &broker.pk, &lease("a"), &b.pk).is_err());
        // A roster of this node alone would unmask it.
        let mut alone = roster.clone();
        alone.members.truncate(1);
        alone.sign(&broker.sk);
        assert!(check(&alone, &broker.pk, &lease("a"), &a.pk).is_err());
        // A roster of the same node twice, likewise.
        let mut twice = roster.clone();
        twice.members[1] = member("a", &a);
        twice.sign(&broker.sk);
        assert!(check(&twice, &broker.pk, &lease("a"), &a.pk).is_err());
    }

    #[test]
    fn the_reported_output_holds_masked_words_and_no_parameter() {
        let broker = key_pair_from_seed([1; 32]);
        let (a, b) = (key_pair_from_seed([2; 32]), key_pair_from_seed([3; 32]));
        let mut roster = Roster {
            task_id: "task-1".into(),
            round: 0,
            attempt: 0,
            members: [("a", &a), ("b", &b)]
                .iter()
                .map(|(id, k)| RosterMember {
                    node_id: (*id).into(),
                    public_key: greenmesh_protocol::public_key_hex(&k.pk),
                    lease_id: format!("l-{id}"),
                })
                .collect(),
            signature: String::new(),
        };
        roster.sign(&broker.sk);
        let kernel = br#"{"params":[0.123456,-7.5],"samples":91,"loss":0.3,"holdout":{"correct":17,"total":18}}"#;
        let out = masked_output(kernel, &a, "a", &roster).unwrap();
        for plain in ["0.123456", "7.5", "\"samples\"", "params"] {
            assert!(!out.contains(plain), "{plain} in {out}");
        }
        assert!(out.contains(&roster.sha256()));
    }
}
