//! What a node checks before running a lease: the broker's signature, that
//! the lease is addressed to this node and still valid, that the task is one
//! this node accepts (its allow-list, or a grant its owner signed), and that
//! its limits fit the node's; and before training on its own rows, that it
//! holds the dataset and will draw privacy noise from its own randomness.

use super::config::ProviderConfig;
use greenmesh_protocol::ed25519_compact::PublicKey;
use greenmesh_protocol::{Lease, ProtocolError};

/// The keys a node trusts.
pub struct Trust<'a> {
    /// Signs leases.
    pub broker: &'a PublicKey,
    /// The node owner's registered key, which signs grants (when known).
    pub owner: Option<&'a PublicKey>,
}

/// What this node has installed for a capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// Nothing: it cannot run it.
    Nothing,
    /// `wasm_execution`: the kernel comes with each task.
    AnyModule,
    /// A kernel with this SHA-256.
    Kernel(String),
}

/// Checks `lease` against the trusted keys and this node's settings;
/// the error is the reason sent back with the refusal.
pub fn check(
    lease: &Lease,
    input_text: &str,
    trust: &Trust,
    node_id: &str,
    config: &ProviderConfig,
    installed: &dyn Fn(&str) -> Installed,
    now_ms: u64,
) -> Result<(), String> {
    match lease.verify(trust.broker, now_ms) {
        Ok(()) => {}
        Err(ProtocolError::Expired) => {
            return Err(format!(
                "lease expired at {} (now {now_ms})",
                lease.expires_at
            ))
        }
        Err(_) => {
            return Err("forged lease: the signature does not verify with the broker's key".into())
        }
    }
    if lease.node_id != node_id {
        return Err(format!(
            "lease is for node {}, not this node ({node_id})",
            lease.node_id
        ));
    }
    if !config.allows(&lease.capability) {
        let not_allowed = format!(
            "{} is not in this node's allowed tasks ({})",
            lease.capability,
            config.allowed_tasks.join(", ")
        );
        let Some(g) = &lease.grant else {
            return Err(not_allowed);
        };
        let owner = trust.owner.ok_or_else(|| {
            format!("{not_allowed}, and the owner has no key to check the grant with")
        })?;
        if g.grant.verify(owner, &g.signature).is_err() {
            return Err(format!(
                "{not_allowed}, and the grant is not signed by this node's owner"
            ));
        }
        if g.grant.node_id != node_id || !g.grant.covers(&lease.capability) {
            return Err(format!(
                "{not_allowed}, and the grant ({} on {}) does not cover it",
                g.grant.task_pattern, g.grant.node_id
            ));
        }
        if g.grant.expires_at.is_some_and(|t| t <= now_ms) {
            return Err(format!("{not_allowed}, and the grant has expired"));
        }
    }
    match (installed(&lease.capability), &lease.kernel_sha256) {
        (Installed::Nothing, _) => {
            return Err(format!(
                "no {} kernel installed on this node",
                lease.capability
            ))
        }
        (Installed::Kernel(have), Some(pinned)) if have != *pinned => {
            return Err(format!(
                "the lease pins {} kernel {pinned}, but this node now has {have} installed",
                lease.capability
            ))
        }
        _ => {}
    }
    if lease.timeout_ms > config.max_task_duration_ms {
        return Err(format!(
            "lease allows {} ms; this node runs tasks for at most {} ms",
            lease.timeout_ms, config.max_task_duration_ms
        ));
    }
    if lease.max_memory_mb > config.memory_mb {
        return Err(format!(
            "lease allows {} MiB; this node offers at most {} MiB",
            lease.max_memory_mb, config.memory_mb
        ));
    }
    if greenmesh_protocol::sha256_hex(input_text.as_bytes()) != lease.input_sha256 {
        return Err("the input delivered does not hash to the lease's input_sha256".into());
    }
    Ok(())
}

/// What a node checks before training on its own rows (`fl-train`): that
/// it holds the dataset the lease names, and that privacy noise will come
/// from its own randomness: deterministic mode seeds `wasi:random` from
/// the lease, which the coordinator and requester know, so noise drawn
/// under it could be subtracted again.
pub fn check_training(
    input_text: &str,
    deterministic: bool,
    holds: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    let input: serde_json::Value =
        serde_json::from_str(input_text).map_err(|e| format!("input is not JSON: {e}"))?;
    let inputs = &input["inputs"];
    let dataset = inputs["dataset"]
        .as_str()
        .ok_or("a training lease must name inputs.dataset")?;
    if !holds(dataset) {
        return Err(format!("this node does not hold dataset {dataset}"));
    }
    let noisy = inputs["training"]["noise_multiplier"]
        .as_f64()
        .is_some_and(|s| s > 0.0);
    if noisy && deterministic {
        return Err(
            "differentially private training needs this node's own randomness; deterministic mode \
             would draw the noise from a seed the lease names"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use greenmesh_protocol::ed25519_compact::KeyPair;
    use greenmesh_protocol::key_pair_from_seed;

    const INPUT: &str = r#"{"inputs":{},"wasm_module":null}"#;
    /// The hash of the `noop` kernel this test node has installed.
    const NOOP: &str = "6e6f6f70";

    fn lease(node: &str, expires_at: u64) -> Lease {
        Lease {
            lease_id: "l1".into(),
            task_id: "t1".into(),
            node_id: node.into(),
            capability: "noop".into(),
            price: 1.0,
            timeout_ms: 1000,
            max_memory_mb: 64,
            fuel: 1,
            input_sha256: greenmesh_protocol::sha256_hex(INPUT.as_bytes()),
            expires_at,
            nonce: "n".into(),
            grant: None,
            deterministic: false,
            kernel_sha256: None,
            seed: None,
            signature: String::new(),
        }
    }

    /// This test node has the `noop` kernel, nothing else.
    fn noop_only(capability: &str) -> Installed {
        if capability == "noop" {
            Installed::Kernel(NOOP.into())
        } else {
            Installed::Nothing
        }
    }

    fn run(l: &Lease, config: &ProviderConfig) -> Result<(), String> {
        let broker = key_pair_from_seed([1; 32]);
        let owner = key_pair_from_seed([9; 32]);
        check(
            l,
            INPUT,
            &Trust {
                broker: &broker.pk,
                owner: Some(&owner.pk),
            },
            "node-a",
            config,
            &noop_only,
            5_000,
        )
    }

    #[test]
    fn training_needs_the_dataset_here_and_the_node_s_own_randomness_for_noise() {
        let held = |d: &str| d == "cancer";
        let input = |dataset: &str, noise: f64| {
            serde_json::json!({ "inputs": { "dataset": dataset, "training": { "noise_multiplier": noise } } })
                .to_string()
        };
        assert_eq!(check_training(&input("cancer", 2.0), false, &held), Ok(()));
        assert_eq!(check_training(&input("cancer", 0.0), true, &held), Ok(()));
        let e = check_training(&input("cancer", 2.0), true, &held).unwrap_err();
        assert!(e.contains("own randomness"), "{e}");
        let e = check_training(&input("digits", 0.0), false, &held).unwrap_err();
        assert!(e.contains("does not hold dataset digits"), "{e}");
        assert!(check_training("{}", false, &held).is_err());
    }

    #[test]
    fn forged_expired_foreign_and_oversized_leases_are_refused() {
        let broker = key_pair_from_seed([1; 32]);
        let config = ProviderConfig::default();
        let mut good = lease("node-a", 10_000);
        good.sign(&broker.sk);
        assert_eq!(run(&good, &config), Ok(()));

        let mut forged = lease("node-a", 10_000);
        forged.sign(&key_pair_from_seed([2; 32]).sk);
        assert!(run(&forged, &config).unwrap_err().contains("forged"));

        let mut tampered = good.clone();
        tampered.fuel = 10;
        assert!(run(&tampered, &config).unwrap_err().contains("forged"));

        let mut expired = lease("node-a", 4_000);
        expired.sign(&broker.sk);
        assert!(run(&expired, &config).unwrap_err().contains("expired"));

        let mut foreign = lease("node-b", 10_000);
        foreign.sign(&broker.sk);
        assert!(run(&foreign, &config).unwrap_err().contains("node-b"));

        let mut long = lease("node-a", 10_000);
        long.timeout_ms = config.max_task_duration_ms + 1;
        long.sign(&broker.sk);
        assert!(run(&long, &config).unwrap_err().contains("at most"));

        let mut pinned = lease("node-a", 10_000);
        pinned.kernel_sha256 = Some(NOOP.into());
        pinned.sign(&broker.sk);
        assert_eq!(run(&pinned, &config), Ok(()), "the kernel it has");
        let mut changed = lease("node-a", 10_000);
        changed.kernel_sha256 = Some("0ld".into());
        changed.sign(&broker.sk);
        assert!(run(&changed, &config)
            .unwrap_err()
            .contains("now has 6e6f6f70 installed"));

        let mut unknown = lease("node-a", 10_000);
        unknown.capability = "object-detect".into();
        unknown.sign(&broker.sk);
        assert!(run(&unknown, &config)
            .unwrap_err()
            .contains("no object-detect kernel"));

        let restricted = ProviderConfig {
            allowed_tasks: vec!["image-filter".into()],
            ..ProviderConfig::default()
        };
        assert!(run(&good, &restricted)
            .unwrap_err()
            .contains("allowed tasks"));

        let mut other_input = lease("node-a", 10_000);
        other_input.input_sha256 = greenmesh_protocol::sha256_hex(b"something else");
        other_input.sign(&broker.sk);
        assert!(run(&other_input, &config).unwrap_err().contains("input"));
    }

    #[test]
    fn a_task_outside_the_allow_list_runs_only_under_a_grant_the_owner_signed() {
        let broker = key_pair_from_seed([1; 32]);
        let owner = key_pair_from_seed([9; 32]);
        let stranger = key_pair_from_seed([8; 32]);
        let config = ProviderConfig {
            allowed_tasks: vec!["image-filter".into()],
            ..ProviderConfig::default()
        };
        let granted = |pattern: &str, node: &str, expires_at: Option<u64>, by: &KeyPair| {
            let grant = greenmesh_protocol::Grant {
                node_id: node.into(),
                user_id: "alice".into(),
                task_pattern: pattern.into(),
                expires_at,
                issued_at: 1,
            };
            let mut l = lease("node-a", 10_000);
            l.grant = Some(greenmesh_protocol::SignedGrant {
                signature: grant.sign(&by.sk),
                grant,
            });
            l.sign(&broker.sk);
            l
        };
        let mut plain = lease("node-a", 10_000);
        plain.sign(&broker.sk);
        assert!(run(&plain, &config).unwrap_err().contains("allowed tasks"));
        assert_eq!(
            run(&granted("no*", "node-a", None, &owner), &config),
            Ok(())
        );
        assert_eq!(
            run(&granted("*", "node-a", Some(6_000), &owner), &config),
            Ok(())
        );
        let err = run(&granted("*", "node-a", None, &stranger), &config).unwrap_err();
        assert!(err.contains("not signed by this node's owner"), "{err}");
        let err = run(&granted("image-*", "node-a", None, &owner), &config).unwrap_err();
        assert!(err.contains("does not cover"), "{err}");
        let err = run(&granted("*", "node-b", None, &owner), &config).unwrap_err();
        assert!(err.contains("does not cover"), "{err}");
        let err = run(&granted("*", "node-a", Some(4_000), &owner), &config).unwrap_err();
        assert!(err.contains("expired"), "{err}");
        let unknown_owner = check(
            &granted("*", "node-a", None, &owner),
            INPUT,
            &Trust {
                broker: &broker.pk,
                owner: None,
            },
            "node-a",
            &config,
            &noop_only,
            5_000,
        );
        assert!(unknown_owner.unwrap_err().contains("no key"));
    }
}
